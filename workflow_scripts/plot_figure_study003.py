"""Snakemake adapter: one of study 003's figures on one dataset (rule plot_figure_study003).

fig_pga_loss_curves, fig_iters_to_tolerance, fig_local_maxima (PGA against the input scale) and
fig_adversarial_training, built by curvrobust.reports.study003_figures; titles, axis labels and the
measures' settings come from the plan through params."""

from curvrobust.workflow.jobs import start_job
from curvrobust.reports.plots import save_figure
from curvrobust.reports.study003_figures import make_figure

log = start_job(snakemake)
fig = make_figure(snakemake.wildcards.figure, snakemake.params.records,
                  snakemake.params.presentation, dataset=snakemake.wildcards.dataset,
                  settings=snakemake.params.settings)
save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {snakemake.output.png}")
