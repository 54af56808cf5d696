"""HAAT (study 001): Hessian-vector products against dense Hessians, power iteration against a
known spectrum, the attack's invariants, and its reduction to PGD / torchattacks at w₂ = 0."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import curvrobust.attacks.second_order
from curvrobust import attacks
from curvrobust.attacks.second_order import (HVP_METHODS, haat, haat_trace, hvp_relative_error,
    input_hvp_batch, input_loss_grad, power_iteration)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def smooth():
    """A tiny smooth float64 MLP (6 → 5 tanh → 3), 4 inputs in [0, 1]^6 and labels."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double().eval()
    x = torch.rand(4, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    return model, x, y


def dense_hessians(model, x, y):
    """Per-example input Hessians of CE, (N, d, d), by torch.autograd.functional.hessian."""
    return torch.stack([
        torch.autograd.functional.hessian(
            lambda z, i=i: F.cross_entropy(model(z[None]), y[i:i + 1]), x[i])
        for i in range(x.shape[0])
    ])


class TinyCNN(nn.Module):
    """Conv 1→4 (3×3) → ReLU → max-pool → linear to 3 classes, on 1×8×8 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


def make_images(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class (0, 1, 2) is a bright top, left or centre block, plus noise."""
    y = torch.arange(n) % 3
    x = 0.3 * torch.rand(n, 1, 8, 8, generator=gen)
    x[y == 0, :, :3, :] += 0.6
    x[y == 1, :, :, :3] += 0.6
    x[y == 2, :, 3:6, 3:6] += 0.6
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def cnn():
    """A TinyCNN trained briefly (Adam, 20 steps) on make_images: it classifies the 8 held-out
    images correctly without saturating (CE ≈ 1e-2, so float32 gradients are not all noise)."""
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    model = TinyCNN()
    xt, yt = make_images(96, gen)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    x, y = make_images(8, gen)
    return model, x, y


# ---------------------------------------------------------------------------------------------
# Hessian-vector products
# ---------------------------------------------------------------------------------------------

def test_exact_hvp_equals_dense_hessian(smooth):
    model, x, y = smooth
    u = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    H = dense_hessians(model, x, y)
    expected = torch.einsum("nij,nj->ni", H, u)
    got = input_hvp_batch(model, x, y, u, method="exact")
    assert got.shape == x.shape and not got.requires_grad
    assert (got - expected).abs().max() < 1e-8
    assert expected.abs().max() > 1e-3  # a non-trivial Hessian
    # the summed loss keeps per-example gradients unscaled by the batch size
    g = input_loss_grad(model, x, y)
    g0 = input_loss_grad(model, x[:1], y[:1])
    assert torch.allclose(g[:1], g0, atol=1e-14)


def test_finite_differences_converge(smooth):
    model, x, y = smooth
    u = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(3))
    exact = input_hvp_batch(model, x, y, u, method="exact")
    errs = {m: [] for m in ("fd", "fd_central")}
    for xi in (1e-2, 1e-3, 1e-4):
        for m in errs:
            errs[m].append(float((input_hvp_batch(model, x, y, u, method=m, xi=xi)
                                  - exact).norm()))
    for m, e in errs.items():
        assert e[0] > e[1] > e[2], (m, e)
    # forward difference error is O(ξ), central O(ξ²)
    assert 5 < errs["fd"][0] / errs["fd"][1] < 20
    assert errs["fd_central"][0] / errs["fd_central"][1] > 50
    assert all(c < 0.1 * f for c, f in zip(errs["fd_central"], errs["fd"]))
    # passing the gradient at x gives the same forward difference
    g = input_loss_grad(model, x, y)
    assert torch.equal(input_hvp_batch(model, x, y, u, method="fd", xi=1e-3, grad_x=g),
                       input_hvp_batch(model, x, y, u, method="fd", xi=1e-3))


def test_hvp_bad_arguments(smooth):
    model, x, y = smooth
    with pytest.raises(ValueError, match="method.*fd_central"):
        input_hvp_batch(model, x, y, x, method="backward")
    for xi in (0.0, -1e-3, math.nan, math.inf):
        with pytest.raises(ValueError, match="xi"):
            input_hvp_batch(model, x, y, x, method="fd", xi=xi)


def test_hvp_relative_error_rows(smooth):
    model, x, y = smooth
    u = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(4))
    xis = [1e-2, 1e-3, 1e-4]
    rows = hvp_relative_error(model, x, y, u, xis)
    assert [(r["method"], r["xi"]) for r in rows] == \
        [(m, xi) for m in ("fd", "fd_central") for xi in xis]
    assert all(r["n"] == 4 and math.isfinite(r["median"]) for r in rows)
    assert all(r["median"] <= r["q90"] for r in rows)
    by = {(r["method"], r["xi"]): r for r in rows}
    for xi in xis:
        assert by["fd_central", xi]["median"] < by["fd", xi]["median"]
    # forward-difference error ≈ ξ·(third-derivative term): relative error ≈ c·ξ
    assert by["fd", 1e-3]["median"] == pytest.approx(0.1 * by["fd", 1e-2]["median"], rel=0.1)


def test_forward_difference_breaks_down_in_float32(cnn):
    """The study's ξ = 1e-6 in float32: the gradient difference drowns in rounding error."""
    model, x, y = cnn
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(6))
    u = u / u.flatten(1).norm(dim=1)[:, None, None, None]
    rows = hvp_relative_error(model, x, y, u, [1e-3, 1e-6], methods=("fd",))
    assert rows[0]["median"] < 0.1
    assert rows[1]["median"] > 0.3


# ---------------------------------------------------------------------------------------------
# Power iteration
# ---------------------------------------------------------------------------------------------

def test_power_iteration_finds_top_eigenvector():
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3, 6, 6, generator=gen, dtype=torch.float64))
    lam = torch.tensor([5.0, 2.0, 1.0, 0.5, -0.2, 0.1], dtype=torch.float64)
    a = q @ torch.diag_embed(lam.expand(3, 6)) @ q.transpose(1, 2)

    def hvp(v):
        return (a @ v[..., None])[..., 0]

    u0 = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    uk, diffs = power_iteration(hvp, u0, 40)
    assert uk.shape == u0.shape and diffs.shape == (40, 3)
    assert torch.allclose((uk * q[:, :, 0]).sum(1).abs(), torch.ones(3, dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(uk.norm(dim=1), torch.ones(3, dtype=torch.float64))
    start = u0 / u0.norm(dim=1, keepdim=True)
    first = hvp(start)
    first = first / first.norm(dim=1, keepdim=True)
    assert torch.allclose(diffs[0], (first - start).norm(dim=1), atol=1e-14)
    # geometric convergence at rate λ₂/λ₁ = 0.4 once the top component dominates
    tail = diffs[20:30]
    assert (tail[1:] < tail[:-1]).all()
    assert torch.allclose(tail[1:] / tail[:-1], torch.full_like(tail[1:], 0.4), rtol=0.01)


def test_power_iteration_negative_top_eigenvalue_and_zero_hvp():
    gen = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([-4.0, 1.0, 0.5, 0.1], dtype=torch.float64)) @ q.T
    u0 = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    uk, diffs = power_iteration(lambda v: v @ a, u0, 40)
    assert torch.allclose((uk @ q[:, 0]).abs(), torch.ones(2, dtype=torch.float64))
    # converged up to sign, but the iterates flip: the study's measure tends to 2
    assert torch.allclose(diffs[-1], torch.full((2,), 2.0, dtype=torch.float64))
    # an example whose Hu is 0 keeps its previous u
    def hvp(v):
        out = v @ a
        out[1] = 0.0
        return out

    uk, diffs = power_iteration(hvp, u0, 3)
    assert torch.equal(uk[1], u0[1] / u0[1].norm())
    assert torch.equal(diffs[:, 1], torch.zeros(3, dtype=torch.float64))
    assert (diffs[:, 0] > 0).all()
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="k"):
            power_iteration(hvp, u0, k)


# ---------------------------------------------------------------------------------------------
# The attack
# ---------------------------------------------------------------------------------------------

def test_registered():
    assert attacks.ATTACKS["haat"] is haat
    assert attacks.get_attack("haat") is haat


@pytest.mark.parametrize("hvp", HVP_METHODS)
@pytest.mark.parametrize("update", ["outer", "inner"])
@pytest.mark.parametrize("r2_scale", ["linf", "l2_ball", "sqrt_d_linf"])
def test_haat_stays_in_ball_and_range(cnn, hvp, update, r2_scale):
    model, x, y = cnn
    eps = 0.1
    adv = haat(model, x, y, eps, steps=2, step_size=0.04, k=2, xi=1e-3, hvp=hvp,
               update=update, r2_scale=r2_scale, random_start=True)
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert not torch.equal(adv, x)


def test_haat_without_second_order_term_is_pgd(cnn):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = cnn
    eps, steps, alpha = 0.1, 5, 0.03
    ours = haat(model, x, y, eps, steps=steps, step_size=alpha, w1=1.0, w2=0.0)
    ref = attacks.pgd(model, x, y, eps, steps=steps, step_size=alpha, random_start=False)
    assert torch.equal(ours, ref)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    # Algorithm 1's inner placement updates after each of the k power steps: steps·k PGD steps
    inner = haat(model, x, y, eps, steps=2, step_size=alpha, k=3, w2=0.0, update="inner")
    assert torch.equal(inner, attacks.pgd(model, x, y, eps, steps=6, step_size=alpha,
                                          random_start=False))


def test_second_order_step_is_hessian_eigenvector(smooth):
    """w₁ = 0, one outer step, exact HVP: the move is step·√d·s·q₁ with q₁ the dense Hessian's
    top-|λ| eigenvector and s aligning it with the gradient (r2_scale="l2_ball")."""
    model, x, y = smooth
    H = dense_hessians(model, x, y)
    lam, vec = torch.linalg.eigh(H)
    order = lam.abs().argsort(dim=1, descending=True)
    top = vec.gather(2, order[:, None, :1].expand(-1, 6, 1))[..., 0]
    ratio = lam.gather(1, order[:, 1:2])[:, 0].abs() / lam.gather(1, order[:, :1])[:, 0].abs()
    g = input_loss_grad(model, x, y)
    top = top * torch.where((top * g).sum(1, keepdim=True) < 0, -1.0, 1.0).double()
    step = 0.01
    adv = haat(model, x, y, 10.0, steps=1, step_size=step, k=300, hvp="exact", w1=0.0, w2=1.0,
               r2_scale="l2_ball", data_range=None)
    direction = (adv - x) / (step * math.sqrt(6))
    clear = ratio < 0.9
    assert clear.sum() >= 2
    assert torch.allclose(direction[clear], top[clear], atol=1e-6)
    # "linf": the second-order step has the L∞ size of the signed gradient's
    adv = haat(model, x, y, 10.0, steps=1, step_size=step, k=300, hvp="exact", w1=0.0, w2=1.0,
               data_range=None)
    assert torch.allclose((adv - x).abs().amax(1), torch.full((4,), step, dtype=x.dtype))
    assert torch.allclose((adv - x)[clear] / step,
                          top[clear] / top[clear].abs().amax(1, keepdim=True), atol=1e-6)


def test_haat_increases_loss(cnn):
    model, x, y = cnn
    assert (model(x).argmax(1) == y).float().mean() >= 0.75  # the model learned something
    adv = haat(model, x, y, 0.1, steps=5, step_size=0.03, k=3, hvp="exact")
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, reduction="none")
        attacked = F.cross_entropy(model(adv), y, reduction="none")
    assert attacked.mean() > clean.mean()
    assert (attacked >= clean - 1e-6).float().mean() >= 0.75


def test_haat_deterministic_and_leaves_model_alone(cnn):
    model, x, y = cnn
    kw = dict(steps=2, step_size=0.03, k=2, random_start=True)
    model.train()
    try:
        a = haat(model, x, y, 0.1, seed=3, **kw)
        assert model.training
        assert all(p.grad is None for p in model.parameters())
        model.eval()
        b = haat(model, x, y, 0.1, seed=3, **kw)
        c = haat(model, x, y, 0.1, seed=4, **kw)
        d = haat(model, x, y, 0.1, generator=torch.Generator().manual_seed(3), **kw)
        e = haat(model, x, y, 0.1, generator=torch.Generator().manual_seed(3), hvp="exact",
                 **kw)
    finally:
        model.eval()
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(a, b) and torch.equal(a, d)
    assert not torch.equal(a, c)
    assert not torch.equal(a, e)
    assert torch.equal(haat(model, x, y, 0.0, **kw), x)


@pytest.mark.parametrize("name, value", [
    ("eps", -0.1), ("steps", 0), ("steps", 2.0), ("k", 0), ("step_size", 0.0),
    ("step_size", math.inf), ("xi", 0.0), ("w1", -1.0), ("w2", math.nan), ("hvp", "exact2"),
    ("r2_scale", "l1"), ("update", "middle"), ("direction", "eigen"), ("fd_start", "unit"),
])
def test_haat_bad_params(cnn, name, value):
    model, x, y = cnn
    kw = {"eps": 0.1, name: value}
    with pytest.raises(ValueError, match=name):
        haat(model, x, y, **kw)


# ---------------------------------------------------------------------------------------------
# The twins (w₂ = 0 and random direction) and the first finite-difference product
# ---------------------------------------------------------------------------------------------

def _count_hvps(monkeypatch) -> list[torch.Tensor]:
    """Spy on the module's Hessian-vector products: returns the list of directions they were
    called with (in order), the products themselves unchanged."""
    calls: list[torch.Tensor] = []
    real = curvrobust.attacks.second_order.input_hvp_batch

    def spy(model, x, y, u, *args, **kwargs):
        calls.append(u.detach().clone())
        return real(model, x, y, u, *args, **kwargs)

    monkeypatch.setattr(curvrobust.attacks.second_order, "input_hvp_batch", spy)
    return calls


def _count_forwards(model: nn.Module) -> tuple[list[int], Any]:
    """A forward hook counting the model's calls; returns (counter, handle)."""
    n = [0]
    handle = model.register_forward_hook(lambda *_: n.__setitem__(0, n[0] + 1))
    return n, handle


@pytest.mark.parametrize("update", ["outer", "inner"])
def test_twins_with_w2_zero_are_pgd_and_skip_the_hessian(cnn, monkeypatch, update):
    """w₂ = 0: HAAT and its random-direction twin are PGD from the same random start, bit for
    bit, and neither multiplies by the Hessian."""
    model, x, y = cnn
    calls = _count_hvps(monkeypatch)
    kw = dict(steps=3, step_size=0.03, k=2, w1=1.0, w2=0.0, update=update, random_start=True)
    steps = 3 if update == "outer" else 6
    ref = attacks.pgd(model, x, y, 0.1, steps=steps, step_size=0.03, random_start=True,
                      generator=torch.Generator().manual_seed(5))
    for direction in ("hessian", "random"):
        got = haat(model, x, y, 0.1, direction=direction,
                   generator=torch.Generator().manual_seed(5), **kw)
        assert torch.equal(got, ref), direction
    assert calls == []


@pytest.mark.parametrize("r2_scale", ["linf", "l2_ball"])
def test_random_twin_step_is_the_aligned_normalised_draw(smooth, r2_scale):
    """One step, w₁ = 0, no projection: the random twin moves by step·r² with r² the draw
    u ~ N(0, I) of the same generator state, normalised and sign-aligned with ∇ₓL, scaled as
    HAAT scales its eigenvector; HAAT itself (same draw, power iteration) moves elsewhere."""
    model, x, y = smooth
    step, seed = 0.01, 11
    kw = dict(steps=1, step_size=step, k=3, hvp="exact", w1=0.0, w2=1.0, r2_scale=r2_scale,
              data_range=None)
    twin = haat(model, x, y, 10.0, direction="random", seed=seed, **kw)
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    u = u / u.norm(dim=1, keepdim=True)
    g = input_loss_grad(model, x, y)
    u = u * torch.where((u * g).sum(1, keepdim=True) < 0, -1.0, 1.0).to(x.dtype)
    r2 = math.sqrt(6) * u if r2_scale == "l2_ball" else u / u.abs().amax(1, keepdim=True)
    torch.testing.assert_close(twin - x, step * r2, rtol=1e-12, atol=1e-14)
    assert ((twin - x) * g).sum(1).min() > 0  # aligned: it also climbs the first-order term
    hessian = haat(model, x, y, 10.0, direction="hessian", seed=seed, **kw)
    assert not torch.allclose(hessian, twin, atol=1e-6)


@pytest.mark.parametrize("update", ["outer", "inner"])
def test_random_twin_makes_no_hessian_products(cnn, monkeypatch, update):
    """The random twin costs what PGD costs: one forward/backward per update, no
    Hessian-vector product; HAAT makes k products per attack step (fd: one extra gradient
    each), from the same noise stream."""
    model, x, y = cnn
    calls = _count_hvps(monkeypatch)
    n, handle = _count_forwards(model)
    kw = dict(steps=2, step_size=0.03, k=3, hvp="fd", xi=1e-3, update=update, random_start=True,
              seed=1)
    updates = 2 if update == "outer" else 6
    try:
        twin = haat(model, x, y, 0.1, direction="random", **kw)
        assert calls == [] and n[0] == updates
        n[0] = 0
        full = haat(model, x, y, 0.1, direction="hessian", **kw)
        assert len(calls) == 2 * 3 and n[0] == updates + 2 * 3
    finally:
        handle.remove()
    assert (twin - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(twin, full)


@pytest.mark.parametrize("update", ["outer", "inner"])
def test_first_fd_product_uses_the_raw_draw(cnn, monkeypatch, update):
    """Algorithm 1: the first finite-difference product of every attack step is along the raw
    N(0, I) draw (norm ≈ √d, not 1), the next ones along unit vectors; fd_start="normalised"
    and exact products take the first one along the unit vector."""
    model, x, y = cnn
    calls = _count_hvps(monkeypatch)
    seed, k = 4, 3
    draw = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))

    def norms(u):
        return u.flatten(1).norm(dim=1)

    haat(model, x, y, 0.1, steps=1, step_size=0.03, k=k, hvp="fd", xi=1e-3, update=update,
         seed=seed)
    assert len(calls) == k
    assert torch.equal(calls[0], draw)  # the draw itself
    assert (norms(calls[0]) > 4).all()  # d = 64: ‖u⁽⁰⁾‖ ≈ 8
    for later in calls[1:]:
        torch.testing.assert_close(norms(later), torch.ones(x.shape[0]))
    for kw in (dict(hvp="fd", fd_start="normalised"), dict(hvp="exact")):
        calls.clear()
        haat(model, x, y, 0.1, steps=1, step_size=0.03, k=k, xi=1e-3, update=update, seed=seed,
             **kw)
        torch.testing.assert_close(calls[0], draw / norms(draw).view(-1, 1, 1, 1))


def test_raw_start_is_the_same_direction_and_less_rounding_noise(cnn, smooth):
    """For an exact (linear) product the raw start changes nothing but rounding; in float32 the
    forward difference along the raw draw (‖u‖ ≈ √d) is closer to the exact product than along
    the unit vector, at the study's ξ."""
    model, x, y = smooth
    u0 = torch.randn(x.shape, generator=torch.Generator().manual_seed(8), dtype=x.dtype)
    g = input_loss_grad(model, x, y)
    hvp = curvrobust.attacks.second_order._hvp_at(model, x, y, g, "exact", 1e-6)
    for k in (1, 4):
        a, da = power_iteration(hvp, u0, k)
        b, db = power_iteration(hvp, u0, k, raw_start=True)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(da, db, rtol=1e-12, atol=1e-14)
    model, x, y = cnn
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    unit = u / u.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    (raw,) = hvp_relative_error(model, x, y, u, [1e-6], methods=("fd",))
    (normalised,) = hvp_relative_error(model, x, y, unit, [1e-6], methods=("fd",))
    assert raw["median"] < normalised["median"]


def test_haat_zero_weights_rejected(cnn):
    model, x, y = cnn
    with pytest.raises(ValueError, match="w1.*w2"):
        haat(model, x, y, 0.1, w1=0.0, w2=0.0)


def _reference_haat(model, x, y, eps, *, steps, step_size, k, w2, update, random_start, seed,
                    hvp="exact", xi=1e-6, fd_start="raw"):
    """HAAT with r2_scale="linf", w1 = 1, written out per example from the docstring, with
    per-example autograd gradients and either dense Hessians (torch.autograd.functional) or
    a hand-written forward difference (the first one along the raw draw with fd_start="raw");
    returns (x_adv, last step's ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖, (k, N))."""
    gen = torch.Generator().manual_seed(seed)

    def grad_at(a, i):
        ai = a[i].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(ai[None]), y[i:i + 1]), ai)
        return g

    def hv(a, i, v):
        if hvp == "exact":
            H = torch.autograd.functional.hessian(
                lambda z: F.cross_entropy(model(z[None]), y[i:i + 1]), a[i])
            return (H.reshape(v.numel(), v.numel()) @ v.flatten()).view_as(v)
        shifted = a.clone()
        shifted[i] = a[i] + xi * v
        return (grad_at(shifted, i) - grad_at(a, i)) / xi

    def ascend(a, i, g, u):
        u = -u if float((u * g).sum()) < 0 else u
        r2 = u / u.abs().max()
        step = a[i] + step_size * (g.sign() + w2 * r2)
        return (x[i] + (step - x[i]).clamp(-eps, eps)).clamp(0, 1)

    adv = x.clone()
    if random_start:
        adv = (adv + torch.empty(x.shape, dtype=x.dtype).uniform_(-eps, eps, generator=gen)
               ).clamp(0, 1)
    n = x.shape[0]
    diffs = None
    for _ in range(steps):
        u0 = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        diffs = torch.zeros(k, n, dtype=torch.float64)
        new = adv.clone()
        for i in range(n):
            u = u0[i] / u0[i].norm()
            a = adv.clone()
            g = grad_at(a, i)
            for it in range(k):
                raw = hvp != "exact" and fd_start == "raw" and it == 0
                hu = hv(a, i, u0[i] if raw else u)
                u_new = hu / hu.norm()
                diffs[it, i] = (u_new - u).norm()
                u = u_new
                if update == "inner":
                    a[i] = ascend(a, i, g, u)
                    g = grad_at(a, i)
            new[i] = ascend(a, i, g, u) if update == "outer" else a[i]
        adv = new
    return adv, diffs


@pytest.mark.parametrize("update", ["outer", "inner"])
def test_haat_trace(smooth, update):
    """Attack and trace against a per-example re-implementation on dense input Hessians:
    the same noise stream (random start, then one u⁽⁰⁾ per step), power iteration on H, the
    aligned r² = u/‖u‖∞ step, projection and clipping; diffs of the LAST step only."""
    model, x, y = smooth
    kw = dict(steps=3, step_size=0.03, k=4, w2=2.0, update=update, random_start=True, seed=7)
    adv, diffs = haat_trace(model, x, y, 0.1, hvp="exact", **kw)
    ref_adv, ref_diffs = _reference_haat(model, x, y, 0.1, **kw)
    assert torch.equal(adv, haat(model, x, y, 0.1, hvp="exact", **kw))
    assert diffs.shape == (4, 4)
    torch.testing.assert_close(diffs.double(), ref_diffs, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(adv, ref_adv, rtol=1e-9, atol=1e-11)
    assert (adv != x).any() and not torch.allclose(diffs[0], diffs[-1])  # informative
    # the trace is of the last step: the first steps' traces differ
    _, first = _reference_haat(model, x, y, 0.1, **dict(kw, steps=1))
    assert not torch.allclose(first, ref_diffs, atol=1e-6)


def test_convergence_trace_rows(smooth):
    """Each row's statistics recomputed from an independent re-implementation's last-step
    diffs (batch b seeded seed + b, the adversary's parameters, each k and method)."""
    model, x, y = smooth
    batches = [(x[:2], y[:2]), (x[2:], y[2:])]
    adversary = {"kind": "haat", "eps": 0.5, "steps": 2, "step_size": 0.05, "k": 99,
                 "xi": 1e-6, "hvp": "fd", "w2": 1.5}
    rows = curvrobust.attacks.second_order.convergence_trace(model, batches, 0.1, adversary, ks=[1, 3],
                                             methods=["fd", "exact"], seed=7, tol=0.1)
    assert len(rows) == 2 * 2 * (1 + 3)
    for r in rows:
        assert r["xi"] == 1e-6
    seen = set()
    for b, (xb, yb) in enumerate(batches):
        for method in ("fd", "exact"):
            for k in (1, 3):
                _, d = _reference_haat(model, xb, yb, 0.1, steps=2, step_size=0.05, k=k,
                                       w2=1.5, update="outer", random_start=False,
                                       seed=7 + b, hvp=method, xi=1e-6)
                got = [r for r in rows if (r["batch"], r["method"], r["k"]) == (b, method, k)]
                assert [r["iteration"] for r in got] == list(range(1, k + 1))
                for r, di in zip(got, d.numpy()):
                    atol = 1e-6 if method == "fd" else 1e-10
                    assert r["diff_mean"] == pytest.approx(di.mean(), abs=atol)
                    assert r["diff_median"] == pytest.approx(np.quantile(di, 0.5), abs=atol)
                    assert r["diff_q10"] == pytest.approx(np.quantile(di, 0.1), abs=atol)
                    assert r["diff_q90"] == pytest.approx(np.quantile(di, 0.9), abs=atol)
                    assert r["converged_frac"] == float(np.mean(di < 0.1))
                    seen.add(round(float(di.mean()), 6))
    assert len(seen) > 4  # the rows are not all alike

def test_hvp_relative_error_counts_vanished_products(cnn):
    model, x, y = cnn
    u = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    u = u / u.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    rows = hvp_relative_error(model, x, y, u, [1e-2, 1e-12])
    by = {(r["method"], r["xi"]): r for r in rows}
    # ξ·u far below float32 resolution of x: x + ξu rounds to x, so the difference is 0
    assert by[("fd", 1e-12)]["zero_frac"] == 1.0
    assert by[("fd", 1e-2)]["zero_frac"] < 1.0


def test_eigenvector_alignment_exact_converges_and_matches_dense(smooth):
    """Exact products: |cos| with the reference → 1 as k grows; the reference itself is the
    dense Hessian's top eigenvector; forward differences with a float64 ξ are as good."""
    model, x, y = smooth
    # one example's two top eigenvalues are 2 % apart: many steps are needed
    rows = curvrobust.attacks.second_order.eigenvector_alignment(model, x, y, ks=[1, 3, 600],
                                                 methods=["exact", "fd"], xi=1e-7,
                                                 ref_steps=2000, seed=0)
    by = {(r["method"], r["k"]): r for r in rows}
    assert by[("exact", 600)]["cos_q10"] > 1 - 1e-6
    assert by[("exact", 1)]["cos_mean"] <= by[("exact", 3)]["cos_mean"] + 1e-12
    assert by[("fd", 600)]["cos_q10"] > 1 - 1e-4
    # the reference direction is the eigenvector of the dense Hessian with the largest |λ|
    H = dense_hessians(model, x, y)
    ev, vecs = torch.linalg.eigh(H)
    top = vecs.gather(2, ev.abs().argmax(dim=1)[:, None, None].expand(-1, H.shape[1], 1))[..., 0]
    gen = torch.Generator().manual_seed(0)
    u0 = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    ref, _ = power_iteration(lambda v: torch.einsum("nij,nj->ni", H, v), u0, 2000)
    assert (ref * top).sum(dim=1).abs().min() > 1 - 1e-6
