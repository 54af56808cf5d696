"""The robust evaluation's plan: which models it covers, at which ε, which study attacks enter
each model's worst case, the transfer sources and the extended preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from curvrobust import plans
from curvrobust.plans import ConfigError
from curvrobust.plans.robustness import _ATTACK_FILE, images_file, model_key
from dag_records import load_preset

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"


def _cfg(path="config.yaml"):
    cfg = yaml.safe_load((REPO / path).read_text())
    return plans.check_config(cfg)


def test_scope_is_every_reported_final_classifier_and_the_matched_checkpoints():
    cfg = _cfg()
    R = plans.robust_plan(cfg)
    studies = plans.plan(cfg)
    expected = set()
    s0 = studies["study000"]
    for r in s0.models(s0.variants()):
        expected.add(model_key(r))
    for on in s0.match_on():
        for r in s0.matched_models(on):
            expected.add(model_key(r))
    for name in ("study001", "study002"):
        expected |= {model_key(r) for r in studies[name].models()}
    got = [model_key(r) for r in R.models()]
    assert len(got) == len(set(got)), "a model is evaluated twice"
    assert set(got) == expected
    assert all(r["ckpt"] == "final" or r["study"] == "study000" for r in R.models())


def test_headline_eps_per_study():
    cfg = _cfg()
    R = plans.robust_plan(cfg)
    by_study = {}
    for r in R.models():
        by_study.setdefault(r["study"], set()).add(r["eps"])
    assert by_study["study000"] == {max(cfg["attacks"][cfg["studies"]["study000"]["attack"]]["eps"])}
    assert by_study["study001"] == {b["eps"] for b in cfg["studies"]["study001"]["datasets"].values()}
    fgsm = cfg["attacks"][cfg["studies"]["study002"]["datasets"]["mnist"]["attacks"]["fgsm"]]["eps"]
    assert by_study["study002"] == {sorted(fgsm)[len(fgsm) // 2]}


def test_worst_case_reads_every_attack_file_a_study_reads_on_the_model():
    """Against the recorded DAG: each attack_model job's per-image file enters the worst case of
    the model it attacked, if that model is in scope."""
    cfg = _cfg()
    R = plans.robust_plan(cfg)
    scope = {model_key(r): set(r["attacks"]) for r in R.models()}
    records = json.loads((GOLDEN / "default.json").read_text())
    seen = 0
    for job in records.values():
        if job.get("rule") != "attack_model":
            continue
        csv = job["output"][0]
        key = model_key(_ATTACK_FILE.match(csv).groupdict())
        assert images_file(csv) in job["output"]
        if key in scope:
            assert images_file(csv) in scope[key]
            seen += 1
    assert seen > 0
    # study 001's checkpoint evaluation (PGD and AutoAttack) of the final epoch too
    s1 = [r for r in R.models() if r["study"] == "study001"]
    assert all(any("/eval/" in f and f.endswith("_images.csv") for f in r["attacks"]) for r in s1)


def test_transfer_source_only_when_a_study_in_scope_trains_it():
    cfg = _cfg()
    R = plans.robust_plan(cfg)
    assert R.transfer_source("mnist") == dict(dataset="mnist", ckpt="final",
                                              **cfg["robustness"]["transfer"]["mnist"])
    assert R.transfer_source("fashion_mnist") is None   # not trained by the default run
    assert R.transfer_inputs(R.models()[0]) == [R.transfer_file("mnist")]
    ext = plans.robust_plan(load_preset("config.yaml", "configs/extended.yaml"))
    assert ext.transfer_source("fashion_mnist") is not None


def test_transfer_source_not_trained_in_the_run_means_no_transfer():
    """A source model no study in scope trains (a typo, or a preset without it) plans no
    transfer job: the transfer check is reported "not run" in results/masking.md."""
    cfg = _cfg()
    cfg["robustness"]["transfer"]["mnist"]["recipe"] = "no_such_recipe"
    R = plans.robust_plan(cfg)
    assert R.transfer_source("mnist") is None and R.transfer_datasets() == []
    assert all(R.transfer_inputs(r) == [] for r in R.models())


def test_robustness_defaults_filled_and_bad_values_named():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    del cfg["robustness"]
    plans.check_config(cfg)
    assert cfg["robustness"]["suite"]["pgd_steps"] == 50
    assert cfg["robustness"]["limits"]["large_eps"] == 2
    assert cfg["robustness"]["suite"]["square_queries"] == 5000
    assert cfg["robustness"]["validity"]["max_class_share"] == 0.5
    bad = yaml.safe_load((REPO / "config.yaml").read_text())
    bad["robustness"]["suite"]["restarts"] = 1
    bad["robustness"]["limits"]["zero_grad"] = 0.01
    with pytest.raises(ConfigError) as e:
        plans.check_config(bad)
    assert "robustness.suite.restarts" in str(e.value)
    assert "robustness.limits.zero_grad" in str(e.value)


def test_the_former_threshold_keys_get_an_error_naming_them():
    old = yaml.safe_load((REPO / "config.yaml").read_text())
    old["robustness"]["thresholds"] = {"margin_only": 0.01, "large_eps": 0.15}
    with pytest.raises(ConfigError) as e:
        plans.check_config(old)
    text = str(e.value)
    assert "robustness.thresholds: retired" in text and "robustness.limits" in text
    assert "images" in text


def test_every_library_default_of_the_suite_and_checks_is_the_schemas():
    from curvrobust.evaluation.masking import LIMIT_DEFAULTS, SUITE_DEFAULTS

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    del cfg["robustness"]
    plans.check_config(cfg)
    assert cfg["robustness"]["limits"] == LIMIT_DEFAULTS
    assert {k: v for k, v in cfg["robustness"]["suite"].items() if k != "enabled"} == \
        SUITE_DEFAULTS


def test_masking_report_is_a_default_target():
    cfg = _cfg()
    assert "results/masking.md" in plans.all_targets(cfg)
    off = _cfg()
    off["robustness"]["suite"]["enabled"] = False
    assert "results/masking.md" not in plans.all_targets(off)


def test_extended_adds_only_what_smoke_covers_rule_for_rule():
    """configs/extended.yaml is the default plus side experiments: every output it adds is made
    by rules the smoke run exercises, and the default's targets stay in it."""
    default = plans.all_targets(_cfg())
    extended = plans.all_targets(load_preset("config.yaml", "configs/extended.yaml"))
    assert set(default) < set(extended)
    smoke = json.loads((GOLDEN / "smoke.json").read_text())
    smoke_rules = {j["rule"] for j in smoke.values() if isinstance(j, dict) and "rule" in j}
    ext = json.loads((GOLDEN / "extended.json").read_text())
    ext_rules = {j["rule"] for j in ext.values() if isinstance(j, dict) and "rule" in j}
    assert ext_rules <= smoke_rules
    assert ext["<all>"]["input"] == extended


def test_study_cascade_only_where_study001s_autoattack_is_at_least_the_suites():
    """Study 001's models reuse its standard AutoAttack survivors (`study_cascade`) while its
    counts are at least the suite's; every other model, and study 001 once a count falls
    short or a stage is left out, runs the suite's own AutoAttack stages."""
    cfg = _cfg()
    R = plans.robust_plan(cfg)
    assert {r["study"] for r in R.models() if r["study_cascade"]} == {"study001"}
    assert all(r["study_cascade"] for r in R.models() if r["study"] == "study001")
    weaker = _cfg()
    weaker["studies"]["study001"]["autoattack"]["fab_steps"] = \
        cfg["robustness"]["suite"]["fab_steps"] - 1
    assert not any(r["study_cascade"] for r in plans.robust_plan(weaker).models())
    fewer = _cfg()
    fewer["studies"]["study001"]["autoattack"]["attacks"] = ["apgd-ce", "apgd-t"]
    assert not any(r["study_cascade"] for r in plans.robust_plan(fewer).models())
