"""Snakemake adapter: judge one study's claims from its results (rule judge_claims;
curvrobust.claims.judge, the study's `claim_evidence` in curvrobust.reports.<study>).

The study's report module is imported by name, and the rule declares that module's import
closure as its code inputs (rules/claims.smk), so an edit to one study's report reruns the
judging of that study only."""

import importlib

from curvrobust.claims.judge import judge_all
from curvrobust.claims.render import write_claims
from curvrobust.utils import write_json_atomic
from curvrobust.workflow.jobs import start_job

log = start_job(snakemake)
study = snakemake.wildcards.study
plan = snakemake.params.plan
stats = snakemake.params.statistics
report = importlib.import_module(f"curvrobust.reports.{study}")
evidence = report.claim_evidence(plan["claims"], plan["records"], plan["robust"])
rows = judge_all(plan["claims"], evidence, seed=stats["seed"], level=stats["level"])
write_claims(rows, snakemake.output.csv, snakemake.output.md,
             deviations={study: plan["deviations"]})
write_json_atomic(snakemake.output.json, rows)
for r in rows:
    log(f"{r['id']}: {r['verdict']} ({r['reason']})")
