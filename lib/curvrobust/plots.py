"""Figures with seaborn; every figure is written as PDF and PNG."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .utils import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, pdf: str | os.PathLike, png: str | os.PathLike,
                dpi: int = 150) -> None:
    """Save both formats atomically; PDF metadata carries no date so reruns compare equal."""
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def distribution_figure(data: pd.DataFrame, value: str, xlabel: str, order: Sequence[str],
                        log_x: bool = False, title: str | None = None) -> plt.Figure:
    """Histograms of a per-example statistic, one panel per (variant × optimiser).

    `data` has columns label (optimiser), variant and `value`; the study's figures 2–3 put
    Adam and GN side by side, here every optimiser in the study gets a panel and a shared x
    axis so the distributions compare directly."""
    variants = list(dict.fromkeys(data["variant"]))
    order = [o for o in order if o in set(data["label"])]
    fig, axes = plt.subplots(len(variants), len(order), figsize=(3.2 * len(order),
                             2.6 * len(variants)), squeeze=False, sharex=True)
    vals = data[value].to_numpy(dtype=float)
    if log_x:
        pos = vals[vals > 0]
        lo, hi = (np.quantile(pos, 0.001), pos.max()) if pos.size else (1e-6, 1.0)
        binrange = (float(np.log10(lo)), float(np.log10(hi)))
    else:
        binrange = (float(np.quantile(vals, 0.001)), float(np.quantile(vals, 0.999)))
    palette = dict(zip(order, sns.color_palette("colorblind", len(order))))
    for i, variant in enumerate(variants):
        for j, label in enumerate(order):
            ax = axes[i][j]
            sub = data[(data["variant"] == variant) & (data["label"] == label)][value]
            sub = sub[sub > 0] if log_x else sub
            sns.histplot(x=sub.to_numpy(), bins=60, binrange=binrange, log_scale=log_x, ax=ax,
                         color=palette[label], stat="percent", element="step")
            med = float(np.median(sub)) if len(sub) else float("nan")
            ax.axvline(med, color="black", lw=0.8, ls="--")
            ax.set_title(f"{label} · {variant}\nmedian {med:.3g}", fontsize=9)
            ax.set_xlabel(xlabel if i == len(variants) - 1 else "")
            ax.set_ylabel("% of test images" if j == 0 else "")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_curves_figure(data: pd.DataFrame, order: Sequence[str]) -> plt.Figure:
    """Full-training-set loss and test accuracy against epoch, per optimiser and variant."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    sns.lineplot(data=data, x="epoch", y="train_loss", hue="label", style="variant",
                 hue_order=order, ax=axes[0], errorbar=("ci", 95), legend=False)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("train loss (whole set)")
    sns.lineplot(data=data, x="epoch", y="test_acc", hue="label", style="variant",
                 hue_order=order, ax=axes[1], errorbar=("ci", 95))
    axes[1].set_ylabel("test accuracy")
    sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    return fig
