"""Cyclic coordinate descent for a batch of Lasso problems, all samples at once."""

from __future__ import annotations

import torch

from .common import SolveInfo, Trace, by_chunks, check_iter, check_problem
from .prox import soft_threshold

__all__ = ["cd_rows", "coordinate_descent"]


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
    check_problem(X, D, alpha, init)
    check_iter(max_iter, tol)
    return by_chunks(cd_rows, X, chunk_size, ("init",), D=D, alpha=alpha, max_iter=max_iter,
                     tol=tol, positive=positive, init=init)


def cd_rows(X, D, alpha, max_iter, tol, positive, init):
    """:func:`coordinate_descent` on one block of rows, arguments unchecked (also the exact
    finishing step of :func:`aekit.sparse.homotopy.homotopy`)."""
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

        trace = Trace(n)
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
