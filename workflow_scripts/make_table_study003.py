"""Snakemake adapter: study 003's tables on one dataset (rule make_table_study003).

table_pga_by_scale: per input scale and stage (initialisation, after adversarial training),
PGA's convergence (iterations to the loss tolerance, share reaching the mapping tolerance, last
mapping norm) and the landscape's regularity (distinct local maxima, their relative spread).
table_adversarial_training: per input scale, the robust training loss in the first and last
epoch and the clean / robust test accuracy at the end. Mean ± 95 % interval over seeds."""

from curvrobust.jobs import start_job
from curvrobust.tables import render_summary, study003_frames, summarise, write_table

log = start_job(snakemake)
name, ds = snakemake.wildcards.table, snakemake.wildcards.dataset
stem = snakemake.output.csv[: -len(".csv")]
frames = study003_frames(snakemake.params.records)

if name == "table_pga_by_scale":
    df = frames["pga"]
    df = df.assign(order=df["stage"].map({"init": 0, "trained": 1}))
    df = df.sort_values(["order", "scale", "seed"], kind="stable")
    values = {
        "loss_start": ("loss at start", 3),
        "loss_final": ("loss at end", 3),
        "iters_to_loss_tol": ("iterations to loss tol.", 1),
        "reached_tol": ("share reaching mapping tol.", 2),
        "mapping_norm_final": ("last mapping norm", 3),
        "maxima_count": ("distinct maxima", 2),
        "maxima_rel_spread": ("relative spread of maxima", 4),
    }
    numeric = summarise(df, ["stage", "scale"], list(values))
    numeric["n_examples"] = int(df["n_examples"].iloc[0])
    readable = render_summary(numeric, ["stage", "scale"], values)
    readable = readable.rename(columns={"stage": "Stage", "scale": "s"})
    caption = (f"Study 003 on {ds}: projected gradient ascent on the adversary against the "
               f"input scale s, {int(df['n_examples'].iloc[0])} test examples, at "
               "initialisation and after adversarial training; mean ± 95 % interval over seeds.")
else:
    ep = frames["epochs"]
    last = ep[ep["epoch"] == ep["epoch"].max()]
    first = ep[ep["epoch"] == 1][["scale", "seed", "robust_train_loss"]]
    df = last.merge(first.rename(columns={"robust_train_loss": "robust_train_loss_epoch1"}),
                    on=["scale", "seed"]).sort_values(["scale", "seed"])
    df[["test_acc", "robust_test_acc"]] *= 100
    values = {
        "robust_train_loss_epoch1": ("robust train loss, epoch 1", 3),
        "robust_train_loss": (f"robust train loss, epoch {int(ep['epoch'].max())}", 3),
        "test_acc": ("clean test acc. %", 1),
        "robust_test_acc": ("robust test acc. %", 1),
    }
    numeric = summarise(df, ["scale"], list(values))
    readable = render_summary(numeric, ["scale"], values).rename(columns={"scale": "s"})
    caption = (f"Study 003 on {ds}: adversarial training with PGA inside, per input scale s; "
               "mean ± 95 % interval over seeds.")
write_table(numeric, readable, stem, caption)
log(readable.to_string(index=False))
