"""Batch-norm running statistics recomputed from data with the current weights."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["recalibrate_batch_norm"]


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, X, batch_size: int = 1000) -> int:
    """Recompute the running mean and variance of every batch-norm layer of ``model`` from
    the data ``X`` with the current weights; returns the number of layers recalibrated.

    Each layer's statistics are reset and accumulated as a cumulative average over the
    batches of ``X`` (``momentum=None``): ``running_mean = (1/B) Σ_b μ_b`` and
    ``running_var = (1/B) Σ_b s²_b`` (unbiased batch variances), which for equal batches is
    the data mean exactly. Only the batch-norm layers run in train mode during the pass;
    every other module (dropout included) runs in eval mode, so the statistics are those of
    the eval-mode network. Training modes and momenta are restored afterwards.

    Why: the moving averages a batch-norm layer keeps during training lag behind its
    inputs' statistics when the weights below it move fast (e.g. fine-tuning pretrained
    layers), and an eval-mode network then normalises with stale statistics. This is the
    batch-norm update of stochastic weight averaging (Izmailov et al., "Averaging weights
    leads to wider optima and better generalization", UAI 2018), with the other modules
    kept in eval mode.

    Parameters
    ----------
    model : nn.Module
    X : Tensor or array, shape (n, ...)
        Inputs the model takes (e.g. the training set), in batches of ``batch_size``.
    batch_size : int
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    if not bns:
        return 0
    X = torch.as_tensor(X)
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"X must hold at least one sample, got shape {tuple(X.shape)}")
    if int(batch_size) < 2:
        raise ValueError(f"batch_size must be >= 2 (a variance needs two rows), got {batch_size}")
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in bns]
    try:
        model.eval()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        for i in range(0, len(X), int(batch_size)):
            xb = X[i:i + int(batch_size)]
            if len(xb) >= 2:
                model(xb)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        for m, t in modes.items():
            m.training = t
    return len(bns)
