"""Snakemake adapter: build one dataset variant (rule make_variant)."""

from pathlib import Path

from curvrobust.data.variants import make_variant
from curvrobust.workflow.jobs import start_job

log = start_job(snakemake)
spec = dict(snakemake.params.spec)
seed = spec.pop("seed", 0)
raw_root = Path(snakemake.input.raw).parent
manifest = make_variant(raw_root, snakemake.wildcards.dataset, spec,
                        Path(snakemake.output.manifest).parent, seed=seed)
log(f"variant {snakemake.wildcards.variant}: {manifest}")
