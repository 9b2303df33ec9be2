"""matplotlib figures for the analyses in :mod:`aekit.analysis` (used by the HTML report).

Each function takes arrays (the output of an analysis function) and returns a
``matplotlib.figure.Figure`` drawn on the Agg canvas, without pyplot's global state, so it is
safe in scripts, tests and servers. matplotlib is imported inside the functions (it is slow to
import and needed only here). :func:`figure_png` turns a figure into PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["activation_plot", "error_histograms", "figure_png", "image_rows", "new_figure",
           "rate_distortion_plot", "scatter_maps", "singular_value_plot", "tangent_plot",
           "training_curves", "traversal_plot"]

#: Units of the per-sample reconstruction loss, by loss name.
LOSS_UNITS = {"mse": "squared error per sample", "bce": "cross-entropy per sample (nats)",
              "gaussian_nll": "negative log-likelihood per sample (nats)"}
ERROR_UNIT = "squared error per sample, Σⱼ (xⱼ − x̂ⱼ)²"


def new_figure(width: float, height: float, *, layout: str | None = "constrained"):
    """A figure of ``width`` × ``height`` inches on the Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (no 'Software' metadata, so the bytes depend only on the
    picture)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def cmap_args(T: np.ndarray) -> dict[str, Any]:
    """Grey colour map for single-channel tiles; RGB(A) tiles are drawn as they are."""
    return {"cmap": "gray"} if T.ndim == 2 else {}


def training_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], *,
                    loss: str | None = None, max_cols: int = 3):
    """Training curves of every objective part: one panel per part (``train_<part>`` solid,
    ``val_<part>`` dashed), one colour per run, plus the learning rate.

    Parameters
    ----------
    histories : mapping run name -> list of per-epoch records (``history.jsonl``)
    loss : str, optional
        Reconstruction loss name, for the y-axis unit.
    max_cols : int
        Panels per row.
    """
    histories = {k: list(v) for k, v in histories.items() if len(v)}
    if not histories:
        raise ValueError("histories must hold at least one non-empty history")
    parts: list[str] = []
    for h in histories.values():
        for r in h:
            for key in r:
                if key.startswith("train_") and key[6:] not in parts:
                    parts.append(key[6:])
    # Loss first, then the reconstruction, then the other terms as they appear.
    parts.sort(key=lambda p: (p != "loss", p != "recon"))
    has_lr = any("lr" in r for h in histories.values() for r in h)
    panels = [*parts, *(["lr"] if has_lr else [])]
    nc = min(max_cols, len(panels))
    nr = math.ceil(len(panels) / nc)
    fig = new_figure(3.7 * nc, 2.9 * nr)
    axes = fig.subplots(nr, nc, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(histories))]
    unit = LOSS_UNITS.get(str(loss), "per-sample value")
    for ax, p in zip(axes, panels):
        for (name, h), c in zip(histories.items(), colours):
            ep = [r.get("epoch", i + 1) for i, r in enumerate(h)]
            if p == "lr":
                ax.plot(ep, [r.get("lr", np.nan) for r in h], color=c, label=name)
                continue
            tr = [r.get(f"train_{p}", np.nan) for r in h]
            ax.plot(ep, tr, color=c, marker="." if len(ep) < 15 else None,
                    label=f"{name} train" if len(histories) > 1 else "train")
            if any(f"val_{p}" in r for r in h):
                ax.plot(ep, [r.get(f"val_{p}", np.nan) for r in h], color=c, ls="--",
                        marker="." if len(ep) < 15 else None,
                        label=f"{name} validation" if len(histories) > 1 else "validation")
        vals = np.array([ln.get_ydata() for ln in ax.lines], dtype=object)
        flat = np.concatenate([np.asarray(v, dtype=float) for v in vals]) if len(vals) else \
            np.array([])
        flat = flat[np.isfinite(flat)]
        if p != "lr" and flat.size and flat.min() > 0 and flat.max() / flat.min() > 20:
            ax.set_yscale("log")
        ax.set_title({"loss": "total objective", "recon": "reconstruction",
                      "lr": "learning rate"}.get(p, p), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate" if p == "lr" else
                      unit if p in ("loss", "recon") else "term value per sample", fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if p != "lr" and len(histories) == 1:
            ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if len(histories) > 1:
        # One legend for all panels: colour = run, line style = split.
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, label=n) for n, c in zip(histories, colours)]
        handles += [Line2D([], [], color="0.3", label="training"),
                    Line2D([], [], color="0.3", ls="--", label="validation")]
        fig.legend(handles=handles, loc="outside lower center", fontsize=8,
                   ncols=min(len(handles), 6), frameon=False)
    return fig


def image_rows(rows: Sequence[tuple[str, np.ndarray]], image_shape: Sequence[int], *,
               col_labels: Sequence[str] | None = None, vmin: float | None = None,
               vmax: float | None = None, title: str | None = None, tile_inches: float = 0.75):
    """Rows of pictures with a label each: e.g. input | autoencoder | PCA, one sample per
    column, all on one grey scale [vmin, vmax] (default: the range of the first row).

    Parameters
    ----------
    rows : sequence of (label, array (n, d)), all with the same n
    image_shape : shape of one sample (see :func:`aekit.analysis.reconstruction.display_shape`)
    col_labels : one short label per column, optional
    vmin, vmax : float, optional
    title : str, optional
    tile_inches : float
        Drawn size of one picture.
    """
    from ..analysis.reconstruction import tile_images

    if not rows:
        raise ValueError("rows must not be empty")
    n = len(rows[0][1])
    if any(len(A) != n for _, A in rows) or n == 0:
        raise ValueError("every row must hold the same, non-zero number of samples")
    first = np.asarray(rows[0][1], dtype=np.float64)
    lo = float(first.min()) if vmin is None else float(vmin)
    hi = float(first.max()) if vmax is None else float(vmax)
    from ..analysis.reconstruction import display_shape

    disp = display_shape(image_shape)
    if disp is None:
        raise ValueError(f"image_shape {tuple(image_shape)} cannot be drawn")
    label_w = 1.2
    row_h = tile_inches * disp[0] / disp[1]
    width = label_w + tile_inches * n
    height = row_h * len(rows) + (0.35 if title else 0) + (0.25 if col_labels else 0)
    fig = new_figure(width, height)
    fig.set_layout_engine("none")
    # A fixed label column left of the pictures: row labels never overlap or get clipped.
    top = 1 - (0.35 / height if title else 0.02 / height)
    bottom = 0.25 / height if col_labels else 0.02 / height
    gs = fig.add_gridspec(len(rows), 2, width_ratios=[label_w, tile_inches * n], wspace=0.02,
                          hspace=0.06, left=0.005, right=0.995, top=top, bottom=bottom)
    for i, (label, A) in enumerate(rows):
        la = fig.add_subplot(gs[i, 0])
        la.set_axis_off()
        la.text(0.97, 0.5, label, ha="right", va="center", fontsize=9, transform=la.transAxes)
        ax = fig.add_subplot(gs[i, 1])
        T = tile_images(A, image_shape, ncols=n, pad=1, scale="range", vmin=lo, vmax=hi)
        ax.imshow(T, interpolation="nearest", vmin=0, vmax=1, **cmap_args(T))
        ax.set_anchor("W")
        ax.set_yticks([])
        w = (T.shape[1] + 1) / n
        if col_labels is not None and i == len(rows) - 1:
            ax.set_xticks(np.arange(n) * w + (w - 1) / 2 - 0.5, list(col_labels), fontsize=7)
            ax.tick_params(axis="x", length=0, pad=2)
        else:
            ax.set_xticks([])
        for sp in ax.spines.values():
            sp.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.05 / height, va="top")
    return fig


def traversal_plot(images: np.ndarray, units: Sequence[int], col_labels: Sequence[str],
                   image_shape: Sequence[int], *, vmin: float, vmax: float):
    """Latent traversals: one row per code unit, one column per swept value.

    Parameters
    ----------
    images : array, shape (u, m, d)
        Decodings ``g(h(v))`` for u units and m values.
    units : the unit index of each row
    col_labels : one label per column (e.g. the quantile of the swept value)
    """
    images = np.asarray(images)
    if images.ndim != 3 or len(images) != len(units) or images.shape[1] != len(col_labels):
        raise ValueError(f"images must have shape (len(units), len(col_labels), d), got "
                         f"{images.shape}")
    return image_rows([(f"unit {j}", images[i]) for i, j in enumerate(units)], image_shape,
                      col_labels=col_labels, vmin=vmin, vmax=vmax, tile_inches=0.7)


def scatter_maps(panels: Sequence[tuple[str, np.ndarray, tuple[str, str]]], *,
                 labels: np.ndarray | None = None, colour: np.ndarray | None = None,
                 colour_label: str = ""):
    """Side-by-side 2-D scatter plots of the same samples (e.g. codes and data PCA).

    Parameters
    ----------
    panels : sequence of (title, points (n, 2), (x label, y label))
    labels : array (n,), optional
        Class labels: one colour per class with a legend (<= 20 classes).
    colour : array (n,), optional
        A continuous value per sample (used when there are no labels), with a colour bar.
    colour_label : str
        Colour-bar label.
    """
    fig = new_figure(4.3 * len(panels) + (0.9 if labels is not None else 0.6), 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    classes = np.unique(labels) if labels is not None else None
    if classes is not None and len(classes) > 20:
        colour, colour_label, classes = labels.astype(float), "label", None
    sc = None
    for ax, (title, P, (xl, yl)) in zip(axes, panels):
        P = np.asarray(P)
        size = 5 if len(P) > 1000 else 9 if len(P) > 200 else 16
        if classes is not None:
            for i, c in enumerate(classes):
                sel = labels == c
                ax.scatter(P[sel, 0], P[sel, 1], s=size, alpha=0.75, color=f"C{i % 10}"
                           if len(classes) <= 10 else None, label=str(c), linewidths=0)
        else:
            sc = ax.scatter(P[:, 0], P[:, 1], s=size, alpha=0.85, linewidths=0,
                            c=colour if colour is not None else "C0", cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
    if classes is not None:
        axes[-1].legend(title="label", fontsize=7, title_fontsize=8, markerscale=2.5,
                        loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    elif colour is not None and sc is not None:
        fig.colorbar(sc, ax=list(axes), label=colour_label, shrink=0.9)
    return fig


def rate_distortion_plot(code_sizes, pca_errors, points: Sequence[tuple[str, int, float]], *,
                         pca_points: Sequence[tuple[int, float]] = ()):
    """Test error against code size: PCA's curve and one marker per autoencoder.

    Parameters
    ----------
    code_sizes, pca_errors : arrays (m,)
        PCA's mean test error for each k (may be empty when the data are unavailable).
    points : sequence of (label, k, mean test error) for the autoencoders
    pca_points : sequence of (k, error), PCA errors known only at some k (from metrics.json)
    """
    fig = new_figure(5.3, 3.6)
    ax = fig.subplots()
    if len(code_sizes):
        ax.plot(code_sizes, pca_errors, color="0.35", lw=1.5, label="PCA (best linear code)")
    if pca_points:
        ks, es = zip(*pca_points)
        ax.scatter(ks, es, marker="s", color="0.35", s=30, zorder=3,
                   label="PCA, same code size" if not len(code_sizes) else None)
    for i, (label, k, e) in enumerate(points):
        ax.scatter([k], [e], s=60, marker="o", color=f"C{i % 10}", zorder=4,
                   edgecolors="k", linewidths=0.5, label=label)
    ks_all = list(code_sizes) + [k for _, k, _ in points]
    if ks_all and max(ks_all) / max(min(ks_all), 1) > 8:
        from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

        ax.set_xscale("log", base=2)
        lo, hi = max(min(ks_all), 1), max(ks_all)
        ticks = [2 ** i for i in range(int(np.floor(np.log2(lo))), int(np.ceil(np.log2(hi))) + 1)]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("code size k (units)")
    ax.set_ylabel("mean test error\n(" + ERROR_UNIT + ")", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def error_histograms(errors: Mapping[str, np.ndarray], *, bins: int = 40):
    """Histograms of per-sample errors (one per model) on shared bins up to the 99.5th
    percentile, with each model's mean in the legend."""
    fig = new_figure(5.3, 3.6)
    ax = fig.subplots()
    allv = np.concatenate([np.asarray(e, dtype=float) for e in errors.values()])
    hi = float(np.percentile(allv, 99.5)) if allv.size else 1.0
    edges = np.linspace(0.0, hi if hi > 0 else 1.0, bins + 1)
    for i, (name, e) in enumerate(errors.items()):
        e = np.asarray(e, dtype=float)
        ax.hist(np.clip(e, 0, edges[-1]), bins=edges, alpha=0.55, color=f"C{i % 10}",
                label=f"{name} (mean {e.mean():.3g}, median {np.median(e):.3g})")
    ax.set_xlabel(ERROR_UNIT + " (last bin: ≥ 99.5th pct.)", fontsize=8)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def activation_plot(counts, edges, unit_values, *, unit_label: str,
                    threshold: float | None = None):
    """Histogram of all code values h_ij (log counts) and a per-unit bar chart (fraction of
    samples where the unit is active, or its standard deviation for a linear code)."""
    fig = new_figure(10.0, 3.3)
    a1, a2 = fig.subplots(1, 2, width_ratios=[1, 1.3])
    edges = np.asarray(edges, dtype=float)
    a1.stairs(np.asarray(counts), edges, fill=True, alpha=0.7)
    if threshold is not None:
        a1.axvline(threshold, color="C3", ls="--", lw=1, label=f"threshold t = {threshold:g}")
        a1.legend(fontsize=8)
    if np.asarray(counts).max() > 0:
        a1.set_yscale("log")
    a1.set_xlabel("code value hᵢⱼ")
    a1.set_ylabel("count (samples × units)")
    a1.set_title("all code values", fontsize=10)
    a1.grid(alpha=0.3)
    v = np.asarray(unit_values, dtype=float)
    a2.bar(np.arange(len(v)), v, width=0.85 if len(v) < 200 else 1.0,
           color=["C3" if (threshold is not None and x == 0) else "C0" for x in v])
    a2.set_xlabel("code unit j")
    a2.set_ylabel(unit_label, fontsize=8)
    a2.set_title("per unit" + (" (red: dead)" if threshold is not None else ""), fontsize=10)
    a2.set_xlim(-0.6, len(v) - 0.4)
    if len(v) <= 32:
        a2.set_xticks(np.arange(len(v)))
        a2.tick_params(axis="x", labelsize=7)
    a2.grid(alpha=0.3, axis="y")
    return fig


def singular_value_plot(S: np.ndarray):
    """Encoder-Jacobian singular values σ_1 >= σ_2 >= ... over samples: median with the
    10–90 % band, log scale."""
    S = np.asarray(S, dtype=float)
    fig = new_figure(6.2, 3.5)
    ax = fig.subplots()
    idx = np.arange(1, S.shape[1] + 1)
    q10, q50, q90 = np.percentile(S, [10, 50, 90], axis=0)
    ax.fill_between(idx, q10, q90, alpha=0.3, label="10–90 % of samples")
    ax.plot(idx, q50, marker="o" if len(idx) <= 40 else None, ms=3, label="median")
    if (q10 > 0).all() and q90.max() / max(q10.min(), 1e-300) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("singular value index i")
    if len(idx) <= 16:
        ax.set_xticks(idx)
        ax.set_xlim(0.5, len(idx) + 0.5)
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("σᵢ of ∂h/∂x (code units per input unit)", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def tangent_plot(X: np.ndarray, V: np.ndarray, S: np.ndarray, image_shape: Sequence[int], *,
                 vmin: float, vmax: float):
    """For each sample, the input and its leading tangent directions (right-singular vectors
    of the encoder Jacobian), each direction on its own symmetric scale.

    Parameters
    ----------
    X : array (s, d) inputs
    V : array (s, r, d) directions
    S : array (s, >= r) singular values (column labels)
    """
    from ..analysis.reconstruction import tile_images

    X, V = np.asarray(X), np.asarray(V)
    s, r, _ = V.shape
    tile = 0.8
    fig = new_figure(1.0 + tile * (r + 1) * 1.08, tile * s * 1.25 + 0.4)
    axes = fig.subplots(s, r + 1, squeeze=False)
    for i in range(s):
        for j in range(r + 1):
            ax = axes[i, j]
            if j == 0:
                T = tile_images(X[i:i + 1], image_shape, scale="range", vmin=vmin, vmax=vmax)
            else:
                T = tile_images(V[i, j - 1:j], image_shape, scale="each")
            ax.imshow(T, interpolation="nearest", vmin=0, vmax=1,
                      **cmap_args(T))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("input" if j == 0 else f"σ{j} = {S[i, j - 1]:.2g}", fontsize=7)
    return fig
