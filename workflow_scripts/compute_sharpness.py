"""Snakemake adapter: the study's per-batch SAM loss increase and the per-example variant."""

from pathlib import Path

import pandas as pd

from curvrobust.workflow.jobs import start_job
from curvrobust.curvature.statistics import sam_loss_increase, sam_loss_increase_per_example
from curvrobust.models import load_model
from curvrobust.utils import atomic_path, select_device
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
spec = snakemake.params.spec
bs = spec.get("batch_size", 256)
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
batches, examples = [], []
for rho in spec["rho"]:
    vals = sam_loss_increase(model, x, y, rho, batch_size=bs)
    batches.append(pd.DataFrame(dict(rho=rho, batch=range(len(vals)), loss_increase=vals.numpy())))
    log(f"rho={rho:g}: median per-batch loss increase {vals.median().item():.5f}")
    if spec.get("per_example", True):
        ex = sam_loss_increase_per_example(model, x, y, rho, batch_size=bs)
        examples.append(pd.DataFrame(dict(rho=rho, index=range(len(ex)), loss_increase=ex.numpy())))
        log(f"rho={rho:g}: median per-example loss increase {ex.median().item():.5f}")
for frames, path in ((batches, snakemake.output.batches), (examples, snakemake.output.examples)):
    df = pd.concat(frames) if frames else pd.DataFrame(columns=["rho", "index", "loss_increase"])
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.8g")
