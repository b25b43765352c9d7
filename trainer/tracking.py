"""Everything the trainer tells MLflow: names, tags, batched metrics, the model.

The metric names here are a contract: the cloud comparison reads them.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
import time

import mlflow
import numpy as np
import torch
from mlflow.entities import Metric
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from alexnet_cifar.preprocess import CLASSES, IMAGE_SIZE
from trainer import hostinfo
from trainer.train import EpochResult

DEFAULT_EXPERIMENT = "alexnet-cifar10"
DEFAULT_MODEL_NAME = "alexnet-cifar10"
CHAMPION_ALIAS = "champion"
MODEL_ARTIFACT = "model"
PREDICTIONS_ARTIFACT = "test_predictions.json"
#: 64 test images picked at random (seed 0) with their labels; the inference service shows them as its sample grid.
SAMPLES_ARTIFACT = "test_samples.npz"
SAMPLE_COUNT = 64

#: Run-level metrics, logged once (step 0).
RUN_METRICS = (
    "data_load_time",  # seconds to load (and decode, or read from cache) the data set
    "training_time",  # seconds spent in training steps, summed over epochs (evaluation excluded)
    "runtime",  # seconds for the whole job, from start-up to the registered model
    "test_loss",  # mean cross-entropy per test image, final model, fp32
    "test_accuracy",  # fraction of test images classified correctly, final model
    "eval_time",  # seconds spent evaluating on the test split, summed
    "train_images_per_second",  # training images per second of training_time
    "tracking_time",  # seconds spent in MLflow calls during training
    "checkpoint_time",  # seconds spent saving and uploading per-epoch checkpoints (this attempt)
)
#: Per-epoch metrics, logged with step = epoch.
EPOCH_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "epoch_time", "images_per_second")


def host_tags(cloud: str, training_run: str | None) -> dict[str, str]:
    """Tags that identify where and from what code the run executed."""
    memory = hostinfo.memory_bytes()
    tags = {
        "cloud": cloud,
        "host.name": socket.gethostname(),
        "host.cpu_model": hostinfo.cpu_model(),
        "host.usable_cpus": str(hostinfo.usable_cpus()),
        "host.memory_gb": f"{memory / 2**30:.1f}" if memory else "unknown",
        "host.platform": platform.platform(),
    }
    commit = hostinfo.git_commit()
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    if training_run:
        tags["trainingRun"] = training_run
    return tags


class EpochLogger:
    """Sends each epoch's metrics in one batched request and times the calls."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id
        self.seconds = 0.0

    def __call__(self, result: EpochResult) -> None:
        started = time.perf_counter()
        timestamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), timestamp, result.epoch) for key, value in result.metrics().items()]
        self.client.log_batch(self.run_id, metrics=metrics, synchronous=True)
        self.seconds += time.perf_counter() - started


def model_signature() -> ModelSignature:
    """uint8 ``(N, 32, 32, 3)`` RGB images in, float32 ``(N, 10)`` logits out."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, IMAGE_SIZE, IMAGE_SIZE, 3))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, len(CLASSES)))]),
    )


def log_model(model: torch.nn.Module, example: np.ndarray, predictions: np.ndarray):
    """Log the model (PyTorch flavour, exported ``pt2`` graph) and the test predictions.

    The exported graph needs no Python class to load, so ``mlflow.pyfunc``
    loads it without this package.
    """
    model = model.eval().to(memory_format=torch.contiguous_format)
    info = mlflow.pytorch.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=model_signature(),
        input_example=example,
        serialization_format="pt2",
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"],
        metadata={"classes": list(CLASSES), "input": "uint8 RGB images, shape (N, 32, 32, 3)"},
    )
    mlflow.log_text(json.dumps({"classes": list(CLASSES), "predictions": predictions.tolist()}), PREDICTIONS_ARTIFACT)
    return info


def log_samples(images: np.ndarray, labels: np.ndarray, count: int = SAMPLE_COUNT) -> None:
    """Log ``count`` test images (uint8 NHWC) with labels and test-split indices as ``test_samples.npz``.

    They are a fixed random pick, not the first ones: an image tree lists its test
    split class by class, so the first 64 would all be airplanes.
    """
    indices = np.sort(np.random.default_rng(0).permutation(len(images))[:count])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, SAMPLES_ARTIFACT)
        np.savez(path, images=images[indices], labels=labels[indices], indices=indices, classes=np.array(CLASSES))
        mlflow.log_artifact(path)


def register(model_uri: str, name: str, run_id: str, test_accuracy: float) -> tuple[str, bool]:
    """Register ``model_uri`` as a new version of ``name`` (or reuse the version an earlier attempt of
    ``run_id`` registered); move the champion alias to it only when its test accuracy beats the
    current champion's. Returns (version, promoted)."""
    client = MlflowClient()
    mine = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if mine:  # registered by an earlier attempt of this run
        version = min(int(v.version) for v in mine)
    else:
        version = mlflow.register_model(model_uri, name, tags={"test_accuracy": f"{test_accuracy:.4f}", "run_id": run_id}).version
    champion_accuracy = None
    champion_version = client.get_registered_model(name).aliases.get(CHAMPION_ALIAS)
    if champion_version is not None:
        champion_run = client.get_model_version(name, champion_version).run_id
        champion_accuracy = client.get_run(champion_run).data.metrics.get("test_accuracy") if champion_run else None
    promoted = champion_accuracy is None or test_accuracy > champion_accuracy or str(champion_version) == str(version)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    return str(version), promoted


def experiment_name() -> str:
    """``MLFLOW_EXPERIMENT_NAME`` or the project's default experiment."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
