"""Figures for regularised autoencoders: encoder filters and corrupted-input reconstructions.

matplotlib is imported inside the functions (it is slow to import and only needed here), and
figures are drawn with the Agg canvas directly, without pyplot's global state. Every figure is
written atomically: to a temporary file in the target folder, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["save_filter_grid", "save_reconstruction_grid"]


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().float().numpy()
    return np.asarray(a, dtype=np.float64)


def _image_shape(image_shape: Sequence[int] | None, d: int) -> tuple[int, int]:
    if image_shape is None:
        s = math.isqrt(d)
        if s * s != d:
            raise ValueError(f"{d} features are not a square image; pass image_shape")
        return s, s
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 2 or shape[0] * shape[1] != d:
        raise ValueError(f"image_shape must be (H, W) with H*W = {d}, got {image_shape}")
    return shape


def _save_atomic(fig, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_filter_grid(weights, path: str | os.PathLike, *,
                     image_shape: Sequence[int] | None = None, n: int = 100,
                     ncols: int | None = None, dpi: int = 100, title: str | None = None
                     ) -> Path:
    """Draw encoder filters (rows of W) as a grid of images and save a PNG atomically.

    Each filter ``W_j`` (row j of the (k, d) encoder weight, i.e. the input pattern that
    drives unit j most per unit norm) is shown on its own symmetric grey scale
    ``[−max|W_j|, max|W_j|]``, so the sign pattern is visible regardless of the filter's norm.

    Parameters
    ----------
    weights : Autoencoder, nn.Linear, Tensor or array of shape (k, d)
        A model (its first encoder layer is drawn) or the weight matrix itself.
    path : path
        Output PNG.
    image_shape : (H, W), optional
        Shape of one filter; square by default.
    n : int
        Draw the first n filters.
    ncols : int, optional
        Grid columns; about sqrt(n) by default.
    dpi : int
    title : str, optional

    Returns
    -------
    Path of the written file.

    References
    ----------
    Vincent et al., "Stacked denoising autoencoders", JMLR 2010, figures 6–8 (filters of
    denoising AEs on MNIST and natural image patches).
    """
    if hasattr(weights, "encoder_layers"):
        weights = weights.encoder_layers()[0].weight
    elif hasattr(weights, "weight"):
        weights = weights.weight
    W = _to_numpy(weights)
    if W.ndim != 2:
        raise ValueError(f"weights must be a (k, d) matrix, got shape {W.shape}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    H, Wd = _image_shape(image_shape, W.shape[1])
    W = W[: int(n)]
    k = W.shape[0]
    nc = int(ncols) if ncols else math.ceil(math.sqrt(k))
    nr = math.ceil(k / nc)
    fig = _figure((nc * 0.8, nr * 0.8 + (0.4 if title else 0)))
    for j in range(nr * nc):
        ax = fig.add_subplot(nr, nc, j + 1)
        ax.set_axis_off()
        if j < k:
            m = float(np.abs(W[j]).max()) or 1.0
            ax.imshow(W[j].reshape(H, Wd), cmap="gray", vmin=-m, vmax=m,
                      interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.01, right=0.99, bottom=0.01,
                        top=0.99 if not title else 1 - 0.4 / (nr * 0.8 + 0.4))
    return _save_atomic(fig, path, dpi)


def save_reconstruction_grid(corrupted, reconstructed, path: str | os.PathLike, *,
                             clean=None, image_shape: Sequence[int] | None = None,
                             n: int = 10, dpi: int = 100, vmin: float = 0.0,
                             vmax: float = 1.0) -> Path:
    """Draw corrupted inputs x̃ above their reconstructions x̂ = g(f(x̃)) and save a PNG.

    Rows: the clean inputs x (when given), the corrupted inputs x̃, the reconstructions x̂;
    one column per sample, all on the fixed grey scale [vmin, vmax].

    Parameters
    ----------
    corrupted, reconstructed : Tensor or array, shape (n, d)
    path : path
        Output PNG.
    clean : Tensor or array, shape (n, d), optional
    image_shape : (H, W), optional
        Square by default.
    n : int
        Number of samples (columns) drawn.
    dpi : int
    vmin, vmax : float
        Grey-scale range (the data range; [0, 1] for images scaled to [0, 1]).

    Returns
    -------
    Path of the written file.

    References
    ----------
    Vincent et al., "Stacked denoising autoencoders", JMLR 2010, section 4 (x → x̃ → x̂).
    """
    rows = [("corrupted", _to_numpy(corrupted)), ("reconstruction", _to_numpy(reconstructed))]
    if clean is not None:
        rows.insert(0, ("clean", _to_numpy(clean)))
    shapes = {r.shape for _, r in rows}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"inputs must be (n, d) matrices of one shape, got {sorted(shapes)}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    H, Wd = _image_shape(image_shape, rows[0][1].shape[1])
    m = min(int(n), rows[0][1].shape[0])
    fig = _figure((m * 0.9 + 0.4, len(rows) * 0.9))
    for r, (label, A) in enumerate(rows):
        for i in range(m):
            ax = fig.add_subplot(len(rows), m, r * m + i + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(A[i].reshape(H, Wd), cmap="gray", vmin=vmin, vmax=vmax,
                      interpolation="nearest")
            if i == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.4 / (m * 0.9 + 0.4), right=0.99,
                        bottom=0.01, top=0.99)
    return _save_atomic(fig, path, dpi)
