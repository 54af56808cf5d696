"""Snakemake adapter: study 001's Figs 4/5 — the power iteration's ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖ in the last
HAAT attack step for each k and Hessian-vector-product method, on seeded training batches of the
model trained with that k (else the HAAT model; params.per_k) — and the finite-difference
products' error against double backprop and alignment with the dominant eigenvector on the HAAT
model (rule trace_power_iteration; curvrobust.curvature.power_trace)."""

from curvrobust.workflow.jobs import start_job
from curvrobust.curvature.power_trace import trace_power_iteration
from curvrobust.utils import select_device, write_csv

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
outputs = trace_power_iteration(
    snakemake.input.model, snakemake.input.train, spec=dict(snakemake.params.spec),
    adversary=snakemake.params.adversary, device=device, log=log,
    per_k=[dict(item) for item in snakemake.params.per_k])
for key, rows in outputs.items():
    write_csv(snakemake.output[key], rows, list(rows[0]))
