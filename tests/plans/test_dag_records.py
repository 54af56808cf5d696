"""The DAG Snakemake builds for each preset equals its recorded golden file (every job's rule,
script, outputs, inputs, library-code inputs and params); nothing runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dag_records import GOLDEN, REPO, build_records, compare

PRESETS = {"default": "config.yaml", "smoke": "configs/smoke.yaml", "paper": "configs/paper.yaml",
           "extended": "config.yaml+configs/extended.yaml",
           "evidence": "config.yaml+configs/evidence.yaml"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_dag_equals_golden_records(name):
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    fresh = json.loads(json.dumps(build_records(PRESETS[name])))
    diff = compare(golden, fresh, fields=("rule", "script", "output", "input", "code", "params"))
    assert not diff, (
        f"{name}: the DAG differs from tests/plans/golden/{name}.json per rule: "
        + json.dumps({r: {k: v[:3] for k, v in d.items()} for r, d in diff.items()}, indent=1)
        + "\nIf the change is intended, regenerate: python tests/plans/dag_records.py "
        + " ".join(PRESETS.values())
    )
