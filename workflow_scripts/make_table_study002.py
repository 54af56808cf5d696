"""Snakemake adapter: render one of study 002's tables (rule make_table_study002)."""

from curvrobust.reports import tables
from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study002 import make_table

log = start_job(snakemake)
name, p = snakemake.wildcards.table, snakemake.params
numeric, readable, caption = make_table(name, p.records, p.presentation, kind=p.kind,
                                        study=p.study, attacks=p.attacks, recipes=p.recipes,
                                        robust=p.robust)
tables.write_table(numeric, readable, snakemake.output.csv[:-len(".csv")], caption)
log(f"wrote {name}:\n{readable.to_string(index=False)}")
