"""Study 003's figures: PGA's convergence and the landscape's regularity against the input scale
s, and adversarial training per scale, drawn by `make_figure`: ``fig_pga_loss_curves``,
``fig_iters_to_tolerance``, ``fig_local_maxima`` and ``fig_adversarial_training``. Its tables are
made by :mod:`curvrobust.reports.study003`.

``records`` are the workflow's (variant, scale, seed, files; see
:func:`curvrobust.tables.study003_frames`); ``presentation`` is the plan's
``Study003.presentation(name)``: title templates and the figures' metrics.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd
from matplotlib.figure import Figure

from ..plots import adversarial_training_figure, pga_loss_curve_figure, scale_metric_figure
from ..tables import study003_frames

Frames = dict[str, pd.DataFrame]


def _pga_loss_curves(frames: Frames, spec: dict[str, Any]) -> Figure:
    return pga_loss_curve_figure(frames["trace"], title=spec["title"])


def _scale_metrics(frames: Frames, spec: dict[str, Any]) -> Figure:
    return scale_metric_figure(frames["pga"], spec["metrics"], title=spec["title"])


def _adversarial_training(frames: Frames, spec: dict[str, Any]) -> Figure:
    return adversarial_training_figure(frames["epochs"], frames["steps"],
                                       initial_steps=spec["initial_steps"], title=spec["title"])


FIGURES: dict[str, Callable[[Frames, dict[str, Any]], Figure]] = {
    "fig_pga_loss_curves": _pga_loss_curves,
    "fig_iters_to_tolerance": _scale_metrics,
    "fig_local_maxima": _scale_metrics,
    "fig_adversarial_training": _adversarial_training,
}


def make_figure(name: str, records: Sequence[dict[str, Any]], presentation: dict[str, Any], *,
                dataset: str, initial_steps: int | None = None) -> Figure:
    """Figure `name` of study 003 on `dataset`; `initial_steps` bounds the adversarial-training
    figure's per-step panel (the other figures ignore it)."""
    if name not in FIGURES:
        raise KeyError(f"study003 has no figure {name!r}; known: {sorted(FIGURES)}")
    spec = dict(presentation, title=presentation["title"].format(dataset=dataset),
                initial_steps=initial_steps)
    return FIGURES[name](study003_frames(records), spec)
