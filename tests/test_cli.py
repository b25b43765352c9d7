"""The command line: help, option checks, and bad data ending the MLflow run as FAILED."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from trainer.cli import build_parser
from trainer.tracking import DEFAULT_EXPERIMENT

REPO = Path(__file__).resolve().parents[1]


def run_trainer(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m trainer`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_documents_every_option():
    result = run_trainer("--help")
    assert result.returncode == 0
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in result.stdout, f"{flag} missing from --help"
        if action.help and action.option_strings and action.dest != "help":
            assert action.help.split("(")[0].strip()[:20] in " ".join(result.stdout.split()), f"{action.dest} help text missing"
    assert "MLFLOW_TRACKING_URI" in result.stdout and "CIFAR10_DATA" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--batch-size", "-1"], "--batch-size must be at least 1"),
        (["--train-subset", "-5"], "--train-subset must not be negative"),
        (["--lr", "0"], "--lr must be positive"),
        (["--dropout", "1.5"], "--dropout"),
        (["--precision", "fp16"], "invalid choice"),
        (["--epochs", "ten"], "invalid int value"),
    ],
)
def test_bad_options_exit_2_with_a_message(args, message):
    result = run_trainer(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_environment_provides_defaults(monkeypatch):
    monkeypatch.setenv("CLOUD", "gcp")
    monkeypatch.setenv("CIFAR10_DATA", "/data/x.tar.gz")
    monkeypatch.setenv("TRAINING_RUN", "bench-3")
    args = build_parser().parse_args([])
    assert (args.cloud, args.data, args.training_run) == ("gcp", "/data/x.tar.gz", "bench-3")
    assert build_parser().parse_args(["--cloud", "aws"]).cloud == "aws"


def _only_run(tracking_uri: str):
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize("damage", ["missing data", "corrupt image"])
def test_bad_data_exits_2_and_marks_the_run_failed(damage, small_sets, tmp_path):
    if damage == "missing data":
        data = tmp_path / "nowhere"
        expected = "no such file or folder"
    else:
        data = tmp_path / "tree"
        subprocess.run(["cp", "-r", str(small_sets.tree_dir), str(data)], check=True)
        (data / "test" / "ship" / "0003.jpg").write_bytes(b"definitely not a jpeg")
        expected = "test/ship/0003.jpg: corrupt or unreadable image"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_trainer("--data", str(data), "--cache-dir", str(tmp_path / "cache"), env={"MLFLOW_TRACKING_URI": tracking_uri})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert _only_run(tracking_uri).info.status == "FAILED"


def test_offline_without_data_names_the_variable(tmp_path):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "CIFAR10_DATA": "", "CIFAR10_URL": "http://127.0.0.1:9/cifar-10-python.tar.gz"}
    result = run_trainer("--cache-dir", str(tmp_path / "cache"), env=env)
    assert result.returncode == 2
    assert "CIFAR10_DATA" in result.stderr and "could not download" in result.stderr
    assert _only_run(tracking_uri).info.status == "FAILED"


def test_unreachable_tracking_server_exits_3(tmp_path):
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    result = run_trainer("--data", str(tmp_path), env=env, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "the MLflow tracking server at http://127.0.0.1:9 failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_ends_the_run_killed(training_tree, tmp_path):
    """Kubernetes stops pods with SIGTERM: the run must not stay RUNNING."""
    import signal
    import time

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", "--data", str(training_tree), "--cache-dir", str(tmp_path / "cache"), "--epochs", "50", "--no-register"],
        cwd=REPO,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    for line in process.stdout:
        if line.startswith("training on") or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert _only_run(tracking_uri).info.status == "KILLED"


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**70)], "--seed"),
        (["--momentum", "-1"], "--momentum"),
        (["--weight-decay", "-1"], "--weight-decay"),
        (["--lr", "nan"], "--lr must be a finite"),
        (["--lr", "inf"], "--lr must be a finite"),
        (["--momentum", "nan"], "--momentum must be a finite"),
        (["--crop-padding", "100000"], "--crop-padding"),
        (["--threads", "100000"], "--threads"),
        (["--download-url", "notaurl"], "--download-url"),
        (["--register-as", "bad/name%"], "--register-as"),
        (["--register-as", ""], "--register-as"),
    ],
)
def test_bad_option_values_exit_2_before_any_work(args, phrase, tmp_path):
    result = run_trainer(*args, "--cache-dir", str(tmp_path), env={"MLFLOW_TRACKING_URI": f"file://{tmp_path}/mlruns"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert phrase in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists()  # no run was started


def test_cache_dir_that_is_a_file_and_a_malformed_tracking_uri_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_trainer("--cache-dir", str(blocker))
    assert result.returncode == 2 and "is a file" in result.stderr
    result = run_trainer("--cache-dir", str(tmp_path), env={"MLFLOW_TRACKING_URI": "http://[::1"})
    assert result.returncode == 2 and "MLFLOW_TRACKING_URI" in result.stderr and "Traceback" not in result.stderr
