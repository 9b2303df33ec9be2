"""Filter grids and reconstruction grids as PNG files.

One renderer, :func:`filter_tiles`, lays out filters (encoder rows, dictionary atoms,
convolution kernels) as one picture, each on its own symmetric grey scale; the report's
:func:`filter_grids`, :func:`save_filter_grid` (regularised autoencoders) and
:func:`atom_grid_png` / :func:`save_atom_grid` (sparse coding) all draw with it.

matplotlib is imported inside the functions (it is slow to import and only needed here), and
figures are drawn with the Agg canvas directly, without pyplot's global state. Every file is
written atomically (:func:`aekit.io.atomic_write_bytes`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_bytes
from .figures import cmap_args, figure_png, new_figure

__all__ = ["atom_grid_png", "filter_grids", "filter_tiles", "save_atom_grid",
           "save_filter_grid", "save_png", "save_reconstruction_grid"]


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def filter_tiles(W, image_shape: Sequence[int], *, ncols: int | None = None,
                 rows: int | None = None, border: int = 0) -> np.ndarray:
    """Filters as one picture: the rows of ``W`` (k, d), tiled row-major with 1-pixel white
    gaps, each on its own symmetric scale ``(w / max|w| + 1) / 2`` (mid grey = 0, white =
    +max|w|, black = −max|w|; an all-zero filter is mid grey).

    Parameters
    ----------
    W : Tensor or array, shape (k, d)
    image_shape : sequence of int
        Shape of one filter (see :func:`aekit.analysis.reconstruction.display_shape`).
    ncols : int, optional
        Tiles per row; ``ceil(sqrt(k))`` by default.
    rows : int, optional
        At least this many rows of tiles (empty cells are white), e.g. a topographic grid.
    border : int
        White pixels around the whole picture.

    Returns
    -------
    ndarray, values in [0, 1], shape (H', W') or (H', W', C): draw with ``vmin=0, vmax=1``.
    """
    from ..analysis.reconstruction import tile_images

    T = tile_images(_to_numpy(W), image_shape, ncols=ncols, pad=1, scale="each",
                    pad_value=1.0)
    if rows is not None:
        k = len(W)
        nr = math.ceil(k / (int(ncols) if ncols else math.ceil(math.sqrt(k))))
        if int(rows) > nr:  # empty rows of cells below, white like the gaps
            step = (T.shape[0] + 1) // nr  # tile height + gap
            T = np.pad(T, [(0, (int(rows) - nr) * step), (0, 0)] + [(0, 0)] * (T.ndim - 2),
                       constant_values=1.0)
    if border:
        b = int(border)
        T = np.pad(T, [(b, b), (b, b)] + [(0, 0)] * (T.ndim - 2), constant_values=1.0)
    return T


def save_png(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a figure to ``path`` as PNG, atomically; returns the path."""
    atomic_write_bytes(path, figure_png(fig, dpi))
    return Path(path)


def filter_grids(panels: Sequence[tuple[str, np.ndarray]], image_shape: Sequence[int], *,
                 max_filters: int = 64):
    """Filters (rows of a (k, d) matrix) as picture grids, each on its own symmetric scale
    (mid grey = 0, white = +max|w|, black = −max|w|), one panel per matrix."""
    fig = new_figure(4.0 * len(panels), 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, W) in zip(axes, panels):
        W = np.asarray(W)[:max_filters]
        T = filter_tiles(W, image_shape)
        ax.imshow(T, interpolation="nearest", vmin=0, vmax=1,
                  **cmap_args(T))
        ax.set_title(f"{title}\n({len(W)} units)", fontsize=9)
        ax.set_axis_off()
    return fig


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
    T = filter_tiles(W, (H, Wd), ncols=nc)
    fig = new_figure(nc * 0.8, nr * 0.8 + (0.4 if title else 0), layout=None)
    top = 0.99 if not title else 1 - 0.4 / (nr * 0.8 + 0.4)
    ax = fig.add_axes((0.01, 0.01, 0.98, top - 0.01))
    ax.imshow(T, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return save_png(fig, path, dpi)


def _atom_tiles(atoms, atom_shape) -> np.ndarray:
    A = _to_numpy(atoms)
    if A.ndim == 3:  # (k, fh, fw) filters
        return A
    if A.ndim != 2:
        raise ValueError(f"atoms must have shape (d, k) or (k, fh, fw), got {A.shape}")
    d, k = A.shape
    if atom_shape is None:
        s = math.isqrt(d)
        atom_shape = (s, s) if s * s == d else (1, d)
    if atom_shape[0] * atom_shape[1] != d:
        raise ValueError(f"atom_shape {tuple(atom_shape)} has {atom_shape[0] * atom_shape[1]} "
                         f"pixels but the atoms have {d}")
    return A.T.reshape(k, *atom_shape)  # (d, k) -> (k, h, w), row-major pixels


def atom_grid_png(atoms: torch.Tensor | np.ndarray, *, atom_shape: tuple[int, int] | None = None,
                  grid: tuple[int, int] | None = None, title: str | None = None,
                  dpi: int = 100) -> bytes:
    """PNG bytes of the atoms as a grid of tiles, each scaled symmetrically around 0.

    Parameters
    ----------
    atoms : Tensor or array, shape (d, k) (dictionary columns) or (k, fh, fw) (filters)
    atom_shape : (int, int), optional
        Tile shape for a (d, k) dictionary; a square when d is a perfect square, else a
        1×d strip.
    grid : (int, int), optional
        (rows, cols) of tiles, row-major (a topographic grid); near-square by default.
    title : str, optional
    dpi : int, default=100

    Returns
    -------
    bytes
    """
    T = _atom_tiles(atoms, atom_shape)
    k, h, w = T.shape
    if grid is None:
        cols = math.ceil(math.sqrt(k))
        grid = (math.ceil(k / cols), cols)
    rows, cols = int(grid[0]), int(grid[1])
    if rows * cols < k:
        raise ValueError(f"grid {(rows, cols)} has fewer cells than the {k} atoms")
    # One picture with a 1-pixel gap and border: one imshow is much faster than k axes.
    canvas = filter_tiles(T.reshape(k, h * w), (h, w), ncols=cols, rows=rows, border=1)
    size = min(12.0, max(3.0, 0.25 * max(canvas.shape) / max(h, 1) * 1.5))
    fig = new_figure(size * canvas.shape[1] / max(canvas.shape),
                     size * canvas.shape[0] / max(canvas.shape) + (0.4 if title else 0),
                     layout=None)
    ax = fig.add_axes((0, 0, 1, 0.92 if title else 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return figure_png(fig, dpi)


def save_atom_grid(path: str | os.PathLike, atoms: torch.Tensor | np.ndarray, **kwargs) -> None:
    """Write :func:`atom_grid_png` to ``path`` atomically (keyword arguments passed on)."""
    atomic_write_bytes(path, atom_grid_png(atoms, **kwargs))


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
    fig = new_figure(m * 0.9 + 0.4, len(rows) * 0.9, layout=None)
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
    return save_png(fig, path, dpi)
