"""The latents' top-activating examples: for each latent, the rows of X where it is largest."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .data import as_activations

__all__ = ["TopExamples", "top_activating_examples"]


class TopExamples(NamedTuple):
    """What :func:`top_activating_examples` returns.

    Attributes
    ----------
    latents : ndarray (m,)
        The latents described.
    rows : ndarray (m, n_top) int64
        Row indices of X, largest activation first; -1 where the latent fired on fewer rows.
    values : ndarray (m, n_top)
        The activations ``z_il`` at those rows (0 where it did not fire).
    frequency : ndarray (m,)
        Fraction of rows on which each latent fired.
    """

    latents: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    frequency: np.ndarray


@torch.no_grad()
def top_activating_examples(model, X: Any, *, n_top: int = 10, latents: Any = None,
                            batch_size: int = 4096) -> TopExamples:
    """For each latent l, the ``n_top`` rows i of X with the largest code value ``z_il``.

    One streaming pass; per chunk the running (n_top, m) table is merged with the chunk's own
    top ``n_top`` by a second top-k, so memory is O(n_top · L + chunk · L). Ties keep the
    earlier row. Only rows where the latent fired (``z_il > 0``) are listed.

    Parameters
    ----------
    model : TopKSAE
    X : array, ``.npy`` path, NpyReader or ActivationSource (n, d)
    n_top : int
    latents : sequence of int, optional
        Latents to describe (default: all).

    References
    ----------
    Bricken et al., "Towards monosemanticity", 2023 (feature dashboards: top activations);
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, section 4.
    """
    src = as_activations(X, n_features=model.n_features)
    L = model.n_components
    lat = np.arange(L) if latents is None else np.asarray(latents, dtype=np.int64).reshape(-1)
    if len(lat) == 0 or lat.min() < 0 or lat.max() >= L:
        raise ValueError(f"latents must be indices in [0, {L}), got {latents!r}")
    if int(n_top) < 1:
        raise ValueError(f"n_top must be >= 1, got {n_top}")
    n_top = int(n_top)
    lat_t = torch.from_numpy(lat)
    best_v = torch.full((n_top, len(lat)), -torch.inf, dtype=torch.float64)
    best_i = torch.full((n_top, len(lat)), -1, dtype=torch.long)
    fired = torch.zeros(len(lat), dtype=torch.float64)
    was = model.training
    model.eval()
    dtype = next(model.parameters()).dtype
    try:
        for start, x in src.chunks(batch_size):
            z = model.encode(x.to(dtype)).index_select(1, lat_t).to(torch.float64)  # (c, m)
            fired += (z > 0).sum(0)
            z = z.masked_fill(z <= 0, -torch.inf)
            idx = torch.arange(start, start + len(z)).unsqueeze(1).expand_as(z)
            v = torch.cat([best_v, z])
            i = torch.cat([best_i, idx])
            kk = min(n_top, len(v))
            # stable: sort by (-value, row) so ties keep the earlier row
            order = torch.argsort(-v, dim=0, stable=True)[:kk]
            best_v, best_i = v.gather(0, order), i.gather(0, order)
    finally:
        model.train(was)
    keep = torch.isfinite(best_v)
    rows = torch.where(keep, best_i, torch.full_like(best_i, -1)).T.numpy()
    vals = torch.where(keep, best_v, torch.zeros_like(best_v)).T.numpy()
    return TopExamples(lat, rows, vals, (fired / len(src)).numpy())
