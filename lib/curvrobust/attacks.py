"""Adversarial attacks under one calling convention, their per-image outcomes, and the
study's success-rate table.

This module is the one list of the attacks that exist: importing it registers every attack
in :data:`ATTACKS` (its own and those of :mod:`curvrobust.haat`). The calling convention,
``attack(model, x, y, eps, *, data_range=(0.0, 1.0), **params)`` returning detached
adversarial inputs on ``x``'s device, the argument checks and the registry live in
:mod:`curvrobust.attackbase`; run attacks on a model in eval mode
(:func:`curvrobust.inference.eval_mode`).

Attacks (all L∞):

* ``fgsm``: one signed-gradient step of size ε (Goodfellow et al. 2015);
* ``bim``: iterated FGSM projected onto the ε-ball (Kurakin et al. 2017);
* ``pgd``: BIM from a uniform random start, with optional restarts (Madry et al. 2018);
* ``cw``: C&W-L∞ as signed-gradient ascent of the clamped logit margin
  (:func:`cw_margin_loss`, Carlini & Wagner 2017);
* ``haat``: PGD with a second-order direction from the input Hessian
  (:func:`curvrobust.haat.haat`, study 001);
* ``square``: the score-based random search of Andriushchenko et al. (2020), torchattacks'
  ``Square`` run in a forked RNG (:mod:`curvrobust.square`), a black-box
  check on gradient masking.

The iterative ones share :func:`iterative_linf`, whose arithmetic is that of
``torchattacks.PGD``. They are dispatched with :func:`run_attack`, so any registered attack
plugs into :func:`attack_outcomes` unchanged: one row per attacked test image and ε
(:data:`OUTCOME_COLUMNS`), from which :func:`summarise_outcomes` counts the study's table
(:func:`attack_success_table`; its rows' ``adv_accuracy`` is the accuracy under attack).
:mod:`curvrobust.robust` builds the shared test subsets and the worst case over attacks on
these rows.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attackbase import (ATTACKS, Attack, check_eps, check_int, check_kappa, clip_to_range,
                         get_attack, register_attack)
# haat and square (each registers its attack) and autoattack import attackbase, not this module
from .haat import haat, haat_trace
from .inference import decision_margin, eval_mode, model_device
from .square import square  # registers "square"

__all__ = ["ATTACKS", "Attack", "OUTCOME_COLUMNS", "SWEEPS", "attack_outcomes",
           "attack_success_table", "bim", "ce_loss", "cw", "cw_margin_loss", "fgsm",
           "fgsm_success_table", "fgsm_sweep", "get_attack", "haat", "haat_trace",
           "input_grad_sign", "iterative_linf", "linf_ascent_steps", "pgd", "register_attack", "run_attack", "square",
           "summarise_outcomes"]

OUTCOME_COLUMNS = ("attack", "eps", "index", "label", "correct", "attacked", "success", "margin")
"""Columns of a per-image outcome row, in order (:func:`attack_outcomes`)."""


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
    fooled = _predict(model, best) != y
    for _ in range(restarts - 1):
        if bool(fooled.all()):
            break
        adv = _linf_ascent(model, x, y, eps, loss_fn, steps, step_size, noise, data_range)
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


def run_attack(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               **params: Any) -> torch.Tensor:
    """Dispatch ``ATTACKS[kind](model, x, y, **params)`` (e.g. ``eps=0.1``).

    Args:
        kind: a registered attack name (:func:`get_attack`).
        model: classifier mapping (N, ...) inputs to (N, C) logits; run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        **params: the attack's arguments, ``eps`` included.

    Returns:
        Detached adversarial inputs shaped like ``x``.

    Raises:
        KeyError: unknown ``kind``.
    """
    return get_attack(kind)(model, x, y, **params)


def attack_outcomes(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    index: torch.Tensor | Sequence[int] | None, kind: str,
                    eps_list: Sequence[float], params: Mapping[str, Any] | None = None,
                    batch_size: int = 1000, device: str | torch.device | None = None,
                    name: str | None = None) -> list[dict[str, Any]]:
    """Per-image outcomes of one attack: a row per test image and ε (:data:`OUTCOME_COLUMNS`).

    Only images the model classifies correctly are attacked. A row holds ``attack`` (``name``),
    ``eps``, ``index`` (the image's test-set index), ``label``, ``correct`` (1 if the clean
    image is classified correctly), ``attacked`` (1 if the attack ran on it, i.e. ``correct``),
    ``success`` (1 if attacked and the adversarial input is misclassified) and ``margin``, the
    decision margin z_y − max_{j≠y} z_j (:func:`curvrobust.inference.decision_margin`) of the
    final input: the adversarial one if attacked, else the clean one. The model runs in eval
    mode (its previous modes are restored). The study's counts per ε are
    :func:`summarise_outcomes` of these rows.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) test inputs (any device; moved batch by batch).
        y: (N,) long labels.
        index: (N,) test-set indices of x's rows (e.g. :func:`curvrobust.robust.eval_subset`),
            or None for 0..N−1.
        kind: a registered attack name.
        eps_list: the radii ε >= 0, each at most once.
        params: the attack's other arguments (not ``eps``).
        batch_size: examples attacked at a time, >= 1.
        device: where to compute (the model is moved there with ``model.to``); default: the
            model's current device.
        name: the ``attack`` column (a config key or a suite name); default ``kind``.

    Returns:
        A list of dicts keyed by :data:`OUTCOME_COLUMNS`, ε by ε (in the order of
        ``eps_list``) and within an ε in the order of x's rows.
    """
    eps_list = [check_eps(e) for e in eps_list]
    if len(set(eps_list)) != len(eps_list):
        raise ValueError(f"eps_list must name each ε once, got eps_list={eps_list!r}")
    params = dict(params or {})
    attack = get_attack(kind)
    sweep = SWEEPS.get(kind)
    batch_size = check_int("batch_size", batch_size, 1)
    n_test = int(x.shape[0])
    if y.shape[0] != n_test:
        raise ValueError(f"x has {n_test} examples but y has {y.shape[0]}")
    index = torch.arange(n_test) if index is None else \
        torch.as_tensor(index, dtype=torch.long).flatten()
    if len(index) != n_test:
        raise ValueError(f"index must give one test-set index per example: {len(index)} "
                         f"indices for {n_test} examples")
    name = kind if name is None else str(name)
    if device is not None:
        model.to(device)
    dev = model_device(model)
    correct = torch.zeros(n_test, dtype=torch.bool)
    success = torch.zeros(len(eps_list), n_test, dtype=torch.bool)
    margin = torch.empty(len(eps_list), n_test, dtype=torch.float64)
    with eval_mode(model):
        for start in range(0, n_test, batch_size):
            xb = x[start:start + batch_size].to(dev)
            yb = y[start:start + batch_size].to(dev)
            stop = start + len(xb)
            with torch.no_grad():
                logits = model(xb)
            ok = logits.argmax(dim=1) == yb
            correct[start:stop] = ok.cpu()
            margin[:, start:stop] = decision_margin(logits, yb).cpu().double()
            if not bool(ok.any()):
                continue
            rows = ok.nonzero().flatten().cpu() + start
            xb, yb = xb[ok], yb[ok]
            if sweep is not None:
                advs: Iterator[torch.Tensor] = sweep(model, xb, yb, eps_list, **params)
            else:
                advs = (attack(model, xb, yb, eps, **params) for eps in eps_list)
            for i, adv in enumerate(advs):
                with torch.no_grad():
                    z = model(adv.to(dev))
                success[i, rows] = (z.argmax(dim=1) != yb).cpu()
                margin[i, rows] = decision_margin(z, yb).cpu().double()
    index_l, label_l, correct_l = index.tolist(), y.tolist(), correct.int().tolist()
    out = []
    for i, eps in enumerate(eps_list):
        for idx, label, ok_, s, m in zip(index_l, label_l, correct_l, success[i].int().tolist(),
                                         margin[i].tolist()):
            out.append({"attack": name, "eps": eps, "index": idx, "label": label,
                        "correct": ok_, "attacked": ok_, "success": s, "margin": m})
    return out


def summarise_outcomes(rows: Iterable[Mapping[str, Any]],
                       eps_list: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """The study's attack table from one attack's per-image outcome rows, one row per ε.

    ``n_test`` = images with a row at that ε, ``correct`` = those classified correctly,
    ``successes`` = those the attack turned into misclassifications,
    ``success_rate`` = successes / correct (NaN if correct == 0) and
    ``adv_accuracy`` = (correct − successes) / n_test (NaN if n_test == 0).

    Args:
        rows: outcome rows of a single attack (:func:`attack_outcomes`, or read back from a
            CSV: values are converted with ``int`` / ``float``).
        eps_list: the ε to report, in this order (an ε without rows gets n_test = 0);
            default: every ε in the rows, in order of first appearance.

    Returns:
        A list of dicts ``{eps, n_test, correct, successes, success_rate, adv_accuracy}``.
    """
    counts: dict[float, list[int]] = {}
    names = set()
    for r in rows:
        names.add(r["attack"])
        c = counts.setdefault(float(r["eps"]), [0, 0, 0])
        c[0] += 1
        c[1] += int(r["correct"])
        c[2] += int(r["success"])
    if len(names) > 1:
        raise ValueError(f"rows must come from one attack, got attacks {sorted(names)}")
    order = list(counts) if eps_list is None else [float(e) for e in eps_list]
    out = []
    for eps in order:
        n_test, correct, s = counts.get(eps, (0, 0, 0))
        out.append({
            "eps": eps,
            "n_test": n_test,
            "correct": correct,
            "successes": s,
            "success_rate": s / correct if correct else math.nan,
            "adv_accuracy": (correct - s) / n_test if n_test else math.nan,
        })
    return out


def attack_success_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str,
                         eps_list: Sequence[float], params: dict[str, Any] | None = None,
                         batch_size: int = 1000,
                         device: str | torch.device | None = None) -> list[dict[str, Any]]:
    """The study's attack evaluation, one row per ε: :func:`summarise_outcomes` of
    :func:`attack_outcomes`.

    Only test images the model classifies correctly are attacked (``correct`` = their count);
    ``successes`` = how many of them the attack turns into misclassifications;
    ``success_rate`` = successes / correct (NaN if correct == 0);
    ``adv_accuracy`` = (correct − successes) / n_test. The model runs in eval mode (its
    previous mode is restored).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) test inputs (any device; moved batch by batch).
        y: (N,) long labels.
        kind: a registered attack name.
        eps_list: the radii ε >= 0, one row each.
        params: the attack's other arguments (not ``eps``).
        batch_size: examples attacked at a time.
        device: where to compute (the model is moved there with ``model.to``); default: the
            model's current device.

    Returns:
        A list of dicts ``{eps, n_test, correct, successes, success_rate, adv_accuracy}``,
        in the order of ``eps_list``.
    """
    rows = attack_outcomes(model, x, y, None, kind, eps_list, params, batch_size=batch_size,
                           device=device)
    return summarise_outcomes(rows, [check_eps(e) for e in eps_list])


def fgsm_success_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       eps_list: Sequence[float], batch_size: int = 1000,
                       device: str | torch.device | None = None, *,
                       data_range: tuple[float, float] | None = (0.0, 1.0)) -> list[dict[str, Any]]:
    """:func:`attack_success_table` for FGSM (arguments and rows as there)."""
    return attack_success_table(model, x, y, "fgsm", eps_list, {"data_range": data_range},
                                batch_size=batch_size, device=device)

