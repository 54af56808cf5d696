"""Snakemake adapter: pick the checkpoint whose whole-training-set loss is closest to the
reference recipe's final one (rule match_checkpoint, Table 1b)."""

import shutil
from pathlib import Path

import pandas as pd

from curvrobust.jobs import start_job
from curvrobust.models import load_model
from curvrobust.train import evaluate, match_train_loss
from curvrobust.utils import atomic_path, select_device, write_json_atomic
from curvrobust.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
model_dir = Path(snakemake.input.checkpoints).parent
target = float(pd.read_csv(snakemake.input.reference)["train_loss"].iloc[-1])
x, y = load_variant(Path(snakemake.input.manifest).parent, "train")


def train_loss(row):
    loss, _ = evaluate(load_model(model_dir / row["file"], map_location=device), x, y,
                       device=device)
    log(f"  step {row['step']}: whole-training-set loss {loss:.4f}")
    return loss


rows = pd.read_csv(snakemake.input.checkpoints).to_dict("records")
best = match_train_loss(rows, target, train_loss)
with atomic_path(snakemake.output.model) as tmp:
    shutil.copyfile(model_dir / best["file"], tmp)
info = dict(reference_recipe=snakemake.wildcards.ref, reference_final_train_loss=target,
            step=int(best["step"]), epoch=float(best["epoch"]), file=best["file"],
            train_loss=float(best["train_loss"]))
write_json_atomic(snakemake.output.info, info)
log(f"matched {snakemake.wildcards.recipe} to {snakemake.wildcards.ref} (final train loss "
    f"{target:.4f}): step {best['step']} (epoch {best['epoch']}), train loss {best['train_loss']:.4f}")
