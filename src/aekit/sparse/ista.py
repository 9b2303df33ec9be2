"""Proximal gradient for a batch of Lasso problems: ISTA and FISTA (with per-sample adaptive
restart and an optional quadratic prior, the inference step of PSD).

Two equivalent ways to form the gradient ``Dᵀ(Dz − x)`` are used, picked by cost: through
the residual ``x − Dz`` (``2·d·k`` flops per sample) when ``k > 2d`` (overcomplete), else
through the Gram matrix ``G = DᵀD`` (``k²`` flops). Either way the objective of every
iterate comes for free from the same product, so the trace costs nothing extra.
"""

from __future__ import annotations

import torch

from .common import SolveInfo, Trace, by_chunks, check_iter, check_problem, lipschitz_constant
from .prox import soft_threshold

__all__ = ["fista", "ista"]


class _Smooth:
    """The smooth part ``½‖x − Dz‖²`` on a working set of rows, via residual or Gram.

    ``lin(Z)`` returns a state ``S`` linear in ``Z`` (``Z Dᵀ`` or ``Z G``), so the state of a
    momentum point ``Y = Z + β(Z − Z')`` is the same combination of states, and
    ``fit_rows(Z, S)`` needs no further product with the dictionary (``grad_step`` one).
    """

    def __init__(self, X: torch.Tensor, D: torch.Tensor):
        d, k = D.shape
        self.D = D
        self.use_gram = k <= 2 * d
        if self.use_gram:
            self.G = D.T @ D  # (k, k)
            self.C = X @ D  # (n, k)
            self.xsq = X.pow(2).sum(1)  # (n,)
        else:
            self.X = X

    def lin(self, Z: torch.Tensor) -> torch.Tensor:
        return Z @ self.G if self.use_gram else Z @ self.D.T

    def grad_step(self, Y: torch.Tensor, S: torch.Tensor, step: float) -> torch.Tensor:
        """``Y − step·∇f(Y)`` from the state ``S`` of ``Y``, fused into one BLAS call."""
        if self.use_gram:
            return torch.add(Y, S - self.C, alpha=-step)
        return torch.addmm(Y, S - self.X, self.D, alpha=-step)

    def fit_rows(self, Z: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        if self.use_gram:  # ½‖x‖² − zᵀc + ½ zᵀGz
            return (0.5 * self.xsq + (Z * (0.5 * S - self.C)).sum(1)).clamp_min(0.0)
        return 0.5 * (self.X - S).pow(2).sum(1)

    def keep(self, mask: torch.Tensor) -> None:
        if self.use_gram:
            self.C = self.C[mask]
            self.xsq = self.xsq[mask]
        else:
            self.X = self.X[mask]


def _proximal_gradient(X, D, alpha, *, max_iter, tol, positive, init, accelerate, restart,
                       L, prior, prior_weight):
    check_problem(X, D, alpha, init)
    check_iter(max_iter, tol)
    if prior_weight < 0:
        raise ValueError(f"prior_weight must be >= 0, got {prior_weight}")
    if prior_weight > 0 and (prior is None or prior.shape != (X.shape[0], D.shape[1])):
        raise ValueError(f"prior must be a tensor of shape {(X.shape[0], D.shape[1])} when "
                         "prior_weight > 0")
    n, k = X.shape[0], D.shape[1]
    if L is None:
        L = lipschitz_constant(D)
    L = float(L) + prior_weight
    if not L > 0:
        raise ValueError(f"L must be > 0, got {L}")
    mu = float(prior_weight)
    step, thresh = 1.0 / L, alpha / L

    with torch.no_grad():
        smooth = _Smooth(X, D)
        Z = torch.zeros(n, k, dtype=X.dtype) if init is None else init.detach().clone()
        if positive:
            Z.clamp_(min=0.0)
        P = prior.detach() if mu > 0 else None
        out = Z.clone()
        idx = torch.arange(n)  # rows of the full batch still being solved
        S = smooth.lin(Z)

        def reg_rows(Zr, Pr):
            r = alpha * torch.linalg.vector_norm(Zr, 1, dim=1)
            if Pr is not None:
                r = r + 0.5 * mu * (Zr - Pr).pow(2).sum(1)
            return r

        trace = Trace(n)
        trace.record(smooth.fit_rows(Z, S), reg_rows(Z, P))
        Y, SY = Z, S
        t = torch.ones(n, 1, dtype=X.dtype)
        n_iter, converged = 0, n == 0
        for it in range(1, max_iter + 1):
            n_iter = it
            U = smooth.grad_step(Y, SY, step)
            if P is not None:
                U.add_(Y - P, alpha=-step * mu)
            Zn = soft_threshold(U, thresh, positive=positive)
            del U
            Sn = smooth.lin(Zn)
            dZ = Zn - Z
            if accelerate:
                t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
                beta = (t - 1.0) / t_new
                if restart:
                    # Gradient-based adaptive restart (O'Donoghue & Candès 2015, §3.2):
                    # the momentum points uphill when <y − z⁺, z⁺ − z> > 0.
                    bad = ((Y - Zn) * dZ).sum(1, keepdim=True) > 0
                    t_new = torch.where(bad, torch.ones_like(t_new), t_new)
                    beta = torch.where(bad, torch.zeros_like(beta), beta)
                Y = torch.addcmul(Zn, beta, dZ)
                SY = torch.addcmul(Sn, beta, Sn - S)
                t = t_new
            else:
                Y, SY = Zn, Sn
            Z, S = Zn, Sn
            fit_r, reg_r = smooth.fit_rows(Z, S), reg_rows(Z, P)
            trace.record(fit_r, reg_r)
            # Per-sample relative change; ≤ so that a sample stuck at z = 0 converges.
            done = torch.linalg.vector_norm(dZ, dim=1) <= tol * torch.linalg.vector_norm(Z, dim=1)
            n_done = int(done.sum())
            # Shrink the working set once enough rows are done (copying costs a pass).
            if n_done and (n_done == idx.numel() or n_done >= 0.05 * idx.numel()):
                out[idx[done]] = Z[done]
                trace.freeze(fit_r[done], reg_r[done])
                keep = ~done
                idx = idx[keep]
                if idx.numel() == 0:
                    converged = True
                    break
                Z, S, Y, SY, t = Z[keep], S[keep], Y[keep], SY[keep], t[keep]
                if P is not None:
                    P = P[keep]
                smooth.keep(keep)
        if not converged:
            out[idx] = Z
    return out, trace.info(n_iter, converged)


def ista(X: torch.Tensor, D: torch.Tensor, alpha: float, *, max_iter: int = 1000,
         tol: float = 1e-4, positive: bool = False, init: torch.Tensor | None = None,
         L: float | None = None,
         chunk_size: int | None = 8192) -> tuple[torch.Tensor, SolveInfo]:
    """Iterative shrinkage-thresholding (proximal gradient) for a batch of Lasso problems.

    ``z ← S_{λ/L}(z − Dᵀ(Dz − x)/L)`` with ``L = ‖D‖₂²``; solves
    ``min_z ½‖x − Dz‖² + λ‖z‖₁`` for every row of ``X``. The objective is non-increasing
    and ``F(z_t) − F* ≤ L‖z_0 − z*‖² / (2t)``.

    Parameters
    ----------
    X : Tensor, shape (n, d), float32 or float64
    D : Tensor, shape (d, k), same dtype, no zero columns
    alpha : float
        λ >= 0.
    max_iter : int, default=1000
    tol : float, default=1e-4
        A sample stops when ``‖z_t − z_{t−1}‖ ≤ tol·‖z_t‖``.
    positive : bool, default=False
        Constrain ``z ≥ 0``.
    init : Tensor, shape (n, k), optional
        Warm start.
    L : float, optional
        Lipschitz constant; computed by :func:`lipschitz_constant` when omitted.
    chunk_size : int or None, default=8192
        Rows solved together (the problems are independent; ``None``: all at once).

    Returns
    -------
    Z : Tensor, shape (n, k), dtype of X
    info : SolveInfo

    References
    ----------
    Daubechies, Defrise & De Mol, CPAM 57(11), 2004; Beck & Teboulle, SIAM J. Imaging Sci.
    2(1), 2009, §2 and Theorem 3.1.
    """
    check_problem(X, D, alpha, init)
    L = lipschitz_constant(D) if L is None else L
    return by_chunks(_proximal_gradient, X, chunk_size, ("init",), D=D, alpha=alpha,
                     max_iter=max_iter, tol=tol, positive=positive, init=init,
                     accelerate=False, restart=False, L=L, prior=None, prior_weight=0.0)


def fista(X: torch.Tensor, D: torch.Tensor, alpha: float, *, max_iter: int = 1000,
          tol: float = 1e-4, positive: bool = False, init: torch.Tensor | None = None,
          restart: bool = True, L: float | None = None, prior: torch.Tensor | None = None,
          prior_weight: float = 0.0,
          chunk_size: int | None = 8192) -> tuple[torch.Tensor, SolveInfo]:
    """FISTA with per-sample adaptive restart for a batch of Lasso problems.

    Solves ``min_z ½‖x − Dz‖² + λ‖z‖₁ [+ (μ/2)‖z − p‖²]`` for every row:
    ``z⁺ = S_{λ/L}(y − ∇f(y)/L)``, ``t⁺ = (1 + √(1 + 4t²))/2``,
    ``y⁺ = z⁺ + ((t − 1)/t⁺)(z⁺ − z)``, with ``L = ‖D‖₂² + μ``. With ``restart=True`` the
    momentum of a sample is reset (``t = 1``) when ``⟨y − z⁺, z⁺ − z⟩ > 0``. Without
    restart, ``F(z_t) − F* ≤ 2L‖z_0 − z*‖² / (t + 1)²``.

    Parameters
    ----------
    X : Tensor, shape (n, d), float32 or float64
    D : Tensor, shape (d, k), same dtype, no zero columns
    alpha : float
        λ >= 0.
    max_iter : int, default=1000
    tol : float, default=1e-4
        A sample stops when ``‖z_t − z_{t−1}‖ ≤ tol·‖z_t‖``.
    positive : bool, default=False
        Constrain ``z ≥ 0``.
    init : Tensor, shape (n, k), optional
        Warm start (e.g. an encoder's prediction).
    restart : bool, default=True
    L : float, optional
        ``‖D‖₂²``; computed when omitted (pass it when calling repeatedly with one D).
    prior, prior_weight : Tensor (n, k) and float μ >= 0, optional
        Adds ``(μ/2)‖z − p‖²`` to each objective (the prediction term of PSD); the trace's
        regulariser then includes it.
    chunk_size : int or None, default=8192
        Rows solved together (the problems are independent; ``None``: all at once).

    Returns
    -------
    Z : Tensor, shape (n, k), dtype of X
    info : SolveInfo

    References
    ----------
    Beck & Teboulle, SIAM J. Imaging Sci. 2(1), 2009, §4 and Theorem 4.4;
    O'Donoghue & Candès, "Adaptive restart for accelerated gradient schemes", Found. Comput.
    Math. 15, 2015, §3.2.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> D = torch.nn.functional.normalize(torch.randn(16, 32, generator=g), dim=0)
    >>> Z, info = fista(torch.randn(5, 16, generator=g), D, alpha=0.1)
    >>> Z.shape, info.objective[-1] <= info.objective[0]
    (torch.Size([5, 32]), True)
    """
    check_problem(X, D, alpha, init)
    L = lipschitz_constant(D) if L is None else L
    return by_chunks(_proximal_gradient, X, chunk_size, ("init", "prior"), D=D, alpha=alpha,
                     max_iter=max_iter, tol=tol, positive=positive, init=init,
                     accelerate=True, restart=restart, L=L, prior=prior,
                     prior_weight=prior_weight)
