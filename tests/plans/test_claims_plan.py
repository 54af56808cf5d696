"""The claims' plan in every preset: every claim is well-formed data, ids are unique, every
study has one headline claim whose models get at least 3 seeds in the default run, and the
judging jobs read the robust evaluation of the study's models."""

from __future__ import annotations


import pytest
from dag_records import load_preset

from curvrobust import plans
from curvrobust.claims import validate_claims
from curvrobust.plans import paths

PRESETS = {
    "default": ["config.yaml"],
    "smoke": ["configs/smoke.yaml"],
    "paper": ["configs/paper.yaml"],
    "extended": ["config.yaml", "configs/extended.yaml"],
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
