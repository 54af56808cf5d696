import pytest
import torch
from torch import nn

torchattacks = pytest.importorskip("torchattacks")

from curvrobust.attacks.autoattack import AA_ATTACKS, autoattack_eval, subset_indices  # noqa: E402

N_CLASSES = 5
EPS = 0.1
FAST = dict(apgd_steps=5, fab_steps=5, square_queries=50, n_target_classes=2,
            n_classes=N_CLASSES)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _model_and_data(n=24, seed=0, batchnorm=False):
    """A tiny CNN briefly trained on noisy copies of five random 8×8 prototypes, and n fresh
    such images labelled by the model itself with every 4th label wrong: clean accuracy
    exactly 3/4, with margins that attacks at ε ≈ 0.1 break for some points but not all."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(N_CLASSES, 1, 8, 8, generator=g)

    def sample(m):
        labels = torch.randint(0, N_CLASSES, (m,), generator=g)
        return (protos[labels] + 0.2 * torch.randn(m, 1, 8, 8, generator=g)).clamp(0, 1), labels

    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 6, 3, padding=1)] + ([nn.BatchNorm2d(6)] if batchnorm else [])
    layers += [nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 16, 16), nn.ReLU(),
               nn.Dropout(0.5), nn.Linear(16, N_CLASSES)]
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        xb, yb = sample(64)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    x, _ = sample(n)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::4] = (y[::4] + 1) % N_CLASSES
    return model, x, y


@pytest.fixture(scope="module")
def setup():
    model, x, y = _model_and_data()
    full = autoattack_eval(model, x, y, EPS, **FAST)
    return model, x, y, full


def test_cascade_is_non_increasing_and_attacks_something(setup):
    model, x, y, r = setup
    assert list(r) == ["n", "eps", "clean_acc", "apgd-ce_acc", "apgd-t_acc", "fab-t_acc",
                       "square_acc", "aa_acc", "attacks", "time_s"]
    assert r["n"] == 24 and r["eps"] == EPS and r["clean_acc"] == 0.75
    accs = [r["clean_acc"]] + [r[f"{a}_acc"] for a in AA_ATTACKS]
    assert all(a >= b for a, b in zip(accs, accs[1:]))
    assert r["aa_acc"] == r["square_acc"] < r["clean_acc"]
    assert all(abs(a * 24 - round(a * 24)) < 1e-9 for a in accs)  # counts of the 24 points
    assert r["attacks"] == ("APGD-CE (5 it., 1 restart) → APGD-T (5 it., 2 targets) → "
                            "FAB-T (5 it., 2 targets) → Square (50 queries)")
    assert r["time_s"] > 0


def test_cascade_is_no_weaker_than_any_single_attack(setup):
    model, x, y, full = setup
    for name in AA_ATTACKS:
        alone = autoattack_eval(model, x, y, EPS, attacks=(name,), **FAST)
        assert list(alone)[3:5] == [f"{name}_acc", "aa_acc"]
        assert alone["clean_acc"] == full["clean_acc"]
        assert full["aa_acc"] <= alone["aa_acc"]
        if name == "apgd-ce":  # the cascade's first stage is this very run
            assert alone["aa_acc"] == full["apgd-ce_acc"]


def test_same_seed_same_result_and_callers_rng_untouched(setup):
    model, x, y, full = setup
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = autoattack_eval(model, x, y, EPS, **FAST)
    assert torch.equal(torch.get_rng_state(), state)
    expected_next = torch.rand(4, generator=torch.Generator().set_state(state))
    assert torch.equal(torch.rand(4), expected_next)  # the caller's stream goes on unchanged
    drop = lambda d: {k: v for k, v in d.items() if k != "time_s"}  # noqa: E731
    assert drop(again) == drop(full)
    # batches of 5: each batch is one torchattacks call (reseeded per call, so the random
    # starts differ from the single-batch run); the stage's count must equal that of
    # torchattacks' APGD run directly on the same consecutive batches of the correct points
    small = autoattack_eval(model, x, y, EPS, attacks=("apgd-ce",), batch_size=5, **FAST)
    with torch.no_grad():
        todo = (model(x).argmax(1) == y).nonzero().flatten()
    atk = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=5, n_restarts=1, seed=0,
                            loss="ce", rho=0.75)
    robust = 0
    with torch.random.fork_rng():
        for idx in todo.split(5):
            adv = atk(x[idx], y[idx])
            with torch.no_grad():
                robust += int((model(adv).argmax(1) == y[idx]).sum())
    assert small["clean_acc"] == full["clean_acc"]
    assert small["apgd-ce_acc"] == robust / len(x)
    assert robust < len(todo)  # the attack broke something: the count is informative


def test_configured_budgets_reach_torchattacks(setup, monkeypatch):
    """Spy on torchattacks' four classes: the constructor kwargs and, at call time, the
    attributes the real attacks read must carry the configured (non-default) values."""
    model, x, y, _ = setup
    calls = {}

    def spy(cls, name):
        class Spy(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                calls.setdefault(name, {"kwargs": kwargs, "args": args, "seen": []})

            def __call__(self, xb, yb):
                calls[name]["seen"].append({k: getattr(self, k, None) for k in (
                    "eps", "norm", "steps", "n_restarts", "seed", "n_target_classes",
                    "n_queries", "p_init", "loss", "thr_decr", "multi_targeted")})
                return xb.clone()  # no attack: every correct point stays robust
        return Spy

    for cls, name in (("APGD", "apgd-ce"), ("APGDT", "apgd-t"), ("FAB", "fab-t"),
                      ("Square", "square")):
        monkeypatch.setattr(torchattacks, cls, spy(getattr(torchattacks, cls), name))
    cfg = dict(apgd_steps=7, fab_steps=11, square_queries=13, n_target_classes=3,
               n_restarts=2, n_classes=N_CLASSES, seed=17)
    eps = 0.0625
    r = autoattack_eval(model, x, y, eps, **cfg)
    assert r["aa_acc"] == r["clean_acc"] == 0.75
    assert set(calls) == set(AA_ATTACKS)
    for name, c in calls.items():
        assert c["args"] == (model,), name
        assert c["seen"], name  # the attack was called
        for seen in c["seen"]:
            assert seen["eps"] == eps and seen["norm"] == "Linf" and seen["seed"] == 17, name
    ce, t, fab, sq = (calls[a]["seen"][0] for a in AA_ATTACKS)
    assert (ce["steps"], ce["n_restarts"], ce["loss"], ce["thr_decr"]) == (7, 2, "ce", 0.75)
    assert (t["steps"], t["n_restarts"], t["n_target_classes"], t["thr_decr"]) == (7, 2, 3, 0.75)
    assert (fab["steps"], fab["n_restarts"], fab["n_target_classes"]) == (11, 2, 3)
    assert fab["multi_targeted"] is True
    assert (sq["n_queries"], sq["n_restarts"], sq["p_init"]) == (13, 1, 0.8)
    assert calls["apgd-t"]["kwargs"]["n_classes"] == N_CLASSES
    assert calls["fab-t"]["kwargs"]["n_classes"] == N_CLASSES
    # the defaults are the official AutoAttack budgets
    calls.clear()
    autoattack_eval(model, x, y, eps, n_classes=N_CLASSES, n_target_classes=4)
    ce, t, fab, sq = (calls[a]["seen"][0] for a in AA_ATTACKS)
    assert ce["steps"] == t["steps"] == fab["steps"] == 100 and sq["n_queries"] == 5000
    assert ce["n_restarts"] == t["n_restarts"] == fab["n_restarts"] == 1
    assert ce["seed"] == 0


def test_tiny_eps_leaves_the_clean_accuracy(setup):
    model, x, y, _ = setup
    r = autoattack_eval(model, x, y, 1e-6, **FAST)
    assert r["aa_acc"] == r["clean_acc"] == 0.75


def test_apgd_ce_stage_matches_torchattacks_apgd_run_directly(setup):
    model, x, y, full = setup
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    atk = torchattacks.APGD(model, norm="Linf", eps=EPS, steps=5, n_restarts=1, seed=0,
                            loss="ce", rho=0.75)
    with torch.random.fork_rng():
        adv = atk(x[correct], y[correct])
    with torch.no_grad():
        robust = (model(adv).argmax(1) == y[correct]).sum().item()
    assert full["apgd-ce_acc"] == robust / len(x)
    assert robust < correct.sum().item()  # the check compares something non-trivial


def test_model_modes_and_batchnorm_statistics_are_restored():
    model, x, y = _model_and_data(n=16, batchnorm=True)
    model.train()
    model[-2].eval()  # a per-module mode that model.train() would overwrite
    stats = model[1].running_mean.clone()
    logs = []
    autoattack_eval(model, x, y, EPS, attacks=("apgd-ce", "square"), log=logs.append, **FAST)
    assert model.training and model[1].training and not model[-2].training
    assert torch.equal(model[1].running_mean, stats)  # attacks ran in eval mode
    assert len(logs) == 3 and "apgd-ce" in logs[1] and "square" in logs[2]
    assert all("/16" in line for line in logs)


def test_an_attack_leaving_the_eps_ball_is_caught(setup, monkeypatch):
    model, x, y, _ = setup

    class Cheat:
        def __init__(self, model, eps, **kw):
            self.eps = eps

        def __call__(self, xb, yb):
            return (xb + 2 * self.eps).clamp(0, 1)

    monkeypatch.setattr(torchattacks, "Square", Cheat)
    with pytest.raises(RuntimeError, match="square.*L∞ norm"):
        autoattack_eval(model, x, y, EPS, attacks=("square",), **FAST)


def test_bad_arguments_are_named(setup):
    model, x, y, _ = setup
    with pytest.raises(ValueError, match="'pgd'.*known: apgd-ce, apgd-t, fab-t, square"):
        autoattack_eval(model, x, y, EPS, attacks=("apgd-ce", "pgd"), **FAST)
    for eps in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            autoattack_eval(model, x, y, eps, **FAST)
    with pytest.raises(ValueError, match="n_target_classes must be < n_classes=5"):
        autoattack_eval(model, x, y, EPS, **dict(FAST, n_target_classes=5))
    with pytest.raises(ValueError, match="outputs 5 logits but n_classes=10"):
        autoattack_eval(model, x, y, EPS, **dict(FAST, n_classes=10))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        autoattack_eval(model, x + 1.0, y, EPS, **FAST)


def test_subset_indices():
    a = subset_indices(1000, 50, seed=3)
    assert torch.equal(a, subset_indices(1000, 50, seed=3))
    assert not torch.equal(a, subset_indices(1000, 50, seed=4))
    assert len(a) == 50 and len(a.unique()) == 50 and torch.equal(a, a.sort().values)
    assert 0 <= a.min() and a.max() < 1000
    # the first n of one seeded permutation: a larger subset contains the smaller one
    assert set(a.tolist()) <= set(subset_indices(1000, 200, seed=3).tolist())
    assert torch.equal(subset_indices(7, 7, 0), torch.arange(7))
    for n in (0, 8):
        with pytest.raises(ValueError, match="n"):
            subset_indices(7, n, 0)
