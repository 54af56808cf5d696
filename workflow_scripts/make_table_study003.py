"""Snakemake adapter: study 003's tables on one dataset (rule make_table_study003).

table_pga_by_scale: PGA's convergence and the landscape's regularity per stage and input scale;
table_adversarial_training: the rate measures, robust training loss and test accuracies per
learning-rate scaling and input scale. Built by curvrobust.reports.study003; headings, caption
and the measures' settings come from the plan through params."""

from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study003 import make_table
from curvrobust.reports.tables import write_table

log = start_job(snakemake)
numeric, readable, caption = make_table(
    snakemake.wildcards.table, snakemake.params.records, snakemake.params.presentation,
    dataset=snakemake.wildcards.dataset, settings=snakemake.params.settings)
write_table(numeric, readable, snakemake.output.csv[: -len(".csv")], caption)
log(readable.to_string(index=False))
