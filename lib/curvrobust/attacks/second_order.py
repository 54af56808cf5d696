"""HAAT (study 001; Mei, Yang & Wu): PGD with a second-order direction from the input Hessian.

The second-order Taylor model of the loss in the L∞ ε-cube,
L(x + r) ≈ L(x) + rᵀ∇ₓL + ½ rᵀ∇²ₓL r, is ascended along two directions: the first-order
optimiser r¹ = sign(∇ₓL) and the dominant eigenvector u₁ of the input Hessian ∇²ₓL (the
optimiser of the quadratic term over an L2 ball, §3). u₁ is found by k steps of power
iteration; each step needs one Hessian-vector product, which the study approximates by a
forward difference of input gradients, (∇ₓL(x + ξu) − ∇ₓL(x))/ξ with ξ = 1e-6; Algorithm 1
takes the first one along the raw N(0, I) draw u⁽⁰⁾ and normalises afterwards.

This module provides

* :func:`input_loss_grad`, :func:`input_hvp_batch`: per-example input gradients and
  Hessian-vector products of the cross entropy (forward / central differences or exact
  double backpropagation, :data:`HVP_METHODS`);
* :func:`power_iteration`: batched power iteration returning the study's convergence
  measure ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖₂ (its Fig. 4/5);
* :func:`haat` (registered as attack ``"haat"``) and :func:`haat_trace` (same attack, plus the
  power-iteration differences of its last step); ``direction="random"`` is its random-direction
  twin (r² from the random draw itself: the same step without the Hessian's information);
* :func:`hvp_relative_error`: how far the finite differences are from the exact product.

:func:`haat`'s ``update="inner"`` follows Algorithm 1's placement of the update: after EACH
power step the update 5 is taken with the current (aligned) u and a fresh g at the current
point, and the power iteration goes on at the moved point (steps·k updates in all, each with
one fresh gradient that the ``"fd"`` difference at that point reuses; the random twin keeps its
draw for the k updates). With w₂ = 0 the attack is BIM/PGD (steps, resp. steps·k, iterations;
with ``random_start``, PGD from the same uniform start) whatever ``direction``, and no power
iteration is run.

Losses are the SUM over the batch of per-example cross entropies, so each example's
derivatives are its own (unscaled by the batch size); examples do not interact as long as
the model has no cross-example layer (e.g. batch norm in training mode). The model runs in
whatever mode it is in; its parameters' ``.grad`` and ``training`` flags are left untouched.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from curvrobust._checks import check_eps, check_int, per_example_norm
from curvrobust.attacks.base import clip_to_range, register_attack
from curvrobust.models.inference import eval_mode

HVP_METHODS = ("fd", "fd_central", "exact")
R2_SCALES = ("linf", "l2_ball", "sqrt_d_linf")
UPDATES = ("outer", "inner")
DIRECTIONS = ("hessian", "random")
"""Where r² comes from: the power iteration on the input Hessian (HAAT), or the random draw
u⁽⁰⁾ itself (the random-direction twin: the same step without the Hessian's information)."""
FD_STARTS = ("raw", "normalised")
"""The vector the first finite-difference product is taken along: the raw N(0, I) draw
(Algorithm 1: normalise after the product) or the draw normalised to unit L2 norm first."""
FD_METHODS = ("fd", "fd_central")


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, "
                         f"got {name}={value!r}")
    return value


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    value = float(value)
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    return value


def _check_weight(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    value = float(value)
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    return value


def _per_example_norm(t: torch.Tensor, ord: float = 2.0) -> torch.Tensor:
    """Norm of each example's flattened slice, shaped (N, 1, ..., 1) to broadcast against t."""
    return per_example_norm(t, ord).reshape((t.shape[0],) + (1,) * (t.ndim - 1))


def _safe_divide(t: torch.Tensor, norms: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """t / norms per example, ``fallback`` for examples whose norm is 0 or not finite."""
    ok = (norms > 0) & torch.isfinite(norms)
    return torch.where(ok, t / torch.where(ok, norms, torch.ones_like(norms)), fallback)


# ---------------------------------------------------------------------------------------------
# Input gradients and Hessian-vector products
# ---------------------------------------------------------------------------------------------

def input_loss_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ₓ Σᵢ CE(model(x)ᵢ, yᵢ), detached: row i is example i's own input gradient.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) inputs.
        y: (N,) long labels.

    Returns:
        A detached tensor shaped like ``x``.
    """
    xg = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(xg), y.detach(), reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    return grad


def input_hvp_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, u: torch.Tensor,
                    method: str = "exact", xi: float = 1e-6,
                    grad_x: torch.Tensor | None = None) -> torch.Tensor:
    """Per-example Hessian-vector products ∇²ₓLᵢ(xᵢ)·uᵢ with Lᵢ = CE of example i.

    ``method``: ``"fd"`` (the study's forward difference (∇L(x+ξu) − ∇L(x))/ξ; ``grad_x`` is
    ∇ₓL(x) if the caller already has it), ``"fd_central"`` ((∇L(x+ξu) − ∇L(x−ξu))/(2ξ)), or
    ``"exact"`` (double backpropagation: ∇ₓ(∇ₓL·u)). x ± ξu is not clipped to the data range:
    it is a derivative probe, not an input. Returns a detached tensor shaped like ``x``.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) inputs.
        y: (N,) long labels.
        u: (N, ...) directions, one per example (shaped like ``x``).
        method: one of :data:`HVP_METHODS`.
        xi: finite-difference step ξ > 0 (ignored by ``"exact"``).
        grad_x: ∇ₓL(x) shaped like ``x``, reused by ``"fd"`` (computed if None).

    Returns:
        ∇²ₓLᵢ(xᵢ)·uᵢ for every example, detached, shaped like ``x``.
    """
    _check_choice("method", method, HVP_METHODS)
    xi = _check_positive("xi", xi)
    x = x.detach()
    y = y.detach()
    u = u.detach()
    if method == "fd":
        g0 = input_loss_grad(model, x, y) if grad_x is None else grad_x.detach()
        return (input_loss_grad(model, x + xi * u, y) - g0) / xi
    if method == "fd_central":
        return (input_loss_grad(model, x + xi * u, y)
                - input_loss_grad(model, x - xi * u, y)) / (2.0 * xi)
    xg = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(xg), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg, create_graph=True)
    if not grad.requires_grad:  # the gradient does not depend on x: zero Hessian
        return torch.zeros_like(x)
    (hv,) = torch.autograd.grad((grad * u).sum(), xg, allow_unused=True)
    return torch.zeros_like(x) if hv is None else hv.detach()


def hvp_relative_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, u: torch.Tensor,
                       xi_list: Sequence[float],
                       methods: Sequence[str] = ("fd", "fd_central")) -> list[dict[str, Any]]:
    """Per-example relative error ‖Hu_method − Hu_exact‖₂ / ‖Hu_exact‖₂ of finite-difference
    Hessian-vector products, one row ``{method, xi, median, q90, mean, n, zero_frac}`` per method
    and ξ (``n``: examples used; those with Hu_exact = 0 are skipped; NaN statistics if none;
    ``zero_frac``: share of all examples whose approximate Hu is exactly 0 — in float32 a small
    ξ·u can vanish in rounding, and power iteration then stalls at its random start).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) inputs.
        y: (N,) long labels.
        u: (N, ...) directions, shaped like ``x``.
        xi_list: finite-difference steps ξ > 0.
        methods: approximate methods among :data:`HVP_METHODS`.

    Returns:
        A list of dicts, one per (method, ξ), methods outer.
    """
    methods = [_check_choice("method", m, HVP_METHODS) for m in methods]
    xi_list = [_check_positive("xi", v) for v in xi_list]
    exact = input_hvp_batch(model, x, y, u, method="exact")
    ref = torch.linalg.vector_norm(exact.reshape(exact.shape[0], -1).double(), dim=1)
    keep = ref > 0
    grad_x = input_loss_grad(model, x, y) if "fd" in methods else None
    rows = []
    for method in methods:
        for xi in xi_list:
            approx = input_hvp_batch(model, x, y, u, method=method, xi=xi, grad_x=grad_x)
            err = torch.linalg.vector_norm((approx - exact).reshape(exact.shape[0], -1).double(),
                                           dim=1)
            rel = (err[keep] / ref[keep]).cpu()
            n = int(rel.numel())
            zero = (approx.reshape(approx.shape[0], -1) == 0).all(dim=1)
            rows.append({
                "method": method,
                "xi": xi,
                "median": float(rel.median()) if n else math.nan,
                "q90": float(torch.quantile(rel, 0.9)) if n else math.nan,
                "mean": float(rel.mean()) if n else math.nan,
                "n": n,
                "zero_frac": float(zero.double().mean()),
            })
    return rows


# ---------------------------------------------------------------------------------------------
# Power iteration
# ---------------------------------------------------------------------------------------------

def _power_step(hvp: Callable[[torch.Tensor], torch.Tensor], u: torch.Tensor,
                along: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """u ← Hu/‖Hu‖₂ per example (unchanged where Hu = 0); returns (u_new, ‖u_new − u‖₂).
    ``along``: take the product along this vector (a multiple of u, e.g. the raw draw)."""
    hu = hvp(u if along is None else along)
    new = _safe_divide(hu, _per_example_norm(hu), u)
    diff = torch.linalg.vector_norm((new - u).reshape(u.shape[0], -1), dim=1)
    return new, diff


def power_iteration(hvp: Callable[[torch.Tensor], torch.Tensor], u0: torch.Tensor,
                    k: int, raw_start: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched power iteration: each example's u0 (shape (N, ...)) is normalised to unit L2
    norm, then k times u ← hvp(u)/‖hvp(u)‖₂ per example (an example whose Hu is 0 keeps u;
    one whose u0 is 0 stays 0). Returns (u_k, diffs) with ``diffs[i-1, n] = ‖u⁽ⁱ⁾ₙ − u⁽ⁱ⁻¹⁾ₙ‖₂``,
    shape (k, N): the study's convergence measure (≈ √2 at i = 1 from a random start), u⁽⁰⁾
    the normalised start.

    With ``raw_start`` the FIRST product is taken along u0 as given and normalised afterwards
    (Algorithm 1: Hu from the raw N(0, I) draw): the same direction for an exact product, but
    a finite difference x + ξ·u0 then moves ‖u0‖ (≈ √d for a draw) times further than along
    the unit vector, far above float32 rounding.

    It converges to the eigenvector of largest |λ| up to sign; if that eigenvalue is
    negative the iterates alternate in sign, so the diffs tend to 2, not 0.

    Args:
        hvp: v ↦ H·v per example, for (N, ...) tensors (e.g. a closure over
            :func:`input_hvp_batch`).
        u0: (N, ...) start vectors.
        k: number of power steps, >= 1.
        raw_start: take the first product along u0 itself, not along u0/‖u0‖₂.

    Returns:
        ``(u_k, diffs)``: u_k shaped like ``u0`` (unit L2 norm per example, or 0), and diffs
        of shape (k, N).
    """
    k = check_int("k", k, 1)
    raw = u0.detach()
    u = _safe_divide(raw, _per_example_norm(raw), raw)
    diffs = []
    for i in range(k):
        u, diff = _power_step(hvp, u, raw if raw_start and i == 0 else None)
        diffs.append(diff)
    return u, torch.stack(diffs)


# ---------------------------------------------------------------------------------------------
# The attack
# ---------------------------------------------------------------------------------------------

def _hvp_at(model: nn.Module, x: torch.Tensor, y: torch.Tensor, grad_x: torch.Tensor,
            method: str, xi: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def hvp(v: torch.Tensor) -> torch.Tensor:
        return input_hvp_batch(model, x, y, v, method=method, xi=xi, grad_x=grad_x)

    return hvp


def _second_order_direction(u: torch.Tensor, grad: torch.Tensor, r2_scale: str) -> torch.Tensor:
    """r² from the power-iteration vector u: sign-aligned with the gradient, then scaled."""
    n = u.shape[0]
    inner = (u.reshape(n, -1) * grad.reshape(n, -1)).sum(dim=1)
    s = torch.where(inner < 0, -1.0, 1.0).to(u.dtype).reshape((n,) + (1,) * (u.ndim - 1))
    u = u * s
    if r2_scale == "l2_ball":
        return math.sqrt(u[0].numel()) * u
    r2 = _safe_divide(u, _per_example_norm(u, math.inf), torch.zeros_like(u))
    if r2_scale == "sqrt_d_linf":
        r2 = math.sqrt(u[0].numel()) * r2
    return r2


def _haat(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int,
          step_size: float, k: int, xi: float, hvp: str, w1: float, w2: float, r2_scale: str,
          update: str, direction: str, fd_start: str, random_start: bool, seed: int,
          generator: torch.Generator | None, data_range: tuple[float, float] | None,
          trace: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The attack; returns (x_adv, power-iteration diffs of the last outer step). Without
    ``trace``, a run whose u is never used (w₂ = 0) skips the power iteration (its noise is
    still drawn, so the stream and the result are those of the full run)."""
    eps, steps, k, step_size, xi, w1, w2 = _check_haat_numbers(eps, steps, k, step_size, xi,
                                                               w1, w2)
    hvp = _check_choice("hvp", hvp, HVP_METHODS)
    r2_scale = _check_choice("r2_scale", r2_scale, R2_SCALES)
    update = _check_choice("update", update, UPDATES)
    direction = _check_choice("direction", direction, DIRECTIONS)
    fd_start = _check_choice("fd_start", fd_start, FD_STARTS)
    x = x.detach()
    y = y.detach()
    n = x.shape[0]
    nan_diffs = torch.full((k, n), math.nan, dtype=x.dtype, device=x.device)
    if eps == 0.0:
        return clip_to_range(x.clone(), data_range), nan_diffs

    gen = generator if generator is not None else \
        torch.Generator(device=x.device).manual_seed(int(seed))
    # the random twin (and w₂ = 0 without a trace) never multiplies by the Hessian
    iterate = direction == "hessian" and (w2 != 0.0 or trace)
    raw_start = fd_start == "raw" and hvp in FD_METHODS
    ascend = _HaatUpdate(x, eps, step_size, w1, w2, r2_scale, data_range)
    adv = x.clone()
    if random_start:
        adv = adv + torch.empty_like(adv).uniform_(-eps, eps, generator=gen)
        adv = clip_to_range(adv, data_range)
    diffs = nan_diffs
    for _ in range(steps):
        u = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        draw = u
        u = _safe_divide(u, _per_example_norm(u), u)  # the random twin's direction as drawn
        if update == "outer":
            grad = input_loss_grad(model, adv, y)
            if iterate:
                u, diffs = power_iteration(_hvp_at(model, adv, y, grad, hvp, xi), draw, k,
                                           raw_start=raw_start)
            adv = ascend(adv, grad, u)
        else:
            adv, rows = _inner_updates(model, y, adv, u, draw, ascend, k, hvp, xi, iterate,
                                       raw_start)
            diffs = torch.stack(rows) if rows else nan_diffs
    return adv.detach(), diffs


def _check_haat_numbers(eps: Any, steps: Any, k: Any, step_size: Any, xi: Any, w1: Any,
                        w2: Any) -> tuple[float, int, int, float, float, float, float]:
    """HAAT's radius, counts, step sizes and weights checked (the weights not both 0)."""
    eps = check_eps(eps)
    steps = check_int("steps", steps, 1)
    k = check_int("k", k, 1)
    step_size = _check_positive("step_size", step_size)
    xi = _check_positive("xi", xi)
    w1 = _check_weight("w1", w1)
    w2 = _check_weight("w2", w2)
    if w1 == 0.0 and w2 == 0.0:
        raise ValueError("w1 and w2 are both 0: the attack would not move (got w1=0, w2=0)")
    return eps, steps, k, step_size, xi, w1, w2


class _HaatUpdate:
    """HAAT's update 5 around the clean ``x``: a step along w₁·r¹ + w₂·r², projected onto the
    ε-cube and the data range."""

    def __init__(self, x: torch.Tensor, eps: float, step_size: float, w1: float, w2: float,
                 r2_scale: str, data_range: tuple[float, float] | None) -> None:
        self.x, self.eps, self.step_size = x, eps, step_size
        self.w1, self.w2, self.r2_scale, self.data_range = w1, w2, r2_scale, data_range

    def __call__(self, adv: torch.Tensor, grad: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        # only weighted terms enter, so w2 = 0 is PGD operation for operation
        direction = grad.sign()
        if self.w1 != 1.0:
            direction = self.w1 * direction
        if self.w2 != 0.0:
            direction = direction + self.w2 * _second_order_direction(u, grad, self.r2_scale)
        adv = adv + self.step_size * direction
        delta = torch.clamp(adv - self.x, min=-self.eps, max=self.eps)
        return clip_to_range(self.x + delta, self.data_range)


def _inner_updates(model: nn.Module, y: torch.Tensor, adv: torch.Tensor, u: torch.Tensor,
                   draw: torch.Tensor, ascend: _HaatUpdate, k: int, hvp: str, xi: float,
                   iterate: bool, raw_start: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One outer step of ``update="inner"``: an update after each of the k power steps, each
    with a fresh gradient at the moved point; returns the point and the power diffs."""
    rows = []
    for i in range(k):
        grad = input_loss_grad(model, adv, y)
        if iterate:
            along = draw if raw_start and i == 0 else None
            u, diff = _power_step(_hvp_at(model, adv, y, grad, hvp, xi), u, along)
            rows.append(diff)
        adv = ascend(adv, grad, u)
    return adv, rows


@register_attack("haat")
def haat(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
         step_size: float = 0.1, k: int = 5, xi: float = 1e-6, hvp: str = "fd", w1: float = 1.0,
         w2: float = 2.0, r2_scale: str = "linf", update: str = "outer",
         direction: str = "hessian", fd_start: str = "raw", random_start: bool = False,
         seed: int = 0, generator: torch.Generator | None = None,
         data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """HAAT (study 001, Algorithm 1): L∞ PGD whose step adds the input Hessian's dominant
    eigenvector, found by ``k`` power-iteration steps, to the signed gradient.

    With L the sum over the batch of per-example cross entropies, x₀ = x (or, with
    ``random_start``, clip(x + U[−ε, ε])), and for t = 1..``steps``:

    1. g = ∇ₓL(xₜ); u⁽⁰⁾ ~ N(0, I) per example;
    2. u = power iteration of u⁽⁰⁾ with v ↦ ∇²ₓL(xₜ)·v (``hvp``: ``"fd"`` the study's forward
       difference with step ``xi`` reusing g, ``"fd_central"``, or ``"exact"`` double
       backpropagation), ``k`` steps (:func:`power_iteration`); the first finite-difference
       product is taken along the raw draw u⁽⁰⁾ and normalised afterwards, as in Algorithm 1
       (``fd_start="raw"``; ``"normalised"`` takes it along u⁽⁰⁾/‖u⁽⁰⁾‖₂, which in float32
       is about √d times noisier). ``direction="random"`` (the random-direction twin) skips
       the power iteration: u = u⁽⁰⁾/‖u⁽⁰⁾‖₂, the draw itself, no Hessian-vector product;
    3. u ← s·u with s = sign(⟨u, g⟩) per example (+1 if 0), so that the second-order direction
       also increases the first-order term (an eigenvector's sign is arbitrary);
    4. r¹ = sign(g); r² = u/‖u‖∞ (``r2_scale="linf"``, default: r² has the L∞ size of r¹,
       so w₁ and w₂ weigh like-sized steps), √d·u (``"l2_ball"``: §3's relaxation to the
       √d·ε L2 ball, d = per-example input dimension, ‖u‖₂ = 1) or √d·u/‖u‖∞
       (``"sqrt_d_linf"``: Algorithm 1 line 8, far outside the cube, so the projection decides);
    5. x_{t+1} = clip(x + clamp(xₜ + step_size·(w₁·r¹ + w₂·r²) − x, −ε, ε), data_range).

    ``update="inner"`` (Algorithm 1's placement) and w₂ = 0 (BIM/PGD): see the module doc.
    Noise (the start and every u⁽⁰⁾) comes from ``generator`` if given, else from ONE generator
    seeded with ``seed`` per call. ε = 0 returns the clipped clean input. The model runs in its
    current mode; its parameters' ``.grad`` are untouched.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0.
        steps: outer attack steps, >= 1.
        step_size: step size > 0.
        k: power-iteration steps per outer step, >= 1.
        xi: finite-difference step ξ > 0 of the ``"fd"`` / ``"fd_central"`` products.
        hvp: one of :data:`HVP_METHODS`.
        w1, w2: weights >= 0 of r¹ and r² (not both 0).
        r2_scale: one of :data:`R2_SCALES`.
        update: one of :data:`UPDATES`.
        direction: one of :data:`DIRECTIONS` (``"random"``: the random-direction twin).
        fd_start: one of :data:`FD_STARTS` (finite-difference products only).
        random_start: start from clip(x + U[−ε, ε]).
        seed: seed of the noise when no ``generator`` is given.
        generator: generator on x's device for all noise (advances).
        data_range: (lo, hi) to clip to, or None.

    Returns:
        Detached adversarial inputs shaped like ``x``.
    """
    return _haat(model, x, y, eps, steps=steps, step_size=step_size, k=k, xi=xi, hvp=hvp,
                 w1=w1, w2=w2, r2_scale=r2_scale, update=update, direction=direction,
                 fd_start=fd_start, random_start=random_start, seed=seed, generator=generator,
                 data_range=data_range)[0]


def haat_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
               steps: int = 10, step_size: float = 0.1, k: int = 5, xi: float = 1e-6,
               hvp: str = "fd", w1: float = 1.0, w2: float = 2.0, r2_scale: str = "linf",
               update: str = "outer", direction: str = "hessian", fd_start: str = "raw",
               random_start: bool = False, seed: int = 0,
               generator: torch.Generator | None = None,
               data_range: tuple[float, float] | None = (0.0, 1.0),
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`haat` plus the power-iteration differences ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖₂ (shape (k, N)) of its
    LAST outer step (for ``update="inner"``: of the last outer step's power loop), the study's
    Fig. 4/5 measure. ``haat_trace(...)[0]`` equals ``haat(...)``. ε = 0 and
    ``direction="random"`` (no power iteration): diffs are NaN.

    Args:
        model, x, y, eps, steps, ...: as :func:`haat`.

    Returns:
        ``(x_adv, diffs)``: x_adv shaped like ``x`` (= ``haat(...)``), diffs of shape (k, N).
    """
    return _haat(model, x, y, eps, steps=steps, step_size=step_size, k=k, xi=xi, hvp=hvp,
                 w1=w1, w2=w2, r2_scale=r2_scale, update=update, direction=direction,
                 fd_start=fd_start, random_start=random_start, seed=seed, generator=generator,
                 data_range=data_range, trace=True)


def convergence_trace(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
                      eps: float, adversary: dict[str, Any], *, ks: Sequence[int],
                      methods: Sequence[str], seed: int = 0, tol: float = 0.1,
                      log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Study 001's Figs 4/5 as rows: for every batch, Hessian-vector-product method and k, run
    HAAT with the other parameters of ``adversary`` (a regime's adversary block) in eval mode
    and summarise, per power step i of the LAST attack step, ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖₂ over the batch's
    examples: mean, median, 10th/90th percentiles and the share below ``tol`` (converged).
    Batch b uses seed ``seed + b`` for every method and k, so they start from the same noise.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        batches: (x, y) pairs, x (B, ...) inputs and y (B,) long labels.
        eps: L∞ radius ε of the attack.
        adversary: HAAT parameters (a regime's adversary block; ``kind``, ``eps``, ``k``,
            ``hvp`` and ``direction`` are ignored: the power iteration is traced).
        ks: numbers of power steps to compare.
        methods: Hessian-vector-product methods (:data:`HVP_METHODS`) to compare.
        seed: base seed (batch b uses ``seed + b``).
        tol: threshold of ‖Δu‖ below which a power step counts as converged.
        log: called with one line per (batch, method, k).

    Returns:
        A list of dicts ``{batch, method, k, xi, iteration, diff_mean, diff_median, diff_q10,
        diff_q90, converged_frac}``, one per batch, method, k and power step.
    """
    params = {key: v for key, v in adversary.items()
              if key not in ("kind", "eps", "k", "hvp", "direction")}
    rows: list[dict[str, Any]] = []
    with eval_mode(model):
        for b, (xb, yb) in enumerate(batches):
            for method in methods:
                for k in ks:
                    _, diffs = haat_trace(model, xb, yb, eps, **params, k=k, hvp=method,
                                          seed=seed + b)
                    d = diffs.detach().double().cpu()
                    q = torch.quantile(d, torch.tensor([0.1, 0.5, 0.9], dtype=d.dtype), dim=1)
                    for i in range(d.shape[0]):
                        rows.append(dict(batch=b, method=method, k=int(k),
                                         xi=float(params.get("xi", 1e-6)), iteration=i + 1,
                                         diff_mean=float(d[i].mean()),
                                         diff_median=float(q[1, i]), diff_q10=float(q[0, i]),
                                         diff_q90=float(q[2, i]),
                                         converged_frac=float((d[i] < tol).double().mean())))
                    if log is not None:
                        log(f"batch {b} {method} k={k}: last ‖Δu‖ mean "
                            f"{rows[-1]['diff_mean']:.3f}, converged {rows[-1]['converged_frac']:.2f}")
    return rows


def eigenvector_alignment(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                          ks: Sequence[int], methods: Sequence[str], xi: float,
                          ref_steps: int = 50, seed: int = 0,
                          fd_start: str = "raw") -> list[dict[str, Any]]:
    """Does the power iteration find the right direction? Per example, |cos| between the
    k-step iterate with each Hessian-vector-product method and the dominant eigenvector from
    ``ref_steps`` exact power steps, all from the same random start at (x, y); one row
    ``{method, k, xi, cos_median, cos_q10, cos_mean, n}`` per method and k. |cos| = 1: the
    direction HAAT wants; ≈ 0: a random direction (two random unit vectors in d dimensions
    have |cos| ≈ 1/√d). The model runs in its current mode.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs.
        y: (N,) long labels.
        ks: numbers of power steps to compare.
        methods: Hessian-vector-product methods (:data:`HVP_METHODS`).
        xi: finite-difference step ξ > 0.
        ref_steps: exact power steps of the reference eigenvector.
        seed: seed of the shared random start.
        fd_start: one of :data:`FD_STARTS`: the first finite-difference product along the raw
            draw (as :func:`haat` by default) or along the normalised one.

    Returns:
        A list of dicts, one per (method, k), methods outer.
    """
    methods = [_check_choice("method", m, HVP_METHODS) for m in methods]
    fd_start = _check_choice("fd_start", fd_start, FD_STARTS)
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    u0 = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
    grad = input_loss_grad(model, x, y)
    ref, _ = power_iteration(_hvp_at(model, x, y, grad, "exact", xi), u0, ref_steps)
    rows = []
    for method in methods:
        for k in ks:
            u, _ = power_iteration(_hvp_at(model, x, y, grad, method, xi), u0, k,
                                   raw_start=fd_start == "raw" and method in FD_METHODS)
            cos = (u.flatten(1) * ref.flatten(1)).sum(dim=1).abs().double().cpu()
            rows.append(dict(method=method, k=int(k), xi=float(xi),
                             cos_median=float(cos.median()),
                             cos_q10=float(torch.quantile(cos, 0.1)),
                             cos_mean=float(cos.mean()), n=int(cos.numel())))
    return rows
