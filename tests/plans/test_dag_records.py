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


@pytest.mark.parametrize("study", ["study000", "study001", "study002", "study003"])
def test_config_without_a_study_block_plans_none_of_it(study, tmp_path):
    """An older configuration without a `studies.<study>` block (optional in the schema) still
    parses — every rule's params are computed at parse time, the absent study's too — and plans
    no table or figure of that study."""
    import yaml

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    del cfg["studies"][study]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rules = {r["rule"] for r in build_records(path).values()}
    assert rules and not {f"make_table_{study}", f"plot_figure_{study}"} & rules, sorted(rules)
