"""Gradient-masking and convergence checks: is a model's low attack success real robustness,
did the attack fail because the model hides its gradients, or was the attack not done?

A model can look robust because its gradients are useless to an attacker rather than because
no adversarial input exists (Athalye et al. 2018; Carlini et al. 2019, "On evaluating
adversarial robustness"), or because the attack stopped before it converged. The checks of
:func:`masking_checks` are of two kinds (:data:`CHECK_KINDS`), each counted in images:

**masking** (evidence that the gradients mislead; the symptoms of AutoAttack's own checks and
of Carlini et al.'s checklist):

* ``fgsm_only``: images broken by one FGSM step but by none of the iterative PGD attacks;
* ``square_only`` / ``transfer_only``: images broken by the black-box Square attack, or by
  PGD crafted on another model, after every white-box attack (the PGD family and AutoAttack's
  APGD-CE, APGD-T and FAB-T) failed;
* ``large_eps``: images still robust at a radius where every image can be destroyed, or
  robust accuracy not falling from ε to it;
* ``zero_grad``: images whose input gradient is zero or non-finite;
* ``probabilities``: the model outputs probabilities, not logits (softmax saturates);

**convergence** (the cross-entropy PGD was not done):

* ``margin_only``: images broken by margin-loss PGD but not by cross-entropy PGD from the same
  starts (the cross-entropy direction is distorted, e.g. by float32 rounding of confident
  images: once p_y rounds to 1 the gradient loses its −∇z_y term, and it is all zero only
  beyond a logit margin of about 100);
* ``steps_restarts``: images broken by PGD with twice the steps or with further random
  starts but not by the plain run.

A convergence flag says that the suite's fixed-step PGD, and a study's own PGD numbers, are
weaker than the worst case; the worst case itself includes AutoAttack's stages, run on every
image the PGD family left standing (:func:`robust_suite`).

:func:`robust_suite` runs the attacks the checks compare and returns per-image outcome rows
(the columns of :mod:`curvrobust.evaluation.outcomes`); :func:`gradient_probe` measures the gradients and
outputs; :func:`masking_checks` turns both into one verdict per check. :func:`model_validity`
is the gate in front of all of it: a model with low natural accuracy or one dominant
prediction is degenerate, whatever its "robust accuracy".

**The suite's stages** (the ``attack`` column of :func:`robust_suite`'s rows), in order:

* on every clean-correct image: ``fgsm`` (:func:`curvrobust.attacks.fgsm`); ``pgd_ce``,
  cross-entropy PGD, ``pgd_steps`` steps of ``pgd_step_factor``·ε/``pgd_steps`` from a
  uniform random start (one generator seeded with ``seed``, drawn batch by batch);
* on what ``pgd_ce`` left: ``pgd_margin``, the same on the C&W margin loss (κ = 0) from
  the same starts; ``pgd_ce_2x``, each ``pgd_ce`` iterate continued for ``pgd_steps``
  more steps (= PGD with twice the steps from the same start);
* ``pgd_ce_restarts``: ``pgd_ce`` plus ``restarts`` − 1 further random starts (from the
  same generator) on the images still unbroken;
* on the survivors (clean-correct, outside ``skip``, broken by no white-box stage so far),
  as a cascade: AutoAttack's ``apgd_ce``, ``apgd_t`` and ``fab_t``
  (:data:`AUTOATTACK_STAGES`; :func:`curvrobust.attacks.autoattack.build_stage`, each batch in a
  forked RNG seeded with ``seed``);
* on the images every white-box stage left standing: ``square`` (``square_queries``
  queries, ``square_p_init``; AutoAttack's fourth stage at its 5,000 queries), and
  ``transfer`` (``transfer[eps]``);
* ``pgd_ce`` at ``large_eps`` (rows with ``eps = large_eps``), with steps scaled to it, on
  every correct image; where ``pgd_ce`` broke the image at ε its adversarial is kept.

Images a stage does not attack have rows with attacked = 0; adopted outcomes (``adopted``)
count as attacked. Every adversarial input is checked to lie within ε in L∞ and in [0, 1].
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust._checks import EPS_RTOL, check_batch, check_int
from curvrobust.attacks.autoattack import build_stage, check_adversarial
from curvrobust.attacks.base import clip_to_range, get_attack
from curvrobust.attacks.gradient import ce_loss, cw_margin_loss, fgsm, linf_ascent_steps, pgd
from curvrobust.attacks.random_search import forked_rng
from curvrobust.models.inference import decision_margin, eval_mode, model_device

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    # the suite
    "SUITE_ATTACKS", "WHITE_BOX_ATTACKS", "PGD_ATTACKS", "AUTOATTACK_STAGES", "SUITE_DEFAULTS",
    "Stage", "robust_suite", "suite_settings", "craft_transfer",
    # the checks
    "MASKING_CHECKS", "CHECK_KINDS", "LIMIT_DEFAULTS", "RETIRED_THRESHOLDS", "failed_checks",
    "check_limits", "flags_by_kind", "gradient_probe", "masking_checks", "model_validity",
    "rows_at",
]

PGD_ATTACKS = ("pgd_ce", "pgd_margin", "pgd_ce_2x", "pgd_ce_restarts")
"""The suite's fixed-step PGD family (the iterative attacks FGSM is compared with)."""

AUTOATTACK_STAGES = ("apgd_ce", "apgd_t", "fab_t")
"""AutoAttack's white-box stages in the suite (APGD-CE; APGD-T and FAB-T with 9 targets; the
standard counts), run as a cascade on what the PGD family left standing; its fourth stage,
Square with 5,000 queries, is the suite's ``square``."""

SUITE_ATTACKS = ("fgsm",) + PGD_ATTACKS + AUTOATTACK_STAGES + ("square", "transfer")
"""The attacks of :func:`robust_suite` (the ``attack`` column of its rows), in run order."""

WHITE_BOX_ATTACKS = SUITE_ATTACKS[:-2]
"""The suite's gradient-based attacks; Square and transfer run only where all of them fail."""

MASKING_CHECKS = ("fgsm_only", "margin_only", "steps_restarts", "square_only", "transfer_only",
                  "large_eps", "zero_grad", "probabilities")
"""The checks of :func:`masking_checks`, in report order."""

CHECK_KINDS: dict[str, str] = {
    "fgsm_only": "masking", "margin_only": "convergence", "steps_restarts": "convergence",
    "square_only": "masking", "transfer_only": "masking", "large_eps": "masking",
    "zero_grad": "masking", "probabilities": "masking"}
"""Each check's kind: ``masking`` (the gradients mislead) or ``convergence`` (the PGD was not
done)."""

SUITE_DEFAULTS: dict[str, Any] = {"pgd_steps": 50, "pgd_step_factor": 2.5, "restarts": 2,
                                  "apgd_steps": 100, "fab_steps": 100, "target_classes": 9,
                                  "square_queries": 5000, "square_p_init": 0.8, "seed": 0,
                                  "batch_size": 500}
"""Default attack settings of the suite (config ``robustness.suite``); AutoAttack's standard
counts for its stages."""

LIMIT_DEFAULTS: dict[str, int] = {"fgsm_only": 2, "margin_only": 4, "steps_restarts": 4,
                                  "square_only": 2, "transfer_only": 2, "large_eps": 2,
                                  "zero_grad": 2}
"""Default limits of the checks (config ``robustness.limits``): a check fails when more images
than its limit show the symptom (docs/robustness.md gives the reasoning); ``probabilities``
has none (it fails whenever the outputs are probabilities)."""

RETIRED_THRESHOLDS = "robustness.thresholds"
"""The former config key of the checks' limits (shares of the subset, not images)."""

_LINF_TOLERANCE = 1e-5    # a transfer adversarial's distance from its clean image


# --------------------------------------------------------------------------- settings

def suite_settings(cfg_block: dict[str, Any] | None = None) -> dict[str, Any]:
    """The suite's attack settings: :data:`SUITE_DEFAULTS` overridden by ``cfg_block``.

    PGD (cross entropy and margin loss) takes ``pgd_steps`` steps of
    ``pgd_step_factor``·ε/``pgd_steps`` from a random start, so its path can cross the ball
    ``pgd_step_factor``/2 times; ``restarts`` is the number of random starts of
    ``pgd_ce_restarts`` (the first is the plain ``pgd_ce`` run); ``apgd_steps``,
    ``fab_steps`` and ``target_classes`` are the AutoAttack stages' iterations and targets
    (at most the model's classes − 1 are used). Keys of the block that are not
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
    for name in ("pgd_steps", "restarts", "apgd_steps", "fab_steps", "target_classes",
                 "square_queries", "batch_size"):
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

    def renamed(self, name: str) -> "_Outcome":
        out = _Outcome(name, self.eps, self.margin)
        out.attacked[:], out.success[:] = self.attacked, self.success
        return out


@torch.no_grad()
def _judge(model: nn.Module, adv: torch.Tensor, y: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(misclassified, decision margin in float64) of ``adv``, on the CPU."""
    logits = model(adv)
    return (logits.argmax(1) != y).cpu(), decision_margin(logits, y).cpu().double()


AttackFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Stage:
    """One attack of the suite: the rows it writes, the images it runs on, and how.

    ``images`` is ``"correct"`` (every clean-correct image), ``"survivors"`` (the clean-correct
    images outside ``skip`` that no white-box stage at this ε has broken so far) or
    ``"unbroken"`` (what the stage's own outcome, started from ``extends``, has not broken
    yet; run ``starts`` times); ``after`` leaves out the images that stage (at this ε) broke.
    ``attack(xb, yb, idx)`` returns adversarial inputs for the batch ``xb`` of the images
    ``idx``; ``keep`` keeps them (for a later stage to continue).
    """

    name: str
    eps: float
    images: str
    attack: AttackFn
    white: bool = True
    extends: str | None = None
    starts: int = 1
    keep: bool = False
    after: str | None = None


def _pgd_stages(model: nn.Module, eps: float, s: dict[str, Any], dev: torch.device,
                kept: dict[str, torch.Tensor]) -> list[Stage]:
    """FGSM and the fixed-step PGD family at ε (:data:`PGD_ATTACKS`).

    ``pgd_ce`` keeps its random starts and final iterates: ``pgd_margin`` starts from the same
    points, ``pgd_ce_2x`` continues the iterates; both run only where ``pgd_ce`` failed (the
    checks and the worst case count nothing else of them)."""
    steps = s["pgd_steps"]
    step = s["pgd_step_factor"] * eps / steps
    gen = torch.Generator(device=dev).manual_seed(s["seed"])  # pgd_ce, then its restarts
    margin_loss = functools.partial(cw_margin_loss, kappa=0.0)

    def pgd_ce_first(xb, yb, idx):
        noise = torch.empty_like(xb).uniform_(-eps, eps, generator=gen)
        kept["pgd_ce_start"][idx] = noise.cpu()
        return linf_ascent_steps(model, xb, clip_to_range(xb + noise, (0.0, 1.0)), yb, eps,
                                 ce_loss, steps, step)

    def pgd_ce_restart(xb, yb, idx):
        return pgd(model, xb, yb, eps, steps=steps, step_size=step, random_start=True,
                   generator=gen)

    def pgd_margin(xb, yb, idx):
        start = clip_to_range(xb + kept["pgd_ce_start"][idx].to(dev), (0.0, 1.0))
        return linf_ascent_steps(model, xb, start, yb, eps, margin_loss, steps, step)

    return [
        Stage("fgsm", eps, "correct", lambda xb, yb, idx: fgsm(model, xb, yb, eps)),
        Stage("pgd_ce", eps, "correct", pgd_ce_first, keep=True),
        Stage("pgd_margin", eps, "correct", pgd_margin, after="pgd_ce"),
        Stage("pgd_ce_2x", eps, "correct", lambda xb, yb, idx: linf_ascent_steps(
            model, xb, kept["pgd_ce"][idx].to(dev), yb, eps, ce_loss, steps, step),
            after="pgd_ce"),
        Stage("pgd_ce_restarts", eps, "unbroken", pgd_ce_restart, extends="pgd_ce",
              starts=s["restarts"] - 1),
    ]


def _large_eps_stage(model: nn.Module, eps: float, large_eps: float, s: dict[str, Any],
                     dev: torch.device, kept: dict[str, torch.Tensor],
                     done: dict[tuple[str, float], "_Outcome"]) -> Stage:
    """``pgd_ce`` at ``large_eps`` on every correct image, warm-started: an image ``pgd_ce``
    broke at ε keeps that adversarial (it lies in the larger ball too); the others get a PGD
    with steps scaled to ``large_eps`` from a fresh random start."""
    gen = torch.Generator(device=dev).manual_seed(s["seed"])
    step = s["pgd_step_factor"] * large_eps / s["pgd_steps"]

    def attack(xb, yb, idx):
        adv = kept["pgd_ce"][idx].to(dev)
        todo = ~done[("pgd_ce", eps)].success[idx].to(dev)
        if todo.any():
            adv[todo] = pgd(model, xb[todo], yb[todo], large_eps, steps=s["pgd_steps"],
                            step_size=step, random_start=True, generator=gen)
        return adv

    return Stage("pgd_ce", large_eps, "correct", attack)


def _autoattack_stages(model: nn.Module, eps: float, s: dict[str, Any],
                       n_classes: int) -> list[Stage]:
    """AutoAttack's white-box stages (:data:`AUTOATTACK_STAGES`) with the suite's counts;
    APGD-T's DLR loss needs 4 classes or more (fewer: no ``apgd_t`` stage)."""
    targets = min(s["target_classes"], n_classes - 1)
    stages = []
    for name, aa_name in zip(AUTOATTACK_STAGES, ("apgd-ce", "apgd-t", "fab-t")):
        if aa_name == "apgd-t" and n_classes < 4:
            continue
        atk = build_stage(aa_name, model, eps, apgd_steps=s["apgd_steps"],
                          fab_steps=s["fab_steps"], square_queries=s["square_queries"],
                          n_target_classes=targets, n_restarts=1, n_classes=n_classes,
                          seed=s["seed"])

        def attack(xb, yb, idx, atk=atk):
            with forked_rng(s["seed"]):
                return atk(xb, yb).detach()

        stages.append(Stage(name, eps, "survivors", attack))
    return stages


def _images(stage: Stage, correct: torch.Tensor, skip: torch.Tensor,
            white_broken: torch.Tensor, own: _Outcome,
            done: dict[tuple[str, float], _Outcome]) -> torch.Tensor:
    """Indices of the images ``stage`` attacks now (see :class:`Stage`)."""
    if stage.images == "correct":
        mask = correct if stage.after is None else \
            correct & ~done[(stage.after, stage.eps)].success
    elif stage.images == "survivors":
        mask = correct & ~skip & ~white_broken
    elif stage.images == "unbroken":
        mask = own.attacked & ~own.success
    else:
        raise AssertionError(stage.images)
    return mask.nonzero().flatten()


def _adopt(stage: Stage, out: _Outcome,
           adopted: dict[str, tuple[torch.Tensor, torch.Tensor]], correct: torch.Tensor,
           skip: torch.Tensor, white_broken: torch.Tensor) -> torch.Tensor:
    """Record the adopted outcome of a survivor stage (attacked, not broken, the study's
    margin) on the images it would attack; returns them ((N,) bool), for it to skip."""
    take = torch.zeros_like(skip)
    if stage.images == "survivors" and stage.name in adopted:
        mask, margin = adopted[stage.name]
        take = mask & correct & ~skip & ~white_broken
        out.record(take.nonzero().flatten(), torch.zeros(int(take.sum()), dtype=torch.bool),
                   margin[take])
    return take


def _run_stages(model: nn.Module, x: torch.Tensor, y: torch.Tensor, stages: Sequence[Stage],
                correct: torch.Tensor, clean_margin: torch.Tensor, skip: torch.Tensor,
                kept: dict[str, torch.Tensor], done: dict[tuple[str, float], _Outcome],
                batch_size: int, log: Callable[[str], None] | None,
                adopted: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> list[_Outcome]:
    """Run the stages in order, batch by batch; one outcome per stage (also in ``done``)."""
    dev = model_device(model)
    white_broken: dict[float, torch.Tensor] = {}
    for st in stages:
        t0 = time.perf_counter()
        broken = white_broken.setdefault(st.eps, torch.zeros(len(x), dtype=torch.bool))
        out = (done[(st.extends, st.eps)].renamed(st.name) if st.extends
               else _Outcome(st.name, st.eps, clean_margin))
        if st.keep:
            kept[st.name] = x.detach().cpu().clone()
        taken = _adopt(st, out, adopted, correct, skip, broken)
        for _ in range(st.starts):
            todo = _images(st, correct, skip | taken, broken, out, done)
            for idx in todo.split(batch_size) if len(todo) else ():
                xb, yb = x[idx].to(dev), y[idx].to(dev)
                adv = st.attack(xb, yb, idx)
                check_adversarial(st.name, adv, xb, st.eps)
                fooled, margin = _judge(model, adv, yb)
                out.record(idx, fooled, margin)
                if st.keep:
                    kept[st.name][idx] = adv.detach().cpu()
        done[(st.name, st.eps)] = out
        if st.white:
            broken |= out.success
        if log is not None:
            starts = f" ({st.starts + 1} starts)" if st.extends else ""
            study = f", {int(taken.sum())} of them from a study's run" if taken.any() else ""
            log(f"masking suite eps={st.eps:g}: {st.name}{starts} broke "
                f"{int(out.success.sum())} of {int(out.attacked.sum())} attacked{study} "
                f"({int(correct.sum())}/{len(x)} correct; {time.perf_counter() - t0:.1f} s)")
    return list(done.values())


def robust_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 index: torch.Tensor | Sequence[int], eps: float, *,
                 large_eps: float | None = None, settings: dict[str, Any] | None = None,
                 transfer: dict[float, torch.Tensor] | None = None,
                 skip: torch.Tensor | None = None,
                 adopted: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                 device: str | torch.device | None = None,
                 log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Per-image outcome rows of the robust-evaluation suite at ``eps`` (and ``pgd_ce`` at
    ``large_eps``): the stages (the ``attack`` column) and what they attack are listed in the
    module doc. The model runs in eval mode (its modes are restored), on its own device or
    ``device``.

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
        skip: (N,) bool, images the survivor stages leave alone (outside the worst case's
            common images, or already broken by a study's attack), or None.
        adopted: {survivor stage: ((N,) bool, (N,) margin)}: images on which a study already
            ran this attack with at least the suite's counts at ε and did not break them
            (:func:`curvrobust.evaluation.robustness.adopted_cascade`); the stage takes that outcome
            (attacked, not broken, the study's final margin) instead of attacking them again.
        device: where to compute (the model is moved there with ``model.to``).
        log: called with one progress line per stage (time, successes).

    Returns:
        One dict per image and stage, stages in the order above, images in input order,
        with the columns ``attack, eps, index, label, correct, attacked, success, margin``
        (``margin``: z_y − max_{j≠y} z_j of the final input, the clean one where not
        attacked).

    Raises:
        ValueError: bad radii, shapes, inputs outside [0, 1], a ``skip`` of the wrong shape,
            or a transfer tensor of the wrong shape, without an entry at ``eps``, or farther
            than ε from its clean image.
    """
    s = suite_settings(settings)
    eps, large_eps = _check_radii(eps, large_eps)
    index, skip = _check_images(x, y, index, skip)
    adopted = _check_adopted(adopted, len(x))
    adv_transfer = None if transfer is None else _transfer_at(transfer, eps, x)
    if device is not None:
        model.to(device)
    x, y = x.detach(), y.detach()
    with eval_mode(model):
        correct, clean_margin = _clean_outcomes(model, x, y, s["batch_size"])
        kept: dict[str, torch.Tensor] = {"pgd_ce_start": torch.zeros_like(x, device="cpu")}
        done: dict[tuple[str, float], _Outcome] = {}
        stages = _suite_stages(model, x, eps, large_eps, s, adv_transfer, kept, done)
        results = _run_stages(model, x, y, stages, correct, clean_margin, skip, kept, done,
                              s["batch_size"], log, adopted)
    return _rows(results, index, y, correct)


def _check_radii(eps: Any, large_eps: Any) -> tuple[float, float | None]:
    """ε and the large radius checked: both positive, the large one beyond ε."""
    eps = _positive_eps("eps", eps)
    if large_eps is not None:
        large_eps = _positive_eps("large_eps", large_eps)
        if not large_eps > eps:
            raise ValueError(f"large_eps must exceed eps={eps:g}, got large_eps={large_eps:g}")
    return eps, large_eps


def _check_images(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | Sequence[int],
                  skip: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The suite's batch checked (shapes, pixels in [0, 1]); the image indices and the
    survivor stages' ``skip`` mask as CPU tensors."""
    index = torch.as_tensor(index, dtype=torch.long).flatten().cpu()
    n = len(x)
    if x.ndim != 4 or y.shape != (n,) or len(index) != n or n == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) batch with N labels y and N "
                         f"indices, got x {tuple(x.shape)}, y {tuple(y.shape)}, index "
                         f"{tuple(index.shape)}")
    if x.min().item() < 0.0 or x.max().item() > 1.0:
        raise ValueError(f"x must lie in [0, 1], got [{x.min().item():.6g}, "
                         f"{x.max().item():.6g}]")
    skip = torch.zeros(n, dtype=torch.bool) if skip is None else torch.as_tensor(skip).cpu()
    if skip.shape != (n,) or skip.dtype != torch.bool:
        raise ValueError(f"skip must be an (N,) bool tensor, got {skip.dtype} "
                         f"{tuple(skip.shape)} for N={n}")
    return index, skip


def _clean_outcomes(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    bs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which clean images the model classifies correctly, and their margins (CPU, batch by
    batch): the stages attack the correct ones."""
    dev = model_device(model)
    n = len(x)
    correct = torch.zeros(n, dtype=torch.bool)
    clean_margin = torch.zeros(n, dtype=torch.float64)
    for i in range(0, n, bs):
        xb, yb = x[i:i + bs].to(dev), y[i:i + bs].to(dev)
        wrong, margin = _judge(model, xb, yb)
        correct[i:i + bs], clean_margin[i:i + bs] = ~wrong, margin
    return correct, clean_margin


def _suite_stages(model: nn.Module, x: torch.Tensor, eps: float, large_eps: float | None,
                  s: dict[str, Any], adv_transfer: torch.Tensor | None,
                  kept: dict[str, torch.Tensor],
                  done: dict[tuple[str, float], _Outcome]) -> list[Stage]:
    """The suite's stages in order (module doc): PGD family, AutoAttack cascade, Square,
    transfer (with ``adv_transfer``) and PGD at ``large_eps`` (with one)."""
    dev = model_device(model)
    with torch.no_grad():
        n_classes = model(x[:1].to(dev)).shape[1]
    square = get_attack("square")
    stages = _pgd_stages(model, eps, s, dev, kept) + _autoattack_stages(
        model, eps, s, n_classes)
    stages.append(Stage("square", eps, "survivors", lambda xb, yb, idx: square(
        model, xb, yb, eps, queries=s["square_queries"], p_init=s["square_p_init"],
        seed=s["seed"]), white=False))
    if adv_transfer is not None:
        stages.append(Stage("transfer", eps, "survivors",
                            lambda xb, yb, idx: adv_transfer[idx].to(dev), white=False))
    if large_eps is not None:
        stages.append(_large_eps_stage(model, eps, large_eps, s, dev, kept, done))
    return stages


def _check_adopted(adopted: dict[str, tuple[torch.Tensor, torch.Tensor]] | None, n: int
                   ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``adopted`` on the CPU, checked: survivor stages only, (N,) bool masks and margins."""
    out = {}
    for name, (mask, margin) in (adopted or {}).items():
        if name not in AUTOATTACK_STAGES + ("square",):
            raise ValueError(f"adopted: {name!r} is not a survivor stage (one of "
                             f"{AUTOATTACK_STAGES + ('square',)})")
        mask, margin = torch.as_tensor(mask).cpu(), torch.as_tensor(margin).cpu().double()
        if mask.dtype != torch.bool or mask.shape != (n,) or margin.shape != (n,):
            raise ValueError(f"adopted[{name!r}] must be an (N,) bool mask and N margins, got "
                             f"{mask.dtype} {tuple(mask.shape)} and {tuple(margin.shape)} for "
                             f"N={n}")
        out[name] = (mask, margin)
    return out


def _rows(results: Sequence[_Outcome], index: torch.Tensor, y: torch.Tensor,
          correct: torch.Tensor) -> list[dict[str, Any]]:
    labels, indices, ok = y.cpu().tolist(), index.tolist(), correct.tolist()
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
        if math.isclose(float(e), eps, rel_tol=EPS_RTOL):
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
        ``{"n", "zero_grad_images", "zero_grad_share", "outputs_sum_to_one",
        "mean_output_row_sum"}``: the number and share of images whose input gradient is all zero or has a non-finite entry;
        whether every output row is non-negative and sums to 1 within 1e-4 (probabilities,
        not logits); the mean over images of the output row sums.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    n = check_batch(x, y)
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
    return {"n": n, "zero_grad_images": zero, "zero_grad_share": zero / n, "outputs_sum_to_one": sums_to_one,
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
    n = check_batch(x, y)
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

def rows_at(outcomes: pd.DataFrame, attack: str, eps: float) -> pd.DataFrame | None:
    """The rows of ``attack`` at ``eps``, one per image.

    Args:
        outcomes: per-image outcome rows (:data:`curvrobust.attacks.OUTCOME_COLUMNS`).
        attack: the ``attack`` name.
        eps: the radius (matched to a relative 1e-9: ε read back from a CSV).

    Returns:
        The rows, or None if there are none.

    Raises:
        ValueError: several rows for one image (outcomes of several models or runs mixed).
    """
    close = np.isclose(outcomes["eps"].to_numpy(dtype=float), eps, rtol=EPS_RTOL, atol=0.0)
    sel = outcomes[(outcomes["attack"] == attack).to_numpy() & close]
    if sel.empty:
        return None
    if sel["index"].duplicated().any():
        raise ValueError(f"outcomes has several rows per image for {attack} at eps={eps:g} "
                         "(outcomes of several models or runs mixed?)")
    return sel


def _broken(rows: pd.DataFrame) -> set[int]:
    ok = (rows["attacked"].astype(int) == 1) & (rows["success"].astype(int) == 1)
    return set(rows.loc[ok, "index"].astype(int))


def _robust(rows: pd.DataFrame) -> int:
    return int(((rows["correct"].astype(int) == 1) & (rows["success"].astype(int) == 0)).sum())


def _verdict(name: str, value: float, limit: float, passed: bool,
             detail: str) -> dict[str, Any]:
    return {"check": name, "kind": CHECK_KINDS[name], "value": float(value),
            "limit": float(limit), "passed": bool(passed), "detail": detail}


def _only_check(name: str, limit: int, at: dict[str, pd.DataFrame], attacks: Sequence[str],
                others: Sequence[str]) -> dict[str, Any]:
    """Images broken by one of ``attacks`` but by none of ``others`` (those with rows)."""
    present = [a for a in attacks if a in at]
    rest_names = [a for a in others if a in at]
    if not present or not rest_names:
        return _verdict(name, math.nan, limit, True,
                        f"not run (needs {' or '.join(attacks)} and {', '.join(others)})")
    hit = set().union(*(_broken(at[a]) for a in present))
    rest = set().union(*(_broken(at[a]) for a in rest_names))
    only = len(hit - rest)
    n = len(at[present[0]])
    detail = (f"{only} of {n} images broken by {' or '.join(present)} but by none of "
              f"{', '.join(rest_names)}")
    return _verdict(name, only, limit, only <= limit, detail)


def _large_eps_check(outcomes: pd.DataFrame, at: dict[str, pd.DataFrame], eps: float,
                     large_eps: float | None, limit: int) -> dict[str, Any]:
    """Images still robust under ``pgd_ce`` at the large radius; their count must not exceed
    ``limit`` and must fall from ε unless it is 0."""
    large = None
    if large_eps is not None:
        large_eps = _positive_eps("large_eps", large_eps)
        large = rows_at(outcomes, "pgd_ce", large_eps)
    if large is None:
        return _verdict("large_eps", math.nan, limit, True, "not run (needs pgd_ce at large_eps)")
    left = _robust(large)
    detail = f"{left} of {len(large)} images robust under pgd_ce at eps={large_eps:g}"
    passed = left <= limit
    if "pgd_ce" in at:
        at_eps = _robust(at["pgd_ce"])
        detail += f", {at_eps} at eps={eps:g}"
        if left > 0 and left >= at_eps:
            passed = False
            detail += " (does not fall with eps)"
    return _verdict("large_eps", left, limit, passed, detail)


def _probe_checks(probe: dict[str, Any] | None, limit: int) -> list[dict[str, Any]]:
    if probe is None:
        return [_verdict("zero_grad", math.nan, limit, True, "not run (needs the gradient probe)"),
                _verdict("probabilities", math.nan, math.nan, True,
                         "not run (needs the gradient probe)")]
    dead = int(probe["zero_grad_images"])
    probs = bool(probe["outputs_sum_to_one"])
    row = float(probe["mean_output_row_sum"])
    return [
        _verdict("zero_grad", dead, limit, dead <= limit,
                 f"{dead} of {probe['n']} images have an all-zero or non-finite input gradient"),
        _verdict("probabilities", row, math.nan, not probs,
                 ("outputs are probabilities (non-negative rows summing to 1)" if probs else
                  "outputs are not probabilities") + f"; mean row sum {row:.6g}"),
    ]


def check_limits(limits: dict[str, Any] | None) -> dict[str, int]:
    """:data:`LIMIT_DEFAULTS` overridden by ``limits`` (config ``robustness.limits``), checked.

    Args:
        limits: {check: images}, or None.

    Returns:
        A new dict with every check of :data:`LIMIT_DEFAULTS`.

    Raises:
        ValueError: an unknown check or a limit that is not a whole number of images >= 0.
    """
    out = dict(LIMIT_DEFAULTS)
    for k, v in (limits or {}).items():
        if k not in LIMIT_DEFAULTS:
            raise ValueError(f"unknown check {k!r} in the limits; known: "
                             f"{', '.join(LIMIT_DEFAULTS)}")
        out[k] = check_int(f"limit of {k}", v, 0)
    return out


def masking_checks(outcomes: pd.DataFrame, probe: dict[str, Any] | None, eps: float,
                   large_eps: float | None = None,
                   limits: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The verdicts of one model, one per check of :data:`MASKING_CHECKS`, counted in images.

    Counts are of the images the attacks have rows for at ``eps`` (the evaluation subset):

    * ``fgsm_only``: broken by ``fgsm`` but by none of :data:`PGD_ATTACKS`;
    * ``margin_only``: broken by ``pgd_margin`` but not by ``pgd_ce``;
    * ``steps_restarts``: broken by ``pgd_ce_2x`` or ``pgd_ce_restarts`` but not by ``pgd_ce``;
    * ``square_only`` / ``transfer_only``: broken by ``square`` / ``transfer`` but by no
      white-box suite attack (:data:`WHITE_BOX_ATTACKS`);
    * ``large_eps``: images robust under ``pgd_ce`` at ``large_eps``; fails above its limit,
      and also when the count does not fall from ``eps`` (unless it is 0);
    * ``zero_grad``: the probe's ``zero_grad_images``;
    * ``probabilities``: value = the probe's mean output row sum; fails when the probe found
      the outputs to be probabilities (limit NaN).

    A check fails when its value exceeds its limit. A check whose attacks (or probe) did not
    run has value NaN, passes, and says "not run".

    Args:
        outcomes: per-image outcome rows (:func:`robust_suite`) of one model; columns
            ``attack, eps, index, correct, attacked, success`` at least.
        probe: :func:`gradient_probe`'s dict, or None.
        eps: the radius the checks are about.
        large_eps: the large radius of ``large_eps``, or None.
        limits: overrides of :data:`LIMIT_DEFAULTS` (None: the defaults).

    Returns:
        A list of dicts ``{check, kind, value, limit, passed, detail}`` in the order of
        :data:`MASKING_CHECKS` (``kind`` from :data:`CHECK_KINDS`).

    Raises:
        ValueError: an unknown check or a bad limit; several rows per image for one attack
            and ε.
    """
    lim = check_limits(limits)
    eps = _positive_eps("eps", eps)
    at = {a: r for a in SUITE_ATTACKS if (r := rows_at(outcomes, a, eps)) is not None}
    checks = {
        "fgsm_only": _only_check("fgsm_only", lim["fgsm_only"], at, ["fgsm"], PGD_ATTACKS),
        "margin_only": _only_check("margin_only", lim["margin_only"], at, ["pgd_margin"],
                                   ["pgd_ce"]),
        "steps_restarts": _only_check("steps_restarts", lim["steps_restarts"], at,
                                      ["pgd_ce_2x", "pgd_ce_restarts"], ["pgd_ce"]),
        "square_only": _only_check("square_only", lim["square_only"], at, ["square"],
                                   WHITE_BOX_ATTACKS),
        "transfer_only": _only_check("transfer_only", lim["transfer_only"], at, ["transfer"],
                                     WHITE_BOX_ATTACKS),
        "large_eps": _large_eps_check(outcomes, at, eps, large_eps, lim["large_eps"]),
    }
    checks["zero_grad"], checks["probabilities"] = _probe_checks(probe, lim["zero_grad"])
    return [checks[c] for c in MASKING_CHECKS]


def failed_checks(checks: Sequence[dict[str, Any]]) -> list[str]:
    """The failed checks, each named with its kind ("margin_only (convergence)"), in order.

    Args:
        checks: :func:`masking_checks`' list.

    Returns:
        ``"<check> (<kind>)"`` of every entry whose ``passed`` is false.
    """
    return [f"{c['check']} ({c['kind']})" for c in checks if not c["passed"]]


def flags_by_kind(checks: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The failed checks grouped by kind.

    Args:
        checks: :func:`masking_checks`' list.

    Returns:
        ``{"masking": [...], "convergence": [...]}``: the names of the failed checks of each
        kind, in order (lists may be empty).
    """
    out: dict[str, list[str]] = {"masking": [], "convergence": []}
    for c in checks:
        if not c["passed"]:
            out[c["kind"]].append(c["check"])
    return out
