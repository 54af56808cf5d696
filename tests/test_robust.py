"""Per-image attack outcomes on the shared subsets, the worst case over attacks, the Square
attack and the per-image rows of the checkpoint evaluation (curvrobust.evaluation.outcomes,
curvrobust.attacks, curvrobust.attacks.autoattack, curvrobust.evaluation.checkpoints)."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest
import torch
from torch import nn

from curvrobust.evaluation import checkpoints as checkpoint_eval
from curvrobust.attacks import (ATTACKS, OUTCOME_COLUMNS, attack_success_table, pgd, run_attack,
    square)
from curvrobust.attacks.autoattack import autoattack_eval, cascade_outcomes, subset_indices
from curvrobust.models.inference import decision_margin
from curvrobust.evaluation.outcomes import REQUIRED_ATTACKS, read_outcomes, worst_case
from curvrobust.attacks.outcomes import attack_outcomes, summarise_outcomes
from curvrobust.data.subsets import eval_subset, select_subset
from curvrobust.utils import write_csv

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


# --------------------------------------------------------------------------- models


def _toy_model() -> nn.Sequential:
    """z = [x0 − x1, x1 − x0]: class 0 iff x0 > x1; the margin z_y − z_other is
    2·(x_y − x_other), and FGSM lowers it by 4ε (both coordinates move by ε)."""
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    return nn.Sequential(lin)


def _mlp_and_data(n=30, seed=0):
    """A random 3-class MLP on (n, 5) inputs in [0, 1], with random labels (some correct)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).eval()
    x = torch.rand(n, 5, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::3] = (y[::3] + 1) % 3  # every third one misclassified
    return model, x, y


def _sum_model() -> nn.Sequential:
    """2 classes on (1, 4, 4) images: z = [s, −s] with s = Σ(x − 0.5); class 0 iff s > 0."""
    lin = nn.Linear(16, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([torch.ones(16), -torch.ones(16)]))
        lin.bias.copy_(torch.tensor([-8.0, 8.0]))
    return nn.Sequential(nn.Flatten(), lin).eval()


class _Quantise(nn.Module):
    """floor(10·x)/10: piecewise constant, so its input gradient is zero (masked)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.floor(x * 10) / 10


def _masked_sum_model() -> nn.Sequential:
    """:func:`_sum_model` behind a quantising input layer: z = [s, −s], s = Σ q(x) − 7.25
    (never 0); gradient attacks get only their random start, a black-box search gets more."""
    model = _sum_model()
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([-7.25, 7.25]))
    return nn.Sequential(model[0], _Quantise(), model[1]).eval()


def _near_boundary_images(n=20, seed=0):
    """Images 0.5 ± 0.01 per pixel, labelled correctly: margins 2|s| <= 0.32 (tiny)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (n, 1, 4, 4), generator=g).float() * 2 - 1
    x = 0.5 + 0.01 * u
    x[:, 0, 0, 0] += 0.001  # no ties: s != 0
    y = (x.sum(dim=(1, 2, 3)) - 8.0 < 0).long()
    return x, y


# --------------------------------------------------------------------------- subsets


def test_eval_subset_is_a_sorted_prefix_of_one_seeded_permutation():
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(3))
    for n in (1, 150, 500):
        s = eval_subset(1000, n, seed=3)
        assert s.dtype == torch.int64 and len(s) == n
        assert torch.equal(s, perm[:n].sort().values)  # the first n of the permutation
        assert torch.equal(s, s.sort().values) and len(s.unique()) == n
    small, large = eval_subset(1000, 150, 3), eval_subset(1000, 500, 3)
    assert set(small.tolist()) < set(large.tolist())  # prefixes nest
    assert not torch.equal(small, eval_subset(1000, 150, 4))
    assert torch.equal(eval_subset(1000, 150, 3), small)
    assert torch.equal(eval_subset(7, None, 5), torch.arange(7))  # None: all
    assert torch.equal(eval_subset(7, 7, 5), torch.arange(7))
    assert torch.equal(subset_indices(1000, 150, 3), small)  # the old name, same subset
    for n_total, n in ((7, 0), (7, 8), (7, True), (0, None), (0, 1)):
        with pytest.raises(ValueError, match="n"):
            eval_subset(n_total, n, 0)


def test_select_subset_all_default_and_too_large():
    x, y = torch.arange(40.0)[:, None] * 10, torch.arange(40)
    xs, ys, idx = select_subset(x, y, None, 12, seed=1)  # the spec names no size: the default
    assert torch.equal(idx, eval_subset(40, 12, 1))
    assert torch.equal(xs[:, 0], idx * 10.0) and torch.equal(ys, idx)
    _, _, idx5 = select_subset(x, y, 5, 12, seed=1)
    assert torch.equal(idx5, eval_subset(40, 5, 1)) and set(idx5.tolist()) < set(idx.tolist())
    xa, ya, idxa = select_subset(x, y, "all", 12, seed=1)  # study 000: the whole test set
    assert torch.equal(idxa, torch.arange(40)) and torch.equal(xa, x) and torch.equal(ya, y)
    assert torch.equal(select_subset(x, y, None, "all", seed=1)[2], torch.arange(40))
    with pytest.raises(ValueError, match=r"n_examples.*40 test images.*n_examples=41"):
        select_subset(x, y, 41, 12, seed=1)
    with pytest.raises(ValueError, match="n_default=50"):
        select_subset(x, y, None, 50, seed=1)
    for bad in ("half", 0, 2.5):
        with pytest.raises(ValueError, match="n_examples"):
            select_subset(x, y, bad, 12, seed=1)


# --------------------------------------------------------------------------- outcomes


def test_attack_outcomes_known_rows():
    model = _toy_model()
    model.train()
    x = torch.tensor([[0.55, 0.45],   # y=0 correct, margin 0.2 -> broken for eps > 0.05
                      [0.70, 0.30],   # y=0 correct, margin 0.8 -> broken for eps > 0.2
                      [0.45, 0.55],   # y=1 correct, margin 0.2
                      [0.60, 0.40],   # y=1 misclassified: never attacked
                      [0.30, 0.70]])  # y=0 misclassified
    y = torch.tensor([0, 0, 1, 1, 0])
    index = torch.tensor([17, 3, 250, 9, 40])
    eps_list = [0.0, 0.1, 0.25]
    rows = attack_outcomes(model, x, y, index, "fgsm", eps_list, batch_size=2, name="fgsm_x")
    assert model.training  # mode restored
    assert [list(r) for r in rows] == [list(OUTCOME_COLUMNS)] * 15
    assert [(r["eps"], r["index"]) for r in rows] == [(e, i) for e in eps_list
                                                       for i in index.tolist()]
    assert {r["attack"] for r in rows} == {"fgsm_x"}
    assert [r["label"] for r in rows[:5]] == y.tolist()
    assert [r["correct"] for r in rows] == [1, 1, 1, 0, 0] * 3
    assert [r["attacked"] for r in rows] == [1, 1, 1, 0, 0] * 3
    assert [r["success"] for r in rows] == [0, 0, 0, 0, 0] + [1, 0, 1, 0, 0] + [1, 1, 1, 0, 0]
    clean = [2 * (float(x[i, y[i]]) - float(x[i, 1 - y[i]])) for i in range(5)]
    for k, eps in enumerate(eps_list):
        # FGSM moves both coordinates by eps against the true class (no clipping here)
        expected = [m - 4 * eps for m in clean[:3]] + clean[3:]
        assert [r["margin"] for r in rows[5 * k:5 * k + 5]] == pytest.approx(expected, abs=1e-6)
    # summarised: the study's table, as attack_success_table computes it
    table = summarise_outcomes(rows)
    assert [(t["eps"], t["n_test"], t["correct"], t["successes"]) for t in table] == [
        (0.0, 5, 3, 0), (0.1, 5, 3, 2), (0.25, 5, 3, 3)]
    assert table[1]["success_rate"] == pytest.approx(2 / 3)
    assert table[1]["adv_accuracy"] == pytest.approx(1 / 5)
    assert attack_success_table(model, x, y, "fgsm", eps_list, batch_size=3) == table
    # default index and name
    rows0 = attack_outcomes(model, x, y, None, "fgsm", [0.1])
    assert [r["index"] for r in rows0] == [0, 1, 2, 3, 4] and rows0[0]["attack"] == "fgsm"
    with pytest.raises(ValueError, match="index"):
        attack_outcomes(model, x, y, index[:3], "fgsm", [0.1])
    with pytest.raises(ValueError, match="once"):
        attack_outcomes(model, x, y, index, "fgsm", [0.1, 0.1])


def test_outcomes_match_an_independent_attack_run():
    """PGD (random start) on all correct images in one call per ε, counted here by hand."""
    model, x, y = _mlp_and_data()
    params = {"steps": 5, "step_size": 0.05, "restarts": 2, "seed": 4}
    eps_list = [0.0, 0.05, 0.3]
    rows = attack_outcomes(model, x, y, None, "pgd", eps_list, params, batch_size=len(x))
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    assert 0 < int(ok.sum()) < len(y)
    successes = []
    for k, eps in enumerate(eps_list):
        adv = pgd(model, x[ok], y[ok], eps, **params)
        assert float((adv - x[ok]).abs().max()) <= eps + 1e-6  # ‖δ‖∞ <= ε
        with torch.no_grad():
            z = model(adv)
            z_clean = model(x)
        fooled = z.argmax(1) != y[ok]
        successes.append(int(fooled.sum()))
        at = rows[k * len(x):(k + 1) * len(x)]
        assert [r["success"] for r, o in zip(at, ok) if o] == fooled.int().tolist()
        assert [r["success"] for r, o in zip(at, ok) if not o] == [0] * int((~ok).sum())
        # margins: of the adversarial input where attacked, else of the clean one
        expected = decision_margin(z_clean, y)
        expected[ok] = decision_margin(z, y[ok])
        assert torch.allclose(torch.tensor([r["margin"] for r in at], dtype=torch.float64),
                              expected.double(),
                              atol=1e-6)
        # a success is exactly a non-positive margin of the adversarial input
        assert all((r["margin"] <= 0) == bool(r["success"]) for r in at if r["attacked"])
    assert successes[0] == 0 < successes[-1]
    table = summarise_outcomes(rows)
    assert [t["successes"] for t in table] == successes
    assert [t["correct"] for t in table] == [int(ok.sum())] * 3
    assert attack_success_table(model, x, y, "pgd", eps_list, params, batch_size=len(x)) == table


def test_summarise_outcomes_edge_cases(tmp_path):
    model = _toy_model()
    x = torch.tensor([[0.55, 0.45], [0.45, 0.55]])
    y = torch.tensor([0, 0])
    rows = attack_outcomes(model, x, y, None, "fgsm", [0.1, 0.0])
    # read back from a CSV (all strings), the same table
    path = tmp_path / "o.csv"
    write_csv(path, rows, list(OUTCOME_COLUMNS))
    with open(path, newline="") as f:
        assert summarise_outcomes(list(csv.DictReader(f))) == summarise_outcomes(rows)
    (missing,) = summarise_outcomes(rows, [0.3])
    assert missing["n_test"] == 0 and math.isnan(missing["adv_accuracy"])
    other = [dict(r, attack="other") for r in rows]
    with pytest.raises(ValueError, match="one attack"):
        summarise_outcomes(rows + other)
    assert summarise_outcomes([]) == []
    assert attack_success_table(model, x[:0], y[:0], "fgsm", [0.1])[0]["n_test"] == 0


# --------------------------------------------------------------------------- square


def test_square_breaks_a_small_margin_model_and_keeps_its_invariants():
    model = _sum_model()
    x, y = _near_boundary_images()
    assert ATTACKS["square"] is square
    torch.manual_seed(123)
    state = torch.get_rng_state()
    adv = square(model, x, y, 0.3, queries=100, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert adv.shape == x.shape and not adv.requires_grad
    assert float((adv - x).abs().max()) <= 0.3 + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    with torch.no_grad():
        assert bool((model(x).argmax(1) == y).all())
        fooled = model(adv).argmax(1) != y
    assert int(fooled.sum()) >= 0.9 * len(y)  # a known-breakable case
    assert torch.equal(square(model, x, y, 0.3, queries=100, seed=1), adv)  # same seed
    assert torch.equal(square(model, x, y, 0.0, queries=100, seed=1), x)  # ε = 0: clean
    # through the registry and the per-image rows
    rows = attack_outcomes(model, x, y, None, "square", [0.0, 0.3], {"queries": 100, "seed": 1})
    assert [r["success"] for r in rows] == [0] * len(y) + fooled.int().tolist()


def test_square_settings_reach_torchattacks(monkeypatch):
    torchattacks = pytest.importorskip("torchattacks")
    seen = {}

    class Spy(torchattacks.Square):
        def __call__(self, xb, yb):
            seen.update({k: getattr(self, k) for k in (
                "norm", "eps", "n_queries", "n_restarts", "p_init", "loss", "seed")})
            seen["training"] = self.model.training
            torch.rand(3)  # draws on the global RNG, as the real attack does
            return xb.clone()

    monkeypatch.setattr(torchattacks, "Square", Spy)
    model = _sum_model()
    model.train()
    x, y = _near_boundary_images(4)
    state = torch.get_rng_state()
    run_attack("square", model, x, y, eps=0.2, queries=37, p_init=0.3, seed=9)
    assert seen == dict(norm="Linf", eps=0.2, n_queries=37, n_restarts=1, p_init=0.3,
                        loss="margin", seed=9, training=False)
    assert model.training and torch.equal(torch.get_rng_state(), state)


def test_square_argument_errors():
    model = _sum_model()
    x, y = _near_boundary_images(4)
    with pytest.raises(ValueError, match="data_range"):
        square(model, x, y, 0.1, data_range=None)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        square(model, x + 1, y, 0.1)
    with pytest.raises(ValueError, match="N, C, H, W"):
        square(model, x.flatten(1), y, 0.1)
    for kwargs, match in (({"queries": 0}, "queries"), ({"p_init": 0.0}, "p_init")):
        with pytest.raises(ValueError, match=match):
            square(model, x, y, 0.1, **kwargs)


# --------------------------------------------------------------------------- worst case


def _row(attack, eps, index, correct, success, attacked=None):
    attacked = correct if attacked is None else attacked
    return dict(attack=attack, eps=eps, index=index, label=0, correct=correct,
                attacked=attacked, success=success, margin=1.0 - 2 * success)


def test_worst_case_known_answer():
    rows = []
    # image: 0 1 2 3 4 5 ; images 1 and 3 are misclassified
    correct = {0: 1, 1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    broken = {"pgd_ce": {2}, "pgd_margin": {4}, "square": set(), "fgsm": {0}}
    ran_on = {"pgd_ce": [0, 1, 2, 3, 4, 5], "pgd_margin": [0, 1, 2, 3, 4, 5],
              "square": [0, 1, 2, 3, 4], "fgsm": [0, 1, 2, 3, 4, 5]}
    for name, images in ran_on.items():
        for i in images:
            rows.append(_row(name, 0.1, i, correct[i], int(i in broken[name])))
    rows.append(_row("square", 0.1, 5, 1, 0, attacked=0))  # skipped: not broken
    rows += [_row("pgd_ce", 0.3, i, correct[i], int(correct[i])) for i in range(6)]
    df = pd.DataFrame(rows)
    r = worst_case(df, 0.1)
    # all four attacks ran on images 0..5: correct 0, 2, 4, 5; broken 0 (fgsm), 2, 4 -> 5 only
    assert r == dict(robust_accuracy=1 / 6, n=6, natural_accuracy=4 / 6,
                     attacks="fgsm;pgd_ce;pgd_margin;square", complete=False)
    # complete needs AutoAttack's stages too (REQUIRED_ATTACKS)
    assert worst_case(df, 0.1, required=("pgd_ce", "pgd_margin", "square"))["complete"] is True
    assert {"apgd_ce", "apgd_t", "fab_t", "square"} <= set(REQUIRED_ATTACKS)
    # without square's row for image 5, the common images are 0..4: none of them survives
    r = worst_case(df.drop(index=len(df) - 7), 0.1)
    assert (r["n"], r["robust_accuracy"], r["natural_accuracy"]) == (5, 0.0, 3 / 5)
    # only pgd_ce ran at 0.3: not complete; every correct image broken
    r = worst_case(df, 0.3)
    assert (r["n"], r["robust_accuracy"], r["attacks"], r["complete"]) == (
        6, 0.0, "pgd_ce", False)
    assert worst_case(df, 0.3, required=("pgd_ce",))["complete"] is True
    r = worst_case(df, 0.2)
    assert r["n"] == 0 and math.isnan(r["robust_accuracy"]) and r["complete"] is False
    # a success where the attack did not run is not counted
    rows2 = [_row("pgd_ce", 0.1, 0, 1, 1, attacked=0), _row("square", 0.1, 0, 1, 0)]
    assert worst_case(pd.DataFrame(rows2), 0.1, required=())["robust_accuracy"] == 1.0
    # rows of two models disagree on correctness
    bad = pd.DataFrame([_row("pgd_ce", 0.1, 0, 1, 0), _row("square", 0.1, 0, 0, 0)])
    with pytest.raises(ValueError, match="more than one model"):
        worst_case(bad, 0.1)
    with pytest.raises(ValueError, match="margin"):
        worst_case(df.drop(columns="margin"), 0.1)


def test_read_outcomes_round_trip(tmp_path):
    model, x, y = _mlp_and_data(n=8)
    a = attack_outcomes(model, x, y, torch.arange(8) * 3, "fgsm", [0.0, 0.1])
    b = attack_outcomes(model, x, y, torch.arange(8) * 3, "bim", [0.1],
                        {"steps": 2, "step_size": 0.05})
    write_csv(tmp_path / "a.csv", a, list(OUTCOME_COLUMNS))
    write_csv(tmp_path / "b.csv", b, list(OUTCOME_COLUMNS))
    df = read_outcomes([tmp_path / "a.csv", str(tmp_path / "b.csv")])
    assert list(df.columns) == list(OUTCOME_COLUMNS) and len(df) == 24
    assert df.to_dict("records") == a + b  # floats survive the CSV exactly
    assert df["index"].dtype == "int64" and df["margin"].dtype == "float64"
    assert read_outcomes(tmp_path / "a.csv").to_dict("records") == a
    empty = read_outcomes([])
    assert list(empty.columns) == list(OUTCOME_COLUMNS) and len(empty) == 0
    pd.DataFrame({"attack": ["x"], "eps": [0.1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="bad.csv.*index"):
        read_outcomes(tmp_path / "bad.csv")


# --------------------------------------------------------------------------- AutoAttack


def test_cascade_outcomes_rows_by_hand():
    result = dict(eps=0.1, stages=("apgd-ce", "square"),
                  clean_correct=torch.tensor([True, True, False, True]),
                  broken_by=torch.tensor([0, -1, -1, 1]),
                  margins=torch.tensor([[-1.0, 2.0, -3.0, 4.0], [-1.0, 5.0, -3.0, -6.0]],
                                       dtype=torch.float64))
    rows = cascade_outcomes(result, [10, 11, 12, 13], torch.tensor([1, 2, 3, 4]))
    assert [list(r) for r in rows] == [list(OUTCOME_COLUMNS)] * 8
    got = [(r["attack"], r["index"], r["label"], r["correct"], r["attacked"], r["success"],
            r["margin"]) for r in rows]
    assert got == [("apgd-ce", 10, 1, 1, 1, 1, -1.0), ("apgd-ce", 11, 2, 1, 1, 0, 2.0),
                   ("apgd-ce", 12, 3, 0, 0, 0, -3.0), ("apgd-ce", 13, 4, 1, 1, 0, 4.0),
                   ("square", 10, 1, 1, 0, 0, -1.0), ("square", 11, 2, 1, 1, 0, 5.0),
                   ("square", 12, 3, 0, 0, 0, -3.0), ("square", 13, 4, 1, 1, 1, -6.0)]
    with pytest.raises(ValueError, match="per_image"):
        cascade_outcomes({"eps": 0.1}, [0], [0])


def test_autoattack_per_image_agrees_with_its_accuracies():
    pytest.importorskip("torchattacks")
    model = _masked_sum_model()
    x, _ = _near_boundary_images(12)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::5] = 1 - y[::5]  # misclassified ones
    settings = dict(attacks=("apgd-ce", "square"), apgd_steps=3, square_queries=10,
                    n_target_classes=1, n_classes=2)
    plain = autoattack_eval(model, x, y, 0.02, **settings)
    res = autoattack_eval(model, x, y, 0.02, per_image=True, **settings)
    assert {k: v for k, v in plain.items() if k != "time_s"} == {
        k: v for k, v in res.items() if k in plain and k != "time_s"}
    rows = cascade_outcomes(res, torch.arange(12) + 100, y)
    assert len(rows) == 24 and rows[0]["eps"] == 0.02
    df = pd.DataFrame(rows)
    correct = df[df.attack == "apgd-ce"]["correct"]
    assert correct.sum() / 12 == res["clean_acc"]
    left = int(correct.sum())
    for name in settings["attacks"]:
        stage = df[df.attack == name]
        assert (stage["success"] <= stage["attacked"]).all()
        assert stage["attacked"].sum() == left  # each stage attacks what is still robust
        assert stage["success"].sum() > 0  # each stage breaks some (Square: masked ones)
        left -= int(stage["success"].sum())
        assert left / 12 == res[f"{name}_acc"]
        assert ((stage["margin"] <= 0) == (stage["success"] == 1))[stage["attacked"] == 1].all()
    assert 0 < left < res["clean_acc"] * 12  # the cascade broke some, not all
    assert worst_case(df, 0.02, required=())["robust_accuracy"] == res["aa_acc"]


def test_evaluate_checkpoint_writes_pgd_and_cascade_rows(tmp_path, monkeypatch):
    pytest.importorskip("torchattacks")
    model = _sum_model()
    x, y = _near_boundary_images(30)
    x[::2] = (x[::2] - 0.5) * 20 + 0.5
    monkeypatch.setattr(checkpoint_eval, "load_variant", lambda folder, split: (x, y))
    monkeypatch.setattr(checkpoint_eval, "load_model", lambda path, map_location: model)
    ckpts = tmp_path / "checkpoints.csv"
    ckpts.write_text("epoch,step,file\n1,10,checkpoints/e1.pt\n2,20,checkpoints/e2.pt\n")
    pgd_spec = {"kind": "pgd", "eps": [0.1], "steps": 3, "step_size": 0.05, "n_examples": 300}
    aa = dict(attacks=["apgd-ce", "square"], apgd_steps=3, square_queries=10,
              n_target_classes=1, n_classes=2, n_examples=8, seed=5)
    logs = []
    row, rows = checkpoint_eval.evaluate_checkpoint(
        str(ckpts), str(tmp_path / "checkpoints"), str(tmp_path / "test.pt"), dataset="mnist",
        recipe="r", seed=42, epoch=2, eps=0.05, pgd=pgd_spec, autoattack=aa, subset_seed=7,
        device=torch.device("cpu"), log=logs.append, pgd_name="pgd20_s1")
    index = eval_subset(30, 8, 7)  # the shared subset, not the cascade's seed 5
    assert (row["step"], row["n_examples"], row["subset_seed"]) == (20, 8, 7)
    df = pd.DataFrame(rows)
    assert list(df.columns) == list(OUTCOME_COLUMNS)
    assert list(df["attack"].unique()) == ["pgd20_s1", "apgd-ce", "square"]
    for name, g in df.groupby("attack"):
        assert g["index"].tolist() == index.tolist() and g["label"].tolist() == y[index].tolist()
    pgd_rows = df[df.attack == "pgd20_s1"]
    assert pgd_rows["correct"].mean() == row["clean_acc"]
    assert (pgd_rows["correct"].sum() - pgd_rows["success"].sum()) / 8 == row["pgd_acc"]
    assert 0 < row["pgd_acc"] < row["clean_acc"]  # the attack broke some, not all
    assert worst_case(df[df.attack != "pgd20_s1"], 0.05, required=())["robust_accuracy"] == \
        row["aa_acc"]


def test_settled_images_are_those_a_study_broke_or_does_not_cover():
    """evaluate_model leaves to the studies' attacks the images one of them broke, and those
    outside the images every study attack covers (the worst case's images)."""
    from curvrobust.evaluation.robustness import settled_images

    rows = [_row("fgsm_paper", 0.1, i, 1, int(i == 2)) for i in range(6)]
    rows += [_row("apgd-ce", 0.1, i, 1, int(i == 3)) for i in range(4)]   # covers 0..3
    rows += [_row("fgsm_paper", 0.2, i, 1, 1) for i in range(6)]          # another ε
    study = pd.DataFrame(rows)
    index = torch.tensor([0, 1, 2, 3, 4, 5, 9])
    assert settled_images(study, index, 0.1).tolist() == [False, False, True, True, True,
                                                          True, True]
    assert settled_images(study, index, 0.3).tolist() == [False] * 7
    assert settled_images(None, index, 0.1).tolist() == [False] * 7


def test_adopted_cascade_is_the_study_cascades_survivors_with_their_margins():
    """A study's standard AutoAttack cascade at ε: its survivors (attacked by all four stages,
    broken by none) stand for the suite's AutoAttack and Square stages, each with that stage's
    margin; an image a stage broke, one outside the rows, another ε, or rows missing a stage
    give no adopted outcome."""
    from curvrobust.evaluation.robustness import CASCADE_STAGES, adopted_cascade

    rows = []
    for k, name in enumerate(CASCADE_STAGES):
        rows += [dict(_row(name, 0.1, 0, 1, 0), margin=1.0 + k),        # survived all four
                 dict(_row(name, 0.1, 1, 1, int(k == 1)), margin=-1.0),  # apgd-t broke it
                 dict(_row(name, 0.1, 2, 0, 0), margin=-2.0)]           # clean-wrong
        if k > 1:
            rows[-2]["attacked"] = 0  # later stages leave a broken image alone
    rows += [_row("pgd20_s1", 0.1, i, 1, 0) for i in range(3)]
    study = pd.DataFrame(rows)
    index = torch.tensor([2, 0, 1, 7])
    out = adopted_cascade(study, index, 0.1)
    assert sorted(out) == sorted(CASCADE_STAGES.values())
    for k, name in enumerate(CASCADE_STAGES):
        mask, margin = out[CASCADE_STAGES[name]]
        assert mask.tolist() == [False, True, False, False]
        assert margin[1].item() == 1.0 + k
    assert adopted_cascade(study, index, 0.2) == {}
    assert adopted_cascade(study[study.attack != "fab-t"], index, 0.1) == {}
    assert adopted_cascade(None, index, 0.1) == {}
    with pytest.raises(ValueError, match="several rows per image for apgd-ce"):
        adopted_cascade(pd.concat([study, study[study.attack == "apgd-ce"]]), index, 0.1)
