"""Study 001's Figs 4/5 and its HVP tables as rows: the power iteration's ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖ in the
last HAAT attack step for each k and Hessian-vector-product method, the finite-difference
products' error against double backprop and the iterate's alignment with the dominant
eigenvector, on seeded training batches of a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .haat import convergence_trace, eigenvector_alignment, hvp_relative_error
from .models import load_model
from .variants import load_variant

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def seeded_batches(train_file: str, spec: dict[str, Any], device: torch.device) -> Batches:
    """`spec["batches"]` disjoint batches of `spec.get("batch_size", 128)` training images of
    the variant holding `train_file`, drawn with seed `spec.get("seed", 0)`."""
    x, y = load_variant(Path(train_file).parent, "train")
    n_batches, batch_size = spec["batches"], spec.get("batch_size", 128)
    if n_batches * batch_size > len(x):
        raise ValueError(f"studies.study001.convergence: batches × batch_size = "
                         f"{n_batches * batch_size} exceeds the {len(x)} training images of "
                         f"{train_file}")
    g = torch.Generator().manual_seed(spec.get("seed", 0))
    idx = torch.randperm(len(x), generator=g)[:n_batches * batch_size].view(n_batches, batch_size)
    return [(x[i].to(device), y[i].to(device)) for i in idx]


def hvp_error_rows(model: nn.Module, batches: Batches, xi_list: list[float], seed: int,
                   device: torch.device) -> list[dict[str, Any]]:
    """hvp_relative_error per batch along a seeded random unit direction per example (as
    HAAT's), rows tagged with the batch index."""
    rows = []
    gu = torch.Generator().manual_seed(seed)
    for b, (xb, yb) in enumerate(batches):
        u = torch.randn(xb.shape, generator=gu)
        u = (u / u.flatten(1).norm(dim=1).view(-1, *[1] * (u.dim() - 1))).to(device)
        for r in hvp_relative_error(model, xb, yb, u, xi_list):
            rows.append(dict(batch=b, **r))
    return rows


def alignment_rows(model: nn.Module, batches: Batches, spec: dict[str, Any],
                   xi: float) -> list[dict[str, Any]]:
    """eigenvector_alignment per batch (batch b seeded `spec.get("seed", 0) + b`)."""
    rows = []
    for b, (xb, yb) in enumerate(batches):
        for r in eigenvector_alignment(model, xb, yb, ks=spec["ks"], methods=spec["methods"],
                                       xi=xi, seed=spec.get("seed", 0) + b):
            rows.append(dict(batch=b, **r))
    return rows


def trace_power_iteration(model_file: str, train_file: str, *, spec: dict[str, Any],
                          adversary: dict[str, Any], device: torch.device,
                          log: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the three outputs — `trace` (convergence_trace), `hvp_error` and `alignment` —
    for the model in `model_file` attacked by `adversary` (a HAAT regime's adversary block) on
    the batches `spec` (the study's convergence block) names."""
    adversary = dict(adversary)
    adversary.pop("kind")
    eps = adversary.pop("eps")
    model = load_model(model_file, map_location=device)
    batches = seeded_batches(train_file, spec, device)
    seed = spec.get("seed", 0)
    log(f"tracing HAAT {adversary} eps {eps} for k in {spec['ks']}, methods {spec['methods']}, "
        f"{spec['batches']} batches of {spec.get('batch_size', 128)}")
    trace = convergence_trace(model, batches, eps, adversary, ks=spec["ks"],
                              methods=spec["methods"], seed=seed, log=log)
    xi_list = spec.get("xi_list", [adversary.get("xi", 1e-6)])
    err = hvp_error_rows(model, batches, xi_list, seed + 1, device)
    for r in err[:len(xi_list) * 2]:
        log(f"batch 0 {r['method']} xi={r['xi']:g}: median relative error {r['median']:.3g}")
    align = alignment_rows(model, batches, spec, adversary.get("xi", 1e-6))
    for r in align[:len(spec["ks"]) * len(spec["methods"])]:
        log(f"batch 0 {r['method']} k={r['k']}: median |cos| with the top eigenvector "
            f"{r['cos_median']:.3f}")
    return {"trace": trace, "hvp_error": err, "alignment": align}
