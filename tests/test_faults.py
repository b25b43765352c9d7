"""Faults with real processes: a tracking server killed under a training run and under the
inference service, PostgreSQL restarted under a tracking server, and dependencies that
never come back. Every recovery time is printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from devstack.mlflow_server import MlflowServer, start_mlflow_server
from devstack.postgres import start_postgres
from devstack.procs import free_port
from devstack.serving import start_serving
from tests.conftest import global_tracking_uri
from tests.test_cli import REPO, run_trainer
from trainer import checkpoint, tracking
from trainer.cli import TRACKING_RETRIES

pytestmark = pytest.mark.slow

EXPERIMENT = "faults"
MODEL = "alexnet-faults"
DOWNTIME = 8.0  # seconds the tracking server stays dead


class RestartableServer:
    """An ``mlflow server`` on a fixed port that can be SIGKILLed and started again on the same store."""

    def __init__(self, backend: str, base: Path) -> None:
        self.backend, self.base, self.port = backend, base, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: MlflowServer | None = None

    def start(self) -> float:
        """Start it; return the moment it answered /health."""
        self.server = start_mlflow_server(self.backend, str(self.base / "artifacts"), self.base / "server.log", port=self.port, workers=2)
        return time.monotonic()

    def kill(self) -> float:
        """SIGKILL the server and its workers (no graceful shutdown); return the moment it died."""
        os.killpg(self.server.process.pid, signal.SIGKILL)
        self.server.process.wait(30)
        return time.monotonic()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    restartable = RestartableServer(postgres.create_database("faults"), tmp_path_factory.mktemp("faults-server"))
    restartable.start()
    yield restartable
    restartable.stop()


@pytest.fixture(scope="module")
def env(server):
    return {"MLFLOW_TRACKING_URI": server.url, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "GIT_COMMIT": ""}


def _trainer_args(training_tree: Path, cache: str, key: str, epochs: int = 4) -> list[str]:
    return [
        "--data", str(training_tree), "--cache-dir", cache, "--epochs", str(epochs), "--train-subset", "1500", "--test-subset", "500",
        "--batch-size", "100", "--threads", "2", "--no-progress", "--register-as", MODEL, "--run-key", key,
    ]  # fmt: skip


def _logged_epochs(client: MlflowClient, key: str) -> list[int]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    run = checkpoint.find_run(client, experiment.experiment_id, key) if experiment else None
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, "epoch_time")) if run else []


def _wait_for_epoch(client: MlflowClient, key: str, epoch: int, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the trainer exited early:\n{process.stdout.read()[-3000:]}"
        if epoch in _logged_epochs(client, key):
            return
        time.sleep(0.2)
    raise TimeoutError(f"epoch {epoch} was never logged")


@pytest.fixture(scope="module")
def trained_through_a_restart(server, env, training_tree, tmp_path_factory):
    """A 4-epoch run whose tracking server is SIGKILLed after epoch 1 and restarted DOWNTIME s later."""
    cache = str(tmp_path_factory.mktemp("faults-cache"))
    client = MlflowClient(server.url)
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", *_trainer_args(training_tree, cache, "through-restart")],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _wait_for_epoch(client, "through-restart", 1, process)
        killed_at = server.kill()
        time.sleep(DOWNTIME)
        back_at = server.start()
        _wait_for_epoch(client, "through-restart", 2, process)
        next_epoch_after = time.monotonic() - back_at
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    print(f"\ntracking server down {back_at - killed_at:.1f} s (killed, {DOWNTIME:.0f} s pause, restart); "
          f"epoch 2 logged {next_epoch_after:.1f} s after it was back")  # fmt: skip
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client, checkpoint.find_run(client, experiment.experiment_id, "through-restart"), process.returncode, output, cache


def test_training_survives_a_tracking_server_restart_without_losing_a_metric(trained_through_a_restart):
    client, run, returncode, output, _ = trained_through_a_restart
    assert returncode == 0, output[-3000:]
    assert run.info.status == "FINISHED"
    for name in tracking.EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted(m.step for m in history) == [1, 2, 3, 4], name  # every epoch, none twice
    for name in tracking.RUN_METRICS:
        assert name in run.data.metrics, name


def test_serving_keeps_answering_while_tracking_is_down_and_then_takes_the_new_champion(server, trained_through_a_restart, tmp_path):
    client, run, returncode, _, _ = trained_through_a_restart
    assert returncode == 0
    served = start_serving(
        {"MLFLOW_TRACKING_URI": server.url, "MODEL_NAME": MODEL, "MODEL_POLL_SECONDS": "1", "SERVING_WORKERS": "2"}, tmp_path / "gunicorn.log"
    )
    try:
        first = requests.post(f"{served.url}/predict", json={"indices": [0, 1, 2, 3]}, timeout=30).json()
        server.kill()
        statuses = []
        down_until = time.monotonic() + 5
        while time.monotonic() < down_until:
            statuses.append(requests.post(f"{served.url}/predict", json={"indices": [0, 1, 2, 3]}, timeout=30).status_code)
            statuses.append(requests.get(f"{served.url}/readyz", timeout=30).status_code)
        back_at = server.start()
        # A new champion: the same model registered again, the alias moved to it.
        source = client.get_model_version(MODEL, first["model_version"])
        with global_tracking_uri(server.url):
            new = mlflow.register_model(source.source, MODEL)
        client.set_registered_model_alias(MODEL, tracking.CHAMPION_ALIAS, new.version)
        deadline, picked_up = time.monotonic() + 60, None
        while time.monotonic() < deadline and picked_up is None:
            answer = requests.post(f"{served.url}/predict", json={"indices": [0]}, timeout=30)
            assert answer.status_code == 200
            if answer.json()["model_version"] == new.version:
                picked_up = time.monotonic() - back_at
            time.sleep(0.2)
    finally:
        served.stop()
    print(f"\nwhile tracking was down: {len(statuses)} requests, statuses {sorted(set(statuses))}; "
          f"new champion v{new.version} served {picked_up:.1f} s after the server was back")  # fmt: skip
    assert set(statuses) == {200}
    assert picked_up is not None, "serving never loaded the new champion"


def test_a_trainer_whose_server_never_returns_exits_3_and_its_next_attempt_resumes(server, env, training_tree, tmp_path_factory):
    """Fewer retries than the default (2 instead of 6) keep this short; the bound itself is checked below."""
    cache = str(tmp_path_factory.mktemp("faults-cache-2"))
    client = MlflowClient(server.url)
    quick = {**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", *_trainer_args(training_tree, cache, "never-returns", epochs=3)],
        cwd=REPO, env={**os.environ, **quick}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_epoch(client, "never-returns", 1, process)
        killed_at = server.kill()
        _, stderr = process.communicate(timeout=300)
        gave_up_after = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            process.kill()
        server.start()
    print(f"\nwith 2 retries the trainer gave up {gave_up_after:.1f} s after the server died")
    assert process.returncode == 3, stderr[-3000:]
    assert f"the MLflow tracking server at {server.url} failed" in stderr
    again = run_trainer(*_trainer_args(training_tree, cache, "never-returns", epochs=3), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing after epoch" in again.stdout
    assert _logged_epochs(client, "never-returns") == [1, 2, 3]


def test_the_default_retry_budget_is_about_a_minute():
    """What MLflow's urllib3 retry does with the trainer's defaults: back-off 0, 2, 4, 8, 16, 32 s."""
    from urllib3.util.retry import Retry

    retries = int(TRACKING_RETRIES["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    retry = Retry(total=retries, backoff_factor=float(TRACKING_RETRIES["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]))
    waits = []
    for _ in range(retries):
        retry = retry.increment(method="GET", url="/", error=ConnectionError())
        waits.append(retry.get_backoff_time())
    assert 30 <= sum(waits) <= 90, waits


def test_the_tracking_server_rides_out_a_postgres_restart(tmp_path):
    """PostgreSQL stops under a running server: requests fail meanwhile (a 5xx, or under load no answer
    within 10 s), and once the database is back the same server process answers again
    (pool_pre_ping replaces dead connections)."""
    database = start_postgres()
    try:
        with start_mlflow_server(database.create_database("mlflow"), str(tmp_path / "artifacts"), tmp_path / "server.log", workers=2) as server:
            client = MlflowClient(server.url)
            experiment = client.create_experiment("pg-restart")
            search = f"{server.url}/api/2.0/mlflow/experiments/get?experiment_id={experiment}"
            assert requests.get(search, timeout=30).ok
            database.stop("fast")
            try:  # a 5xx, or no answer while the server's database driver waits: both count as "failing"
                during = str(requests.get(search, timeout=10).status_code)
            except requests.exceptions.Timeout:
                during = "no answer in 10 s"
            database.start()
            back_at, recovered = time.monotonic(), None
            while time.monotonic() < back_at + 60:
                if requests.get(search, timeout=30).ok:
                    recovered = time.monotonic() - back_at
                    break
                time.sleep(0.1)
            assert server.process.poll() is None, "the server process exited"
            run = client.create_run(experiment)
            client.log_metric(run.info.run_id, "after_restart", 1.0)
            assert client.get_run(run.info.run_id).data.metrics == {"after_restart": 1.0}
    finally:
        database.destroy()
    print(f"\nduring the outage the server answered {during}; it served again {recovered:.2f} s after PostgreSQL was back")
    assert during == "no answer in 10 s" or int(during) >= 500
    assert recovered is not None, "the server never recovered"
