"""K-FAC's damped inverse on singular Kronecker factors (curvrobust.optim.kfac_inverse): the factors of a
wide layer are rank-deficient when the batch is smaller than its input, where float32 `eigh`
returns negative eigenvalues, or NaN on some CPUs. Checked against a dense float64 solve with the
same factors (curvlinops' forward K-FAC product, no eigendecomposition), on any CPU: the NaN is
made by a monkeypatched float32 `eigh`, and the same patch breaks the operator we replaced."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.models import build_model
from curvrobust.optim import KFAC, flatten

curvlinops = pytest.importorskip("curvlinops")
kfac_inverse = pytest.importorskip("curvrobust.optim.kfac_inverse")
from curvlinops import KFACInverseLinearOperator, KFACLinearOperator  # noqa: E402

Float64KFACInverse, psd_eigh = kfac_inverse.Float64KFACInverse, kfac_inverse.psd_eigh

LAMBDA = 0.01
BATCH = 8  # below the 73 inputs (with the bias) of the CNN's first Linear layer at 12×12 images


def wide_cnn_batch(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Study 000's CNN on 3×12×12 inputs (float32) and a batch smaller than its first Linear
    layer's input: that layer's input covariance (73×73) has rank ≤ 8."""
    torch.manual_seed(seed)
    model = build_model("cnn000", in_channels=3, image_size=12)
    x, y = torch.rand(BATCH, 3, 12, 12), torch.randint(0, 10, (BATCH,))
    return model, x, y


def kfac_operator(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> KFACLinearOperator:
    """The operator `KFAC.refresh` builds (type-2, summed loss, expand, joint weight and bias)."""
    params = [p for p in model.parameters() if p.requires_grad]
    op = KFACLinearOperator(model, nn.CrossEntropyLoss(reduction="sum"), params, [(x, y)],
                            fisher_type="type-2", kfac_approx="expand",
                            separate_weight_and_bias=False, check_deterministic=False,
                            num_data=len(x))
    op.compute_kronecker_factors()
    return op


def mean_ce_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    return list(torch.autograd.grad(F.cross_entropy(model(x), y), params))


def dense_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K + λI)⁻¹ g in float64 by a dense LU solve, K = curvlinops' forward K-FAC product with
    the model's own (float32) factors cast to float64: no eigendecomposition involved."""
    op = kfac_operator(model, x, y)
    for factors in (op._input_covariances, op._gradient_covariances):
        for name in factors:
            factors[name] = factors[name].to(torch.float64)
    n = sum(p.numel() for p in model.parameters())
    K = op @ torch.eye(n, dtype=torch.float64)
    K = 0.5 * (K + K.T)
    g = flatten(mean_ce_grads(model, x, y)).to(torch.float64)
    return torch.linalg.solve(K + LAMBDA * torch.eye(n, dtype=torch.float64), g)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture
def nan_float32_eigh(monkeypatch):
    """torch.linalg.eigh returns NaN eigenvalues for float32 input, as it did on an AMD EPYC CPU
    for the 513×513 input covariance of the CIFAR-10 CNN; float64 is left alone."""
    real = torch.linalg.eigh

    def eigh(a, *args, **kwargs):
        values, vectors = real(a, *args, **kwargs)
        if a.dtype == torch.float32:
            values = torch.full_like(values, float("nan"))
        return torch.return_types.linalg_eigh((values, vectors))

    monkeypatch.setattr(torch.linalg, "eigh", eigh)
    monkeypatch.setattr(curvlinops.inverse, "eigh", eigh)


def test_the_first_linear_layers_input_covariance_is_singular():
    # the premise of the tests below, so they cannot pass on a full-rank factor by accident
    model, x, y = wide_cnn_batch()
    A = kfac_operator(model, x, y)._input_covariances["classifier.1"]
    assert A.shape == (73, 73)
    values = torch.linalg.eigvalsh(A.to(torch.float64))
    assert int((values > 1e-6 * values.max()).sum()) <= BATCH  # above float32 rounding


def test_direction_on_a_singular_factor_equals_the_dense_float64_solve():
    model, x, y = wide_cnn_batch()
    ref = dense_reference(model, x, y)
    d, _ = KFAC(model, damping=LAMBDA).solve_direction(x, y)
    assert d.dtype == torch.float64 and bool(torch.isfinite(d).all())
    assert rel(d, ref) <= 1e-9


def test_float32_eigendecomposition_misses_the_dense_solve():
    # the same comparison for curvlinops' own inverse (float32 eigh, no clamping): the test above
    # asks for more than a float32 eigendecomposition gives
    model, x, y = wide_cnn_batch()
    ref = dense_reference(model, x, y)
    old = KFACInverseLinearOperator(kfac_operator(model, x, y), damping=LAMBDA,
                                    use_exact_damping=True)
    d_old = flatten(old @ mean_ce_grads(model, x, y)).to(torch.float64)
    assert rel(d_old, ref) > 1e-7


def test_nan_from_float32_eigh_reproduces_the_old_failure(nan_float32_eigh, monkeypatch):
    # the operator used before the fix, applied in the model's dtype as it was
    class Float32Inverse(KFACInverseLinearOperator):
        def __init__(self, op, damping):
            super().__init__(op, damping=damping, use_exact_damping=True)

        def __matmul__(self, X):
            return super().__matmul__([v.to(torch.float32) for v in X])

    model, x, y = wide_cnn_batch()
    monkeypatch.setattr(kfac_inverse, "Float64KFACInverse", Float32Inverse)
    with pytest.raises(FloatingPointError, match="K-FAC step 0: non-finite update direction"):
        KFAC(model, damping=LAMBDA).solve_direction(x, y)


def test_nan_from_float32_eigh_leaves_the_direction_finite_and_correct(nan_float32_eigh):
    model, x, y = wide_cnn_batch()
    ref = dense_reference(model, x, y)
    d, _ = KFAC(model, damping=LAMBDA).solve_direction(x, y)
    assert bool(torch.isfinite(d).all()) and rel(d, ref) <= 1e-9


def test_a_failing_float64_eigh_falls_back_to_the_svd(monkeypatch):
    model, x, y = wide_cnn_batch()
    ref = dense_reference(model, x, y)
    real = torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda a: torch.return_types.linalg_eigh(
        (torch.full_like(real(a)[0], float("nan")), real(a)[1])))
    d, _ = KFAC(model, damping=LAMBDA).solve_direction(x, y)
    assert rel(d, ref) <= 1e-9


def test_a_non_finite_factor_names_the_step_layer_and_factor(monkeypatch):
    real = KFACLinearOperator.compute_kronecker_factors

    def poisoned(self):
        real(self)
        self._gradient_covariances["classifier.1"][0, 0] = float("nan")

    monkeypatch.setattr(KFACLinearOperator, "compute_kronecker_factors", poisoned)
    model, x, y = wide_cnn_batch()
    with pytest.raises(FloatingPointError) as err:
        KFAC(model, damping=LAMBDA).solve_direction(x, y)
    msg = str(err.value)
    assert msg.startswith("K-FAC step 0: layer 'classifier.1', output-gradient covariance B")
    assert "1 non-finite entries of 256" in msg and "diverged" not in msg


def test_non_finite_eigenvalues_of_a_finite_factor_are_reported_as_such(monkeypatch):
    nan = lambda a: torch.full((a.shape[-1],), float("nan"), dtype=a.dtype)  # noqa: E731
    monkeypatch.setattr(torch.linalg, "eigh", lambda a: torch.return_types.linalg_eigh(
        (nan(a), torch.eye(a.shape[-1], dtype=a.dtype))))
    monkeypatch.setattr(torch.linalg, "svd", lambda a, **k: (torch.eye(a.shape[-1], dtype=a.dtype),
                                                            nan(a), torch.eye(a.shape[-1])))
    with pytest.raises(FloatingPointError, match="layer 'x', A: its float64 eigendecomposition "
                                                 "and SVD both returned non-finite values"):
        psd_eigh(torch.eye(3), "layer 'x', A")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psd_eigh_clamps_and_reconstructs_a_singular_factor(dtype):
    torch.manual_seed(0)
    a = torch.randn(5, 40, dtype=dtype)
    factor = a.T @ a  # 40×40, rank 5
    values, vectors = psd_eigh(factor)
    assert values.dtype == vectors.dtype == torch.float64
    assert bool((values >= 0).all()) and int((values > 1e-6 * values.max()).sum()) == 5
    # the rebuilt factor differs from the given one only by the clamped negative eigenvalues
    # (float32 rounding makes a float32 Gram matrix slightly indefinite)
    exact = factor.to(torch.float64)
    back = vectors @ torch.diag(values) @ vectors.T
    clamped = max(0.0, -float(torch.linalg.eigvalsh(exact).min()))
    error = float(torch.linalg.matrix_norm(back - exact, ord=2))
    assert error <= clamped + 1e-12 * float(values.max())


def test_kfac_on_float64_models_is_unchanged_by_the_dtype_of_the_inverse():
    # a float64 model's factors are float64 already: the step equals the dense solve too
    model, x, y = wide_cnn_batch()
    model, x = model.double(), x.double()
    ref = dense_reference(model, x, y)
    d, _ = KFAC(model, damping=LAMBDA).solve_direction(x, y)
    assert rel(d, ref) <= 1e-9
