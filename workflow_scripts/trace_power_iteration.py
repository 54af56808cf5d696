"""Snakemake adapter: study 001's Figs 4/5 — the power iteration's ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖ in the last
HAAT attack step for each k and Hessian-vector-product method, on seeded training batches of the
trained HAAT model — and the finite-difference products' error against double backprop and
alignment with the dominant eigenvector (rule trace_power_iteration; curvrobust.power_trace)."""

from curvrobust.jobs import start_job
from curvrobust.power_trace import trace_power_iteration
from curvrobust.utils import select_device, write_csv

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
outputs = trace_power_iteration(
    snakemake.input.model, snakemake.input.train, spec=dict(snakemake.params.spec),
    adversary=snakemake.params.adversary, device=device, log=log)
for key, rows in outputs.items():
    write_csv(snakemake.output[key], rows, list(rows[0]))
