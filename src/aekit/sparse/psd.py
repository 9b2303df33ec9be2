"""Predictive Sparse Decomposition (PSD): a dictionary and a fast encoder learned jointly.

Energy per sample, with the package's ½ scaling (the paper's λ is 2·``lam``):

    E(x, z; D, W) = ½‖x − D z‖² + λ‖z‖₁ + (α/2)‖z − F_W(x)‖²,
    F_W(x) = g ⊙ tanh(W x + b)   (or g ⊙ σ(W x + b) for non-negative codes),

minimised by alternating (1) code inference ``z* = argmin_z E`` by FISTA warm-started at
the encoder's prediction, (2) a projected gradient step on ``D`` (unit-norm atoms) and (3) a
gradient step on the encoder ``(W, b, g)`` towards ``z*``. After training, ``F_W(x)`` is a
feed-forward approximation of the sparse code; :func:`psd_report` measures how close and
how much faster it is than the solver.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import torch
from torch import nn

from .dictionary import _bar, _check_positive_int, init_dictionary
from .prox import project_unit_norm
from .solvers import _check_problem, fista, lasso_objective, lipschitz_constant

__all__ = ["PSD", "PSDHistory", "PSDReport", "fit_psd", "psd_energy", "psd_report"]


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
    D : buffer (d, k), unit-norm columns (updated by :func:`fit_psd`, not by autograd)

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
        d = _check_positive_int(n_features, "n_features")
        k = _check_positive_int(n_components, "n_components")
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


class PSDHistory(NamedTuple):
    """Per-epoch means: ``energy`` (PSD energy at the inferred codes), ``prediction``
    (``(α/2)‖z* − F(x)‖²``), ``solver_iters`` (mean FISTA iterations per batch)."""

    energy: list[float]
    prediction: list[float]
    solver_iters: list[float]


def fit_psd(X: torch.Tensor, n_components: int, *, lam: float = 0.5, alpha: float = 1.0,
            encoder: str = "tanh", epochs: int = 10, batch_size: int = 128,
            lr_dict: float = 0.1, lr_encoder: float = 3e-3, solver_max_iter: int = 100,
            solver_tol: float = 1e-3, dict_init: torch.Tensor | None = None,
            model: PSD | None = None, generator: torch.Generator | None = None,
            progress: bool | None = None) -> tuple[PSD, PSDHistory]:
    """Train a :class:`PSD` model on X (n, d).

    Each mini-batch: ``z* = argmin_z E`` by FISTA from ``z = F(x)`` (the prediction term
    makes it strongly convex, so few iterations are needed); ``D ← Π(D + η (x − Dz*)ᵀ z* /
    (m·L_z))`` with ``L_z`` the largest eigenvalue of ``z*ᵀz*/m`` and Π the projection on
    unit-norm columns; one Adam step on ``(W, b, g)`` for ``(α/2)‖z* − F(x)‖²``.

    Parameters
    ----------
    X : Tensor (n, d)
    n_components : int
    lam : float, default=0.5
        λ of the ℓ1 term.
    alpha : float, default=1.0
        α, weight of the prediction term.
    encoder : {"tanh", "sigmoid", "shrink"}, default="tanh"
        ``"shrink"`` starts at the thresholding code ``S_λ(Dᵀx)`` (b = λ).
    epochs, batch_size : int
    lr_dict : float, default=0.1
        Dictionary step as a fraction of the batch's 1/L step.
    lr_encoder : float, default=3e-3
        Adam learning rate of the encoder.
    solver_max_iter, solver_tol : FISTA settings for code inference.
    dict_init : Tensor (d, k), optional
    model : PSD, optional
        Continue training this model.
    generator : torch.Generator, optional
    progress : bool, optional

    Returns
    -------
    model : PSD; history : PSDHistory

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun 2008, §2.1 (learning algorithm).
    """
    _check_problem(X, torch.ones(X.shape[1] if X.ndim == 2 else 1, 1, dtype=X.dtype), lam)
    if X.shape[0] == 0:
        raise ValueError(f"X must have at least one sample, got shape {tuple(X.shape)}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    for name, v in (("lr_dict", lr_dict), ("lr_encoder", lr_encoder)):
        if not v >= 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    epochs = _check_positive_int(epochs, "epochs")
    bs = min(_check_positive_int(batch_size, "batch_size"), X.shape[0])
    n, d = X.shape
    if model is None:
        model = PSD(d, n_components, encoder=encoder, dtype=X.dtype)
        with torch.no_grad():
            D = init_dictionary(X, n_components, generator=generator) if dict_init is None \
                else project_unit_norm(dict_init.detach().to(X.dtype).clone())
            model.D.copy_(D)
            # Start the encoder at the transposed dictionary (a matched filter).
            model.W.copy_(D.T)
            if encoder == "shrink":
                model.b.fill_(lam)
    opt = torch.optim.Adam(model.parameters(), lr=lr_encoder)
    hist = PSDHistory([], [], [])
    bar = _bar(epochs * ((n + bs - 1) // bs), "fit_psd", progress)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        e_sum = p_sum = it_sum = 0.0
        n_b = 0
        L = lipschitz_constant(model.D)
        for s in range(0, n, bs):
            x = X[order[s:s + bs]]
            with torch.no_grad():
                zp = model.encode(x)
                z, info = fista(x, model.D, lam, init=zp, prior=zp, prior_weight=alpha,
                                positive=model.positive, max_iter=solver_max_iter,
                                tol=solver_tol, L=L)
                e_sum += float(psd_energy(x, z, model.D, zp, lam=lam, alpha=alpha).sum())
                it_sum += info.n_iter
                # Projected gradient step on D for ½‖x − Dz‖² (mean over the batch).
                m = x.shape[0]
                Lz = float(torch.linalg.eigvalsh((z.T @ z / m).double())[-1])
                if Lz > 1e-12:
                    R = x - z @ model.D.T
                    model.D.add_(R.T @ z, alpha=lr_dict / (m * Lz))
                    model.D.copy_(project_unit_norm(model.D))
                    L = lipschitz_constant(model.D)
            opt.zero_grad(set_to_none=True)
            pred = 0.5 * alpha * (z - model.encode(x)).pow(2).sum(1).mean()  # (α/2)‖z* − F(x)‖²
            pred.backward()
            opt.step()
            p_sum += pred.item() * x.shape[0]
            n_b += 1
            if bar is not None:
                bar.update(1)
        hist.energy.append(e_sum / n)
        hist.prediction.append(p_sum / n)
        hist.solver_iters.append(it_sum / max(n_b, 1))
        if bar is not None:
            bar.set_postfix(energy=f"{hist.energy[-1]:.4g}")
    if bar is not None:
        bar.close()
    return model, hist


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
