"""What it would take (curvrobust.claims.power): the projected SE, the monotone searches for
the seeds and images a claim needs, the cheapest design against brute force, the table's rows
and notes, the benchmark cost model and the written outputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from curvrobust.claims.power import (COLUMNS, ONE_RUN_NOTE, StudyCost, benchmark_costs,
    cheapest_design, describe_costs, design_se, detects, images_needed, job_minutes,
    power_markdown, power_table, seeds_needed, write_power)
from curvrobust.claims.stats import equivalence_power, holds_probability, minimum_detectable_effect

# a 3-seed, 1,000-image claim: se_seed 1.5 pp, se_image 0.5 pp, SESOI 3 pp (about 10 seeds
# reach 80 % power; at 3 seeds no number of images does)
S0, N0, SE_SEED, SE_IMAGE, SESOI = 3, 1000, 1.5, 0.5, 3.0
S2, V1 = SE_SEED ** 2 * S0, SE_IMAGE ** 2 * N0


def test_design_se_is_the_two_way_formula():
    assert design_se(S2, V1, S0, N0) == pytest.approx(math.hypot(SE_SEED, SE_IMAGE))
    assert design_se(S2, V1, 2 * S0, 4 * N0) == pytest.approx(
        math.hypot(SE_SEED / math.sqrt(2), SE_IMAGE / 2))
    assert design_se(12.0, 1000.0, 4, 250) == pytest.approx(math.sqrt(3.0 + 4.0))
    assert math.isnan(design_se(math.nan, 1.0, 3, 10))
    with pytest.raises(ValueError):
        design_se(1.0, 1.0, 0, 10)
    # each seed's own image noise shrinks with images and with seeds: 12/4 + 1000/250 + 500/1000
    assert design_se(12.0, 1000.0, 4, 250, v_own_1=500.0) == pytest.approx(math.sqrt(7.5))


def test_a_seed_spread_made_of_image_noise_shrinks_with_more_images():
    """A row whose per-seed spread is all each model's own image noise (se_image_own =
    se_seed): more images help, and the table's projection says so; with the spread counted as
    training variance they would not."""
    r = row(id="own", se_image_own=SE_SEED, se_image=0.0)
    frame = power_table([r], {"study000": (30.0, 0.01)}, {"study000": 10000}, max_seeds=50)
    n = frame.loc[0, "images_needed"]
    assert not pd.isna(n) and N0 < n <= 10000
    vc = SE_SEED ** 2 * S0
    assert detects(0.0, 0.0, S0, int(n), SESOI, v_own_1=vc * N0)
    assert not detects(0.0, 0.0, S0, int(n) - 1, SESOI, v_own_1=vc * N0)
    plain = power_table([row(id="train", se_image=0.0)], {"study000": (30.0, 0.01)},
                        {"study000": 10000}, max_seeds=50)
    assert pd.isna(plain.loc[0, "images_needed"])


def test_detects_is_power_at_the_sesoi_and_monotone():
    se = design_se(S2, V1, 10, N0)
    p = holds_probability(SESOI, se, 9.0, 0.0)
    assert detects(S2, V1, 10, N0, SESOI) == (p >= 0.8)
    # the same as the classical MDE (sesoi 0 in the MDE) against the SESOI
    assert detects(S2, V1, 10, N0, SESOI) == (minimum_detectable_effect(se, 9.0) <= SESOI)
    by_seeds = [detects(S2, V1, s, N0, SESOI) for s in range(2, 60)]
    assert by_seeds == sorted(by_seeds) and by_seeds[-1] and not by_seeds[0]
    by_images = [detects(1.0, 400.0, 5, n, 2.0) for n in range(1, 5000, 50)]
    assert by_images == sorted(by_images) and by_images[-1] and not by_images[0]
    eq = [detects(S2, V1, s, N0, SESOI, equivalence=True) for s in range(2, 60)]
    assert eq == sorted(eq) and eq[-1]
    with pytest.raises(ValueError):
        detects(S2, V1, 1, N0, SESOI)
    assert not detects(math.nan, V1, 5, N0, SESOI)
    assert not detects(S2, V1, 50, N0, 0.0)           # an effect of 0 is never "detected"
    assert detects(0.0, 0.0, 2, 1, SESOI)              # no noise at all


def test_mde_at_sesoi_zero_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.stats.power")
    # one-sample t test, n = 8, one-sided α = 2.5 %: effect size at 80 % power
    d = sm.TTestPower().solve_power(nobs=8, alpha=0.025, power=0.8, alternative="larger")
    assert minimum_detectable_effect(1 / math.sqrt(8), 7.0) == pytest.approx(d, rel=1e-4)
    z = sm.NormalIndPower().solve_power(nobs1=50, ratio=0, alpha=0.025, power=0.8,
                                        alternative="larger")
    assert minimum_detectable_effect(1 / math.sqrt(50), math.inf) == pytest.approx(z, rel=1e-4)


def test_seeds_needed_is_the_smallest():
    s = seeds_needed(S2, V1, SESOI, N0)
    assert s is not None and s > 2
    assert detects(S2, V1, s, N0, SESOI) and not detects(S2, V1, s - 1, N0, SESOI)
    assert seeds_needed(S2, V1, SESOI, N0, max_seeds=s - 1) is None
    assert seeds_needed(math.nan, V1, SESOI, N0) is None
    se = seeds_needed(S2, V1, SESOI, N0, equivalence=True)

    def power(k: int) -> float:   # SE estimated from k − 1 df on its seed part (claims_stats)
        sd = design_se(S2, V1, k, N0)
        return equivalence_power(SESOI, sd, k - 1, seed_share=S2 / k / sd ** 2)

    assert power(se) >= 0.8 and power(se - 1) < 0.8


def test_images_needed_is_the_smallest():
    s2, v = 1.0, 400.0                   # the image variance dominates
    n = images_needed(s2, v, 2.0, seeds=5, max_images=10000)
    assert n is not None and n > 1
    assert detects(s2, v, 5, n, 2.0) and not detects(s2, v, 5, n - 1, 2.0)
    assert images_needed(s2, v, 2.0, seeds=5, max_images=n - 1) is None
    # the seed variance alone is too large at 3 seeds: no number of images helps
    assert images_needed(S2, V1, SESOI, seeds=3, max_images=10 ** 6) is None
    assert images_needed(math.nan, v, 2.0, seeds=5) is None


def test_cheapest_design_against_brute_force_and_single_axes():
    # neither axis dominates: the optimum trades seeds against images
    s2, v, sesoi, c_seed, c_img = 2.0, 60.0, 3.0, 5.0, 0.02
    max_s, max_n = 14, 300
    best = cheapest_design(s2, v, sesoi, c_seed, c_img, max_seeds=max_s, max_images=max_n)
    assert best is not None
    brute = min((job_minutes(s, n, c_seed, c_img), s, n)
                for s in range(2, max_s + 1) for n in range(1, max_n + 1)
                if detects(s2, v, s, n, sesoi))
    assert best[2] == pytest.approx(brute[0])
    assert detects(s2, v, best[0], best[1], sesoi)
    for s in (3, 5, 10):
        n = images_needed(s2, v, sesoi, s, max_images=max_n)
        if n is not None:
            assert best[2] <= job_minutes(s, n, c_seed, c_img) + 1e-9
    s_only = seeds_needed(s2, v, sesoi, max_n, max_seeds=max_s)
    assert best[2] <= job_minutes(s_only, max_n, c_seed, c_img) + 1e-9
    assert cheapest_design(math.nan, v, sesoi, c_seed, c_img) is None
    assert cheapest_design(s2, v, sesoi, c_seed, c_img, max_seeds=2, max_images=5) is None
    with pytest.raises(ValueError):
        cheapest_design(s2, v, sesoi, math.nan, c_img)


def row(**kw):
    base = {"study": "study000", "id": "c", "headline": "headline", "verdict": "inconclusive",
            "direction": "less", "unit": "%", "sesoi": SESOI, "se_seed": SE_SEED,
            "se_image": SE_IMAGE, "seeds": S0, "images": N0, "mde": 9.9, "power": 0.3}
    base.update(kw)
    return base


def test_power_table_rows_and_notes():
    rows = [row(id="a"),
            row(id="one", seeds=1, se_seed=math.nan),
            row(id="held", headline="exploratory", verdict="holds"),        # left out
            row(id="noimg", se_image=math.nan),                              # left out
            row(id="expl", headline="exploratory"),
            row(id="done", se_seed=0.1, se_image=0.1, verdict="holds"),
            row(id="far", sesoi=0.01, headline="exploratory"),
            row(id="eq", direction="equivalent", margin=SESOI, sesoi=math.nan),
            row(id="zero", sesoi=0.0),
            row(id="nocost", study="study009")]
    frame = power_table(rows, {"study000": (30.0, 0.01)}, {"study000": 10000}, max_seeds=50)
    assert list(frame.columns) == COLUMNS
    assert list(frame["id"]) == ["a", "one", "expl", "done", "far", "eq", "zero", "nocost"]
    by = frame.set_index("id")
    a = by.loc["a"]
    assert a["seeds_needed"] == seeds_needed(S2, V1, SESOI, N0, max_seeds=50)
    assert pd.isna(a["images_needed"])             # 3 seeds: no image count suffices
    best = cheapest_design(S2, V1, SESOI, 30.0, 0.01, max_seeds=50)
    assert (a["cheapest_seeds"], a["cheapest_images"]) == best[:2]
    assert a["cheapest_job_minutes"] == pytest.approx(best[2])
    one = by.loc["one"]
    assert one["note"] == ONE_RUN_NOTE
    assert all(pd.isna(one[c]) for c in ("seeds_needed", "images_needed", "cheapest_seeds"))
    assert math.isnan(one["cheapest_job_minutes"])
    assert by.loc["done", "note"].startswith("already detects the SESOI")
    assert by.loc["far", "note"].startswith("not reachable within 50 seeds / 10,000 images")
    assert by.loc["eq", "seeds_needed"] == seeds_needed(S2, V1, SESOI, N0, True, 50)
    assert "SESOI 0" in by.loc["zero", "note"]
    assert "cost unknown" in by.loc["nocost", "note"]
    assert pd.isna(by.loc["nocost", "cheapest_seeds"])
    # a StudyCost is accepted in place of the pair
    cost = StudyCost(train_minutes=15.0, attack_minutes=1.0, images_per_job=200, arms=2)
    again = power_table(rows[:1], {"study000": cost}, {}, max_seeds=50)
    assert again.loc[0, "cheapest_job_minutes"] == pytest.approx(
        cheapest_design(S2, V1, SESOI, 30.0, 0.01, max_seeds=50)[2])


def _bench(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["s\th:m:s\tmax_rss"] + [f"{s}\t0:00:00\t1.0" for s in seconds]
    path.write_text("\n".join(lines) + "\n")


def test_benchmark_costs(tmp_path):
    _bench(tmp_path / "train_model" / "mnist_clean_cnn_adam_seed42.tsv", [120.0])
    _bench(tmp_path / "train_model" / "mnist_clean_cnn_gn_seed42.tsv", [240.0, 360.0])
    _bench(tmp_path / "train_model" / "cifar_clean_resnet_seed42.tsv", [6000.0])
    _bench(tmp_path / "attack_model" / "mnist_clean_cnn_adam_seed42_final_fgsm_paper.tsv",
           [30.0])
    _bench(tmp_path / "attack_model" / "mnist_clean_cnn_gn_seed42_final_fgsm_paper.tsv",
           [90.0])
    spec = {"study000": {"train": ["train_model/mnist_clean_cnn_*.tsv"],
                         "attack": "attack_model/mnist_clean_*_fgsm_paper.tsv",
                         "images": 1000},
            "none": {"train": ["train_model/nothing*.tsv"], "attack": [], "images": 100}}
    costs = benchmark_costs(tmp_path, spec)
    c = costs["study000"]
    assert (c.train_jobs, c.attack_jobs) == (3, 2)
    assert c.train_minutes == pytest.approx(4.0)       # (120 + 240 + 360) / 3 s
    assert c.per_seed == pytest.approx(8.0)            # 2 arms
    assert c.per_image == pytest.approx(2 * 1.0 / 1000)
    assert c.pair == (c.per_seed, c.per_image)
    assert math.isnan(costs["none"].per_seed) and math.isnan(costs["none"].per_image)
    text = describe_costs(costs)
    assert "study000" in text and len(text.splitlines()) == 2
    frame = power_table([row(study="none")], costs, {})
    assert "cost unknown" in frame.loc[0, "note"]


def test_markdown_and_write(tmp_path):
    rows = [row(id="a"), row(id="one", seeds=1, se_seed=math.nan),
            row(id="neg", mde=-1.5)]
    frame = power_table(rows, {"study000": (30.0, 0.01)}, {}, max_seeds=50)
    md = power_markdown(frame, "study000: 30 job-minutes per seed.")
    assert md.startswith("# What it would take")
    assert "| Study | Claim | Kind | Verdict | SESOI | MDE | Power |" in md
    assert "SE² = σ²/S + v_own/(n·S) + v/n" in md and "df = S − 1" in md
    assert "\u22121.5 pp" in md and "-1.5" not in md
    assert "| – |" in md and ONE_RUN_NOTE in md
    assert "- study000: 30 job-minutes per seed." in md
    csv, out = tmp_path / "r" / "power.csv", tmp_path / "r" / "power.md"
    write_power(frame, csv, out, "study000: 30 job-minutes per seed.")
    assert out.read_text(encoding="utf-8") == md
    back = pd.read_csv(csv)
    assert list(back.columns) == COLUMNS and len(back) == 3
    assert sorted(p.name for p in csv.parent.iterdir()) == ["power.csv", "power.md"]
