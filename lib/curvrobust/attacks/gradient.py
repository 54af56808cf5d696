"""The gradient-based L∞ attacks: FGSM, BIM, PGD and C&W, under one calling convention.

``attack(model, x, y, eps, *, data_range=(0.0, 1.0), **params)`` returns detached adversarial
inputs on ``x``'s device (:mod:`curvrobust.attacks.base`); run attacks on a model in eval mode
(:func:`curvrobust.models.inference.eval_mode`).

* ``fgsm``: one signed-gradient step of size ε (Goodfellow et al. 2015);
* ``bim``: iterated FGSM projected onto the ε-ball (Kurakin et al. 2017);
* ``pgd``: BIM from a uniform random start, with optional restarts (Madry et al. 2018);
* ``cw``: C&W-L∞ as signed-gradient ascent of the clamped logit margin
  (:func:`cw_margin_loss`, Carlini & Wagner 2017).

The iterative ones share :func:`iterative_linf`, whose arithmetic is that of
``torchattacks.PGD``. :data:`SWEEPS` lists the attacks with a cheaper way to produce all ε at
once (:func:`fgsm_sweep`), used by :func:`curvrobust.attacks.outcomes.attack_outcomes`.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from curvrobust._checks import check_eps, check_int, check_kappa
from curvrobust.attacks.base import clip_to_range, register_attack

__all__ = ["SWEEPS", "bim", "ce_loss", "cw", "cw_margin_loss", "fgsm", "fgsm_sweep",
           "input_grad_sign", "iterative_linf", "linf_ascent_steps", "pgd"]



def input_grad_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∇ₓ mean CE(model(x), y)), no gradients left on the model's parameters.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) inputs.
        y: (N,) long labels.

    Returns:
        A tensor shaped like ``x`` with entries in {−1, 0, 1}.
    """
    xg = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(xg), y.detach())
    (grad,) = torch.autograd.grad(loss, xg)
    return grad.sign_()


@register_attack("fgsm")
def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): clip(x + ε·sign(∇ₓ CE(model(x), y)), lo, hi).

    Same arithmetic as ``torchattacks.FGSM`` (mean CE), hence identical outputs.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0.
        data_range: (lo, hi) to clip to, or None.

    Returns:
        Detached adversarial inputs shaped like ``x``; ε = 0 gives the clipped clean input.

    Examples:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from curvrobust.attacks import fgsm
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])   # pixels in [0, 1]
        >>> x_adv = fgsm(model, x, y, eps=0.1)
        >>> x_adv.shape, bool((x_adv - x).abs().max() <= 0.1 + 1e-6)    # ‖δ‖∞ <= ε
        (torch.Size([5, 1, 4, 4]), True)
        >>> bool(x_adv.min() >= 0 and x_adv.max() <= 1)                  # clipped to [0, 1]
        True
        >>> bool(F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y))
        True
    """
    eps = check_eps(eps)
    if eps == 0.0:
        return clip_to_range(x.detach().clone(), data_range)
    step = input_grad_sign(model, x, y)
    return clip_to_range(torch.add(x.detach(), step, alpha=eps), data_range)


def fgsm_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float], *,
               data_range: tuple[float, float] | None = (0.0, 1.0)) -> Iterator[torch.Tensor]:
    """Yield ``fgsm(model, x, y, eps)`` for each ε, computing the gradient sign only once.

    Args:
        model, x, y, data_range: as :func:`fgsm`.
        eps_list: the radii, each >= 0.

    Yields:
        One detached tensor shaped like ``x`` per ε, in order, equal to the per-ε call.
    """
    eps_list = [check_eps(e) for e in eps_list]
    step = input_grad_sign(model, x, y) if any(e > 0 for e in eps_list) else None
    for eps in eps_list:
        if eps == 0.0 or step is None:
            yield clip_to_range(x.detach().clone(), data_range)
        else:
            yield clip_to_range(torch.add(x.detach(), step, alpha=eps), data_range)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(dim=1)


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy, the loss FGSM/BIM/PGD ascend (as torchattacks).

    Args:
        logits: (N, C) logits.
        y: (N,) long labels.

    Returns:
        A 0-d tensor.
    """
    return F.cross_entropy(logits, y)


def cw_margin_loss(logits: torch.Tensor, y: torch.Tensor, kappa: float = 0.0) -> torch.Tensor:
    """Mean over the batch of min(max_{j≠y} z_j − z_y, κ): the C&W objective an untargeted
    attacker ascends.

    It is −g(x) (the study's logit margin) capped at κ, so an example stops pulling once its
    best wrong logit leads the true one by κ; ``kappa=inf`` means no cap.

    Args:
        logits: (N, C) logits z, C >= 2.
        y: (N,) long labels.
        kappa: the cap κ >= 0 (``inf``: none).

    Returns:
        A 0-d tensor, differentiable w.r.t. ``logits``.
    """
    kappa = check_kappa(kappa)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, C) with C >= 2, got {tuple(logits.shape)}")
    true = logits.gather(1, y[:, None]).squeeze(1)
    is_true = F.one_hot(y, logits.shape[1]).bool()
    best_wrong = logits.masked_fill(is_true, float("-inf")).amax(dim=1)
    margin = best_wrong - true
    if not math.isinf(kappa):
        margin = margin.clamp(max=kappa)
    return margin.mean()


def _linf_ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int,
                 step_size: float, start_noise: torch.Generator | None,
                 data_range: tuple[float, float] | None) -> torch.Tensor:
    """One run of projected signed-gradient ascent; ``x`` and ``y`` are detached."""
    adv = x.clone()
    if start_noise is not None:
        adv = adv + torch.empty_like(adv).uniform_(-eps, eps, generator=start_noise)
        adv = clip_to_range(adv, data_range)
    return linf_ascent_steps(model, x, adv, y, eps, loss_fn, steps, step_size, data_range)


def linf_ascent_steps(model: nn.Module, x: torch.Tensor, adv: torch.Tensor, y: torch.Tensor,
                      eps: float, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      steps: int, step_size: float,
                      data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """``steps`` projected signed-gradient ascent steps of ``loss_fn`` from the iterate ``adv``
    of clean ``x`` (so S steps continued for S more equal 2S steps from the same start).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) clean inputs (detached).
        adv: (N, ...) the iterate to continue from.
        y: (N,) long labels (detached).
        eps: L∞ radius ε.
        loss_fn: ``loss_fn(logits, y)`` -> 0-d tensor to ascend.
        steps: number of steps.
        step_size: size of each signed step.
        data_range: (lo, hi) to clip every iterate to, or None.

    Returns:
        The detached final iterate.
    """
    adv = adv.detach().clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = loss_fn(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        # torchattacks.PGD's arithmetic, operation for operation
        adv = adv.detach() + step_size * grad.sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        adv = clip_to_range(x + delta, data_range)
    return adv.detach()


def iterative_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                   steps: int, step_size: float, random_start: bool = False, restarts: int = 1,
                   seed: int = 0, generator: torch.Generator | None = None,
                   data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Projected signed-gradient ascent of ``loss_fn(model(x), y)`` in the L∞ ε-ball:
    x_{t+1} = clip(proj_ε(x_t + step_size·sign(∇ₓ loss)), data_range).

    ``random_start``: x_0 = clip(x + U[−ε, ε]) with the noise drawn from ``generator`` if
    given (it advances, e.g. across training steps), else from a fresh generator seeded with
    ``seed`` (so evaluation is deterministic). ``restarts`` > 1 repeats the attack from new
    random starts and keeps, per example, the first run that the model misclassifies (else
    the last run); the first run is the ``restarts=1`` result, so restarts only add successes.
    ε = 0 returns the clipped clean input.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0.
        loss_fn: ``loss_fn(logits, y)`` -> 0-d tensor to ascend (e.g. :func:`ce_loss`).
        steps: number of ascent steps, >= 1.
        step_size: size of each signed step, > 0.
        random_start: start from a uniform point of the ε-ball instead of x.
        restarts: runs from new random starts, >= 1 (> 1 needs ``random_start``).
        seed: seed of the start noise when no ``generator`` is given.
        generator: generator on x's device for the start noise.
        data_range: (lo, hi) to clip every iterate to, or None.

    Returns:
        Detached adversarial inputs shaped like ``x``.
    """
    eps = check_eps(eps)
    steps = check_int("steps", steps, 1)
    restarts = check_int("restarts", restarts, 1)
    step_size = float(step_size)
    if not (step_size > 0.0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be > 0 and finite, got step_size={step_size!r}")
    if restarts > 1 and not random_start:
        raise ValueError(f"restarts={restarts} > 1 needs random_start=True "
                         "(restarts from x itself would all be identical)")
    x = x.detach()
    y = y.detach()
    if eps == 0.0:
        return clip_to_range(x.clone(), data_range)
    noise = None
    if random_start:
        noise = generator if generator is not None else \
            torch.Generator(device=x.device).manual_seed(int(seed))
    best = _linf_ascent(model, x, y, eps, loss_fn, steps, step_size, noise, data_range)
    if restarts == 1:
        return best
    return _restart_unfooled(best, restarts - 1, model, y, lambda: _linf_ascent(
        model, x, y, eps, loss_fn, steps, step_size, noise, data_range))


def _restart_unfooled(best: torch.Tensor, more: int, model: nn.Module, y: torch.Tensor,
                      run: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Up to ``more`` further runs, each kept (in ``best``, in place) on the examples no
    earlier run fooled; stops early once all are fooled."""
    fooled = _predict(model, best) != y
    for _ in range(more):
        if bool(fooled.all()):
            break
        adv = run()
        keep = ~fooled
        best[keep] = adv[keep]
        fooled |= _predict(model, adv) != y
    return best


@register_attack("bim")
def bim(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
        step_size: float = 0.1,
        data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """BIM / I-FGSM (Kurakin et al. 2017): ``steps`` FGSM steps of ``step_size`` on mean CE,
    each projected onto the ε-ball and ``data_range``; starts at x.

    Equals ``torchattacks.PGD(model, eps, step_size, steps, random_start=False)``.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0.
        steps: number of steps, >= 1.
        step_size: size of each signed step, > 0.
        data_range: (lo, hi) to clip to, or None.

    Returns:
        Detached adversarial inputs shaped like ``x``.
    """
    return iterative_linf(model, x, y, eps, ce_loss, steps=steps, step_size=step_size,
                          random_start=False, data_range=data_range)


@register_attack("pgd")
def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
        step_size: float = 0.1, random_start: bool = True, restarts: int = 1, seed: int = 0,
        generator: torch.Generator | None = None,
        data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """PGD (Madry et al. 2018): BIM on mean CE from a uniform random start in the ε-ball,
    optionally restarted.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0.
        steps: number of steps, >= 1.
        step_size: size of each signed step, > 0.
        random_start: start from a uniform point of the ε-ball (False: BIM).
        restarts: runs from new random starts, >= 1 (see :func:`iterative_linf`).
        seed: seed of the start noise when no ``generator`` is given.
        generator: generator on x's device for the start noise (advances).
        data_range: (lo, hi) to clip to, or None.

    Returns:
        Detached adversarial inputs shaped like ``x``.

    Examples:
        >>> import torch
        >>> from curvrobust.attacks import pgd
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
        >>> x_adv = pgd(model, x, y, eps=0.1, steps=5, step_size=0.025, restarts=2, seed=0)
        >>> x_adv.shape, bool((x_adv - x).abs().max() <= 0.1 + 1e-6)    # ‖δ‖∞ <= ε
        (torch.Size([5, 1, 4, 4]), True)
        >>> torch.equal(x_adv, pgd(model, x, y, eps=0.1, steps=5, step_size=0.025,
        ...                        restarts=2, seed=0))                  # the seed fixes it
        True
    """
    return iterative_linf(model, x, y, eps, ce_loss, steps=steps, step_size=step_size,
                          random_start=random_start, restarts=restarts, seed=seed,
                          generator=generator, data_range=data_range)


@register_attack("cw")
def cw(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
       step_size: float = 0.1, kappa: float = 0.0, random_start: bool = False, restarts: int = 1,
       seed: int = 0, generator: torch.Generator | None = None,
       data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """C&W-L∞ (Carlini & Wagner 2017) as in PGD-style evaluations: projected signed-gradient
    ascent of :func:`cw_margin_loss` with confidence ``kappa`` (0 = just cross the boundary).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0.
        steps: number of steps, >= 1.
        step_size: size of each signed step, > 0.
        kappa: confidence κ >= 0 (``inf``: no cap).
        random_start, restarts, seed, generator: as :func:`pgd` (default: no random start).
        data_range: (lo, hi) to clip to, or None.

    Returns:
        Detached adversarial inputs shaped like ``x``.
    """
    loss_fn = functools.partial(cw_margin_loss, kappa=check_kappa(kappa))
    return iterative_linf(model, x, y, eps, loss_fn, steps=steps, step_size=step_size,
                          random_start=random_start, restarts=restarts, seed=seed,
                          generator=generator, data_range=data_range)


# Attacks with a cheaper way to produce all ε at once (must equal the per-ε calls exactly).
SWEEPS: dict[str, Callable[..., Iterator[torch.Tensor]]] = {"fgsm": fgsm_sweep}
