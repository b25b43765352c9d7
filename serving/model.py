"""The served model: loaded from the MLflow registry, swapped when its alias moves.

A :class:`ModelHolder` keeps one immutable :class:`LoadedModel`. Requests take
a reference to it and keep using it, so swapping in a new version (one
attribute assignment) never drops or mixes a request.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from alexnet_cifar.preprocess import CLASSES

log = logging.getLogger("serving.model")
SAMPLES_ARTIFACT = "test_samples.npz"  # written by the trainer (trainer/tracking.py)


class Predictor(Protocol):
    """What the service needs of a model: uint8 (N, 32, 32, 3) images -> (N, 10) logits."""

    def predict(self, images: np.ndarray): ...


class ModelLoadError(Exception):
    """The model could not be loaded from the tracking server."""


@dataclass(frozen=True)
class LoadedModel:
    """One model version with its sample images."""

    predictor: Predictor
    version: str
    uri: str
    sample_images: np.ndarray  # (S, 32, 32, 3) uint8, possibly S = 0
    sample_labels: np.ndarray  # (S,) int

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of a uint8 ``(N, 32, 32, 3)`` batch."""
        logits = np.asarray(self.predictor.predict(images), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class RegistrySettings:
    """Where the model comes from and how hard to try."""

    name: str
    alias: str = "champion"
    load_timeout: float = 120.0
    poll_seconds: float = 30.0


def resolve_version(client, settings: RegistrySettings) -> tuple[str, str]:
    """(version, run_id) of ``name@alias``, or of the latest version when no version has the alias."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(settings.name, settings.alias)
    except MlflowException as error:
        if "RESOURCE_DOES_NOT_EXIST" not in str(error.error_code) and "not found" not in str(error).lower():
            raise
        versions = client.search_model_versions(f"name = '{settings.name}'")
        if not versions:
            raise ModelLoadError(f"registered model '{settings.name}' has no version yet") from None
        version = max(versions, key=lambda v: int(v.version))
    return str(version.version), version.run_id


def load_version(client, settings: RegistrySettings, version: str, run_id: str | None) -> LoadedModel:
    """Load one model version with pyfunc, and its run's sample images if it has them."""
    import mlflow.pyfunc

    uri = f"models:/{settings.name}/{version}"
    predictor = mlflow.pyfunc.load_model(uri)
    images = np.zeros((0, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros((0,), dtype=np.int64)
    if run_id:
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = client.download_artifacts(run_id, SAMPLES_ARTIFACT, folder)
                with np.load(path) as samples:
                    images, labels = samples["images"].astype(np.uint8), samples["labels"].astype(np.int64)
        except Exception as error:  # a run without samples still serves predictions
            log.warning("no sample images for version %s: %s", version, error)
    return LoadedModel(predictor, version, uri, images, labels)


class ModelHolder:
    """Holds the current model; ``start_watching`` swaps in a new version when the alias moves."""

    def __init__(self, settings: RegistrySettings, client_factory: Callable[[], object] | None = None):
        self.settings = settings
        self._client_factory = client_factory or _default_client
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def fixed(cls, model: LoadedModel) -> "ModelHolder":
        """A holder with a given model and no registry (tests, offline use)."""
        holder = cls(RegistrySettings(name="fixed"))
        holder.current = model
        return holder

    def load(self) -> LoadedModel:
        """Load the current version, retrying with back-off for up to ``load_timeout`` seconds."""
        deadline = time.monotonic() + self.settings.load_timeout
        delay, attempt = 1.0, 0
        while True:
            attempt += 1
            try:
                client = self._client_factory()
                version, run_id = resolve_version(client, self.settings)
                self.current = load_version(client, self.settings, version, run_id)
                self.last_error = None
                log.info("serving %s version %s", self.settings.name, version)
                return self.current
            except Exception as error:  # unreachable server, no version yet, broken artifact
                self.last_error = f"{type(error).__name__}: {error}"
                if time.monotonic() + delay > deadline:
                    raise ModelLoadError(
                        f"could not load models:/{self.settings.name}@{self.settings.alias} from "
                        f"{os.environ.get('MLFLOW_TRACKING_URI', 'the tracking server')} after {attempt} attempts "
                        f"in {self.settings.load_timeout:.0f} s (MODEL_LOAD_TIMEOUT): {self.last_error}"
                    ) from None
                log.warning("model not loaded yet (attempt %d): %s", attempt, self.last_error)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def refresh(self) -> bool:
        """Swap in a new version if the alias moved; return whether it did. Errors keep the current model."""
        try:
            client = self._client_factory()
            version, run_id = resolve_version(client, self.settings)
            if self.current is not None and version == self.current.version:
                return False
            self.current = load_version(client, self.settings, version, run_id)
            self.last_error = None
            log.info("alias %s moved: now serving version %s", self.settings.alias, version)
            return True
        except Exception as error:  # the tracking server may be down: keep serving what we have
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("could not check for a new model version: %s", self.last_error)
            return False

    def start_watching(self) -> None:
        """Poll the registry every ``poll_seconds`` in a daemon thread."""
        if self._thread is not None or self.settings.poll_seconds <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(self.settings.poll_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher."""
        self._stop.set()


def _default_client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def describe(probabilities: np.ndarray, version: str) -> dict:
    """The JSON answer for one image."""
    order = np.argsort(probabilities)[::-1]
    best = int(order[0])
    return {
        "label": CLASSES[best],
        "class_index": best,
        "probabilities": {name: round(float(p), 6) for name, p in zip(CLASSES, probabilities)},
        "top3": [{"label": CLASSES[int(i)], "class_index": int(i), "probability": round(float(probabilities[i]), 6)} for i in order[:3]],
        "model_version": version,
    }
