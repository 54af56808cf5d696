"""Study 000's tables from its per-model result files: `table1_fgsm_clean`,
`table2_fgsm_poisoned`, `table1b_fgsm_matched_loss`, `table1c_fgsm_matched_accuracy`,
`table3_sam_median` and `training_summary` (`make_table`), and the evidence for its claims
(`claim_evidence`). Its figures are drawn by `curvrobust.reports.study000_figures`; this module
imports no plotting code, so an edit to the plotting code reruns no table.

`make_table` takes a table's name, its records (one per model: label, variant, seed, `file` and,
for matched checkpoints, `match_info`; see `Study000.params`) and its `presentation`
(`Study000.presentation`): `order` (optimizer labels in display order), `labels` (label -> display
name) and the table's text templates, `caption` and `footer`.
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from curvrobust.claims.evidence import Absent, Evidence, Measures, PerImage
from curvrobust.evaluation.outcomes import REQUIRED_ATTACKS, read_outcomes, worst_case_images
from curvrobust.reference import load_reference
from curvrobust.reports import robustness, tables

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
    """Every model's attack CSV with label and seed, and for matched checkpoints the
    checkpoint's step, training loss and training accuracy (`ckpt_step`, `ckpt_train_loss`,
    `ckpt_train_acc`; NaN where the match info lacks it)."""
    frames = []
    for r in records:
        df = pd.read_csv(r["file"])
        df["label"], df["seed"] = r["label"], r["seed"]
        if "match_info" in r:
            info = json.loads(Path(r["match_info"]).read_text())
            df["ckpt_step"], df["ckpt_train_loss"] = info["step"], info["train_loss"]
            df["ckpt_train_acc"] = info.get("train_acc", math.nan)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _fgsm_table(records: Records, p: Presentation, ref: dict, study: dict,
                paper_variant: str) -> TableParts:
    """Tables 1 and 2: FGSM successes per optimizer and ε beside the study's numbers."""
    reference = {k: v[paper_variant] for k, v in ref["fgsm"].items()}
    numeric = tables.attack_table(attack_results(records), p["order"], reference)
    return numeric, tables.render_attack_table(_display(numeric, p["labels"])), {}


def _matched_table(records: Records, p: Presentation, ref: dict, study: dict) -> TableParts:
    """Tables 1b and 1c: FGSM at matched checkpoints (loss- or accuracy-matched), with each
    label's mean checkpoint step, training loss and training accuracy (nan, shown 'final' / '–',
    for final models)."""
    res = attack_results(records)
    numeric = tables.attack_table(res, p["order"])
    cols = (("checkpoint_step_mean", "ckpt_step"),
            ("checkpoint_train_loss_mean", "ckpt_train_loss"),
            ("checkpoint_train_acc_mean", "ckpt_train_acc"))
    means = res.groupby("label")[[c for _, c in cols]].mean() if "ckpt_step" in res else None
    for col, src in cols:
        numeric[col] = [math.nan if means is None else means[src].get(k, math.nan)
                        for k in numeric["optimizer"]]
    readable = tables.render_attack_table(_display(numeric, p["labels"]))
    readable = readable.drop(columns=[c for c in readable.columns if "(paper)" in c])
    numeric = numeric.drop(columns=[c for c in numeric.columns if c.startswith("paper_")])
    readable.insert(2, "Checkpoint step", [f"{v:.0f}" if v == v else "final"
                                           for v in numeric["checkpoint_step_mean"]])
    readable.insert(3, "Train loss at checkpoint", [f"{v:.3f}" if v == v else "–"
                                                   for v in numeric["checkpoint_train_loss_mean"]])
    readable.insert(4, "Train accuracy at checkpoint",
                    [f"{100 * v:.2f} %" if v == v else "–"
                     for v in numeric["checkpoint_train_acc_mean"]])
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
        epochs = pd.read_csv(r["file"])
        last = epochs.iloc[-1]
        cos = epochs["cos_gn"].dropna() if "cos_gn" in epochs else pd.Series(dtype=float)
        rows.append(dict(label=r["label"], variant=r["variant"], seed=r["seed"],
                         epochs=int(last["epoch"]), train_loss=last["train_loss"],
                         train_acc=last["train_acc"], test_acc=last["test_acc"],
                         minutes=last["wall_time_s"] / 60,
                         cos_gn=float(cos.median()) if len(cos) else float("nan")))
    out = []
    for (variant, label), g in pd.DataFrame(rows).groupby(["variant", "label"], sort=False):
        row = dict(variant=variant, optimizer=label, n_seeds=len(g), epochs=int(g.epochs.max()))
        for c in ("train_loss", "train_acc", "test_acc", "minutes", "cos_gn"):
            row[f"{c}_mean"], row[f"{c}_ci95"] = (tables.mean_ci(g[c].dropna()) if
                                                  g[c].notna().any() else (math.nan, math.nan))
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
    note = ""
    if n.cos_gn_mean.notna().any():  # K-FAC: how close its directions were to Gauss-Newton's
        readable["cos(direction, exact GN)"] = [
            "" if math.isnan(m) else tables.fmt_ci(m, h, 3)
            for m, h in zip(n.cos_gn_mean, n.cos_gn_ci95)]
        note = COS_NOTE
    else:
        n = n.drop(columns=["cos_gn_mean", "cos_gn_ci95"])
    return n, readable, {"cos_note": note}


COS_NOTE = (" cos(direction, exact GN): the cosine between the optimiser's step direction and the "
            "exact Gauss-Newton direction on the same batch, logged every few steps during "
            "training (median per epoch, then over epochs; mean over seeds).")


NO_PAPER = "none (the study ran MNIST only)"

# the FGSM tables show the worst case beside the study's rate; every table gets the validity gate
TABLE_READS_ATTACK = {"table1_fgsm_clean": True, "table2_fgsm_poisoned": True,
                      "table1b_fgsm_matched_loss": True, "table1c_fgsm_matched_accuracy": True}

TABLES: dict[str, Callable[..., TableParts]] = {
    "table1_fgsm_clean": partial(_fgsm_table, paper_variant="clean"),
    "table2_fgsm_poisoned": partial(_fgsm_table, paper_variant="poison10"),
    "table1b_fgsm_matched_loss": _matched_table,
    "table1c_fgsm_matched_accuracy": _matched_table,
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
    paper = presentation.get("paper", True)
    if not paper:   # the study printed MNIST's numbers only
        ref = dict(ref, citation=NO_PAPER, fgsm={}, sam_median={})
    numeric, readable, fields = TABLES[name](records, presentation, ref, study)
    if not paper:
        numeric = numeric.drop(columns=[c for c in numeric.columns if "paper" in c])
        readable = readable.drop(columns=[c for c in readable.columns if "(paper)" in c])
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



# ---- claims: the evidence for curvrobust.claims.judge (claims: Study000.claims) ----
# `records` is Study000.claim_records(): `labels` (label -> short name) and `models`, one per
# model or matched checkpoint: label, role ('clean' | 'poisoned'), match ('final' | 'loss' |
# 'accuracy'), seed, key (the robust evaluation's model key) and its files (fgsm_images,
# input_stats, sam_examples, match_info). An arm of a claim is {label, variant (a role), ckpt
# (a match)}; its effect is arm 0 − arm 1.

MATCH_NAMES = {"final": "", "loss": " at matched training loss",
               "accuracy": " at matched training accuracy"}
MATCH_TAGS = {"final": "", "loss": " match-loss", "accuracy": " match-accuracy"}


def _arm_name(arm: dict, labels: dict[str, str], both: bool = False) -> str:
    """'GN', 'Adam poisoned', 'SGD at matched training loss'; `both`: 'clean' named too."""
    role = "" if arm["variant"] == "clean" and not both else f" {arm['variant']}"
    return f"{labels.get(arm['label'], arm['label'])}{role}{MATCH_NAMES[arm['ckpt']]}"


def _tag(m: dict) -> str:
    """How flags name a model: 'gn seed 42', 'adam poisoned seed 43', 'sgd match-accuracy …'."""
    role = "" if m["role"] == "clean" else f" {m['role']}"
    data = "" if m["dataset"] == "mnist" else f" {m['dataset']}"
    return f"{m['label']}{data}{role}{MATCH_TAGS[m['match']]} seed {m['seed']}"


def _arm_models(models: Sequence[dict], arm: dict) -> dict[int, dict]:
    return {int(m["seed"]): m for m in models if m["label"] == arm["label"]
            and m["role"] == arm["variant"] and m["match"] == arm["ckpt"]
            and m["dataset"] == arm["dataset"]}


class _NotRun(Exception):
    """A claim's data is absent from this configuration's results."""


def _at(df: pd.DataFrame, col: str, value: float) -> pd.DataFrame:
    return df[np.isclose(df[col].astype(float), float(value), rtol=1e-9, atol=1e-12)]


MEASURES = Measures("study000")
"""Study 000's claim measures: per test image of one model, columns index, num and (for rates)
den; the arm's value is sum(num) / sum(den), or mean(num) without den."""


@MEASURES.register("fgsm_rate")
def _fgsm_rate(args: dict, m: dict, robust: dict) -> pd.DataFrame:
    """FGSM success among correctly classified images at ε = args['eps']."""
    df = _at(pd.read_csv(m["fgsm_images"]), "eps", args["eps"])
    if df.empty:
        raise _NotRun(f"no FGSM at ε = {args['eps']:g} ({_tag(m)})")
    correct = df["correct"].astype(int)
    return pd.DataFrame({"index": df["index"].astype(int).values,
                         "num": (df["success"].astype(int) * correct).values,
                         "den": correct.values})


@MEASURES.register("worst_rate")
def _worst_rate(args: dict, m: dict, robust: dict) -> pd.DataFrame:
    """Broken by some attack of the robust evaluation, among correctly classified images."""
    if m["key"] not in robust:
        raise _NotRun(f"the robust evaluation does not cover {_tag(m)}")
    wc = worst_case_images(read_outcomes(robust[m["key"]]["outcomes"]), args["eps"])
    missing = sorted(set(REQUIRED_ATTACKS) - set(wc.attrs["attacks"].split(";")))
    if wc.empty or missing:
        raise _NotRun(f"no complete worst case at ε = {args['eps']:g} for {_tag(m)}"
                      + (f" (missing {', '.join(missing)})" if missing else ""))
    return pd.DataFrame({"index": wc["index"].values,
                         "num": (wc["correct"] - wc["robust"]).values,
                         "den": wc["correct"].values})


@MEASURES.register("input_stat")
def _input_stat(args: dict, m: dict, robust: dict) -> pd.DataFrame:
    """A per-image input statistic (column args['column'] of the model's input_stats)."""
    if "input_stats" not in m:
        raise _NotRun(f"no input statistics for {_tag(m)}")
    df = pd.read_csv(m["input_stats"])
    return pd.DataFrame({"index": df["index"].astype(int).values,
                         "num": df[args["column"]].astype(float).values})


@MEASURES.register("sam_example")
def _sam_example(args: dict, m: dict, robust: dict) -> pd.DataFrame:
    """The per-example SAM loss increase at ρ = args['rho']."""
    if "sam_examples" not in m or args.get("rho") is None:
        raise _NotRun(f"no per-example sharpness for {_tag(m)}")
    df = _at(pd.read_csv(m["sam_examples"]), "rho", args["rho"])
    if df.empty:
        raise _NotRun(f"no per-example sharpness at ρ = {args['rho']:g} ({_tag(m)})")
    return pd.DataFrame({"index": df["index"].astype(int).values,
                         "num": df["loss_increase"].astype(float).values})


def _per_image(claim: dict, m: dict, robust: dict, cache: dict) -> pd.DataFrame:
    """Per test image of model `m`, the claim's measure (:data:`MEASURES`), cached per model
    and measure (arms of different claims share models)."""
    measure, args = claim["measure"], claim["args"]
    key = (measure, m["key"], json.dumps({k: v for k, v in args.items() if k != "arms"},
                                         sort_keys=True))
    if key not in cache:
        cache[key] = MEASURES.get(measure, claim["id"])(args, m, robust)
    return cache[key]


def _value(df: pd.DataFrame, suffix: str = "") -> float:
    num = df[f"num{suffix}"]
    den = df.get(f"den{suffix}")
    if den is None:
        return float(num.mean())
    return float(num.sum()) / float(den.sum()) if den.sum() else math.nan


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of the same test image in both arms (columns num0, den0, num1, den1)."""
    return a.add_suffix("0").rename(columns={"index0": "index"}).merge(
        b.add_suffix("1").rename(columns={"index1": "index"}), on="index", how="inner")


def _format(v: float, unit: str) -> str:
    return f"{100 * v:.1f} %" if unit == "%" else f"{v:.4g}"


def _one_claim(claim: dict, records: dict, robust: dict, summaries: dict,
               cache: dict) -> Evidence:
    labels = records.get("labels", {})
    models = records.get("models", [])
    arms = claim["args"]["arms"]
    both = len({a["variant"] for a in arms}) > 1
    names = [_arm_name(a, labels, both) for a in arms]
    per_arm = [_arm_models(models, a) for a in arms]
    for name, ms in zip(names, per_arm):
        if not ms:
            return Absent(status="not_run", reason=f"{name}: not trained in this configuration")
    seeds = sorted(set.intersection(*(set(ms) for ms in per_arm)))
    if not seeds:
        return Absent(status="not_run", reason=f"{' and '.join(names)} share no seed")
    used = [ms[s] for ms in per_arm for s in seeds]
    flags, bad = [], []
    for m in used:
        s = summaries.get(m["key"])
        if s is not None:
            v = s.get("validity", {})
            if v.get("degenerate"):
                if m["match"] == "final":
                    bad.append(f"{_tag(m)}: degenerate final model ({v.get('reason', '')})")
                else:
                    flags.append(f"{_tag(m)}: degenerate ({v.get('reason', '')})")
            flags += [f"{_tag(m)}: {c}" for c in s.get("failed_checks", [])]
        if m.get("match_info"):
            gap = match_gap(json.loads(Path(m["match_info"]).read_text()))
            if gap:
                bad.append(f"{_tag(m)}: {gap}")
    if bad:
        return Absent(status="not_evaluable", reason="; ".join(bad), flags=flags)
    try:
        pairs = {s: _paired(_per_image(claim, per_arm[0][s], robust, cache),
                            _per_image(claim, per_arm[1][s], robust, cache)) for s in seeds}
    except _NotRun as e:
        return Absent(status="not_run", reason=str(e), flags=flags)
    values = {s: (_value(p, "0"), _value(p, "1")) for s, p in pairs.items()}
    unit = claim.get("unit", "")
    mean = [sum(v[i] for v in values.values()) / len(values) for i in (0, 1)]
    basis = f"{len(seeds)} seeds, mean" if len(seeds) > 1 else f"seed {seeds[0]}"
    return PerImage(
        flags=flags, seeds=seeds,
        ours=f"{names[0]} {_format(mean[0], unit)}, {names[1]} {_format(mean[1], unit)} "
             f"({basis})", **image_cubes(pairs))


# a matched checkpoint that never reached the reference's final value is compared only when
# its best checkpoint is this close (accuracy: absolute; loss: relative to the target)
MATCH_TOLERANCE = {"accuracy": 0.005, "loss": 0.05}


def match_gap(info: dict) -> str:
    """'' when a matched checkpoint reached its target (or missed it within MATCH_TOLERANCE),
    else the gap, named: a row comparing at equal training loss is not evaluable when one arm
    is not at that loss."""
    if info.get("reached", True):
        return ""
    on = info.get("matched_on", "accuracy")
    target = float(info["target"])
    got = float(info["train_acc"] if on == "accuracy" else info["train_loss"])
    gap = abs(got - target) if on == "accuracy" else abs(got - target) / abs(target)
    if gap <= MATCH_TOLERANCE[on]:
        return ""
    if on == "accuracy":
        return (f"never reached the reference's training accuracy {100 * target:.2f} %: its "
                f"best checkpoint has {100 * got:.2f} % ({100 * gap:.2f} points short, "
                f"tolerance {100 * MATCH_TOLERANCE[on]:g})")
    return (f"never reached the reference's training loss {target:.4g}: its best checkpoint "
            f"has {got:.4g} ({100 * gap:.1f} % off, tolerance {100 * MATCH_TOLERANCE[on]:g} %)")


def image_cubes(pairs: dict[int, pd.DataFrame]) -> dict[str, Any]:
    """Per-image cubes (seeds × images × 2 arms) on the test images every seed's pair shares,
    in seed order: ``num``/``den`` (den only for rates) and, for rates among correctly
    classified images, ``both_correct_num``/``both_correct_den`` (fields of
    :class:`~curvrobust.claims.evidence.PerImage`): the rate on the
    images both arms classify correctly (the same images in both arms)."""
    seeds = sorted(pairs)
    shared = sorted(set.intersection(*(set(pairs[s]["index"]) for s in seeds)))
    rows = {s: pairs[s].set_index("index").loc[shared] for s in seeds}
    num = np.stack([rows[s][["num0", "num1"]].to_numpy(float) for s in seeds])
    out: dict[str, Any] = {"num": num, "den": None}
    if "den0" in rows[seeds[0]]:
        den = np.stack([rows[s][["den0", "den1"]].to_numpy(float) for s in seeds])
        both = den.min(axis=2, keepdims=True) * np.ones_like(den)
        out.update(den=den, both_correct_num=num * both, both_correct_den=both)
    return out


def claim_evidence(claims: Sequence[dict], records: dict,
                   robust: dict[str, dict[str, Any]]) -> dict[str, Evidence]:
    """Claim id -> evidence (curvrobust.claims.judge) for study 000's claims.

    Pairwise claims only (arm 0 − arm 1): per-image cubes (:func:`image_cubes`) over the
    seeds both arms have, on the test images every pair shares (FGSM: success among correct /
    correct; worst case: broken by some attack among correct / correct,
    `curvrobust.evaluation.outcomes.worst_case_images` over the model's outcome files in
    `robust`; input statistics and per-example sharpness: the mean), each by its claim's
    measure (:data:`MEASURES`).
    A claim whose arm is not trained (recipe, variant or matched checkpoint absent from the
    configuration) is 'not_run'; one with a degenerate final model (the robust evaluation's
    validity gate) 'not_evaluable', naming it; failed masking checks, degenerate matched
    checkpoints are flags beside the verdict; a matched checkpoint that missed its target beyond
    MATCH_TOLERANCE makes the row 'not_evaluable' (:func:`match_gap`)."""
    summaries = {}
    for k, v in (robust or {}).items():
        f = Path(v["summary"])
        if f.is_file():
            summaries[k] = json.loads(f.read_text())
    cache: dict = {}
    return {c["id"]: _one_claim(c, records, robust or {}, summaries, cache) for c in claims}
