"""Trainer resume: SIGKILL mid-epoch, start again with the same run key, finish the same run.

Real processes throughout: the trainer as a subprocess, ``mlflow server`` on
PostgreSQL, real CIFAR-10 images. The interrupted run must end with every epoch
logged exactly once and the same test accuracy as an uninterrupted run with the
same seed (tolerance 0.01; with the same thread count it is bitwise the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from tests.test_cli import REPO, run_trainer
from trainer import checkpoint, tracking

pytestmark = pytest.mark.slow

EXPERIMENT = "resume"
MODEL = "alexnet-resume"
EPOCHS = 3
ACCURACY_TOLERANCE = 0.01


def _args(training_tree, cache, key: str, epochs: int = EPOCHS) -> list[str]:
    return [
        "--data", str(training_tree), "--cache-dir", cache, "--epochs", str(epochs), "--train-subset", "1500", "--test-subset", "500",
        "--batch-size", "100", "--threads", "2", "--no-progress", "--register-as", MODEL, "--run-key", key,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def env(tracking_server):
    return {"MLFLOW_TRACKING_URI": tracking_server.url, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "GIT_COMMIT": ""}


@pytest.fixture(scope="module")
def client(tracking_server):
    return MlflowClient(tracking_server.url)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("resume-cache"))


def _run_by_key(client: MlflowClient, key: str):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return checkpoint.find_run(client, experiment.experiment_id, key) if experiment else None


def _steps(client: MlflowClient, run_id: str, metric: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


@pytest.fixture(scope="module")
def reference(env, client, training_tree, cache):
    """The same run, never interrupted."""
    done = run_trainer(*_args(training_tree, cache, "reference"), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return _run_by_key(client, "reference")


def _kill_after_epoch_1(client, env, args: list[str], key: str):
    """Start the trainer, SIGKILL it as soon as epoch 1's metrics are in MLflow; return the run."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            run = _run_by_key(client, key)
            if run is not None and _steps(client, run.info.run_id, "epoch_time") == [1]:
                break
            time.sleep(0.2)
        assert process.poll() is None, f"the trainer ended before it could be killed:\n{process.stdout.read()[-3000:]}"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    return client.get_run(_run_by_key(client, key).info.run_id)


@pytest.fixture(scope="module")
def killed(env, client, training_tree, cache):
    """A run SIGKILLed early in epoch 2, right after epoch 1's checkpoint and metrics landed."""
    return _kill_after_epoch_1(client, env, _args(training_tree, cache, "killed"), "killed")


def test_a_killed_run_is_left_mid_epoch_with_one_checkpoint(killed, client):
    assert killed.info.status == "RUNNING"  # SIGKILL leaves no chance to mark it
    assert _steps(client, killed.info.run_id, "epoch_time") == [1]
    names = [os.path.basename(f.path) for f in client.list_artifacts(killed.info.run_id, checkpoint.FOLDER)]
    assert names == ["slot-1.pt"]


def test_resuming_with_other_settings_is_refused_and_changes_nothing(killed, env, client, training_tree, cache):
    refused = run_trainer(*_args(training_tree, cache, "killed", epochs=EPOCHS + 1), env=env)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert f"epochs {EPOCHS} -> {EPOCHS + 1}" in refused.stderr
    assert _steps(client, killed.info.run_id, "epoch_time") == [1]


@pytest.fixture(scope="module")
def resumed(killed, env, client, training_tree, cache):
    # Ordered after the refusal test by name: pytest runs the module's tests top to bottom.
    done = run_trainer(*_args(training_tree, cache, "killed"), env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return client.get_run(killed.info.run_id), done.stdout


def test_the_restarted_trainer_finishes_the_same_run(resumed, killed):
    run, stdout = resumed
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert "continuing after epoch 1 of 3" in stdout
    assert int(run.data.tags[checkpoint.ATTEMPTS_TAG]) >= 2  # started, (refused,) finished
    assert run.data.tags[checkpoint.RESUMED_FROM_TAG] == "1"


def test_every_epoch_is_logged_exactly_once_and_counted_once(resumed, client):
    run, _ = resumed
    for name in tracking.EPOCH_METRICS:
        assert _steps(client, run.info.run_id, name) == [1, 2, 3], name
    epoch_times = [m.value for m in client.get_metric_history(run.info.run_id, "epoch_time")]
    assert run.data.metrics["training_time"] == pytest.approx(sum(epoch_times), rel=1e-6)
    assert len(client.get_metric_history(run.info.run_id, "data_load_time")) == 1
    assert run.data.metrics["runtime"] > run.data.metrics["training_time"]


def test_the_resumed_run_reaches_the_uninterrupted_accuracy(resumed, reference, client):
    run, _ = resumed
    ours, theirs = run.data.metrics["test_accuracy"], reference.data.metrics["test_accuracy"]
    print(f"test_accuracy: resumed {ours:.4f}, uninterrupted {theirs:.4f}, difference {abs(ours - theirs):.4f}")
    assert abs(ours - theirs) <= ACCURACY_TOLERANCE
    for name in ("train_loss", "test_loss"):
        resumed_history = [m.value for m in sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)]
        reference_history = [m.value for m in sorted(client.get_metric_history(reference.info.run_id, name), key=lambda m: m.step)]
        assert resumed_history == pytest.approx(reference_history, rel=0.02), name


def test_checkpoints_are_removed_once_the_model_is_logged(resumed, client):
    run, _ = resumed
    assert client.list_artifacts(run.info.run_id, checkpoint.FOLDER) == []
    # The model itself stays: its registered version still resolves to this run.
    assert client.get_model_version(MODEL, run.data.tags["registered_version"]).run_id == run.info.run_id


def test_a_finished_run_key_is_not_trained_again(resumed, env, client, training_tree, cache):
    run, _ = resumed
    versions_before = len(client.search_model_versions(f"name='{MODEL}'"))
    again = run_trainer(*_args(training_tree, cache, "killed"), env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already finished" in again.stdout
    assert len(client.search_model_versions(f"name='{MODEL}'")) == versions_before
    assert _steps(client, run.info.run_id, "epoch_time") == [1, 2, 3]


def test_a_run_without_checkpoints_is_not_continued_with_duplicate_epochs(env, client, training_tree, cache):
    args = [*_args(training_tree, cache, "no-checkpoint"), "--no-checkpoint"]
    run = _kill_after_epoch_1(client, env, args, "no-checkpoint")
    again = run_trainer(*args, env=env)
    assert again.returncode == 2, again.stdout[-2000:] + again.stderr[-2000:]
    assert "has logged epochs up to 1 but its newest readable checkpoint is missing" in again.stderr
    assert _steps(client, run.info.run_id, "epoch_time") == [1]


def test_a_bad_run_key_is_a_usage_error():
    result = run_trainer("--run-key", "x' or '1'='1")
    assert result.returncode == 2 and "--run-key must be" in result.stderr


def _orphan_run(client: MlflowClient, key: str):
    """A RUNNING run under ``key``, as a trainer SIGKILLed at some late moment leaves it."""
    experiment = client.get_experiment_by_name(EXPERIMENT) or client.get_experiment(client.create_experiment(EXPERIMENT))
    return client.create_run(experiment.experiment_id, tags={checkpoint.RUN_KEY_TAG: key, checkpoint.ATTEMPTS_TAG: "1"})


def test_a_run_killed_after_its_last_metric_is_just_marked_finished(env, client, training_tree, cache):
    run = _orphan_run(client, "after-runtime")
    client.log_metric(run.info.run_id, "runtime", 12.5)  # runtime is the last thing a run logs
    done = run_trainer(*_args(training_tree, cache, "after-runtime"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "had completed its work; marking it finished" in done.stdout and "training on" not in done.stdout
    finished = client.get_run(run.info.run_id)
    assert finished.info.status == "FINISHED" and _steps(client, run.info.run_id, "epoch_time") == []


def test_a_run_killed_after_registering_keeps_one_model_version(env, client, training_tree, cache):
    run = _orphan_run(client, "after-register")
    # A version of this run exists, as if the kill came right after registering.
    client.log_text(run.info.run_id, "x", "placeholder.txt")
    if not client.search_registered_models(f"name='{MODEL}'"):
        client.create_registered_model(MODEL)
    client.create_model_version(MODEL, f"{run.info.artifact_uri}/placeholder.txt", run_id=run.info.run_id)
    done = run_trainer(*_args(training_tree, cache, "after-register"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    mine = client.search_model_versions(f"name = '{MODEL}' and run_id = '{run.info.run_id}'")
    assert len(mine) == 1
    assert client.get_run(run.info.run_id).data.tags["registered_version"] == mine[0].version
