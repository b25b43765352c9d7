"""Per-epoch checkpoints as artifacts of the run, and finding the run again by its key.

A run started with ``--run-key K`` carries the tag ``mlflow-multicloud.run_key=K``.
Started again with the same key (the Kubernetes Job's next pod), the trainer finds
that run and continues it from its last checkpoint instead of starting over.

Checkpoints alternate between two artifact files, ``checkpoints/slot-0.pt`` and
``slot-1.pt``: a process killed while uploading one leaves the other intact, and
a run never holds more than two (about 190 MB each for the default AlexNet).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import mlflow
import torch
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

RUN_KEY_TAG = "mlflow-multicloud.run_key"
ATTEMPTS_TAG = "mlflow-multicloud.attempts"
RESUMED_FROM_TAG = "mlflow-multicloud.resumed_from_epoch"
FOLDER = "checkpoints"
SLOTS = 2
def find_run(client: MlflowClient, experiment_id: str, key: str) -> Run | None:
    """The run of this experiment tagged with ``key``, newest first if (wrongly) several are.

    ``key`` goes into a search filter unquoted: the command line admits only keys
    that match ``trainer.cli.RUN_KEY_PATTERN``."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'", order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0] if runs else None


@dataclass
class Saved:
    """What one checkpoint upload cost."""

    seconds: float
    size_bytes: int


def save(state: dict) -> Saved:
    """Upload ``state`` to the active run as the slot its epoch uses."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"slot-{state['epoch'] % SLOTS}.pt")
        torch.save(state, path)
        size = os.path.getsize(path)
        mlflow.log_artifact(path, FOLDER)
    return Saved(time.perf_counter() - started, size)


def load_latest(client: MlflowClient, run_id: str) -> dict | None:
    """The checkpoint with the highest epoch among the run's slots that load cleanly, or None."""
    names = {os.path.basename(f.path) for f in client.list_artifacts(run_id, FOLDER)}
    best = None
    with tempfile.TemporaryDirectory() as folder:
        for slot in range(SLOTS):
            name = f"slot-{slot}.pt"
            if name not in names:
                continue
            path = client.download_artifacts(run_id, f"{FOLDER}/{name}", folder)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # a truncated upload: the other slot is the fallback
                print(f"warning: checkpoint {name} is unreadable ({type(error).__name__}); trying the other slot", flush=True)
                continue
            if best is None or state["epoch"] > best["epoch"]:
                best = state
    return best


def delete_all(run_id: str) -> bool:
    """Remove the run's checkpoints once its model is logged; False if the store refuses."""
    from mlflow.tracking.artifact_utils import get_artifact_repository

    try:
        get_artifact_repository(mlflow.get_run(run_id).info.artifact_uri).delete_artifacts(FOLDER)
    except Exception as error:  # noqa: BLE001 - a store without delete keeps them; that is all
        print(f"warning: checkpoints of run {run_id} were kept ({type(error).__name__}: {error})", flush=True)
        return False
    return True
