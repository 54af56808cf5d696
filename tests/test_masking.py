"""Gradient-masking checks (curvrobust.evaluation.masking): for every check a small model built to fail it
is flagged with that check, and an ordinarily trained model passes them all; the suite's rows,
the probe, the transfer crafting and the validity gate against independent computations."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from curvrobust.attacks import OUTCOME_COLUMNS, cw, fgsm, pgd
from curvrobust.models.inference import decision_margin
from curvrobust.evaluation.masking import (CHECK_KINDS, LIMIT_DEFAULTS, MASKING_CHECKS,
    SUITE_DEFAULTS, craft_transfer, failed_checks, flags_by_kind, gradient_probe, masking_checks,
    model_validity, robust_suite, suite_settings)

pytestmark = pytest.mark.usefixtures("one_thread")

EPS, LARGE_EPS = 0.1, 0.5
QUERIES = 100  # Square's queries in the tests (the default is 5000)
AA_STEPS = 10  # APGD's and FAB's iterations in the tests (the default is 100)


# --------------------------------------------------------------------------- the fixtures

def separable(n: int, seed: int, side: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of (1, side, side) images in [0, 1]: class 0 has mean brightness in
    [0.2, 0.45], class 1 in [0.55, 0.8], each pixel ±0.05 around it."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    m = torch.where(y == 1, 0.55 + 0.25 * torch.rand(n, generator=g),
                    0.2 + 0.25 * torch.rand(n, generator=g))
    noise = 0.05 * (2 * torch.rand(n, 1, side, side, generator=g) - 1)
    return (m[:, None, None, None] + noise).clamp(0, 1), y


def train_linear(seed: int) -> nn.Module:
    """Logistic regression trained with Adam for 300 full-batch steps on 256 separable images:
    an ordinary model (for a binary linear model FGSM is the optimal L∞ attack, so PGD, Square
    and transfer cannot do better and no check can fail)."""
    torch.manual_seed(seed)
    x, y = separable(256, seed + 100)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


class Scaled(nn.Module):
    """Logits times a constant: ×1e4 makes the float32 cross-entropy gradient exactly zero."""

    def __init__(self, inner: nn.Module, factor: float) -> None:
        super().__init__()
        self.inner, self.factor = inner, factor

    def forward(self, x):
        return self.inner(x) * self.factor


class SoftmaxOutput(nn.Module):
    """A softmax output layer: the model returns probabilities."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).softmax(1)


class Quantised(nn.Module):
    """A step-function input layer (rounding to tenths; zero gradient everywhere) in front of a
    classifier."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 10) / 10)


class MeanModel(nn.Module):
    """Two logits [0, h(u)] of u = (mean(x) − 0.5)/ε: on constant-0.5 images of label 0 the
    loss landscape along the mean brightness is h (the image is correct while h(u) < 0)."""

    def __init__(self, h, eps: float) -> None:
        super().__init__()
        self.h, self.eps = h, eps
        self.unused = nn.Parameter(torch.zeros(()))  # a device for torchattacks to read

    def forward(self, x):
        u = (x.flatten(1).mean(1) - 0.5) / self.eps
        return torch.stack([torch.zeros_like(u), self.h(u)], 1)


def h_fgsm(u):
    """Loss rises to a still-correct local maximum at u = 0.3, falls, and turns wrong only near
    u = 1: FGSM's one step of ε lands at u = 1; small PGD steps stop at u ≈ 0.3."""
    return -2 + torch.exp(-((u - 0.3) / 0.2) ** 2) + 3 * torch.sigmoid((u - 0.85) / 0.03)


def h_restart(u):
    """u = 0 is a local minimum of the loss: a start with u < 0 climbs to the wrong corner
    u = −1 (h = 1), one with u > 0 to the correct local maximum u = 0.5 (h = −1)."""
    return torch.where(u < 0, -2 + 3 * u ** 2, -2 + torch.sin(math.pi * u) ** 2)


def constant_images(n: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((n, 1, side, side), 0.5), torch.zeros(n, dtype=torch.long)


def settings(**kw):
    return suite_settings({"square_queries": QUERIES, "apgd_steps": AA_STEPS,
                           "fab_steps": AA_STEPS, **kw})


def run_suite(model, x, y, transfer=None, **kw):
    """Suite rows, probe and checks at EPS (+ LARGE_EPS) with the test settings."""
    rows = robust_suite(model, x, y, torch.arange(len(x)) + 1000, EPS, large_eps=LARGE_EPS,
                        settings=settings(**kw), transfer=transfer)
    probe = gradient_probe(model, x, y)
    return rows, probe, masking_checks(pd.DataFrame(rows), probe, EPS, LARGE_EPS)


@pytest.fixture(scope="module")
def linear():
    """The ordinary model, its 100 test images, and transfer adversarials crafted on a second
    ordinarily trained model."""
    pytest.importorskip("torchattacks")
    model = train_linear(0)
    x, y = separable(100, 7)
    transfer = craft_transfer(train_linear(1), x, y, [EPS], settings=settings())
    return model, x, y, transfer


@pytest.fixture(scope="module")
def suites(linear):
    """name -> (model, x, y, rows, probe, checks) for the ordinary model and every fixture."""
    model, x, y, transfer = linear
    cases = {
        "ordinary": (model, x, y, transfer),
        "scaled": (Scaled(model, 1e4), x, y, transfer),
        "softmax": (SoftmaxOutput(model), x, y, transfer),
        "quantised": (Quantised(model), x, y, transfer),
        "fgsm_trap": (MeanModel(h_fgsm, EPS), *constant_images(60, 8), None),
        "start_trap": (MeanModel(h_restart, EPS), *constant_images(100, 4), None),
    }
    return {name: (m, xx, yy, *run_suite(m, xx, yy, t)) for name, (m, xx, yy, t)
            in cases.items()}


def failed(checks):
    """Names of the failed checks."""
    return [c["check"] for c in checks if not c["passed"]]


def rows_of(rows, attack, eps=EPS):
    return [r for r in rows if r["attack"] == attack and math.isclose(r["eps"], eps)]


def broken(rows, attack, eps=EPS):
    return {r["index"] for r in rows_of(rows, attack, eps) if r["success"]}


def robust_accuracy(rows, attack, eps=EPS):
    sel = rows_of(rows, attack, eps)
    return sum(r["correct"] and not r["success"] for r in sel) / len(sel)


# --------------------------------------------------------------------------- each check

def test_ordinary_model_passes_every_check(suites):
    _, x, _, rows, probe, checks = suites["ordinary"]
    assert [c["check"] for c in checks] == list(MASKING_CHECKS)
    assert failed_checks(checks) == [], checks
    assert flags_by_kind(checks) == {"masking": [], "convergence": []}
    assert all(c["value"] == 0.0 for c in checks[:5]), checks
    # the attacks did something: some images are broken at EPS, not all, and all at LARGE_EPS
    assert 0.5 < robust_accuracy(rows, "pgd_ce") < 0.95
    assert robust_accuracy(rows, "pgd_ce", LARGE_EPS) == 0.0
    # binary linear model: FGSM, every PGD variant and the transfer find the same images
    # (margin PGD and the doubled steps run only where pgd_ce failed: nothing is left)
    for attack in ("pgd_ce", "pgd_margin", "pgd_ce_2x", "pgd_ce_restarts"):
        assert broken(rows, "pgd_ce") | broken(rows, attack) == broken(rows, "fgsm"), attack
    assert not broken(rows, "pgd_margin") and not broken(rows, "pgd_ce_2x")


def test_logits_times_1e4_fail_zero_grad_and_margin_only(suites):
    _, _, _, rows, probe, checks = suites["scaled"]
    assert {"zero_grad", "margin_only"} <= set(failed(checks))
    assert probe["zero_grad_share"] == 1.0
    # the cross entropy is stuck; the margin loss moves exactly as on the unscaled model
    # (same random starts, same gradient signs)
    ordinary = suites["ordinary"][3]
    assert broken(rows, "pgd_ce") == set()
    assert broken(rows, "pgd_margin") == broken(ordinary, "pgd_ce")
    margin_only = next(c for c in checks if c["check"] == "margin_only")
    assert margin_only["value"] == len(broken(ordinary, "pgd_ce")) > 2
    assert margin_only["kind"] == "convergence"
    assert flags_by_kind(checks)["convergence"] == ["margin_only"]


def test_softmax_output_fails_probabilities(suites):
    model, x, _, _, probe, checks = suites["softmax"]
    assert "probabilities" in failed(checks)
    assert probe["outputs_sum_to_one"] is True
    assert probe["mean_output_row_sum"] == pytest.approx(1.0, abs=1e-6)
    assert "probabilities" not in failed(suites["ordinary"][5])


def test_step_function_input_fails_square_transfer_and_large_eps(suites):
    _, _, _, rows, probe, checks = suites["quantised"]
    assert {"square_only", "transfer_only", "large_eps", "zero_grad"} <= set(
        failed(checks))
    white = set().union(*(broken(rows, a) for a in ("fgsm", "pgd_ce", "pgd_margin",
                                                    "pgd_ce_2x", "pgd_ce_restarts")))
    assert white == set()  # no gradient: FGSM and PGD cannot move it
    # APGD's random start may land a borderline image across; no gradient step helps more
    assert len(broken(rows, "apgd_ce") | broken(rows, "fab_t")) <= 2
    assert len(broken(rows, "square")) > 1 and len(broken(rows, "transfer")) > 1
    large = next(c for c in checks if c["check"] == "large_eps")
    assert large["value"] == 100 * robust_accuracy(rows, "pgd_ce", LARGE_EPS) > 2


def test_local_maximum_trap_fails_fgsm_only(suites):
    model, x, y, rows, _, checks = suites["fgsm_trap"]
    assert "fgsm_only" in failed(checks)
    assert next(c for c in checks if c["check"] == "fgsm_only")["value"] == 60
    # FGSM's step lands at u = 1 exactly: margin −h(1)
    expected = -h_fgsm(torch.tensor(1.0)).item()
    assert expected < 0
    assert all(r["margin"] == pytest.approx(expected, abs=1e-4) for r in rows_of(rows, "fgsm"))
    # PGD ends near the local maximum u ≈ 0.3 (h ≈ −1): correct with margin ≈ 1
    for attack in ("pgd_ce", "pgd_margin", "pgd_ce_2x", "pgd_ce_restarts"):
        margins = [r["margin"] for r in rows_of(rows, attack)]
        assert all(0.9 < m < 1.3 for m in margins), (attack, min(margins), max(margins))


def test_random_start_trap_fails_steps_restarts(suites):
    _, x, y, rows, _, checks = suites["start_trap"]
    assert "steps_restarts" in failed(checks)
    # independent: the outcome is the sign of the random start's mean; pgd_ce draws the
    # starts of the whole batch from a generator seeded with `seed`, the restart draws the
    # next start for the images still unbroken from the same generator
    g = torch.Generator().manual_seed(SUITE_DEFAULTS["seed"])
    first = torch.empty_like(x).uniform_(-EPS, EPS, generator=g).flatten(1).mean(1)
    expected = {1000 + i for i in (first < 0).nonzero().flatten().tolist()}
    assert broken(rows, "pgd_ce") == expected
    assert broken(rows, "pgd_ce_2x") == set()  # continued where pgd_ce failed: still stuck
    left = (first >= 0).nonzero().flatten()
    second = torch.empty_like(x[left]).uniform_(-EPS, EPS, generator=g).flatten(1).mean(1)
    expected |= {1000 + i for i in left[second < 0].tolist()}
    assert broken(rows, "pgd_ce_restarts") == expected
    value = next(c for c in checks if c["check"] == "steps_restarts")["value"]
    assert value == len(broken(rows, "pgd_ce_restarts") - broken(rows, "pgd_ce")) > 10


# --------------------------------------------------------------------------- the probe

def test_gradient_probe_values(suites, linear):
    model, x, y, _ = linear
    ordinary = suites["ordinary"][4]
    assert ordinary["zero_grad_share"] == 0.0 and ordinary["outputs_sum_to_one"] is False
    assert ordinary["mean_output_row_sum"] == pytest.approx(
        model(x).sum(1).double().mean().item(), rel=1e-6)
    assert ordinary["n"] == len(x)
    assert suites["quantised"][4]["zero_grad_share"] == 1.0
    # the probe is per image: the batch size does not change it
    small = gradient_probe(Scaled(model, 1e4), x, y, batch_size=7)
    scaled = suites["scaled"][4]
    assert small["zero_grad_share"] == scaled["zero_grad_share"] == 1.0
    assert small["mean_output_row_sum"] == pytest.approx(scaled["mean_output_row_sum"])


def test_gradient_probe_is_per_image_near_underflow():
    """Logit gap 100: p_wrong ≈ 4e-44 (float32 subnormal) gives each image a tiny non-zero
    gradient; averaging the loss over a batch of 500 would round it to zero."""

    class Confident(nn.Module):
        def forward(self, x):
            m = 50 / 0.9 * x.flatten(1).mean(1)
            return torch.stack([m, -m], 1)

    x, y = torch.full((500, 1, 4, 4), 0.9), torch.zeros(500, dtype=torch.long)
    one = gradient_probe(Confident(), x[:1], y[:1], batch_size=1)
    batch = gradient_probe(Confident(), x, y, batch_size=500)
    # no underflow on the per-image path: every gradient is tiny but not zero
    assert one["zero_grad_share"] == batch["zero_grad_share"] == 0.0
    assert batch["zero_grad_images"] == 0
    # in float64 too (p_wrong ≈ 4e-44 is a normal number there)
    assert gradient_probe(Confident(), x.double(), y, batch_size=500)["zero_grad_images"] == 0
    # the premise: the batch-mean loss would have underflowed to an all-zero gradient
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(Confident()(xr), y), xr)
    assert (g == 0).all()


def test_gradient_probe_counts_non_finite_gradients(linear):
    model, x, y, _ = linear
    x = x.clone()
    x[:30:3, 0, 0, 0] = 0.0  # √ at 0: infinite derivative, times 0: a NaN gradient

    class RootTerm(nn.Module):
        def forward(self, x):
            return model(x) + 0 * x.flatten(1).sqrt().sum(1, keepdim=True)

    probe = gradient_probe(RootTerm(), x, y)
    zero_pixel = (x.flatten(1) == 0).any(1).float().mean().item()
    assert zero_pixel >= 0.1 and probe["zero_grad_share"] == pytest.approx(zero_pixel)


# --------------------------------------------------------------------------- the suite

@pytest.fixture(scope="module")
def mlp():
    """An untrained three-class tanh net on random images: some images are wrong, and five
    PGD steps that can cover only ε do not converge (doubling them moves the iterates)."""
    pytest.importorskip("torchattacks")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    x = torch.rand(40, 1, 4, 4)
    y = torch.randint(0, 3, (40,))
    index = torch.arange(40) * 7
    s = settings(pgd_steps=5, pgd_step_factor=1.0, square_queries=20)  # 5 steps: ε in all
    return model, x, y, index, s


def test_suite_rows_invariants_and_determinism(mlp):
    model, x, y, index, s = mlp
    transfer = {EPS: craft_transfer(Scaled(model, -1.0), x, y, [EPS], settings=s)[EPS]}
    state = torch.get_rng_state()
    rows = robust_suite(model, x, y, index, EPS, large_eps=LARGE_EPS, settings=s,
                        transfer=transfer)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    assert rows == robust_suite(model, x, y, index, EPS, large_eps=LARGE_EPS, settings=s,
                                transfer=transfer)
    assert all(tuple(r) == OUTCOME_COLUMNS for r in rows)
    # three classes: no APGD-T (its DLR loss needs four)
    names = ["fgsm", "pgd_ce", "pgd_margin", "pgd_ce_2x", "pgd_ce_restarts", "apgd_ce",
             "fab_t", "square", "transfer", "pgd_ce"]
    assert [r["attack"] for r in rows[::40]] == names
    assert [r["eps"] for r in rows[::40]] == [EPS] * 9 + [LARGE_EPS]
    correct = (model(x).argmax(1) == y).tolist()
    assert 0 < sum(correct) < 40
    for k in range(len(names)):
        block = rows[40 * k:40 * (k + 1)]
        assert [r["index"] for r in block] == index.tolist()
        assert [r["label"] for r in block] == y.tolist()
        assert [r["correct"] for r in block] == [int(c) for c in correct]
        assert all(r["attacked"] <= r["correct"] and r["success"] <= r["attacked"]
                   for r in block)
        # where not attacked the margin is the clean one
        clean = decision_margin(model(x), y).tolist()
        assert all(r["margin"] == pytest.approx(m, abs=1e-6) for r, m in zip(block, clean)
                   if not r["attacked"])
        assert all((r["margin"] <= 0) == bool(r["success"]) for r in block if r["attacked"])
    ok = {int(i) for i, c in zip(index, correct) if c}
    pgd_family = set().union(*(broken(rows, a) for a in names[:5]))
    # the AutoAttack stages form a cascade on what the PGD family left standing
    left = ok - pgd_family
    for stage in ("apgd_ce", "fab_t"):
        attacked = {r["index"] for r in rows_of(rows, stage) if r["attacked"]}
        assert attacked == left, stage
        left -= broken(rows, stage)
    white = set().union(*(broken(rows, a) for a in names[:7]))
    for black in ("square", "transfer"):
        attacked = {r["index"] for r in rows_of(rows, black) if r["attacked"]}
        assert attacked == ok - white, black
    assert white and ok - white  # both sides are non-empty: the test means something


def test_suite_attacks_equal_the_library_attacks(mlp):
    """pgd_ce / pgd_margin / fgsm are the library's attacks with the suite's settings, and
    pgd_ce_2x equals PGD with twice the steps from the same start."""
    model, x, y, index, s = mlp
    rows = robust_suite(model, x, y, index, EPS, settings=s)
    ok = model(x).argmax(1) == y
    xc, yc = x[ok], y[ok]
    step = s["pgd_step_factor"] * EPS / s["pgd_steps"]
    expected = {
        "fgsm": fgsm(model, xc, yc, EPS),
        "pgd_ce": pgd(model, xc, yc, EPS, steps=s["pgd_steps"], step_size=step, seed=s["seed"]),
        "pgd_margin": cw(model, xc, yc, EPS, steps=s["pgd_steps"], step_size=step, kappa=0.0,
                         random_start=True, seed=s["seed"]),
        "pgd_ce_2x": pgd(model, xc, yc, EPS, steps=2 * s["pgd_steps"], step_size=step,
                         seed=s["seed"]),
    }
    ce_left = [not r["success"] for r in rows_of(rows, "pgd_ce") if r["correct"]]
    for attack, adv in expected.items():
        got = [r["margin"] for r in rows_of(rows, attack) if r["attacked"]]
        want = decision_margin(model(adv), yc).double()
        if attack in ("pgd_margin", "pgd_ce_2x"):  # only where pgd_ce failed
            want = want[torch.tensor(ce_left)]
        assert got == pytest.approx(want.tolist(), abs=1e-6), attack
    assert sum(ce_left) >= 2  # the comparison covers images
    # doubling the steps moved the iterates (else the equality above proves nothing)
    assert [r["margin"] for r in rows_of(rows, "pgd_ce") if not r["success"]] != \
        [r["margin"] for r in rows_of(rows, "pgd_ce_2x") if r["attacked"]]
    # no transfer given: no transfer rows; no large_eps: no rows at another ε
    assert not rows_of(rows, "transfer") and {r["eps"] for r in rows} == {EPS}


def test_one_start_is_plain_pgd_and_restarts_only_add(mlp, suites):
    model, x, y, index, s = mlp
    rows = robust_suite(model, x, y, index, EPS, settings={**s, "restarts": 1})
    strip = [{k: v for k, v in r.items() if k != "attack"} for r in rows if r["attack"] in
             ("fgsm", "pgd_ce", "pgd_margin", "pgd_ce_2x", "pgd_ce_restarts")]
    assert strip[4 * 40:5 * 40] == strip[1 * 40:2 * 40]  # pgd_ce_restarts == pgd_ce
    for name in ("ordinary", "start_trap"):
        r = suites[name][3]
        assert broken(r, "pgd_ce") <= broken(r, "pgd_ce_restarts")


def test_suite_argument_errors(mlp):
    model, x, y, index, s = mlp
    with pytest.raises(ValueError, match="large_eps"):
        robust_suite(model, x, y, index, EPS, large_eps=EPS, settings=s)
    with pytest.raises(ValueError, match="eps"):
        robust_suite(model, x, y, index, 0.0, settings=s)
    with pytest.raises(ValueError, match="no adversarial inputs at eps=0.1"):
        robust_suite(model, x, y, index, EPS, settings=s, transfer={0.2: x})
    with pytest.raises(ValueError, match="L∞"):
        robust_suite(model, x, y, index, EPS, settings=s, transfer={EPS: 1 - x})
    with pytest.raises(ValueError, match="index"):
        robust_suite(model, x, y, index[:-1], EPS, settings=s)
    with pytest.raises(ValueError, match="skip"):
        robust_suite(model, x, y, index, EPS, settings=s, skip=torch.zeros(3, dtype=torch.bool))


def test_skipped_images_get_no_survivor_stage(mlp):
    """Images a study's attack already broke (or outside the worst case's images) are left to
    it: AutoAttack, Square and transfer rows there say attacked = 0; the PGD family still runs
    on every correct image (its checks count on the whole subset)."""
    model, x, y, index, s = mlp
    skip = torch.arange(40) % 2 == 0
    rows = robust_suite(model, x, y, index, EPS, settings=s, skip=skip)
    skipped = {int(i) for i in index[skip]}
    for stage in ("apgd_ce", "fab_t", "square"):
        assert not {r["index"] for r in rows_of(rows, stage) if r["attacked"]} & skipped
    correct = {r["index"] for r in rows_of(rows, "pgd_ce") if r["correct"]}
    assert {r["index"] for r in rows_of(rows, "pgd_ce") if r["attacked"]} == correct
    assert correct & skipped


def test_adopted_outcomes_stand_for_the_stage_and_spare_its_attack(mlp, monkeypatch):
    """A study's cascade survivors (``adopted``): the suite's AutoAttack and Square rows there
    say attacked, not broken, with the study's margin, and those images never reach the
    attacks; images a white-box stage broke or the suite skips take no adopted row."""
    import curvrobust.evaluation.masking as masking

    model, x, y, index, s = mlp
    eps = 0.02  # small enough that several images survive every stage
    plain = robust_suite(model, x, y, index, eps, settings=s)
    survivors = torch.tensor([bool(r["attacked"]) and not r["success"]
                              for r in rows_of(plain, "square", eps)])
    assert survivors.sum() >= 4
    mask = survivors.clone()
    mask[survivors.nonzero().flatten()[::2]] = False  # adopt half of the survivors
    white = torch.tensor([r["success"] == 1 for r in rows_of(plain, "pgd_ce", eps)])
    assert white.any()
    mask |= white  # adopted where pgd_ce broke the image: must not count
    skip = torch.zeros(40, dtype=torch.bool)
    skip[survivors.nonzero().flatten()[1]] = True  # a skipped survivor: no row either
    margins = torch.full((40,), 123.0, dtype=torch.float64)
    adopted = {stage: (mask, margins) for stage in ("apgd_ce", "fab_t", "square")}
    seen = []
    real_build = masking.build_stage

    def counting(name, *args, **kw):
        atk = real_build(name, *args, **kw)
        return lambda xb, yb: (seen.append((name, len(xb))), atk(xb, yb))[1]

    monkeypatch.setattr(masking, "build_stage", counting)
    rows = robust_suite(model, x, y, index, eps, settings=s, skip=skip, adopted=adopted)
    taken = {int(index[i]) for i in (mask & survivors & ~skip).nonzero().flatten()}
    assert taken
    for stage in ("apgd_ce", "fab_t", "square"):
        r = {q["index"]: q for q in rows_of(rows, stage, eps)}
        for i in taken:
            assert (r[i]["attacked"], r[i]["success"], r[i]["margin"]) == (1, 0, 123.0)
        for i in set(r) - taken:
            assert r[i]["margin"] != 123.0
    first = torch.tensor([r["attacked"] == 1 for r in rows_of(plain, "apgd_ce", eps)])
    assert sum(n for name, n in seen if name == "apgd-ce") == int((first & ~mask & ~skip).sum())


def test_adopted_argument_errors(mlp):
    model, x, y, index, s = mlp
    ok = (torch.zeros(40, dtype=torch.bool), torch.zeros(40))
    with pytest.raises(ValueError, match="'pgd_ce' is not a survivor stage"):
        robust_suite(model, x, y, index, EPS, settings=s, adopted={"pgd_ce": ok})
    with pytest.raises(ValueError, match=r"adopted\['square'\] must be an \(N,\) bool"):
        robust_suite(model, x, y, index, EPS, settings=s,
                     adopted={"square": (torch.zeros(39, dtype=torch.bool), torch.zeros(39))})


def test_craft_transfer_stays_in_the_ball_and_is_the_suites_pgd(linear):
    model, x, y, _ = linear
    s = settings(batch_size=32)
    out = craft_transfer(model, x, y, [0.05, EPS], settings=s)
    assert sorted(out) == [0.05, EPS]
    for eps, adv in out.items():
        assert adv.shape == x.shape and not adv.requires_grad
        assert (adv - x).abs().max().item() <= eps + 1e-6
        assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0
    # one batch: exactly the library's PGD with the suite's settings, on every image
    one = craft_transfer(model, x, y, [EPS], settings={**s, "batch_size": 500})[EPS]
    assert torch.equal(one, pgd(model, x, y, EPS, steps=s["pgd_steps"],
                                step_size=s["pgd_step_factor"] * EPS / s["pgd_steps"],
                                seed=s["seed"]))


def test_suite_settings():
    assert suite_settings(None) == SUITE_DEFAULTS
    s = suite_settings({"enabled": True, "pgd_steps": 10, "square_p_init": 0.5})
    assert s == {**SUITE_DEFAULTS, "pgd_steps": 10, "square_p_init": 0.5}
    assert suite_settings(s) == s
    for key, bad in [("pgd_steps", 0), ("restarts", 1.5), ("pgd_step_factor", -1),
                     ("square_p_init", 1.5), ("seed", -1), ("batch_size", True),
                     ("apgd_steps", 0), ("fab_steps", 0), ("target_classes", 0)]:
        with pytest.raises(ValueError, match=key):
            suite_settings({key: bad})


# --------------------------------------------------------------------------- the checks

def outcome_frame(table: dict[str, list[int]], n: int = 10, correct=None,
                  eps: float = EPS) -> pd.DataFrame:
    """Rows for images 0..n−1: attack -> the indices it broke."""
    correct = set(range(n)) if correct is None else set(correct)
    return pd.DataFrame([{"attack": a, "eps": eps, "index": i, "label": 0,
                          "correct": int(i in correct), "attacked": int(i in correct),
                          "success": int(i in hit), "margin": 0.0}
                         for a, hit in table.items() for i in range(n)],
                        columns=OUTCOME_COLUMNS)


def by_name(checks):
    return {c["check"]: c for c in checks}


def test_checks_known_values():
    df = outcome_frame({"fgsm": [1, 2, 3], "pgd_ce": [2, 4], "pgd_margin": [3, 4, 5],
                        "pgd_ce_2x": [2, 4, 6], "pgd_ce_restarts": [2, 4, 7, 8],
                        "square": [9], "transfer": [8, 9]}, correct=range(1, 10))
    large = outcome_frame({"pgd_ce": list(range(1, 9))}, eps=LARGE_EPS, correct=range(1, 10))
    probe = {"n": 10, "zero_grad_images": 1, "zero_grad_share": 0.1,
             "outputs_sum_to_one": False, "mean_output_row_sum": 3.0}
    limits = {k: 0 for k in LIMIT_DEFAULTS} | {"transfer_only": 1}
    c = by_name(masking_checks(pd.concat([df, large]), probe, EPS, LARGE_EPS, limits))
    assert c["fgsm_only"]["value"] == 1          # image 1
    assert c["margin_only"]["value"] == 2        # 3 and 5
    assert c["steps_restarts"]["value"] == 3     # 6 (2x), 7 and 8 (restarts)
    assert c["square_only"]["value"] == 1        # 9
    # 9 only (8 fell to the restarts); a count equal to its limit passes
    assert c["transfer_only"]["value"] == 1 and c["transfer_only"]["passed"]
    assert c["large_eps"]["value"] == 1 and not c["large_eps"]["passed"]   # image 9
    assert c["zero_grad"]["value"] == 1 and not c["zero_grad"]["passed"]
    assert c["probabilities"]["passed"] and c["probabilities"]["value"] == 3.0
    assert failed_checks(list(c.values())) == [
        "fgsm_only (masking)", "margin_only (convergence)", "steps_restarts (convergence)",
        "square_only (masking)", "large_eps (masking)", "zero_grad (masking)"]
    assert {k: v["limit"] for k, v in c.items() if k != "probabilities"} == limits
    assert {k: v["kind"] for k, v in c.items()} == CHECK_KINDS
    assert "image" in c["fgsm_only"]["detail"] and "pgd_ce_restarts" in c["fgsm_only"]["detail"]
    # the defaults: more than 2 images fail
    d = by_name(masking_checks(pd.concat([df, large]), probe, EPS, LARGE_EPS))
    assert [k for k, v in d.items() if not v["passed"]] == []


def test_large_eps_must_fall_unless_already_zero():
    at_eps = outcome_frame({"pgd_ce": [0, 1, 2, 3, 4, 5, 6, 7, 8]})   # 10 % robust
    same = outcome_frame({"pgd_ce": [0, 1, 2, 3, 4, 5, 6, 7, 8]}, eps=LARGE_EPS)
    c = by_name(masking_checks(pd.concat([at_eps, same]), None, EPS, LARGE_EPS))["large_eps"]
    assert c["value"] == 1 and not c["passed"]
    assert "does not fall" in c["detail"]
    zero = outcome_frame({"pgd_ce": list(range(10))})
    zero_large = outcome_frame({"pgd_ce": list(range(10))}, eps=LARGE_EPS)
    c = by_name(masking_checks(pd.concat([zero, zero_large]), None, EPS, LARGE_EPS))
    assert c["large_eps"]["passed"] and c["large_eps"]["value"] == 0.0


def test_checks_not_run_and_errors():
    df = outcome_frame({"pgd_ce": [1]})
    checks = masking_checks(df, None, EPS)
    assert [c["check"] for c in checks] == list(MASKING_CHECKS)
    assert all(c["passed"] and math.isnan(c["value"]) and c["detail"].startswith("not run")
               for c in checks)
    with pytest.raises(ValueError, match="unknown check 'fgsm'"):
        masking_checks(df, None, EPS, limits={"fgsm": 1})
    with pytest.raises(ValueError, match="limit of square_only"):
        masking_checks(df, None, EPS, limits={"square_only": 0.01})
    with pytest.raises(ValueError, match="several rows per image"):
        masking_checks(pd.concat([df, df]), None, EPS)
    # rows read back from a CSV (ε as text rounding) still match
    df2 = outcome_frame({"pgd_ce": [1], "pgd_margin": [1, 2]}, eps=0.1 + 1e-12)
    assert by_name(masking_checks(df2, None, EPS))["margin_only"]["value"] == 1


# --------------------------------------------------------------------------- validity gate

def test_model_validity(linear):
    model, x, y, _ = linear

    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([0.0, 1.0, 0.0]).expand(len(x), 3)

    y3 = torch.arange(len(x)) % 3
    v = model_validity(Constant(), x, y3, min_accuracy=0.2)
    assert v["degenerate"] and v["majority_class"] == 1 and v["max_class_share"] == 1.0
    assert v["natural_accuracy"] == pytest.approx((y3 == 1).float().mean().item())
    assert "class 1 for 100.0 %" in v["reason"] and "accuracy" not in v["reason"]
    good = model_validity(model, x, y, min_accuracy=0.9, max_class_share=0.6)
    assert not good["degenerate"] and good["reason"] == ""
    assert good["natural_accuracy"] == (model(x).argmax(1) == y).float().mean().item() == 1.0
    assert good["max_class_share"] == 0.5
    low = model_validity(Scaled(model, -1.0), x, y, min_accuracy=0.5, max_class_share=0.6)
    assert low["degenerate"] and "natural accuracy 0.0 % is below the minimum 50.0 %" in \
        low["reason"]
    with pytest.raises(ValueError, match="min_accuracy"):
        model_validity(model, x, y, min_accuracy=1.5)
