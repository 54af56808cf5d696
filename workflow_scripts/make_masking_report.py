"""Snakemake adapter: results/masking.{csv,md} from every model's robust-evaluation summary
(rule make_masking_report; curvrobust.reports.robustness)."""

import json
from pathlib import Path

from curvrobust.reports import tables
from curvrobust.workflow.jobs import start_job
from curvrobust.reports.robustness import masking_table, model_key

log = start_job(snakemake)
summaries, records = {}, []
for path in snakemake.input.summaries:
    s = json.loads(Path(path).read_text())
    records.append(s["record"])
    summaries[model_key(s["record"])] = s
numeric, readable, caption = masking_table(records, summaries, snakemake.params.limits)
stem = str(Path(snakemake.output.csv).with_suffix(""))
tables.write_table(numeric, readable, stem, caption)
flagged = numeric[numeric["failed_checks"] != ""]
log(f"wrote {stem}.{{csv,md,tex}}: {len(numeric)} models, {len(flagged)} flagged, "
    f"{int(numeric['degenerate'].sum())} degenerate")
