"""The claims engine: from a claim (plain data, declared by a study's plan) and its evidence
(per-seed, per-image values on test images every seed shares, built by the study's report
module) to a verdict with an effect, a 95 % interval, the reason and what the design could
detect, and the tables ``results/claims.{csv,md}`` that list them.

The unit of replication is the training run; the statistics are in :mod:`.claims_stats`.
The effect's interval covers the seeds *and* the shared test images (between-seed variance
plus the delta-method image variance, t with S − 1 degrees of freedom), so seeds that agree by
chance cannot give a point interval. Every claim declares its smallest effect of interest
(SESOI, from the study's words): a directional claim holds only when the interval lies on the
asserted side of 0 *and* the estimate reaches the SESOI, and is contradicted when the interval
lies on the other side or entirely within ±SESOI; no-difference claims are equivalent inside
±margin. One training run per arm is "inconclusive (one training run)" unless the claim
borrows a between-seed variance. Paired 0/1 outcomes also need the exact McNemar test; rank
correlations need a permutation test over enough models; censored trends need every one of
≥ 3 seeds to order the arms. Each study's exploratory rows are adjusted by Benjamini-Hochberg.
Thresholds and SESOIs come from the claim data, fixed before a run; nothing here is tuned to
an outcome.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import claims_stats as cs

HOLDS = "holds"
CONTRADICTED = "contradicted"
EQUIVALENT = "equivalent"
INCONCLUSIVE = "inconclusive"
NOT_EVALUABLE = "not evaluable"
NOT_RUN = "not run"
VERDICTS = (HOLDS, CONTRADICTED, EQUIVALENT, INCONCLUSIVE, NOT_EVALUABLE, NOT_RUN)

DIRECTIONS = ("less", "greater", "at_least", "equivalent", "decreasing", "increasing")
MARGIN_DIRECTIONS = ("at_least", "equivalent")   # directions whose margin must be > 0
TREND_DIRECTIONS = ("decreasing", "increasing")  # effect = slope against log2 of the sweep
UNITS = ("%", "")
STATUSES = ("ok", "not_run", "not_evaluable")

# key -> accepted types, every key a claim dict must have (see the spec's "Claims as data")
CLAIM_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,), "study": (str,), "text": (str,), "where": (str,), "metric": (str,),
    "comparison": (str,), "direction": (str,), "margin": (int, float), "unit": (str,),
    "headline": (bool,), "ours": (bool,), "worst_case": (bool,), "study_value": (str,),
    "measure": (str,), "args": (dict,), "sesoi": (int, float), "sesoi_source": (str,),
}

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

MIN_CENSORED_SEEDS = 3    # the censored order rule decides only from this many seeds
MINUS = "\u2212"


# --------------------------------------------------------------------------- validation

def validate_claim(claim: Mapping[str, Any]) -> None:
    """Check one claim dict against the spec, so a malformed plan fails before any judging.

    Args:
        claim: the claim dict (keys of ``CLAIM_KEYS``).

    Returns:
        None; raises ValueError naming the claim id and the offending key.
    """
    cid = claim.get("id", "<no id>") if isinstance(claim, Mapping) else "<not a dict>"
    if not isinstance(claim, Mapping):
        raise ValueError(f"claim {cid}: a claim must be a dict, got {type(claim).__name__}")
    for key, types in CLAIM_KEYS.items():
        if key not in claim:
            raise ValueError(f"claim {cid!r}: missing key {key!r}")
        value = claim[key]
        ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
        if not ok:
            want = " or ".join(t.__name__ for t in types)
            raise ValueError(f"claim {cid!r}: key {key!r} must be {want}, "
                             f"got {type(value).__name__} {value!r}")
    if not claim["id"]:
        raise ValueError("claim '': key 'id' must not be empty")
    if claim["direction"] not in DIRECTIONS:
        raise ValueError(f"claim {cid!r}: key 'direction' is {claim['direction']!r}, "
                         f"not one of {', '.join(DIRECTIONS)}")
    margin = float(claim["margin"])
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"claim {cid!r}: key 'margin' must be finite and >= 0, got {margin}")
    if claim["direction"] in MARGIN_DIRECTIONS and margin <= 0:
        raise ValueError(f"claim {cid!r}: key 'margin' must be > 0 for direction "
                         f"{claim['direction']!r}, got {margin}")
    sesoi = float(claim["sesoi"])
    if not math.isfinite(sesoi) or sesoi < 0:
        raise ValueError(f"claim {cid!r}: key 'sesoi' must be finite and >= 0, got {sesoi}")
    if claim["direction"] in MARGIN_DIRECTIONS and sesoi != margin:
        raise ValueError(f"claim {cid!r}: key 'sesoi' ({sesoi:g}) must equal 'margin' "
                         f"({margin:g}) for direction {claim['direction']!r}")
    if claim["unit"] not in UNITS:
        raise ValueError(f"claim {cid!r}: key 'unit' is {claim['unit']!r}, not one of "
                         f"{UNITS}")


def validate_claims(claims: Sequence[Mapping[str, Any]]) -> None:
    """Check every claim and that ids are unique. A study's headline may span several rows
    (one per dataset, or one per comparison of the headline).

    Args:
        claims: the claim dicts of one or more studies.

    Returns:
        None; raises ValueError naming the claim id and the key at fault.
    """
    seen: set[str] = set()
    for claim in claims:
        validate_claim(claim)
        cid = claim["id"]
        if cid in seen:
            raise ValueError(f"claim {cid!r}: key 'id' is not unique")
        seen.add(cid)


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


def _level_text(level: float) -> str:
    return f"{100 * level:g} %"


def _seed_list(seeds: Iterable[Any]) -> str:
    return ", ".join(str(s) for s in seeds)


def _sorted_seeds(mapping: Mapping[Any, Any]) -> list[Any]:
    """Seed keys in numeric order when they are numbers (JSON makes them strings)."""
    def key(s: Any) -> tuple[int, float, str]:
        try:
            return (0, float(s), "")
        except (TypeError, ValueError):
            return (1, 0.0, str(s))
    return sorted(mapping, key=key)




# --------------------------------------------------------------------------- judging

ONE_RUN = "one training run"


def _scale(claim: Mapping[str, Any]) -> float:
    return 100.0 if claim["unit"] == "%" else 1.0


def _base_row(claim: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, Any]:
    scale = _scale(claim)
    return {
        "study": claim["study"], "id": claim["id"],
        "headline": "headline" if claim["headline"] else "exploratory",
        "ours": bool(claim["ours"]), "claim": claim["text"], "where": claim["where"],
        "metric": claim["metric"], "comparison": claim["comparison"],
        "study_value": claim["study_value"], "ours_value": str(evidence.get("ours", "") or ""),
        "effect": math.nan, "lo": math.nan, "hi": math.nan,
        "sesoi": round(float(claim["sesoi"]) * scale, 12), "mde": math.nan, "power": math.nan,
        "seeds": 0, "basis": "", "verdict": INCONCLUSIVE, "reason": "",
        "flags": join_flags(evidence.get("flags") or []),
        "direction": claim["direction"], "margin": round(float(claim["margin"]) * scale, 12),
        "unit": claim["unit"], "worst_case": bool(claim["worst_case"]),
        "se": math.nan, "df": math.nan, "se_seed": math.nan, "se_image": math.nan,
        "se_image_own": math.nan,
        "images": 0, "p": math.nan, "q": math.nan, "effect_both_correct": math.nan,
        "lo_both_correct": math.nan, "hi_both_correct": math.nan,
        "sesoi_source": claim["sesoi_source"],
    }


def _asserted_sign(direction: str) -> int:
    return 1 if direction in ("greater", "increasing") else -1


def _censored(row: dict[str, Any], claim: Mapping[str, Any],
              evidence: Mapping[str, Any]) -> dict:
    """Study 003's rule when some run never crossed: each seed's order of the arms (+1: the
    values increase along the sweep, −1: decrease, 0: neither) against the claim's direction;
    holds (contradicted) when at least MIN_CENSORED_SEEDS seeds all order them as asserted
    (opposite)."""
    orders = evidence.get("orders") or {}
    seeds = _sorted_seeds(orders)
    row["seeds"] = len(seeds)
    row["basis"] = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}, censored"
    if evidence.get("effect") is not None:
        row["effect"] = float(evidence["effect"]) * _scale(claim)
    values = {s: int(orders[s]) for s in seeds}
    bad = [s for s in seeds if values[s] not in (1, -1, 0)]
    if bad:
        raise ValueError(f"claim {row['id']!r}: key 'orders' must be 1, -1 or 0 per seed, "
                         f"got {[orders[s] for s in bad]}")
    asserted = _asserted_sign(claim["direction"])
    parts = []
    for v, word in ((asserted, "as asserted"), (-asserted, "opposite"), (0, "neither way")):
        these = [s for s in seeds if values[s] == v]
        if these:
            parts.append(f"{'seeds' if len(these) > 1 else 'seed'} {_seed_list(these)} {word}")
    text = "; ".join(parts) or "no seed's order given"
    if len(seeds) < MIN_CENSORED_SEEDS:
        row["reason"] = (f"censored: {text}; the order rule needs ≥ {MIN_CENSORED_SEEDS} "
                         "seeds")
    elif all(v == asserted for v in values.values()):
        row["verdict"], row["reason"] = HOLDS, f"censored: {text}"
    elif all(v == -asserted for v in values.values()):
        row["verdict"], row["reason"] = CONTRADICTED, f"censored: {text}"
    else:
        row["reason"] = f"censored, seeds disagree: {text}"
    return row


def _rank(row: dict[str, Any], claim: Mapping[str, Any], evidence: Mapping[str, Any],
          seed: int, level: float) -> dict:
    """A rank correlation across models (seed-averaged values): permutation test, or not
    evaluable below claims_stats.MIN_RANK_MODELS models."""
    x, y = evidence["rank_x"], evidence["rank_y"]
    verdict, reason, rho, p = cs.rank_judgement(claim["direction"], x, y, level=level, seed=seed)
    row.update(effect=rho * _scale(claim), verdict=verdict, reason=reason,
               basis=f"{len(x)} models, {evidence.get('seeds_text', 'seed-averaged')}",
               seeds=int(evidence.get("n_seeds", 0)), p=p / 2 if math.isfinite(p) else p)
    return row


def _scaled(inf: cs.Inference, scale: float) -> cs.Inference:
    return dataclasses.replace(
        inf, effect=inf.effect * scale, se=inf.se * scale, lo=inf.lo * scale,
        hi=inf.hi * scale, se_seed=inf.se_seed * scale, se_image=inf.se_image * scale,
        se_image_own=inf.se_image_own * scale)


def _cube(evidence: Mapping[str, Any], prefix: str, cid: str):
    """(S, n, k) numerators, denominators (or None) of `prefix`_num / `prefix`_den; a (n, k)
    array is one seed."""
    num = np.asarray(evidence[f"{prefix}_num"], dtype=float)
    den = evidence.get(f"{prefix}_den")
    den = None if den is None else np.asarray(den, dtype=float)
    if num.ndim == 2:
        num = num[None]
        den = None if den is None else den[None]
    try:
        cs.as_cube(num, den)
        cs.contrast_weights(num.shape[-1], evidence.get("x"))
    except ValueError as e:
        raise ValueError(f"claim {cid!r}: evidence key '{prefix}_num': {e}") from None
    return num, den


def _inference(claim: Mapping[str, Any], evidence: Mapping[str, Any], row: dict[str, Any],
               level: float, borrowed: Mapping[str, Any] | None) -> cs.Inference | None:
    """The effect's inference from per-image cubes or per-seed effects (None: row["reason"]
    says why there is no interval)."""
    cid, x = claim["id"], evidence.get("x")
    if evidence.get("images_num") is not None:
        num, den = _cube(evidence, "images", cid)
        row["seeds"], row["images"] = num.shape[0], num.shape[1]
        kw = {}
        if num.shape[0] == 1 and borrowed:
            kw = dict(borrowed_var=borrowed["var"], borrowed_df=borrowed["df"],
                      borrowed_from=borrowed["from"])
        effects = cs.per_seed_effects(num, den, x)
        if not np.all(np.isfinite(effects)):
            row["reason"] = "effect undefined (an arm with no image in its denominator)"
            return None
        return cs.two_way_inference(num, den, x, level=level, **kw)
    per_seed = evidence.get("per_seed") or {}
    seeds = _sorted_seeds(per_seed)
    row["seeds"] = len(seeds)
    values = np.array([math.nan if per_seed[s] is None else float(per_seed[s]) for s in seeds])
    undefined = [s for s, v in zip(seeds, values) if not math.isfinite(v)]
    if undefined:
        row["reason"] = f"effect undefined for seed {_seed_list(undefined)}: no interval"
        if len(undefined) < len(seeds):
            row["effect"] = float(np.nanmean(values)) * _scale(claim)
        return None
    if len(seeds) >= 2:
        inf = cs.seed_inference(values, level)
        if inf is None:
            row["effect"] = float(values.mean()) * _scale(claim)
            row["reason"] = (f"the {len(seeds)} seeds give the same effect and no per-image "
                             "data exist: no error estimate, no interval")
        return inf
    if len(seeds) == 1:
        row["effect"] = float(values[0]) * _scale(claim)
        row["basis"] = ONE_RUN
        row["reason"] = f"{ONE_RUN}, and no per-image data: no interval"
    elif evidence.get("effect") is not None:
        row["effect"] = float(evidence["effect"]) * _scale(claim)
        row["reason"] = "no interval: an effect without seeds or per-image data"
    else:
        row["reason"] = "no interval: no per-seed effects and no per-image data"
    return None


def _judgement(claim: Mapping[str, Any], inf: cs.Inference, sesoi: float) -> cs.Judgement:
    direction = claim["direction"]
    if direction == "equivalent":
        return cs.judge_equivalent(sesoi, inf)
    if direction == "at_least":
        return cs.judge_at_least(sesoi, inf)
    return cs.judge_directional(direction, sesoi, inf)


def _mcnemar_gate(row: dict[str, Any], evidence: Mapping[str, Any], cid: str,
                  level: float) -> None:
    """Paired 0/1 outcomes (pooled over seeds): a verdict on a side of 0 also needs the exact
    McNemar test at 1 − level, so a handful of discordant images cannot decide."""
    if row["verdict"] not in (HOLDS, CONTRADICTED) or evidence.get("x") is not None:
        return
    if row["reason"].startswith("no effect as large"):
        return
    num, den = _cube(evidence, "images", cid)
    counts = cs.discordant_counts(num, den)
    if counts is None:
        return
    p = cs.mcnemar_exact(*counts)
    if p >= 1 - level:
        row["reason"] = (f"exact McNemar p = {p:.3g} ({counts[0]} vs {counts[1]} discordant "
                         f"images): too few to decide, though the interval is "
                         f"{'on the asserted side' if row['verdict'] == HOLDS else 'opposite'}")
        row["verdict"] = INCONCLUSIVE


def _both_correct(row: dict[str, Any], claim: Mapping[str, Any],
                  evidence: Mapping[str, Any], level: float) -> None:
    """The rate on the images every arm classifies correctly, beside the study's own one."""
    if evidence.get("both_correct_num") is None:
        return
    num, den = _cube(evidence, "both_correct", claim["id"])
    if not np.all(np.isfinite(cs.per_seed_effects(num, den, evidence.get("x")))):
        return
    inf = _scaled(cs.two_way_inference(num, den, evidence.get("x"), level=level),
                  _scale(claim))
    row.update(effect_both_correct=inf.effect, lo_both_correct=inf.lo, hi_both_correct=inf.hi)


def judge(claim: Mapping[str, Any], evidence: Mapping[str, Any], *, seed: int = 0,
          level: float = cs.LEVEL, borrowed: Mapping[str, Any] | None = None,
          **_unused: Any) -> dict[str, Any]:
    """The verdict on one claim from its evidence (the module docstring's rules).

    Args:
        claim: a claim dict (validated here).
        evidence: the study's evidence dict (``status`` required; images_num cubes,
            per_seed, censored orders or rank_x/rank_y).
        seed: the permutation test's seed (rank claims).
        level: interval coverage.
        borrowed: {var, df, from}: a between-seed variance of this claim's per-seed effect
            (raw units) for a one-run row, from another row (:func:`judge_all`).

    Returns:
        a row dict with the columns ``COLUMNS`` + ``EXTRA_COLUMNS`` (effect, interval, SESOI,
        MDE and margin in display units: percentage points when the claim's unit is "%").
    """
    validate_claim(claim)
    cid = claim["id"]
    if not isinstance(evidence, Mapping):
        raise ValueError(f"claim {cid!r}: evidence must be a dict, got {type(evidence).__name__}")
    status = evidence.get("status")
    if status not in STATUSES:
        raise ValueError(f"claim {cid!r}: evidence key 'status' is {status!r}, not one of "
                         f"{', '.join(STATUSES)}")
    row = _base_row(claim, evidence)
    if status == "not_run":
        row["verdict"] = NOT_RUN
        row["reason"] = evidence.get("reason") or "the preset did not train these models"
        return row
    if status == "not_evaluable":
        row["verdict"] = NOT_EVALUABLE
        row["reason"] = evidence.get("reason") or "a model failed the validity gate"
        return row
    if evidence.get("censored"):
        return _censored(row, claim, evidence)
    if evidence.get("rank_x") is not None:
        return _rank(row, claim, evidence, seed, level)
    inf = _inference(claim, evidence, row, level, borrowed)
    if inf is None:
        return row
    scale = _scale(claim)
    inf = _scaled(inf, scale)
    row.update(effect=inf.effect, lo=inf.lo, hi=inf.hi, se=inf.se, df=inf.df,
               se_seed=inf.se_seed, se_image=inf.se_image, se_image_own=inf.se_image_own,
               seeds=inf.n_seeds)
    row["basis"] = (f"{inf.n_seeds} seeds" if inf.n_seeds >= 2 else
                    f"{ONE_RUN}, seed variance from {inf.borrowed}" if inf.borrowed else ONE_RUN)
    if not inf.se > 0:
        row["reason"] = "no variation across seeds or images: no interval"
        return row
    sesoi = row["sesoi"]
    j = _judgement(claim, inf, sesoi)
    row.update(verdict=j.verdict, reason=j.reason, mde=j.mde, power=j.power)
    if j is not cs.ONE_RUN_JUDGEMENT:  # one run's image-level p is no evidence: not in the family
        row["p"] = cs.decisive_p(claim["direction"], sesoi, inf, j.verdict, j.reason)
    if evidence.get("images_num") is not None:
        _mcnemar_gate(row, evidence, cid, level)
    _both_correct(row, claim, evidence, level)
    return row


def _borrowed(claim: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]]) -> dict | None:
    """The between-seed variance of the per-seed effect a claim borrows (claim key `borrow`:
    the id of a multi-seed row of the same study and metric), in raw units."""
    source = claim.get("borrow")
    if not source:
        return None
    r = rows.get(source)
    if r is None or r.get("seeds", 0) < 2 or not math.isfinite(r.get("se_seed", math.nan)):
        return None
    scale = _scale(claim)
    return {"var": (r["se_seed"] / scale) ** 2 * r["seeds"], "df": r["seeds"] - 1,
            "from": f"{source} ({r['seeds']} seeds)"}


def adjust_exploratory(rows: list[dict[str, Any]], level: float = cs.LEVEL) -> None:
    """Benjamini-Hochberg over each study's exploratory rows (the family: that study's
    exploratory rows with a p-value); a verdict whose q-value does not reach the one-sided
    (1 − level)/2 becomes inconclusive. Headline rows stay unadjusted.

    Args:
        rows: judged rows (:func:`judge`), changed in place (``q``, verdict, reason).
        level: the intervals' coverage.

    Returns:
        None.
    """
    alpha = (1 - level) / 2
    for study in dict.fromkeys(r["study"] for r in rows):
        family = [r for r in rows if r["study"] == study and r["headline"] == "exploratory"
                  and math.isfinite(r.get("p", math.nan))]
        if not family:
            continue
        q = cs.benjamini_hochberg([r["p"] for r in family])
        for r, qi in zip(family, q):
            r["q"] = float(qi)
            if r["verdict"] in (HOLDS, CONTRADICTED, EQUIVALENT) and not qi < alpha:
                r["reason"] = (f"{r['verdict']} before adjustment ({r['reason']}), but q = "
                               f"{qi:.3g} ≥ {alpha:g} after Benjamini-Hochberg over "
                               f"{len(family)} exploratory rows")
                r["verdict"] = INCONCLUSIVE


def judge_all(claims: Sequence[Mapping[str, Any]], evidences: Mapping[str, Mapping[str, Any]],
              **kw: Any) -> list[dict[str, Any]]:
    """Judge every claim, in the claims' order (a claim that borrows a seed variance after
    its source), then adjust each study's exploratory rows (:func:`adjust_exploratory`).

    Args:
        claims: the claim dicts (validated together: unique ids).
        evidences: claim id -> evidence dict; a claim without one is "inconclusive" ("no
            evidence returned"); an id that names no claim is an error (a typo would
            otherwise drop a verdict silently).
        **kw: passed to :func:`judge` (seed, level).

    Returns:
        the row dicts, one per claim.
    """
    validate_claims(claims)
    ids = {c["id"] for c in claims}
    unknown = sorted(set(evidences) - ids)
    if unknown:
        raise ValueError(f"evidence for unknown claim ids: {', '.join(unknown)}")
    done: dict[str, dict[str, Any]] = {}
    for claim in sorted(claims, key=lambda c: bool(c.get("borrow"))):
        ev = evidences.get(claim["id"])
        if ev is None:
            row = judge(claim, {"status": "ok"}, **kw)
            row["reason"] = "no evidence returned for this claim"
        else:
            row = judge(claim, ev, borrowed=_borrowed(claim, done), **kw)
        done[claim["id"]] = row
    rows = [done[c["id"]] for c in claims]
    adjust_exploratory(rows, kw.get("level", cs.LEVEL))
    return rows



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
    lines = [f"# {title}", "",
             "Generated by the workflow from the runs' results; every verdict below follows "
             "from the data by fixed rules (curvrobust.claims, curvrobust.claims_stats), not "
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
    studies = sorted({r["study"] for r in rows} | set(deviations), key=_study_order)
    for study in studies:
        these = [r for r in rows if r["study"] == study]
        these = ([r for r in these if r.get("headline") == "headline"]
                 + [r for r in these if r.get("headline") != "headline"])
        lines += [f"## {study}", ""]
        if these:
            lines += [verdict_counts(these), ""]
            lines += ["| claim | metric | study | ours | effect [95 % interval] | SESOI | MDE "
                      "| power | seeds/basis | verdict | flags |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in these:
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
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines.append("")
        else:
            lines += ["No claims.", ""]
        devs = list(deviations.get(study) or [])
        if devs:
            lines += ["### Deviations from the study", ""]
            lines += [f"- {d}" for d in devs]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


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
    from .utils import atomic_path  # imported here: utils pulls in torch, judging does not

    frame = claims_frame(rows)
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    text = claims_markdown(rows, deviations, title=title)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
