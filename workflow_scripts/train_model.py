"""Snakemake adapter: train one (dataset, variant, recipe, seed) model (rule train_model)."""

from pathlib import Path

from curvrobust.workflow.jobs import start_job
from curvrobust.training.loop import TrainSpec, train
from curvrobust.utils import select_device, use_deterministic
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
use_deterministic(snakemake.params.deterministic)
device = select_device(snakemake.params.device)
log(f"device: {device}")
variant_dir = Path(snakemake.input.manifest).parent
train_x, train_y = load_variant(variant_dir, "train")
test_x, test_y = load_variant(variant_dir, "test")
w = snakemake.wildcards
train(TrainSpec.from_recipe(snakemake.params.recipe), int(w.seed), train_x, train_y, test_x,
      test_y, Path(snakemake.output.model).parent, device=device, log=log,
      meta=dict(dataset=w.dataset, variant=w.variant, recipe=w.recipe))
