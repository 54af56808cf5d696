"""Study 001's per-checkpoint evaluation: clean accuracy, PGD accuracy and the AutoAttack-style
cascade of one epoch-end checkpoint on the shared, seeded test subset
(:func:`curvrobust.data.subsets.eval_subset`), with per-image outcome rows of every attack."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import torch

from curvrobust.attacks.outcomes import attack_outcomes, summarise_outcomes
from curvrobust.attacks.autoattack import autoattack_eval, cascade_outcomes
from curvrobust.models.networks import load_model
from curvrobust.data.subsets import eval_subset
from curvrobust.data.variants import load_variant


def epoch_checkpoint(checkpoints_csv: str, epoch: int) -> dict[str, str]:
    """The last row of a model's checkpoints.csv saved at the end of `epoch`."""
    with open(checkpoints_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if float(r["epoch"]) == epoch]
    if not rows:
        raise ValueError(f"{checkpoints_csv}: no checkpoint at the end of epoch {epoch} "
                         "(the recipe's checkpoints.every_epochs / first_epoch decide which exist)")
    return rows[-1]


def fixed_test_subset(test_file: str, n: int, seed: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first `n` images of the shared test subset with permutation seed `seed`, of the
    variant holding `test_file`: (images, labels, test-set indices)."""
    x, y = load_variant(Path(test_file).parent, "test")
    if n > len(x):
        raise ValueError(f"studies.study001.autoattack.n_examples = {n} exceeds the {len(x)} test "
                         f"images of {test_file}")
    idx = eval_subset(len(x), n, seed)
    return x[idx], y[idx], idx


def evaluate_checkpoint(checkpoints_csv: str, checkpoint_dir: str, test_file: str, *,
                        dataset: str, recipe: str, seed: int, epoch: int, eps: float,
                        pgd: dict[str, Any], autoattack: dict[str, Any], subset_seed: int,
                        device: torch.device, log: Callable[[str], None],
                        pgd_name: str = "pgd") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Evaluate the checkpoint saved at the end of `epoch` at radius `eps`: clean accuracy,
    accuracy under the `pgd` attack spec and under the AutoAttack-style cascade (`autoattack`:
    its settings plus `n_examples`; its `seed` seeds the cascade's forked RNG), on the first
    `n_examples` images of the shared test subset with permutation seed `subset_seed`.

    Returns the result row and the per-image outcome rows (curvrobust.attacks.OUTCOME_COLUMNS):
    the PGD attack's (attack `pgd_name`), then one row per image for each cascade stage
    (attack "apgd-ce", "apgd-t", "fab-t", "square"; see autoattack.cascade_outcomes)."""
    ckpt = epoch_checkpoint(checkpoints_csv, epoch)
    model = load_model(Path(checkpoint_dir).parent / ckpt["file"], map_location=device)
    aa = dict(autoattack)
    n = aa.pop("n_examples")
    x, y, index = fixed_test_subset(test_file, n, subset_seed)
    eps = float(eps)
    pgd = dict(pgd)
    kind = pgd.pop("kind")
    for key in ("eps", "n_examples", "batch_size"):
        pgd.pop(key, None)
    log(f"epoch {epoch} ({ckpt['file']}): {kind} {pgd} at eps {eps:g} on {n} test images "
        f"(subset seed {subset_seed})")
    outcomes = attack_outcomes(model, x, y, index, kind, [eps], params=pgd, device=device,
                               name=pgd_name)
    (pgd_row,) = summarise_outcomes(outcomes)
    log(f"clean {pgd_row['correct'] / n:.4f}, {kind} {pgd_row['adv_accuracy']:.4f}")
    res = autoattack_eval(model, x.to(device), y.to(device), eps, log=log, per_image=True, **aa)
    outcomes += cascade_outcomes(res, index, y)
    row = dict(dataset=dataset, recipe=recipe, seed=seed, epoch=epoch,
               step=int(ckpt["step"]), n_examples=n, subset_seed=subset_seed, eps=eps,
               clean_acc=res["clean_acc"], pgd_acc=pgd_row["adv_accuracy"],
               pgd_attack=f"{kind} " + ", ".join(f"{k}={v}" for k, v in sorted(pgd.items())),
               **{k: v for k, v in res.items() if k.endswith("_acc") and k != "clean_acc"},
               aa_attacks=res["attacks"], aa_time_s=round(res["time_s"], 2))
    log(f"AutoAttack {res['attacks']}: robust accuracy {res['aa_acc']:.4f}")
    return row, outcomes
