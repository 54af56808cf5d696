"""The claims engine's statistics (curvrobust.claims.stats) against scipy and statsmodels, and
calibrated by simulation: seed and image noise drawn as in the studies' runs, the verdicts'
error rates counted over many draws (the Monte Carlo error is stated with each check)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from curvrobust.claims.stats import (MIN_RANK_MODELS, Inference, benjamini_hochberg,
    equivalence_power, holds_probability, image_se, judge_directional, judge_equivalent,
    mcnemar_exact, minimum_detectable_effect, p_beyond, per_seed_effects, shared_image_var,
    spearman_permutation, two_way_inference)


def inference(effect, se, df=10.0, seeds=3, images=400, borrowed=""):
    half = float(stats.t.ppf(0.975, df)) * se
    return Inference(effect=effect, se=se, df=df, lo=effect - half, hi=effect + half,
                     level=0.95, se_seed=se, se_image=0.0, n_seeds=seeds, n_images=images,
                     borrowed=borrowed)


# --------------------------------------------------------------------------- known values

def test_image_se_of_one_seed_is_the_paired_t_standard_error():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    num = np.stack([a, b], axis=1)[None].astype(float)
    expected = stats.ttest_rel(a, b)
    se = image_se(num)
    assert se == pytest.approx(float(np.std(a - b, ddof=1)) / math.sqrt(300), rel=1e-12)
    assert (a.mean() - b.mean()) / se == pytest.approx(expected.statistic, rel=1e-12)


def test_image_se_of_a_ratio_matches_a_bootstrap_over_images():
    rng = np.random.default_rng(1)
    S, n = 3, 400
    den = rng.random((S, n, 2)) < 0.9
    num = (rng.random((S, n, 2)) < np.array([0.4, 0.55])) & den
    w = np.array([1.0, -1.0])
    reps = []
    for _ in range(3000):
        idx = rng.integers(0, n, n)
        reps.append(float((num[:, idx].sum(1) / den[:, idx].sum(1) @ w).mean()))
    assert image_se(num, den) == pytest.approx(float(np.std(reps)), rel=0.06)


def test_seed_only_noise_gives_the_t_interval_of_the_per_seed_effects():
    # every image has the same value in an arm, so the images add no error
    effects = np.array([0.02, 0.05, -0.01, 0.04])
    num = np.zeros((4, 50, 2))
    num[:, :, 0] = 0.5 + effects[:, None]
    num[:, :, 1] = 0.5
    inf = two_way_inference(num)
    ci = stats.ttest_1samp(effects, 0.0).confidence_interval(0.95)
    assert inf.se_image == pytest.approx(0.0, abs=1e-15)
    assert (inf.lo, inf.hi) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert inf.df == 3.0


def test_identical_seeds_do_not_give_a_point_interval():
    # the case: +2, +3, +2 points on 400 shared images; the seeds agree, the images
    # still carry their sampling error
    rng = np.random.default_rng(2)
    n = 400
    base = rng.random(n) < 0.3
    num = np.zeros((3, n, 2))
    for s, gain in enumerate([8, 12, 8]):
        a = base.copy()
        a[np.flatnonzero(~base)[:gain]] = True
        num[s, :, 0], num[s, :, 1] = a, base
    inf = two_way_inference(num)
    assert per_seed_effects(num) == pytest.approx([0.02, 0.03, 0.02])
    assert inf.se >= inf.se_image > 0
    assert inf.hi - inf.lo >= 2 * 1.96 * inf.se_image
    zero = two_way_inference(np.stack([num[0]] * 3))  # zero spread across seeds
    assert zero.se_seed == 0 and zero.hi - zero.lo == pytest.approx(
        2 * stats.t.ppf(0.975, 2) * zero.se_image, rel=1e-12)


def test_shared_image_variance_of_identical_and_of_independent_seeds():
    """Seeds that fail on the same images share all their image noise (V_b = the fixed-seed
    image variance); seeds whose image noise is independent share none of it (V_b ≈ 0, the
    seed-specific part already in s²)."""
    rng = np.random.default_rng(4)
    one = (rng.random((1, 300, 2)) < 0.4).astype(float)
    same = np.repeat(one, 3, axis=0)
    assert shared_image_var(same) == pytest.approx(image_se(same) ** 2)
    vb = [shared_image_var((rng.random((3, 300, 2)) < 0.4).astype(float)) for _ in range(300)]
    v1 = image_se(one) ** 2
    assert np.mean(vb) < 0.1 * v1   # against 1/3 of one seed's variance if counted twice


@pytest.mark.parametrize("share", [0.0, 0.5, 0.93, 1.0])
def test_power_with_a_partly_estimated_se_equals_monte_carlo(share):
    """P(holds) and P(inside ±m) when ŜE² = SE²·((1 − f) + f·W/2), W ~ χ²₂: the quadrature
    against 400,000 simulated (estimate, ŜE) pairs (Monte Carlo error ≤ 0.0008)."""
    rng = np.random.default_rng(12)
    n, se, d, sesoi, m = 400_000, 1.0, 3.0, 0.5, 4.0
    est = rng.normal(d, se, n)
    se_hat = se * np.sqrt((1 - share) + share * rng.chisquare(2, n) / 2)
    t_c = stats.t.ppf(0.975, 2)
    want = np.mean((est - t_c * se_hat > 0) & (est >= sesoi))
    assert holds_probability(d, se, 2, sesoi, seed_share=share) == pytest.approx(want, abs=0.003)
    zero = rng.normal(0, se, n)
    inside = np.mean((zero - t_c * se_hat > -m) & (zero + t_c * se_hat < m))
    assert equivalence_power(m, se, 2, seed_share=share) == pytest.approx(inside, abs=0.003)


def test_trend_effect_is_the_slope_per_doubling():
    num = np.zeros((2, 10, 3))
    num[:, :, 0], num[:, :, 1], num[:, :, 2] = 1.0, 3.0, 5.0
    assert per_seed_effects(num, x=[0.25, 0.5, 1.0]) == pytest.approx([2.0, 2.0])


def test_mde_and_power_equal_statsmodels_one_sample_t_power():
    power_mod = pytest.importorskip("statsmodels.stats.power")
    tt = power_mod.TTestPower()
    for S, s in [(3, 0.1), (6, 0.07), (10, 0.2)]:
        se, df = s / math.sqrt(S), S - 1
        mde = minimum_detectable_effect(se, df)
        d = tt.solve_power(nobs=S, alpha=0.025, power=0.8, alternative="larger")
        assert mde == pytest.approx(d * s, rel=1e-6)
        for effect in (0.05, 0.1, 0.3):
            assert holds_probability(effect, se, df, 0.0) == pytest.approx(
                tt.power(effect_size=effect / s, nobs=S, alpha=0.025, alternative="larger"),
                rel=1e-6)


def test_mde_with_a_sesoi_above_the_critical_value():
    # a precise design (se small): "holds" needs the estimate to reach the SESOI, so its MDE is
    # the SESOI plus z_0.8 standard errors, not the classical (z_0.975 + z_0.8)·se
    se, sesoi = 0.001, 0.05
    assert minimum_detectable_effect(se, math.inf, sesoi) == pytest.approx(
        sesoi + stats.norm.ppf(0.8) * se, rel=1e-9)
    assert minimum_detectable_effect(se, math.inf) == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se, rel=1e-9)


def test_equivalence_power_is_two_one_sided_tests():
    se = 0.01
    one = stats.norm.sf(stats.norm.ppf(0.975) - 0.03 / se)
    assert equivalence_power(0.03, se, math.inf) == pytest.approx(2 * one - 1, rel=1e-12)
    assert equivalence_power(0.001, se, math.inf) == 0.0


def test_mcnemar_exact_against_hand_computed_binomial_tails():
    # two-sided p = 2·P(X ≤ min) for X ~ Binomial(a + b, 1/2), counted by hand
    assert mcnemar_exact(4, 0) == pytest.approx(0.125)  # the 4 vs 0: 2·(1/16)
    assert mcnemar_exact(7, 2) == pytest.approx(2 * (1 + 9 + 36) / 2 ** 9)
    assert mcnemar_exact(3, 12) == pytest.approx(
        2 * sum(math.comb(15, i) for i in range(4)) / 2 ** 15)
    assert mcnemar_exact(30, 30) == 1.0 and mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError, match="discordant"):
        mcnemar_exact(-1, 2)


def test_benjamini_hochberg_equals_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.array([0.001, 0.04, 0.03, 0.2, 0.011, 0.5, 0.049])
    want = multitest.multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(benjamini_hochberg(p), want, rtol=1e-12)
    with_nan = benjamini_hochberg([0.01, math.nan, 0.04])
    assert math.isnan(with_nan[1])
    np.testing.assert_allclose(with_nan[[0, 2]], multitest.multipletests(
        [0.01, 0.04], method="fdr_bh")[1])


def test_spearman_permutation_is_exact_and_refuses_too_few_models():
    rho, p = spearman_permutation([1, 2, 3], [3, 1, 2])
    assert math.isnan(p)  # 3 models: ρ ∈ {±1, ±0.5}, p ≥ 1/3
    # 5 models, 120 orderings: ρ = 1 for one of them and ρ = 0.9 (Σd² = 2) for the 4 adjacent
    # swaps, on each side; so P(|ρ| ≥ 1) = 2/120 and P(|ρ| ≥ 0.9) = 10/120
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    rho, p = spearman_permutation(x, [2.0, 4.0, 6.0, 8.0, 10.0])
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 120)
    rho, p = spearman_permutation(x, [2.0, 1.0, 3.0, 4.0, 5.0])
    assert rho == pytest.approx(0.9) and p == pytest.approx(10 / 120)
    rho, p = spearman_permutation(x, [-1.0, -2.0, -3.0, -5.0, -4.0])
    assert rho == pytest.approx(-0.9) and p == pytest.approx(10 / 120)
    assert MIN_RANK_MODELS == 5


def test_p_value_is_one_sided_on_the_asserted_side():
    inf = inference(-0.05, 0.02, df=4)
    assert p_beyond(inf, 0.0, "less") == pytest.approx(stats.t.cdf(-2.5, 4))
    assert p_beyond(inf, 0.0, "greater") == pytest.approx(stats.t.sf(-2.5, 4))


# --------------------------------------------------------------------------- verdicts

@pytest.mark.parametrize("effect,se,verdict,reason", [
    (-0.20, 0.02, "holds", "estimate ≥ SESOI"),
    (0.20, 0.02, "contradicted", "other side of 0"),
    (0.0, 0.005, "contradicted", "no effect as large as the SESOI 0.05"),
    (-0.04, 0.01, "inconclusive", "asserted side but below the SESOI"),
    (-0.03, 0.005, "contradicted", "no effect as large as"),  # a real effect, below the SESOI
    (-0.02, 0.05, "inconclusive", "underpowered: detects ≥"),
    (-0.025, 0.015, "inconclusive", "interval crosses 0"),  # powered: 92 % at the SESOI
])
def test_each_directional_verdict_and_reason(effect, se, verdict, reason):
    j = judge_directional("less", 0.05, inference(effect, se, df=math.inf))
    assert j.verdict == verdict and reason in j.reason
    assert 0 <= j.power <= 1 and j.mde > 0


def test_underpowered_names_the_mde_and_the_sesoi():
    j = judge_directional("greater", 0.05, inference(0.01, 0.05, df=2))
    assert j.reason == f"underpowered: detects ≥ {j.mde:.3g}, SESOI 0.05"
    assert j.power < 0.8 and j.mde > 0.05


def test_one_training_run_is_inconclusive_unless_a_variance_is_borrowed():
    one = inference(-0.4, 0.01, df=math.inf, seeds=1)
    j = judge_directional("less", 0.05, one)
    assert j.verdict == "inconclusive" and j.reason.startswith("one training run")
    borrowed = inference(-0.4, 0.05, df=2, seeds=1, borrowed="000-gn-adam-fgsm-clean-0.1")
    assert judge_directional("less", 0.05, borrowed).verdict == "holds"


def test_borrowed_variance_enters_the_interval():
    rng = np.random.default_rng(3)
    num = (rng.random((1, 10000, 2)) < [0.4, 0.5]).astype(float)
    alone = two_way_inference(num)
    assert math.isinf(alone.df) and math.isnan(alone.se_seed)
    with_seed = two_way_inference(num, borrowed_var=0.07 ** 2, borrowed_df=2,
                                  borrowed_from="three-seed rows")
    assert with_seed.se == pytest.approx(math.hypot(0.07, alone.se_image))
    assert with_seed.borrowed == "three-seed rows" and with_seed.df == 2


@pytest.mark.parametrize("lo_hi,verdict", [((-0.02, 0.02), "equivalent"),
                                           ((0.06, 0.1), "contradicted"),
                                           ((-0.02, 0.09), "inconclusive")])
def test_equivalence_verdicts(lo_hi, verdict):
    lo, hi = lo_hi
    inf = Inference(effect=(lo + hi) / 2, se=(hi - lo) / 3.92, df=math.inf, lo=lo, hi=hi,
                    level=0.95, se_seed=0.0, se_image=0.0, n_seeds=3, n_images=400)
    assert judge_equivalent(0.05, inf).verdict == verdict


# --------------------------------------------------------------------------- calibration

SESOI = 0.05


def simulate(effect: float, draws: int, seeds: int, images: int, seed_sd: float = 0.05,
             rho: float = 0.7, base: float = 0.5, chunk: int = 100, seed: int = 0):
    """Per-image 0/1 outcomes (draws, seeds, images, 2 arms): each seed's arm rates are
    base (+ effect for arm A) + N(0, seed_sd²) per arm; images share a difficulty across seeds
    and arms (Gaussian copula, correlation rho), so the arm rates are exact and the images are
    the shared test subset of the studies."""
    rng = np.random.default_rng(seed)
    for start in range(0, draws, chunk):
        b = min(chunk, draws - start)
        rates = base + np.array([effect, 0.0]) + rng.normal(0, seed_sd, (b, seeds, 1, 2))
        z = rng.normal(size=(b, 1, images, 1))
        e = rng.normal(size=(b, seeds, images, 2))
        u = stats.norm.cdf(rho * z + math.sqrt(1 - rho * rho) * e)
        yield (u < np.clip(rates, 0, 1)).astype(float)


def verdict_rates(effect: float, draws: int, seeds: int, images: int, borrow: bool):
    """Share of draws with each (verdict, reason kind) for the claim "A − B < 0"... asserted
    as "greater" here (A above B), SESOI 5 points."""
    rng = np.random.default_rng(99)
    counts: dict[str, int] = {}
    for cube in simulate(effect, draws, seeds, images):
        for num in cube:
            kw = {}
            if borrow:  # a between-seed variance estimated from 3 seeds elsewhere (df 2)
                var = 2 * 0.05 ** 2 * rng.chisquare(2) / 2
                kw = dict(borrowed_var=var, borrowed_df=2, borrowed_from="pilot")
            j = judge_directional("greater", SESOI, two_way_inference(num, **kw))
            key = j.verdict
            if j.verdict == "contradicted":
                key += " (other side)" if "other side" in j.reason else " (no effect)"
            counts[key] = counts.get(key, 0) + 1
    return {k: v / draws for k, v in counts.items()}


def design_mde(seeds: int, images: int, effect: float, draws: int = 800) -> tuple[float, float]:
    """The design's MDE at a true `effect`: minimum_detectable_effect at the estimate's true
    standard error (its spread over simulated runs) and the seed part's expected share of it;
    and the ratio E[ŜE²]/Var(estimate), how well a run's own SE estimates it."""
    est, se2, seed2 = [], [], []
    for cube in simulate(effect, draws, seeds, images, seed=5):
        for num in cube:
            inf = two_way_inference(num)
            est.append(inf.effect)
            se2.append(inf.se ** 2)
            seed2.append(inf.se_seed ** 2)
    var = float(np.var(est))
    share = min(1.0, float(np.mean(seed2)) / var)
    return (minimum_detectable_effect(math.sqrt(var), seeds - 1, SESOI, seed_share=share),
            float(np.mean(se2)) / var)


DRAWS = 1000  # Monte Carlo error of a share p: √(p(1 − p)/1000): 0.49 points at 2.5 %,
#               0.69 at 5 %, 1.26 at 80 %; each check allows 2.5 Monte Carlo errors


def mc(p: float) -> float:
    return 2.5 * math.sqrt(p * (1 - p) / DRAWS)


@pytest.mark.parametrize("seeds,images,borrow", [(3, 400, False), (1, 10000, True)])
def test_calibration_at_no_effect(seeds, images, borrow):
    rates = verdict_rates(0.0, DRAWS, seeds, images, borrow)
    assert rates.get("holds", 0) <= 0.025 + mc(0.025)
    assert rates.get("contradicted (other side)", 0) <= 0.025 + mc(0.025)


@pytest.mark.parametrize("seeds,images,borrow", [(3, 400, False), (1, 10000, True)])
def test_calibration_at_the_sesoi(seeds, images, borrow):
    rates = verdict_rates(SESOI, DRAWS, seeds, images, borrow)
    assert rates.get("contradicted (no effect)", 0) <= 0.05 + mc(0.05)


def test_calibration_at_the_mde_of_one_run_with_a_borrowed_variance():
    """One seed on 10,000 images with a between-seed variance borrowed on 2 degrees of freedom
    (verdict_rates' draws: true per-seed variance 2·0.05²): "holds" at 80 % at the MDE."""
    img = [two_way_inference(num).se_image ** 2 for cube in simulate(0.0, 200, 1, 10000, seed=5)
           for num in cube]
    var = 2 * 0.05 ** 2 + float(np.mean(img))  # the seed variance known, the image one precise
    share = 2 * 0.05 ** 2 / var
    assert 0.5 < share < 1  # the training's variance dominates, the images' still counts
    mde = minimum_detectable_effect(math.sqrt(var), 2, SESOI, seed_share=share)
    rates = verdict_rates(mde, DRAWS, 1, 10000, True)
    assert abs(rates.get("holds", 0) - 0.80) <= mc(0.80)


def test_calibration_at_the_mde():
    """"holds" has 80 % probability at the MDE the power formula gives for the design (the
    estimate's true SE; one fixed-point step, since the image noise depends on the rates), and
    a run's own ŜE² estimates that variance without the double count of each seed's image
    noise (claims_stats.shared_image_var): measured E[ŜE²]/Var 0.95."""
    mde, _ = design_mde(3, 400, effect=0.0)
    mde, ratio = design_mde(3, 400, effect=mde)
    assert mde > SESOI  # 3 seeds cannot detect 5 points: the premise of "underpowered"
    assert 0.85 <= ratio <= 1.15
    rates = verdict_rates(mde, DRAWS, 3, 400, False)
    assert abs(rates.get("holds", 0) - 0.80) <= mc(0.80)
