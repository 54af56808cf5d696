import pandas as pd
import pytest
import torch

from curvrobust.training.loop import (TrainSpec, batch_orders, checkpoint_epochs,
    closest_checkpoint, cyclic_lr, first_crossing, init_model, make_stepper, match_train_accuracy,
    match_train_loss, Stepper, train)
from curvrobust.training.regimes import Objective


def _data(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def _spec(name, **opt):
    return TrainSpec(arch="cnn000", optimizer={"name": name, **opt}, epochs=2, batch_size=64,
                     checkpoint_every_steps=2)


def test_init_and_batches_depend_on_seed_only():
    a = init_model(_spec("sgd", lr=0.01), 42)
    b = init_model(_spec("adam", lr=1e-3), 42)
    c = init_model(_spec("sgd", lr=0.01), 43)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    o1, o2 = batch_orders(100, 3, 42), batch_orders(100, 3, 42)
    assert all(torch.equal(p, q) for p, q in zip(o1, o2))
    assert not torch.equal(o1[0], o1[1])


@pytest.mark.parametrize("opt", [dict(name="sgd", lr=0.05), dict(name="adam", lr=1e-3),
                                 dict(name="gauss_newton", lr=0.5, damping=0.1)])
def test_train_is_deterministic_and_writes_outputs(tmp_path, opt):
    x, y = _data()
    spec = _spec(**opt)
    quiet = lambda m: None  # noqa: E731
    rows1 = train(spec, 7, x, y, x[:100], y[:100], tmp_path / "a", log=quiet)
    rows2 = train(spec, 7, x, y, x[:100], y[:100], tmp_path / "b", log=quiet)
    metrics = ["batch_loss_mean", "train_loss", "train_acc", "test_loss", "test_acc"]
    assert [[r[k] for k in metrics] for r in rows1] == [[r[k] for k in metrics] for r in rows2]
    for name in ("model.pt", "epochs.csv", "checkpoints.csv"):
        assert (tmp_path / "a" / name).is_file()
    ck = pd.read_csv(tmp_path / "a" / "checkpoints.csv")
    # step 0, steps 2 and 4 of epoch 1 (5 steps), end of epochs 1 and 2
    assert list(ck["step"]) == [0, 2, 4, 5, 10]
    assert all((tmp_path / "a" / f).is_file() for f in ck["file"])
    # losses are recorded at step 0 and epoch ends, left for on-demand evaluation in between
    assert list(ck["train_loss"].isna()) == [False, True, True, False, False]
    ep = pd.read_csv(tmp_path / "a" / "epochs.csv")
    assert list(ep["epoch"]) == [1, 2]
    assert ep["train_loss"].iloc[-1] == pytest.approx(ck["train_loss"].iloc[-1])


def test_training_reduces_loss(tmp_path):
    x, y = _data(256)
    x = 0.1 * x
    x[torch.arange(256), 0, 2 * y + 4, 2 * y + 4] = 1.0  # a learnable, label-dependent pixel
    spec = TrainSpec(arch="cnn000", optimizer={"name": "adam", "lr": 1e-2}, epochs=5,
                     batch_size=64)
    rows = train(spec, 0, x, y, x, y, tmp_path, log=lambda m: None)
    ck = pd.read_csv(tmp_path / "checkpoints.csv")
    assert rows[-1]["train_loss"] < ck["train_loss"].iloc[0] - 0.2


def test_closest_checkpoint():
    rows = [dict(step=0, train_loss=2.5), dict(step=5, train_loss=1.25),
            dict(step=10, train_loss=0.75), dict(step=15, train_loss=0.25)]
    assert closest_checkpoint(rows, 1.0)["step"] == 5  # tie 1.25 vs 0.75: earliest
    assert closest_checkpoint(rows, 0.8)["step"] == 10
    with pytest.raises(ValueError):
        closest_checkpoint([], 1.0)


def test_match_train_loss_evaluates_only_the_bracket():
    nan = float("nan")
    true = {0: 2.3, 10: 2.0, 20: 1.6, 30: 1.2, 40: 0.9, 50: 0.7, 55: 0.6, 60: 0.5, 70: 0.4}
    rows = [dict(step=s, train_loss=true[s] if s in (0, 30, 60, 70) else nan) for s in true]
    asked = []

    def loss(r):
        asked.append(r["step"])
        return true[r["step"]]

    best = match_train_loss(rows, 0.85, loss)
    assert best["step"] == 40 and asked == [40, 50]  # stops at the first crossing: 55 unasked

    assert match_train_loss(rows, 0.1, loss)["step"] == 70  # never reached: the lowest
    assert match_train_loss(rows, 5.0, loss)["step"] == 0


def _acc_rows():
    """Hand-built checkpoints: accuracy recorded at epoch ends (steps 0, 30, 60, 90), NaN
    between; the true curve rises, dips after step 60 and rises again."""
    nan = float("nan")
    true = {0: 0.10, 10: 0.50, 20: 0.70, 30: 0.80, 40: 0.86, 50: 0.91, 60: 0.95, 70: 0.89,
            80: 0.93, 90: 0.97}
    rows = [dict(step=s, train_acc=true[s] if s % 30 == 0 else nan, train_loss=nan)
            for s in true]
    return rows, true


def test_match_train_accuracy_is_the_first_checkpoint_reaching_the_target():
    rows, true = _acc_rows()
    asked = []

    def acc(r):
        asked.append(r["step"])
        return true[r["step"]]

    best = match_train_accuracy(rows, 0.9, acc)
    # the bracket (30, 60] is evaluated in order until 50 reaches 0.9; 40 (0.86) is not taken
    # although nearer than 50 (0.91) would be with `nearest`: the first to reach it is
    assert best["step"] == 50 and best["train_acc"] == 0.91 and best["reached"]
    assert asked == [40, 50]
    assert rows[4]["train_acc"] != rows[4]["train_acc"]  # the caller's rows are not modified


def test_first_crossing_ignores_later_dips_and_closer_values():
    rows, true = _acc_rows()
    # 0.95 is first reached at the epoch end 60; the dip (70) and 0.93 (80) come after it
    assert match_train_accuracy(rows, 0.93, lambda r: true[r["step"]])["step"] == 60
    # reached at step 0 already: no evaluation at all
    assert match_train_accuracy(rows, 0.05, lambda r: pytest.fail("evaluated"))["step"] == 0


def test_first_crossing_never_reached_gives_the_best_known_checkpoint():
    rows, true = _acc_rows()
    best = match_train_accuracy(rows, 0.99, lambda r: pytest.fail("evaluated"))
    assert best["step"] == 90 and not best["reached"]
    loss_rows = [dict(step=s, train_loss=v) for s, v in ((0, 2.0), (5, 0.5), (10, 0.5))]
    worst = first_crossing(loss_rows, 0.1, lambda r: 0.0)  # falling: the lowest, earliest tie
    assert worst["step"] == 5 and not worst["reached"]


def test_first_crossing_directions_and_nearest():
    rows = [dict(step=0, v=0.0), dict(step=1, v=float("nan")), dict(step=2, v=1.0)]
    values = {1: 0.55}
    rising = first_crossing(rows, 0.6, lambda r: values[r["step"]], key="v", rising=True)
    assert rising["step"] == 2  # 0.55 falls short of 0.6
    near = first_crossing(rows, 0.5, lambda r: values[r["step"]], key="v", rising=True,
                          nearest=True)
    assert near["step"] == 1  # crossing at 1 (0.55); its predecessor (0.0) is farther
    falling = first_crossing(rows, 0.5, lambda r: values[r["step"]], key="v")
    assert falling["step"] == 0 and falling["reached"]  # 0.0 <= 0.5 at once
    with pytest.raises(ValueError, match="no checkpoints with a recorded v"):
        first_crossing([dict(step=0, v=float("nan"))], 0.5, lambda r: 0.0, key="v")


def test_unknown_optimizer(tmp_path):
    x, y = _data(64)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train(_spec("lbfgs", lr=1.0), 0, x, y, x, y, tmp_path, log=lambda m: None)


def test_train_with_a_penalty_and_adversary_regime_writes_loss_parts(tmp_path):
    x, y = _data(256)
    recipe = {"arch": "mnist002", "arch_kwargs": {"widths": [2, 4], "hidden": 8,
                                                  "activation": "softplus"},
              "optimizer": {"name": "adam", "lr": 1e-3}, "epochs": 1, "batch_size": 128,
              "regime": {"adversary": {"kind": "fgsm", "eps": 0.1}, "adv_weight": 0.5,
                         "penalty": {"kind": "margin_grad", "coef": 5.0, "norm": "l2"}}}
    spec = TrainSpec.from_recipe(recipe)
    assert spec.regime == recipe["regime"]
    rows = train(spec, 3, x, y, x[:64], y[:64], tmp_path, log=lambda m: None)
    ep = pd.read_csv(tmp_path / "epochs.csv")
    assert list(ep.columns[-5:]) == ["ce", "adv_ce", "penalty", "lr", "cos_gn"]
    assert ep["cos_gn"].isna().all()  # only K-FAC logs it
    assert list(ep.columns[:9]) == ["epoch", "step", "batch_loss_mean", "train_loss", "train_acc",
                                    "test_loss", "test_acc", "epoch_time_s", "wall_time_s"]
    r = ep.iloc[0]
    assert r[["ce", "adv_ce", "penalty"]].notna().all() and r["penalty"] > 0
    # batch loss = ½ce + ½adv_ce + 5·penalty per batch, hence also for the epoch means
    assert r["batch_loss_mean"] == pytest.approx(0.5 * r["ce"] + 0.5 * r["adv_ce"]
                                                 + 5.0 * r["penalty"], rel=1e-6)
    assert rows[0]["penalty"] == pytest.approx(r["penalty"])


def test_natural_training_logs_ce_only(tmp_path):
    x, y = _data(128)
    spec = TrainSpec(arch="cnn000", optimizer={"name": "sgd", "lr": 0.05}, epochs=1,
                     batch_size=64)
    train(spec, 0, x, y, x, y, tmp_path, log=lambda m: None)
    r = pd.read_csv(tmp_path / "epochs.csv").iloc[0]
    assert r["ce"] == pytest.approx(r["batch_loss_mean"])
    assert pd.isna(r["adv_ce"]) and pd.isna(r["penalty"])


def test_gauss_newton_with_a_regime_is_refused(tmp_path):
    x, y = _data(64)
    spec = TrainSpec(arch="cnn000", optimizer={"name": "gauss_newton", "lr": 0.5}, epochs=1,
                     regime={"penalty": {"kind": "ce_grad", "coef": 1.0}})
    with pytest.raises(ValueError, match="natural training only"):
        train(spec, 0, x, y, x, y, tmp_path, log=lambda m: None)
    with pytest.raises(ValueError, match="unknown regime keys"):
        train(TrainSpec(arch="cnn000", optimizer={"name": "sgd", "lr": 0.1}, epochs=1,
                        regime={"penality": {}}), 0, x, y, x, y, tmp_path, log=lambda m: None)


# --- learning-rate schedule --------------------------------------------------------------

def test_cyclic_lr_known_values():
    lr = lambda s, **kw: cyclic_lr(s, 100, 0.1, **kw)  # noqa: E731
    assert lr(0) == 0.0 and lr(40) == pytest.approx(0.1) and lr(100) == 0.0
    assert lr(20) == pytest.approx(0.05) and lr(10) == pytest.approx(0.025)
    assert lr(70) == pytest.approx(0.05) and lr(85) == pytest.approx(0.025)
    assert lr(-5) == 0.0 and lr(101) == 0.0  # clamped outside the run
    assert lr(0, base_lr=0.02) == 0.02 and lr(100, base_lr=0.02) == 0.02
    assert lr(20, base_lr=0.02) == pytest.approx(0.06)
    assert cyclic_lr(10, 100, 0.1, peak=0.2) == pytest.approx(0.05)
    assert cyclic_lr(20, 100, 0.1, peak=0.2) == pytest.approx(0.1)
    # Rice et al.: np.interp(t, [0, epochs * 2 // 5, epochs], [0, max_lr, 0]) in epochs
    import numpy as np

    for t in (0.3, 37.5, 80, 80.25, 150, 199.9):
        ref = np.interp(t, [0, 200 * 2 // 5, 200], [0, 0.2, 0])
        assert cyclic_lr(t * 50, 200 * 50, 0.2) == pytest.approx(ref, abs=1e-12)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))


def _tiny_batches(k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g))
            for _ in range(k)]


def test_cyclic_schedule_sets_every_steps_lr():
    total = 10
    st = make_stepper(_tiny_model(), {"name": "sgd", "momentum": 0.9,
                                      "schedule": {"kind": "cyclic", "max_lr": 0.2,
                                                   "base_lr": 0.01, "peak": 0.3}},
                      total_steps=total)
    used = []
    for xb, yb in _tiny_batches(total):
        st.step(xb, yb)
        used.append(st.last_lr)
    expect = [cyclic_lr(k, total, 0.2, 0.01, 0.3) for k in range(1, total + 1)]
    assert used == pytest.approx(expect, rel=1e-12)
    assert max(used) == pytest.approx(0.2) and used.index(max(used)) == 2  # step 3 = 0.3·10
    assert used[-1] == pytest.approx(0.01)  # the last step is back at base_lr
    assert all(b - a == pytest.approx(0.19 / 3) for a, b in zip(used[:2], used[1:3]))
    assert all(a - b == pytest.approx(0.19 / 7) for a, b in zip(used[2:], used[3:]))
    assert st.optimizer.param_groups[0]["momentum"] == 0.9


def test_no_or_constant_schedule_is_plain_sgd_bit_for_bit():
    batches = _tiny_batches(5)
    ref = _tiny_model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.5)
    for xb, yb in batches:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(xb), yb).backward()
        opt.step()
    for extra in ({}, {"schedule": {"kind": "constant"}}):
        model = _tiny_model()
        st = make_stepper(model, {"name": "sgd", "lr": 0.1, "momentum": 0.5, **extra},
                          total_steps=5)
        assert st.scheduler is None
        for xb, yb in batches:
            st.step(xb, yb)
            assert st.last_lr == 0.1
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), ref.parameters()))


def test_bad_schedules_are_named():
    m = _tiny_model()
    cyc = {"kind": "cyclic", "max_lr": 0.1}
    with pytest.raises(ValueError, match="unknown schedule kind 'cosine'"):
        make_stepper(m, {"name": "sgd", "lr": 0.1, "schedule": {"kind": "cosine"}}, None, 10)
    with pytest.raises(ValueError, match="unknown keys for schedule kind 'cyclic': max, top"):
        make_stepper(m, {"name": "sgd", "schedule": {**cyc, "top": 1, "max": 2}}, None, 10)
    with pytest.raises(ValueError, match="unknown keys for schedule kind 'constant': max_lr"):
        make_stepper(m, {"name": "sgd", "lr": 0.1, "schedule": {"kind": "constant",
                                                                  "max_lr": 0.1}}, None, 10)
    with pytest.raises(ValueError, match="gauss_newton takes no learning-rate schedule"):
        make_stepper(m, {"name": "gauss_newton", "lr": 0.1, "schedule": cyc}, None, 10)
    with pytest.raises(ValueError, match="total_steps"):
        make_stepper(m, {"name": "sgd", "schedule": cyc})
    with pytest.raises(ValueError, match="contradicts schedule max_lr"):
        make_stepper(m, {"name": "sgd", "lr": 0.5, "schedule": cyc}, None, 10)
    with pytest.raises(ValueError, match="peak"):
        make_stepper(m, {"name": "sgd", "schedule": {**cyc, "peak": 1.0}}, None, 10)
    with pytest.raises(ValueError, match="needs max_lr"):
        make_stepper(m, {"name": "sgd", "schedule": {"kind": "cyclic"}}, None, 10)
    st = make_stepper(m, {"name": "sgd", "lr": 0.1, "schedule": cyc}, None, 10)  # lr == max_lr
    assert st.scheduler is not None


@pytest.mark.parametrize("opt", [{"name": "sgd", "lr": 0.1, "momentum": 0.5},
                                 {"name": "sgd", "schedule": {"kind": "cyclic", "max_lr": 0.1}},
                                 {"name": "adam", "lr": 1e-3},
                                 {"name": "gauss_newton", "lr": 0.5, "damping": 0.1},
                                 {"name": "kfac", "lr": 0.5, "damping": 0.1,
                                  "gn_cosine_every": 1}])
@pytest.mark.parametrize("regime", [{}, {"penalty": {"kind": "ce_grad", "coef": 1.0}}])
def test_every_stepper_satisfies_the_loops_protocol(opt, regime):
    if regime and opt["name"] in ("gauss_newton", "kfac"):
        pytest.skip("second-order steppers train naturally only")
    objective = Objective.from_spec(regime, 0)
    st = make_stepper(_tiny_model(), opt, None if objective.is_natural else objective, 10)
    assert isinstance(st, Stepper)
    (xb, yb), = _tiny_batches(1)
    loss = st.step(xb, yb)
    assert isinstance(st, Stepper)  # still, after a step
    assert st.last_parts["ce"] == pytest.approx(loss) if not regime else "penalty" in st.last_parts
    assert isinstance(st.last_lr, float) and st.last_lr > 0
    assert isinstance(st.diagnostic_rows, list)
    assert bool(st.diagnostic_rows) == (opt["name"] == "kfac")


def test_train_with_a_cyclic_schedule_logs_the_lr(tmp_path):
    x, y = _data(128)
    recipe = {"arch": "cnn000", "epochs": 3, "batch_size": 64,
              "optimizer": {"name": "sgd", "momentum": 0.9,
                            "schedule": {"kind": "cyclic", "max_lr": 0.05, "peak": 0.5}}}
    train(TrainSpec.from_recipe(recipe), 0, x, y, x[:32], y[:32], tmp_path, log=lambda m: None)
    ep = pd.read_csv(tmp_path / "epochs.csv")
    assert list(ep.columns[-2:]) == ["lr", "cos_gn"]
    # 2 steps per epoch, 6 in all, peak at step 3: the epochs end at steps 2, 4 and 6
    assert list(ep["lr"]) == pytest.approx([0.05 * 2 / 3, 0.05 * 2 / 3, 0.0], abs=1e-12)


# --- epoch-end checkpoints ---------------------------------------------------------------

def test_checkpoint_epochs():
    assert checkpoint_epochs(200, 20, 10) == [*range(10, 200, 20), 200]
    assert checkpoint_epochs(200, 20, 10)[:3] == [10, 30, 50]
    assert checkpoint_epochs(5, 1) == [1, 2, 3, 4, 5]
    assert checkpoint_epochs(10, 4) == [4, 8, 10]  # first defaults to every: epoch % 4 == 0
    assert checkpoint_epochs(10, 5) == [5, 10]  # the last epoch only once
    assert checkpoint_epochs(3, 5, 7) == [3]
    for every in range(1, 6):  # the old rule, epoch % every == 0 or last
        assert checkpoint_epochs(12, every) == [e for e in range(1, 13)
                                                if e % every == 0 or e == 12]
    with pytest.raises(ValueError, match="every"):
        checkpoint_epochs(10, 0)
    with pytest.raises(ValueError, match="first"):
        checkpoint_epochs(10, 2, 0)


def test_train_writes_the_epoch_checkpoints_asked_for(tmp_path):
    x, y = _data(64)
    recipe = {"arch": "cnn000", "epochs": 7, "batch_size": 64,
              "optimizer": {"name": "sgd", "lr": 0.01},
              "checkpoints": {"every_epochs": 3, "first_epoch": 2}}
    spec = TrainSpec.from_recipe(recipe)
    assert (spec.checkpoint_every_epochs, spec.checkpoint_first_epoch) == (3, 2)
    assert TrainSpec.from_recipe({**recipe, "checkpoints": {}}).checkpoint_first_epoch is None
    train(spec, 0, x, y, x[:16], y[:16], tmp_path, log=lambda m: None)
    ck = pd.read_csv(tmp_path / "checkpoints.csv")
    assert list(ck["epoch"]) == [0, 2, 5, 7] == [0, *checkpoint_epochs(7, 3, 2)]
    assert list(ck["step"]) == [0, 2, 5, 7]  # one step per epoch
    assert all((tmp_path / f).is_file() for f in ck["file"])
    assert len(list((tmp_path / "checkpoints").iterdir())) == 4
    ep = pd.read_csv(tmp_path / "epochs.csv")
    assert list(ep["lr"]) == [0.01] * 7


def _ramp_recipe(adversary):
    return {"arch": "mnist002", "arch_kwargs": {"widths": [2, 4], "hidden": 8,
                                                "activation": "softplus"},
            "optimizer": {"name": "adam", "lr": 1e-3}, "epochs": 2, "batch_size": 64,
            "regime": {"adversary": adversary, "adv_weight": 1.0}}


def test_train_ramps_the_adversarys_eps_per_step(tmp_path, monkeypatch):
    """eps_ramp_epochs 1.5 over 2 epochs of 4 steps: the k-th step attacks at
    eps·min(1, k / 6) with the step size scaled alike, the full eps from step 6 on."""
    from curvrobust.training.regimes import Objective

    used = []
    attack_params = Objective.attack_params

    def record(self):
        params = attack_params(self)
        used.append((params["eps"], params["step_size"]))
        return params

    monkeypatch.setattr(Objective, "attack_params", record)
    x, y = _data(256)
    adv = {"kind": "pgd", "eps": 0.3, "steps": 2, "step_size": 0.1, "random_start": True,
           "eps_ramp_epochs": 1.5}
    logs = []
    train(TrainSpec.from_recipe(_ramp_recipe(adv)), 3, x, y, x[:64], y[:64], tmp_path,
          log=logs.append)
    fracs = [min(1.0, k / 6) for k in range(1, 9)]
    assert [e for e, _ in used] == pytest.approx([0.3 * f for f in fracs], rel=1e-12)
    assert [s for _, s in used] == pytest.approx([0.1 * f for f in fracs], rel=1e-12)
    assert any("warm-up" in m and "(6 steps)" in m for m in logs)


def test_train_without_a_ramp_is_unchanged_bit_for_bit(tmp_path):
    """eps_ramp_epochs: 0 trains exactly the model of the spec without the key."""
    x, y = _data(256)
    adv = {"kind": "pgd", "eps": 0.3, "steps": 2, "step_size": 0.1, "random_start": True}
    quiet = lambda m: None  # noqa: E731
    train(TrainSpec.from_recipe(_ramp_recipe(adv)), 3, x, y, x[:64], y[:64], tmp_path / "a",
          log=quiet)
    train(TrainSpec.from_recipe(_ramp_recipe({**adv, "eps_ramp_epochs": 0})), 3, x, y, x[:64],
          y[:64], tmp_path / "b", log=quiet)
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cols = ["batch_loss_mean", "train_loss", "test_loss", "adv_ce"]
    assert pd.read_csv(tmp_path / "a" / "epochs.csv")[cols].equals(
        pd.read_csv(tmp_path / "b" / "epochs.csv")[cols])
