"""Rate–distortion: test reconstruction error against code size, autoencoders next to PCA.

PCA of k components is the best *linear* code of size k (Eckart–Young; Baldi & Hornik 1989),
so its error curve is the reference an autoencoder of the same code size has to beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..models.base import Autoencoder
from .reconstruction import as_2d, pca_basis, reconstruct, sample_errors

__all__ = ["RateDistortion", "pca_equivalent_code_size", "pca_error_curve", "rate_distortion"]


def pca_error_curve(X_train, X_test, code_sizes: Sequence[int] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean test error of PCA for every code size, from one eigendecomposition.

    With μ the training mean and v_1, ..., v_r the principal axes of the training data
    (eigenvectors of the covariance, eigenvalues descending),
    ``e_k = (1/n) Σ_i (‖x_i − μ‖² − Σ_{l<=k} (v_lᵀ(x_i − μ))²)``, the mean over test samples
    of ``Σ_j (x_ij − x̂_ij)²`` for the k-component PCA reconstruction. Non-increasing in k.

    Parameters
    ----------
    X_train : array-like, shape (n_train, d)
    X_test : array-like, shape (n, d)
    code_sizes : sequence of int, optional
        k values, each in [1, min(n_train, d)]; all of them by default.

    Returns
    -------
    code_sizes : ndarray of int, shape (m,)
    errors : ndarray of float64, shape (m,)

    References
    ----------
    Eckart & Young, "The approximation of one matrix by another of lower rank",
    Psychometrika 1936. Baldi & Hornik, "Neural networks and principal component analysis",
    Neural Networks 1989.
    """
    Xt = as_2d(X_train, "X_train").astype(np.float64)
    Xs = as_2d(X_test, "X_test", Xt.shape[1]).astype(np.float64)
    if len(Xt) < 2 or len(Xs) < 1:
        raise ValueError(f"need >= 2 training and >= 1 test samples, got {len(Xt)} and "
                         f"{len(Xs)}")
    r = min(len(Xt), Xt.shape[1])
    ks = np.arange(1, r + 1) if code_sizes is None else np.asarray(code_sizes, dtype=int)
    if ks.ndim != 1 or ks.size == 0 or ks.min() < 1 or ks.max() > r:
        raise ValueError(f"code_sizes must be a non-empty list of ints in [1, {r}], got "
                         f"{code_sizes}")
    mu, V = pca_basis(Xt, int(ks.max()))            # (d,), (k_max, d)
    D = Xs - mu
    total = (D ** 2).sum(1)                          # (n,)
    captured = np.cumsum((D @ V.T) ** 2, axis=1)       # (n, k_max)
    err = np.maximum(total[:, None] - captured, 0.0).mean(0)
    # Rounding can make e_k tick up by ~1e-16 relative; the exact curve never increases.
    err = np.minimum.accumulate(err)
    return ks, err[ks - 1]


def pca_equivalent_code_size(error: float, code_sizes, pca_errors) -> int | None:
    """Smallest PCA code size whose mean error is <= ``error`` (None if no listed k reaches
    it): "this autoencoder is as good as PCA with k components"."""
    ks = np.asarray(code_sizes)
    e = np.asarray(pca_errors, dtype=np.float64)
    if ks.shape != e.shape or ks.ndim != 1:
        raise ValueError(f"code_sizes and pca_errors must be 1-D of one length, got "
                         f"{ks.shape} and {e.shape}")
    hit = np.nonzero(e <= float(error))[0]
    return int(ks[hit[0]]) if hit.size else None


class RateDistortion(NamedTuple):
    """Test error against code size for a set of models and PCA of the same sizes."""

    code_sizes: np.ndarray  # (m,) k of each model
    ae_error: np.ndarray    # (m,) mean of Σ_j (x_ij − x̂_ij)² over the test samples
    pca_error: np.ndarray   # (m,) the same for PCA with k components
    labels: list[str]       # (m,) one name per model


def rate_distortion(models: Sequence[Autoencoder], X_train, X_test, *,
                    labels: Sequence[str] | None = None) -> RateDistortion:
    """Mean test reconstruction error of each model and of PCA with the same code size.

    Parameters
    ----------
    models : sequence of Autoencoder
        Trained models on the same data (any code sizes, in any order).
    X_train : array-like, shape (n_train, d)
        PCA is fitted here (the models' training data).
    X_test : array-like, shape (n, d)
    labels : sequence of str, optional
        One name per model; ``"<name> k=<k>"`` by default.

    Returns
    -------
    RateDistortion, ordered by code size (stable for equal sizes).
    """
    models = list(models)
    if not models:
        raise ValueError("models must not be empty")
    if labels is not None and len(labels) != len(models):
        raise ValueError(f"labels has {len(labels)} entries for {len(models)} models")
    names = list(labels) if labels is not None else [f"{m.name} k={m.n_components}"
                                                      for m in models]
    Xs = as_2d(X_test, "X_test", models[0].n_features)
    ks = np.array([m.n_components for m in models], dtype=int)
    ae = np.array([sample_errors(Xs, reconstruct(m, Xs)).mean() for m in models])
    uk, pe = pca_error_curve(X_train, Xs, sorted(set(ks.tolist())))
    pca = np.array([pe[list(uk).index(k)] for k in ks])
    order = np.argsort(ks, kind="stable")
    return RateDistortion(ks[order], ae[order], pca[order], [names[i] for i in order])
