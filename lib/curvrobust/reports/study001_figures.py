"""Study 001's figures (HAAT against PGD adversarial training): fig1 (the HAAT model at the study's
baseline ξ = 10⁻⁶ where trained, over its checkpoints), fig3 (HAAT against PGD-AT), fig2a / fig2b
(the ξ and k sweeps) and fig4 (the power iteration's convergence in the last attack step, each k
on its own model where one was trained with it), drawn by `make_figure`. Its tables are made by
`curvrobust.reports.study001`.

`presentation` is what `curvrobust.plans.study001.Study001.presentation(name)` returns: display
names (`models`, `metrics`, `sweep`, `accuracy`) and the `title` template whose {placeholders}
are filled here.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from curvrobust.reports import plots

Record = dict[str, Any]


def evaluations_long(records: list[Record], presentation: dict[str, Any]) -> pd.DataFrame:
    """The records' evaluation rows in long form: model (display name), value (a sweep's ξ or
    k), seed, epoch, metric (display name) and the accuracy in % (column `accuracy`)."""
    models, metrics, acc = presentation["models"], presentation["metrics"], presentation["accuracy"]
    frames = []
    for r in records:
        for f in r["evals"]:
            df = pd.read_csv(f)
            df["model"] = models.get(r["label"], r["label"])
            df["value"] = r.get("value")
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    long = df.melt(id_vars=["model", "value", "seed", "epoch"], value_vars=list(metrics),
                   var_name="metric", value_name=acc)
    long[acc] *= 100.0
    long["metric"] = long["metric"].map(metrics)
    return long


def _epochs(fig: Figure) -> Figure:
    """Integer ticks on the epoch axes."""
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def fig_model_curves(records: list[Record], presentation: dict[str, Any], title: str,
                     data: Sequence[str]) -> Figure:
    """Fig. 1: one panel, one line per metric over the checkpoints."""
    return _epochs(plots.accuracy_curve_figure(
        evaluations_long(records, presentation), x="epoch", y=presentation["accuracy"],
        hue="metric", col=None, title=title))


def fig_models_compared(records: list[Record], presentation: dict[str, Any], title: str,
                        data: Sequence[str]) -> Figure:
    """Fig. 3: one panel per metric, one line per model (in the display names' order)."""
    return _epochs(plots.accuracy_curve_figure(
        evaluations_long(records, presentation), x="epoch", y=presentation["accuracy"],
        hue="model", col="metric", hue_order=list(presentation["models"].values()),
        title=title))


def fig_sweep(records: list[Record], presentation: dict[str, Any], title: str,
              data: Sequence[str]) -> Figure:
    """Fig. 2: one panel per metric, one line per swept value (ascending)."""
    key = presentation["sweep"]
    df = evaluations_long(records, presentation)
    df["HAAT " + key] = [f"{key} = {v:g}" for v in df["value"]]
    order = [f"{key} = {v:g}" for v in sorted(set(df["value"]))]
    return _epochs(plots.accuracy_curve_figure(
        df, x="epoch", y=presentation["accuracy"], hue="HAAT " + key, col="metric",
        hue_order=order, title=title))


def fig_convergence(records: list[Record], presentation: dict[str, Any], title: str,
                    data: Sequence[str]) -> Figure:
    """Figs. 4/5: the power iteration's step differences per method and k."""
    df = pd.concat([pd.read_csv(f) for f in data], ignore_index=True)
    return plots.power_iteration_figure(df, title=title)


FIGURES = {
    "fig1_haat_robust_accuracy": fig_model_curves,
    "fig3_haat_vs_pgd": fig_models_compared,
    "fig2a_xi_sweep": fig_sweep,
    "fig2b_k_sweep": fig_sweep,
    "fig4_fd_convergence": fig_convergence,
}


def traced_models(data: Sequence[str]) -> str:
    """Which model each k's power iteration was traced on, from the trace files' `model` and
    `own` columns (written by curvrobust.curvature.power_trace): 'traced on k = 1: haat_k=1; k = 5: haat;
    k = 10: haat (no model trained with k = 10)'. '' for files without them."""
    frames = [pd.read_csv(f) for f in data]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "model" not in df or df["model"].isna().all():
        return ""
    parts = []
    for k, g in df.groupby("k", sort=True):
        labels = ", ".join(dict.fromkeys(str(v) for v in g["model"]))
        own = "own" not in g or bool(g["own"].astype(bool).all())
        parts.append(f"k = {int(k)}: {labels}"
                     + ("" if own else f" (no model trained with k = {int(k)})"))
    return "traced on " + "; ".join(parts)


def make_figure(name: str, records: list[Record], presentation: dict[str, Any], *,
                dataset: str, data: Sequence[str] = (), eps: float | None = None,
                convergence: dict[str, Any] | None = None, seeds: Sequence[int] = ()) -> Figure:
    """Figure `name` on `dataset`. `records` are the plan's per-model records (with `evals`
    files and, for sweeps and fig1, `value`: the swept value, fig1's model's ξ), `data` fig4's
    per-seed trace CSVs, `convergence` the study's convergence block (fig4's title names its
    `batches` and, from the traces, which model each k was traced on)."""
    xi = next((r.get("value") for r in records if r.get("value") is not None), float("nan"))
    models = traced_models(data) if name == "fig4_fd_convergence" else ""
    title = presentation["title"].format(dataset=dataset, eps=eps, seeds=list(seeds),
                                         batches=(convergence or {}).get("batches"), xi=xi,
                                         models=models).rstrip()
    return FIGURES[name](records, presentation, title, data)
