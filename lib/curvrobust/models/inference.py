"""Running a model for inference: its mode, its device, and the decision margin of its logits.

The small helpers every analysis module shares (attacks, curvature statistics, surfaces,
training objectives). No attack code; the only dependency is torch.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = ["eval_mode", "model_device", "decision_margin"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block; restore every submodule's previous mode.

    Args:
        model: any module; its submodules may be in mixed train/eval modes.

    Yields:
        ``model`` itself, in eval mode. On exit (also on an exception) each submodule's
        ``training`` flag is set back to what it was on entry.
    """
    previous = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, was_training in previous:
            m.training = was_training


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a stateless model.

    Args:
        model: the module.

    Returns:
        The ``torch.device`` inputs must be moved to before calling ``model``.
    """
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def decision_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example decision margin g = z_y − max_{j≠y} z_j (positive when correct).

    Args:
        logits: (N, C) logits z.
        y: (N,) long true labels.

    Returns:
        (N,) tensor in the logits' dtype, differentiable w.r.t. ``logits``.
    """
    zy = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return zy - others.amax(dim=1)
