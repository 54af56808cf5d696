"""The robust evaluation in the study tables (worst case beside the study's rate, the validity
gate's †) and the masking report, on hand-made summaries with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from curvrobust.reports import tables
from curvrobust.reports.robustness import (DAGGER, annotate, degenerate_labels, masking_table,
                                          model_key)


def _rec(label, seed, ckpt="final"):
    return dict(study="study000", label=label, dataset="mnist", variant="clean",
                recipe=f"cnn_{label}", seed=seed, ckpt=ckpt)


def _summary(rec, robust, natural=0.98, degenerate=False, failed=(), complete=True, n=500):
    kinds = {"fgsm_only": "masking", "margin_only": "convergence", "square_only": "masking"}
    checks = [dict(check=c, kind=k, value=7 if c in failed else 0, limit=2,
                   passed=c not in failed, detail="") for c, k in kinds.items()]
    return dict(record=rec, eps=0.1, n_examples=n,
                validity=dict(natural_accuracy=0.134 if degenerate else natural,
                              max_class_share=0.95 if degenerate else 0.11, majority_class=1,
                              degenerate=degenerate,
                              reason="predicts class 1 for 95.0 % of images" if degenerate else ""),
                checks=checks, failed_checks=[f"{c} ({kinds[c]})" for c in failed],
                worst_case=[dict(eps=0.1, n=n, natural_accuracy=natural, robust_accuracy=robust,
                                 attacks="pgd_ce;pgd_margin;square", complete=complete),
                            dict(eps=0.05, n=n, natural_accuracy=natural, robust_accuracy=0.9,
                                 attacks="fgsm_paper", complete=False)])


def _frames(labels):
    numeric = pd.DataFrame({"optimizer": labels, "x": range(len(labels))})
    readable = pd.DataFrame({"Optimizer": [l.upper() for l in labels], "X": range(len(labels))})
    return numeric, readable


def test_worst_case_mean_and_interval_over_seeds_and_rate_among_correct():
    recs = [_rec("adam", 1), _rec("adam", 2), _rec("gn", 1)]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5, natural=0.98),
                 model_key(recs[1]): _summary(recs[1], 0.7, natural=0.98),
                 model_key(recs[2]): _summary(recs[2], 0.2, natural=0.8)}
    numeric, readable, note = annotate(*_frames(["adam", "gn"]), recs, summaries)
    # seeds' spread plus the shared images' binomial error, t with 1 df (scipy directly)
    from scipy import stats
    h = 100 * stats.t.ppf(0.975, 1) * math.sqrt(0.02 / 2 + 0.6 * 0.4 / 500)
    assert numeric.loc[0, "worst_case_acc_mean"] == pytest.approx(60.0)
    assert numeric.loc[0, "worst_case_acc_ci95"] == pytest.approx(h)
    assert numeric.loc[0, "worst_case_seeds"] == 2
    # gn: 80 % correct, 20 % survive: 75 % of the correctly classified images are broken
    assert numeric.loc[1, "worst_case_rate_mean"] == pytest.approx(75.0)
    assert numeric.loc[1, "worst_case_n"] == 500
    _, other, _ = annotate(*_frames(["adam", "sgd"]), recs, summaries)
    assert other.loc[1, "Checks"] == "–"  # no model of this row was evaluated
    assert "Worst-case robust acc. (ε=0.1)" in readable.columns
    assert readable.loc[1, "Worst-case robust acc. (ε=0.1)"].startswith("20.0")
    assert "first 500 test images" in note and DAGGER not in note


def test_incomplete_worst_case_is_not_shown():
    recs = [_rec("adam", 1)]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5, complete=False)}
    numeric, readable, _ = annotate(*_frames(["adam"]), recs, summaries)
    assert math.isnan(numeric.loc[0, "worst_case_acc_mean"])
    assert readable.iloc[0]["Worst-case robust acc. (headline ε)"] == "–"


def test_degenerate_final_model_is_marked_and_explained_but_a_checkpoint_is_not():
    recs = [_rec("adam", 1), _rec("sgd", 1, ckpt="match-cnn_gn")]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.0, degenerate=True),
                 model_key(recs[1]): _summary(recs[1], 0.3, degenerate=True)}
    numeric, readable, note = annotate(*_frames(["adam", "sgd"]), recs, summaries,
                                       names={"adam": "Adam"})
    assert readable.loc[0, "Optimizer"] == f"ADAM {DAGGER}"
    assert readable.loc[1, "Optimizer"] == "SGD"
    assert list(numeric["degenerate_models"]) == [1, 0]
    assert "Adam seed 1: predicts class 1 for 95.0 % of images" in note
    # a loss-matched checkpoint shows its accuracy instead
    assert readable.loc[1, "Natural acc. (whole test set)"].startswith("13.4")


def test_failed_checks_listed_per_row():
    recs = [_rec("adam", 1), _rec("adam", 2)]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5, failed=["square_only"]),
                 model_key(recs[1]): _summary(recs[1], 0.5, failed=["margin_only"])}
    numeric, readable, _ = annotate(*_frames(["adam"]), recs, summaries)
    assert numeric.loc[0, "masking_checks_failed"] == \
        "margin_only (convergence);square_only (masking)"
    assert readable.loc[0, "Checks"] == \
        "FAILED: margin_only (convergence), square_only (masking)"


def test_degenerate_seed_is_left_out_of_the_worst_case_mean():
    recs = [_rec("adam", 1), _rec("adam", 2), _rec("adam", 3)]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5),
                 model_key(recs[1]): _summary(recs[1], 0.7),
                 model_key(recs[2]): _summary(recs[2], 0.0, degenerate=True)}
    numeric, readable, note = annotate(*_frames(["adam"]), recs, summaries)
    assert numeric.loc[0, "worst_case_acc_mean"] == pytest.approx(60.0)
    assert numeric.loc[0, "worst_case_seeds"] == 2
    assert readable.loc[0, "Worst-case robust acc. (ε=0.1)"].endswith("(2 seeds)")
    assert readable.loc[0, "Optimizer"] == f"ADAM {DAGGER}" and "left out" in note


def test_validity_only_tables_get_no_worst_case_columns():
    recs = [_rec("adam", 1)]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5)}
    numeric, readable, note = annotate(*_frames(["adam"]), recs, summaries, worst=False)
    assert not [c for c in numeric.columns if c.startswith("worst_case")]
    assert note == ""


def test_masking_table_row_per_model_and_check_columns():
    recs = [_rec("adam", 1), _rec("gn", 1)]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5),
                 model_key(recs[1]): _summary(recs[1], 0.2, failed=["square_only", "margin_only"],
                                              degenerate=True)}
    numeric, readable, caption = masking_table(recs, summaries, {"square_only": 2})
    assert len(numeric) == 2 and len(readable) == 2
    assert list(numeric["masking_flags"]) == ["", "square_only"]
    assert list(numeric["convergence_flags"]) == ["", "margin_only"]
    assert bool(numeric.loc[1, "square_only_passed"]) is False
    assert numeric.loc[1, "square_only"] == 7
    assert readable.loc[1, "Square-only breaks"] == "7 ✗"
    assert readable.loc[0, "Masking"] == "none" and readable.loc[0, "Convergence"] == "converged"
    assert readable.loc[1, "Masking"] == "FLAGGED: square_only"
    assert readable.loc[1, "Convergence"] == "NOT CONVERGED: margin_only"
    assert readable.loc[1, "Natural acc."].endswith(DAGGER)
    assert "Square-only breaks 2" in caption


def test_degenerate_labels_for_tables_with_a_column_per_label():
    recs = [_rec("adam", 1), _rec("gn", 1), _rec("sgd", 1, ckpt="match-cnn_gn")]
    summaries = {model_key(recs[0]): _summary(recs[0], 0.5),
                 model_key(recs[1]): _summary(recs[1], 0.0, degenerate=True),
                 model_key(recs[2]): _summary(recs[2], 0.0, degenerate=True)}
    bad, note = degenerate_labels(recs, summaries, {"gn": "Gauss-Newton"})
    assert bad == {"gn"}
    assert note.startswith(f" {DAGGER} degenerate") and "Gauss-Newton seed 1" in note
