"""Load at small scale, with the thresholds the long runs (``make load``) also hold:

* serving: 32 concurrent keep-alive clients on loopback under gunicorn: zero 5xx,
  zero failed requests; p99 and worker memory before and after are printed;
* tracking: 8 trainer runs logging at once to one server on PostgreSQL: every metric
  of every run is recorded, and database connections stay within the pool's bound.

``LOAD_SECONDS`` sets the serving duration (CI: 8 s; ``make load``: 30 s).
"""

from __future__ import annotations

import os

import pytest

from devstack import bench_serving, load_tracking
from devstack.mlflow_server import start_mlflow_server
from devstack.procs import children_rss_mib
from devstack.serving import start_serving
from tests.conftest import global_tracking_uri

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("LOAD_SECONDS", "8"))
CLIENTS = 32


def test_serving_under_32_clients_gives_no_5xx(tracking_server, tmp_path):
    with global_tracking_uri(tracking_server.url):
        bench_serving.register_model(tracking_server.url)
    served = start_serving(
        {"MLFLOW_TRACKING_URI": tracking_server.url, "MODEL_NAME": bench_serving.MODEL, "SERVING_WORKERS": "2", "MODEL_POLL_SECONDS": "0"},
        tmp_path / "gunicorn.log",
    )
    try:
        body = bench_serving.png_bytes()
        bench_serving.load(served.port, 2, 1, body)  # warm-up
        before = children_rss_mib(served.process.pid)
        result = bench_serving.load(served.port, CLIENTS, SECONDS, body)
        after = children_rss_mib(served.process.pid)
    finally:
        served.stop()
    print(f"\n{CLIENTS} clients x {SECONDS:g} s: {result['requests']} requests, {result['requests_per_second']} req/s, "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}, 5xx {result['server_errors']}; "
          f"worker RSS MiB before {sorted(round(v) for v in before.values())}, after {sorted(round(v) for v in after.values())}")  # fmt: skip
    assert result["server_errors"] == 0 and result["errors"] == 0
    assert result["requests"] >= CLIENTS, "every client got answers"
    assert set(before) == set(after), "no worker died or was replaced under load"
    assert len(before) == 2


def test_eight_parallel_trainer_runs_lose_no_metric_and_bound_db_connections(postgres, training_tree, tmp_path):
    database = "load"
    backend = postgres.create_database(database)
    epochs = 3
    with start_mlflow_server(backend, str(tmp_path / "artifacts"), tmp_path / "server.log", workers=load_tracking.SERVER_WORKERS,
                             env=load_tracking.POOL) as server:  # fmt: skip
        result = load_tracking.parallel_runs(
            server.url, postgres.uri(), database, load_tracking.trainer_arguments(training_tree, tmp_path / "cache", epochs, 300),
            8, {"MLFLOW_EXPERIMENT_NAME": "load", "GIT_COMMIT": ""}, tmp_path / "logs",
        )  # fmt: skip
        problems = load_tracking.check_runs(server.url, "load", 8, epochs)
    logs = {p.name: p.read_text()[-1500:] for p in (tmp_path / "logs").iterdir()}
    print(f"\n8 runs in {result.seconds} s; at most {result.max_connections} database connections "
          f"({result.samples} samples, bound {result.connection_bound})")  # fmt: skip
    assert result.returncodes == [0] * 8, logs
    assert problems == []
    assert result.samples > 0
    assert 0 < result.max_connections <= result.connection_bound
