"""Adversarial attacks under one calling convention, and the study's success-rate table.

Every attack is a function ``attack(model, x, y, eps, *, data_range=(0.0, 1.0), **params)``
returning detached adversarial inputs on ``x``'s device, modelled on torchattacks:

* the model is run in whatever mode it is in (wrap calls in :func:`eval_mode`);
* the model's ``training`` flags and parameter ``.grad`` fields are left untouched
  (gradients are taken with ``torch.autograd.grad`` w.r.t. a detached copy of ``x`` only);
* outputs are clipped to ``data_range`` (``None`` disables clipping).

Attacks are registered in :data:`ATTACKS` (``register_attack``) and dispatched with
:func:`run_attack`, so later attacks (BIM, PGD, C&W, HAAT) plug into
:func:`attack_success_table` unchanged.
"""

from __future__ import annotations

import contextlib
import math
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


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(dim=1)


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
