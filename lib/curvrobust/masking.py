"""Gradient-masking checks: is a model's low attack success real robustness, or did the attack
fail because the model hides its gradients?

A model can look robust because its gradients are useless to an attacker rather than because
no adversarial input exists (Athalye et al. 2018; Carlini et al. 2019, "On evaluating
adversarial robustness"). The usual symptoms, each a check of :func:`masking_checks`:

* ``fgsm_only``: images broken by one FGSM step but by none of the iterative attacks
  (iterating should only help);
* ``margin_only``: images broken by margin-loss PGD but not by cross-entropy PGD (the float32
  cross-entropy gradient vanishes once p_y rounds to 1);
* ``steps_restarts``: doubling PGD's steps, or adding random starts, changes robust accuracy
  (the attack had not converged, or its start decides the outcome);
* ``square_only`` / ``transfer_only``: images broken by the black-box Square attack, or by
  PGD crafted on another model, but by no white-box attack (the gradient misleads);
* ``large_eps``: robust accuracy stays high at a radius where every image can be destroyed,
  or does not fall from ε to it;
* ``zero_grad``: images whose input gradient is zero or non-finite;
* ``probabilities``: the model outputs probabilities, not logits (softmax saturates).

:func:`robust_suite` runs the attacks the checks compare and returns per-image outcome rows
(the columns of :mod:`curvrobust.robust`); :func:`gradient_probe` measures the gradients and
outputs; :func:`masking_checks` turns both into one verdict per check. :func:`model_validity`
is the gate in front of all of it: a model with low natural accuracy or one dominant
prediction is degenerate, whatever its "robust accuracy".
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attackbase import check_int
from .attacks import ce_loss, cw, fgsm, get_attack, linf_ascent_steps, pgd
from .inference import decision_margin, eval_mode, model_device

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MASKING_CHECKS", "SUITE_ATTACKS", "WHITE_BOX_ATTACKS", "SUITE_DEFAULTS",
           "THRESHOLD_DEFAULTS", "craft_transfer", "failed_checks", "gradient_probe",
           "masking_checks", "model_validity", "robust_suite", "suite_settings"]

MASKING_CHECKS = ("fgsm_only", "margin_only", "steps_restarts", "square_only", "transfer_only",
                  "large_eps", "zero_grad", "probabilities")
"""The checks of :func:`masking_checks`, in report order."""

SUITE_ATTACKS = ("fgsm", "pgd_ce", "pgd_margin", "pgd_ce_2x", "pgd_ce_restarts", "square",
                 "transfer")
"""The attacks of :func:`robust_suite` (the ``attack`` column of its rows), in run order."""

WHITE_BOX_ATTACKS = SUITE_ATTACKS[:5]
"""The suite's gradient-based attacks; Square and transfer run only where all of them fail."""

SUITE_DEFAULTS: dict[str, Any] = {"pgd_steps": 50, "pgd_step_factor": 2.5, "restarts": 2,
                                  "square_queries": 1000, "square_p_init": 0.8, "seed": 0,
                                  "batch_size": 500}
"""Default attack settings of the suite (config ``robustness.suite``)."""

THRESHOLD_DEFAULTS: dict[str, float] = {"fgsm_only": 0.01, "margin_only": 0.01,
                                        "steps_restarts": 0.01, "square_only": 0.01,
                                        "transfer_only": 0.01, "large_eps": 0.15,
                                        "zero_grad": 0.01}
"""Default thresholds of the checks (config ``robustness.thresholds``); ``probabilities``
has none (it fails whenever the outputs are probabilities)."""

_EPS_RTOL = 1e-9          # matching ε read back from a CSV
_LINF_TOLERANCE = 1e-5    # a transfer adversarial's distance from its clean image


# --------------------------------------------------------------------------- settings

def suite_settings(cfg_block: dict[str, Any] | None = None) -> dict[str, Any]:
    """The suite's attack settings: :data:`SUITE_DEFAULTS` overridden by ``cfg_block``.

    PGD (cross entropy and margin loss) takes ``pgd_steps`` steps of
    ``pgd_step_factor``·ε/``pgd_steps`` from a random start, so its path can cross the ball
    ``pgd_step_factor``/2 times; ``restarts`` is the number of random starts of
    ``pgd_ce_restarts`` (the first is the plain ``pgd_ce`` run). Keys of the block that are not
    settings (``enabled``, ...) are ignored; the function is idempotent.

    Args:
        cfg_block: the config block (``robustness.suite``), or None for the defaults.

    Returns:
        A new dict with exactly the keys of :data:`SUITE_DEFAULTS`, checked.

    Raises:
        ValueError: a setting out of range, naming it.
    """
    block = dict(cfg_block or {})
    s = {k: block.get(k, v) for k, v in SUITE_DEFAULTS.items()}
    for name in ("pgd_steps", "restarts", "square_queries", "batch_size"):
        s[name] = check_int(name, s[name], 1)
    s["seed"] = check_int("seed", s["seed"], 0)
    factor = float(s["pgd_step_factor"])
    if not (factor > 0.0 and math.isfinite(factor)):
        raise ValueError(f"pgd_step_factor must be > 0 and finite, got {s['pgd_step_factor']!r}")
    s["pgd_step_factor"] = factor
    p_init = float(s["square_p_init"])
    if not 0.0 < p_init <= 1.0:
        raise ValueError(f"square_p_init must be in (0, 1], got {s['square_p_init']!r}")
    s["square_p_init"] = p_init
    return s


def _positive_eps(name: str, value: Any) -> float:
    v = float(value)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a positive finite radius, got {name}={value!r}")
    return v


# --------------------------------------------------------------------------- the suite

def _check_batch(x: torch.Tensor, y: torch.Tensor) -> int:
    """N of a non-empty batch x with N labels y; a ValueError otherwise."""
    n = len(x)
    if n == 0 or y.shape != (n,):
        raise ValueError(f"x must be a non-empty batch with N labels y, got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    return n


class _Outcome:
    """One attack at one ε over the suite's images: what ran where, and what it did."""

    def __init__(self, name: str, eps: float, clean_margin: torch.Tensor) -> None:
        self.name, self.eps = name, eps
        n = len(clean_margin)
        self.attacked = torch.zeros(n, dtype=torch.bool)
        self.success = torch.zeros(n, dtype=torch.bool)
        self.margin = clean_margin.clone()  # float64

    def record(self, idx: torch.Tensor, fooled: torch.Tensor, margin: torch.Tensor) -> None:
        self.attacked[idx] = True
        self.success[idx] = fooled
        self.margin[idx] = margin


@torch.no_grad()
def _judge(model: nn.Module, adv: torch.Tensor, y: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(misclassified, decision margin in float64) of ``adv``, on the CPU."""
    logits = model(adv)
    return (logits.argmax(1) != y).cpu(), decision_margin(logits, y).cpu().double()


def robust_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 index: torch.Tensor | Sequence[int], eps: float, *,
                 large_eps: float | None = None, settings: dict[str, Any] | None = None,
                 transfer: dict[float, torch.Tensor] | None = None,
                 device: str | torch.device | None = None,
                 log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Per-image outcome rows of the gradient-masking suite at ``eps`` (and ``pgd_ce`` at
    ``large_eps``).

    Attacks (the ``attack`` column), each on the clean-correct images:

    * ``fgsm``: :func:`curvrobust.attacks.fgsm`;
    * ``pgd_ce``: cross-entropy PGD, ``pgd_steps`` steps of ``pgd_step_factor``·ε/``pgd_steps``
      from a uniform random start (one generator seeded with ``seed``, drawn batch by batch);
    * ``pgd_margin``: the same on the C&W margin loss (:func:`curvrobust.attacks.cw`,
      κ = 0), from the same random starts;
    * ``pgd_ce_2x``: each ``pgd_ce`` iterate continued for ``pgd_steps`` more steps of the
      same size, judged at the final iterate (= PGD with twice the steps from the same start);
    * ``pgd_ce_restarts``: ``pgd_ce`` plus ``restarts`` − 1 further random starts (drawn from
      the same generator, on the images still unbroken); broken if any start breaks it;
    * ``square``: torchattacks' Square (``square_queries`` queries, ``square_p_init``), and
      ``transfer``: ``transfer[eps]`` — both only on the images that survive every white-box
      attack above (elsewhere they cannot change the worst case; their rows there have
      attacked = 0);
    * ``pgd_ce`` at ``large_eps`` (rows with ``eps = large_eps``), with steps scaled to it.

    The model runs in eval mode (its modes are restored), on its own device or ``device``.

    Args:
        model: classifier mapping (N, C, H, W) inputs in [0, 1] to (N, K) logits.
        x: (N, C, H, W) inputs in [0, 1] (any device; moved batch by batch).
        y: (N,) long labels.
        index: (N,) test-set indices of the images (the ``index`` column).
        eps: the L∞ radius ε > 0.
        large_eps: a radius > ε where every image can be destroyed, or None (no such rows).
        settings: the suite's settings (:func:`suite_settings`; None: defaults).
        transfer: {ε: (N, C, H, W) adversarial inputs for the same images}, crafted on another
            model (:func:`craft_transfer`), or None: no transfer rows.
        device: where to compute (the model is moved there with ``model.to``).
        log: called with one progress line per attack (time, successes).

    Returns:
        One dict per image and attack, attacks in the order above, images in input order,
        with the columns ``attack, eps, index, label, correct, attacked, success, margin``
        (``margin``: z_y − max_{j≠y} z_j of the final input, the clean one where not
        attacked).

    Raises:
        ValueError: bad radii, shapes, inputs outside [0, 1], or a transfer tensor of the wrong
            shape, without an entry at ``eps``, or farther than ε from its clean image.
    """
    s = suite_settings(settings)
    eps = _positive_eps("eps", eps)
    if large_eps is not None:
        large_eps = _positive_eps("large_eps", large_eps)
        if not large_eps > eps:
            raise ValueError(f"large_eps must exceed eps={eps:g}, got large_eps={large_eps:g}")
    index = torch.as_tensor(index, dtype=torch.long).flatten().cpu()
    n = len(x)
    if x.ndim != 4 or y.shape != (n,) or len(index) != n or n == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) batch with N labels y and N "
                         f"indices, got x {tuple(x.shape)}, y {tuple(y.shape)}, index "
                         f"{tuple(index.shape)}")
    if x.min().item() < 0.0 or x.max().item() > 1.0:
        raise ValueError(f"x must lie in [0, 1], got [{x.min().item():.6g}, "
                         f"{x.max().item():.6g}]")
    adv_transfer = None
    if transfer is not None:
        adv_transfer = _transfer_at(transfer, eps, x)
    if device is not None:
        model.to(device)
    dev = model_device(model)
    x = x.detach()
    y = y.detach()
    bs, steps = s["batch_size"], s["pgd_steps"]
    step = s["pgd_step_factor"] * eps / steps
    results: list[_Outcome] = []

    with eval_mode(model):
        correct = torch.zeros(n, dtype=torch.bool)
        clean_margin = torch.zeros(n, dtype=torch.float64)
        for i in range(0, n, bs):
            xb, yb = x[i:i + bs].to(dev), y[i:i + bs].to(dev)
            wrong, margin = _judge(model, xb, yb)
            correct[i:i + bs], clean_margin[i:i + bs] = ~wrong, margin
        todo = correct.nonzero().flatten()
        batches = todo.split(bs) if len(todo) else ()

        def run(name: str, e: float, attack: Callable[[torch.Tensor, torch.Tensor,
                                                       torch.Tensor], torch.Tensor],
                parts: Sequence[torch.Tensor] = batches,
                keep: list[torch.Tensor] | None = None) -> _Outcome:
            """Run ``attack(xb, yb, idx)`` on each batch of indices; record and log it."""
            t0 = time.perf_counter()
            out = _Outcome(name, e, clean_margin)
            for idx in parts:
                xb, yb = x[idx].to(dev), y[idx].to(dev)
                adv = attack(xb, yb, idx)
                fooled, margin = _judge(model, adv, yb)
                out.record(idx, fooled, margin)
                if keep is not None:
                    keep.append(adv)
            results.append(out)
            if log is not None:
                log(f"masking suite eps={e:g}: {name} broke {int(out.success.sum())} of "
                    f"{int(out.attacked.sum())} attacked ({int(correct.sum())}/{n} correct; "
                    f"{time.perf_counter() - t0:.1f} s)")
            return out

        def pgd_ce(e: float, generator: torch.Generator) -> Callable[..., torch.Tensor]:
            return lambda xb, yb, idx: pgd(model, xb, yb, e, steps=steps,
                                           step_size=s["pgd_step_factor"] * e / steps,
                                           random_start=True, generator=generator)

        white: list[_Outcome] = [run("fgsm", eps, lambda xb, yb, idx: fgsm(model, xb, yb, eps))]
        gen = torch.Generator(device=dev).manual_seed(s["seed"])
        pgd_iterates: list[torch.Tensor] = []
        ce = run("pgd_ce", eps, pgd_ce(eps, gen), keep=pgd_iterates)
        white.append(ce)
        gen_margin = torch.Generator(device=dev).manual_seed(s["seed"])
        white.append(run("pgd_margin", eps, lambda xb, yb, idx: cw(
            model, xb, yb, eps, steps=steps, step_size=step, kappa=0.0, random_start=True,
            generator=gen_margin)))
        iterates = iter(pgd_iterates)
        white.append(run("pgd_ce_2x", eps, lambda xb, yb, idx: linf_ascent_steps(
            model, xb, next(iterates), yb, eps, ce_loss, steps, step)))
        pgd_iterates.clear()  # free the device memory

        # further random starts on what pgd_ce left unbroken; the first start is pgd_ce's
        t0 = time.perf_counter()
        restarts = _Outcome("pgd_ce_restarts", eps, clean_margin)
        restarts.attacked[:] = ce.attacked
        restarts.success[:] = ce.success
        restarts.margin[:] = ce.margin
        for _ in range(s["restarts"] - 1):
            left = (ce.attacked & ~restarts.success).nonzero().flatten()
            for idx in left.split(bs) if len(left) else ():
                xb, yb = x[idx].to(dev), y[idx].to(dev)
                fooled, margin = _judge(model, pgd_ce(eps, gen)(xb, yb, idx), yb)
                restarts.record(idx, fooled, margin)
        results.append(restarts)
        white.append(restarts)
        if log is not None:
            log(f"masking suite eps={eps:g}: pgd_ce_restarts ({s['restarts']} starts) broke "
                f"{int(restarts.success.sum())} of {int(restarts.attacked.sum())} attacked "
                f"({time.perf_counter() - t0:.1f} s)")

        broken = torch.zeros(n, dtype=torch.bool)
        for o in white:
            broken |= o.success
        survivors = (correct & ~broken).nonzero().flatten()
        left_parts = survivors.split(bs) if len(survivors) else ()
        square = get_attack("square")
        run("square", eps, lambda xb, yb, idx: square(
            model, xb, yb, eps, queries=s["square_queries"], p_init=s["square_p_init"],
            seed=s["seed"]), parts=left_parts)
        if adv_transfer is not None:
            run("transfer", eps, lambda xb, yb, idx: adv_transfer[idx].to(dev), parts=left_parts)
        if large_eps is not None:
            gen_large = torch.Generator(device=dev).manual_seed(s["seed"])
            run("pgd_ce", large_eps, pgd_ce(large_eps, gen_large))

    labels = y.cpu().tolist()
    indices = index.tolist()
    ok = correct.tolist()
    rows = []
    for o in results:
        for i, (att, suc, mar) in enumerate(zip(o.attacked.tolist(), o.success.tolist(),
                                                o.margin.tolist())):
            rows.append({"attack": o.name, "eps": o.eps, "index": indices[i],
                         "label": int(labels[i]), "correct": int(ok[i]), "attacked": int(att),
                         "success": int(suc), "margin": float(mar)})
    return rows


def _transfer_at(transfer: dict[float, torch.Tensor], eps: float,
                 x: torch.Tensor) -> torch.Tensor:
    """``transfer``'s adversarials at ``eps`` (on the CPU), checked against ``x``."""
    for e, adv in transfer.items():
        if math.isclose(float(e), eps, rel_tol=_EPS_RTOL):
            break
    else:
        raise ValueError(f"transfer has no adversarial inputs at eps={eps:g} (it has "
                         f"{sorted(float(e) for e in transfer)})")
    adv = adv.detach().cpu()
    if adv.shape != x.shape:
        raise ValueError(f"transfer[{eps:g}] has shape {tuple(adv.shape)}, x has "
                         f"{tuple(x.shape)}")
    dist = (adv - x.detach().cpu()).abs().max().item()
    if not dist <= eps + _LINF_TOLERANCE:
        raise ValueError(f"transfer[{eps:g}] lies {dist:.6g} > eps from x in L∞ (crafted for "
                         "other images or another radius?)")
    return adv


def craft_transfer(source_model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   eps_list: Sequence[float], *, settings: dict[str, Any] | None = None,
                   device: str | torch.device | None = None) -> dict[float, torch.Tensor]:
    """Transfer adversarials: the suite's cross-entropy PGD (:func:`robust_suite`'s
    ``pgd_ce``) crafted on ``source_model`` for every image, once per ε.

    Every image is attacked (also those the source misclassifies): the target model is
    another one. The source runs in eval mode (its modes are restored).

    Args:
        source_model: classifier (logits), e.g. a naturally trained model of the dataset.
        x: (N, C, H, W) inputs in [0, 1].
        y: (N,) long labels.
        eps_list: the radii ε > 0.
        settings: the suite's settings (:func:`suite_settings`; None: defaults).
        device: where to compute (the model is moved there with ``model.to``).

    Returns:
        {float(ε): detached (N, C, H, W) adversarial inputs on ``x``'s device, within ε of
        ``x`` in L∞ and in [0, 1]}.
    """
    s = suite_settings(settings)
    eps_list = [_positive_eps("eps", e) for e in eps_list]
    if x.ndim != 4 or y.shape != (len(x),):
        raise ValueError(f"x must be an (N, C, H, W) batch with N labels y, got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    if device is not None:
        source_model.to(device)
    dev = model_device(source_model)
    out: dict[float, torch.Tensor] = {}
    with eval_mode(source_model):
        for eps in eps_list:
            gen = torch.Generator(device=dev).manual_seed(s["seed"])
            parts = []
            for i in range(0, len(x), s["batch_size"]):
                xb = x[i:i + s["batch_size"]].detach().to(dev)
                yb = y[i:i + s["batch_size"]].detach().to(dev)
                parts.append(pgd(source_model, xb, yb, eps, steps=s["pgd_steps"],
                                 step_size=s["pgd_step_factor"] * eps / s["pgd_steps"],
                                 random_start=True, generator=gen).to(x.device))
            out[eps] = torch.cat(parts) if parts else x.detach().clone()
    return out


# --------------------------------------------------------------------------- probe and gate

def gradient_probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   batch_size: int = 500) -> dict[str, Any]:
    """What the model's outputs and input gradients look like, in the model's own precision.

    The gradient of an image is that of its own cross entropy (summed, not averaged, over the
    batch, so the batch size cannot make it underflow). Confidently classified images of a
    float32 model can have an exactly zero gradient (p_y rounds to 1 and the other
    probabilities to 0): gradient attacks then cannot move them.

    Args:
        model: classifier mapping (N, ...) inputs to (N, K) outputs; run in eval mode (its
            modes are restored), on its own device.
        x: (N, ...) inputs, N >= 1.
        y: (N,) long labels.
        batch_size: images per forward/backward pass.

    Returns:
        ``{"n", "zero_grad_share", "outputs_sum_to_one", "mean_output_row_sum"}``:
        the share of images whose input gradient is all zero or has a non-finite entry;
        whether every output row is non-negative and sums to 1 within 1e-4 (probabilities,
        not logits); the mean over images of the output row sums.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    n = _check_batch(x, y)
    dev = model_device(model)
    zero = 0
    sums_to_one = True
    row_sum = 0.0
    with eval_mode(model):
        for i in range(0, n, batch_size):
            xb = x[i:i + batch_size].detach().to(dev).requires_grad_(True)
            yb = y[i:i + batch_size].detach().to(dev)
            out = model(xb)
            (grad,) = torch.autograd.grad(F.cross_entropy(out, yb, reduction="sum"), xb)
            grad = grad.flatten(1)
            dead = (grad == 0).all(1) | ~torch.isfinite(grad).all(1)
            zero += int(dead.sum())
            out = out.detach()
            sums = out.sum(1)
            sums_to_one &= bool(((out >= 0).all(1) & ((sums - 1).abs() <= 1e-4)).all())
            row_sum += float(sums.double().sum())
    return {"n": n, "zero_grad_share": zero / n, "outputs_sum_to_one": sums_to_one,
            "mean_output_row_sum": row_sum / n}


@torch.no_grad()
def model_validity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, min_accuracy: float,
                   max_class_share: float = 0.5, batch_size: int = 1000) -> dict[str, Any]:
    """The validity gate: is the model a classifier at all, or degenerate?

    A model is degenerate when its natural accuracy is below ``min_accuracy`` or when it
    predicts one class for more than ``max_class_share`` of the images (on a balanced
    ten-class test set, 0.5 means "most images"); its robust accuracy means nothing.

    Args:
        model: classifier mapping (N, ...) inputs to (N, K) logits; run in eval mode (its
            modes are restored), on its own device.
        x: (N, ...) inputs, N >= 1 (the whole test set).
        y: (N,) long labels.
        min_accuracy: the lowest acceptable natural accuracy, in [0, 1].
        max_class_share: the largest acceptable share of one predicted class, in (0, 1].
        batch_size: images per forward pass.

    Returns:
        ``{"n", "natural_accuracy", "max_class_share", "majority_class", "degenerate",
        "reason"}``: the share of correct predictions, the share and label of the most
        predicted class, and ``reason`` ("" when valid, else the failed conditions in words).
    """
    min_accuracy = float(min_accuracy)
    if not 0.0 <= min_accuracy <= 1.0:
        raise ValueError(f"min_accuracy must be in [0, 1], got min_accuracy={min_accuracy!r}")
    limit = float(max_class_share)
    if not 0.0 < limit <= 1.0:
        raise ValueError(f"max_class_share must be in (0, 1], got "
                         f"max_class_share={max_class_share!r}")
    batch_size = check_int("batch_size", batch_size, 1)
    n = _check_batch(x, y)
    dev = model_device(model)
    preds = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            preds.append(model(x[i:i + batch_size].to(dev)).argmax(1).cpu())
    pred = torch.cat(preds)
    accuracy = float((pred == y.cpu()).double().mean())
    counts = torch.bincount(pred)
    majority = int(counts.argmax())
    share = float(counts[majority]) / n
    reasons = []
    if accuracy < min_accuracy:
        reasons.append(f"natural accuracy {100 * accuracy:.1f} % is below the minimum "
                       f"{100 * min_accuracy:.1f} %")
    if share > limit:
        reasons.append(f"predicts class {majority} for {100 * share:.1f} % of images "
                       f"(more than {100 * limit:.1f} %)")
    return {"n": n, "natural_accuracy": accuracy, "max_class_share": share,
            "majority_class": majority, "degenerate": bool(reasons),
            "reason": "; ".join(reasons)}


# --------------------------------------------------------------------------- the checks

def _rows_at(outcomes: pd.DataFrame, attack: str, eps: float) -> pd.DataFrame | None:
    """The rows of ``attack`` at ``eps`` (None if there are none); one per image."""
    close = np.isclose(outcomes["eps"].to_numpy(dtype=float), eps, rtol=_EPS_RTOL, atol=0.0)
    sel = outcomes[(outcomes["attack"] == attack).to_numpy() & close]
    if sel.empty:
        return None
    if sel["index"].duplicated().any():
        raise ValueError(f"outcomes has several rows per image for {attack} at eps={eps:g} "
                         "(outcomes of several models or runs mixed?)")
    return sel


def _broken(rows: pd.DataFrame) -> set[int]:
    return set(rows.loc[rows["success"].astype(int) == 1, "index"].astype(int))


def _accuracy(rows: pd.DataFrame) -> float:
    ok = (rows["correct"].astype(int) == 1) & (rows["success"].astype(int) == 0)
    return float(ok.mean())


def _share_check(name: str, threshold: float, rows: pd.DataFrame, attack: str,
                 others: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Share of images broken by ``attack`` (``rows``) but by none of ``others``."""
    rest: set[int] = set()
    for r in others.values():
        rest |= _broken(r)
    only = _broken(rows) - rest
    value = len(only) / len(rows)
    detail = (f"{len(only)} of {len(rows)} images ({100 * value:.1f} %) broken by {attack} "
              f"but by none of {', '.join(others) or '(no other attack)'}")
    return _verdict(name, value, threshold, value <= threshold, detail)


def _verdict(name: str, value: float, threshold: float, passed: bool,
             detail: str) -> dict[str, Any]:
    return {"check": name, "value": float(value), "threshold": float(threshold),
            "passed": bool(passed), "detail": detail}


def _not_run(name: str, threshold: float, what: str) -> dict[str, Any]:
    return _verdict(name, math.nan, threshold, True, f"not run ({what})")


def masking_checks(outcomes: pd.DataFrame, probe: dict[str, Any] | None, eps: float,
                   large_eps: float | None = None,
                   thresholds: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The gradient-masking verdicts of one model, one per check of :data:`MASKING_CHECKS`.

    Shares are of the images the attack has rows for at ``eps`` (the evaluation subset):

    * ``fgsm_only``: broken by ``fgsm`` but by none of ``pgd_ce``, ``pgd_margin``,
      ``pgd_ce_2x``, ``pgd_ce_restarts`` (those present);
    * ``margin_only``: broken by ``pgd_margin`` but not by ``pgd_ce``;
    * ``steps_restarts``: max(|acc(pgd_ce_2x) − acc(pgd_ce)|, |acc(pgd_ce_restarts) −
      acc(pgd_ce)|), robust accuracies as fractions;
    * ``square_only`` / ``transfer_only``: broken by ``square`` / ``transfer`` but by no
      white-box suite attack;
    * ``large_eps``: robust accuracy under ``pgd_ce`` at ``large_eps``; fails above its
      threshold, and also when it is not below the accuracy under ``pgd_ce`` at ``eps`` (unless
      it is 0: nothing left to fall);
    * ``zero_grad``: the probe's ``zero_grad_share``;
    * ``probabilities``: value = the probe's mean output row sum; fails when the probe found
      the outputs to be probabilities (threshold NaN).

    A check fails when its value exceeds its threshold. A check whose attacks (or probe) did
    not run has value NaN, passes, and says "not run".

    Args:
        outcomes: per-image outcome rows (:func:`robust_suite`, study attacks may be mixed in)
            of one model; columns ``attack, eps, index, correct, success`` at least.
        probe: :func:`gradient_probe`'s dict, or None.
        eps: the radius the checks are about.
        large_eps: the large radius of ``large_eps``, or None.
        thresholds: overrides of :data:`THRESHOLD_DEFAULTS` (None: the defaults).

    Returns:
        A list of dicts ``{check, value, threshold, passed, detail}`` in the order of
        :data:`MASKING_CHECKS`.

    Raises:
        ValueError: an unknown threshold name or a threshold outside [0, 1]; several rows per
            image for one attack and ε.
    """
    thr = dict(THRESHOLD_DEFAULTS)
    for k, v in (thresholds or {}).items():
        if k not in THRESHOLD_DEFAULTS:
            raise ValueError(f"unknown threshold {k!r}; known: {', '.join(THRESHOLD_DEFAULTS)}")
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"threshold {k} must be in [0, 1], got {v!r}")
        thr[k] = float(v)
    eps = _positive_eps("eps", eps)
    at = {a: r for a in WHITE_BOX_ATTACKS + ("square", "transfer")
          if (r := _rows_at(outcomes, a, eps)) is not None}
    white = {a: at[a] for a in WHITE_BOX_ATTACKS if a in at}
    checks = []

    if "fgsm" in at and "pgd_ce" in at:
        iterative = {a: r for a, r in white.items() if a != "fgsm"}
        checks.append(_share_check("fgsm_only", thr["fgsm_only"], at["fgsm"], "fgsm",
                                   iterative))
    else:
        checks.append(_not_run("fgsm_only", thr["fgsm_only"], "needs fgsm and pgd_ce"))

    if "pgd_margin" in at and "pgd_ce" in at:
        checks.append(_share_check("margin_only", thr["margin_only"], at["pgd_margin"],
                                   "pgd_margin", {"pgd_ce": at["pgd_ce"]}))
    else:
        checks.append(_not_run("margin_only", thr["margin_only"], "needs pgd_margin and pgd_ce"))

    variants = [a for a in ("pgd_ce_2x", "pgd_ce_restarts") if a in at]
    if "pgd_ce" in at and variants:
        base = _accuracy(at["pgd_ce"])
        changes = {a: _accuracy(at[a]) - base for a in variants}
        # a difference of two shares of the same n: round off the float error (0.07 − 0.06)
        value = round(max(abs(c) for c in changes.values()), 12)
        detail = (f"robust accuracy {100 * base:.1f} % under pgd_ce; " + ", ".join(
            f"{a} changes it by {100 * c:+.1f} points" for a, c in changes.items()))
        checks.append(_verdict("steps_restarts", value, thr["steps_restarts"],
                               value <= thr["steps_restarts"], detail))
    else:
        checks.append(_not_run("steps_restarts", thr["steps_restarts"],
                               "needs pgd_ce and pgd_ce_2x or pgd_ce_restarts"))

    for black in ("square", "transfer"):
        name = f"{black}_only"
        if black in at:
            checks.append(_share_check(name, thr[name], at[black], black, white))
        else:
            checks.append(_not_run(name, thr[name], f"needs {black}"))

    large = None
    if large_eps is not None:
        large_eps = _positive_eps("large_eps", large_eps)
        large = _rows_at(outcomes, "pgd_ce", large_eps)
    if large is not None:
        acc_large = _accuracy(large)
        limit = thr["large_eps"]
        detail = f"robust accuracy {100 * acc_large:.1f} % under pgd_ce at eps={large_eps:g}"
        passed = acc_large <= limit
        if not passed:
            detail += f" (above {100 * limit:.1f} %)"
        if "pgd_ce" in at:
            acc_eps = _accuracy(at["pgd_ce"])
            detail += f", {100 * acc_eps:.1f} % at eps={eps:g}"
            if acc_large > 0 and acc_large >= acc_eps:
                passed = False
                detail += " (does not fall with eps)"
        checks.append(_verdict("large_eps", acc_large, limit, passed, detail))
    else:
        checks.append(_not_run("large_eps", thr["large_eps"], "needs pgd_ce at large_eps"))

    if probe is not None:
        share = float(probe["zero_grad_share"])
        checks.append(_verdict(
            "zero_grad", share, thr["zero_grad"], share <= thr["zero_grad"],
            f"{100 * share:.1f} % of images have an all-zero or non-finite input gradient"))
        probs = bool(probe["outputs_sum_to_one"])
        row = float(probe["mean_output_row_sum"])
        checks.append(_verdict(
            "probabilities", row, math.nan, not probs,
            ("outputs are probabilities (non-negative rows summing to 1)" if probs else
             "outputs are not probabilities") + f"; mean row sum {row:.6g}"))
    else:
        checks.append(_not_run("zero_grad", thr["zero_grad"], "needs the gradient probe"))
        checks.append(_not_run("probabilities", math.nan, "needs the gradient probe"))
    return checks


def failed_checks(checks: Sequence[dict[str, Any]]) -> list[str]:
    """The names of the checks that failed, in order (a model is flagged with them).

    Args:
        checks: :func:`masking_checks`' list.

    Returns:
        The ``check`` of every entry whose ``passed`` is false.
    """
    return [c["check"] for c in checks if not c["passed"]]
