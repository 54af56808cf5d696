"""Snakemake adapter: the published page and its files (rule publish_evidence;
curvrobust.claims.publish). Writes each study's claims with the evidence judged, then renders the page
from the published files alone, re-judging that evidence: it stops if a verdict or number
differs from the run's, so the published evidence is the evidence behind the verdicts."""

import json
import shutil
import time
from pathlib import Path

from curvrobust.claims import publish as evidence
from curvrobust.workflow import forecast
from curvrobust.workflow.jobs import git_state, start_job
from curvrobust.reports import study000, study001, study002, study003
from curvrobust.utils import atomic_path, write_json_atomic, write_text_atomic

EVIDENCE = {m.__name__.rsplit(".", 1)[-1]: m.claim_evidence
            for m in (study000, study001, study002, study003)}

log = start_job(snakemake)
spec, files = snakemake.params.spec, snakemake.params.files
folder = Path(files["provenance"]).parent
for study, plan in spec["plans"].items():
    ev = EVIDENCE[study](plan["claims"], plan["records"], plan["robust"])
    out = files["studies"][study]
    evidence.write_study_evidence(out["json"], out["npz"], study, plan["claims"], ev,
                                  spec["statistics"], plan["deviations"])
    log(f"{study}: the evidence of {len(plan['claims'])} claims written")

copies = [(snakemake.input.claims[0], files["claims"]),
          (snakemake.input.claims[1], files["power"])]
if Path(spec["default_power"]).is_file():
    copies.append((spec["default_power"], folder / "power_default.csv"))
for src, dst in copies:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)

fc = json.loads(Path(spec["forecast"]).read_text()) if Path(spec["forecast"]).is_file() else None
benchmarks = [j["benchmark"] for j in (fc or {}).get("jobs", []) if j.get("benchmark")]
seconds, n_bench = evidence.job_seconds(benchmarks)
ledger = Path(spec["ledger"])
wall = evidence.ledger_wall_seconds(ledger)
cfg = dict(recipes=spec["recipes"], variants=spec["variants"])
prov = dict(
    git=git_state(Path.cwd()), fingerprint=spec["fingerprint"], configfiles=spec["configfiles"],
    machine=evidence.machine(spec["threads"], spec["device"]),
    run=dict(job_minutes=seconds / 60, benchmarked_jobs=n_bench,
             jobs=len((fc or {}).get("jobs", [])),
             wall_minutes=None if wall is None else wall / 60,
             invocations=len(json.loads(ledger.read_text())) if ledger.is_file() else 0,
             published=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
    forecast=(fc or {}).get("summary"),
    default_power=(None if len(copies) < 3 else dict(
        path=spec["default_power"], commit=evidence.sidecar_commit(spec["default_power"]))),
    studies=list(spec["plans"]),
    not_run=evidence.price_not_run(spec["not_run"], cfg, forecast.load_reference()),
)
write_json_atomic(files["provenance"], prov)
text, diffs = evidence.render_published(files["page"], folder)
if diffs:
    raise RuntimeError("the published evidence does not reproduce the judged rows:\n  "
                       + "\n  ".join(diffs[:20]))
write_text_atomic(files["page"], text)
log(f"published {files['page']}: {seconds / 60:.0f} job-minutes, evidence re-judged identically")
