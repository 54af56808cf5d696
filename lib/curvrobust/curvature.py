"""Per-example and per-batch curvature / sensitivity statistics.

All functions run the model in eval mode (previous mode restored), move batches to the
model's device, return CPU tensors, and never touch the model's parameters or ``.grad``
fields (parameter perturbations are done on detached copies via
``torch.func.functional_call``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from .attacks import eval_mode, model_device

__all__ = ["input_grad_norm", "logit_margin", "sam_loss_increase",
           "sam_loss_increase_per_example"]


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, dev: torch.device):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size].to(dev), y[start:start + batch_size].to(dev)


def input_grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    batch_size: int = 1000) -> torch.Tensor:
    """Per-example ‖∇ₓ CE(model(x_i), y_i)‖₂ (plain L2 norm, not squared), shape (N,)."""
    dev = model_device(model)
    out = []
    with eval_mode(model):
        for xb, yb in _batches(x, y, batch_size, dev):
            xg = xb.detach().requires_grad_(True)
            loss = F.cross_entropy(model(xg), yb, reduction="sum")
            (g,) = torch.autograd.grad(loss, xg)
            out.append(g.flatten(1).norm(dim=1).cpu())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 1000) -> torch.Tensor:
    """Per-example z_y − max_{j≠y} z_j (negative when misclassified), shape (N,)."""
    dev = model_device(model)
    out = []
    with eval_mode(model):
        for xb, yb in _batches(x, y, batch_size, dev):
            z = model(xb)
            zy = z.gather(1, yb[:, None]).squeeze(1)
            others = z.scatter(1, yb[:, None], float("-inf"))
            out.append((zy - others.amax(dim=1)).cpu())
    return torch.cat(out) if out else torch.empty(0)


def _split_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    return params, buffers


def _global_norm(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors.values()))


def sam_loss_increase(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rho: float,
                      batch_size: int = 256) -> torch.Tensor:
    """The study's "SAM analysis": per consecutive batch (the last may be smaller),
    L_B(θ + ρ g/‖g‖) − L_B(θ) with g = ∇θ L_B(θ), L_B the batch-mean CE and ‖g‖ the L2 norm
    over all parameters. Returns one value per batch (float64, CPU); 0 where g = 0."""
    rho = float(rho)
    dev = model_device(model)
    params, buffers = _split_state(model)

    def batch_loss(p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor):
        return F.cross_entropy(functional_call(model, (p, buffers), (xb,)), yb)

    step = grad_and_value(batch_loss)
    out = []
    with eval_mode(model):
        for xb, yb in _batches(x, y, batch_size, dev):
            g, loss = step(params, xb, yb)
            gnorm = _global_norm(g)
            if rho == 0.0 or gnorm == 0:
                out.append(0.0)
                continue
            scale = rho / gnorm
            perturbed = {k: params[k] + (scale * g[k].double()).to(params[k].dtype)
                         for k in params}
            with torch.no_grad():
                loss_p = batch_loss(perturbed, xb, yb)
            out.append(float(loss_p.double() - loss.double()))
    return torch.tensor(out, dtype=torch.float64)


def sam_loss_increase_per_example(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                  rho: float, batch_size: int = 256) -> torch.Tensor:
    """Per-example SAM sharpness: CE_i(θ + ρ g_i/‖g_i‖) − CE_i(θ), g_i = ∇θ CE_i(θ).

    Vectorised with ``torch.func.vmap`` over chunks of ``batch_size`` examples; equals
    ``sam_loss_increase(..., batch_size=1)``. Returns (N,) float64 on the CPU."""
    rho = float(rho)
    dev = model_device(model)
    params, buffers = _split_state(model)

    def example_loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor):
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    grads_and_losses = vmap(grad_and_value(example_loss), in_dims=(None, 0, 0))
    perturbed_losses = vmap(example_loss, in_dims=(0, 0, 0))
    out = []
    with eval_mode(model):
        for xb, yb in _batches(x, y, batch_size, dev):
            g, loss = grads_and_losses(params, xb, yb)
            n = xb.shape[0]
            gnorm = torch.sqrt(sum((t.double() ** 2).reshape(n, -1).sum(1) for t in g.values()))
            zero = gnorm == 0
            scale = torch.where(zero, torch.zeros_like(gnorm), rho / gnorm.clamp_min(1e-300))
            perturbed: dict[str, Any] = {}
            for k, p in params.items():
                s = scale.reshape((n,) + (1,) * p.dim())
                perturbed[k] = p.unsqueeze(0) + (s * g[k].double()).to(p.dtype)
            with torch.no_grad():
                loss_p = perturbed_losses(perturbed, xb, yb)
            diff = loss_p.double() - loss.double()
            diff = torch.where(zero | (rho == 0.0), torch.zeros_like(diff), diff)
            out.append(diff.cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)
