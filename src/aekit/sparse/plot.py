"""Atom grids as PNG: dictionaries (d, k) or filter banks (k, fh, fw) drawn tile by tile.

matplotlib is imported lazily and drawn on the Agg canvas without pyplot's global state; the
PNG is written atomically.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
import torch

__all__ = ["atom_grid_png", "save_atom_grid"]


def _tiles(atoms, atom_shape) -> np.ndarray:
    A = atoms.detach().cpu().double().numpy() if isinstance(atoms, torch.Tensor) \
        else np.asarray(atoms, dtype=np.float64)
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
    T = _tiles(atoms, atom_shape)
    k, h, w = T.shape
    if grid is None:
        cols = math.ceil(math.sqrt(k))
        grid = (math.ceil(k / cols), cols)
    rows, cols = int(grid[0]), int(grid[1])
    if rows * cols < k:
        raise ValueError(f"grid {(rows, cols)} has fewer cells than the {k} atoms")
    # One canvas with a 1-pixel gap: one imshow is much faster than k axes.
    canvas = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), np.nan)
    for j in range(k):
        r, c = divmod(j, cols)
        t = T[j]
        m = float(np.abs(t).max())
        canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = \
            t / m if m > 0 else t
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = min(12.0, max(3.0, 0.25 * max(canvas.shape) / max(h, 1) * 1.5))
    fig = Figure(figsize=(size * canvas.shape[1] / max(canvas.shape),
                          size * canvas.shape[0] / max(canvas.shape) + (0.4 if title else 0)))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.92 if title else 1))
    ax.imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def save_atom_grid(path: str | os.PathLike, atoms: torch.Tensor | np.ndarray, **kwargs) -> None:
    """Write :func:`atom_grid_png` to ``path`` atomically (keyword arguments passed on)."""
    from ..io import atomic_write_bytes

    atomic_write_bytes(path, atom_grid_png(atoms, **kwargs))
