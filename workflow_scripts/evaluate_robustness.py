"""Snakemake adapter: the robust evaluation of one model — validity gate, strong attacks and
gradient-masking checks at its study's headline ε, worst case over every attack run on it
(rule evaluate_robustness; curvrobust.evaluation)."""

from pathlib import Path

import torch

from curvrobust.evaluation.robustness import evaluate_model
from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.utils import select_device, write_csv, write_json_atomic
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
p = snakemake.params
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
transfer = None
if snakemake.input.transfer:
    transfer = torch.load(snakemake.input.transfer[0], weights_only=True)
outcomes, summary = evaluate_model(
    model, x, y, record=dict(p.record), settings=dict(p.settings), subset=dict(p.subset),
    limits=dict(p.limits), validity=dict(p.validity),
    attack_files=list(snakemake.input.attacks), transfer=transfer, device=device, log=log)
write_csv(snakemake.output.outcomes, outcomes.to_dict("records"), list(outcomes.columns))
write_json_atomic(snakemake.output.summary, summary)
