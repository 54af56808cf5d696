"""Snakemake adapter: one of study 001's tables on one dataset (rule make_table_study001).

The table is built by curvrobust.reports.study001.make_table; its display names and caption
come from the plan's presentation (params.presentation)."""

from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study001 import make_table
from curvrobust.reports.tables import write_table

log = start_job(snakemake)
p = snakemake.params
numeric, readable, caption = make_table(
    snakemake.wildcards.table, p.records, p.presentation, dataset=snakemake.wildcards.dataset,
    data=list(snakemake.input.data), recipes=p.recipes, seeds=p.seeds,
    robust=p.robust)
write_table(numeric, readable, snakemake.output.csv[: -len(".csv")], caption)
log(readable.to_string(index=False))
