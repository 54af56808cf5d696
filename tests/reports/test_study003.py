"""Study 003's reports (curvrobust.reports.study003: tables; study003_figures: figures) built
from small hand-made per-run CSV files in the workflow's layout, with the plan's presentation or
a modified one; means and 95 % intervals are checked against hand computations."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from curvrobust.plans import study003 as plan
from curvrobust.reports import study003 as rep
from curvrobust.reports import study003_figures as figs

T975_DF1 = 12.706204736174707  # Student-t 97.5 % quantile, 1 degree of freedom (two seeds)
SCALES = {"scale0p5": 0.5, "clean": 1.0, "scale2": 2.0}
SEEDS = (0, 1)
N_EXAMPLES = 3


def _half2(a: float, b: float) -> float:
    """Half-width of the 95 % interval of the mean of two values."""
    return T975_DF1 * abs(a - b) / 2


def _examples(stage: str, s: float, seed: int) -> pd.DataFrame:
    """Per-example PGA results; loss_start of example i is s·(1 + seed) + i (mean s·(1+seed)+1)
    at init, ten times that after training; maxima_count is 1 + seed."""
    k = 1.0 if stage == "init" else 10.0
    rows = []
    for i in range(N_EXAMPLES):
        rows.append(dict(stage=stage, scale=s, eps=1.0, norm="l2", data_lo=0.0, data_hi=s,
                         step_size=0.1, seed=seed, example=i,
                         loss_start=k * (s * (1 + seed) + i), loss_final=k * s,
                         loss_final_max=k * s, iters_to_loss_tol=2.0 + i, iters_to_tol=3.0,
                         reached_tol=float(i % 2), mapping_norm_final=0.1 * s,
                         maxima_count=1 + seed, maxima_spread=0.0, maxima_rel_spread=0.01 * s,
                         maxima_std=0.0))
    return pd.DataFrame(rows)


def _trace(stage: str, s: float, seed: int) -> pd.DataFrame:
    return pd.DataFrame([dict(stage=stage, scale=s, eps=1.0, norm="l2", data_lo=0.0, data_hi=s,
                              step_size=0.1, seed=seed, iteration=it,
                              loss_mean=s * (it + 1) + seed, loss_median=s * (it + 1),
                              mapping_norm_mean=1.0 / (it + 1), share_below_tol=0.0)
                         for it in range(4)])


def _epochs(s: float, seed: int) -> pd.DataFrame:
    """Three epochs; robust_train_loss = s·(4 − epoch) + seed, test_acc 0.5 + 0.1·seed."""
    return pd.DataFrame([dict(scale=s, eps=1.0, lr=0.05, seed=seed, epoch=e, step=2 * e,
                              robust_train_loss=s * (4 - e) + seed, train_loss=0.5,
                              train_acc=0.9, test_loss=0.6, test_acc=0.5 + 0.1 * seed,
                              robust_test_loss=1.0, robust_test_acc=0.2 + 0.1 * e)
                         for e in (1, 2, 3)])


def _steps(s: float, seed: int) -> pd.DataFrame:
    return pd.DataFrame([dict(scale=s, eps=1.0, lr=0.05, seed=seed, step=k, epoch=(k + 1) // 2,
                              robust_batch_loss=s / k + seed) for k in range(1, 7)])


@pytest.fixture
def records(tmp_path) -> dict[str, list[dict]]:
    """The workflow's records for the PGA outputs and for the training outputs; the trained
    stage's files are listed first so that row order cannot come from the file order."""
    pga, training = [], []
    for v, s in SCALES.items():
        for seed in SEEDS:
            d = tmp_path / v / f"seed{seed}"
            d.mkdir(parents=True)
            files = {}
            for stage in ("trained", "init"):
                files[f"{stage}_examples"] = str(d / f"pga_{stage}_examples.csv")
                files[f"{stage}_trace"] = str(d / f"pga_{stage}_trace.csv")
                _examples(stage, s, seed).to_csv(files[f"{stage}_examples"], index=False)
                _trace(stage, s, seed).to_csv(files[f"{stage}_trace"], index=False)
            _epochs(s, seed).to_csv(d / "epochs.csv", index=False)
            _steps(s, seed).to_csv(d / "steps.csv", index=False)
            tag = dict(variant=v, scale=s, seed=seed)
            pga.append(dict(tag, files=files))
            training.append(dict(tag, files={"epochs": str(d / "epochs.csv"),
                                             "steps": str(d / "steps.csv")}))
    return {"pga": pga, "training": training}


def _pres(name: str) -> dict:
    return plan.Study003({}).presentation(name)


def test_every_planned_output_has_a_presentation_and_a_builder():
    assert set(plan.TABLES) == set(rep.TABLES) == set(plan.TABLE_PRESENTATION)
    assert set(plan.FIGURES) == set(figs.FIGURES) == set(plan.FIGURE_PRESENTATION)
    with pytest.raises(KeyError):
        plan.Study003({}).presentation("table_nope")
    with pytest.raises(KeyError):
        rep.make_table("table_nope", [], {}, dataset="mnist")
    with pytest.raises(KeyError):
        figs.make_figure("fig_nope", [], {}, dataset="mnist")


def test_pga_table_rows_headings_values_and_caption(records):
    pres = _pres("table_pga_by_scale")
    numeric, readable, caption = rep.make_table("table_pga_by_scale", records["pga"], pres,
                                                dataset="toyset")
    # rows: stage in the plan's order, then ascending scale
    assert list(zip(readable["Stage"], readable["s"])) == [
        (st, s) for st in plan.STAGES for s in sorted(SCALES.values())]
    headings = [h for h, _ in pres["columns"].values()]
    assert list(readable.columns) == ["Stage", "s", "Seeds", *headings]
    assert (readable["Seeds"] == len(SEEDS)).all()
    assert (numeric["n_examples"] == N_EXAMPLES).all()
    # loss at start, trained, s = 2: per-seed means 10·(2·1 + 1) = 30 and 10·(2·2 + 1) = 50
    row = numeric[(numeric["stage"] == "trained") & (numeric["scale"] == 2.0)].iloc[0]
    assert row["loss_start_mean"] == pytest.approx(40.0)
    assert row["loss_start_ci95"] == pytest.approx(_half2(30.0, 50.0))
    text = readable[(readable["Stage"] == "trained") & (readable["s"] == 2.0)].iloc[0]
    assert text["loss at start"] == f"40.000 ± {_half2(30.0, 50.0):.3f}"
    assert text["distinct maxima"] == f"1.50 ± {_half2(1.0, 2.0):.2f}"
    assert caption == pres["caption"].format(dataset="toyset", n_examples=N_EXAMPLES)
    assert "toyset" in caption and f"{N_EXAMPLES} test examples" in caption


def test_pga_table_follows_an_edited_presentation(records):
    pres = _pres("table_pga_by_scale")
    pres = dict(pres, stages=["trained", "init"], by={"stage": "When", "scale": "scale"},
                columns={"loss_final": ("final loss", 1)}, caption="PGA on {dataset}.")
    numeric, readable, caption = rep.make_table("table_pga_by_scale", records["pga"], pres,
                                                dataset="toyset")
    assert list(readable.columns) == ["When", "scale", "Seeds", "final loss"]
    assert list(readable["When"]) == ["trained"] * 3 + ["init"] * 3
    assert readable["final loss"].iloc[0] == "5.0 ± 0.0"  # trained, s = 0.5: 10·0.5 per seed
    assert caption == "PGA on toyset."


def test_adversarial_training_table(records):
    pres = _pres("table_adversarial_training")
    numeric, readable, caption = rep.make_table("table_adversarial_training",
                                                records["training"], pres, dataset="toyset")
    assert list(readable["s"]) == sorted(SCALES.values())
    assert list(readable.columns) == ["s", "Seeds", "robust train loss, epoch 1",
                                      "robust train loss, epoch 3", "clean test acc. %",
                                      "robust test acc. %"]
    row = numeric[numeric["scale"] == 2.0].iloc[0]
    # epoch 1: 2·3 + seed -> 6, 7; epoch 3: 2·1 + seed -> 2, 3
    assert row["robust_train_loss_epoch1_mean"] == pytest.approx(6.5)
    assert row["robust_train_loss_mean"] == pytest.approx(2.5)
    assert row["robust_train_loss_ci95"] == pytest.approx(_half2(2.0, 3.0))
    # accuracies in percent: clean 50 and 60; robust after epoch 3: 50 for both seeds
    assert row["test_acc_mean"] == pytest.approx(55.0)
    assert row["robust_test_acc_mean"] == pytest.approx(50.0)
    assert row["robust_test_acc_ci95"] == pytest.approx(0.0)
    assert readable[readable["s"] == 2.0]["clean test acc. %"].iloc[0] == (
        f"55.0 ± {_half2(50.0, 60.0):.1f}")
    assert caption == pres["caption"].format(dataset="toyset")
    assert not math.isnan(row["test_acc_ci95"])


@pytest.mark.parametrize("name, data, n_panels", [
    ("fig_pga_loss_curves", "pga", 2),
    ("fig_iters_to_tolerance", "pga", 2),
    ("fig_local_maxima", "pga", 2),
    ("fig_adversarial_training", "training", 3),
])
def test_figures_panels_and_title(records, name, data, n_panels):
    pres = _pres(name)
    fig = figs.make_figure(name, records[data], pres, dataset="toyset", initial_steps=4)
    try:
        assert len(fig.axes) == n_panels
        assert fig._suptitle.get_text() == pres["title"].format(dataset="toyset")
        if "metrics" in pres:
            assert [ax.get_ylabel() for ax in fig.axes] == list(pres["metrics"].values())
        if name == "fig_adversarial_training":
            # (a) shows the steps up to initial_steps only
            xs = {x for ln in fig.axes[0].get_lines() for x in ln.get_xdata()}
            assert max(xs) == 4
    finally:
        plt.close(fig)
