"""The encoder's local geometry: Jacobians, their singular values and the tangent directions.

A contractive encoder ``h = f(x)`` is flat (small singular values of ``J_f(x)``) in most
directions and sensitive in a few: the leading right-singular vectors of ``J_f(x)`` span the
directions of the data manifold near x that the code keeps (Rifai et al. 2011, section 5.3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..models.base import Autoencoder
from ..models.jacobian import batch_jacobian
from ..validation import check_int

__all__ = ["encoder_jacobian", "jacobian_spectrum", "tangent_directions"]


def _as_input(model: Autoencoder, X) -> torch.Tensor:
    """(n, d) array-like -> tensor with the model's dtype and device."""
    p = next(model.parameters())
    t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    if t.ndim != 2 or t.shape[1] != model.n_features:
        raise ValueError(f"X must have shape (n, {model.n_features}), got {tuple(t.shape)}")
    t = t.detach().to(device=p.device, dtype=p.dtype)
    if not torch.isfinite(t).all():
        raise ValueError("X contains NaN or infinite values")
    return t


def _jacobian_chunks(model: Autoencoder, X, batch_size: int):
    x = _as_input(model, X)
    bs = check_int("batch_size", batch_size, 1)
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            yield batch_jacobian(model, x[i:i + bs])  # (b, k, d)


def encoder_jacobian(model: Autoencoder, X, *, batch_size: int = 256) -> torch.Tensor:
    """Exact encoder Jacobians ``J_i = ∂f(x_i)/∂x`` for every row of X.

    ``(J_i)_jl = ∂h_j(x_i)/∂x_l``, computed with ``torch.func`` on the model in eval mode
    (see :func:`aekit.analysis.batch_jacobian`).

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (n, d)
    batch_size : int
        Samples per vectorised chunk; memory is about batch_size·k·d numbers.

    Returns
    -------
    Tensor, shape (n, k, d), in the model's dtype, without gradient.

    References
    ----------
    Rifai et al., "Contractive auto-encoders", ICML 2011, section 3.
    """
    parts = list(_jacobian_chunks(model, X, batch_size))
    if not parts:
        p = next(model.parameters())
        return torch.zeros(0, model.n_components, model.n_features, dtype=p.dtype)
    return torch.cat(parts)


def jacobian_spectrum(model: Autoencoder, X, *, batch_size: int = 256) -> torch.Tensor:
    """Singular values of the encoder Jacobian at each sample, largest first.

    ``σ_1(J_f(x_i)) >= ... >= σ_r(J_f(x_i))``, r = min(k, d). A contractive encoder has most
    σ's well below 1 and a few large ones (the local manifold dimension); ``Σ σ² = ‖J‖²_F`` is
    the contractive penalty.

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (n, d)
    batch_size : int

    Returns
    -------
    Tensor, shape (n, min(k, d))

    References
    ----------
    Rifai et al., "Contractive auto-encoders", ICML 2011, section 5.3 and figure 2.
    """
    out = [torch.linalg.svdvals(J) for J in _jacobian_chunks(model, X, batch_size)]
    if not out:
        return torch.zeros(0, min(model.n_components, model.n_features))
    return torch.cat(out)


def tangent_directions(model: Autoencoder, X, n_dirs: int, *,
                       image_shape: Sequence[int] | None = None,
                       batch_size: int = 256) -> torch.Tensor:
    """Leading right-singular vectors of the encoder Jacobian: the local tangent directions.

    With ``J_f(x_i) = U S Vᵀ``, returns the first ``n_dirs`` rows of ``Vᵀ`` (unit vectors in
    input space, ordered by singular value): the input directions the code is most sensitive
    to, which for a contractive AE estimate the tangent plane of the data manifold at x_i.
    Each vector's sign is fixed so that its largest-magnitude entry is positive.

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (n, d)
    n_dirs : int
        Number of directions, 1 <= n_dirs <= min(k, d).
    image_shape : sequence of int, optional
        Reshape each direction to an image, e.g. ``(28, 28)``.
    batch_size : int

    Returns
    -------
    Tensor, shape (n, n_dirs, d), or (n, n_dirs, *image_shape)

    References
    ----------
    Rifai et al., "Contractive auto-encoders", ICML 2011, section 5.3 and figure 6;
    Rifai et al., "The manifold tangent classifier", NIPS 2011, section 3.
    """
    r = min(model.n_components, model.n_features)
    if not 1 <= int(n_dirs) <= r:
        raise ValueError(f"n_dirs must be in [1, {r}] (min(k, d)), got {n_dirs}")
    n_dirs = int(n_dirs)
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) != model.n_features:
            raise ValueError(f"image_shape {image_shape} does not hold "
                             f"{model.n_features} features")
    out = []
    for J in _jacobian_chunks(model, X, batch_size):
        Vh = torch.linalg.svd(J, full_matrices=False).Vh[:, :n_dirs]  # (b, n_dirs, d)
        # Singular vectors are defined up to sign; make the largest entry positive.
        idx = Vh.abs().argmax(-1, keepdim=True)
        Vh = Vh * torch.sign(Vh.gather(-1, idx))
        out.append(Vh)
    p = next(model.parameters())
    V = torch.cat(out) if out else torch.zeros(0, n_dirs, model.n_features, dtype=p.dtype)
    if image_shape is not None:
        V = V.reshape(V.shape[0], n_dirs, *image_shape)  # (n, n_dirs, d) -> (n, n_dirs, H, W)
    return V
