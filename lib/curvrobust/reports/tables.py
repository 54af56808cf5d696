"""Aggregate per-model results over seeds (mean ± 95 % interval) and render tables as CSV,
Markdown and LaTeX, with a study's printed numbers beside ours."""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from curvrobust.utils import atomic_path, write_text_atomic


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval (nan for fewer than 2 values)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def seed_image_ci(shares: Iterable[float], n_images: int, level: float = 0.95
                  ) -> tuple[float, float]:
    """Mean and half-width of an interval for a share measured on the same ``n_images`` test
    images by several seeds' models: SE² = s²/S + p̄(1 − p̄)/n (the seeds' spread, plus the
    binomial error of the image sample, which the seeds share; conservative, since s² already
    holds each model's own image noise), Student t with S − 1 df (one seed: the normal
    quantile and the image part alone). Shares in [0, 1]; nan for no value or n < 1."""
    v = np.asarray(list(shares), dtype=float)
    if v.size == 0 or n_images < 1:
        return math.nan, math.nan
    p = float(v.mean())
    image_var = p * (1 - p) / n_images
    if v.size == 1:
        return p, float(stats.norm.ppf(0.5 + level / 2) * math.sqrt(image_var))
    se = math.sqrt(v.var(ddof=1) / v.size + image_var)
    return p, float(stats.t.ppf(0.5 + level / 2, v.size - 1) * se)


def fmt_ci(mean: float, half: float, digits: int = 2, suffix: str = "") -> str:
    """'12.34 ± 0.56' (or just '12.34' when the interval is undefined)."""
    if math.isnan(mean):
        return "–"
    s = f"{mean:.{digits}f}{suffix}"
    return s if math.isnan(half) else f"{s} ± {half:.{digits}f}{suffix}"


def eps_key(eps: float) -> str:
    return f"{eps:g}"


def attack_table(results: pd.DataFrame, order: Sequence[str],
                 reference: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per optimiser label: correctly classified count and attack success rate per ε.

    `results` has columns label, seed, eps, correct, successes, success_rate (one row per
    model, seed and ε). `reference` maps label -> {correct, successes, rate} as printed by the
    study. Returns numeric columns; `render_attack_table` formats them."""
    rows = []
    eps_values = sorted(results["eps"].unique(), reverse=True)
    for label in order:
        sub = results[results["label"] == label]
        if sub.empty:
            continue
        first = sub[sub["eps"] == eps_values[0]]
        row: dict[str, Any] = {"optimizer": label, "n_seeds": int(first["seed"].nunique())}
        row["correct_mean"], row["correct_ci95"] = mean_ci(first["correct"])
        ref = (reference or {}).get(label)
        row["paper_correct"] = ref["correct"] if ref else math.nan
        for eps in eps_values:
            e = sub[sub["eps"] == eps]
            k = eps_key(eps)
            row[f"successes_eps{k}_mean"], row[f"successes_eps{k}_ci95"] = mean_ci(e["successes"])
            m, h = mean_ci(100.0 * e["success_rate"])
            row[f"rate_eps{k}_mean"], row[f"rate_eps{k}_ci95"] = m, h
            row[f"paper_rate_eps{k}"] = _ref_at((ref or {}).get("rate"), eps)
        rows.append(row)
    return pd.DataFrame(rows)


def _ref_at(values: dict[Any, Any] | None, key: float) -> float:
    """The printed value at a float key (ε or ρ; YAML keys may be floats or strings)."""
    for k, v in (values or {}).items():
        if math.isclose(float(k), float(key)):
            return float(v)
    return math.nan


def render_attack_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable version: 'ours' and 'paper' side by side for each column."""
    eps_cols = [c[len("rate_eps"):-len("_mean")] for c in table.columns
                if c.startswith("rate_eps") and c.endswith("_mean")]
    out = pd.DataFrame({"Optimizer": table["optimizer"], "Seeds": table["n_seeds"]})
    out["Correct tests"] = [fmt_ci(m, h, 0) for m, h in
                            zip(table["correct_mean"], table["correct_ci95"])]
    out["Correct (paper)"] = [_fmt_num(v, 0) for v in table["paper_correct"]]
    for k in eps_cols:
        out[f"ε={k} success"] = [
            f"{fmt_ci(s, sh, 0)} ({fmt_ci(m, h, 2, '%')})" for s, sh, m, h in zip(
                table[f"successes_eps{k}_mean"], table[f"successes_eps{k}_ci95"],
                table[f"rate_eps{k}_mean"], table[f"rate_eps{k}_ci95"])]
        out[f"ε={k} (paper)"] = [_fmt_num(v, 2, "%") for v in table[f"paper_rate_eps{k}"]]
    return out


def _fmt_num(v: float, digits: int, suffix: str = "") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}{suffix}"


def sam_table(results: pd.DataFrame, order: Sequence[str],
              reference: dict[str, dict[float, float]] | None = None) -> pd.DataFrame:
    """Median SAM loss increase per ρ (rows) and optimiser (columns), mean ± 95 % CI of the
    per-seed medians; `results` has columns label, seed, rho, median."""
    rows = []
    for rho in sorted(results["rho"].unique()):
        row: dict[str, Any] = {"rho": rho}
        for label in order:
            sub = results[(results["label"] == label) & (results["rho"] == rho)]
            if sub.empty:
                continue
            row[f"{label}_median_mean"], row[f"{label}_median_ci95"] = mean_ci(sub["median"])
            row[f"{label}_paper"] = _ref_at((reference or {}).get(label), rho)
        rows.append(row)
    return pd.DataFrame(rows)


def render_sam_table(table: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({"ρ": [f"{r:g}" for r in table["rho"]]})
    for label in order:
        if f"{label}_median_mean" not in table:
            continue
        out[f"{label} median increase"] = [fmt_ci(m, h, 4) for m, h in zip(
            table[f"{label}_median_mean"], table[f"{label}_median_ci95"])]
        out[f"{label} (paper)"] = [_fmt_num(v, 4) for v in table[f"{label}_paper"]]
    return out


def write_table(numeric: pd.DataFrame, readable: pd.DataFrame, stem: str | os.PathLike,
                caption: str) -> list[str]:
    """Write `<stem>.csv` (numeric), `<stem>.md` and `<stem>.tex` (readable), atomically."""
    stem = str(stem)
    with atomic_path(stem + ".csv") as tmp:
        numeric.to_csv(tmp, index=False, float_format="%.6g")
    md = f"{caption}\n\n{readable.to_markdown(index=False)}\n"
    write_text_atomic(stem + ".md", md)
    tex = readable.to_latex(index=False, caption=caption, escape=True)
    tex = tex.replace("ε", r"$\varepsilon$").replace("ρ", r"$\rho$").replace("±", r"$\pm$")
    write_text_atomic(stem + ".tex", tex)
    return [stem + ext for ext in (".csv", ".md", ".tex")]


# ---- study 002: accuracy under attack per training regime ----

def accuracy_table(results: pd.DataFrame, order: Sequence[str], columns: Sequence[str],
                   reference: dict[str, Any] | None = None) -> pd.DataFrame:
    """Study 002's Tables 1/2: natural accuracy and accuracy under each attack column per ε,
    one row per regime label, mean ± 95 % CI over seeds (percent).

    `results` has one row per (label, seed, column, eps) with `natural` and `accuracy` in %.
    `reference` is the study's printed table: {eps: [...], rows: {label: {natural, <column>:
    [one value per eps]}}}; columns `paper_*` hold it (NaN where the study has no number)."""
    ref_eps = [float(e) for e in (reference or {}).get("eps", [])]
    ref_rows = (reference or {}).get("rows", {})
    rows = []
    for label in order:
        sub = results[results["label"] == label]
        if sub.empty:
            continue
        per_seed = sub.groupby("seed")["natural"].first()
        row: dict[str, Any] = {"regime": label, "n_seeds": int(per_seed.size)}
        row["natural_mean"], row["natural_ci95"] = mean_ci(per_seed)
        ref = ref_rows.get(label, {})
        row["paper_label"] = ref.get("paper_label", "")
        row["paper_natural"] = float(ref["natural"]) if "natural" in ref else math.nan
        for col in columns:
            c = sub[sub["column"] == col]
            for eps in sorted(c["eps"].unique()):
                k = f"{col}_eps{eps_key(eps)}"
                row[f"{k}_mean"], row[f"{k}_ci95"] = mean_ci(c[c["eps"] == eps]["accuracy"])
                idx = next((i for i, e in enumerate(ref_eps) if math.isclose(e, eps, rel_tol=1e-6)),
                           None)
                vals = ref.get(col)
                row[f"paper_{k}"] = float(vals[idx]) if vals is not None and idx is not None \
                    else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _eps_label(eps: float, unit: float | None) -> str:
    if unit:
        return f"{eps * unit:.3g}/{unit:g}"
    return f"{eps:g}"


def render_accuracy_table(table: pd.DataFrame, columns: Sequence[str],
                          names: dict[str, str] | None = None,
                          eps_unit: float | None = None) -> pd.DataFrame:
    """'ours [paper]' cells per attack and ε; `eps_unit` 255 prints CIFAR radii as k/255."""
    names = names or {}
    out = pd.DataFrame({"Regime": [names.get(v, v) for v in table["regime"]],
                        "Seeds": table["n_seeds"]})
    out["Natural"] = [_with_paper(m, h, p) for m, h, p in
                      zip(table["natural_mean"], table["natural_ci95"], table["paper_natural"])]
    for col in columns:
        prefix = f"{col}_eps"
        for c in table.columns:
            if c.startswith(prefix) and c.endswith("_mean"):
                k = c[:-len("_mean")]
                eps = float(k[len(prefix):])
                out[f"{col.upper() if col != 'cw' else 'C&W'} ε={_eps_label(eps, eps_unit)}"] = [
                    _with_paper(m, h, p) for m, h, p in
                    zip(table[c], table[f"{k}_ci95"], table[f"paper_{k}"])]
    return out


def _with_paper(mean: float, half: float, paper: float) -> str:
    s = fmt_ci(mean, half, 1)
    return s if math.isnan(paper) else f"{s} [{paper:g}]"


def summarise(results: pd.DataFrame, by: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Mean ± 95 % CI over seeds of each `values` column within each `by` group (group order
    kept as first seen); columns `<value>_mean`, `<value>_ci95`, plus `n_seeds`."""
    rows = []
    for key, g in results.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key))
        row["n_seeds"] = int(g["seed"].nunique()) if "seed" in g else len(g)
        for v in values:
            row[f"{v}_mean"], row[f"{v}_ci95"] = mean_ci(g[v].astype(float))
        rows.append(row)
    return pd.DataFrame(rows)


def render_summary(table: pd.DataFrame, by: Sequence[str], values: dict[str, tuple[str, int]],
                   ) -> pd.DataFrame:
    """Readable version of :func:`summarise`: `values` maps column -> (heading, digits)."""
    out = pd.DataFrame({b: table[b] for b in by})
    out["Seeds"] = table["n_seeds"]
    for v, (heading, digits) in values.items():
        out[heading] = [fmt_ci(m, h, digits) for m, h in
                        zip(table[f"{v}_mean"], table[f"{v}_ci95"])]
    return out
