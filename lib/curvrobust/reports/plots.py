"""Figures with seaborn; every figure is written as PDF and PNG."""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from curvrobust.utils import atomic_path  # noqa: E402


# seaborn's 95 % bands are bootstrap intervals over the seeds; without a fixed seed each rerun
# drew other resamples, so the same results gave a figure with other pixels
BAND_SEED = 0


def save_figure(fig: plt.Figure, pdf: str | os.PathLike, png: str | os.PathLike,
                dpi: int = 150) -> None:
    """Save both formats atomically; PDF metadata carries no date so reruns compare equal."""
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def distribution_figure(data: pd.DataFrame, value: str, xlabel: str, order: Sequence[str],
                        log_x: bool = False, title: str | None = None) -> plt.Figure:
    """Histograms of a per-example statistic, one panel per (variant × optimiser).

    `data` has columns label (optimiser), variant and `value`; the study's figures 2–3 put
    Adam and GN side by side, here every optimiser in the study gets a panel and a shared x
    axis so the distributions compare directly."""
    variants = list(dict.fromkeys(data["variant"]))
    order = [o for o in order if o in set(data["label"])]
    fig, axes = plt.subplots(len(variants), len(order), figsize=(3.2 * len(order),
                             2.6 * len(variants)), squeeze=False, sharex=True)
    vals = data[value].to_numpy(dtype=float)
    if log_x:
        pos = vals[vals > 0]
        lo, hi = (np.quantile(pos, 0.001), pos.max()) if pos.size else (1e-6, 1.0)
        binrange = (float(np.log10(lo)), float(np.log10(hi)))
    else:
        binrange = (float(np.quantile(vals, 0.001)), float(np.quantile(vals, 0.999)))
    palette = dict(zip(order, sns.color_palette("colorblind", len(order))))
    for i, variant in enumerate(variants):
        for j, label in enumerate(order):
            ax = axes[i][j]
            sub = data[(data["variant"] == variant) & (data["label"] == label)][value]
            sub = sub[sub > 0] if log_x else sub
            sns.histplot(x=sub.to_numpy(), bins=60, binrange=binrange, log_scale=log_x, ax=ax,
                         color=palette[label], stat="percent", element="step")
            med = float(np.median(sub)) if len(sub) else float("nan")
            ax.axvline(med, color="black", lw=0.8, ls="--")
            ax.set_title(f"{label} · {variant}\nmedian {med:.3g}", fontsize=9)
            ax.set_xlabel(xlabel if i == len(variants) - 1 else "")
            ax.set_ylabel("% of test images" if j == 0 else "")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_curves_figure(data: pd.DataFrame, order: Sequence[str]) -> plt.Figure:
    """Full-training-set loss and test accuracy against epoch, per optimiser and variant."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    sns.lineplot(data=data, x="epoch", y="train_loss", hue="label", style="variant",
                 hue_order=order, ax=axes[0], errorbar=("ci", 95), seed=BAND_SEED,
                 legend=False)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("train loss (whole set)")
    sns.lineplot(data=data, x="epoch", y="test_acc", hue="label", style="variant",
                 hue_order=order, ax=axes[1], errorbar=("ci", 95), seed=BAND_SEED)
    axes[1].set_ylabel("test accuracy")
    sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    return fig


# ============================================================================ study 002 figures
# Loss / decision surfaces in input space (figs 3, 4, 6, 9), Jacobian images (figs 8, 10, 15),
# accuracy over ε and step size, and the robustness-indicator scatter.

VALUE_LABELS = {"margin": "decision g = z_y − max_{j≠y} z_j", "loss": "CE loss"}
INDICATOR_LABELS = {"grad_l2_mean": "mean ‖∇ₓ g‖₂",
                    "hess_top_eig_mean": "mean top eigenvalue of ∇²ₓ CE"}


def _require_columns(df: pd.DataFrame, columns: Sequence[str | None]) -> None:
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"data frame lacks column(s) {missing}; it has {list(df.columns)}")


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def _surface_scale(zs: Sequence[np.ndarray], value: str) -> tuple[str, float, float]:
    """Colour map and limits shared by several surfaces: diverging and centred on g = 0 for
    the margin (so the boundary is the neutral colour), sequential for the loss."""
    lo = float(min(np.nanmin(z) for z in zs))
    hi = float(max(np.nanmax(z) for z in zs))
    if value == "margin":
        m = max(abs(lo), abs(hi), 1e-12)
        return "RdBu", -m, m
    return "viridis", lo, (hi if hi > lo else lo + 1e-12)


def _origin_index(axis: np.ndarray) -> int:
    return int(np.argmin(np.abs(axis)))


def _contour_panel(ax: plt.Axes, alphas: np.ndarray, betas: np.ndarray, z: np.ndarray,
                   cmap: str, vmin: float, vmax: float, boundary: np.ndarray | None):
    """Filled contour of z[a, b] over (α, β), the g = 0 line of ``boundary`` in bold black and
    the origin (the test image itself) as a star; returns the contour set for a colour bar."""
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    levels = np.linspace(vmin, vmax, 22)
    cs = ax.contourf(A, B, np.clip(z, vmin, vmax), levels=levels, cmap=cmap, extend="neither")
    if boundary is not None and np.nanmin(boundary) < 0 < np.nanmax(boundary):
        ax.contour(A, B, boundary, levels=[0.0], colors="black", linewidths=2.5)
    ax.plot(0.0, 0.0, marker="*", ms=13, color="gold", mec="black", mew=0.8, ls="none",
            zorder=5)
    return cs


def _surface_panel_data(i: int, p: dict) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Panel ``i`` checked (its keys, Z's shape): the panel and its α, β and Z as arrays."""
    missing = {"label", "alphas", "betas", "Z", "direction"} - set(p)
    if missing:
        raise ValueError(f"panel {i} lacks key(s) {sorted(missing)}")
    al, be, z = _as_numpy(p["alphas"]), _as_numpy(p["betas"]), _as_numpy(p["Z"])
    if z.shape != (al.size, be.size):
        raise ValueError(f"panel {i} ({p['label']!r}): Z has shape {z.shape}, expected "
                         f"(len(alphas), len(betas)) = {(al.size, be.size)}")
    return p, al, be, z


def _surface_3d(ax3: Any, p: dict, al: np.ndarray, be: np.ndarray, z: np.ndarray, value: str,
                cmap: Any, vmin: float, vmax: float, zlim: tuple[float, float] | None) -> None:
    """A panel's 3-D surface: the boundary g = 0 in bold black for margins, the test image
    (the origin) as a gold star, the z range ``zlim`` when the panels share one."""
    from matplotlib.ticker import MaxNLocator

    A, B = np.meshgrid(al, be, indexing="ij")
    ax3.computed_zorder = False  # else the surface hides the origin marker
    ax3.plot_surface(A, B, z, cmap=cmap, vmin=vmin, vmax=vmax, linewidth=0,
                     antialiased=False, rcount=min(al.size, 80), ccount=min(be.size, 80))
    if value == "margin" and np.nanmin(z) < 0 < np.nanmax(z):
        ax3.contour(A, B, z, levels=[0.0], colors="black", linewidths=2.0, offset=0.0)
    ia, ib = _origin_index(al), _origin_index(be)
    ax3.scatter([al[ia]], [be[ib]], [z[ia, ib]], color="gold", edgecolor="black", s=60,
                marker="*", depthshade=False, zorder=10)
    if zlim is not None:
        ax3.set_zlim(*zlim)
    ax3.set_xlabel(f"α ({p['direction']})", fontsize=8)
    ax3.set_ylabel(f"β ({p.get('direction2', 'random')})", fontsize=8)
    ax3.set_zlabel(value, fontsize=8)
    ax3.tick_params(labelsize=7)
    for axis in (ax3.xaxis, ax3.yaxis, ax3.zaxis):
        axis.set_major_locator(MaxNLocator(4))
    ax3.set_title(str(p["label"]), fontsize=10)


def surface_figure(panels: Sequence[dict], *, value: str = "margin", title: str | None = None,
                   share_scale: bool = True) -> plt.Figure:
    """One column per panel (e.g. natural vs robust model, study figs 3, 6, 9): a 3-D surface
    on top and its contour map below, the decision boundary g = 0 in bold black when
    ``value == 'margin'``, the test image (the origin) marked.

    Each panel is a dict with ``label``, ``alphas`` (A,), ``betas`` (B,), ``Z`` (A, B) with
    Z[a, b] the value at x + alphas[a]·d1 + betas[b]·d2, ``direction`` (the name of d1) and
    optionally ``direction2`` (the name of d2, default 'random'). ``share_scale``: one colour
    scale and z range for all panels, so flat and sharp surfaces compare at a glance."""
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3-D projection)

    if value not in VALUE_LABELS:
        raise ValueError(f"value must be 'margin' or 'loss', got value={value!r}")
    if not panels:
        raise ValueError("surface_figure needs at least one panel")
    data = [_surface_panel_data(i, p) for i, p in enumerate(panels)]
    n = len(data)
    fig = plt.figure(figsize=(4.2 * n, 8.0), layout="constrained")
    shared = _surface_scale([d[3] for d in data], value)
    z_lo = float(min(np.nanmin(d[3]) for d in data))
    z_hi = float(max(np.nanmax(d[3]) for d in data))
    z_hi = z_hi if z_hi > z_lo else z_lo + 1e-12
    for j, (p, al, be, z) in enumerate(data):
        cmap, vmin, vmax = shared if share_scale else _surface_scale([z], value)
        ax3 = fig.add_subplot(2, n, j + 1, projection="3d")
        _surface_3d(ax3, p, al, be, z, value, cmap, vmin, vmax,
                    (z_lo, z_hi) if share_scale else None)
        ax2 = fig.add_subplot(2, n, n + j + 1)
        cs = _contour_panel(ax2, al, be, z, cmap, vmin, vmax,
                            z if value == "margin" else None)
        ax2.set_xlabel(f"α ({p['direction']})")
        ax2.set_ylabel(f"β ({p.get('direction2', 'random')})")
        if not share_scale or j == n - 1:
            fig.colorbar(cs, ax=ax2, label=VALUE_LABELS[value], shrink=0.9, format="%.3g")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def loss_vs_decision_figure(alphas, betas, loss, margin, directions: Sequence[str], *,
                            direction2: str = "random", title: str | None = None,
                            mark_crossing: bool = True) -> plt.Figure:
    """Study fig 4 for one image: CE loss (top row) and decision function g (bottom row) on
    the slices x + α·d1 + β·d2, one column per first-axis direction kind. ``loss`` and
    ``margin`` have shape (K, A, B) for the K ``directions``. The boundary g = 0 is drawn in
    bold on both rows (on the loss row it shows where the loss surface hides the boundary).
    ``mark_crossing``: for the non-random directions, an arrow from the image to the first
    grid point along +α (β = 0) where g < 0, i.e. the step an attack along d1 needs."""
    al, be = _as_numpy(alphas), _as_numpy(betas)
    loss, margin = _as_numpy(loss), _as_numpy(margin)
    k = len(directions)
    for name, arr in (("loss", loss), ("margin", margin)):
        if arr.shape != (k, al.size, be.size):
            raise ValueError(f"{name} must have shape (len(directions), len(alphas), "
                             f"len(betas)) = {(k, al.size, be.size)}, got {arr.shape}")
    fig, axes = plt.subplots(2, k, figsize=(3.4 * k, 6.2), squeeze=False, layout="constrained")
    scales = {"loss": _surface_scale(list(loss), "loss"),
              "margin": _surface_scale(list(margin), "margin")}
    ib = _origin_index(be)
    for j, kind in enumerate(directions):
        for i, (value, arr) in enumerate((("loss", loss), ("margin", margin))):
            ax = axes[i][j]
            cmap, vmin, vmax = scales[value]
            cs = _contour_panel(ax, al, be, arr[j], cmap, vmin, vmax, margin[j])
            if mark_crossing and kind != "random":
                ahead = np.flatnonzero((al > 0) & (margin[j][:, ib] < 0))
                if ahead.size:
                    a_star = al[ahead[0]]
                    ax.annotate("", xy=(a_star, be[ib]), xytext=(0.0, be[ib]),
                                arrowprops=dict(arrowstyle="->", color="crimson", lw=1.8))
                    ax.plot(a_star, be[ib], marker="^", ms=9, color="crimson", mec="black",
                            ls="none", zorder=6)
            ax.set_xlabel(f"α ({kind})" if i == 1 else "")
            ax.set_ylabel(f"{VALUE_LABELS[value].split(' = ')[0]}\nβ ({direction2})"
                          if j == 0 else "")
            if i == 0:
                ax.set_title(str(kind), fontsize=10)
            if j == k - 1:
                fig.colorbar(cs, ax=ax, label=VALUE_LABELS[value], format="%.3g")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def normalize_per_image(t) -> np.ndarray:
    """Min–max scale every image of a (K, ...) array to [0, 1] (a constant image maps to 0.5),
    as the study does for its Jacobian pictures."""
    a = _as_numpy(t)
    flat = a.reshape(a.shape[0], -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1.0), 0.5)
    return out.reshape(a.shape)


def _to_display(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) → something imshow draws: (H, W) grey for C = 1, (H, W, 3) RGB for C = 3."""
    if img.shape[0] == 1:
        return img[0], "gray"
    if img.shape[0] == 3:
        return np.transpose(img, (1, 2, 0)), None
    raise ValueError(f"images must have 1 or 3 channels, got {img.shape[0]}")


def jacobian_images_figure(images, grads_by_model: dict, *, labels: Sequence | None = None,
                           title: str | None = None) -> plt.Figure:
    """Study figs 8, 10, 15: the input images (top row, values in [0, 1]) and, one row per
    model, the decision function's input gradient ∇ₓ g of each image min–max normalised to
    [0, 1] per image. ``images`` and every ``grads_by_model[label]`` have shape (K, C, H, W)
    with C = 1 (grey) or 3 (RGB); ``labels``: optional K column titles (e.g. the classes)."""
    imgs = _as_numpy(images)
    if imgs.ndim != 4:
        raise ValueError(f"images must have shape (K, C, H, W), got {imgs.shape}")
    if not grads_by_model:
        raise ValueError("grads_by_model is empty")
    grads = {}
    for name, g in grads_by_model.items():
        g = _as_numpy(g)
        if g.shape != imgs.shape:
            raise ValueError(f"gradients of {name!r} have shape {g.shape}, images {imgs.shape}")
        grads[name] = normalize_per_image(g)
    k = imgs.shape[0]
    if labels is not None and len(labels) != k:
        raise ValueError(f"labels has {len(labels)} entries for {k} images")
    rows = [("input", np.clip(imgs, 0.0, 1.0))] + list(grads.items())
    fig, axes = plt.subplots(len(rows), k, figsize=(1.5 * k, 1.6 * len(rows)), squeeze=False)
    for i, (name, arr) in enumerate(rows):
        for j in range(k):
            ax = axes[i][j]
            pic, cmap = _to_display(arr[j])
            ax.imshow(pic, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(str(name) if i == 0 else f"{name}\n∇ₓ g", fontsize=8)
            if i == 0 and labels is not None:
                ax.set_title(str(labels[j]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _panels(df: pd.DataFrame, col: str | None) -> list[tuple[object, pd.DataFrame]]:
    if col is None:
        return [(None, df)]
    return [(v, df[df[col] == v]) for v in dict.fromkeys(df[col])]


def _finish_legend(fig: plt.Figure, axes: Sequence[plt.Axes]) -> None:
    """Keep one legend (the last panel's), outside on the right."""
    for ax in axes[:-1]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False,
                        fontsize=8)


def accuracy_curve_figure(df: pd.DataFrame, x: str = "eps", y: str = "accuracy",
                          hue: str | None = "regime", col: str | None = "dataset", *,
                          style: str | None = None, hue_order: Sequence[str] | None = None,
                          title: str | None = None) -> plt.Figure:
    """Accuracy under attack against ε (e.g. the PGD curve), one panel per ``col`` value,
    one line per ``hue``: the mean over the rows sharing (x, hue, style) (the seeds) with a
    95 % confidence band (seaborn lineplot)."""
    _require_columns(df, [x, y, hue, col, style])
    if df.empty:
        raise ValueError("accuracy_curve_figure got an empty data frame")
    panels = _panels(df, col)
    if hue is not None and hue_order is None:
        hue_order = list(dict.fromkeys(df[hue]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.3), squeeze=False)
    axes = list(axes[0])
    for ax, (val, sub) in zip(axes, panels):
        sns.lineplot(data=sub, x=x, y=y, hue=hue, style=style, hue_order=hue_order,
                     palette="colorblind" if hue else None, marker="o", errorbar=("ci", 95),
                     seed=BAND_SEED, ax=ax)
        ax.set_title("" if val is None else str(val), fontsize=10)
        ax.set_xlabel("ε" if x == "eps" else x)
        ax.set_ylabel(y)
    _finish_legend(fig, axes)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def step_sweep_figure(df: pd.DataFrame, x: str = "step_size", y: str = "accuracy",
                      hue: str | None = "regime", style: str | None = "attack",
                      col: str | None = "dataset", *, eps: float | None = None,
                      title: str | None = None) -> plt.Figure:
    """Accuracy under attack against the attack's step size (log x) at a fixed ε, one line
    per (``hue`` = training regime, ``style`` = attack kind), one panel per ``col``; mean over
    seeds with a 95 % band. ``eps``: keep only rows with that ε (needs an ``eps`` column);
    a panel that still mixes several ε is refused."""
    _require_columns(df, [x, y, hue, style, col])
    if eps is not None:
        _require_columns(df, ["eps"])
        df = df[np.isclose(df["eps"].to_numpy(dtype=float), float(eps))]
    if df.empty:
        raise ValueError(f"step_sweep_figure has no rows to plot (eps={eps!r})")
    if (df[x].to_numpy(dtype=float) <= 0).any():
        raise ValueError(f"column {x!r} must be > 0 for a log axis")
    panels = _panels(df, col)
    hue_order = list(dict.fromkeys(df[hue])) if hue else None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.3), squeeze=False)
    axes = list(axes[0])
    for ax, (val, sub) in zip(axes, panels):
        eps_note = ""
        if "eps" in sub.columns:
            values = sorted(set(sub["eps"].round(12)))
            if len(values) > 1:
                raise ValueError(f"panel {val!r} mixes several eps {values}; pass eps=...")
            eps_note = f"ε = {values[0]:g}"
        sns.lineplot(data=sub, x=x, y=y, hue=hue, style=style, hue_order=hue_order,
                     palette="colorblind" if hue else None, marker="o", errorbar=("ci", 95),
                     seed=BAND_SEED, ax=ax)
        ax.set_xscale("log")
        ax.set_title(", ".join(s for s in ("" if val is None else str(val), eps_note) if s),
                     fontsize=10)
        ax.set_xlabel("step size" if x == "step_size" else x)
        ax.set_ylabel(y)
    _finish_legend(fig, axes)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def indicator_scatter_figure(df: pd.DataFrame,
                             x: str | Sequence[str] = ("grad_l2_mean", "hess_top_eig_mean"),
                             y: str = "pgd_accuracy", hue: str | None = "study",
                             style: str | None = "dataset", *, log_x: bool = True,
                             title: str | None = None) -> tuple[plt.Figure, dict[str, dict]]:
    """One point per model: robustness indicator (x) against accuracy under attack (y), one
    panel per indicator column in ``x`` (a name or a list), log x axis where every value is
    positive. Each panel's title carries Spearman's rank correlation over the rows where both
    values are finite. Returns (figure, {indicator: {"rho", "p", "n"}})."""
    from matplotlib.ticker import NullFormatter
    from scipy.stats import spearmanr

    indicators = [x] if isinstance(x, str) else list(x)
    if not indicators:
        raise ValueError("x names no indicator column")
    _require_columns(df, indicators + [y, hue, style])
    fig, axes = plt.subplots(1, len(indicators), figsize=(4.2 * len(indicators), 3.6),
                             squeeze=False)
    axes = list(axes[0])
    hue_order = list(dict.fromkeys(df[hue])) if hue else None
    stats: dict[str, dict] = {}
    for ax, ind in zip(axes, indicators):
        xs = df[ind].to_numpy(dtype=float)
        ys = df[y].to_numpy(dtype=float)
        ok = np.isfinite(xs) & np.isfinite(ys)
        sub = df[ok]
        n = int(ok.sum())
        if n >= 2:
            res = spearmanr(xs[ok], ys[ok])
            rho, p = float(res.statistic), float(res.pvalue)
        else:
            rho = p = float("nan")
        stats[ind] = {"rho": rho, "p": p, "n": n}
        sns.scatterplot(data=sub, x=ind, y=y, hue=hue, style=style, hue_order=hue_order,
                        palette="colorblind" if hue else None, s=45, ax=ax)
        if log_x and n and (xs[ok] > 0).all():
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short spans
        ax.set_xlabel(INDICATOR_LABELS.get(ind, ind))
        ax.set_ylabel(y)
        ax.set_title(f"Spearman ρ = {rho:.3f} (p = {p:.2g}, n = {n})", fontsize=9)
    _finish_legend(fig, axes)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig, stats


def power_iteration_figure(df: pd.DataFrame, y: str = "diff_mean", *,
                           title: str | None = None) -> plt.Figure:
    """Study 001's Figs 4/5: ‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖ against the power-iteration step i in the last
    attack step, one panel per (Hessian-vector-product ``method`` row, ``k`` column), one line
    per traced batch (mean over its examples). √2 (two orthogonal unit vectors, where a random
    start lands) and 2 (a sign flip, a negative dominant eigenvalue) are marked."""
    _require_columns(df, ["method", "k", "batch", "iteration", y])
    if df.empty:
        raise ValueError("power_iteration_figure got an empty data frame")
    methods = list(dict.fromkeys(df["method"]))
    ks = sorted(set(int(k) for k in df["k"]))
    fig, axes = plt.subplots(len(methods), len(ks), figsize=(3.4 * len(ks), 2.7 * len(methods)),
                             squeeze=False, sharey=True)
    for i, method in enumerate(methods):
        for j, k in enumerate(ks):
            ax = axes[i][j]
            sub = df[(df["method"] == method) & (df["k"] == k)]
            for _, g in sub.groupby("batch"):
                g = g.sort_values("iteration")
                ax.plot(g["iteration"], g[y], marker="o", ms=3, lw=0.8, alpha=0.7)
            for level, ls in ((math.sqrt(2.0), "--"), (2.0, ":")):
                ax.axhline(level, color="grey", lw=0.7, ls=ls)
            ax.set_xticks(range(1, k + 1) if k <= 10 else np.linspace(1, k, 6).round())
            ax.set_ylim(0.0, 2.1)
            ax.set_title(f"{method}, k = {k}", fontsize=9)
            ax.set_xlabel("power step i" if i == len(methods) - 1 else "")
            ax.set_ylabel("‖u⁽ⁱ⁾ − u⁽ⁱ⁻¹⁾‖₂" if j == 0 else "")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ============================================================================ study 003 figures
# Input scale s (the data multiplied by s) against the convergence of projected gradient
# ascent (PGA) on the adversarial loss and of adversarial training. Scales are ordered, so
# they get a sequential palette; every line is the mean over seeds with a Student-t 95 % band
# (the interval of tables.mean_ci), drawn only where at least two seeds give a value.

def _scale_label(s: float) -> str:
    return f"s = {s:g}"


def scale_palette(scales: Sequence[float]) -> dict[float, tuple]:
    """One viridis colour per scale, ascending; the same scale gets the same colour in every
    panel of a figure."""
    scales = sorted(set(float(s) for s in scales))
    return dict(zip(scales, sns.color_palette("viridis", len(scales))))


def _seed_mean_ci(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per value of ``x`` (ascending): the finite values of ``y`` (one per seed) summarised by
    tables.mean_ci, columns x, mean, half (nan half for fewer than two values)."""
    from curvrobust.reports.tables import mean_ci

    df = df[np.isfinite(df[y].to_numpy(dtype=float))]
    rows = [(k, *mean_ci(g.to_numpy(dtype=float))) for k, g in df.groupby(x, sort=True)[y]]
    return pd.DataFrame(rows, columns=[x, "mean", "half"])


def mean_band(ax: plt.Axes, df: pd.DataFrame, x: str, y: str, *, color, label: str | None,
               ls: str = "-") -> None:
    """Mean over seeds against ``x`` with its 95 % band; rows where ``y`` is not finite are
    left out first (a seed that stopped early still counts where it has values)."""
    st = _seed_mean_ci(df, x, y)
    if st.empty:
        return
    xs, mean, half = (st[x].to_numpy(dtype=float), st["mean"].to_numpy(),
                      st["half"].to_numpy())
    ax.plot(xs, mean, color=color, ls=ls, lw=1.4, label=label)
    if np.isfinite(half).any():
        ax.fill_between(xs, mean - half, mean + half, color=color, alpha=0.2, lw=0)


def log_y_if_positive(ax: plt.Axes, values: np.ndarray) -> None:
    """Log y when every value is positive. The lower edge then follows the smallest value,
    not the band: a symmetric t interval over few seeds can reach below 0, which would
    otherwise stretch the axis down by decades."""
    values = values[np.isfinite(values)]
    if values.size and (values > 0).all():
        ax.set_yscale("log")
        lo, hi = float(values.min()), float(values.max())
        ax.set_ylim(bottom=lo / (hi / lo) ** 0.05 if hi > lo else lo / 1.2)


def scale_handles(palette: dict[float, tuple]) -> list:
    """Legend entries for every scale, also those absent from the panel carrying the legend."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, lw=1.4, label=_scale_label(s)) for s, c in palette.items()]


def legend_right(ax: plt.Axes, handles=None) -> None:
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False,
                  fontsize=8)


def pga_loss_curve_figure(trace: pd.DataFrame, *, y: str = "loss_mean",
                          ylabel: str = "adversarial loss (y − f)²",
                          title: str | None = None) -> plt.Figure:
    """Adversarial loss against the PGA iteration, one panel per ``stage`` (e.g. the model at
    initialisation and trained), one line per input scale: the mean over seeds with a 95 %
    band. Log y where every plotted value of the panel is positive; the panels keep their own
    y range because the losses differ by orders of magnitude between stages."""
    _require_columns(trace, ["scale", "stage", "seed", "iteration", y])
    trace = trace[np.isfinite(trace[y].to_numpy(dtype=float))]
    if trace.empty:
        raise ValueError(f"pga_loss_curve_figure has no finite values of {y!r} to plot")
    palette = scale_palette(trace["scale"])
    panels = _panels(trace, "stage")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    axes = list(axes[0])
    for j, (ax, (stage, sub)) in enumerate(zip(axes, panels)):
        for s, color in palette.items():
            mean_band(ax, sub[sub["scale"].astype(float) == s], "iteration", y, color=color,
                       label=_scale_label(s))
        log_y_if_positive(ax, sub[y].to_numpy(dtype=float))
        ax.set_title(str(stage), fontsize=10)
        ax.set_xlabel("PGA iteration")
        ax.set_ylabel(ylabel if j == 0 else "")
    legend_right(axes[-1], scale_handles(palette))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def scale_metric_figure(summary: pd.DataFrame, metrics: dict[str, str], *,
                        hue: str | None = "stage", title: str | None = None) -> plt.Figure:
    """One panel per metric (column → axis label, e.g. PGA iterations to tolerance, spread or
    number of distinct local maxima) against the input scale on a log₂ axis: per ``hue``
    level the per-scale means over seeds joined by a line, with the Student-t 95 % error bar
    of tables.mean_ci (none where fewer than two seeds give a value). Values that are not
    finite (e.g. a run that never reached the tolerance) are left out of the mean."""
    if not metrics:
        raise ValueError("metrics names no column")
    _require_columns(summary, ["scale", "seed", hue, *metrics])
    if summary.empty:
        raise ValueError("scale_metric_figure got an empty data frame")
    scale_vals = summary["scale"].to_numpy(dtype=float)
    if not (scale_vals > 0).all():
        raise ValueError(f"column 'scale' must be > 0 for a log axis, got "
                         f"{sorted(set(scale_vals))}")
    scales = sorted(set(scale_vals))
    levels = _panels(summary, hue)
    colors = sns.color_palette("colorblind", len(levels))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.0), squeeze=False)
    axes = list(axes[0])
    for ax, (col, label) in zip(axes, metrics.items()):
        for (level, sub), color in zip(levels, colors):
            st = _seed_mean_ci(sub.assign(scale=sub["scale"].astype(float)), "scale", col)
            if st.empty:
                continue
            xs, mean, half = (st[c].to_numpy(dtype=float) for c in ("scale", "mean", "half"))
            ax.errorbar(xs, mean, yerr=half, color=color, marker="o", ms=4, lw=1.4, capsize=3,
                        label=None if level is None else str(level))
        ax.set_xscale("log", base=2)
        ax.set_xticks(scales, [f"{s:g}" for s in scales])
        ax.minorticks_off()
        ax.set_xlabel("input scale s")
        ax.set_ylabel(label)
    if hue is not None:
        legend_right(axes[-1])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
