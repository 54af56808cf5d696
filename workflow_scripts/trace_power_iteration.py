"""Snakemake adapter: study 001's Figs 4/5 — the power iteration's ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖ in the last
HAAT attack step for each k and Hessian-vector-product method, on seeded training batches of the
trained HAAT model — and the finite-difference products' error against double backprop
(rule trace_power_iteration)."""

from pathlib import Path

import torch

from curvrobust.haat import convergence_trace, eigenvector_alignment, hvp_relative_error
from curvrobust.jobs import start_job
from curvrobust.models import load_model
from curvrobust.train import write_csv
from curvrobust.utils import select_device
from curvrobust.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
spec = dict(snakemake.params.spec)
adversary = dict(snakemake.params.adversary)
adversary.pop("kind")
eps = adversary.pop("eps")
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.train).parent, "train")
n_batches, batch_size = spec["batches"], spec.get("batch_size", 128)
if n_batches * batch_size > len(x):
    raise ValueError(f"studies.study001.convergence: batches × batch_size = "
                     f"{n_batches * batch_size} exceeds the {len(x)} training images of "
                     f"{snakemake.input.train}")
g = torch.Generator().manual_seed(spec.get("seed", 0))
idx = torch.randperm(len(x), generator=g)[:n_batches * batch_size].view(n_batches, batch_size)
batches = [(x[i].to(device), y[i].to(device)) for i in idx]
log(f"tracing HAAT {adversary} eps {eps} for k in {spec['ks']}, methods {spec['methods']}, "
    f"{n_batches} batches of {batch_size}")
rows = convergence_trace(model, batches, eps, adversary, ks=spec["ks"], methods=spec["methods"],
                         seed=spec.get("seed", 0), log=log)
write_csv(snakemake.output.trace, rows, list(rows[0]))
xi_list = spec.get("xi_list", [adversary.get("xi", 1e-6)])
err_rows = []
gu = torch.Generator().manual_seed(spec.get("seed", 0) + 1)
for b, (xb, yb) in enumerate(batches):
    u = torch.randn(xb.shape, generator=gu)
    u = (u / u.flatten(1).norm(dim=1).view(-1, *[1] * (u.dim() - 1))).to(device)  # unit, as HAAT's
    for r in hvp_relative_error(model, xb, yb, u, xi_list):
        err_rows.append(dict(batch=b, **r))
for r in err_rows[:len(xi_list) * 2]:
    log(f"batch 0 {r['method']} xi={r['xi']:g}: median relative error {r['median']:.3g}")
write_csv(snakemake.output.hvp_error, err_rows, list(err_rows[0]))
align_rows = []
for b, (xb, yb) in enumerate(batches):
    for r in eigenvector_alignment(model, xb, yb, ks=spec["ks"], methods=spec["methods"],
                                   xi=adversary.get("xi", 1e-6), seed=spec.get("seed", 0) + b):
        align_rows.append(dict(batch=b, **r))
for r in align_rows[:len(spec["ks"]) * len(spec["methods"])]:
    log(f"batch 0 {r['method']} k={r['k']}: median |cos| with the top eigenvector "
        f"{r['cos_median']:.3f}")
write_csv(snakemake.output.alignment, align_rows, list(align_rows[0]))
