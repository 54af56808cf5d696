"""Dataset variants (clean, label poisoning, input scaling) saved as files plus a manifest.

`make_variant` writes::

    out_dir/train.pt       {"x": uint8 (N,C,H,W), "y": int64 (N,), "poisoned_indices": int64 (k,)
                            [, "y_clean": int64 (N,) for label_poison]}
    out_dir/test.pt        {"x": uint8, "y": int64}      (never poisoned)
    out_dir/manifest.json  dataset, variant, kind, params, seed, scale, per-split counts,
                           class counts, poisoned count, sha256 of each .pt and label tensor

Images stay uint8 (0..255); `load_variant` returns ``x.float() / 255 * scale`` so the data
range is [0, scale] (scale is 1.0 except for the "input_scale" kind).

Spec kinds::

    {"kind": "clean"}
    {"kind": "label_poison", "fraction": 0.1}   # fraction in [0, 1) of TRAINING labels
    {"kind": "input_scale", "scale": 2.0}        # s > 0
    optional for every kind: "name": str, "subset": {"train": n, "test": m} (first n / m)
"""

from __future__ import annotations

import json
import math
import numbers
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from curvrobust import __version__
from curvrobust.data.sources import SPLITS, get_spec, load_raw_split
from curvrobust.seeds import derive_seed
from curvrobust.utils import (ResultFileError, atomic_path, check_result_file, rebuild_hint,
                              sha256_file, sha256_tensor, unreadable, write_json_atomic)

__all__ = [
    "KINDS",
    "validate_variant_spec",
    "poison_labels",
    "make_variant",
    "load_variant",
    "load_variant_manifest",
]

_COMMON_KEYS = {"kind", "name", "subset"}
KINDS: dict[str, set[str]] = {
    "clean": set(),
    "label_poison": {"fraction"},
    "input_scale": {"scale"},
}
MANIFEST = "manifest.json"


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def validate_variant_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a variant spec; return a normalised copy with "name" filled in.

    Args:
        spec: a variant spec (see the module docstring), e.g.
            ``{"kind": "label_poison", "fraction": 0.1}``.

    Returns:
        A new dict: ``fraction`` / ``scale`` as floats, ``subset`` counts as ints, and
        ``name`` (default: ``"clean"``, ``"label_poison_<fraction>"``,
        ``"input_scale_<scale>"``).

    Raises:
        ValueError: naming the offending key (unknown kind, unknown keys, `fraction` outside
            [0, 1), non-positive `scale`, malformed `subset`).
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"variant spec must be a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"variant spec 'kind' must be one of {sorted(KINDS)}, got {kind!r}")
    allowed = _COMMON_KEYS | KINDS[kind]
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ValueError(
            f"unknown key(s) {extra} in {kind!r} variant spec; allowed: {sorted(allowed)}"
        )
    out = dict(spec)
    default_name = _check_kind_params(kind, spec, out)
    if "subset" in spec and spec["subset"] is not None:
        out["subset"] = _check_subset(spec["subset"])
    name = out.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ValueError(f"variant spec 'name' must be a non-empty string, got {name!r}")
    out["name"] = name
    return out


def _check_kind_params(kind: str, spec: Mapping[str, Any], out: dict[str, Any]) -> str:
    """Check the kind's own parameter (``fraction``, ``scale``) into ``out`` as a float;
    returns the variant's default name, which shows it."""
    if kind == "label_poison":
        if "fraction" not in spec:
            raise ValueError("label_poison variant spec needs 'fraction' in [0, 1)")
        f = spec["fraction"]
        if not _is_real(f) or not (0.0 <= float(f) < 1.0):
            raise ValueError(f"variant spec 'fraction' must be a number in [0, 1), got {f!r}")
        out["fraction"] = float(f)
        return f"label_poison_{float(f):g}"
    if kind == "input_scale":
        if "scale" not in spec:
            raise ValueError("input_scale variant spec needs 'scale' > 0")
        s = spec["scale"]
        if not _is_real(s) or not math.isfinite(float(s)) or float(s) <= 0:
            raise ValueError(f"variant spec 'scale' must be a finite number > 0, got {s!r}")
        out["scale"] = float(s)
        return f"input_scale_{float(s):g}"
    return "clean"


def _check_subset(sub: Any) -> dict[str, int]:
    """A spec's ``subset`` (split -> positive count of first examples kept), checked."""
    if not isinstance(sub, Mapping) or set(sub) - set(SPLITS):
        raise ValueError(
            f"variant spec 'subset' must map 'train'/'test' to counts, got {sub!r}"
        )
    for k, n in sub.items():
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"variant spec 'subset.{k}' must be a positive int, got {n!r}")
    return {k: int(v) for k, v in sub.items()}


def poison_labels(
    y: torch.Tensor, fraction: float, num_classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace round(fraction * N) labels by uniformly random WRONG labels.

    Indices are drawn without replacement (randperm); each new label is
    (y + offset) mod C with offset uniform in 1..C-1.

    Args:
        y: (N,) integer labels in [0, num_classes).
        fraction: share of labels to change, in [0, 1).
        num_classes: C >= 2.
        generator: CPU ``torch.Generator`` the indices and offsets are drawn from (it
            advances).

    Returns:
        ``(new_y, idx)``: (N,) int64 labels (a copy of ``y`` with the poisoned entries
        replaced) and the (k,) int64 sorted indices that were changed, k = round(fraction·N).
    """
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    if num_classes < 2:
        raise ValueError(f"label poisoning needs num_classes >= 2, got {num_classes}")
    y = y.to(torch.int64)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]"
        )
    n = y.numel()
    k = int(round(fraction * n))
    idx = torch.randperm(n, generator=generator)[:k].sort().values
    offsets = torch.randint(1, num_classes, (k,), generator=generator, dtype=torch.int64)
    new = y.clone()
    new[idx] = (y[idx] + offsets) % num_classes
    return new, idx


def save_reproducible(obj: Any, path: str | os.PathLike) -> None:
    """torch.save atomically with byte-identical output for identical objects.

    torch.save(obj, <path>) names the zip archive after the file, so saving to a random temp
    name (as utils.torch_save_atomic does) changes the bytes; a file handle gives the fixed
    archive name "archive"."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def _class_counts(y: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(y, minlength=num_classes).tolist()


def make_variant(
    raw_root: str | os.PathLike,
    dataset: str,
    variant_spec: Mapping[str, Any],
    out_dir: str | os.PathLike,
    seed: int,
) -> dict[str, Any]:
    """Build one variant of `dataset` (raw files under `raw_root`) into `out_dir`.

    Writes train.pt, test.pt, then manifest.json (last, so its presence marks a complete
    variant); returns the manifest.

    Args:
        raw_root: folder :func:`curvrobust.data.sources.fetch_dataset` filled.
        dataset: a registered dataset name (``"mnist"``, ``"cifar10"``, ...).
        variant_spec: the variant (see :func:`validate_variant_spec`).
        out_dir: folder to write to (created if needed).
        seed: run seed; the variant's randomness (label poisoning) comes from a generator
            seeded with ``derive_seed(seed, "variant:<kind>")``.

    Returns:
        The manifest dict also written to ``out_dir/manifest.json`` (dataset, variant, kind,
        params, seed, scale, per-split counts and sha256 digests, raw source, version).
    """
    vs = validate_variant_spec(variant_spec)
    dspec = get_spec(dataset)
    out_dir = Path(out_dir)
    C = dspec.num_classes
    gen_seed = derive_seed(int(seed), f"variant:{vs['kind']}")
    payloads = _load_splits(raw_root, dataset, vs.get("subset") or {})
    _poison(payloads["train"], vs, gen_seed, C)
    scale = vs.get("scale", 1.0) if vs["kind"] == "input_scale" else 1.0
    out_dir.mkdir(parents=True, exist_ok=True)
    splits_info = _save_splits(out_dir, payloads, C)
    params = {k: v for k, v in vs.items() if k not in ("kind", "name")}
    manifest = {
        "dataset": dataset,
        "variant": vs["name"],
        "kind": vs["kind"],
        "params": params,
        "seed": int(seed),
        "generator_seed": gen_seed,
        "scale": float(scale),
        "num_classes": C,
        "n_poisoned": splits_info["train"]["n_poisoned"],
        "splits": splits_info,
        "raw_source": _raw_provenance(Path(raw_root)),
        "curvrobust_version": __version__,
    }
    write_json_atomic(out_dir / MANIFEST, manifest)
    return manifest


def _load_splits(raw_root: str | os.PathLike, dataset: str,
                 subset: Mapping[str, int]) -> dict[str, dict[str, torch.Tensor]]:
    """Each split's images and labels (its first ``subset[split]`` examples where given), as
    contiguous tensors to save."""
    payloads: dict[str, dict[str, torch.Tensor]] = {}
    for split in SPLITS:
        x, y = load_raw_split(raw_root, dataset, split)
        if split in subset:
            n = subset[split]
            if n > len(y):
                raise ValueError(
                    f"variant spec 'subset.{split}' = {n} exceeds the {len(y)} {split} examples"
                )
            # clone: a view would make torch.save write the whole underlying storage
            x, y = x[:n].clone(), y[:n].clone()
        payloads[split] = {"x": x.contiguous(), "y": y.contiguous()}
    return payloads


def _poison(train: dict[str, torch.Tensor], vs: Mapping[str, Any], gen_seed: int,
            num_classes: int) -> None:
    """Poison the training labels in place for a label_poison variant (the clean ones kept in
    ``y_clean``); ``poisoned_indices`` lists what changed (empty for other kinds)."""
    train["poisoned_indices"] = torch.zeros(0, dtype=torch.int64)
    if vs["kind"] == "label_poison":
        g = torch.Generator().manual_seed(gen_seed)
        new_y, idx = poison_labels(train["y"], vs["fraction"], num_classes, g)
        train["y_clean"] = train["y"]
        train["y"] = new_y
        train["poisoned_indices"] = idx


def _save_splits(out_dir: Path, payloads: dict[str, dict[str, torch.Tensor]],
                 num_classes: int) -> dict[str, Any]:
    """Write train.pt and test.pt reproducibly; their manifest entries (counts, digests)."""
    splits_info: dict[str, Any] = {}
    for split in SPLITS:
        p = payloads[split]
        path = out_dir / f"{split}.pt"
        save_reproducible(p, path)
        info = {
            "file": path.name,
            "n": len(p["y"]),
            "x_shape": list(p["x"].shape),
            "x_dtype": str(p["x"].dtype).replace("torch.", ""),
            "class_counts": _class_counts(p["y"], num_classes),
            "sha256": sha256_file(path),
            "labels_sha256": sha256_tensor(p["y"]),
        }
        if split == "train":
            info["n_poisoned"] = len(p["poisoned_indices"])
        splits_info[split] = info
    return splits_info


def _raw_provenance(raw_root: Path) -> dict[str, Any] | None:
    """Source and MD5s recorded by fetch_dataset in raw_root/manifest.json, if present."""
    p = raw_root / "manifest.json"
    if not p.is_file():
        return None
    try:
        man = json.loads(p.read_text())
    except ValueError:
        return None
    return {
        "source": man.get("source"),
        "md5": {f: v.get("md5") for f, v in (man.get("files") or {}).items()},
    }


def load_variant_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``manifest.json`` of a variant folder written by :func:`make_variant`, as a dict.

    Raises:
        FileNotFoundError: ``out_dir`` holds no manifest (the variant is missing or
            incomplete).
    """
    p = Path(out_dir) / MANIFEST
    if not p.is_file():
        raise FileNotFoundError(f"no variant manifest at {p}; run make_variant first")
    text = check_result_file(p, "variant manifest").read_text()
    try:
        return json.loads(text)
    except ValueError as e:
        raise unreadable(p, "variant manifest", e) from e


def _read_split(out_dir: Path, info: dict[str, Any],
                verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's stored (x, y) as saved, its file checked against the manifest's entry
    ``info`` (present, and with ``verify`` the sha256 make_variant recorded)."""
    path = out_dir / info["file"]
    if not path.is_file():
        raise ResultFileError(f"{path}: no such variant split (its manifest lists it); "
                              f"{rebuild_hint(path)}")
    if verify:  # the manifest's digest, written with the file, is the reference
        got = sha256_file(path)
        if got != info["sha256"]:
            raise ResultFileError(f"{path}: sha256 {got} does not match manifest "
                                  f"{info['sha256']}: the file was corrupted or replaced "
                                  f"since make_variant wrote it; {rebuild_hint(path)}")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise unreadable(path, "variant split", e) from e
    return d["x"], d["y"]


def load_variant(
    out_dir: str | os.PathLike, split: str, verify: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x float32 (N,C,H,W) in [0, scale], y int64) of one split of a saved variant.

    Args:
        out_dir: the variant folder written by :func:`make_variant`.
        split: ``"train"`` or ``"test"``.
        verify: check the ``.pt`` file's sha256 against the manifest first.

    Returns:
        ``(x, y)``: x float32 (N, C, H, W) = pixels / 255 · scale, in [0, scale] (scale is 1
        except for ``input_scale`` variants); y int64 (N,) labels (poisoned ones included
        for a ``label_poison`` train split).

    Raises:
        ValueError: unknown ``split``; a :class:`~curvrobust.utils.ResultFileError` (a
            ValueError) naming the file and the rebuild command when it is missing,
            unreadable, or (with ``verify``) not the file the manifest's sha256 describes.
        FileNotFoundError: no manifest in ``out_dir``.

    Examples:
        After a run, ``load_variant("results/data/mnist/clean", "test")`` is MNIST's test set.
        Here a variant built from tiny stand-ins of MNIST's raw files (4 black test images):

        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> from curvrobust.data.sources import raw_dir
        >>> from curvrobust.data.variants import load_variant, make_variant
        >>> tmp = tempfile.TemporaryDirectory()
        >>> raw = raw_dir(Path(tmp.name) / "raw", "mnist")
        >>> raw.mkdir(parents=True)
        >>> for split, n in (("train", 6), ("t10k", 4)):      # the idx format: header, bytes
        ...     _ = (raw / f"{split}-images-idx3-ubyte").write_bytes(
        ...         struct.pack(">IIII", 2051, n, 28, 28) + bytes(28 * 28 * n))
        ...     _ = (raw / f"{split}-labels-idx1-ubyte").write_bytes(
        ...         struct.pack(">II", 2049, n) + bytes(range(n)))
        >>> _ = make_variant(Path(tmp.name) / "raw", "mnist", {"kind": "clean"},
        ...                  Path(tmp.name) / "clean", seed=0)
        >>> x, y = load_variant(Path(tmp.name) / "clean", "test")
        >>> tuple(x.shape), x.dtype, float(x.max()), y.tolist()
        ((4, 1, 28, 28), torch.float32, 0.0, [0, 1, 2, 3])
        >>> tmp.cleanup()
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    man = load_variant_manifest(out_dir)
    x, y = _read_split(Path(out_dir), man["splits"][split], verify)
    scale = float(man.get("scale", 1.0))
    if x.dtype == torch.uint8:
        x = x.to(torch.float32).div_(255.0)
    else:
        x = x.to(torch.float32)
    if scale != 1.0:
        x.mul_(scale)
    return x, y.to(torch.int64)
