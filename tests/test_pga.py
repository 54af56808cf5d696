"""Study 003's projected gradient ascent: projection, known maximisers, scale consistency."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from curvrobust.models.networks import TwoLayerNet
from curvrobust.attacks.pga_dynamics import (PGAResult, binary_pair, converged_maxima,
    converged_starts, iters_to_climb_fraction, iters_to_loss_tol, local_maxima_stats,
    never_climbs, pga, pga_example_rows, pga_trace_rows, project, quadratic_loss)

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def _images(n: int, d: int, seed: int) -> torch.Tensor:
    """Inputs in [0, 1] with many pixels exactly at 0 or 1, so box constraints bind."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=F64)
    x[torch.rand(n, d, generator=g) < 0.4] = 0.0
    x[torch.rand(n, d, generator=g) < 0.1] = 1.0
    return x


def _exact_ball_box(z: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Independent reference for Π onto {‖δ‖ ≤ ε} ∩ [−x, 1 − x]: by the KKT conditions the
    projection is clamp(t·z, −x, 1 − x) with the largest t ∈ [0, 1] whose norm is ≤ ε (the norm
    is nondecreasing in t because the box contains 0); t found by bisection."""
    def at(t):
        return torch.maximum(torch.minimum(z * t[:, None], 1 - x), -x)

    lo = torch.zeros(z.shape[0], dtype=z.dtype)
    hi = torch.ones(z.shape[0], dtype=z.dtype)
    inside = at(hi).norm(dim=1) <= eps
    for _ in range(100):
        mid = (lo + hi) / 2
        ok = at(mid).norm(dim=1) <= eps
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    return torch.where(inside[:, None], at(torch.ones_like(lo)), at(lo))


def _random_points(n: int, d: int, seed: int, eps: float) -> torch.Tensor:
    """Points inside, near and far outside the ε-ball."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=F64)
    radii = eps * torch.tensor([0.3, 0.9, 1.1, 2.0, 5.0], dtype=F64).repeat(n // 5 + 1)[:n]
    return z / z.norm(dim=1, keepdim=True) * radii[:, None]


def _assert_feasible(delta, x, eps, norm, data_range):
    flat = delta.flatten(1)
    if norm == "l2":
        assert flat.norm(dim=1).max().item() <= eps + 1e-6
    else:
        assert flat.abs().max().item() <= eps + 1e-12
    if data_range is not None:
        lo, hi = data_range
        assert ((x + delta) >= lo).all() and ((x + delta) <= hi).all()


# --- projection ------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("data_range", [(0.0, 1.0), None])
def test_project_feasible_idempotent_and_identity_inside(norm, data_range):
    x = _images(30, 40, seed=0)
    eps = 0.8 if norm == "l2" else 0.1
    z = _random_points(30, 40, seed=1, eps=eps if norm == "l2" else eps * 6.3)
    p = project(z, x, eps, norm, data_range)
    _assert_feasible(p, x, eps, norm, data_range)
    assert torch.allclose(project(p, x, eps, norm, data_range), p, rtol=0, atol=1e-12)
    assert torch.equal(project(p * 0.5, x, eps, norm, data_range), p * 0.5)  # convex set ∋ 0
    assert torch.equal(project(torch.zeros_like(x), x, eps, norm, data_range),
                       torch.zeros_like(x))
    # image-shaped inputs are handled per example
    p4 = project(z.reshape(30, 1, 5, 8), x.reshape(30, 1, 5, 8), eps, norm, data_range)
    assert torch.allclose(p4.reshape(30, 40), p, rtol=0, atol=1e-12)


def test_project_l2_ball_only_is_closed_form():
    x = _images(25, 12, seed=2)
    z = _random_points(25, 12, seed=3, eps=0.5)
    n = z.norm(dim=1, keepdim=True)
    expected = torch.where(n > 0.5, z * 0.5 / n, z)
    assert torch.allclose(project(z, x, 0.5, "l2", None), expected, rtol=0, atol=1e-15)


def test_project_linf_is_one_clamp():
    x = _images(10, 20, seed=4)
    z = _random_points(10, 20, seed=5, eps=1.0)
    expected = torch.clamp(torch.clamp(z, -0.2, 0.2) + x, 0.0, 1.0) - x
    assert torch.allclose(project(z, x, 0.2, "linf"), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("eps", [0.3, 1.5])
def test_project_ball_box_is_euclidean_projection(eps):
    """Dykstra's limit equals the KKT solution and satisfies the variational inequality
    ⟨z − Π(z), w − Π(z)⟩ ≤ 0 for feasible w (the characterisation of a projection)."""
    n, d = 40, 30
    x = _images(n, d, seed=6)
    z = _random_points(n, d, seed=7, eps=eps)
    exact = _exact_ball_box(z, x, eps)
    # Dykstra converges linearly: 100 rounds reach ~1e-8 for points 5ε away, more reach ulps
    assert torch.allclose(project(z, x, eps), exact, rtol=0, atol=1e-7)
    p = project(z, x, eps, iters=2000)
    _assert_feasible(p, x, eps, "l2", (0.0, 1.0))
    assert torch.allclose(p, exact, rtol=0, atol=1e-12)
    # plain alternation (box then ball) is feasible-ish but not the nearest point
    naive = project(torch.maximum(torch.minimum(z, 1 - x), -x), x, eps, "l2", None)
    far = z.norm(dim=1) > 1.5 * eps
    assert ((naive - p).norm(dim=1)[far] > 1e-3).any()
    g = torch.Generator().manual_seed(8)
    for _ in range(20):
        w = torch.randn(n, d, generator=g, dtype=F64) * eps
        w = project(w, x, eps)  # feasible points, many on the boundary of the set
        vi = ((z - p) * (w - p)).sum(dim=1)
        assert vi.max().item() <= 1e-6
    # and p is at least as close to z as any of those feasible points
    assert ((z - p).norm(dim=1) <= (z - w).norm(dim=1) + 1e-12).all()


def test_project_rejects_inputs_outside_the_data_range():
    x = torch.full((2, 3), 1.5)
    with pytest.raises(ValueError, match="x must lie in data_range"):
        project(torch.zeros_like(x), x, 0.1)


# --- a model with a known maximiser ---------------------------------------------------------

class Linear(nn.Module):
    """f(x) = wᵀx, float64."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


def _linear_case(n=6, d=10, seed=9):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g, dtype=F64)
    x = torch.randn(n, d, generator=g, dtype=F64)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(F64)
    return Linear(w), w, x, y


def test_linear_model_l2_reaches_closed_form_maximum():
    """max_{‖δ‖ ≤ ε} (y − wᵀ(x+δ))² = (|r| + ε‖w‖)² at δ* = −sign(r)·ε·w/‖w‖, r = y − wᵀx,
    unique when the ball does not reach the zero-residual hyperplane (ε‖w‖ < |r|)."""
    model, w, x, y = _linear_case()
    r = y - x @ w
    eps = 0.5 * r.abs().min().item() / w.norm().item()
    res = pga(model, x, y, eps, steps=15, step_size=2 * eps, data_range=None, starts=5,
              seed=1, tol=1e-6)
    best = (r.abs() + eps * w.norm()) ** 2
    assert torch.allclose(res.final_loss, best.expand(5, -1), rtol=1e-8, atol=0)
    delta_star = -torch.sign(r)[:, None] * eps * w / w.norm()
    assert torch.allclose(res.final_delta, delta_star.expand(5, -1, -1), rtol=0, atol=1e-6)
    assert res.mapping_norm[:, -1].max().item() < 1e-6
    assert (res.iters_to_tol < 15).all()
    # iters_to_tol is the first iteration below tol
    for s in range(5):
        for i in range(x.shape[0]):
            t = res.iters_to_tol[s, i].item()
            assert res.mapping_norm[s, t, i] < 1e-6
            assert (res.mapping_norm[s, :t, i] >= 1e-6).all()
    assert ((res.mapping_norm >= 0) & (res.mapping_norm <= 1 + 1e-12)).all()
    # the loss never decreases along normalised-gradient ascent of a convex-in-δ loss here
    assert (res.losses.diff(dim=1) >= -1e-12).all()
    assert torch.equal(res.final_loss, res.losses[:, -1])


def test_linear_model_linf_reaches_corner():
    """L∞: the maximiser is δ* = −sign(r)·ε·sign(w), loss (|r| + ε‖w‖₁)²."""
    model, w, x, y = _linear_case(seed=10)
    r = y - x @ w
    eps = 0.5 * r.abs().min().item() / w.abs().sum().item()
    res = pga(model, x, y, eps, steps=3, step_size=eps, norm="linf", data_range=None,
              starts=3, seed=0)
    delta_star = -torch.sign(r)[:, None] * eps * torch.sign(w)
    assert torch.allclose(res.final_delta, delta_star.expand(3, -1, -1), rtol=0, atol=1e-15)
    best = (r.abs() + eps * w.abs().sum()) ** 2
    assert torch.allclose(res.final_loss, best.expand(3, -1), rtol=1e-12, atol=0)
    assert (res.mapping_norm[:, -1] == 0).all()


def test_linear_model_two_local_maxima_are_counted():
    """When the ball crosses the zero-residual hyperplane both poles ±ε·w/‖w‖ are constrained
    local maxima, with losses (ε‖w‖ ± |r|)²; random starts in 2-D find both."""
    w = torch.tensor([1.0, 0.0], dtype=F64)
    model = Linear(w)
    x = torch.tensor([[0.9, 0.3]], dtype=F64)
    y = torch.tensor([1.0], dtype=F64)  # r = 0.1
    eps = 0.5
    res = pga(model, x, y, eps, steps=40, step_size=eps, data_range=None, starts=16, seed=3,
              tol=1e-9)
    found = sorted({round(v, 9) for v in res.final_loss[:, 0].tolist()})
    assert found == [round(0.4 ** 2, 9), round(0.6 ** 2, 9)]
    stats = local_maxima_stats(res.final_loss)
    assert stats["count"].tolist() == [2]
    assert stats["spread"].item() == pytest.approx(0.6 ** 2 - 0.4 ** 2, rel=1e-8)


# --- feasibility of every iterate, determinism, side effects ---------------------------------

class Recorder(nn.Module):
    """Wraps a model and keeps every input it is called on."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.inner(x)


@pytest.mark.parametrize("norm,eps", [("l2", 1.2), ("linf", 0.15)])
def test_every_iterate_is_feasible(norm, eps):
    torch.manual_seed(0)
    net = TwoLayerNet(in_features=16, width=12, activation="tanh").double()
    rec = Recorder(net)
    x = _images(8, 16, seed=11).reshape(8, 1, 4, 4)
    y = torch.where(torch.arange(8) % 2 == 0, 1.0, -1.0)
    steps, starts = 6, 2
    res = pga(rec, x, y, eps, steps=steps, step_size=eps / 2, norm=norm, starts=starts)
    assert len(rec.seen) == starts * (steps + 1)
    for inp in rec.seen:
        _assert_feasible(inp - x, x, eps, norm, (0.0, 1.0))
    assert res.losses.shape == (starts, steps + 1, 8)
    assert res.mapping_norm.shape == (starts, steps, 8)
    assert res.iters_to_tol.shape == (starts, 8) and res.iters_to_tol.dtype == torch.long
    assert res.final_delta.shape == (starts, 8, 1, 4, 4)
    assert res.final_loss.shape == (starts, 8)
    # the recorded losses are the model's losses at the recorded iterates
    for s in range(starts):
        for t in range(steps + 1):
            with torch.no_grad():
                ref = quadratic_loss(net(rec.seen[s * (steps + 1) + t]), y)
            assert torch.allclose(res.losses[s, t], ref, rtol=1e-12, atol=0)
    if norm == "l2":
        assert (res.mapping_norm <= 1 + 1e-12).all()


def test_pga_deterministic_and_leaves_model_alone():
    torch.manual_seed(1)
    net = TwoLayerNet(in_features=16, width=10, bias=True, train_second_layer=True).double()
    net.train()
    marker = torch.full_like(net.hidden.weight, 7.0)
    net.hidden.weight.grad = marker.clone()
    x = _images(5, 16, seed=12)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    kw = dict(steps=4, step_size=0.3, starts=3, seed=5)
    a = pga(net, x, y, 1.0, **kw)
    b = pga(net, x, y, 1.0, **kw)
    c = pga(net, x, y, 1.0, **{**kw, "seed": 6})
    for field in ("losses", "mapping_norm", "iters_to_tol", "final_delta", "final_loss"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.final_delta, c.final_delta)
    assert not torch.equal(a.final_delta[0], a.final_delta[1])  # starts differ
    assert torch.equal(net.hidden.weight.grad, marker)
    assert net.hidden.bias.grad is None and net.a.grad is None
    assert net.training


def test_eps_zero_stays_at_x():
    torch.manual_seed(2)
    net = TwoLayerNet(in_features=16, width=6).double()
    x = _images(4, 16, seed=13)
    y = torch.ones(4)
    res = pga(net, x, y, 0.0, steps=3, step_size=0.1, starts=2)
    assert torch.equal(res.final_delta, torch.zeros_like(res.final_delta))
    with torch.no_grad():
        clean = quadratic_loss(net(x), y)
    assert torch.allclose(res.losses, clean.expand(2, 4, -1))
    assert (res.iters_to_tol == 0).all()


@pytest.mark.parametrize("kw,name", [
    ({"eps": -0.1}, "eps"), ({"steps": 0}, "steps"), ({"starts": 0}, "starts"),
    ({"step_size": 0.0}, "step_size"), ({"norm": "l1"}, "norm"), ({"tol": -1.0}, "tol")])
def test_bad_arguments_are_named(kw, name):
    net = Linear(torch.ones(3, dtype=F64))
    args = {"eps": 0.1, "steps": 2, "step_size": 0.1, "starts": 1, "norm": "l2", "tol": 1e-3,
            **kw}
    eps = args.pop("eps")
    with pytest.raises(ValueError, match=name):
        pga(net, torch.zeros(2, 3, dtype=F64), torch.ones(2), eps, **args)


# --- scale consistency -----------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("s", [0.25, 4.0, 3.0])
def test_scaling_inputs_and_dividing_first_layer_gives_same_attack(norm, s):
    """x, ε, data range and step size times s with W/s: W(x+δ) is unchanged, so the attack
    sees the same landscape; the same seed gives the same starts scaled by s, hence the same
    loss at every iterate (bitwise for powers of two, to rounding otherwise)."""
    torch.manual_seed(4)
    net = TwoLayerNet(in_features=16, width=20, activation="relu", bias=False).double()
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        scaled.hidden.weight.div_(s)
    x = _images(10, 16, seed=14).reshape(10, 1, 4, 4)
    y = torch.where(torch.arange(10) % 3 == 0, -1.0, 1.0)
    eps, eta = (1.0, 0.5) if norm == "l2" else (0.1, 0.025)
    kw = dict(steps=25, norm=norm, starts=3, seed=7, tol=1e-2)
    a = pga(net, x, y, eps, step_size=eta, data_range=(0.0, 1.0), **kw)
    b = pga(scaled, s * x, y, s * eps, step_size=s * eta, data_range=(0.0, s), **kw)
    assert torch.allclose(a.losses, b.losses, rtol=1e-9, atol=0)
    assert torch.allclose(a.mapping_norm, b.mapping_norm, rtol=1e-9, atol=1e-12)
    assert torch.equal(a.iters_to_tol, b.iters_to_tol)
    assert torch.allclose(s * a.final_delta, b.final_delta, rtol=1e-9, atol=1e-12)
    # the test means something: the box binds, and the attack moved the loss
    assert ((x + a.final_delta == 0) & (a.final_delta != 0)).any()
    assert (a.losses[:, -1] > a.losses[:, 0] + 1e-3).any()
    its = a.iters_to_tol
    assert (its < 25).any() and (its == 25).any() and len(set(its.flatten().tolist())) > 2


# --- local maxima statistics -----------------------------------------------------------------

def test_local_maxima_stats_hand_made():
    final = torch.tensor([
        [1.0, 5.0, 1000.0, 0.0],
        [1.0005, 5.0, 1000.5, 0.0005],
        [2.0, 5.0, 1002.0, 0.0011],
        [2.0, 5.0, -1.0, 0.5],
    ], dtype=F64)
    st = local_maxima_stats(final, rtol=1e-3)
    # col 0: gap 5e-4 < 1e-3·1.0005 joins, gap 0.9995 splits → 2; col 1: one value → 1;
    # col 2 sorted (−1, 1000, 1000.5, 1002): 1001 splits, 0.5 < 1.0005 joins, 1.5 > 1.002 splits;
    # col 3: below 1 the threshold is rtol itself, so gaps of 5e-4 and 6e-4 join → 2
    assert st["count"].tolist() == [2, 1, 3, 2]
    assert torch.allclose(st["spread"], torch.tensor([1.0, 0.0, 1003.0, 0.5], dtype=F64))
    ref_std = torch.tensor([final[:, j].numpy().std() for j in range(4)], dtype=F64)
    assert torch.allclose(st["std"], ref_std)
    assert st["mean_count"].item() == pytest.approx(2.0)
    assert st["mean_spread"].item() == pytest.approx(1004.5 / 4)
    assert st["mean_std"].item() == pytest.approx(ref_std.mean().item())
    # a looser tolerance merges the 1000-cluster; one start has one maximum and no spread
    assert local_maxima_stats(final, rtol=2e-3)["count"].tolist() == [2, 1, 2, 2]
    one = local_maxima_stats(final[:1])
    assert one["count"].tolist() == [1, 1, 1, 1] and (one["std"] == 0).all()


def _binary_data(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    y = torch.where(x[:, 0] > 0.5, 1.0, -1.0).to(torch.float64)
    return x, y


def test_adversarial_train_at_eps_zero_is_plain_sgd():
    from curvrobust.attacks.pga_dynamics import adversarial_train

    x, y = _binary_data(24, 5, 0)
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0)).double()
    b = copy.deepcopy(a)
    rows, steps = adversarial_train(a, x, y, 0.0, epochs=2, lr=0.1, batch_size=8, pga_steps=2,
                                    pga_step_size=0.1, seed=3)
    # the same batches, plain SGD on the clean quadratic loss
    gen = torch.Generator().manual_seed(3)
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(2):
        order = torch.randperm(24, generator=gen)
        for i in range(0, 24, 8):
            idx = order[i:i + 8]
            opt.zero_grad()
            ((y[idx] - b(x[idx])) ** 2).mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)
    assert len(steps) == 6 and [r["epoch"] for r in rows] == [1, 2]


def test_adversarial_train_lowers_robust_loss_and_is_seeded():
    from curvrobust.attacks.pga_dynamics import adversarial_train

    x, y = _binary_data(64, 6, 1)
    xt, yt = _binary_data(32, 6, 2)

    def run():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0)).double()
        return adversarial_train(m, x, y, 0.05, epochs=8, lr=0.2, batch_size=16, pga_steps=3,
                                 pga_step_size=0.03, seed=5, x_test=xt, y_test=yt)

    rows, steps = run()
    assert rows[-1]["robust_train_loss"] < rows[0]["robust_train_loss"]
    for r in rows:
        assert r["robust_test_loss"] >= r["test_loss"] - 1e-12   # the attack raises the loss
        assert 0.0 <= r["robust_test_acc"] <= 1.0
    assert run() == (rows, steps)


def test_binary_pair_maps_classes_to_pm_one_in_order():
    x = torch.arange(10, dtype=torch.float32)[:, None]
    y = torch.tensor([3, 1, 7, 7, 2, 1, 7, 1, 0, 7])
    xs, ys = binary_pair(x, y, (1, 7))
    assert xs[:, 0].tolist() == [1, 2, 3, 5, 6, 7, 9]
    assert ys.tolist() == [1, -1, -1, 1, -1, 1, -1] and ys.dtype == torch.float32
    xs, ys = binary_pair(x, y, (7, 1), n=3)
    assert xs[:, 0].tolist() == [1, 2, 3] and ys.tolist() == [-1, 1, 1]
    with pytest.raises(ValueError, match="class 5 has no examples"):
        binary_pair(x, y, (1, 5))
    with pytest.raises(ValueError, match="n=8 exceeds the 7 examples"):
        binary_pair(x, y, (1, 7), n=8)
    with pytest.raises(ValueError, match="two different classes"):
        binary_pair(x, y, (1, 1))


def test_iters_to_loss_tol_hand_made():
    # one start, three examples, T = 4: steady rise, early plateau with a dip, best at t = 0
    losses = torch.tensor([[1.0, 2.0, 3.0, 3.9995, 4.0],
                           [1.0, 5.0, 4.0, 5.0, 5.0],
                           [2.0, 1.0, 1.0, 1.0, 1.0]]).T[None]
    assert iters_to_loss_tol(losses, 1e-3).tolist() == [[3, 1, 0]]
    assert iters_to_loss_tol(losses, 0.0).tolist() == [[4, 1, 0]]
    assert iters_to_loss_tol(losses, 0.5).tolist() == [[1, 1, 0]]   # 2 ≥ 4 − 0.5·4
    with pytest.raises(ValueError, match="rtol"):
        iters_to_loss_tol(losses, -1.0)


def _losses(*traces) -> torch.Tensor:
    """(S, T+1, N) losses from one trace per example, a single start."""
    return torch.tensor(traces, dtype=F64).T[None]


def test_iters_to_climb_fraction_hand_made():
    # start 1, best 4 (climb 3); start 1, best 5 (climb 4) with a dip; never rises (climb 0:
    # censored at T = 4, not the fastest); the first trace plus 10 (the same climb, from higher
    # up): the same share, the same count
    losses = _losses([1.0, 2.0, 3.0, 3.9995, 4.0], [1.0, 5.0, 4.0, 5.0, 5.0],
                     [2.0, 1.0, 1.0, 1.0, 1.0], [11.0, 12.0, 13.0, 13.9995, 14.0])
    # f = 0.9: targets 1 + 2.7 = 3.7, 1 + 3.6 = 4.6, 2, 11 + 2.7 = 13.7
    assert iters_to_climb_fraction(losses, 0.9).tolist() == [[3, 1, 4, 3]]
    # f = 0.5: targets 2.5, 3, 2, 12.5
    assert iters_to_climb_fraction(losses, 0.5).tolist() == [[2, 1, 4, 2]]
    # f = 1: the first iteration at the best loss
    assert iters_to_climb_fraction(losses, 1.0).tolist() == [[4, 1, 4, 4]]
    assert never_climbs(losses).tolist() == [[False, False, True, False]]
    # the tolerance relative to the best loss is a different share of the two climbs: at
    # rtol 0.1 the targets are 3.6 (t = 3) and 12.6 (t = 2)
    assert iters_to_loss_tol(losses, 0.1)[0, [0, 3]].tolist() == [3, 2]
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="fraction"):
            iters_to_climb_fraction(losses, bad)


def test_converged_starts_hand_made():
    # plateau (range 0.01 over the last 3 iterates ≤ 0.01·4), still climbing (range 1),
    # oscillating (the end-to-end change over 2 iterations is 0 but the range 0.2 > 0.042)
    losses = _losses([1.0, 3.0, 3.99, 4.0, 4.0], [1.0, 2.0, 3.0, 3.5, 4.0],
                     [1.0, 4.0, 4.2, 4.0, 4.2])
    assert converged_starts(losses, window=2, rtol=0.01).tolist() == [[True, False, False]]
    # a wider tolerance takes the oscillation (0.2 ≤ 0.05·4.2) but not the climb
    assert converged_starts(losses, window=2, rtol=0.05).tolist() == [[True, False, True]]
    # window 1: the last step only (3.5 -> 4 is 12.5 %)
    assert converged_starts(losses, window=1, rtol=0.01).tolist() == [[True, False, False]]
    # a window longer than T uses every iterate: the first trace's range 3 > 0.04
    assert converged_starts(losses, window=10, rtol=0.01).tolist() == [[False, False, False]]
    with pytest.raises(ValueError, match="window"):
        converged_starts(losses, window=0)


def test_converged_maxima_hand_made():
    # example 0: converged finals 2, 4, 4.001, 4.1 (9 still climbing): 4 and 4.001 are one
    #   maximum (gap 0.001 ≤ 1e-3·4.001), 2 and 4.1 two more -> 3
    # example 1: nothing converged -> NaN
    # example 2: small losses 0.2, 0.2005, 0.25: relative gaps 0.0025 and 0.2 -> 3 maxima, where
    #   local_maxima_stats' threshold (absolute below a loss of 1: 0.001) merges the first two
    final = torch.tensor([[4.0, 1.0, 0.2], [4.001, 2.0, 0.2005], [4.1, 3.0, 0.25],
                          [2.0, 4.0, 0.25], [9.0, 5.0, 0.2]], dtype=F64)
    conv = torch.tensor([[True, False, True], [True, False, True], [True, False, True],
                         [True, False, True], [False, False, True]])
    got = converged_maxima(final, conv, rtol=1e-3)
    assert got[0] == 3 and torch.isnan(got[1]) and got[2] == 3
    assert local_maxima_stats(final, rtol=1e-3)["count"][2] == 2
    # every start converged: the same count as sorting all of them
    assert converged_maxima(final[:4, :1], torch.ones(4, 1, dtype=torch.bool), 1e-3).tolist() == [3]
    with pytest.raises(ValueError, match="shape"):
        converged_maxima(final, conv[:, :2])


def test_example_rows_carry_the_scale_comparable_measures():
    """pga_example_rows on a hand-made result of 2 starts, 1 example, T = 4."""
    losses = torch.tensor([[[1.0], [3.0], [3.99], [4.0], [4.0]],       # converged, iters 2
                           [[2.0], [2.5], [3.0], [3.5], [4.0]]], dtype=F64)  # climbing, iters 4
    res = PGAResult(losses=losses, mapping_norm=torch.ones(2, 4, 1, dtype=F64),
                    iters_to_tol=torch.full((2, 1), 4), final_delta=torch.zeros(2, 1, 3),
                    final_loss=losses[:, -1])
    (row,) = pga_example_rows(res, loss_rtol=0.01, maxima_rtol=1e-3, climb_fraction=0.9,
                              plateau_window=2)
    # climb-fraction targets 1 + 0.9·3 = 3.7 (t = 2) and 2 + 0.9·2 = 3.8 (t = 4)
    assert row["iters_to_climb"] == pytest.approx(3.0)
    assert row["climb_censored"] == 0.0
    assert row["climb"] == pytest.approx(2.5)
    assert row["converged_share"] == pytest.approx(0.5)
    assert row["maxima_converged"] == 1.0       # the converged start alone
    assert row["maxima_count"] == 1             # both end at 4.0


def test_trace_and_example_rows_agree_with_the_result():
    torch.manual_seed(3)
    net = TwoLayerNet(in_features=12, width=8).double()
    x, y = _images(5, 12, seed=4), torch.tensor([1.0, -1, 1, -1, 1], dtype=F64)
    res = pga(net, x, y, 0.8, steps=15, step_size=0.1, starts=4, seed=2, tol=0.05)
    trace = pga_trace_rows(res, tol=0.05)
    assert [r["iteration"] for r in trace] == list(range(16))
    for t in (0, 7, 15):
        assert trace[t]["loss_mean"] == pytest.approx(float(res.losses[:, t].mean()))
    assert trace[3]["share_below_tol"] == pytest.approx(float((res.mapping_norm[:, 3] < 0.05)
                                                              .double().mean()))
    assert torch.isnan(torch.tensor(trace[-1]["mapping_norm_mean"]))
    rows = pga_example_rows(res, loss_rtol=1e-3, maxima_rtol=1e-3)
    stats = local_maxima_stats(res.final_loss, 1e-3)
    it = iters_to_loss_tol(res.losses, 1e-3)
    assert len(rows) == 5
    for i, r in enumerate(rows):
        assert r["maxima_count"] == int(stats["count"][i])
        assert 1 <= r["maxima_count"] <= 4
        assert r["loss_final"] == pytest.approx(float(res.final_loss[:, i].mean()))
        assert r["maxima_rel_spread"] == pytest.approx(float(stats["spread"][i]) / r["loss_final"])
        assert r["iters_to_loss_tol"] == pytest.approx(float(it[:, i].double().mean()))
        assert 0 <= r["iters_to_loss_tol"] <= 15 and 0.0 <= r["reached_tol"] <= 1.0
        assert r["loss_final_max"] >= r["loss_final"]
        assert 0 <= r["iters_to_climb"] <= 15 and 0.0 <= r["converged_share"] <= 1.0
        assert r["iters_to_climb"] == pytest.approx(float(
            iters_to_climb_fraction(res.losses, 0.9)[:, i].double().mean()))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_inverse_square_lr_makes_scale_s_the_unit_scale_from_scaled_weights(norm):
    """No bias, ReLU: f(s·x; W) = f(x; s·W), and SGD on W with lr/s² moves V = s·W by lr. So
    adversarial training at input scale s (ε, data range and PGA step × s, lr / s²) from W₀ is the
    run at scale 1 from s·W₀: every robust batch loss equal, final W times s equal."""
    from curvrobust.attacks.pga_dynamics import adversarial_train

    s = 4.0
    x, _ = _binary_data(32, 10, 7)
    y = torch.where(x[:, 1] > 0.5, 1.0, -1.0).to(F64)
    torch.manual_seed(1)
    at_s = TwoLayerNet(in_features=10, width=12).double()
    at_one = copy.deepcopy(at_s)
    with torch.no_grad():
        at_one.hidden.weight.mul_(s)
    kw = dict(epochs=2, batch_size=8, pga_steps=4, norm=norm, seed=11)
    _, steps_s = adversarial_train(at_s, x * s, y, 0.3 * s, lr=0.05 / s ** 2,
                                   pga_step_size=0.1 * s, data_range=(0.0, s), **kw)
    _, steps_one = adversarial_train(at_one, x, y, 0.3, lr=0.05, pga_step_size=0.1,
                                     data_range=(0.0, 1.0), **kw)
    got = torch.tensor([r["robust_batch_loss"] for r in steps_s], dtype=F64)
    want = torch.tensor([r["robust_batch_loss"] for r in steps_one], dtype=F64)
    assert len(got) == 8
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(at_s.hidden.weight * s, at_one.hidden.weight, rtol=1e-10,
                               atol=1e-12)
    assert not torch.equal(got[0], got[-1])   # training did move
