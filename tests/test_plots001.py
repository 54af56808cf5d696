"""Study 001 figures: the power-iteration convergence panels (one per method × k, one line per
batch, the data drawn as given) and the epoch curves through accuracy_curve_figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from curvrobust.reports import plots


def _trace() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for method in ("fd", "exact"):
        for k in (1, 5):
            for batch in range(3):
                for i in range(1, k + 1):
                    rows.append(dict(method=method, k=k, batch=batch, iteration=i,
                                     diff_mean=float(np.sqrt(2) * 0.5 ** (i - 1)
                                                     + 0.01 * rng.random())))
    return pd.DataFrame(rows)


def test_power_iteration_figure_draws_every_batch(tmp_path):
    df = _trace()
    fig = plots.power_iteration_figure(df, title="t")
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 4                                   # 2 methods × 2 values of k
    ax = axes[1]                                            # fd, k = 5
    assert ax.get_title() == "fd, k = 5"
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 5]
    assert len(lines) == 3                                  # one per batch
    sub = df[(df.method == "fd") & (df.k == 5) & (df.batch == 0)].sort_values("iteration")
    np.testing.assert_allclose(lines[0].get_ydata(), sub["diff_mean"])
    refs = sorted(ln.get_ydata()[0] for ln in ax.get_lines() if len(ln.get_xdata()) == 2)
    assert refs == pytest.approx([np.sqrt(2), 2.0])          # the √2 and sign-flip marks
    pdf, png = tmp_path / "f.pdf", tmp_path / "f.png"
    plots.save_figure(fig, pdf, png, dpi=60)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.stat().st_size > 1024


def test_power_iteration_figure_errors():
    with pytest.raises(ValueError, match="iteration"):
        plots.power_iteration_figure(_trace().drop(columns="iteration"))
    with pytest.raises(ValueError, match="empty"):
        plots.power_iteration_figure(_trace().iloc[:0])


def test_epoch_curves_average_over_seeds():
    df = pd.DataFrame(dict(epoch=[1, 1, 2, 2] * 2, seed=[0, 1] * 4,
                           model=["HAAT"] * 4 + ["PGD-AT"] * 4,
                           accuracy=[10.0, 20.0, 30.0, 50.0, 1.0, 3.0, 5.0, 7.0]))
    fig = plots.accuracy_curve_figure(df, x="epoch", hue="model", col=None)
    means = {tuple(ln.get_ydata()) for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 2}
    assert (15.0, 40.0) in means and (2.0, 6.0) in means


def test_band_figures_are_identical_on_rerun(tmp_path):
    """seaborn bootstraps the 95 % bands over seeds; the figure must not change between reruns
    of the same results (it did before the bootstrap's seed was fixed)."""
    rng = np.random.default_rng(1)
    curves = pd.DataFrame([dict(label=lab, variant="clean", epoch=e, seed=s,
                                train_loss=float(rng.uniform(0.1, 1.0)),
                                test_acc=float(rng.uniform(0.8, 1.0)))
                           for lab in ("gn", "adam") for e in range(1, 4) for s in range(5)])
    acc = pd.DataFrame([dict(regime=r, dataset="mnist", eps=eps, seed=s,
                             accuracy=float(rng.uniform(0, 1)))
                        for r in ("natural", "ours") for eps in (0.1, 0.2) for s in range(5)])
    digests = []
    for i in range(2):
        for name, make in (("curves", lambda: plots.training_curves_figure(curves, ["gn", "adam"])),
                           ("acc", lambda: plots.accuracy_curve_figure(acc))):
            np.random.seed(i)   # the global generator must not matter either
            pdf, png = tmp_path / f"{name}{i}.pdf", tmp_path / f"{name}{i}.png"
            plots.save_figure(make(), pdf, png)
            digests.append((name, png.read_bytes(), pdf.read_bytes()))
    assert digests[0] == digests[2] and digests[1] == digests[3]
