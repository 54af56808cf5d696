"""Study 000's tables from its per-model result files: `table1_fgsm_clean`,
`table2_fgsm_poisoned`, `table1b_fgsm_matched_loss`, `table3_sam_median` and `training_summary`
(`make_table`). Its figures are drawn by `curvrobust.reports.study000_figures`; this module
imports no plotting code, so an edit to the plotting code reruns no table.

`make_table` takes a table's name, its records (one per model: label, variant, seed, `file` and,
for loss-matched checkpoints, `match_info`; see `Study000.params`) and its `presentation`
(`Study000.presentation`): `order` (optimizer labels in display order), `labels` (label -> display
name) and the table's text templates, `caption` and `footer`.
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from .. import tables
from ..reference import load_reference
from . import robustness

Records = Sequence[dict[str, Any]]
Presentation = dict[str, Any]
# numeric and readable frame and the caption's fields beyond citation and footer
TableParts = tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]


def _display(df: pd.DataFrame, labels: dict[str, str], col: str = "optimizer") -> pd.DataFrame:
    """`df` with the labels in `col` replaced by their display names."""
    df = df.copy()
    df[col] = [labels.get(v, v) for v in df[col]]
    return df


def attack_results(records: Records) -> pd.DataFrame:
    """Every model's attack CSV with label and seed, and for loss-matched checkpoints the
    checkpoint's step and training loss (`ckpt_step`, `ckpt_train_loss`)."""
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        df["label"], df["seed"] = r["label"], r["seed"]
        if "match_info" in r:
            info = json.loads(Path(r["match_info"]).read_text())
            df["ckpt_step"], df["ckpt_train_loss"] = info["step"], info["train_loss"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _fgsm_table(records: Records, p: Presentation, ref: dict, study: dict,
                paper_variant: str) -> TableParts:
    """Tables 1 and 2: FGSM successes per optimizer and ε beside the study's numbers."""
    reference = {k: v[paper_variant] for k, v in ref["fgsm"].items()}
    numeric = tables.attack_table(attack_results(records), p["order"], reference)
    return numeric, tables.render_attack_table(_display(numeric, p["labels"])), {}


def _matched_table(records: Records, p: Presentation, ref: dict, study: dict) -> TableParts:
    """Table 1b: FGSM at loss-matched checkpoints, with each label's mean checkpoint step and
    training loss (nan, shown 'final' / '–', for final models)."""
    res = attack_results(records)
    numeric = tables.attack_table(res, p["order"])
    steps = res.groupby("label")[["ckpt_step", "ckpt_train_loss"]].mean() if "ckpt_step" in res \
        else None
    for col, src in (("checkpoint_step_mean", "ckpt_step"),
                     ("checkpoint_train_loss_mean", "ckpt_train_loss")):
        numeric[col] = [math.nan if steps is None else steps[src].get(k, math.nan)
                        for k in numeric["optimizer"]]
    readable = tables.render_attack_table(_display(numeric, p["labels"]))
    readable = readable.drop(columns=[c for c in readable.columns if "(paper)" in c])
    numeric = numeric.drop(columns=[c for c in numeric.columns if c.startswith("paper_")])
    readable.insert(2, "Checkpoint step", [f"{v:.0f}" if v == v else "final"
                                           for v in numeric["checkpoint_step_mean"]])
    readable.insert(3, "Train loss at checkpoint", [f"{v:.3f}" if v == v else "–"
                                                   for v in numeric["checkpoint_train_loss_mean"]])
    labels = p["labels"]
    return numeric, readable, dict(matched=", ".join(labels[k] for k in study["match"]["labels"]),
                                   reference=labels[study["match"]["reference"]])


def _sam_table(records: Records, p: Presentation, ref: dict, study: dict) -> TableParts:
    """Table 3: per-seed median over test batches of the SAM loss increase, per ρ."""
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        med = df.groupby("rho")["loss_increase"].median().reset_index(name="median")
        med["label"], med["seed"] = r["label"], r["seed"]
        frames.append(med)
    numeric = tables.sam_table(pd.concat(frames, ignore_index=True), p["order"],
                               ref["sam_median"])
    readable = tables.render_sam_table(numeric, p["order"])
    # columns '<label> median increase' and '<label> (paper)'
    readable.columns = [next((p["labels"][k] + c[len(k):] for k in p["order"]
                              if c.startswith(k + " ")), c) for c in readable.columns]
    return numeric, readable, {}


def _training_summary(records: Records, p: Presentation, ref: dict, study: dict) -> TableParts:
    """Final training loss, test accuracy and wall time per variant and optimizer over seeds."""
    rows = []
    for r in records:
        last = pd.read_csv(r["file"]).iloc[-1]
        rows.append(dict(label=r["label"], variant=r["variant"], seed=r["seed"],
                         epochs=int(last["epoch"]), train_loss=last["train_loss"],
                         train_acc=last["train_acc"], test_acc=last["test_acc"],
                         minutes=last["wall_time_s"] / 60))
    out = []
    for (variant, label), g in pd.DataFrame(rows).groupby(["variant", "label"], sort=False):
        row = dict(variant=variant, optimizer=label, n_seeds=len(g), epochs=int(g.epochs.max()))
        for c in ("train_loss", "train_acc", "test_acc", "minutes"):
            row[f"{c}_mean"], row[f"{c}_ci95"] = tables.mean_ci(g[c])
        out.append(row)
    n = pd.DataFrame(out)
    readable = pd.DataFrame({
        "Variant": n.variant, "Optimizer": [p["labels"].get(v, v) for v in n.optimizer],
        "Seeds": n.n_seeds, "Epochs": n.epochs,
        "Train loss": [tables.fmt_ci(m, h, 4)
                       for m, h in zip(n.train_loss_mean, n.train_loss_ci95)],
        "Test accuracy": [tables.fmt_ci(100 * m, 100 * h, 2, "%")
                          for m, h in zip(n.test_acc_mean, n.test_acc_ci95)],
        "Train minutes": [tables.fmt_ci(m, h, 1) for m, h in zip(n.minutes_mean, n.minutes_ci95)],
    })
    return n, readable, {}


# the FGSM tables show the worst case beside the study's rate; every table gets the validity gate
TABLE_READS_ATTACK = {"table1_fgsm_clean": True, "table2_fgsm_poisoned": True,
                      "table1b_fgsm_matched_loss": True}

TABLES: dict[str, Callable[..., TableParts]] = {
    "table1_fgsm_clean": partial(_fgsm_table, paper_variant="clean"),
    "table2_fgsm_poisoned": partial(_fgsm_table, paper_variant="poison10"),
    "table1b_fgsm_matched_loss": _matched_table,
    "table3_sam_median": _sam_table,
    "training_summary": _training_summary,
}


def footer(presentation: Presentation, records: Records, study: dict, recipes: dict) -> str:
    """The caption's footer: each optimizer's settings (from its recipe) and the seeds."""
    labels = presentation["labels"]
    used = {k: recipes[study["recipes"][k]] for k in presentation["order"]}
    settings = "; ".join(f"{labels[k]}: {json.dumps(r['optimizer'])}, {r['epochs']} epochs"
                         for k, r in used.items())
    seeds = sorted({r["seed"] for r in records})
    return presentation["footer"].format(settings=settings, seeds=seeds)


def make_table(name: str, records: Records, presentation: Presentation, *, study: dict,
               recipes: dict, robust: dict[str, str] | None = None,
               ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Table `name`: its numeric frame, readable frame and caption. `study` is the config's
    studies.study000 block, `recipes` the recipes it uses (name -> recipe), `robust` model key
    -> robust-evaluation summary file (worst case beside FGSM, the validity gate)."""
    if name not in TABLES:
        raise ValueError(f"unknown study000 table {name!r}")
    ref = load_reference("study000")
    numeric, readable, fields = TABLES[name](records, presentation, ref, study)
    caption = presentation["caption"].format(
        citation=ref["citation"], footer=footer(presentation, records, study, recipes), **fields)
    summaries = robustness.load_summaries(robust)
    if summaries and name == "table3_sam_median":  # one column per optimizer
        bad, note = robustness.degenerate_labels(records, summaries, presentation["labels"])
        shown = {presentation["labels"][k]: k for k in bad}
        readable.columns = [next((f"{c} {robustness.DAGGER}" for d in shown
                                  if c.startswith(d + " ")), c) for c in readable.columns]
        caption += note
    elif summaries:
        row_of, col = None, "optimizer"
        if name == "training_summary":
            row_of = {robustness.model_key(r): f"{r['variant']}/{r['label']}" for r in records}
            numeric = numeric.assign(row=numeric["variant"] + "/" + numeric["optimizer"])
            col = "row"
        numeric, readable, note = robustness.annotate(
            numeric, readable, records, summaries, row_of=row_of, numeric_col=col,
            readable_col="Optimizer", names=presentation["labels"],
            worst=TABLE_READS_ATTACK.get(name, False))
        caption += note
    return numeric, readable, caption

