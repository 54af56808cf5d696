"""FGSM invariants, equality with torchattacks, the attack registry and the success table."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from curvrobust.attacks import (ATTACKS, attack_success_table, eval_mode, fgsm, fgsm_success_table,
                                fgsm_sweep, run_attack)
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
