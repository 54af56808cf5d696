"""Snakemake adapter: pick the checkpoint whose training loss is closest to the reference
recipe's final training loss (rule match_checkpoint, Table 1b)."""

import shutil
from pathlib import Path

import pandas as pd

from curvrobust.train import closest_checkpoint
from curvrobust.utils import atomic_path, job_logger, write_json_atomic

log = job_logger(snakemake.log[0])
ref = pd.read_csv(snakemake.input.reference)
target = float(ref["train_loss"].iloc[-1])
rows = pd.read_csv(snakemake.input.checkpoints).to_dict("records")
best = closest_checkpoint(rows, target)
src = Path(snakemake.input.checkpoints).parent / best["file"]
with atomic_path(snakemake.output.model) as tmp:
    shutil.copyfile(src, tmp)
info = dict(reference_recipe=snakemake.wildcards.ref, reference_final_train_loss=target, **best)
write_json_atomic(snakemake.output.info, info)
log(f"matched {snakemake.wildcards.recipe} to {snakemake.wildcards.ref} (final train loss "
    f"{target:.4f}): step {best['step']} (epoch {best['epoch']}), train loss {best['train_loss']:.4f}")
