"""Records of every job a configuration plans: rule, outputs, inputs and params.

    python tests/plans/dag_records.py config.yaml configs/smoke.yaml configs/paper.yaml \
        config.yaml+configs/extended.yaml config.yaml+configs/evidence.yaml
    python tests/plans/dag_records.py --out DIR config.yaml      # write DIR/<name>.json

`A+B` is the preset `--configfile A B` gives (B merged into A), named after B.

Builds Snakemake's DAG with --forceall (nothing runs, no file is needed) and writes one JSON
record per job, keyed by its first output: rule, script (workflow_scripts/ name), outputs, data
inputs, library-code inputs and params. Library-code inputs (files under lib/) are kept apart
from the data inputs, so that a change in how code inputs are computed shows as such. These
records are what a restructuring of the plans must not change by accident; the committed ones
in tests/plans/golden/ are compared with a fresh build by tests/plans/test_dag_records.py.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"


def load_preset(*files: str) -> dict:
    """The checked configuration `--configfile A B …` gives: later files merged into earlier
    ones by Snakemake's own merge (mappings key by key, lists replaced), with the schema's
    defaults filled in."""
    import yaml
    from snakemake.utils import update_config

    sys.path.insert(0, str(REPO / "lib"))
    from curvrobust import plans

    cfg: dict = {}
    for f in files:
        update_config(cfg, yaml.safe_load((REPO / f).read_text()))
    return plans.check_config(cfg)


def _rel(path: str) -> str:
    p = str(path)
    root = str(REPO) + os.sep
    return p[len(root) :] if p.startswith(root) else p


def _plain(value: Any) -> Any:
    """JSON-able copy of a param value (Snakemake hands lists/dicts/Namedlists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return _rel(value) if isinstance(value, str) else value
    return repr(value)


def build_records(configfile: str | Path) -> dict[str, dict[str, Any]]:
    """Every job of `snakemake --forceall -n --configfile configfile`, keyed by first output;
    `A+B` for `--configfile A B`."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
        WorkflowSettings,
    )

    configfiles = [(REPO / f).resolve() for f in str(configfile).split("+")]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stderr(io.StringIO()), SnakemakeApi(
            OutputSettings(quiet={"all"})
        ) as api:
            wf_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(configfiles=configfiles),
                storage_settings=StorageSettings(),
                workflow_settings=WorkflowSettings(),
                snakefile=REPO / "Snakefile",
                workdir=REPO,
            )
            wf_api.dag(dag_settings=DAGSettings(forceall=True))
            wf = wf_api._workflow
            wf._prepare_dag(
                forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True
            )
            wf._build_dag()
            records = {}
            lib = str(REPO / "lib") + os.sep
            for job in wf.dag.jobs:
                inputs = [str(f) for f in job.input]
                code = sorted(_rel(f) for f in inputs if f.startswith(lib))
                data = [_rel(f) for f in inputs if not f.startswith(lib)]
                outputs = [_rel(str(f)) for f in job.output]
                params = {k: _plain(v) for k, v in job.params.items()}
                key = outputs[0] if outputs else f"<{job.rule.name}>"
                script = job.rule.script and Path(job.rule.script).stem
                records[key] = dict(
                    rule=job.rule.name,
                    script=script,
                    output=outputs,
                    input=data,
                    code=code,
                    params=params,
                )
            return dict(sorted(records.items()))
    finally:
        os.chdir(cwd)


def compare(before: dict, after: dict, fields=("rule", "output", "input", "params")) -> dict:
    """Per rule (of `after`, else `before`): jobs only before, only after, and fields that differ."""
    out: dict[str, dict[str, list]] = {}

    def note(rule, what, item):
        out.setdefault(rule, {}).setdefault(what, []).append(item)

    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if a is None:
            note(b["rule"], "only before", key)
        elif b is None:
            note(a["rule"], "only after", key)
        else:
            for f in fields:
                if b.get(f) != a.get(f):
                    note(a["rule"], f"{f} differs", key)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configfiles", nargs="*")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), type=Path,
                    help="compare two record folders instead (per rule, per field)")
    ap.add_argument("--out", type=Path, default=GOLDEN, help="folder for <name>.json")
    args = ap.parse_args(argv)
    if args.compare:
        for f in sorted(args.compare[0].glob("*.json")):
            diff = compare(json.loads(f.read_text()),
                           json.loads((args.compare[1] / f.name).read_text()),
                           fields=("rule", "output", "input", "params", "code"))
            print(f"== {f.stem}")
            for rule, kinds in sorted(diff.items()):
                print(f"  {rule}: " + "; ".join(f"{k} ({len(v)})" for k, v in kinds.items()))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for cf in args.configfiles:
        recs = build_records(cf)
        last = cf.split("+")[-1]
        name = "default" if Path(last).name == "config.yaml" else Path(last).stem
        dest = args.out / f"{name}.json"
        tmp = dest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(recs, indent=1, sort_keys=True) + "\n")
        tmp.replace(dest)
        print(f"{cf}: {len(recs)} jobs -> {_rel(str(dest))}", file=sys.stderr)


if __name__ == "__main__":
    main()
