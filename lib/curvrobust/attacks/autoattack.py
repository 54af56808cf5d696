"""AutoAttack-style robust evaluation (Croce & Hein 2020) at the official attack budgets.

The "standard" L∞ AutoAttack is a cascade of four attacks, each run only on the points that
are still robust after the ones before it:

* APGD-CE: auto-step-size PGD on cross-entropy (100 iterations, 1 restart, ρ = 0.75);
* APGD-T: APGD on the targeted DLR loss (100 iterations, 9 target classes, 1 restart);
* FAB-T: targeted minimum-norm FAB (100 iterations, 9 target classes);
* Square: score-based random search (5000 queries, p_init = 0.8).

The attacks are torchattacks 3.5.1's. Its own ``torchattacks.AutoAttack`` leaves APGD, APGD-T
and FAB at their 10-step defaults, so :func:`autoattack_eval` builds the cascade itself with
the official counts. torchattacks reseeds the global RNG inside every attack call; the whole
evaluation therefore runs in a forked RNG seeded from ``seed`` (:func:`forked_rng`): the same
seed gives the same result on the CPU, and the caller's RNG state is left as it was. The Square
stage is built by :func:`square_linf`, as is the registered ``square`` attack
(:func:`curvrobust.attacks.random_search`). With ``per_image=True`` the evaluation also says which
stage broke each image; :func:`cascade_outcomes` turns that into per-image outcome rows
(:data:`curvrobust.attacks.OUTCOME_COLUMNS`), one per stage.

:func:`subset_indices` draws the shared evaluation subsets
(:func:`curvrobust.data.subsets.eval_subset`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from curvrobust.attacks.base import check_int
from curvrobust.models.inference import decision_margin, eval_mode, model_device
from curvrobust.attacks.random_search import forked_rng, square_linf
from curvrobust.data.subsets import subset_indices

AA_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")

_LINF_TOLERANCE = 1e-5



def _describe(attacks: Sequence[str], apgd_steps: int, fab_steps: int, square_queries: int,
              n_target_classes: int, n_restarts: int) -> str:
    restarts = f"{n_restarts} restart{'s' if n_restarts != 1 else ''}"
    extra = f", {restarts}" if n_restarts != 1 else ""
    parts = {
        "apgd-ce": f"APGD-CE ({apgd_steps} it., {restarts})",
        "apgd-t": f"APGD-T ({apgd_steps} it., {n_target_classes} targets{extra})",
        "fab-t": f"FAB-T ({fab_steps} it., {n_target_classes} targets{extra})",
        "square": f"Square ({square_queries} queries)",
    }
    return " → ".join(parts[a] for a in attacks)


def build_stage(name: str, model: nn.Module, eps: float, *, apgd_steps: int, fab_steps: int,
           square_queries: int, n_target_classes: int, n_restarts: int, n_classes: int,
           seed: int) -> Any:
    """One stage of the cascade, ``name`` in :data:`AA_ATTACKS`, built as torchattacks 3.5.1's
    attack with these counts (call it inside :func:`forked_rng`: it reseeds the global RNG);
    the gradient-masking suite (:func:`curvrobust.evaluation.masking.robust_suite`) builds its AutoAttack
    stages here too.

    Args:
        name: the stage.
        model: the classifier (logits).
        eps: L∞ radius.
        apgd_steps, fab_steps, square_queries, n_target_classes, n_restarts: the counts.
        n_classes: logits the model outputs.
        seed: the attack's seed.

    Returns:
        The torchattacks attack; ``atk(x, y)`` returns adversarial inputs.
    """
    import torchattacks

    if name == "apgd-ce":
        return torchattacks.APGD(model, norm="Linf", eps=eps, steps=apgd_steps,
                                 n_restarts=n_restarts, seed=seed, loss="ce", rho=0.75)
    if name == "apgd-t":
        atk = torchattacks.APGDT(model, norm="Linf", eps=eps, steps=apgd_steps,
                                 n_restarts=n_restarts, seed=seed, rho=0.75,
                                 n_classes=n_classes)
        atk.n_target_classes = n_target_classes  # the constructor sets n_classes - 1
        return atk
    if name == "fab-t":
        atk = torchattacks.FAB(model, norm="Linf", eps=eps, steps=fab_steps,
                               n_restarts=n_restarts, multi_targeted=True, n_classes=n_classes,
                               seed=seed)
        atk.n_target_classes = n_target_classes
        return atk
    if name == "square":
        return square_linf(model, eps, queries=square_queries, p_init=0.8, seed=seed)
    raise AssertionError(name)  # names are checked before


@torch.no_grad()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
             ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-example correctness and decision margin, and the number of logits the model
    outputs."""
    out, margins, width = [], [], 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        width = logits.shape[1]
        out.append(logits.argmax(1) == y[i:i + batch_size])
        margins.append(decision_margin(logits, y[i:i + batch_size]))
    return torch.cat(out), torch.cat(margins), width


def check_adversarial(name: str, adv: torch.Tensor, x: torch.Tensor, eps: float) -> None:
    """RuntimeError unless ``adv`` has ``x``'s shape, lies within ε of it in L∞ and in [0, 1].

    Args:
        name: the attack, for the message.
        adv: adversarial inputs.
        x: their clean inputs.
        eps: the radius.

    Returns:
        None.
    """
    if adv.shape != x.shape:
        raise RuntimeError(f"{name} returned shape {tuple(adv.shape)} for inputs "
                           f"{tuple(x.shape)}")
    dist = (adv - x).abs().flatten(1).amax(1).max().item() if len(x) else 0.0
    if not dist <= eps + _LINF_TOLERANCE:
        raise RuntimeError(f"{name} returned a perturbation of L∞ norm {dist:.6g} > "
                           f"eps={eps:.6g}")
    lo, hi = adv.min().item(), adv.max().item()
    if not (lo >= 0.0 and hi <= 1.0):
        raise RuntimeError(f"{name} returned inputs outside [0, 1]: range [{lo:.6g}, {hi:.6g}]")


def autoattack_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    attacks: Sequence[str] = AA_ATTACKS, apgd_steps: int = 100,
                    fab_steps: int = 100, square_queries: int = 5000,
                    n_target_classes: int = 9, n_restarts: int = 1, n_classes: int = 10,
                    seed: int = 0, batch_size: int = 500,
                    log: Callable[[str], None] | None = None,
                    per_image: bool = False) -> dict[str, Any]:
    """Robust accuracy of ``model`` on (x, y) in [0, 1] under the L∞ AutoAttack cascade.

    Only clean-correct points are attacked, and each attack only those still robust after
    the previous ones; a point is robust while it stays correctly classified. The model runs
    in eval mode (its modes are restored afterwards), on its own device.

    Returns ``n``, ``eps``, ``clean_acc``, ``<attack>_acc`` for each attack in order (the
    robust accuracy after the cascade up to it, hence non-increasing), ``aa_acc`` (the final
    one), ``attacks`` (what ran, with its counts) and ``time_s``. With ``per_image``, also
    ``stages`` (the tuple ``attacks``) and three CPU tensors: ``clean_correct`` ((N,) bool),
    ``broken_by`` ((N,) int64: the position in ``stages`` of the attack that broke the image,
    −1 if none did or it was misclassified to begin with) and ``margins`` ((len(stages), N)
    float64: the decision margin of each stage's adversarial input for the images it attacked,
    the clean margin for the others); :func:`cascade_outcomes` makes outcome rows of them.

    Args:
        model: classifier mapping (N, C, H, W) inputs to (N, n_classes) logits.
        x: (N, C, H, W) inputs in [0, 1], N >= 1.
        y: (N,) long labels.
        eps: L∞ radius ε > 0.
        attacks: the cascade, a non-empty ordered subset of :data:`AA_ATTACKS`.
        apgd_steps, fab_steps, square_queries: iterations / queries of the attacks.
        n_target_classes: targets of APGD-T and FAB-T, < ``n_classes``.
        n_restarts: restarts of APGD-CE, APGD-T and FAB-T.
        n_classes: number of logits the model outputs.
        seed: seed of the forked RNG (and of every torchattacks attack).
        batch_size: examples per attack call, >= 1.
        log: called with one progress line at a time.
        per_image: also return the per-image results (see above).

    Returns:
        The dict described above.
    """
    eps_f, attacks, counts, n_classes, batch_size = _check_cascade(
        eps, attacks, x, y, apgd_steps=apgd_steps, fab_steps=fab_steps,
        square_queries=square_queries, n_target_classes=n_target_classes,
        n_restarts=n_restarts, n_classes=n_classes, batch_size=batch_size)
    start = time.perf_counter()
    device = model_device(model)
    x, y = x.detach().to(device), y.detach().to(device)
    n = len(x)
    result: dict[str, Any] = dict(n=n, eps=eps_f)
    with eval_mode(model), forked_rng(seed):
        clean_correct, robust, broken_by, margins = _run_cascade(
            model, x, y, eps_f, attacks, counts, n_classes, int(seed), batch_size, log, result)
    result["aa_acc"] = int(robust.sum()) / n
    result["attacks"] = _describe(attacks, **counts)
    result["time_s"] = time.perf_counter() - start
    if per_image:
        result.update(stages=attacks, clean_correct=clean_correct.cpu(),
                      broken_by=broken_by.cpu(), margins=margins.cpu())
    return result


def _check_cascade(eps: float, attacks: Sequence[str], x: torch.Tensor, y: torch.Tensor, *,
                   apgd_steps: int, fab_steps: int, square_queries: int, n_target_classes: int,
                   n_restarts: int, n_classes: int, batch_size: int
                   ) -> tuple[float, tuple[str, ...], dict[str, int], int, int]:
    """:func:`autoattack_eval`'s arguments checked: ε, the cascade, the counts (keyword
    arguments of :func:`build_stage`), the number of classes, the batch size."""
    eps_f = float(eps)
    if not (math.isfinite(eps_f) and eps_f > 0.0):
        raise ValueError(f"eps must be a positive finite number, got eps={eps!r}")
    attacks = tuple(attacks)
    unknown = [a for a in attacks if a not in AA_ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(AA_ATTACKS)}")
    if not attacks or len(set(attacks)) != len(attacks):
        raise ValueError(f"attacks must name each attack at most once and at least one, got "
                         f"{attacks!r}")
    counts = dict(apgd_steps=check_int("apgd_steps", apgd_steps, 1),
                  fab_steps=check_int("fab_steps", fab_steps, 1),
                  square_queries=check_int("square_queries", square_queries, 1),
                  n_target_classes=check_int("n_target_classes", n_target_classes, 1),
                  n_restarts=check_int("n_restarts", n_restarts, 1))
    n_classes = check_int("n_classes", n_classes, 2)
    batch_size = check_int("batch_size", batch_size, 1)
    if n_target_classes >= n_classes:
        raise ValueError(f"n_target_classes must be < n_classes={n_classes} (the targets are "
                         f"the other classes), got n_target_classes={n_target_classes}")
    if "apgd-t" in attacks and n_classes < 4:
        raise ValueError(f"apgd-t's DLR loss needs n_classes >= 4, got n_classes={n_classes}")
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) batch with N labels y, got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    if x.min().item() < 0.0 or x.max().item() > 1.0:
        raise ValueError(f"x must lie in [0, 1] (torchattacks' data range), got "
                         f"[{x.min().item():.6g}, {x.max().item():.6g}]")
    return eps_f, attacks, counts, n_classes, batch_size


def _run_cascade(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                 attacks: tuple[str, ...], counts: dict[str, int], n_classes: int, seed: int,
                 batch_size: int, log: Callable[[str], None] | None, result: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The cascade itself (in the caller's forked RNG): each stage on the images still
    robust, the accuracies into ``result``. Returns the clean-correct and still-robust masks,
    the breaking stage per image and the (stages, N) margins."""
    n = len(x)
    robust, clean_margin, width = _correct(model, x, y, batch_size)
    if width != n_classes:
        raise ValueError(f"the model outputs {width} logits but n_classes={n_classes}")
    clean_correct = robust.clone()
    broken_by = torch.full((n,), -1, dtype=torch.long, device=model_device(model))
    margins = clean_margin.double().expand(len(attacks), n).clone()
    result["clean_acc"] = int(robust.sum()) / n
    if log is not None:
        log(f"autoattack eps={eps:.6g}: clean {int(robust.sum())}/{n}")
    for stage, name in enumerate(attacks):
        t0 = time.perf_counter()
        atk = build_stage(name, model, eps, n_classes=n_classes, seed=seed, **counts)
        todo = robust.nonzero().flatten()
        for idx in todo.split(batch_size) if len(todo) else ():
            xb, yb = x[idx], y[idx]
            adv = atk(xb, yb).detach()
            check_adversarial(name, adv, xb, eps)
            still, margin, _ = _correct(model, adv, yb, batch_size)
            robust[idx[~still]] = False
            broken_by[idx[~still]] = stage
            margins[stage, idx] = margin.double()
        result[f"{name}_acc"] = int(robust.sum()) / n
        if log is not None:
            log(f"autoattack eps={eps:.6g}: after {name} robust {int(robust.sum())}/{n} "
                f"({time.perf_counter() - t0:.1f} s)")
    return clean_correct, robust, broken_by, margins


def cascade_outcomes(result: dict[str, Any], index: torch.Tensor | Sequence[int],
                     y: torch.Tensor | Sequence[int]) -> list[dict[str, Any]]:
    """Per-image outcome rows (:data:`curvrobust.attacks.OUTCOME_COLUMNS`) of an AutoAttack
    cascade, one row per stage and image.

    A stage's ``attack`` is its name (e.g. ``"apgd-t"``); it attacked the clean-correct images
    not broken by an earlier stage; ``success`` = it broke the image; ``margin`` is that of its
    adversarial input where it attacked, else the clean margin.

    Args:
        result: :func:`autoattack_eval`'s dict, computed with ``per_image=True``.
        index: (N,) test-set indices of the evaluated images.
        y: (N,) their labels.

    Returns:
        A list of dicts, stage by stage (cascade order), image by image.
    """
    if "broken_by" not in result:
        raise ValueError("result has no per-image results: run autoattack_eval with "
                         "per_image=True")
    index = torch.as_tensor(index).flatten().tolist()
    labels = torch.as_tensor(y).flatten().tolist()
    correct = result["clean_correct"].int().tolist()
    broken_by = result["broken_by"].tolist()
    if not len(index) == len(labels) == len(correct):
        raise ValueError(f"index and y must have one entry per evaluated image "
                         f"({len(correct)}), got {len(index)} and {len(labels)}")
    rows = []
    for stage, name in enumerate(result["stages"]):
        for idx, label, ok, by, m in zip(index, labels, correct, broken_by,
                                         result["margins"][stage].tolist()):
            attacked = int(ok == 1 and (by == -1 or by >= stage))
            rows.append({"attack": name, "eps": result["eps"], "index": idx, "label": label,
                         "correct": ok, "attacked": attacked, "success": int(by == stage),
                         "margin": m})
    return rows
