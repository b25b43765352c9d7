"""``make benchmark-local``: train N times against a local tracking server (cloud=local), then build the report.

Every number in the report is read back from MLflow by ``python -m report``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from devstack.paths import REPO_ROOT, local_cifar10
from devstack.procs import free_port

DEFAULT_TRAINER_ARGS = ["--epochs", "1", "--no-register", "--no-progress"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m devstack.benchmark_local", description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after -- go to the trainer (default: " + " ".join(DEFAULT_TRAINER_ARGS) + ").")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="trainer runs (default %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".benchmark", help="server database and artifacts (default %(default)s)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "report-out" / "local", help="report folder (default %(default)s)")
    parser.add_argument("trainer_args", nargs=argparse.REMAINDER, help="arguments for the trainer, after --")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    trainer_args = [a for a in args.trainer_args if a != "--"] or DEFAULT_TRAINER_ARGS

    from devstack.mlflow_server import start_mlflow_server

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        server = start_mlflow_server(f"sqlite:///{work / 'mlflow.db'}", str(work / "artifacts"), work / "mlflow-server.log", port=free_port())
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    experiment = "benchmark-local"
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "MLFLOW_EXPERIMENT_NAME": experiment, "CLOUD": "local"}
        data = local_cifar10()
        if data is not None and "--data" not in trainer_args:
            env["CIFAR10_DATA"] = str(data)
        for n in range(1, args.runs + 1):
            print(f"run {n}/{args.runs}: python -m trainer {' '.join(trainer_args)}", flush=True)
            code = subprocess.call([sys.executable, "-m", "trainer", "--run-name", f"benchmark-{n}", *trainer_args], env=env)
            if code != 0:
                print(f"error: trainer run {n} exited with code {code}", file=sys.stderr)
                return code
        return subprocess.call(
            [sys.executable, "-m", "report", "--tracking-uri", server.url, "--experiment", experiment, "--since", started,
             "--output", str(args.output)],
            cwd=REPO_ROOT,
        )  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
