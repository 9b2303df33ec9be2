"""Predictive Sparse Decomposition (PSD): a dictionary with a fast feed-forward encoder.

Energy per sample, with the package's ½ scaling (the paper's λ is 2·``lam``):

    E(x, z; D, W) = ½‖x − D z‖² + λ‖z‖₁ + (α/2)‖z − F_W(x)‖²,
    F_W(x) = g ⊙ tanh(W x + b)   (or g ⊙ σ(W x + b) for non-negative codes).

The model is here; its training objective is the term :class:`aekit.objectives.PSDPrediction`
and :func:`aekit.train.psd.fit_psd` trains it through :func:`aekit.fit`. After training,
``F_W(x)`` is a feed-forward approximation of the sparse code; :func:`psd_report` measures
how close and how much faster it is than the solver.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import torch
from torch import nn

from ..sparse.common import lasso_objective
from ..sparse.ista import fista
from ..validation import check_int

__all__ = ["PSD", "PSDReport", "psd_energy", "psd_report"]


class PSD(nn.Module):
    """PSD model: encoder ``F(x) = g ⊙ act(W x + b)`` and dictionary ``D`` (d, k).

    With ``encoder="shrink"`` the encoder is a learned soft threshold,
    ``F(x) = g ⊙ sign(Wx) ⊙ max(|Wx| − b, 0)`` (b ≥ 0 per unit), which outputs exact zeros;
    at ``W = Dᵀ, b = λ, g = 1`` it is the one-step thresholding code ``S_λ(Dᵀx)``
    (Gregor & LeCun 2010, LISTA with no iterations).

    Parameters
    ----------
    n_features : int
        d.
    n_components : int
        k (code size, usually ≥ d).
    encoder : {"tanh", "sigmoid", "shrink"}, default="tanh"
        ``"sigmoid"`` gives non-negative codes (the lecture notes' ``σ(Wx)``); inference is
        then constrained to ``z ≥ 0``. ``"shrink"``: the learned soft threshold above.
    dtype : torch.dtype, default=torch.float32

    Attributes
    ----------
    W : Parameter (k, d); b : Parameter (k,); g : Parameter (k,)
    D : buffer (d, k), unit-norm columns (updated by :func:`aekit.train.psd.fit_psd`, not by
        autograd)

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun, "Fast inference in sparse coding algorithms with
    applications to object recognition", CBLL-TR-2008-12-01 (arXiv:1010.3467), §2.
    """

    def __init__(self, n_features: int, n_components: int, *, encoder: str = "tanh",
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        if encoder not in ("tanh", "sigmoid", "shrink"):
            raise ValueError(f"encoder must be 'tanh', 'sigmoid' or 'shrink', got {encoder!r}")
        d = check_int("n_features", n_features, 1)
        k = check_int("n_components", n_components, 1)
        self.encoder = encoder
        self.W = nn.Parameter(torch.zeros(k, d, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(k, dtype=dtype))
        self.g = nn.Parameter(torch.ones(k, dtype=dtype))
        self.register_buffer("D", torch.zeros(d, k, dtype=dtype))

    @property
    def positive(self) -> bool:
        return self.encoder == "sigmoid"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted codes ``g ⊙ act(x Wᵀ + b)``: (n, d) -> (n, k)."""
        if self.encoder == "shrink":
            a = x @ self.W.T
            return self.g * torch.sign(a) * torch.relu(a.abs() - self.b.abs())
        a = torch.addmm(self.b, x, self.W.T)
        return self.g * (torch.tanh(a) if self.encoder == "tanh" else torch.sigmoid(a))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``D z``: (n, k) -> (n, d)."""
        return z @ self.D.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the predicted code, ``D F(x)``: (n, d) -> (n, d)."""
        return self.decode(self.encode(x))


def psd_energy(x: torch.Tensor, z: torch.Tensor, D: torch.Tensor, z_pred: torch.Tensor, *,
               lam: float, alpha: float) -> torch.Tensor:
    """Per-sample PSD energy ``½‖x − Dz‖² + λ‖z‖₁ + (α/2)‖z − F(x)‖²``: -> (n,).

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun 2008, eq. (2) (halved).
    """
    return (0.5 * (x - z @ D.T).pow(2).sum(1) + lam * z.abs().sum(1)
            + 0.5 * alpha * (z - z_pred).pow(2).sum(1))


class PSDReport(NamedTuple):
    """How well the PSD encoder approximates the optimal sparse codes (see psd_report)."""

    rel_code_error: float  # ‖F(X) − Z*‖_F / ‖Z*‖_F
    encoder_objective: float  # mean ½‖x − D F(x)‖² + λ‖F(x)‖₁
    optimal_objective: float  # the same at Z* (FISTA to tol)
    zero_objective: float  # the same at z = 0 (½‖x‖²), for scale
    objective_gap: float  # (encoder − optimal) / optimal
    encoder_time_s: float
    solver_time_s: float
    speedup: float  # solver_time / encoder_time
    solver_n_iter: int


@torch.no_grad()
def psd_report(model: PSD, X: torch.Tensor, lam: float, *, solver_tol: float = 1e-4,
               solver_max_iter: int = 1000, repeats: int = 3) -> PSDReport:
    """Compare the encoder's codes ``F(X)`` with the Lasso codes ``Z*`` of the learned D.

    ``Z* = argmin ½‖x − Dz‖² + λ‖z‖₁`` (FISTA from zero, no prediction term). Times are the
    best of ``repeats`` runs of the encoder and of the solver on all of X.

    Parameters
    ----------
    model : PSD; X : Tensor (n, d); lam : float
    solver_tol, solver_max_iter : FISTA settings for ``Z*``.
    repeats : int, default=3

    Returns
    -------
    PSDReport

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun 2008, §3 (encoder vs optimal codes, speed).
    """
    D = model.D
    t_enc, t_sol = float("inf"), float("inf")
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        Ze = model.encode(X)
        t_enc = min(t_enc, time.perf_counter() - t0)
        t0 = time.perf_counter()
        Zs, info = fista(X, D, lam, positive=model.positive, tol=solver_tol,
                         max_iter=solver_max_iter)
        t_sol = min(t_sol, time.perf_counter() - t0)
    f_enc = lasso_objective(X, D, Ze, lam)[0]
    f_opt = lasso_objective(X, D, Zs, lam)[0]
    f_zero = 0.5 * float(X.double().pow(2).sum()) / max(X.shape[0], 1)
    rel = float(torch.linalg.norm(Ze - Zs) / torch.linalg.norm(Zs).clamp_min(1e-30))
    return PSDReport(rel, f_enc, f_opt, f_zero, (f_enc - f_opt) / max(abs(f_opt), 1e-30),
                     t_enc, t_sol, t_sol / max(t_enc, 1e-9), info.n_iter)
