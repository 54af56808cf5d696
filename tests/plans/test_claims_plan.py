"""The claims' plan in every preset: every claim is well-formed data, ids are unique, every
study has one headline claim whose models get at least 3 seeds in the default run, and the
judging jobs read the robust evaluation of the study's models."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from curvrobust import plans
from curvrobust.plans import paths

REPO = Path(__file__).resolve().parents[2]
PRESETS = {
    "default": ["config.yaml"],
    "smoke": ["configs/smoke.yaml"],
    "paper": ["configs/paper.yaml"],
    "extended": ["config.yaml", "configs/extended.yaml"],
}
DIRECTIONS = {"less", "greater", "at_least", "equivalent", "decreasing", "increasing"}
FIELDS = {"id", "study", "text", "where", "metric", "comparison", "direction", "margin", "unit",
          "headline", "ours", "worst_case", "study_value", "measure", "args"}


def _merge(a: dict, b: dict) -> dict:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _merge(a[k], v)
        else:
            a[k] = copy.deepcopy(v)
    return a


def _cfg(files):
    cfg: dict = {}
    for f in files:
        _merge(cfg, yaml.safe_load((REPO / f).read_text()))
    return plans.check_config(cfg)


def _claims_plan(preset):
    cfg = _cfg(PRESETS[preset])
    studies = plans.plan(cfg)
    return cfg, studies, plans.claims_plan(cfg, studies)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_claims_are_well_formed_and_unique(preset):
    _, studies, C = _claims_plan(preset)
    ids = []
    for name in C.judged():
        claims = studies[name].claims()
        assert sum(c["headline"] for c in claims) >= 1, name
        for c in claims:
            assert FIELDS <= set(c), (c.get("id"), FIELDS - set(c))
            assert c["study"] == name
            assert c["direction"] in DIRECTIONS, c["id"]
            assert c["margin"] >= 0
            if c["direction"] in ("at_least", "equivalent"):
                assert c["margin"] > 0, c["id"]
            ids.append(c["id"])
        assert all(isinstance(d, str) and d for d in studies[name].deviations()), name
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


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
