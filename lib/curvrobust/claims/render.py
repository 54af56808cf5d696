"""The judged claims as tables: ``claims.csv`` (:func:`claims_frame`) and ``claims.md``
(:func:`claims_markdown`), with the verdict counts by basis and the number formats every claims
page shares (a real minus sign, one precision for an effect and its interval)."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import pandas as pd

from curvrobust.claims.spec import (CONTRADICTED, EQUIVALENT, HOLDS, INCONCLUSIVE,
                                    NOT_EVALUABLE, NOT_RUN, VERDICTS)

# the columns of claims.csv, in order (the spec's); extra claim facts follow them
COLUMNS = ["study", "id", "headline", "ours", "claim", "where", "metric", "comparison",
           "study_value", "ours_value", "effect", "lo", "hi", "sesoi", "mde", "power", "seeds",
           "basis", "verdict", "reason", "flags"]
# se: the effect's standard error (se² = se_seed² + se_image²), df: its t degrees of freedom,
# se_image_own: the part of se_seed that is each seed's own image noise, images: the shared
# test images, p: the verdict's one-sided p, q: its Benjamini-Hochberg q-value (exploratory
# rows), *_both_correct: the rate on images every arm classifies correctly
EXTRA_COLUMNS = ["direction", "margin", "unit", "worst_case", "se", "df", "se_seed",
                 "se_image", "se_image_own", "images", "p", "q", "effect_both_correct",
                 "lo_both_correct", "hi_both_correct", "sesoi_source"]

LEGEND = {
    HOLDS: "the 95 % interval (seeds and test images) lies on the asserted side of 0 and the "
           "estimate reaches the SESOI (\"at least as\" claims: the interval lies above −m)",
    CONTRADICTED: "the interval lies on the other side of 0, or entirely within ±SESOI (\"no "
                  "effect as large as\"); \"no difference\": entirely outside ±m",
    EQUIVALENT: "a \"no difference\" claim whose interval lies inside ±m (its SESOI)",
    INCONCLUSIVE: "anything else, with the reason: one training run, underpowered (the MDE "
                  "beside the SESOI), the interval crosses 0, an effect below the SESOI, too "
                  "few discordant images, or not significant after Benjamini-Hochberg",
    NOT_EVALUABLE: "a model the claim needs failed the validity gate, a matched checkpoint "
                   "missed its target, or too few models for a rank test (the reason says)",
    NOT_RUN: "the preset did not train the models the claim needs",
}

MINUS = "\u2212"


def join_flags(flags: Sequence[Any]) -> str:
    """One text of a claim's flags, each model once: "gn seed 42: margin_only, square_only;
    adam seed 42: margin_only" (flags of the form "<model>: <check>"; others kept as they are).

    Args:
        flags: the evidence's flags, in order.

    Returns:
        The flags joined with "; ", duplicates dropped.
    """
    grouped: dict[str, list[str]] = {}
    for f in flags:
        model, sep, check = str(f).rpartition(": ")
        key, item = (model, check) if sep else (str(f), "")
        items = grouped.setdefault(key, [])
        if item and item not in items:
            items.append(item)
    return "; ".join(f"{k}: {', '.join(v)}" if v else k for k, v in grouped.items())


# --------------------------------------------------------------------------- formatting

def _decimals(*values: float) -> int | None:
    """Decimals that show about three significant figures of the largest value (None: use
    the 'g' format, for very small or very large numbers)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    big = max(finite, default=0.0)
    if big == 0.0:
        return 1
    if big < 1e-3 or big >= 1e5:
        return None
    return int(min(4, max(0, 2 - math.floor(math.log10(big)))))


def fmt_number(value: float, decimals: int | None = 1) -> str:
    """A number for a table cell: a real minus sign, '–' for a missing value.

    Args:
        value: the number (nan/None → '–').
        decimals: digits after the point, or None for three significant figures.

    Returns:
        the text.
    """
    if value is None or not math.isfinite(value):
        return "–"
    s = f"{value:.3g}" if decimals is None else f"{value:.{decimals}f}"
    if s.startswith("-") and float(s) == 0.0:
        s = s[1:]  # no "−0.0"
    return s.replace("-", MINUS)


def fmt_interval(effect: float, lo: float, hi: float) -> str:
    """'−51.7 [−56.0, −47.4]' with one precision for all three ('–' parts when missing).

    Args:
        effect: the point estimate; lo, hi: the interval (nan: none).

    Returns:
        the text.
    """
    d = _decimals(effect, lo, hi)
    text = fmt_number(effect, d)
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{fmt_number(lo, d)}, {fmt_number(hi, d)}]"
    return text


def claims_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a table: the spec's columns in order, then ``EXTRA_COLUMNS``.

    Args:
        rows: rows from :func:`judge` / :func:`judge_all`.

    Returns:
        a DataFrame (empty with those columns when there are no rows).
    """
    cols = COLUMNS + EXTRA_COLUMNS
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


# --------------------------------------------------------------------------- Markdown

def _cell(text: Any) -> str:
    """Table-safe text: no pipes or newlines breaking the row."""
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ").strip()


def _study_order(name: str) -> tuple[int, str]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 10**9, name)


def _effect_cell(row: Mapping[str, Any]) -> str:
    effect, lo, hi = (float(row.get(k, math.nan)) if row.get(k) is not None else math.nan
                      for k in ("effect", "lo", "hi"))
    if not math.isfinite(effect):
        return "–"
    unit = " pp" if row.get("unit") == "%" else ""
    text = fmt_interval(effect, lo, hi) + unit
    both = [row.get(k) for k in ("effect_both_correct", "lo_both_correct", "hi_both_correct")]
    if isinstance(both[0], (int, float)) and math.isfinite(both[0]):
        text += f"; on images both arms classify correctly: {fmt_interval(*both)}{unit}"
    return text


def basis_group(row: Mapping[str, Any]) -> str:
    """The basis a verdict rests on, for the counts: "seeds" (≥ 2 training runs per arm),
    "one run" (one per arm) or "none" (not run, not evaluable, no data).

    Args:
        row: a judged row.

    Returns:
        one of ``BASIS_GROUPS``.
    """
    if row.get("verdict") in (NOT_RUN, NOT_EVALUABLE) or not row.get("seeds"):
        return "none"
    return "seeds" if int(row["seeds"]) >= 2 else "one run"


BASIS_GROUPS = ("seeds", "one run", "none")


def verdict_counts(rows: Sequence[Mapping[str, Any]]) -> str:
    """'7 holds (7 seeds), 20 inconclusive (14 seeds, 6 one run), …': each verdict's count,
    split by basis.

    Args:
        rows: judged rows.

    Returns:
        the sentence.
    """
    parts = []
    for v in VERDICTS:
        these = [r for r in rows if r["verdict"] == v]
        if not these:
            continue
        by = [(g, sum(basis_group(r) == g for r in these)) for g in BASIS_GROUPS]
        split = ", ".join(f"{n} {g}" for g, n in by if n and g != "none")
        parts.append(f"{len(these)} {v}" + (f" ({split})" if split and v not in
                                             (NOT_RUN, NOT_EVALUABLE) else ""))
    return ", ".join(parts) + "."


def _num_cell(row: Mapping[str, Any], key: str, percent: bool = False) -> str:
    v = row.get(key)
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{100 * v:.0f} %" if percent else fmt_number(v, _decimals(v))


def claims_markdown(rows: Sequence[Mapping[str, Any]],
                    deviations: Mapping[str, Sequence[str]] | None = None,
                    title: str = "Claims and verdicts") -> str:
    """``claims.md``: the counts by verdict and basis, a legend, then per study its claims
    (headline first) as a table and the deviations of our runs from the study.

    Args:
        rows: rows from :func:`judge_all`.
        deviations: study -> our deviations from it (text, formatted from the config).
        title: the page's first heading.

    Returns:
        the Markdown text.
    """
    deviations = deviations or {}
    lines = _claims_preamble(rows, title)
    studies = sorted({r["study"] for r in rows} | set(deviations), key=_study_order)
    for study in studies:
        lines += _study_section(study, [r for r in rows if r["study"] == study],
                                list(deviations.get(study) or []))
    return "\n".join(lines).rstrip() + "\n"


def _claims_preamble(rows: Sequence[Mapping[str, Any]], title: str) -> list[str]:
    """``claims.md``'s title, counts by verdict and basis, and the legend of its columns."""
    lines = [f"# {title}", "",
             "Generated by the workflow from the runs' results; every verdict below follows "
             "from the data by fixed rules (curvrobust.claims, curvrobust.claims.stats), not "
             "by hand.", "", f"All rows: {verdict_counts(rows)} (\"seeds\": two or more "
             "training runs per arm; \"one run\": one per arm).", "", "Verdicts:", ""]
    lines += [f"- **{v}**: {LEGEND[v]}." for v in VERDICTS]
    lines += ["",
              "Effect: the paired difference A − B of the comparison (for trends: the slope "
              "against log₂ of the swept value), mean over seeds, with its 95 % interval over "
              "seeds *and* the shared test images (t, S − 1 degrees of freedom); pp: "
              "percentage points. SESOI: the smallest effect that matters, declared from the "
              "study's words (docs/claims.md). MDE: the true effect this run's design detects "
              "(\"holds\") with 80 % probability; power: the probability of \"holds\" (or "
              "\"equivalent\") at the SESOI. \"one training run\": one model per arm, so the "
              "interval sees the images, not the training's variation: such a row is never a "
              "verdict about the optimiser. Exploratory rows are adjusted for multiplicity "
              "(Benjamini-Hochberg within the study); the headline (one per study, or one per "
              "dataset) is not. What it would take to decide: results/power.md. Flags: failed "
              "gradient-masking checks (the verdict is kept).", ""]
    return lines


def _study_section(study: str, these: list[Mapping[str, Any]], devs: list[str]) -> list[str]:
    """One study's section: its claims' table (headline first) and our deviations from it."""
    these = ([r for r in these if r.get("headline") == "headline"]
             + [r for r in these if r.get("headline") != "headline"])
    lines = [f"## {study}", ""]
    if these:
        lines += [verdict_counts(these), ""]
        lines += ["| claim | metric | study | ours | effect [95 % interval] | SESOI | MDE "
                  "| power | seeds/basis | verdict | flags |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_claim_line(r) for r in these]
        lines.append("")
    else:
        lines += ["No claims.", ""]
    if devs:
        lines += ["### Deviations from the study", ""]
        lines += [f"- {d}" for d in devs]
        lines.append("")
    return lines


def _claim_line(r: Mapping[str, Any]) -> str:
    """A claim's row of its study's table: tags, verdict with reason and q, basis, cells."""
    tags = []
    if r.get("headline") == "headline":
        tags.append("headline")
    if r.get("ours"):
        tags.append("ours")
    if r.get("worst_case"):
        tags.append("worst case")
    tag = f" *({', '.join(tags)})*" if tags else ""
    claim = f"`{r['id']}`{tag} {r['claim']} ({r['where']})"
    verdict = f"**{r['verdict']}**"
    if r.get("reason"):
        verdict += f": {r['reason']}"
    q = r.get("q")
    if isinstance(q, float) and math.isfinite(q):
        verdict += f" (q = {q:.3g})"
    basis = r.get("basis") or ("–" if not r.get("seeds") else f"{r['seeds']} seeds")
    if r.get("images"):
        basis += f", {r['images']} images"
    cells = [claim, r.get("metric"), r.get("study_value") or "–",
             r.get("ours_value") or "–", _effect_cell(r), _num_cell(r, "sesoi"),
             _num_cell(r, "mde"), _num_cell(r, "power", True), basis, verdict,
             r.get("flags") or ""]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def write_claims(rows: Sequence[Mapping[str, Any]], csv_path: str | os.PathLike,
                 md_path: str | os.PathLike,
                 deviations: Mapping[str, Sequence[str]] | None = None,
                 title: str = "Claims and verdicts") -> None:
    """Write ``claims.csv`` (:func:`claims_frame`) and ``claims.md`` (:func:`claims_markdown`),
    each atomically (an interrupted job leaves no half-written table).

    Args:
        rows: rows from :func:`judge_all`.
        csv_path, md_path: where to write.
        deviations: study -> our deviations from it.
        title: the Markdown page's heading.

    Returns:
        None.
    """
    from curvrobust.utils import atomic_path

    frame = claims_frame(rows)
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    text = claims_markdown(rows, deviations, title=title)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
