"""Study 001's reports (curvrobust.reports.study001: tables; study001_figures: figures) built
from small hand-made evaluation and convergence files in the workflow's layout, with the plan's
presentation (or an edited one); means and 95 % intervals are checked against hand
computations, rows, headings and lines against the display names."""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml

from curvrobust.plans import study001 as plan
from curvrobust.reports import study001 as rep
from curvrobust.reports import study001_figures as figs

T975_DF1 = 12.706204736174707  # Student-t 97.5 % quantile, 1 degree of freedom (two seeds)
SEEDS = (0, 1)
EPOCHS = (1, 2)
RECIPES = {
    "r_haat": {"regime": {"adversary": {"kind": "haat", "eps": 0.1, "xi": 1e-3, "k": 2}}},
    "r_pgd": {"regime": {"adversary": {"kind": "pgd", "eps": 0.1}}},
}
LABELS = {"haat": "r_haat", "pgd_at": "r_pgd"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _acc(label: str, seed: int, epoch: int, metric: str) -> float:
    base = {"haat": 0.5, "pgd_at": 0.6}[label] + {"clean": 0.3, "pgd": 0.0, "aa": -0.1}[metric]
    return round(base + 0.05 * seed + 0.02 * epoch, 6)


def _eval_csv(tmp_path: Path, label: str, seed: int, epoch: int) -> str:
    """One file as curvrobust.checkpoint_eval writes it (rule evaluate_checkpoint)."""
    row = dict(dataset="mnist", recipe=LABELS[label], seed=seed, epoch=epoch, step=5 * epoch,
               n_examples=50, subset_seed=7, eps=0.1,
               clean_acc=_acc(label, seed, epoch, "clean"), pgd_acc=_acc(label, seed, epoch, "pgd"),
               pgd_attack="pgd step_size=0.05, steps=3", **{"apgd-ce_acc": 0.4},
               aa_acc=_acc(label, seed, epoch, "aa"), aa_attacks="APGD-CE (3 it.)", aa_time_s=1.0)
    path = tmp_path / f"{label}_{seed}_{epoch}.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    return str(path)


def _records(tmp_path: Path, labels=("pgd_at", "haat"), value=None) -> list[dict]:
    return [dict(label=label, recipe=LABELS[label], seed=seed, dataset="mnist",
                 **({} if value is None else {"value": value[label]}),
                 evals=[_eval_csv(tmp_path, label, seed, e) for e in EPOCHS])
            for label in labels for seed in SEEDS]


@functools.lru_cache(maxsize=1)
def _plan() -> plan.Study001:
    cfg = yaml.safe_load((Path(__file__).parents[2] / "configs" / "smoke.yaml").read_text())
    return plan.Study001(cfg)


def _presentation(name: str) -> dict:
    return _plan().presentation(name)


# ---- tables ----

def test_robust_accuracy_table_means_headings_and_caption(tmp_path):
    records = _records(tmp_path)
    numeric, readable, caption = rep.make_table(
        "table_robust_accuracy", records, _presentation("table_robust_accuracy"),
        dataset="mnist", recipes=RECIPES, seeds=[0, 1])
    assert list(numeric["label"]) == ["pgd_at", "pgd_at", "haat", "haat"]  # record order
    row = numeric[(numeric.label == "haat") & (numeric.epoch == 2)].iloc[0]
    vals = [100 * _acc("haat", s, 2, "clean") for s in SEEDS]
    assert row["clean_acc_mean"] == pytest.approx(np.mean(vals))
    assert row["clean_acc_ci95"] == pytest.approx(T975_DF1 * np.std(vals, ddof=1) / np.sqrt(2))
    assert row["xi"] == 1e-3 and row["k"] == 2 and row["n_seeds"] == 2
    assert np.isnan(numeric[numeric.label == "pgd_at"]["xi"]).all()
    assert list(readable.columns) == ["label", "epoch", "Seeds", "clean", "PGD", "APGD-CE",
                                      "AutoAttack"]
    assert readable["clean"].iloc[3] == f"{np.mean(vals):.1f} ± {row['clean_acc_ci95']:.1f}"
    assert caption.startswith("Study 001 on mnist: accuracy (%)")
    assert "50 test images (seed 7), ε = 0.1; PGD: pgd step_size=0.05, steps=3;" in caption
    assert caption.endswith("over seeds [0, 1].")


def test_edited_presentation_changes_headings_and_caption(tmp_path):
    pres = {"metrics": {"clean_acc": "Clean", "aa_acc": "AA"},
            "caption": "{dataset}: {n_examples} images, seeds {seeds}"}
    _, readable, caption = rep.make_table("table_robust_accuracy", _records(tmp_path, ["haat"]),
                                          pres, dataset="cifar10", recipes=RECIPES, seeds=[3])
    assert list(readable.columns)[3:] == ["Clean", "PGD", "APGD-CE", "AA"]
    assert caption == "cifar10: 50 images, seeds [3]"


def _convergence_csv(tmp_path: Path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_hvp_error_table_orders_xi_descending(tmp_path):
    files = []
    for seed in SEEDS:
        rows = [dict(batch=b, method=m, xi=xi, median=0.1 * (b + 1) + seed + xi, q90=2.0 + b,
                     mean=5.0, n=32, zero_frac=0.25 * b)
                for b in range(3) for m in ("fd", "fd_central") for xi in (1e-5, 1e-3)]
        files.append(_convergence_csv(tmp_path, f"hvp{seed}.csv", rows))
    numeric, readable, caption = rep.make_table(
        "table_hvp_error", [], _presentation("table_hvp_error"), dataset="mnist", data=files)
    assert list(zip(numeric["method"], numeric["xi"])) == [
        ("fd", 1e-3), ("fd", 1e-5), ("fd_central", 1e-3), ("fd_central", 1e-5)]
    first = numeric.iloc[0]
    medians = [0.1 * (b + 1) + s + 1e-3 for s in SEEDS for b in range(3)]
    assert first["median_rel_error"] == pytest.approx(np.median(medians))
    assert first["batches"] == 6 and first["examples"] == 6 * 32
    assert list(readable.columns) == list(plan.COLUMNS["table_hvp_error"].values())
    assert list(readable["ξ"]) == ["0.001", "1e-05", "0.001", "1e-05"]
    assert readable["Hu = 0 exactly (%)"].iloc[0] == "25.0"     # mean of 0, 0.25, 0.5
    assert caption.startswith("Study 001 on mnist: finite-difference")


def test_eigvec_alignment_table_keeps_file_order(tmp_path):
    files = []
    for seed in SEEDS:
        rows = [dict(batch=b, method=m, k=k, xi=5e-6, cos_median=0.1 * k + 0.01 * b + seed,
                     cos_q10=0.05, cos_mean=0.2, n=16)
                for b in range(2) for m in ("fd", "exact") for k in (3, 1)]
        files.append(_convergence_csv(tmp_path, f"align{seed}.csv", rows))
    numeric, readable, caption = rep.make_table(
        "table_eigvec_alignment", [], _presentation("table_eigvec_alignment"), dataset="mnist",
        data=files)
    assert list(zip(numeric["method"], numeric["k"])) == [("fd", 3), ("fd", 1), ("exact", 3),
                                                          ("exact", 1)]
    vals = [0.3 + 0.01 * b + s for s in SEEDS for b in range(2)]
    assert numeric["cos_median"].iloc[0] == pytest.approx(np.median(vals))
    assert readable["median |cos(u_k, u₁)|"].iloc[0] == f"{np.median(vals):.3f}"
    assert list(readable["Examples"]) == [64] * 4
    assert "Random directions give |cos| ≈ 1/√d." in caption


# ---- figures ----

def _lines(ax) -> list:
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) == len(EPOCHS)]


def test_fig1_and_fig3_panels_and_lines(tmp_path):
    fig = figs.make_figure("fig1_haat_robust_accuracy", _records(tmp_path, ["haat"]),
                          _presentation("fig1_haat_robust_accuracy"), dataset="mnist", eps=0.1,
                          seeds=[0, 1])
    assert len(fig.axes) == 1 and len(_lines(fig.axes[0])) == 3        # clean, PGD, AutoAttack
    assert fig._suptitle.get_text() == "Study 001, mnist: HAAT model over its checkpoints, ε = 0.1"
    means = {tuple(np.round(ln.get_ydata(), 6)) for ln in _lines(fig.axes[0])}
    want = tuple(round(np.mean([100 * _acc("haat", s, e, "pgd") for s in SEEDS]), 6)
                 for e in EPOCHS)
    assert want in means
    fig = figs.make_figure("fig3_haat_vs_pgd", _records(tmp_path),
                          _presentation("fig3_haat_vs_pgd"), dataset="mnist", eps=0.1)
    assert [ax.get_title() for ax in fig.axes] == ["clean", "PGD", "AutoAttack"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()] if fig.legends else \
        [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert legend == ["PGD-AT", "HAAT"]                                  # MODELS order
    assert all(len(_lines(ax)) == 2 for ax in fig.axes)


def test_sweep_figure_labels_values(tmp_path):
    records = _records(tmp_path, value={"haat": 1e-3, "pgd_at": 1e-5})
    fig = figs.make_figure("fig2a_xi_sweep", records, _presentation("fig2a_xi_sweep"),
                          dataset="mnist", eps=0.1)
    legend = [t.get_text() for t in fig.legends[0].get_texts()] if fig.legends else \
        [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert legend == ["ξ = 1e-05", "ξ = 0.001"]                          # ascending values
    assert "different ξ (one model each), ε = 0.1" in fig._suptitle.get_text()


def test_fig4_reads_traces_and_names_batches(tmp_path):
    rows = [dict(batch=b, method=m, k=k, xi=5e-6, iteration=i, diff_mean=1.0 / i,
                 diff_median=0.0, diff_q10=0.0, diff_q90=1.0, converged_frac=0.5)
            for b in range(2) for m in ("fd", "exact") for k in (1, 3) for i in range(1, k + 1)]
    data = [_convergence_csv(tmp_path, "trace.csv", rows)]
    fig = figs.make_figure("fig4_fd_convergence", [], _presentation("fig4_fd_convergence"),
                          dataset="mnist", data=data, convergence={"batches": 2}, seeds=[42])
    assert len(fig.axes) == 4                                            # 2 methods × 2 k
    assert fig._suptitle.get_text().endswith("(2 training batches, seed(s) [42])")


def test_plan_presentation_covers_every_output():
    for name, (kind_type, kind) in plan.OUTPUTS.items():
        pres = _presentation(name)
        if kind_type == "table":
            assert name in rep.TABLES and pres["caption"] == plan.CAPTIONS[name]
        else:
            assert name in figs.FIGURES and pres["title"] == plan.TITLES[name]
            assert ("sweep" in pres) == (kind in plan.SWEEPS)
