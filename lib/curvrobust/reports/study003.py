"""Study 003's tables: PGA's convergence and the landscape's regularity against the input scale
s, and adversarial training per scale (mean ± 95 % interval over seeds), made by `make_table`.
Its figures are drawn by :mod:`curvrobust.reports.study003_figures`; this module imports no
plotting code.

Tables: ``table_pga_by_scale`` (per stage and scale: loss at start / end, iterations to the loss
tolerance, share reaching the mapping tolerance, last mapping norm, distinct local maxima and
their relative spread) and ``table_adversarial_training`` (per scale: robust training loss in the
first and last epoch, clean / robust test accuracy at the end).

``records`` are the workflow's (variant, scale, seed, files; see
:func:`curvrobust.tables.study003_frames`); ``presentation`` is the plan's
``Study003.presentation(name)``: headings and caption templates.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd

from ..tables import render_summary, study003_frames, summarise

Table = tuple[pd.DataFrame, pd.DataFrame, str]
Frames = dict[str, pd.DataFrame]


def _summary_table(df: pd.DataFrame, presentation: dict[str, Any], **fields: Any) -> Table:
    """Mean ± 95 % interval over seeds of the presentation's ``columns`` (column -> (heading
    template, digits)) per ``by`` group (column -> heading; groups in order of first appearance);
    `fields` fill the heading and caption templates."""
    by = presentation["by"]
    values = {c: (heading.format(**fields), digits)
              for c, (heading, digits) in presentation["columns"].items()}
    numeric = summarise(df, list(by), list(values))
    readable = render_summary(numeric, list(by), values).rename(columns=by)
    return numeric, readable, presentation["caption"].format(**fields)


def pga_by_scale(frames: Frames, presentation: dict[str, Any], dataset: str) -> Table:
    """Per stage (in the presentation's ``stages`` order) and scale, PGA's per-run means over
    the attacked examples; the numeric table also gets the number of examples."""
    df = frames["pga"]
    df = df.assign(order=df["stage"].map({st: i for i, st in enumerate(presentation["stages"])}))
    df = df.sort_values(["order", "scale", "seed"], kind="stable")
    n_examples = int(df["n_examples"].iloc[0])
    numeric, readable, caption = _summary_table(df, presentation, dataset=dataset,
                                                n_examples=n_examples)
    numeric["n_examples"] = n_examples
    return numeric, readable, caption


def adversarial_training(frames: Frames, presentation: dict[str, Any], dataset: str) -> Table:
    """Per scale, the robust training loss in the first and last epoch and the clean / robust
    test accuracy (percent) after the last epoch."""
    ep = frames["epochs"]
    last_epoch = int(ep["epoch"].max())
    first = ep[ep["epoch"] == 1][["scale", "seed", "robust_train_loss"]]
    df = ep[ep["epoch"] == last_epoch].merge(
        first.rename(columns={"robust_train_loss": "robust_train_loss_epoch1"}),
        on=["scale", "seed"]).sort_values(["scale", "seed"])
    df[["test_acc", "robust_test_acc"]] *= 100
    return _summary_table(df, presentation, dataset=dataset, last_epoch=last_epoch)


TABLES: dict[str, Callable[[Frames, dict[str, Any], str], Table]] = {
    "table_pga_by_scale": pga_by_scale,
    "table_adversarial_training": adversarial_training,
}


def make_table(name: str, records: Sequence[dict[str, Any]], presentation: dict[str, Any], *,
               dataset: str) -> Table:
    """Table `name` of study 003 on `dataset`: (numeric, readable, caption)."""
    if name not in TABLES:
        raise KeyError(f"study003 has no table {name!r}; known: {sorted(TABLES)}")
    return TABLES[name](study003_frames(records), presentation, dataset)
