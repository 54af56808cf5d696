"""Study 002's robustness indicator: margin Jacobians and CE input-Hessian spectra against
per-example loops, dense ``torch.autograd.functional.hessian`` matrices and finite differences."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.curvature.statistics import (ce_input_hessian_spectrum_exact,
    ce_input_hessian_top_eig_power, hessian_zero_fraction, input_hvp, is_piecewise_linear,
    jacobian_stats, logit_input_jacobian, logit_margin, margin_input_grad,
    margin_input_hessian_top_eig_power, robustness_indicator)
from curvrobust.models import build_model

C, SHAPE = 4, (1, 6, 6)
D = 36


def _relu_net(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(27, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, C),
    ).to(dtype)


def _softplus_net(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(D, 10), nn.Softplus(), nn.Linear(10, C)).to(dtype)


def _data(n: int = 5, seed: int = 1, dtype: torch.dtype = torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *SHAPE), generator=gen, dtype=dtype)
    y = torch.randint(0, C, (n,), generator=gen)
    return x, y


def _dense_hessian(model: nn.Module, xi: torch.Tensor, yi: torch.Tensor, objective: str = "ce"):
    """D×D input Hessian of one example's CE (or margin) by torch.autograd.functional.hessian."""
    model.eval()

    def f(flat: torch.Tensor) -> torch.Tensor:
        z = model(flat.view(1, *SHAPE))
        if objective == "ce":
            return F.cross_entropy(z, yi.view(1))
        others = z.scatter(1, yi.view(1, 1), float("-inf"))
        return (z[0, yi] - others.amax()).squeeze()

    return torch.autograd.functional.hessian(f, xi.flatten().clone())


def _dominant(eigs: torch.Tensor) -> torch.Tensor:
    return eigs[eigs.abs().argmax()]


# ---------------------------------------------------------------- Jacobian of g

def test_margin_input_grad_matches_per_example_loop_and_leaves_model_alone():
    model = _relu_net()
    x, y = _data(7)
    model.train()
    before = copy.deepcopy(model.state_dict())
    got = margin_input_grad(model, x, y, batch_size=3)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    ref = []
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        z = model(xi)[0]
        j = max((k for k in range(C) if k != y[i]), key=lambda k: z[k].item())
        (g,) = torch.autograd.grad(z[y[i]] - z[j], xi)
        ref.append(g[0])
    assert got.shape == x.shape
    torch.testing.assert_close(got, torch.stack(ref), rtol=1e-12, atol=1e-14)


def test_margin_input_grad_linear_closed_form():
    torch.manual_seed(3)
    lin = nn.Linear(D, C).double()
    model = nn.Sequential(nn.Flatten(), lin)
    x, y = _data(9, seed=4)
    got = margin_input_grad(model, x, y, batch_size=4).flatten(1)
    with torch.no_grad():
        z = model(x)
        jstar = z.scatter(1, y[:, None], float("-inf")).argmax(1)
    W = lin.weight.detach()
    torch.testing.assert_close(got, W[y] - W[jstar], rtol=0, atol=1e-14)


def test_jacobian_stats_known_values():
    grad = torch.tensor([[[3.0, -4.0], [0.0, 1e-4]], [[0.0, 0.0], [0.0, 0.0]]])
    s = jacobian_stats(grad, zero_tol=1e-3)
    torch.testing.assert_close(s["l1"], torch.tensor([7.0001, 0.0]))
    torch.testing.assert_close(s["l2"], torch.tensor([math.sqrt(25 + 1e-8), 0.0]))
    torch.testing.assert_close(s["zero_frac"], torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert jacobian_stats(grad, zero_tol=0.0)["zero_frac"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="zero_tol"):
        jacobian_stats(grad, zero_tol=-1.0)


# ---------------------------------------------------------------- piecewise linearity

def test_is_piecewise_linear_cases():
    assert is_piecewise_linear(_relu_net())
    assert is_piecewise_linear(build_model("cnn000"))
    assert is_piecewise_linear(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Identity()))
    assert not is_piecewise_linear(_softplus_net())
    assert not is_piecewise_linear(nn.Sequential(nn.Linear(4, 4), nn.Tanh()))
    assert not is_piecewise_linear(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))


def test_exact_route_refuses_smooth_model():
    x, y = _data(2)
    with pytest.raises(ValueError, match=r"Softplus.*method='power'"):
        ce_input_hessian_spectrum_exact(_softplus_net(), x, y)
    with pytest.raises(ValueError, match="Softplus"):
        robustness_indicator(_softplus_net(), x, y, hessian="exact")
    with pytest.raises(ValueError, match="hessian"):
        robustness_indicator(_relu_net(), x, y, hessian="lanczos")


# ---------------------------------------------------------------- Hessian: exact route

def test_logit_input_jacobian_matches_autograd_functional():
    model = _relu_net().eval()
    x, _ = _data(3)
    got = logit_input_jacobian(model, x, batch_size=2)
    for i in range(3):
        ref = torch.autograd.functional.jacobian(lambda f: model(f.view(1, *SHAPE))[0],
                                                 x[i].flatten())
        torch.testing.assert_close(got[i], ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_spectrum_equals_dense_hessian(seed):
    model = _relu_net(seed)
    x, y = _data(4, seed=seed + 10)
    got = ce_input_hessian_spectrum_exact(model, x, y, batch_size=3)
    assert got.shape == (4, C) and got.dtype == torch.float64
    assert torch.all(got[:, :-1] >= got[:, 1:])  # descending
    for i in range(len(x)):
        dense = torch.linalg.eigvalsh(_dense_hessian(model, x[i], y[i])).flip(0)
        scale = dense.abs().max().item()
        assert scale > 1e-6  # a nontrivial Hessian, so the comparison means something
        torch.testing.assert_close(got[i], dense[:C], rtol=1e-9, atol=1e-12 * scale)
        assert dense[C:].abs().max() < 1e-10 * scale  # everything else vanishes
        assert abs(got[i, -1]) < 1e-10 * scale  # rank ≤ C − 1
        assert torch.all(got[i] > -1e-10 * scale)  # PSD


def test_hessian_zero_fraction_bound_and_known_value():
    model = _relu_net()
    x, y = _data(6)
    eigs = ce_input_hessian_spectrum_exact(model, x, y)
    frac = hessian_zero_fraction(eigs, D, zero_tol=1e-10)
    assert frac.shape == (6,)
    assert torch.all(frac >= (D - C + 1) / D) and torch.all(frac <= 1.0)
    # a tolerance above every eigenvalue counts them all
    assert torch.all(hessian_zero_fraction(eigs, D, zero_tol=float(eigs.max()) * 2) == 1.0)
    known = hessian_zero_fraction(torch.tensor([[5.0, -1e-9, 0.0], [1.0, 2.0, 3.0]]), 10, 1e-6)
    torch.testing.assert_close(known, torch.tensor([0.9, 0.7], dtype=torch.float64))
    with pytest.raises(ValueError, match="dim"):
        hessian_zero_fraction(eigs, C - 1)


# ---------------------------------------------------------------- Hessian: power route

@pytest.mark.parametrize("make", [_relu_net, _softplus_net])
def test_hvp_matches_finite_differences_and_is_per_example(make):
    model = make()
    x, y = _data(3, seed=5)
    gen = torch.Generator().manual_seed(7)
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    hv = input_hvp(model, x, y, v)

    def grad_at(xx: torch.Tensor) -> torch.Tensor:
        xg = xx.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model.eval()(xg), y, reduction="sum"), xg)
        return g

    h = 1e-5
    fd = (grad_at(x + h * v) - grad_at(x - h * v)) / (2 * h)
    torch.testing.assert_close(hv, fd, rtol=1e-6, atol=1e-8)
    for i in range(3):  # block-diagonal across the batch
        dense = _dense_hessian(model, x[i], y[i])
        torch.testing.assert_close(hv[i].flatten(), dense @ v[i].flatten(), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("make", [_relu_net, _softplus_net])
def test_power_top_eig_equals_dense(make):
    model = make()
    x, y = _data(5, seed=6)
    got = ce_input_hessian_top_eig_power(model, x, y, iters=2000, tol=1e-13, seed=0,
                                         batch_size=2)
    assert got.shape == (5,) and got.dtype == torch.float64
    for i in range(len(x)):
        eig = _dominant(torch.linalg.eigvalsh(_dense_hessian(model, x[i], y[i])))
        assert got[i].item() == pytest.approx(eig.item(), rel=1e-6, abs=1e-12)
    # deterministic and independent of the batch partition
    again = ce_input_hessian_top_eig_power(model, x, y, iters=2000, tol=1e-13, seed=0,
                                           batch_size=5)
    torch.testing.assert_close(got, again, rtol=1e-9, atol=1e-14)


def test_power_matches_exact_on_relu_net():
    model = _relu_net(2)
    x, y = _data(6, seed=8)
    exact = ce_input_hessian_spectrum_exact(model, x, y)[:, 0]
    power = ce_input_hessian_top_eig_power(model, x, y, iters=2000, tol=1e-13)
    torch.testing.assert_close(power, exact, rtol=1e-6, atol=1e-12)


def test_margin_hessian_power_smooth_and_relu():
    model = _softplus_net(1)
    x, y = _data(4, seed=9)
    got = margin_input_hessian_top_eig_power(model, x, y, iters=3000, tol=1e-13)
    for i in range(len(x)):
        eig = _dominant(torch.linalg.eigvalsh(_dense_hessian(model, x[i], y[i], "margin")))
        assert abs(eig) > 1e-6
        assert got[i].item() == pytest.approx(eig.item(), rel=1e-5)
    relu = margin_input_hessian_top_eig_power(_relu_net(), x, y, iters=5)
    assert torch.all(relu == 0)  # the margin of a piecewise-linear net has zero curvature a.e.


def test_power_argument_errors():
    x, y = _data(2)
    with pytest.raises(ValueError, match="iters"):
        ce_input_hessian_top_eig_power(_relu_net(), x, y, iters=0)
    with pytest.raises(ValueError, match="tol"):
        ce_input_hessian_top_eig_power(_relu_net(), x, y, tol=-1.0)


# ---------------------------------------------------------------- the indicator table

def _independent_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Per example, by plain autograd and dense Hessians: margin, ∇ₓg, CE input-Hessian
    eigenvalues (eval mode; no curvrobust helper involved)."""
    model.eval()
    out = []
    for xi, yi in zip(x, y):
        xg = xi.unsqueeze(0).clone().requires_grad_(True)
        z = model(xg)[0]
        j_star = max((j for j in range(C) if j != int(yi)), key=lambda j: float(z[j].detach()))
        g = z[int(yi)] - z[j_star]
        (grad,) = torch.autograd.grad(g, xg)
        eigs = torch.linalg.eigvalsh(_dense_hessian(model, xi, yi))
        out.append((float(g.detach()), int(z.argmax()) == int(yi), grad.flatten(), eigs))
    return out


def test_robustness_indicator_relu_net():
    """Every column against an independent per-example computation: margin and ∇ₓg by
    autograd on g = z_y − z_j*, the CE input-Hessian spectrum by a dense
    torch.autograd.functional.hessian and eigvalsh."""
    model = _relu_net(1)
    x, y = _data(7, seed=11)
    model.train()
    df = robustness_indicator(model, x, y, batch_size=3)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert list(df.columns) == ["index", "label", "correct", "margin", "grad_l1", "grad_l2",
                                "jac_zero_frac", "hess_top_eig", "hess_zero_frac", "hess_method"]
    assert len(df) == 7 and df["index"].tolist() == list(range(7))
    assert df["label"].tolist() == y.tolist()
    assert (df["hess_method"] == "exact").all()
    ref = _independent_rows(copy.deepcopy(model), x, y)
    assert {c for _, c, _, _ in ref} == {True, False}  # both kinds of example present
    np.testing.assert_allclose(df["margin"], [m for m, _, _, _ in ref], rtol=1e-12, atol=1e-14)
    assert df["correct"].tolist() == [c for _, c, _, _ in ref]
    np.testing.assert_allclose(df["grad_l1"], [float(g.abs().sum()) for _, _, g, _ in ref],
                               rtol=1e-10)
    np.testing.assert_allclose(df["grad_l2"], [float(g.norm()) for _, _, g, _ in ref],
                               rtol=1e-10)
    np.testing.assert_allclose(df["jac_zero_frac"],
                               [float((g.abs() < 1e-3).double().mean()) for _, _, g, _ in ref])
    top = [float(e[-1]) for _, _, _, e in ref]
    assert min(top) > 1e-6  # a non-trivial curvature to compare
    np.testing.assert_allclose(df["hess_top_eig"], top, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(df["hess_zero_frac"],
                               [float((e.abs() < 1e-3).double().mean()) for _, _, _, e in ref])
    power = robustness_indicator(model, x, y, hessian="power", power_iters=2000, power_tol=1e-13)
    assert (power["hess_method"] == "power").all() and power["hess_zero_frac"].isna().all()
    np.testing.assert_allclose(power["hess_top_eig"], top, rtol=1e-6, atol=1e-12)


def test_robustness_indicator_linear_model_closed_form():
    """For z = Wx + b: ∇ₓg = W_y − W_j* and ∇²ₓCE = Wᵀ(diag p − ppᵀ)W, computed by hand."""
    torch.manual_seed(5)
    lin = nn.Linear(D, C).double()
    model = nn.Sequential(nn.Flatten(), lin)
    x, y = _data(6, seed=13)
    df = robustness_indicator(model, x, y, batch_size=4)
    W, b = lin.weight.detach(), lin.bias.detach()
    for i, (xi, yi) in enumerate(zip(x, y)):
        z = W @ xi.flatten() + b
        others = [j for j in range(C) if j != int(yi)]
        j_star = others[int(torch.stack([z[j] for j in others]).argmax())]
        grad = W[int(yi)] - W[j_star]
        p = torch.softmax(z, 0)
        H = W.T @ (torch.diag(p) - torch.outer(p, p)) @ W
        eigs = torch.linalg.eigvalsh(H)
        row = df.iloc[i]
        assert row["margin"] == pytest.approx(float(z[int(yi)] - z[j_star]), rel=1e-12)
        assert bool(row["correct"]) == (int(z.argmax()) == int(yi))
        assert row["grad_l1"] == pytest.approx(float(grad.abs().sum()), rel=1e-12)
        assert row["grad_l2"] == pytest.approx(float(grad.norm()), rel=1e-12)
        assert row["jac_zero_frac"] == pytest.approx(float((grad.abs() < 1e-3).double().mean()))
        assert row["hess_top_eig"] == pytest.approx(float(eigs[-1]), rel=1e-10)
        assert row["hess_zero_frac"] == pytest.approx(float((eigs.abs() < 1e-3).double().mean()))
        assert row["hess_zero_frac"] >= (D - C + 1) / D  # rank ≤ C − 1


def test_robustness_indicator_smooth_net_uses_power_float32():
    model = _softplus_net(2, dtype=torch.float32)
    x, y = _data(5, seed=12, dtype=torch.float32)
    df = robustness_indicator(model, x, y, power_iters=200)
    assert len(df) == 5 and (df["hess_method"] == "power").all()
    cols = ["margin", "grad_l1", "grad_l2", "jac_zero_frac", "hess_top_eig"]
    assert np.isfinite(df[cols].to_numpy(dtype=float)).all()
    assert df["hess_zero_frac"].isna().all()
    assert df["jac_zero_frac"].between(0, 1).all()


def test_exact_spectrum_of_a_float32_model_is_finite_and_psd():
    # the float32 eigendecomposition that failed K-FAC (issue 25) has no counterpart here: the
    # C×C matrix of a float32 model is formed and eigendecomposed in float64, so its singular
    # direction (rank ≤ C − 1) comes out ≈ 0, not NaN or a large negative value; the spectrum
    # equals the float64 model's dense Hessian to float32 accuracy
    x, y = _data(6, seed=3, dtype=torch.float32)
    got = ce_input_hessian_spectrum_exact(_relu_net(2, torch.float32), x, y)
    assert got.dtype == torch.float64 and bool(torch.isfinite(got).all())
    model64 = _relu_net(2, torch.float64)
    for i in range(len(x)):
        dense = torch.linalg.eigvalsh(_dense_hessian(model64, x[i].double(), y[i])).flip(0)
        scale = float(dense.abs().max())
        assert scale > 1e-6
        torch.testing.assert_close(got[i], dense[:C], rtol=1e-4, atol=1e-5 * scale)
        assert abs(float(got[i, -1])) <= 1e-12 * scale  # the singular direction, in float64
