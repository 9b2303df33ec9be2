"""Exact Lasso codes by the homotopy (LARS-Lasso) path, every sample of a batch."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..validation import check_int
from .cd import cd_rows
from .common import SolveInfo, by_chunks, check_iter, check_problem

__all__ = ["homotopy", "lars"]


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
    check_problem(X, D, alpha)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 for the homotopy solver, got {alpha}")
    if tol is None:
        tol = 1e-5 if X.dtype != torch.float64 else 1e-9
    if max_iter is not None:
        check_iter(max_iter, tol)
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
            Z, info = by_chunks(_homotopy_rows_numba, X.detach(), chunk_size, (), D=D.detach(),
                                D64=D64, G64=G64, alpha=float(alpha), positive=positive,
                                max_steps=steps, tol=float(tol))
            return Z, info
        Z, info = by_chunks(_homotopy_rows, X.detach(), chunk_size, (), D64=D64, G64=G64,
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
        Zb, inf_b = cd_rows(Xb, D64, alpha, 10_000, min(tol, 1e-9), positive, Z[bad])
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
            Zb, inf_b = cd_rows(Xb, D64, alpha, 10_000, tol, positive, Z[bad])
        Z[bad] = Zb.to(wdt)
        E[bad] = X[bad] - Z[bad] @ Dtw
        converged = inf_b.converged
    nn = max(n, 1)
    fit0 = 0.5 * float(X.double().pow(2).sum()) / nn
    fit1 = 0.5 * float(E.double().pow(2).sum()) / nn
    reg1 = alpha * float(Z.double().abs().sum()) / nn
    return Z, SolveInfo([fit0, fit1 + reg1], [fit0, fit1], [0.0, reg1], n_steps, converged)


def lars(X: torch.Tensor, D: torch.Tensor, n_nonzero_coefs: int) -> tuple[torch.Tensor,
                                                                         SolveInfo]:
    """Least-angle regression codes with ``n_nonzero_coefs`` atoms, every sample of a batch.

    The LARS path of Efron et al. (the homotopy walk of :func:`homotopy` in which no atom
    ever leaves the active set): from ``z = 0`` the active coefficients move along the
    equiangular direction ``δ = G_AA⁻¹θ_A`` (``G = DᵀD``) while every active correlation
    ``|d_jᵀ(x − Dz)|`` shrinks at the same rate; an atom joins when its correlation reaches
    theirs. The walk stops where atom ``s + 1`` (``s = n_nonzero_coefs``) would join, or at
    the least-squares fit when fewer atoms reach it, so the code has at most ``s``
    non-zeros and equals scikit-learn's ``Lars(n_nonzero_coefs=s, fit_intercept=False)``
    (``sparse_encode(algorithm="lars")``). Compiled walk (numba), float64 throughout.

    Parameters
    ----------
    X : Tensor, shape (n, d); D : Tensor, shape (d, k), no zero columns
    n_nonzero_coefs : int >= 1

    Returns
    -------
    Z : Tensor, shape (n, k), dtype of X
    info : SolveInfo (``n_iter``: the largest number of path steps of a sample)

    References
    ----------
    Efron, Hastie, Johnstone & Tibshirani, "Least angle regression", Ann. Statist. 32(2),
    2004, §2.

    Examples
    --------
    >>> lars(torch.tensor([[2.0, 0.5, -3.0]]), torch.eye(3), 1)[0]
    tensor([[ 0.0000,  0.0000, -1.0000]])
    """
    check_problem(X, D)
    s = check_int("n_nonzero_coefs", n_nonzero_coefs, 1)
    from . import _homotopy_kernel as hk

    if not hk.AVAILABLE:
        raise ImportError("lars needs the numba package (pip install numba)")
    with torch.no_grad():
        D64 = D.detach().double()
        G64 = (D64.T @ D64).numpy()
        C = (X.detach().double() @ D64).numpy()
        k = D.shape[1]
        cap = min(k, D.shape[0])
        Zn, _, steps, fit, _ = hk.walk(C, G64, 0.0, False, 4 * k + 4, 0.0, cap,
                                         torch.get_num_threads(), lar=True,
                                         n_max=min(s, cap))
    n = max(X.shape[0], 1)
    fit0 = 0.5 * float(X.double().pow(2).sum()) / n
    fit1 = fit0 + float(fit.sum()) / n
    l0 = float((Zn != 0).sum()) / n
    return (torch.from_numpy(Zn).to(X.dtype),
            SolveInfo([fit0, fit1 + l0], [fit0, fit1], [0.0, l0],
                      int(steps.max()) if steps.size else 0, True))
