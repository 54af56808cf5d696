"""K-FAC (curvrobust.optim.KFAC) and the exact Gauss-Newton solver, each checked against
answers it does not compute itself: K-FAC is exact for one Linear layer and one example, and
curvlinops' GGN operator (code we did not write) checks the kernel solver."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from curvrobust.models import build_model
from curvrobust.optim import KFAC, GaussNewton, flatten
from curvrobust.training.loop import TrainSpec, make_stepper, train

curvlinops = pytest.importorskip("curvlinops")

LAMBDA = 0.01


def params_vector(model: nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()


@pytest.mark.parametrize("scale", ["sum", "mean"])
def test_kfac_step_equals_exact_gauss_newton_for_one_linear_layer_and_one_example(scale):
    # one example repeated N = 8 times: each Kronecker factor is a rank-one outer product, so
    # type-2 K-FAC with weight and bias in one factor is the exact GGN and the steps agree
    torch.manual_seed(0)
    layer = nn.Linear(5, 4).double()
    x = torch.randn(1, 5, dtype=torch.float64).repeat(8, 1)
    y = torch.full((8,), 2)
    lr = 0.3  # not 1, so a step that forgot lr, or applied it twice, would differ
    gn_model, kfac_model = copy.deepcopy(layer), copy.deepcopy(layer)
    GaussNewton(gn_model, lr=lr, damping=LAMBDA, ggn_scale=scale).step(x, y)
    KFAC(kfac_model, lr=lr, damping=LAMBDA, ggn_scale=scale).step(x, y)
    before, gn, kfac = params_vector(layer), params_vector(gn_model), params_vector(kfac_model)
    assert (gn - before).abs().max() > 1e-3  # the step is not trivially zero
    assert torch.allclose(kfac, gn, rtol=0, atol=1e-10)


def test_kfac_differs_from_gauss_newton_with_distinct_examples():
    # the same comparison with 8 different examples: the factors no longer multiply out to G,
    # which shows the test above is not passing for a reason that holds for every batch
    torch.manual_seed(0)
    layer = nn.Linear(5, 4).double()
    x, y = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 4, (8,))
    d_gn, _ = GaussNewton(copy.deepcopy(layer), damping=LAMBDA).solve_direction(x, y)
    d_kfac, _ = KFAC(copy.deepcopy(layer), damping=LAMBDA).solve_direction(x, y)
    assert float((d_kfac - d_gn).norm() / d_gn.norm()) > 1e-3


@pytest.mark.parametrize("scale", ["sum", "mean"])
def test_exact_gauss_newton_direction_solves_curvlinops_ggn(scale):
    # (G + λI) d = g with G from curvlinops' GGNLinearOperator, on the study's CNN in float64
    from curvlinops import GGNLinearOperator

    torch.manual_seed(1)
    model = build_model("cnn000").double()
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([0, 3, 5, 7, 9, 3])
    d, _ = GaussNewton(model, damping=LAMBDA, ggn_scale=scale).solve_direction(x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    G = GGNLinearOperator(model, nn.CrossEntropyLoss(reduction=scale), params, [(x, y)],
                          check_deterministic=False)
    g = flatten(torch.autograd.grad(F.cross_entropy(model(x), y), params))
    residual = G @ d + LAMBDA * d - g
    assert float(residual.norm()) <= 1e-8 * float(g.norm())
    other = "mean" if scale == "sum" else "sum"
    d_other, _ = GaussNewton(model, damping=LAMBDA, ggn_scale=other).solve_direction(x, y)
    assert float((G @ d_other + LAMBDA * d_other - g).norm()) > 1e-3 * float(g.norm())


def test_kfac_logs_its_cosine_with_the_exact_gauss_newton_direction():
    torch.manual_seed(0)
    layer = nn.Linear(5, 4).double()
    x1 = torch.randn(1, 5, dtype=torch.float64).repeat(8, 1)
    y1 = torch.full((8,), 1)
    opt = KFAC(layer, lr=0.1, damping=LAMBDA, gn_cosine_every=2)
    for _ in range(5):
        opt.step(x1, y1)
    assert [r["step"] for r in opt.diagnostic_rows] == [0, 2, 4]
    # where K-FAC is exact (one example), the two directions coincide
    assert all(abs(r["cos_gn"] - 1.0) < 1e-10 for r in opt.diagnostic_rows)
    x2, y2 = torch.randn(8, 5, dtype=torch.float64), torch.randint(0, 4, (8,))
    opt2 = KFAC(copy.deepcopy(layer), damping=LAMBDA, gn_cosine_every=1)
    d, _ = opt2.solve_direction(x2, y2)
    d_gn, _ = GaussNewton(copy.deepcopy(layer), damping=LAMBDA).solve_direction(x2, y2)
    cos = float(d @ d_gn / (d.norm() * d_gn.norm()))
    assert opt2.diagnostic_rows == [dict(step=0, cos_gn=pytest.approx(cos, abs=1e-12))]
    assert cos < 1 - 1e-6
    assert KFAC(copy.deepcopy(layer)).diagnostic_rows == []


def test_kfac_refreshes_its_factors_every_update_every_steps(monkeypatch):
    torch.manual_seed(0)
    model = build_model("cnn000")
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    opt = KFAC(model, update_every=3)
    refreshed = []
    original = KFAC.refresh

    def spy(self, xb, yb):
        refreshed.append(self.step_count)
        original(self, xb, yb)

    monkeypatch.setattr(KFAC, "refresh", spy)
    for _ in range(7):
        opt.step(x, y)
    assert refreshed == [0, 3, 6] and opt.step_count == 7


def test_kfac_trains_the_study_cnn_deterministically():
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def run() -> tuple[list[float], torch.Tensor]:
        torch.manual_seed(3)
        model = build_model("cnn000")
        opt = KFAC(model, lr=0.01, damping=LAMBDA, update_every=2)
        return [opt.step(x, y) for _ in range(8)], params_vector(model)

    (losses, w), (losses2, w2) = run(), run()
    assert losses == losses2 and torch.equal(w, w2)
    assert losses[-1] < losses[0]


def test_kfac_recipe_trains_through_the_training_loop(tmp_path):
    recipe = dict(arch="cnn000", epochs=1, batch_size=32,
                  optimizer=dict(name="kfac", lr=0.01, damping=0.01, ggn_scale="sum",
                                 kfac_approx="reduce", update_every=2, gn_cosine_every=2))
    torch.manual_seed(0)
    x, y = torch.rand(96, 1, 28, 28), torch.randint(0, 10, (96,))
    train(TrainSpec.from_recipe(recipe), 0, x, y, x[:32], y[:32], tmp_path,
          device=torch.device("cpu"), log=lambda *a: None, meta={})
    assert (tmp_path / "model.pt").exists() and (tmp_path / "epochs.csv").exists()
    diag = (tmp_path / "diagnostics.csv").read_text().splitlines()
    assert diag[0] == "step,cos_gn" and [int(r.split(",")[0]) for r in diag[1:]] == [0, 2]
    stepper = make_stepper(build_model("cnn000"), recipe["optimizer"])
    assert isinstance(stepper, KFAC) and stepper.kfac_approx == "reduce"


@pytest.mark.parametrize("kwargs,word", [
    (dict(lr=0.0), "lr"), (dict(damping=-1.0), "damping"), (dict(ggn_scale="avg"), "ggn_scale"),
    (dict(kfac_approx="diag"), "kfac_approx"), (dict(update_every=0), "update_every"),
    (dict(gn_cosine_every=-1), "gn_cosine_every"),
])
def test_kfac_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        KFAC(build_model("cnn000"), **kwargs)


def test_kfac_refuses_parameters_outside_linear_and_conv_layers():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"1\.weight, 1\.bias"):
        KFAC(model)


def test_kfac_takes_no_schedule_and_no_adversarial_regime():
    with pytest.raises(ValueError, match="kfac takes no learning-rate schedule"):
        make_stepper(build_model("cnn000"),
                     dict(name="kfac", lr=0.01, schedule=dict(kind="cyclic", max_lr=0.1)),
                     total_steps=10)
