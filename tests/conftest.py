"""Shared fixtures: small real CIFAR-10 data sets in every format, and real services.

The images come from the real CIFAR-10 (``CIFAR10_DATA``, default: the shared
archive beside the clone). Without it the data tests are skipped loudly, unless
``MLMC_REQUIRE_DATA=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib

import io
import os
import sys
import pickle
import tarfile
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_cifar.preprocess import CLASSES
from devstack.paths import local_cifar10

#: Images per class kept from the real archive, per split.
SAMPLE_PER_CLASS = {"train": 500, "test": 100}


@dataclass(frozen=True)
class Sample:
    """Real CIFAR-10 images as encoded bytes: ``files[(split, class)] = [(name, bytes), ...]``."""

    files: dict[tuple[str, str], list[tuple[str, bytes]]]

    def arrays(self, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded images and labels of ``split`` in class order, ``per_class`` of each."""
        images, labels = [], []
        for label, name in enumerate(CLASSES):
            for _, raw in self.files[(split, name)][:per_class]:
                images.append(np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))
                labels.append(label)
        return np.stack(images), np.asarray(labels, dtype=np.int64)


@pytest.fixture(scope="session")
def cifar_source() -> Path:
    """The real CIFAR-10 image-tree archive."""
    path = local_cifar10()
    if path is None or not path.exists():
        message = f"real CIFAR-10 not found (set CIFAR10_DATA; looked for {path or 'the shared archive beside the clone'})"
        if os.environ.get("MLMC_REQUIRE_DATA") == "1":
            pytest.fail(message)
        warnings.warn(message)
        pytest.skip(f"SKIPPED FOR MISSING DATA: {message}")
    return path


@pytest.fixture(scope="session")
def real_sample(cifar_source: Path) -> Sample:
    """The first images of each class and split of the real archive, in one pass."""
    files: dict[tuple[str, str], list] = defaultdict(list)
    with tarfile.open(cifar_source) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3:
                continue
            split, label = parts[-3], parts[-2]
            if split in SAMPLE_PER_CLASS and len(files[(split, label)]) < SAMPLE_PER_CLASS[split]:
                files[(split, label)].append((parts[-1], archive.extractfile(member).read()))
    missing = [key for key in ((s, c) for s in SAMPLE_PER_CLASS for c in CLASSES) if len(files[key]) < SAMPLE_PER_CLASS[key[0]]]
    assert not missing, f"{cifar_source} lacks images for {missing[:3]}"
    return Sample(dict(files))


def write_tree(root: Path, sample: Sample, per_class: dict[str, int]) -> Path:
    """Write an image tree ``root/{train,test}/<class>/<file>`` from the sample."""
    for split, count in per_class.items():
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for file_name, raw in sample.files[(split, name)][:count]:
                (folder / file_name).write_bytes(raw)
    return root


def write_tar(source_dir: Path, archive: Path, arcname: str) -> Path:
    """Pack ``source_dir`` as ``archive`` (gzip) under the top-level folder ``arcname``."""
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source_dir, arcname=arcname)
    return archive


def write_canonical(folder: Path, sample: Sample, per_class: dict[str, int]) -> Path:
    """Write the canonical python layout (pickled batches) from decoded sample images."""
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = sample.arrays("train", per_class["train"])
    x_test, y_test = sample.arrays("test", per_class["test"])

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # channel planes, like the original
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": rows, b"filenames": [b""] * len(labels)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))

    for index, part in enumerate(np.array_split(np.arange(len(x_train)), 5), start=1):
        dump(f"data_batch_{index}", x_train[part], y_train[part])
    dump("test_batch", x_test, y_test)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in CLASSES]}, protocol=2))
    return folder


@dataclass(frozen=True)
class SmallSets:
    """One small real data set in each supported format."""

    tree_dir: Path
    tree_tar: Path
    canonical_dir: Path
    canonical_tar: Path
    per_class: dict[str, int]


@pytest.fixture(scope="session")
def small_sets(real_sample: Sample, tmp_path_factory) -> SmallSets:
    """20 train and 10 test images per class, as tree folder/archive and canonical folder/archive."""
    per_class = {"train": 20, "test": 10}
    base = tmp_path_factory.mktemp("small-sets")
    tree_dir = write_tree(base / "tree", real_sample, per_class)
    tree_tar = write_tar(tree_dir, base / "tree.tar.gz", "cifar10-jpg")
    canonical_dir = write_canonical(base / "canonical" / "cifar-10-batches-py", real_sample, per_class)
    canonical_tar = write_tar(canonical_dir, base / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    return SmallSets(tree_dir, tree_tar, canonical_dir, canonical_tar, per_class)


@pytest.fixture(scope="session")
def training_tree(real_sample: Sample, tmp_path_factory) -> Path:
    """A larger real image tree (500 train, 100 test images per class) for training runs."""
    return write_tree(tmp_path_factory.mktemp("training-tree"), real_sample, SAMPLE_PER_CLASS)


# --------------------------------------------------------------------------- services


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server from the distribution's binaries, in a temporary folder."""
    from devstack.postgres import start_postgres

    try:
        server = start_postgres()
    except FileNotFoundError as error:
        pytest.fail(f"{error} (.ci/run installs it)")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def tracking_server(postgres, tmp_path_factory):
    """A real ``mlflow server`` on PostgreSQL, proxying artifacts to a local folder."""
    from devstack.mlflow_server import start_mlflow_server

    base = tmp_path_factory.mktemp("mlflow-server")
    server = start_mlflow_server(postgres.create_database("mlflow"), str(base / "artifacts"), base / "server.log")
    server.artifacts = base / "artifacts"
    yield server
    server.stop()


@contextlib.contextmanager
def global_tracking_uri(uri: str):
    """Point MLflow's fluent API (``mlflow.register_model`` ...) at ``uri`` for a block, then put back
    exactly what was there: ``mlflow.set_tracking_uri(mlflow.get_tracking_uri())`` would pin the
    resolved default and override every later test's ``MLFLOW_TRACKING_URI``."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield


@pytest.fixture(autouse=True)
def _no_mlflow_state_leaks():
    """Put MLflow's process-wide state back after each test: ``mlflow.set_experiment`` and
    ``set_tracking_uri`` also write ``MLFLOW_EXPERIMENT_ID``/``MLFLOW_TRACKING_URI`` into
    os.environ, which every later subprocess (the trainer) would inherit."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in saved]:
        del os.environ[key]
    os.environ.update(saved)
    if "mlflow" in sys.modules:
        import mlflow
        from mlflow.tracking import fluent

        while mlflow.active_run() is not None:
            mlflow.end_run()
        fluent._active_experiment_id = None

