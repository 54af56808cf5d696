"""Publishing (curvrobust.claims.publish): the evidence survives the trip through its files bit for bit
(so re-judging it gives the published verdicts), a changed number or verdict is found, the run
ledger's wall time, and the page's headline rows come from the rows it is given."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curvrobust.claims.judge import judge_all
from curvrobust.claims.render import claims_frame
from curvrobust.claims import publish as evidence
from curvrobust.plans.base import make_claim


def _claim(cid="000-x", headline=True):
    return make_claim("study000", cid, "A is attacked less often than B", "§1", "rate",
                      "A − B", "less", "fgsm_rate", {}, headline=headline, sesoi=0.05,
                      sesoi_source="test: 5 points")


def _evidence(rng, seeds=4, images=300):
    num = (rng.random((seeds, images, 2)) < [0.3, 0.6]).astype(float)
    return {"status": "ok", "flags": [], "seeds": list(range(42, 42 + seeds)),
            "ours": "A vs B", "images_num": num, "images_den": np.ones_like(num)}


def test_pack_and_unpack_round_trip_bit_for_bit_and_share_equal_arrays():
    rng = np.random.default_rng(0)
    ev = {"a": _evidence(rng), "b": {"x": [1, 2.5, None], "cube": np.arange(6.0).reshape(2, 3)}}
    ev["c"] = dict(ev["a"])                       # the same arrays under another claim
    packed, arrays = evidence.pack_evidence(ev)
    json.dumps(packed)                            # JSON-able
    assert len(arrays) == 3                       # num, den, cube: shared ones stored once
    back = evidence.unpack_evidence(json.loads(json.dumps(packed)), arrays)
    for k in ("images_num", "images_den"):
        assert back["a"][k].dtype == ev["a"][k].dtype
        assert np.array_equal(back["a"][k], ev["a"][k])
        assert np.array_equal(back["c"][k], ev["a"][k])
    assert back["b"]["x"] == [1, 2.5, None]
    with pytest.raises(KeyError):
        evidence.unpack_evidence(packed, {})


@pytest.mark.parametrize("typed", [False, True], ids=["dicts", "Evidence objects"])
def test_published_evidence_rejudges_to_the_same_rows(tmp_path, typed):
    """The reports return Evidence objects; published files hold their dicts."""
    from curvrobust.claims.evidence import from_mapping

    rng = np.random.default_rng(1)
    cl = [_claim("000-a"), _claim("000-b", headline=False)]
    ev = {"000-a": _evidence(rng), "000-b": _evidence(rng)}
    if typed:
        ev = {k: from_mapping(v) for k, v in ev.items()}
    stats = {"seed": 0, "level": 0.95}
    rows = judge_all(cl, ev, **stats)
    evidence.write_study_evidence(tmp_path / "s.json", tmp_path / "s.npz", "study000", cl, ev,
                                  stats)
    doc = evidence.read_study_evidence(tmp_path / "s.json", tmp_path / "s.npz")
    again = evidence.rejudge(doc)
    assert evidence.row_differences(rows, again) == []
    # a hand edit of a published number or verdict is found
    edited = [dict(r) for r in rows]
    edited[0]["effect"] = float(edited[0]["effect"]) + 0.01
    edited[1]["verdict"] = "holds" if edited[1]["verdict"] != "holds" else "contradicted"
    diffs = evidence.row_differences(edited, again)
    assert any(d.startswith("000-a: effect") for d in diffs)
    assert any(d.startswith("000-b: verdict") for d in diffs)


def test_row_differences_reads_csv_strings_and_nan():
    row = {"id": "x", "verdict": "holds", "reason": "", "effect": 0.1, "lo": float("nan")}
    text = {"id": "x", "verdict": "holds", "reason": "", "effect": "0.1", "lo": ""}
    assert evidence.row_differences([text], [row]) == []
    assert evidence.row_differences([text], []) == ["x: not judged now"]


def test_ledger_sums_closed_invocations_and_the_open_one_until_now(tmp_path):
    led = tmp_path / "ledger.json"
    assert evidence.ledger_wall_seconds(led) is None
    evidence.ledger_mark(led, "start", now=100.0)
    evidence.ledger_mark(led, "end", now=160.0)
    evidence.ledger_mark(led, "start", now=200.0)
    assert evidence.ledger_wall_seconds(led, now=230.0) == pytest.approx(90.0)
    evidence.ledger_mark(led, "end", now=250.0)
    assert evidence.ledger_wall_seconds(led, now=999.0) == pytest.approx(110.0)
    with pytest.raises(ValueError, match="no open invocation"):
        evidence.ledger_mark(led, "end", now=300.0)


def test_page_shows_each_headline_with_its_numbers_and_provenance():
    rng = np.random.default_rng(2)
    cl = [_claim("000-a"), _claim("000-b", headline=False)]
    rows = judge_all(cl, {"000-a": _evidence(rng), "000-b": _evidence(rng)})
    prov = dict(git={"commit": "abc123", "dirty": False}, fingerprint="f" * 64,
                configfiles=["config.yaml", "configs/evidence.yaml"],
                machine=dict(cores=2, cpu="cpu", threads_per_job=1, device="cpu", gpu="",
                             system="Linux", python="3", torch="2"),
                run=dict(job_minutes=12.0, benchmarked_jobs=3, jobs=4, wall_minutes=7.0,
                         invocations=1),
                forecast=dict(job_minutes=10.0, wall_minutes=6.0, cores=2))
    power = [{"id": "000-a", "seeds_needed": "9"}]
    page = evidence.evidence_page(rows, power, [], [dict(study="study002", what="big nets",
                                                         models=3, job_minutes=500.0)],
                                  prov, {"study000": ["one seed per arm"]},
                                  {"claims": "e/claims.csv", "provenance": "e/p.json",
                                   "studies": ["e/study000.json"]})
    head = [ln for ln in page.splitlines() if ln.startswith("| study000 | `000-a`")]
    assert len(head) == 1 and f"**{rows[0]['verdict']}**" in head[0] and "| 9 |" in head[0]
    assert not any(ln.startswith("| study000 | `000-b`") for ln in page.splitlines())
    assert "`abc123`" in page and "12 job-minutes" in page and "| big nets | 3 | 500 |" in page
    assert "one seed per arm" in page


def test_rejudging_a_published_page_rewrites_it_without_the_results(tmp_path):
    """A change to the claims engine is handled from the published files alone: the claims
    CSV and the page are rewritten, the provenance names the commit that re-judged."""
    rng = np.random.default_rng(3)
    cl = [_claim("000-a"), _claim("000-b", headline=False)]
    ev = {"000-a": _evidence(rng), "000-b": _evidence(rng)}
    folder, page = tmp_path / "evidence", tmp_path / "evidence.md"
    folder.mkdir()
    evidence.write_study_evidence(folder / "study000.json", folder / "study000.npz", "study000",
                                  cl, ev, {"seed": 0, "level": 0.95}, ["a deviation"])
    rows = judge_all(cl, ev)
    stale = [dict(r, verdict="holds", effect=1.0) for r in rows]   # as an older engine said
    claims_frame(stale).to_csv(folder / "claims.csv", index=False)
    (folder / "power.csv").write_text("id,seeds_needed\n")
    prov = dict(git={"commit": "old", "dirty": False}, fingerprint="f", configfiles=["c"],
                machine=dict(cores=2, cpu="c", threads_per_job=1, device="cpu", gpu="",
                             system="s", python="3", torch="2"),
                run=dict(job_minutes=1.0, benchmarked_jobs=1, jobs=1, wall_minutes=None,
                         invocations=0), forecast=None, studies=["study000"], not_run=[])
    (folder / "provenance.json").write_text(json.dumps(prov))
    _, diffs = evidence.render_published(page, folder)
    assert diffs                                   # the stale table is caught
    changed = evidence.rejudge_published(page, folder)
    assert set(changed) == {r["id"] for r in rows if r["verdict"] != "holds"}
    text, diffs = evidence.render_published(page, folder)
    assert not diffs and page.read_text() == text
    assert "Re-judged" in text and "a deviation" in text
