"""Snakemake adapter: cross-entropy PGD crafted once per ε on a dataset's naturally trained
source model, for the transfer check of every model of the dataset (rule craft_transfer;
curvrobust.evaluation)."""

from pathlib import Path

from curvrobust.evaluation.robustness import make_transfer
from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.utils import select_device, torch_save_atomic
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
p = snakemake.params
log(f"device: {device}; source {p.source}; eps {p.eps}")
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
obj = make_transfer(model, x, y, p.eps, n_examples=p.subset["n_default"],
                    subset_seed=p.subset["seed"], settings=dict(p.settings), device=device)
obj["source"] = dict(p.source)
torch_save_atomic(obj, snakemake.output[0])
log(f"crafted {len(obj['index'])} images at eps {sorted(obj['adversarial'])}")
