"""Snakemake adapter: draw one of study 002's figures (rule plot_figure_study002)."""

import math

import pandas as pd
import torch

from curvrobust import plots
from curvrobust.jobs import start_job
from curvrobust.surfaces import load_surfaces

NAMES = {"natural": "natural", "advtrain": "AdvTrain", "crossentropy": "CE penalty",
         "ours": "margin penalty (ours)", "minmax": "min-max PGD", "ours_minmax": "ours + min-max"}
log = start_job(snakemake)
name = snakemake.wildcards.figure
spec = snakemake.params.kind
records = snakemake.params.records
study = snakemake.params.study
attacks = snakemake.params.attacks
kind = spec["kind"]
image = 0  # the first test image of the surfaces file
compare = study["surfaces"]["compare"]


def first_seed(recs):
    """Surfaces and Jacobians are drawn for one model per regime: the first seed."""
    seed = min(r["seed"] for r in recs)
    recs = [r for r in recs if r["seed"] == seed]
    return sorted(recs, key=lambda r: compare.index(r["label"]) if r["label"] in compare else 99)


def read_attacks(key):
    frames = []
    for r in records:
        df = pd.read_csv(r["files"][key] if key else list(r["files"].values())[0])
        df["accuracy"] = 100.0 * df["adv_accuracy"]
        df["regime"], df["seed"], df["dataset"] = NAMES[r["label"]], r["seed"], r["dataset"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


if kind in ("input_loss", "decision"):
    value = "loss" if kind == "input_loss" else "margin"
    panels = []
    for r in first_seed(records):
        s = load_surfaces(r["files"]["surface"])
        dirs = list(s["directions"])
        shown = [d for d in ("random", "ce_ascent") if d in dirs] or dirs[:1]
        for d in shown:
            panels.append(dict(label=NAMES[r["label"]], alphas=s["alphas"], betas=s["betas"],
                               Z=s[value][dirs.index(d), image], direction=d))
    what = "CE loss" if value == "loss" else "decision function g"
    fig = plots.surface_figure(panels, value=value, title=(
        f"{spec['dataset']}: {what} in input space around test image {image} (label "
        f"{int(s['labels'][image])}), natural vs robust models"))
elif kind == "loss_vs_decision":
    r = first_seed(records)[0]
    s = load_surfaces(r["files"]["surface"])
    fig = plots.loss_vs_decision_figure(
        s["alphas"], s["betas"], s["loss"][:, image], s["margin"][:, image],
        [str(d) for d in s["directions"]],
        title=f"{spec['dataset']}, {NAMES[r['label']]} model: loss vs decision surface, test "
              f"image {image}")
elif kind == "param_surface":
    panels = []
    for r in first_seed(records):
        s = load_surfaces(r["files"]["surface"])
        panels.append(dict(label=NAMES[r["label"]], alphas=s["alphas"], betas=s["betas"],
                           Z=s["loss"], direction="filter-normalised δ₁",
                           direction2="filter-normalised δ₂"))
    fig = plots.surface_figure(panels, value="loss", title=(
        f"{spec['dataset']}: training loss in parameter space (Li et al. filter-normalised "
        "directions)"))
elif kind == "jacobian":
    recs = first_seed(records)
    grads, images = {}, None
    for r in recs:
        d = torch.load(r["files"]["jacobians"], weights_only=True)
        images = d["images"]
        grads[NAMES[r["label"]]] = d["grads"]
    fig = plots.jacobian_images_figure(images, grads, title=(
        f"{spec['dataset']}: ∇ₓg of the first test images, scaled to [0, 1] per image"))
elif kind == "curve":
    df = read_attacks("curve")
    fig = plots.accuracy_curve_figure(df, title="Accuracy under PGD-10 over ε")
elif kind == "step_sweep":
    frames = []
    for r in records:
        for a, path in r["files"].items():
            df = pd.read_csv(path)
            df["accuracy"] = 100.0 * df["adv_accuracy"]
            df["step_size"] = attacks[a].get("step_size", math.nan)
            df["attack"] = attacks[a]["kind"].upper() if attacks[a]["kind"] != "cw" else "C&W"
            df["regime"], df["seed"], df["dataset"] = NAMES[r["label"]], r["seed"], r["dataset"]
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    swept = {e for r in records for a in r["files"] for e in attacks[a]["eps"]
             if len(attacks[a]["eps"]) == 1}
    eps = min(swept) if swept else df["eps"].min()
    df = df[[math.isclose(e, eps, rel_tol=1e-6) for e in df["eps"]]]
    fig = plots.step_sweep_figure(df, eps=eps, title="BIM and C&W: the study's step and smaller ones")
elif kind == "scatter":
    rows = []
    for r in records:
        ind = pd.read_csv(r["indicator"])
        curve = pd.read_csv(r["attack"])
        at = curve[[math.isclose(e, r["eps"], rel_tol=1e-6) for e in curve["eps"]]]
        rows.append(dict(study=r["study"], dataset=r["dataset"], regime=r["label"],
                         grad_l2_mean=ind["grad_l2"].mean(),
                         hess_top_eig_mean=ind["hess_top_eig"].mean(),
                         pgd_accuracy=100.0 * float(at["adv_accuracy"].iloc[0])))
    df = pd.DataFrame(rows)
    fig, stats = plots.indicator_scatter_figure(df, title=(
        "Robustness indicator vs accuracy under PGD-10 at each dataset's middle ε, every model"))
    log(f"Spearman: {stats}")
else:
    raise ValueError(f"unknown figure kind {spec}")

plots.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"wrote {name}")
