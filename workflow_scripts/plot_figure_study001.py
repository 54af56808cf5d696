"""Snakemake adapter: draw one of study 001's figures on one dataset (rule plot_figure_study001).

The figure is drawn by curvrobust.reports.study001_figures.make_figure; its display names and title
come from the plan's presentation (params.presentation)."""

from curvrobust.reports import plots
from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study001_figures import make_figure

log = start_job(snakemake)
p = snakemake.params
fig = make_figure(
    snakemake.wildcards.figure, p.records, p.presentation, dataset=snakemake.wildcards.dataset,
    data=list(snakemake.input.data), eps=p.eps, convergence=p.convergence, seeds=p.seeds)
plots.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {snakemake.output.png}")
