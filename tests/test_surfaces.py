"""Input- and parameter-space surfaces (study 002): grid points against direct evaluations,
linear-model identities, direction invariants, filter normalisation and weight restoration."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.curvature.surfaces import (filter_normalized_direction, grid, input_direction,
    input_surface, load_surfaces, param_surface, save_surfaces)

C, SHAPE = 4, (1, 8, 8)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _cnn(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(48, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, C),
    ).to(dtype)


def _linear(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, C)).to(dtype)


def _data(n: int = 3, seed: int = 1, dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *SHAPE), generator=gen, dtype=dtype)
    y = torch.randint(0, C, (n,), generator=gen)
    return x, y


def _margin(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """g by an explicit loop over classes (independent of the library's masking)."""
    out = []
    for zi, yi in zip(z, y):
        wrong = torch.stack([zi[j] for j in range(zi.numel()) if j != int(yi)])
        out.append(zi[yi] - wrong.max())
    return torch.stack(out)


def _trained_mode_cnn():
    """A CNN in train mode with non-trivial batch-norm statistics (eval mode must be used)."""
    model = _cnn()
    with torch.no_grad():
        model(torch.rand(16, *SHAPE) * 3)  # moves running stats away from (0, 1)
    model.train()
    return model


# ------------------------------------------------------------------------------ grid / io


def test_grid_symmetric_with_exact_zero():
    g = grid(0.5, 11)
    assert g.dtype == torch.float64 and g.shape == (11,)
    assert g[0] == -0.5 and g[-1] == 0.5 and g[5] == 0.0
    assert torch.equal(g, -g.flip(0))
    assert torch.allclose(g.diff(), torch.full((10,), 0.1, dtype=torch.float64))
    with pytest.raises(ValueError, match="points"):
        grid(1.0, 1)
    with pytest.raises(ValueError, match="range_"):
        grid(-1.0, 5)


def test_save_load_round_trip(tmp_path):
    arrays = {"alphas": grid(1.0, 5), "loss": np.random.default_rng(0).random((2, 3, 5, 5)),
              "directions": np.array(["random", "ce_ascent"]), "labels": np.arange(3)}
    path = tmp_path / "sub" / "input"  # no .npz suffix: must be written at exactly this name
    save_surfaces(path, **arrays)
    assert path.exists() and not (tmp_path / "sub" / "input.npz").exists()
    assert [p.name for p in path.parent.iterdir()] == ["input"]  # no temporary left
    back = load_surfaces(path)
    assert set(back) == set(arrays)
    np.testing.assert_array_equal(back["alphas"], arrays["alphas"].numpy())
    np.testing.assert_array_equal(back["loss"], arrays["loss"])
    assert back["directions"].tolist() == ["random", "ce_ascent"]
    with pytest.raises(ValueError, match="object"):
        save_surfaces(tmp_path / "bad.npz", a=np.array([{}, 1], dtype=object))


# ------------------------------------------------------------------------------ directions


@pytest.mark.parametrize("kind", ["random", "ce_ascent", "ll_descent", "cw_ascent"])
def test_direction_shape_and_entries(kind):
    model = _trained_mode_cnn()
    x, y = _data()
    p0 = [p.detach().clone() for p in model.parameters()]
    d = input_direction(model, x, y, kind, seed=3)
    assert d.shape == x.shape and d.dtype == x.dtype and d.device == x.device
    assert set(d.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert (d != 0).float().mean() > 0.5
    assert model.training and all(m.training for m in model.modules())  # mode restored
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(p0, model.parameters()))


def test_random_direction_seeded():
    x, y = _data()
    model = _cnn()
    a = input_direction(model, x, y, "random", seed=5)
    b = input_direction(model, x, y, "random", seed=5)
    c = input_direction(model, x, y, "random", seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) == {-1.0, 1.0}
    assert not torch.equal(a[0], a[1])  # each image gets its own direction
    with pytest.raises(ValueError, match="kind"):
        input_direction(model, x, y, "fgsm")


def test_gradient_directions_match_autograd():
    """Each adversarial direction equals the sign of the gradient of its objective taken
    image by image in eval mode (float64, so no sign is decided by rounding)."""
    model = _trained_mode_cnn().double()
    x, y = _data(dtype=torch.float64)
    model.eval()
    for i in range(x.shape[0]):
        xi = x[i:i + 1].clone().requires_grad_(True)
        z = model(xi)
        yi = y[i:i + 1]
        ll = z.detach().argmin(dim=1)
        objectives = {"ce_ascent": F.cross_entropy(z, yi),
                      "ll_descent": -F.cross_entropy(z, ll),
                      "cw_ascent": -_margin(z, yi).sum()}
        for kind, obj in objectives.items():
            (g,) = torch.autograd.grad(obj, xi, retain_graph=True)
            model.train()
            d = input_direction(model, x, y, kind)
            model.eval()
            assert torch.equal(d[i], g[0].sign()), kind


def test_ll_descent_lowers_least_likely_ce_and_ce_ascent_raises_loss():
    model = _cnn().eval()
    x, y = _data(n=6)
    eps = 1e-3
    with torch.no_grad():
        z = model(x)
        ll = z.argmin(dim=1)
    d_ll = input_direction(model, x, y, "ll_descent")
    d_ce = input_direction(model, x, y, "ce_ascent")
    with torch.no_grad():
        ce_ll = lambda t: F.cross_entropy(model(t), ll, reduction="none")  # noqa: E731
        ce_y = lambda t: F.cross_entropy(model(t), y, reduction="none")  # noqa: E731
        assert (ce_ll(x + eps * d_ll) < ce_ll(x)).all()
        assert (ce_y(x + eps * d_ce) > ce_y(x)).all()


# ------------------------------------------------------------------------------ input surface


def test_input_surface_matches_direct_evaluation():
    model = _trained_mode_cnn()
    x, y = _data()
    d1 = input_direction(model, x, y, "ce_ascent")
    d2 = input_direction(model, x, y, "random", seed=1)
    al, be = grid(0.3, 5), grid(0.2, 7)
    s = input_surface(model, x, y, d1, d2, al, be)
    assert s["loss"].shape == s["margin"].shape == (3, 5, 7)
    assert model.training
    model.eval()
    with torch.no_grad():
        z0 = model(x)
        torch.testing.assert_close(s["loss"][:, 2, 3], F.cross_entropy(z0, y, reduction="none"))
        torch.testing.assert_close(s["margin"][:, 2, 3], _margin(z0, y))
        for j, k in [(0, 0), (4, 6), (1, 5), (3, 2)]:
            pts = x + float(al[j]) * d1 + float(be[k]) * d2
            z = model(pts)
            torch.testing.assert_close(s["loss"][:, j, k], F.cross_entropy(z, y, reduction="none"),
                                       rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(s["margin"][:, j, k], _margin(z, y), rtol=1e-5, atol=1e-5)
        # clipping to [0, 1] before evaluating
        sc = input_surface(model, x, y, d1, d2, al, be, clip=True)
        z = model((x + float(al[4]) * d1 + float(be[0]) * d2).clamp(0, 1))
        torch.testing.assert_close(sc["margin"][:, 4, 0], _margin(z, y), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(sc["margin"], s["margin"])


def test_input_surface_batching_invariant():
    model = _cnn()
    x, y = _data()
    d1 = input_direction(model, x, y, "cw_ascent")
    d2 = input_direction(model, x, y, "random")
    al, be = grid(0.5, 5), grid(0.5, 4)
    big = input_surface(model, x, y, d1, d2, al, be, batch_size=4096)
    small = input_surface(model, x, y, d1, d2, al, be, batch_size=3)
    torch.testing.assert_close(small["loss"], big["loss"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(small["margin"], big["margin"], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        input_surface(model, x, y, d1, d2, al, be, batch_size=0)
    with pytest.raises(ValueError, match="d2"):
        input_surface(model, x, y, d1, d2[:2], al, be)


def test_input_surface_never_builds_more_than_batch_size_images():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _cnn()

        def forward(self, t):
            seen.append(t.shape[0])
            return self.net(t)

    model = Spy()
    x, y = _data()
    d = input_direction(model, x, y, "random")
    input_surface(model, x, y, d, -d, grid(1, 3), grid(1, 3), batch_size=4)
    assert max(seen) <= 4 and sum(seen) == 3 * 3 * 3


def test_linear_model_margin_is_affine_and_ce_ascent_raises_loss():
    """For logits W x + c the margin along a line is piecewise affine; on a grid small enough
    that the arg-max wrong class does not change, second differences vanish."""
    model = _linear()
    x, y = _data(n=4, dtype=torch.float64)
    d1 = input_direction(model, x, y, "ce_ascent")
    d2 = input_direction(model, x, y, "random", seed=2)
    al, be = grid(1e-3, 5), grid(1e-3, 5)
    s = input_surface(model, x, y, d1, d2, al, be)
    g = s["margin"]
    assert g.dtype == torch.float64
    scale = g.abs().max()
    assert (g.diff(n=2, dim=1).abs() < 1e-10 * scale).all()
    assert (g.diff(n=2, dim=2).abs() < 1e-10 * scale).all()
    mixed = g[:, 1:, 1:] - g[:, 1:, :-1] - g[:, :-1, 1:] + g[:, :-1, :-1]
    assert (mixed.abs() < 1e-10 * scale).all()
    # the slope along a equals the directional derivative <∇g, d1>
    with torch.no_grad():
        w = model[1].weight
        z = model(x)
        top = z.scatter(1, y[:, None], float("-inf")).argmax(dim=1)
        grad_g = (w[y] - w[top]).view_as(x)
    slope = (g[:, 4, 2] - g[:, 0, 2]) / (al[4] - al[0])
    torch.testing.assert_close(slope, (grad_g * d1).flatten(1).sum(1))
    loss = s["loss"]
    assert (loss[:, 3, 2] > loss[:, 2, 2]).all()  # a small step along the FGSM direction


# ------------------------------------------------------------------------------ parameter space


def test_filter_normalized_direction_norms():
    model = _cnn()
    gen = torch.Generator().manual_seed(0)
    d = filter_normalized_direction(model, gen)
    params = list(model.parameters())
    assert len(d) == len(params)
    for p, dp in zip(params, d):
        assert dp.shape == p.shape and dp.dtype == p.dtype
        if p.ndim <= 1:  # conv/linear biases and batch-norm affine parameters
            assert torch.equal(dp, torch.zeros_like(p))
        else:
            torch.testing.assert_close(dp.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
            assert not torch.allclose(dp, p.detach())  # a direction, not the weights themselves
    d_next = filter_normalized_direction(model, gen)
    assert not torch.equal(d[0], d_next[0])  # the generator advanced
    d_again = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(d, d_again))


def test_param_surface_origin_and_restoration():
    model = _trained_mode_cnn()
    x, y = _data(n=10)
    state = copy.deepcopy(model.state_dict())
    al, be = grid(0.5, 3), grid(0.5, 5)
    z = param_surface(model, x, y, al, be, seed=4, batch_size=3)
    assert z.shape == (3, 5) and z.dtype == torch.float64
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        ref = F.cross_entropy(model(x), y).double()
    torch.testing.assert_close(z[1, 2], ref, rtol=1e-6, atol=1e-6)
    # an off-origin point against an explicit in-place perturbation of a copy
    gen = torch.Generator().manual_seed(4)
    d1 = filter_normalized_direction(model, gen)
    d2 = filter_normalized_direction(model, gen)
    other = copy.deepcopy(model).eval()
    with torch.no_grad():
        for p, a, b in zip(other.parameters(), d1, d2):
            p.add_(0.5 * a - 0.5 * b)
        ref = F.cross_entropy(other(x), y).double()
    torch.testing.assert_close(z[2, 0], ref, rtol=1e-5, atol=1e-5)
    assert not torch.isclose(z[2, 0], z[1, 2])
    # deterministic in the seed
    assert torch.equal(param_surface(model, x, y, al, be, seed=4, batch_size=3), z)
    torch.testing.assert_close(param_surface(model, x, y, al, be, seed=4), z)  # any batching


class _Boom(RuntimeError):
    """Raised by _FailingNet on its k-th forward call."""


class _FailingNet(nn.Module):
    """A CNN whose k-th forward raises, after recording the weights it was called with."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.net = _cnn()
        self.k, self.calls, self.seen = k, 0, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(self.net[0].weight.detach().clone())
        if self.calls == self.k:
            raise _Boom(f"forward call {self.calls}")
        return self.net(x)


@pytest.mark.parametrize("k", [2, 5])
def test_param_surface_restores_weights_on_exception(k):
    """The loss raises on the k-th forward, while perturbed weights are in use: the exception
    propagates, and every parameter and buffer is bit for bit what it was, the same tensor
    object, and the model's train/eval flags are restored."""
    model = _FailingNet(k)
    model.train()
    model.net[3].eval()  # a per-module mode that a blanket model.train() would overwrite
    params_before = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    buffers_before = {n: b.detach().clone() for n, b in model.named_buffers()}
    modes = [m.training for m in model.modules()]
    x, y = _data(n=4)
    with pytest.raises(_Boom, match=f"forward call {k}"):
        param_surface(model, x, y, grid(1, 3), grid(1, 3), batch_size=2)
    assert model.calls == k
    # the weights really were perturbed when it raised (so a restore was actually needed)
    assert not torch.equal(model.seen[-1], params_before["net.0.weight"][1])
    for n, p in model.named_parameters():
        obj, val = params_before[n]
        assert p is obj, n
        assert p.dtype == val.dtype and torch.equal(p.detach(), val), n
        assert p.grad is None, n
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers_before[n]), n
    assert [m.training for m in model.modules()] == modes
    # and the model still evaluates to its original surface centre afterwards
    model.k = -1
    with torch.no_grad():
        model.net.eval()
        ref = F.cross_entropy(model.net(x), y).double()
    assert param_surface(model, x, y, [0.0], [0.0])[0, 0].item() == pytest.approx(
        ref.item(), rel=1e-6)

