"""End to end: the trainer as a subprocess against a real ``mlflow server`` on a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.test_cli import run_trainer
from trainer import tracking

pytestmark = pytest.mark.slow

EXPERIMENT = "integration"
MODEL = "alexnet-integration"
COMMON = ["--train-subset", "1500", "--batch-size", "100", "--no-progress", "--register-as", MODEL]


@pytest.fixture(scope="module")
def runs(tracking_server, training_tree, tmp_path_factory):
    """A weak run (1 epoch, tiny learning rate), then a better one (3 epochs)."""
    env = {"MLFLOW_TRACKING_URI": tracking_server.url, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "GIT_COMMIT": "", "CLOUD": "gcp"}
    cache = str(tmp_path_factory.mktemp("cache"))
    weak = run_trainer("--data", str(training_tree), "--cache-dir", cache, "--epochs", "1", "--lr", "0.0005", "--run-name", "weak", *COMMON, env=env)
    assert weak.returncode == 0, weak.stderr[-3000:]
    strong = run_trainer(
        "--data", str(training_tree), "--cache-dir", cache, "--epochs", "3", "--run-name", "strong", "--training-run", "it-1", *COMMON, env=env
    )
    assert strong.returncode == 0, strong.stderr[-3000:]
    client = MlflowClient(tracking_server.url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    found = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    return client, found["weak"], found["strong"], strong.stdout


def test_run_level_and_per_epoch_metrics_are_recorded(runs):
    client, _, run, _ = runs
    metrics = run.data.metrics
    for name in tracking.RUN_METRICS:
        assert name in metrics, f"missing run metric {name}"
    assert 0 < metrics["data_load_time"] < metrics["runtime"]
    assert 0 < metrics["training_time"] < metrics["runtime"]
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_loss"] > 0
    for name in tracking.EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted(m.step for m in history) == [1, 2, 3], name
    epoch_times = client.get_metric_history(run.info.run_id, "epoch_time")
    assert metrics["training_time"] == pytest.approx(sum(m.value for m in epoch_times), rel=1e-6)
    final_loss = max(client.get_metric_history(run.info.run_id, "test_loss"), key=lambda m: m.step).value
    assert metrics["test_loss"] == final_loss
    assert run.info.status == "FINISHED"


def test_params_cover_every_option_and_the_environment(runs):
    from trainer.cli import build_parser

    _, _, run, _ = runs
    params = run.data.params
    for action in build_parser()._actions:
        if action.dest != "help":
            assert action.dest in params, f"option {action.dest} not logged"
    assert params["epochs"] == "3" and params["train_subset"] == "1500"
    assert params["train_size"] == "1500" and params["test_size"] == "1000"
    assert params["torch_version"].startswith("2.13") and int(params["num_threads"]) >= 1
    assert params["data_format"] == "tree-folder" and params["parameter_count"] == "23273418"


def test_tags_identify_cloud_host_and_training_run(runs):
    _, _, run, _ = runs
    tags = run.data.tags
    assert tags["cloud"] == "gcp" and tags["trainingRun"] == "it-1"
    assert tags["host.cpu_model"] and int(tags["host.usable_cpus"]) >= 1 and float(tags["host.memory_gb"]) > 0
    assert "git_commit" not in tags or tags["git_commit"]


def test_model_is_registered_and_champion_follows_accuracy(runs):
    client, weak, strong, _ = runs
    versions = {v.run_id: v for v in client.search_model_versions(f"name='{MODEL}'")}
    assert set(versions) == {weak.info.run_id, strong.info.run_id}
    assert strong.data.metrics["test_accuracy"] > weak.data.metrics["test_accuracy"]
    champion = client.get_model_version_by_alias(MODEL, tracking.CHAMPION_ALIAS)
    assert champion.run_id == strong.info.run_id
    assert weak.data.tags["champion"] == "true" and strong.data.tags["champion"] == "true"


def test_a_worse_model_does_not_take_the_champion_alias(runs, tracking_server, monkeypatch):
    client, weak, strong, _ = runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    weak_model = next(v for v in client.search_model_versions(f"name='{MODEL}'") if v.run_id == weak.info.run_id)
    # Another run with the weak model's accuracy (the same run would get its own version back).
    other = client.create_run(weak.info.experiment_id)
    version, promoted = tracking.register(weak_model.source, MODEL, other.info.run_id, weak.data.metrics["test_accuracy"])
    assert not promoted
    assert client.get_model_version_by_alias(MODEL, tracking.CHAMPION_ALIAS).run_id == strong.info.run_id
    assert int(version) == 3


def test_model_artifact_went_through_the_proxy_into_the_store(runs, tracking_server):
    _, _, run, _ = runs
    stored = list(tracking_server.artifacts.rglob("model.pt2"))
    assert stored, "no exported model in the server's artifact store"
    assert any(p.stat().st_size > 80e6 for p in stored)  # ~23 M float32 parameters
    assert list(tracking_server.artifacts.rglob(tracking.PREDICTIONS_ARTIFACT))


def test_sample_images_are_logged_with_their_labels(runs, training_tree, tmp_path):
    from trainer.data import load_cifar10

    client, _, run, _ = runs
    samples = np.load(client.download_artifacts(run.info.run_id, tracking.SAMPLES_ARTIFACT, str(tmp_path)))
    assert samples["images"].shape == (tracking.SAMPLE_COUNT, 32, 32, 3) and samples["images"].dtype == np.uint8
    assert samples["labels"].shape == (tracking.SAMPLE_COUNT,) and set(samples["labels"]) <= set(range(10))
    assert samples["images"].std() > 10  # real pictures, not a blank array
    assert len(set(samples["labels"])) >= 5  # a pick across classes, not the first class's images
    test_split = load_cifar10(training_tree, tmp_path / "cache")
    assert np.array_equal(samples["images"], test_split.x_test[samples["indices"]])
    assert np.array_equal(samples["labels"], test_split.y_test[samples["indices"]])


LOAD_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import importlib.abc, json, sys
    import numpy as np

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("trainer", "alexnet_cifar", "devstack"):
                raise ImportError(f"the model must load without {name}")

    sys.meta_path.insert(0, Refuse())
    import mlflow

    model = mlflow.pyfunc.load_model(sys.argv[1])
    images = np.load(sys.argv[2])
    logits = model.predict(images)
    print(json.dumps({"predictions": np.asarray(logits).argmax(1).tolist(),
                      "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("trainer", "alexnet_cifar"))}))
    """
)


def test_pyfunc_in_a_fresh_process_predicts_what_training_predicted(runs, tracking_server, training_tree, tmp_path):
    client, _, run, _ = runs
    from trainer.data import load_cifar10

    dataset = load_cifar10(training_tree, tmp_path / "cache")
    np.save(tmp_path / "test.npy", dataset.x_test)
    script = tmp_path / "load.py"
    script.write_text(LOAD_IN_FRESH_PROCESS)
    result = subprocess.run(
        [sys.executable, str(script), f"models:/{MODEL}@champion", str(tmp_path / "test.npy")],
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": tracking_server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["loaded"] == []
    logged = json.loads(client.download_artifacts(run.info.run_id, tracking.PREDICTIONS_ARTIFACT, str(tmp_path)) and (tmp_path / tracking.PREDICTIONS_ARTIFACT).read_text())
    assert len(served["predictions"]) == len(logged["predictions"]) == 1000
    agreement = np.mean(np.array(served["predictions"]) == np.array(logged["predictions"]))
    assert agreement == 1.0, f"only {agreement:.1%} of predictions agree"
    accuracy = np.mean(np.array(served["predictions"]) == dataset.y_test)
    assert accuracy == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)


def test_trainer_prints_a_summary_and_per_epoch_lines(runs):
    _, _, run, stdout = runs
    assert f"run {run.info.run_id} finished" in stdout
    assert stdout.count("epoch ") >= 3 and "test_accuracy=" in stdout
