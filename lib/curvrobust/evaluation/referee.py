"""An independent referee of the worst case: the official AutoAttack (Croce & Hein 2020).

The project's robust accuracy is a worst case over its own attacks, built on torchattacks
(:mod:`curvrobust.evaluation.masking`, :mod:`curvrobust.attacks.autoattack`). :func:`official_autoattack` runs the
authors' implementation instead (fra31/auto-attack, packaged on PyPI as ``pyautoattack``,
which shares no code with torchattacks), and :func:`compare_robust` counts the images the two
disagree on; ``benchmarks/autoattack_referee.py`` does this for the models of a finished run.

``pyautoattack`` is an optional extra (``pip install --no-deps pyautoattack==0.2.0``; it needs
only torch and numpy) and is imported only inside :func:`official_autoattack`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from curvrobust.attacks.autoattack import check_adversarial
from curvrobust.models.inference import eval_mode, model_device
from curvrobust.attacks.random_search import forked_rng

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["VERSIONS", "compare_robust", "official_autoattack"]

VERSIONS = ("standard", "plus", "rand")
"""The AutoAttack versions :func:`official_autoattack` runs (``standard``: APGD-CE, APGD-T with
9 targets, FAB-T with 9 targets, Square with 5000 queries)."""

class _Forward(logging.Handler):
    """Sends the ``auto-attack`` logger's records to a ``log`` callable."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__(logging.DEBUG)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        self._log(f"autoattack: {record.getMessage()}")


def official_autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                        seed: int = 0, batch_size: int = 500, version: str = "standard",
                        log: Callable[[str], None] | None = None) -> torch.Tensor:
    """Which images stay robust under the official L∞ AutoAttack (``pyautoattack`` 0.2.0).

    Runs ``AutoAttack(model, norm="Linf", eps=eps, version=version, seed=seed)``'s
    ``run_standard_evaluation``: each attack of the cascade runs only on the images still
    robust after the ones before it. An image is robust when it is classified correctly and no
    attack broke it — the package's own per-image verdict, which it returns as the predicted
    labels ``y_adv`` (the adversarial prediction where an attack succeeded, the clean one
    elsewhere), so robust = ``y_adv == y``.

    The package reseeds the global CPU and CUDA generators with ``seed`` inside every attack;
    the evaluation therefore runs in a forked RNG (:func:`curvrobust.attacks.random_search.forked_rng`): the
    result is a function of ``seed`` and the caller's random stream is left where it was. The
    model runs in eval mode (its modes are restored) on its own device.

    Args:
        model: classifier mapping (N, C, H, W) inputs in [0, 1] to (N, K) logits, K >= 10 for
            the 9 target classes of the standard version.
        x: (N, C, H, W) floating-point inputs in [0, 1] (the model's dtype), any device.
        y: (N,) long labels.
        eps: the L∞ radius ε > 0.
        seed: the attacks' seed.
        batch_size: images per attack batch.
        version: ``"standard"``, ``"plus"`` or ``"rand"`` (:data:`VERSIONS`).
        log: called with the package's progress lines (robust accuracy after each attack), or
            None for silence.

    Returns:
        (N,) bool CPU tensor: robust under the official AutoAttack.

    Raises:
        ImportError: ``pyautoattack`` is not installed.
        ValueError: bad inputs (shapes, range, ε, version).
        RuntimeError: the package returned an adversarial image outside the ε-ball or [0, 1].
    """
    try:
        from pyautoattack import AutoAttack
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the official AutoAttack is not installed: "
                          "pip install --no-deps pyautoattack==0.2.0") from err
    x, y, eps = _check_referee_inputs(x, y, eps, version, batch_size)
    with _forwarded_log(log), eval_mode(model), forked_rng(seed):
        adversary = AutoAttack(model, norm="Linf", eps=eps, version=version,
                               seed=int(seed), device=model_device(model))
        x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=int(batch_size))
    check_adversarial("the official AutoAttack", x_adv.detach().cpu(), x, eps)
    return (y_adv.detach().cpu() == y).bool()


def _check_referee_inputs(x: torch.Tensor, y: torch.Tensor, eps: Any, version: str,
                          batch_size: Any) -> tuple[torch.Tensor, torch.Tensor, float]:
    """:func:`official_autoattack`'s arguments checked; the images and labels on the CPU (as
    the package takes them) and ε as a float."""
    eps = float(eps)
    if not (eps > 0.0 and np.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite radius, got eps={eps!r}")
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    n = len(x)
    if x.ndim != 4 or n == 0 or y.shape != (n,):
        raise ValueError(f"x must be a non-empty (N, C, H, W) batch with N labels y, got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    x = x.detach().cpu()
    y = y.detach().long().cpu()
    if x.min().item() < 0.0 or x.max().item() > 1.0:
        raise ValueError(f"x must lie in [0, 1], got [{x.min().item():.6g}, "
                         f"{x.max().item():.6g}]")
    return x, y, eps


@contextlib.contextmanager
def _forwarded_log(log: Callable[[str], None] | None) -> Iterator[None]:
    """Forward the package's "auto-attack" logger to ``log`` for the duration (nothing with
    None); its handlers and level are restored afterwards."""
    logger = logging.getLogger("auto-attack")
    handler = _Forward(log) if log is not None else None
    level = logger.level
    if handler is not None:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)


def _flags(name: str, values: Any, n: int | None = None) -> np.ndarray:
    """A 1-D bool array of ``values`` (tensor, array, Series, list)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1 or (n is not None and len(arr) != n):
        raise ValueError(f"{name} must be 1-D" + (f" of length {n}" if n is not None else "")
                         + f", got shape {arr.shape}")
    return arr.astype(bool)


def compare_robust(project_robust: Sequence[bool] | torch.Tensor | np.ndarray | "pd.Series",
                   official_robust: Sequence[bool] | torch.Tensor | np.ndarray | "pd.Series",
                   index: Sequence[int] | torch.Tensor | np.ndarray | "pd.Series"
                   ) -> dict[str, Any]:
    """Where the project's worst case and the official AutoAttack disagree, image by image.

    Args:
        project_robust: (n,) robust under the project's worst case (e.g.
            :func:`curvrobust.evaluation.outcomes.worst_case_images`' ``robust`` column).
        official_robust: (n,) robust under :func:`official_autoattack`, same images and order.
        index: (n,) the images' test-set indices.

    Returns:
        ``n``; ``project_robust`` and ``official_robust``: how many images each calls robust;
        ``project_only``: how many the project calls robust but the official AutoAttack breaks
        (the project's worst case missed them), ``project_only_indices`` their indices;
        ``official_only`` and ``official_only_indices`` the converse.

    Raises:
        ValueError: the three are not 1-D of one length.
    """
    if isinstance(index, torch.Tensor):
        index = index.detach().cpu().numpy()
    idx = np.asarray(index).astype(np.int64)
    if idx.ndim != 1:
        raise ValueError(f"index must be 1-D, got shape {idx.shape}")
    proj = _flags("project_robust", project_robust, len(idx))
    off = _flags("official_robust", official_robust, len(idx))
    return {"n": len(idx), "project_robust": int(proj.sum()), "official_robust": int(off.sum()),
            "project_only": int((proj & ~off).sum()),
            "project_only_indices": [int(i) for i in idx[proj & ~off]],
            "official_only": int((off & ~proj).sum()),
            "official_only_indices": [int(i) for i in idx[off & ~proj]]}
