"""Study 000's tables (curvrobust.reports.study000) and figures (study000_figures) from small
synthetic per-model files (no Snakemake)."""

import json
import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from curvrobust.reports import tables
from curvrobust.plans import Study000
from curvrobust.plans.config import fill_defaults
from curvrobust.reference import load_reference
from curvrobust.reports import study000 as rep
from curvrobust.reports import study000_figures as figs



def _evidence(*args):
    """The report's evidence per claim id, as the published dicts (Evidence.as_mapping)."""
    return {k: v.as_mapping() for k, v in rep.claim_evidence(*args).items()}

STUDY = dict(enabled=True, datasets=["mnist"], recipes={"gn": "r_gn", "adam": "r_adam"},
             match={"reference": "gn", "labels": ["adam"]})
RECIPES = {"r_gn": dict(optimizer={"name": "gn"}, epochs=2),
           "r_adam": dict(optimizer={"name": "adam", "lr": 0.001}, epochs=3)}
MODELS = [("adam", 42), ("adam", 43), ("gn", 42)]


def presentation(name):
    return Study000({"studies": {"study000": STUDY}}).presentation("mnist", name)


def attack_records(tmp_path, correct=None, match_step=None):
    """FGSM CSVs at ε 0.1 and 0.01 per model; `correct[(label, seed)]` correctly classified."""
    recs = []
    for label, seed in MODELS:
        c = (correct or {}).get((label, seed), 100)
        rows = [dict(eps=eps, n_test=200, correct=c, successes=s, success_rate=s / c,
                     adv_accuracy=(c - s) / 200) for eps, s in ((0.1, seed - 2), (0.01, 5))]
        f = tmp_path / f"{label}{seed}.csv"
        pd.DataFrame(rows).to_csv(f, index=False)
        rec = dict(label=label, variant="clean", seed=seed, file=str(f))
        if match_step is not None and label != "gn":
            info = tmp_path / f"{label}{seed}.json"
            info.write_text(json.dumps(dict(step=match_step + seed, train_loss=0.5)))
            rec["match_info"] = str(info)
        recs.append(rec)
    return recs


def test_fgsm_table_means_order_labels_and_caption(tmp_path):
    recs = attack_records(tmp_path, correct={("adam", 42): 90, ("adam", 43): 110})
    num, readable, cap = rep.make_table("table1_fgsm_clean", recs,
                                        presentation("table1_fgsm_clean"),
                                        study=STUDY, recipes=RECIPES)
    assert list(num["optimizer"]) == ["adam", "gn"]  # display order, not the config's
    assert list(readable["Optimizer"]) == ["Adam", "Gauss-Newton"]
    adam = num.iloc[0]
    assert adam["n_seeds"] == 2 and adam["correct_mean"] == 100
    assert adam["rate_eps0.1_mean"] == pytest.approx(100 * (40 / 90 + 41 / 110) / 2)
    assert adam["correct_ci95"] == pytest.approx(tables.mean_ci([90, 110])[1])
    assert adam["paper_correct"] == load_reference("study000")["fgsm"]["adam"]["clean"]["correct"]
    assert cap.startswith("Table 1: FGSM on models trained on clean MNIST")
    assert load_reference("study000")["citation"] in cap
    assert cap.endswith('Ours: Adam: {"name": "adam", "lr": 0.001}, 3 epochs; '
                        'Gauss-Newton: {"name": "gn"}, 2 epochs; seeds [42, 43]; '
                        "mean ± 95 % interval over seeds where several.")


def test_poisoned_table_reads_poisoned_paper_numbers(tmp_path):
    num, _, cap = rep.make_table("table2_fgsm_poisoned", attack_records(tmp_path),
                                 presentation("table2_fgsm_poisoned"), study=STUDY,
                                 recipes=RECIPES)
    assert num.iloc[1]["paper_correct"] == \
        load_reference("study000")["fgsm"]["gn"]["poison10"]["correct"]
    assert "label-poisoned (10 %)" in cap


def test_matched_table_shows_checkpoints_and_drops_paper(tmp_path):
    recs = attack_records(tmp_path, match_step=100)
    num, readable, cap = rep.make_table("table1b_fgsm_matched_loss", recs,
                                        presentation("table1b_fgsm_matched_loss"),
                                        study=STUDY, recipes=RECIPES)
    assert list(num["checkpoint_step_mean"][:1]) == [142.5]
    assert math.isnan(num["checkpoint_step_mean"].iloc[1])
    assert list(readable["Checkpoint step"]) == ["142", "final"]  # f"{142.5:.0f}"
    assert list(readable["Train loss at checkpoint"]) == ["0.500", "–"]
    assert not [c for c in num.columns if c.startswith("paper_")]
    assert not [c for c in readable.columns if "(paper)" in c]
    assert list(readable["Train accuracy at checkpoint"]) == ["–", "–"]  # not in the info
    assert "for Adam the checkpoint where the whole-training-set loss first falls to " \
           "Gauss-Newton's final one" in cap


def test_accuracy_matched_table_shows_checkpoint_accuracy(tmp_path):
    recs = attack_records(tmp_path, match_step=100)
    for r in recs:
        if "match_info" in r:
            info = json.loads(open(r["match_info"]).read())
            info.update(train_acc=0.9 + (r["seed"] - 42) / 100, matched_on="accuracy")
            open(r["match_info"], "w").write(json.dumps(info))
    num, readable, cap = rep.make_table("table1c_fgsm_matched_accuracy", recs,
                                        presentation("table1c_fgsm_matched_accuracy"),
                                        study=STUDY, recipes=RECIPES)
    assert num["checkpoint_train_acc_mean"].iloc[0] == pytest.approx(0.905)
    assert list(readable["Train accuracy at checkpoint"]) == ["90.50 %", "–"]
    assert cap.startswith("Table 1c (not in the study): FGSM on clean-trained MNIST models compared "
                          "at equal training accuracy")
    assert "for Adam the first checkpoint whose whole-training-set accuracy reaches " \
           "Gauss-Newton's final one" in cap


def test_sam_table_medians_and_display_columns(tmp_path):
    recs = []
    for label, seed in MODELS:
        f = tmp_path / f"sam_{label}{seed}.csv"
        vals = [1.0, 2.0, 10.0 * seed] if label == "adam" else [4.0, 5.0, 6.0]
        pd.DataFrame(dict(rho=[0.01] * 3, batch=range(3), loss_increase=vals)).to_csv(
            f, index=False)
        recs.append(dict(label=label, variant="clean", seed=seed, file=str(f)))
    num, readable, cap = rep.make_table("table3_sam_median", recs,
                                        presentation("table3_sam_median"),
                                        study=STUDY, recipes=RECIPES)
    assert num["adam_median_mean"].iloc[0] == 2.0 and num["gn_median_mean"].iloc[0] == 5.0
    assert list(readable.columns) == ["ρ", "Adam median increase", "Adam (paper)",
                                      "Gauss-Newton median increase", "Gauss-Newton (paper)"]
    assert cap.startswith("Table 3: median over test batches of 256")


def test_training_summary_uses_last_epoch(tmp_path):
    recs = []
    for i, (label, seed) in enumerate(MODELS):
        f = tmp_path / f"ep_{label}{seed}.csv"
        pd.DataFrame(dict(epoch=[1, 2], train_loss=[9.0, 0.1 * (i + 1)], train_acc=[0.1, 0.9],
                          test_acc=[0.1, 0.9 + 0.02 * i], wall_time_s=[60.0, 120.0 * (i + 1)])
                     ).to_csv(f, index=False)
        recs.append(dict(label=label, variant="clean", seed=seed, file=str(f)))
    num, readable, _ = rep.make_table("training_summary", recs, presentation("training_summary"),
                                      study=STUDY, recipes=RECIPES)
    assert list(num["optimizer"]) == ["adam", "gn"] and list(num["n_seeds"]) == [2, 1]
    m, h = tables.mean_ci([0.9, 0.92])
    assert num["test_acc_mean"].iloc[0] == pytest.approx(m)
    assert readable["Test accuracy"].iloc[0] == tables.fmt_ci(100 * m, 100 * h, 2, "%")
    assert list(readable["Train minutes"]) == ["3.0 ± 12.7", "6.0"]
    assert list(readable["Optimizer"]) == ["Adam", "Gauss-Newton"]


def test_presentation_templates_come_from_the_caller(tmp_path):
    p = dict(order=["adam", "gn"], labels={"adam": "A", "gn": "G"},
             caption="cap {citation} | {footer}", footer="seeds={seeds} / {settings}")
    _, readable, cap = rep.make_table("table1_fgsm_clean", attack_records(tmp_path), p,
                                      study=STUDY, recipes=RECIPES)
    assert list(readable["Optimizer"]) == ["A", "G"]
    assert cap == (f"cap {load_reference('study000')['citation']} | seeds=[42, 43] / "
                   'A: {"name": "adam", "lr": 0.001}, 3 epochs; G: {"name": "gn"}, 2 epochs')


def test_unknown_outputs_raise():
    with pytest.raises(ValueError, match="unknown study000 table"):
        rep.make_table("table9", [], {}, study=STUDY, recipes=RECIPES)
    with pytest.raises(ValueError, match="unknown study000 figure"):
        figs.make_figure("fig9", [], {})


def stats_records(tmp_path, name, frame):
    recs = []
    for variant in ("clean", "poison10"):
        for label, seed in MODELS:
            f = tmp_path / f"{name}_{variant}_{label}{seed}.csv"
            frame(seed).to_csv(f, index=False)
            recs.append(dict(label=label, variant=variant, seed=seed, file=str(f)))
    return recs


def test_distribution_figure_panels_and_texts(tmp_path):
    recs = stats_records(tmp_path, "stats", lambda s: pd.DataFrame(dict(
        input_grad_norm=[0.1, 0.2, 0.3 * s], logit_margin=[-1.0, 2.0, 3.0])))
    fig = figs.make_figure("fig3_logit_margin", recs, presentation("fig3_logit_margin"))
    assert len(fig.axes) == 4  # 2 variants × 2 optimizers
    assert fig._suptitle.get_text() == "Fig. 3: logit margin on the MNIST test set"
    assert fig.axes[0].get_title().startswith("Adam · clean")
    assert fig.axes[3].get_xlabel() == "logit margin z_y − max_{j≠y} z_j"
    plt.close(fig)


def test_sam_figure_uses_largest_rho(tmp_path):
    recs = stats_records(tmp_path, "sam", lambda s: pd.DataFrame(dict(
        rho=[0.001, 0.001, 0.05, 0.05], index=[0, 1, 0, 1], loss_increase=[1.0, 2.0, 0.0, 4.0])))
    fig = figs.make_figure("fig_sam_per_example", recs, presentation("fig_sam_per_example"))
    assert fig.axes[-1].get_xlabel() == "per-example loss increase, ρ=0.05"
    plt.close(fig)


def test_training_curves_figure(tmp_path):
    recs = stats_records(tmp_path, "ep", lambda s: pd.DataFrame(dict(
        epoch=[1, 2], train_loss=[1.0, 0.5], test_acc=[0.5, 0.8 + s / 1000])))
    fig = figs.make_figure("fig_training_curves", recs, presentation("fig_training_curves"))
    assert len(fig.axes) == 2
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "Adam" in legend and "Gauss-Newton" in legend
    plt.close(fig)


# ---- claims: the plan's claims and seeds, and claim_evidence on synthetic per-image files ----
def _claims_cfg(**study):
    block = dict(enabled=True, datasets=["mnist"], clean_variant="clean", poisoned_variant="poison10",
                 recipes={"sgd": "r_sgd", "adam": "r_adam", "gn": "r_gn"}, seeds=[1],
                 headline=dict(labels=["gn", "adam"], seeds=[1, 2, 3]), attack="fgsm",
                 match=dict(reference="gn", labels=["sgd", "adam"]))
    block.update(study)
    opt = {"sgd": {"name": "sgd", "lr": 0.01}, "adam": {"name": "adam", "lr": 0.001},
           "gn": {"name": "gauss_newton", "lr": 0.01, "damping": 0.01}}
    return fill_defaults(dict(
        datasets={"mnist": {}},
        variants={"clean": {"kind": "clean"},
                  "poison10": {"kind": "label_poison", "fraction": 0.1, "seed": 0}},
        recipes={f"r_{k}": dict(optimizer=o, epochs=15 if k != "gn" else 4, batch_size=128)
                 for k, o in opt.items()},
        attacks={"fgsm": {"kind": "fgsm", "eps": [0.1, 0.05, 0.01]}},
        statistics={"sam": {"rho": [0.001, 0.01]}},
        studies={"study000": block}))


def _claim(plan, cid):
    return next(c for c in plan.claims() if c["id"] == cid)


def test_claims_are_data_with_one_headline_and_the_printed_numbers():
    plan = Study000(_claims_cfg())
    claims = plan.claims()
    ids = [c["id"] for c in claims]
    assert len(ids) == len(set(ids))
    assert [c["id"] for c in claims if c["headline"]] == ["000-gn-adam-fgsm-clean-0.1"]
    head = claims[0]
    assert head["study_value"] == "GN 51.51 % vs Adam 75.64 %" and head["direction"] == "less"
    assert claims[1]["id"] == "000-gn-adam-worst-clean-0.1" and claims[1]["worst_case"]
    assert claims[1]["ours"]
    # GN below SGD and Adam at every ε, clean and poisoned: 2 × 3 × 2 rows, the headline once
    fgsm = [i for i in ids if i.startswith("000-gn-")
            and ("-fgsm-clean-" in i or "-fgsm-poisoned-" in i)]
    assert len(fgsm) == 12
    # K-FAC (ours): below Adam and within ±5 points of Gauss-Newton, by FGSM and the worst case
    kfac = {c["id"]: c for c in claims if c["id"].startswith("000-kfac-")}
    assert sorted(kfac) == sorted(f"000-kfac-{o}-{k}-clean-0.1" for o in ("adam", "gn")
                                  for k in ("fgsm", "worst"))
    assert all(c["ours"] and not c["headline"] for c in kfac.values())
    assert kfac["000-kfac-adam-fgsm-clean-0.1"]["direction"] == "less"
    assert kfac["000-kfac-gn-worst-clean-0.1"]["direction"] == "equivalent"
    assert kfac["000-kfac-gn-worst-clean-0.1"]["margin"] == 0.05
    assert kfac["000-kfac-gn-worst-clean-0.1"]["worst_case"]
    assert kfac["000-kfac-adam-fgsm-clean-0.1"]["args"]["arms"][0]["label"] == "kfac"
    poison = _claim(plan, "000-gn-poison-unchanged-0.1")
    assert poison["direction"] == "equivalent" and poison["margin"] == 0.03
    assert _claim(plan, "000-gn-adam-sam")["args"]["rho"] == 0.01
    assert {c["id"] for c in claims if c["ours"]} >= {
        "000-gn-adam-fgsm-matchloss-0.1", "000-gn-sgd-fgsm-matchacc-0.1",
        "000-gn-sgd-worst-clean-0.1"}
    for c in claims:
        assert set(c) >= {"id", "study", "text", "where", "metric", "comparison", "direction",
                          "margin", "unit", "headline", "ours", "worst_case", "study_value",
                          "measure", "args"}
        json.dumps(c)
    assert Study000(_claims_cfg(enabled=False)).claims() == []


def test_printed_numbers_equal_the_reference_file():
    from curvrobust.plans.study000 import claims as plan000

    ref = load_reference("study000")
    roles = {"clean": "clean", "poisoned": "poison10"}
    for label, by_role in plan000.PRINTED_RATE.items():
        for role, rates in by_role.items():
            assert rates == ref["fgsm"][label][roles[role]]["rate"]
    assert plan000.PRINTED_SAM == ref["sam_median"]


def test_headline_seeds_matched_checkpoints_and_tables():
    plan = Study000(_claims_cfg())
    by = {}
    for r in plan.models(["clean", "poison10"]):
        by.setdefault((r["label"], r["variant"]), []).append(r["seed"])
    assert by[("gn", "clean")] == [1, 2, 3] and by[("adam", "clean")] == [1, 2, 3]
    assert by[("sgd", "clean")] == [1] and by[("gn", "poison10")] == [1]
    assert "mnist/table1c_fgsm_matched_accuracy" in plan.outputs()
    ckpts = {(r["label"], r["ckpt"], r["seed"]) for r in plan.robust_models()
             if r["ckpt"] != "final"}
    assert ckpts == {("adam", "match-r_gn", s) for s in (1, 2, 3)} | {
        ("adam", "matchacc-r_gn", s) for s in (1, 2, 3)} | {
        ("sgd", "match-r_gn", 1), ("sgd", "matchacc-r_gn", 1)}
    only_loss = Study000(_claims_cfg(match=dict(reference="gn", labels=["adam"], by=["loss"])))
    assert "mnist/table1c_fgsm_matched_accuracy" not in only_loss.outputs()
    assert not any(r["ckpt"].startswith("matchacc") for r in only_loss.robust_models())
    bad = Study000(_claims_cfg(headline=dict(labels=["newton"], seeds=[1, 2, 3])))
    assert bad.check() == ["studies.study000.headline.labels[0]: label 'newton' is not in "
                           "studies.study000.recipes"]
    dev = plan.deviations()
    assert "Gauss-Newton: 4 of the study's 15 epochs" in dev
    assert any("without replacement" in d for d in dev)
    assert any(d.startswith("Seeds [1, 2, 3]") for d in dev)


def _fgsm_file(path, n, correct, success, eps=0.1, order=None):
    """Per-image FGSM outcomes at `eps`: images 0..n-1, the first `correct` classified
    correctly, the first `success` of those broken."""
    idx = list(order if order is not None else range(n))
    pd.DataFrame(dict(attack="fgsm", eps=eps, index=idx, label=0,
                      correct=[int(i < correct) for i in idx], attacked=[int(i < correct)
                                                                        for i in idx],
                      success=[int(i < success) for i in idx], margin=0.0)).to_csv(
        path, index=False)
    return str(path)


def _model(tmp_path, label, role, seed, n=20, correct=10, success=5, match="final", **files):
    variant = "clean" if role == "clean" else "poison10"
    ckpt = "final" if match == "final" else f"{'match' if match == 'loss' else 'matchacc'}-r_gn"
    key = f"mnist/{variant}/r_{label}/seed{seed}/{ckpt}"
    f = _fgsm_file(tmp_path / f"{key.replace('/', '_')}_fgsm.csv", n, correct, success)
    return dict(label=label, variant=variant, recipe=f"r_{label}", seed=seed, dataset="mnist",
                ckpt=ckpt, role=role, match=match, key=key, fgsm_images=f, **files)


def test_evidence_per_seed_effects_of_ratio_arms(tmp_path):
    plan = Study000(_claims_cfg())
    # GN seed s: 5 + s of 10 correct broken; Adam: 8 of 16 correct (rate 0.5) every seed
    models = [_model(tmp_path, "gn", "clean", s, correct=10, success=5 + s) for s in (1, 2, 3)]
    models += [_model(tmp_path, "adam", "clean", s, correct=16, success=8) for s in (1, 2, 4)]
    ev = _evidence([_claim(plan, "000-gn-adam-fgsm-clean-0.1")],
                            dict(labels={"gn": "GN", "adam": "Adam"}, models=models), {})
    e = ev["000-gn-adam-fgsm-clean-0.1"]
    assert e["status"] == "ok" and e["seeds"] == [1, 2]  # seeds in both arms only
    assert e["images_num"].shape == e["images_den"].shape == (2, 20, 2)
    from curvrobust.claims.stats import per_seed_effects

    assert per_seed_effects(e["images_num"], e["images_den"]) == pytest.approx([0.1, 0.2])
    # on the 10 images both arms classify correctly: GN 6/10, 7/10; Adam 8/10
    both = per_seed_effects(e["both_correct_num"], e["both_correct_den"])
    assert both == pytest.approx([6 / 10 - 8 / 10, 7 / 10 - 8 / 10])
    assert e["ours"] == "GN 65.0 %, Adam 50.0 % (2 seeds, mean)"


def test_evidence_one_seed_pairs_images(tmp_path):
    plan = Study000(_claims_cfg())
    gn = _model(tmp_path, "gn", "clean", 1, n=20, correct=12, success=3)
    sgd = _model(tmp_path, "sgd", "clean", 1, n=20, correct=15, success=9)
    # SGD's file in another row order: rows pair on the image index, not the position
    _fgsm_file(sgd["fgsm_images"], 20, 15, 9, order=reversed(range(20)))
    e = _evidence([_claim(plan, "000-gn-sgd-fgsm-clean-0.1")],
                           dict(labels={"gn": "GN", "sgd": "SGD"}, models=[gn, sgd]),
                           {})["000-gn-sgd-fgsm-clean-0.1"]
    num, den = e["images_num"], e["images_den"]
    assert num.shape == den.shape == (1, 20, 2) and "per_seed" not in e
    num, den = num[0], den[0]
    assert num[:, 0].sum() / den[:, 0].sum() == pytest.approx(3 / 12)
    assert num[:, 1].sum() / den[:, 1].sum() == pytest.approx(9 / 15)
    assert (den[:, 1] == [int(i < 15) for i in range(20)]).all()  # paired by index
    assert e["ours"] == "GN 25.0 %, SGD 60.0 % (seed 1)"


def test_evidence_means_of_input_statistics_and_sharpness(tmp_path):
    plan = Study000(_claims_cfg())
    models = []
    for label, scale in (("gn", 3.0), ("adam", 1.0)):
        stats = tmp_path / f"{label}_stats.csv"
        pd.DataFrame(dict(index=range(4), label=0, pred=0,
                          input_grad_norm=[scale * v for v in (1, 2, 3, 4)],
                          logit_margin=[10 / scale] * 4)).to_csv(stats, index=False)
        sam = tmp_path / f"{label}_sam.csv"
        pd.DataFrame(dict(rho=[0.001] * 4 + [0.01] * 4, index=list(range(4)) * 2,
                          loss_increase=[9.0] * 4 + [scale * 0.01] * 4)).to_csv(sam,
                                                                              index=False)
        models.append(_model(tmp_path, label, "clean", 1, input_stats=str(stats),
                             sam_examples=str(sam)))
    claims = [_claim(plan, i) for i in ("000-gn-adam-gradnorm", "000-gn-adam-margin",
                                        "000-gn-adam-sam")]
    ev = _evidence(claims, dict(labels={}, models=models), {})
    grad = ev["000-gn-adam-gradnorm"]
    assert grad["images_den"] is None
    assert grad["images_num"].mean(axis=(0, 1)) == pytest.approx([7.5, 2.5])
    assert grad["both_correct_num"] is None  # a mean, not a rate among correct images
    assert ev["000-gn-adam-margin"]["images_num"].mean(axis=(0, 1)) == pytest.approx([10 / 3,
                                                                                       10])
    assert ev["000-gn-adam-sam"]["images_num"].mean(axis=(0, 1)) == pytest.approx([0.03, 0.01])


def _summary(tmp_path, name, degenerate=False, failed=()):
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(dict(validity=dict(degenerate=degenerate,
                                               reason="accuracy 0.11 < 0.8" if degenerate else ""),
                                 failed_checks=list(failed))))
    return str(f)


def test_evidence_not_evaluable_on_a_degenerate_final_model_and_flags(tmp_path):
    plan = Study000(_claims_cfg())
    gn = _model(tmp_path, "gn", "clean", 1)
    adam = _model(tmp_path, "adam", "clean", 1)
    claim = _claim(plan, "000-gn-adam-fgsm-clean-0.1")
    records = dict(labels={}, models=[gn, adam])
    robust = {gn["key"]: dict(summary=_summary(tmp_path, "gn", degenerate=True), outcomes=[]),
              adam["key"]: dict(summary=_summary(tmp_path, "adam", failed=["margin_only"]),
                                outcomes=[])}
    e = _evidence([claim], records, robust)[claim["id"]]
    assert e["status"] == "not_evaluable"
    assert e["reason"] == "gn seed 1: degenerate final model (accuracy 0.11 < 0.8)"
    robust[gn["key"]]["summary"] = _summary(tmp_path, "gn2", failed=["margin_only", "square_only"])
    e = _evidence([claim], records, robust)[claim["id"]]
    assert e["status"] == "ok"
    assert e["flags"] == ["gn seed 1: margin_only", "gn seed 1: square_only",
                          "adam seed 1: margin_only"]


def test_evidence_not_run_without_poisoned_models_or_matched_checkpoints(tmp_path):
    plan = Study000(_claims_cfg())
    models = [_model(tmp_path, k, "clean", 1) for k in ("gn", "adam", "sgd")]
    ids = ["000-gn-sgd-fgsm-poisoned-0.05", "000-adam-poison-0.1",
           "000-gn-adam-fgsm-matchacc-0.1", "000-gn-adam-worst-clean-0.1"]
    ev = _evidence([_claim(plan, i) for i in ids], dict(labels={"gn": "GN"},
                                                                 models=models), {})
    assert {i: e["status"] for i, e in ev.items()} == dict.fromkeys(ids, "not_run")
    assert ev[ids[0]]["reason"] == "GN poisoned: not trained in this configuration"
    assert "matched training accuracy" in ev[ids[2]]["reason"]
    assert "robust evaluation does not cover gn seed 1" in ev[ids[3]]["reason"]
    # a claim at an ε the attack did not run
    e = _evidence([_claim(plan, "000-gn-sgd-fgsm-clean-0.05")],
                           dict(labels={}, models=models), {})["000-gn-sgd-fgsm-clean-0.05"]
    assert e["status"] == "not_run" and "ε = 0.05" in e["reason"]


def test_evidence_worst_case_and_matched_checkpoints(tmp_path):
    plan = Study000(_claims_cfg())
    gn = _model(tmp_path, "gn", "clean", 1, n=10, correct=10, success=0)
    sgd = _model(tmp_path, "sgd", "clean", 1, n=10, correct=10, success=0)
    info = tmp_path / "info.json"
    info.write_text(json.dumps(dict(step=40, train_loss=0.3, train_acc=0.898, reached=False,
                                    matched_on="accuracy", target=0.9)))
    sgd_acc = _model(tmp_path, "sgd", "clean", 1, correct=10, success=7, match="accuracy",
                     match_info=str(info))
    robust = {}
    for m, broken in ((gn, 2), (sgd, 6)):  # images 0..broken-1 broken by some strong attack
        f = tmp_path / f"{m['label']}_outcomes.csv"
        rows = [dict(attack=a, eps=0.1, index=i, label=0, correct=1, attacked=1,
                     success=int(i < broken and a == "pgd_margin"), margin=0.0)
                for a in ("pgd_ce", "pgd_margin", "apgd_ce", "apgd_t", "fab_t", "square")
                for i in range(10)]
        pd.DataFrame(rows).to_csv(f, index=False)
        robust[m["key"]] = dict(summary=str(tmp_path / "absent.json"),
                                outcomes=[str(f), m["fgsm_images"]])
    claims = [_claim(plan, "000-gn-sgd-worst-clean-0.1"),
              _claim(plan, "000-gn-sgd-fgsm-matchacc-0.1")]
    ev = _evidence(claims, dict(labels={}, models=[gn, sgd, sgd_acc]), robust)
    worst = ev["000-gn-sgd-worst-clean-0.1"]
    assert worst["images_num"].sum(axis=(0, 1)) == pytest.approx([2, 6])
    assert worst["images_den"].sum(axis=(0, 1)) == pytest.approx([10, 10])
    acc = ev["000-gn-sgd-fgsm-matchacc-0.1"]  # 0.2 points short: within the tolerance
    assert acc["status"] == "ok" and acc["images_num"].sum(axis=(0, 1)) == pytest.approx([0, 7])
    assert acc["flags"] == []
    # 1.5 points short of the target: beyond MATCH_TOLERANCE, the row is not evaluable
    info.write_text(json.dumps(dict(step=40, train_loss=0.3, train_acc=0.885, reached=False,
                                    matched_on="accuracy", target=0.9)))
    acc = _evidence(claims, dict(labels={}, models=[gn, sgd, sgd_acc]),
                             robust)["000-gn-sgd-fgsm-matchacc-0.1"]
    assert acc["status"] == "not_evaluable"
    assert acc["reason"] == ("sgd match-accuracy seed 1: never reached the reference's training "
                             "accuracy 90.00 %: its best checkpoint has 88.50 % (1.50 points "
                             "short, tolerance 0.5)")


def test_match_gap_of_a_loss_target_is_relative():
    assert rep.match_gap(dict(reached=True, matched_on="loss", target=1.0, train_loss=3.0)) == ""
    assert rep.match_gap(dict(reached=False, matched_on="loss", target=2.0,
                              train_loss=2.08)) == ""  # 4 % off
    assert "6.0 % off" in rep.match_gap(dict(reached=False, matched_on="loss", target=2.0,
                                             train_loss=2.12))


# ---- beyond MNIST: data sets, their attack, claims and presentation ----
def test_datasets_put_outputs_per_data_set_and_list_the_fashion_claims():
    cfg = _claims_cfg(datasets=["mnist", "fashion_mnist"],
                      attack_by_dataset={"fashion_mnist": "fgsm_f"})
    cfg["datasets"]["fashion_mnist"] = {}
    cfg["attacks"]["fgsm_f"] = {"kind": "fgsm", "eps": [0.2, 0.1]}
    plan = Study000(cfg)
    assert plan.check() == []
    assert {k.split("/")[0] for k in plan.outputs()} == {"mnist", "fashion_mnist"}
    recs = plan.params("fashion_mnist", "table1_fgsm_clean")
    assert {r["dataset"] for r in recs} == {"fashion_mnist"}
    assert all(r["file"].endswith("/fgsm_f.csv") for r in recs)
    assert {r["file"].split("/")[2] for r in plan.params("mnist", "table1_fgsm_clean")} == {"mnist"}
    # the robust evaluation's radius is each data set's largest FGSM radius
    assert {(r["dataset"], r["eps"]) for r in plan.robust_models()} == {
        ("mnist", 0.1), ("fashion_mnist", 0.2)}
    ids = [c["id"] for c in plan.claims()]
    fashion = [i for i in ids if i.startswith("000-fashion_mnist-")]
    assert fashion == [f"000-fashion_mnist-{a}-{k}-clean-0.2" for a in
                       ("gn-adam", "kfac-adam", "kfac-gn") for k in ("fgsm", "worst")]
    c = _claim(plan, "000-fashion_mnist-gn-adam-fgsm-clean-0.2")
    assert {a["dataset"] for a in c["args"]["arms"]} == {"fashion_mnist"}
    assert "Fashion-MNIST" in c["text"] and "MNIST's hyper-parameters" in c["comparison"]
    assert any(d.startswith("Fashion-MNIST (not in the study") and "nothing tuned" in d
               for d in plan.deviations())
    # MNIST only: the Fashion-MNIST claims are still listed (they read "not run")
    only = Study000(_claims_cfg())
    assert "000-fashion_mnist-gn-adam-fgsm-clean-0.1" in [c["id"] for c in only.claims()]
    ev = _evidence([_claim(only, "000-fashion_mnist-gn-adam-fgsm-clean-0.1")],
                            only.claim_records(), {})
    assert ev["000-fashion_mnist-gn-adam-fgsm-clean-0.1"]["status"] == "not_run"


def test_unknown_data_set_or_attack_is_named():
    bad = Study000(_claims_cfg(datasets=["mnist", "svhn"], attack_by_dataset={"mnist": "nope",
                                                                            "kmnist": "fgsm"}))
    assert bad.check() == [
        "studies.study000.datasets[1]: 'svhn' is not in `datasets`",
        "studies.study000.attack_by_dataset.mnist: 'nope' is not in `attacks`",
        "studies.study000.attack_by_dataset.kmnist: 'kmnist' is not in studies.study000.datasets"]


def test_tables_off_mnist_drop_the_study_numbers(tmp_path):
    p = Study000({"studies": {"study000": STUDY}}).presentation("fashion_mnist",
                                                                "table1_fgsm_clean")
    assert p["paper"] is False
    num, readable, cap = rep.make_table("table1_fgsm_clean", attack_records(tmp_path), p,
                                        study=STUDY, recipes=RECIPES)
    assert not [c for c in num.columns if "paper" in c]
    assert not [c for c in readable.columns if "paper" in c]
    assert cap.startswith("Table 1: FGSM on models trained on clean Fashion-MNIST")
    assert "the study ran MNIST only" in cap
