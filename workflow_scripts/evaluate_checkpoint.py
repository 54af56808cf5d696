"""Snakemake adapter: evaluate one epoch-end checkpoint of a study-001 model on a fixed, seeded
test subset — clean accuracy, PGD accuracy and the AutoAttack-style cascade
(rule evaluate_checkpoint)."""

import csv
from pathlib import Path

from curvrobust.attacks import attack_success_table
from curvrobust.autoattack import autoattack_eval, subset_indices
from curvrobust.jobs import start_job
from curvrobust.models import load_model
from curvrobust.train import write_csv
from curvrobust.utils import select_device
from curvrobust.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
log(f"device: {device}")
w = snakemake.wildcards
epoch = int(w.epoch)
with open(snakemake.input.checkpoints, newline="") as f:
    rows = [r for r in csv.DictReader(f) if float(r["epoch"]) == epoch]
if not rows:
    raise ValueError(f"{snakemake.input.checkpoints}: no checkpoint at the end of epoch {epoch} "
                     "(the recipe's checkpoints.every_epochs / first_epoch decide which exist)")
ckpt = rows[-1]
model = load_model(Path(snakemake.input.checkpoint_dir).parent / ckpt["file"],
                   map_location=device)

aa = dict(snakemake.params.autoattack)
n, seed = aa.pop("n_examples"), aa.pop("seed", 0)
x, y = load_variant(Path(snakemake.input.test).parent, "test")
if n > len(x):
    raise ValueError(f"studies.study001.autoattack.n_examples = {n} exceeds the {len(x)} test "
                     f"images of {snakemake.input.test}")
idx = subset_indices(len(x), n, seed)
x, y = x[idx], y[idx]
eps = float(snakemake.params.eps)

pgd = dict(snakemake.params.pgd)
kind = pgd.pop("kind")
for key in ("eps", "n_examples", "batch_size"):
    pgd.pop(key, None)
log(f"epoch {epoch} ({ckpt['file']}): {kind} {pgd} at eps {eps:g} on {n} test images "
    f"(subset seed {seed})")
(pgd_row,) = attack_success_table(model, x, y, kind, [eps], params=pgd, device=device)
log(f"clean {pgd_row['correct'] / n:.4f}, {kind} {pgd_row['adv_accuracy']:.4f}")
res = autoattack_eval(model, x.to(device), y.to(device), eps, seed=seed, log=log, **aa)
row = dict(dataset=w.dataset, recipe=w.recipe, seed=int(w.seed), epoch=epoch,
           step=int(ckpt["step"]), n_examples=n, subset_seed=seed, eps=eps,
           clean_acc=res["clean_acc"], pgd_acc=pgd_row["adv_accuracy"],
           pgd_attack=f"{kind} " + ", ".join(f"{k}={v}" for k, v in sorted(pgd.items())),
           **{k: v for k, v in res.items() if k.endswith("_acc") and k != "clean_acc"},
           aa_attacks=res["attacks"], aa_time_s=round(res["time_s"], 2))
log(f"AutoAttack {res['attacks']}: robust accuracy {res['aa_acc']:.4f}")
write_csv(snakemake.output[0], [row], list(row))
