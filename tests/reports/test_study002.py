"""Study 002's reports (curvrobust.reports.study002: tables; study002_figures: figures) built
from small hand-made per-model files in the workflow's layout with the plan's presentation (or a
modified one); means and 95 % intervals are checked against hand computations, rows and panels
against the display names."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from curvrobust.claims.stats import per_seed_effects
from curvrobust.plans import study002 as plan
from curvrobust.plans.config import validate_config
from curvrobust.plans.study002 import text as plan_text
from curvrobust.reference import load_reference
from curvrobust.reports import study002 as rep
from curvrobust.reports import study002_figures as figs
from curvrobust.curvature.surfaces import save_surfaces



def _evidence(*args):
    """The report's evidence per claim id, as the published dicts (Evidence.as_mapping)."""
    return {k: v.as_mapping() for k, v in rep.claim_evidence(*args).items()}

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
    out = {"caption": plan_text.TABLE_CAPTIONS[kind], **extra}
    if labels is not None:
        out["labels"] = {k: plan_text.LABELS_TABLE[k] for k in labels}
    if kind in plan_text.TABLE_COLUMNS:
        out["columns"] = plan_text.TABLE_COLUMNS[kind]
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
                               paper=plan_text.PAPER_NOTE if reference else plan_text.NO_PAPER_NOTE)
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
    headings = [h for h, _ in plan_text.TABLE_COLUMNS["indicator"].values()]
    assert headings == list(readable.columns[4:])
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
    smoke = Path(__file__).parents[2] / "configs" / "smoke.yaml"
    cfg = validate_config(yaml.safe_load(smoke.read_text()))
    s2 = plan.Study002(cfg)
    for name, spec in s2.outputs().items():
        pres = s2.presentation(name)
        shown = {r["label"] for r in s2.params(name)}
        kind = spec["kind"]
        if spec["type"] == "table":
            assert kind in rep.TABLES and pres["caption"] == plan_text.TABLE_CAPTIONS[kind]
        else:
            assert kind in figs.FIGURES and pres["title"] == plan_text.FIGURE_TITLES[kind]
        if "labels" in pres:  # only the regimes the output shows, in display order
            assert set(pres["labels"]) == shown
            names = plan_text.LABELS_TABLE if spec["type"] == "table" else plan_text.LABELS_FIGURE
            assert list(pres["labels"]) == [k for k in names if k in shown]
    assert s2.presentation("table1_mnist")["paper"] == plan_text.PAPER_NOTE
    assert list(s2.presentation("fig4_loss_vs_decision_mnist")["labels"]) == ["natural"]


# ---- figures ----

def _fig_presentation(kind: str, labels=("natural", "ours", "minmax")) -> dict:
    return {"title": plan_text.FIGURE_TITLES[kind],
            "labels": {k: plan_text.LABELS_FIGURE[k] for k in labels}}


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
                          {"title": plan_text.FIGURE_TITLES["scatter"]}, kind={"kind": "scatter"},
                          study={}, attacks={}, log=notes.append)
    assert len(fig.axes) == 2 and notes and notes[0].startswith("Spearman: {'grad_l2_mean'")
    plt.close(fig)


# ---- claims (claim_evidence on small per-image files with known effects) ----

OUTCOME_HEADER = ["attack", "eps", "index", "label", "correct", "attacked", "success", "margin"]


def _outcomes(path, attack: str, index, correct, broken: dict[float, list[int]]) -> str:
    """Per-image outcome rows of one attack: image i (position) is broken at ε when it is
    correct and i is in broken[ε]."""
    rows = []
    for eps, hit in broken.items():
        for i, (idx, c) in enumerate(zip(index, correct)):
            rows.append(dict(attack=attack, eps=eps, index=idx, label=idx % 10, correct=c,
                             attacked=c, success=int(c and i in hit), margin=0.0))
    pd.DataFrame(rows, columns=OUTCOME_HEADER).to_csv(path, index=False)
    return str(path)


def _indicator_csv(path, index, grad_l2, jac_zero) -> str:
    n = len(index)
    pd.DataFrame(dict(index=index, label=[i % 10 for i in index], correct=True, margin=0.1,
                      grad_l1=grad_l2, grad_l2=grad_l2, jac_zero_frac=jac_zero,
                      hess_top_eig=0.0, hess_zero_frac=[1.0] * n,
                      hess_method="exact")).to_csv(path, index=False)
    return str(path)


def _summary(path, degenerate=False, reason="", failed=()) -> str:
    path.write_text(json.dumps({"validity": {"degenerate": degenerate, "reason": reason},
                                "failed_checks": list(failed)}))
    return str(path)


N_IMG = 20
INDEX = [3 * i + 1 for i in range(N_IMG)]  # test-set indices of the shared subset


def _model(tmp_path, label: str, seed: int, *, correct=None, fgsm=(), worst=(), jac=0.0,
           grad=1.0, index=INDEX, degenerate="", failed=()) -> tuple[dict, dict]:
    """One synthetic model: its claim record and its robust-evaluation entry. `fgsm`: the
    positions FGSM breaks at every ε; `worst`: positions the strong attack (pgd_ce, in the
    robust outcomes) breaks at 0.2 besides FGSM's."""
    d = tmp_path / f"{label}_{seed}"
    d.mkdir(parents=True)
    correct = [1] * len(index) if correct is None else correct
    eps = {0.2: list(fgsm), 0.3: list(fgsm)}
    files = {"fgsm": _outcomes(d / "fgsm_images.csv", "fgsm_s2", index, correct, eps),
             "bim": _outcomes(d / "bim_images.csv", "bim_s2", index, correct,
                              {0.2: [], 0.3: []}),
             "indicator": _indicator_csv(d / "indicator.csv", index, [grad] * len(index),
                                         [jac] * len(index))}
    key = f"mnist/v/r_{label}/seed{seed}/final"
    strong = _outcomes(d / "outcomes.csv", "pgd_ce", index, correct, {0.2: list(worst)})
    robust = {"summary": _summary(d / "summary.json", bool(degenerate), degenerate, failed),
              "outcomes": [strong, files["fgsm"], files["bim"]]}
    return dict(seed=seed, recipe=f"r_{label}", key=key, files=files), {key: robust}


def _records(models: dict[str, list[dict]]) -> dict:
    return {"datasets": {"mnist": {"models": models,
                                   "attacks": {"fgsm": "fgsm_s2", "bim": "bim_s2"}}}}


def _claim(measure: str, cid: str = "", dataset: str = "mnist", **args) -> dict:
    return dict(id=cid or f"c-{measure}-{args.get('attack', '')}", measure=measure, unit="%",
                args=dict(dataset=dataset, **args))


def _build(tmp_path, spec: dict[str, list[dict]]) -> tuple[dict, dict]:
    """spec: label -> one dict of _model keywords per seed (with `seed`)."""
    models, robust = {}, {}
    for label, seeds in spec.items():
        for kw in seeds:
            rec, rob = _model(tmp_path, label, **kw)
            models.setdefault(label, []).append(rec)
            robust.update(rob)
    return _records(models), robust


def test_claim_evidence_one_seed_pairs_images_by_index(tmp_path):
    # natural: FGSM breaks the first 15 images and image 0 is misclassified; ours: the first 5,
    # ours also has an extra image (not in natural's rows) and its rows in another order
    extra = INDEX[::-1] + [999]
    records, robust = _build(tmp_path, {
        "natural": [dict(seed=42, fgsm=range(15), correct=[0] + [1] * (N_IMG - 1))],
        "ours": [dict(seed=42, index=extra, fgsm=[N_IMG - 1 - i for i in range(5)] + [N_IMG])]})
    claims = [_claim("robust_accuracy", a="ours", b="natural", attack="fgsm", eps=0.2),
              _claim("natural_accuracy", a="ours", b="natural")]
    ev = _evidence(claims, records, robust)
    fgsm = ev["c-robust_accuracy-fgsm"]
    assert fgsm["status"] == "ok" and "per_seed" not in fgsm
    assert fgsm["images_num"].shape == (1, N_IMG, 2)  # image 999 dropped by the inner join
    assert fgsm["images_num"][0].mean(0) == pytest.approx([15 / N_IMG, 5 / N_IMG])
    assert "one run, seed 42; 20 images" in fgsm["ours"]
    nat = ev["c-natural_accuracy-"]
    assert nat["images_num"][0].mean(0) == pytest.approx([1.0, (N_IMG - 1) / N_IMG])


def test_claim_evidence_per_seed_and_worst_case(tmp_path):
    # seeds 0 and 1 shared by both arms (seed 2 only in ours): per-seed effects; the worst case
    # is broken by FGSM or the strong attack
    records, robust = _build(tmp_path, {
        "natural": [dict(seed=s, fgsm=range(10 + s), worst=range(15, 20)) for s in (0, 1)],
        "ours": [dict(seed=s, fgsm=range(2), worst=range(2 + s, 4 + s)) for s in (0, 1, 2)]})
    claims = [_claim("robust_accuracy", a="ours", b="natural", attack="worst", eps=0.2),
              _claim("robust_accuracy", a="ours", b="natural", attack="fgsm", eps=0.3)]
    ev = _evidence(claims, records, robust)
    worst = ev["c-robust_accuracy-worst"]
    # ours: 20 − 2 − 2 (s = 0: positions 0-3; s = 1: 0-1, 3-4) broken; natural: 10 + s + 5
    assert worst["seeds"] == [0, 1] and worst["images_num"].shape == (2, N_IMG, 2)
    assert per_seed_effects(worst["images_num"]) == pytest.approx(
        [(16 - 5) / N_IMG, (16 - 4) / N_IMG])
    assert "2 seeds, mean" in worst["ours"]
    assert per_seed_effects(ev["c-robust_accuracy-fgsm"]["images_num"]) == pytest.approx(
        [(18 - 10) / N_IMG, (18 - 9) / N_IMG])


def test_claim_evidence_not_run_not_evaluable_and_flags(tmp_path):
    records, robust = _build(tmp_path, {
        "natural": [dict(seed=0, failed=("margin_only",))],
        "ours": [dict(seed=0)],
        "minmax": [dict(seed=0, degenerate="natural accuracy 0.11 < 0.8")]})
    claims = [_claim("robust_accuracy", a="ours_minmax", b="minmax", attack="worst", eps=0.2),
              _claim("robust_accuracy", a="ours", b="natural", attack="cw", eps=0.2),
              _claim("jacobian_zero_share", a="minmax", b="natural"),
              _claim("robust_accuracy", a="ours", b="natural", attack="bim", eps=0.25),
              _claim("natural_accuracy", "cifar", dataset="cifar10", a="ours", b="natural"),
              _claim("natural_accuracy", "nat", a="ours", b="natural")]
    ev = _evidence(claims, records, robust)
    assert ev["c-robust_accuracy-worst"] == dict(
        status="not_run", reason="regime 'ours_minmax' is not trained on mnist in this preset",
        ours="", flags=[])
    assert ev["c-robust_accuracy-cw"]["status"] == "not_run"
    assert "no CW attack" in ev["c-robust_accuracy-cw"]["reason"]
    jac = ev["c-jacobian_zero_share-"]
    assert jac["status"] == "not_evaluable"
    assert "minmax seed 0 (mnist/v/r_minmax/seed0/final): natural accuracy 0.11" in jac["reason"]
    assert ev["c-robust_accuracy-bim"]["status"] == "not_run"
    assert "does not run at ε = 0.25" in ev["c-robust_accuracy-bim"]["reason"]
    assert ev["nat"]["status"] == "ok" and ev["nat"]["flags"] == ["natural seed 0: margin_only"]
    assert ev["cifar"]["status"] == "not_run" and "cifar10" in ev["cifar"]["reason"]
    with pytest.raises(ValueError, match="unknown claim measure .nope."):
        _evidence([dict(claims[0], measure="nope")], records, robust)


def test_spearman_rows_by_hand():
    from scipy.stats import spearmanr

    x = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 1.0, 1.0, 2.0]])
    y = np.array([[0.3, 0.1, 0.2, 0.0], [1.0, 2.0, 3.0, 4.0]])
    got = rep.spearman_rows(x, y)
    assert got == pytest.approx([spearmanr(x[i], y[i]).statistic for i in range(2)])
    assert np.isnan(rep.spearman_rows([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])[0])


def test_indicator_spearman_evidence(tmp_path):
    # four regimes: the larger the indicator, the less robust (ρ = −1); minmax degenerate
    spec = {label: [dict(seed=0, grad=g, fgsm=range(k))]
            for label, g, k in (("natural", 4.0, 18), ("crossentropy", 2.0, 12),
                                ("ours", 1.0, 6), ("ours_minmax", 0.5, 3))}
    spec["minmax"] = [dict(seed=0, grad=9.0, degenerate="one class")]
    records, robust = _build(tmp_path, spec)
    claim = _claim("indicator_spearman", indicator="grad_l2", eps=0.2,
                   labels=["natural", "crossentropy", "ours", "minmax", "ours_minmax"])
    ev = _evidence([claim], records, robust)[claim["id"]]
    assert ev["status"] == "ok" and ev["n_seeds"] == 1
    assert ev["rank_x"] == pytest.approx([4.0, 2.0, 1.0, 0.5])   # minmax left out
    assert ev["rank_y"] == pytest.approx([2 / 20, 8 / 20, 14 / 20, 17 / 20])
    assert any("left out (degenerate): minmax seed 0" in f for f in ev["flags"])
    assert "over 4 regimes (seed 0, 20 images)" in ev["ours"]
    # with two seeds for every regime: one ρ per seed
    spec2 = {label: [dict(seed=s, grad=g + s, fgsm=range(k)) for s in (0, 1)]
             for label, g, k in (("natural", 4.0, 18), ("crossentropy", 2.0, 12),
                                 ("ours", 1.0, 6))}
    records, robust = _build(tmp_path / "two", spec2)
    ev = _evidence([claim], records, robust)[claim["id"]]
    assert ev["rank_x"] == pytest.approx([4.5, 2.5, 1.5]) and ev["n_seeds"] == 2
    # fewer than three regimes: not run
    records, robust = _build(tmp_path / "few", {k: spec2[k] for k in ("natural", "ours")})
    ev = _evidence([claim], records, robust)[claim["id"]]
    assert ev["status"] == "not_run" and "at least 3 regimes" in ev["reason"]


@pytest.mark.parametrize("preset", ["config.yaml", "configs/smoke.yaml"])
def test_plan_claims_and_evidence_on_synthetic_results(tmp_path, preset):
    root = Path(__file__).parents[2]
    cfg = validate_config(yaml.safe_load((root / preset).read_text()))
    s2 = plan.Study002(cfg)
    claims = s2.claims()
    ids = [c["id"] for c in claims]
    assert len(ids) == len(set(ids))
    keys = {"id", "study", "text", "where", "metric", "comparison", "direction", "margin", "unit",
            "headline", "ours", "worst_case", "study_value", "measure", "args", "sesoi",
            "sesoi_source"}
    assert all(set(c) == keys for c in claims)
    heads = [c for c in claims if c["headline"]]
    assert [c["id"] for c in heads] == ["002-mnist-ours-natural-worst-0.2",
                                        "002-mnist-ours-crossentropy-worst-0.2"]
    assert all(c["worst_case"] and c["direction"] == "greater" for c in heads)
    assert "64.9" in heads[0]["study_value"] and "19.9" in heads[1]["study_value"]
    assert {c["measure"] for c in claims} <= set(rep.MEASURES)
    # every file the records name is a claim input; write synthetic results there
    records = s2.claim_records()
    robust = {}
    for ds, block in records["datasets"].items():
        for label, models in block["models"].items():
            for m in models:
                local = {k: str(tmp_path / v) for k, v in m["files"].items()}
                assert set(m["files"].values()) <= set(s2.claim_inputs())
                for col, path in local.items():
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    if col == "indicator":
                        _indicator_csv(Path(path), INDEX, [1.0] * N_IMG, [0.1] * N_IMG)
                    else:
                        _outcomes(Path(path), block["attacks"][col], INDEX, [1] * N_IMG,
                                  {0.1: [], 0.2: [0], 0.3: [0, 1]})
                m["files"] = local
                d = Path(local["indicator"]).parent
                robust[m["key"]] = {
                    "summary": _summary(d / "summary.json"),
                    "outcomes": [_outcomes(d / "outcomes.csv", "pgd_ce", INDEX, [1] * N_IMG,
                                           {0.2: [1, 2]})] + [local[c] for c in block["attacks"]]}
    ev = _evidence(claims, records, robust)
    assert set(ev) == set(ids)
    regimes = cfg["studies"]["study002"]["datasets"]["mnist"]["regimes"]
    for c in claims:
        e = ev[c["id"]]
        arms = [c["args"][k] for k in ("a", "b") if k in c["args"]]
        if all(a in regimes for a in arms):
            assert e["status"] in ("ok", "not_evaluable"), (c["id"], e)
        else:
            assert e["status"] == "not_run" and "not trained" in e["reason"]
    seeds = {int(m["seed"]) for m in records["datasets"]["mnist"]["models"]["ours"]}
    head = ev[heads[0]["id"]]
    assert head["images_num"].shape[0] == len(seeds)
    assert head["images_num"].mean(axis=(0, 1)) == pytest.approx([17 / N_IMG, 17 / N_IMG])


def test_seeds_per_recipe_models_captions_and_first_seed_figures(tmp_path):
    smoke = Path(__file__).parents[2] / "configs" / "smoke.yaml"
    cfg = validate_config(yaml.safe_load(smoke.read_text()))
    s2cfg = cfg["studies"]["study002"]
    s2cfg["seeds_per_recipe"] = {"m2_ours": [7, 42]}
    s2 = plan.Study002(cfg)
    assert s2.check() == []
    seeds = {(r["label"], r["seed"]) for r in s2.models()}
    assert ("ours", 7) in seeds and ("natural", 7) not in seeds and ("natural", 42) in seeds
    # surfaces and Jacobians: each regime's first seed only
    assert {r["seed"] for r in s2.params("fig8_jacobian_mnist")} == {7, 42}
    assert {(r["label"], r["seed"]) for r in s2.params("fig8_jacobian_mnist")
            if r["label"] == "ours"} == {("ours", 7)}
    assert any(r["seed"] == 42 and r["label"] == "ours" for r in s2.params("table1_mnist"))
    s2cfg["seeds_per_recipe"] = {"m2_nope": [1]}
    assert any("seeds_per_recipe.m2_nope" in p for p in plan.Study002(cfg).check())
    # the accuracy caption gives the range of seeds over the rows
    columns = {"fgsm": "fgsm_t"}
    records = [_record("ours", s, {"fgsm": _attack_csv(tmp_path, "ours", s, "fgsm_t")})
               for s in SEEDS] + [_record("natural", 0, {"fgsm": _attack_csv(tmp_path, "natural",
                                                                              0, "fgsm_t")})]
    pres = _table_presentation("accuracy", labels=["natural", "ours"],
                               paper=plan_text.NO_PAPER_NOTE)
    numeric, _, caption = rep.make_table(
        "t", records, pres, kind={"kind": "accuracy", "dataset": "mnist"},
        study={"datasets": {"mnist": dict(attacks=columns)}}, attacks=ATTACKS, recipes={})
    assert list(numeric["n_seeds"]) == [1, 2] and "(1–2 seed(s))" in caption
    # figures draw each regime's smallest seed, even when the regimes' seeds differ
    recs = [dict(label="ours", seed=7), dict(label="natural", seed=42),
            dict(label="ours", seed=42), dict(label="natural", seed=43)]
    assert [(r["label"], r["seed"]) for r in figs.first_seed(recs, ["natural", "ours"])] == [
        ("natural", 42), ("ours", 7)]


def test_deviations_are_formatted_from_the_config():
    root = Path(__file__).parents[2]
    cfg = validate_config(yaml.safe_load((root / "config.yaml").read_text()))
    ext = yaml.safe_load((root / "configs" / "extended.yaml").read_text())
    cfg["studies"]["study002"]["datasets"]["mnist"]["regimes"].update(  # min-max: extended
        ext["studies"]["study002"]["datasets"]["mnist"]["regimes"])
    s2 = plan.Study002(cfg)
    text = "\n".join(s2.deviations())
    ours = cfg["recipes"][cfg["studies"]["study002"]["datasets"]["mnist"]["regimes"]["ours"]]
    assert f"c = {ours['regime']['penalty']['coef']:g}" in text and "c = 500" in text
    assert "PGD-40" in text and "warmed up" in text
    seeds = cfg["studies"]["study002"].get("seeds_per_recipe", {})
    for recipe, s in seeds.items():
        assert f"{recipe}: {', '.join(map(str, s))}" in text
    if "advtrain" not in cfg["studies"]["study002"]["datasets"]["mnist"]["regimes"]:
        assert "configs/extended.yaml trains it" in text
    cfg["studies"]["study002"]["enabled"] = False
    off = plan.Study002(cfg)
    assert off.claims() == [] and off.deviations() == [] and off.claim_inputs() == []
