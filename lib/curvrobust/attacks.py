"""Adversarial attacks under one calling convention, and the study's success-rate table.

Every attack is a function ``attack(model, x, y, eps, *, data_range=(0.0, 1.0), **params)``
returning detached adversarial inputs on ``x``'s device, modelled on torchattacks:

* the model is run in whatever mode it is in (wrap calls in :func:`eval_mode`);
* the model's ``training`` flags and parameter ``.grad`` fields are left untouched
  (gradients are taken with ``torch.autograd.grad`` w.r.t. a detached copy of ``x`` only);
* outputs are clipped to ``data_range`` (``None`` disables clipping).

Attacks (all L∞, registered in :data:`ATTACKS` with ``register_attack``):

* ``fgsm``: one signed-gradient step of size ε (Goodfellow et al. 2015);
* ``bim``: iterated FGSM projected onto the ε-ball (Kurakin et al. 2017);
* ``pgd``: BIM from a uniform random start, with optional restarts (Madry et al. 2018);
* ``cw``: C&W-L∞ as signed-gradient ascent of the clamped logit margin
  (:func:`cw_margin_loss`, Carlini & Wagner 2017).

The iterative ones share :func:`iterative_linf`, whose arithmetic is that of
``torchattacks.PGD``. They are dispatched with :func:`run_attack`, so any registered attack
plugs into :func:`attack_success_table` unchanged (its rows' ``adv_accuracy`` is the accuracy
under attack).
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

class Attack(Protocol):
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                 data_range: tuple[float, float] | None = (0.0, 1.0),
                 **params: Any) -> torch.Tensor: ...


ATTACKS: dict[str, Attack] = {}


def register_attack(name: str) -> Callable[[Attack], Attack]:
    """Decorator adding an attack function to :data:`ATTACKS` under ``name``."""

    def wrap(fn: Attack) -> Attack:
        ATTACKS[name] = fn
        return fn

    return wrap


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block; restore every submodule's previous mode."""
    previous = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, was_training in previous:
            m.training = was_training


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a stateless model."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not eps >= 0.0:  # also rejects NaN
        raise ValueError(f"eps must be >= 0, got eps={eps!r}")
    return eps


def _clip(x: torch.Tensor, data_range: tuple[float, float] | None) -> torch.Tensor:
    if data_range is None:
        return x
    lo, hi = data_range
    return x.clamp_(min=lo, max=hi)


def input_grad_sign(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(∇ₓ mean CE(model(x), y)), no gradients left on the model's parameters."""
    xg = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(xg), y.detach())
    (grad,) = torch.autograd.grad(loss, xg)
    return grad.sign_()


@register_attack("fgsm")
def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """FGSM (Goodfellow et al. 2015): clip(x + ε·sign(∇ₓ CE(model(x), y)), lo, hi).

    Same arithmetic as ``torchattacks.FGSM`` (mean CE), hence identical outputs."""
    eps = _check_eps(eps)
    if eps == 0.0:
        return _clip(x.detach().clone(), data_range)
    step = input_grad_sign(model, x, y)
    return _clip(torch.add(x.detach(), step, alpha=eps), data_range)


def fgsm_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float], *,
               data_range: tuple[float, float] | None = (0.0, 1.0)) -> Iterator[torch.Tensor]:
    """Yield ``fgsm(model, x, y, eps)`` for each ε, computing the gradient sign only once."""
    eps_list = [_check_eps(e) for e in eps_list]
    step = input_grad_sign(model, x, y) if any(e > 0 for e in eps_list) else None
    for eps in eps_list:
        if eps == 0.0 or step is None:
            yield _clip(x.detach().clone(), data_range)
        else:
            yield _clip(torch.add(x.detach(), step, alpha=eps), data_range)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(dim=1)


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy, the loss FGSM/BIM/PGD ascend (as torchattacks)."""
    return F.cross_entropy(logits, y)


def _check_kappa(kappa: float) -> float:
    kappa = float(kappa)
    if not kappa >= 0.0:  # also rejects NaN; +inf means no cap
        raise ValueError(f"kappa must be >= 0 (or inf), got kappa={kappa!r}")
    return kappa


def cw_margin_loss(logits: torch.Tensor, y: torch.Tensor, kappa: float = 0.0) -> torch.Tensor:
    """Mean over the batch of min(max_{j≠y} z_j − z_y, κ): the C&W objective an untargeted
    attacker ascends. It is −g(x) (the study's logit margin) capped at κ, so an example stops
    pulling once its best wrong logit leads the true one by κ; ``kappa=inf`` means no cap."""
    kappa = _check_kappa(kappa)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, C) with C >= 2, got {tuple(logits.shape)}")
    true = logits.gather(1, y[:, None]).squeeze(1)
    is_true = F.one_hot(y, logits.shape[1]).bool()
    best_wrong = logits.masked_fill(is_true, float("-inf")).amax(dim=1)
    margin = best_wrong - true
    if not math.isinf(kappa):
        margin = margin.clamp(max=kappa)
    return margin.mean()


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def _linf_ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int,
                 step_size: float, start_noise: torch.Generator | None,
                 data_range: tuple[float, float] | None) -> torch.Tensor:
    """One run of projected signed-gradient ascent; ``x`` and ``y`` are detached."""
    adv = x.clone()
    if start_noise is not None:
        adv = adv + torch.empty_like(adv).uniform_(-eps, eps, generator=start_noise)
        adv = _clip(adv, data_range)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = loss_fn(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        # torchattacks.PGD's arithmetic, operation for operation
        adv = adv.detach() + step_size * grad.sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        adv = _clip(x + delta, data_range)
    return adv


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
    """
    eps = _check_eps(eps)
    steps = _check_int("steps", steps, 1)
    restarts = _check_int("restarts", restarts, 1)
    step_size = float(step_size)
    if not (step_size > 0.0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be > 0 and finite, got step_size={step_size!r}")
    if restarts > 1 and not random_start:
        raise ValueError(f"restarts={restarts} > 1 needs random_start=True "
                         "(restarts from x itself would all be identical)")
    x = x.detach()
    y = y.detach()
    if eps == 0.0:
        return _clip(x.clone(), data_range)
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
    each projected onto the ε-ball and ``data_range``; starts at x. Equals
    ``torchattacks.PGD(model, eps, step_size, steps, random_start=False)``."""
    return iterative_linf(model, x, y, eps, ce_loss, steps=steps, step_size=step_size,
                          random_start=False, data_range=data_range)


@register_attack("pgd")
def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
        step_size: float = 0.1, random_start: bool = True, restarts: int = 1, seed: int = 0,
        generator: torch.Generator | None = None,
        data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """PGD (Madry et al. 2018): BIM on mean CE from a uniform random start in the ε-ball,
    optionally restarted (see :func:`iterative_linf` for ``seed``/``generator``/``restarts``)."""
    return iterative_linf(model, x, y, eps, ce_loss, steps=steps, step_size=step_size,
                          random_start=random_start, restarts=restarts, seed=seed,
                          generator=generator, data_range=data_range)


@register_attack("cw")
def cw(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
       step_size: float = 0.1, kappa: float = 0.0, random_start: bool = False, restarts: int = 1,
       seed: int = 0, generator: torch.Generator | None = None,
       data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """C&W-L∞ (Carlini & Wagner 2017) as in PGD-style evaluations: projected signed-gradient
    ascent of :func:`cw_margin_loss` with confidence ``kappa`` (0 = just cross the boundary)."""
    loss_fn = functools.partial(cw_margin_loss, kappa=_check_kappa(kappa))
    return iterative_linf(model, x, y, eps, loss_fn, steps=steps, step_size=step_size,
                          random_start=random_start, restarts=restarts, seed=seed,
                          generator=generator, data_range=data_range)


# Attacks with a cheaper way to produce all ε at once (must equal the per-ε calls exactly).
SWEEPS: dict[str, Callable[..., Iterator[torch.Tensor]]] = {"fgsm": fgsm_sweep}


def get_attack(kind: str) -> Attack:
    """Look up a registered attack; unknown names fail with the list of known ones."""
    try:
        return ATTACKS[kind]
    except KeyError:
        raise KeyError(f"unknown attack {kind!r}; known: {', '.join(sorted(ATTACKS))}") from None


def run_attack(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               **params: Any) -> torch.Tensor:
    """Dispatch ``ATTACKS[kind](model, x, y, **params)`` (e.g. ``eps=0.1``)."""
    return get_attack(kind)(model, x, y, **params)


def attack_success_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str,
                         eps_list: Sequence[float], params: dict[str, Any] | None = None,
                         batch_size: int = 1000,
                         device: str | torch.device | None = None) -> list[dict[str, Any]]:
    """The study's attack evaluation, one row per ε.

    Only test images the model classifies correctly are attacked (``correct`` = their count);
    ``successes`` = how many of them the attack turns into misclassifications;
    ``success_rate`` = successes / correct (NaN if correct == 0);
    ``adv_accuracy`` = (correct − successes) / n_test. The model runs in eval mode (its
    previous mode is restored). ``device``: where to compute (the model is moved there with
    ``model.to``); default: the model's current device.
    """
    eps_list = [_check_eps(e) for e in eps_list]
    params = dict(params or {})
    attack = get_attack(kind)
    sweep = SWEEPS.get(kind)
    if device is not None:
        model.to(device)
    dev = model_device(model)
    n_test = int(x.shape[0])
    if y.shape[0] != n_test:
        raise ValueError(f"x has {n_test} examples but y has {y.shape[0]}")
    correct = 0
    successes = [0] * len(eps_list)
    with eval_mode(model):
        for start in range(0, n_test, batch_size):
            xb = x[start:start + batch_size].to(dev)
            yb = y[start:start + batch_size].to(dev)
            ok = _predict(model, xb) == yb
            n_ok = int(ok.sum())
            if n_ok == 0:
                continue
            correct += n_ok
            xb, yb = xb[ok], yb[ok]
            if sweep is not None:
                advs: Iterator[torch.Tensor] = sweep(model, xb, yb, eps_list, **params)
            else:
                advs = (attack(model, xb, yb, eps, **params) for eps in eps_list)
            for i, adv in enumerate(advs):
                successes[i] += int((_predict(model, adv) != yb).sum())
    rows = []
    for eps, s in zip(eps_list, successes):
        rows.append({
            "eps": eps,
            "n_test": n_test,
            "correct": correct,
            "successes": s,
            "success_rate": s / correct if correct else math.nan,
            "adv_accuracy": (correct - s) / n_test if n_test else math.nan,
        })
    return rows


def fgsm_success_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       eps_list: Sequence[float], batch_size: int = 1000,
                       device: str | torch.device | None = None, *,
                       data_range: tuple[float, float] | None = (0.0, 1.0)) -> list[dict[str, Any]]:
    """:func:`attack_success_table` for FGSM."""
    return attack_success_table(model, x, y, "fgsm", eps_list, {"data_range": data_range},
                                batch_size=batch_size, device=device)


from . import haat as _haat  # noqa: E402,F401  (registers "haat"; it imports this module)
