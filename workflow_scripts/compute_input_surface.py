"""Snakemake adapter: CE loss and decision surfaces on 2-D slices of input space around the
first test images, one slice per direction kind (rule compute_input_surface)."""

from pathlib import Path

import numpy as np

from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.curvature.surfaces import grid, input_direction, input_surface, save_surfaces
from curvrobust.utils import select_device
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
spec = snakemake.params.spec
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
x, y = x[:spec["images"]].to(device), y[:spec["images"]].to(device)
axis = grid(snakemake.params.half_width, spec["points"])
seed = spec.get("seed", 0)
loss, margin = [], []
for kind in spec["directions"]:
    d1 = input_direction(model, x, y, kind, seed=seed)
    d2 = input_direction(model, x, y, "random", seed=seed + 1)
    s = input_surface(model, x, y, d1, d2, axis, axis, clip=spec.get("clip", False))
    loss.append(s["loss"].cpu().numpy())
    margin.append(s["margin"].cpu().numpy())
    log(f"{kind}: margin at origin {s['margin'][:, len(axis) // 2, len(axis) // 2].tolist()}, "
        f"share of the grid misclassified {(s['margin'] < 0).float().mean():.3f}")
save_surfaces(snakemake.output[0], alphas=axis.cpu().numpy(), betas=axis.cpu().numpy(),
              loss=np.stack(loss), margin=np.stack(margin),
              directions=np.array(spec["directions"]), images=x.cpu().numpy(),
              labels=y.cpu().numpy())
