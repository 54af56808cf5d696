"""Study 002's figures: input- and parameter-space surfaces (kinds ``input_loss``, ``decision``,
``loss_vs_decision``, ``param_surface``), Jacobian images (``jacobian``), accuracy over ε
(``curve``), the step-size sweep (``step_sweep``) and the indicator scatter (``scatter``), drawn by
:func:`make_figure`. Its tables are made by :mod:`curvrobust.reports.study002`.

Each figure's `kind` (from the plan's outputs) picks one function in :data:`FIGURES`.
``records`` are the plan's per-model records (model fields plus the ``files`` a figure reads, or
``indicator`` / ``attack`` / ``eps`` for the scatter); ``presentation`` is
``Study002.presentation(name)``: display names (``labels``) and the ``title`` template.
``study`` and ``attacks`` are the rule's other params (the study block and the specs of the
attacks the figure reads).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch

from curvrobust.reports import plots
from curvrobust.curvature.surfaces import load_surfaces
from .study002 import Records, attack_name

IMAGE = 0  # the surfaces file's test image the input-space figures show


def first_seed(records: Records, compare: Sequence[str]) -> list[dict[str, Any]]:
    """Surfaces and Jacobians are drawn for one model per regime: its first (smallest) seed's
    (regimes may have different seeds), in the order of the study's `compare` list (others
    last)."""
    first: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["label"] not in first or r["seed"] < first[r["label"]]["seed"]:
            first[r["label"]] = r
    return sorted(first.values(),
                  key=lambda r: compare.index(r["label"]) if r["label"] in compare else 99)


def input_surface_figure(records: Records, presentation: dict[str, Any], *,
                         kind: dict[str, Any], study: dict[str, Any], **_: Any) -> plt.Figure:
    """CE loss (kind input_loss) or decision function g (kind decision) around one test image,
    along the random and CE-ascent directions, per compared model."""
    value = "loss" if kind["kind"] == "input_loss" else "margin"
    labels, panels = presentation["labels"], []
    for r in first_seed(records, study["surfaces"]["compare"]):
        s = load_surfaces(r["files"]["surface"])
        dirs = list(s["directions"])
        shown = [d for d in ("random", "ce_ascent") if d in dirs] or dirs[:1]
        for d in shown:
            panels.append(dict(label=labels[r["label"]], alphas=s["alphas"], betas=s["betas"],
                               Z=s[value][dirs.index(d), IMAGE], direction=d))
    title = presentation["title"].format(dataset=kind["dataset"], image=IMAGE,
                                         label=int(s["labels"][IMAGE]))
    return plots.surface_figure(panels, value=value, title=title)


def loss_vs_decision_figure(records: Records, presentation: dict[str, Any], *,
                            kind: dict[str, Any], study: dict[str, Any], **_: Any) -> plt.Figure:
    """One model's loss and decision surfaces around one test image along every direction."""
    r = first_seed(records, study["surfaces"]["compare"])[0]
    s = load_surfaces(r["files"]["surface"])
    title = presentation["title"].format(dataset=kind["dataset"], image=IMAGE,
                                         regime=presentation["labels"][r["label"]])
    return plots.loss_vs_decision_figure(s["alphas"], s["betas"], s["loss"][:, IMAGE],
                                         s["margin"][:, IMAGE], [str(d) for d in s["directions"]],
                                         title=title)


def param_surface_figure(records: Records, presentation: dict[str, Any], *,
                         kind: dict[str, Any], study: dict[str, Any], **_: Any) -> plt.Figure:
    """Training loss in parameter space (filter-normalised directions) per compared model."""
    panels = []
    for r in first_seed(records, study["surfaces"]["compare"]):
        s = load_surfaces(r["files"]["surface"])
        panels.append(dict(label=presentation["labels"][r["label"]], alphas=s["alphas"],
                           betas=s["betas"], Z=s["loss"], direction="filter-normalised δ₁",
                           direction2="filter-normalised δ₂"))
    title = presentation["title"].format(dataset=kind["dataset"])
    return plots.surface_figure(panels, value="loss", title=title)


def jacobian_figure(records: Records, presentation: dict[str, Any], *,
                    kind: dict[str, Any], study: dict[str, Any], **_: Any) -> plt.Figure:
    """∇ₓg of the first test images per compared model."""
    grads, images = {}, None
    for r in first_seed(records, study["surfaces"]["compare"]):
        d = torch.load(r["files"]["jacobians"], weights_only=True)
        images = d["images"]
        grads[presentation["labels"][r["label"]]] = d["grads"]
    title = presentation["title"].format(dataset=kind["dataset"])
    return plots.jacobian_images_figure(images, grads, title=title)


def curve_figure(records: Records, presentation: dict[str, Any], **_: Any) -> plt.Figure:
    """Accuracy over ε per regime."""
    frames = []
    for r in records:
        df = pd.read_csv(r["files"]["curve"])
        df["accuracy"] = 100.0 * df["adv_accuracy"]
        df["regime"], df["seed"], df["dataset"] = presentation["labels"][r["label"]], r["seed"], \
            r["dataset"]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    return plots.accuracy_curve_figure(df, title=presentation["title"].format())


def step_sweep_figure(records: Records, presentation: dict[str, Any], *,
                      attacks: dict[str, dict], **_: Any) -> plt.Figure:
    """Accuracy against the step size of BIM and C&W at the smallest swept ε."""
    frames = []
    for r in records:
        for a, path in r["files"].items():
            df = pd.read_csv(path)
            df["accuracy"] = 100.0 * df["adv_accuracy"]
            df["step_size"] = attacks[a].get("step_size", math.nan)
            df["attack"] = attack_name(attacks[a])
            df["regime"], df["seed"], df["dataset"] = presentation["labels"][r["label"]], \
                r["seed"], r["dataset"]
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    swept = {e for r in records for a in r["files"] for e in attacks[a]["eps"]
             if len(attacks[a]["eps"]) == 1}
    eps = min(swept) if swept else df["eps"].min()
    df = df[[math.isclose(e, eps, rel_tol=1e-6) for e in df["eps"]]]
    return plots.step_sweep_figure(df, eps=eps, title=presentation["title"].format())


def scatter_figure(records: Records, presentation: dict[str, Any], *,
                   log: Callable[[str], None] | None = None, **_: Any) -> plt.Figure:
    """Indicator against PGD-10 accuracy at each dataset's middle ε, every model of every study;
    logs the Spearman correlations."""
    rows = []
    for r in records:
        ind = pd.read_csv(r["indicator"])
        curve = pd.read_csv(r["attack"])
        at = curve[[math.isclose(e, r["eps"], rel_tol=1e-6) for e in curve["eps"]]]
        rows.append(dict(study=r["study"], dataset=r["dataset"], regime=r["label"],
                         grad_l2_mean=ind["grad_l2"].mean(),
                         hess_top_eig_mean=ind["hess_top_eig"].mean(),
                         pgd_accuracy=100.0 * float(at["adv_accuracy"].iloc[0])))
    fig, stats = plots.indicator_scatter_figure(pd.DataFrame(rows),
                                                title=presentation["title"].format())
    if log:
        log(f"Spearman: {stats}")
    return fig


FIGURES: dict[str, Callable[..., plt.Figure]] = {
    "input_loss": input_surface_figure,
    "decision": input_surface_figure,
    "loss_vs_decision": loss_vs_decision_figure,
    "param_surface": param_surface_figure,
    "jacobian": jacobian_figure,
    "curve": curve_figure,
    "step_sweep": step_sweep_figure,
    "scatter": scatter_figure,
}


def make_figure(name: str, records: Records, presentation: dict[str, Any], *,
                kind: dict[str, Any], log: Callable[[str], None] | None = None,
                **params: Any) -> plt.Figure:
    """Figure `name` of study 002 (its kind from `kind`, the plan's spec). `params`: the rule's
    `study` and `attacks`; `log` gets notes such as the scatter's Spearman correlations."""
    if kind["kind"] not in FIGURES:
        raise ValueError(f"{name}: unknown figure kind {kind}")
    return FIGURES[kind["kind"]](records, presentation, kind=kind, log=log, **params)
