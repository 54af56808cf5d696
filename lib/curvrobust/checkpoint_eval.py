"""Study 001's per-checkpoint evaluation: clean accuracy, PGD accuracy and the AutoAttack-style
cascade of one epoch-end checkpoint on a fixed, seeded test subset."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import torch

from .attacks import attack_success_table
from .autoattack import autoattack_eval, subset_indices
from .models import load_model
from .variants import load_variant


def epoch_checkpoint(checkpoints_csv: str, epoch: int) -> dict[str, str]:
    """The last row of a model's checkpoints.csv saved at the end of `epoch`."""
    with open(checkpoints_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if float(r["epoch"]) == epoch]
    if not rows:
        raise ValueError(f"{checkpoints_csv}: no checkpoint at the end of epoch {epoch} "
                         "(the recipe's checkpoints.every_epochs / first_epoch decide which exist)")
    return rows[-1]


def fixed_test_subset(test_file: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` seeded test images and labels of the variant holding `test_file`."""
    x, y = load_variant(Path(test_file).parent, "test")
    if n > len(x):
        raise ValueError(f"studies.study001.autoattack.n_examples = {n} exceeds the {len(x)} test "
                         f"images of {test_file}")
    idx = subset_indices(len(x), n, seed)
    return x[idx], y[idx]


def evaluate_checkpoint(checkpoints_csv: str, checkpoint_dir: str, test_file: str, *,
                        dataset: str, recipe: str, seed: int, epoch: int, eps: float,
                        pgd: dict[str, Any], autoattack: dict[str, Any], device: torch.device,
                        log: Callable[[str], None]) -> dict[str, Any]:
    """One result row for the checkpoint saved at the end of `epoch`: clean accuracy, accuracy
    under the `pgd` attack spec and under the AutoAttack-style cascade (`autoattack`: its
    settings plus `n_examples` and the subset `seed`), all at radius `eps`."""
    ckpt = epoch_checkpoint(checkpoints_csv, epoch)
    model = load_model(Path(checkpoint_dir).parent / ckpt["file"], map_location=device)
    aa = dict(autoattack)
    n, subset_seed = aa.pop("n_examples"), aa.pop("seed", 0)
    x, y = fixed_test_subset(test_file, n, subset_seed)
    eps = float(eps)
    pgd = dict(pgd)
    kind = pgd.pop("kind")
    for key in ("eps", "n_examples", "batch_size"):
        pgd.pop(key, None)
    log(f"epoch {epoch} ({ckpt['file']}): {kind} {pgd} at eps {eps:g} on {n} test images "
        f"(subset seed {subset_seed})")
    (pgd_row,) = attack_success_table(model, x, y, kind, [eps], params=pgd, device=device)
    log(f"clean {pgd_row['correct'] / n:.4f}, {kind} {pgd_row['adv_accuracy']:.4f}")
    res = autoattack_eval(model, x.to(device), y.to(device), eps, seed=subset_seed, log=log, **aa)
    row = dict(dataset=dataset, recipe=recipe, seed=seed, epoch=epoch,
               step=int(ckpt["step"]), n_examples=n, subset_seed=subset_seed, eps=eps,
               clean_acc=res["clean_acc"], pgd_acc=pgd_row["adv_accuracy"],
               pgd_attack=f"{kind} " + ", ".join(f"{k}={v}" for k, v in sorted(pgd.items())),
               **{k: v for k, v in res.items() if k.endswith("_acc") and k != "clean_acc"},
               aa_attacks=res["attacks"], aa_time_s=round(res["time_s"], 2))
    log(f"AutoAttack {res['attacks']}: robust accuracy {res['aa_acc']:.4f}")
    return row
