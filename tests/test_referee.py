"""The independent referee (curvrobust.evaluation.referee): the official AutoAttack (``pyautoattack``, the
authors' fra31/auto-attack, no torchattacks code) against the project's worst case.

The model is a small CNN trained here for about a second on SYNTHETIC test data: ten classes of
1×12×12 images, each a smooth random class pattern plus Gaussian noise, clipped to [0, 1]. Not
a real data set, but a real trained classifier with a spread of margins — enough for a referee
test, which only compares two attacks on the same model and images.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from curvrobust.evaluation.referee import compare_robust, official_autoattack

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

N_CLASSES = 10
N_IMAGES = 200
NOISE = 0.25
# About 25 % of the 200 images stay robust under the project's worst case at EPS. The old suite
# (PGD, margin PGD and Square only) called 5 of them robust that the official APGD-T breaks.
EPS = 0.1


def _official():
    return pytest.importorskip(
        "pyautoattack", reason="pyautoattack (the official AutoAttack) is not installed: "
        "pip install --no-deps pyautoattack==0.2.0")


def _sample(n: int, g: torch.Generator, patterns: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, N_CLASSES, (n,), generator=g)
    x = (patterns[labels] + NOISE * torch.randn(n, 1, 12, 12, generator=g)).clamp(0, 1)
    return x, labels


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, 200 fresh float32 test images, their labels)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    patterns = nn.functional.interpolate(torch.rand(N_CLASSES, 1, 6, 6, generator=g), size=12,
                                         mode="bilinear", align_corners=False)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 24), nn.ReLU(),
                          nn.Linear(24, N_CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        xb, yb = _sample(128, g, patterns)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    x, y = _sample(N_IMAGES, g, patterns)
    return model, x, y


def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1) == y


def test_tiny_eps_keeps_every_correct_image_and_no_wrong_one(trained):
    _official()
    model, x, y = trained
    x, y = x[:24], y[:24].clone()
    y[::6] = (y[::6] + 1) % N_CLASSES  # four images misclassified by construction
    correct = _correct(model, x, y)
    robust = official_autoattack(model, x, y, 1e-4, batch_size=64)
    assert robust.dtype == torch.bool and robust.shape == (24,) and robust.device.type == "cpu"
    assert not (robust & ~correct).any()  # robust implies clean-correct
    assert int(correct.sum()) - int(robust.sum()) <= 1
    assert not robust[::6].any()


def test_large_eps_breaks_everything_leaves_rng_and_mode(trained):
    _official()
    model, x, y = trained
    assert _correct(model, x, y).float().mean() > 0.9
    model.train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    robust = official_autoattack(model, x, y, 0.5, seed=7)
    assert torch.equal(torch.rand(3), expected)  # the caller's RNG stream is untouched
    assert model.training  # its mode is restored
    model.eval()
    assert robust.shape == (N_IMAGES,) and not robust.any()


def test_official_autoattack_rejects_bad_inputs(trained):
    _official()
    model, x, y = trained
    with pytest.raises(ValueError, match="eps"):
        official_autoattack(model, x, y, 0.0)
    with pytest.raises(ValueError, match="version"):
        official_autoattack(model, x, y, 0.1, version="custom")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        official_autoattack(model, x * 2, y, 0.1)


def test_compare_robust_counts_both_disagreements():
    out = compare_robust(torch.tensor([True, True, False, False, True]),
                         [True, False, True, False, True], torch.tensor([10, 11, 12, 13, 14]))
    assert out == {"n": 5, "project_robust": 3, "official_robust": 3, "project_only": 1,
                   "project_only_indices": [11], "official_only": 1,
                   "official_only_indices": [12]}
    with pytest.raises(ValueError, match="length 5"):
        compare_robust([True], [True], range(5))


def test_official_autoattack_breaks_at_most_two_images_the_project_calls_robust(trained):
    """The referee: the project's worst case (curvrobust.evaluation.masking.robust_suite at its default
    settings) may not call robust more than 2 of 200 images that the official AutoAttack
    breaks."""
    _official()
    from curvrobust.evaluation.masking import robust_suite
    from curvrobust.evaluation.outcomes import worst_case_images

    model, x, y = trained
    index = torch.arange(N_IMAGES)
    rows = robust_suite(model, x, y, index, EPS, settings={"batch_size": 500})
    worst = worst_case_images(pd.DataFrame(rows), EPS)
    assert worst["index"].tolist() == index.tolist()
    project = worst["robust"].to_numpy().astype(bool)
    assert 0.2 <= project.mean() <= 0.6  # partly robust: the comparison has something to say
    official = official_autoattack(model, x, y, EPS)
    assert not (official & ~_correct(model, x, y)).any()
    cmp = compare_robust(project, official, worst["index"])
    assert cmp["project_only"] <= 2, cmp
