"""The power route of the CE input-Hessian top eigenvalue runs in float64.

A float32 double backprop loses the CE curvature of confidently classified images: the terms
p_j(1 − p_j) ~ e^−margin round to 0 or are distorted once p_y rounds to 1 (margin ≳ 16). The
tests build one small softplus MLP (float32 weights) and five 1×4×4 images whose logit margins
are 5, 16, 20, 40 and 80, and compare against exact float64 input Hessians
(torch.autograd.functional.hessian + eigvalsh, no curvrobust helper involved).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.curvature.statistics import (ce_input_hessian_top_eig_power, input_hvp,
    margin_input_hessian_top_eig_power)

TARGET_MARGINS = (5.0, 16.0, 20.0, 40.0, 80.0)
SHAPE = (1, 4, 4)


def _model() -> nn.Module:
    """2-layer softplus MLP, 16 → 12 → 10, float32; the last layer scaled by 100 so that moderate
    inputs (pre-activations ≤ ~4, where softplus is far from piecewise linear) reach margin 80."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Softplus(), nn.Linear(12, 10))
    with torch.no_grad():
        model[3].weight.mul_(100.0)
        model[3].bias.zero_()
    return model


def _margin(m64: nn.Module, x: torch.Tensor, y: int) -> torch.Tensor:
    z = m64(x)
    others = z.scatter(1, torch.full((z.shape[0], 1), y), float("-inf"))
    return z[:, y] - others.amax(dim=1)


def _stable_ce(z: torch.Tensor, y: int) -> torch.Tensor:
    """CE of one correctly classified logit vector z as log1p(Σ_{j≠y} e^{z_j − z_y}): exact
    identity, no cancellation, so its float64 Hessian is accurate at any margin (the double
    backprop of F.cross_entropy is not beyond margins of ~37, even in float64)."""
    d = z - z[y]
    return torch.log1p(torch.cat([d[:y], d[y + 1:]]).exp().sum())


def _dense_hessian(m64: nn.Module, xi: torch.Tensor, y: int, objective: str) -> torch.Tensor:
    def f(flat: torch.Tensor) -> torch.Tensor:
        z = m64(flat.view(1, *SHAPE))[0]
        if objective == "ce":
            return _stable_ce(z, y)
        if objective == "ce_torch":
            return F.cross_entropy(z[None], torch.tensor([y]))
        return z[y] - torch.cat([z[:y], z[y + 1:]]).max()

    return torch.autograd.functional.hessian(f, xi.to(torch.float64).flatten().clone())


@pytest.fixture(scope="module")
def case():
    """(float32 model, float32 x (5, 1, 4, 4), labels, float64 margins of x, exact top CE
    eigenvalues, exact dominant margin-Hessian eigenvalues). Images x0 + c·u on the line along
    the margin's input gradient, c found by bisection so the margins hit TARGET_MARGINS."""
    model = _model()
    m64 = copy.deepcopy(model).double().eval()
    gen = torch.Generator().manual_seed(100)
    x0 = torch.rand((1, *SHAPE), generator=gen, dtype=torch.float64)
    y = int(m64(x0).argmax())
    xg = x0.clone().requires_grad_(True)
    (u,) = torch.autograd.grad(_margin(m64, xg, y).sum(), xg)
    u = u / u.norm()

    def margin_at(c: float) -> float:
        with torch.no_grad():
            return float(_margin(m64, x0 + c * u, y))

    cs = []
    for target in TARGET_MARGINS:
        lo, hi = -1.0, 1.0
        assert margin_at(lo) < target
        while margin_at(hi) < target:
            hi *= 2
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if margin_at(mid) < target else (lo, mid)
        cs.append(hi)
    x = torch.cat([x0 + c * u for c in cs]).to(torch.float32)
    labels = torch.full((len(cs),), y)
    with torch.no_grad():
        margins = _margin(m64, x.double(), y)
    top = torch.stack([torch.linalg.eigvalsh(_dense_hessian(m64, xi, y, "ce"))[-1] for xi in x])
    dom = []
    for xi in x:
        e = torch.linalg.eigvalsh(_dense_hessian(m64, xi, y, "margin"))
        dom.append(e[e.abs().argmax()])
    return model, x, labels, margins, top, torch.stack(dom)


def test_case_margins_and_reference(case):
    """The images' margins really are 5, 16, 20, 40, 80, the pre-activations moderate, and the
    stable-CE reference Hessian agrees with F.cross_entropy's where the latter is accurate."""
    model, x, y, margins, top, _ = case
    assert x.dtype == torch.float32 and model[1].weight.dtype == torch.float32
    torch.testing.assert_close(margins, torch.tensor(TARGET_MARGINS, dtype=torch.float64),
                               rtol=0, atol=1e-3)
    with torch.no_grad():
        assert float(model[1](x.flatten(1)).abs().max()) < 5.0  # softplus is smooth here
    assert torch.all(top > 0)
    # the true curvature shrinks like e^−margin: ~1e-33 at margin 80 (float64's range is ample)
    assert float(top[-1]) < 1e-30
    m64 = copy.deepcopy(model).double().eval()
    for i in range(2):  # margins 5 and 16
        ref = torch.linalg.eigvalsh(_dense_hessian(m64, x[i], int(y[i]), "ce_torch"))[-1]
        assert float(ref) == pytest.approx(float(top[i]), rel=1e-8)


def test_power_top_eig_matches_exact_float64_at_every_margin(case):
    """At library defaults (iters=50, tol=1e-6), relative error ≤ 1e-6 at every margin up to
    80 (measured ~1e-14: λ₂/λ₁ ≈ 0.016 here, so each step shrinks the Rayleigh-quotient error
    ~4000×, and the stopping rule tol=1e-6 bounds it well below 1e-6), whatever the batching."""
    model, x, y, _, top, _ = case
    got = ce_input_hessian_top_eig_power(model, x, y, batch_size=2)
    assert got.shape == (5,) and got.dtype == torch.float64 and got.device.type == "cpu"
    rel = (got - top).abs() / top.abs()
    assert torch.all(rel <= 1e-6), rel
    tight = ce_input_hessian_top_eig_power(model, x, y, iters=200, tol=1e-13, batch_size=5)
    rel = (tight - top).abs() / top.abs()
    assert torch.all(rel <= 1e-10), rel
    torch.testing.assert_close(got, tight, rtol=1e-6, atol=0)


def test_margin_hessian_power_matches_exact_float64(case):
    model, x, y, _, _, dom = case
    got = margin_input_hessian_top_eig_power(model, x, y, iters=500, tol=1e-13, batch_size=3)
    assert got.dtype == torch.float64
    assert torch.all(dom.abs() > 1e-3)  # a non-trivial (smooth-net) curvature to compare
    torch.testing.assert_close(got, dom, rtol=1e-8, atol=0)


def _float32_power_top_eig(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           iters: int = 200) -> torch.Tensor:
    """The former route: plain power iteration with float32 double-backprop HVPs of
    F.cross_entropy on the float32 model (all dominant eigenvalues are positive here)."""
    model.eval()
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg,
                               create_graph=True)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    lam = torch.zeros(x.shape[0])
    for _ in range(iters):
        (hv,) = torch.autograd.grad(g, xg, grad_outputs=v, retain_graph=True)
        lam = (hv * v).flatten(1).sum(dim=1)
        v = hv / hv.flatten(1).norm(dim=1).clamp_min(torch.finfo(hv.dtype).tiny).view(-1, 1, 1, 1)
    return lam.double()


def test_float32_power_iteration_is_wrong_for_confident_images(case):
    """The premise of the float64 route: float32 HVPs are fine at margin 5 but > 10 % off at
    margins ≥ 20 (p_y rounds to 1 in float32 once e^−margin < 2⁻²⁴, margin ≳ 16.6)."""
    model, x, y, margins, top, _ = case
    f32 = _float32_power_top_eig(copy.deepcopy(model), x, y)
    rel = (f32 - top).abs() / top.abs()
    assert float(rel[0]) < 1e-3
    off = ~(rel <= 0.1)  # NaN counts as off
    assert torch.all(off[margins >= 20]), rel


def test_model_left_untouched(case):
    """The original float32 model keeps its dtype, values, .grad fields and (mixed) modes."""
    model, x, y, _, _, _ = case
    model = copy.deepcopy(model)
    model.train()
    model[2].eval()  # mixed modes must come back as they were
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    ce_input_hessian_top_eig_power(model, x, y, iters=5)
    margin_input_hessian_top_eig_power(model, x, y, iters=5)
    input_hvp(model, x, y, torch.ones_like(x))
    assert [m.training for m in model.modules()] == modes
    assert all(p.dtype == torch.float32 and p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_input_hvp_float32_inputs_accurate_for_confident_images(case):
    """input_hvp also runs in float64 and rounds once to x's dtype: float32-accurate products
    even at margin 80, where a float32 double backprop would lose them."""
    model, x, y, _, _, _ = case
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    hv = input_hvp(model, x, y, v)
    assert hv.dtype == torch.float32 and hv.shape == x.shape
    m64 = copy.deepcopy(model).double().eval()
    for i in range(len(x)):
        ref = _dense_hessian(m64, x[i], int(y[i]), "ce") @ v[i].double().flatten()
        err = (hv[i].double().flatten() - ref).norm() / ref.norm()
        assert float(err) < 1e-6
