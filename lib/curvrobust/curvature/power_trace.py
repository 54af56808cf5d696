"""Study 001's Figs 4/5 and its HVP tables as rows: the power iteration's ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖ in the
last HAAT attack step for each k and Hessian-vector-product method (each k on its own trained
model where one was trained with that k), the finite-difference products' error against double
backprop and the iterate's alignment with the dominant eigenvector, on seeded training batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from curvrobust.attacks.second_order import convergence_trace, eigenvector_alignment, hvp_relative_error
from curvrobust.models.networks import load_model
from curvrobust.data.variants import load_variant

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
                   device: torch.device, fd_start: str = "normalised") -> list[dict[str, Any]]:
    """hvp_relative_error per batch along a seeded random direction per example, the N(0, I)
    draw itself (``fd_start="raw"``, as HAAT's first product) or the draw normalised to unit
    L2 norm (``"normalised"``), rows tagged with the batch index and ``fd_start``."""
    rows = []
    gu = torch.Generator().manual_seed(seed)
    for b, (xb, yb) in enumerate(batches):
        u = torch.randn(xb.shape, generator=gu)
        if fd_start != "raw":
            u = u / u.flatten(1).norm(dim=1).view(-1, *[1] * (u.dim() - 1))
        for r in hvp_relative_error(model, xb, yb, u.to(device), xi_list):
            rows.append(dict(batch=b, fd_start=fd_start, **r))
    return rows


def alignment_rows(model: nn.Module, batches: Batches, spec: dict[str, Any],
                   xi: float, fd_start: str = "raw") -> list[dict[str, Any]]:
    """eigenvector_alignment per batch (batch b seeded `spec.get("seed", 0) + b`), the first
    finite-difference product along the raw or the normalised draw (``fd_start``)."""
    rows = []
    for b, (xb, yb) in enumerate(batches):
        for r in eigenvector_alignment(model, xb, yb, ks=spec["ks"], methods=spec["methods"],
                                       xi=xi, seed=spec.get("seed", 0) + b, fd_start=fd_start):
            rows.append(dict(batch=b, **r))
    return rows


def _attack_params(adversary: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """A HAAT regime adversary block without its kind, and its eps."""
    adversary = dict(adversary)
    adversary.pop("kind", None)
    return adversary, adversary.pop("eps")


def trace_power_iteration(model_file: str, train_file: str, *, spec: dict[str, Any],
                          adversary: dict[str, Any], device: torch.device,
                          log: Callable[[str], None],
                          per_k: list[dict[str, Any]] | None = None,
                          ) -> dict[str, list[dict[str, Any]]]:
    """Rows of the three outputs — `trace` (convergence_trace), `hvp_error` and `alignment` —
    on the batches `spec` (the study's convergence block) names.

    `model_file` is the traced model (the study's convergence model) and `adversary` its
    regime's HAAT adversary block: the HVP error (at the directions of the adversary's
    `fd_start`, default raw, and at unit ones) and the alignment are measured on it.
    `per_k` (Fig. 5 from each k's own model): one dict per k of spec["ks"], {k, model (file),
    adversary, label, recipe}; each k's power iteration is traced on its own model attacked
    by its own adversary (with that k; `own` False: no model was trained with that k, so the
    convergence model is attacked with it). Without it every k is traced on `model_file`. Trace
    rows carry the `model` label, `recipe` and `own` they come from."""
    params, eps = _attack_params(adversary)
    fd_start = params.get("fd_start", "raw")
    model = load_model(model_file, map_location=device)
    batches = seeded_batches(train_file, spec, device)
    seed = spec.get("seed", 0)
    if per_k is None:
        per_k = [dict(k=k, model=model_file, adversary=adversary, label="", recipe="")
                 for k in spec["ks"]]
    loaded = {model_file: model}
    trace: list[dict[str, Any]] = []
    for item in per_k:
        k_params, k_eps = _attack_params(item["adversary"])
        if item["model"] not in loaded:
            loaded[item["model"]] = load_model(item["model"], map_location=device)
        log(f"k = {item['k']}: tracing {item.get('label') or model_file} ({item['model']}) "
            f"under HAAT {k_params} eps {k_eps}, methods {spec['methods']}, "
            f"{spec['batches']} batches of {spec.get('batch_size', 128)}")
        rows = convergence_trace(loaded[item["model"]], batches, k_eps, k_params,
                                 ks=[item["k"]], methods=spec["methods"], seed=seed, log=log)
        trace += [dict(r, model=item.get("label", ""), recipe=item.get("recipe", ""),
                       own=bool(item.get("own", True))) for r in rows]
    xi_list = spec.get("xi_list", [params.get("xi", 1e-6)])
    starts = list(dict.fromkeys([fd_start, "normalised"]))
    err = [r for start in starts
           for r in hvp_error_rows(model, batches, xi_list, seed + 1, device, start)]
    for r in err:
        if r["batch"] == 0:
            log(f"batch 0 {r['method']} xi={r['xi']:g} fd_start={r['fd_start']}: median "
                f"relative error {r['median']:.3g}")
    align = alignment_rows(model, batches, spec, params.get("xi", 1e-6), fd_start)
    for r in align[:len(spec["ks"]) * len(spec["methods"])]:
        log(f"batch 0 {r['method']} k={r['k']}: median |cos| with the top eigenvector "
            f"{r['cos_median']:.3f}")
    return {"trace": trace, "hvp_error": err, "alignment": align}
