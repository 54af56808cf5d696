"""Snakemake adapter: one of study 003's figures on one dataset (rule plot_figure_study003).

fig_pga_loss_curves: adversarial loss against PGA iteration, one line per input scale, at
initialisation and after adversarial training. fig_iters_to_tolerance: iterations to the loss
tolerance and the last projected-gradient mapping norm against the scale. fig_local_maxima:
distinct local maxima reached from the random starts and their relative spread against the
scale. fig_adversarial_training: robust loss per SGD step (initial phase) and per epoch, clean
and robust test accuracy per epoch, one colour per scale. Mean over seeds, 95 % intervals."""

from curvrobust.jobs import start_job
from curvrobust.plots import (adversarial_training_figure, pga_loss_curve_figure,
                              save_figure, scale_metric_figure)
from curvrobust.tables import study003_frames

log = start_job(snakemake)
name, ds = snakemake.wildcards.figure, snakemake.wildcards.dataset
frames = study003_frames(snakemake.params.records)
title = f"Study 003 on {ds}"
if name == "fig_pga_loss_curves":
    fig = pga_loss_curve_figure(frames["trace"], title=f"{title}: PGA on the adversary")
elif name == "fig_iters_to_tolerance":
    fig = scale_metric_figure(frames["pga"], {
        "iters_to_loss_tol": "iterations to loss tolerance",
        "mapping_norm_final": "last mapping norm"},
        title=f"{title}: convergence of PGA against input scale")
elif name == "fig_local_maxima":
    fig = scale_metric_figure(frames["pga"], {
        "maxima_count": "distinct local maxima",
        "maxima_rel_spread": "spread / mean maximum"},
        title=f"{title}: landscape regularity against input scale")
else:
    fig = adversarial_training_figure(frames["epochs"], frames["steps"],
                                      initial_steps=snakemake.params.initial_steps,
                                      title=f"{title}: adversarial training with PGA")
save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {snakemake.output.png}")
