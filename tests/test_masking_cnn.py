"""The checks on a 10-class CNN (curvrobust.evaluation.masking): a healthy model passes every masking
check and converges under the default suite; a PGD with too few steps, and a model whose
confident logits distort the float32 cross-entropy gradient, are flagged for convergence and
not for masking.

The data are synthetic (ten smoothed random 12×12 prototypes plus Gaussian noise): cheap, and
enough for checks whose answers are known by construction."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from torch import nn

from curvrobust.models.inference import decision_margin
from curvrobust.evaluation.masking import (flags_by_kind, gradient_probe, masking_checks,
    robust_suite, suite_settings)
from curvrobust.evaluation.outcomes import worst_case_images
from test_masking import Scaled

pytestmark = pytest.mark.usefixtures("one_thread")

LARGE_EPS = 0.5
FAST = {"apgd_steps": 10, "fab_steps": 10, "square_queries": 200}  # where AutoAttack is not
                                                                      # the point


def prototypes_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (1, 12, 12) in [0, 1] of 10 balanced classes: 0.2 + 0.6·prototype + noise."""
    protos = torch.rand(10, 1, 12, 12, generator=torch.Generator().manual_seed(123))
    protos = nn.functional.avg_pool2d(protos, 3, 1, 1)
    lo, hi = protos.amin((1, 2, 3), keepdim=True), protos.amax((1, 2, 3), keepdim=True)
    protos = (protos - lo) / (hi - lo)
    y = torch.arange(n) % 10
    noise = torch.randn(n, 1, 12, 12, generator=torch.Generator().manual_seed(seed))
    return (0.2 + 0.6 * protos[y] + 0.25 * noise).clamp(0, 1), y


def train_cnn() -> nn.Module:
    """Conv(8) - ReLU - max-pool - linear, Adam, 15 epochs of 2,000 images (about 3 s)."""
    torch.manual_seed(0)
    x, y = prototypes_data(2000, 1)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 36, 10))
    opt = torch.optim.Adam(model.parameters(), 0.01)
    for _ in range(15):
        perm = torch.randperm(2000)
        for i in range(0, 2000, 100):
            idx = perm[i:i + 100]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def cnn():
    pytest.importorskip("torchattacks")
    model = train_cnn()
    x, y = prototypes_data(200, 2)
    assert (model(x).argmax(1) == y).float().mean() > 0.95
    return model, x, y


def checks_of(model, x, y, eps, settings=None, probe=True):
    rows = robust_suite(model, x, y, torch.arange(len(x)), eps, large_eps=LARGE_EPS,
                        settings=suite_settings(settings))
    df = pd.DataFrame(rows)
    checks = masking_checks(df, gradient_probe(model, x, y) if probe else None, eps, LARGE_EPS)
    return df, {c["check"]: c for c in checks}


def test_healthy_cnn_passes_every_check_under_the_default_suite(cnn):
    model, x, y = cnn
    df, checks = checks_of(model, x, y, 0.04)
    assert flags_by_kind(list(checks.values())) == {"masking": [], "convergence": []}, checks
    # every stage ran with AutoAttack's counts, and the model is partly robust
    assert set(df["attack"]) >= {"fgsm", "pgd_ce", "pgd_margin", "pgd_ce_2x",
                                 "pgd_ce_restarts", "apgd_ce", "apgd_t", "fab_t", "square"}
    robust = worst_case_images(df, 0.04)["robust"].mean()
    assert 0.2 < robust < 0.8
    assert checks["large_eps"]["value"] == 0 and checks["zero_grad"]["value"] == 0


def test_pgd_with_too_few_steps_is_a_convergence_flag_from_the_doubled_steps(cnn):
    """Three steps of 1.5ε/3 from a random start: doubling them breaks many more images. One
    start only (restarts = 1), so the doubled-steps branch alone makes the flag."""
    model, x, y = cnn
    s = {**FAST, "pgd_steps": 3, "pgd_step_factor": 1.5, "restarts": 1}
    df, checks = checks_of(model, x, y, 0.05, s, probe=False)
    flags = flags_by_kind(list(checks.values()))
    assert flags == {"masking": [], "convergence": ["steps_restarts"]}, checks
    ce = set(df[(df["attack"] == "pgd_ce") & (df["eps"] == 0.05) & (df["success"] == 1)]["index"])
    twice = set(df[(df["attack"] == "pgd_ce_2x") & (df["success"] == 1)]["index"])
    assert checks["steps_restarts"]["value"] == len(twice - ce) > 4


def test_confident_margins_distort_the_gradient_without_zeroing_it(cnn):
    """Logits ×8 put the clean margins of most images in 17-100: float32 rounds p_y to 1, so
    the cross-entropy gradient loses its −∇z_y term (distorted, not zero). Cross-entropy PGD
    falls behind margin PGD (same decisions, same starts): a convergence flag, and no
    zero-gradient (masking) flag."""
    model, x, y = cnn
    scaled = Scaled(model, 8.0)
    with torch.no_grad():
        margin = decision_margin(scaled(x), y)
    keep = (margin >= 17) & (margin <= 100)
    x, y = x[keep], y[keep]
    assert len(x) > 150
    # the premise: float32 gradients are non-zero but point elsewhere than float64's
    x32 = x.clone().requires_grad_(True)
    (g32,) = torch.autograd.grad(nn.functional.cross_entropy(scaled(x32), y, reduction="sum"),
                                 x32)
    s64 = Scaled(copy.deepcopy(model).double(), 8.0)
    x64 = x.double().requires_grad_(True)
    z = s64(x64)
    # exact CE per image in float64: log(1 + Σ_{j≠y} exp(z_j − z_y))
    gap = z - z.gather(1, y[:, None])
    loss = torch.logsumexp(gap, 1).sum()
    (g64,) = torch.autograd.grad(loss, x64)
    cos = nn.functional.cosine_similarity(g32.flatten(1).double(), g64.flatten(1), dim=1)
    assert (g32.flatten(1).abs().amax(1) > 0).all()
    assert (cos < 0.99).float().mean() > 0.5
    df, checks = checks_of(scaled, x, y, 0.05, FAST)
    assert checks["zero_grad"]["value"] == 0 and checks["zero_grad"]["passed"]
    assert not checks["margin_only"]["passed"] and checks["margin_only"]["kind"] == "convergence"
    assert flags_by_kind(list(checks.values()))["masking"] == []
