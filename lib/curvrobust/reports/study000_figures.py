"""Study 000's figures from its per-model result files: `fig2_input_grad_norm`,
`fig3_logit_margin`, `fig_sam_per_example` and `fig_training_curves` (`make_figure`). Its tables
are made by `curvrobust.reports.study000`.

`make_figure` takes a figure's name, its records (one per model: label, variant, seed and `file`;
see `Study000.params`) and its `presentation` (`Study000.presentation`): `order` (optimizer labels
in display order), `labels` (label -> display name) and the figure's `title` and `xlabel`
templates.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from curvrobust.reports import plots

Records = Sequence[dict[str, Any]]
Presentation = dict[str, Any]


def gather(records: Records, labels: dict[str, str]) -> pd.DataFrame:
    """Every model's CSV with its display name (`label`), variant and seed."""
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        df["label"], df["variant"], df["seed"] = labels[r["label"]], r["variant"], r["seed"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _histograms(value: str, data: pd.DataFrame, p: Presentation, order: list[str],
                log_x: bool = False) -> plt.Figure:
    """Figs. 2 and 3: one histogram panel of per-image `value` per variant and optimizer."""
    return plots.distribution_figure(data, value, p["xlabel"].format(), order, log_x=log_x,
                                     title=p["title"].format())


def _sam_per_example(data: pd.DataFrame, p: Presentation, order: list[str]) -> plt.Figure:
    """Per-example loss increase at the largest ρ (clipped to 1e-12 for the log axis)."""
    rho = sorted(data["rho"].unique())[-1]
    data = data[data["rho"] == rho].copy()
    data["loss_increase"] = data["loss_increase"].clip(lower=1e-12)
    return plots.distribution_figure(data, "loss_increase", p["xlabel"].format(rho=rho), order,
                                     log_x=True, title=p["title"].format(rho=rho))


def _training_curves(data: pd.DataFrame, p: Presentation, order: list[str]) -> plt.Figure:
    return plots.training_curves_figure(data, order)


FIGURES: dict[str, Callable[[pd.DataFrame, Presentation, list[str]], plt.Figure]] = {
    "fig2_input_grad_norm": partial(_histograms, "input_grad_norm", log_x=True),
    "fig3_logit_margin": partial(_histograms, "logit_margin"),
    "fig_sam_per_example": _sam_per_example,
    "fig_training_curves": _training_curves,
}


def make_figure(name: str, records: Records, presentation: Presentation) -> plt.Figure:
    """Figure `name` from its records' per-model CSV files."""
    if name not in FIGURES:
        raise ValueError(f"unknown study000 figure {name!r}")
    labels = presentation["labels"]
    order = [labels[k] for k in presentation["order"]]
    return FIGURES[name](gather(records, labels), presentation, order)
