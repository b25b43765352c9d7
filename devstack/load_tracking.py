"""``make load-tracking``: N short trainer runs logging at once to one tracking server on PostgreSQL.

Checks afterwards that every metric of every run is there, and reports the most
database connections seen (sampled from ``pg_stat_activity`` while the runs
log). The server's pool is set explicitly, so the bound is known in advance:
workers x 2 stores (tracking, registry) x (pool size + overflow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devstack.paths import REPO_ROOT, local_cifar10

#: The tracking server's pool per store and worker (MLflow reads these variables).
POOL = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "2", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "2"}
SERVER_WORKERS = 2
STORES_PER_WORKER = 2  # the tracking store and the model registry store each keep a pool


def connection_bound(workers: int = SERVER_WORKERS) -> int:
    """The most connections the server may open with POOL."""
    per_store = int(POOL["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"]) + int(POOL["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"])
    return workers * STORES_PER_WORKER * per_store


@dataclass
class LoadResult:
    """What the parallel runs did and what the database saw."""

    runs: int
    returncodes: list[int]
    seconds: float
    max_connections: int
    connection_bound: int
    samples: int
    failures: list[str] = field(default_factory=list)


def count_connections(database_uri: str, database: str) -> int:
    """Client connections to ``database`` right now."""
    import psycopg

    with psycopg.connect(database_uri, autocommit=True) as connection:
        return connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()[0]


def parallel_runs(tracking_uri: str, admin_uri: str, database: str, trainer_args: list[str], runs: int, env: dict[str, str], log_dir: Path) -> LoadResult:
    """Start ``runs`` trainers at once (``--run-name load-<n>``), sample connections until all exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    started = time.monotonic()
    # An experiment or run id inherited from the caller would pin every trainer to it.
    inherited = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID")}
    for n in range(runs):
        log = open(log_dir / f"trainer-{n}.log", "wb")  # noqa: SIM115 - closed below
        command = [sys.executable, "-m", "trainer", *trainer_args, "--run-name", f"load-{n}"]
        processes.append((subprocess.Popen(command, cwd=REPO_ROOT, env={**inherited, **env, "MLFLOW_TRACKING_URI": tracking_uri},
                                           stdout=log, stderr=subprocess.STDOUT), log))  # fmt: skip
    peak, samples, stop = [0], [0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], count_connections(admin_uri, database))
            samples[0] += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    codes = []
    for process, log in processes:
        codes.append(process.wait())
        log.close()
    stop.set()
    sampler.join()
    return LoadResult(runs, codes, round(time.monotonic() - started, 1), peak[0], connection_bound(), samples[0])


def check_runs(tracking_uri: str, experiment: str, runs: int, epochs: int) -> list[str]:
    """Every run finished with every run-level metric and every epoch of every per-epoch metric, once."""
    from mlflow.tracking import MlflowClient

    from trainer import tracking

    client = MlflowClient(tracking_uri)
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    problems = [] if len(found) == runs else [f"{len(found)} runs recorded, {runs} started"]
    for run in found:
        name = run.info.run_name
        if run.info.status != "FINISHED":
            problems.append(f"{name}: {run.info.status}")
        problems += [f"{name}: no {m}" for m in tracking.RUN_METRICS if m not in run.data.metrics]
        for metric in tracking.EPOCH_METRICS:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))
            if steps != list(range(1, epochs + 1)):
                problems.append(f"{name}: {metric} steps {steps}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Start PostgreSQL and a server, run the trainers, check, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m devstack.load_tracking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8, help="trainers at once (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default %(default)s)")
    parser.add_argument("--train-subset", type=int, default=500, help="training images per run (default %(default)s)")
    parser.add_argument("--data", type=Path, default=local_cifar10(), help="CIFAR-10 source (default: the shared copy beside the clone)")
    parser.add_argument("--output", type=Path, default=Path("load-tracking.json"), help="JSON output (default %(default)s)")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 64 or args.epochs < 1 or args.train_subset < 1:
        parser.error("--runs must be 1 to 64, --epochs and --train-subset at least 1")
    if not args.output.parent.is_dir():
        parser.error(f"--output: folder {args.output.parent} does not exist")
    if args.data is None:
        parser.error("no CIFAR-10 found beside the clone; pass --data")

    from devstack.mlflow_server import start_mlflow_server
    from devstack.postgres import start_postgres

    work = Path(tempfile.mkdtemp(prefix="load-tracking-"))
    with start_postgres() as database:
        backend = database.create_database("mlflow")
        with start_mlflow_server(backend, str(work / "artifacts"), work / "server.log", workers=SERVER_WORKERS, env=POOL) as server:
            print(f"{args.runs} trainers logging to {server.url} ...", flush=True)
            result = parallel_runs(server.url, database.uri(), "mlflow", trainer_arguments(args.data, work / "cache", args.epochs, args.train_subset),
                                   args.runs, {"MLFLOW_EXPERIMENT_NAME": "load", "GIT_COMMIT": ""}, work / "logs")  # fmt: skip
            result.failures = check_runs(server.url, "load", args.runs, args.epochs)
    report = asdict(result)
    print(json.dumps(report, indent=2))
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    ok = not result.failures and set(result.returncodes) == {0} and result.max_connections <= result.connection_bound
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    print("ok" if ok else f"FAILED; logs in {work}")
    return 0 if ok else 1


def trainer_arguments(data: Path, cache: Path, epochs: int, train_subset: int) -> list[str]:
    """A short run: small subsets, one thread each, no checkpoint (the disk is not what is measured)."""
    return [
        "--data", str(data), "--cache-dir", str(cache), "--epochs", str(epochs), "--train-subset", str(train_subset),
        "--test-subset", "200", "--batch-size", "50", "--threads", "1", "--no-progress", "--no-checkpoint", "--register-as", "alexnet-load",
    ]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
