"""Study 003 figures: input scale against the convergence of PGA and of adversarial training.
Lines are means over seeds with a Student-t 95 % band / error bar; the widths are checked
against tables.mean_ci on small hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from curvrobust import plots
from curvrobust.tables import mean_ci

SCALES = (0.25, 1.0, 4.0)


def _trace() -> pd.DataFrame:
    """Stages listed 'trained' first; scale 4 has a single seed; one NaN (scale 1, seed 1,
    iteration 2); stage 'init' holds a zero loss so its panel cannot be logarithmic."""
    rows = []
    for stage, base in (("trained", 10.0), ("init", 1.0)):
        for s in SCALES:
            for seed in ((0,) if s == 4.0 else (0, 1, 2)):
                for it in range(4):
                    v = base * s * (it + 1) + seed
                    if stage == "init" and s == 0.25 and seed == 0 and it == 0:
                        v = 0.0
                    if s == 1.0 and seed == 1 and it == 2:
                        v = np.nan
                    rows.append(dict(scale=s, stage=stage, seed=seed, iteration=it,
                                     loss_mean=v))
    df = pd.DataFrame(rows)
    # rows shuffled within each stage (the panel order is that of first appearance)
    return pd.concat([g.sample(frac=1.0, random_state=0)
                      for _, g in df.groupby("stage", sort=False)])


def _line_by_label(ax) -> dict[str, object]:
    return {ln.get_label(): ln for ln in ax.get_lines()}


def _band_halves(poly: PolyCollection, xs) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half-width) of a fill_between band at each x."""
    v = poly.get_paths()[0].vertices
    lo = np.array([v[np.isclose(v[:, 0], x), 1].min() for x in xs])
    hi = np.array([v[np.isclose(v[:, 0], x), 1].max() for x in xs])
    return (lo + hi) / 2, (hi - lo) / 2


def _bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_pga_loss_curve_panels_lines_and_bands(tmp_path):
    df = _trace()
    fig = plots.pga_loss_curve_figure(df, title="PGA")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["trained", "init"]
    for ax in fig.axes:
        lines = _line_by_label(ax)
        assert sorted(lines) == ["s = 0.25", "s = 1", "s = 4"]
        assert len(ax.get_lines()) == len(SCALES)
        assert len(_bands(ax)) == 2                              # the single-seed scale: none
    trained, init = fig.axes
    # the mean skips the NaN: at iteration 2 only seeds 0 and 2 of scale 1 count
    y = _line_by_label(trained)["s = 1"].get_ydata()
    np.testing.assert_allclose(y, [10 * 1 * (it + 1) + 1.0 for it in range(4)])
    np.testing.assert_allclose(_line_by_label(trained)["s = 4"].get_ydata(),
                               [40.0, 80.0, 120.0, 160.0])
    # the band of scale 0.25 is mean ± tables.mean_ci over the three seeds
    band = _bands(trained)[0]
    centre, half = _band_halves(band, range(4))
    for it in range(4):
        vals = [10 * 0.25 * (it + 1) + seed for seed in (0, 1, 2)]
        m, h = mean_ci(vals)
        assert centre[it] == pytest.approx(m) and half[it] == pytest.approx(h)
    # the band of scale 1 at iteration 2 uses the two finite seeds
    _, half1 = _band_halves(_bands(trained)[1], range(4))
    assert half1[2] == pytest.approx(mean_ci([10 * 3 + 0.0, 10 * 3 + 2.0])[1])
    assert trained.get_yscale() == "log" and init.get_yscale() == "linear"
    assert trained.get_ylim()[1] > init.get_ylim()[1]            # y not shared
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == ["s = 0.25", "s = 1", "s = 4"]
    pdf, png = tmp_path / "f.pdf", tmp_path / "f.png"
    plots.save_figure(fig, pdf, png, dpi=60)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1024
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pga_loss_curve_sequential_colours_follow_scale():
    fig = plots.pga_loss_curve_figure(_trace())
    first, last = fig.axes
    for label, ln in _line_by_label(first).items():
        assert ln.get_color() == _line_by_label(last)[label].get_color()
    lum = [np.dot(_line_by_label(first)[f"s = {s:g}"].get_color()[:3], [0.299, 0.587, 0.114])
           for s in SCALES]
    assert lum == sorted(lum)                                    # viridis: darker → lighter


def test_pga_loss_curve_errors():
    with pytest.raises(ValueError, match="iteration"):
        plots.pga_loss_curve_figure(_trace().drop(columns="iteration"))
    with pytest.raises(ValueError, match="loss_max"):
        plots.pga_loss_curve_figure(_trace(), y="loss_max")
    with pytest.raises(ValueError, match="no finite"):
        plots.pga_loss_curve_figure(_trace().assign(loss_mean=np.nan))


def _summary() -> pd.DataFrame:
    rows = []
    for stage, k in (("init", 1.0), ("trained", 3.0)):
        for s in (0.5, 1.0, 2.0, 4.0):
            for seed in range(3):
                rows.append(dict(scale=s, stage=stage, seed=seed,
                                 iters=k * s * 10 + seed ** 2, n_max=k + seed))
    df = pd.DataFrame(rows)
    # scale 4 of 'trained': only seed 0 is finite → a point without an error bar
    df.loc[(df.stage == "trained") & (df.scale == 4.0) & (df.seed > 0), "iters"] = np.nan
    return df


def test_scale_metric_figure_means_and_error_bars():
    df = _summary()
    fig = plots.scale_metric_figure(df, {"iters": "iterations to tolerance",
                                         "n_max": "local maxima"}, title="t")
    assert len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["iterations to tolerance", "local maxima"]
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
        assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 2
    ax = fig.axes[0]
    bars = {c.get_label(): c for c in ax.containers}
    assert set(bars) == {"init", "trained"}
    for stage, k in (("init", 1.0), ("trained", 3.0)):
        data_line, _, (vlines,) = bars[stage].lines
        np.testing.assert_allclose(data_line.get_xdata(), [0.5, 1.0, 2.0, 4.0])
        segs = vlines.get_segments()
        assert len(segs) == 4
        for s, y, seg in zip((0.5, 1.0, 2.0, 4.0), data_line.get_ydata(), segs):
            vals = [k * s * 10 + seed ** 2 for seed in range(3)]
            if stage == "trained" and s == 4.0:
                assert y == pytest.approx(vals[0])
                assert seg.size == 0 or np.isnan(seg).all()      # no error bar for one seed
                continue
            m, h = mean_ci(vals)
            assert y == pytest.approx(m)
            assert (seg[1, 1] - seg[0, 1]) / 2 == pytest.approx(h)
            assert seg[:, 1].mean() == pytest.approx(m)
    legends = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == ["init", "trained"]


def test_scale_metric_figure_errors():
    with pytest.raises(ValueError, match="spread"):
        plots.scale_metric_figure(_summary(), {"iters": "it", "spread": "sp"})
    with pytest.raises(ValueError, match="model"):
        plots.scale_metric_figure(_summary(), {"iters": "it"}, hue="model")
    with pytest.raises(ValueError, match="scale"):
        plots.scale_metric_figure(_summary().assign(scale=0.0), {"iters": "it"})
    with pytest.raises(ValueError, match="metrics"):
        plots.scale_metric_figure(_summary(), {})


def _training() -> tuple[pd.DataFrame, pd.DataFrame]:
    epochs, steps = [], []
    for s in (4.0, 0.25, 1.0):                                   # unsorted on purpose
        for seed in (0, 1):
            for ep in range(1, 4):
                epochs.append(dict(scale=s, seed=seed, epoch=ep,
                                   robust_train_loss=s / ep + 0.1 * seed,
                                   robust_test_acc=0.3 + 0.1 * ep + 0.01 * seed,
                                   test_acc=0.5 + 0.1 * ep - 0.01 * seed))
            for st in range(10):
                steps.append(dict(scale=s, seed=seed, step=st,
                                  robust_batch_loss=s * np.exp(-st / 5) + 0.05 * seed))
    return pd.DataFrame(epochs), pd.DataFrame(steps)


def test_adversarial_training_figure_panels():
    epochs, steps = _training()
    fig = plots.adversarial_training_figure(epochs, steps, initial_steps=5, title="AT")
    assert len(fig.axes) == 3
    a, b, c = fig.axes
    assert len(a.get_lines()) == 3 and len(b.get_lines()) == 3 and len(c.get_lines()) == 6
    for ax in (a, b, c):
        assert len(_bands(ax)) == len(ax.get_lines())           # two seeds: every line banded
    for ln in a.get_lines():
        np.testing.assert_array_equal(ln.get_xdata(), np.arange(6))   # steps ≤ 5 only
    assert a.get_yscale() == "log" and b.get_yscale() == "log" and c.get_yscale() == "linear"
    # colours: ascending scales, identical across panels
    colours = [tuple(ln.get_color()) for ln in b.get_lines()]
    assert len(set(colours)) == 3
    assert [tuple(ln.get_color()) for ln in a.get_lines()] == colours
    dashed = [ln for ln in c.get_lines() if ln.get_linestyle() == "--"]
    solid = [ln for ln in c.get_lines() if ln.get_linestyle() == "-"]
    assert len(dashed) == len(solid) == 3
    assert [tuple(ln.get_color()) for ln in solid] == colours
    np.testing.assert_allclose(b.get_lines()[0].get_ydata(),
                               [0.25 / ep + 0.05 for ep in (1, 2, 3)])   # scale 0.25 first
    np.testing.assert_allclose(dashed[0].get_ydata(), [0.5 + 0.1 * ep - 0.005 for ep in (1, 2, 3)])
    _, half = _band_halves(_bands(b)[0], [1, 2, 3])
    for ep, h in zip((1, 2, 3), half):
        assert h == pytest.approx(mean_ci([0.25 / ep, 0.25 / ep + 0.1])[1])
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == [
        "s = 0.25", "s = 1", "s = 4", "robust", "clean"]
    full = plots.adversarial_training_figure(epochs, steps)
    assert full.axes[0].get_lines()[0].get_xdata().max() == 9


def test_adversarial_training_figure_errors():
    epochs, steps = _training()
    with pytest.raises(ValueError, match="test_acc"):
        plots.adversarial_training_figure(epochs.drop(columns="test_acc"), steps)
    with pytest.raises(ValueError, match="robust_batch_loss"):
        plots.adversarial_training_figure(epochs, steps.drop(columns="robust_batch_loss"))
    with pytest.raises(ValueError, match="initial_steps"):
        plots.adversarial_training_figure(epochs, steps, initial_steps=-1)
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.adversarial_training_figure(epochs, steps.assign(step=steps.step + 100),
                                          initial_steps=5)
