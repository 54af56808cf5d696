"""The claims engine (curvrobust.claims) on synthetic evidence whose answers are known by
construction or by hand: one test per verdict and reason, the interval over seeds and shared
images, the SESOI, one-run rows, McNemar, rank tests, the censored rule in both directions,
Benjamini-Hochberg, validation and the tables. The statistics themselves (calibration by
simulation, power against statsmodels) are tested in tests/test_claims_stats.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from curvrobust.claims.judge import judge, judge_all
from curvrobust.claims.render import COLUMNS, EXTRA_COLUMNS, claims_frame, claims_markdown, fmt_interval, join_flags, write_claims
from curvrobust.claims.spec import validate_claim, validate_claims
from curvrobust.claims import stats as cs

T975_2 = 4.302652729911275  # t_{0.975, 2}, from tables


def claim(cid: str = "c1", direction: str = "less", margin: float = 0.0, unit: str = "",
          study: str = "study000", headline: bool = False, sesoi: float = 0.0, **kw) -> dict:
    c = {"id": cid, "study": study, "text": f"text of {cid}", "where": "§3, Table 1",
         "metric": "FGSM success among correct", "comparison": "A − B, same seed",
         "direction": direction, "margin": margin, "unit": unit, "headline": headline,
         "ours": False, "worst_case": False, "study_value": "A 51.51 % vs B 75.64 %",
         "measure": "fgsm", "args": {"eps": 0.1}, "sesoi": sesoi,
         "sesoi_source": "\"a clear decrease\" (§3.1)"}
    c.update(kw)
    return c


def seeds(*effects: float) -> dict:
    return {"status": "ok", "per_seed": {str(i): e for i, e in enumerate(effects)}}


def cube(a_only: list[int], b_only: list[int], n: int = 100, both: int = 10) -> dict:
    """Paired 0/1 outcomes, one (n, 2) slice per seed: `both` images succeed in both arms, then
    a_only[s] in arm A alone, b_only[s] in arm B alone."""
    num = np.zeros((len(a_only), n, 2))
    for s, (a, b) in enumerate(zip(a_only, b_only)):
        num[s, :both] = 1
        num[s, both:both + a, 0] = 1
        num[s, both + a:both + a + b, 1] = 1
    return {"status": "ok", "images_num": num}


# --------------------------------------------------------------------------- intervals

def test_seed_effects_without_images_give_the_hand_computed_t_interval():
    row = judge(claim(), seeds(1.0, 2.0, 3.0))
    half = T975_2 * 1.0 / math.sqrt(3)
    assert (row["effect"], row["lo"], row["hi"]) == pytest.approx((2.0, 2 - half, 2 + half))
    assert row["df"] == 2 and row["basis"] == "3 seeds"
    assert row["verdict"] == "inconclusive"  # [−0.48, 4.48] crosses 0


def test_identical_seed_effects_without_images_give_no_interval():
    row = judge(claim(), seeds(-1.5, -1.5, -1.5))
    assert row["verdict"] == "inconclusive" and "same effect" in row["reason"]
    assert row["effect"] == -1.5 and math.isnan(row["lo"])


def test_identical_seeds_on_shared_images_keep_the_image_error():
    """Two seeds that each gain one image of 100 (the issue's example) do not hold with
    [1.0, 1.0]: the interval keeps the image-level error."""
    row = judge(claim(direction="greater", unit="%", sesoi=0.005), cube([1, 1], [0, 0]))
    assert row["effect"] == pytest.approx(1.0)
    assert row["lo"] < 0 < row["hi"] and row["se_image"] > 0
    assert row["verdict"] == "inconclusive"


def test_the_interval_covers_seed_and_image_variance():
    ev = cube([30, 20, 25], [5, 5, 5], n=400)
    row = judge(claim(direction="greater", unit="%"), ev)
    inf = cs.two_way_inference(ev["images_num"])
    assert row["se"] == pytest.approx(100 * inf.se)
    assert row["se"] ** 2 == pytest.approx(row["se_seed"] ** 2 + row["se_image"] ** 2)
    assert row["se_seed"] == pytest.approx(100 * np.std([0.0625, 0.0375, 0.05], ddof=1) / 3**.5)
    assert row["images"] == 400 and row["seeds"] == 3


# --------------------------------------------------------------------------- verdicts

def _inf_evidence(effect: float, se_img: float, s: int = 6) -> dict:
    """Per-seed means (not 0/1) with a known effect and spread: s seeds, 50 images."""
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (s, 50, 1))
    noise = rng.normal(0, se_img * math.sqrt(50), (s, 50, 1))
    noise -= noise.mean(axis=1, keepdims=True)
    a = base + effect + noise
    return {"status": "ok", "images_num": np.concatenate([a, base], axis=2)}


@pytest.mark.parametrize("effect,sesoi,verdict,reason", [
    (-1.0, 0.3, "holds", "asserted side of 0, estimate ≥ SESOI"),
    (1.0, 0.3, "contradicted", "other side of 0"),
    (-0.43, 0.45, "inconclusive", "below the SESOI"),
    (0.0, 2.0, "contradicted", "no effect as large as the SESOI 2"),
])
def test_each_directional_verdict_and_reason(effect, sesoi, verdict, reason):
    row = judge(claim(sesoi=sesoi), _inf_evidence(effect, 0.05))
    assert row["verdict"] == verdict and reason in row["reason"], row


def test_a_clear_decrease_needs_the_sesoi_not_only_the_sign():
    """An effect of −0.5 points on the asserted side with a SESOI of 5 points is not "a clear
    decrease" (the issue's example)."""
    ev = cube([0, 0, 0], [300, 302, 298], n=60000, both=0)
    row = judge(claim(unit="%", sesoi=0.05), ev)
    assert row["hi"] < 0 and row["effect"] == pytest.approx(-0.5, abs=0.01)
    assert row["verdict"] == "contradicted" and "no effect as large as" in row["reason"]


def test_underpowered_names_the_mde_beside_the_sesoi():
    row = judge(claim(unit="%", sesoi=0.03), cube([8, 1, 4], [1, 6, 3]))
    assert row["verdict"] == "inconclusive" and row["reason"].startswith("underpowered")
    assert f"detects ≥ {row['mde']:.3g}, SESOI 3" in row["reason"] and row["power"] < 0.8
    inf = cs.two_way_inference(cube([8, 1, 4], [1, 6, 3])["images_num"])
    assert row["mde"] == pytest.approx(100 * cs.minimum_detectable_effect(inf.se, 2, 0.03))


def test_equivalent_and_at_least():
    eq = judge(claim(direction="equivalent", margin=3.0, sesoi=3.0), _inf_evidence(0.0, 0.05))
    assert eq["verdict"] == "equivalent" and "inside ±3" in eq["reason"]
    far = judge(claim(direction="equivalent", margin=0.3, sesoi=0.3), _inf_evidence(2.0, 0.05))
    assert far["verdict"] == "contradicted"
    ok = judge(claim(direction="at_least", margin=0.5, sesoi=0.5), _inf_evidence(-0.2, 0.02))
    assert ok["lo"] < 0 and ok["lo"] > -0.5 and ok["verdict"] == "holds"
    bad = judge(claim(direction="at_least", margin=0.5, sesoi=0.5), _inf_evidence(-2.0, 0.02))
    assert bad["verdict"] == "contradicted"


def test_one_training_run_is_inconclusive_whatever_its_effect():
    ev = cube([45], [5], n=100)  # a 40-point effect on one pair of models
    row = judge(claim(direction="greater", unit="%", sesoi=0.01), ev)
    assert row["lo"] > 0  # the image-level interval alone would say "holds" ...
    assert row["verdict"] == "inconclusive" and row["basis"] == "one training run"
    assert "one training run" in row["reason"]  # ... the training's variation is unseen


def test_a_one_run_row_borrows_the_seed_variance_it_declares():
    src = claim("000-src", direction="greater", unit="%", sesoi=0.01)
    one = claim("000-one", direction="greater", unit="%", sesoi=0.01, borrow="000-src")
    evs = {"000-src": cube([45, 40, 35], [5, 5, 5]), "000-one": cube([45], [5])}
    rows = {r["id"]: r for r in judge_all([one, src], evs)}
    r = rows["000-one"]
    assert r["basis"] == "one training run, seed variance from 000-src (3 seeds)"
    s2 = np.var([0.40, 0.35, 0.30], ddof=1)  # per-seed effects of the source
    inf = cs.two_way_inference(evs["000-one"]["images_num"], borrowed_var=s2, borrowed_df=2)
    assert r["se"] == pytest.approx(100 * inf.se) and r["df"] == 2
    assert r["verdict"] == "holds"


def test_exact_mcnemar_stops_a_few_discordant_images_deciding():
    """5 vs 0 discordant images of 100: the normal interval excludes 0 (borrowed seed variance
    0) but the exact McNemar p is 2 · 2⁻⁵ = 0.0625."""
    src = claim("src", direction="greater", sesoi=0.001)
    c = claim("few", direction="greater", sesoi=0.001, borrow="src")
    evs = {"src": cube([1] * 30, [0] * 30), "few": cube([5], [0])}  # s² = 0 on 29 df
    r = {x["id"]: x for x in judge_all([src, c], evs)}["few"]
    assert r["lo"] > 0 and r["verdict"] == "inconclusive"
    assert r["reason"].startswith("exact McNemar p = 0.0625 (5 vs 0 discordant images)")
    assert stats.binomtest(5, 5, 0.5).pvalue == pytest.approx(0.0625)


def test_rates_on_images_both_arms_classify_correctly():
    num = np.array([[[1, 0], [1, 1], [0, 0], [0, 0]]], float)   # successes among correct
    den = np.array([[[1, 1], [1, 1], [1, 0], [0, 1]]], float)   # correct per arm
    both = den.min(axis=2, keepdims=True) * np.ones_like(den)
    ev = {"status": "ok", "images_num": num, "images_den": den,
          "both_correct_num": num * both, "both_correct_den": both}
    row = judge(claim(unit="%"), ev)
    assert row["effect"] == pytest.approx(100 * (2 / 3 - 1 / 3))   # each arm its own correct
    assert row["effect_both_correct"] == pytest.approx(100 * (2 / 2 - 1 / 2))
    assert "pp; on images both arms classify correctly: 50 [" in claims_markdown([row])


def test_rank_claims_need_enough_models():
    three = judge(claim(direction="less"), {"status": "ok", "rank_x": [1, 2, 3],
                                              "rank_y": [3, 2, 1]})
    assert three["verdict"] == "not evaluable" and "≥ 5 models" in three["reason"]
    six = judge(claim(direction="less"), {"status": "ok", "rank_x": list(range(6)),
                                            "rank_y": [6, 5, 4, 3, 2, 1]})
    assert six["verdict"] == "holds" and six["effect"] == pytest.approx(-1.0)
    assert six["p"] == pytest.approx(1 / 720)  # two-sided exact 2/720, halved: one side


@pytest.mark.parametrize("direction,orders,verdict", [
    ("increasing", [1, 1, 1], "holds"),
    ("decreasing", [1, 1, 1], "contradicted"),
    ("decreasing", [-1, -1, -1], "holds"),
    ("increasing", [-1, -1, -1], "contradicted"),
    ("increasing", [1, 1, 0], "inconclusive"),
    ("increasing", [1, 1], "inconclusive"),   # fewer than 3 seeds decide nothing
])
def test_censored_rule_respects_the_direction_and_needs_three_seeds(direction, orders, verdict):
    ev = {"status": "ok", "censored": True, "orders": {str(i): o for i, o in enumerate(orders)}}
    row = judge(claim(direction=direction), ev)
    assert row["verdict"] == verdict
    if len(orders) < 3:
        assert "needs ≥ 3 seeds" in row["reason"]


def test_benjamini_hochberg_adjusts_exploratory_rows_only():
    from statsmodels.stats.multitest import multipletests

    effects = [-1.0, -0.1, -0.05, -0.02]  # raw p 5e-7, 0.018, 0.11, 0.30
    cl = [claim(f"e{i}", sesoi=0.01) for i in range(4)] + [claim("h", sesoi=0.01,
                                                                 headline=True)]
    evs = {f"e{i}": _inf_evidence(e, 0.1) for i, e in enumerate(effects)}
    evs["h"] = _inf_evidence(-0.1, 0.1)
    raw = [judge(c, evs[c["id"]]) for c in cl]
    rows = judge_all(cl, evs)
    p = [r["p"] for r in raw[:4]]
    q = multipletests(p, method="fdr_bh")[1]
    assert [r["q"] for r in rows[:4]] == pytest.approx(list(q))
    for r0, r, qi in zip(raw, rows, q):
        assert r["verdict"] == (r0["verdict"] if qi < 0.025 or r0["verdict"] == "inconclusive"
                                else "inconclusive")
    assert any(r0["verdict"] != r["verdict"] for r0, r in zip(raw[:4], rows[:4]))  # bites
    assert rows[4]["verdict"] == raw[4]["verdict"] and math.isnan(rows[4]["q"])


def test_not_evaluable_and_not_run_keep_the_reason():
    row = judge(claim(), {"status": "not_evaluable", "reason": "gn seed 42 degenerate"})
    assert row["verdict"] == "not evaluable" and row["reason"] == "gn seed 42 degenerate"
    row = judge(claim(), {"status": "not_run", "reason": "extended preset only"})
    assert row["verdict"] == "not run" and row["reason"] == "extended preset only"


def test_trend_from_a_cube_is_the_slope_per_doubling():
    x = [1.0, 2.0, 4.0]
    rng = np.random.default_rng(3)
    num = rng.normal(0, 0.1, (3, 40, 3)) + np.array([0.0, 0.5, 1.0])
    row = judge(claim(direction="increasing", sesoi=0.1), {"status": "ok",
                                                             "images_num": num, "x": x})
    per_seed = [np.polyfit(np.log2(x), num[s].mean(axis=0), 1)[0] for s in range(3)]
    assert row["effect"] == pytest.approx(np.mean(per_seed))
    assert row["verdict"] == "holds"


def test_an_arm_without_denominator_gives_no_interval():
    ev = {"status": "ok", "images_num": np.zeros((2, 3, 2)), "images_den": np.zeros((2, 3, 2))}
    row = judge(claim(), ev)
    assert row["verdict"] == "inconclusive" and "undefined" in row["reason"]


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("change,key", [
    ({"direction": "smaller"}, "direction"),
    ({"margin": -1.0}, "margin"),
    ({"direction": "at_least", "margin": 0.0, "sesoi": 0.0}, "margin"),
    ({"direction": "equivalent", "margin": 0.0, "sesoi": 0.0}, "margin"),
    ({"unit": "pts"}, "unit"),
    ({"sesoi": -0.01}, "sesoi"),
    ({"direction": "equivalent", "margin": 0.03, "sesoi": 0.05}, "sesoi"),
    ({"headline": "yes"}, "headline"),
])
def test_validation_names_the_claim_and_the_key(change, key):
    c = claim(cid="000-bad", **change)
    with pytest.raises(ValueError, match=rf"000-bad.*'{key}'"):
        validate_claim(c)


def test_validation_missing_key_and_duplicates():
    c = claim(cid="000-miss")
    del c["metric"]
    with pytest.raises(ValueError, match=r"000-miss.*'metric'"):
        validate_claim(c)
    with pytest.raises(ValueError, match=r"dup.*'id'"):
        validate_claims([claim("dup"), claim("dup")])
    validate_claims([claim("h1", headline=True), claim("h2", headline=True)])  # two rows
    with pytest.raises(ValueError, match="status"):
        judge(claim(), {"per_seed": {}})


def test_judge_all_rejects_unknown_ids_and_marks_missing_evidence():
    with pytest.raises(ValueError, match="typo"):
        judge_all([claim("a")], {"typo": {"status": "ok"}})
    rows = judge_all([claim("a")], {})
    assert rows[0]["verdict"] == "inconclusive" and "no evidence" in rows[0]["reason"]


# --------------------------------------------------------------------------- tables

def _rows() -> tuple[list[dict], list[dict]]:
    cs = [claim("000-a", direction="less", unit="%"),
          claim("000-head", direction="less", unit="%", headline=True),
          claim("000-eq", direction="equivalent", margin=0.03, sesoi=0.03, unit="%"),
          claim("001-run", study="study001", direction="greater"),
          claim("001-bad", study="study001", direction="greater", ours=True),
          claim("003-cens", study="study003", direction="decreasing")]
    evs = {"000-a": seeds(-0.5, -0.52, -0.51),
           "000-head": seeds(-0.2, 0.1, 0.05),
           "000-eq": seeds(0.001, 0.0, -0.002),
           "001-run": {"status": "not_run", "reason": "extended preset"},
           "001-bad": {"status": "not_evaluable", "reason": "haat seed 0 degenerate"},
           "003-cens": {"status": "ok", "censored": True,
                        "orders": {"0": -1, "1": -1, "2": -1}}}
    return cs, judge_all(cs, evs)


def test_claims_frame_has_the_spec_columns_in_order():
    cs, rows = _rows()
    frame = claims_frame(rows)
    assert list(frame.columns[:len(COLUMNS)]) == COLUMNS
    assert list(frame["id"]) == [c["id"] for c in cs]
    assert list(frame["headline"])[:2] == ["exploratory", "headline"]
    assert claims_frame([]).columns.tolist() == COLUMNS + EXTRA_COLUMNS


def test_markdown_lists_every_claim_and_verdict(tmp_path):
    cs, rows = _rows()
    md = claims_markdown(rows, {"study000": ["Gauss-Newton: 2 of the study's 15 epochs"]})
    for c in cs:
        assert c["id"] in md
    for v in ("holds", "equivalent", "inconclusive", "not evaluable", "not run"):
        assert f"**{v}**" in md
    # the counts split by basis: 000-a, 000-eq, 000-head, 003-cens rest on seeds
    assert "All rows: 2 holds (2 seeds), 1 equivalent (1 seeds), 1 inconclusive (1 seeds)" in md
    for study in ("## study000", "## study001", "## study003"):
        assert study in md
    assert "Deviations from the study" in md and "2 of the study's 15 epochs" in md
    sec = md.split("## study000")[1].split("## study001")[0]
    assert sec.index("000-head") < sec.index("000-a")  # headline first
    assert "−51.0 [" in md  # percentage points, a real minus sign
    csv, mdp = tmp_path / "out" / "claims.csv", tmp_path / "out" / "claims.md"
    write_claims(rows, csv, mdp, deviations={"study000": ["x"]}, title="Claims")
    assert mdp.read_text().startswith("# Claims")
    back = pd.read_csv(csv)
    assert list(back["verdict"]) == [r["verdict"] for r in rows]
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))


def test_fmt_interval():
    assert fmt_interval(-51.7, -56.0, -47.4) == "−51.7 [−56.0, −47.4]"
    assert fmt_interval(0.01234, 0.011, 0.0135) == "0.0123 [0.0110, 0.0135]"
    assert fmt_interval(2.0, math.nan, math.nan) == "2.00"


def test_reason_shows_the_declared_margin_in_points():
    row = judge(claim(direction="at_least", margin=0.07, sesoi=0.07, unit="%"),
                  seeds(0.01, 0.02, 0.015))
    assert row["margin"] == 7.0 and row["sesoi"] == 7.0 and "−7 (the margin)" in row["reason"]


def test_rows_survive_a_json_round_trip():
    import json

    _, rows = _rows()
    back = json.loads(json.dumps(rows))
    assert claims_markdown(back) == claims_markdown(rows)


def test_flags_are_grouped_by_model_once_each():
    text = join_flags(["gn seed 42: margin_only", "adam seed 42: margin_only",
                         "gn seed 42: square_only", "gn seed 42: margin_only", "degenerate x"])
    assert text == "gn seed 42: margin_only, square_only; adam seed 42: margin_only; degenerate x"
