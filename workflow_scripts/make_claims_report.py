"""Snakemake adapter: results/claims.{csv,md}, every study's judged claims in one table, and
results/power.{csv,md}, what it would take to decide them (rule make_claims_report;
curvrobust.claims.render, curvrobust.claims.power)."""

import json
from collections import Counter
from pathlib import Path

from curvrobust.claims import power as claims_power
from curvrobust.claims.render import write_claims
from curvrobust.workflow.jobs import start_job

log = start_job(snakemake)
rows = [r for path in snakemake.input.studies for r in json.loads(Path(path).read_text())]
write_claims(rows, snakemake.output.csv, snakemake.output.md,
                    deviations=snakemake.params.deviations)
costs = claims_power.benchmark_costs(snakemake.params.benchmarks, snakemake.params.power)
power = claims_power.power_table(rows, costs)
claims_power.write_power(power, snakemake.output.power_csv, snakemake.output.power_md,
                         claims_power.describe_costs(costs))
log(f"{len(rows)} claims: " + ", ".join(f"{n} {v}" for v, n in Counter(
    r["verdict"] for r in rows).most_common()))
log(f"power: {len(power)} rows (headlines and inconclusive rows)")
