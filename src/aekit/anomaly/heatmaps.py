"""Pictures of anomaly results: heatmap overlays on images (PNG), score histograms normal vs
anomalous, ROC curves. matplotlib is imported inside the functions; figures are drawn on the
Agg canvas without pyplot state (:func:`aekit.plots.new_figure`)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["heatmap_grid", "overlay_png", "overlay_rgb", "roc_figure", "save_overlay",
           "score_histogram"]


def _gray(img: Any) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a.mean(0) if a.shape[0] in (1, 3, 4) else a.mean(-1)
    if a.ndim != 2:
        raise ValueError(f"image must be (H, W) or (c, H, W), got shape {a.shape}")
    return a


def overlay_rgb(image: Any, heatmap: Any, *, alpha: float = 0.5, vmax: float | None = None,
                cmap: str = "jet") -> np.ndarray:
    """An image with its anomaly heatmap blended on top: ``(1 − α m) · gray + α m · C(m)``
    with ``m = clip(h / vmax, 0, 1)`` and C a colour map, so normal pixels keep the image.

    Parameters
    ----------
    image : array-like (H, W) or (c, H, W), values in [0, 1]
    heatmap : array-like (H, W)
        Same height and width as the image (an error names both shapes).
    vmax : float, optional
        The value shown at full strength (default: the map's maximum).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    References
    ----------
    The overlay of MVTec AD's qualitative figures: Bergmann et al., CVPR 2019, fig. 5.
    """
    from matplotlib import colormaps

    g = np.clip(_gray(image), 0.0, 1.0)
    h = np.asarray(heatmap, dtype=np.float64)
    if h.shape != g.shape:
        raise ValueError(f"heatmap shape {h.shape} does not match image shape {g.shape}")
    top = float(h.max()) if vmax is None else float(vmax)
    m = np.clip(h / top, 0.0, 1.0) if top > 0 else np.zeros_like(h)
    col = colormaps[cmap](m)[..., :3]
    w = float(alpha) * m[..., None]
    rgb = (1.0 - w) * g[..., None] + w * col
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def overlay_png(image: Any, heatmap: Any, **kwargs: Any) -> bytes:
    """:func:`overlay_rgb` as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(overlay_rgb(image, heatmap, **kwargs)).save(buf, format="PNG")
    return buf.getvalue()


def save_overlay(path: str | os.PathLike, image: Any, heatmap: Any, **kwargs: Any) -> Path:
    """Write :func:`overlay_png` to ``path`` atomically."""
    from ..io import atomic_write_bytes

    atomic_write_bytes(path, overlay_png(image, heatmap, **kwargs))
    return Path(path)


def heatmap_grid(images: Any, maps: Any, *, masks: Any = None, titles: Sequence[str] | None = None,
                 vmax: float | None = None):
    """A figure with one column per sample: the image, its heatmap overlay and (with
    ``masks``) the ground-truth outline. ``images`` (n, [c,] H, W), ``maps`` (n, H, W);
    ``vmax`` shared by all overlays (default: the 99th percentile of all maps)."""
    from ..plots import new_figure

    imgs = np.asarray(images, dtype=np.float64)
    hm = np.asarray(maps, dtype=np.float64)
    if imgs.ndim == 4:
        imgs = imgs.mean(1)
    if imgs.shape != hm.shape:
        raise ValueError(f"images {imgs.shape} and maps {hm.shape} must both be (n, H, W)")
    n = len(imgs)
    top = float(np.percentile(hm, 99)) if vmax is None else float(vmax)
    fig = new_figure(1.6 * n, 3.4)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(imgs[i], cmap="gray", vmin=0, vmax=1)
        axes[1, i].imshow(overlay_rgb(imgs[i], hm[i], vmax=top))
        if masks is not None:
            m = np.asarray(masks[i], dtype=float)
            if m.any():
                axes[1, i].contour(m, levels=[0.5], colors="white", linewidths=0.7)
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=7)
        for a in axes[:, i]:
            a.set_xticks([])
            a.set_yticks([])
    return fig


def score_histogram(scores: Any, y: Any, *, threshold: float | None = None, bins: int = 50):
    """Histograms of the scores of normal (y = 0) and anomalous (y = 1) samples on shared
    bins, densities, with the threshold as a vertical line."""
    from ..plots import new_figure

    s = np.asarray(scores, dtype=np.float64)
    yy = np.asarray(y).astype(bool)
    if s.shape != yy.shape:
        raise ValueError(f"scores {s.shape} and y {yy.shape} must have the same shape")
    fig = new_figure(5.0, 3.2)
    ax = fig.subplots()
    edges = np.histogram_bin_edges(s, bins=bins)
    for lab, sel, c in (("normal", ~yy, "C0"), ("anomalous", yy, "C3")):
        if sel.any():
            ax.hist(s[sel], bins=edges, alpha=0.55, density=True, color=c,
                    label=f"{lab} (n={int(sel.sum())})")
    if threshold is not None:
        ax.axvline(float(threshold), color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def roc_figure(curves: Mapping[str, tuple[Any, Any]]):
    """ROC curves ``{name: (y, scores)}`` with each AUROC in the legend."""
    from ..plots import new_figure
    from .metrics import auroc, roc_curve_points

    fig = new_figure(4.2, 4.0)
    ax = fig.subplots()
    for i, (name, (y, s)) in enumerate(curves.items()):
        fpr, tpr = roc_curve_points(y, s)
        ax.plot(fpr, tpr, color=f"C{i % 10}", lw=1.3, label=f"{name} ({100 * auroc(y, s):.1f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=8, title="AUROC %", title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig
