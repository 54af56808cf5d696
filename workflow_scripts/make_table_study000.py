"""Snakemake adapter: render one of study 000's tables (rule make_table_study000)."""

from pathlib import Path

from curvrobust.reports import tables
from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study000 import make_table

log = start_job(snakemake)
p = snakemake.params
numeric, readable, caption = make_table(p.presentation["name"], p.records, p.presentation,
                                        study=p.study, recipes=p.recipes, robust=p.robust)
stem = str(Path(snakemake.output.csv).with_suffix(""))
tables.write_table(numeric, readable, stem, caption)
log(f"wrote {stem}.{{csv,md,tex}}\n{readable.to_string(index=False)}")
