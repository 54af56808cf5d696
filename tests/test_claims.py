"""The claims engine (curvrobust.claims) on synthetic per-seed and per-image data whose
answers are known by construction or by hand: one test per verdict, the t-interval and the
bootstrap against hand computations, the arms and the trend slope, validation and the tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from curvrobust import claims as C

T975_2 = 4.302652729911275  # t_{0.975, 2}, from tables


def claim(cid: str = "c1", direction: str = "less", margin: float = 0.0, unit: str = "",
          study: str = "study000", headline: bool = False, **kw) -> dict:
    c = {"id": cid, "study": study, "text": f"text of {cid}", "where": "§3, Table 1",
         "metric": "FGSM success among correct", "comparison": "A − B, same seed",
         "direction": direction, "margin": margin, "unit": unit, "headline": headline,
         "ours": False, "worst_case": False, "study_value": "A 51.51 % vs B 75.64 %",
         "measure": "fgsm", "args": {"eps": 0.1}}
    c.update(kw)
    return c


def seeds(*effects: float) -> dict:
    return {"status": "ok", "per_seed": {str(i): e for i, e in enumerate(effects)}}


# --------------------------------------------------------------------------- statistics

def test_t_interval_equals_hand_computation():
    mean, lo, hi = C.t_interval([1.0, 2.0, 3.0])
    half = T975_2 * 1.0 / math.sqrt(3)  # s = 1
    assert mean == pytest.approx(2.0)
    assert (lo, hi) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert half == pytest.approx(2.484, abs=1e-3)


def test_t_interval_of_identical_effects_is_a_point():
    assert C.t_interval([-1.5, -1.5, -1.5]) == (-1.5, -1.5, -1.5)


def test_arm_values_ratio_is_sum_over_sum_not_mean_of_ratios():
    num = np.array([[1, 0], [0, 1], [1, 1], [1, 0]], float)
    den = np.array([[1, 1], [1, 1], [1, 0], [0, 1]], float)
    got = C.arm_values(num, den)
    assert got == pytest.approx([num[:, 0].sum() / den[:, 0].sum(),
                                 num[:, 1].sum() / den[:, 1].sum()])
    assert C.arm_values(num) == pytest.approx(num.mean(axis=0))
    assert C.images_effect(num, den) == pytest.approx(3 / 3 - 2 / 3)  # by hand


def test_trend_slope_against_log2_x_equals_polyfit():
    x = [0.25, 1.0, 4.0]
    y = [10.0, 7.0, 1.0]
    expected = np.polyfit(np.log2(x), y, 1)[0]
    assert C.slope_log2(x, y) == pytest.approx(expected)
    assert expected == pytest.approx(-2.25)  # (1 − 10) / (2 − (−2))
    # per-image arms: the slope of the arm means
    num = np.array([[12, 7, 0], [8, 7, 2]], float)
    assert C.images_effect(num, x=x) == pytest.approx(expected)


def test_bootstrap_is_deterministic_and_covers_a_large_clear_effect():
    rng = np.random.default_rng(1)
    n = 400
    a = rng.binomial(1, 0.2, n).astype(float)
    b = rng.binomial(1, 0.8, n).astype(float)
    num = np.stack([a, b], axis=1)
    r1 = C.paired_bootstrap(num, n_boot=500, seed=7)
    r2 = C.paired_bootstrap(num, n_boot=500, seed=7)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, C.paired_bootstrap(num, n_boot=500, seed=8))
    lo, hi = C.percentile_interval(r1)
    effect = a.mean() - b.mean()
    assert lo < effect < hi
    assert hi < -0.4  # the true difference is −0.6


def test_bootstrap_resamples_paired_rows():
    # arm1 = arm0 + 1 on every image: every paired replicate is exactly −1
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    reps = C.paired_bootstrap(np.stack([a, a + 1], axis=1), n_boot=300, seed=0)
    assert reps == pytest.approx(np.full(300, -1.0))


# --------------------------------------------------------------------------- verdicts

@pytest.mark.parametrize("direction,effects", [
    ("less", (-3.0, -2.0, -2.5)),
    ("greater", (3.0, 2.0, 2.5)),
    ("decreasing", (-1.0, -1.2, -0.9)),
    ("increasing", (1.0, 1.2, 0.9)),
])
def test_holds_for_directional_claims(direction, effects):
    row = C.judge(claim(direction=direction), seeds(*effects))
    assert row["verdict"] == "holds"
    assert row["basis"] == "3 seeds" and row["seeds"] == 3
    assert row["hi"] < 0 if direction in ("less", "decreasing") else row["lo"] > 0
    assert "interval" in row["reason"]


def test_at_least_holds_above_minus_margin_even_with_a_negative_effect():
    row = C.judge(claim(direction="at_least", margin=2.0), seeds(-0.5, -1.0, -0.8))
    assert row["verdict"] == "holds"
    assert row["lo"] > -2.0 and row["effect"] < 0


def test_contradicted():
    assert C.judge(claim(direction="less"), seeds(3.0, 2.0, 2.5))["verdict"] == "contradicted"
    assert C.judge(claim(direction="greater"), seeds(-3, -2, -2.5))["verdict"] == "contradicted"
    row = C.judge(claim(direction="at_least", margin=1.0), seeds(-5.0, -4.0, -4.5))
    assert row["verdict"] == "contradicted"
    assert "below" in row["reason"]
    row = C.judge(claim(direction="equivalent", margin=1.0), seeds(5.0, 4.0, 4.5))
    assert row["verdict"] == "contradicted"
    assert "outside" in row["reason"]


def test_equivalent():
    row = C.judge(claim(direction="equivalent", margin=3.0), seeds(0.1, -0.2, 0.05))
    assert row["verdict"] == "equivalent"
    assert "inside ±3.0" in row["reason"]


def test_inconclusive_when_the_interval_crosses():
    row = C.judge(claim(direction="less"), seeds(-1.0, 1.0, 0.5))
    assert row["verdict"] == "inconclusive"
    assert "crosses 0" in row["reason"]
    row = C.judge(claim(direction="equivalent", margin=1.0), seeds(0.0, 2.0, 1.0))
    assert row["verdict"] == "inconclusive"


def test_inconclusive_when_no_interval_can_be_formed():
    row = C.judge(claim(), seeds(-5.0))
    assert row["verdict"] == "inconclusive"
    assert row["effect"] == -5.0 and math.isnan(row["lo"])
    assert "one seed and no per-image data" in row["reason"]
    row = C.judge(claim(), seeds(-5.0, math.nan, -4.0))
    assert row["verdict"] == "inconclusive" and "undefined" in row["reason"]
    row = C.judge(claim(), {"status": "ok"})
    assert row["verdict"] == "inconclusive" and "no interval" in row["reason"]


def test_identical_seed_effects_decide_by_the_point():
    row = C.judge(claim(direction="less"), seeds(-2.0, -2.0))
    assert row["verdict"] == "holds" and row["lo"] == row["hi"] == -2.0


def test_not_evaluable_keeps_the_reason():
    ev = {"status": "not_evaluable", "reason": "gn seed 42: constant predictions"}
    row = C.judge(claim(), ev)
    assert row["verdict"] == "not evaluable"
    assert row["reason"] == ev["reason"]


def test_not_run():
    row = C.judge(claim(), {"status": "not_run", "reason": "configs/extended.yaml"})
    assert row["verdict"] == "not run" and row["reason"] == "configs/extended.yaml"
    assert C.judge(claim(), {"status": "not_run"})["reason"]


def test_censored_holds_only_when_every_seed_orders_as_asserted():
    ev = {"status": "ok", "censored": True, "orders": {"0": 1, "1": 1, "2": 1},
          "per_seed": {"0": -3.0, "1": 2.0}}  # per-seed effects do not decide
    row = C.judge(claim(direction="less"), ev)
    assert row["verdict"] == "holds"
    assert "seeds 0, 1, 2" in row["reason"] and "censored" in row["reason"]
    ev["orders"] = {"0": 1, "1": -1, "2": 1}
    row = C.judge(claim(direction="less"), ev)
    assert row["verdict"] == "inconclusive" and "seed 1 opposite" in row["reason"]
    ev["orders"] = {"0": 1, "1": 0, "2": 1}
    assert C.judge(claim(direction="less"), ev)["verdict"] == "inconclusive"
    ev["orders"] = {"0": -1, "1": -1, "2": -1}
    assert C.judge(claim(direction="less"), ev)["verdict"] == "contradicted"


def test_one_run_with_images_uses_the_paired_bootstrap_in_display_units():
    rng = np.random.default_rng(3)
    n = 300
    correct = np.ones((n, 2))
    num = np.stack([rng.binomial(1, 0.3, n), rng.binomial(1, 0.7, n)], axis=1).astype(float)
    ev = {"status": "ok", "per_seed": {"42": None}, "images_num": num.tolist(),
          "images_den": correct.tolist(), "ours": "A 30 %, B 70 %", "flags": ["a: margin_only"]}
    row = C.judge(claim(direction="less", unit="%"), ev, n_boot=400, seed=0)
    assert row["verdict"] == "holds" and row["basis"] == "one training run"
    expected = 100 * (num[:, 0].mean() - num[:, 1].mean())
    assert row["effect"] == pytest.approx(expected)
    assert row["lo"] < expected < row["hi"] < 0
    assert row["flags"] == "a: margin_only" and row["ours_value"] == "A 30 %, B 70 %"
    assert row == C.judge(claim(direction="less", unit="%"), ev, n_boot=400, seed=0)


def test_precomputed_bootstrap_and_effect():
    ev = {"status": "ok", "effect": 0.02, "bootstrap": list(np.linspace(0.01, 0.03, 101))}
    row = C.judge(claim(direction="greater", unit="%"), ev)
    assert row["verdict"] == "holds" and row["effect"] == pytest.approx(2.0)
    assert row["lo"] == pytest.approx(1.05) and row["hi"] == pytest.approx(2.95)
    with pytest.raises(ValueError, match="'effect'"):
        C.judge(claim(), {"status": "ok", "bootstrap": [1.0, 2.0]})


def test_percent_unit_scales_margin_too():
    row = C.judge(claim(direction="equivalent", margin=0.02, unit="%"),
                  seeds(0.001, -0.002, 0.0))
    assert row["margin"] == pytest.approx(2.0) and row["verdict"] == "equivalent"
    assert "±2" in row["reason"]


def test_trend_from_images_with_x():
    x = [0.25, 1.0, 4.0]
    rng = np.random.default_rng(5)
    n = 200
    num = np.stack([rng.normal(9, 1, n), rng.normal(6, 1, n), rng.normal(3, 1, n)], axis=1)
    row = C.judge(claim(direction="decreasing"), {"status": "ok", "images_num": num, "x": x},
                  n_boot=300)
    assert row["verdict"] == "holds"
    assert row["effect"] == pytest.approx(np.polyfit(np.log2(x), num.mean(axis=0), 1)[0])


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("change,key", [
    ({"direction": "smaller"}, "direction"),
    ({"margin": -1.0}, "margin"),
    ({"direction": "at_least", "margin": 0.0}, "margin"),
    ({"direction": "equivalent", "margin": 0.0}, "margin"),
    ({"unit": "pts"}, "unit"),
    ({"headline": "yes"}, "headline"),
])
def test_validation_names_the_claim_and_the_key(change, key):
    c = claim(cid="000-bad", **change)
    with pytest.raises(ValueError, match=rf"000-bad.*'{key}'"):
        C.validate_claim(c)


def test_validation_missing_key_and_duplicates():
    c = claim(cid="000-miss")
    del c["metric"]
    with pytest.raises(ValueError, match=r"000-miss.*'metric'"):
        C.validate_claim(c)
    with pytest.raises(ValueError, match=r"dup.*'id'"):
        C.validate_claims([claim("dup"), claim("dup")])
    C.validate_claims([claim("h1", headline=True), claim("h2", headline=True)])  # two rows
    with pytest.raises(ValueError, match="status"):
        C.judge(claim(), {"per_seed": {}})


def test_judge_all_rejects_unknown_ids_and_marks_missing_evidence():
    with pytest.raises(ValueError, match="typo"):
        C.judge_all([claim("a")], {"typo": {"status": "ok"}})
    rows = C.judge_all([claim("a")], {})
    assert rows[0]["verdict"] == "inconclusive" and "no evidence" in rows[0]["reason"]


# --------------------------------------------------------------------------- tables

def _rows() -> tuple[list[dict], list[dict]]:
    cs = [claim("000-a", direction="less", unit="%"),
          claim("000-head", direction="less", unit="%", headline=True),
          claim("000-eq", direction="equivalent", margin=0.03, unit="%"),
          claim("001-run", study="study001", direction="greater"),
          claim("001-bad", study="study001", direction="greater", ours=True),
          claim("003-cens", study="study003", direction="decreasing")]
    evs = {"000-a": seeds(-0.5, -0.52, -0.51),
           "000-head": seeds(-0.2, 0.1, 0.05),
           "000-eq": seeds(0.001, 0.0, -0.002),
           "001-run": {"status": "not_run", "reason": "extended preset"},
           "001-bad": {"status": "not_evaluable", "reason": "haat seed 0 degenerate"},
           "003-cens": {"status": "ok", "censored": True, "orders": {"0": 1, "1": -1}}}
    return cs, C.judge_all(cs, evs)


def test_claims_frame_has_the_spec_columns_in_order():
    cs, rows = _rows()
    frame = C.claims_frame(rows)
    assert list(frame.columns[:len(C.COLUMNS)]) == C.COLUMNS
    assert list(frame["id"]) == [c["id"] for c in cs]
    assert list(frame["headline"])[:2] == ["exploratory", "headline"]
    assert C.claims_frame([]).columns.tolist() == C.COLUMNS + C.EXTRA_COLUMNS


def test_markdown_lists_every_claim_and_verdict(tmp_path):
    cs, rows = _rows()
    md = C.claims_markdown(rows, {"study000": ["Gauss-Newton: 2 of the study's 15 epochs"]})
    for c in cs:
        assert c["id"] in md
    for v in ("holds", "contradicted", "equivalent", "inconclusive", "not evaluable", "not run"):
        assert f"**{v}**" in md
    for study in ("## study000", "## study001", "## study003"):
        assert study in md
    assert "Deviations from the study" in md and "2 of the study's 15 epochs" in md
    sec = md.split("## study000")[1].split("## study001")[0]
    assert sec.index("000-head") < sec.index("000-a")  # headline first
    assert "−51.0 [" in md  # percentage points, a real minus sign
    csv, mdp = tmp_path / "out" / "claims.csv", tmp_path / "out" / "claims.md"
    C.write_claims(rows, csv, mdp, deviations={"study000": ["x"]}, title="Claims")
    assert mdp.read_text().startswith("# Claims")
    back = pd.read_csv(csv)
    assert list(back["verdict"]) == [r["verdict"] for r in rows]
    assert not list(tmp_path.joinpath("out").glob(".*.tmp"))


def test_fmt_interval():
    assert C.fmt_interval(-51.7, -56.0, -47.4) == "−51.7 [−56.0, −47.4]"
    assert C.fmt_interval(0.01234, 0.011, 0.0135) == "0.0123 [0.0110, 0.0135]"
    assert C.fmt_interval(2.0, math.nan, math.nan) == "2.00"


def test_reason_shows_the_declared_margin_in_points():
    row = C.judge(claim(direction="at_least", margin=0.07, unit="%"), seeds(0.01, 0.02, 0.015))
    assert row["margin"] == 7.0 and f"{C.MINUS}7.0" in row["reason"]


def test_rows_survive_a_json_round_trip():
    import json

    _, rows = _rows()
    back = json.loads(json.dumps(rows))
    assert C.claims_markdown(back) == C.claims_markdown(rows)


def test_flags_are_grouped_by_model_once_each():
    text = C.join_flags(["gn seed 42: margin_only", "adam seed 42: margin_only",
                         "gn seed 42: square_only", "gn seed 42: margin_only", "degenerate x"])
    assert text == "gn seed 42: margin_only, square_only; adam seed 42: margin_only; degenerate x"
