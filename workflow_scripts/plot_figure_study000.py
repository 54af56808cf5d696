"""Snakemake adapter: render one of study 000's figures (rule plot_figure)."""

import pandas as pd

from curvrobust import plots
from curvrobust.jobs import start_job

LABELS = {"sgd": "SGD", "adam": "Adam", "gn": "Gauss-Newton"}
log = start_job(snakemake)
name = snakemake.wildcards.figure
records = snakemake.params.records
order = [LABELS[k] for k in ("adam", "sgd", "gn") if k in snakemake.params.study["recipes"]]


def gather(extra=None):
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        if extra:
            df = extra(df)
        df["label"], df["variant"], df["seed"] = LABELS[r["label"]], r["variant"], r["seed"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


if name == "fig2_input_grad_norm":
    fig = plots.distribution_figure(gather(), "input_grad_norm", "‖∇ₓ CE‖₂ (per test image)",
                                    order, log_x=True,
                                    title="Fig. 2: input-gradient norm on the test set")
elif name == "fig3_logit_margin":
    fig = plots.distribution_figure(gather(), "logit_margin", "logit margin z_y − max_{j≠y} z_j",
                                    order, title="Fig. 3: logit margin on the test set")
elif name == "fig_sam_per_example":
    data = gather()
    rho = sorted(data["rho"].unique())[-1]
    data = data[data["rho"] == rho].copy()
    data["loss_increase"] = data["loss_increase"].clip(lower=1e-12)
    fig = plots.distribution_figure(data, "loss_increase", f"per-example loss increase, ρ={rho:g}",
                                    order, log_x=True,
                                    title="Per-example sharpness CE_i(θ+ρg_i/‖g_i‖) − CE_i(θ)")
elif name == "fig_training_curves":
    fig = plots.training_curves_figure(gather(), order)
else:
    raise ValueError(f"unknown study000 figure {name!r}")
plots.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {snakemake.output.pdf} and {snakemake.output.png}")
