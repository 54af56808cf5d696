"""Snakemake adapter: results/claims.{csv,md}, every study's judged claims in one table (rule
make_claims_report; curvrobust.claims)."""

import json
from collections import Counter
from pathlib import Path

from curvrobust import claims
from curvrobust.jobs import start_job

log = start_job(snakemake)
rows = [r for path in snakemake.input.studies for r in json.loads(Path(path).read_text())]
claims.write_claims(rows, snakemake.output.csv, snakemake.output.md,
                    deviations=snakemake.params.deviations)
log(f"{len(rows)} claims: " + ", ".join(f"{n} {v}" for v, n in Counter(
    r["verdict"] for r in rows).most_common()))
