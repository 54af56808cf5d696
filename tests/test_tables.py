import math

import numpy as np
import pandas as pd
import pytest

from curvrobust.reports import tables
from curvrobust.reference import load_reference


def test_mean_ci_known_values():
    # values 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.302652729911275
    m, h = tables.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert h == pytest.approx(4.302652729749464 / math.sqrt(3), rel=1e-9)
    m, h = tables.mean_ci([5.0])
    assert m == 5.0 and math.isnan(h)


def test_attack_table_aggregates_seeds_and_places_paper_numbers():
    rows = []
    for seed, (c, s1, s2) in enumerate([(100, 50, 10), (110, 66, 22)]):
        rows += [dict(label="gn", seed=seed, eps=0.1, correct=c, successes=s1, success_rate=s1 / c),
                 dict(label="gn", seed=seed, eps=0.01, correct=c, successes=s2, success_rate=s2 / c)]
    ref = {"gn": load_reference("study000")["fgsm"]["gn"]["clean"]}
    t = tables.attack_table(pd.DataFrame(rows), ["gn"], ref)
    r = t.iloc[0]
    assert r["n_seeds"] == 2 and r["correct_mean"] == 105
    assert r["rate_eps0.1_mean"] == pytest.approx(100 * (0.5 + 0.6) / 2)
    assert r["paper_rate_eps0.1"] == 51.51 and r["paper_correct"] == 9585
    readable = tables.render_attack_table(t)
    assert readable["ε=0.1 (paper)"].iloc[0] == "51.51%"


def test_reference_matches_printed_rates():
    ref = load_reference("study000")["fgsm"]
    for opt in ref.values():
        for v in opt.values():
            for eps, n in v["successes"].items():
                assert 100 * n / v["correct"] == pytest.approx(v["rate"][eps], abs=0.006)


def test_write_table_formats(tmp_path):
    num = pd.DataFrame({"a": [1.0, np.nan]})
    tables.write_table(num, pd.DataFrame({"ε": ["1 ± 2"]}), tmp_path / "t", "cap")
    assert (tmp_path / "t.csv").read_text().startswith("a")
    assert "cap" in (tmp_path / "t.md").read_text()
    tex = (tmp_path / "t.tex").read_text()
    assert r"\varepsilon" in tex and r"\pm" in tex


def test_sam_table_places_paper_medians_by_rho():
    res = pd.DataFrame([dict(label="gn", seed=s, rho=r, median=m) for s, (r, m) in
                        enumerate([(0.01, 0.02), (0.01, 0.04), (0.001, 0.003)])])
    t = tables.sam_table(res, ["gn", "adam"], load_reference("study000")["sam_median"])
    row = t[t["rho"] == 0.01].iloc[0]
    assert row["gn_median_mean"] == pytest.approx(0.03) and row["gn_paper"] == 0.0282
    assert "adam_median_mean" not in t  # no Adam results: no Adam columns


def test_seed_image_ci_against_scipy_and_covers_by_simulation():
    """seed_image_ci: SE² = s²/S + p̄(1 − p̄)/n with t(S − 1) (scipy directly); on simulated
    seeds × shared images (image difficulty shared by the seeds, a seed effect, Bernoulli
    outcomes) its 95 % interval covers the population share at least 95 % of the time."""
    from scipy import stats

    p, h = tables.seed_image_ci([0.5, 0.7, 0.6], 100)
    se = math.sqrt(np.var([0.5, 0.7, 0.6], ddof=1) / 3 + 0.6 * 0.4 / 100)
    assert p == pytest.approx(0.6) and h == pytest.approx(stats.t.ppf(0.975, 2) * se)
    p1, h1 = tables.seed_image_ci([0.3], 400)
    assert h1 == pytest.approx(1.959964 * math.sqrt(0.3 * 0.7 / 400), rel=1e-5)
    assert math.isnan(tables.seed_image_ci([], 10)[0])

    rng = np.random.default_rng(0)
    sims, seeds, n = 2000, 3, 100
    difficulty = rng.beta(2, 3, size=(sims, 1, n))               # shared by the seeds
    seed_shift = rng.normal(0, 0.05, size=(sims, seeds, 1))
    robust = rng.random((sims, seeds, n)) < np.clip(difficulty + seed_shift, 0, 1)
    truth = 2 / 5                                                 # E[Beta(2, 3)]
    covered = 0
    for k in range(sims):
        m, half = tables.seed_image_ci(robust[k].mean(1), n)
        covered += abs(m - truth) <= half
    assert covered / sims >= 0.95
