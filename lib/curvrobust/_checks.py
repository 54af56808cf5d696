"""Argument checks and tolerances shared by the subpackages (private: not part of the API).

Standard library only at import time, so the torch-free modules (`evaluation.outcomes`,
the plans) may use them too; the tensor helpers call tensor methods, not torch functions."""

from __future__ import annotations

import numbers
from typing import Any

EPS_RTOL = 1e-9
"""Relative tolerance for matching an ε read back from a CSV file with a configured one: the
written float comes back exactly up to rounding, so nothing looser is needed."""


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int; ValueError naming ``name`` unless it is an integer (not a bool)
    >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def check_eps(eps: float) -> float:
    """``eps`` as a float; ValueError unless it is >= 0 (NaN is rejected)."""
    eps = float(eps)
    if not eps >= 0.0:  # also rejects NaN
        raise ValueError(f"eps must be >= 0, got eps={eps!r}")
    return eps


def check_kappa(kappa: float) -> float:
    """The C&W confidence ``kappa`` as a float; ValueError unless it is >= 0 (+inf: no cap)."""
    kappa = float(kappa)
    if not kappa >= 0.0:  # also rejects NaN; +inf means no cap
        raise ValueError(f"kappa must be >= 0 (or inf), got kappa={kappa!r}")
    return kappa


def check_batch(x: Any, y: Any) -> int:
    """N of a non-empty batch of inputs ``x`` (N, ...) with N labels ``y`` (N,); a ValueError
    naming both shapes otherwise."""
    n = len(x)
    if n == 0 or x.ndim < 2 or tuple(y.shape) != (n,):
        raise ValueError(f"x must be a non-empty batch (N, ...) with N labels y (N,), got x "
                         f"{tuple(x.shape)}, y {tuple(y.shape)}")
    return n


def per_example_norm(t: Any, ord: float = 2.0) -> Any:
    """The ``ord``-norm of each example's flattened slice of ``t`` (N, ...), shape (N,)."""
    return t.reshape(t.shape[0], -1).norm(p=ord, dim=1)
