"""Snakemake adapter: the published page and its files (rule publish_evidence;
curvrobust.evidence). Judges each study's evidence again and stops if that differs from the
run's judged rows, so the published evidence is the evidence behind the verdicts."""

import csv
import json
import shutil
import time
from pathlib import Path

from curvrobust import claims, evidence, forecast
from curvrobust.jobs import git_state, start_job
from curvrobust.reports import study000, study001, study002, study003
from curvrobust.utils import atomic_path, write_json_atomic, write_text_atomic

EVIDENCE = {m.__name__.rsplit(".", 1)[-1]: m.claim_evidence
            for m in (study000, study001, study002, study003)}

log = start_job(snakemake)
spec, files = snakemake.params.spec, snakemake.params.files
rows = []
for study, judged_path in zip(spec["plans"], snakemake.input.judged):
    plan = spec["plans"][study]
    ev = EVIDENCE[study](plan["claims"], plan["records"], plan["robust"])
    out = files["studies"][study]
    evidence.write_study_evidence(out["json"], out["npz"], study, plan["claims"], ev,
                                  spec["statistics"])
    judged = json.loads(Path(judged_path).read_text())
    again = evidence.rejudge(evidence.read_study_evidence(out["json"], out["npz"]))
    diffs = evidence.row_differences(judged, again)
    if diffs:
        raise RuntimeError(f"{study}: the published evidence does not reproduce the judged "
                           "rows:\n  " + "\n  ".join(diffs[:20]))
    log(f"{study}: {len(judged)} claims, evidence re-judged identically")
    rows += judged

with atomic_path(files["claims"]) as tmp:
    shutil.copyfile(snakemake.input.claims[0], tmp)
power = list(csv.DictReader(open(snakemake.input.claims[1])))
default_power = (list(csv.DictReader(open(spec["default_power"])))
                 if Path(spec["default_power"]).is_file() else [])
fc = json.loads(Path(spec["forecast"]).read_text()) if Path(spec["forecast"]).is_file() else None
benchmarks = [j["benchmark"] for j in (fc or {}).get("jobs", []) if j.get("benchmark")]
seconds, n_bench = evidence.job_seconds(benchmarks)
ledger = Path(spec["ledger"])
prov = dict(
    git=git_state(Path.cwd()), fingerprint=spec["fingerprint"], configfiles=spec["configfiles"],
    machine=evidence.machine(spec["threads"], spec["device"]),
    run=dict(job_minutes=seconds / 60, benchmarked_jobs=n_bench,
             jobs=len((fc or {}).get("jobs", [])),
             wall_minutes=(None if not ledger.is_file()
                           else evidence.ledger_wall_seconds(ledger) / 60),
             invocations=len(json.loads(ledger.read_text())) if ledger.is_file() else 0,
             published=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
    forecast=(fc or {}).get("summary"),
    default_power=spec["default_power"] if default_power else None,
)
cfg = dict(recipes=spec["recipes"], variants=spec["variants"])
not_run = evidence.price_not_run(spec["not_run"], cfg, forecast.load_reference())
prov["not_run"] = not_run
write_json_atomic(files["provenance"], prov)
page_dir = Path(files["page"]).parent
rel = {k: str(Path(files[k]).relative_to(page_dir)) for k in ("claims", "provenance")}
rel["studies"] = [str(Path(s["json"]).relative_to(page_dir)) for s in files["studies"].values()]
deviations = {s: p["deviations"] for s, p in spec["plans"].items()}
write_text_atomic(files["page"], evidence.evidence_page(rows, power, default_power, not_run,
                                                        prov, deviations, rel))
log(f"published {files['page']}: {len(rows)} claims, {seconds / 60:.0f} job-minutes")
