"""Load CIFAR-10 from any of the forms users have, into uint8 arrays.

Accepted sources (see :func:`load_cifar10`):

* the canonical python archive ``cifar-10-python.tar.gz`` or its extracted
  ``cifar-10-batches-py/`` folder;
* an image tree ``{train,test}/<class>/*.{jpg,jpeg,png}``, as a folder or a
  ``.tar.gz`` (an optional single top-level folder is allowed);
* nothing: the canonical archive is downloaded into the cache folder and its
  MD5 checksum verified.

Decoded arrays are cached in the cache folder, keyed by the source's identity
(path, size and modification time of every file), so a second load is a single
uncompressed ``.npz`` read.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

from alexnet_cifar.preprocess import CLASSES, IMAGE_SIZE, to_model_input

CANONICAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CANONICAL_MD5 = "c58f30108f718f92721af3b95e74349a"
CANONICAL_ARCHIVE = "cifar-10-python.tar.gz"
CANONICAL_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Bump when the cached array layout changes, so stale caches are ignored.
CACHE_FORMAT = 1


class DataError(Exception):
    """The data source is missing, malformed or corrupt; the message names the file."""


@dataclass(frozen=True)
class Cifar10:
    """Decoded CIFAR-10: images are ``(N, 32, 32, 3)`` uint8 RGB, labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    source_format: str
    from_cache: bool


# --------------------------------------------------------------------------- sources


def _is_archive(path: Path) -> bool:
    return path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar")))


def _detect_format(path: Path) -> str:
    """Return ``canonical-archive``, ``canonical-folder``, ``tree-archive`` or ``tree-folder``."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / CANONICAL_FOLDER).is_dir() or (path / TEST_BATCH).exists() or (path / "batches.meta").exists():
            return "canonical-folder"
        return "tree-folder"
    if not _is_archive(path):
        raise DataError(f"{path}: not a folder or a .tar.gz/.tgz/.tar archive")
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                name = PurePosixPath(member.name).name
                if name in TRAIN_BATCHES or name in (TEST_BATCH, "batches.meta"):
                    return "canonical-archive"
                if member.isfile() and name.lower().endswith(IMAGE_SUFFIXES):
                    return "tree-archive"
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{path}: corrupt or unreadable archive ({error})") from error
    raise DataError(f"{path}: archive holds neither CIFAR-10 batches nor images")


def _source_identity(path: Path, source_format: str) -> str:
    """A key that changes whenever the source's files change."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{source_format}|{path.resolve()}".encode())
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                stat = os.stat(os.path.join(root, name))
                digest.update(f"|{os.path.relpath(os.path.join(root, name), path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        stat = path.stat()
        digest.update(f"|{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


# --------------------------------------------------------------------------- canonical pickles


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: the CIFAR-10 batches
    are pickles, and an arbitrary pickle can run arbitrary code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        # Protocol-2 pickles written by Python 3 spell bytes this way.
        ("_codecs", "encode"),
        ("__builtin__", "bytes"),
        ("builtins", "bytes"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            if module == "numpy.core.multiarray":
                module = "numpy._core.multiarray"
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as error:  # any unpickling failure means a corrupt file
        raise DataError(f"{where}: corrupt CIFAR-10 batch ({error})") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{where}: not a CIFAR-10 batch (needs 'data' and 'labels')")
    try:
        data = np.asarray(batch[b"data"])
        raw_labels = np.asarray(batch[b"labels"])
        if raw_labels.size and raw_labels.dtype.kind not in "iu":
            raise ValueError(f"labels are {raw_labels.dtype}, not integers")
        labels = raw_labels.astype(np.int64)
    except (ValueError, TypeError, OverflowError) as error:
        raise DataError(f"{where}: malformed 'data' or 'labels' ({error})") from None
    pixels = 3 * IMAGE_SIZE * IMAGE_SIZE
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        raise DataError(f"{where}: 'data' is {data.dtype}{list(data.shape)}, expected uint8[N, {pixels}] (32x32 RGB)")
    if len(labels) != len(data):
        raise DataError(f"{where}: {len(data)} images but {len(labels)} labels")
    if len(data) == 0:
        raise DataError(f"{where}: empty batch")
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise DataError(f"{where}: labels outside 0..{len(CLASSES) - 1}")
    # Rows are channel planes (RRR..GGG..BBB); make contiguous HWC images.
    images = np.ascontiguousarray(data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1))
    return images, labels


def _load_canonical(batches: dict[str, Callable[[], bytes]], where: Callable[[str], str]) -> dict[str, tuple]:
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if name not in batches]
    if missing:
        raise DataError(f"{where(missing[0])}: missing (a CIFAR-10 python archive holds {', '.join(TRAIN_BATCHES)} and {TEST_BATCH})")
    train = [_read_batch(batches[name](), where(name)) for name in TRAIN_BATCHES]
    test = _read_batch(batches[TEST_BATCH](), where(TEST_BATCH))
    return {
        "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        "test": test,
    }


def _load_canonical_archive(path: Path) -> dict[str, tuple]:
    try:
        with tarfile.open(path) as archive:
            members = {
                PurePosixPath(m.name).name: m
                for m in archive.getmembers()
                if m.isfile() and PurePosixPath(m.name).name in (*TRAIN_BATCHES, TEST_BATCH)
            }
            readers = {name: (lambda m=member: archive.extractfile(m).read()) for name, member in members.items()}
            return _load_canonical(readers, lambda name: f"{path}:{CANONICAL_FOLDER}/{name}")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{path}: corrupt or unreadable archive ({error})") from error


def _load_canonical_folder(path: Path) -> dict[str, tuple]:
    folder = path / CANONICAL_FOLDER if (path / CANONICAL_FOLDER).is_dir() else path
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    readers = {name: files[name].read_bytes for name in files}
    return _load_canonical(readers, lambda name: str(folder / name))


# --------------------------------------------------------------------------- image trees

_TREE_PATTERN = re.compile(r"^(?:(?P<top>[^/]+)/)?(?P<split>train|test)/(?P<label>[^/]+)/(?P<file>[^/]+)$")


def _tree_entries(names: Iterator[tuple[str, object]], source: Path) -> Iterator[tuple[str, str, str, object]]:
    """Yield ``(split, class, name, handle)`` for each image of a tree; rejects strays."""
    tops: set[str] = set()
    for name, handle in names:
        match = _TREE_PATTERN.match(name)
        if not match or not match["file"].lower().endswith(IMAGE_SUFFIXES):
            continue
        tops.add(match["top"] or "")
        if len(tops) > 1:
            raise DataError(f"{source}: images under several top-level folders ({', '.join(sorted(tops))})")
        yield match["split"], match["label"], name, handle


def _decode(raw: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            mode, size = image.mode, image.size
            if mode == "RGB" and size == (IMAGE_SIZE, IMAGE_SIZE):
                # The same function the inference service applies to uploads
                # (for a 32x32 RGB image it changes nothing).
                return to_model_input(image)
    except Exception as error:  # Pillow raises many types for corrupt files
        raise DataError(f"{where}: corrupt or unreadable image ({error})") from error
    raise DataError(f"{where}: image is {size[0]}x{size[1]} {mode}, expected {IMAGE_SIZE}x{IMAGE_SIZE} RGB")


def _collect_tree(entries: Iterator[tuple[str, str, str, bytes]], source: Path, progress: bool, total: int | None) -> dict[str, tuple]:
    images: dict[str, list] = {split: [] for split in SPLITS}
    labels: dict[str, list] = {split: [] for split in SPLITS}
    seen: dict[str, set[str]] = {split: set() for split in SPLITS}
    for split, label, name, raw in tqdm(entries, total=total, desc="decoding images", unit="img", disable=not progress, leave=False):
        if label not in CLASSES:
            raise DataError(f"{source}: {name}: unknown class folder '{label}' (expected one of {', '.join(CLASSES)})")
        images[split].append(_decode(raw, f"{source}:{name}"))
        labels[split].append(CLASSES.index(label))
        seen[split].add(label)
    result = {}
    for split in SPLITS:
        if not images[split]:
            raise DataError(f"{source}: split '{split}/' is missing or holds no images")
        missing = [c for c in CLASSES if c not in seen[split]]
        if missing:
            raise DataError(f"{source}: class folder '{split}/{missing[0]}/' is missing or empty")
        result[split] = (np.stack(images[split]), np.asarray(labels[split], dtype=np.int64))
    return result


def _load_tree_folder(path: Path, progress: bool) -> dict[str, tuple]:
    files = sorted(p for p in path.rglob("*") if p.is_file())

    def entries():
        for split, label, name, file in _tree_entries(((p.relative_to(path).as_posix(), p) for p in files), path):
            yield split, label, name, file.read_bytes()

    return _collect_tree(entries(), path, progress, total=None)


def _load_tree_archive(path: Path, progress: bool) -> dict[str, tuple]:
    try:
        with tarfile.open(path) as archive:

            def entries():
                members = ((m.name.removeprefix("./"), m) for m in archive if m.isfile())
                for split, label, name, member in _tree_entries(members, path):
                    yield split, label, name, archive.extractfile(member).read()

            return _collect_tree(entries(), path, progress, total=None)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{path}: corrupt or unreadable archive ({error})") from error


# --------------------------------------------------------------------------- download


def download_canonical(cache_dir: Path, url: str = CANONICAL_URL, md5: str = CANONICAL_MD5, progress: bool = False) -> Path:
    """Download the canonical archive into ``cache_dir`` once, verifying its MD5.

    The file appears under its final name only after the checksum matched, so an
    interrupted or corrupt download never poses as a good one.
    """
    target = cache_dir / CANONICAL_ARCHIVE
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=CANONICAL_ARCHIVE, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="downloading CIFAR-10", disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5}); nothing was kept")
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise DataError(
            f"could not download CIFAR-10 from {url} ({error}). Offline? Point --data or the "
            f"CIFAR10_DATA environment variable at a local {CANONICAL_ARCHIVE} or image tree."
        ) from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


# --------------------------------------------------------------------------- entry point

_LOADERS = {
    "canonical-archive": lambda path, progress: _load_canonical_archive(path),
    "canonical-folder": lambda path, progress: _load_canonical_folder(path),
    "tree-archive": _load_tree_archive,
    "tree-folder": _load_tree_folder,
}


def _write_cache(cache_file: Path, splits: dict[str, tuple]) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cache_file.parent, prefix=cache_file.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, x_train=splits["train"][0], y_train=splits["train"][1], x_test=splits["test"][0], y_test=splits["test"][1])
        os.replace(partial, cache_file)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _read_cache(cache_file: Path) -> dict[str, tuple] | None:
    try:
        with np.load(cache_file) as cached:
            return {"train": (cached["x_train"], cached["y_train"]), "test": (cached["x_test"], cached["y_test"])}
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged cache: decode again


def load_cifar10(
    data: str | os.PathLike | None,
    cache_dir: str | os.PathLike,
    download_url: str = CANONICAL_URL,
    progress: bool = False,
    use_cache: bool = True,
) -> Cifar10:
    """Load CIFAR-10 from ``data`` (see the module docstring), using ``cache_dir``."""
    cache_dir = Path(cache_dir).expanduser()
    path = Path(data).expanduser() if data else download_canonical(cache_dir, download_url, progress=progress)
    source_format = _detect_format(path)
    cache_file = cache_dir / f"decoded-{_source_identity(path, source_format)}.npz"
    splits = _read_cache(cache_file) if use_cache else None
    from_cache = splits is not None
    if splits is None:
        splits = _LOADERS[source_format](path, progress)
        if use_cache:
            _write_cache(cache_file, splits)
    return Cifar10(
        x_train=splits["train"][0],
        y_train=splits["train"][1],
        x_test=splits["test"][0],
        y_test=splits["test"][1],
        source=str(path),
        source_format=source_format,
        from_cache=from_cache,
    )


def subset(images: np.ndarray, labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of ``size`` examples (all of them when ``size`` is 0 or too big)."""
    if size <= 0 or size >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:size])
    return images[keep], labels[keep]


def timed_load(*args, **kwargs) -> tuple[Cifar10, float]:
    """:func:`load_cifar10` and the seconds it took."""
    start = time.perf_counter()
    dataset = load_cifar10(*args, **kwargs)
    return dataset, time.perf_counter() - start
