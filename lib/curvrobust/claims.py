"""The claims engine: from a claim (plain data, declared by a study's plan) and its evidence
(per-seed paired effects or one run's per-image outcomes, built by the study's report module)
to a verdict with an effect, a 95 % interval and the reason, and the tables
``results/claims.{csv,md}`` that list them.

The unit of replication is the training run. With two or more seeds the t-interval of the
per-seed paired effects decides; with one seed a seeded paired bootstrap over the shared test
images decides (labelled "one training run": it sees the images' noise, not the training's).
Directional claims hold or are contradicted by which side of 0 the interval lies on; "at
least as" claims hold when the lower bound exceeds −m; "no difference" claims are equivalent
when the interval lies inside ±m; trends use the slope against log₂ of the swept value.
Thresholds and margins come from the claim data, fixed before a run; nothing here is tuned to
an outcome.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .claims_stats import arm_values

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
    "measure": (str,), "args": (dict,),
}

# the columns of claims.csv, in order (the spec's); extra claim facts follow them
COLUMNS = ["study", "id", "headline", "ours", "claim", "where", "metric", "comparison",
           "study_value", "ours_value", "effect", "lo", "hi", "seeds", "basis", "verdict",
           "reason", "flags"]
EXTRA_COLUMNS = ["direction", "margin", "unit", "worst_case"]

LEGEND = {
    HOLDS: "the 95 % interval of the effect lies on the asserted side of 0 (for \"at least "
           "as\" claims: above −m)",
    CONTRADICTED: "the interval lies entirely on the other side (\"at least as\": below −m; "
                  "\"no difference\": entirely outside ±m)",
    EQUIVALENT: "a \"no difference\" claim whose interval lies inside ±m",
    INCONCLUSIVE: "the interval crosses the boundary, or no interval could be formed",
    NOT_EVALUABLE: "a model the claim needs failed the validity gate (the reason says which)",
    NOT_RUN: "the preset did not train the models the claim needs",
}

BOOT_CHUNK = 256          # bootstrap replicates drawn per block (bounds memory, not results)
MIN_FINITE_BOOT = 0.95    # share of defined bootstrap replicates needed for an interval
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


# --------------------------------------------------------------------------- effects

def slope_log2(x: Sequence[float], y: Any) -> np.ndarray | float:
    """OLS slope of y against log₂ x: the change per doubling of the swept value.

    Args:
        x: the k swept values (> 0).
        y: (k,) values, or (..., k) to get one slope per leading index (bootstrap replicates).

    Returns:
        the slope (float), or an array of slopes of shape y.shape[:-1].
    """
    t = np.log2(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float)
    tc = t - t.mean()
    slope = (y - y.mean(axis=-1, keepdims=True)) @ tc / (tc @ tc)
    return float(slope) if np.ndim(slope) == 0 else slope


def _effect_of_arms(values: np.ndarray, x: Sequence[float] | None) -> np.ndarray | float:
    """arm0 − arm1 (pairwise) or the slope against log₂ x (trend); values (..., k)."""
    if x is None:
        out = values[..., 0] - values[..., 1]
    else:
        out = slope_log2(x, values)
    return float(out) if np.ndim(out) == 0 else out


def _check_images(num: Any, den: Any, x: Sequence[float] | None,
                  where: str = "evidence") -> tuple[np.ndarray, np.ndarray | None]:
    """Per-image arrays as float (n, k) with the shapes the spec asks for, else ValueError."""
    num = np.asarray(num, dtype=float)
    if num.ndim != 2 or num.shape[0] < 1 or num.shape[1] < 2:
        raise ValueError(f"{where}: key 'images_num' must be (n images, k >= 2 arms), "
                         f"got shape {num.shape}")
    if den is not None:
        den = np.asarray(den, dtype=float)
        if den.shape != num.shape:
            raise ValueError(f"{where}: key 'images_den' has shape {den.shape}, "
                             f"images_num {num.shape}")
    if x is None:
        if num.shape[1] != 2:
            raise ValueError(f"{where}: key 'x' is needed for {num.shape[1]} arms "
                             "(a pairwise effect takes exactly 2)")
    else:
        xs = np.asarray(x, dtype=float)
        if xs.shape != (num.shape[1],) or not np.all(xs > 0):
            raise ValueError(f"{where}: key 'x' must hold {num.shape[1]} positive values, "
                             f"got {list(x)}")
        if np.unique(xs).size < 2:
            raise ValueError(f"{where}: key 'x' needs two distinct values for a slope")
    return num, den


def images_effect(num: Any, den: Any = None, x: Sequence[float] | None = None) -> float:
    """The effect of one training run from its per-image rows.

    Args:
        num: (n, k) per-image numerators of the k arms, rows paired.
        den: same-shape denominators, or None (arm value = mean).
        x: the k swept values for a trend, or None for a pairwise effect (k = 2).

    Returns:
        arm0 − arm1, or the OLS slope of the arm values against log₂ x.
    """
    num, den = _check_images(num, den, x)
    return _effect_of_arms(arm_values(num, den), x)


def paired_bootstrap(num: Any, den: Any = None, x: Sequence[float] | None = None, *,
                     n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of :func:`images_effect`, resampling whole image rows so the arms
    stay paired (the same images in every arm); seeded, so a rerun gives the same interval.

    Args:
        num: (n, k) per-image numerators; den: same shape or None; x: swept values or None.
        n_boot: number of replicates.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        (n_boot,) array of effects (nan where a replicate's denominator sums to 0).
    """
    num, den = _check_images(num, den, x)
    n, k = num.shape
    rng = np.random.default_rng(seed)
    out = np.empty(int(n_boot))
    for start in range(0, int(n_boot), BOOT_CHUNK):
        b = min(BOOT_CHUNK, int(n_boot) - start)
        idx = rng.integers(0, n, size=(b, n))
        # how often each image is drawn in each replicate; sums are then one matrix product
        counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(),
                             minlength=b * n).reshape(b, n).astype(float)
        top = counts @ num
        if den is None:
            values = top / n
        else:
            bottom = counts @ den
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(bottom != 0, top / np.where(bottom != 0, bottom, 1.0), np.nan)
        out[start:start + b] = _effect_of_arms(values, x)
    return out


def percentile_interval(replicates: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (non-finite ones left out).

    Args:
        replicates: the bootstrap effects.
        level: coverage, e.g. 0.95.

    Returns:
        (lo, hi); (nan, nan) when no replicate is finite.
    """
    r = np.asarray(list(replicates), dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def t_interval(effects: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of per-seed effects: mean ± t_{(1+level)/2, n−1}·s/√n.

    Args:
        effects: the per-seed paired effects (at least 2).
        level: coverage, e.g. 0.95.

    Returns:
        (mean, lo, hi); lo = hi = mean when every effect is the same.
    """
    v = np.asarray(list(effects), dtype=float)
    if v.size < 2:
        raise ValueError(f"a t-interval needs at least 2 per-seed effects, got {v.size}")
    mean = float(v.mean())
    s = float(v.std(ddof=1))
    if s == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + level) / 2, v.size - 1)) * s / math.sqrt(v.size)
    return mean, mean - half, mean + half


def decide(direction: str, margin: float, lo: float, hi: float) -> str:
    """The verdict an interval gives for a direction (the spec's rules, nothing tuned).

    Args:
        direction: one of ``DIRECTIONS``.
        margin: m for "at_least" (A − B > −m) and "equivalent" (|A − B| < m).
        lo, hi: the interval of the effect (same units as the margin).

    Returns:
        "holds", "contradicted", "equivalent" or "inconclusive".
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if direction in ("less", "decreasing"):
        return HOLDS if hi < 0 else CONTRADICTED if lo > 0 else INCONCLUSIVE
    if direction in ("greater", "increasing"):
        return HOLDS if lo > 0 else CONTRADICTED if hi < 0 else INCONCLUSIVE
    if direction == "at_least":
        return HOLDS if lo > -margin else CONTRADICTED if hi < -margin else INCONCLUSIVE
    if direction == "equivalent":
        if -margin < lo and hi < margin:
            return EQUIVALENT
        return CONTRADICTED if (lo > margin or hi < -margin) else INCONCLUSIVE
    raise ValueError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")


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


def _fmt_margin(margin: float) -> str:
    """A margin as declared: '3.0', '0.5', '0.02' (never rounded away)."""
    margin = round(float(margin), 9)  # 0.07 × 100 is 7.000000000000001
    text = f"{margin:.1f}" if margin.is_integer() else f"{margin:g}"
    return text.replace("-", MINUS)


def _reason(verdict: str, direction: str, margin: float, effect: float, lo: float, hi: float,
            level: float) -> str:
    """Why an interval gives its verdict, in display units (the effect cell's precision)."""
    d = _decimals(effect, lo, hi)
    iv = f"{_level_text(level)} interval [{fmt_number(lo, d)}, {fmt_number(hi, d)}]"
    m = _fmt_margin(margin)
    if direction in ("less", "greater", "decreasing", "increasing"):
        what = "slope per doubling: " if direction in TREND_DIRECTIONS else ""
        if lo > 0:
            return f"{what}{iv} lies above 0"
        if hi < 0:
            return f"{what}{iv} lies below 0"
        return f"{what}{iv} crosses 0"
    if direction == "at_least":
        if lo > -margin:
            return f"{iv} lies above {MINUS}{m} ({MINUS}margin)"
        if hi < -margin:
            return f"{iv} lies below {MINUS}{m} ({MINUS}margin)"
        return f"{iv} crosses {MINUS}{m} ({MINUS}margin)"
    # equivalent
    if verdict == EQUIVALENT:
        return f"{iv} lies inside ±{m}"
    if verdict == CONTRADICTED:
        return f"{iv} lies outside ±{m}"
    return f"{iv} is not inside ±{m}"


# --------------------------------------------------------------------------- judging

def _base_row(claim: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, Any]:
    scale = 100.0 if claim["unit"] == "%" else 1.0
    return {
        "study": claim["study"], "id": claim["id"],
        "headline": "headline" if claim["headline"] else "exploratory",
        "ours": bool(claim["ours"]), "claim": claim["text"], "where": claim["where"],
        "metric": claim["metric"], "comparison": claim["comparison"],
        "study_value": claim["study_value"], "ours_value": str(evidence.get("ours", "") or ""),
        "effect": math.nan, "lo": math.nan, "hi": math.nan, "seeds": 0, "basis": "",
        "verdict": INCONCLUSIVE, "reason": "",
        "flags": join_flags(evidence.get("flags") or []),
        "direction": claim["direction"], "margin": round(float(claim["margin"]) * scale, 12),
        "unit": claim["unit"], "worst_case": bool(claim["worst_case"]),
    }


def _censored(row: dict[str, Any], evidence: Mapping[str, Any], scale: float) -> dict:
    """Study 003's rule when some run never crossed: every seed must order the arms."""
    orders = evidence.get("orders") or {}
    seeds = _sorted_seeds(orders)
    row["seeds"] = len(seeds)
    row["basis"] = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}, censored"
    if "effect" in evidence and evidence["effect"] is not None:
        row["effect"] = float(evidence["effect"]) * scale
    if not seeds:
        row["verdict"], row["reason"] = INCONCLUSIVE, "censored, and no seed's order given"
        return row
    values = {s: int(orders[s]) for s in seeds}
    bad = [s for s in seeds if values[s] not in (1, -1, 0)]
    if bad:
        raise ValueError(f"claim {row['id']!r}: key 'orders' must be 1, -1 or 0 per seed, "
                         f"got {[orders[s] for s in bad]}")
    plural = "seeds" if len(seeds) > 1 else "seed"
    if all(v == 1 for v in values.values()):
        row["verdict"] = HOLDS
        row["reason"] = f"censored: {plural} {_seed_list(seeds)} all order the arms as asserted"
    elif all(v == -1 for v in values.values()):
        row["verdict"] = CONTRADICTED
        row["reason"] = (f"censored: {plural} {_seed_list(seeds)} all order the arms "
                         "opposite to the assertion")
    else:
        parts = []
        for v, word in ((1, "as asserted"), (-1, "opposite"), (0, "neither way")):
            these = [s for s in seeds if values[s] == v]
            if these:
                parts.append(f"{'seeds' if len(these) > 1 else 'seed'} "
                             f"{_seed_list(these)} {word}")
        row["verdict"] = INCONCLUSIVE
        row["reason"] = "censored, seeds disagree: " + "; ".join(parts)
    return row


def judge(claim: Mapping[str, Any], evidence: Mapping[str, Any], *, n_boot: int = 2000,
          seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """The verdict on one claim from its evidence: effect, interval, basis and reason.

    ≥ 2 seeds in ``per_seed``: the t-interval of the per-seed effects. Otherwise one training
    run with per-image rows (``images_num``/``images_den``, ``x``) or precomputed
    ``bootstrap`` replicates: the percentile interval of a seeded paired bootstrap. Otherwise
    no interval, "inconclusive". ``censored`` evidence is judged by the per-seed ``orders``.

    Args:
        claim: a claim dict (validated here).
        evidence: the study's evidence dict for it (``status`` required; see the spec).
        n_boot: bootstrap replicates for per-image evidence.
        seed: the bootstrap's seed (the same for every claim: reruns give the same interval).
        level: interval coverage.

    Returns:
        a row dict with the columns ``COLUMNS`` + ``EXTRA_COLUMNS`` (effect, lo, hi and margin
        in display units: percentage points when the claim's unit is "%").
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
    scale = 100.0 if claim["unit"] == "%" else 1.0
    per_seed = evidence.get("per_seed") or {}
    if status == "not_run":
        row["verdict"] = NOT_RUN
        row["reason"] = evidence.get("reason") or "the preset did not train these models"
        return row
    if status == "not_evaluable":
        row["verdict"] = NOT_EVALUABLE
        row["reason"] = evidence.get("reason") or "a model failed the validity gate"
        row["seeds"] = len(per_seed)
        return row
    if evidence.get("censored"):
        return _censored(row, evidence, scale)

    direction, margin = claim["direction"], float(claim["margin"])
    seeds = _sorted_seeds(per_seed)
    row["seeds"] = len(seeds)
    effect = lo = hi = math.nan
    if len(seeds) >= 2:
        values = np.array([float(per_seed[s]) if per_seed[s] is not None else math.nan
                           for s in seeds])
        row["basis"] = f"{len(seeds)} seeds"
        undefined = [s for s, v in zip(seeds, values) if not math.isfinite(v)]
        if undefined:
            row["reason"] = f"effect undefined for seed {_seed_list(undefined)}: no interval"
            if len(undefined) < len(seeds):
                row["effect"] = float(np.nanmean(values)) * scale
            return row
        effect, lo, hi = t_interval(values, level)
    else:
        boot = evidence.get("bootstrap")
        has_images = evidence.get("images_num") is not None
        if boot is not None or has_images:
            row["seeds"] = max(len(seeds), 1)
            row["basis"] = "one training run"
            if boot is not None:
                if evidence.get("effect") is None:
                    raise ValueError(f"claim {cid!r}: evidence key 'effect' is required "
                                     "with 'bootstrap'")
                effect = float(evidence["effect"])
                reps = np.asarray(boot, dtype=float)
            else:
                num, den = _check_images(evidence["images_num"], evidence.get("images_den"),
                                         evidence.get("x"), where=f"claim {cid!r}")
                effect = _effect_of_arms(arm_values(num, den), evidence.get("x"))
                reps = (paired_bootstrap(num, den, evidence.get("x"), n_boot=n_boot, seed=seed)
                        if math.isfinite(effect) else np.array([]))
            if not math.isfinite(effect):
                row["reason"] = "effect undefined (nan): no interval"
                return row
            finite = np.isfinite(reps)
            if reps.size == 0 or finite.mean() < MIN_FINITE_BOOT:
                row["effect"] = effect * scale
                row["reason"] = (f"bootstrap: {int(finite.sum())} of {reps.size} replicates "
                                 "defined: no interval")
                return row
            lo, hi = percentile_interval(reps[finite], level)
        else:
            if len(seeds) == 1:
                effect = float(per_seed[seeds[0]]) if per_seed[seeds[0]] is not None else math.nan
                row["basis"] = "one training run"
                row["reason"] = "no interval: one seed and no per-image data"
            elif evidence.get("effect") is not None:
                effect = float(evidence["effect"])
                row["reason"] = "no interval: an effect without seeds or per-image data"
            else:
                row["reason"] = "no interval: no per-seed effects and no per-image data"
            row["effect"] = effect * scale
            return row

    row["effect"], row["lo"], row["hi"] = effect * scale, lo * scale, hi * scale
    row["verdict"] = decide(direction, margin * scale, row["lo"], row["hi"])
    row["reason"] = _reason(row["verdict"], direction, margin * scale, row["effect"],
                            row["lo"], row["hi"], level)
    return row


def judge_all(claims: Sequence[Mapping[str, Any]], evidences: Mapping[str, Mapping[str, Any]],
              **kw: Any) -> list[dict[str, Any]]:
    """Judge every claim, in the claims' order.

    Args:
        claims: the claim dicts (validated together: unique ids).
        evidences: claim id -> evidence dict; a claim without one is "inconclusive" ("no
            evidence returned"); an id that names no claim is an error (a typo would
            otherwise drop a verdict silently).
        **kw: passed to :func:`judge` (n_boot, seed, level).

    Returns:
        the row dicts, one per claim.
    """
    validate_claims(claims)
    ids = {c["id"] for c in claims}
    unknown = sorted(set(evidences) - ids)
    if unknown:
        raise ValueError(f"evidence for unknown claim ids: {', '.join(unknown)}")
    rows = []
    for claim in claims:
        ev = evidences.get(claim["id"])
        if ev is None:
            row = judge(claim, {"status": "ok"}, **kw)
            row["reason"] = "no evidence returned for this claim"
        else:
            row = judge(claim, ev, **kw)
        rows.append(row)
    return rows


def claims_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a table: the spec's columns in order, then direction, margin, unit and
    worst_case.

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
    text = fmt_interval(effect, lo, hi)
    return text + (" pp" if row.get("unit") == "%" else "")


def claims_markdown(rows: Sequence[Mapping[str, Any]],
                    deviations: Mapping[str, Sequence[str]] | None = None,
                    title: str = "Claims and verdicts") -> str:
    """``claims.md``: a legend, then per study its claims (headline first) as a table and
    the deviations of our runs from the study.

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
             "from the data by fixed rules (curvrobust.claims), not by hand.", "",
             "Verdicts:", ""]
    lines += [f"- **{v}**: {LEGEND[v]}." for v in VERDICTS]
    lines += ["",
              "Effect: the paired difference A − B of the comparison (for trends: the slope "
              "against log₂ of the swept value), with its 95 % interval; pp: percentage "
              "points. Basis: \"N seeds\" — t-interval of the per-seed paired effects (same "
              "seed, initial weights and batch order); \"one training run\" — seeded paired "
              "bootstrap over the shared test images, which does not see the training's "
              "variation. Headline: the study's headline claim (≥ 3 seeds in the default run); "
              "exploratory: the others. Flags: failed gradient-masking checks (the verdict is "
              "kept).", ""]
    studies = sorted({r["study"] for r in rows} | set(deviations), key=_study_order)
    for study in studies:
        these = [r for r in rows if r["study"] == study]
        these = ([r for r in these if r.get("headline") == "headline"]
                 + [r for r in these if r.get("headline") != "headline"])
        lines += [f"## {study}", ""]
        if these:
            counts: dict[str, int] = {}
            for r in these:
                counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
            lines += [", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts) + ".", ""]
            lines += ["| claim | metric | study | ours | effect [95 % interval] | seeds/basis "
                      "| verdict | flags |",
                      "|---|---|---|---|---|---|---|---|"]
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
                basis = r.get("basis") or ("–" if not r.get("seeds") else f"{r['seeds']} seeds")
                cells = [claim, r.get("metric"), r.get("study_value") or "–",
                         r.get("ours_value") or "–", _effect_cell(r), basis, verdict,
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
