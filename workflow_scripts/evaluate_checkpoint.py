"""Snakemake adapter: evaluate one epoch-end checkpoint of a study-001 model on the shared,
seeded test subset — clean accuracy, PGD accuracy and the AutoAttack-style cascade (output csv,
one row) and their per-image outcomes (output images) (rule evaluate_checkpoint;
curvrobust.evaluation.checkpoints)."""

from curvrobust.attacks import OUTCOME_COLUMNS
from curvrobust.evaluation.checkpoints import evaluate_checkpoint
from curvrobust.workflow.jobs import start_job
from curvrobust.utils import select_device, write_csv

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
w, p = snakemake.wildcards, snakemake.params
row, outcomes = evaluate_checkpoint(
    snakemake.input.checkpoints, snakemake.input.checkpoint_dir, snakemake.input.test,
    dataset=w.dataset, recipe=w.recipe, seed=int(w.seed), epoch=int(w.epoch), eps=p.eps,
    pgd=p.pgd, autoattack=p.autoattack, subset_seed=int(p.subset_seed),
    pgd_name=getattr(p, "pgd_name", "pgd"), device=device, log=log)
write_csv(snakemake.output.csv, [row], list(row))
write_csv(snakemake.output.images, outcomes, list(OUTCOME_COLUMNS))
