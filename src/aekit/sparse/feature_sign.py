"""Feature-sign search for a batch of Lasso problems, one exact active-set solve per sample."""

from __future__ import annotations

import numpy as np
import torch

from .common import SolveInfo, check_iter, check_problem, lasso_objective

__all__ = ["feature_sign"]


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
    check_problem(X, D, alpha)
    check_iter(max_iter, tol)
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
