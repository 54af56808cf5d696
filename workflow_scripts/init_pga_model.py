"""Snakemake adapter: study 003's two-layer network at initialisation, one per (dataset, seed),
shared by every input scale so that the scale is the only difference (rule init_pga_model)."""

import torch

from curvrobust.data.sources import get_spec
from curvrobust.workflow.jobs import start_job
from curvrobust.models import build_model, save_checkpoint
from curvrobust.seeds import derive_seed

log = start_job(snakemake)
spec = get_spec(snakemake.wildcards.dataset)
h, w = spec.image_shape
kwargs = dict(snakemake.params.model, in_features=spec.channels * h * w)
torch.manual_seed(derive_seed(int(snakemake.wildcards.seed), "init"))
model = build_model("twolayer", **kwargs)
log(f"twolayer {kwargs}: {sum(p.numel() for p in model.parameters())} trained parameters")
save_checkpoint(snakemake.output[0], model, "twolayer", kwargs)
