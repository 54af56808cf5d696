"""Snakemake adapter: fetch and MD5-verify a raw dataset (rule fetch_dataset)."""

from pathlib import Path

from curvrobust.data.sources import fetch_dataset
from curvrobust.workflow.jobs import start_job

log = start_job(snakemake)
dest = Path(snakemake.output.manifest).parent
report = fetch_dataset(snakemake.wildcards.dataset, dest, sources=snakemake.params.sources,
                       local_dir=snakemake.params.local_dir, log=log)
log(f"{snakemake.wildcards.dataset}: files from source {report.get('source')!r} in {dest}")
