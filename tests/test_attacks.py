"""FGSM invariants, equality with torchattacks, the attack registry and the success table."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from curvrobust.attacks import (ATTACKS, attack_success_table, bim, ce_loss, cw, cw_margin_loss,
    fgsm, fgsm_success_table, fgsm_sweep, iterative_linf, pgd, run_attack)
from curvrobust.models.inference import eval_mode
from curvrobust.models import build_model


@pytest.fixture(scope="module")
def cnn_and_data():
    torch.manual_seed(0)
    model = build_model("cnn000")
    x = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    return model, x, y


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_fgsm_invariants(cnn_and_data, eps):
    model, x, y = cnn_and_data
    model.eval()
    adv = fgsm(model, x, y, eps)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert not adv.requires_grad
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert (adv - x).abs().max() <= eps + 1e-7
    if eps == 0.0:
        assert torch.equal(adv, x)
    else:
        # interior pixels move by exactly eps (unless the gradient is exactly zero)
        assert ((adv - x).abs() > 0.5 * eps).any()


def test_fgsm_matches_torchattacks(cnn_and_data):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = cnn_and_data
    model.eval()
    for eps in (8 / 255, 0.1, 0.25):
        ours = fgsm(model, x, y, eps)
        theirs = torchattacks.FGSM(model, eps=eps)(x, y)
        assert torch.equal(ours, theirs)  # same arithmetic -> bitwise identical


def test_fgsm_leaves_model_alone(cnn_and_data):
    model, x, y = cnn_and_data
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fgsm(model, x, y, 0.1)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    x_copy = x.clone()
    fgsm(model, x, y, 0.1)
    assert torch.equal(x, x_copy) and not x.requires_grad


def test_fgsm_rejects_negative_eps(cnn_and_data):
    model, x, y = cnn_and_data
    with pytest.raises(ValueError, match="eps"):
        fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match="eps"):
        run_attack("fgsm", model, x, y, eps=float("nan"))


def test_fgsm_data_range_and_sweep(cnn_and_data):
    model, x, y = cnn_and_data
    model.eval()
    adv = fgsm(model, x, y, 0.3, data_range=(0.2, 0.7))
    assert adv.min() >= 0.2 and adv.max() <= 0.7
    eps_list = [0.0, 0.1, 0.2]
    for eps, swept in zip(eps_list, fgsm_sweep(model, x, y, eps_list)):
        assert torch.equal(swept, fgsm(model, x, y, eps))


def test_registry(cnn_and_data):
    model, x, y = cnn_and_data
    model.eval()
    assert ATTACKS["fgsm"] is fgsm
    assert torch.equal(run_attack("fgsm", model, x, y, eps=0.1), fgsm(model, x, y, 0.1))
    with pytest.raises(KeyError, match="fgsm"):
        run_attack("nope", model, x, y, eps=0.1)


class _ModeRecorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return x


def test_eval_mode_restores_mixed_modes():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    model[1].eval()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and not model[1].training


def _toy_model() -> nn.Sequential:
    """z = [x0 − x1, x1 − x0]: class 0 iff x0 > x1; FGSM shrinks the margin |x0 − x1| by 2ε."""
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    return nn.Sequential(_ModeRecorder(), lin)


def test_success_table_definitions():
    model = _toy_model()
    model.train()
    x = torch.tensor([[0.55, 0.45],   # y=0 correct, margin 0.1 -> flips for eps > 0.05
                      [0.70, 0.30],   # y=0 correct, margin 0.4 -> flips for eps > 0.2
                      [0.45, 0.55],   # y=1 correct, margin 0.1 -> flips for eps > 0.05
                      [0.60, 0.40],   # y=1 misclassified: never attacked
                      [0.30, 0.70]])  # y=0 misclassified: never attacked
    y = torch.tensor([0, 0, 1, 1, 0])
    eps_list = [0.0, 0.03, 0.1, 0.25]
    rows = fgsm_success_table(model, x, y, eps_list, batch_size=2)
    assert [r["eps"] for r in rows] == eps_list
    assert all(r["n_test"] == 5 and r["correct"] == 3 for r in rows)
    assert [r["successes"] for r in rows] == [0, 0, 2, 3]
    assert [r["success_rate"] for r in rows] == pytest.approx([0, 0, 2 / 3, 1])
    assert [r["adv_accuracy"] for r in rows] == pytest.approx([3 / 5, 3 / 5, 1 / 5, 0])
    assert set(rows[0]) == {"eps", "n_test", "correct", "successes", "success_rate",
                            "adv_accuracy"}
    # attacked in eval mode, previous (train) mode restored
    assert model[0].seen and not any(model[0].seen)
    assert model.training and model[0].training
    # the generic entry point gives the same rows
    assert attack_success_table(model, x, y, "fgsm", eps_list, batch_size=3) == rows


def test_success_table_no_correct_examples():
    model = _toy_model()
    x = torch.tensor([[0.6, 0.4]])
    rows = fgsm_success_table(model, x, torch.tensor([1]), [0.1])
    assert rows[0]["correct"] == 0 and rows[0]["successes"] == 0
    assert math.isnan(rows[0]["success_rate"]) and rows[0]["adv_accuracy"] == 0.0


def test_success_table_matches_direct_count(cnn_and_data):
    model, x, y = cnn_and_data
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(1)  # every example correctly classified
    rows = fgsm_success_table(model, x, y, [0.1], batch_size=10)
    adv = fgsm(model, x, y, 0.1)
    with torch.no_grad():
        flipped = int((model(adv).argmax(1) != y).sum())
    assert rows[0]["correct"] == 64 and rows[0]["successes"] == flipped


# ---------------------------------------------------------------- iterative L∞ attacks


@pytest.fixture(scope="module")
def tiny_net_and_data():
    """A small conv net on 1×8×8 inputs, labels = its own predictions (all correct)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model.eval()
    x = torch.rand(32, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def _fooled(model: nn.Module, adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(adv).argmax(1) != y


_ITERATIVE = [
    (bim, {}),
    (pgd, {"restarts": 3, "seed": 5}),
    (cw, {}),
    (cw, {"kappa": float("inf"), "random_start": True, "restarts": 2}),
]


@pytest.mark.parametrize("attack, params", _ITERATIVE)
@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1, 0.5])
def test_iterative_invariants(tiny_net_and_data, attack, params, eps):
    model, x, y = tiny_net_and_data
    model.train()  # no dropout/BN: same function, but the flag must survive
    x_copy = x.clone()
    adv = attack(model, x, y, eps, steps=5, step_size=max(eps, 0.01) / 3, **params)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert torch.equal(x, x_copy)
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert (adv - x).abs().max() <= eps + 1e-6
    if eps == 0.0:
        assert torch.equal(adv, x)


def test_iterative_data_range_none_and_custom(tiny_net_and_data):
    model, x, y = tiny_net_and_data
    adv = pgd(model, x, y, 0.3, steps=3, step_size=0.1, data_range=(0.2, 0.7))
    assert adv.min() >= 0.2 and adv.max() <= 0.7
    adv = bim(model, x, y, 0.3, steps=3, step_size=0.1, data_range=None)
    assert (adv - x).abs().max() <= 0.3 + 1e-6
    assert adv.min() < 0.0 or adv.max() > 1.0  # no clipping: some pixel leaves [0, 1]


@pytest.mark.parametrize("eps, steps, alpha", [(8 / 255, 10, 2 / 255), (0.1, 7, 0.03),
                                               (0.3, 4, 0.1)])
def test_bim_pgd_match_torchattacks(tiny_net_and_data, eps, steps, alpha):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = tiny_net_and_data
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    for ours in (bim(model, x, y, eps, steps=steps, step_size=alpha),
                 pgd(model, x, y, eps, steps=steps, step_size=alpha, random_start=False),
                 iterative_linf(model, x, y, eps, ce_loss, steps=steps, step_size=alpha)):
        assert (ours - theirs).abs().max() <= 1e-6
    # the attack actually moved the input (so the comparison is not vacuous)
    assert (theirs - x).abs().max() > 0.5 * min(eps, alpha)


def test_pgd_random_start_matches_torchattacks(tiny_net_and_data):
    """A fresh generator seeded s draws what torch.manual_seed(s) makes torchattacks draw."""
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = tiny_net_and_data
    torch.manual_seed(7)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.03, steps=4, random_start=True)(x, y)
    ours = pgd(model, x, y, 0.1, steps=4, step_size=0.03, seed=7)
    assert (ours - theirs).abs().max() <= 1e-6


def test_pgd_seed_and_generator(tiny_net_and_data):
    model, x, y = tiny_net_and_data
    kw = {"steps": 2, "step_size": 0.02}
    a = pgd(model, x, y, 0.1, seed=3, **kw)
    assert torch.equal(a, pgd(model, x, y, 0.1, seed=3, **kw))  # deterministic
    assert not torch.equal(a, pgd(model, x, y, 0.1, seed=4, **kw))  # seed matters
    # a generator given explicitly is used instead of seed, and advances between calls
    gen = torch.Generator().manual_seed(3)
    first = pgd(model, x, y, 0.1, seed=99, generator=gen, **kw)
    second = pgd(model, x, y, 0.1, seed=99, generator=gen, **kw)
    assert torch.equal(first, a)
    assert not torch.equal(first, second)
    # without random start no randomness is involved at all
    assert torch.equal(pgd(model, x, y, 0.1, random_start=False, seed=1, **kw),
                       pgd(model, x, y, 0.1, random_start=False, seed=2, **kw))


@pytest.mark.parametrize("attack", [pgd, cw])
def test_restarts_only_add_successes(tiny_net_and_data, attack):
    model, x, y = tiny_net_and_data
    gained = 0
    for eps in (0.02, 0.03, 0.05):
        kw = {"steps": 2, "step_size": eps / 4, "seed": 11, "random_start": True}
        one = attack(model, x, y, eps, restarts=1, **kw)
        many = attack(model, x, y, eps, restarts=10, **kw)
        s1, s10 = _fooled(model, one, y), _fooled(model, many, y)
        assert 0 < int(s1.sum()) < len(y)  # partial success: the comparison is informative
        assert bool((s10 | ~s1).all())  # per example: success with 1 restart ⇒ with 10
        assert torch.equal(many[s1], one[s1])  # the first restart's success is kept as is
        assert (many - x).abs().max() <= eps + 1e-6
        gained += int(s10.sum() - s1.sum())
    assert gained > 0  # restarts found adversarials the first run missed


def test_iterative_argument_errors(tiny_net_and_data):
    model, x, y = tiny_net_and_data
    with pytest.raises(ValueError, match="steps"):
        bim(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, y, 0.1, steps=2.5)
    with pytest.raises(ValueError, match="step_size"):
        pgd(model, x, y, 0.1, step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        cw(model, x, y, 0.1, step_size=-0.1)
    with pytest.raises(ValueError, match="restarts"):
        pgd(model, x, y, 0.1, restarts=0)
    with pytest.raises(ValueError, match="random_start"):
        pgd(model, x, y, 0.1, restarts=2, random_start=False)
    with pytest.raises(ValueError, match="random_start"):
        cw(model, x, y, 0.1, restarts=3)
    with pytest.raises(ValueError, match="kappa"):
        cw(model, x, y, 0.1, kappa=-1.0)
    with pytest.raises(ValueError, match="eps"):
        run_attack("bim", model, x, y, eps=-0.1)


def test_cw_margin_loss_known_values():
    logits = torch.tensor([[1.0, 3.0, 2.0],    # y=0: best wrong 3 − 1 = 2
                           [0.0, -1.0, 5.0],   # y=2: best wrong 0 − 5 = −5
                           [2.0, 2.0, 0.0]])   # y=1: best wrong 2 − 2 = 0
    y = torch.tensor([0, 2, 1])
    assert cw_margin_loss(logits, y).item() == pytest.approx((0 - 5 + 0) / 3)
    assert cw_margin_loss(logits, y, kappa=1.0).item() == pytest.approx((1 - 5 + 0) / 3)
    assert cw_margin_loss(logits, y, kappa=float("inf")).item() == pytest.approx((2 - 5 + 0) / 3)
    # gradient: only rows below the cap (here 1 and 2) pull, on (best wrong, true) by (+1, −1)/N
    lg = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(cw_margin_loss(lg, y, kappa=1.0), lg)
    expected = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, -1.0], [1.0, -1.0, 0.0]]) / 3
    assert torch.allclose(grad, expected)
    with pytest.raises(ValueError, match="kappa"):
        cw_margin_loss(logits, y, kappa=float("nan"))


def _linear_two_class() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """z = W·vec(x) + b on 1×8×8 inputs, points in [0.3, 0.7]; returns the model, x, its
    predictions y and the exact L∞ distance to the boundary g(x) / ‖w_y − w_other‖₁, where
    g(x) = z_y − z_other > 0."""
    torch.manual_seed(3)
    lin = nn.Linear(64, 2)
    model = nn.Sequential(nn.Flatten(), lin).eval()
    x = 0.3 + 0.4 * torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        z = model(x)
    y = z.argmax(1)
    g = (z.gather(1, y[:, None]) - z.gather(1, 1 - y[:, None])).squeeze(1)
    w_diff = lin.weight.detach()[y] - lin.weight.detach()[1 - y]
    dist = g / w_diff.abs().sum(1)
    assert bool((dist < 0.25).all())  # the ε-ball stays inside [0, 1]: clipping is inactive
    return model, x, y, dist


def test_cw_crosses_linear_boundary_exactly_when_eps_allows():
    model, x, y, dist = _linear_two_class()
    w = model[1].weight.detach()
    for i in range(len(y)):
        xi, yi = x[i:i + 1], y[i:i + 1]
        for factor, should_flip in ((1.02, True), (0.98, False)):
            eps = factor * float(dist[i])
            adv = cw(model, xi, yi, eps, steps=120, step_size=eps / 50)
            assert (adv - xi).abs().max() <= eps + 1e-6
            assert bool(_fooled(model, adv, yi)) is should_flip
        # no cap: every pixel ends at the corner x − ε·sign(w_y − w_other) of the ball
        eps = 0.98 * float(dist[i])
        adv = cw(model, xi, yi, eps, steps=60, step_size=eps / 50, kappa=float("inf"))
        corner = xi - eps * (w[yi] - w[1 - yi]).sign().view_as(xi)
        assert (adv - corner).abs().max() <= 1e-6


def test_cw_kappa_stops_past_the_boundary():
    """With confidence κ, ascent stops within one step after the margin passes κ."""
    model, x, y, _ = _linear_two_class()
    w = model[1].weight.detach()
    w_l1 = (w[0] - w[1]).abs().sum()
    kappa, step = 0.05, 1e-3
    adv = cw(model, x, y, 0.25, steps=400, step_size=step, kappa=kappa)
    with torch.no_grad():
        z = model(adv)
    wrong_minus_true = (z.gather(1, 1 - y[:, None]) - z.gather(1, y[:, None])).squeeze(1)
    assert bool((wrong_minus_true >= kappa - 1e-5).all())
    assert bool((wrong_minus_true <= kappa + step * w_l1 + 1e-5).all())


@pytest.mark.parametrize("kind, params", [
    ("bim", {"steps": 5, "step_size": 0.01}),
    ("cw", {"steps": 5, "step_size": 0.01, "kappa": 0.0}),
    ("pgd", {"steps": 5, "step_size": 0.01, "restarts": 2, "seed": 1}),
])
def test_success_table_with_iterative_attacks(tiny_net_and_data, kind, params):
    model, x, _ = tiny_net_and_data
    torch.manual_seed(2)
    y = torch.randint(0, 3, (x.shape[0],))  # some examples misclassified
    model.train()
    eps_list = [0.0, 0.02, 0.05]
    rows = attack_success_table(model, x, y, kind, eps_list, params, batch_size=10)
    assert model.training
    assert [r["eps"] for r in rows] == eps_list
    clean_acc = rows[0]["correct"] / rows[0]["n_test"]
    assert 0 < rows[0]["correct"] < len(y) and rows[0]["successes"] == 0
    assert all(r["adv_accuracy"] <= clean_acc for r in rows)
    assert rows[-1]["successes"] > 0
    # the table counts what the attack does to each batch's correctly classified examples
    # (per batch: a random start is drawn per call, so batching matters for PGD)
    model.eval()
    flipped = 0
    for start in range(0, len(y), 10):
        xb, yb = x[start:start + 10], y[start:start + 10]
        with torch.no_grad():
            ok = model(xb).argmax(1) == yb
        adv = run_attack(kind, model, xb[ok], yb[ok], eps=0.05, **params)
        flipped += int(_fooled(model, adv, yb[ok]).sum())
    assert rows[-1]["successes"] == flipped
