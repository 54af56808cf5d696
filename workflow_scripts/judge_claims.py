"""Snakemake adapter: judge one study's claims from its results (rule judge_claims;
curvrobust.claims, the study's `claim_evidence` in curvrobust.reports)."""


from curvrobust import claims
from curvrobust.jobs import start_job
from curvrobust.reports import study000, study001, study002, study003
from curvrobust.utils import write_json_atomic

EVIDENCE = {m.__name__.rsplit(".", 1)[-1]: m.claim_evidence
            for m in (study000, study001, study002, study003)}

log = start_job(snakemake)
study = snakemake.wildcards.study
plan = snakemake.params.plan
stats = snakemake.params.statistics
evidence = EVIDENCE[study](plan["claims"], plan["records"], plan["robust"])
rows = claims.judge_all(plan["claims"], evidence, seed=stats["seed"], level=stats["level"])
claims.write_claims(rows, snakemake.output.csv, snakemake.output.md,
                    deviations={study: plan["deviations"]})
write_json_atomic(snakemake.output.json, rows)
for r in rows:
    log(f"{r['id']}: {r['verdict']} ({r['reason']})")
