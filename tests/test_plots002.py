"""Study 002 figures: each builds a Figure from small synthetic inputs and saves PDF + PNG;
the indicator scatter's statistics against scipy, the Jacobian rows against a min–max
normalisation done here, the decision boundary drawn where g changes sign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from curvrobust.reports import plots
from curvrobust.curvature.surfaces import grid


def _saved(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    pdf, png = tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"
    plots.save_figure(fig, pdf, png, dpi=60)
    assert pdf.stat().st_size > 1024 and png.stat().st_size > 1024
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"


def _surface(al, be, tilt):
    A, B = np.meshgrid(al, be, indexing="ij")
    return 1.0 - tilt * A + 0.3 * B ** 2  # g = 0 crosses the slice where tilt·α ≈ 1


def _boundary_lines(ax):
    """Black line collections drawn on a contour axis (the g = 0 boundary)."""
    out = []
    for c in ax.collections:
        colors = np.atleast_2d(c.get_edgecolor()) if hasattr(c, "get_edgecolor") else []
        lw = np.atleast_1d(c.get_linewidth())
        if len(colors) and np.allclose(colors[0][:3], 0) and lw.max() >= 2.0:
            out.append(c)
    return out


def test_surface_figure_margin_and_loss(tmp_path):
    al, be = grid(1.0, 21).numpy(), grid(0.5, 11).numpy()
    panels = [{"label": "natural", "alphas": al, "betas": be, "Z": _surface(al, be, 3.0),
               "direction": "ce_ascent"},
              {"label": "ours", "alphas": torch.as_tensor(al), "betas": be,
               "Z": torch.as_tensor(_surface(al, be, 0.2)), "direction": "ce_ascent"}]
    fig = plots.surface_figure(panels, value="margin", title="decision surfaces")
    axes3d = [ax for ax in fig.axes if ax.name == "3d"]
    flat = [ax for ax in fig.axes if ax.name != "3d" and ax.get_label() != "<colorbar>"]
    assert len(axes3d) == 2 and len(flat) == 2
    # the natural model's slice crosses g = 0 (boundary drawn), the flat one's does not
    assert _boundary_lines(flat[0]) and not _boundary_lines(flat[1])
    # origin marked on each contour map
    for ax in flat:
        assert any(np.allclose(line.get_xydata(), [[0.0, 0.0]]) for line in ax.get_lines())
    _saved(fig, tmp_path, "surf_margin")
    fig = plots.surface_figure(panels, value="loss", share_scale=False)
    assert not any(_boundary_lines(ax) for ax in fig.axes if ax.name != "3d")
    _saved(fig, tmp_path, "surf_loss")
    with pytest.raises(ValueError, match="value"):
        plots.surface_figure(panels, value="hessian")
    with pytest.raises(ValueError, match="shape"):
        plots.surface_figure([dict(panels[0], Z=np.zeros((3, 3)))])


def test_loss_vs_decision_figure(tmp_path):
    al, be = grid(1.0, 21).numpy(), grid(1.0, 21).numpy()
    kinds = ["random", "ce_ascent", "ll_descent", "cw_ascent"]
    margin = np.stack([_surface(al, be, t) for t in (0.5, 2.0, 4.0, 8.0)])
    loss = np.log1p(np.exp(-margin))
    fig = plots.loss_vs_decision_figure(al, be, loss, margin, kinds, title="image 0")
    grid_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid_axes) == 8
    # the first crossing along +α at β = 0 is marked for the adversarial columns only
    crossings = {}
    for ax in grid_axes:
        for line in ax.get_lines():
            if line.get_marker() == "^":
                crossings.setdefault(ax.get_title() or id(ax), []).append(line.get_xdata()[0])
    expected = {t: al[np.flatnonzero((al > 0) & (1.0 - t * al < 0))[0]] for t in (2.0, 4.0, 8.0)}
    xs = sorted(x for v in crossings.values() for x in v)
    assert xs == sorted(list(expected.values()) * 2)  # loss and margin rows
    _saved(fig, tmp_path, "loss_vs_decision")
    with pytest.raises(ValueError, match="shape"):
        plots.loss_vs_decision_figure(al, be, loss[:3], margin, kinds)


@pytest.mark.parametrize("channels", [1, 3])
def test_jacobian_images_figure(tmp_path, channels):
    rng = np.random.default_rng(channels)
    images = rng.random((4, channels, 8, 8))
    grads = {"natural": rng.normal(size=(4, channels, 8, 8)),
             "ours": torch.as_tensor(rng.normal(size=(4, channels, 8, 8)) * 1e-3)}
    fig = plots.jacobian_images_figure(images, grads, labels=[0, 1, 2, 3])
    axes = np.array(fig.axes).reshape(3, 4)
    for row, g in ((1, grads["natural"]), (2, np.asarray(grads["ours"]))):
        for j in range(4):
            shown = np.asarray(axes[row, j].images[0].get_array())
            gj = g[j]
            ref = (gj - gj.min()) / (gj.max() - gj.min())
            ref = ref[0] if channels == 1 else np.transpose(ref, (1, 2, 0))
            np.testing.assert_allclose(shown, ref, atol=1e-12)
            assert shown.min() == 0.0 and shown.max() == 1.0
    np.testing.assert_allclose(np.asarray(axes[0, 1].images[0].get_array()),
                               images[1, 0] if channels == 1 else images[1].transpose(1, 2, 0))
    _saved(fig, tmp_path, f"jac{channels}")
    with pytest.raises(ValueError, match="channels"):
        plots.jacobian_images_figure(rng.random((2, 2, 4, 4)), {"m": rng.random((2, 2, 4, 4))})
    with pytest.raises(ValueError, match="shape"):
        plots.jacobian_images_figure(images, {"m": rng.random((3, channels, 8, 8))})


def test_normalize_per_image_constant_and_range():
    a = np.stack([np.full((1, 2, 2), 3.0), np.arange(4.0).reshape(1, 2, 2) - 7])
    out = plots.normalize_per_image(a)
    assert np.all(out[0] == 0.5)
    np.testing.assert_allclose(out[1].ravel(), [0, 1 / 3, 2 / 3, 1])


def _acc_frame():
    rng = np.random.default_rng(0)
    rows = []
    for ds in ("mnist", "cifar10"):
        for regime in ("natural", "ours", "minmax"):
            for seed in range(3):
                for eps in (0.0, 0.1, 0.2, 0.3):
                    for attack in ("pgd", "cw"):
                        for step in (0.01, 0.1, 1.0):
                            rows.append({"dataset": ds, "regime": regime, "seed": seed,
                                         "eps": eps, "attack": attack, "step_size": step,
                                         "accuracy": float(np.clip(1 - eps * rng.uniform(1, 3),
                                                                   0, 1))})
    return pd.DataFrame(rows)


def test_accuracy_curve_and_step_sweep(tmp_path):
    df = _acc_frame()
    pgd = df[(df.attack == "pgd") & (df.step_size == 0.1)]
    fig = plots.accuracy_curve_figure(pgd, title="PGD")
    assert len(fig.axes) == 2
    assert sum(ax.get_legend() is not None for ax in fig.axes) == 1
    # the plotted line of one regime is the mean over seeds
    ax = fig.axes[0]
    means = pgd[(pgd.dataset == "mnist") & (pgd.regime == "natural")].groupby("eps")["accuracy"].mean()
    ys = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == 4]
    assert any(np.allclose(y, means.to_numpy()) for y in ys)
    _saved(fig, tmp_path, "acc_curve")
    fig = plots.step_sweep_figure(df, eps=0.2)
    assert all(ax.get_xscale() == "log" for ax in fig.axes if ax.get_label() != "<colorbar>")
    assert "0.2" in fig.axes[0].get_title()
    _saved(fig, tmp_path, "step_sweep")
    with pytest.raises(ValueError, match="eps"):
        plots.step_sweep_figure(df)  # several ε in one panel
    with pytest.raises(ValueError, match="column"):
        plots.accuracy_curve_figure(pgd, y="nope")


def test_indicator_scatter_stats_match_scipy(tmp_path):
    rng = np.random.default_rng(3)
    n = 14
    grad = np.exp(rng.normal(size=n))
    df = pd.DataFrame({
        "study": ["000"] * 7 + ["002"] * 7,
        "dataset": ["mnist", "cifar10"] * 7,
        "grad_l2_mean": grad,
        "hess_top_eig_mean": np.exp(rng.normal(size=n)),
        "pgd_accuracy": 1 / (1 + grad) + rng.normal(scale=0.05, size=n),
    })
    df.loc[3, "hess_top_eig_mean"] = np.nan  # dropped from that panel only
    fig, stats = plots.indicator_scatter_figure(df, title="indicator")
    assert set(stats) == {"grad_l2_mean", "hess_top_eig_mean"}
    for col in stats:
        ok = df[col].notna()
        ref = spearmanr(df.loc[ok, col], df.loc[ok, "pgd_accuracy"])
        assert stats[col]["n"] == int(ok.sum())
        assert stats[col]["rho"] == pytest.approx(ref.statistic, abs=1e-12)
        assert stats[col]["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert stats["grad_l2_mean"]["n"] == n and stats["hess_top_eig_mean"]["n"] == n - 1
    assert stats["grad_l2_mean"]["rho"] < -0.5  # built to anti-correlate
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    assert f"{stats['grad_l2_mean']['rho']:.3f}" in axes[0].get_title()
    _saved(fig, tmp_path, "indicator")
    fig, one = plots.indicator_scatter_figure(df, x="grad_l2_mean", hue=None, style=None)
    assert list(one) == ["grad_l2_mean"] and one["grad_l2_mean"] == stats["grad_l2_mean"]
    _saved(fig, tmp_path, "indicator_one")
