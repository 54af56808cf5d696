"""Snakemake adapter: train one (dataset, variant, recipe, seed) model (rule train_model)."""

from pathlib import Path

from curvrobust.train import TrainSpec, train
from curvrobust.utils import job_logger, select_device, set_threads, use_deterministic
from curvrobust.variants import load_variant

log = job_logger(snakemake.log[0])
set_threads(snakemake.threads)
use_deterministic(snakemake.params.deterministic)
device = select_device(snakemake.params.device)
variant_dir = Path(snakemake.input.manifest).parent
train_x, train_y = load_variant(variant_dir, "train")
test_x, test_y = load_variant(variant_dir, "test")
w = snakemake.wildcards
train(TrainSpec.from_recipe(snakemake.params.recipe), int(w.seed), train_x, train_y, test_x,
      test_y, Path(snakemake.output.model).parent, device=device, log=log,
      meta=dict(dataset=w.dataset, variant=w.variant, recipe=w.recipe))
