"""Study 002's reports (curvrobust.reports.study002: tables; study002_figures: figures) built
from small hand-made per-model files in the workflow's layout with the plan's presentation (or a
modified one); means and 95 % intervals are checked against hand computations, rows and panels
against the display names."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from curvrobust.plans import study002 as plan
from curvrobust.reference import load_reference
from curvrobust.reports import study002 as rep
from curvrobust.reports import study002_figures as figs
from curvrobust.surfaces import save_surfaces

T975_DF1 = 12.706204736174707  # Student-t 97.5 % quantile, 1 degree of freedom (two seeds)
SEEDS = (0, 1)
ATTACKS = {
    "fgsm_t": {"kind": "fgsm", "eps": [0.1, 0.2], "n_examples": 10},
    "bim_t": {"kind": "bim", "eps": [0.1, 0.2], "steps": 3, "step_size": 0.1},
    "pgd_t": {"kind": "pgd", "eps": [0.1, 0.2], "steps": 20, "step_size": 0.01, "restarts": 3,
              "random_start": True},
    "bim_small": {"kind": "bim", "eps": [0.1], "steps": 5, "step_size": 0.03},
    "cw_t": {"kind": "cw", "eps": [0.1, 0.2], "steps": 3, "step_size": 0.1},
}


def _acc(label: str, seed: int, attack: str, eps: float) -> float:
    """Accuracy under attack (fraction) of the synthetic models: depends on everything."""
    base = {"natural": 0.2, "ours": 0.6, "minmax": 0.7, "pgd_at": 0.8}[label]
    return round(base - eps + 0.05 * seed + 0.01 * len(attack), 6)


def _attack_csv(tmp_path, label: str, seed: int, attack: str, eps=None) -> str:
    """One attack result file in the layout curvrobust.attacks writes (n_test 100, 90 + seed
    correct naturally)."""
    eps = ATTACKS[attack]["eps"] if eps is None else eps
    rows = [dict(eps=e, n_test=100, correct=90 + seed, successes=0, success_rate=0.0,
                 adv_accuracy=_acc(label, seed, attack, e), attack=attack,
                 kind=ATTACKS.get(attack, {"kind": "pgd"})["kind"]) for e in eps]
    path = tmp_path / f"{label}_{seed}_{attack}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _record(label: str, seed: int, files: dict[str, str], **extra) -> dict:
    return dict(study="study002", label=label, dataset="mnist", variant="clean",
                recipe=f"r_{label}", seed=seed, ckpt="final", files=files, **extra)


def _half2(a: float, b: float) -> float:
    return T975_DF1 * abs(a - b) / 2


def _table_presentation(kind: str, labels=None, **extra) -> dict:
    out = {"caption": plan.TABLE_CAPTIONS[kind], **extra}
    if labels is not None:
        out["labels"] = {k: plan.LABELS_TABLE[k] for k in labels}
    if kind in plan.TABLE_COLUMNS:
        out["columns"] = plan.TABLE_COLUMNS[kind]
    return out


# ---- tables ----

@pytest.mark.parametrize("reference", ["mnist", None])
def test_accuracy_table_rows_cells_and_caption(tmp_path, reference):
    columns = {"fgsm": "fgsm_t", "bim": "bim_t"}
    # records in the "wrong" order: rows must follow the display names' order
    records = [_record(label, seed, {c: _attack_csv(tmp_path, label, seed, a)
                                     for c, a in columns.items()})
               for label in ("ours", "natural") for seed in SEEDS]
    study = {"datasets": {"mnist": dict(attacks=columns, reference=reference)}}
    pres = _table_presentation("accuracy", labels=["natural", "ours"],
                               paper=plan.PAPER_NOTE if reference else plan.NO_PAPER_NOTE)
    numeric, readable, caption = rep.make_table(
        "table1_mnist", records, pres, kind={"kind": "accuracy", "dataset": "mnist"},
        study=study, attacks={a: ATTACKS[a] for a in columns.values()}, recipes={})
    assert list(numeric["regime"]) == ["natural", "ours"]
    assert list(readable["Regime"]) == ["Natural", "Ours (margin penalty)"]
    a0, a1 = (100 * _acc("ours", s, "bim_t", 0.2) for s in SEEDS)
    assert numeric.loc[1, "bim_eps0.2_mean"] == pytest.approx((a0 + a1) / 2)
    assert numeric.loc[1, "bim_eps0.2_ci95"] == pytest.approx(_half2(a0, a1))
    assert numeric.loc[0, "natural_mean"] == pytest.approx(90.5)
    assert "FGSM, first 10 test images" in caption and "bim: BIM, 3 steps of 0.1" in caption
    assert caption.startswith("Test accuracy (%) on mnist (2 seed(s))")
    assert caption.endswith("Seeds [0, 1]; mean ± 95 % interval over seeds where several.")
    if reference:
        paper = load_reference("study002")["tables"]["mnist"]["rows"]["ours"]["bim"][1]
        assert numeric.loc[1, "paper_bim_eps0.2"] == paper
        assert readable.loc[1, "BIM ε=0.2"].endswith(f"[{paper:g}]")
        assert load_reference("study002")["citation"] in caption
    else:
        assert "no table for this dataset" in caption and "[" not in readable.loc[1, "BIM ε=0.2"]


def test_pgd_table_describes_attacks(tmp_path):
    records = [_record(label, seed, {"pgd": _attack_csv(tmp_path, label, seed, "pgd_t"),
                                     "bim": _attack_csv(tmp_path, label, seed, "bim_t")})
               for label in ("natural", "ours") for seed in SEEDS]
    numeric, readable, caption = rep.make_table(
        "table_pgd_restarts", records, _table_presentation("pgd"), kind={"kind": "pgd"},
        study={}, attacks={a: ATTACKS[a] for a in ("pgd_t", "bim_t")}, recipes={})
    assert len(numeric) == 2 * 2 * 2  # regime × attack × eps
    row = numeric[(numeric["regime"] == "ours") & (numeric["attack"] == "pgd_t")
                  & (numeric["eps"] == 0.1)].iloc[0]
    assert row["attack_desc"] == "PGD, 20 steps of 0.01, 3 restart(s)"
    a0, a1 = (100 * _acc("ours", s, "pgd_t", 0.1) for s in SEEDS)
    assert row["accuracy_mean"] == pytest.approx((a0 + a1) / 2)
    assert row["accuracy_ci95"] == pytest.approx(_half2(a0, a1))
    assert list(readable.columns) == ["dataset", "regime", "attack_desc", "eps", "Seeds",
                                      "Accuracy (%)"]
    assert caption.startswith("Test accuracy (%) under BIM (the study's setting)")


def _indicator_record(tmp_path, label: str, seed: int, curve_eps=(0.0, 0.1, 0.2)) -> dict:
    ind = pd.DataFrame(dict(index=range(3), label=[1, 2, 3], correct=True, margin=0.1,
                            grad_l1=[1.0 + seed, 2.0, 3.0], grad_l2=0.5 + seed, jac_zero_frac=0.25,
                            hess_top_eig=[1.0, 2.0, 10.0 + seed], hess_zero_frac=0.5,
                            hess_method="exact"))
    path = tmp_path / f"ind_{label}_{seed}.csv"
    ind.to_csv(path, index=False)
    return _record(label, seed, {"indicator": str(path),
                                 "curve": _attack_csv(tmp_path, label, seed, "pgd10",
                                                      eps=list(curve_eps))}, eps=0.1)


def test_indicator_table_means_and_missing_eps(tmp_path):
    records = [_indicator_record(tmp_path, "ours", s) for s in SEEDS]
    pres = _table_presentation("indicator")
    numeric, readable, caption = rep.make_table("table_indicator", records, pres,
                                                kind={"kind": "indicator"}, study={},
                                                attacks={}, recipes={})
    row = numeric.iloc[0]
    assert row["grad_l1_mean"] == pytest.approx((6.0 + 7.0) / 3 / 2)
    assert row["hess_top_eig_median_mean"] == pytest.approx(2.0)
    assert row["jac_zero_frac_mean"] == pytest.approx(25.0)
    assert row["pgd_accuracy_mean"] == pytest.approx(
        100 * (_acc("ours", 0, "pgd10", 0.1) + _acc("ours", 1, "pgd10", 0.1)) / 2)
    assert [h for h, _ in plan.TABLE_COLUMNS["indicator"].values()] == list(readable.columns[4:])
    assert "middle ε" in caption
    bad = [_indicator_record(tmp_path, "natural", 0, curve_eps=(0.0, 0.2))]
    with pytest.raises(ValueError, match="no row at eps=0.1"):
        rep.make_table("table_indicator", bad, pres, kind={"kind": "indicator"}, study={},
                       attacks={}, recipes={})


def test_training_table_time_ratio_and_regimes(tmp_path):
    records = []
    for label, t in (("natural", 2.0), ("ours", 5.0)):
        path = tmp_path / f"epochs_{label}.csv"
        pd.DataFrame(dict(epoch=[1, 2], step=[5, 10], train_loss=[2.0, 1.5], test_acc=[0.5, 0.8],
                          epoch_time_s=[t, t + 1.0])).to_csv(path, index=False)
        records.append(_record(label, 0, {"epochs": str(path)}))
    recipes = {"r_natural": {"epochs": 2}, "r_ours": {"epochs": 2, "regime": {"penalty": 1}}}
    numeric, readable, caption = rep.make_table(
        "training_summary", records, _table_presentation("training"), kind={"kind": "training"},
        study={}, attacks={}, recipes=recipes)
    assert list(numeric["time_vs_natural_mean"]) == pytest.approx([1.0, 5.5 / 2.5])
    assert list(numeric["test_acc_mean"]) == pytest.approx([80.0, 80.0])
    assert "Regimes: r_natural: natural; r_ours: {'penalty': 1}. Seeds [0]" in caption
    assert "× natural" in readable.columns


def test_edited_caption_and_unknown_kind(tmp_path):
    records = [_record("ours", 0, {"pgd": _attack_csv(tmp_path, "ours", 0, "pgd_t")})]
    pres = dict(_table_presentation("pgd"), caption="Edited, seeds {seeds}.",
                columns={"accuracy": ("Acc", 2)})
    _, readable, caption = rep.make_table("t", records, pres, kind={"kind": "pgd"}, study={},
                                          attacks=ATTACKS, recipes={})
    assert caption == "Edited, seeds [0]." and "Acc" in readable.columns
    with pytest.raises(ValueError, match="unknown table kind"):
        rep.make_table("t", records, pres, kind={"kind": "nope"})
    with pytest.raises(ValueError, match="unknown figure kind"):
        figs.make_figure("f", records, {}, kind={"kind": "nope"})


def test_plan_presentation_of_smoke_outputs():
    cfg = yaml.safe_load((Path(__file__).parents[2] / "configs" / "smoke.yaml").read_text())
    s2 = plan.Study002(cfg)
    for name, spec in s2.outputs().items():
        pres = s2.presentation(name)
        shown = {r["label"] for r in s2.params(name)}
        kind = spec["kind"]
        if spec["type"] == "table":
            assert kind in rep.TABLES and pres["caption"] == plan.TABLE_CAPTIONS[kind]
        else:
            assert kind in figs.FIGURES and pres["title"] == plan.FIGURE_TITLES[kind]
        if "labels" in pres:  # only the regimes the output shows, in display order
            assert set(pres["labels"]) == shown
            names = plan.LABELS_TABLE if spec["type"] == "table" else plan.LABELS_FIGURE
            assert list(pres["labels"]) == [k for k in names if k in shown]
    assert s2.presentation("table1_mnist")["paper"] == plan.PAPER_NOTE
    assert list(s2.presentation("fig4_loss_vs_decision_mnist")["labels"]) == ["natural"]


# ---- figures ----

def _fig_presentation(kind: str, labels=("natural", "ours", "minmax")) -> dict:
    return {"title": plan.FIGURE_TITLES[kind], "labels": {k: plan.LABELS_FIGURE[k] for k in labels}}


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_curve_and_step_sweep_figures(tmp_path):
    records = [_record(label, seed, {"curve": _attack_csv(tmp_path, label, seed, "pgd10",
                                                          eps=[0.0, 0.1, 0.2])})
               for label in ("natural", "ours") for seed in SEEDS]
    fig = figs.make_figure("fig_accuracy_vs_eps", records, _fig_presentation("curve"),
                          kind={"kind": "curve"}, study={}, attacks={})
    assert fig._suptitle.get_text() == "Accuracy under PGD-10 over ε"
    assert {"natural", "margin penalty (ours)"} <= set(_legend_texts(fig))
    plt.close(fig)
    records = [_record(label, 0, {a: _attack_csv(tmp_path, label, 0, a)
                                  for a in ("bim_small", "bim_t", "cw_t")})
               for label in ("natural", "ours")]
    fig = figs.make_figure("fig_step_sweep", records, _fig_presentation("step_sweep"),
                          kind={"kind": "step_sweep"}, study={}, attacks=ATTACKS)
    ax = fig.axes[0]
    assert ax.get_title() == "mnist, ε = 0.1"  # the single-ε attack fixes the sweep's ε
    assert {"BIM", "C&W", "margin penalty (ours)"} <= set(_legend_texts(fig))
    xs = sorted({x for line in ax.get_lines() for x in line.get_xdata()})
    assert xs == pytest.approx([0.03, 0.1])
    plt.close(fig)


def _surface_record(tmp_path, label: str, seed: int, kind: str) -> dict:
    al, be = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    z = np.add.outer(al, be ** 2) + (label == "ours")
    path = tmp_path / f"{kind}_{label}_{seed}.npz"
    if kind == "param":
        save_surfaces(path, alphas=al, betas=be, loss=z)
    else:  # (direction, image, alpha, beta)
        stack = np.stack([np.stack([z, z + 1]) for _ in range(3)])
        save_surfaces(path, alphas=al, betas=be, loss=stack, margin=stack - 1.5,
                      directions=np.array(["random", "ce_ascent", "cw_ascent"]),
                      labels=np.array([7, 3]))
    return _record(label, seed, {"surface": str(path)})


def test_surface_figures(tmp_path):
    study = {"surfaces": {"compare": ["natural", "ours"]}}
    # seed 1 of natural and any seed of ours come first: the first seed is drawn, in `compare` order
    records = [_surface_record(tmp_path, label, seed, "input")
               for seed in (1, 0) for label in ("ours", "natural")]
    fig = figs.make_figure("fig6_decision_surface_mnist", records, _fig_presentation("decision"),
                          kind={"kind": "decision", "dataset": "mnist"}, study=study, attacks={})
    assert fig._suptitle.get_text() == ("mnist: decision function g in input space around test "
                                        "image 0 (label 7), natural vs robust models")
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert titles.index("natural") < titles.index("margin penalty (ours)")
    assert "cw_ascent" not in titles and sum(ax.name == "3d" for ax in fig.axes) == 4
    plt.close(fig)
    fig = figs.make_figure("fig4", records, _fig_presentation("loss_vs_decision"),
                          kind={"kind": "loss_vs_decision", "dataset": "mnist"}, study=study,
                          attacks={})
    assert fig._suptitle.get_text().startswith("mnist, natural model: loss vs decision surface")
    plt.close(fig)
    records = [_surface_record(tmp_path, label, 0, "param") for label in ("ours", "natural")]
    fig = figs.make_figure("fig2", records, _fig_presentation("param_surface"),
                          kind={"kind": "param_surface", "dataset": "mnist"}, study=study,
                          attacks={})
    assert "training loss in parameter space" in fig._suptitle.get_text()
    assert sum(ax.name == "3d" for ax in fig.axes) == 2
    plt.close(fig)


def test_jacobian_and_scatter_figures(tmp_path):
    records = []
    for label in ("ours", "natural"):
        path = tmp_path / f"jac_{label}.pt"
        torch.save({"images": torch.rand(2, 1, 4, 4), "grads": torch.randn(2, 1, 4, 4)}, path)
        records.append(_record(label, 0, {"jacobians": str(path)}))
    fig = figs.make_figure("fig8", records, _fig_presentation("jacobian"),
                          kind={"kind": "jacobian", "dataset": "mnist"},
                          study={"surfaces": {"compare": ["natural", "ours"]}}, attacks={})
    assert fig._suptitle.get_text().startswith("mnist: ∇ₓg of the first test images")
    plt.close(fig)
    records = []
    for i, label in enumerate(("natural", "ours", "pgd_at")):
        r = _indicator_record(tmp_path, label, i)
        records.append(dict(r, indicator=r["files"]["indicator"], attack=r["files"]["curve"]))
    notes = []
    fig = figs.make_figure("fig_indicator_scatter", records,
                          {"title": plan.FIGURE_TITLES["scatter"]}, kind={"kind": "scatter"},
                          study={}, attacks={}, log=notes.append)
    assert len(fig.axes) == 2 and notes and notes[0].startswith("Spearman: {'grad_l2_mean'")
    plt.close(fig)
