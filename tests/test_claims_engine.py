"""The typed claims engine: claims and evidence read once into frozen objects, one judging
function per kind of evidence, each study's measures from a registry."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest

from curvrobust.claims import evidence as E
from curvrobust.claims.judge import JUDGES, judge
from curvrobust.claims.spec import Claim
from curvrobust.plans.base import make_claim
from curvrobust.reports import study000, study001, study002, study003


def _claim(**kw):
    base = make_claim("study000", "000-x", "text", "§1", "metric", "A − B", "less", "m", {},
                      sesoi=0.05, sesoi_source="the study's words")
    return {**base, **kw}


def test_claim_is_frozen_and_keyword_only():
    c = Claim.from_mapping(_claim())
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.direction = "greater"
    with pytest.raises(TypeError):
        Claim("000-x")  # positional fields are refused
    assert c.as_mapping() == _claim()
    assert c.scale == 100.0 and Claim.from_mapping(_claim(unit="")).scale == 1.0


@pytest.mark.parametrize("change, message", [
    (dict(direction="smaller"), "key 'direction' is 'smaller'"),
    (dict(margin=-1.0), "key 'margin' must be finite and >= 0"),
    (dict(headline=1), "key 'headline' must be bool"),
    (dict(sesoi=float("nan")), "key 'sesoi' must be finite"),
    (dict(extra=1), "unknown key 'extra'"),
    (dict(borrow=3), "key 'borrow' must be str or NoneType"),
])
def test_a_malformed_claim_names_the_claim_and_the_key(change, message):
    with pytest.raises(ValueError, match=f"claim '000-x': {message}"):
        Claim.from_mapping(_claim(**change))
    bad = _claim()
    del bad["metric"]
    with pytest.raises(ValueError, match="claim '000-x': missing key 'metric'"):
        Claim.from_mapping(bad)


def _kinds():
    rng = np.random.default_rng(0)
    num = (rng.random((3, 20, 2)) < 0.5).astype(float)
    return [
        E.PerImage(num=num, den=np.ones_like(num), seeds=[1, 2, 3], ours="a 50 %", flags=["f"]),
        E.PerImage(num=rng.random((2, 5, 3)), x=[0.5, 1.0, 2.0]),
        E.PerSeed(per_seed={0: 0.1, 1: 0.3}, x=[1.0, 2.0]),
        E.PerSeed(effect=0.2),
        E.Censored(orders={0: 1, 1: 1, 2: 1}, per_seed={0: 1.0}, censored=True),
        E.RankCorrelation(rank_x=[1, 2, 3, 4], rank_y=[2, 1, 4, 3], n_seeds=2),
        E.Absent(status="not_run", reason="not trained"),
        E.Absent(status="not_evaluable", reason="degenerate", flags=["g"]),
    ]


@pytest.mark.parametrize("ev", _kinds(), ids=lambda e: type(e).__name__)
def test_evidence_round_trips_through_the_published_dict(ev):
    back = E.from_mapping(ev.as_mapping())
    assert type(back) is type(ev)
    for f in dataclasses.fields(ev):
        a, b = getattr(ev, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b, f.name


@pytest.mark.parametrize("ev", _kinds(), ids=lambda e: type(e).__name__)
def test_the_judge_gives_the_same_row_for_an_object_and_its_dict(ev):
    trend = isinstance(ev, E.Censored) or getattr(ev, "x", None) is not None
    c = _claim(direction="increasing") if trend else _claim()
    a, b = judge(c, ev), judge(c, ev.as_mapping())
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k


def test_one_judging_function_per_kind():
    assert set(JUDGES) == set(E.KINDS)
    verdicts = {ev.status: judge(_claim(), ev)["verdict"]
                for ev in _kinds() if isinstance(ev, E.Absent)}
    assert verdicts == {"not_run": "not run", "not_evaluable": "not evaluable"}


@pytest.mark.parametrize("bad, message", [
    ({"status": "done"}, "evidence key 'status' is 'done'"),
    ({"status": "ok", "images_nmu": []}, "unknown evidence key 'images_nmu'"),
    ([1, 2], "evidence must be a dict"),
])
def test_malformed_evidence_names_the_claim_and_the_key(bad, message):
    with pytest.raises(ValueError, match=f"claim '000-x': {message}"):
        judge(_claim(), bad)


def test_censored_evidence_needs_its_censored_runs():
    with pytest.raises(ValueError, match="needs the censored runs"):
        E.Censored(orders={0: 1}, censored=False)


@pytest.mark.parametrize("report", [study000, study001, study002, study003],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_declared_measure_is_registered(report):
    """Each claim a study's plan declares names a measure of that study's registry."""
    from curvrobust import plans

    name = report.__name__.rsplit(".", 1)[-1]
    study = plans.plan(plans.check_config(_default_config()))[name]
    declared = {c["measure"] for c in study.claims()}
    assert declared and declared <= set(report.MEASURES), declared - set(report.MEASURES)
    with pytest.raises(ValueError, match=f"{name}: claim 'c': unknown claim measure 'nope'"):
        report.MEASURES.get("nope", "c")


def _default_config():
    import yaml
    from pathlib import Path

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())


def test_measures_registry_refuses_a_second_registration():
    m = E.Measures("study999")
    m.register("a")(lambda: None)
    with pytest.raises(ValueError, match="registered twice"):
        m.register("a")(lambda: None)


def test_docstring_examples():
    assert doctest.testmod(E, raise_on_error=True).attempted >= 3
