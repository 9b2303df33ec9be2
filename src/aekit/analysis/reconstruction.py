"""Reconstructions and their errors: autoencoder next to PCA of the same code size, per-sample
error distributions, the worst-reconstructed samples, and images tiled into grids.

Every function returns arrays or numbers; drawing lives in :mod:`aekit.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..models.base import Autoencoder

__all__ = ["ReconstructionGrid", "WorstReconstructions", "display_shape", "error_summary",
           "pca_basis", "pca_reconstruct", "reconstruct", "reconstruction_grid", "sample_errors",
           "tile_images", "to_images", "worst_reconstructions"]


def as_2d(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """``X`` (array or tensor) as a finite 2-D numpy array (floats kept, others float32),
    with ``n_features`` columns when given; ``ValueError`` naming ``name`` otherwise."""
    A = np.asarray(X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X)
    if A.ndim != 2 or (n_features is not None and A.shape[1] != n_features):
        want = f"(n, {n_features})" if n_features is not None else "(n, d)"
        raise ValueError(f"{name} must have shape {want}, got {A.shape}")
    if not np.issubdtype(A.dtype, np.floating):
        A = A.astype(np.float32)
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return A


def first_parameter(model: Autoencoder) -> torch.Tensor:
    """A parameter of ``model``: its device and dtype are the model's."""
    return next(model.parameters())


@torch.no_grad()
def forward_codes(model: Autoencoder, X: np.ndarray, fn, batch_size: int) -> np.ndarray:
    """Apply ``fn(model, x_batch)`` in eval mode over X in batches; result in X's dtype."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    p = first_parameter(model)
    was = model.training
    model.eval()
    try:
        out = [fn(model, torch.from_numpy(np.ascontiguousarray(X[i:i + int(batch_size)]))
                  .to(device=p.device, dtype=p.dtype)).cpu().numpy()
               for i in range(0, len(X), int(batch_size))]
    finally:
        model.train(was)
    if not out:
        return np.zeros((0, 0), dtype=X.dtype)
    return np.concatenate(out).astype(X.dtype, copy=False)


def reconstruct(model: Autoencoder, X, *, batch_size: int = 4096) -> np.ndarray:
    """Reconstructions ``x̂ = g(f(x))`` of every row of X, in eval mode, without corruption.

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (n, d)
    batch_size : int

    Returns
    -------
    ndarray, shape (n, d), in X's floating dtype (float32 for integer input).
    """
    A = as_2d(X, "X", model.n_features)
    R = forward_codes(model, A, lambda m, x: m(x).reconstruction, batch_size)
    return R.reshape(len(A), model.n_features)


def sample_errors(X, R) -> np.ndarray:
    """Per-sample squared reconstruction error ``e_i = Σ_j (x_ij − x̂_ij)²``.

    The same unit as ``metrics.json`` (sum over features, one number per sample).

    Parameters
    ----------
    X, R : array-like, shape (n, d)
        Inputs and their reconstructions.

    Returns
    -------
    ndarray, shape (n,), float64.
    """
    A, B = as_2d(X, "X"), as_2d(R, "R")
    if A.shape != B.shape:
        raise ValueError(f"X and R must have the same shape, got {A.shape} and {B.shape}")
    return ((A.astype(np.float64) - B.astype(np.float64)) ** 2).sum(1)


def pca_basis(X_train, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-``k`` principal axes of X_train, exactly (float64).

    The axes are the leading eigenvectors of the scatter matrix ``Σ_i (x_i − μ)(x_i − μ)ᵀ``
    (d × d, cheaper than an SVD of X_train when n >> d), each with its largest-magnitude
    entry positive.

    Parameters
    ----------
    X_train : array-like, shape (n_train, d)
    k : int
        1 <= k <= min(n_train, d).

    Returns
    -------
    mean : ndarray, shape (d,)
    components : ndarray, shape (k, d), orthonormal rows, by decreasing variance.
    """
    Xt = as_2d(X_train, "X_train").astype(np.float64)
    if not 1 <= int(k) <= min(Xt.shape):
        raise ValueError(f"k must be in [1, {min(Xt.shape)}] (min(n_train, d)), got {k}")
    from ..models.linear import pca_solution

    sol = pca_solution(Xt, int(k), method="covariance")
    return sol.mean, sol.components.T  # (d, k) -> (k, d)


def pca_reconstruct(X_train, X, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reconstruct X with PCA of ``k`` components fitted on ``X_train`` (the optimal linear
    autoencoder of that code size, Baldi & Hornik 1989).

    ``x̂ = μ + V_kᵀ V_k (x − μ)`` with μ the training mean and V_k (k, d) the top-k principal
    axes of the training data (:func:`pca_basis`, exact rather than randomised).

    Parameters
    ----------
    X_train : array-like, shape (n_train, d)
    X : array-like, shape (n, d)
    k : int
        1 <= k <= min(n_train, d).

    Returns
    -------
    R : ndarray, shape (n, d), in X's dtype
    mean : ndarray, shape (d,)
    components : ndarray, shape (k, d)

    References
    ----------
    Baldi & Hornik, "Neural networks and principal component analysis", Neural Networks 1989.
    """
    A = as_2d(X, "X")
    mu, V = pca_basis(X_train, k)
    if A.shape[1] != len(mu):
        raise ValueError(f"X has {A.shape[1]} features, X_train has {len(mu)}")
    D = A.astype(np.float64) - mu
    return (mu + (D @ V.T) @ V).astype(A.dtype, copy=False), mu, V


class ReconstructionGrid(NamedTuple):
    """Inputs and their reconstructions, row-aligned (one sample per row, shape (n, d))."""

    inputs: np.ndarray
    autoencoder: np.ndarray
    pca: np.ndarray | None


def reconstruction_grid(model: Autoencoder, X, *, n: int = 10,
                        X_train=None) -> ReconstructionGrid:
    """The first ``n`` samples of X, the autoencoder's reconstructions ``g(f(x))`` and, when
    ``X_train`` is given, those of PCA with the model's code size k fitted on ``X_train``.

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (m, d)
    n : int
        Number of samples (columns of the picture), n >= 1.
    X_train : array-like, shape (n_train, d), optional

    Returns
    -------
    ReconstructionGrid
        ``inputs``, ``autoencoder``, ``pca`` (or None), each (min(n, m), d).
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    A = as_2d(X, "X", model.n_features)[: int(n)]
    R = reconstruct(model, A)
    P = pca_reconstruct(X_train, A, model.n_components)[0] if X_train is not None else None
    return ReconstructionGrid(A, R, P)


class WorstReconstructions(NamedTuple):
    """The samples with the largest reconstruction error, worst first."""

    indices: np.ndarray          # (m,) row indices into X
    errors: np.ndarray           # (m,) e_i = Σ_j (x_ij − x̂_ij)²
    inputs: np.ndarray           # (m, d)
    reconstructions: np.ndarray  # (m, d)


def worst_reconstructions(model: Autoencoder, X, n: int = 8, *,
                          errors: np.ndarray | None = None) -> WorstReconstructions:
    """The ``n`` rows of X the model reconstructs worst (largest ``Σ_j (x_ij − x̂_ij)²``).

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (m, d)
    n : int
        n >= 1; at most m are returned.
    errors : ndarray, shape (m,), optional
        Precomputed per-sample errors (saves a pass over X).

    Returns
    -------
    WorstReconstructions
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    A = as_2d(X, "X", model.n_features)
    if errors is None:
        errors = sample_errors(A, reconstruct(model, A))
    errors = np.asarray(errors, dtype=np.float64)
    if errors.shape != (len(A),):
        raise ValueError(f"errors must have shape ({len(A)},), got {errors.shape}")
    # Stable sort on -e: ties keep the data order, so the result is deterministic.
    idx = np.argsort(-errors, kind="stable")[: int(n)]
    return WorstReconstructions(idx, errors[idx], A[idx], reconstruct(model, A[idx]))


def error_summary(errors) -> dict[str, float]:
    """Mean, median, 90th and 99th percentile and maximum of per-sample errors (n,)."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    if e.size == 0:
        raise ValueError("errors must not be empty")
    return {"mean": float(e.mean()), "median": float(np.median(e)),
            "p90": float(np.percentile(e, 90)), "p99": float(np.percentile(e, 99)),
            "max": float(e.max())}


def display_shape(image_shape: Sequence[int] | None, n_features: int | None = None
                  ) -> tuple[int, ...] | None:
    """The shape one sample is drawn in, or None when it is not a picture.

    ``(H, W)`` is drawn in grey, ``(H, W, C)`` with C in {1, 3, 4} as is, ``(C, H, W)`` with
    C in {1, 3} is moved to channels-last; single channels are squeezed. ``n_features``, when
    given, must equal the product of the shape.
    """
    if not image_shape:
        return None
    s = tuple(int(v) for v in image_shape)
    if n_features is not None and math.prod(s) != int(n_features):
        return None
    if len(s) == 2 and min(s) >= 1:
        return s
    if len(s) == 3:
        if s[2] in (1, 3, 4) and min(s[:2]) > 4:
            return s[:2] if s[2] == 1 else s
        if s[0] in (1, 3) and min(s[1:]) > 4:
            return s[1:] if s[0] == 1 else (s[1], s[2], s[0])
    return None


def to_images(A, image_shape: Sequence[int]) -> np.ndarray:
    """Reshape rows (n, d) to pictures (n, H, W) or (n, H, W, C) following
    :func:`display_shape` (channels-first data are moved to channels-last)."""
    A = np.asarray(A)
    shape = tuple(int(v) for v in image_shape)
    disp = display_shape(shape, A.shape[-1])
    if disp is None:
        raise ValueError(f"image_shape {shape} cannot be drawn for {A.shape[-1]} features")
    imgs = A.reshape(len(A), *shape)
    if len(shape) == 3 and shape[0] in (1, 3) and disp[:2] == shape[1:]:
        imgs = np.moveaxis(imgs, 1, -1)  # (n, C, H, W) -> (n, H, W, C)
    return imgs.reshape(len(A), *disp)


def tile_images(A, image_shape: Sequence[int], *, ncols: int | None = None, pad: int = 1,
                scale: str = "none", vmin: float | None = None, vmax: float | None = None,
                pad_value: float = 1.0) -> np.ndarray:
    """Tile rows of A as pictures into one image, row-major, with ``pad`` pixels between.

    Parameters
    ----------
    A : array-like, shape (n, d)
    image_shape : sequence of int
        Shape of one sample (see :func:`display_shape`).
    ncols : int, optional
        Tiles per row; ``ceil(sqrt(n))`` by default.
    pad : int
        Pixels between tiles, filled with ``pad_value``.
    scale : {"none", "range", "each"}
        ``"none"``: values as given; ``"range"``: ``(a − vmin) / (vmax − vmin)`` clipped to
        [0, 1] (vmin, vmax default to A's min and max); ``"each"``: every tile on its own
        symmetric scale ``(a / max|a| + 1) / 2`` (for filters, whose sign matters).
    vmin, vmax : float, optional
    pad_value : float

    Returns
    -------
    ndarray, shape (rows·(H+pad)−pad, ncols·(W+pad)−pad[, C]), float64.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or len(A) == 0:
        raise ValueError(f"A must be a non-empty (n, d) matrix, got shape {A.shape}")
    if scale not in ("none", "range", "each"):
        raise ValueError(f"scale must be 'none', 'range' or 'each', got {scale!r}")
    if int(pad) < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    imgs = to_images(A, image_shape)
    if scale == "range":
        lo = float(A.min()) if vmin is None else float(vmin)
        hi = float(A.max()) if vmax is None else float(vmax)
        imgs = np.clip((imgs - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    elif scale == "each":
        m = np.abs(imgs).reshape(len(imgs), -1).max(1)
        m = np.where(m > 0, m, 1.0).reshape(-1, *([1] * (imgs.ndim - 1)))
        imgs = (imgs / m + 1.0) / 2.0
    n = len(imgs)
    nc = int(ncols) if ncols else math.ceil(math.sqrt(n))
    if nc < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nr = math.ceil(n / nc)
    H, W = imgs.shape[1:3]
    p = int(pad)
    out = np.full((nr * (H + p) - p, nc * (W + p) - p, *imgs.shape[3:]), float(pad_value))
    for i, img in enumerate(imgs):
        r, c = divmod(i, nc)
        out[r * (H + p): r * (H + p) + H, c * (W + p): c * (W + p) + W] = img
    return out
