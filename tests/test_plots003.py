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

from curvrobust.reports import plots
from curvrobust.reports.tables import mean_ci

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

