"""What the robust evaluation adds to the studies' tables, and the masking report.

Each model in scope has a ``summary.json`` (:func:`curvrobust.evaluation.robustness.evaluate_model`):
its validity gate, gradient-masking checks and worst case per ε. :func:`annotate` adds to a
study table, per row (a label aggregated over seeds), the worst-case robust accuracy at the
headline ε beside the study's own numbers, and marks rows with a degenerate final model (†,
explained in the caption). :func:`masking_table` is ``results/masking.{csv,md}``: a row per
model, a column per check.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from curvrobust.reports import tables
from ..plans.robustness import KEY, model_key
CHECK_NAMES = {
    "fgsm_only": "FGSM-only breaks",
    "margin_only": "margin-PGD-only breaks",
    "steps_restarts": "2× steps / restart-only breaks",
    "square_only": "Square-only breaks",
    "transfer_only": "transfer-only breaks",
    "large_eps": "robust at large ε",
    "zero_grad": "zero/non-finite ∇ₓ",
    "probabilities": "outputs sum to 1",
}
DAGGER = "†"


def load_summaries(robust: Mapping[str, str] | None) -> dict[str, dict]:
    """model key -> its summary.json, for the `robust` mapping a table rule passes."""
    return {k: json.loads(Path(p).read_text()) for k, p in (robust or {}).items()}


def headline_worst(summary: dict) -> dict | None:
    """The worst-case row at the model's headline ε, if the strong attacks all ran there."""
    for w in summary.get("worst_case", []):
        if math.isclose(w["eps"], summary["eps"], rel_tol=1e-9) and w["complete"]:
            return w
    return None


def _degenerate_text(rec: Mapping[str, Any], s: dict, name: str) -> str:
    v = s["validity"]
    return f"{name} seed {rec['seed']}: {v['reason']}"


def degenerate_labels(records: Sequence[Mapping[str, Any]], summaries: Mapping[str, dict],
                      names: Mapping[str, str] | None = None) -> tuple[set[str], str]:
    """Labels with a degenerate final model, and the caption note explaining the †, for tables
    whose labels are columns rather than rows.

    Args:
        records: the table's model records.
        summaries: model key -> robust-evaluation summary.
        names: label -> display name.

    Returns:
        The set of such labels and the note ('' if none).
    """
    names = dict(names or {})
    bad, texts = set(), []
    for r in records:
        s = summaries.get(model_key(r))
        if s is not None and r["ckpt"] == "final" and s["validity"]["degenerate"]:
            bad.add(r["label"])
            texts.append(_degenerate_text(r, s, names.get(r["label"], r["label"])))
    note = (f" {DAGGER} degenerate final model (validity gate, results/masking.md): "
            + "; ".join(texts) + ".") if texts else ""
    return bad, note


def annotate(numeric: pd.DataFrame, readable: pd.DataFrame, records: Sequence[Mapping[str, Any]],
             summaries: Mapping[str, dict], *, row_of: Mapping[str, str] | None = None,
             numeric_col: str = "optimizer", readable_col: str = "Optimizer",
             names: Mapping[str, str] | None = None, worst: bool = True,
             ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Add the robust evaluation to a table whose rows are labels aggregated over seeds.

    Rows are matched by ``numeric[numeric_col]`` (a record's ``label``, or ``row_of[key]``);
    the readable frame has the same rows in the same order. With ``worst``: columns
    ``worst_case_*`` (mean ± 95 % interval over seeds and test images,
    :func:`curvrobust.reports.tables.seed_image_ci`, of the worst-case robust accuracy at the headline ε, and of the worst-case success rate among correctly classified images, the
    study's kind of rate; degenerate final models are left out, ``worst_case_seeds`` says how
    many seeds remain) and the failed checks, each with its kind. Rows with a degenerate *final* model
    get a † after their name; loss-matched checkpoints are not gated (their natural accuracy is
    shown instead). Returns the frames and a caption note ('' if nothing to say).
    """
    per_row = _models_per_row(records, summaries, row_of)
    numeric, readable = numeric.copy(), readable.copy()
    degenerate = _mark_degenerate(numeric, readable, per_row, numeric_col, readable_col,
                                  dict(names or {}))
    nat = [[s["validity"]["natural_accuracy"] for _, s in per_row.get(label, [])]
           for label in numeric[numeric_col]]
    numeric["natural_accuracy_mean"] = [tables.mean_ci(v)[0] if v else math.nan for v in nat]
    if any(r["ckpt"] != "final" for r in records):
        readable["Natural acc. (whole test set)"] = [
            tables.fmt_ci(*tables.mean_ci([100 * a for a in v]), 1, "%") if v else "–"
            for v in nat]
    if worst:
        _add_worst_case(numeric, readable, per_row, numeric_col)
    return numeric, readable, _annotation_note(numeric, worst, degenerate)


Models = list[tuple[Mapping[str, Any], dict]]  # (record, summary) of a table row's models


def _is_degenerate_final(r: Mapping[str, Any], s: dict) -> bool:
    """A final model the validity gate calls degenerate (checkpoints are not gated)."""
    return r["ckpt"] == "final" and s["validity"]["degenerate"]


def _models_per_row(records: Sequence[Mapping[str, Any]], summaries: Mapping[str, dict],
                    row_of: Mapping[str, str] | None) -> dict[str, Models]:
    """Table row (a record's label, or ``row_of[key]``) -> its evaluated models."""
    per_row: dict[str, Models] = {}
    for r in records:
        s = summaries.get(model_key(r))
        if s is None:
            continue
        row = (row_of or {}).get(model_key(r), r["label"])
        per_row.setdefault(row, []).append((r, s))
    return per_row


def _mark_degenerate(numeric: pd.DataFrame, readable: pd.DataFrame,
                     per_row: dict[str, Models], numeric_col: str, readable_col: str,
                     names: dict[str, str]) -> list[str]:
    """† after the names of rows with a degenerate final model and their count per row;
    returns the caption texts naming them."""
    degenerate: list[str] = []
    marks = []
    for label in numeric[numeric_col]:
        items = per_row.get(label, [])
        bad = [(r, s) for r, s in items if _is_degenerate_final(r, s)]
        degenerate += [_degenerate_text(r, s, names.get(label, label)) for r, s in bad]
        marks.append(bool(bad))
    readable[readable_col] = [f"{v} {DAGGER}" if m else v
                              for v, m in zip(readable[readable_col], marks)]
    numeric["degenerate_models"] = [
        sum(1 for r, s in per_row.get(label, []) if _is_degenerate_final(r, s))
        for label in numeric[numeric_col]]
    return degenerate


def _worst_case_of(items: Models) -> tuple[float, float, int, tuple[float, float],
                                           tuple[float, float], list[str] | None]:
    """One row's worst case at the headline ε over its non-degenerate models (ε, images,
    seeds, accuracy and success-rate mean ± CI in %; NaN unless every model has it) and its
    failed checks (None: no models)."""
    valid = [(r, s) for r, s in items if not _is_degenerate_final(r, s)]
    ws = [(headline_worst(s), s) for _, s in valid]
    ws = [(w, s) for w, s in ws if w is not None]
    failed = (sorted({c for _, s in items for c in s.get("failed_checks", [])})
              if items else None)
    if not ws or len(ws) < len(valid):
        return math.nan, math.nan, len(ws), (math.nan, math.nan), (math.nan, math.nan), failed
    n = min(w["n"] for w, _ in ws)
    acc = _pct(tables.seed_image_ci([w["robust_accuracy"] for w, _ in ws], n))
    rate = _pct(tables.seed_image_ci([
        1 - w["robust_accuracy"] / w["natural_accuracy"]
        if w["natural_accuracy"] > 0 else math.nan for w, _ in ws],
        round(n * min(w["natural_accuracy"] for w, _ in ws))))
    return ws[0][0]["eps"], n, len(ws), acc, rate, failed


def _add_worst_case(numeric: pd.DataFrame, readable: pd.DataFrame, per_row: dict[str, Models],
                    numeric_col: str) -> None:
    """The ``worst_case_*`` and failed-check columns of both frames."""
    cols = [_worst_case_of(per_row.get(label, [])) for label in numeric[numeric_col]]
    eps_col, n_col, seeds, acc, rate, failed = ([c[i] for c in cols] for i in range(6))
    numeric["worst_case_eps"] = eps_col
    numeric["worst_case_n"] = n_col
    numeric["worst_case_seeds"] = seeds
    numeric["worst_case_acc_mean"] = [a[0] for a in acc]
    numeric["worst_case_acc_ci95"] = [a[1] for a in acc]
    numeric["worst_case_rate_mean"] = [a[0] for a in rate]
    numeric["worst_case_rate_ci95"] = [a[1] for a in rate]
    numeric["masking_checks_failed"] = [";".join(f) if f is not None else "" for f in failed]
    eps_shown = sorted({e for e in eps_col if e == e})
    head = f"ε={'/'.join(f'{e:g}' for e in eps_shown)}" if eps_shown else "headline ε"
    left_out = [m for m in numeric["degenerate_models"]]
    readable[f"Worst-case robust acc. ({head})"] = [
        "–" if m != m else tables.fmt_ci(m, h, 1, "%") + (f" ({k} seeds)" if d else "")
        for (m, h), k, d in zip(acc, seeds, left_out)]
    readable[f"Worst-case success rate ({head})"] = [
        "–" if m != m else tables.fmt_ci(m, h, 1, "%") for m, h in rate]
    readable["Checks"] = ["–" if f is None else "passed" if not f
                          else "FAILED: " + ", ".join(f) for f in failed]


def _annotation_note(numeric: pd.DataFrame, worst: bool, degenerate: list[str]) -> str:
    """The caption note: how the worst case was measured, and the degenerate models."""
    note = ""
    if worst and any(e == e for e in numeric.get("worst_case_eps", [])):
        ns = sorted({int(n) for n in numeric["worst_case_n"] if n == n})
        note += (f" Worst case: share of the shared subset's first {'/'.join(map(str, ns))} test "
                 "images classified correctly that survive every attack run at that ε on the "
                 "model (cross-entropy and margin-loss PGD, AutoAttack's APGD-CE, APGD-T, FAB-T "
                 "and Square, the checks' attacks and the study's own); its success rate is "
                 "among the correctly classified ones, the study's kind of rate; degenerate "
                 "final models are left out of its mean; ± a 95 % interval over "
                 "seeds and test images (results/masking.md).")
    if degenerate:
        note += (f" {DAGGER} degenerate final model (validity gate, results/masking.md): "
                 + "; ".join(degenerate) + ".")
    return note


def _pct(ci: tuple[float, float]) -> tuple[float, float]:
    return 100 * ci[0], 100 * ci[1]


def masking_table(records: Sequence[Mapping[str, Any]], summaries: Mapping[str, dict],
                  limits: Mapping[str, int]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """results/masking.{csv,md}: one row per model in scope, a column per check (its count of
    images and whether it passed), the validity gate, the worst case at the headline ε, and
    two verdicts: masking (the gradients mislead) and convergence (the PGD was not done)."""
    rows, shown = [], []
    for r in records:
        s = summaries[model_key(r)]
        v, w = s["validity"], headline_worst(s)
        row: dict[str, Any] = {k: r[k] for k in ("study", "label") + KEY}
        row.update(eps=s["eps"], n_examples=s["n_examples"],
                   natural_accuracy=v["natural_accuracy"], max_class_share=v["max_class_share"],
                   degenerate=v["degenerate"],
                   worst_case_accuracy=w["robust_accuracy"] if w else math.nan,
                   worst_case_n=w["n"] if w else math.nan,
                   worst_case_attacks=w["attacks"] if w else "")
        cells = {}
        for c in s["checks"]:
            row[c["check"]] = c["value"]
            row[f"{c['check']}_passed"] = c["passed"]
            cells[CHECK_NAMES.get(c["check"], c["check"])] = _check_cell(c)
        flags = _flags(s)
        row["failed_checks"] = ";".join(s["failed_checks"])
        row["masking_flags"] = ";".join(flags["masking"])
        row["convergence_flags"] = ";".join(flags["convergence"])
        rows.append(row)
        shown.append({
            "Model": f"{r['study']} {r['label']} ({r['dataset']}/{r['variant']}, seed "
                     f"{r['seed']}, {r['ckpt']})",
            "ε": f"{s['eps']:g}",
            "Natural acc.": f"{100 * v['natural_accuracy']:.1f} %" + (
                f" {DAGGER}" if v["degenerate"] and r["ckpt"] == "final" else ""),
            "Worst case": "–" if not w else f"{100 * w['robust_accuracy']:.1f} % (n={w['n']})",
            **cells,
            "Masking": "none" if not flags["masking"]
            else "FLAGGED: " + ", ".join(flags["masking"]),
            "Convergence": "converged" if not flags["convergence"]
            else "NOT CONVERGED: " + ", ".join(flags["convergence"]),
        })
    numeric, readable = pd.DataFrame(rows), pd.DataFrame(shown)
    lim = ", ".join(f"{CHECK_NAMES.get(k, k)} {v:g}" for k, v in limits.items())
    caption = ("Gradient-masking and convergence checks and validity of every model whose "
               "robustness a table reports (curvrobust.evaluation.masking; docs/robustness.md). Each check "
               "counts images of the shared test subset; it fails (✗) when the count exceeds its "
               "limit (" + lim + "; large ε: also when the count does not fall from the headline "
               "ε; outputs summing to 1: probabilities instead of logits). Masking: evidence "
               "that the gradients mislead (FGSM, Square, transfer or the unbounded attack beat "
               "the white-box attacks, zero gradients, probability outputs). Convergence: the "
               "fixed-step cross-entropy PGD was not done (margin loss, doubled steps or "
               "restarts break more); the worst case does not rest on it. Worst case: robust "
               "accuracy over every attack run at the headline ε, AutoAttack's four stages "
               f"included. {DAGGER}: degenerate final model (natural accuracy below its "
               "dataset's threshold, or one class for most predictions).")
    return numeric, readable, caption


def _flags(s: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"masking": [], "convergence": []}
    for c in s["checks"]:
        if not c["passed"]:
            out[c.get("kind", "masking")].append(c["check"])
    return out


def _check_cell(c: Mapping[str, Any]) -> str:
    if c["value"] != c["value"]:
        return "not run"
    mark = "✓" if c["passed"] else "✗"
    if c["check"] == "probabilities":
        return mark
    return f"{int(c['value'])} {mark}"
