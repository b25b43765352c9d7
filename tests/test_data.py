"""Every data format, the cache, the download, and every kind of bad data."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import shutil
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer import data as data_module
from trainer.data import DataError, download_canonical, load_cifar10, subset

FORMATS = ("tree_dir", "tree_tar", "canonical_dir", "canonical_tar")
EXPECTED_FORMAT = {
    "tree_dir": "tree-folder",
    "tree_tar": "tree-archive",
    "canonical_dir": "canonical-folder",
    "canonical_tar": "canonical-archive",
}


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_yields_the_same_real_images(kind, small_sets, real_sample, tmp_path):
    loaded = load_cifar10(getattr(small_sets, kind), tmp_path / "cache")
    x_train, y_train = real_sample.arrays("train", small_sets.per_class["train"])
    x_test, y_test = real_sample.arrays("test", small_sets.per_class["test"])
    assert loaded.source_format == EXPECTED_FORMAT[kind]
    assert loaded.x_train.shape == (200, 32, 32, 3) and loaded.x_train.dtype == np.uint8
    # Tree loaders read files in name order within each class: compare as sorted multisets per class.
    for got_x, got_y, want_x, want_y in ((loaded.x_train, loaded.y_train, x_train, y_train), (loaded.x_test, loaded.y_test, x_test, y_test)):
        assert np.bincount(got_y, minlength=10).tolist() == np.bincount(want_y, minlength=10).tolist()
        for label in range(10):
            got = sorted(img.tobytes() for img in got_x[got_y == label])
            want = sorted(img.tobytes() for img in want_x[want_y == label])
            assert got == want, f"class {label} differs"
    assert loaded.x_train.flags.c_contiguous


def test_extracted_parent_of_canonical_folder_is_accepted(small_sets, tmp_path):
    loaded = load_cifar10(small_sets.canonical_dir.parent, tmp_path / "cache")
    assert loaded.source_format == "canonical-folder" and len(loaded.x_test) == 100


def test_second_load_comes_from_cache_fast_and_identical(small_sets, tmp_path):
    cache = tmp_path / "cache"
    first = load_cifar10(small_sets.tree_tar, cache)
    started = time.perf_counter()
    second = load_cifar10(small_sets.tree_tar, cache)
    elapsed = time.perf_counter() - started
    assert not first.from_cache and second.from_cache
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.y_test, second.y_test)
    assert elapsed < 1.0
    assert len(list(cache.glob("decoded-*.npz"))) == 1
    assert not list(cache.glob("*.part"))


def test_cache_is_invalidated_when_the_source_changes(small_sets, tmp_path):
    tree = shutil.copytree(small_sets.tree_dir, tmp_path / "tree")
    cache = tmp_path / "cache"
    load_cifar10(tree, cache)
    victim = next((tree / "test" / "cat").iterdir())
    replacement = next((tree / "test" / "dog").iterdir()).read_bytes()
    victim.write_bytes(replacement)
    os.utime(victim, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    again = load_cifar10(tree, cache)
    assert not again.from_cache
    assert len(list(cache.glob("decoded-*.npz"))) == 2


def test_damaged_cache_is_rebuilt(small_sets, tmp_path):
    cache = tmp_path / "cache"
    load_cifar10(small_sets.tree_dir, cache)
    cache_file = next(cache.glob("decoded-*.npz"))
    cache_file.write_bytes(b"not an npz")
    again = load_cifar10(small_sets.tree_dir, cache)
    assert not again.from_cache and len(again.x_train) == 200


def test_subset_is_seeded_and_sized(small_sets, tmp_path):
    loaded = load_cifar10(small_sets.tree_dir, tmp_path / "cache")
    a = subset(loaded.x_train, loaded.y_train, 50, seed=1)
    b = subset(loaded.x_train, loaded.y_train, 50, seed=1)
    c = subset(loaded.x_train, loaded.y_train, 50, seed=2)
    assert len(a[0]) == 50 and np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    assert subset(loaded.x_train, loaded.y_train, 0, seed=1)[0] is loaded.x_train


# --------------------------------------------------------------------------- download


class _ArchiveServer:
    """Serves one file on loopback, or fails, to stand in for the canonical URL."""

    def __init__(self, payload: bytes):
        payload_ref = payload

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload_ref)))
                self.end_headers()
                self.wfile.write(payload_ref)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_verifies_checksum_then_loads(small_sets, tmp_path):
    payload = small_sets.canonical_tar.read_bytes()
    server = _ArchiveServer(payload)
    try:
        path = download_canonical(tmp_path / "cache", server.url, md5=hashlib.md5(payload).hexdigest())
        assert path.read_bytes() == payload and path.name == "cifar-10-python.tar.gz"
        # Already there: no second download (the server is gone).
        server.close()
        assert download_canonical(tmp_path / "cache", server.url, md5="0" * 32) == path
    finally:
        server.close()
    assert load_cifar10(path, tmp_path / "cache").source_format == "canonical-archive"


def test_download_with_wrong_checksum_keeps_nothing(small_sets, tmp_path):
    server = _ArchiveServer(small_sets.canonical_tar.read_bytes())
    try:
        with pytest.raises(DataError, match="checksum mismatch.*c58f30108f718f92721af3b95e74349a"):
            load_cifar10(None, tmp_path / "cache", download_url=server.url)
    finally:
        server.close()
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_download_says_which_variable_to_set(tmp_path):
    closed_port_url = "http://127.0.0.1:9/cifar-10-python.tar.gz"
    with pytest.raises(DataError, match="CIFAR10_DATA") as error:
        load_cifar10(None, tmp_path / "cache", download_url=closed_port_url)
    assert closed_port_url in str(error.value)
    assert not list((tmp_path / "cache").glob("*"))


# --------------------------------------------------------------------------- bad data


def _jpeg(size=(32, 32), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, format="JPEG" if mode in ("RGB", "L") else "PNG")
    return buffer.getvalue()


def _broken_tree(small_sets, tmp_path, damage) -> Path:
    tree = shutil.copytree(small_sets.tree_dir, tmp_path / "tree")
    damage(tree)
    return tree


def _first_file(tree: Path, split="train", label="cat") -> Path:
    return sorted((tree / split / label).iterdir())[0]


BAD_TREES = {
    "missing split": (lambda t: shutil.rmtree(t / "test"), r"split 'test/' is missing"),
    "missing class": (lambda t: shutil.rmtree(t / "test" / "cat"), r"'test/cat/' is missing"),
    "empty class": (lambda t: [p.unlink() for p in (t / "train" / "dog").iterdir()], r"'train/dog/' is missing or empty"),
    "empty split": (lambda t: [p.unlink() for p in (t / "train").rglob("*.jpg")], r"split 'train/' is missing or holds no images"),
    "unknown class": (lambda t: shutil.copytree(t / "train" / "cat", t / "train" / "kitten"), r"train/kitten/.*unknown class folder 'kitten'"),
    "wrong size": (lambda t: _first_file(t).write_bytes(_jpeg((64, 64))), r"train/cat/0000\.jpg: image is 64x64 RGB, expected 32x32 RGB"),
    "greyscale": (lambda t: _first_file(t).write_bytes(_jpeg(mode="L")), r"train/cat/0000\.jpg: image is 32x32 L, expected 32x32 RGB"),
    "rgba png": (lambda t: (t / "train" / "cat" / "9999.png").write_bytes(_jpeg(mode="RGBA")), r"train/cat/9999\.png: image is 32x32 RGBA"),
    "corrupt": (lambda t: _first_file(t).write_bytes(b"\x00garbage" * 40), r"train/cat/0000\.jpg: corrupt or unreadable image"),
    "truncated": (lambda t: _first_file(t, "test").write_bytes(_first_file(t, "test").read_bytes()[:100]), r"test/cat/0000\.jpg: corrupt or unreadable image"),
}


@pytest.mark.parametrize("case", sorted(BAD_TREES))
def test_bad_image_trees_are_refused_naming_the_file(case, small_sets, tmp_path):
    damage, message = BAD_TREES[case]
    tree = _broken_tree(small_sets, tmp_path, damage)
    with pytest.raises(DataError, match=message):
        load_cifar10(tree, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("decoded-*")), "nothing may be cached from bad data"


def test_bad_image_inside_an_archive_names_the_member(small_sets, tmp_path):
    tree = _broken_tree(small_sets, tmp_path, lambda t: _first_file(t).write_bytes(_jpeg((31, 32))))
    archive = tarfile.open(tmp_path / "bad.tar.gz", "w:gz")
    archive.add(tree, arcname="cifar10-jpg")
    archive.close()
    with pytest.raises(DataError, match=r"bad\.tar\.gz:cifar10-jpg/train/cat/0000\.jpg: image is 31x32 RGB"):
        load_cifar10(tmp_path / "bad.tar.gz", tmp_path / "cache")


def _broken_canonical(small_sets, tmp_path, damage) -> Path:
    folder = shutil.copytree(small_sets.canonical_dir, tmp_path / "cifar-10-batches-py")
    damage(folder)
    return folder


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mlmc-pwned",))


BAD_CANONICAL = {
    "missing batch": (lambda f: (f / "data_batch_3").unlink(), r"data_batch_3: missing"),
    "corrupt batch": (lambda f: (f / "test_batch").write_bytes(b"\x80\x02garbage"), r"test_batch: corrupt CIFAR-10 batch"),
    "not a batch": (lambda f: (f / "data_batch_1").write_bytes(pickle.dumps({b"x": 1})), r"data_batch_1: not a CIFAR-10 batch"),
    "wrong shape": (
        lambda f: (f / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4})),
        r"data_batch_2: 'data' is uint8\[4, 100\], expected uint8\[N, 3072\]",
    ),
    "label count": (
        lambda f: (f / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3})),
        r"data_batch_2: 4 images but 3 labels",
    ),
    "empty batch": (
        lambda f: (f / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": []})),
        r"test_batch: empty batch",
    ),
    "bad label": (
        lambda f: (f / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})),
        r"test_batch: labels outside 0..9",
    ),
    "code in pickle": (lambda f: (f / "test_batch").write_bytes(pickle.dumps(_Exploit())), r"test_batch: corrupt CIFAR-10 batch \(refusing to load posix.system"),
}


@pytest.mark.parametrize("case", sorted(BAD_CANONICAL))
def test_bad_canonical_batches_are_refused_naming_the_file(case, small_sets, tmp_path):
    damage, message = BAD_CANONICAL[case]
    folder = _broken_canonical(small_sets, tmp_path, damage)
    with pytest.raises(DataError, match=message):
        load_cifar10(folder, tmp_path / "cache")
    assert not Path("/tmp/mlmc-pwned").exists()


def test_canonical_archive_missing_a_batch_names_it(small_sets, tmp_path):
    folder = _broken_canonical(small_sets, tmp_path, lambda f: (f / "test_batch").unlink())
    archive = tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz")
    archive.add(folder, arcname="cifar-10-batches-py")
    archive.close()
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz:cifar-10-batches-py/test_batch: missing"):
        load_cifar10(tmp_path / "cifar-10-python.tar.gz", tmp_path / "cache")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"no such file or folder"),
        (b"plain text", r"not a folder or a \.tar\.gz"),
        (b"\x1f\x8b\x08garbage", r"corrupt or unreadable archive"),
    ],
)
def test_unusable_paths_are_refused(content, message, tmp_path):
    path = tmp_path / ("data.tar.gz" if content and content.startswith(b"\x1f") else "data.txt")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_cifar10(path, tmp_path / "cache")



@pytest.mark.parametrize("labels", [[b"a"] * 4, [None] * 4, [10**30] * 4, [0.5] * 4, [[1], [2, 3], [], [4]]], ids=["bytes", "none", "huge", "float", "ragged"])
def test_canonical_batch_with_bad_labels_is_a_data_error(labels):
    import pickle

    from trainer.data import DataError, _read_batch

    raw = pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": labels}, protocol=2)
    with pytest.raises(DataError, match="data_batch_1"):
        _read_batch(raw, "archive:data_batch_1")
