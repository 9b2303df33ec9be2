"""Orthogonal matching pursuit for a batch: ``min ‖x − Dz‖²`` s.t. ``‖z‖₀ ≤ s``."""

from __future__ import annotations

import numpy as np
import torch

from .common import SolveInfo, check_problem

__all__ = ["omp"]


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
    check_problem(X, D)
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
