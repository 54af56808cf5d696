"""The forecast (`make evidence-plan`): the list schedule against hand-worked DAGs, the cost
model's order (own benchmark, same rule, reference, start-up), training cost scaled by images x
epochs and by forward FLOPs, and the whole default preset priced from a default run's reference
benchmarks (nothing runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curvrobust.workflow import forecast
from curvrobust.workflow.forecast import CostTable, Job

REPO = Path(__file__).resolve().parents[1]


def _job(jid, seconds, deps=(), threads=1, rule="r"):
    return Job(jobid=jid, rule=rule, output=f"o{jid}", benchmark=None, threads=threads, key="",
               coarse="", units=1.0, signature="", deps=list(deps), seconds=seconds)


def test_schedule_matches_hand_worked_examples():
    # two independent 10-s jobs on one core run back to back, on two side by side
    jobs = [_job(1, 10), _job(2, 10)]
    assert forecast.schedule(jobs, 1) == pytest.approx(20)
    assert forecast.schedule(jobs, 2) == pytest.approx(10)
    # a chain waits for its parent whatever the cores
    chain = [_job(1, 5), _job(2, 7, deps=[1]), _job(3, 1, deps=[2])]
    assert forecast.schedule(chain, 4) == pytest.approx(13)
    # longest first: 8 | 4+4 on two cores ends at 8, not 12
    assert forecast.schedule([_job(1, 4), _job(2, 4), _job(3, 8)], 2) == pytest.approx(8)
    # a 2-thread job holds both cores
    assert forecast.schedule([_job(1, 6, threads=2), _job(2, 6)], 2) == pytest.approx(12)


def test_price_takes_the_own_benchmark_then_the_rule_then_the_reference(tmp_path):
    bench = tmp_path / "r" / "a.tsv"
    bench.parent.mkdir()
    bench.write_text("s\th:m:s\n12.5\t0:00:12\n")
    own = Job(1, "attack_model", "o", str(bench), 1, "mnist|clean|x|fgsm|", "mnist|fgsm|", 1, "")
    same = Job(2, "attack_model", "o", str(tmp_path / "missing.tsv"), 1, "mnist|clean|y|fgsm|",
               "mnist|fgsm|", 1, "")
    ref_only = Job(3, "evaluate_robustness", "o", str(tmp_path / "m2.tsv"), 1, "k", "k", 1, "")
    table_job = Job(4, "make_table_study000", "o", None, 1, "", "", 1, "")
    measured, reference = CostTable(), CostTable()
    measured.add("attack_model", "mnist|clean|z|fgsm|", 3.0, coarse="mnist|fgsm|")
    measured.add("attack_model", "mnist|clean|w|fgsm|", 5.0, coarse="mnist|fgsm|")
    reference.add("evaluate_robustness", "other", 40.0, coarse="other")
    forecast.price([own, same, ref_only, table_job], measured, reference)
    assert (own.seconds, own.basis) == (12.5, "measured")
    assert (same.seconds, same.basis) == (4.0, "same rule")   # median of 3 and 5
    assert (ref_only.seconds, ref_only.basis) == (40.0, "reference")
    assert (table_job.seconds, table_job.basis) == (forecast.START_UP_S, "start-up")


def test_training_cost_scales_with_images_epochs_and_flops():
    small = {"arch": "mnist002", "arch_kwargs": {"widths": [16, 32], "hidden": 128},
             "optimizer": {"name": "adam"}, "epochs": 3,
             "regime": {"penalty": {"kind": "margin_grad"}}}
    table = CostTable()
    table.add("train_model", "", 30.0, units=forecast.train_units(small, {"subset": {"train":
              10000}}, "mnist"), signature=forecast.train_signature(small))
    assert forecast.train_seconds(small, {"subset": {"train": 10000}}, "mnist", table) == \
        pytest.approx(30.0)
    # six times the images and twice the epochs: twelve times the seconds
    longer = dict(small, epochs=6)
    assert forecast.train_seconds(longer, {}, "mnist", table) == pytest.approx(360.0)
    # a wider net of the same architecture: scaled by its forward FLOPs
    wide = dict(small, arch_kwargs={"widths": [32, 64], "hidden": 1024})
    ratio = (forecast.forward_flops("mnist002", wide["arch_kwargs"], "mnist")
             / forecast.forward_flops("mnist002", small["arch_kwargs"], "mnist"))
    assert ratio > 3
    assert forecast.train_seconds(wide, {"subset": {"train": 10000}}, "mnist", table) == \
        pytest.approx(30.0 * ratio)
    # another optimizer was never benchmarked: no guess
    other = dict(small, optimizer={"name": "sgd"})
    assert forecast.train_seconds(other, {}, "mnist", table) is None


def test_reference_costs_round_trip(tmp_path):
    table = CostTable()
    table.add("train_model", "k", 10.0, units=100.0, signature="sig")
    table.add("attack_model", "mnist|clean|a|fgsm|", 4.0, coarse="mnist|fgsm|")
    table.add("attack_model", "mnist|clean|a|fgsm|", 6.0, coarse="mnist|fgsm|")
    path = tmp_path / "ref.csv"
    forecast.write_reference(table, path)
    back = forecast.load_reference(path)
    assert back.per_unit["sig"][0] == pytest.approx(0.1)
    assert back.per_key[("attack_model", "mnist|clean|a|fgsm|")] == [5.0, 5.0]
    assert back.per_coarse[("attack_model", "mnist|fgsm|")] == [5.0, 5.0]


def test_default_preset_forecast_from_the_reference_benchmarks():
    """Every job of the default preset is priced by the committed reference (the default run's
    own benchmarks) or the start-up constant, and the total lands near that run's measured job
    time (5,081 s of work plus 485 s of start-up, docs/claims.md "Budget")."""
    jobs = forecast.dag_jobs(["config.yaml"], REPO, forceall=True)
    for j in jobs:
        j.benchmark = None if j.benchmark is None else "/nonexistent/" + Path(j.benchmark).name
    forecast.price(jobs, CostTable(), forecast.load_reference())
    bases = {j.basis for j in jobs}
    assert bases <= {"reference", "start-up"}, bases
    total = sum(j.seconds for j in jobs)
    assert 4500 < total < 6500
    s = forecast.summary(jobs, 2)
    assert s["jobs"] == len(jobs) and total / 120 <= s["wall_minutes"] * 1.001
