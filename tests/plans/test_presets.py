"""The presets side by side (docs/claims.md, "Presets"): the evidence preset's results live
beside the default's without changing them (so after an evidence run `make run` has nothing to
do), its report goes under its own folder, and it runs study 000's headline at the study's
scale with the seeds the issue asks for; the report folder and the published page are
validated by key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from dag_records import GOLDEN, load_preset

from curvrobust import plans
from curvrobust.plans import ConfigError, paths
from curvrobust.plans.publish import PublishPlan, fingerprint

PER_MODEL = ("results/data/", "results/models/", "results/attacks/", "results/stats/",
             "results/surfaces/", "results/robust/")


def _records(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def test_evidence_changes_no_output_the_default_run_makes():
    """Every output both presets make comes from the same job (rule, inputs, library code,
    params): an evidence run leaves the default's results valid and vice versa."""
    default, evidence = _records("default"), _records("evidence")
    made = {o: k for k, rec in default.items() if k != "<all>" for o in rec["output"]}
    shared = 0
    for key, rec in evidence.items():
        if key == "<all>":
            continue
        for out in rec["output"]:
            if out in made:
                shared += 1
                d = default[made[out]]
                for field in ("rule", "output", "input", "code", "params"):
                    assert rec[field] == d[field], f"{out}: {field} differs between presets"
    assert shared > 50   # the shared models (Adam, SGD, study 002's) are really shared


def test_evidence_report_lives_under_its_own_folder():
    evidence = _records("evidence")
    for key, rec in evidence.items():
        for out in rec.get("output", []):
            assert (out.startswith("results/evidence/") or out.startswith(PER_MODEL)
                    or out.startswith("docs/evidence")), out
    targets = evidence["<all>"]["input"]
    assert "results/evidence/claims.md" in targets
    assert "docs/evidence.md" in targets
    assert not any(t.startswith("results/study00") for t in targets)


def test_evidence_runs_study000_at_the_studys_scale_with_six_seeds():
    cfg = load_preset("config.yaml", "configs/evidence.yaml")
    s0 = plans.plan(cfg)["study000"]
    for label in ("gn", "adam", "sgd", "kfac"):
        recipe = cfg["recipes"][s0.block["recipes"][label]]
        assert recipe["epochs"] == 15
    seeds = s0.headline_seeds()
    assert set(seeds) == {"gn", "adam"} and all(len(v) >= 6 for v in seeds.values())
    assert s0.block["recipes"]["gn"] != "cnn_gn"   # its own name: the default's cnn_gn has 3


def test_report_root_moves_every_report_file():
    cfg = load_preset("config.yaml")
    moved = copy.deepcopy(cfg)
    moved["report_dir"] = "results/other"
    before, after = plans.all_targets(cfg), plans.all_targets(moved)
    assert len(before) == len(after)
    assert all(t.startswith("results/other/") for t in after)
    assert [t.replace("results/", "results/other/", 1) for t in before] == after
    assert paths.report_root(cfg) == paths.RESULTS


@pytest.mark.parametrize("bad", ["elsewhere", "results/models", "results/logs/x", "results/",
                                 "results/study000", "/tmp/results"])
def test_report_dir_outside_results_or_on_a_shared_folder_is_refused(bad):
    cfg = load_preset("config.yaml")
    cfg["report_dir"] = bad
    with pytest.raises(ConfigError, match="report_dir"):
        plans.check_config(cfg)


def test_not_run_items_name_known_recipes_variants_and_datasets():
    cfg = load_preset("config.yaml", "configs/evidence.yaml")
    cfg["publish"]["not_run"][0]["recipe"] = "no_such_recipe"
    cfg["publish"]["not_run"][0]["variant"] = "no_such_variant"
    with pytest.raises(ConfigError) as e:
        plans.check_config(cfg)
    assert "publish.not_run[0].recipe: 'no_such_recipe' is not in `recipes`" in str(e.value)
    assert "publish.not_run[0].variant" in str(e.value)


def test_publish_plan_writes_one_evidence_pair_per_judged_study():
    cfg = load_preset("config.yaml", "configs/evidence.yaml")
    P = PublishPlan(cfg, plans.claims_plan(cfg))
    files = P.files()
    assert P.enabled and files["page"] == "docs/evidence.md"
    assert set(files["studies"]) == {"study000", "study001", "study002", "study003"}
    assert all(Path(f).parent == Path("docs/evidence") for f in P.outputs()[1:])
    assert not PublishPlan(load_preset("config.yaml"), plans.claims_plan(
        load_preset("config.yaml"))).enabled


def test_fingerprint_changes_with_any_value_and_not_with_key_order():
    cfg = load_preset("config.yaml", "configs/evidence.yaml")
    same = json.loads(json.dumps(cfg))
    same = dict(reversed(list(same.items())))
    assert fingerprint(same) == fingerprint(cfg)
    other = copy.deepcopy(cfg)
    other["studies"]["study000"]["headline"]["seeds"].append(48)
    assert fingerprint(other) != fingerprint(cfg)


def test_study002_sweep_rows_follow_their_coefficients():
    cfg = load_preset("config.yaml", "configs/evidence.yaml")
    s2 = plans.plan(cfg)["study002"]
    regimes = s2.block["datasets"]["mnist"]["regimes"]
    order = s2.regime_order(regimes)
    assert order[:3] == ["natural", "crossentropy", "ours"]
    assert order[3:] == ["ours_c1", "ours_c10", "ours_c100", "ours_c500"]
    names = s2.display_labels({"natural": "Natural", "crossentropy": "CE", "ours": "Ours (m)"},
                              set(order))
    assert names["ours_c500"] == "Ours, c = 500" and list(names) == order
    bad = copy.deepcopy(cfg)
    bad["studies"]["study002"]["datasets"]["mnist"]["regimes"]["ours_c1"] = "m2_natural"
    with pytest.raises(ConfigError, match="ours_c1: a sweep regime's recipe"):
        plans.check_config(bad)
