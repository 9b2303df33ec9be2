"""Per-sample Jacobians of an encoder (used by the contractive term and manifold analysis)."""

from __future__ import annotations

import warnings

import torch
from torch.func import jacfwd, jacrev, vmap

from .base import Autoencoder

__all__ = ["batch_jacobian"]


def batch_jacobian(model: Autoencoder, x: torch.Tensor, *,
                   chunk_size: int | None = None) -> torch.Tensor:
    """Exact per-sample encoder Jacobians ``J_i = ∂f(x_i)/∂x_i``: (n, d) -> (n, k, d).

    Computed with ``torch.func`` (``vmap`` of ``jacrev`` when k <= d, else ``jacfwd``) on the
    deterministic encoder: the model is put in eval mode for the call (batch norm uses its
    running statistics, dropout is off) and restored afterwards. The result stays
    differentiable with respect to the model's parameters, so it can be used in a loss.

    Parameters
    ----------
    model : Autoencoder
    x : Tensor, shape (n, d)
        Points at which to evaluate the Jacobian; same dtype as the model.
    chunk_size : int, optional
        Samples per vectorised chunk (bounds memory at chunk_size·k·d per chunk).

    Returns
    -------
    Tensor, shape (n, k, d)

    References
    ----------
    Rifai et al., "Contractive auto-encoders", ICML 2011, section 3 (the Jacobian J_f(x)).
    """
    def f(xi: torch.Tensor) -> torch.Tensor:  # (d,) -> (k,)
        return model.encode(xi.unsqueeze(0)).squeeze(0)

    k, d = int(model.n_components), int(x.shape[1])
    jac = jacrev(f) if k <= d else jacfwd(f)
    # A fresh copy (still differentiable): on a slice of a larger tensor, torch 2.13's
    # vmap(jacfwd) works on the whole underlying storage and ran out of memory (a 128-row
    # slice of a 10000 x 784 batch took > 20 GB for a 784-1000 encoder).
    x = x.clone(memory_format=torch.contiguous_format)
    was = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            # torch's forward-mode AD emits a one-off internal DeprecationWarning
            # (torch.jit.script) on first use; it is not actionable for aekit users.
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*",
                                    category=DeprecationWarning)
            return vmap(jac, chunk_size=chunk_size)(x)
    finally:
        model.train(was)

