"""Tests for curvrobust.data.variants: clean / label_poison / input_scale variants on fake MNIST."""

from __future__ import annotations

import json

import pytest
import torch

from curvrobust.data.sources import load_split
from curvrobust.utils import sha256_file
from curvrobust.data.variants import (load_variant, load_variant_manifest, make_variant,
    poison_labels, validate_variant_spec)

POISON = {"kind": "label_poison", "fraction": 0.1}


def _load(out, split):
    return torch.load(out / f"{split}.pt", weights_only=True)


def test_clean_variant_roundtrip(fake_mnist_root, tmp_path):
    out = tmp_path / "clean"
    man = make_variant(fake_mnist_root, "mnist", {"kind": "clean"}, out, seed=0)
    assert man["variant"] == "clean" and man["kind"] == "clean" and man["scale"] == 1.0
    assert man["n_poisoned"] == 0
    for split, n in (("train", 200), ("test", 50)):
        x, y = load_variant(out, split)
        rx, ry = load_split(fake_mnist_root, "mnist", split)
        assert x.dtype == torch.float32 and x.shape == (n, 1, 28, 28)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert torch.equal(x, rx) and torch.equal(y, ry) and y.dtype == torch.int64
        d = _load(out, split)
        assert d["x"].dtype == torch.uint8
        info = man["splits"][split]
        assert info["n"] == n and sum(info["class_counts"]) == n
        assert info["class_counts"] == torch.bincount(ry, minlength=10).tolist()
        assert info["sha256"] == sha256_file(out / f"{split}.pt")
    assert load_variant_manifest(out) == json.loads((out / "manifest.json").read_text())


def test_label_poison_properties(fake_mnist_root, tmp_path):
    out = tmp_path / "p"
    man = make_variant(fake_mnist_root, "mnist", POISON, out, seed=3)
    _, y_clean = load_split(fake_mnist_root, "mnist", "train")
    d = _load(out, "train")
    idx = d["poisoned_indices"]
    n = len(y_clean)
    assert len(idx) == round(0.1 * n) == man["n_poisoned"] == man["splits"]["train"]["n_poisoned"]
    assert torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == len(idx)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    assert (d["y"][mask] != y_clean[mask]).all()
    assert torch.equal(d["y"][~mask], y_clean[~mask])
    assert torch.equal(d["y_clean"], y_clean)
    assert man["splits"]["train"]["class_counts"] == torch.bincount(d["y"], minlength=10).tolist()
    # test split identical to the clean one
    clean = tmp_path / "c"
    cman = make_variant(fake_mnist_root, "mnist", {"kind": "clean"}, clean, seed=3)
    assert man["splits"]["test"]["sha256"] == cman["splits"]["test"]["sha256"]
    assert sha256_file(out / "test.pt") == sha256_file(clean / "test.pt")
    assert man["params"] == {"fraction": 0.1} and man["seed"] == 3


def test_same_seed_same_files_different_seed_different(fake_mnist_root, tmp_path):
    a = make_variant(fake_mnist_root, "mnist", POISON, tmp_path / "a", seed=7)
    b = make_variant(fake_mnist_root, "mnist", POISON, tmp_path / "b", seed=7)
    c = make_variant(fake_mnist_root, "mnist", POISON, tmp_path / "c", seed=8)
    for split in ("train", "test"):
        assert sha256_file(tmp_path / "a" / f"{split}.pt") == sha256_file(
            tmp_path / "b" / f"{split}.pt"
        )
    assert a["splits"] == b["splits"]
    ia, ic = (
        _load(tmp_path / "a", "train")["poisoned_indices"],
        _load(tmp_path / "c", "train")["poisoned_indices"],
    )
    assert not torch.equal(ia, ic)
    assert a["splits"]["train"]["sha256"] != c["splits"]["train"]["sha256"]


def test_wrong_labels_uniform_over_wrong_classes():
    """Offsets (new - old) mod 10 should be uniform on 1..9: chi-square, df=8."""
    C, n = 10, 30000
    y = torch.arange(n) % C
    g = torch.Generator().manual_seed(0)
    new, idx = poison_labels(y, 0.6, C, g)
    assert len(idx) == 18000
    off = (new[idx] - y[idx]) % C
    assert (off != 0).all()
    counts = torch.bincount(off, minlength=C)[1:].double()
    expected = len(idx) / (C - 1)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 26.12  # 0.1% critical value for 8 degrees of freedom
    # per original class, every wrong class occurs
    for c in range(C):
        sel = y[idx] == c
        assert set(new[idx][sel].tolist()) == set(range(C)) - {c}


def test_poison_count_rounding_and_zero():
    y = torch.arange(7) % 3
    g = torch.Generator().manual_seed(0)
    assert len(poison_labels(y, 0.0, 3, g)[1]) == 0
    assert len(poison_labels(y, 0.5, 3, g)[1]) == round(3.5)
    new, idx = poison_labels(y, 0.99, 3, g)
    assert len(idx) == 7 and (new != y).all()


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.1", None, True])
def test_fraction_out_of_range_names_key(bad, tmp_path, fake_mnist_root):
    with pytest.raises(ValueError, match="fraction"):
        make_variant(
            fake_mnist_root,
            "mnist",
            {"kind": "label_poison", "fraction": bad},
            tmp_path / "x",
            seed=0,
        )
    assert not (tmp_path / "x" / "manifest.json").exists()


def test_spec_validation():
    with pytest.raises(ValueError, match="fraction"):
        validate_variant_spec({"kind": "label_poison"})
    with pytest.raises(ValueError, match="kind"):
        validate_variant_spec({"kind": "gaussian_noise"})
    with pytest.raises(ValueError, match="fracton"):
        validate_variant_spec({"kind": "label_poison", "fracton": 0.1})
    with pytest.raises(ValueError, match="scale"):
        validate_variant_spec({"kind": "input_scale", "scale": 0})
    with pytest.raises(ValueError, match="subset"):
        validate_variant_spec({"kind": "clean", "subset": {"val": 3}})
    with pytest.raises(ValueError, match="subset.train"):
        validate_variant_spec({"kind": "clean", "subset": {"train": 0}})
    assert validate_variant_spec(POISON)["name"] == "label_poison_0.1"
    assert validate_variant_spec({"kind": "clean", "name": "c0"})["name"] == "c0"


def test_subset_first_n(fake_mnist_root, tmp_path):
    spec = {"kind": "label_poison", "fraction": 0.25, "subset": {"train": 40, "test": 8}}
    out = tmp_path / "s"
    man = make_variant(fake_mnist_root, "mnist", spec, out, seed=1)
    assert man["splits"]["train"]["n"] == 40 and man["splits"]["test"]["n"] == 8
    assert man["n_poisoned"] == 10
    rx, ry = load_split(fake_mnist_root, "mnist", "test")
    x, y = load_variant(out, "test")
    assert torch.equal(x, rx[:8]) and torch.equal(y, ry[:8])
    # file holds only the subset, not the whole underlying storage
    assert (out / "train.pt").stat().st_size < 40 * 784 + 20000
    with pytest.raises(ValueError, match="subset.train"):
        make_variant(
            fake_mnist_root,
            "mnist",
            {"kind": "clean", "subset": {"train": 10**6}},
            tmp_path / "t",
            seed=0,
        )


def test_input_scale(fake_mnist_root, tmp_path):
    out = tmp_path / "sc"
    man = make_variant(fake_mnist_root, "mnist", {"kind": "input_scale", "scale": 2.5}, out, seed=0)
    assert man["scale"] == 2.5 and man["variant"] == "input_scale_2.5"
    x, y = load_variant(out, "train")
    rx, ry = load_split(fake_mnist_root, "mnist", "train")
    assert torch.allclose(x, rx * 2.5) and torch.equal(y, ry)
    assert float(x.max()) <= 2.5 and float(x.max()) > 1.0
    assert _load(out, "train")["x"].dtype == torch.uint8


def test_load_variant_detects_tampering(fake_mnist_root, tmp_path):
    out = tmp_path / "v"
    make_variant(fake_mnist_root, "mnist", {"kind": "clean"}, out, seed=0)
    d = _load(out, "test")
    d["y"][0] = (d["y"][0] + 1) % 10
    torch.save(d, out / "test.pt")
    with pytest.raises(ValueError, match="sha256"):
        load_variant(out, "test")
    load_variant(out, "test", verify=False)
    with pytest.raises(FileNotFoundError, match="make_variant"):
        load_variant(tmp_path / "missing", "train")


# ---------------------------------------------------------------------------------------------
# 3-channel data: a fake CIFAR-10 (python version) registered under "cifar10"
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_cifar10_root(tmp_path, write_fake_cifar10, monkeypatch):
    """A raw_root with a fake CIFAR-10 (5 x 20 train, 20 test) in torchvision's layout, and the
    registry's "cifar10" spec pointed at the fake files' MD5s (make_variant takes no spec)."""
    from curvrobust.data import sources as data

    fake = write_fake_cifar10(tmp_path / "raw_cifar10", n_per_batch=20, n_test=20, seed=0)
    monkeypatch.setitem(
        data.DATASETS, "cifar10", data.with_md5(data.DATASETS["cifar10"], fake.md5)
    )
    return fake.root


def test_cifar10_clean_subset_variant(fake_cifar10_root, tmp_path):
    out = tmp_path / "clean"
    spec = {"kind": "clean", "subset": {"train": 30, "test": 10}}
    man = make_variant(fake_cifar10_root, "cifar10", spec, out, seed=0)
    assert man["dataset"] == "cifar10" and man["num_classes"] == 10
    assert man["splits"]["train"]["x_shape"] == [30, 3, 32, 32]
    assert man["splits"]["train"]["x_dtype"] == "uint8"
    for split, n in (("train", 30), ("test", 10)):
        x, y = load_variant(out, split)
        rx, ry = load_split(fake_cifar10_root, "cifar10", split)
        assert x.dtype == torch.float32 and x.shape == (n, 3, 32, 32)
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9  # not all-zero channels
        assert torch.equal(x, rx[:n]) and torch.equal(y, ry[:n]) and y.dtype == torch.int64
        assert _load(out, split)["x"].dtype == torch.uint8
        assert man["splits"][split]["class_counts"] == torch.bincount(y, minlength=10).tolist()
    # only the subset is stored
    assert (out / "train.pt").stat().st_size < 30 * 3072 + 20000


def test_cifar10_label_poison_variant(fake_cifar10_root, tmp_path):
    out = tmp_path / "p"
    man = make_variant(fake_cifar10_root, "cifar10", POISON, out, seed=2)
    rx, y_clean = load_split(fake_cifar10_root, "cifar10", "train")
    assert len(y_clean) == 100 and man["n_poisoned"] == 10
    x, y = load_variant(out, "train")
    assert x.shape == (100, 3, 32, 32) and torch.equal(x, rx)  # images untouched
    idx = _load(out, "train")["poisoned_indices"]
    mask = torch.zeros(100, dtype=torch.bool)
    mask[idx] = True
    assert (y[mask] != y_clean[mask]).all() and torch.equal(y[~mask], y_clean[~mask])
    xt, yt = load_variant(out, "test")  # test split never poisoned
    assert xt.shape == (20, 3, 32, 32)
    assert torch.equal(yt, load_split(fake_cifar10_root, "cifar10", "test")[1])
