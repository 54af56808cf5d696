"""Study 002's tables: accuracy under attack per training regime (Tables 1/2, kind ``accuracy``),
the stronger checks (PGD restarts, ``pgd``; the step-size sweep, ``step_sweep``), the robustness
indicator beside PGD accuracy (``indicator``) and training cost (``training``), made by
:func:`make_table`. Its figures are drawn by :mod:`curvrobust.reports.study002_figures`, which
shares this module's reading helpers; this module imports no plotting code.

Each table's `kind` (from the plan's outputs) picks one function in :data:`TABLES`. ``records``
are the plan's per-model records (model fields plus the ``files`` a table reads);
``presentation`` is ``Study002.presentation(name)``: display names (``labels``), the caption
template and the readable ``columns``. ``study``, ``attacks`` and ``recipes`` are the rule's
other params (the study block, the specs of the attacks and recipes the table reads).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import pandas as pd

from .. import tables
from ..reference import load_reference
from . import robustness

Table = tuple[pd.DataFrame, pd.DataFrame, str]
Records = Sequence[dict[str, Any]]
EPS_UNIT = {"cifar10": 255.0}  # datasets whose radii the accuracy tables print as k/255


def attack_name(spec: dict[str, Any]) -> str:
    """FGSM, BIM, PGD, … or C&W."""
    return spec["kind"].upper() if spec["kind"] != "cw" else "C&W"


def attack_desc(spec: dict[str, Any]) -> str:
    """One attack's setting in words: kind, steps, restarts, how many test images."""
    bits = [attack_name(spec)]
    if spec["kind"] != "fgsm":
        bits.append(f"{spec.get('steps', 10)} steps of {spec.get('step_size', 0.1):g}")
    if spec.get("random_start") or spec["kind"] == "pgd":
        bits.append(f"{spec.get('restarts', 1)} restart(s)")
    if "n_examples" in spec:
        bits.append(f"first {spec['n_examples']} test images")
    return ", ".join(bits)


def read_attack(path: str, record: dict[str, Any]) -> pd.DataFrame:
    """One attack result file with accuracies in percent and the model's label, seed, dataset."""
    df = pd.read_csv(path)
    df["accuracy"] = 100.0 * df["adv_accuracy"]
    df["natural"] = 100.0 * df["correct"] / df["n_test"]
    for k in ("label", "seed", "dataset"):
        df[k] = record[k]
    return df


def at_eps(curve: pd.DataFrame, eps: float, path: str) -> pd.DataFrame:
    """The rows of an accuracy-over-ε file at `eps`; an error naming the file if there are none."""
    at = curve[[math.isclose(e, eps, rel_tol=1e-6) for e in curve["eps"]]]
    if at.empty:
        raise ValueError(f"{path} has no row at eps={eps} (the middle eps of the table): add it to "
                         "the curve attack's eps list")
    return at


def _caption(records: Records, presentation: dict[str, Any], **fields: Any) -> str:
    seeds = sorted({r["seed"] for r in records})
    return presentation["caption"].format(seeds=seeds, **fields)


def _summary(res: pd.DataFrame, by: Sequence[str], values: Sequence[str], shown: Sequence[str],
             presentation: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric (mean ± CI of `values` per `by` group) and readable frames (`shown` columns, then
    the presentation's value columns)."""
    numeric = tables.summarise(res, by, values)
    return numeric, tables.render_summary(numeric, shown, presentation["columns"])


# ---- tables ----

def accuracy_table(records: Records, presentation: dict[str, Any], *, kind: dict[str, Any],
                   study: dict[str, Any], attacks: dict[str, dict], **_: Any) -> Table:
    """Tables 1/2: natural accuracy and accuracy under each attack column per ε, one row per
    regime (display order), beside the study's printed numbers where it has them."""
    ds = kind["dataset"]
    block = study["datasets"][ds]
    columns = list(block["attacks"])
    frames = []
    for r in records:
        for col in columns:
            frames.append(read_attack(r["files"][col], r).assign(column=col))
    res = pd.concat(frames, ignore_index=True)
    ref_key = block.get("reference")
    reference = load_reference("study002")["tables"][ref_key] if ref_key else None
    labels = presentation["labels"]
    numeric = tables.accuracy_table(res, list(labels), columns, reference)
    readable = tables.render_accuracy_table(numeric, columns, labels, EPS_UNIT.get(ds))
    used = "; ".join(f"{c}: {attack_desc(attacks[a])}" for c, a in block["attacks"].items())
    paper = presentation["paper"].format(citation=load_reference("study002")["citation"])
    caption = _caption(records, presentation, dataset=ds, n_seeds=len(res["seed"].unique()),
                       attacks=used, paper=paper)
    return numeric, readable, caption


def attack_summary_table(records: Records, presentation: dict[str, Any], *,
                         attacks: dict[str, dict], **_: Any) -> Table:
    """Accuracy per dataset, regime, attack and ε for every attack file the records list (PGD
    restarts, step-size sweep)."""
    frames = []
    for r in records:
        for path in r["files"].values():
            df = read_attack(path, r)
            spec = attacks[df["attack"].iloc[0]]
            frames.append(df.assign(regime=r["label"], attack_desc=attack_desc(spec),
                                    steps=spec.get("steps", 1),
                                    step_size=spec.get("step_size", math.nan)))
    res = pd.concat(frames, ignore_index=True)
    numeric, readable = _summary(res, ["dataset", "regime", "attack", "attack_desc", "eps"],
                                 ["accuracy"], ["dataset", "regime", "attack_desc", "eps"],
                                 presentation)
    return numeric, readable, _caption(records, presentation)


INDICATOR_VALUES = ["grad_l1", "grad_l2", "jac_zero_frac", "hess_top_eig", "hess_top_eig_median",
                    "hess_zero_frac", "pgd_accuracy"]


def indicator_table(records: Records, presentation: dict[str, Any], **_: Any) -> Table:
    """Per regime, the indicator's means over test images beside the PGD-10 accuracy at the
    middle ε."""
    rows = []
    for r in records:
        ind = pd.read_csv(r["files"]["indicator"])
        at = at_eps(pd.read_csv(r["files"]["curve"]), r["eps"], r["files"]["curve"])
        rows.append(dict(dataset=r["dataset"], regime=r["label"], seed=r["seed"],
                         grad_l1=ind["grad_l1"].mean(), grad_l2=ind["grad_l2"].mean(),
                         jac_zero_frac=100 * ind["jac_zero_frac"].mean(),
                         hess_top_eig=ind["hess_top_eig"].mean(),
                         hess_top_eig_median=ind["hess_top_eig"].median(),
                         hess_zero_frac=100 * ind["hess_zero_frac"].mean(),
                         pgd_eps=r["eps"], pgd_accuracy=100 * float(at["adv_accuracy"].iloc[0])))
    by = ["dataset", "regime", "pgd_eps"]
    numeric, readable = _summary(pd.DataFrame(rows), by, INDICATOR_VALUES, by, presentation)
    return numeric, readable, _caption(records, presentation)


def training_table(records: Records, presentation: dict[str, Any], *,
                   recipes: dict[str, dict], **_: Any) -> Table:
    """Per regime, the last epoch's training loss and test accuracy, and the wall time per epoch
    (also relative to natural training on the same dataset)."""
    rows = []
    for r in records:
        ep = pd.read_csv(r["files"]["epochs"])
        last = ep.iloc[-1]
        rows.append(dict(dataset=r["dataset"], regime=r["label"], seed=r["seed"],
                         recipe=r["recipe"], epochs=int(last["epoch"]),
                         train_loss=last["train_loss"], test_acc=100 * last["test_acc"],
                         epoch_time_s=ep["epoch_time_s"].mean()))
    res = pd.DataFrame(rows)
    nat = res[res["regime"] == "natural"].groupby("dataset")["epoch_time_s"].mean()
    res["time_vs_natural"] = [t / nat.get(d, math.nan) for d, t in
                              zip(res["dataset"], res["epoch_time_s"])]
    by = ["dataset", "regime", "recipe", "epochs"]
    numeric, readable = _summary(res, by, ["train_loss", "test_acc", "epoch_time_s",
                                           "time_vs_natural"], by, presentation)
    regimes = "; ".join(f"{r}: {recipes[r].get('regime', {}) or 'natural'}"
                        for r in sorted({r['recipe'] for r in records}))
    return numeric, readable, _caption(records, presentation, regimes=regimes)


TABLES: dict[str, Callable[..., Table]] = {
    "accuracy": accuracy_table,
    "pgd": attack_summary_table,
    "step_sweep": attack_summary_table,
    "indicator": indicator_table,
    "training": training_table,
}


def make_table(name: str, records: Records, presentation: dict[str, Any], *,
               kind: dict[str, Any], **params: Any) -> Table:
    """Table `name` of study 002 (its kind from `kind`, the plan's spec): (numeric, readable,
    caption). `params`: the rule's `study`, `attacks` and `recipes`, and `robust` (model key ->
    robust-evaluation summary file: the worst case in the accuracy tables, the validity gate in
    all)."""
    if kind["kind"] not in TABLES:
        raise ValueError(f"{name}: unknown table kind {kind}")
    summaries = robustness.load_summaries(params.pop("robust", None))
    numeric, readable, caption = TABLES[kind["kind"]](records, presentation, kind=kind, **params)
    if summaries:
        if kind["kind"] == "accuracy":
            numeric, readable, note = robustness.annotate(
                numeric, readable, records, summaries, numeric_col="regime",
                readable_col="Regime", names=presentation["labels"], worst=True)
        else:  # rows per dataset and regime (and attack or ε)
            row_of = {robustness.model_key(r): f"{r['dataset']}/{r['label']}" for r in records}
            numeric = numeric.assign(row=numeric["dataset"] + "/" + numeric["regime"])
            numeric, readable, note = robustness.annotate(
                numeric, readable, records, summaries, row_of=row_of, numeric_col="row",
                readable_col="regime", worst=False)
        caption += note
    return numeric, readable, caption

