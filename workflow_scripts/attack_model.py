"""Snakemake adapter: attack one model with one attack spec, one row per ε (rule attack_model)."""

from pathlib import Path

from curvrobust.jobs import start_job
from curvrobust.attacks import attack_success_table
from curvrobust.models import load_model
from curvrobust.utils import select_device, write_csv
from curvrobust.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
spec = dict(snakemake.params.spec)
kind, eps = spec.pop("kind"), spec.pop("eps")
batch_size = spec.pop("batch_size", 1000)
n_examples = spec.pop("n_examples", None)
model = load_model(snakemake.input.model, map_location=device)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
if n_examples is not None:
    x, y = x[:n_examples], y[:n_examples]
log(f"{kind} {spec} on {len(x)} test images, eps {eps}")
rows = attack_success_table(model, x, y, kind, eps, params=spec, batch_size=batch_size,
                            device=device)
for r in rows:
    r.update(attack=snakemake.wildcards.attack, kind=kind)
    log(f"{kind} eps={r['eps']:g}: correct {r['correct']}, successes {r['successes']} "
        f"({100 * r['success_rate']:.2f} %), accuracy {100 * r['adv_accuracy']:.2f} %")
write_csv(snakemake.output[0], rows, list(rows[0]))
