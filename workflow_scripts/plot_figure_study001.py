"""Snakemake adapter: draw one of study 001's figures on one dataset (rule plot_figure_study001).

fig1: clean, PGD and AutoAttack accuracy of the HAAT model over its checkpoints (study Fig. 1);
fig3: HAAT against PGD adversarial training (Fig. 3); fig2a / fig2b: the ξ and k sweeps, one
trained HAAT model per value (Fig. 2); fig4: the power iteration's convergence in the last attack
step (Figs. 4/5)."""

import pandas as pd
from matplotlib.ticker import MaxNLocator

from curvrobust import plots
from curvrobust.jobs import start_job

log = start_job(snakemake)
name = snakemake.wildcards.figure
ds = snakemake.wildcards.dataset
eps = snakemake.params.eps
METRICS = {"clean_acc": "clean", "pgd_acc": "PGD", "aa_acc": "AutoAttack"}
MODELS = {"haat": "HAAT", "pgd_at": "PGD-AT"}
ACC = "accuracy (%)"


def evals():
    frames = []
    for r in snakemake.params.records:
        for f in r["evals"]:
            df = pd.read_csv(f)
            df["model"] = MODELS.get(r["label"], r["label"])
            df["value"] = r.get("value")
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    long = df.melt(id_vars=["model", "value", "seed", "epoch"], value_vars=list(METRICS),
                   var_name="metric", value_name=ACC)
    long[ACC] *= 100.0
    long["metric"] = long["metric"].map(METRICS)
    return long


if name == "fig4_fd_convergence":
    df = pd.concat([pd.read_csv(f) for f in snakemake.input.data], ignore_index=True)
    conv = snakemake.params.convergence
    fig = plots.power_iteration_figure(
        df, title=f"Study 001, {ds}: power iteration in the last HAAT attack step "
                  f"({conv['batches']} training batches, seed(s) {snakemake.params.seeds})")
elif name == "fig1_haat_robust_accuracy":
    fig = plots.accuracy_curve_figure(
        evals(), x="epoch", y=ACC, hue="metric", col=None,
        title=f"Study 001, {ds}: HAAT model over its checkpoints, ε = {eps:g}")
elif name == "fig3_haat_vs_pgd":
    fig = plots.accuracy_curve_figure(
        evals(), x="epoch", y=ACC, hue="model", col="metric", hue_order=["PGD-AT", "HAAT"],
        title=f"Study 001, {ds}: HAAT against PGD adversarial training, ε = {eps:g}")
else:
    key = "ξ" if name == "fig2a_xi_sweep" else "k"
    df = evals()
    df["HAAT " + key] = [f"{key} = {v:g}" for v in df["value"]]
    order = [f"{key} = {v:g}" for v in sorted(set(df["value"]))]
    fig = plots.accuracy_curve_figure(
        df, x="epoch", y=ACC, hue="HAAT " + key, col="metric", hue_order=order,
        title=f"Study 001, {ds}: HAAT trained with different {key} (one model each), ε = {eps:g}")
if name != "fig4_fd_convergence":
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
plots.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {snakemake.output.png}")
