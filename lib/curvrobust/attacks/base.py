"""What every attack shares: the calling convention, argument checks and the registry.

Every attack is a function ``attack(model, x, y, eps, *, data_range=(0.0, 1.0), **params)``
(:class:`Attack`) returning detached adversarial inputs on ``x``'s device, modelled on
torchattacks:

* the model is run in whatever mode it is in (wrap calls in
  :func:`curvrobust.models.inference.eval_mode`);
* the model's ``training`` flags and parameter ``.grad`` fields are left untouched
  (gradients are taken with ``torch.autograd.grad`` w.r.t. a detached copy of ``x`` only);
* outputs are clipped to ``data_range`` (``None`` disables clipping; :func:`clip_to_range`).

Attacks register themselves in :data:`ATTACKS` with the :func:`register_attack` decorator.
This module holds the registry only; :mod:`curvrobust.attacks` imports every module that
defines an attack, so look attacks up after importing it (``attacks.get_attack``), not here.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch
from torch import nn

from curvrobust._checks import check_eps, check_int, check_kappa

__all__ = ["Attack", "ATTACKS", "register_attack", "get_attack", "check_eps", "check_int",
           "check_kappa", "clip_to_range"]


class Attack(Protocol):
    """The calling convention of a registered attack.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits, run in its current mode.
        x: (N, ...) clean inputs.
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0 of the perturbation.
        data_range: (lo, hi) the outputs are clipped to, or None for no clipping.
        **params: the attack's own parameters (steps, step_size, ...).

    Returns:
        Detached adversarial inputs, shaped like ``x``, on ``x``'s device.
    """

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                 data_range: tuple[float, float] | None = (0.0, 1.0),
                 **params: Any) -> torch.Tensor: ...


ATTACKS: dict[str, Attack] = {}
"""Registered attacks by name (filled as the modules defining them are imported)."""


def register_attack(name: str) -> Callable[[Attack], Attack]:
    """Decorator adding an attack function to :data:`ATTACKS` under ``name``.

    Args:
        name: the attack's kind, as used in configs (``adversary: {kind: name}``).

    Returns:
        A decorator that registers the function and returns it unchanged.
    """

    def wrap(fn: Attack) -> Attack:
        ATTACKS[name] = fn
        return fn

    return wrap


def get_attack(kind: str) -> Attack:
    """Look up a registered attack; unknown names fail with the list of known ones.

    Args:
        kind: a key of :data:`ATTACKS` (e.g. ``"fgsm"``, ``"pgd"``, ``"cw"``, ``"haat"``).

    Returns:
        The attack function (:class:`Attack`).

    Raises:
        KeyError: ``kind`` is not registered.

    Examples:
        Every attack takes ``(model, x, y, eps, **params)`` and returns adversarial inputs
        shaped like ``x`` (:class:`Attack`); a config's ``kind`` names it:

        >>> import torch
        >>> from curvrobust.attacks import fgsm, get_attack
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
        >>> get_attack("fgsm") is fgsm
        True
        >>> x_adv = get_attack("bim")(model, x, y, 0.1, steps=3, step_size=0.05)
        >>> x_adv.shape, bool((x_adv - x).abs().max() <= 0.1 + 1e-6)
        (torch.Size([5, 1, 4, 4]), True)
        >>> get_attack("deepfool")                 # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        KeyError: "unknown attack 'deepfool'; known: bim, cw, fgsm, ..."
    """
    try:
        return ATTACKS[kind]
    except KeyError:
        raise KeyError(f"unknown attack {kind!r}; known: {', '.join(sorted(ATTACKS))}") from None


def clip_to_range(x: torch.Tensor, data_range: tuple[float, float] | None) -> torch.Tensor:
    """Clamp ``x`` IN PLACE to ``data_range`` = (lo, hi) and return it; ``None``: ``x``
    unchanged."""
    if data_range is None:
        return x
    lo, hi = data_range
    return x.clamp_(min=lo, max=hi)
