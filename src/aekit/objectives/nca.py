"""Neighbourhood components analysis as an objective term (nonlinear NCA)."""

from __future__ import annotations

import torch
from torch import nn

from ..data.batch import Batch
from ..models.base import AEOutput
from ..validation import Param
from .core import Term

__all__ = ["NCA", "nca_loss"]


def nca_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative expected number of correctly classified points under stochastic neighbours.

    ``p_ij = exp(−‖z_i − z_j‖²) / Σ_{k≠i} exp(−‖z_i − z_k‖²)`` (p_ii = 0) and
    ``O = Σ_i Σ_{j: y_j = y_i} p_ij``; returns ``−O / n``. Shapes (n, k), (n,) -> scalar.

    References
    ----------
    J. Goldberger, S. Roweis, G. Hinton & R. Salakhutdinov, "Neighbourhood components
    analysis", NIPS 2004, section 2; R. Salakhutdinov & G. Hinton, "Learning a nonlinear
    embedding by preserving class neighbourhood structure", AISTATS 2007, section 2.
    """
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"nca_loss needs codes (n, k) and labels (n,), got {tuple(z.shape)} "
                         f"and {tuple(y.shape)}")
    d2 = torch.cdist(z, z).pow(2)  # (n, n)
    eye = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    logp = torch.log_softmax(-d2.masked_fill(eye, float("inf")), dim=1)
    same = (y[:, None] == y[None, :]) & ~eye
    p_correct = (logp.exp() * same).sum(1)
    return -p_correct.mean()


class NCA(Term):
    """Nonlinear NCA on the model's code: ``R = −λ (1/n) Σ_i Σ_{j: y_j = y_i} p_ij`` within
    each mini-batch, with ``p_ij`` the stochastic-neighbour probabilities of :func:`nca_loss`
    in code space. The batch needs labels: train with ``data=(X, y)`` (int64 y) and an
    objective without a reconstruction loss, ``Objective(None, [NCA()])`` (the labels are
    the batch's target). Fine-tunes a pretrained encoder (Salakhutdinov & Hinton 2007,
    section 2).

    Parameters
    ----------
    lam : float
        Weight λ >= 0.

    References
    ----------
    Salakhutdinov & Hinton, AISTATS 2007, sections 2-3; Goldberger et al., NIPS 2004.
    """

    name = "nca"
    params = (Param("lam", float, 1.0, "weight λ of the NCA objective", lo=0),)

    def __init__(self, lam: float = 1.0):
        super().__init__()
        self.lam = self.check("lam", lam)

    def forward(self, model: nn.Module, batch: Batch, out: AEOutput | torch.Tensor
                ) -> torch.Tensor:
        if batch.y is None or batch.y.ndim != 1:
            raise ValueError("the NCA term needs class labels in the batch: train with "
                             "data=(X, y), y an int64 array of shape (n,)")
        z = out.code if isinstance(out, AEOutput) else out
        return self.lam * nca_loss(z.flatten(1), batch.y)
