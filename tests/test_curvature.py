"""Input-gradient norms, logit margins and SAM loss increases against independent references."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.curvature.statistics import (input_grad_norm, logit_margin, sam_loss_increase,
    sam_loss_increase_per_example)
from curvrobust.models import build_model


def _cnn(dtype: torch.dtype = torch.float32, n: int = 12, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("cnn000").to(dtype)
    x = torch.rand(n, 1, 28, 28, dtype=dtype)
    y = torch.randint(0, 10, (n,))
    return model, x, y


def _linear(seed: int = 1):
    torch.manual_seed(seed)
    lin = nn.Linear(16, 10).double()
    with torch.no_grad():
        lin.weight.mul_(3.0)
        lin.bias.normal_()
    model = nn.Sequential(nn.Flatten(), lin)
    x = torch.rand(9, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 10, (9,))
    return model, lin, x, y


def _assert_untouched(model: nn.Module, before: dict[str, torch.Tensor], training: bool) -> None:
    assert model.training == training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- input_grad_norm

def test_input_grad_norm_matches_per_example_loop():
    model, x, y = _cnn(n=10)
    model.train()
    before = copy.deepcopy(model.state_dict())
    got = input_grad_norm(model, x, y, batch_size=4)
    _assert_untouched(model, before, training=True)
    model.eval()
    ref = []
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xi), y[i:i + 1]), xi)
        ref.append(g.norm())
    assert got.shape == (10,) and got.device.type == "cpu"
    torch.testing.assert_close(got, torch.stack(ref), rtol=1e-5, atol=1e-8)


def test_input_grad_norm_linear_closed_form():
    model, lin, x, y = _linear()
    got = input_grad_norm(model, x, y, batch_size=4)
    with torch.no_grad():
        p = torch.softmax(x.flatten(1) @ lin.weight.T + lin.bias, dim=1)
        grad = (p - F.one_hot(y, 10).double()) @ lin.weight  # rows: Wᵀ(p − onehot)
    torch.testing.assert_close(got, grad.norm(dim=1), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- logit_margin

def test_logit_margin_hand_computed():
    z = torch.zeros(4, 10)
    z[0, :3] = torch.tensor([1.0, 2.0, 3.0])   # y=2: 3 − 2 = 1
    z[1, :3] = torch.tensor([1.0, 2.0, 3.0])   # y=0: 1 − 3 = −2
    z[2, 5] = -4.0                             # y=5: −4 − 0 = −4
    z[3, :] = 7.0                              # y=9: tie, 0
    y = torch.tensor([2, 0, 5, 9])
    got = logit_margin(nn.Identity(), z, y, batch_size=3)
    torch.testing.assert_close(got, torch.tensor([1.0, -2.0, -4.0, 0.0]))


def test_logit_margin_sign_matches_correctness():
    model, x, y = _cnn(n=30)
    m = logit_margin(model, x, y, batch_size=7)
    with torch.no_grad():
        pred = model.eval()(x).argmax(1)
    assert torch.equal(m > 0, pred == y)


# ---------------------------------------------------------------- SAM

def test_sam_leaves_model_alone_and_rho_zero():
    model, x, y = _cnn(n=10)
    model.train()
    before = copy.deepcopy(model.state_dict())
    vals = sam_loss_increase(model, x, y, rho=0.05, batch_size=4)
    zeros = sam_loss_increase(model, x, y, rho=0.0, batch_size=4)
    per_ex = sam_loss_increase_per_example(model, x, y, rho=0.05, batch_size=4)
    per_ex0 = sam_loss_increase_per_example(model, x, y, rho=0.0, batch_size=4)
    _assert_untouched(model, before, training=True)
    assert vals.shape == (3,) and torch.all(vals > 0)  # ascent direction raises the loss
    assert torch.equal(zeros, torch.zeros(3, dtype=torch.float64))
    assert per_ex.shape == (10,) and torch.equal(per_ex0, torch.zeros(10, dtype=torch.float64))


@pytest.mark.parametrize("batch_size,sizes", [(None, [256, 256, 88]), (250, [250, 250, 100])])
def test_sam_batch_partition(batch_size, sizes):
    """Each consecutive batch's value against a hand-made SAM step on a copy of the model:
    g = ∇θ mean CE by torch.autograd.grad, θ' = θ + ρ g/‖g‖ written into the copy's
    parameters, value = L(θ') − L(θ); batches of the wrong size or order would differ."""
    model, x, y = _cnn(dtype=torch.float64, n=600, seed=3)
    rho = 0.05
    kw = {} if batch_size is None else {"batch_size": batch_size}
    got = sam_loss_increase(model, x, y, rho=rho, **kw)
    ref, start = [], 0
    for size in sizes:
        xb, yb = x[start:start + size], y[start:start + size]
        start += size
        twin = copy.deepcopy(model).eval()
        params = list(twin.parameters())
        loss0 = F.cross_entropy(twin(xb), yb)
        grads = torch.autograd.grad(loss0, params)
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.add_(rho * g / norm)
            ref.append(float(F.cross_entropy(twin(xb), yb) - loss0.detach()))
    assert start == 600 and got.shape == (len(sizes),)
    assert min(ref) > 0  # a real increase, not an all-zero answer
    torch.testing.assert_close(got, torch.tensor(ref, dtype=torch.float64), rtol=1e-9,
                               atol=1e-12)
    # the batch values differ from one another, so a mis-partition would be visible
    assert len({round(v, 12) for v in ref}) == len(ref)

def test_sam_linear_closed_form():
    model, lin, x, y = _linear()
    rho = 0.3
    got = sam_loss_increase(model, x, y, rho=rho, batch_size=4)  # batches 4, 4, 1
    W, b = lin.weight.detach(), lin.bias.detach()

    def loss(W_, b_, xb, yb):
        z = xb.flatten(1) @ W_.T + b_
        return (torch.logsumexp(z, 1) - z.gather(1, yb[:, None]).squeeze(1)).mean()

    ref = []
    for s in range(0, 9, 4):
        xb, yb = x[s:s + 4], y[s:s + 4]
        r = torch.softmax(xb.flatten(1) @ W.T + b, 1) - F.one_hot(yb, 10).double()
        gW, gb = r.T @ xb.flatten(1) / len(xb), r.mean(0)
        norm = torch.sqrt((gW ** 2).sum() + (gb ** 2).sum())
        ref.append(loss(W + rho * gW / norm, b + rho * gb / norm, xb, yb) - loss(W, b, xb, yb))
    torch.testing.assert_close(got, torch.stack(ref), rtol=1e-10, atol=1e-12)


def test_sam_first_order():
    """L(θ + ρ g/‖g‖) − L(θ) = ρ‖g‖ + O(ρ²): the ratio tends to 1 as ρ → 0."""
    model, x, y = _cnn(torch.float64, n=16, seed=5)
    ref = copy.deepcopy(model).eval()
    F.cross_entropy(ref(x), y).backward()
    gnorm = torch.sqrt(sum((p.grad ** 2).sum() for p in ref.parameters())).item()
    errs = []
    for rho in (1e-2, 1e-3, 1e-4):
        val = sam_loss_increase(model, x, y, rho=rho, batch_size=16)[0].item()
        errs.append(abs(val / (rho * gnorm) - 1.0))
    assert errs[-1] < 1e-3
    assert errs[2] < errs[1] < errs[0]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_sam_per_example_equals_batch_of_one(dtype, tol):
    model, x, y = _cnn(dtype, n=12, seed=7)
    per_ex = sam_loss_increase_per_example(model, x, y, rho=0.05, batch_size=5)
    loop = sam_loss_increase(model, x, y, rho=0.05, batch_size=1)
    assert per_ex.shape == (12,) and per_ex.dtype == torch.float64
    torch.testing.assert_close(per_ex, loop, rtol=tol, atol=tol)
