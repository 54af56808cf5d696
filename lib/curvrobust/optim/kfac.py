"""K-FAC (Martens & Grosse 2015): :class:`~curvrobust.optim.gauss_newton.GaussNewton`'s damped
step with the GGN replaced by its Kronecker-factored approximation, built on curvlinops
(study 000's scalable successor of Gauss-Newton)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from curvrobust._checks import check_int
from curvrobust.optim.gauss_newton import GaussNewton, check_damped_step, descend, flatten

KFAC_APPROX = ("expand", "reduce")


def outside_kfac_layers(model: nn.Module) -> list[str]:
    """Names of the trainable parameters K-FAC cannot factor (outside nn.Linear / nn.Conv2d)."""
    owned = {id(p) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))
             for p in m.parameters(recurse=False)}
    return [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in owned]


class KFAC:
    """K-FAC steps  θ ← θ − lr·(K + λI)⁻¹ g:  :class:`GaussNewton`'s step with the GGN G replaced
    by its Kronecker-factored approximation K (Martens & Grosse 2015; convolutions by Grosse &
    Martens 2016, `kfac_approx: expand`, or Eschenhagen et al. 2023, `reduce`).

    K is what study 000 names as Gauss-Newton's scalable successor, built so that the two
    compare: the curvature is the type-2 Fisher (the exact softmax Hessian of the GGN, no
    sampled labels); each layer's weight and bias share one Kronecker factor; the factors come
    from the summed loss (`ggn_scale: sum`, K ≈ GaussNewton's G) or the mean loss (`mean`); the
    damping is added to the whole of K, (K + λI)⁻¹ applied exactly through eigendecompositions
    of the factors, not to each factor; g is the gradient of the batch-MEAN cross-entropy. The
    factors and their inverse are computed on the current batch every `update_every` steps (the
    first step included), with no running average; the steps in between reuse them.

    With `gn_cosine_every` = N > 0, every N-th step also solves the exact Gauss-Newton system on
    its batch (:class:`GaussNewton`, same lr, λ and scaling) and records the cosine between the
    two directions in `diagnostic_rows` (step, cos_gn); the weights never see that direction.

    The factors are curvlinops' `KFACLinearOperator` (`fisher_type="type-2"`,
    `separate_weight_and_bias=False`; its defaults, a Monte-Carlo Fisher and per-factor damping,
    would be another optimiser); the damped inverse is its `KFACInverseLinearOperator` with
    exact damping, extended (:class:`~curvrobust.optim.kfac_inverse.Float64KFACInverse`) to
    eigendecompose the factors in float64 with negative eigenvalues clamped at 0 and to apply
    the inverse in float64, whatever the model's dtype: the factors of a wide layer are singular
    when the batch is smaller than its input, and float32 `eigh` there returns negative
    eigenvalues, or NaN on some CPUs."""

    def __init__(self, model: nn.Module, lr: float = 0.01, damping: float = 0.01,
                 ggn_scale: str = "sum", kfac_approx: str = "expand",
                 update_every: int = 1, gn_cosine_every: int = 0) -> None:
        check_damped_step(lr, damping, ggn_scale)
        if kfac_approx not in KFAC_APPROX:
            raise ValueError(f"kfac_approx must be one of {KFAC_APPROX}, got {kfac_approx!r}")
        check_int("update_every", update_every, 1)
        check_int("gn_cosine_every", gn_cosine_every, 0)
        outside = outside_kfac_layers(model)
        if outside:
            raise ValueError("K-FAC factors only nn.Linear and nn.Conv2d layers; these trainable "
                             f"parameters are elsewhere: {', '.join(outside)}")
        self.model = model
        self.lr, self.damping = float(lr), float(damping)
        self.ggn_scale, self.kfac_approx, self.update_every = ggn_scale, kfac_approx, update_every
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.step_count = 0
        self._inverse = None
        self.gn_cosine_every = gn_cosine_every
        self.diagnostic_rows: list[dict[str, float]] = []
        self.last_parts: dict[str, float] = {}  # the training loop's Stepper protocol: plain CE

    @property
    def last_lr(self) -> float:
        """The learning rate of the last step: fixed (no schedule)."""
        return self.lr

    def _fail(self, what: str) -> FloatingPointError:
        return FloatingPointError(
            f"K-FAC step {self.step_count}: {what} (damping λ={self.damping:g}); "
            "the weights or the batch have probably diverged")

    def refresh(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Compute the Kronecker factors on the batch (x, y) and their damped inverse."""
        from curvrobust.optim.kfac_inverse import Float64KFACInverse, KFACLinearOperator

        reduction = "sum" if self.ggn_scale == "sum" else "mean"
        op = KFACLinearOperator(
            self.model, nn.CrossEntropyLoss(reduction=reduction), self.params, [(x, y)],
            fisher_type="type-2", kfac_approx=self.kfac_approx,
            separate_weight_and_bias=False, check_deterministic=False, num_data=len(x))
        self._inverse = Float64KFACInverse(op, damping=self.damping)

    def _apply_inverse(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """(K + λI)⁻¹ g as a flat float64 vector; a non-finite factor or spectrum is reported
        with the step, the layer and the factor."""
        try:
            return flatten(self._inverse @ [g.detach().to(torch.float64) for g in grads])
        except FloatingPointError as e:
            raise FloatingPointError(f"K-FAC step {self.step_count}: {e}") from e

    def solve_direction(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(K + λI)⁻¹ g as a flat float64 vector (parameter order) and the batch-mean CE loss at
        the current weights; refreshes K first when it is due (:meth:`refresh`). Does not
        change the weights."""
        if self._inverse is None or self.step_count % self.update_every == 0:
            self.refresh(x, y)
        with torch.enable_grad():
            loss = F.cross_entropy(self.model(x), y)
            grads = torch.autograd.grad(loss, self.params)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise self._fail(f"non-finite loss {loss_value}")
        d = self._apply_inverse(grads)
        if not bool(torch.isfinite(d).all()):
            raise self._fail("non-finite update direction")
        if self.gn_cosine_every and self.step_count % self.gn_cosine_every == 0:
            d_gn, _ = GaussNewton(self.model, lr=self.lr, damping=self.damping,
                                  ggn_scale=self.ggn_scale).solve_direction(x, y)
            cos = float(d @ d_gn / (d.norm() * d_gn.norm()))
            self.diagnostic_rows.append(dict(step=self.step_count, cos_gn=cos))
        return d, loss_value

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One K-FAC step on the batch; returns the batch mean CE loss BEFORE the step."""
        d, loss = self.solve_direction(x, y)
        self.step_count += 1
        descend(self.params, d, self.lr)
        self.last_parts = dict(ce=loss)
        return loss
