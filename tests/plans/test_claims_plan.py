"""The claims' plan in every preset: every claim is well-formed data, ids are unique, every
study has one headline claim whose models get at least 3 seeds in the default run, and the
judging jobs read the robust evaluation of the study's models."""

from __future__ import annotations


import pytest
from dag_records import load_preset

from curvrobust import plans
from curvrobust.claims.spec import validate_claims
from curvrobust.plans import paths
from curvrobust.plans.base import make_claim

PRESETS = {
    "default": ["config.yaml"],
    "smoke": ["configs/smoke.yaml"],
    "paper": ["configs/paper.yaml"],
    "extended": ["config.yaml", "configs/extended.yaml"],
    "evidence": ["config.yaml", "configs/evidence.yaml"],
}


def _claims_plan(preset):
    cfg = load_preset(*PRESETS[preset])
    studies = plans.plan(cfg)
    return cfg, studies, plans.claims_plan(cfg, studies)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_claims_are_well_formed_and_unique(preset):
    _, studies, C = _claims_plan(preset)
    every = []
    for name in C.judged():
        claims = studies[name].claims()
        assert sum(c["headline"] for c in claims) >= 1, name
        assert {c["study"] for c in claims} == {name}
        assert all(isinstance(d, str) and d for d in studies[name].deviations()), name
        every += claims
    validate_claims(every)   # keys, types, direction, margins, unique ids: the engine's check


def test_default_run_judges_every_study_and_targets_the_claims():
    cfg, studies, C = _claims_plan("default")
    assert C.judged() == ["study000", "study001", "study002", "study003"]
    targets = plans.all_targets(cfg)
    assert f"{paths.RESULTS}/claims.md" in targets and f"{paths.RESULTS}/claims.csv" in targets
    for s in C.judged():
        assert C.study_files(s)["md"] in targets


def test_judging_reads_the_robust_evaluation_of_the_studys_models():
    cfg, studies, C = _claims_plan("default")
    R = plans.robust_plan(cfg, studies)
    for s in ("study000", "study001", "study002"):
        robust = C.robust_map(s)
        assert robust, s
        inputs = set(C.inputs(s))
        for key, v in robust.items():
            assert v["summary"] in inputs and set(v["outcomes"]) <= inputs, key
        assert {k for k in robust} == {plans.robustness.model_key(r) for r in R.models()
                                       if r["study"] == s}
    assert C.robust_map("study003") == {}


def test_headline_models_have_three_seeds_in_the_default_run():
    """The seeds of the records every headline claim reads (claim_records' models)."""
    _, studies, C = _claims_plan("default")
    for s in C.judged():
        seeds = studies[s].headline_seeds()
        assert seeds and all(len(v) >= 3 for v in seeds.values()), (s, seeds)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_claim_declares_its_sesoi_and_its_source(preset):
    """The SESOI is > 0 in the claim's unit, the margin for no-difference and at-least claims,
    and cites the study's words (or, for a claim of ours, why it takes that size)."""
    _, studies, C = _claims_plan(preset)
    for name in C.judged():
        for c in studies[name].claims():
            assert isinstance(c["sesoi"], float) and c["sesoi"] > 0, c["id"]
            assert isinstance(c["sesoi_source"], str) and c["sesoi_source"].strip(), c["id"]
            if c["direction"] in ("equivalent", "at_least"):
                assert c["sesoi"] == c["margin"], c["id"]
            if c["unit"] == "%":
                assert c["sesoi"] < 1, c["id"]   # a fraction: 0.05 is 5 points


def test_study_sesoi_values():
    """The sizes docs/claims.md lists, read off the study texts."""
    _, studies, _ = _claims_plan("default")
    by_id = {c["id"]: c for s in studies.values() for c in s.claims()}
    assert by_id["000-gn-adam-fgsm-clean-0.1"]["sesoi"] == 0.05
    assert by_id["000-gn-sgd-fgsm-clean-0.01"]["sesoi"] == 0.005
    assert by_id["000-gn-poison-unchanged-0.1"]["sesoi"] == 0.03
    assert by_id["000-gn-adam-sam"]["sesoi"] == pytest.approx(0.5 * 0.01)
    assert by_id["001-mnist-haat-pgdat-autoattack"]["sesoi"] == 0.01
    assert by_id["002-mnist-ours-natural-clean"]["sesoi"] == 0.02
    assert by_id["003-mnist-at-logslope-none"]["sesoi"] == pytest.approx(0.1 / 30)


def test_make_claim_sesoi_rules():
    args = ("study000", "x-1", "text", "§1", "metric", "A − B")
    kw = dict(measure="fgsm_rate", args={})
    c = make_claim(*args, "equivalent", margin=0.03, sesoi_source="the margin", **kw)
    assert c["sesoi"] == 0.03 and c["sesoi_source"] == "the margin"
    assert make_claim(*args, "at_least", margin=0.02, sesoi=0.02, sesoi_source="s",
                      **kw)["sesoi"] == 0.02
    with pytest.raises(ValueError, match="x-1.*differs from margin"):
        make_claim(*args, "equivalent", margin=0.03, sesoi=0.05, sesoi_source="s", **kw)
    for direction in ("less", "greater", "decreasing", "increasing"):
        with pytest.raises(ValueError, match=f"x-1.*{direction}.*explicit sesoi"):
            make_claim(*args, direction, sesoi_source="s", **kw)
        with pytest.raises(ValueError, match="x-1.*> 0"):
            make_claim(*args, direction, sesoi=0.0, sesoi_source="s", **kw)
    assert make_claim(*args, "less", sesoi=0.05, sesoi_source="s", **kw)["sesoi"] == 0.05
    with pytest.raises(ValueError, match="x-1.*sesoi_source"):
        make_claim(*args, "less", sesoi=0.05, **kw)
