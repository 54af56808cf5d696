"""Snakemake adapter: attack one model with one attack spec on the shared test subset
(rule attack_model): one row per ε (output csv) and one per attacked image and ε (output
images; curvrobust.attacks.outcomes on curvrobust.data.subsets)."""

from pathlib import Path

from curvrobust.attacks import OUTCOME_COLUMNS, attack_outcomes, summarise_outcomes
from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.data.subsets import select_subset
from curvrobust.utils import select_device, write_csv
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
spec = dict(snakemake.params.spec)
kind, eps = spec.pop("kind"), spec.pop("eps")
batch_size = spec.pop("batch_size", 1000)
n_examples = spec.pop("n_examples", None)
subset = snakemake.params.subset
name = snakemake.wildcards.attack
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
try:
    x, y, index = select_subset(x, y, n_examples, subset["n_default"], subset["seed"])
except ValueError as e:
    raise ValueError(f"attacks.{name}: {e}") from None
log(f"{kind} {spec} on {len(x)} test images (the shared subset, seed {subset['seed']}), "
    f"eps {eps}")
outcomes = attack_outcomes(model, x, y, index, kind, eps, params=spec, batch_size=batch_size,
                           device=device, name=name)
rows = summarise_outcomes(outcomes, eps)
for r in rows:
    r.update(attack=name, kind=kind)
    log(f"{kind} eps={r['eps']:g}: correct {r['correct']}, successes {r['successes']} "
        f"({100 * r['success_rate']:.2f} %), accuracy {100 * r['adv_accuracy']:.2f} %")
write_csv(snakemake.output.csv, rows, list(rows[0]))
write_csv(snakemake.output.images, outcomes, list(OUTCOME_COLUMNS))
