"""Sparse-coding solvers for a batch: ``min_Z Σ_i ½‖x_i − D z_i‖² + λ‖z_i‖₁`` (and its L0 twin).

Shapes follow the package convention: ``X`` (n, d), dictionary ``D`` (d, k) with atoms as
columns so ``x ≈ D z``, codes ``Z`` (n, k). Every solver is a pure function returning
``(Z, SolveInfo)``; ``Z`` keeps the dtype of ``X`` (float32 or float64). The ``n`` problems
are independent, so each sample has its own momentum / restart / convergence test, and
samples that have converged are dropped from the working set (the batch shrinks as it runs).

The objective reported everywhere is the **mean over samples** of the per-sample objective
``½‖x_i − D z_i‖² + λ‖z_i‖₁``; this ``λ`` is scikit-learn's ``sparse_encode(alpha=λ)`` and
``Lasso(alpha=λ / d)`` with ``D`` as the design matrix (Lasso divides the squared error by
its number of rows, here d).

Two equivalent ways to form the gradient ``Dᵀ(Dz − x)`` are used, picked by cost: through
the residual ``x − Dz`` (``2·d·k`` flops per sample) when ``k > 2d`` (overcomplete), else
through the Gram matrix ``G = DᵀD`` (``k²`` flops). Either way the objective of every
iterate comes for free from the same product, so the trace costs nothing extra.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .prox import soft_threshold

__all__ = [
    "ALGORITHMS",
    "SolveInfo",
    "coordinate_descent",
    "feature_sign",
    "fista",
    "homotopy",
    "ista",
    "lasso_objective",
    "lipschitz_constant",
    "omp",
    "sparse_encode",
]


class SolveInfo(NamedTuple):
    """Trace of a solver run.

    Attributes
    ----------
    objective : list of float
        Mean per-sample objective ``(1/n) Σ_i [½‖x_i − D z_i‖² + λ‖z_i‖₁]`` before the first
        iteration (index 0) and after each iteration / sweep. For :func:`omp` the
        regulariser is the mean number of non-zeros (the objective is then ``fit + ‖z‖₀``
        for reporting only).
    data_fit : list of float
        Mean ``½‖x_i − D z_i‖²`` along the same iterations.
    regulariser : list of float
        Mean ``λ‖z_i‖₁`` (``‖z_i‖₀`` for OMP) along the same iterations.
    n_iter : int
        Iterations (sweeps for coordinate descent, atoms for OMP) run by the slowest sample.
    converged : bool
        Whether every sample met the tolerance before ``max_iter``.
    """

    objective: list[float]
    data_fit: list[float]
    regulariser: list[float]
    n_iter: int
    converged: bool


# ----------------------------------------------------------------------------- validation

def _check_problem(X: torch.Tensor, D: torch.Tensor, alpha: float | None = None,
                   init: torch.Tensor | None = None) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(D, torch.Tensor):
        raise ValueError(f"X and D must be torch tensors, got {type(X).__name__} and "
                         f"{type(D).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d), got {tuple(X.shape)}")
    if D.ndim != 2:
        raise ValueError(f"D must have shape (d, k), got {tuple(D.shape)}")
    if X.shape[1] != D.shape[0]:
        raise ValueError(f"X has {X.shape[1]} features but D has {D.shape[0]} rows; D must be "
                         "(d, k) with atoms as columns")
    if X.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"X must be float32 or float64, got {X.dtype}")
    if D.dtype != X.dtype:
        raise ValueError(f"D has dtype {D.dtype} but X has {X.dtype}; pass both in one dtype")
    if D.shape[1] == 0 or D.shape[0] == 0:
        raise ValueError(f"D must have at least one atom and one feature, got {tuple(D.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or infinite values")
    if not bool(torch.isfinite(D).all()):
        raise ValueError("D contains NaN or infinite values")
    zero = torch.linalg.vector_norm(D, dim=0) == 0
    if bool(zero.any()):
        idx = torch.nonzero(zero).flatten()[:10].tolist()
        raise ValueError(f"D has {int(zero.sum())} zero-norm atoms (columns {idx}...); every "
                         "atom needs a direction")
    if alpha is not None and not (isinstance(alpha, int | float) and alpha >= 0
                                  and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite float >= 0, got {alpha}")
    if init is not None:
        if not isinstance(init, torch.Tensor) or init.shape != (X.shape[0], D.shape[1]):
            shape = tuple(init.shape) if isinstance(init, torch.Tensor) else type(init).__name__
            raise ValueError(f"init must be a tensor of shape {(X.shape[0], D.shape[1])}, "
                             f"got {shape}")
        if not bool(torch.isfinite(init).all()):
            raise ValueError("init contains NaN or infinite values")


def _check_iter(max_iter: int, tol: float) -> None:
    if not (isinstance(max_iter, int | np.integer) and max_iter >= 1):
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    if not (isinstance(tol, int | float) and tol >= 0):
        raise ValueError(f"tol must be a float >= 0, got {tol!r}")


def lipschitz_constant(D: torch.Tensor) -> float:
    """Lipschitz constant of ``z ↦ Dᵀ(Dz − x)``: ``L = ‖D‖₂² = σ_max(D)²``.

    Parameters
    ----------
    D : Tensor, shape (d, k)

    Returns
    -------
    float

    References
    ----------
    Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
    problems", SIAM J. Imaging Sci. 2(1), 2009, §1 (step size 1/L).
    """
    # The spectral norm of the (d, k) matrix via the smaller Gram side, in float64 so a
    # slightly low float32 estimate cannot make the step too long.
    D64 = D.detach().double()
    M = D64 @ D64.T if D.shape[0] <= D.shape[1] else D64.T @ D64
    return float(torch.linalg.eigvalsh(M)[-1])


def lasso_objective(X: torch.Tensor, D: torch.Tensor, Z: torch.Tensor,
                    alpha: float) -> tuple[float, float, float]:
    """Mean per-sample Lasso objective and its two parts.

    ``F = (1/n) Σ_i [½‖x_i − D z_i‖² + λ‖z_i‖₁]``, returned as ``(F, fit, reg)``.

    Parameters
    ----------
    X : Tensor (n, d); D : Tensor (d, k); Z : Tensor (n, k); alpha : float (λ)

    Returns
    -------
    (float, float, float)
    """
    R = X - Z @ D.T
    fit = 0.5 * float(R.double().pow(2).sum()) / max(X.shape[0], 1)
    reg = alpha * float(Z.double().abs().sum()) / max(X.shape[0], 1)
    return fit + reg, fit, reg


# ------------------------------------------------------------------- smooth part, batched

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


class _Trace:
    """Objective trace over the full batch while the working set shrinks."""

    def __init__(self, n: int):
        self.n = max(n, 1)
        self.frozen_fit = 0.0
        self.frozen_reg = 0.0
        self.objective: list[float] = []
        self.data_fit: list[float] = []
        self.regulariser: list[float] = []

    def record(self, fit_rows: torch.Tensor, reg_rows: torch.Tensor) -> None:
        fit = (self.frozen_fit + float(fit_rows.sum())) / self.n
        reg = (self.frozen_reg + float(reg_rows.sum())) / self.n
        self.data_fit.append(fit)
        self.regulariser.append(reg)
        self.objective.append(fit + reg)

    def freeze(self, fit_rows: torch.Tensor, reg_rows: torch.Tensor) -> None:
        self.frozen_fit += float(fit_rows.sum())
        self.frozen_reg += float(reg_rows.sum())

    def info(self, n_iter: int, converged: bool) -> SolveInfo:
        return SolveInfo(self.objective, self.data_fit, self.regulariser, n_iter, converged)


def _merge_infos(infos: list[SolveInfo], sizes: list[int]) -> SolveInfo:
    """Trace of independent row chunks as one batch: a chunk that stopped early keeps its
    last value (its rows are frozen), exactly as inside one chunk."""
    n = max(sum(sizes), 1)
    T = max(len(i.objective) for i in infos)

    def merge(field):
        return [sum(s * getattr(i, field)[min(t, len(getattr(i, field)) - 1)]
                    for i, s in zip(infos, sizes)) / n for t in range(T)]
    return SolveInfo(merge("objective"), merge("data_fit"), merge("regulariser"),
                     max(i.n_iter for i in infos), all(i.converged for i in infos))


def _by_chunks(fn, X, chunk_size, rowwise, **kw):
    """Run ``fn`` on blocks of rows: the problems are independent, and blocks of ~8k rows
    keep the working tensors in cache and under the allocator's mmap threshold (one 100k-row
    block was measured ~3x slower per row)."""
    n = X.shape[0]
    if chunk_size is None or n <= chunk_size:
        return fn(X, **kw)
    if not (isinstance(chunk_size, int | np.integer) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be an int >= 1 or None, got {chunk_size!r}")
    parts, infos, sizes = [], [], []
    for i in range(0, n, chunk_size):
        sl = slice(i, i + chunk_size)
        sub = {k: (v[sl] if k in rowwise and v is not None else v) for k, v in kw.items()}
        Z, info = fn(X[sl], **sub)
        parts.append(Z)
        infos.append(info)
        sizes.append(Z.shape[0])
    return torch.cat(parts), _merge_infos(infos, sizes)


def _proximal_gradient(X, D, alpha, *, max_iter, tol, positive, init, accelerate, restart,
                       L, prior, prior_weight):
    _check_problem(X, D, alpha, init)
    _check_iter(max_iter, tol)
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

        trace = _Trace(n)
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
    _check_problem(X, D, alpha, init)
    L = lipschitz_constant(D) if L is None else L
    return _by_chunks(_proximal_gradient, X, chunk_size, ("init",), D=D, alpha=alpha,
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
    _check_problem(X, D, alpha, init)
    L = lipschitz_constant(D) if L is None else L
    return _by_chunks(_proximal_gradient, X, chunk_size, ("init", "prior"), D=D, alpha=alpha,
                      max_iter=max_iter, tol=tol, positive=positive, init=init,
                      accelerate=True, restart=restart, L=L, prior=prior,
                      prior_weight=prior_weight)


# ------------------------------------------------------------------- coordinate descent

def coordinate_descent(X: torch.Tensor, D: torch.Tensor, alpha: float, *, max_iter: int = 1000,
                       tol: float = 1e-4, positive: bool = False,
                       init: torch.Tensor | None = None,
                       chunk_size: int | None = 8192) -> tuple[torch.Tensor, SolveInfo]:
    """Cyclic coordinate descent for a batch of Lasso problems, all samples at once.

    For each atom ``j`` in turn, every sample's coefficient is set to its exact minimiser
    ``z_j ← S_λ(z_j‖d_j‖² + d_jᵀ r) / ‖d_j‖²`` and the residual ``r = x − Dz`` (or the
    gradient ``Gz − Dᵀx``, whichever is cheaper) is updated by a rank-one step, so a sweep
    costs one product with ``D``. The objective is non-increasing.

    Parameters
    ----------
    X : Tensor, shape (n, d); D : Tensor, shape (d, k), no zero columns
    alpha : float
        λ >= 0.
    max_iter : int, default=1000
        Maximum number of sweeps over the k coordinates.
    tol : float, default=1e-4
        A sample stops when a sweep changes it by ``‖Δz‖ ≤ tol·‖z‖``.
    positive : bool, default=False
    init : Tensor, shape (n, k), optional
    chunk_size : int or None, default=8192
        Rows solved together (``None``: all at once).

    Returns
    -------
    Z : Tensor, shape (n, k); info : SolveInfo (one entry per sweep)

    References
    ----------
    Friedman, Hastie, Höfling & Tibshirani, "Pathwise coordinate optimization", Ann. Appl.
    Stat. 1(2), 2007, §2; Wu & Lange, Ann. Appl. Stat. 2(1), 2008.
    """
    _check_problem(X, D, alpha, init)
    _check_iter(max_iter, tol)
    return _by_chunks(_cd, X, chunk_size, ("init",), D=D, alpha=alpha, max_iter=max_iter,
                      tol=tol, positive=positive, init=init)


def _cd(X, D, alpha, max_iter, tol, positive, init):
    n, d = X.shape
    k = D.shape[1]
    with torch.no_grad():
        use_gram = k <= 2 * d
        G = D.T @ D
        diag = torch.diagonal(G).tolist()  # ‖d_j‖² > 0 (checked)
        Z = torch.zeros(n, k, dtype=X.dtype) if init is None else init.detach().clone()
        if positive:
            Z.clamp_(min=0.0)
        out = Z.clone()
        idx = torch.arange(n)
        if use_gram:
            C = X @ D
            xsq = X.pow(2).sum(1)
            Q = Z @ G - C  # gradient of the smooth part, (n, k)
            QT = Q.T.contiguous()  # (k, n): coordinate j is a contiguous row
        else:
            R = X - Z @ D.T  # residual, (n, d)
        ZT = Z.T.contiguous()  # (k, n)
        Dt = D.T.contiguous()  # (k, d): rows are atoms

        def fit_rows():
            if use_gram:
                return (0.5 * xsq + 0.5 * (ZT * (QT - C.T)).sum(0)).clamp_min(0.0)
            return 0.5 * R.pow(2).sum(1)

        def reg_rows():
            return alpha * torch.linalg.vector_norm(ZT, 1, dim=0)

        trace = _Trace(n)
        trace.record(fit_rows(), reg_rows())
        n_iter, converged = 0, n == 0
        for it in range(1, max_iter + 1):
            n_iter = it
            Z0 = ZT.clone()
            for j in range(k):
                zj = ZT[j]
                if use_gram:
                    rho = torch.add(QT[j], zj, alpha=-diag[j]).neg_()
                else:
                    rho = torch.addmv(zj, R, Dt[j], beta=diag[j])
                new = soft_threshold(rho, alpha, positive=positive).div_(diag[j])
                delta = new - zj
                if use_gram:
                    QT.addr_(G[j], delta)
                else:
                    R.addr_(delta, Dt[j], alpha=-1.0)
                ZT[j] = new
            fit_r, reg_r = fit_rows(), reg_rows()
            trace.record(fit_r, reg_r)
            done = (torch.linalg.vector_norm(ZT - Z0, dim=0)
                    <= tol * torch.linalg.vector_norm(ZT, dim=0))
            if bool(done.any()):
                out[idx[done]] = ZT[:, done].T
                trace.freeze(fit_r[done], reg_r[done])
                keep = ~done
                idx = idx[keep]
                if idx.numel() == 0:
                    converged = True
                    break
                ZT = ZT[:, keep].contiguous()
                if use_gram:
                    QT, C, xsq = QT[:, keep].contiguous(), C[keep], xsq[keep]
                else:
                    R = R[keep]
        if not converged:
            out[idx] = ZT.T
    return out, trace.info(n_iter, converged)


# -------------------------------------------------------------------------- feature sign

def _feature_sign_one(G: np.ndarray, c: np.ndarray, lam: float, positive: bool,
                      max_iter: int, tol: float) -> tuple[np.ndarray, int, bool]:
    """One sample: ``min_z ½zᵀGz − cᵀz + λ‖z‖₁`` by the feature-sign search."""
    k = c.shape[0]
    z = np.zeros(k)
    theta = np.zeros(k)
    active = np.zeros(k, dtype=bool)
    grad = -c.copy()  # Gz − c
    scale = tol * max(lam, 1e-12)

    def objective(zA, A):
        return 0.5 * zA @ G[np.ix_(A, A)] @ zA - c[A] @ zA + lam * np.abs(zA).sum()

    it = 0
    while it < max_iter:
        # Step 2: activate the zero coefficient that violates optimality the most.
        viol = -grad if positive else np.abs(grad)
        viol = np.where(active, -np.inf, viol)
        i = int(np.argmax(viol))
        if not viol[i] > lam + scale:
            return z, it, True  # all zero coefficients satisfy |∂_i f| ≤ λ
        active[i] = True
        theta[i] = 1.0 if positive else -np.sign(grad[i])
        # Step 3: feature-sign steps until the nonzero coefficients are optimal.
        while it < max_iter:
            it += 1
            A = np.flatnonzero(active)
            GA = G[np.ix_(A, A)]
            rhs = c[A] - lam * theta[A]
            try:
                z_new = np.linalg.solve(GA, rhs)
            except np.linalg.LinAlgError:
                z_new = np.linalg.lstsq(GA, rhs, rcond=None)[0]
            zA = z[A]
            # Discrete line search over z_A → z_new: the end point and every sign change.
            ts = [1.0]
            flip = (zA != 0) & (np.sign(z_new) != np.sign(zA))
            if flip.any():
                ts += list(zA[flip] / (zA[flip] - z_new[flip]))
            if positive:  # never step into z < 0: stop at the first coefficient hitting 0
                neg = z_new < 0
                if neg.any():
                    tmax = float(np.min(np.where(zA[neg] > 0, zA[neg] / (zA[neg] - z_new[neg]),
                                                 0.0)))
                    ts = [t for t in ts if t <= tmax] + [tmax]
            ts = np.clip(np.array(ts), 0.0, 1.0)
            cands = zA[None, :] + ts[:, None] * (z_new - zA)[None, :]
            objs = [objective(cz, A) for cz in cands]
            best = int(np.argmin(objs))
            zA = cands[best]
            zA[np.abs(zA) <= 1e-14 * max(1.0, np.abs(zA).max(initial=0.0))] = 0.0
            z[A] = zA
            theta[A] = np.sign(zA)
            active[A] = zA != 0
            grad = G[:, A] @ zA - c
            nz = np.flatnonzero(active)
            # Step 4a: optimality of the nonzero coefficients.
            if nz.size == 0 or np.max(np.abs(grad[nz] + lam * theta[nz])) <= scale:
                break
            if ts[best] <= 0.0:  # no progress possible along this direction
                break
    return z, it, False


def feature_sign(X: torch.Tensor, D: torch.Tensor, alpha: float, *, max_iter: int = 1000,
                 tol: float = 1e-7, positive: bool = False) -> tuple[torch.Tensor, SolveInfo]:
    """Feature-sign search (Lee et al. 2006), an exact active-set Lasso solver, per sample.

    Guesses the signs ``θ`` of the non-zero coefficients, solves the resulting quadratic
    ``min ½zᵀG_AAz − (c_A − λθ_A)ᵀz`` in closed form, line-searches to the first sign change,
    and adds the zero coefficient with the largest ``|∂_i ½‖x − Dz‖²| > λ`` until the
    optimality conditions hold: ``∂_i f + λ sign(z_i) = 0`` (``z_i ≠ 0``), ``|∂_i f| ≤ λ``
    (``z_i = 0``). Samples are solved one after another in float64 NumPy.

    Parameters
    ----------
    X : Tensor, shape (n, d); D : Tensor, shape (d, k), no zero columns
    alpha : float
        λ >= 0 (Lee et al.'s γ is 2λ: they minimise ``‖x − Dz‖² + γ‖z‖₁``).
    max_iter : int, default=1000
        Maximum feature-sign steps per sample.
    tol : float, default=1e-7
        Optimality tolerance, relative to λ.
    positive : bool, default=False

    Returns
    -------
    Z : Tensor, shape (n, k), dtype of X
    info : SolveInfo
        ``objective`` holds the value at ``z = 0`` and at the solution; ``n_iter`` is the
        largest number of steps any sample took.

    References
    ----------
    Lee, Battle, Raina & Ng, "Efficient sparse coding algorithms", NIPS 2006, §3, Algorithm 1.
    """
    _check_problem(X, D, alpha)
    _check_iter(max_iter, tol)
    D64 = D.detach().double()
    G = (D64.T @ D64).numpy()
    C = (X.detach().double() @ D64).numpy()
    n, k = C.shape
    Z = np.zeros((n, k))
    worst, all_conv = 0, True
    for i in range(n):
        Z[i], it, ok = _feature_sign_one(G, C[i], float(alpha), positive, int(max_iter), tol)
        worst = max(worst, it)
        all_conv &= ok
    Zt = torch.from_numpy(Z).to(X.dtype)
    f0, fit0, reg0 = lasso_objective(X, D, torch.zeros_like(Zt), alpha)
    f1, fit1, reg1 = lasso_objective(X, D, Zt, alpha)
    return Zt, SolveInfo([f0, f1], [fit0, fit1], [reg0, reg1], worst, bool(all_conv))


# ---------------------------------------------------------------------------------- OMP

def _omp_chunk(X, D, G, s_max, tol):
    n = X.shape[0]
    k = D.shape[1]
    dt = X.dtype
    A0 = X @ D  # (n, k) correlations with the data
    xsq = X.pow(2).sum(1)
    gdiag = torch.diagonal(G)
    inv_norm = gdiag.rsqrt()
    Lc = torch.zeros(n, s_max, s_max, dtype=dt)  # Cholesky factors of G_SS, grown per step
    S = torch.zeros(n, s_max, dtype=torch.long)
    gam = torch.zeros(n, s_max, dtype=dt)
    chosen = torch.zeros(n, k, dtype=torch.bool)
    active = torch.ones(n, dtype=torch.bool) if tol is None else xsq > tol
    c = A0.clone()
    err = xsq.clone()
    used = 0
    for s in range(s_max):
        if not bool(active.any()):
            break
        used = s + 1
        score = (c.abs() * inv_norm).masked_fill(chosen, -1.0)
        j = score.argmax(1)  # (n,)
        gjj = gdiag[j]
        if s == 0:
            Lc[:, 0, 0] = gjj.sqrt()
        else:
            g = G[S[:, :s], j[:, None]]  # (n, s): G_{S, j}
            w = torch.linalg.solve_triangular(Lc[:, :s, :s], g.unsqueeze(-1),
                                              upper=False).squeeze(-1)
            d2 = gjj - w.pow(2).sum(1)
            # A new atom in the span of the chosen ones ends that sample (Cholesky breakdown).
            active = active & (d2 > 1e-10 * gjj)
            Lc[:, s, :s] = torch.where(active[:, None], w, torch.zeros_like(w))
            Lc[:, s, s] = torch.where(active, d2.clamp_min(1e-30).sqrt(), torch.ones_like(d2))
        S[:, s] = torch.where(active, j, S[:, s])
        chosen[active, j[active]] = True
        aS = A0.gather(1, S[:, : s + 1])  # (n, s+1)
        Ls = Lc[:, : s + 1, : s + 1]
        y = torch.linalg.solve_triangular(Ls, aS.unsqueeze(-1), upper=False)
        gnew = torch.linalg.solve_triangular(Ls.mT, y, upper=True).squeeze(-1)
        gam[:, : s + 1] = torch.where(active[:, None], gnew, gam[:, : s + 1])
        # c = Dᵀx − G_{:,S} γ_S, gathered row by row: (n, s+1, k) · (n, s+1) -> (n, k)
        c = A0 - torch.einsum("nsk,ns->nk", G[S[:, : s + 1]], gam[:, : s + 1])
        # At the least-squares optimum ‖x − D_S γ‖² = ‖x‖² − γᵀ(D_Sᵀx).
        err = torch.where(active, (xsq - (gam[:, : s + 1] * aS).sum(1)).clamp_min(0.0), err)
        if tol is not None:
            active = active & (err > tol)
    Z = torch.zeros(n, k, dtype=dt)
    Z.scatter_add_(1, S[:, :used], gam[:, :used])
    return Z, used


def omp(X: torch.Tensor, D: torch.Tensor, *, n_nonzero_coefs: int | None = None,
        tol: float | None = None, chunk_size: int = 4096) -> tuple[torch.Tensor, SolveInfo]:
    """Orthogonal matching pursuit (L0), batched over samples with Cholesky updates.

    Greedily picks ``j = argmax_j |d_jᵀ r| / ‖d_j‖`` and refits ``z_S = argmin ‖x − D_S z‖²``
    on the chosen support ``S`` through a Cholesky factor of ``G_SS`` grown by one row per
    step (Batch-OMP: only ``G = DᵀD`` and ``Dᵀx`` are used), until ``|S| = n_nonzero_coefs``
    or ``‖r‖² ≤ tol``.

    Parameters
    ----------
    X : Tensor, shape (n, d); D : Tensor, shape (d, k), no zero columns
    n_nonzero_coefs : int, optional
        Target sparsity; default ``max(d // 10, 1)`` (scikit-learn's default) unless ``tol``
        is given, in which case it caps the support at ``min(d, k)``.
    tol : float, optional
        Squared residual norm at which a sample stops (scikit-learn's convention).
    chunk_size : int, default=4096
        Rows processed together (bounds the (rows, s, k) gather).

    Returns
    -------
    Z : Tensor, shape (n, k); info : SolveInfo
        ``data_fit`` is the mean ``½‖x − Dz‖²``, ``regulariser`` the mean ``‖z‖₀``.

    References
    ----------
    Pati, Rezaiifar & Krishnaprasad, Asilomar 1993; Rubinstein, Zibulevsky & Elad,
    "Efficient implementation of the K-SVD algorithm using batch orthogonal matching
    pursuit", Technion CS-2008-08, §2.
    """
    _check_problem(X, D)
    d, k = D.shape
    if n_nonzero_coefs is not None and not (isinstance(n_nonzero_coefs, int | np.integer)
                                            and 1 <= n_nonzero_coefs):
        raise ValueError(f"n_nonzero_coefs must be an int >= 1, got {n_nonzero_coefs!r}")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if n_nonzero_coefs is None:
        s_max = min(d, k) if tol is not None else max(d // 10, 1)
    else:
        s_max = int(n_nonzero_coefs)
    s_max = min(s_max, k)
    with torch.no_grad():
        G = D.T @ D
        parts, used = [], 0
        for i in range(0, X.shape[0], chunk_size):
            Zc, u = _omp_chunk(X[i:i + chunk_size], D, G, s_max, tol)
            parts.append(Zc)
            used = max(used, u)
        Z = torch.cat(parts) if parts else torch.zeros(0, k, dtype=X.dtype)
    n = max(X.shape[0], 1)
    fit0 = 0.5 * float(X.double().pow(2).sum()) / n
    rsq = (X - Z @ D.T).double().pow(2).sum(1)  # (n,)
    fit1 = 0.5 * float(rsq.sum()) / n
    l0 = float((Z != 0).sum()) / n
    converged = True if tol is None else bool((rsq <= tol * (1 + 1e-6) + 1e-12).all())
    return Z, SolveInfo([fit0, fit1 + l0], [fit0, fit1], [0.0, l0], used, converged)


# ---------------------------------------------------------------------- homotopy (LARS)

def homotopy(X: torch.Tensor, D: torch.Tensor, alpha: float, *, positive: bool = False,
             max_iter: int | None = None, tol: float | None = None,
             chunk_size: int | None = 16384, backend: str = "auto"
             ) -> tuple[torch.Tensor, SolveInfo]:
    """Exact Lasso codes by the homotopy (LARS-Lasso) path, every sample of a batch.

    For each sample the solution ``z(λ)`` of ``min_z ½‖x − Dz‖² + λ‖z‖₁`` is piecewise linear
    in λ. Starting at ``λ₀ = max_j |d_jᵀx|`` (``z = 0``), the path is followed downwards: on
    the active set ``A`` with signs ``θ``, ``z_A(λ) = G_AA⁻¹(c_A − λθ_A)`` with ``G = DᵀD``,
    ``c = Dᵀx``, so ``z_A`` moves along ``δ = G_AA⁻¹θ_A`` and the correlations
    ``r = c − Gz`` along ``−a``, ``a = G_{:,A}δ``. The next event is the smallest ``γ > 0``
    at which an inactive atom reaches ``|r_j − γa_j| = λ − γ`` (it joins) or an active
    coefficient crosses zero (it leaves); the walk stops at ``λ = alpha``. Each step costs a
    small ``|A|×|A|`` solve and one ``(d, k)`` product per sample, and the number of steps is
    about the number of non-zeros, so very sparse problems (natural-image patches with a
    learned dictionary: ~4 non-zeros of 256) are solved exactly in a handful of steps, where
    first-order methods need hundreds of iterations whose count grows with the dictionary's
    conditioning.

    Two backends walk the same path. ``"numba"`` (the default where numba is installed)
    compiles one sample's walk: float64 throughout, a Cholesky factor of ``G_AA`` grown by
    one row per join, samples in parallel blocks on ``torch.get_num_threads()`` threads.
    ``"torch"`` walks all samples together with batched tensor operations: events are
    located in the dtype of ``X``; the final coefficients are recomputed in float64 on the
    found active set (``z_A = G_AA⁻¹(c_A − αθ_A)``), and the optimality
    conditions ``|r_j| ≤ α(1 + tol)`` (``z_j = 0``), ``|r_j − α sign(z_j)| ≤ α·tol`` are
    checked. The rare float32 sample that fails them (near-ties between events) is walked
    again in float64, and one that fails in float64 is finished by coordinate descent, so
    the result is exact up to ``tol``.

    Parameters
    ----------
    X : Tensor, shape (n, d); D : Tensor, shape (d, k), no zero columns
    alpha : float
        λ > 0 (for λ = 0 use a least-squares solver).
    positive : bool, default=False
        Non-negative codes (only ``+λ`` crossings join).
    max_iter : int, optional
        Maximum path steps per sample (default ``4k``); samples past it are finished by
        coordinate descent.
    tol : float, optional
        Relative slack of the optimality check; default 1e-5 for float32 ``X``, 1e-9 for
        float64 (also the tolerance of the coordinate-descent fallback).
    chunk_size : int or None, default=16384
        Rows walked together (working arrays stay in cache).
    backend : {"auto", "numba", "torch"}, default="auto"
        ``"auto"``: numba where it can be imported, else torch. Both backends check the
        optimality conditions with slack ``tol`` and finish a failing sample by coordinate
        descent.

    Returns
    -------
    Z : Tensor, shape (n, k), dtype of X
    info : SolveInfo
        ``objective`` holds the value at ``z = 0`` and at the solution; ``n_iter`` is the
        largest number of path steps of a chunk (numba: of a sample).

    References
    ----------
    Osborne, Presnell & Turlach, "A new approach to variable selection in least squares
    problems", IMA J. Numer. Anal. 20, 2000; Efron, Hastie, Johnstone & Tibshirani, "Least
    angle regression", Ann. Statist. 32(2), 2004, §3.1 (the Lasso modification).

    Examples
    --------
    >>> D = torch.eye(3)
    >>> homotopy(torch.tensor([[2.0, 0.5, -3.0]]), D, alpha=1.0)[0]
    tensor([[ 1.,  0., -2.]])
    """
    _check_problem(X, D, alpha)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 for the homotopy solver, got {alpha}")
    if tol is None:
        tol = 1e-5 if X.dtype != torch.float64 else 1e-9
    if max_iter is not None:
        _check_iter(max_iter, tol)
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    from . import _homotopy_kernel as hk

    if backend == "numba" and not hk.AVAILABLE:
        raise ImportError("backend='numba' needs the numba package (pip install numba)")
    use_numba = hk.AVAILABLE and backend != "torch"
    with torch.no_grad():
        D64 = D.detach().double()
        G64 = D64.T @ D64
        steps = 4 * D.shape[1] if max_iter is None else int(max_iter)
        if use_numba:
            Z, info = _by_chunks(_homotopy_rows_numba, X.detach(), chunk_size, (), D=D.detach(),
                                 D64=D64, G64=G64, alpha=float(alpha), positive=positive,
                                 max_steps=steps, tol=float(tol))
            return Z, info
        Z, info = _by_chunks(_homotopy_rows, X.detach(), chunk_size, (), D64=D64, G64=G64,
                             alpha=float(alpha), positive=positive, max_steps=steps,
                             tol=float(tol))
    return Z.to(X.dtype), info


def _homotopy_rows_numba(X, D, D64, G64, alpha, positive, max_steps, tol):
    """The compiled walk (float64) on C = X D; rows failing the optimality check (or hitting
    max_steps / a rank-deficient active set) are finished by coordinate descent."""
    from . import _homotopy_kernel as hk

    n, k = X.shape[0], D64.shape[1]
    # c = Dᵀx in X's dtype (float32: a BLAS sgemm), then float64 for the walk
    C = (X @ D.to(X.dtype)).double().numpy() if X.dtype != torch.float64 else \
        (X @ D64).numpy()
    cap = min(k, D64.shape[0])
    Zn, status, steps, fit, reg = hk.walk(C, G64.numpy(), alpha, positive, max_steps, tol,
                                           cap, torch.get_num_threads())
    Z = torch.from_numpy(Zn)
    nn = max(n, 1)
    xsq = X.double().pow(2).sum(1)
    fit0 = 0.5 * float(xsq.sum()) / nn
    fit_rows = 0.5 * xsq + torch.from_numpy(fit)
    reg_rows = torch.from_numpy(reg)
    converged = True
    bad = torch.from_numpy(np.flatnonzero(status != hk.OK))
    if bad.numel():
        Xb = X[bad].double()
        Zb, inf_b = _cd(Xb, D64, alpha, 10_000, min(tol, 1e-9), positive, Z[bad])
        Z[bad] = Zb
        Eb = Xb - Zb @ D64.T
        fit_rows[bad] = 0.5 * Eb.pow(2).sum(1)
        reg_rows[bad] = alpha * Zb.abs().sum(1)
        converged = inf_b.converged
    fit1 = float(fit_rows.sum()) / nn
    reg1 = float(reg_rows.sum()) / nn
    n_steps = int(steps.max()) if n else 0
    return Z.to(X.dtype), SolveInfo([fit0, fit1 + reg1], [fit0, fit1], [0.0, reg1], n_steps,
                                    converged)


def _homotopy_rows(X, D64, G64, alpha, positive, max_steps, tol):
    """Path walk in X's dtype, float64 polish, optimality check in X's dtype; rows failing
    it are walked again in float64 (and, failing again, finished by coordinate descent)."""
    n, k = X.shape[0], D64.shape[1]
    wdt = X.dtype
    Dw = D64.to(wdt)
    Dtw = Dw.T.contiguous()
    Dt64 = D64.T.contiguous()
    C = X @ Dw
    Z = torch.zeros(n, k, dtype=wdt)
    lam0, j0 = (C if positive else C.abs()).max(1)
    rows = torch.nonzero(lam0 > alpha).squeeze(1)
    m = rows.numel()
    cap = 8
    act = torch.zeros(m, cap, dtype=torch.long)  # active atoms, slots [0, na) valid
    theta = torch.zeros(m, cap, dtype=torch.float64)
    zA = torch.zeros(m, cap, dtype=torch.float64)
    na = torch.ones(m, dtype=torch.long)
    j0 = j0[rows]
    act[:, 0] = j0
    # correlations r = c − Gz of the inactive atoms; +inf marks an active (or just dropped)
    # atom, which then drops out of the join test below without a mask
    R = C[rows]
    ar = torch.arange(m)
    theta[:, 0] = torch.sign(R[ar, j0]).double()
    R[ar, j0] = math.inf
    lam = lam0[rows]
    drop_rows = drop_atoms = drop_r = None  # atoms that left: restored after one step
    broken = torch.zeros(n, dtype=torch.bool)  # rows whose G_AA became singular
    fin_rows, fin_act, fin_theta = [], [], []
    n_steps = 0
    while m:
        n_steps += 1
        S = int(na.max())
        idx = act[:, :S]
        valid = torch.arange(S)[None, :] < na[:, None]
        if S == 1:
            delta = theta[:, :1] / torch.diagonal(G64)[idx]
        else:
            GAA = G64.view(-1).take(idx[:, :, None] * k + idx[:, None, :])
            vv = valid[:, :, None] & valid[:, None, :]
            GAA = torch.where(vv, GAA, torch.eye(S, dtype=torch.float64))
            delta, sing = torch.linalg.solve_ex(GAA, theta[:, :S])  # (m, S): dz_A / d(−λ)
            singular = sing != 0  # a repeated (or dependent) atom joined: leave the walk
            if bool(singular.any()):
                delta = torch.where(singular[:, None], 0.0, delta)
                broken[rows[singular]] = True
        dw = delta.to(wdt)
        v = (dw[:, :, None] * Dtw.index_select(0, idx.reshape(-1)).view(m, S, -1)).sum(1)
        a = v @ Dw  # G_{:,A} δ, (m, k)
        # join: smallest γ > 0 with |r_j − γ a_j| = λ − γ, i.e. the largest positive
        # 1/γ among (1 − a_j)/(λ − r_j) and (1 + a_j)/(λ + r_j) (|r_j| < λ when inactive)
        lamc = lam[:, None]
        inv = torch.rsub(a, 1.0).div_(torch.rsub(R, lamc))
        if not positive:
            torch.maximum(inv, (a + 1.0).div_(R + lamc), out=inv)
        ginv, jj = inv.max(1)
        gj = torch.where(ginv > 0, 1.0 / ginv.double(), math.inf)
        zS = zA[:, :S]
        gl = torch.where(valid & (delta * zS < 0), -zS / delta, torch.inf)
        gleave, ss = gl.min(1)
        gend = (lam - alpha).double()
        gam = torch.minimum(torch.minimum(gj, gleave), gend).clamp_min_(0.0)
        zS += gam[:, None] * delta
        gw = gam.to(wdt)
        R.addcmul_(a, gw[:, None], value=-1.0)
        lam = lam - gw
        if drop_rows is not None:  # the atoms dropped last step may join again from now on
            R[drop_rows, drop_atoms] = drop_r - gw[drop_rows] * a[drop_rows, drop_atoms]
            drop_rows = None
        done = (gend <= gam) | broken[rows]
        if n_steps >= max_steps:
            done = torch.ones_like(done)
        join = ~done & (gj <= gleave)
        leave = ~done & ~join
        if bool(leave.any()):
            li = torch.nonzero(leave).squeeze(1)
            s, last = ss[li], na[li] - 1
            drop_rows, drop_atoms = li, act[li, s]
            drop_r = lam[li] * theta[li, s].to(wdt)  # on the boundary |r_j| = λ
            act[li, s], theta[li, s], zA[li, s] = act[li, last], theta[li, last], zA[li, last]
            zA[li, last], theta[li, last] = 0.0, 0.0
            na[li] = last
        if bool(join.any()):
            ji = torch.nonzero(join).squeeze(1)
            if int(na[ji].max()) >= cap:
                act = torch.cat([act, torch.zeros(m, cap, dtype=torch.long)], 1)
                theta = torch.cat([theta, torch.zeros(m, cap, dtype=torch.float64)], 1)
                zA = torch.cat([zA, torch.zeros(m, cap, dtype=torch.float64)], 1)
                cap *= 2
            j, pos = jj[ji], na[ji]
            act[ji, pos] = j
            theta[ji, pos] = torch.sign(R[ji, j]).double()
            R[ji, j] = math.inf
            na[ji] = pos + 1
        if bool(done.any()):
            di = torch.nonzero(done).squeeze(1)
            S = int(na[di].max())
            valid = torch.arange(S)[None, :] < na[di, None]
            fin_rows.append(rows[di])
            fin_act.append(torch.where(valid, act[di, :S], -1))
            fin_theta.append(theta[di, :S] * valid)
            keep = ~done
            if drop_rows is not None:  # renumber the pending restores to the kept rows
                new_id = torch.cumsum(keep, 0) - 1
                kd = keep[drop_rows]
                drop_rows, drop_atoms, drop_r = new_id[drop_rows[kd]], drop_atoms[kd], drop_r[kd]
                if drop_rows.numel() == 0:
                    drop_rows = None
            keep = torch.nonzero(keep).squeeze(1)
            rows, lam, act, theta, zA, na, R = (
                rows[keep], lam[keep], act[keep], theta[keep], zA[keep], na[keep], R[keep])
            m = rows.numel()
    # float64 polish on each found active set: z_A = G_AA⁻¹(c_A − αθ_A), c_A = D_Aᵀx
    flagged = broken.clone()  # singular walk, or a coefficient came out against its sign
    for r_i, a_i, t_i in zip(fin_rows, fin_act, fin_theta):
        S = a_i.shape[1]
        valid = a_i >= 0
        idx = a_i.clamp_min(0)
        GAA = G64.view(-1).take(idx[:, :, None] * k + idx[:, None, :])
        GAA = torch.where(valid[:, :, None] & valid[:, None, :], GAA,
                          torch.eye(S, dtype=torch.float64))
        cA = (Dt64.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)
              * X[r_i].double()[:, None, :]).sum(2)
        sol, _ = torch.linalg.solve_ex(GAA, (cA - alpha * t_i) * valid)
        ok = sol * t_i > 0
        flagged[r_i] |= (valid & ~ok).any(1)
        Z[r_i[:, None], idx] += torch.where(valid & ok, sol, 0.0).to(wdt)
    # optimality check: |r_j| ≤ α(1 + tol) for every j (on the support r_j = ±α up to
    # rounding, by construction of the polish)
    E = X - Z @ Dtw  # residual (n, d)
    Rf = E @ Dw  # c − Gz
    worst = (Rf if positive else Rf.abs()).amax(1)
    bad = torch.nonzero(flagged | (worst > alpha * (1 + tol))).squeeze(1)
    converged = True
    if bad.numel():
        Xb = X[bad].double()
        if wdt != torch.float64:  # walk these rows again in float64
            Zb, inf_b = _homotopy_rows(Xb, D64, G64, alpha, positive, max_steps,
                                       min(tol, 1e-9))
        else:  # ties float64 could not resolve: coordinate descent from here
            Zb, inf_b = _cd(Xb, D64, alpha, 10_000, tol, positive, Z[bad])
        Z[bad] = Zb.to(wdt)
        E[bad] = X[bad] - Z[bad] @ Dtw
        converged = inf_b.converged
    nn = max(n, 1)
    fit0 = 0.5 * float(X.double().pow(2).sum()) / nn
    fit1 = 0.5 * float(E.double().pow(2).sum()) / nn
    reg1 = alpha * float(Z.double().abs().sum()) / nn
    return Z, SolveInfo([fit0, fit1 + reg1], [fit0, fit1], [0.0, reg1], n_steps, converged)


# --------------------------------------------------------------------------- dispatcher

ALGORITHMS = ("fista", "ista", "cd", "homotopy", "feature_sign", "omp", "threshold")
_ALIASES = {"lasso_cd": "cd", "coordinate_descent": "cd", "lasso_fista": "fista",
            "lasso_lars": "homotopy"}


def sparse_encode(X: torch.Tensor, D: torch.Tensor, *, algorithm: str = "fista",
                  alpha: float = 1.0, n_nonzero_coefs: int | None = None,
                  max_iter: int = 1000, tol: float | None = None, positive: bool = False,
                  init: torch.Tensor | None = None) -> tuple[torch.Tensor, SolveInfo]:
    """Sparse codes of ``X`` (n, d) in the dictionary ``D`` (d, k) by a named algorithm.

    ``"fista"``, ``"ista"``, ``"cd"`` (alias ``"lasso_cd"``), ``"homotopy"`` (alias
    ``"lasso_lars"``, the exact path method and the fastest on sparse problems) and
    ``"feature_sign"`` solve
    ``min_z ½‖x − Dz‖² + α‖z‖₁``; ``"omp"`` solves ``min ‖x − Dz‖²`` s.t.
    ``‖z‖₀ ≤ n_nonzero_coefs`` (or until ``‖x − Dz‖² ≤ tol``); ``"threshold"`` returns the
    one-step code ``S_α(Dᵀx)`` (scikit-learn's ``"threshold"``).

    Parameters
    ----------
    X : Tensor (n, d); D : Tensor (d, k)
    algorithm : str, default="fista"
        One of :data:`ALGORITHMS` (or an alias).
    alpha : float, default=1.0
        λ for the ℓ1 algorithms and the threshold.
    n_nonzero_coefs, tol : see :func:`omp`; ``tol`` is the solver tolerance otherwise
        (default 1e-4, 1e-7 for feature-sign).
    max_iter : int, default=1000
    positive : bool, default=False
        Non-negative codes (not available for OMP).
    init : Tensor (n, k), optional
        Warm start for the iterative ℓ1 solvers.

    Returns
    -------
    Z : Tensor (n, k); info : SolveInfo

    Examples
    --------
    >>> D = torch.eye(3)
    >>> sparse_encode(torch.tensor([[2.0, 0.5, -3.0]]), D, alpha=1.0)[0]
    tensor([[ 1.,  0., -2.]])
    """
    algo = _ALIASES.get(algorithm, algorithm)
    if algo not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} (or {tuple(_ALIASES)}), "
                         f"got {algorithm!r}")
    if algo == "omp":
        if positive:
            raise ValueError("positive=True is not supported by algorithm='omp'")
        return omp(X, D, n_nonzero_coefs=n_nonzero_coefs, tol=tol)
    if algo == "threshold":
        _check_problem(X, D, alpha)
        Z = soft_threshold(X @ D, alpha, positive=positive)
        f, fit, reg = lasso_objective(X, D, Z, alpha)
        return Z, SolveInfo([f], [fit], [reg], 1, True)
    if algo == "feature_sign":
        return feature_sign(X, D, alpha, max_iter=max_iter,
                            tol=1e-7 if tol is None else tol, positive=positive)
    if algo == "homotopy":  # exact: init is not needed
        return homotopy(X, D, alpha, positive=positive, max_iter=max_iter, tol=tol)
    tol = 1e-4 if tol is None else tol
    fn = {"fista": fista, "ista": ista, "cd": coordinate_descent}[algo]
    return fn(X, D, alpha, max_iter=max_iter, tol=tol, positive=positive, init=init)
