"""The Square attack (Andriushchenko et al. 2020), L∞: torchattacks 3.5.1's ``Square`` run in a
forked RNG, registered as ``square``.

Its own module (like :mod:`curvrobust.attacks.second_order`) so that the training code, which imports
:mod:`curvrobust.attacks` and so every registered attack, does not depend on the AutoAttack
cascade (:mod:`curvrobust.attacks.autoattack`, which builds its Square stage with :func:`square_linf`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from curvrobust.attacks.base import check_eps, check_int, register_attack
from curvrobust.models.inference import eval_mode

__all__ = ["forked_rng", "square", "square_linf"]


@contextlib.contextmanager
def forked_rng(seed: int) -> Iterator[None]:
    """Run the block in a forked global RNG seeded with ``seed``; restore the caller's after.

    torchattacks' attacks reseed the global CPU and current-CUDA-device generators inside
    every call; running them in this fork makes the result a function of ``seed`` and leaves
    the caller's random stream exactly where it was.

    Args:
        seed: seed of the CPU (and current CUDA device's) generator inside the block.

    Yields:
        None.
    """
    cuda = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(int(seed))
        if cuda:
            torch.cuda.manual_seed(int(seed))
        yield


def square_linf(model: nn.Module, eps: float, *, queries: int, p_init: float,
                seed: int) -> Any:
    """torchattacks 3.5.1's L∞ ``Square`` (margin loss, one restart) with these settings.

    The one place the Square attack is built: the registered ``square`` attack
    (:func:`square`) and the cascade of :func:`curvrobust.attacks.autoattack.autoattack_eval` both use it.
    Call the result inside :func:`forked_rng` (it reseeds the global RNG).

    Args:
        model: classifier mapping (N, C, H, W) inputs in [0, 1] to (N, C) logits.
        eps: L∞ radius ε > 0.
        queries: model queries per image (iterations of the random search), >= 1.
        p_init: initial share of the image a square covers, in (0, 1].
        seed: the attack's seed (it reseeds the global generators with it).

    Returns:
        A ``torchattacks.Square`` instance; ``atk(x, y)`` returns adversarial inputs.
    """
    import torchattacks  # optional dependency (pyproject extra "reference")

    return torchattacks.Square(model, norm="Linf", eps=eps, n_queries=queries, n_restarts=1,
                               p_init=p_init, loss="margin", seed=seed)



@register_attack("square")
def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
           queries: int = 1000, p_init: float = 0.8, seed: int = 0,
           data_range: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """Square attack (Andriushchenko et al. 2020), L∞: random search over vertices of the
    ε-ball by square-shaped updates, accepting those that lower the margin loss; it queries
    the model's outputs only, so a masked gradient cannot stop it.

    torchattacks' ``Square`` (:func:`square_linf`, as in the AutoAttack
    cascade) run in a forked RNG (:func:`forked_rng`):
    the same seed gives the same result, and the caller's RNG is left untouched. torchattacks
    runs the model in eval mode; every module's mode is restored afterwards. Images already
    misclassified are returned unchanged.

    Args:
        model: classifier mapping (N, C, H, W) inputs to (N, C) logits.
        x: (N, C, H, W) clean inputs in [0, 1].
        y: (N,) long true labels.
        eps: L∞ radius ε >= 0; ε = 0 returns the clean input.
        queries: model queries per image, >= 1.
        p_init: initial share of the image a square covers, in (0, 1].
        seed: seed of the random search.
        data_range: must be (0, 1), torchattacks' fixed data range.

    Returns:
        Detached adversarial inputs shaped like ``x``, on ``x``'s device, in [0, 1].
    """
    eps = check_eps(eps)
    queries = check_int("queries", queries, 1)
    p_init = float(p_init)
    if not 0.0 < p_init <= 1.0:
        raise ValueError(f"p_init must be in (0, 1], got p_init={p_init!r}")
    if data_range is None or tuple(float(v) for v in data_range) != (0.0, 1.0):
        raise ValueError(f"square works on inputs in [0, 1] (torchattacks' range); got "
                         f"data_range={data_range!r}")
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"square needs (N, C, H, W) images x and N labels y, got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    x, y = x.detach(), y.detach()
    if len(x) and (x.min().item() < 0.0 or x.max().item() > 1.0):
        raise ValueError(f"x must lie in [0, 1], got [{x.min().item():.6g}, "
                         f"{x.max().item():.6g}]")
    if eps == 0.0 or len(x) == 0:
        return x.clone()
    with eval_mode(model), forked_rng(seed):
        adv = square_linf(model, eps, queries=queries, p_init=p_init, seed=int(seed))(x, y)
    return adv.detach().to(x.device)
