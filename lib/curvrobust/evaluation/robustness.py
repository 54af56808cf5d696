"""The robust evaluation of one model (rule ``evaluate_robustness``): validity gate, strong
attacks and gradient-masking checks at its study's headline ε, and the worst case over every
attack run on it.

It composes :mod:`curvrobust.data.subsets` (the shared subsets),
:mod:`curvrobust.evaluation.outcomes` (per-image outcomes, worst case) and
:mod:`curvrobust.evaluation.masking` (the suite and the checks); what it returns is one model's
``summary.json``, which the study tables and ``results/masking.{csv,md}`` read.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from curvrobust.evaluation.masking import (check_limits, craft_transfer, failed_checks,
    flags_by_kind, gradient_probe, masking_checks, model_validity, robust_suite, rows_at,
    suite_settings)
from curvrobust.evaluation.outcomes import (OUTCOME_COLUMNS, read_outcomes, worst_case,
    worst_case_images)
from curvrobust.data.subsets import eval_subset

__all__ = ["evaluate_model", "load_transfer", "make_transfer", "plain", "settled_images"]


def plain(obj: Any) -> Any:
    """`obj` with numpy/torch scalars turned into Python ones, for JSON.

    Args:
        obj: nested dicts, lists and tuples of scalars.

    Returns:
        The same structure with plain Python scalars (dict keys as strings).
    """
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


def make_transfer(source: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float],
                  *, n_examples: int, subset_seed: int, settings: dict[str, Any],
                  device: torch.device | str | None = None) -> dict[str, Any]:
    """Cross-entropy PGD crafted on a naturally trained `source` model for the shared subset's
    first `n_examples` test images, once per ε: what :func:`load_transfer` reads back.

    Args:
        source: the source classifier.
        x, y: the whole test set.
        eps_list: the radii to craft at.
        n_examples, subset_seed: the shared subset (robustness.n_examples / subset_seed).
        settings: the suite's settings (robustness.suite).
        device: where to compute.

    Returns:
        ``{"index", "labels", "adversarial": {ε: tensor}}`` (CPU tensors).
    """
    index = eval_subset(len(x), n_examples, subset_seed)
    advs = craft_transfer(source, x[index], y[index], [float(e) for e in eps_list],
                          settings=suite_settings(settings), device=device)
    return {"index": index, "labels": y[index].clone(),
            "adversarial": {float(e): a.detach().cpu() for e, a in advs.items()}}


def load_transfer(obj: dict[str, Any], index: torch.Tensor, y: torch.Tensor,
                  eps: float, where: str = "transfer file") -> dict[float, torch.Tensor] | None:
    """The transfer adversarials at `eps` for the images `index` (labels `y`).

    Args:
        obj: what :func:`make_transfer` returned (read back from its file).
        index, y: the model's subset and its labels.
        eps: the radius wanted.
        where: the file's name, for the error.

    Returns:
        ``{eps: adversarial tensor}``, or None if the file has no entry at `eps`.

    Raises:
        ValueError: the file was crafted on other images than `index`.
    """
    if not torch.equal(obj["index"], index.cpu()) or not torch.equal(obj["labels"], y.cpu()):
        raise ValueError(f"{where} was crafted on other test images than this model's subset "
                         "(robustness.subset_seed / n_examples changed, or another test set)")
    for e, adv in obj["adversarial"].items():
        if math.isclose(e, eps, rel_tol=1e-9):
            return {float(eps): adv}
    return None


def settled_images(study: pd.DataFrame | None, index: torch.Tensor, eps: float) -> torch.Tensor:
    """(N,) bool over ``index``: the images the suite's survivor stages can leave alone,
    because a study's attack at ``eps`` broke them, or because some study attack at ``eps``
    has no row for them (the worst case covers only the images every attack covers).

    Args:
        study: the studies' outcome rows of the model (:func:`read_outcomes`), or None.
        index: (N,) test-set indices of the suite's images.
        eps: the radius.

    Returns:
        (N,) bool CPU tensor, True where the survivor stages may skip the image.
    """
    skip = torch.zeros(len(index), dtype=torch.bool)
    if study is None or study.empty:
        return skip
    images = worst_case_images(study, eps)
    if images.empty:
        return skip
    common = set(images["index"].tolist())
    broken = set(images.loc[(images["correct"] == 1) & (images["robust"] == 0), "index"])
    for i, k in enumerate(index.tolist()):
        skip[i] = k not in common or k in broken
    return skip


CASCADE_STAGES = {"apgd-ce": "apgd_ce", "apgd-t": "apgd_t", "fab-t": "fab_t",
                  "square": "square"}
"""The standard AutoAttack cascade's stage names in a study's rows
(:func:`curvrobust.attacks.autoattack.cascade_outcomes`) -> the suite's stage they stand for."""


def adopted_cascade(study: pd.DataFrame | None, index: torch.Tensor, eps: float
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The suite stages' outcomes a study's standard AutoAttack cascade already gives: for
    each stage, the images every one of the study's four stages attacked at ``eps`` and none
    broke (its survivors), with that stage's final margin
    (:func:`curvrobust.evaluation.masking.robust_suite`'s ``adopted``). Use it only where the study's
    counts are at least the suite's (the plan's ``study_cascade``).

    Args:
        study: the studies' outcome rows of the model (:func:`read_outcomes`), or None.
        index: (N,) test-set indices of the suite's images.
        eps: the radius.

    Returns:
        {suite stage: ((N,) bool mask, (N,) float64 margins)}; empty if the rows lack a stage.

    Raises:
        ValueError: several rows of one stage for an image (outcomes of several runs mixed).
    """
    if study is None or study.empty:
        return {}
    rows = {name: rows_at(study, name, eps) for name in CASCADE_STAGES}
    if any(r is None for r in rows.values()):
        return {}
    keys = index.tolist()
    rows = {name: r.set_index("index").reindex(keys) for name, r in rows.items()}
    held = np.logical_and.reduce([(r["attacked"].to_numpy() == 1) & (r["success"].to_numpy() == 0)
                                  for r in rows.values()])
    mask = torch.from_numpy(held)
    return {CASCADE_STAGES[name]: (mask, torch.from_numpy(
        np.where(held, r["margin"].to_numpy(float), 0.0))) for name, r in rows.items()}


def _logged_validity(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor,
                     validity: dict[str, float], log: Callable[[str], None]) -> dict[str, Any]:
    """The model's validity gate on the whole test set, logged."""
    valid = model_validity(model, x_test, y_test, **validity)
    log(f"validity: natural accuracy {valid['natural_accuracy']:.4f}, largest class share "
        f"{valid['max_class_share']:.3f}" + (f" — DEGENERATE: {valid['reason']}"
                                             if valid["degenerate"] else ""))
    return valid


def _left_to_studies(study: pd.DataFrame | None, index: torch.Tensor, eps: float,
                     study_cascade: bool, log: Callable[[str], None]
                     ) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """What the studies' own attacks settle (logged): the images the suite's survivor stages
    skip, and the study cascade's outcomes adopted for them (``study_cascade`` records)."""
    n = len(index)
    skip = settled_images(study, index, eps)
    if int(skip.sum()):
        log(f"{int(skip.sum())} of {n} images left to the studies' attacks (broken by them, or "
            "outside the images they all cover)")
    adopted = adopted_cascade(study, index, eps) if study_cascade else {}
    if adopted:
        log(f"{int(next(iter(adopted.values()))[0].sum())} of {n} images survived a study's "
            "standard AutoAttack cascade (at least the suite's counts): its outcomes stand "
            "for the suite's AutoAttack stages there")
    return skip, adopted


def _logged_worst_cases(both: pd.DataFrame, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """The worst case over the suite's and the studies' attacks at every ε, logged."""
    worst = []
    for e in sorted(both["eps"].unique()):
        w = dict(eps=float(e), **worst_case(both, float(e)))
        worst.append(w)
        log(f"worst case at eps={e:g}: robust accuracy {w['robust_accuracy']:.4f} on {w['n']} "
            f"images over {w['attacks']}" + ("" if w["complete"] else " (incomplete)"))
    return worst


def evaluate_model(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor, *,
                   record: dict[str, Any], settings: dict[str, Any], subset: dict[str, int],
                   limits: dict[str, int], validity: dict[str, float],
                   attack_files: Sequence[str] = (), transfer: dict[str, Any] | None = None,
                   device: torch.device | str | None = None,
                   log: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Everything rule ``evaluate_robustness`` computes for one model.

    Args:
        model: the classifier (logits), any device.
        x_test, y_test: the whole test set (validity is measured on all of it).
        record: the model's plan record (dataset, variant, recipe, seed, ckpt, study, label,
            ``eps`` its headline radius, ``large_eps``).
        settings: the suite's settings (``robustness.suite``).
        subset: ``{"seed", "n_default"}``: the shared subset and its size.
        limits: the checks' limits in images (``robustness.limits``).
        validity: ``{"min_accuracy", "max_class_share"}`` of the model's dataset.
        attack_files: per-image outcome files of the attacks the studies ran on this model.
        transfer: the loaded transfer file of the dataset, or None.
        device: where to compute.
        log: progress lines.

    Returns:
        The suite's per-image outcome rows and the summary dict (record, validity, probe,
        checks, worst case per ε, flags).
    """
    eps = float(record["eps"])
    large_eps = record.get("large_eps")
    if device is not None:
        model.to(device)
    valid = _logged_validity(model, x_test, y_test, validity, log)
    n = int(subset["n_default"])
    if n > len(x_test):
        raise ValueError(f"robustness.n_examples = {n} exceeds the {len(x_test)} test images")
    index = eval_subset(len(x_test), n, int(subset["seed"]))
    x, y = x_test[index], y_test[index]
    adv = None
    if transfer is not None:
        adv = load_transfer(transfer, index, y, eps)
    study = read_outcomes(list(attack_files)) if attack_files else None
    skip, adopted = _left_to_studies(study, index, eps, bool(record.get("study_cascade")), log)
    rows = robust_suite(model, x, y, index, eps, large_eps=large_eps,
                        settings=suite_settings(settings), transfer=adv, skip=skip,
                        adopted=adopted, device=device, log=log)
    outcomes = pd.DataFrame(rows, columns=OUTCOME_COLUMNS)
    probe = gradient_probe(model, x, y)
    checks = masking_checks(outcomes, probe, eps, large_eps, check_limits(limits))
    failed = failed_checks(checks)
    log("checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    both = outcomes if study is None else pd.concat([outcomes, study], ignore_index=True)
    worst = _logged_worst_cases(both, log)
    summary = dict(
        record={k: v for k, v in record.items() if k != "attacks"},
        eps=eps, large_eps=large_eps, n_examples=n, subset_seed=int(subset["seed"]),
        validity=valid, probe=probe, checks=checks, failed_checks=failed,
        flags=flags_by_kind(checks),
        worst_case=worst, settings=suite_settings(settings),
    )
    return outcomes, plain(summary)
