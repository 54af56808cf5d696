"""Snakemake adapter: the checkpoint matched to the reference recipe's final model (rule
match_checkpoint): `match-<ref>` the first whose whole-training-set loss falls to the
reference's final training loss (Table 1b), `matchacc-<ref>` the first whose whole-training-set
accuracy rises to the reference's final training accuracy (Table 1c). Only training-set values
are read or computed, never the test images the attacks use."""

import math
import shutil
from pathlib import Path

import pandas as pd

from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.training.loop import evaluate, match_train_accuracy, match_train_loss
from curvrobust.utils import atomic_path, select_device, write_json_atomic
from curvrobust.data.variants import load_variant

# checkpoint prefix -> (what is matched, matcher, column in epochs.csv / checkpoints.csv)
MATCH = {"match": ("loss", match_train_loss, "train_loss"),
         "matchacc": ("accuracy", match_train_accuracy, "train_acc")}

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
on, matcher, column = MATCH[snakemake.wildcards.match]
model_dir = Path(snakemake.input.checkpoints).parent
reference = pd.read_csv(snakemake.input.reference).iloc[-1]
target = float(reference[column])
x, y = load_variant(Path(snakemake.input.manifest).parent, "train")
evaluated: dict[int, tuple[float, float]] = {}  # step -> (train loss, train accuracy)


def train_metrics(row) -> tuple[float, float]:
    step = int(row["step"])
    if step not in evaluated:
        model = load_model(model_dir / row["file"], map_location=device)
        evaluated[step] = evaluate(model, x, y, device=device)
        log(f"  step {step}: whole-training-set loss {evaluated[step][0]:.4f}, "
            f"accuracy {evaluated[step][1]:.4f}")
    return evaluated[step]


rows = pd.read_csv(snakemake.input.checkpoints).to_dict("records")
best = matcher(rows, target, lambda r: train_metrics(r)[0 if on == "loss" else 1])
for i, col in enumerate(("train_loss", "train_acc")):  # the other value, if not recorded
    if not math.isfinite(float(best[col])):
        best[col] = train_metrics(best)[i]
with atomic_path(snakemake.output.model) as tmp:
    shutil.copyfile(model_dir / best["file"], tmp)
info = dict(matched_on=on, reference_recipe=snakemake.wildcards.ref, target=target,
            reference_final_train_loss=float(reference["train_loss"]),
            reference_final_train_acc=float(reference["train_acc"]),
            step=int(best["step"]), epoch=float(best["epoch"]), file=best["file"],
            train_loss=float(best["train_loss"]), train_acc=float(best["train_acc"]),
            reached=bool(best["reached"]))
write_json_atomic(snakemake.output.info, info)
log(f"matched {snakemake.wildcards.recipe} to {snakemake.wildcards.ref} on training {on} "
    f"(target {target:.4f}{'' if best['reached'] else ', never reached: the best checkpoint'}): "
    f"step {best['step']} (epoch {best['epoch']}), train loss {best['train_loss']:.4f}, "
    f"train accuracy {best['train_acc']:.4f}")
