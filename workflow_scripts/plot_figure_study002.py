"""Snakemake adapter: draw one of study 002's figures (rule plot_figure_study002)."""

from curvrobust.reports import plots
from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study002_figures import make_figure

log = start_job(snakemake)
name, p = snakemake.wildcards.figure, snakemake.params
fig = make_figure(name, p.records, p.presentation, kind=p.kind, study=p.study,
                  attacks=p.attacks, log=log)
plots.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {name}")
