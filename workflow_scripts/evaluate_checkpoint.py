"""Snakemake adapter: evaluate one epoch-end checkpoint of a study-001 model on a fixed, seeded
test subset — clean accuracy, PGD accuracy and the AutoAttack-style cascade
(rule evaluate_checkpoint; curvrobust.checkpoint_eval)."""

from curvrobust.checkpoint_eval import evaluate_checkpoint
from curvrobust.jobs import start_job
from curvrobust.utils import select_device, write_csv

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
w, p = snakemake.wildcards, snakemake.params
row = evaluate_checkpoint(
    snakemake.input.checkpoints, snakemake.input.checkpoint_dir, snakemake.input.test,
    dataset=w.dataset, recipe=w.recipe, seed=int(w.seed), epoch=int(w.epoch), eps=p.eps,
    pgd=p.pgd, autoattack=p.autoattack, device=device, log=log)
write_csv(snakemake.output[0], [row], list(row))
