"""The claims engine's statistics: intervals that cover seeds *and* test images, power, the
smallest detectable effect, exact tests for few discordant images or few models, and the
false-discovery adjustment of a study's exploratory rows.

A claim's effect is a fixed linear contrast of arm values (A − B, or the OLS slope against
log₂ of a swept value), each arm value a ratio of sums over the test images (successes among
correctly classified images) or a mean, per training run (seed). Every seed is scored on the
same test images, so the effect's error has two parts:

- between seeds: the sample variance s² of the per-seed effects, over S seeds;
- between images: the delta-method (linearisation) variance of the seed-averaged effect with
  the seeds held fixed, over the n shared images. Resampling the images is what a new test
  set would do; s² cannot see it, because every seed shares the same images.

Each seed's effect also carries its own image noise (the models err on different images), and
s² already holds it; only the image noise the seeds share is missing from s²/S. So SE² = s²/S +
V_b, V_b the shared part of the image variance (method of moments, :func:`shared_image_var`:
the single-seed image variances exceed the seed-averaged one by the seed-specific part), and
SE² never falls below SE²_img, the image error with the seeds held fixed, so identical
per-seed effects cannot give a point interval. The t quantile takes the seed variance's degrees
of freedom, S − 1 (Satterthwaite's, computed from the *estimated* parts, grow large exactly
when the few seeds agree by chance: "holds" at 2.9 % at no effect in the 3-seed simulation).
In the simulated design of tests/test_claims_stats.py (3 seeds, 400 images, 4,000 draws) "holds"
comes out at 0.8 % and wrong-side "contradicted" at 1.0 % at no effect, and "holds" at 80.5 %
at the MDE. With one seed, s² is unknown: the row is "one training run" unless a between-seed
variance is borrowed (with its own degrees of freedom) from multi-seed rows of the same metric.

The exact tests and the false-discovery adjustment are scipy's (`binomtest`, `spearmanr` with
`permutation_test`, `false_discovery_control`); this module only chooses and wraps them.

Power at the smallest effect of interest (SESOI) is the probability that the interval lies
on the asserted side of 0 when the true effect equals the SESOI; below 80 % the design is
underpowered for the claim. The minimum detectable effect (MDE) is the true effect at which the
verdict rule "holds" (interval on the asserted side of 0 and estimate at least the SESOI) has
80 % probability. Both treat ŜE as estimated from S − 1 degrees of freedom on its seed part
only (the expectation over that part's χ², :func:`holds_probability`): the noncentral t when
the seeds carry all of SE², the normal when the images do.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import optimize, stats

LEVEL = 0.95            # coverage of every interval (two-sided): one-sided α/2 = 2.5 % a side
POWER = 0.80            # the power the MDE is defined at
MIN_RANK_MODELS = 5     # a rank correlation over fewer models cannot reach p < 0.05 two-sided
RANK_EXACT_MAX = 8      # exact permutation distribution up to this many models (8! = 40,320)
RANK_PERMUTATIONS = 20000  # Monte Carlo permutations above RANK_EXACT_MAX


@dataclass(frozen=True)
class Inference:
    """The effect of one claim with its uncertainty (display units are the caller's).

    effect: mean over seeds of the per-seed effects; se: its standard error (seeds and images);
    df: the degrees of freedom of the seed variance (S − 1, or the borrowed one; inf for the
    image-level error alone); lo, hi: the ``level`` interval; se_seed, se_image:
    the two parts (se² = se_seed² + se_image²: s²/S, and the image noise the seeds share, at
    least what lifts se to the fixed-seed image error); n_seeds, n_images: the design; borrowed: the
    source of a borrowed between-seed variance ("" if none); se_image_own: the part of se_seed
    that is each seed's own image noise, √(V_c/S) (:func:`image_var_parts`; it shrinks with
    more images, the rest of se_seed does not)."""

    effect: float
    se: float
    df: float
    lo: float
    hi: float
    level: float
    se_seed: float
    se_image: float
    n_seeds: int
    n_images: int
    borrowed: str = ""
    se_image_own: float = math.nan


def contrast_weights(k: int, x: Sequence[float] | None = None) -> np.ndarray:
    """Weights w of the effect Σ w_k·value_k: (1, −1) for A − B (x None, k = 2), else the OLS
    slope against log₂ x (the change per doubling of the swept value)."""
    if x is None:
        if k != 2:
            raise ValueError(f"a pairwise effect takes exactly 2 arms, got {k}; pass x for a trend")
        return np.array([1.0, -1.0])
    t = np.log2(np.asarray(x, dtype=float))
    if t.shape != (k,) or not np.all(np.isfinite(t)):
        raise ValueError(f"x must hold {k} positive values, got {list(x)}")
    tc = t - t.mean()
    if not np.any(tc != 0):
        raise ValueError(f"x needs two distinct values for a slope, got {list(x)}")
    return tc / (tc @ tc)


def as_cube(num, den) -> tuple[np.ndarray, np.ndarray]:
    """(S, n, k) numerators and denominators (den None: every image counts once)."""
    num = np.asarray(num, dtype=float)
    if num.ndim != 3 or min(num.shape) < 1 or num.shape[2] < 2:
        raise ValueError(f"per-image values must be (seeds, images, arms ≥ 2), got {num.shape}")
    den = np.ones_like(num) if den is None else np.asarray(den, dtype=float)
    if den.shape != num.shape:
        raise ValueError(f"denominators have shape {den.shape}, numerators {num.shape}")
    return num, den


def arm_values(num, den=None, axis: int = 0) -> np.ndarray:
    """The value of each arm from per-image rows: sum(num)/sum(den) over the images (den None:
    the mean), so a rate "successes among correct" pools images, not per-image ratios.

    Args:
        num: per-image numerators, images along `axis`, arms along the last axis.
        den: denominators of the same shape, or None.
        axis: the images' axis.

    Returns:
        the arm values, `axis` summed away (nan where a denominator sums to 0).
    """
    num = np.asarray(num, dtype=float)
    if den is None:
        return num.mean(axis=axis)
    den = np.asarray(den, dtype=float)
    top, bottom = num.sum(axis=axis), den.sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom != 0, top / np.where(bottom != 0, bottom, 1.0), np.nan)


def per_seed_effects(num, den=None, x: Sequence[float] | None = None) -> np.ndarray:
    """(S,) effect of each seed: Σ_k w_k·(Σ_i num / Σ_i den) (nan where an arm has no
    denominator)."""
    num, den = as_cube(num, den)
    return arm_values(num, den, axis=1) @ contrast_weights(num.shape[2], x)


def image_se(num, den=None, x: Sequence[float] | None = None) -> float:
    """Delta-method standard error, over the shared images, of the seed-averaged effect with
    the seeds held fixed: each image's influence ψ_i = (1/S)·Σ_s Σ_k w_k·(num − r·den)/Σden,
    SE² = n/(n − 1)·Σ ψ_i² (Σ ψ_i = 0 by construction)."""
    num, den = as_cube(num, den)
    S, n, k = num.shape
    w = contrast_weights(k, x)
    total = den.sum(axis=1, keepdims=True)                       # (S, 1, k)
    if n < 2 or np.any(total <= 0):
        return math.nan
    rate = num.sum(axis=1, keepdims=True) / total
    psi = ((num - rate * den) / total @ w).mean(axis=0)          # (n,)
    return math.sqrt(n / (n - 1) * float(psi @ psi))


def image_var_parts(num, den=None, x: Sequence[float] | None = None,
                    se_img: float | None = None) -> tuple[float, float]:
    """(V_b, V_c/S): the seed-averaged effect's image variance split into the part the seeds
    share, V_b, and the part each seed's model adds on its own, V_c/S. The per-seed effects'
    variance s² already holds V_c (the seeds score the same images, but each model errs on its
    own), so adding the whole fixed-seed image variance se_img² = V_b + V_c/S to s²/S would
    count V_c/S twice. Method of moments: the mean single-seed image variance is V_b + V_c,
    hence V_c/S = (mean − se_img²)/(S − 1); both parts ≥ 0 (S ≥ 2)."""
    num, den = as_cube(num, den)
    S = num.shape[0]
    se_img = image_se(num, den, x) if se_img is None else se_img
    one = np.mean([image_se(num[s:s + 1], den[s:s + 1], x) ** 2 for s in range(S)])
    own = max(0.0, float(one) - se_img ** 2) / (S - 1)
    return float(max(0.0, se_img ** 2 - own)), float(own)


def shared_image_var(num, den=None, x: Sequence[float] | None = None,
                     se_img: float | None = None) -> float:
    """V_b of :func:`image_var_parts`: the image noise the seeds share."""
    return image_var_parts(num, den, x, se_img)[0]


def _t_quantile(q: float, df: float) -> float:
    return float(stats.norm.ppf(q) if not math.isfinite(df) else stats.t.ppf(q, df))


def two_way_inference(num, den=None, x: Sequence[float] | None = None, *,
                      level: float = LEVEL, borrowed_var: float | None = None,
                      borrowed_df: float | None = None, borrowed_from: str = "") -> Inference:
    """The effect's interval over seeds and shared test images (module docstring).

    Args:
        num: (S, n, k) per-image numerators, images aligned across seeds and arms.
        den: same shape (rates among a subset) or None (means).
        x: the swept values of a trend, or None for A − B.
        level: two-sided coverage.
        borrowed_var, borrowed_df, borrowed_from: a between-seed variance of the per-seed
            effect (its degrees of freedom and source) used when S = 1.

    Returns:
        an :class:`Inference`; with one seed and nothing borrowed, se_seed is nan, df is inf
        and the interval is the image-level one (it does not see the training's variation).
    """
    num, den = as_cube(num, den)
    S, n, _ = num.shape
    effects = per_seed_effects(num, den, x)
    if not np.all(np.isfinite(effects)):
        raise ValueError(f"the effect is undefined (an arm without denominator) for seeds at "
                         f"positions {np.flatnonzero(~np.isfinite(effects)).tolist()}")
    effect = float(effects.mean())
    se_img = image_se(num, den, x)
    borrowed, se_own = "", math.nan
    if S >= 2:
        var_seed, df = float(effects.var(ddof=1)) / S, float(S - 1)
        shared, own = image_var_parts(num, den, x, se_img)
        se_img = math.sqrt(max(shared, se_img ** 2 - var_seed))
        se_own = math.sqrt(min(own, var_seed))
    elif borrowed_var is not None:
        if not (borrowed_df and borrowed_df > 0 and borrowed_var >= 0):
            raise ValueError("a borrowed between-seed variance needs a variance ≥ 0 and df > 0, "
                             f"got {borrowed_var}, {borrowed_df}")
        var_seed, df = float(borrowed_var), float(borrowed_df)
        borrowed = borrowed_from or "borrowed"
    else:
        var_seed, df = math.nan, math.inf
    se = math.sqrt(se_img ** 2 + (var_seed if math.isfinite(var_seed) else 0.0))
    half = _t_quantile((1 + level) / 2, df) * se
    return Inference(effect=effect, se=se, df=df, lo=effect - half, hi=effect + half,
                     level=level, se_seed=math.sqrt(var_seed) if math.isfinite(var_seed)
                     else math.nan, se_image=se_img, n_seeds=S, n_images=n, borrowed=borrowed,
                     se_image_own=se_own)


# --------------------------------------------------------------------------- power

SEED_QUANTILES = 4096   # points of the χ² expectation in holds_probability (error ~ 1e-4)


def _se_hat_ratio(df: float, seed_share: float) -> np.ndarray:
    """The estimated SE over the true one, ŜE/SE = √((1 − f) + f·W/df), at SEED_QUANTILES
    equally likely values of W ~ χ²_df (midpoints in probability, so a mean over them is the
    expectation): f, the seed part's share of SE², is estimated from df = S − 1 degrees of
    freedom, the image part (hundreds of images) taken as known."""
    return np.sqrt((1 - seed_share) + seed_share * _chi2_over_df(float(df)))


@functools.lru_cache(maxsize=64)
def _chi2_over_df(df: float) -> np.ndarray:
    """W/df at SEED_QUANTILES equally likely values of W ~ χ²_df (cached: one df per design)."""
    w = stats.chi2.ppf((np.arange(SEED_QUANTILES) + 0.5) / SEED_QUANTILES, df) / df
    w.flags.writeable = False
    return w


def holds_probability(true_effect: float, se: float, df: float, sesoi: float,
                      level: float = LEVEL, seed_share: float = 1.0) -> float:
    """P("holds") for a directional claim whose true effect (on the asserted side, > 0) is
    `true_effect`: P(lower bound > 0 and estimate ≥ sesoi), the estimate N(true_effect, se²)
    and the interval's ŜE estimated with df degrees of freedom on its seed part (share
    `seed_share` of se²). seed_share 1: the noncentral t, P(T' > max(t_c, sesoi/se)); 0 (or
    df inf): the normal with se known; between: the expectation over the seed variance's χ²
    (:func:`_se_hat_ratio`), so an interval whose error is mostly the images' is not treated as
    if all of it had S − 1 degrees of freedom."""
    if not (se > 0):
        return math.nan
    t_c = _t_quantile((1 + level) / 2, df)
    nc = true_effect / se
    if not math.isfinite(df) or not seed_share > 0:
        return float(stats.norm.sf(max(t_c, sesoi / se) - nc))
    if seed_share >= 1:
        return float(stats.nct.sf(max(t_c, sesoi / se), df, nc))
    ratio = _se_hat_ratio(df, seed_share)
    return float(stats.norm.sf(np.maximum(t_c * ratio, sesoi / se) - nc).mean())


def minimum_detectable_effect(se: float, df: float, sesoi: float = 0.0, *,
                              level: float = LEVEL, power: float = POWER,
                              seed_share: float = 1.0) -> float:
    """The true effect at which "holds" has probability `power` (:func:`holds_probability`);
    with sesoi = 0 the classical MDE of a one-sided test at (1 − level)/2."""
    if not (se > 0):
        return math.nan

    def p(d: float) -> float:
        return holds_probability(d, se, df, sesoi, level, seed_share)

    hi = se
    while p(hi) < power:
        hi *= 2
    return float(optimize.brentq(lambda d: p(d) - power, 0.0, hi, xtol=1e-12 * hi, rtol=1e-10))


def equivalence_power(margin: float, se: float, df: float, level: float = LEVEL,
                      seed_share: float = 1.0) -> float:
    """P(the interval lies inside ±margin) when the true effect is 0 (two one-sided tests),
    with ŜE estimated as in :func:`holds_probability`: E over ŜE of
    max(0, 2Φ(margin/se − t_c·ŜE/se) − 1) (the interval must fit inside for each ŜE)."""
    if not (se > 0):
        return math.nan
    t_c = _t_quantile((1 + level) / 2, df)
    if not math.isfinite(df) or not seed_share > 0:
        return float(max(0.0, 2 * stats.norm.sf(t_c - margin / se) - 1))
    ratio = _se_hat_ratio(df, min(1.0, seed_share))
    return float(np.maximum(0.0, 2 * stats.norm.sf(t_c * ratio - margin / se) - 1).mean())


def seed_share(inf: "Inference") -> float:
    """The seed part's share of the effect's SE² (1 without per-image data, 0 for one run
    with nothing borrowed): what :func:`holds_probability` needs to know how well ŜE is
    estimated."""
    if not math.isfinite(inf.se_seed):
        return 0.0
    if not math.isfinite(inf.se_image) or not inf.se > 0:
        return 1.0
    return float(min(1.0, inf.se_seed ** 2 / inf.se ** 2))


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p for paired 0/1 outcomes: a_only images succeed in arm A alone,
    b_only in arm B alone; under no effect a_only ~ Binomial(a_only + b_only, 1/2)."""
    a_only, b_only = int(a_only), int(b_only)
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be ≥ 0, got {a_only}, {b_only}")
    if a_only + b_only == 0:
        return 1.0
    return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)


def spearman_permutation(x: Sequence[float], y: Sequence[float], *,
                         seed: int = 0) -> tuple[float, float]:
    """Spearman's ρ and its two-sided permutation p (exact for ≤ RANK_EXACT_MAX models, seeded
    Monte Carlo above); (ρ, nan) below MIN_RANK_MODELS models, where no p < 0.05 is possible."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be two vectors of one length, got {x.shape}, {y.shape}")
    rho = float(stats.spearmanr(x, y).statistic)
    if x.size < MIN_RANK_MODELS or not math.isfinite(rho):
        return rho, math.nan
    test = stats.permutation_test(
        (y,), lambda v: stats.spearmanr(x, v).statistic, permutation_type="pairings",
        n_resamples=math.inf if x.size <= RANK_EXACT_MAX else RANK_PERMUTATIONS,
        rng=np.random.default_rng(seed))
    return rho, float(test.pvalue)


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg q-values (nan p-values stay nan and do not count in the family)."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = stats.false_discovery_control(p[ok], method="bh")
    return q


# --------------------------------------------------------------------------- verdicts

SIDE = {"less": -1.0, "decreasing": -1.0, "greater": 1.0, "increasing": 1.0}


@dataclass(frozen=True)
class Judgement:
    """A verdict with its reason, and what the design could detect: power at the SESOI and the
    MDE (the true effect at which the claim's "holds", or "equivalent", has 80 % probability)."""

    verdict: str
    reason: str
    power: float
    mde: float


# one training run per arm: no verdict, and no power or MDE either (the design's power depends
# on the between-seed variance, which one run cannot estimate)
ONE_RUN_JUDGEMENT = Judgement("inconclusive", "one training run: the interval covers the test "
                              "images, not the training's variation", math.nan, math.nan)


def _one_run(inf: Inference) -> bool:
    return inf.n_seeds < 2 and not inf.borrowed


def judge_directional(direction: str, sesoi: float, inf: Inference) -> Judgement:
    """less / greater / decreasing / increasing: holds when the interval lies on the asserted
    side of 0 and the estimate reaches the SESOI; contradicted when it lies on the other side,
    or within ±SESOI ("no effect as large as"); else inconclusive, with the reason."""
    sign = SIDE[direction]
    e = sign * inf.effect
    lo, hi = sorted((sign * inf.lo, sign * inf.hi))
    f = seed_share(inf)
    power = holds_probability(sesoi, inf.se, inf.df, 0.0, inf.level, f)
    mde = minimum_detectable_effect(inf.se, inf.df, sesoi, level=inf.level, seed_share=f)
    if _one_run(inf):
        return ONE_RUN_JUDGEMENT
    if lo > 0 and e >= sesoi:
        return Judgement("holds", f"interval on the asserted side of 0, estimate ≥ SESOI "
                         f"{sesoi:g}", power, mde)
    if hi < 0:
        return Judgement("contradicted", "interval on the other side of 0", power, mde)
    if -sesoi < lo and hi < sesoi:
        return Judgement("contradicted", f"no effect as large as the SESOI {sesoi:g}: interval "
                         f"inside ±{sesoi:g}", power, mde)
    if lo > 0:
        return Judgement("inconclusive", f"effect on the asserted side but below the SESOI "
                         f"{sesoi:g}", power, mde)
    if power < POWER:
        return Judgement("inconclusive", f"underpowered: detects ≥ {mde:.3g}, SESOI {sesoi:g}",
                         power, mde)
    return Judgement("inconclusive", "interval crosses 0", power, mde)


def judge_equivalent(margin: float, inf: Inference) -> Judgement:
    """No-difference claims: equivalent inside ±margin, contradicted entirely outside."""
    f = seed_share(inf)
    power = equivalence_power(margin, inf.se, inf.df, inf.level, f)
    mde = float(optimize.brentq(  # the margin two one-sided tests reach 80 % at
        lambda m: equivalence_power(m, inf.se, inf.df, inf.level, f) - POWER,
        1e-12 * inf.se, 1e3 * inf.se)) if inf.se > 0 else math.nan
    if _one_run(inf):
        return ONE_RUN_JUDGEMENT
    if -margin < inf.lo and inf.hi < margin:
        return Judgement("equivalent", f"interval inside ±{margin:g}", power, mde)
    if inf.lo > margin or inf.hi < -margin:
        return Judgement("contradicted", f"interval entirely outside ±{margin:g}", power, mde)
    if power < POWER:
        return Judgement("inconclusive", f"underpowered: equivalence within ±{mde:.3g} "
                         f"detectable, margin {margin:g}", power, mde)
    return Judgement("inconclusive", f"interval crosses ±{margin:g}", power, mde)


def judge_at_least(margin: float, inf: Inference) -> Judgement:
    """Non-inferiority (A − B > −margin): holds when the lower bound exceeds −margin,
    contradicted when the upper bound lies below it; power at a true effect of 0."""
    f = seed_share(inf)
    power = holds_probability(margin, inf.se, inf.df, 0.0, inf.level, f)
    mde = minimum_detectable_effect(inf.se, inf.df, 0.0, level=inf.level, seed_share=f)
    if _one_run(inf):
        return ONE_RUN_JUDGEMENT
    if inf.lo > -margin:
        return Judgement("holds", f"interval above −{margin:g} (the margin)", power, mde)
    if inf.hi < -margin:
        return Judgement("contradicted", f"interval below −{margin:g} (the margin)", power, mde)
    if power < POWER:
        return Judgement("inconclusive", f"underpowered: non-inferiority within {mde:.3g} "
                         f"detectable, margin {margin:g}", power, mde)
    return Judgement("inconclusive", f"interval crosses −{margin:g} (the margin)", power, mde)


# --------------------------------------------------------------------------- p-values of verdicts

def p_beyond(inf: Inference, bound: float, side: str) -> float:
    """One-sided p against H0: effect ≤ bound (side "greater") or effect ≥ bound ("less"),
    with the interval's t (or normal) reference; p < (1 − level)/2 exactly when the interval
    lies beyond the bound on that side."""
    if not (inf.se > 0) or side not in ("greater", "less"):
        return math.nan
    t = (inf.effect - bound) / inf.se
    sf = stats.norm.sf if not math.isfinite(inf.df) else (lambda v: stats.t.sf(v, inf.df))
    return float(sf(t) if side == "greater" else sf(-t))


def decisive_p(direction: str, sesoi: float, inf: Inference, verdict: str, reason: str) -> float:
    """The p-value of the test behind a verdict (the Benjamini-Hochberg family's input): the
    asserted side for "holds", the other side or two one-sided tests inside ±SESOI for
    "contradicted", both sides of ±margin for "equivalent"; for "inconclusive" the smallest of
    the tests that could have decided."""
    up, down = (lambda b: p_beyond(inf, b, "greater")), (lambda b: p_beyond(inf, b, "less"))
    if direction == "at_least":
        tests = {"holds": up(-sesoi), "contradicted": down(-sesoi)}
    elif direction == "equivalent":
        tests = {"equivalent": max(up(-sesoi), down(sesoi)),
                 "contradicted": min(up(sesoi), down(-sesoi))}
    else:
        asserted, other = ((up, down) if SIDE[direction] > 0 else (down, up))
        inside = max(up(-sesoi), down(sesoi)) if sesoi > 0 else math.nan
        tests = {"holds": asserted(0.0), "contradicted": other(0.0), "inside": inside}
        if verdict == "contradicted" and reason.startswith("no effect as large"):
            return tests["inside"]
    if verdict in tests:
        return tests[verdict]
    finite = [p for p in tests.values() if math.isfinite(p)]
    return min(finite) if finite else math.nan


# --------------------------------------------------------------------------- evidence shapes

def seed_inference(effects: Sequence[float], level: float = LEVEL) -> Inference | None:
    """The t-interval of per-seed effects where no per-image data exist (≥ 2 seeds); None when
    the seeds agree exactly (s = 0: no error estimate at all, so no interval)."""
    v = np.asarray(effects, dtype=float)
    if v.size < 2:
        raise ValueError(f"a t-interval needs at least 2 per-seed effects, got {v.size}")
    s = float(v.std(ddof=1))
    if not s > 0:
        return None
    se, df = s / math.sqrt(v.size), float(v.size - 1)
    half = _t_quantile((1 + level) / 2, df) * se
    mean = float(v.mean())
    return Inference(effect=mean, se=se, df=df, lo=mean - half, hi=mean + half, level=level,
                     se_seed=se, se_image=math.nan, n_seeds=int(v.size), n_images=0)


def discordant_counts(num, den=None) -> tuple[int, int] | None:
    """(A only, B only) summed over seeds for paired 0/1 outcomes of two arms on the same
    images (den None or equal in both arms and 0/1); None when the outcomes are not 0/1."""
    num, den = as_cube(num, den)
    if num.shape[2] != 2 or not np.all(np.isin(num, (0.0, 1.0))):
        return None
    if not (np.all(np.isin(den, (0.0, 1.0))) and np.array_equal(den[..., 0], den[..., 1])):
        return None
    a, b = num[..., 0], num[..., 1]
    return int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())


def rank_judgement(direction: str, x: Sequence[float], y: Sequence[float], *,
                   level: float = LEVEL, seed: int = 0) -> tuple[str, str, float, float]:
    """(verdict, reason, ρ, p) of a rank correlation across models: "not evaluable" below
    MIN_RANK_MODELS models (no p < 1 − level is possible), else the permutation test decides
    the sign (direction greater: ρ > 0 asserted)."""
    rho, p = spearman_permutation(x, y, seed=seed)
    k = len(x)
    if k < MIN_RANK_MODELS:
        return ("not evaluable", f"ρ = {rho:.2f} over {k} models: a rank correlation needs "
                f"≥ {MIN_RANK_MODELS} models to reach p < {1 - level:g} (permutation)", rho, p)
    sign = 1.0 if direction in ("greater", "increasing") else -1.0
    if p < 1 - level:
        if sign * rho > 0:
            return "holds", f"permutation p = {p:.3g} over {k} models", rho, p
        return "contradicted", f"opposite sign, permutation p = {p:.3g}", rho, p
    return "inconclusive", f"permutation p = {p:.3g} over {k} models", rho, p


def cube_from_frames(frames, num_cols: Sequence[str],
                     den_cols: Sequence[str] | None = None) -> dict:
    """Per-image cubes (seeds × images × arms) from per-seed tables indexed by image (or batch)
    id, on the ids every seed's table has, in seed order: {"seeds", "images_num",
    "images_den"} (den None without den_cols): the evidence the claims engine judges."""
    seeds = sorted(frames)
    if not seeds:
        raise ValueError("no seed's per-image table to build a cube from")
    shared = sorted(set.intersection(*(set(frames[s].index) for s in seeds)))
    if not shared:
        raise ValueError(f"seeds {seeds} share no image (or batch) id")
    rows = {s: frames[s].loc[shared] for s in seeds}
    num = np.stack([rows[s][list(num_cols)].to_numpy(float) for s in seeds])
    den = (None if den_cols is None else
           np.stack([rows[s][list(den_cols)].to_numpy(float) for s in seeds]))
    return {"seeds": seeds, "images_num": num, "images_den": den}
