"""Independent dense reference of the generalized Gauss-Newton matrix for the optimizer tests:
J from one autograd.grad per output entry, G = s·Σ J_iᵀ (diag p_i − p_i p_iᵀ) J_i."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def independent_ggn_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                             scale: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """Dense G = s Σ J_iᵀ H_i J_i and g, with J from one autograd.grad per output entry."""
    params = [p for p in model.parameters() if p.requires_grad]
    logits = model(x)
    n, c = logits.shape
    rows = []
    for i in range(n):
        for k in range(c):
            gs = torch.autograd.grad(logits[i, k], params, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                   for g, p in zip(gs, params)]))
    J = torch.stack(rows).view(n, c, -1)
    p = torch.softmax(logits.detach(), -1)
    G = torch.zeros(J.shape[-1], J.shape[-1], dtype=torch.float64)
    for i in range(n):
        H = torch.diag(p[i]) - torch.outer(p[i], p[i])
        G += J[i].T @ H @ J[i]
    if scale == "mean":
        G /= n
    loss = F.cross_entropy(model(x), y)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params)])
    return G, g
