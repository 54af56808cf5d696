"""Study 003's reports (curvrobust.reports.study003: tables, rate measures, claim evidence;
study003_figures: figures) built from small hand-made per-run CSV files in the workflow's
layout, with the plan's presentation or a modified one; means, 95 % intervals, rate measures
and per-seed trends are checked against hand computations."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from curvrobust.claims.stats import per_seed_effects
from curvrobust.plans import study003 as plan
from curvrobust.plans.config import fill_defaults
from curvrobust.plans.study003 import text as plan_text
from curvrobust.reports import study003 as rep
from curvrobust.reports import study003_figures as figs



def _evidence(*args):
    """The report's evidence per claim id, as the published dicts (Evidence.as_mapping)."""
    return {k: v.as_mapping() for k, v in rep.claim_evidence(*args).items()}

T975_DF1 = 12.706204736174707  # Student-t 97.5 % quantile, 1 degree of freedom (two seeds)
SCALES = {"scale0p5": 0.5, "clean": 1.0, "scale2": 2.0}
SEEDS = (0, 1)
N_EXAMPLES = 3
STAGE_KEYS = ["init", "trained_inverse_square", "trained_none"]
PGA_SETTINGS = {"climb_fraction": 0.9, "climb_percent": "90 %", "plateau_window": 10,
                "loss_rtol": 0.01, "maxima_rtol": 0.001}
TRAINING_SETTINGS = {"log_slope_steps": 3, "initial_steps": 4, "loss_threshold": 1.0}


def _half2(a: float, b: float) -> float:
    """Half-width of the 95 % interval of the mean of two values."""
    return T975_DF1 * abs(a - b) / 2


def _examples(stage: str, s: float, seed: int) -> pd.DataFrame:
    """Per-example PGA results; loss_start of example i is s·(1 + seed) + i (mean s·(1+seed)+1)
    at init, ten times that after training; maxima_count is 1 + seed; iters_to_climb of
    example i is 5 + i + seed; maxima_converged is NaN for example 0, else 2 + seed."""
    k = 1.0 if stage == "init" else 10.0
    rows = []
    for i in range(N_EXAMPLES):
        rows.append(dict(stage=stage.split("_")[0], lr_scaling=stage[len("trained_"):] or "",
                         scale=s, eps=1.0, norm="l2", data_lo=0.0, data_hi=s,
                         step_size=0.1, seed=seed, example=i,
                         loss_start=k * (s * (1 + seed) + i), loss_final=k * s,
                         loss_final_max=k * s, climb=1.0, iters_to_climb=5.0 + i + seed,
                         converged_share=0.5,
                         maxima_converged=math.nan if i == 0 else 2.0 + seed,
                         iters_to_loss_tol=2.0 + i, iters_to_tol=3.0,
                         reached_tol=float(i % 2), mapping_norm_final=0.1 * s,
                         maxima_count=1 + seed, maxima_spread=0.0, maxima_rel_spread=0.01 * s,
                         maxima_std=0.0))
    return pd.DataFrame(rows)


def _trace(stage: str, s: float, seed: int) -> pd.DataFrame:
    return pd.DataFrame([dict(stage=stage.split("_")[0], scale=s, eps=1.0, norm="l2",
                              data_lo=0.0, data_hi=s, step_size=0.1, seed=seed, iteration=it,
                              loss_mean=s * (it + 1) + seed, loss_median=s * (it + 1),
                              mapping_norm_mean=1.0 / (it + 1), share_below_tol=0.0)
                         for it in range(4)])


def _epochs(s: float, seed: int, sc: str) -> pd.DataFrame:
    """Three epochs; robust_train_loss = s·(4 − epoch) + seed, test_acc 0.5 + 0.1·seed."""
    return pd.DataFrame([dict(scale=s, eps=1.0, lr_scaling=sc, lr=0.05, seed=seed, epoch=e,
                              step=2 * e, robust_train_loss=s * (4 - e) + seed, train_loss=0.5,
                              train_acc=0.9, test_loss=0.6, test_acc=0.5 + 0.1 * seed,
                              robust_test_loss=1.0, robust_test_acc=0.2 + 0.1 * e)
                         for e in (1, 2, 3)])


def _steps_frame(loss, s: float = 1.0, seed: int = 0, sc: str = "none") -> pd.DataFrame:
    return pd.DataFrame([dict(scale=s, eps=1.0, lr_scaling=sc, lr=0.05, seed=seed, step=k,
                              epoch=(k + 1) // 2, robust_batch_loss=v)
                         for k, v in enumerate(loss, start=1)])


def _steps(s: float, seed: int, sc: str) -> pd.DataFrame:
    """Six steps; the first three fall as 4·exp(r·(k − 1)) with r = −0.1·(1 + seed)/s, then
    0.5 (below 1) from step 2 + 2·s for lr none, never for lr/s² at s = 2."""
    r = -0.1 * (1 + seed) / s
    loss = [4 * math.exp(r * (k - 1)) for k in (1, 2, 3)] + [2.0, 2.0, 2.0]
    if not (sc == "inverse_square" and s == 2.0):
        cross = int(2 + 2 * s)  # 3, 4, 6
        loss[cross - 1:] = [0.5] * (6 - cross + 1)
    return _steps_frame(loss, s, seed, sc)


@pytest.fixture
def records(tmp_path) -> dict[str, list[dict]]:
    """The workflow's records for the PGA outputs and for the training outputs; the trained
    stages' files are listed first so that row order cannot come from the file order."""
    pga, training = [], []
    for v, s in SCALES.items():
        for seed in SEEDS:
            d = tmp_path / v / f"seed{seed}"
            d.mkdir(parents=True)
            files = {}
            for stage in STAGE_KEYS[::-1]:
                files[f"{stage}_examples"] = str(d / f"pga_{stage}_examples.csv")
                files[f"{stage}_trace"] = str(d / f"pga_{stage}_trace.csv")
                _examples(stage, s, seed).to_csv(files[f"{stage}_examples"], index=False)
                _trace(stage, s, seed).to_csv(files[f"{stage}_trace"], index=False)
            pga.append(dict(variant=v, scale=s, seed=seed, files=files))
    for sc in ("none", "inverse_square"):
        for v, s in SCALES.items():
            for seed in SEEDS:
                d = tmp_path / v / f"seed{seed}" / f"lr_{sc}"
                d.mkdir(parents=True)
                _epochs(s, seed, sc).to_csv(d / "epochs.csv", index=False)
                _steps(s, seed, sc).to_csv(d / "steps.csv", index=False)
                training.append(dict(variant=v, scale=s, seed=seed, lr_scaling=sc,
                                     files={"epochs": str(d / "epochs.csv"),
                                            "steps": str(d / "steps.csv")}))
    return {"pga": pga, "training": training}


def _pres(name: str) -> dict:
    return plan.Study003({}).presentation(name)


def test_every_planned_output_has_a_presentation_and_a_builder():
    assert set(plan.TABLES) == set(rep.TABLES) == set(plan_text.TABLE_PRESENTATION)
    assert set(plan.FIGURES) == set(figs.FIGURES) == set(plan_text.FIGURE_PRESENTATION)
    with pytest.raises(KeyError):
        plan.Study003({}).presentation("table_nope")
    with pytest.raises(KeyError):
        rep.make_table("table_nope", [], {}, dataset="mnist", settings={})
    with pytest.raises(KeyError):
        figs.make_figure("fig_nope", [], {}, dataset="mnist")


def test_pga_table_rows_headings_values_and_caption(records):
    pres = _pres("table_pga_by_scale")
    numeric, readable, caption = rep.make_table("table_pga_by_scale", records["pga"], pres,
                                                dataset="toyset", settings=PGA_SETTINGS)
    # rows: stage in the plan's order (shown by label), then ascending scale
    labels = pres["stages"]
    assert list(zip(readable["Stage"], readable["s"])) == [
        (labels[st], s) for st in STAGE_KEYS for s in sorted(SCALES.values())]
    assert list(numeric["stage"]) == [st for st in STAGE_KEYS for _ in SCALES]
    headings = [h.format(**PGA_SETTINGS) for h, _ in pres["columns"].values()]
    assert list(readable.columns) == ["Stage", "s", "Seeds", *headings]
    assert "iterations to 90 % of the climb" in headings
    assert (readable["Seeds"] == len(SEEDS)).all()
    assert (numeric["n_examples"] == N_EXAMPLES).all()
    # loss at start, trained (lr none), s = 2: per-seed means 10·(2·1 + 1) = 30 and 50
    row = numeric[(numeric["stage"] == "trained_none") & (numeric["scale"] == 2.0)].iloc[0]
    assert row["loss_start_mean"] == pytest.approx(40.0)
    assert row["loss_start_ci95"] == pytest.approx(_half2(30.0, 50.0))
    # iterations to the climb fraction: per-seed means 6 and 7
    assert row["iters_to_climb_mean"] == pytest.approx(6.5)
    # converged maxima skip the example without a converged start: per seed 2 and 3
    assert row["maxima_converged_mean"] == pytest.approx(2.5)
    text = readable[(readable["Stage"] == labels["trained_none"])
                    & (readable["s"] == 2.0)].iloc[0]
    assert text["loss at start"] == f"40.000 ± {_half2(30.0, 50.0):.3f}"
    assert text["distinct maxima (all starts)"] == f"1.50 ± {_half2(1.0, 2.0):.2f}"
    assert caption == pres["caption"].format(dataset="toyset", n_examples=N_EXAMPLES,
                                             **PGA_SETTINGS)
    assert "toyset" in caption and f"{N_EXAMPLES} test examples" in caption
    assert "90 % of each start's climb" in caption


def test_pga_table_follows_an_edited_presentation(records):
    pres = _pres("table_pga_by_scale")
    pres = dict(pres, stages={"trained_none": "B", "init": "A", "trained_inverse_square": "C"},
                by={"stage": "When", "scale": "scale"},
                columns={"loss_final": ("final loss", 1)}, caption="PGA on {dataset}.")
    numeric, readable, caption = rep.make_table("table_pga_by_scale", records["pga"], pres,
                                                dataset="toyset", settings=PGA_SETTINGS)
    assert list(readable.columns) == ["When", "scale", "Seeds", "final loss"]
    assert list(readable["When"]) == ["B"] * 3 + ["A"] * 3 + ["C"] * 3
    assert readable["final loss"].iloc[0] == "5.0 ± 0.0"  # trained, s = 0.5: 10·0.5 per seed
    assert caption == "PGA on toyset."
    with pytest.raises(ValueError, match="no label"):
        rep.make_table("table_pga_by_scale", records["pga"], dict(pres, stages={"init": "A"}),
                       dataset="toyset", settings=PGA_SETTINGS)


def test_adversarial_training_table(records):
    pres = _pres("table_adversarial_training")
    numeric, readable, caption = rep.make_table("table_adversarial_training",
                                                records["training"], pres, dataset="toyset",
                                                settings=TRAINING_SETTINGS)
    # rows: the presentation's lr order (inverse_square first), then ascending scale
    assert list(zip(numeric["lr_scaling"], numeric["scale"])) == [
        (sc, s) for sc in ("inverse_square", "none") for s in sorted(SCALES.values())]
    steps_heading = "first step with robust batch loss < 1"
    assert list(readable.columns) == [
        "lr", "s", "Seeds", steps_heading, "robust batch loss, step 1",
        "slope of log robust loss, first 3 steps", "robust train loss, epoch 1",
        "robust train loss, epoch 3", "clean test acc. %", "robust test acc. %"]
    assert readable["lr"].iloc[0] == "inverse_square (lr/s²)"
    row = numeric[(numeric["lr_scaling"] == "none") & (numeric["scale"] == 2.0)].iloc[0]
    # epoch 1: 2·3 + seed -> 6, 7; epoch 3: 2·1 + seed -> 2, 3
    assert row["robust_train_loss_epoch1_mean"] == pytest.approx(6.5)
    assert row["robust_train_loss_mean"] == pytest.approx(2.5)
    assert row["robust_train_loss_ci95"] == pytest.approx(_half2(2.0, 3.0))
    # accuracies in percent: clean 50 and 60; robust after epoch 3: 50 for both seeds
    assert row["test_acc_mean"] == pytest.approx(55.0)
    assert row["robust_test_acc_mean"] == pytest.approx(50.0)
    assert row["robust_test_acc_ci95"] == pytest.approx(0.0)
    # log-loss slope over the first 3 steps: exactly r = −0.1·(1 + seed)/2 -> −0.05, −0.1
    assert row["log_loss_slope_mean"] == pytest.approx(-0.075)
    assert row["log_loss_slope_ci95"] == pytest.approx(_half2(-0.05, -0.1))
    # the first step below 1 at s = 2, lr none: 6 for both seeds, none censored
    assert row["steps_below_mean"] == pytest.approx(6.0) and row["steps_below_censored"] == 0
    assert row["n_steps"] == 6
    lr_none_s2 = readable[(readable["lr"] == "none (same lr)") & (readable["s"] == 2.0)].iloc[0]
    assert lr_none_s2[steps_heading] == "6.0 ± 0.0"
    assert lr_none_s2["clean test acc. %"] == f"55.0 ± {_half2(50.0, 60.0):.1f}"
    # lr/s² at s = 2 never crosses: censored, every seed shown "> 6", no mean
    cens = numeric[(numeric["lr_scaling"] == "inverse_square") & (numeric["scale"] == 2.0)]
    assert cens["steps_below_censored"].iloc[0] == 2
    assert math.isnan(cens["steps_below_mean"].iloc[0])
    assert readable[steps_heading].iloc[2] == "> 6, > 6"
    assert caption == pres["caption"].format(dataset="toyset", **TRAINING_SETTINGS)
    assert not math.isnan(row["test_acc_ci95"])


# ---- rate measures (hand-computed) ----
def test_steps_below_with_and_without_censoring():
    steps = [1, 2, 3, 4, 5]
    assert rep.steps_below(steps, [1.5, 1.2, 0.99, 1.1, 0.5]) == (3, False)
    assert rep.steps_below(steps, [0.7, 1.2, 0.99, 1.1, 0.5]) == (1, False)
    # strictly below: a loss of exactly 1 (f ≡ 0) does not count; never below -> "> 5"
    assert rep.steps_below(steps, [2.0, 1.5, 1.0, 1.2, 1.0]) == (5, True)
    assert rep.fmt_steps(5, True) == "> 5" and rep.fmt_steps(3, False) == "3"
    assert rep.steps_below(steps, [2.0, 1.5, 1.0, 1.2, 1.0], threshold=1.3) == (3, False)
    assert rep.steps_cell([2, 4], [False, False]) == f"3.0 ± {_half2(2, 4):.1f}"
    assert rep.steps_cell([2, 8], [False, True]) == "2, > 8"
    with pytest.raises(ValueError):
        rep.steps_below([], [])


def test_log_loss_slope_hand_made_and_against_polyfit():
    # halving every step: log slope −ln 2, over any number of first steps
    assert rep.log_loss_slope([1, 2, 3, 4], [8.0, 4.0, 2.0, 1.0], 4) == pytest.approx(-math.log(2))
    assert rep.log_loss_slope([1, 2, 3, 4], [8.0, 4.0, 2.0, 100.0], 3) == pytest.approx(
        -math.log(2))
    # by hand: x = 1…4 (centred −1.5, −0.5, 0.5, 1.5; Σx² = 5), y = ln(2, 1.5, 1.6, 0.9):
    # Σxy = −1.5·0.693147 − 0.5·0.405465 + 0.5·0.470004 + 1.5·(−0.105361) = −1.165493
    loss = [2.0, 1.5, 1.6, 0.9, 0.7]
    got = rep.log_loss_slope([1, 2, 3, 4, 5], loss, 4)
    assert got == pytest.approx(-1.165493 / 5, abs=1e-6)
    assert got == pytest.approx(np.polyfit([1, 2, 3, 4], np.log(loss[:4]), 1)[0])
    # a run shorter than the window: every step; one step: no slope
    assert rep.log_loss_slope([1, 2], [1.0, math.e], 30) == pytest.approx(1.0)
    assert math.isnan(rep.log_loss_slope([1], [2.0], 30))
    with pytest.raises(ValueError, match="> 0"):
        rep.log_loss_slope([1, 2], [1.0, 0.0], 2)
    with pytest.raises(ValueError, match="first"):
        rep.log_loss_slope([1, 2], [1.0, 2.0], 1)


def test_censored_order():
    # scales in increasing order; +1 strictly increasing, censored above every observed count
    assert rep.censored_order([2, 5, 9], [False, False, True]) == 1
    assert rep.censored_order([2, 5, 9], [False, False, False]) == 1
    assert rep.censored_order([9, 5, 2], [False, False, False]) == -1
    assert rep.censored_order([9, 5, 2], [True, False, False]) == -1
    # two censored runs are tied: not ordered
    assert rep.censored_order([3, 9, 9], [False, True, True]) == 0
    assert rep.censored_order([3, 3, 5], [False, False, False]) == 0
    assert rep.censored_order([3, 7, 5], [False, False, False]) == 0


# ---- claims ----
def _config(lr_scalings=("inverse_square", "none"), seeds=(0, 1)) -> dict:
    variants = {"clean": {"kind": "clean"}, "scale0p25": {"kind": "input_scale", "scale": 0.25},
                "scale4": {"kind": "input_scale", "scale": 4.0}}
    block = dict(
        enabled=True, dataset="mnist", variants=["scale0p25", "clean", "scale4"],
        pair=[1, 7], n_train=100, n_test=50, seeds=list(seeds),
        model={"width": 8, "activation": "relu"}, threat={"norm": "l2", "eps": 2.0},
        pga={"n_examples": 4, "starts": 3, "steps": 20, "step_size": 0.1},
        adversarial_training={"epochs": 2, "lr": 0.05, "batch_size": 16, "pga_steps": 3,
                              "pga_step_size": 0.5, "lr_scalings": list(lr_scalings),
                              "log_slope_steps": 3})
    return fill_defaults({"datasets": {"mnist": {}}, "variants": variants,
                          "studies": {"study003": block}})


def _write_claim_files(root, p: plan.Study003, ex_value, steps_loss) -> dict:
    """Write every file of the plan's claim_records under `root`: per-example columns from
    ex_value(column, scale, seed) (a list per example), steps.csv from
    steps_loss(lr_scaling, scale, seed)."""
    rec = p.claim_records()
    for r in rec["pga"]:
        f = root / r["examples"]
        f.parent.mkdir(parents=True, exist_ok=True)
        cols = {c: ex_value(c, r["scale"], r["seed"]) for c in ("iters_to_climb",
                                                               "maxima_converged",
                                                               "climb_censored")}
        pd.DataFrame(dict(example=range(len(cols["iters_to_climb"])), **cols)).to_csv(
            f, index=False)
    for r in rec["training"]:
        f = root / r["steps"]
        f.parent.mkdir(parents=True, exist_ok=True)
        _steps_frame(steps_loss(r["lr_scaling"], r["scale"], r["seed"]), r["scale"],
                     r["seed"], r["lr_scaling"]).to_csv(f, index=False)
    for r in rec["pga"]:
        r["examples"] = str(root / r["examples"])
    for r in rec["training"]:
        r["steps"] = str(root / r["steps"])
    return rec


def test_plan_claims_records_inputs_and_deviations():
    p = plan.Study003(_config(lr_scalings=["none"]))
    claims = p.claims()
    ids = [c["id"] for c in claims]
    assert ids == ["003-mnist-pga-iters", "003-mnist-pga-maxima",
                   "003-mnist-at-steps-inverse_square", "003-mnist-at-logslope-inverse_square",
                   "003-mnist-at-steps-none", "003-mnist-at-logslope-none"]
    assert [c["headline"] for c in claims] == [True] + [False] * 5
    assert {c["direction"] for c in claims} == {"increasing"}
    assert all(c["study"] == "study003" and c["margin"] == 0.0 for c in claims)
    assert "90 % of the start's climb" in claims[0]["metric"]
    assert "first 3 steps" in claims[3]["metric"] and "more negative" in claims[3]["metric"]
    rec = p.claim_records()
    assert rec["lr_scalings"] == ["none"] and len(rec["pga"]) == 3 * 2
    assert {r["lr_scaling"] for r in rec["training"]} == {"none"} and len(rec["training"]) == 6
    assert p.claim_inputs() == ([r["examples"] for r in rec["pga"]]
                                + [r["steps"] for r in rec["training"]])
    assert all("/lr_none/steps.csv" in r["steps"] for r in rec["training"])
    assert rec["pga"][0]["examples"].endswith("scale0p25/seed0/pga_init_examples.csv")
    dev = " ".join(p.deviations())
    assert "width 8" in dev and "digits 1 (+1) vs 7" in dev and "100 training images" in dev
    assert "radius 2·s" in dev and "20 fixed-length steps" in dev and "2 epochs" in dev
    off = _config()
    off["studies"]["study003"]["enabled"] = False
    assert plan.Study003(off).claims() == [] and plan.Study003(off).claim_inputs() == []


def test_one_training_run_at_scale_one_serves_every_lr_scaling():
    # lr / s^2 = lr at s = 1: the `none` run there would repeat the inverse_square run
    p = plan.Study003(_config())
    d = {(v, sc): p.training_dir("mnist", v, 0, sc)
         for v in ("scale0p25", "clean", "scale4") for sc in ("inverse_square", "none")}
    assert d["clean", "none"] == d["clean", "inverse_square"]
    assert d["clean", "none"].endswith("clean/seed0/lr_inverse_square")
    assert d["scale4", "none"] != d["scale4", "inverse_square"]
    assert d["scale0p25", "none"].endswith("scale0p25/seed0/lr_none")
    rec = p.claim_records()
    assert len({r["steps"] for r in rec["training"]}) == (2 * 2 + 1) * 2
    only_none = plan.Study003(_config(lr_scalings=["none"]))
    assert only_none.training_dir("mnist", "clean", 0, "none").endswith("clean/seed0/lr_none")


def test_old_single_lr_scaling_is_a_named_config_error():
    cfg = _config()
    cfg["studies"]["study003"]["adversarial_training"]["lr_scaling"] = "none"
    (msg,) = plan.Study003(cfg).check()
    assert msg.startswith("studies.study003.adversarial_training.lr_scaling: replaced by "
                          "`lr_scalings`")


def test_claim_evidence_known_slopes_and_a_censored_case(tmp_path):
    p = plan.Study003(_config(lr_scalings=["inverse_square"]))
    log2 = {0.25: -2.0, 1.0: 0.0, 4.0: 2.0}

    def ex_value(col, s, seed):
        if col == "climb_censored":
            return [0.0] * 4
        if col == "iters_to_climb":    # mean 10 + (3 + seed)·log2 s
            m = 10 + (3 + seed) * log2[s]
            return [m - 1, m + 1, m, m]
        # maxima: mean over the three examples with a value: 2 + 0.5·log2 s
        return [math.nan, 1.5 + 0.5 * log2[s], 2 + 0.5 * log2[s], 2.5 + 0.5 * log2[s]]

    # the first step below 1 (seed 0: 4, 6, never; seed 1: 5, never, never) and the first three
    # steps falling as 4·exp(r·(k − 1)) with r = −0.3 + 0.05·(log2 s + 2) + 0.01·seed
    cross = {(0, 0.25): 4, (0, 1.0): 6, (1, 0.25): 5}

    def steps_loss(sc, s, seed):
        r = -0.3 + 0.05 * (log2[s] + 2) + 0.01 * seed
        loss = [4 * math.exp(r * (k - 1)) for k in (1, 2, 3)] + [2.0] * 5
        if (seed, s) in cross:
            loss[cross[(seed, s)] - 1:] = [0.5] * (8 - cross[(seed, s)] + 1)
        return loss

    rec = _write_claim_files(tmp_path, p, ex_value, steps_loss)
    claims = p.claims()
    ev = _evidence(claims, rec, {})
    assert set(ev) == {c["id"] for c in claims}
    it = ev["003-mnist-pga-iters"]
    assert it["status"] == "ok" and it["x"] == [0.25, 1.0, 4.0]
    # the cube seeds × examples × scales; the engine's per-seed slopes are 3 and 4
    assert it["seeds"] == [0, 1] and np.shape(it["images_num"]) == (2, 4, 3)
    assert per_seed_effects(it["images_num"], None, it["x"]) == pytest.approx([3.0, 4.0])
    assert it["ours"].startswith("s = 0.25: 3.0, s = 1: 10.0, s = 4: 17.0")  # (4 + 2) / 2, …
    mx = ev["003-mnist-pga-maxima"]
    assert np.shape(mx["images_num"]) == (2, 3, 3)   # example 0 has no value: left out
    assert per_seed_effects(mx["images_num"], None, mx["x"]) == pytest.approx([0.5, 0.5])
    st = ev["003-mnist-at-steps-inverse_square"]
    assert st["censored"] is True
    assert st["orders"] == {0: 1, 1: 0}
    # slopes with censored runs at their N = 8 steps: seed 0 (4, 6, 8) -> 1; seed 1 (5, 8, 8)
    assert st["per_seed"] == {0: pytest.approx(1.0), 1: pytest.approx(0.75)}
    assert "s = 4: > 8, > 8" in st["ours"] and "s = 0.25: 4, 5" in st["ours"]
    ls = ev["003-mnist-at-logslope-inverse_square"]
    assert ls["per_seed"] == {0: pytest.approx(0.05), 1: pytest.approx(0.05)}
    assert "censored" not in ls
    # the scaling the config does not train: not run, saying why
    for cid in ("003-mnist-at-steps-none", "003-mnist-at-logslope-none"):
        assert ev[cid]["status"] == "not_run" and "lr_scalings" in ev[cid]["reason"]


def test_claim_evidence_uncensored_and_one_seed(tmp_path):
    p = plan.Study003(_config(lr_scalings=["none"], seeds=[7]))
    log2 = {0.25: -2.0, 1.0: 0.0, 4.0: 2.0}

    def ex_value(col, s, seed):
        if col == "climb_censored":
            return [0.0, 0.0]
        return [1.0 + log2[s], 3.0 + log2[s]] if col == "iters_to_climb" else [1.0, 1.0]

    def steps_loss(sc, s, seed):   # below 1 from step 4, 5, 6 for s = 0.25, 1, 4
        k = {0.25: 4, 1.0: 5, 4.0: 6}[s]
        return [2.0] * (k - 1) + [0.5] * (8 - k + 1)

    rec = _write_claim_files(tmp_path, p, ex_value, steps_loss)
    ev = _evidence(p.claims(), rec, {})
    it = ev["003-mnist-pga-iters"]
    # one seed: the per-example values (rows: examples, columns: scales)
    assert np.asarray(it["images_num"]).tolist() == [[[-1.0, 1.0, 3.0], [1.0, 3.0, 5.0]]]
    assert it["images_den"] is None and it["x"] == [0.25, 1.0, 4.0]
    st = ev["003-mnist-at-steps-none"]
    assert "censored" not in st and "orders" not in st  # per-seed evidence, not censored
    assert st["per_seed"] == {7: pytest.approx(0.5)}
    assert ev["003-mnist-at-steps-inverse_square"]["status"] == "not_run"
    # nothing to read when the study is off
    assert _evidence(p.claims(), {}, {})["003-mnist-pga-iters"]["status"] == "not_run"


def test_a_start_that_never_climbs_censors_the_iterations(tmp_path):
    """Iterations to climb with a censored start (counted as T) are judged by each seed's order
    of the scales, not by the slope of means that mix censored and observed counts."""
    p = plan.Study003(_config(lr_scalings=["none"], seeds=[0, 1, 2]))
    log2 = {0.25: -2.0, 1.0: 0.0, 4.0: 2.0}

    def ex_value(col, s, seed):
        if col == "climb_censored":   # seed 2 at s = 4: one example with a start never climbing
            return [0.25 if (seed == 2 and s == 4.0) else 0.0, 0.0]
        return [5.0 + log2[s] + seed, 6.0 + log2[s]] if col == "iters_to_climb" else [1.0, 1.0]

    def steps_loss(sc, s, seed):
        return [2.0] * 3 + [0.5] * 5

    rec = _write_claim_files(tmp_path, p, ex_value, steps_loss)
    ev = _evidence(p.claims(), rec, {})["003-mnist-pga-iters"]
    assert ev["censored"] is True and ev["orders"] == {0: 1, 1: 1, 2: 1}
    assert any("never climbs" in f for f in ev["flags"])
    from curvrobust.claims.judge import judge

    claim = next(c for c in p.claims() if c["id"] == "003-mnist-pga-iters")
    row = judge(claim, ev)
    assert row["verdict"] == "holds" and row["basis"] == "3 seeds, censored"


@pytest.mark.parametrize("name, data, n_panels", [
    ("fig_pga_loss_curves", "pga", 3),
    ("fig_iters_to_tolerance", "pga", 2),
    ("fig_local_maxima", "pga", 2),
    ("fig_adversarial_training", "training", 6),
])
def test_figures_panels_and_title(records, name, data, n_panels):
    pres = _pres(name)
    settings = PGA_SETTINGS if data == "pga" else TRAINING_SETTINGS
    fig = figs.make_figure(name, records[data], pres, dataset="toyset", settings=settings)
    try:
        assert len(fig.axes) == n_panels
        assert fig._suptitle.get_text() == pres["title"].format(dataset="toyset")
        if "metrics" in pres:
            assert [ax.get_ylabel() for ax in fig.axes] == [
                m.format(**settings) for m in pres["metrics"].values()]
        if name == "fig_pga_loss_curves":
            assert [ax.get_title() for ax in fig.axes] == list(pres["stages"].values())
        if name == "fig_adversarial_training":
            # one row per lr scaling, in the presentation's order; (a) shows the steps up to
            # initial_steps only, with the threshold 1 dashed
            assert [ax.get_title() for ax in fig.axes[::3]] == [
                "(a) initial phase, lr/s²", "(a) initial phase, same lr"]
            xs = {x for ln in fig.axes[0].get_lines() for x in ln.get_xdata()}
            assert max(xs) == 4
            assert any(list(ln.get_ydata()) == [1.0, 1.0] for ln in fig.axes[0].get_lines())
    finally:
        plt.close(fig)
