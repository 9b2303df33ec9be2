"""Multinomial (softmax) reconstruction loss for bags of words."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..models.base import AEOutput

__all__ = ["multinomial_nll"]


def multinomial_nll(x: torch.Tensor, out: AEOutput | torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the word distribution per document: (n, V), (n, V) -> (n,).

    ``ℓ_i = −Σ_j p_ij log softmax(s_i)_j`` with ``p_ij = c_ij / Σ_j c_ij`` the document's
    word distribution from its counts (or already-normalised distribution) ``x`` and ``s`` the
    model's logits. Equals the multinomial negative log-likelihood of the document's words
    divided by its length (up to the multinomial coefficient). A document with no words has
    loss 0.

    References
    ----------
    Hinton & Salakhutdinov, Science 313, 2006 (softmax output for documents);
    Salakhutdinov & Hinton, "Replicated softmax", NIPS 2009, section 2.
    """
    logits = out.logits if isinstance(out, AEOutput) else out
    n = x.sum(1, keepdim=True)
    p = x / n.clamp_min(torch.finfo(x.dtype).tiny)
    return -(p * F.log_softmax(logits, dim=1)).sum(1)


multinomial_nll.part = "recon"  # type: ignore[attr-defined]
