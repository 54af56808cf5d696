"""Study 001's reports (curvrobust.reports.study001: tables; study001_figures: figures) built
from small hand-made evaluation and convergence files in the workflow's layout, with the plan's
presentation (or an edited one); means and 95 % intervals are checked against hand
computations, rows, headings and lines against the display names."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml

from curvrobust.claims.stats import per_seed_effects
from curvrobust.plans import study001 as plan
from curvrobust.plans.config import validate_config
from curvrobust.plans.study001 import text as plan_text
from curvrobust.reports import study001 as rep
from curvrobust.reports import study001_figures as figs



def _evidence(*args):
    """The report's evidence per claim id, as the published dicts (Evidence.as_mapping)."""
    return {k: v.as_mapping() for k, v in rep.claim_evidence(*args).items()}

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
    """One file as curvrobust.evaluation.checkpoints writes it (rule evaluate_checkpoint)."""
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
    return plan.Study001(validate_config(cfg))


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
    assert "Mean ± 95 % interval over each row's seeds (column Seeds)" in caption


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
    assert list(readable.columns) == list(plan_text.COLUMNS["table_hvp_error"].values())
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
    fig = figs.make_figure("fig1_haat_robust_accuracy",
                          _records(tmp_path, ["haat"], value={"haat": 1e-6}),
                          _presentation("fig1_haat_robust_accuracy"), dataset="mnist", eps=0.1,
                          seeds=[0, 1])
    assert len(fig.axes) == 1 and len(_lines(fig.axes[0])) == 3        # clean, PGD, AutoAttack
    assert fig._suptitle.get_text().startswith(
        "Study 001, mnist: HAAT model (ξ = 1e-06) over its checkpoints, ε = 0.1")
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
    # with the traced models named (curvrobust.curvature.power_trace): each k's model in the title
    for r in rows:
        r.update(model="haat" if r["k"] == 3 else "haat_k=1", own=r["k"] == 1)
    data = [_convergence_csv(tmp_path, "trace2.csv", rows)]
    fig = figs.make_figure("fig4_fd_convergence", [], _presentation("fig4_fd_convergence"),
                          dataset="mnist", data=data, convergence={"batches": 2}, seeds=[42])
    assert fig._suptitle.get_text().endswith(
        "seed(s) [42])\ntraced on k = 1: haat_k=1; k = 3: haat (no model trained with k = 3)")


def test_plan_presentation_covers_every_output():
    for name, (kind_type, kind) in plan.OUTPUTS.items():
        pres = _presentation(name)
        if kind_type == "table":
            assert name in rep.TABLES and pres["caption"] == plan_text.CAPTIONS[name]
        else:
            assert name in figs.FIGURES and pres["title"] == plan_text.TITLES[name]
            assert ("sweep" in pres) == (kind in plan_text.SWEEPS)


# ---- claims: evidence from small result files written here, in the workflow's layout ----

N_IMAGES = 40
HAAT_ROBUST = {42: 24, 43: 26, 44: 22}   # AutoAttack-robust images (the first n) per seed
PGD_ROBUST = {42: 20, 43: 21, 44: 20}
TWIN_ROBUST = {"haat_random": 18, "haat_w2zero": 23}   # seed 42 only


def _claims_cfg() -> dict:
    """The smoke preset with the headline arms on three seeds and both linf twins."""
    cfg = copy.deepcopy(_plan().cfg)
    s = cfg["studies"]["study001"]
    s["seeds_per_recipe"] = {"s1_pgd": [42, 43, 44], "s1_haat": [42, 43, 44]}
    twin = copy.deepcopy(cfg["recipes"]["s1_haat_random"])
    twin["regime"]["adversary"].update(w2=0.0, direction="hessian")
    cfg["recipes"]["s1_haat_w2zero"] = twin
    s["datasets"]["mnist"]["twins"]["haat_w2zero"] = "s1_haat_w2zero"
    return cfg


def _outcome_rows(attack: str, eps: float, robust: int, broken_from: int = 0,
                  wrong: int = 0) -> list[dict]:
    """One attack's per-image rows on N_IMAGES images (index 3i): the last `wrong` images are
    misclassified; of the others the first `robust` survive, the rest are broken (by this
    attack only from image `broken_from` on)."""
    rows = []
    for i in range(N_IMAGES):
        correct = int(i < N_IMAGES - wrong)
        broken = correct and i >= robust and i >= broken_from
        rows.append(dict(attack=attack, eps=eps, index=3 * i, label=i % 10, correct=correct,
                         attacked=correct, success=int(broken), margin=0.1))
    return rows


def _write_images(path: Path, eps: float, aa_robust: int, pgd_robust: int, pgd_name: str,
                  stages: list[str]) -> None:
    """An epochN_images.csv as evaluate_checkpoint writes it: the PGD rows, then the cascade's
    stages (the first breaks the images, the later ones attack what is left and break none)."""
    rows = _outcome_rows(pgd_name, eps, pgd_robust)
    rows += _outcome_rows(stages[0], eps, aa_robust)
    for st in stages[1:]:
        rows += [dict(r, attack=st, attacked=int(r["correct"] and r["index"] // 3 < aa_robust),
                      success=0) for r in _outcome_rows(st, eps, aa_robust)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _write_results(root: Path, records: dict, *, robust_overrides=None) -> dict:
    """Every file the claims read, under `root`; returns the `robust` map (summary and outcomes
    per model key): each summary valid unless `robust_overrides` {key: summary fields}."""
    ds = records["datasets"]["mnist"]
    robust = {}
    for label, m in ds["models"].items():
        for seed in m["seeds"]:
            aa = {"haat": HAAT_ROBUST, "pgd_at": PGD_ROBUST}.get(label, {}).get(seed)
            aa = TWIN_ROBUST.get(label, 30) if aa is None else aa
            _write_images(root / m["images"][str(seed)], ds["eps"], aa, aa + 2, ds["pgd"],
                          ds["autoattack"])
            key = m["keys"][str(seed)]
            d = root / "robust" / key
            d.mkdir(parents=True, exist_ok=True)
            # the robust evaluation's own attack breaks 2 more of HAAT's images than PGD-AT's
            extra = {"haat": 2}.get(label, 0)
            pd.DataFrame(_outcome_rows("square", ds["eps"], aa - extra)).to_csv(
                d / "outcomes.csv", index=False)
            summary = {"validity": {"degenerate": False, "reason": ""}, "failed_checks": []}
            summary.update((robust_overrides or {}).get(key, {}))
            (d / "summary.json").write_text(json.dumps(summary))
            robust[key] = {"summary": str(d / "summary.json"),
                           "outcomes": [str(d / "outcomes.csv"), m["images"][str(seed)]]}
    k = ds["trace"]["k"]
    for seed, f in ds["trace"]["files"].items():
        rows = [dict(batch=b, method=meth, k=kk, xi=5e-6, iteration=i,
                     diff_mean=(0.9 + 0.01 * b if meth == "fd" else 0.2 - 0.01 * b)
                     if (kk, i) == (k, k) else 1.4,
                     diff_median=0.0, diff_q10=0.0, diff_q90=1.0, converged_frac=0.5)
                for b in range(4) for meth in ("fd", "exact") for kk in (1, k)
                for i in range(1, kk + 1)]
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(root / f, index=False)
    return robust


@pytest.fixture()
def claims_setup(tmp_path, monkeypatch):
    """(claims, records, robust) of _claims_cfg with every result file written under tmp_path
    (the working directory, so the records' relative paths resolve)."""
    monkeypatch.chdir(tmp_path)
    p = plan.Study001(_claims_cfg())
    records = p.claim_records()
    return p.claims(), records, _write_results(tmp_path, records)


def _by_id(claims) -> dict:
    return {c["id"]: c for c in claims}


def test_claims_list_every_claim_and_read_the_files_they_name(claims_setup):
    claims, records, _ = claims_setup
    ids = [c["id"] for c in claims]
    assert len(ids) == len(set(ids)) and sum(c["headline"] for c in claims) == 1
    assert ids[0] == "001-mnist-haat-pgdat-autoattack" and claims[0]["headline"]
    for cid in ("001-mnist-haat-w2zero-autoattack", "001-mnist-haat-random-linf-autoattack",
                "001-mnist-haat-random-l2ball-autoattack", "001-mnist-xi-autoattack",
                "001-mnist-k-autoattack", "001-mnist-fd-convergence",
                "001-mnist-haat-pgdat-pgd20", "001-mnist-haat-pgdat-worstcase"):
        assert cid in ids
    assert all(Path(f).is_file() for f in plan.Study001(_claims_cfg()).claim_inputs())


def test_claim_evidence_per_seed_and_per_image_effects(claims_setup):
    claims, records, robust = claims_setup
    ev = _evidence(claims, records, robust)
    head = ev["001-mnist-haat-pgdat-autoattack"]
    assert head["status"] == "ok" and head["seeds"] == [42, 43, 44]
    assert np.shape(head["images_num"]) == (3, N_IMAGES, 2) and head["images_den"] is None
    assert per_seed_effects(head["images_num"]) == pytest.approx(
        [(HAAT_ROBUST[s] - PGD_ROBUST[s]) / N_IMAGES for s in (42, 43, 44)])
    haat, pgd_at = (100 * np.mean(list(v.values())) / N_IMAGES for v in (HAAT_ROBUST, PGD_ROBUST))
    assert head["ours"] == f"HAAT {haat:.1f} %, PGD-AT {pgd_at:.1f} % (3 seeds, mean; 40 images)"
    pgd = ev["001-mnist-haat-pgdat-pgd20"]     # the PGD rows: 2 more robust images each
    assert per_seed_effects(pgd["images_num"]) == pytest.approx(
        per_seed_effects(head["images_num"]))
    worst = ev["001-mnist-haat-pgdat-worstcase"]    # square breaks 2 more of HAAT's images
    assert per_seed_effects(worst["images_num"]) == pytest.approx(
        [(HAAT_ROBUST[s] - 2 - PGD_ROBUST[s]) / N_IMAGES for s in (42, 43, 44)])
    twin = ev["001-mnist-haat-random-linf-autoattack"]    # one common seed: per image
    num = np.asarray(twin["images_num"])
    assert num.shape == (1, N_IMAGES, 2) and twin["images_den"] is None
    assert num[0, :, 0].sum() == HAAT_ROBUST[42]
    assert num[0, :, 1].sum() == TWIN_ROBUST["haat_random"]
    w2 = ev["001-mnist-haat-w2zero-autoattack"]["images_num"]
    assert per_seed_effects(w2) == pytest.approx([1 / 40])
    conv = ev["001-mnist-fd-convergence"]
    pairs = np.asarray(conv["images_num"])
    assert pairs.shape == (1, 4, 2)
    np.testing.assert_allclose(pairs[0, :, 0], [0.9, 0.91, 0.92, 0.93])
    np.testing.assert_allclose(pairs[0, :, 1], [0.2, 0.19, 0.18, 0.17])


def test_claims_not_run_without_their_models(claims_setup):
    claims, records, robust = claims_setup
    ev = _evidence(claims, records, robust)
    l2 = ev["001-mnist-haat-random-l2ball-autoattack"]
    assert l2["status"] == "not_run" and "haat_l2ball" in l2["reason"]
    assert "configs/extended.yaml" in l2["reason"]
    xi = ev["001-mnist-xi-autoattack"]     # the smoke sweep has no ξ = 1e-6 model
    assert xi["status"] == "not_run" and "xi = 1e-06" in xi["reason"]
    # the smoke preset itself has no w₂ = 0 twin
    p = plan.Study001(_plan().cfg)
    ev = _evidence(p.claims(), p.claim_records(), {})
    w2 = ev["001-mnist-haat-w2zero-autoattack"]
    assert w2["status"] == "not_run" and "haat_w2zero" in w2["reason"]


def test_degenerate_model_makes_its_claims_not_evaluable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = plan.Study001(_claims_cfg())
    records = p.claim_records()
    twin_key = records["datasets"]["mnist"]["models"]["haat_random"]["keys"]["42"]
    pgd_key = records["datasets"]["mnist"]["models"]["pgd_at"]["keys"]["43"]
    robust = _write_results(tmp_path, records, robust_overrides={
        twin_key: {"validity": {"degenerate": True, "reason": "one class for 90 % of images"}},
        pgd_key: {"failed_checks": ["margin_only"]}})
    ev = _evidence(p.claims(), records, robust)
    bad = ev["001-mnist-haat-random-linf-autoattack"]
    assert bad["status"] == "not_evaluable"
    assert bad["reason"] == ("HAAT random direction seed 42 is degenerate: one class for 90 % of "
                             "images")
    head = ev["001-mnist-haat-pgdat-autoattack"]   # a failed masking check: flagged, kept
    assert head["status"] == "ok" and head["flags"] == ["PGD-AT seed 43: margin_only"]


def test_claim_evidence_is_judged(claims_setup):
    """Every evidence dict is accepted by the claims engine, with the verdicts the synthetic
    effects imply."""
    from curvrobust.claims.judge import judge_all
    from curvrobust.claims.stats import judge_directional, two_way_inference
    claims, records, robust = claims_setup
    ev = _evidence(claims, records, robust)
    rows = {r["id"]: r for r in judge_all(claims, ev)}
    fd = rows["001-mnist-fd-convergence"]   # one seed: never a verdict about the method
    assert fd["verdict"] == "inconclusive" and fd["basis"] == "one training run"
    assert fd["lo"] > 0   # though its batch-level interval excludes 0
    assert rows["001-mnist-haat-random-l2ball-autoattack"]["verdict"] == "not run"
    # the headline: +4, +5, +2 robust images of 40 over 3 seeds, judged against its SESOI
    head = rows["001-mnist-haat-pgdat-autoattack"]
    inf = two_way_inference(ev["001-mnist-haat-pgdat-autoattack"]["images_num"])
    assert head["seeds"] == 3 and head["images"] == N_IMAGES
    assert (head["effect"], head["lo"], head["hi"]) == pytest.approx(
        (100 * inf.effect, 100 * inf.lo, 100 * inf.hi))
    assert head["effect"] == pytest.approx(100 * 11 / 120)
    headline = next(c for c in claims if c["id"] == head["id"])
    j = judge_directional("greater", 100 * headline["sesoi"], dataclasses.replace(
        inf, effect=100 * inf.effect, se=100 * inf.se, lo=100 * inf.lo, hi=100 * inf.hi,
        se_seed=100 * inf.se_seed, se_image=100 * inf.se_image))
    assert (head["verdict"], head["reason"]) == (j.verdict, j.reason)
    assert head["mde"] == pytest.approx(j.mde) and head["power"] == pytest.approx(j.power)
