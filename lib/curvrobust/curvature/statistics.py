"""Per-example and per-batch curvature / sensitivity statistics.

All functions run the model in eval mode (previous mode restored), move batches to the
model's device, return CPU tensors, and never touch the model's parameters or ``.grad``
fields (parameter perturbations are done on detached copies via
``torch.func.functional_call``).

Precision: the per-example loss gradients behind :func:`input_grad_norm`,
:func:`sam_loss_increase` and :func:`sam_loss_increase_per_example`, and the input
Hessian-vector products behind :func:`input_hvp`, :func:`ce_input_hessian_top_eig_power` and
:func:`margin_input_hessian_top_eig_power`, are computed on a float64 copy of the model
(:func:`_float64_model`) with float64 inputs. In float32, for a confidently
classified example p_y rounds to 1 once the logit margin exceeds ~16, so ∇CE = Jᵀ(p − e_y)
vanishes or is a few units of 2⁻²⁴ — ~100 % off — exactly in the tail these statistics are
studied in; and F.cross_entropy itself is inaccurate there even in float64 (its gradient's
y entry p_y − 1 has relative error ~2⁻⁵³·e^margin, ~1e-3 at margin 30, and CE = logsumexp − z_y
has absolute error ~ulp(z_y)), so these functions use :func:`_cross_entropy_per_example`, a
formulation accurate in the confident tail. The same holds one derivative further: the CE
input Hessian Jᵀ(diag p − ppᵀ)J + Σ_k (p − e_y)_k ∇²z_k is built from the same vanishing
curvature terms p_j(1 − p_j) ~ e^−margin, which float32 double backprop loses (rounds to 0 or
distorts) beyond margins of ~16, and F.cross_entropy's double backprop loses in float64
beyond ~37.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from curvrobust.models.inference import decision_margin, eval_mode, model_device

__all__ = ["input_grad_norm", "logit_margin", "sam_loss_increase",
           "sam_loss_increase_per_example"]


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, dev: torch.device):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size].to(dev), y[start:start + batch_size].to(dev)


def _float64_model(model: nn.Module) -> nn.Module:
    """``model`` itself when all its floating parameters and buffers are float64, else a float64
    deep copy (same device and train/eval mode; the original is not touched)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.dtype == torch.float64 for t in tensors if t.is_floating_point()):
        return model
    return copy.deepcopy(model).to(torch.float64)


def _cross_entropy_per_example(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example CE(z_i, y_i), (N,), accurate to relative rounding even when tiny.

    F.cross_entropy forms logsumexp(z) − z_y, whose absolute rounding error ~ulp(|z_y|) swamps
    CE ≈ Σ_{j≠y} e^{−(z_y−z_j)} of a confident example, and whose gradient's y entry p_y − 1
    cancels (float64 loses it completely beyond margins of ~37). Here, with d_j = z_j − z_y and
    M = max(0, max_{j≠y} d_j) (a constant shift, detached): CE = M + log1p(expm1(−M) + Σ_{j≠y}
    e^{d_j − M}); for M = 0 this is log1p(Σ e^{d_j}), and the gradient's y entry is −Σ_{j≠y} of
    the others, a sum of positive terms."""
    d = z - z.gather(1, y[:, None])
    others = d.scatter(1, y[:, None], float("-inf"))
    m = others.amax(dim=1, keepdim=True).clamp_min(0).detach()
    s = torch.exp(others - m).sum(dim=1)
    return m.squeeze(1) + torch.log1p(torch.expm1(-m.squeeze(1)) + s)


def _as_float64(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64) if t.is_floating_point() else t


def input_grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    batch_size: int = 1000) -> torch.Tensor:
    """Per-example ‖∇ₓ CE(model(x_i), y_i)‖₂ (plain L2 norm, not squared), shape (N,).

    Computed in float64 (a float64 copy of the model on float64 inputs; see the module
    docstring): float32 loses the gradient of confidently classified examples.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        batch_size: examples per forward/backward pass, >= 1.

    Returns:
        (N,) CPU tensor in x's dtype (computed in float64 and rounded once at the end, so a
        float32 result is accurate to ~6e-8 relative until it underflows, at margins ≳ 87).

    Examples:
        With logits z = x, the gradient is softmax(x) − e_y: ‖(½, ½) − (1, 0)‖ = √½ at x = 0:

        >>> import torch
        >>> from curvrobust.curvature.statistics import input_grad_norm
        >>> model = torch.nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.eye(2)), model.bias.zero_()
        >>> x, y = torch.tensor([[3.0, 1.0], [0.0, 2.0], [0.0, 0.0]]), torch.tensor([0, 0, 0])
        >>> g = input_grad_norm(model, x, y)
        >>> g.shape, [round(v, 4) for v in g.tolist()]   # confident, wrong, undecided
        (torch.Size([3]), [0.1686, 1.2456, 0.7071])
    """
    dev = model_device(model)
    m64 = _float64_model(model)
    out = []
    with eval_mode(m64):
        for xb, yb in _batches(x, y, batch_size, dev):
            xg = _as_float64(xb).detach().requires_grad_(True)
            loss = _cross_entropy_per_example(m64(xg), yb).sum()
            (g,) = torch.autograd.grad(loss, xg)
            out.append(g.flatten(1).norm(dim=1).cpu())
    dtype = x.dtype if x.is_floating_point() else torch.float64
    return torch.cat(out).to(dtype) if out else torch.empty(0, dtype=dtype)


@torch.no_grad()
def logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 1000) -> torch.Tensor:
    """Per-example z_y − max_{j≠y} z_j (negative when misclassified), shape (N,).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        batch_size: examples per forward pass, >= 1.

    Returns:
        (N,) CPU tensor in the logits' dtype.

    Examples:
        >>> import torch
        >>> from curvrobust.curvature.statistics import logit_margin
        >>> model = torch.nn.Linear(2, 2)                    # logits z = x
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.eye(2)), model.bias.zero_()
        >>> x, y = torch.tensor([[3.0, 1.0], [0.0, 2.0], [0.0, 0.0]]), torch.tensor([0, 0, 0])
        >>> logit_margin(model, x, y).tolist()               # negative: misclassified
        [2.0, -2.0, 0.0]
    """
    dev = model_device(model)
    out = []
    with eval_mode(model):
        for xb, yb in _batches(x, y, batch_size, dev):
            out.append(decision_margin(model(xb), yb).cpu())
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
    over all parameters. Returns one value per batch (float64, CPU); 0 where g = 0.
    Computed on a float64 copy of the model (see the module docstring).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        rho: SAM radius ρ in parameter space.
        batch_size: size of the consecutive batches B.

    Returns:
        (ceil(N / batch_size),) float64 CPU tensor.
    """
    rho = float(rho)
    dev = model_device(model)
    m64 = _float64_model(model)
    params, buffers = _split_state(m64)

    def batch_loss(p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor):
        return _cross_entropy_per_example(functional_call(m64, (p, buffers), (xb,)), yb).mean()

    step = grad_and_value(batch_loss)
    out = []
    with eval_mode(m64):
        for xb, yb in _batches(x, y, batch_size, dev):
            xb = _as_float64(xb)
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
    ``sam_loss_increase(..., batch_size=1)``. Returns (N,) float64 on the CPU. Computed on a
    float64 copy of the model (see the module docstring): in float32 the gradient g_i of a
    confidently classified example (logit margin ≳ 16) vanishes or is pure rounding noise.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        rho: SAM radius ρ in parameter space.
        batch_size: examples per vmap chunk (does not change the result).

    Returns:
        (N,) float64 CPU tensor.
    """
    rho = float(rho)
    dev = model_device(model)
    m64 = _float64_model(model)
    params, buffers = _split_state(m64)

    def example_loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor):
        logits = functional_call(m64, (p, buffers), (xi.unsqueeze(0),))
        return _cross_entropy_per_example(logits, yi.unsqueeze(0))[0]

    grads_and_losses = vmap(grad_and_value(example_loss), in_dims=(None, 0, 0))
    perturbed_losses = vmap(example_loss, in_dims=(0, 0, 0))
    out = []
    with eval_mode(m64):
        for xb, yb in _batches(x, y, batch_size, dev):
            xb = _as_float64(xb)
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


# ============================================================== robustness indicator (study 002)
#
# Yu et al.'s indicator: the Jacobian of the decision function g(x) = z_y − max_{j≠y} z_j and
# the eigenvalues of the input Hessian, per test image. Their footnote's zero thresholds are
# lost in our copy of the text; ours are arguments with the defaults below. Rationale: inputs
# live in [0, 1] and margins / losses are O(1–10), so a Jacobian entry below 1e-3 means moving
# that pixel across its whole range changes g by less than 1e-3, and a Hessian eigenvalue
# below 1e-3 means a unit-norm input step along its eigenvector (e.g. ±0.036 on every MNIST
# pixel) changes the loss by less than 5e-4 at second order.

JAC_ZERO_TOL = 1e-3
HESS_ZERO_TOL = 1e-3

# Leaf modules that are piecewise linear in their input (in eval mode). Deliberately short:
# a module missing here only sends the Hessian to the slower power route, never to a wrong one.
PIECEWISE_LINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.ZeroPad2d,
)

__all__ += ["JAC_ZERO_TOL", "HESS_ZERO_TOL", "margin_input_grad", "jacobian_stats",
            "is_piecewise_linear", "logit_input_jacobian", "input_hvp",
            "ce_input_hessian_spectrum_exact", "ce_input_hessian_top_eig_power",
            "margin_input_hessian_top_eig_power", "hessian_zero_fraction",
            "robustness_indicator"]



def _objective(name: str):
    """Summed per-example objective of the logits: 'ce' (cross-entropy, in the formulation
    :func:`_cross_entropy_per_example`, whose double backprop keeps the Hessian of a confident
    example accurate) or 'margin' (g)."""
    if name == "ce":
        return lambda z, y: _cross_entropy_per_example(z, y).sum()
    if name == "margin":
        return lambda z, y: decision_margin(z, y).sum()
    raise ValueError(f"objective must be 'ce' or 'margin', got objective={name!r}")


def _margin_grad_batch(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(∇ₓ g, g, logits) for one batch; model already in eval mode and on xb's device."""
    xg = xb.detach().requires_grad_(True)
    z = model(xg)
    g = decision_margin(z, yb)
    # examples do not interact (eval mode, no batch norm), so ∇ of Σg gives every ∇g_i at once
    (grad,) = torch.autograd.grad(g.sum(), xg)
    return grad, g.detach(), z.detach()


def margin_input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 1000) -> torch.Tensor:
    """Per-example ∇ₓ g(x), g = z_y − max_{j≠y} z_j: the study's Jacobian, shape x.shape (CPU).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        batch_size: examples per forward/backward pass, >= 1.

    Returns:
        CPU tensor shaped like ``x``.
    """
    dev = model_device(model)
    out = []
    with eval_mode(model):
        for xb, yb in _batches(x, y, batch_size, dev):
            out.append(_margin_grad_batch(model, xb, yb)[0].cpu())
    return torch.cat(out) if out else torch.empty(0, *x.shape[1:], dtype=x.dtype)


def jacobian_stats(grad: torch.Tensor, zero_tol: float = JAC_ZERO_TOL) -> dict[str, torch.Tensor]:
    """Per-example L1 norm, L2 norm and fraction of near-zero entries (|entry| < zero_tol)
    of input Jacobians ``grad`` of shape (N, ...); keys 'l1', 'l2', 'zero_frac'.

    Args:
        grad: (N, ...) per-example input gradients (e.g. :func:`margin_input_grad`).
        zero_tol: threshold >= 0 below which an entry counts as zero.

    Returns:
        Dict of (N,) tensors: 'l1', 'l2' in ``grad``'s dtype, 'zero_frac' float64.
    """
    zero_tol = float(zero_tol)
    if not zero_tol >= 0.0:
        raise ValueError(f"zero_tol must be >= 0, got zero_tol={zero_tol!r}")
    flat = grad.detach().flatten(1)
    return {"l1": flat.abs().sum(dim=1),
            "l2": flat.norm(dim=1),
            "zero_frac": (flat.abs() < zero_tol).to(torch.float64).mean(dim=1)}


def _not_piecewise_linear(model: nn.Module) -> nn.Module | None:
    """The first leaf module outside :data:`PIECEWISE_LINEAR_MODULES`, or None."""
    for m in model.modules():
        if next(m.children(), None) is None and not isinstance(m, PIECEWISE_LINEAR_MODULES):
            return m
    return None


def is_piecewise_linear(model: nn.Module) -> bool:
    """Whether every leaf module is piecewise linear in its input (whitelist scan).

    Containers (nn.Sequential, custom modules with children) are trusted to only compose
    their children: functional non-linearities inside a custom ``forward`` are not seen."""
    return _not_piecewise_linear(model) is None


def logit_input_jacobian(model: nn.Module, x: torch.Tensor, batch_size: int = 1000
                         ) -> torch.Tensor:
    """Per-example ∂z/∂x, shape (N, C, D) with D = prod(x.shape[1:]) (one backward per class).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs.
        batch_size: examples per pass, >= 1.

    Returns:
        (N, C, D) CPU tensor, [i, k] = ∂z_k/∂x flattened for example i.
    """
    dev = model_device(model)
    dummy_y = torch.zeros(x.shape[0], dtype=torch.long)
    out = []
    with eval_mode(model):
        for xb, _ in _batches(x, dummy_y, batch_size, dev):
            out.append(_logit_jacobian_batch(model, xb)[0].cpu())
    return torch.cat(out) if out else torch.empty(0)


def _logit_jacobian_batch(model: nn.Module, xb: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, C, D) Jacobian, (B, C) logits) for one batch in eval mode."""
    xg = xb.detach().requires_grad_(True)
    z = model(xg)
    rows = []
    for k in range(z.shape[1]):
        (jk,) = torch.autograd.grad(z[:, k].sum(), xg, retain_graph=k + 1 < z.shape[1],
                                    allow_unused=True)
        rows.append(torch.zeros_like(xg) if jk is None else jk)
    return torch.stack(rows, dim=1).flatten(2), z.detach()


def _spectrum_from_jacobian(jac: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Descending eigenvalues (B, C) of Sᵀ J Jᵀ S, S = diag(√p) − p√pᵀ: the nonzero spectrum of
    Jᵀ (diag p − ppᵀ) J, the CE input Hessian of a piecewise-linear net (float64)."""
    jac = jac.to(torch.float64)
    p = torch.softmax(z.to(torch.float64), dim=1)
    sq = p.sqrt()
    s = torch.diag_embed(sq) - p[:, :, None] * sq[:, None, :]
    gram = jac @ jac.transpose(1, 2)
    m = s.transpose(1, 2) @ gram @ s
    m = 0.5 * (m + m.transpose(1, 2))
    return torch.linalg.eigvalsh(m).flip(-1)


def _require_piecewise_linear(model: nn.Module) -> None:
    bad = _not_piecewise_linear(model)
    if bad is not None:
        raise ValueError(
            f"the exact CE input-Hessian spectrum needs a piecewise-linear network, but the model "
            f"contains {type(bad).__name__}; use method='power' (hessian='power') instead")


def ce_input_hessian_spectrum_exact(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                    batch_size: int = 1000) -> torch.Tensor:
    """Per-example nonzero part of the spectrum of ∇²ₓ CE for a piecewise-linear network:
    (N, C) float64 eigenvalues, descending; the other D − C eigenvalues are exactly 0, and so
    (up to rounding) is the last returned one (rank ≤ C − 1).

    Uses ∇²ₓ CE = Jᵀ(diag p − ppᵀ)J (the logits' own Hessian vanishes a.e.), whose nonzero
    eigenvalues are those of the C×C matrix Sᵀ J Jᵀ S. Raises ValueError for other networks.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        batch_size: examples per pass, >= 1.

    Returns:
        (N, C) float64 CPU tensor of eigenvalues, descending per row.

    Raises:
        ValueError: the model is not piecewise linear (:func:`is_piecewise_linear`).
    """
    _require_piecewise_linear(model)
    dev = model_device(model)
    out = []
    with eval_mode(model):
        for xb, _ in _batches(x, y, batch_size, dev):
            jac, z = _logit_jacobian_batch(model, xb)
            out.append(_spectrum_from_jacobian(jac, z).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def input_hvp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor,
              objective: str = "ce") -> torch.Tensor:
    """Per-example input Hessian-vector products ∇²ₓ f(x_i) v_i by double backprop, shape x.shape,
    f = CE ('ce') or the margin g ('margin'); one batch, eval mode, result on x's device.

    Computed in float64 (a float64 copy of the model on float64 inputs and directions; see the
    module docstring): in float32 the CE curvature of a confidently classified example
    (logit margin ≳ 16) vanishes or is distorted.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (one batch).
        y: (N,) long labels.
        v: (N, ...) directions, shaped like ``x``.
        objective: ``"ce"`` or ``"margin"``.

    Returns:
        Tensor shaped like ``x``, on x's device, in x's dtype (rounded once from float64).
    """
    if v.shape != x.shape:
        raise ValueError(f"v must have x's shape {tuple(x.shape)}, got {tuple(v.shape)}")
    dev = model_device(model)
    m64 = _float64_model(model)
    with eval_mode(m64):
        xg = _as_float64(x.detach().to(dev)).requires_grad_(True)
        grad = _objective_grad(m64, xg, y.to(dev), objective)
        hv = _hvp(grad, xg, v.to(device=dev, dtype=torch.float64), retain_graph=False)
        return hv.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float64)


def _objective_grad(model: nn.Module, xg: torch.Tensor, yb: torch.Tensor, objective: str
                    ) -> torch.Tensor:
    f = _objective(objective)(model(xg), yb)
    (grad,) = torch.autograd.grad(f, xg, create_graph=True)
    return grad


def _hvp(grad: torch.Tensor, xg: torch.Tensor, v: torch.Tensor, retain_graph: bool = True
         ) -> torch.Tensor:
    # the summed objective's Hessian is block-diagonal across examples, so this is per-example
    if not grad.requires_grad:  # gradient constant in x (e.g. a linear model): Hessian is 0
        return torch.zeros_like(v)
    (hv,) = torch.autograd.grad(grad, xg, grad_outputs=v, retain_graph=retain_graph,
                                allow_unused=True)
    return torch.zeros_like(v) if hv is None else hv


def _power(grad: torch.Tensor, xg: torch.Tensor, v: torch.Tensor, shift: torch.Tensor,
           iters: int, tol: float) -> torch.Tensor:
    """Batched power iteration on H + shift·I (H the per-example input Hessian behind ``grad``,
    ``shift`` (B,) float64) from unit start vectors ``v``; returns the Rayleigh quotients vᵀHv of
    the UNshifted H at the final iterates, (B,) float64 (stops when every shifted quotient changes
    by ≤ tol relative)."""
    view = (-1, *[1] * (v.dim() - 1))
    sh = shift.to(v.dtype).view(view)
    lam = torch.full((v.shape[0],), float("nan"), dtype=torch.float64, device=v.device)
    ray = lam
    for _ in range(iters):
        hv = _hvp(grad, xg, v).detach()
        ray = (hv * v).flatten(1).sum(dim=1).to(torch.float64)  # vᵀHv, ‖v‖ = 1
        w = hv + sh * v
        new_lam = ray + shift
        norm = w.flatten(1).norm(dim=1)
        # a zero product leaves v = 0 and λ = 0 from then on
        v = w / norm.clamp_min(torch.finfo(w.dtype).tiny).view(view)
        done = (new_lam - lam).abs() <= tol * new_lam.abs()
        lam = new_lam
        if bool(done.all()):
            break
    return ray


def _top_eig_power(model: nn.Module, x: torch.Tensor, y: torch.Tensor, objective: str,
                   iters: int, tol: float, seed: int, batch_size: int,
                   largest: bool = True) -> torch.Tensor:
    """Per-example top eigenvalue of the input Hessian by batched power iteration: the largest
    (algebraic) one if ``largest``, else the dominant (largest-|λ|, signed) one.

    Largest: a first run finds the dominant λ_d; where λ_d < 0, a second run on the shifted
    H + |λ_d| I (PSD up to the first run's accuracy, dominant eigenvalue λ_max + |λ_d|) finds
    λ_max's eigenvector, and its Rayleigh quotient for H is returned (up to 2·iters HVPs).

    Everything runs in float64: a float64 copy of the model (:func:`_float64_model`, made once
    per call; ``model`` itself, its dtype and its train/eval modes are untouched) on float64
    inputs, with float64 start vectors, HVPs and Rayleigh quotients. In float32 the curvature
    terms p_j(1 − p_j) ~ e^−margin of a confidently classified example round to 0 or are
    distorted (top-eigenvalue errors of a few to tens of per cent at a logit margin of 16 and
    ~100 % at ≥ 20)."""
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got iters={iters}")
    if not tol >= 0.0:
        raise ValueError(f"tol must be >= 0, got tol={tol!r}")
    _objective(objective)
    dev = model_device(model)
    m64 = _float64_model(model)
    # start vectors drawn once for all N on the CPU: independent of batch_size and device
    gen = torch.Generator().manual_seed(int(seed))
    v0 = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    out = []
    with eval_mode(m64):
        for start, (xb, yb) in zip(range(0, x.shape[0], batch_size),
                                   _batches(x, y, batch_size, dev)):
            xb = _as_float64(xb)
            xg = xb.detach().requires_grad_(True)
            v = v0[start:start + xb.shape[0]].to(device=dev)
            v = v / v.flatten(1).norm(dim=1).clamp_min(1e-300).view(-1, *[1] * (v.dim() - 1))
            grad = _objective_grad(m64, xg, yb, objective)
            zero = torch.zeros(xb.shape[0], dtype=torch.float64, device=dev)
            lam = _power(grad, xg, v, zero, iters, tol)
            neg = lam < 0
            if largest and bool(neg.any()):
                idx = neg.nonzero().squeeze(1)
                del grad
                xs = xb[idx].detach().requires_grad_(True)
                grad = _objective_grad(m64, xs, yb[idx], objective)
                lam[idx] = _power(grad, xs, v[idx], -lam[idx], iters, tol)
            out.append(lam.cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def ce_input_hessian_top_eig_power(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                   iters: int = 50, tol: float = 1e-6, seed: int = 0,
                                   batch_size: int = 1000) -> torch.Tensor:
    """Per-example largest (algebraic) eigenvalue λ_max of ∇²ₓ CE by power iteration with
    double-backprop HVPs; any twice-differentiable net. Stops when every example's Rayleigh
    quotient changes by ≤ tol relative, or after ``iters``. (N,) float64, CPU.

    Computed in float64 throughout (a float64 copy of the model, made once per call, on float64
    inputs; float64 start vectors, HVPs and Rayleigh quotients; ``model`` is left untouched) and
    with CE in the tail-accurate form :func:`_cross_entropy_per_example`: the CE curvature
    terms p_j(1 − p_j) ~ e^−margin of a confidently classified image vanish in float32 (p_y
    rounds to 1), which made the float32 result a few to tens of per cent off at a logit margin
    of 16 and ~100 % off at margins ≥ 20; now it matches an exact float64 Hessian to ~1e-14
    relative (at a tight ``tol``) at margins up to 80.

    Plain power iteration finds the dominant (largest-|λ|) eigenvalue λ_d; for smooth nets
    (e.g. softplus) λ_d can be the most negative one. Where λ_d < 0 a second power iteration
    runs on H + |λ_d| I, whose dominant eigenvalue is λ_max + |λ_d| ≥ 0, and the Rayleigh
    quotient of H at its final vector is returned, so the result matches the exact route's
    top eigenvalue (:func:`ce_input_hessian_spectrum_exact`). Up to 2·``iters`` HVPs.

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        iters: maximum power steps, >= 1.
        tol: relative tolerance >= 0 of the stopping rule.
        seed: seed of the (CPU) start vectors, drawn for all N at once, so the result does
            not depend on ``batch_size`` or the device.
        batch_size: examples per pass, >= 1.

    Returns:
        (N,) float64 CPU tensor.
    """
    return _top_eig_power(model, x, y, "ce", iters, tol, seed, batch_size, largest=True)


def margin_input_hessian_top_eig_power(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                       iters: int = 50, tol: float = 1e-6, seed: int = 0,
                                       batch_size: int = 1000) -> torch.Tensor:
    """Per-example DOMINANT (largest-|λ|, signed) eigenvalue of ∇²ₓ g, the margin
    g = z_y − max_{j≠y} z_j (zero a.e. for piecewise-linear nets; informative for smooth ones,
    e.g. softplus), by plain power iteration as in :func:`ce_input_hessian_top_eig_power`
    (unlike that function it is not shifted to the largest algebraic eigenvalue), likewise in
    float64 on a float64 copy of the model.

    Args and return value as :func:`ce_input_hessian_top_eig_power`.
    """
    return _top_eig_power(model, x, y, "margin", iters, tol, seed, batch_size, largest=False)


def hessian_zero_fraction(eigs: torch.Tensor, dim: int, zero_tol: float = HESS_ZERO_TOL
                          ) -> torch.Tensor:
    """Fraction of the ``dim`` Hessian eigenvalues with |λ| < zero_tol, given the possibly
    nonzero ones ``eigs`` (..., k), k ≤ dim; the dim − k not given are exact zeros.

    Args:
        eigs: (..., k) possibly nonzero eigenvalues (e.g. from
            :func:`ce_input_hessian_spectrum_exact`).
        dim: total number of eigenvalues D (the input dimension), >= k.
        zero_tol: threshold >= 0 below which |λ| counts as zero.

    Returns:
        (...) float64 tensor of fractions in [0, 1].
    """
    zero_tol = float(zero_tol)
    if not zero_tol >= 0.0:
        raise ValueError(f"zero_tol must be >= 0, got zero_tol={zero_tol!r}")
    k = eigs.shape[-1]
    if dim < k:
        raise ValueError(f"dim must be >= the number of given eigenvalues ({k}), got dim={dim}")
    near_zero = (eigs.abs() < zero_tol).sum(dim=-1).to(torch.float64)
    return (near_zero + (dim - k)) / dim


def _indicator_columns(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str,
                       jac_zero_tol: float, hess_zero_tol: float,
                       batch_size: int) -> dict[str, list[torch.Tensor]]:
    """The indicator's columns batch by batch (CPU tensors per batch): correctness, margin,
    its input gradient's statistics and, on the exact route, the Hessian's spectrum."""
    dim = int(torch.Size(x.shape[1:]).numel())
    dev = model_device(model)
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in (
        "correct", "margin", "grad_l1", "grad_l2", "jac_zero_frac", "hess_top_eig",
        "hess_zero_frac")}
    for xb, yb in _batches(x, y, batch_size, dev):
        grad, g, z = _margin_grad_batch(model, xb, yb)
        stats = jacobian_stats(grad, jac_zero_tol)
        cols["correct"].append((z.argmax(dim=1) == yb).cpu())
        cols["margin"].append(g.cpu())
        cols["grad_l1"].append(stats["l1"].cpu())
        cols["grad_l2"].append(stats["l2"].cpu())
        cols["jac_zero_frac"].append(stats["zero_frac"].cpu())
        if method == "exact":
            jac, z = _logit_jacobian_batch(model, xb)
            eigs = _spectrum_from_jacobian(jac, z)
            cols["hess_top_eig"].append(eigs[:, 0].cpu())
            cols["hess_zero_frac"].append(hessian_zero_fraction(eigs, dim, hess_zero_tol).cpu())
    return cols


def robustness_indicator(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                         jac_zero_tol: float = JAC_ZERO_TOL,
                         hess_zero_tol: float = HESS_ZERO_TOL,
                         hessian: str = "auto", power_iters: int = 100, power_tol: float = 1e-6,
                         seed: int = 0, batch_size: int = 500) -> pd.DataFrame:
    """The study's per-image robustness indicator, one row per example.

    Columns: index, label, correct (prediction == label), margin (g), grad_l1, grad_l2,
    jac_zero_frac (of ∇ₓ g), hess_top_eig (largest algebraic eigenvalue of ∇²ₓ CE on both
    routes), hess_zero_frac (NaN on
    the power route, which only finds the top eigenvalue), hess_method. ``hessian``: 'exact'
    (piecewise-linear nets only), 'power', or 'auto' (exact when :func:`is_piecewise_linear`).

    Args:
        model: classifier mapping (N, ...) inputs to (N, C) logits.
        x: (N, ...) inputs (any device; moved to the model's device batch by batch).
        y: (N,) long labels.
        jac_zero_tol: threshold of a near-zero Jacobian entry.
        hess_zero_tol: threshold of a near-zero Hessian eigenvalue.
        hessian: ``"auto"``, ``"exact"`` or ``"power"``.
        power_iters, power_tol: :func:`ce_input_hessian_top_eig_power`'s ``iters`` and
            ``tol`` (power route).
        seed: seed of the power iteration's start vectors.
        batch_size: examples per pass, >= 1.

    Returns:
        A pandas DataFrame with N rows and the columns above.
    """
    if hessian not in ("auto", "exact", "power"):
        raise ValueError(f"hessian must be 'auto', 'exact' or 'power', got hessian={hessian!r}")
    method = ("exact" if is_piecewise_linear(model) else "power") if hessian == "auto" else hessian
    if method == "exact":
        _require_piecewise_linear(model)
    with eval_mode(model):
        cols = _indicator_columns(model, x, y, method, jac_zero_tol, hess_zero_tol, batch_size)
    if method == "power":
        cols["hess_top_eig"] = [ce_input_hessian_top_eig_power(
            model, x, y, iters=power_iters, tol=power_tol, seed=seed, batch_size=batch_size)]
        cols["hess_zero_frac"] = [torch.full((x.shape[0],), float("nan"), dtype=torch.float64)]
    n = x.shape[0]
    data: dict[str, Any] = {"index": list(range(n)), "label": y.cpu().tolist()}
    for k, parts in cols.items():
        data[k] = torch.cat(parts).tolist() if parts else []
    data["hess_method"] = [method] * n
    return pd.DataFrame(data)
