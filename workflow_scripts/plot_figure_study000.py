"""Snakemake adapter: render one of study 000's figures (rule plot_figure_study000)."""

from curvrobust.reports import plots
from curvrobust.workflow.jobs import start_job
from curvrobust.reports.study000_figures import make_figure

log = start_job(snakemake)
p = snakemake.params
fig = make_figure(p.presentation["name"], p.records, p.presentation)
plots.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {snakemake.output.pdf} and {snakemake.output.png}")
