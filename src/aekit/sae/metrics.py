"""Sparse-autoencoder metrics: fraction of variance unexplained, L0, dead latents.

All of them stream over the data chunk by chunk (arrays or ``.npy`` files of any size) and
accumulate in float64.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .data import as_activations

__all__ = ["SAEMetrics", "dead_fraction", "evaluate_sae", "fvu", "l0"]


def fvu(X: Any, X_hat: Any) -> float:
    """Fraction of variance unexplained, ``Σ_i ‖x_i − x̂_i‖² / Σ_i ‖x_i − x̄‖²``.

    ``x̄`` is the mean row of ``X``; 0 is a perfect reconstruction, 1 is as good as predicting
    the mean. Shapes (n, d), (n, d) -> float. A constant ``X`` (zero variance) is an error.

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, section 2.1 (normalised
    MSE: the MSE divided by that of the mean-activation baseline).
    """
    X = np.asarray(X, dtype=np.float64)
    R = np.asarray(X_hat, dtype=np.float64)
    if X.shape != R.shape or X.ndim != 2:
        raise ValueError(f"X and X_hat must both be (n, d), got {X.shape} and {R.shape}")
    den = float(((X - X.mean(0)) ** 2).sum())
    if den <= 0:
        raise ValueError("X has zero variance: the FVU is undefined")
    return float(((X - R) ** 2).sum()) / den


def l0(Z: Any) -> float:
    """Mean number of non-zero latents per sample, ``(1/n) Σ_i ‖z_i‖₀``. (n, L) -> float.

    References
    ----------
    Gao et al. 2024, section 2.1 (L0 = k for a TopK autoencoder).
    """
    Z = np.asarray(Z)
    if Z.ndim != 2 or len(Z) == 0:
        raise ValueError(f"Z must be a non-empty (n, L) array, got shape {Z.shape}")
    return float((Z != 0).sum(1).mean())


def dead_fraction(Z: Any, window: int | None = None) -> float:
    """Fraction of latents that are zero on every one of the first ``window`` samples.

    ``(1/L) #{l : z_il = 0 for all i < window}``; ``window=None`` uses every row. (n, L) ->
    float. Gao et al. call a latent dead when it has not fired in 10⁷ tokens.

    References
    ----------
    Gao et al. 2024, section 2.4 (dead latents).
    """
    Z = np.asarray(Z)
    if Z.ndim != 2 or len(Z) == 0:
        raise ValueError(f"Z must be a non-empty (n, L) array, got shape {Z.shape}")
    if window is not None:
        if int(window) < 1:
            raise ValueError(f"window must be >= 1 tokens, got {window}")
        Z = Z[:int(window)]
    return float((~(Z != 0).any(0)).mean())


class SAEMetrics(NamedTuple):
    """What :func:`evaluate_sae` returns.

    Attributes
    ----------
    fvu : float
        Fraction of variance unexplained over the window.
    l0 : float
        Mean non-zero latents per sample.
    dead_fraction : float
        Fraction of latents that never fired in the window.
    mse : float
        Mean squared error per sample, ``(1/n) Σ_i ‖x_i − x̂_i‖²``.
    n_tokens : int
        Rows evaluated (the window).
    fire_counts : ndarray (L,)
        How many rows of the window each latent fired on.
    """

    fvu: float
    l0: float
    dead_fraction: float
    mse: float
    n_tokens: int
    fire_counts: np.ndarray

    def as_dict(self) -> dict[str, float]:
        """The scalar metrics as a JSON-ready dict."""
        return {"fvu": self.fvu, "l0": self.l0, "dead_fraction": self.dead_fraction,
                "mse": self.mse, "n_tokens": self.n_tokens}


@torch.no_grad()
def evaluate_sae(model, X: Any, *, window: int | None = None, batch_size: int = 4096
                 ) -> SAEMetrics:
    """FVU, L0 and the dead-latent fraction of ``model`` on ``X``, in one streaming pass.

    ``X`` (n, d) is an array, ``.npy`` path, :class:`~aekit.data.NpyReader` or
    :class:`~aekit.sae.ActivationSource`; only its first ``window`` rows are used (all rows
    when None). The model runs in eval mode (BatchTopK uses its learned threshold).
    FVU = ``Σ‖x − x̂‖² / Σ‖x − x̄‖²`` with ``Σ‖x − x̄‖² = Σ‖x‖² − m‖x̄‖²`` accumulated in
    float64 over the m rows.

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, sections 2.1 and 2.4.
    """
    src = as_activations(X, n_features=model.n_features)
    n = len(src) if window is None else min(len(src), int(window))
    if window is not None and int(window) < 1:
        raise ValueError(f"window must be >= 1 tokens, got {window}")
    was = model.training
    model.eval()
    L = model.n_components
    counts = torch.zeros(L, dtype=torch.float64)
    sse = sq = 0.0
    s = torch.zeros(model.n_features, dtype=torch.float64)
    nnz = 0
    try:
        for i in range(0, n, batch_size):
            x = src.rows(i, min(i + batch_size, n)).to(next(model.parameters()).dtype)
            out = model(x)
            z = out.code
            nz = z != 0
            counts += nz.sum(0, dtype=torch.float64)
            nnz += int(nz.sum())
            x64 = x.to(torch.float64)
            sse += float((x64 - out.reconstruction.to(torch.float64)).pow(2).sum())
            sq += float(x64.pow(2).sum())
            s += x64.sum(0)
    finally:
        model.train(was)
    den = sq - float(s.pow(2).sum()) / n
    if not den > 0:
        raise ValueError("the activations have zero variance over the window: FVU undefined")
    fc = counts.numpy()
    return SAEMetrics(fvu=sse / den, l0=nnz / n, dead_fraction=float((fc == 0).mean()),
                      mse=sse / n, n_tokens=n, fire_counts=fc)
