"""Study 003's figures: PGA's convergence and the landscape's regularity against the input scale
s, and adversarial training per learning-rate scaling and scale, drawn by `make_figure`:
``fig_pga_loss_curves``, ``fig_iters_to_tolerance``, ``fig_local_maxima`` and
``fig_adversarial_training``. Its tables are made by :mod:`curvrobust.reports.study003`.

``records`` are the plan's (see :func:`curvrobust.reports.study003.frames`); ``presentation`` is
the plan's ``Study003.presentation(name)``: title templates, stage and lr-scaling labels and
the figures' metrics; ``settings`` its ``Study003.settings(name)``, which fill the templates.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from curvrobust.reports.plots import (legend_right, log_y_if_positive, mean_band, scale_handles,
    scale_palette, pga_loss_curve_figure, scale_metric_figure)
from .study003 import frames

Frames = dict[str, pd.DataFrame]


def _labelled_stages(df: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Rows in the order of the stage labels, the ``stage`` column showing each label."""
    unknown = sorted(set(df["stage"]) - set(labels))
    if unknown:
        raise ValueError(f"PGA stages {unknown} have no label in the presentation's `stages`")
    order = {st: i for i, st in enumerate(labels)}
    df = df.assign(order=df["stage"].map(order)).sort_values("order", kind="stable")
    return df.assign(stage=df["stage"].map(labels)).drop(columns="order")


def _pga_loss_curves(f: Frames, spec: dict[str, Any]) -> Figure:
    return pga_loss_curve_figure(_labelled_stages(f["trace"], spec["stages"]),
                                 title=spec["title"])


def _scale_metrics(f: Frames, spec: dict[str, Any]) -> Figure:
    metrics = {c: label.format(**spec["settings"]) for c, label in spec["metrics"].items()}
    return scale_metric_figure(_labelled_stages(f["pga"], spec["stages"]), metrics,
                               title=spec["title"])


def _adversarial_training(f: Frames, spec: dict[str, Any]) -> Figure:
    """One row per learning-rate scaling (in the ``lr_labels`` order), one colour per scale:
    (a) the robust batch loss against the SGD step (steps ≤ ``initial_steps`` when set), with
    the threshold of the steps-to-below measure dashed; (b) the robust training loss per
    epoch; (c) robust (solid) and clean (dashed) test accuracy per epoch. Mean over seeds with
    a 95 % band; log y on (a) and (b) where every value is positive."""
    epochs, steps = f["epochs"], f["steps"]
    settings = spec["settings"]
    initial = settings.get("initial_steps")
    if initial is not None:
        steps = steps[steps["step"] <= initial]
    if epochs.empty or steps.empty:
        raise ValueError(f"fig_adversarial_training has nothing to plot: {len(epochs)} epoch "
                         f"rows, {len(steps)} step rows (initial_steps={initial!r})")
    labels = spec["lr_labels"]
    scalings = [sc for sc in labels if sc in set(epochs["lr_scaling"])]
    palette = scale_palette(pd.concat([epochs["scale"], steps["scale"]]))
    fig, axes = plt.subplots(len(scalings), 3, figsize=(3.6 * 3, 3.0 * len(scalings)),
                             squeeze=False)
    thr = settings.get("loss_threshold")
    for row, sc in zip(axes, scalings):
        ep, st = epochs[epochs["lr_scaling"] == sc], steps[steps["lr_scaling"] == sc]
        name = labels[sc]
        panels = [(row[0], st, "step", "robust_batch_loss", "robust batch loss",
                   f"(a) initial phase, {name}" if initial is not None else f"(a) {name}"),
                  (row[1], ep, "epoch", "robust_train_loss", "robust training loss",
                   f"(b) training loss, {name}")]
        for ax, df, x, y, ylabel, title in panels:
            for s, color in palette.items():
                mean_band(ax, df[df["scale"].astype(float) == s], x, y, color=color,
                           label=None)
            log_y_if_positive(ax, df[y].to_numpy(dtype=float))
            ax.set_xlabel(x)
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=10)
        if thr is not None:
            row[0].axhline(thr, color="grey", ls=":", lw=1.0)
        ax = row[2]
        for s, color in palette.items():
            sub = ep[ep["scale"].astype(float) == s]
            mean_band(ax, sub, "epoch", "robust_test_acc", color=color, label=None)
            mean_band(ax, sub, "epoch", "test_acc", color=color, label=None, ls="--")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"(c) test accuracy, {name}", fontsize=10)
    handles = scale_handles(palette) + [
        Line2D([], [], color="black", lw=1.4, ls=ls, label=lab)
        for ls, lab in (("-", "robust"), ("--", "clean"))]
    if thr is not None:
        handles.append(Line2D([], [], color="grey", lw=1.0, ls=":",
                              label=f"loss {thr:g} (f ≡ 0)"))
    legend_right(axes[0][2], handles)
    fig.suptitle(spec["title"], fontsize=11)
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[Frames, dict[str, Any]], Figure]] = {
    "fig_pga_loss_curves": _pga_loss_curves,
    "fig_iters_to_tolerance": _scale_metrics,
    "fig_local_maxima": _scale_metrics,
    "fig_adversarial_training": _adversarial_training,
}


def make_figure(name: str, records: Sequence[dict[str, Any]], presentation: dict[str, Any], *,
                dataset: str, settings: Mapping[str, Any] | None = None) -> Figure:
    """Figure `name` of study 003 on `dataset`; `settings` (the plan's
    ``Study003.settings(name)``) fill the label templates, and ``initial_steps`` among them
    bounds the adversarial-training figure's per-step panels."""
    if name not in FIGURES:
        raise KeyError(f"study003 has no figure {name!r}; known: {sorted(FIGURES)}")
    spec = dict(presentation, title=presentation["title"].format(dataset=dataset),
                settings=dict(settings or {}))
    return FIGURES[name](frames(records), spec)
