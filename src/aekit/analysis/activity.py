"""Code-unit activity over a whole dataset: mean activation, active fraction, dead units."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..models.base import Autoencoder
from ..train.callbacks import Callback

__all__ = ["ActivityMonitor", "ActivityStats", "activity_stats", "unit_activity"]


class ActivityStats(NamedTuple):
    """Code-unit activity over a set of samples.

    Attributes
    ----------
    mean_activation : float
        Mean of h over samples and units (the average ρ̂_j for a sigmoid code).
    fraction_active : float
        Fraction of (sample, unit) entries with ``h > threshold``.
    dead_units : int
        Units never above the threshold on any sample.
    unit_mean : Tensor, shape (k,)
        Mean activation ρ̂_j of each unit.
    unit_frequency : Tensor, shape (k,)
        Fraction of samples on which each unit is above the threshold.
    """

    mean_activation: float
    fraction_active: float
    dead_units: int
    unit_mean: torch.Tensor
    unit_frequency: torch.Tensor


def activity_stats(codes: torch.Tensor, threshold: float = 0.0) -> ActivityStats:
    """Mean activation, fraction of active entries and dead units of a code matrix.

    ``ρ̂_j = (1/n) Σ_i h_ij``, ``f_j = (1/n) Σ_i 1[h_ij > t]``, dead units = #{j : f_j = 0}.

    Parameters
    ----------
    codes : Tensor or array, shape (n, k)
    threshold : float
        t; 0 for ReLU codes, e.g. 0.05 for sigmoid codes (which are never exactly 0).

    Returns
    -------
    ActivityStats

    References
    ----------
    Ng, "Sparse autoencoder", CS294A lecture notes 2011, section 3 (average activation ρ̂_j).
    """
    H = torch.as_tensor(codes).detach()
    if H.ndim != 2 or H.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty (n, k) matrix, got shape {tuple(H.shape)}")
    H = H if H.is_floating_point() else H.float()
    unit_mean = H.mean(0)
    unit_freq = (H > threshold).to(H.dtype).mean(0)
    return ActivityStats(float(unit_mean.mean()), float(unit_freq.mean()),
                         int((unit_freq == 0).sum()), unit_mean, unit_freq)


@torch.no_grad()
def unit_activity(model: Autoencoder, X, *, threshold: float = 0.0,
                  batch_size: int = 4096) -> ActivityStats:
    """Activity statistics of the code ``h = f(x)`` over every row of X, streamed in batches.

    ``ρ̂_j = (1/n) Σ_i h_ij``, ``f_j = (1/n) Σ_i 1[h_ij > t]``; a unit is dead when f_j = 0.
    The model is encoded in eval mode without corruption; the result equals
    :func:`activity_stats` on the full code matrix without holding it.

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (n, d)
    threshold : float
        t; 0 for ReLU codes, e.g. 0.05 for sigmoid codes.
    batch_size : int

    Returns
    -------
    ActivityStats
        ``mean_activation``, ``fraction_active``, ``dead_units``, ``unit_mean`` (k,),
        ``unit_frequency`` (k,).

    References
    ----------
    Ng, "Sparse autoencoder", CS294A lecture notes 2011, section 3.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    p = next(model.parameters())
    x = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    if x.ndim != 2 or x.shape[1] != model.n_features or x.shape[0] == 0:
        raise ValueError(f"X must have shape (n >= 1, {model.n_features}), "
                         f"got {tuple(x.shape)}")
    was = model.training
    model.eval()
    try:
        k = model.n_components
        # Accumulate in float64 so the means over many samples do not drift.
        s = torch.zeros(k, dtype=torch.float64)
        c = torch.zeros(k, dtype=torch.float64)
        for i in range(0, x.shape[0], int(batch_size)):
            h = model.encode(x[i:i + int(batch_size)].to(device=p.device, dtype=p.dtype))
            h = h.flatten(1).double().cpu()
            s += h.sum(0)
            c += (h > threshold).double().sum(0)
    finally:
        model.train(was)
    n = x.shape[0]
    unit_mean, unit_freq = (s / n).to(p.dtype), (c / n).to(p.dtype)
    return ActivityStats(float(s.sum() / (n * k)), float(c.sum() / (n * k)),
                         int((c == 0).sum()), unit_mean, unit_freq)


class ActivityMonitor(Callback):
    """``fit`` callback logging code activity every epoch: mean activation, fraction of
    active units (h > threshold) and dead units (never above it on ``X``).

    Adds ``code_mean_activation``, ``code_fraction_active`` and ``code_dead_units`` to each
    epoch's history record, measured in eval mode on a fixed sample ``X`` (n, d) so epochs are
    comparable.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Monitoring sample, e.g. 1,000 validation rows.
    threshold : float
        Activity threshold (0 for ReLU codes; e.g. 0.05 for sigmoid codes).

    Examples
    --------
    >>> fit(model, objective, X, callbacks=[ActivityMonitor(X_val[:1000])])  # doctest: +SKIP
    """

    def __init__(self, X, threshold: float = 0.0):
        self.X, self.threshold = X, float(threshold)

    def on_epoch_end(self, loop, record: dict) -> bool:
        model = loop.model
        was = model.training
        s = unit_activity(model, self.X, threshold=self.threshold)
        model.train(was)
        record["code_mean_activation"] = float(s.mean_activation)
        record["code_fraction_active"] = float(s.fraction_active)
        record["code_dead_units"] = int(s.dead_units)
        return False
