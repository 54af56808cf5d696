"""Gauss-Newton optimizer: directions against an independently built dense GGN solve."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.models import build_model
from curvrobust.optim import (GaussNewton, StructureError, dense_ggn, ggn_vector_product,
    trainable_params)
from curvrobust.optim.gauss_newton import (dense_direction, softmax_hessian_factor,
    structured_jacobian, structured_supported)

from dense_ggn import independent_ggn_and_grad

LAMBDA = 0.01
C = 4


class TokenNet(nn.Module):
    """Linear applied per position of a (N, T, in) input — exercises the non-factored Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Linear(3, 5)
        self.head = nn.Linear(20, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(x.reshape(-1, 4, 3))).flatten(1))


class SharedNet(nn.Module):
    """One Linear called twice plus a bare parameter: only the autodiff backend applies."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.scale = nn.Parameter(torch.tensor(1.3))
        self.head = nn.Linear(6, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.lin(x.reshape(x.shape[0], 6)))
        return self.head(torch.tanh(self.lin(h)) * self.scale)


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 3, 3, stride=2, dilation=1),
        nn.Tanh(), nn.Flatten(), nn.Linear(3 * 2 * 2, 6), nn.Tanh(), nn.Linear(6, C))


MODELS = {"conv": (conv_net, (1, 6, 6)), "token": (TokenNet, (12,)), "shared": (SharedNet, (6,))}


def make(name: str, n: int = 6, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    ctor, shape = MODELS[name]
    model = ctor().double()
    x = torch.rand(n, *shape, dtype=torch.float64)
    y = torch.randint(0, C, (n,))
    return model, x, y


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("scale", ["sum", "mean"])
@pytest.mark.parametrize("solver,backend", [("exact", "auto"), ("exact", "autodiff"),
                                            ("cg", "auto")])
def test_direction_matches_dense_solve(name: str, scale: str, solver: str, backend: str) -> None:
    model, x, y = make(name)
    G, g = independent_ggn_and_grad(model, x, y, scale)
    ref = torch.linalg.solve(G + LAMBDA * torch.eye(G.shape[0], dtype=G.dtype), g)
    opt = GaussNewton(model, damping=LAMBDA, solver=solver, ggn_scale=scale,
                      cg_max_iter=1000, cg_tol=1e-13, exact_backend=backend)
    d, loss = opt.solve_direction(x, y)
    assert rel(d, ref) <= 1e-5
    assert loss == pytest.approx(float(F.cross_entropy(model(x), y).detach()), rel=1e-12)


def test_backend_selection() -> None:
    assert structured_supported(make("conv")[0]) and structured_supported(make("token")[0])
    shared, x, _ = make("shared")
    assert not structured_supported(shared)
    with pytest.raises(ValueError, match="exact_backend"):
        GaussNewton(shared, exact_backend="structured")
    twice = nn.Sequential(nn.Linear(6, 6), nn.Tanh()).double()
    twice.append(twice[0])  # same layer called twice: detected at run time
    with pytest.raises(StructureError):
        structured_jacobian(twice, x.reshape(x.shape[0], 6))


@pytest.mark.parametrize("scale", ["sum", "mean"])
def test_dense_ggn_is_symmetric_psd_and_matches(scale: str) -> None:
    model, x, y = make("conv")
    G_ref, _ = independent_ggn_and_grad(model, x, y, scale)
    G = dense_ggn(model, x, scale)
    assert rel(G, G_ref) <= 1e-10
    assert torch.allclose(G, G.T, atol=1e-12 * G.abs().max())
    ev = torch.linalg.eigvalsh(G)
    assert ev.min() >= -1e-10 * ev.max()
    assert torch.linalg.matrix_rank(G) <= x.shape[0] * (C - 1)  # rank(H_i) = C − 1
    v = torch.randn(G.shape[0], dtype=torch.float64)
    gv = ggn_vector_product(model, trainable_params(model), x, v, scale)
    assert rel(gv, G @ v) <= 1e-10


def test_softmax_hessian_factor() -> None:
    torch.manual_seed(1)
    p = torch.softmax(torch.randn(5, 7, dtype=torch.float64) * 4, -1)
    p[0] = F.one_hot(torch.tensor(6), 7).double()  # saturated example, incl. p_C = 1
    R = softmax_hessian_factor(p)
    assert R.shape == (5, 7, 6)
    H = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
    assert torch.allclose(R @ R.transpose(-1, -2), H, atol=1e-14)


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_sum_and_mean_scalings_solve_their_own_systems(solver: str) -> None:
    """'mean' solves (G/B + λI) d = g and 'sum' (G + λI) d = g, G = Σ J_iᵀH_iJ_i built
    independently; each direction is far from the other system's solution (λ = 0.01, B = 6),
    so swapping or dropping the 1/B factor fails."""
    model, x, y = make("conv")
    G, g = independent_ggn_and_grad(model, x, y, "sum")
    eye = torch.eye(G.shape[0], dtype=G.dtype)
    ref = {"sum": torch.linalg.solve(G + LAMBDA * eye, g),
           "mean": torch.linalg.solve(G / x.shape[0] + LAMBDA * eye, g)}
    assert rel(ref["sum"], ref["mean"]) > 0.05  # the two systems are really different
    for scale, other in (("sum", "mean"), ("mean", "sum")):
        opt = GaussNewton(model, damping=LAMBDA, solver=solver, ggn_scale=scale,
                          cg_max_iter=1000, cg_tol=1e-13)
        d, _ = opt.solve_direction(x, y)
        assert rel(d, ref[scale]) <= 1e-5, scale
        assert rel(d, ref[other]) > 0.05, scale


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_step_updates_and_decreases_loss(solver: str) -> None:
    """θ_new = θ_old − lr·d with lr = 0.3 and d the dense solve of (G + λI) d = g (built
    independently): lr = 1, lr² or a missing lr would all be caught."""
    lr = 0.3
    model, x, y = make("conv", n=12)
    G, g = independent_ggn_and_grad(model, x, y, "sum")
    d_ref = torch.linalg.solve(G + 0.01 * torch.eye(G.shape[0], dtype=G.dtype), g)
    loss_ref = float(F.cross_entropy(model(x), y).detach())
    opt = GaussNewton(model, lr=lr, damping=0.01, solver=solver, cg_max_iter=200, cg_tol=1e-10)
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    d, _ = opt.solve_direction(x, y)  # the very vector the step must apply
    assert rel(d, d_ref) <= 1e-5
    assert opt.step(x, y) == pytest.approx(loss_ref, rel=1e-12)
    after = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    assert torch.allclose(after, before - lr * d, rtol=0, atol=1e-14)
    assert rel(before - after, lr * d_ref) <= 1e-5
    assert rel(before - after, d_ref) > 0.5  # lr really enters (1 − 0.3 = 0.7)
    losses = [loss_ref] + [opt.step(x, y) for _ in range(10)]
    assert opt.step_count == 11
    assert losses[-1] < 0.8 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))


@pytest.mark.parametrize("solver", ["exact", "cg"])
@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_non_finite_raises_with_step_and_damping(solver: str, bad: float) -> None:
    model, x, y = make("conv")
    opt = GaussNewton(model, damping=0.01, solver=solver, cg_max_iter=5)
    opt.step(x, y)
    with torch.no_grad():
        model[0].weight.fill_(bad)
    with pytest.raises(FloatingPointError, match=r"step 2\b.*0\.01"):
        opt.step(x, y)


@pytest.mark.parametrize("kwargs,arg", [
    ({"solver": "lbfgs"}, "solver"), ({"ggn_scale": "avg"}, "ggn_scale"),
    ({"damping": 0.0}, "damping"), ({"damping": -1e-3}, "damping"),
    ({"damping": math.nan}, "damping"), ({"lr": 0}, "lr"), ({"lr": -0.1}, "lr"),
    ({"lr": math.inf}, "lr"), ({"cg_max_iter": 0}, "cg_max_iter"), ({"cg_tol": -1.0}, "cg_tol"),
    ({"exact_backend": "fast"}, "exact_backend"),
])
def test_bad_arguments(kwargs: dict, arg: str) -> None:
    with pytest.raises(ValueError, match=arg):
        GaussNewton(make("conv")[0], **kwargs)


def test_study_cnn_exact_vs_cg_float32() -> None:
    torch.manual_seed(0)
    model = build_model("cnn000")
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    d_exact, _ = GaussNewton(model).solve_direction(x, y)
    d_auto, _ = GaussNewton(model, exact_backend="autodiff").solve_direction(x, y)
    d_cg, _ = GaussNewton(model, solver="cg", cg_max_iter=200, cg_tol=1e-10).solve_direction(x, y)
    assert rel(d_auto, d_exact) <= 1e-4
    assert rel(d_cg, d_exact) <= 1e-3


def test_step_works_under_no_grad() -> None:
    model, x, y = make("conv")
    d, _ = GaussNewton(model).solve_direction(x, y)
    for solver in ("exact", "cg"):
        opt = GaussNewton(model, solver=solver, cg_max_iter=500, cg_tol=1e-13)
        with torch.no_grad():
            d_ng, _ = opt.solve_direction(x, y)
        assert rel(d_ng, d) <= 1e-8


def test_exact_solver_is_safe_on_a_singular_kernel_in_float32() -> None:
    # K-FAC's float32 eigendecomposition failed on singular factors (issue 25); the exact solver's
    # one factorization is a float64 Cholesky of λI + AAᵀ, whose eigenvalues are ≥ λ whatever the
    # rank of AAᵀ: here a float32 model and a batch of 3 examples each repeated, so AAᵀ
    # (6·(C−1) square) has rank ≤ 3·(C−1), and the direction equals the dense float64 LU solve
    # from the same Jacobian
    torch.manual_seed(0)
    model = conv_net()
    x = torch.rand(3, 1, 6, 6).repeat(2, 1, 1, 1)
    y = torch.randint(0, C, (3,)).repeat(2)
    J, _ = structured_jacobian(model, x)
    A = J.transform(softmax_hessian_factor(torch.softmax(model(x).double(), -1)))
    gram = A.gram()
    assert int(torch.linalg.matrix_rank(gram, hermitian=True)) <= 3 * (C - 1) < gram.shape[0]
    d, _ = GaussNewton(model, damping=LAMBDA, exact_backend="autodiff").solve_direction(x, y)
    ref = dense_direction(model, x, y, LAMBDA)
    assert bool(torch.isfinite(d).all()) and rel(d, ref) <= 1e-9
