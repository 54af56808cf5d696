"""Snakemake adapter: per-test-example input-gradient norm and logit margin."""

from pathlib import Path

import pandas as pd
import torch

from curvrobust.workflow.jobs import start_job
from curvrobust.curvature.statistics import input_grad_norm, logit_margin
from curvrobust.models import load_model
from curvrobust.utils import atomic_path, select_device
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
bs = snakemake.params.spec.get("batch_size", 1000)
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
gn = input_grad_norm(model, x, y, batch_size=bs)
margin = logit_margin(model, x, y, batch_size=bs)
with torch.no_grad():
    pred = torch.cat([model(x[i:i + bs].to(device)).argmax(1).cpu() for i in range(0, len(x), bs)])
df = pd.DataFrame(dict(index=range(len(y)), label=y.numpy(), pred=pred.numpy(),
                       input_grad_norm=gn.numpy(), logit_margin=margin.numpy()))
with atomic_path(snakemake.output[0]) as tmp:
    df.to_csv(tmp, index=False, float_format="%.8g")
log(f"input_grad_norm median {df.input_grad_norm.median():.4g}; "
    f"logit_margin median {df.logit_margin.median():.4g} over {len(df)} test examples")
