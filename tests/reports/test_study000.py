"""Study 000's tables (curvrobust.reports.study000) and figures (study000_figures) from small
synthetic per-model files (no Snakemake)."""

import json
import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from curvrobust import tables
from curvrobust.plans import Study000
from curvrobust.reference import load_reference
from curvrobust.reports import study000 as rep
from curvrobust.reports import study000_figures as figs

STUDY = dict(enabled=True, recipes={"gn": "r_gn", "adam": "r_adam"},
             match={"reference": "gn", "labels": ["adam"]})
RECIPES = {"r_gn": dict(optimizer={"name": "gn"}, epochs=2),
           "r_adam": dict(optimizer={"name": "adam", "lr": 0.001}, epochs=3)}
MODELS = [("adam", 42), ("adam", 43), ("gn", 42)]


def presentation(name):
    return Study000({"studies": {"study000": STUDY}}).presentation(name)


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
    assert "for Adam the checkpoint whose whole-training-set loss is closest to " \
           "Gauss-Newton's final one, Gauss-Newton at its final model." in cap


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
    assert fig._suptitle.get_text() == "Fig. 3: logit margin on the test set"
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
