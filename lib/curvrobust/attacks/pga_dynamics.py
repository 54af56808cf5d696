"""Projected gradient ascent (PGA) on the adversary, instrumented for study 003.

Deng et al. (ICML 2020), "Towards Understanding the Dynamics of the First-Order Adversaries",
analyse the inner maximisation of adversarial training, max_{δ ∈ S} (y − f(x + δ))², for a
two-layer network f and a label y = ±1: projected gradient ascent reaches a local maximum in
polynomially many iterations, faster (and on a more regular landscape) for a smaller input
scale. This module runs that ascent from several random starts per example and records what
the study measures:

* :func:`quadratic_loss`: the per-example loss (y − f)²;
* :func:`project`: the Euclidean projection onto S = {δ : ‖δ‖ ≤ ε, x + δ ∈ [lo, hi]}
  (L2 or L∞ ball; L2 ball ∩ box by Dykstra's algorithm);
* :func:`pga`: normalised-gradient (L2) or signed-gradient (L∞) projected ascent, recording the
  loss at every iterate, the projected-gradient mapping norm (a stationarity measure, 0 at a
  constrained local maximum) and the first iteration at which it falls below a tolerance;
* :func:`local_maxima_stats`: how many distinct local maxima the starts found per example;
* :func:`iters_to_climb_fraction`, :func:`converged_starts`, :func:`converged_maxima`: the
  scale-comparable progress measures — iterations to a fixed fraction of each start's climb,
  and distinct maxima among the starts that reached the loss plateau.

Like :mod:`curvrobust.attacks`, the model runs in whatever mode it is in and its parameters'
``.grad`` are left untouched (gradients are taken w.r.t. δ with ``torch.autograd.grad``).
Every random start is drawn in unit coordinates and multiplied by ε, so scaling x, ε, the data
range and the step size by s (with the first-layer weights divided by s) scales every iterate
by s exactly when s is a power of two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from curvrobust._checks import check_eps, check_int, per_example_norm

NORMS = ("l2", "linf")


def quadratic_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example quadratic loss (y − f(x))², shape (N,); y holds ±1 (any dtype).

    Args:
        out: model outputs f(x), (N,) or any shape with N entries (reshaped to (N,)).
        y: (N,) targets ±1.

    Returns:
        (N,) tensor in the outputs' dtype.
    """
    out = out.reshape(y.shape[0])
    return (y.to(out.dtype) - out).square()


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got norm={norm!r}")
    return norm


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-example vector (N,) shaped to broadcast against (N, ...)."""
    return v.reshape(v.shape[0], *([1] * (like.ndim - 1)))


def _ball_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Projection onto {‖δ_i‖₂ ≤ ε} per example: δ·min(1, ε/‖δ‖) (δ unchanged inside)."""
    n = per_example_norm(delta)
    outside = n > eps
    scale = torch.where(outside, eps / torch.where(outside, n, torch.ones_like(n)),
                        torch.ones_like(n))
    return delta * _expand(scale, delta)


def project(delta: torch.Tensor, x: torch.Tensor, eps: float, norm: str = "l2",
            data_range: tuple[float, float] | None = (0.0, 1.0),
            iters: int = 100) -> torch.Tensor:
    """Euclidean projection of the perturbation ``delta`` onto the feasible set
    S = {δ : ‖δ_i‖ ≤ ε for every example i, x + δ ∈ [lo, hi]} (``data_range=None``: no box).

    L∞: S is a box, so the projection is one clamp. L2 without box: the closed form
    δ·min(1, ε/‖δ‖). L2 with box: the set is a ball ∩ box, whose projection has no closed form;
    Dykstra's alternating projections (not plain alternation, which stops at some point of S,
    not the nearest one) converge to it. At most ``iters`` rounds, stopping once neither the
    iterate moves nor the two sub-iterates differ by more than a few ulps of ε (convergence is
    linear: a PGA step, within ε + η of S, takes a few rounds; a point 5ε outside the ball of a
    30-pixel image is within ~1e-8·ε after 100 rounds, ulps after 1000). The result is
    finally clamped to the box, which keeps it in the ball (the box contains δ = 0, so a clamp
    never lengthens δ), hence exactly in S up to the rounding of the norm.

    ``x`` must lie in ``data_range`` (else S may be empty).

    Args:
        delta: (N, ...) perturbations, shaped like ``x``.
        x: (N, ...) inputs, in ``data_range``.
        eps: radius ε >= 0.
        norm: ``"l2"`` or ``"linf"``.
        data_range: (lo, hi) box for x + δ, or None.
        iters: maximum Dykstra rounds (L2 with box only), >= 1.

    Returns:
        The projected perturbations, shaped like ``delta``.
    """
    eps = check_eps(eps)
    norm = _check_norm(norm)
    iters = check_int("iters", iters, 1)
    if delta.shape != x.shape:
        raise ValueError(f"delta and x must have the same shape, got {tuple(delta.shape)} "
                         f"and {tuple(x.shape)}")
    return _projector(x, eps, norm, data_range, iters)(delta)


def _projector(x: torch.Tensor, eps: float, norm: str,
               data_range: tuple[float, float] | None,
               iters: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`project` for fixed x, ε, norm and box, checked once (pga calls it every step)."""
    if data_range is None:
        lo_b = hi_b = None
    else:
        lo, hi = float(data_range[0]), float(data_range[1])
        if not lo <= hi:
            raise ValueError(f"data_range must have lo <= hi, got data_range={data_range!r}")
        if bool(((x < lo) | (x > hi)).any()):
            raise ValueError(f"x must lie in data_range={data_range!r}, got values in "
                             f"[{x.min().item()}, {x.max().item()}]")
        lo_b, hi_b = lo - x, hi - x
    if norm == "linf":
        if lo_b is None:
            return lambda delta: delta.clamp(-eps, eps)
        return lambda delta: torch.maximum(torch.minimum(delta.clamp(-eps, eps), hi_b), lo_b)
    if lo_b is None:
        return lambda delta: _ball_l2(delta, eps)
    return lambda delta: _dykstra_ball_box(delta, eps, lo_b, hi_b, iters)


def _dykstra_ball_box(z: torch.Tensor, eps: float, lo_b: torch.Tensor, hi_b: torch.Tensor,
                      iters: int) -> torch.Tensor:
    """Dykstra's algorithm for the projection of z onto {‖δ‖₂ ≤ ε} ∩ [lo_b, hi_b], batched."""
    atol = 8.0 * torch.finfo(z.dtype).eps * eps
    u = z
    p = torch.zeros_like(z)
    q = torch.zeros_like(z)
    for _ in range(iters):
        v = torch.maximum(torch.minimum(u + p, hi_b), lo_b)  # box step
        p = u + p - v
        u_next = _ball_l2(v + q, eps)  # ball step
        q = v + q - u_next
        change = torch.maximum(per_example_norm(u_next - u), per_example_norm(u_next - v))
        u = u_next
        if change.max().item() <= atol:
            break
    return torch.maximum(torch.minimum(u, hi_b), lo_b)


@dataclass
class PGAResult:
    """What :func:`pga` records, for S starts, T steps and N examples.

    losses        (S, T+1, N): loss at every iterate δ_0 … δ_T (δ_0 the random start);
    mapping_norm  (S, T, N):   ‖Π(δ_t + η d_t) − δ_t‖₂ / η = ‖δ_{t+1} − δ_t‖₂ / η, the
                               projected-gradient mapping norm (0 at a constrained local maximum;
                               in [0, 1] for L2, where d_t is the unit gradient);
    iters_to_tol  (S, N):      first t with mapping_norm < tol (T if never), long;
    final_delta   (S, N, ...): δ_T;
    final_loss    (S, N):      loss at δ_T (= losses[:, -1])."""

    losses: torch.Tensor
    mapping_norm: torch.Tensor
    iters_to_tol: torch.Tensor
    final_delta: torch.Tensor
    final_loss: torch.Tensor


def _random_start(x: torch.Tensor, eps: float, norm: str,
                  gen: torch.Generator) -> torch.Tensor:
    """A start drawn uniformly in the ε-ball (before projection onto the box).

    Drawn in unit coordinates, then multiplied by ε, so that the start scales with ε.
    L2: uniform direction times radius U^(1/d) (uniform in the ball); L∞: U[−1, 1]^d."""
    if norm == "linf":
        unit = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1
        return unit * eps
    d = x[0].numel()
    g = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    r = torch.rand(x.shape[0], generator=gen, device=x.device, dtype=x.dtype) ** (1.0 / d)
    n = per_example_norm(g)
    unit = g * _expand(r / torch.where(n > 0, n, torch.ones_like(n)), g)
    return unit * eps


def _ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Unit-L2 gradient per example (zero stays zero) for L2; sign(∇) for L∞."""
    if norm == "linf":
        return grad.sign()
    n = per_example_norm(grad)
    return grad / _expand(torch.where(n > 0, n, torch.ones_like(n)), grad)


def _check_step_and_tol(step_size: float, tol: float) -> tuple[float, float]:
    """The ascent's step η (> 0, finite) and mapping-norm threshold (>= 0), as floats."""
    step_size = float(step_size)
    if not (step_size > 0.0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be > 0 and finite, got step_size={step_size!r}")
    tol = float(tol)
    if not tol >= 0.0:
        raise ValueError(f"tol must be >= 0, got tol={tol!r}")
    return step_size, tol


def _loss_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-example losses at x + δ and their gradient in δ (from the sum)."""
    n_ex = x.shape[0]
    delta = delta.detach().requires_grad_(True)
    loss = loss_fn(model(x + delta), y)
    if loss.shape != (n_ex,):
        raise ValueError(f"loss_fn must return one loss per example, shape ({n_ex},), "
                         f"got {tuple(loss.shape)}")
    (grad,) = torch.autograd.grad(loss.sum(), delta)
    return loss.detach(), grad


def _ascend(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
            proj: Callable[[torch.Tensor], torch.Tensor],
            loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int,
            step_size: float, norm: str, losses: torch.Tensor,
            mapping: torch.Tensor) -> torch.Tensor:
    """One start's projected ascent from ``delta``: the losses (T+1, N) and mapping norms
    (T, N) written into the given views; returns the final δ."""
    for t in range(steps):
        losses[t], grad = _loss_and_grad(model, x, y, delta, loss_fn)
        nxt = proj(delta + step_size * _ascent_direction(grad, norm))
        mapping[t] = per_example_norm(nxt - delta) / step_size
        delta = nxt
    with torch.no_grad():
        losses[steps] = loss_fn(model(x + delta), y)
    return delta


def pga(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int,
        step_size: float, norm: str = "l2",
        data_range: tuple[float, float] | None = (0.0, 1.0), starts: int = 1, seed: int = 0,
        tol: float = 1e-3,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = quadratic_loss,
        ) -> PGAResult:
    """Projected gradient ascent of the per-example loss ``loss_fn(model(x + δ), y)`` over
    δ ∈ S (see :func:`project`), from ``starts`` random starts per example.

    Step: δ_{t+1} = Π(δ_t + η·d_t) with d_t = ∇_δ L / ‖∇_δ L‖₂ per example for L2 (normalised
    gradient ascent, as L2 PGD in Madry et al. and torchattacks.PGDL2; a zero gradient does not
    move) and d_t = sign(∇_δ L) for L∞. Starts are uniform in the ε-ball (see
    :func:`_random_start`) then projected onto S, drawn from a generator on x's device seeded
    with ``seed``, so the same seed gives the same result. ``loss_fn`` must return one loss per
    example; gradients come from their sum, which gives per-example gradients as long as the
    model treats examples independently (no batch norm in train mode). The model runs in its
    current mode and its parameters' ``.grad`` are not touched.

    Args:
        model: network mapping (N, ...) inputs to outputs ``loss_fn`` takes (for the default
            quadratic loss: (N,) scalar outputs, e.g. ``TwoLayerNet``).
        x: (N, ...) inputs, in ``data_range``.
        y: (N,) targets (±1 for the quadratic loss).
        eps: radius ε >= 0 of the feasible set.
        steps: ascent steps T >= 1.
        step_size: step η > 0.
        norm: ``"l2"`` (normalised gradient) or ``"linf"`` (signed gradient).
        data_range: (lo, hi) box for x + δ, or None.
        starts: random starts S >= 1 per example.
        seed: seed of the start generator.
        tol: threshold of the mapping norm for ``iters_to_tol``.
        loss_fn: ``loss_fn(model(x + δ), y)`` -> (N,) per-example losses to ascend.

    Returns:
        A :class:`PGAResult` (tensors of shapes (S, T+1, N), (S, T, N), (S, N),
        (S, N, ...), (S, N)).
    """
    eps = check_eps(eps)
    steps = check_int("steps", steps, 1)
    starts = check_int("starts", starts, 1)
    norm = _check_norm(norm)
    step_size, tol = _check_step_and_tol(step_size, tol)
    x = x.detach()
    y = y.detach()
    n_ex = x.shape[0]
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    proj = _projector(x, eps, norm, data_range, 100)
    losses = x.new_empty((starts, steps + 1, n_ex))
    mapping = x.new_empty((starts, steps, n_ex))
    finals = []
    for s in range(starts):
        delta = proj(_random_start(x, eps, norm, gen))
        finals.append(_ascend(model, x, y, delta, proj, loss_fn, steps, step_size, norm,
                              losses[s], mapping[s]))
    below = mapping < tol
    first = below.to(torch.int8).argmax(dim=1)  # index of the first True (0 if none)
    iters_to_tol = torch.where(below.any(dim=1), first, torch.full_like(first, steps))
    return PGAResult(losses=losses, mapping_norm=mapping, iters_to_tol=iters_to_tol.long(),
                     final_delta=torch.stack(finals), final_loss=losses[:, -1].clone())


def local_maxima_stats(final_loss: torch.Tensor, rtol: float = 1e-3) -> dict[str, torch.Tensor]:
    """Per example, how many distinct local maxima the starts reached and how far apart.

    ``final_loss`` (starts, N): the loss at the end of each start (``PGAResult.final_loss``).
    Values are sorted per example and a new cluster opens wherever the gap to the previous
    value exceeds rtol·max(1, |value|); ``count`` is the number of clusters. Returns tensors of
    shape (N,) ``count`` (long), ``spread`` (max − min) and ``std`` (population std, 0 for one
    start), and their means ``mean_count``, ``mean_spread``, ``mean_std`` (0-d tensors).

    Args:
        final_loss: (S, N) final losses, S >= 1 starts.
        rtol: relative gap >= 0 that separates two maxima.

    Returns:
        A dict of tensors as described above.
    """
    if final_loss.ndim != 2 or final_loss.shape[0] < 1:
        raise ValueError(f"final_loss must have shape (starts, N) with starts >= 1, "
                         f"got {tuple(final_loss.shape)}")
    rtol = float(rtol)
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got rtol={rtol!r}")
    v = final_loss.sort(dim=0).values
    gaps = v[1:] - v[:-1]
    thresh = rtol * v[1:].abs().clamp(min=1.0)
    count = 1 + (gaps > thresh).sum(dim=0)
    spread = v[-1] - v[0]
    std = final_loss.std(dim=0, correction=0)
    return {"count": count, "spread": spread, "std": std,
            "mean_count": count.double().mean(), "mean_spread": spread.mean(),
            "mean_std": std.mean()}


def _sub_seed(seed: int, k: int) -> int:
    """A distinct generator seed per (seed, k) that stays in range for 63-bit run seeds."""
    return (int(seed) * 1_000_003 + k) % (1 << 63)


@torch.no_grad()
def _eval_quadratic(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    batch_size: int = 2000) -> tuple[float, float]:
    """Mean quadratic loss and accuracy (sign f = y) over (x, y)."""
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        out = model(x[i:i + batch_size])
        yb = y[i:i + batch_size].to(out.dtype)
        loss += float(quadratic_loss(out, yb).sum())
        correct += int((torch.sign(out) == yb).sum())
    return loss / len(x), correct / len(x)


def _adversarial_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                       y: torch.Tensor, order: torch.Tensor, batch_size: int, eps: float,
                       seed: int, pga_kw: dict[str, Any], epoch: int,
                       step_rows: list[dict]) -> list[float]:
    """One epoch of SGD steps on PGA adversarial batches in ``order``; each step's robust batch
    loss is appended to ``step_rows`` (whose length counts the steps) and returned."""
    robust = []
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        res = pga(model, xb, yb, eps, seed=_sub_seed(seed, len(step_rows)), **pga_kw)
        x_adv = xb + res.final_delta[0]
        opt.zero_grad(set_to_none=True)
        loss = quadratic_loss(model(x_adv), yb).mean()
        loss.backward()
        opt.step()
        robust.append(float(loss.detach()))
        step_rows.append(dict(step=len(step_rows) + 1, epoch=epoch,
                              robust_batch_loss=robust[-1]))
    return robust


def adversarial_train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                      epochs: int, lr: float, batch_size: int, pga_steps: int,
                      pga_step_size: float, norm: str = "l2",
                      data_range: tuple[float, float] | None = (0.0, 1.0), seed: int = 0,
                      x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                      log: Callable[[str], None] | None = None,
                      ) -> tuple[list[dict], list[dict]]:
    """Adversarial training of a scalar-output model with the quadratic loss, PGA as the inner
    maximisation (one random start) and plain SGD as the outer minimisation (the dynamics
    study 003 analyses). Batches and PGA starts come from generators seeded with ``seed``.

    Returns ``(epoch_rows, step_rows)``: per epoch the mean robust loss of its batches (at the PGA
    adversary, before each step), the clean training loss and, with a test set, the clean and
    robust (PGA, same settings) test loss and accuracy (sign f = y); per step the batch's robust
    loss — the initial phase the study's input-scale claim is about.

    Args:
        model: scalar-output network (e.g. ``TwoLayerNet``), trained in place.
        x: (N, ...) training inputs, in ``data_range``.
        y: (N,) targets ±1.
        eps: PGA radius ε.
        epochs: passes over the data, >= 1.
        lr: SGD learning rate.
        batch_size: examples per step, >= 1.
        pga_steps, pga_step_size: the inner PGA's ``steps`` and ``step_size``.
        norm: PGA norm, ``"l2"`` or ``"linf"``.
        data_range: (lo, hi) box for the adversarial inputs, or None.
        seed: seed of the batch order and of the PGA starts.
        x_test, y_test: optional test set, (M, ...) and (M,) ±1.
        log: called with one line per epoch.

    Returns:
        ``(epoch_rows, step_rows)``: lists of dicts as described above.
    """
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=float(lr))
    order_gen = torch.Generator().manual_seed(int(seed))
    y = y.to(x.dtype)
    pga_kw = dict(steps=pga_steps, step_size=pga_step_size, norm=norm, data_range=data_range)
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=order_gen).to(x.device)
        robust = _adversarial_epoch(model, opt, x, y, order, batch_size, eps, seed, pga_kw,
                                    epoch, step_rows)
        row = dict(epoch=epoch, step=len(step_rows), robust_train_loss=sum(robust) / len(robust))
        row["train_loss"], row["train_acc"] = _eval_quadratic(model, x, y)
        if x_test is not None and y_test is not None:
            yt = y_test.to(x_test.dtype)
            row["test_loss"], row["test_acc"] = _eval_quadratic(model, x_test, yt)
            res = pga(model, x_test, yt, eps, seed=_sub_seed(seed, -epoch), **pga_kw)
            row["robust_test_loss"], row["robust_test_acc"] = _eval_quadratic(
                model, x_test + res.final_delta[0], yt)
        epoch_rows.append(row)
        if log is not None:
            log(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in row.items()))
    return epoch_rows, step_rows


def binary_pair(x: torch.Tensor, y: torch.Tensor, pair: tuple[int, int],
                n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples of two classes with ±1 targets, the study's binary task: class ``pair[0]``
    → +1, ``pair[1]`` → −1, in the data's order, the first ``n`` of them (all for None).

    Returns (x, y) with y float32 ±1. A class absent from ``y`` or ``n`` larger than what the
    pair has is an error (a silently smaller set would change the experiment).

    Args:
        x: (N, ...) inputs.
        y: (N,) integer class labels.
        pair: (positive class, negative class).
        n: keep the first ``n`` >= 1 examples of the pair (None: all).

    Returns:
        ``(x_pair, y_pair)``: (M, ...) inputs and (M,) float32 ±1 targets.
    """
    if len(pair) != 2 or int(pair[0]) == int(pair[1]):
        raise ValueError(f"pair must name two different classes, got pair={list(pair)!r}")
    pos, neg = int(pair[0]), int(pair[1])
    for c in (pos, neg):
        if not bool((y == c).any()):
            raise ValueError(f"pair={list(pair)!r}: class {c} has no examples")
    keep = (y == pos) | (y == neg)
    xs, ys = x[keep], y[keep]
    if n is not None:
        n = check_int("n", n, 1)
        if n > len(xs):
            raise ValueError(f"n={n} exceeds the {len(xs)} examples of classes {pos} and {neg}")
        xs, ys = xs[:n], ys[:n]
    return xs, torch.where(ys == pos, 1.0, -1.0).to(torch.float32)


def iters_to_loss_tol(losses: torch.Tensor, rtol: float = 1e-3) -> torch.Tensor:
    """Per start and example, the first iteration t whose loss is within ``rtol`` (relative) of
    the best loss that start reached: L_t ≥ max_t' L_t' − rtol·|max_t' L_t'|.

    ``losses`` (S, T+1, N) as in :class:`PGAResult`; returns (S, N) long in [0, T]. Unlike the
    projected-gradient mapping, which stays away from 0 where the ascent zigzags across a kink
    of a ReLU network, this criterion is met by every run and is scale-free (the loss is
    compared with itself): it measures how fast the ascent reaches the height it ends at.

    Args:
        losses: (S, T+1, N) losses (``PGAResult.losses``).
        rtol: relative tolerance >= 0.

    Returns:
        (S, N) long iteration indices in [0, T].
    """
    if losses.ndim != 3:
        raise ValueError(f"losses must have shape (starts, T+1, N), got {tuple(losses.shape)}")
    rtol = float(rtol)
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got rtol={rtol!r}")
    best = losses.max(dim=1, keepdim=True).values
    ok = losses >= best - rtol * best.abs()
    return ok.to(torch.int8).argmax(dim=1).long()


def iters_to_climb_fraction(losses: torch.Tensor, fraction: float = 0.9) -> torch.Tensor:
    """Per start and example, the first iteration t at which the loss has made ``fraction`` f
    of that start's climb: L_t ≥ L_0 + f·(max_t' L_t' − L_0).

    The climb runs from the loss at the start's random initial point to the highest loss the
    start reached, so the count is a share of *each start's own* rise whatever its height: at
    every input scale the same f measures the same progress (unlike a tolerance relative to the
    best loss, which is a different share of the climb at each scale). A start that never rises
    (max = L_0) is censored: it counts T, the iterations run (it never made any climb, so it
    cannot be the fastest; :func:`never_climbs` flags it). ``f = 1`` gives the iteration of the
    best loss.

    Args:
        losses: (S, T+1, N) losses (``PGAResult.losses``).
        fraction: f in (0, 1].

    Returns:
        (S, N) long iteration indices in [0, T].
    """
    if losses.ndim != 3:
        raise ValueError(f"losses must have shape (starts, T+1, N), got {tuple(losses.shape)}")
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got fraction={fraction!r}")
    start = losses[:, :1]
    best = losses.max(dim=1, keepdim=True).values
    # min(·, best): start + 1·(best − start) may round above best
    target = torch.minimum(start + fraction * (best - start), best)
    iters = (losses >= target).to(torch.int8).argmax(dim=1).long()
    return torch.where(never_climbs(losses), losses.shape[1] - 1, iters)


def never_climbs(losses: torch.Tensor) -> torch.Tensor:
    """Per start and example, whether the ascent never rose above its starting loss: its
    iterations to a share of the climb are censored at T.

    Args:
        losses: (S, T+1, N) losses (``PGAResult.losses``).

    Returns:
        (S, N) bool.
    """
    return losses.max(dim=1).values <= losses[:, 0]


def converged_starts(losses: torch.Tensor, window: int = 10, rtol: float = 1e-2) -> torch.Tensor:
    """Per start and example, whether the ascent reached the loss plateau: over its last
    ``window`` iterations (the iterates δ_{T−w} … δ_T, w = min(window, T)) the loss varied by at
    most ``rtol`` of its final value, max − min ≤ rtol·|L_T|. Relative, so the same criterion
    at every input scale; the range (not the end-to-end change) so that an ascent oscillating
    across a ReLU kink with a large amplitude does not count as converged.

    Args:
        losses: (S, T+1, N) losses (``PGAResult.losses``).
        window: iterations w >= 1 the loss must stay flat over.
        rtol: relative tolerance >= 0.

    Returns:
        (S, N) bool.
    """
    if losses.ndim != 3 or losses.shape[1] < 2:
        raise ValueError(f"losses must have shape (starts, T+1, N) with T >= 1, "
                         f"got {tuple(losses.shape)}")
    window = min(check_int("window", window, 1), losses.shape[1] - 1)
    rtol = float(rtol)
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got rtol={rtol!r}")
    tail = losses[:, -(window + 1):]
    change = tail.max(dim=1).values - tail.min(dim=1).values
    return change <= rtol * tail[:, -1].abs()


def converged_maxima(final_loss: torch.Tensor, converged: torch.Tensor,
                     rtol: float = 1e-3) -> torch.Tensor:
    """Per example, how many distinct local maxima the *converged* starts reached.

    The final losses of the converged starts are sorted and a new maximum opens wherever two
    consecutive values differ by more than ``rtol`` of the larger one, v_(k+1) − v_(k) >
    rtol·|v_(k+1)| (single linkage; purely relative, so the same tolerance at every input
    scale — unlike :func:`local_maxima_stats`, whose threshold is absolute below a loss of 1).
    Starts still climbing are left out: their final loss is no maximum. NaN for an example
    none of whose starts converged.

    Args:
        final_loss: (S, N) final losses (``PGAResult.final_loss``).
        converged: (S, N) bool, e.g. :func:`converged_starts`.
        rtol: relative gap >= 0 that separates two maxima.

    Returns:
        (N,) float64: the count per example (NaN where no start converged).
    """
    if final_loss.ndim != 2 or converged.shape != final_loss.shape:
        raise ValueError(f"final_loss and converged must both have shape (starts, N), got "
                         f"{tuple(final_loss.shape)} and {tuple(converged.shape)}")
    rtol = float(rtol)
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got rtol={rtol!r}")
    out = torch.full((final_loss.shape[1],), math.nan, dtype=torch.float64)
    for i in range(final_loss.shape[1]):
        v = final_loss[converged[:, i].bool(), i].double().sort().values
        if v.numel():
            gaps = v[1:] - v[:-1]
            out[i] = 1 + int((gaps > rtol * v[1:].abs()).sum())
    return out


def pga_trace_rows(result: PGAResult, tol: float) -> list[dict[str, float]]:
    """Per PGA iteration, over all starts and examples: the mean and median loss, the mean
    projected-gradient mapping norm and the share of runs with mapping norm below ``tol``
    (NaN at the last iterate, which has no step).

    Args:
        result: a :func:`pga` result.
        tol: threshold of the mapping norm.

    Returns:
        T+1 dicts ``{iteration, loss_mean, loss_median, mapping_norm_mean,
        share_below_tol}``.
    """
    s, t1, n = result.losses.shape
    rows = []
    for t in range(t1):
        loss = result.losses[:, t].double()
        row = dict(iteration=t, loss_mean=float(loss.mean()), loss_median=float(loss.median()))
        if t < t1 - 1:
            g = result.mapping_norm[:, t].double()
            row.update(mapping_norm_mean=float(g.mean()),
                       share_below_tol=float((g < tol).double().mean()))
        else:
            row.update(mapping_norm_mean=math.nan, share_below_tol=math.nan)
        rows.append(row)
    return rows


def _start_measures(result: PGAResult, loss_rtol: float, maxima_rtol: float,
                    climb_fraction: float, plateau_window: int) -> tuple[torch.Tensor, ...]:
    """Per start and example (S, N): iterations to the loss tolerance and to the climb
    fraction, the climb, whether it never climbs, whether it converged; and per example the
    distinct maxima among the converged starts."""
    it_loss = iters_to_loss_tol(result.losses, loss_rtol).double()
    it_climb = iters_to_climb_fraction(result.losses, climb_fraction).double()
    climb = (result.losses.max(dim=1).values - result.losses[:, 0]).double()
    no_climb = never_climbs(result.losses)
    conv = converged_starts(result.losses, plateau_window, loss_rtol)
    conv_maxima = converged_maxima(result.final_loss, conv, maxima_rtol)
    return it_loss, it_climb, climb, no_climb, conv, conv_maxima


def pga_example_rows(result: PGAResult, *, loss_rtol: float, maxima_rtol: float,
                     climb_fraction: float = 0.9,
                     plateau_window: int = 10) -> list[dict[str, float]]:
    """Per example, over its starts: the loss at the start and the end; the progress measures
    comparable across input scales — iterations to ``climb_fraction`` of each start's climb
    (:func:`iters_to_climb_fraction`, mean over starts, a start that never rises censored at T:
    ``climb_censored`` is the share of such starts; ``climb`` is the mean rise itself), the
    share of starts that reached the loss plateau (:func:`converged_starts` with
    ``plateau_window`` and ``loss_rtol``) and the distinct maxima among them
    (:func:`converged_maxima` at ``maxima_rtol``; NaN if none converged); and the earlier
    measures: iterations to the loss tolerance (:func:`iters_to_loss_tol`), to the mapping
    tolerance (censored at T: ``reached_tol`` is the share of starts that got there), the last
    mapping norm and :func:`local_maxima_stats` over all starts (with the spread relative to
    the mean final loss).

    Args:
        result: a :func:`pga` result.
        loss_rtol: relative tolerance of :func:`iters_to_loss_tol` and of the plateau.
        maxima_rtol: relative gap of :func:`local_maxima_stats` and :func:`converged_maxima`.
        climb_fraction: f of :func:`iters_to_climb_fraction`, in (0, 1].
        plateau_window: iterations of :func:`converged_starts`.

    Returns:
        N dicts ``{example, loss_start, loss_final, loss_final_max, climb, iters_to_climb,
        climb_censored, converged_share, maxima_converged, iters_to_loss_tol, iters_to_tol, reached_tol,
        mapping_norm_final, maxima_count, maxima_spread, maxima_rel_spread, maxima_std}``,
        means over the starts.
    """
    steps = result.mapping_norm.shape[1]
    it_loss, it_climb, climb, no_climb, conv, conv_maxima = _start_measures(
        result, loss_rtol, maxima_rtol, climb_fraction, plateau_window)
    it_map = result.iters_to_tol.double()
    stats = local_maxima_stats(result.final_loss, maxima_rtol)
    final = result.final_loss.double()
    rows = []
    for i in range(result.losses.shape[2]):
        mean_final = float(final[:, i].mean())
        spread = float(stats["spread"][i])
        rows.append(dict(
            example=i,
            loss_start=float(result.losses[:, 0, i].double().mean()),
            loss_final=mean_final,
            loss_final_max=float(final[:, i].max()),
            climb=float(climb[:, i].mean()),
            iters_to_climb=float(it_climb[:, i].mean()),
            climb_censored=float(no_climb[:, i].double().mean()),
            converged_share=float(conv[:, i].double().mean()),
            maxima_converged=float(conv_maxima[i]),
            iters_to_loss_tol=float(it_loss[:, i].mean()),
            iters_to_tol=float(it_map[:, i].mean()),
            reached_tol=float((result.iters_to_tol[:, i] < steps).double().mean()),
            mapping_norm_final=float(result.mapping_norm[:, -1, i].double().mean()),
            maxima_count=int(stats["count"][i]),
            maxima_spread=spread,
            maxima_rel_spread=spread / mean_final if mean_final > 0 else math.nan,
            maxima_std=float(stats["std"][i]),
        ))
    return rows
