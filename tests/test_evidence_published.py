"""The published evidence (docs/evidence.md and docs/evidence/, written by `make evidence`)
cannot go stale silently: its recorded configuration fingerprint is the current evidence
preset's, every published claim re-judged from the published evidence with the current claims
engine gives the published verdict and numbers, and the page is exactly what its files render
(a hand edit anywhere fails). A change to the claims engine means regenerating the page
(`make evidence`: only publish_evidence and the judging jobs rerun), not retraining."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from plans.dag_records import load_preset

from curvrobust.claims import publish as evidence
from curvrobust.plans.publish import fingerprint

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "evidence.md"
FOLDER = REPO / "docs" / "evidence"
REGENERATE = "regenerate it: make evidence (then commit docs/evidence.md and docs/evidence/)"

pytestmark = pytest.mark.skipif(not PAGE.is_file(), reason="docs/evidence.md not published yet")


def _provenance() -> dict:
    return json.loads((FOLDER / "provenance.json").read_text())


def test_page_was_made_from_the_current_evidence_configuration():
    cfg = load_preset("config.yaml", "configs/evidence.yaml")
    recorded = _provenance()["fingerprint"]
    assert recorded == fingerprint(cfg), (
        "config.yaml + configs/evidence.yaml changed since docs/evidence.md was published; "
        + REGENERATE)


def test_every_published_claim_rejudges_to_its_verdict_and_the_page_is_what_its_files_render():
    text, diffs = evidence.render_published(PAGE, FOLDER)
    assert not diffs, ("re-judging the published evidence with the current claims engine "
                       "changes: " + "; ".join(diffs[:10]) + "; " + REGENERATE)
    assert PAGE.read_text() == text, ("docs/evidence.md differs from what its files render "
                                      "(a hand edit, or an engine change); " + REGENERATE)


def test_page_names_the_commit_that_produced_it():
    commit = _provenance()["git"]["commit"]
    assert commit and f"`{commit}`" in PAGE.read_text()
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO,
                           capture_output=True)
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO,
                             capture_output=True, text=True).stdout.strip()
    assert known.returncode == 0 or shallow == "true", f"{commit} is not a commit of this repo"
