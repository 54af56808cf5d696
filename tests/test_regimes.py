"""Training regimes: double-backprop penalties against independent computations, and the
Objective's mixing, eval-mode adversary and seeding."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev

from curvrobust import attacks
from curvrobust.models.inference import decision_margin, eval_mode
from curvrobust.models import build_model
from curvrobust.training.regimes import (Objective, ce_grad_penalty, eps_ramp_fraction,
    margin_grad_penalty)
from curvrobust.training.loop import FirstOrder, make_stepper

NORMS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}


def _tiny(activation="softplus", dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    m = build_model("mnist002", image_size=8, widths=[2, 3], hidden=5, kernel=3,
                    activation=activation, softplus_beta=2.0)
    return m.to(dtype)


def _data(n=6, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


def _needs(kind):
    if kind not in attacks.ATTACKS:
        pytest.skip(f"attack {kind!r} not in curvrobust.attacks yet")


def test_decision_margin_known_values():
    z = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0], [1.0, 1.0, 0.0]])
    y = torch.tensor([0, 2, 1])
    assert decision_margin(z, y).tolist() == [1.0, -6.0, 0.0]


@pytest.mark.parametrize("norm", NORMS)
def test_margin_grad_penalty_matches_per_example_jacobian(norm):
    model, (x, y) = _tiny(dtype=torch.float64), _data(dtype=torch.float64)
    got = margin_grad_penalty(model, x, y, norm)
    for i in range(len(x)):
        g_i = lambda xi: decision_margin(model(xi[None]), y[i:i + 1])[0]  # noqa: E731
        grad = jacrev(g_i)(x[i]).flatten()
        assert got[i].item() == pytest.approx(
            torch.linalg.vector_norm(grad, ord=NORMS[norm]).item(), rel=1e-12)


@pytest.mark.parametrize("norm", NORMS)
def test_margin_grad_of_linear_model_is_weight_difference(norm):
    torch.manual_seed(0)
    lin = nn.Linear(12, 5).double()
    model = nn.Sequential(nn.Flatten(), lin)
    x = torch.rand(8, 1, 3, 4, dtype=torch.float64)
    y = torch.randint(0, 5, (8,))
    z = model(x).detach()
    j_star = z.scatter(1, y[:, None], -math.inf).argmax(1)
    w = lin.weight.detach()
    expected = torch.linalg.vector_norm(w[y] - w[j_star], ord=NORMS[norm], dim=1)
    assert torch.allclose(margin_grad_penalty(model, x, y, norm), expected, rtol=1e-14, atol=0)


def test_ce_grad_penalty_matches_loop():
    model, (x, y) = _tiny(activation="relu"), _data()
    got = ce_grad_penalty(model, x, y)
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xi), y[i:i + 1]), xi)
        assert got[i].item() == pytest.approx(g.square().sum().item(), rel=1e-5)


@pytest.mark.parametrize("penalty", ["l1", "l2", "linf", "ce_grad"])
def test_penalty_parameter_gradient_matches_finite_differences(penalty):
    """Double backprop: d/dθ of the penalty along a random direction v equals the float64
    central difference of the penalty at θ ± h·v (softplus: ReLU's second derivative is 0)."""
    model, (x, y) = _tiny(dtype=torch.float64), _data(dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    theta = {n: p.detach() for n, p in model.named_parameters()}
    gen = torch.Generator().manual_seed(3)
    v = {n: torch.randn(p.shape, generator=gen, dtype=torch.float64) for n, p in theta.items()}

    def pen(params):
        f = lambda xx: functional_call(model, params, (xx,))  # noqa: E731
        wrapped = _Wrap(f)
        if penalty == "ce_grad":
            return ce_grad_penalty(wrapped, x, y).mean()
        return margin_grad_penalty(wrapped, x, y, penalty).mean()

    value = pen(dict(model.named_parameters()))
    # allow_unused: the last bias does not move the input gradient
    grads = torch.autograd.grad(value, [p for _, p in model.named_parameters()],
                                allow_unused=True)
    analytic = sum((g * v[n]).sum() for n, g in zip(names, grads) if g is not None).item()
    h = 1e-5
    plus = pen({n: theta[n] + h * v[n] for n in names}).item()
    minus = pen({n: theta[n] - h * v[n] for n in names}).item()
    assert analytic == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-9)
    assert abs(analytic) > 1e-6  # the check is not vacuous


class _Wrap(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


def test_relu_margin_penalty_is_not_constant_in_parameters():
    """With ReLU the penalty's parameter gradient still exists (mixed derivative)."""
    model, (x, y) = _tiny(activation="relu"), _data()
    margin_grad_penalty(model, x, y).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_natural_objective_is_cross_entropy():
    model, (x, y) = _tiny(), _data()
    obj = Objective.from_spec({}, seed=0)
    assert obj.is_natural and Objective.from_spec(None).is_natural
    loss, parts = obj(model, x, y)
    assert torch.equal(loss, F.cross_entropy(model(x), y))
    assert parts["ce"] == loss.item()
    assert math.isnan(parts["adv_ce"]) and math.isnan(parts["penalty"])


def test_natural_objective_trains_bit_identically_to_plain_first_order():
    model, (x, y) = _tiny(), _data(32)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    sa = FirstOrder(a, torch.optim.SGD(a.parameters(), lr=0.1))
    sb = FirstOrder(b, torch.optim.SGD(b.parameters(), lr=0.1), Objective.from_spec({}))
    for i in range(0, 32, 8):
        assert sa.step(x[i:i + 8], y[i:i + 8]) == sb.step(x[i:i + 8], y[i:i + 8])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


class _ModeRecorder(nn.Module):
    """Passes its input through, recording the module's `training` flag at each call."""

    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.training)
        return x


def test_adversary_runs_in_eval_mode_and_loss_in_train_mode():
    torch.manual_seed(0)
    rec = _ModeRecorder()
    model = nn.Sequential(rec, nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5), nn.Softplus(),
                          nn.Linear(16, 10)).train()
    x, y = _data()
    obj = Objective.from_spec({"adversary": {"kind": "fgsm", "eps": 0.1}, "adv_weight": 0.5})
    obj(model, x, y)
    assert rec.seen == [False, True, True]  # FGSM (eval), clean CE, adversarial CE (train)
    assert all(m.training for m in model.modules())
    # the adversarial examples are those of the eval-mode model (dropout off): deterministic
    x_adv = obj.adversarial(model, x, y)
    with eval_mode(model):
        assert torch.equal(x_adv, attacks.fgsm(model, x, y, 0.1))
    assert not x_adv.requires_grad


def test_adversarial_mix_and_weight_one():
    model, (x, y) = _tiny(), _data()
    x_adv = attacks.fgsm(model, x, y, 0.2)
    ce, adv_ce = F.cross_entropy(model(x), y), F.cross_entropy(model(x_adv), y)
    mix = Objective.from_spec({"adversary": {"kind": "fgsm", "eps": 0.2}, "adv_weight": 0.25})
    loss, parts = mix(model, x, y)
    assert loss.item() == pytest.approx(0.75 * ce.item() + 0.25 * adv_ce.item(), rel=1e-6)
    assert parts["ce"] == pytest.approx(ce.item())
    assert parts["adv_ce"] == pytest.approx(adv_ce.item())
    madry = Objective.from_spec({"adversary": {"kind": "fgsm", "eps": 0.2}, "adv_weight": 1.0})
    loss, parts = madry(model, x, y)
    assert torch.equal(loss, adv_ce)
    assert math.isnan(parts["ce"]) and math.isnan(parts["penalty"])
    assert not madry.is_natural


@pytest.mark.parametrize("penalty", [{"kind": "margin_grad", "coef": 7.0, "norm": "linf"},
                                     {"kind": "margin_grad", "coef": 3.0},
                                     {"kind": "ce_grad", "coef": 2.0}])
def test_penalty_objective_adds_coef_times_mean_penalty_on_clean_inputs(penalty):
    model, (x, y) = _tiny(), _data()
    obj = Objective.from_spec({"penalty": penalty})
    loss, parts = obj(model, x, y)
    if penalty["kind"] == "ce_grad":
        pen = ce_grad_penalty(model, x, y).mean()
    else:
        pen = margin_grad_penalty(model, x, y, penalty.get("norm", "l2")).mean()
    ce = F.cross_entropy(model(x), y)
    assert parts["penalty"] == pytest.approx(pen.item(), rel=1e-6)
    assert loss.item() == pytest.approx(ce.item() + penalty["coef"] * pen.item(), rel=1e-6)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_combined_regime_parts():
    model, (x, y) = _tiny(), _data()
    obj = Objective.from_spec({"adversary": {"kind": "fgsm", "eps": 0.1}, "adv_weight": 0.5,
                               "penalty": {"kind": "margin_grad", "coef": 2.0, "norm": "l1"}})
    loss, p = obj(model, x, y)
    assert loss.item() == pytest.approx(0.5 * p["ce"] + 0.5 * p["adv_ce"] + 2.0 * p["penalty"],
                                        rel=1e-6)


@pytest.mark.parametrize("bad, match", [
    ({"advesary": {}}, "unknown regime keys.*advesary"),
    ({"adversary": {"kind": "nope", "eps": 0.1}, "adv_weight": 1},
     "unknown regime adversary kind 'nope'"),
    ({"adversary": {"eps": 0.1}, "adv_weight": 1}, "'kind'"),
    ({"adversary": {"kind": "fgsm"}, "adv_weight": 1}, "eps"),
    ({"adversary": {"kind": "fgsm", "eps": 0.1, "stepz": 3}, "adv_weight": 1}, "stepz"),
    ({"adversary": {"kind": "fgsm", "eps": 0.1, "seed": 3}, "adv_weight": 1}, "'seed'"),
    ({"adversary": {"kind": "fgsm", "eps": 0.1}}, "needs adv_weight"),
    ({"adversary": {"kind": "fgsm", "eps": 0.1}, "adv_weight": 1.5}, "adv_weight"),
    ({"adv_weight": 0.5}, "needs an adversary"),
    ({"penalty": {"kind": "jacobian", "coef": 1}}, "'jacobian'"),
    ({"penalty": {"kind": "margin_grad", "coef": 1, "norm": "l3"}}, "'l3'"),
    ({"penalty": {"kind": "ce_grad", "coef": 1, "norm": "l2"}}, r"unknown keys \['norm'\]"),
    ({"penalty": {"kind": "margin_grad"}}, "needs coef"),
    ({"penalty": {"kind": "margin_grad", "coef": -1}}, "coef"),
    ({"adversary": {"kind": "pgd", "eps": 0.3, "eps_ramp_epochs": -1}, "adv_weight": 1},
     "eps_ramp_epochs must be a finite number >= 0"),
    ({"adversary": {"kind": "pgd", "eps": 0.3, "eps_ramp_epochs": -0.5}, "adv_weight": 1},
     "eps_ramp_epochs"),
    ({"adversary": {"kind": "pgd", "eps": 0.3, "eps_ramp_epochs": math.inf}, "adv_weight": 1},
     "eps_ramp_epochs"),
    ({"adversary": {"kind": "pgd", "eps": 0.3, "eps_ramp_epochs": True}, "adv_weight": 1},
     "eps_ramp_epochs"),
    ({"adversary": {"kind": "pgd", "eps": 0.3, "eps_ramp_epochs": "1"}, "adv_weight": 1},
     "eps_ramp_epochs"),
])
def test_invalid_regimes_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        Objective.from_spec(bad)


def test_bad_norm_in_functions():
    model, (x, y) = _tiny(), _data()
    with pytest.raises(ValueError, match="'l0'"):
        margin_grad_penalty(model, x, y, "l0")


def test_gauss_newton_refuses_a_non_natural_regime():
    model = _tiny()
    obj = Objective.from_spec({"penalty": {"kind": "ce_grad", "coef": 1.0}})
    with pytest.raises(ValueError, match="gauss_newton supports natural training only"):
        make_stepper(model, {"name": "gauss_newton", "lr": 0.1}, obj)
    make_stepper(model, {"name": "gauss_newton", "lr": 0.1}, Objective.from_spec({}))


def test_first_order_records_parts_and_steps():
    model, (x, y) = _tiny(), _data(16)
    obj = Objective.from_spec({"penalty": {"kind": "margin_grad", "coef": 1.0}})
    st = make_stepper(model, {"name": "adam", "lr": 1e-2}, obj)
    before = [p.detach().clone() for p in model.parameters()]
    loss = st.step(x, y)
    assert set(st.last_parts) == {"ce", "adv_ce", "penalty"}
    assert loss == pytest.approx(st.last_parts["ce"] + st.last_parts["penalty"], rel=1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("kind", ["fgsm", "pgd"])
def test_objective_is_deterministic_given_seed(kind):
    _needs(kind)
    params = {"kind": kind, "eps": 0.1}
    if kind == "pgd":
        params.update(steps=2, step_size=0.05, random_start=True)
    spec = {"adversary": params, "adv_weight": 1.0}
    model, (x, y) = _tiny(), _data()
    a, b = Objective.from_spec(spec, seed=5), Objective.from_spec(spec, seed=5)
    la = [a(model, x, y)[0].item() for _ in range(2)]
    lb = [b(model, x, y)[0].item() for _ in range(2)]
    assert la == lb
    if kind == "pgd":  # random starts: fresh noise per batch, and the seed matters
        assert la[0] != la[1]
        c = Objective.from_spec(spec, seed=6)
        assert c(model, x, y)[0].item() != la[0]


def test_random_start_generator_is_derived_from_the_run_seed():
    _needs("pgd")
    from curvrobust.seeds import derive_seed

    spec = {"adversary": {"kind": "pgd", "eps": 0.1, "steps": 2, "step_size": 0.05,
                          "random_start": True}, "adv_weight": 1.0}
    model, (x, y) = _tiny(), _data()
    obj = Objective.from_spec(spec, seed=11)
    g = torch.Generator().manual_seed(derive_seed(11, "adversary"))
    with eval_mode(model):
        for _ in range(2):  # the same generator advances batch after batch
            expected = attacks.pgd(model, x, y, 0.1, steps=2, step_size=0.05, generator=g)
            assert torch.equal(obj.adversarial(model, x, y), expected)


def test_haat_regime_uses_the_run_seed_and_eval_mode():
    """HAAT adversarial training (study 001): the adversary is the registered attack with its
    noise (every power iteration's random start) from the run-seed generator, made with the
    model in eval mode (BatchNorm uses its running statistics), the loss in train mode."""
    from curvrobust.attacks.second_order import haat
    from curvrobust.seeds import derive_seed

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Softplus(),
                          nn.Flatten(), nn.Linear(3 * 64, 10)).train()
    x, y = _data()
    params = {"eps": 0.1, "steps": 2, "step_size": 0.05, "k": 2, "xi": 1e-3, "hvp": "fd"}
    obj = Objective.from_spec({"adversary": {"kind": "haat", **params}, "adv_weight": 1.0},
                              seed=3)
    bn = model[1]
    before = bn.running_mean.clone()
    x_adv = obj.adversarial(model, x, y)
    assert torch.equal(bn.running_mean, before)           # eval mode: statistics untouched
    assert all(m.training for m in model.modules())
    g = torch.Generator().manual_seed(derive_seed(3, "adversary"))
    with eval_mode(model):
        expected = haat(model, x, y, generator=g, **params)
    assert torch.equal(x_adv, expected)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    loss, parts = obj(model, x, y)
    assert math.isnan(parts["ce"]) and parts["adv_ce"] == pytest.approx(loss.item())


# ---- the adversary's eps warm-up (eps_ramp_epochs) ----

_PGD = {"kind": "pgd", "eps": 0.3, "steps": 3, "step_size": 0.05, "random_start": True}


def test_eps_ramp_fraction_known_values():
    assert eps_ramp_fraction(0.0, 1.0) == 0.0                  # 0 at the start
    assert eps_ramp_fraction(0.25, 1.0) == 0.25                # linear in between
    assert eps_ramp_fraction(0.75, 1.5) == 0.5
    assert eps_ramp_fraction(0.1, 0.5) == pytest.approx(0.2)  # fractional ramps
    assert eps_ramp_fraction(1.0, 1.0) == 1.0                  # full eps at the end ...
    assert eps_ramp_fraction(2.7, 1.0) == 1.0                  # ... and after it
    assert eps_ramp_fraction(0.0, 0.0) == 1.0                  # no ramp: always full
    assert eps_ramp_fraction(-1.0, 2.0) == 0.0


def test_eps_ramp_scales_eps_and_step_size_at_known_progress():
    obj = Objective.from_spec({"adversary": {**_PGD, "eps_ramp_epochs": 2}, "adv_weight": 1.0})
    assert obj.eps_ramp_epochs == 2.0 and "eps_ramp_epochs" not in obj.adversary
    for progress, frac in [(0.0, 0.0), (0.5, 0.25), (1.0, 0.5), (1.5, 0.75), (2.0, 1.0),
                           (3.0, 1.0)]:
        obj.set_progress(progress)
        got = obj.attack_params()
        assert got["eps"] == pytest.approx(0.3 * frac, abs=1e-15)
        assert got["step_size"] == pytest.approx(0.05 * frac, abs=1e-15)  # step/eps fixed
        assert {k: v for k, v in got.items() if k not in ("eps", "step_size")} == \
            {"steps": 3, "random_start": True}
    # an attack whose spec gives no step size: its default (BIM's 0.1) is scaled
    bim = Objective.from_spec({"adversary": {"kind": "bim", "eps": 0.2, "eps_ramp_epochs": 1},
                               "adv_weight": 1.0})
    bim.set_progress(0.5)
    assert bim.attack_params() == {"eps": 0.1, "step_size": 0.05}
    # FGSM has no step size: only eps is scaled
    fgsm = Objective.from_spec({"adversary": {"kind": "fgsm", "eps": 0.2, "eps_ramp_epochs": 1},
                                "adv_weight": 1.0})
    fgsm.set_progress(0.25)
    assert fgsm.attack_params() == {"eps": 0.05}


def test_eps_ramp_attacks_with_the_scaled_eps():
    """Mid-ramp the adversarial examples are exactly PGD's at eps·f and step·f, with the
    run-seed generator; they stay inside the smaller ball."""
    from curvrobust.seeds import derive_seed

    model, (x, y) = _tiny(), _data()
    obj = Objective.from_spec({"adversary": {**_PGD, "eps_ramp_epochs": 1}, "adv_weight": 1.0},
                              seed=4)
    obj.set_progress(0.5)
    x_adv = obj.adversarial(model, x, y)
    g = torch.Generator().manual_seed(derive_seed(4, "adversary"))
    with eval_mode(model):
        expected = attacks.pgd(model, x, y, 0.15, steps=3, step_size=0.025, random_start=True,
                               generator=g)
    assert torch.equal(x_adv, expected)
    assert (x_adv - x).abs().max() <= 0.15 + 1e-6


def test_eps_ramp_needs_the_training_progress():
    model, (x, y) = _tiny(), _data()
    obj = Objective.from_spec({"adversary": {**_PGD, "eps_ramp_epochs": 1}, "adv_weight": 1.0})
    with pytest.raises(ValueError, match="set_progress"):
        obj(model, x, y)


def test_eps_ramp_zero_is_the_old_objective_bit_for_bit():
    """eps_ramp_epochs: 0 (or absent) runs the attack with its spec unchanged, whatever the
    progress: the same loss as the spec without the key and as CE at PGD's own examples."""
    from curvrobust.seeds import derive_seed

    model, (x, y) = _tiny(), _data()
    spec = {"adversary": dict(_PGD), "adv_weight": 1.0}
    plain = Objective.from_spec(spec, seed=2)
    zero = Objective.from_spec({**spec, "adversary": {**_PGD, "eps_ramp_epochs": 0}}, seed=2)
    assert zero == plain and zero.eps_ramp_epochs == 0.0
    zero.set_progress(0.0)  # progress is ignored without a ramp
    assert zero.attack_params() == {k: v for k, v in _PGD.items() if k != "kind"}
    g = torch.Generator().manual_seed(derive_seed(2, "adversary"))
    for _ in range(2):  # two batches: the generators advance alike
        with eval_mode(model):
            x_adv = attacks.pgd(model, x, y, 0.3, steps=3, step_size=0.05, random_start=True,
                                generator=g)
        expected = F.cross_entropy(model(x_adv), y)
        lp, lz = plain(model, x, y)[0], zero(model, x, y)[0]
        assert torch.equal(lp, expected) and torch.equal(lz, expected)


def test_schema_takes_the_ramp_on_training_adversaries_only():
    """config.yaml's schema: the regime adversary takes eps_ramp_epochs >= 0; a negative one
    and one on an evaluation attack are errors."""
    import copy as _copy
    from pathlib import Path

    import yaml

    from curvrobust.plans.config import ConfigError, validate_config

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    name = next(n for n, r in cfg["recipes"].items() if (r.get("regime") or {}).get("adversary"))
    ok = _copy.deepcopy(cfg)
    ok["recipes"][name]["regime"]["adversary"]["eps_ramp_epochs"] = 0.5
    validate_config(ok)
    bad = _copy.deepcopy(cfg)
    bad["recipes"][name]["regime"]["adversary"]["eps_ramp_epochs"] = -1
    with pytest.raises(ConfigError, match="eps_ramp_epochs"):
        validate_config(bad)
    ev = _copy.deepcopy(cfg)
    next(iter(ev["attacks"].values()))["eps_ramp_epochs"] = 1
    with pytest.raises(ConfigError, match="eps_ramp_epochs"):
        validate_config(ev)
