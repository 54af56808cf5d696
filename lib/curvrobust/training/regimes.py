"""Training objectives (a recipe's ``regime`` block), independent of the optimiser.

A regime mixes three terms, all optional (``{}`` or no block: natural training)::

    regime:
      adversary: {kind: cw, eps: 0.3, steps: 10, step_size: 0.1}  # attacks.run_attack params
      adv_weight: 0.5            # required with an adversary
      penalty: {kind: margin_grad, coef: 500, norm: l2}           # or {kind: ce_grad, coef: λ}

    loss = (1 − w)·CE(x, y) + w·CE(x_adv, y) + coef · mean_i penalty_i(x_i, y_i)

The adversary may carry ``eps_ramp_epochs: R`` (training adversaries only; 0, the default, is
no ramp): an ε warm-up over the first R epochs (R may be fractional). The training loop tells
the objective its progress (:meth:`Objective.set_progress`); the k-th optimiser step then
attacks with ε·f and step size step_size·f, f = :func:`eps_ramp_fraction` (k / steps per
epoch, R) = min(1, k / (R · steps per epoch)) — linear in the step from 0 to 1, step_size / ε
kept fixed (the attack's default step size when the spec gives none).

``w = 0.5`` is Kurakin et al.'s clean/adversarial mix, ``w = 1`` Madry et al.'s min-max
training. The penalty is taken at the CLEAN inputs x (study 002, Eq. 12):

* ``margin_grad``: ‖∇ₓ g(x)‖_p with the decision margin g = z_y − max_{j≠y} z_j (the study's
  regulariser, p ∈ {l1, l2, linf});
* ``ce_grad``: ‖∇ₓ CE(x, y)‖₂² (Ross & Doshi-Velez 2018).

Both are computed by double backpropagation (Drucker & LeCun 1991): the input gradient is
taken with ``create_graph=True`` so that the penalty can be differentiated w.r.t. the
parameters. Per-example input gradients come from ONE ``autograd.grad`` of the batch sum,
which is exact because example i's logits depend on x_i only — true for every model here
(no batch norm or other cross-example layer); a model mixing examples would need vmap.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from curvrobust import attacks
from curvrobust.models.inference import decision_margin, eval_mode
from curvrobust.seeds import derive_seed

REGIME_KEYS = ("adversary", "adv_weight", "penalty")
RAMP_KEY = "eps_ramp_epochs"  # of the regime's adversary: ε warm-up in epochs (0: none)
PENALTY_KINDS = ("margin_grad", "ce_grad")
NORMS = ("l1", "l2", "linf")
_NORM_ORD = {"l1": 1.0, "l2": 2.0, "linf": math.inf}


def _check_norm(norm: str) -> float:
    if norm not in _NORM_ORD:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return _NORM_ORD[norm]


def _input_grad(out: torch.Tensor, xg: torch.Tensor) -> torch.Tensor:
    """∇ₓ of the per-example quantities `out` (shape (N,)), flattened to (N, D), kept in the
    graph. One grad of the sum suffices because examples do not interact (see module doc)."""
    (grad,) = torch.autograd.grad(out.sum(), xg, create_graph=True)
    return grad.flatten(1)


def margin_grad_from_logits(logits: torch.Tensor, xg: torch.Tensor, y: torch.Tensor,
                            norm: str = "l2") -> torch.Tensor:
    """Per-example ‖∇ₓ g‖_p given logits computed from `xg` (which requires grad)."""
    ord_ = _check_norm(norm)
    return torch.linalg.vector_norm(_input_grad(decision_margin(logits, y), xg), ord=ord_, dim=1)


def ce_grad_from_logits(logits: torch.Tensor, xg: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example ‖∇ₓ CE_i‖₂² given logits computed from `xg` (which requires grad)."""
    grad = _input_grad(F.cross_entropy(logits, y, reduction="none"), xg)
    return grad.square().sum(dim=1)


def margin_grad_penalty(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        norm: str = "l2") -> torch.Tensor:
    """Per-example ‖∇ₓ g(x)‖_p, shape (N,), differentiable w.r.t. the model's parameters.
    The model runs in its current mode."""
    _check_norm(norm)
    xg = x.detach().requires_grad_(True)
    return margin_grad_from_logits(model(xg), xg, y, norm)


def ce_grad_penalty(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example ‖∇ₓ CE(model(x_i), y_i)‖₂², shape (N,), differentiable w.r.t. the
    parameters. The model runs in its current mode."""
    xg = x.detach().requires_grad_(True)
    return ce_grad_from_logits(model(xg), xg, y)


def _number(value: Any, name: str, lo: float = 0.0, hi: float = math.inf) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not lo <= float(value) <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def eps_ramp_fraction(progress: float, ramp_epochs: float) -> float:
    """The share of the training adversary's ε (and step size) after `progress` epochs of
    training under an ε warm-up of `ramp_epochs` epochs: progress / ramp_epochs clamped to
    [0, 1] — 0 at the start, 1 from the end of the ramp on; always 1 for ``ramp_epochs = 0``
    (no ramp)."""
    if ramp_epochs <= 0.0:
        return 1.0
    return min(max(float(progress) / float(ramp_epochs), 0.0), 1.0)


def _check_adversary(adversary: Any) -> tuple[dict[str, Any], float]:
    """The adversary's attack spec (kind and attack parameters), checked against the attack's
    signature, and its ε warm-up in epochs (``eps_ramp_epochs``, 0 when absent)."""
    if not isinstance(adversary, dict) or "kind" not in adversary:
        raise ValueError(f"regime adversary must be a mapping with a 'kind', got {adversary!r}")
    params = dict(adversary)
    kind = params.pop("kind")
    ramp = params.pop(RAMP_KEY, 0.0)
    ok = isinstance(ramp, (int, float)) and not isinstance(ramp, bool)
    if not ok or not 0.0 <= float(ramp) < math.inf:
        raise ValueError(f"regime adversary {RAMP_KEY} must be a finite number >= 0 (epochs; "
                         f"0: no warm-up), got {ramp!r}")
    if kind not in attacks.ATTACKS:
        raise ValueError(f"unknown regime adversary kind {kind!r}; "
                         f"known: {', '.join(sorted(attacks.ATTACKS))}")
    for key in ("seed", "generator"):
        if key in params:
            raise ValueError(f"regime adversary must not set {key!r}: random starts are "
                             "seeded from the run seed")
    sig = inspect.signature(attacks.ATTACKS[kind])
    try:  # the attack's own signature says which parameters it takes and needs
        sig.bind(None, None, None, **params)
    except TypeError as e:
        raise ValueError(f"regime adversary {kind!r} parameters {params}: {e}") from None
    return {"kind": kind, **params}, float(ramp)


def _accepts_generator(fn: Any) -> bool:
    params = inspect.signature(fn).parameters
    return "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


@dataclass
class Objective:
    """A regime as a callable loss: ``objective(model, x, y) -> (loss, parts)``.

    Adversarial examples are generated with the model in eval mode
    (:func:`curvrobust.models.inference.eval_mode`) and detached; the loss is then computed in the
    model's own mode (train, in the training loop).
    Attacks that take a ``generator`` (random starts: PGD, C&W) get one seeded with
    ``derive_seed(seed, "adversary")`` on the inputs' device, created on first use and drawn
    from on every call: each batch gets fresh noise, the same for the same seed.

    With an ε warm-up (``eps_ramp_epochs`` > 0, see the module doc) the caller sets the
    training progress before each step (:meth:`set_progress`); the attack then runs at
    ε·f, step size·f for f = :func:`eps_ramp_fraction`. Without one, progress is ignored and
    the attack runs with its spec unchanged."""

    adversary: dict[str, Any] | None = None
    adv_weight: float = 0.0
    penalty: str | None = None
    penalty_coef: float = 0.0
    penalty_norm: str = "l2"
    seed: int = 0
    eps_ramp_epochs: float = 0.0
    progress: float | None = field(default=None, compare=False, repr=False)  # see set_progress
    _generators: dict[torch.device, torch.Generator] = field(default_factory=dict, repr=False,
                                                             compare=False)

    @classmethod
    def from_spec(cls, regime: dict[str, Any] | None, seed: int = 0) -> "Objective":
        """Validate a recipe's ``regime`` block (ValueError naming what is wrong)."""
        regime = dict(regime or {})
        unknown = sorted(set(regime) - set(REGIME_KEYS))
        if unknown:
            raise ValueError(f"unknown regime keys {unknown}; known: {list(REGIME_KEYS)}")
        adversary, ramp = regime.get("adversary"), 0.0
        if adversary is not None:
            adversary, ramp = _check_adversary(adversary)
            if "adv_weight" not in regime:
                raise ValueError("regime with an adversary needs adv_weight "
                                 "(0.5: Kurakin et al.'s mix, 1.0: Madry et al.'s min-max)")
        adv_weight = _number(regime.get("adv_weight", 0.0), "regime adv_weight", 0.0, 1.0)
        if adversary is None and adv_weight != 0.0:
            raise ValueError(f"regime adv_weight={adv_weight} needs an adversary")
        kind, coef, norm = None, 0.0, "l2"
        penalty = regime.get("penalty")
        if penalty is not None:
            if not isinstance(penalty, dict):
                raise ValueError(f"regime penalty must be a mapping, got {penalty!r}")
            known = {"margin_grad": {"kind", "coef", "norm"}, "ce_grad": {"kind", "coef"}}
            kind = penalty.get("kind")
            if kind not in known:
                raise ValueError(f"regime penalty kind must be one of {PENALTY_KINDS}, "
                                 f"got {kind!r}")
            extra = sorted(set(penalty) - known[kind])
            if extra:
                raise ValueError(f"unknown keys {extra} for regime penalty {kind!r}; "
                                 f"known: {sorted(known[kind])}")
            if "coef" not in penalty:
                raise ValueError(f"regime penalty {kind!r} needs coef")
            coef = _number(penalty["coef"], "regime penalty coef")
            norm = penalty.get("norm", "l2")
            _check_norm(norm)
        return cls(adversary=adversary, adv_weight=adv_weight, penalty=kind, penalty_coef=coef,
                   penalty_norm=norm, seed=int(seed), eps_ramp_epochs=ramp)

    @property
    def is_natural(self) -> bool:
        """True when the loss is plain CE on clean inputs."""
        return (self.adversary is None or self.adv_weight == 0.0) and \
            (self.penalty is None or self.penalty_coef == 0.0)

    def set_progress(self, epochs: float) -> None:
        """Training progress in epochs, counting the step about to be taken: the trainer calls
        this with k / steps_per_epoch before its k-th optimiser step (k = 1, 2, ...), so the
        warm-up's first step already attacks at a small ε and the step that ends the ramp at
        the full ε."""
        self.progress = float(epochs)

    def eps_fraction(self) -> float:
        """The share of the adversary's ε (and step size) the next attack uses: 1 without a
        warm-up; with one, :func:`eps_ramp_fraction` of the progress set by
        :meth:`set_progress` (ValueError when none was set)."""
        if self.eps_ramp_epochs <= 0.0:
            return 1.0
        if self.progress is None:
            raise ValueError(f"this regime's adversary has {RAMP_KEY}={self.eps_ramp_epochs}: "
                             "set the training progress (set_progress) before each step")
        return eps_ramp_fraction(self.progress, self.eps_ramp_epochs)

    def attack_params(self) -> dict[str, Any]:
        """The adversary's attack parameters (no ``kind``) for the next attack: the spec's,
        with ε and the step size (given, or the attack's default) scaled by
        :meth:`eps_fraction` under a warm-up; the spec's unchanged without one."""
        if self.adversary is None:
            raise ValueError("this regime has no adversary")
        params = dict(self.adversary)
        kind = params.pop("kind")
        if self.eps_ramp_epochs <= 0.0:
            return params
        frac = self.eps_fraction()
        params["eps"] = float(params["eps"]) * frac
        sig = inspect.signature(attacks.get_attack(kind)).parameters
        if "step_size" in sig:
            step = params.get("step_size", sig["step_size"].default)
            params["step_size"] = float(step) * frac
        return params

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(
                derive_seed(self.seed, "adversary"))
        return self._generators[device]

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial inputs for (x, y) from the configured attack, model in eval mode."""
        params = self.attack_params()
        fn = attacks.get_attack(self.adversary["kind"])
        if _accepts_generator(fn):
            params["generator"] = self._generator(x.device)
        with eval_mode(model):
            x_adv = fn(model, x, y, **params)
        return x_adv.detach()

    def __call__(self, model: nn.Module, x: torch.Tensor,
                 y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The batch loss (a graph to backpropagate) and its parts ce, adv_ce, penalty as
        floats (NaN for a part the loss does not use)."""
        nan = math.nan
        use_adv = self.adversary is not None and self.adv_weight > 0.0
        use_pen = self.penalty is not None and self.penalty_coef > 0.0
        w = self.adv_weight if use_adv else 0.0
        if not use_adv and not use_pen:  # natural training: exactly FirstOrder's old loss
            ce = F.cross_entropy(model(x), y)
            return ce, dict(ce=float(ce.detach()), adv_ce=nan, penalty=nan)

        x_adv = self.adversarial(model, x, y) if use_adv else None
        terms: list[torch.Tensor] = []
        parts = dict(ce=nan, adv_ce=nan, penalty=nan)
        if w < 1.0 or use_pen:
            xg = x.detach().requires_grad_(True) if use_pen else x
            logits = model(xg)
            ce = F.cross_entropy(logits, y)
            parts["ce"] = float(ce.detach())
            if w < 1.0:
                terms.append(ce if w == 0.0 else (1.0 - w) * ce)
        if use_adv:
            adv_ce = F.cross_entropy(model(x_adv), y)
            parts["adv_ce"] = float(adv_ce.detach())
            terms.append(adv_ce if w == 1.0 else w * adv_ce)
        if use_pen:
            if self.penalty == "margin_grad":
                pen = margin_grad_from_logits(logits, xg, y, self.penalty_norm)
            else:
                pen = ce_grad_from_logits(logits, xg, y)
            pen = pen.mean()
            parts["penalty"] = float(pen.detach())
            terms.append(self.penalty_coef * pen)
        loss = terms[0]
        for t in terms[1:]:
            loss = loss + t
        return loss, parts
