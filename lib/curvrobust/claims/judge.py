"""The claims engine: from a claim (plain data, declared by a study's plan) and its evidence
(per-seed, per-image values on test images every seed shares, built by the study's report
module) to a verdict with an effect, a 95 % interval, the reason and what the design could
detect, and the tables ``results/claims.{csv,md}`` that list them.

The unit of replication is the training run; the statistics are in :mod:`.stats`.
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
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from curvrobust.claims import stats as cs
from curvrobust.claims.evidence import (Absent, Censored, Evidence, PerImage, PerSeed,
                                        RankCorrelation, from_mapping)
from curvrobust.claims.render import join_flags
from curvrobust.claims.spec import (CONTRADICTED, EQUIVALENT, HOLDS, INCONCLUSIVE,
                                    NOT_EVALUABLE, NOT_RUN, Claim, read_claims)

MIN_CENSORED_SEEDS = 3    # the censored order rule decides only from this many seeds
ONE_RUN = "one training run"
Row = dict[str, Any]


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


def _base_row(claim: Claim, evidence: Evidence) -> Row:
    scale = claim.scale
    return {
        "study": claim.study, "id": claim.id,
        "headline": "headline" if claim.headline else "exploratory",
        "ours": bool(claim.ours), "claim": claim.text, "where": claim.where,
        "metric": claim.metric, "comparison": claim.comparison,
        "study_value": claim.study_value, "ours_value": evidence.ours,
        "effect": math.nan, "lo": math.nan, "hi": math.nan,
        "sesoi": round(float(claim.sesoi) * scale, 12), "mde": math.nan, "power": math.nan,
        "seeds": 0, "basis": "", "verdict": INCONCLUSIVE, "reason": "",
        "flags": join_flags(evidence.flags),
        "direction": claim.direction, "margin": round(float(claim.margin) * scale, 12),
        "unit": claim.unit, "worst_case": bool(claim.worst_case),
        "se": math.nan, "df": math.nan, "se_seed": math.nan, "se_image": math.nan,
        "se_image_own": math.nan,
        "images": 0, "p": math.nan, "q": math.nan, "effect_both_correct": math.nan,
        "lo_both_correct": math.nan, "hi_both_correct": math.nan,
        "sesoi_source": claim.sesoi_source,
    }


def _asserted_sign(direction: str) -> int:
    return 1 if direction in ("greater", "increasing") else -1


# ---- one function per kind of evidence ----

def _judge_absent(row: Row, claim: Claim, ev: Absent, **_: Any) -> Row:
    """Nothing to judge: the preset did not train the models, or one failed its gate."""
    if ev.status == "not_run":
        row["verdict"] = NOT_RUN
        row["reason"] = ev.reason or "the preset did not train these models"
    else:
        row["verdict"] = NOT_EVALUABLE
        row["reason"] = ev.reason or "a model failed the validity gate"
    return row


def _judge_censored(row: Row, claim: Claim, ev: Censored, **_: Any) -> Row:
    """Study 003's rule when some run never crossed: each seed's order of the arms (+1: the
    values increase along the sweep, −1: decrease, 0: neither) against the claim's direction;
    holds (contradicted) when at least MIN_CENSORED_SEEDS seeds all order them as asserted
    (opposite)."""
    orders = ev.orders
    seeds = _sorted_seeds(orders)
    row["seeds"] = len(seeds)
    row["basis"] = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}, censored"
    if ev.effect is not None:
        row["effect"] = float(ev.effect) * claim.scale
    values = {s: int(orders[s]) for s in seeds}
    bad = [s for s in seeds if values[s] not in (1, -1, 0)]
    if bad:
        raise ValueError(f"claim {row['id']!r}: key 'orders' must be 1, -1 or 0 per seed, "
                         f"got {[orders[s] for s in bad]}")
    asserted = _asserted_sign(claim.direction)
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


def _judge_rank(row: Row, claim: Claim, ev: RankCorrelation, *, seed: int, level: float,
                **_: Any) -> Row:
    """A rank correlation across models (seed-averaged values): permutation test, or not
    evaluable below claims.stats.MIN_RANK_MODELS models."""
    x, y = ev.rank_x, ev.rank_y
    verdict, reason, rho, p = cs.rank_judgement(claim.direction, x, y, level=level, seed=seed)
    row.update(effect=rho * claim.scale, verdict=verdict, reason=reason,
               basis=f"{len(x)} models, {ev.seeds_text}",
               seeds=int(ev.n_seeds), p=p / 2 if math.isfinite(p) else p)
    return row


def _judge_per_image(row: Row, claim: Claim, ev: PerImage, *, level: float,
                     borrowed: Mapping[str, Any] | None = None, **_: Any) -> Row:
    """The two-way interval over seeds and the shared images; for paired 0/1 outcomes also the
    exact McNemar gate; beside it, the rate on the images every arm classifies correctly."""
    num, den = _cube(ev.num, ev.den, ev.x, claim.id, "images")
    row["seeds"], row["images"] = num.shape[0], num.shape[1]
    kw = {}
    if num.shape[0] == 1 and borrowed:
        kw = dict(borrowed_var=borrowed["var"], borrowed_df=borrowed["df"],
                  borrowed_from=borrowed["from"])
    effects = cs.per_seed_effects(num, den, ev.x)
    if not np.all(np.isfinite(effects)):
        row["reason"] = "effect undefined (an arm with no image in its denominator)"
        return row
    inf = cs.two_way_inference(num, den, ev.x, level=level, **kw)
    if not _interval_verdict(row, claim, inf):
        return row
    _mcnemar_gate(row, num, den, ev.x, level)
    _both_correct(row, claim, ev, level)
    return row


def _judge_per_seed(row: Row, claim: Claim, ev: PerSeed, *, level: float, **_: Any) -> Row:
    """The t interval over seeds' effects; one seed, or an effect alone, has no interval."""
    seeds = _sorted_seeds(ev.per_seed)
    row["seeds"] = len(seeds)
    values = np.array([math.nan if ev.per_seed[s] is None else float(ev.per_seed[s])
                       for s in seeds])
    undefined = [s for s, v in zip(seeds, values) if not math.isfinite(v)]
    if undefined:
        row["reason"] = f"effect undefined for seed {_seed_list(undefined)}: no interval"
        if len(undefined) < len(seeds):
            row["effect"] = float(np.nanmean(values)) * claim.scale
        return row
    if len(seeds) >= 2:
        inf = cs.seed_inference(values, level)
        if inf is None:
            row["effect"] = float(values.mean()) * claim.scale
            row["reason"] = (f"the {len(seeds)} seeds give the same effect and no per-image "
                             "data exist: no error estimate, no interval")
            return row
        _interval_verdict(row, claim, inf)
    elif len(seeds) == 1:
        row["effect"] = float(values[0]) * claim.scale
        row["basis"] = ONE_RUN
        row["reason"] = f"{ONE_RUN}, and no per-image data: no interval"
    elif ev.effect is not None:
        row["effect"] = float(ev.effect) * claim.scale
        row["reason"] = "no interval: an effect without seeds or per-image data"
    else:
        row["reason"] = "no interval: no per-seed effects and no per-image data"
    return row


JUDGES: dict[type, Callable[..., Row]] = {
    Absent: _judge_absent, Censored: _judge_censored, RankCorrelation: _judge_rank,
    PerImage: _judge_per_image, PerSeed: _judge_per_seed,
}


# ---- from an interval to a verdict ----

def _scaled(inf: cs.Inference, scale: float) -> cs.Inference:
    return dataclasses.replace(
        inf, effect=inf.effect * scale, se=inf.se * scale, lo=inf.lo * scale,
        hi=inf.hi * scale, se_seed=inf.se_seed * scale, se_image=inf.se_image * scale,
        se_image_own=inf.se_image_own * scale)


def _cube(num: Any, den: Any, x: Any, cid: str, prefix: str):
    """(S, n, k) numerators, denominators (or None); a (n, k) array is one seed."""
    num = np.asarray(num, dtype=float)
    den = None if den is None else np.asarray(den, dtype=float)
    if num.ndim == 2:
        num = num[None]
        den = None if den is None else den[None]
    try:
        cs.as_cube(num, den)
        cs.contrast_weights(num.shape[-1], x)
    except ValueError as e:
        raise ValueError(f"claim {cid!r}: evidence key '{prefix}_num': {e}") from None
    return num, den


def _judgement(claim: Claim, inf: cs.Inference, sesoi: float) -> cs.Judgement:
    if claim.direction == "equivalent":
        return cs.judge_equivalent(sesoi, inf)
    if claim.direction == "at_least":
        return cs.judge_at_least(sesoi, inf)
    return cs.judge_directional(claim.direction, sesoi, inf)


def _interval_verdict(row: Row, claim: Claim, inf: cs.Inference) -> bool:
    """Fill the row from the effect's interval (display units) and judge it against the
    SESOI; False when there is no variation to judge from."""
    inf = _scaled(inf, claim.scale)
    row.update(effect=inf.effect, lo=inf.lo, hi=inf.hi, se=inf.se, df=inf.df,
               se_seed=inf.se_seed, se_image=inf.se_image, se_image_own=inf.se_image_own,
               seeds=inf.n_seeds)
    row["basis"] = (f"{inf.n_seeds} seeds" if inf.n_seeds >= 2 else
                    f"{ONE_RUN}, seed variance from {inf.borrowed}" if inf.borrowed else ONE_RUN)
    if not inf.se > 0:
        row["reason"] = "no variation across seeds or images: no interval"
        return False
    sesoi = row["sesoi"]
    j = _judgement(claim, inf, sesoi)
    row.update(verdict=j.verdict, reason=j.reason, mde=j.mde, power=j.power)
    if j is not cs.ONE_RUN_JUDGEMENT:  # one run's image-level p is no evidence: not in the family
        row["p"] = cs.decisive_p(claim.direction, sesoi, inf, j.verdict, j.reason)
    return True


def _mcnemar_gate(row: Row, num: np.ndarray, den: np.ndarray | None, x: Any,
                  level: float) -> None:
    """Paired 0/1 outcomes (pooled over seeds): a verdict on a side of 0 also needs the exact
    McNemar test at 1 − level, so a handful of discordant images cannot decide."""
    if row["verdict"] not in (HOLDS, CONTRADICTED) or x is not None:
        return
    if row["reason"].startswith("no effect as large"):
        return
    counts = cs.discordant_counts(num, den)
    if counts is None:
        return
    p = cs.mcnemar_exact(*counts)
    if p >= 1 - level:
        row["reason"] = (f"exact McNemar p = {p:.3g} ({counts[0]} vs {counts[1]} discordant "
                         f"images): too few to decide, though the interval is "
                         f"{'on the asserted side' if row['verdict'] == HOLDS else 'opposite'}")
        row["verdict"] = INCONCLUSIVE


def _both_correct(row: Row, claim: Claim, ev: PerImage, level: float) -> None:
    """The rate on the images every arm classifies correctly, beside the study's own one."""
    if ev.both_correct_num is None:
        return
    num, den = _cube(ev.both_correct_num, ev.both_correct_den, ev.x, claim.id, "both_correct")
    if not np.all(np.isfinite(cs.per_seed_effects(num, den, ev.x))):
        return
    inf = _scaled(cs.two_way_inference(num, den, ev.x, level=level), claim.scale)
    row.update(effect_both_correct=inf.effect, lo_both_correct=inf.lo, hi_both_correct=inf.hi)


# ---- claims ----

def judge(claim: Mapping[str, Any] | Claim, evidence: Mapping[str, Any] | Evidence, *,
          seed: int = 0, level: float = cs.LEVEL, borrowed: Mapping[str, Any] | None = None,
          **_unused: Any) -> Row:
    """The verdict on one claim from its evidence (the module docstring's rules), by the
    function for its kind of evidence (:data:`JUDGES`).

    Args:
        claim: a :class:`~curvrobust.claims.spec.Claim` or its dict (checked here).
        evidence: an :class:`~curvrobust.claims.evidence.Evidence` or its dict
            (:func:`~curvrobust.claims.evidence.from_mapping`).
        seed: the permutation test's seed (rank claims).
        level: interval coverage.
        borrowed: {var, df, from}: a between-seed variance of this claim's per-seed effect
            (raw units) for a one-run row, from another row (:func:`judge_all`).

    Returns:
        a row dict with the columns ``COLUMNS`` + ``EXTRA_COLUMNS`` of
        :mod:`~curvrobust.claims.render` (effect, interval, SESOI, MDE and margin in display
        units: percentage points when the claim's unit is "%").

    Examples:
        A claim that arm A is attacked less often than arm B by at least 5 points (SESOI),
        judged on three seeds' differences of success rates (A − B, as fractions):

        >>> from curvrobust.claims.judge import judge
        >>> claim = dict(id="000-demo", study="study000", text="A is attacked less often than B",
        ...              where="§3", metric="FGSM success rate", comparison="A − B, same seed",
        ...              direction="less", margin=0.0, unit="%", headline=False, ours=False,
        ...              worst_case=False, study_value="", measure="fgsm", args={"eps": 0.1},
        ...              sesoi=0.05, sesoi_source="a clear decrease")
        >>> row = judge(claim, {"status": "ok", "per_seed": {42: -0.20, 43: -0.22, 44: -0.21}})
        >>> row["verdict"], round(row["effect"], 1), round(row["lo"], 1), round(row["hi"], 1)
        ('holds', -21.0, -23.5, -18.5)
        >>> judge(claim, {"status": "ok", "per_seed": {42: -0.20, 43: 0.1, 44: -0.21}})["verdict"]
        'inconclusive'
    """
    claim = claim if isinstance(claim, Claim) else Claim.from_mapping(claim)
    ev = from_mapping(evidence, claim.id)
    row = _base_row(claim, ev)
    return JUDGES[type(ev)](row, claim, ev, seed=seed, level=level, borrowed=borrowed)


def _borrowed(claim: Claim, rows: Mapping[str, Mapping[str, Any]]) -> dict | None:
    """The between-seed variance of the per-seed effect a claim borrows (claim key `borrow`:
    the id of a multi-seed row of the same study and metric), in raw units."""
    source = claim.borrow
    if not source:
        return None
    r = rows.get(source)
    if r is None or r.get("seeds", 0) < 2 or not math.isfinite(r.get("se_seed", math.nan)):
        return None
    scale = claim.scale
    return {"var": (r["se_seed"] / scale) ** 2 * r["seeds"], "df": r["seeds"] - 1,
            "from": f"{source} ({r['seeds']} seeds)"}


def adjust_exploratory(rows: list[Row], level: float = cs.LEVEL) -> None:
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


def judge_all(claims: Sequence[Mapping[str, Any] | Claim],
              evidences: Mapping[str, Mapping[str, Any] | Evidence], **kw: Any) -> list[Row]:
    """Judge every claim, in the claims' order (a claim that borrows a seed variance after
    its source), then adjust each study's exploratory rows (:func:`adjust_exploratory`).

    Args:
        claims: the claims or their dicts (checked together: unique ids).
        evidences: claim id -> evidence; a claim without one is "inconclusive" ("no evidence
            returned"); an id that names no claim is an error (a typo would otherwise drop a
            verdict silently).
        **kw: passed to :func:`judge` (seed, level).

    Returns:
        the row dicts, one per claim.
    """
    claims = read_claims(claims)
    ids = {c.id for c in claims}
    unknown = sorted(set(evidences) - ids)
    if unknown:
        raise ValueError(f"evidence for unknown claim ids: {', '.join(unknown)}")
    done: dict[str, Row] = {}
    for claim in sorted(claims, key=lambda c: bool(c.borrow)):
        ev = evidences.get(claim.id)
        if ev is None:
            row = judge(claim, PerSeed(), **kw)
            row["reason"] = "no evidence returned for this claim"
        else:
            row = judge(claim, ev, borrowed=_borrowed(claim, done), **kw)
        done[claim.id] = row
    rows = [done[c.id] for c in claims]
    adjust_exploratory(rows, kw.get("level", cs.LEVEL))
    return rows
