"""Snakemake adapter: training-loss surface on a filter-normalised 2-D slice of parameter
space (Li et al. 2018; study 002 fig 2) (rule compute_param_surface)."""

from pathlib import Path

from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.curvature.surfaces import grid, param_surface, save_surfaces
from curvrobust.utils import select_device
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
spec = snakemake.params.spec
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.train).parent, "train")
n = spec.get("param_examples", 2000)
x, y = x[:n].to(device), y[:n].to(device)
axis = grid(spec.get("param_range", 1.0), spec.get("param_points", 21))
log(f"parameter-space surface on {len(x)} training images, {len(axis)}² points")
z = param_surface(model, x, y, axis, axis, seed=spec.get("seed", 0))
z = z.cpu().numpy() if hasattr(z, "cpu") else z
log(f"loss at the trained weights {z[len(axis) // 2, len(axis) // 2]:.4g}, max on grid {z.max():.4g}")
save_surfaces(snakemake.output[0], alphas=axis.cpu().numpy(), betas=axis.cpu().numpy(), loss=z)
