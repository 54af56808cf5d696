"""Loss and decision surfaces on 2-D slices of input space and of parameter space (study 002).

Input space (Yu et al., figs 3, 4, 6, 9): around a test image x, evaluate the CE loss and the
decision function g = z_y − max_{j≠y} z_j at x + a·d1 + b·d2 on a grid of (a, b). The first
axis d1 is a random or an adversarial direction (:func:`input_direction`), the second a
random one. Every direction is a *sign* vector (entries in {−1, 0, 1}): all axes then have the
same size (L∞ = 1, L2 = √D for D non-zero entries), and a = ε is exactly the L∞ step ε an
FGSM-style attack takes. The study only says "step size = 1 on the pixel range"; sign vectors
are our reading of it, chosen so that grid units are pixel-range units on every axis.

Parameter space (Li et al. 2018, study fig 2): the mean training CE at θ + a·δ1 + b·δ2 with
δ1, δ2 Gaussian directions normalised filter by filter (:func:`filter_normalized_direction`).

Surfaces are written with :func:`save_surfaces` (compressed ``.npz``, atomically).
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from curvrobust._checks import check_batch
from curvrobust.models.inference import decision_margin, eval_mode, model_device
from curvrobust.utils import atomic_path, check_result_file, unreadable

__all__ = ["DIRECTION_KINDS", "input_direction", "input_surface", "filter_normalized_direction",
           "param_surface", "grid", "save_surfaces", "load_surfaces"]

DIRECTION_KINDS = ("random", "ce_ascent", "ll_descent", "cw_ascent")

AxisValues = Sequence[float] | np.ndarray | torch.Tensor



def input_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str, *,
                    seed: int = 0) -> torch.Tensor:
    """One direction per image of the batch, a sign tensor shaped like ``x`` (on x's device).

    ``kind``:

    * ``random``: Rademacher ±1 entries from a CPU ``torch.Generator`` seeded with ``seed``
      (so CPU and GPU runs slice the same plane);
    * ``ce_ascent``: sign ∇ₓ CE(x, y), the FGSM direction;
    * ``ll_descent``: sign −∇ₓ CE(x, y_ll), y_ll = the least-likely class at x (targeted attack);
    * ``cw_ascent``: sign ∇ₓ (max_{j≠y} z_j − z_y), the C&W direction (= −sign ∇ₓ g).

    Gradient directions are taken with the model in eval mode; entries where the gradient is
    exactly 0 stay 0. No ``.grad`` is left on the model's parameters.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits (unused for ``random``).
        x: (N, ...) images.
        y: (N,) long labels.
        kind: one of :data:`DIRECTION_KINDS`.
        seed: seed of the ``random`` direction.

    Returns:
        Tensor shaped like ``x``, on x's device and in x's dtype, entries in {−1, 0, 1}.
    """
    if kind not in DIRECTION_KINDS:
        raise ValueError(f"kind must be one of {DIRECTION_KINDS}, got kind={kind!r}")
    check_batch(x, y)
    if kind == "random":
        gen = torch.Generator().manual_seed(int(seed))
        signs = torch.randint(0, 2, tuple(x.shape), generator=gen).mul_(2).sub_(1)
        return signs.to(device=x.device, dtype=x.dtype)
    dev = model_device(model)
    xg = x.detach().to(dev).requires_grad_(True)
    yd = y.detach().to(dev)
    with eval_mode(model), torch.enable_grad():
        z = model(xg)
        if kind == "ce_ascent":
            objective = F.cross_entropy(z, yd, reduction="sum")
        elif kind == "ll_descent":
            y_ll = z.detach().argmin(dim=1)
            objective = -F.cross_entropy(z, y_ll, reduction="sum")
        else:  # cw_ascent
            objective = -decision_margin(z, yd).sum()
        (grad,) = torch.autograd.grad(objective, xg)
    return grad.sign_().to(device=x.device, dtype=x.dtype)


def _axis(values: AxisValues, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(values, dtype=np.float64) if not isinstance(values, torch.Tensor)
                        else values.detach().cpu().double())
    if t.ndim != 1 or t.numel() == 0 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be a non-empty 1-d sequence of finite numbers, "
                         f"got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=dtype)


def _check_surface_args(x: torch.Tensor, y: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor,
                        batch_size: Any) -> None:
    """ValueError unless (x, y) is a batch, both directions have x's shape and the batch size
    is an integer >= 1."""
    check_batch(x, y)
    for name, d in (("d1", d1), ("d2", d2)):
        if d.shape != x.shape:
            raise ValueError(f"{name} must have x's shape {tuple(x.shape)}, got {tuple(d.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got batch_size={batch_size!r}")


@torch.no_grad()
def input_surface(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d1: torch.Tensor,
                  d2: torch.Tensor, alphas: AxisValues, betas: AxisValues,
                  batch_size: int = 4096, *, clip: bool = False,
                  data_range: tuple[float, float] = (0.0, 1.0)) -> dict[str, torch.Tensor]:
    """CE loss and decision function g at x_i + a·d1_i + b·d2_i for every image i and grid
    point (a, b) ∈ alphas × betas.

    Returns ``{"loss": (N, A, B), "margin": (N, A, B)}`` as CPU tensors in the logits' dtype;
    ``[i, j, k]`` is image i at (alphas[j], betas[k]). The N·A·B points are built and run
    ``batch_size`` at a time (model in eval mode, on its own device). ``clip``: clamp the points
    to ``data_range`` first; off by default, as the study plots the unconstrained slice.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) images.
        y: (N,) long labels.
        d1, d2: directions shaped like ``x`` (e.g. from :func:`input_direction`).
        alphas, betas: grid values along d1 (A of them) and d2 (B of them), finite.
        batch_size: grid points per forward pass, >= 1.
        clip: clamp the points to ``data_range``.
        data_range: (lo, hi) used with ``clip``.

    Returns:
        ``{"loss": (N, A, B), "margin": (N, A, B)}`` CPU tensors.
    """
    _check_surface_args(x, y, d1, d2, batch_size)
    dev = model_device(model)
    xd, d1d, d2d = (t.detach().to(dev) for t in (x, d1, d2))
    yd = y.detach().to(dev)
    al = _axis(alphas, "alphas", xd.dtype, dev)
    be = _axis(betas, "betas", xd.dtype, dev)
    n, a_len, b_len = x.shape[0], al.numel(), be.numel()
    total = n * a_len * b_len
    view = (-1,) + (1,) * (x.ndim - 1)
    loss_parts, margin_parts = [], []
    with eval_mode(model):
        for start in range(0, total, batch_size):
            flat = torch.arange(start, min(start + batch_size, total), device=dev)
            i = flat // (a_len * b_len)
            a = (flat // b_len) % a_len
            b = flat % b_len
            points = xd[i]
            points.add_(al[a].view(view) * d1d[i])
            points.add_(be[b].view(view) * d2d[i])
            if clip:
                points.clamp_(min=data_range[0], max=data_range[1])
            z = model(points)
            yi = yd[i]
            loss_parts.append(F.cross_entropy(z, yi, reduction="none").cpu())
            margin_parts.append(decision_margin(z, yi).cpu())
            del points, z
    shape = (n, a_len, b_len)
    if total == 0:
        empty = torch.empty(shape, dtype=x.dtype)
        return {"loss": empty, "margin": empty.clone()}
    return {"loss": torch.cat(loss_parts).view(shape), "margin": torch.cat(margin_parts).view(shape)}


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> list[torch.Tensor]:
    """A Gaussian direction in parameter space, one tensor per ``model.parameters()`` entry,
    normalised filter by filter (Li et al. 2018): for a weight with ≥ 2 dims each slice along
    dim 0 (a conv filter, a linear layer's row) is rescaled to the norm of the same slice of
    the weight. 1-d parameters (biases, batch-norm scales and shifts) get a zero direction
    (Li et al.'s ``ignore='biasbn'``). Draws from ``generator`` (which advances) on its device;
    the tensors are returned on each parameter's device and dtype.

    Args:
        model: the network whose parameters the direction lives in.
        generator: the generator to draw from.

    Returns:
        A list of tensors, one per ``model.parameters()`` entry and of its shape.
    """
    out = []
    for p in model.parameters():
        w = p.detach()
        if w.ndim <= 1:
            out.append(torch.zeros_like(w))
            continue
        d = torch.randn(tuple(w.shape), generator=generator, device=generator.device,
                        dtype=w.dtype).to(w.device)
        w_norm = w.flatten(1).norm(dim=1)
        d_norm = d.flatten(1).norm(dim=1)
        scale = w_norm / (d_norm + 1e-10)
        out.append(d * scale.view((-1,) + (1,) * (w.ndim - 1)))
    return out


def param_surface(model: nn.Module, x: torch.Tensor, y: torch.Tensor, alphas: AxisValues,
                  betas: AxisValues, *, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """Mean CE over (x, y) at θ + a·δ1 + b·δ2 for every (a, b) ∈ alphas × betas, with δ1, δ2
    two filter-normalised directions drawn from a CPU generator seeded with ``seed``.

    Returns an (A, B) float64 CPU tensor. The model runs in eval mode on its device; the
    perturbed weights only ever exist as separate tensors passed through
    ``torch.func.functional_call``, so the model's own parameters are never written to (and
    its state is back as it was even if the evaluation raises).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs, N >= 1.
        y: (N,) long labels.
        alphas, betas: grid values along δ1 (A of them) and δ2 (B of them), finite.
        seed: seed of the two directions.
        batch_size: examples per forward pass, >= 1.

    Returns:
        (A, B) float64 CPU tensor of mean CE.
    """
    check_batch(x, y)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got batch_size={batch_size!r}")
    if x.shape[0] == 0:
        raise ValueError("x holds no examples")
    gen = torch.Generator().manual_seed(int(seed))
    names = [k for k, _ in model.named_parameters()]
    theta = [p.detach() for _, p in model.named_parameters()]
    delta1 = filter_normalized_direction(model, gen)
    delta2 = filter_normalized_direction(model, gen)
    dev = model_device(model)
    al = _axis(alphas, "alphas", torch.float64, torch.device("cpu")).tolist()
    be = _axis(betas, "betas", torch.float64, torch.device("cpu")).tolist()
    out = torch.empty(len(al), len(be), dtype=torch.float64)
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        for j, a in enumerate(al):
            for k, b in enumerate(be):
                params = {name: t + a * d1 + b * d2
                          for name, t, d1, d2 in zip(names, theta, delta1, delta2)}
                total = 0.0
                for start in range(0, n, batch_size):
                    xb = x[start:start + batch_size].to(dev)
                    yb = y[start:start + batch_size].to(dev)
                    z = functional_call(model, params, (xb,))
                    total += float(F.cross_entropy(z, yb, reduction="sum").double())
                out[j, k] = total / n
    return out


def grid(range_: float, points: int) -> torch.Tensor:
    """``points`` evenly spaced values on [−range_, range_] (float64), exactly symmetric
    (values[i] == −values[−1−i]) and with an exact 0 in the middle when ``points`` is odd.

    Args:
        range_: half-width > 0 of the interval.
        points: number of values, >= 2.

    Returns:
        (points,) float64 tensor.
    """
    range_ = float(range_)
    if not (range_ > 0 and math.isfinite(range_)):
        raise ValueError(f"range_ must be > 0 and finite, got range_={range_!r}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got points={points!r}")
    half = (points - 1) / 2
    return (torch.arange(points, dtype=torch.float64) - half) / half * range_


def save_surfaces(path: str | os.PathLike, **arrays: np.ndarray | torch.Tensor) -> None:
    """Write named arrays (tensors are converted) to a compressed ``.npz`` at exactly ``path``,
    atomically. Object arrays are refused: :func:`load_surfaces` reads without pickle.

    Args:
        path: the ``.npz`` file to write.
        **arrays: at least one named array or tensor (any shape).
    """
    if not arrays:
        raise ValueError("save_surfaces needs at least one array")
    data = {}
    for name, arr in arrays.items():
        a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
        if a.dtype == object:
            raise ValueError(f"array {name!r} has dtype object; store numbers or strings")
        data[name] = a
    with atomic_path(path) as tmp:
        # through a handle: given a name without '.npz', numpy would write to name + '.npz'
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **data)


def load_surfaces(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of a file written by :func:`save_surfaces` (no pickle).

    Args:
        path: a file written by :func:`save_surfaces`.

    Returns:
        Dict name -> numpy array.
    """
    check_result_file(path, "surface file")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise unreadable(path, "surface file", e) from e
