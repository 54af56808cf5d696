"""Study 001's tables (HAAT against PGD adversarial training): `table_robust_accuracy` (clean,
PGD and AutoAttack-style accuracy of every model at every epoch-end checkpoint, mean ± 95 %
interval over seeds), `table_hvp_error` (finite-difference Hessian-vector products against
double backprop) and `table_eigvec_alignment` (the power iteration's iterate against the dominant
eigenvector), made by `make_table`. Its figures are drawn by
`curvrobust.reports.study001_figures`; this module imports no plotting code.

`presentation` is what `curvrobust.plans.study001.Study001.presentation(name)` returns: display
names (`metrics`, `columns`) and the `caption` template whose {placeholders} are filled here.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd

from ..tables import render_summary, summarise
from . import robustness

Record = dict[str, Any]
Tables = tuple[pd.DataFrame, pd.DataFrame, str]  # numeric, readable, caption

# how the readable tables print each numeric column (columns not listed are shown as they are)
FORMATS: dict[str, Callable[[Any], str]] = {
    "xi": "{:g}".format,
    "median_rel_error": "{:.3g}".format,
    "q90_rel_error": "{:.3g}".format,
    "zero_frac": lambda v: f"{100 * v:.1f}",
    "cos_median": "{:.3f}".format,
    "cos_q10": "{:.3f}".format,
}


def read_per_seed(files: Sequence[str]) -> pd.DataFrame:
    """The per-seed convergence CSVs (trace, HVP error, alignment) stacked, `seed` = file index."""
    return pd.concat([pd.read_csv(f).assign(seed=i) for i, f in enumerate(files)],
                     ignore_index=True)


def readable_columns(numeric: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """`columns` (numeric column -> heading) of `numeric`, printed through FORMATS."""
    return pd.DataFrame({
        heading: [FORMATS[c](v) for v in numeric[c]] if c in FORMATS else numeric[c]
        for c, heading in columns.items()})


# ---- tables ----

def hvp_error_numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, ξ): median over batches of the per-batch median and 90th-percentile relative
    error, mean relative error and fraction of exactly-zero products; ξ descending per method."""
    rows = []
    for (method, xi), g in df.groupby(["method", "xi"], sort=True):
        rows.append(dict(method=method, xi=xi, median_rel_error=g["median"].median(),
                         q90_rel_error=g["q90"].median(), mean_rel_error=g["mean"].mean(),
                         zero_frac=g["zero_frac"].mean(),
                         batches=len(g), examples=int(g["n"].sum())))
    return pd.DataFrame(rows).sort_values(["method", "xi"], ascending=[True, False])


def alignment_numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Per (method, k), in file order: median over batches of the per-batch |cos| statistics."""
    rows = []
    for (method, k), g in df.groupby(["method", "k"], sort=False):
        rows.append(dict(method=method, k=k, xi=g["xi"].iloc[0],
                         cos_median=g["cos_median"].median(), cos_q10=g["cos_q10"].median(),
                         cos_mean=g["cos_mean"].mean(), batches=len(g),
                         examples=int(g["n"].sum())))
    return pd.DataFrame(rows)


def _convergence_table(
        numeric_of: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[..., Tables]:
    """A table of the per-seed convergence CSVs: `numeric_of` the stacked rows, the readable
    columns and caption from the presentation."""
    def table(records: list[Record], presentation: dict[str, Any], fields: dict[str, Any],
              data: Sequence[str], recipes: dict[str, dict]) -> Tables:
        numeric = numeric_of(read_per_seed(data))
        return (numeric, readable_columns(numeric, presentation["columns"]),
                presentation["caption"].format(**fields))
    return table


def robust_accuracy_frame(records: list[Record], recipes: dict[str, dict]) -> pd.DataFrame:
    """Every evaluation row of every model, tagged with its label and its recipe's adversary
    (kind; ξ and k for HAAT), accuracies in %."""
    frames = []
    for r in records:
        adv = (recipes[r["recipe"]].get("regime") or {}).get("adversary", {})
        haat = adv.get("kind") == "haat"
        for f in r["evals"]:
            frames.append(pd.read_csv(f).assign(
                label=r["label"], adversary=adv.get("kind", ""),
                xi=adv.get("xi", float("nan")) if haat else float("nan"),
                k=adv.get("k", float("nan")) if haat else float("nan")))
    df = pd.concat(frames, ignore_index=True)
    acc = [c for c in df.columns if c.endswith("_acc")]
    df[acc] = 100.0 * df[acc]
    return df


def robust_accuracy_table(records: list[Record], presentation: dict[str, Any],
                          fields: dict[str, Any], data: Sequence[str],
                          recipes: dict[str, dict]) -> Tables:
    """Mean ± 95 % interval over seeds per (label, recipe, epoch) of every accuracy column,
    with the attack settings of the first row of each group; the caption names the first
    evaluation row's subset and attacks."""
    df = robust_accuracy_frame(records, recipes)
    acc = [c for c in df.columns if c.endswith("_acc")]
    numeric = summarise(df, ["label", "recipe", "epoch"], acc)
    first = df.groupby(["label", "recipe", "epoch"], sort=False).first().reset_index()
    for c in ("xi", "k", "n_examples", "subset_seed", "eps", "pgd_attack", "aa_attacks"):
        numeric[c] = first[c].to_numpy()
    names = presentation["metrics"]
    values = {c: (names.get(c, c[: -len("_acc")].upper()), 1) for c in acc}
    readable = render_summary(numeric, ["label", "epoch"], values)
    caption = presentation["caption"].format_map({**df.iloc[0].to_dict(), **fields})
    return numeric, readable, caption


TABLES = {
    "table_robust_accuracy": robust_accuracy_table,
    "table_hvp_error": _convergence_table(hvp_error_numeric),
    "table_eigvec_alignment": _convergence_table(alignment_numeric),
}


def make_table(name: str, records: list[Record], presentation: dict[str, Any], *,
               dataset: str, data: Sequence[str] = (), recipes: dict[str, dict] | None = None,
               seeds: Sequence[int] = (), robust: dict[str, str] | None = None) -> Tables:
    """Table `name` on `dataset`: (numeric, readable, caption). `records` are the plan's
    per-model records (with their `evals` files), `data` the per-seed convergence CSVs,
    `recipes` the records' recipes, `robust` model key -> robust-evaluation summary file (the
    worst case and validity gate of each final model)."""
    fields = dict(dataset=dataset, seeds=list(seeds))
    numeric, readable, caption = TABLES[name](records, presentation, fields, data, recipes or {})
    summaries = robustness.load_summaries(robust)
    if summaries and name == "table_robust_accuracy":
        # rows per (label, epoch): the worst case and the gate describe the final model, so
        # they go on its final epoch's rows only
        final = {r["label"]: max(int(e) for e in numeric[numeric["label"] == r["label"]]["epoch"])
                 for r in records}
        numeric = numeric.assign(row=[lab if int(e) == final.get(lab) else f"{lab}@{e}"
                                      for lab, e in zip(numeric["label"], numeric["epoch"])])
        numeric, readable, note = robustness.annotate(
            numeric, readable, records, summaries, numeric_col="row", readable_col="label",
            worst=True)
        caption += note
    return numeric, readable, caption

