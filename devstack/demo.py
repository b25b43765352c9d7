"""``make demo``: start a local tracking server, train, register, print the numbers, clean up.

Every number printed is read back from MLflow, not from the trainer's memory.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.paths import REPO_ROOT, local_cifar10
from devstack.procs import free_port, port_is_free

#: A run that finishes in a few minutes on 2 cores and still evaluates on the full test split.
DEFAULT_TRAINER_ARGS = ["--epochs", "2"]
SUMMARY_METRICS = ("data_load_time", "training_time", "runtime", "test_loss", "test_accuracy")


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.demo",
        description="Start a local MLflow server, train AlexNet on CIFAR-10 with it, register the model and print the metrics.",
        epilog=(
            "environment: CIFAR10_DATA (data; default: the shared copy beside the clone, else download), "
            "DEMO_BACKEND_STORE_URI (e.g. postgresql://<user>:<password>@<host>/<db>; default: SQLite in the work dir), "
            "DEMO_PORT, DEMO_WORK_DIR. Arguments after -- go to the trainer (python -m trainer --help)."
        ),
    )
    parser.add_argument("--work-dir", type=Path, default=Path(os.environ.get("DEMO_WORK_DIR") or REPO_ROOT / ".demo"), help="server database, artifacts and logs (default %(default)s)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT") or 5000), help="tracking server port; a free one is picked if it is taken (default %(default)s)")
    parser.add_argument("--keep-server", action="store_true", help="keep the tracking server running after the job until Ctrl-C")
    parser.add_argument("trainer_args", nargs=argparse.REMAINDER, help="arguments for the trainer, after --")
    return parser


def with_defaults(given: list[str]) -> list[str]:
    """The demo's defaults (2 epochs) for every option ``given`` does not set: ``-- --run-key k`` still trains 2 epochs."""
    added: list[str] = []
    for option, value in zip(DEFAULT_TRAINER_ARGS[::2], DEFAULT_TRAINER_ARGS[1::2]):
        if option_value(given, option) is None:
            added += [option, value]
    return added + given


def option_value(arguments: list[str], option: str) -> str | None:
    """The value of ``option`` in ``arguments`` (``--opt v`` or ``--opt=v``), or None."""
    for n, argument in enumerate(arguments):
        if argument == option and n + 1 < len(arguments):
            return arguments[n + 1]
        if argument.startswith(option + "="):
            return argument.split("=", 1)[1]
    return None


def _stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # runs the finally below: the tracking server is stopped too


def summary_table(run) -> str:
    """The headline metrics of ``run`` as a Markdown table, under their MLflow names."""
    rows = ["| metric | value |", "|---|---|"]
    for name in SUMMARY_METRICS:
        value = run.data.metrics.get(name)
        rows.append(f"| {name} | {'missing' if value is None else f'{value:.4f}'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit code."""
    args = build_parser().parse_args(argv)
    trainer_args = with_defaults([a for a in args.trainer_args if a != "--"])
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    from mlflow.tracking import MlflowClient

    from devstack.mlflow_server import start_mlflow_server

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    backend = os.environ.get("DEMO_BACKEND_STORE_URI") or f"sqlite:///{work / 'mlflow.db'}"
    port = args.port if port_is_free(args.port) else free_port()
    if port != args.port:
        print(f"port {args.port} is taken; using {port}")
    print(f"starting mlflow server on port {port} (backend: {backend.split('://')[0]}, artifacts: {work / 'artifacts'})", flush=True)
    try:
        server = start_mlflow_server(backend, str(work / "artifacts"), work / "mlflow-server.log", port=port)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
        env.setdefault("MLFLOW_EXPERIMENT_NAME", "alexnet-cifar10")
        data = local_cifar10()
        if data is not None and "--data" not in trainer_args:
            env["CIFAR10_DATA"] = str(data)
        run_name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        command = [sys.executable, "-m", "trainer", "--run-name", run_name, *trainer_args]
        print("running:", " ".join(command[1:]), f"(data: {env.get('CIFAR10_DATA') or 'download'})", flush=True)
        try:
            code = subprocess.call(command, env=env)
        except KeyboardInterrupt:  # Ctrl-C reached the trainer too; it marks its run KILLED
            code = 130
        if code != 0:
            print(f"error: the trainer exited with code {code}", file=sys.stderr)
            return code
        client = MlflowClient(server.url)
        experiment = client.get_experiment_by_name(env["MLFLOW_EXPERIMENT_NAME"])
        key = option_value(trainer_args, "--run-key")
        # A resumed run keeps the name it was first given; its key finds it.
        found = f"tags.`mlflow-multicloud.run_key` = '{key}'" if key else f"attributes.run_name = '{run_name}'"
        run = client.search_runs([experiment.experiment_id], found, max_results=1)[0]
        print()
        print(f"run {run.info.run_id} ({run.info.status}), cloud={run.data.tags.get('cloud')}, read back from MLflow:")
        print(summary_table(run))
        version = run.data.tags.get("registered_version")
        if version:
            name = run.data.tags.get("registered_model")
            champion = "champion" if run.data.tags.get("champion") == "true" else "not champion"
            print(f"\nregistered model: {name} version {version} ({champion})")
        print(f"MLflow UI: {server.url}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}")
        if args.keep_server:
            print("the tracking server keeps running; press Ctrl-C to stop it", flush=True)
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        server.stop()
        if not args.keep_server:
            print("stopped the tracking server (make demo ARGS=--keep-server keeps it up; the runs stay in the work dir)")


if __name__ == "__main__":
    sys.exit(main())
