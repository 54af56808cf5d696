"""K-FAC's damped inverse (K + λI)⁻¹, formed in float64 from PSD-clamped factor spectra.

curvlinops' `KFACInverseLinearOperator` with exact damping eigendecomposes each layer's Kronecker
factors A = E[aaᵀ] and B = E[ggᵀ] in the model's dtype and divides by λ + a_i·b_j. Both factors
are positive semi-definite, and often singular: a batch of N examples gives A rank ≤ N, below the
input dimension of a wide layer (393 for study 000's MNIST CNN at batch 128, 513 for its CIFAR-10
version at batch 50). On such a factor float32 `eigh` returns eigenvalues below 0 (−4·10⁻⁶ on
the CIFAR-10 factors), by which exact damping then divides once a_i·b_j < −λ, and on some CPUs
(an AMD EPYC with MKL) NaN outright.

:class:`Float64KFACInverse` extends curvlinops' operator in this one place: each factor is
checked for non-finite entries, eigendecomposed in float64 (:func:`psd_eigh`; an SVD, exact for
a symmetric PSD matrix, if LAPACK's float64 `eigh` still fails), its negative eigenvalues are
clamped at 0, and the damped inverse is applied in float64 (pass float64 vectors), whatever the
model's dtype. Everything else (the factors, the Kronecker products) is curvlinops' own code.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

with warnings.catch_warnings():  # its dependencies' import-time deprecation notices
    warnings.simplefilter("ignore", FutureWarning)
    from curvlinops import KFACInverseLinearOperator, KFACLinearOperator

__all__ = ["Float64KFACInverse", "psd_eigh"]


def _all_finite(*tensors: Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def psd_eigh(factor: Tensor, what: str = "factor") -> tuple[Tensor, Tensor]:
    """(eigenvalues ≥ 0, eigenvectors as columns) of a symmetric PSD matrix, in float64.

    Rounding makes the zero eigenvalues of a singular factor come out slightly negative; they
    are clamped at 0, the factor's true value. Raises FloatingPointError naming `what` if the
    factor has non-finite entries, or if neither `eigh` nor the SVD returns finite values."""
    bad = int((~torch.isfinite(factor)).sum())
    if bad:
        raise FloatingPointError(
            f"{what} has {bad} non-finite entries of {factor.numel()} (the factor itself, before "
            "any eigendecomposition)")
    f = factor.detach().to(torch.float64)
    f = 0.5 * (f + f.mT)
    values, vectors = torch.linalg.eigh(f)
    if not _all_finite(values, vectors):
        # for a symmetric PSD matrix the SVD is an eigendecomposition (up to the sign of the
        # rounding-level negative eigenvalues, which are clamped to 0 anyway)
        vectors, values, _ = torch.linalg.svd(f)
        if not _all_finite(values, vectors):
            raise FloatingPointError(
                f"{what}: its float64 eigendecomposition and SVD both returned non-finite values "
                "although its entries are finite")
    return values.clamp_min_(0.0), vectors


class Float64KFACInverse(KFACInverseLinearOperator):
    """(K + λI)⁻¹ of a `KFACLinearOperator` with exact damping, from float64 eigendecompositions
    of the factors with negative eigenvalues clamped at 0 (:func:`psd_eigh`). Multiply it onto
    float64 vectors; the result is float64. A non-finite factor or spectrum raises
    FloatingPointError naming the layer and the factor."""

    def __init__(self, A: KFACLinearOperator, damping: float) -> None:
        super().__init__(A, damping=damping, use_exact_damping=True)
        self._layer = "?"

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64

    def _compute_or_get_cached_inverse(self, name: str):
        self._layer = name  # for the error messages of the eigendecompositions below
        return super()._compute_or_get_cached_inverse(name)

    def _compute_factors_eigendecomposition(self, aaT: Tensor | None, ggT: Tensor | None):
        def decompose(factor: Tensor | None, which: str) -> tuple[Tensor | None, Tensor | None]:
            if factor is None:
                return None, None
            n = factor.shape[0]
            return psd_eigh(factor, f"layer {self._layer!r}, {which} ({n}×{n})")

        return (decompose(aaT, "input covariance A = E[aaᵀ]"),
                decompose(ggT, "output-gradient covariance B = E[ggᵀ]"))
