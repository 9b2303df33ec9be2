"""The dictionary step of sparse coding solved through its Lagrange dual (Lee et al. 2006).

Given the code statistics ``A = Σ z zᵀ`` (k, k) and ``B = Σ x zᵀ`` (d, k), the dictionary
step is

    min_D  ½ tr(Dᵀ D A) − tr(Dᵀ B)   s.t.  ‖d_j‖² ≤ 1  for every atom j,

(``½‖X − Z Dᵀ‖²_F`` up to a constant). With one multiplier ``λ_j ≥ 0`` per atom the
Lagrangian is minimised by ``D(λ) = B (A + Λ)⁻¹`` (``Λ = diag λ``) and the dual function is

    g(λ) = −½ tr(B (A + Λ)⁻¹ Bᵀ) − ½ Σ_j λ_j,

a concave function of only k variables, with gradient ``∂g/∂λ_j = ½(‖d_j(λ)‖² − 1)`` and
Hessian ``∂²g/∂λ_i∂λ_j = −(D(λ)ᵀD(λ))_ij (A + Λ)⁻¹_ij``. It is maximised by projected Newton
steps with backtracking; the dictionary is then ``D(λ*)``, the exact minimiser over all atoms
at once (the block-coordinate update of Mairal et al. moves one atom at a time).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..validation import check_float, check_int

__all__ = ["lagrange_dual_update"]


def _dual(A, B, lam, ridge):
    """D(λ) (d, k), M = (A + Λ)⁻¹ (k, k) and g(λ); None when A + Λ is not positive definite."""
    K = A + np.diag(lam + ridge)
    try:
        c = scipy.linalg.cho_factor(K, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    M = scipy.linalg.cho_solve(c, np.eye(K.shape[0]), check_finite=False)
    D = B @ M
    g = -0.5 * float(np.sum(D * B)) - 0.5 * float(lam.sum())
    return D, M, g


def lagrange_dual_update(A: np.ndarray, B: np.ndarray, *, lam_init: np.ndarray | None = None,
                         max_iter: int = 100, tol: float = 1e-10
                         ) -> tuple[np.ndarray, np.ndarray, int]:
    """Dictionary minimising ``½ tr(DᵀDA) − tr(DᵀB)`` over atoms in the unit ball, via the dual.

    Maximises ``g(λ) = −½ tr(B (A + Λ)⁻¹ Bᵀ) − ½ Σλ`` over ``λ ≥ 0`` by projected Newton
    steps (free variables: ``λ_j > 0`` or gradient > 0) with Armijo backtracking, starting
    from ``lam_init`` or from the decoupled guess ``λ_j = max(‖b_j‖ − A_jj, 0)``; stops when
    the projected gradient ``max_j |½(‖d_j‖² − 1)|`` (free j) is below ``tol``. Returns
    ``D = B (A + Λ*)⁻¹``: the atoms whose multiplier is positive have unit norm, the others
    lie inside the ball (the constraint set of scikit-learn's dictionary update).

    Parameters
    ----------
    A : ndarray (k, k), symmetric positive semi-definite
        ``Σ z zᵀ`` (any positive scaling of A and B together gives the same D).
    B : ndarray (d, k)
        ``Σ x zᵀ``.
    lam_init : ndarray (k,), optional
        Warm start (e.g. the multipliers of the previous outer iteration).
    max_iter : int, default=100
        Newton steps.
    tol : float, default=1e-10

    Returns
    -------
    D : ndarray (d, k), dtype of B
    lam : ndarray (k,), float64
        The optimal multipliers.
    n_iter : int
        Newton steps taken.

    References
    ----------
    Lee, Battle, Raina & Ng, "Efficient sparse coding algorithms", NIPS 2006, §4 (Learning
    bases using the Lagrange dual).

    Examples
    --------
    >>> D, lam, _ = lagrange_dual_update(np.eye(2), np.array([[3.0, 0.0], [0.0, 0.5]]))
    >>> np.round(D, 6), np.round(lam, 6)
    (array([[1. , 0. ],
           [0. , 0.5]]), array([2., 0.]))
    """
    A = np.asarray(A, dtype=np.float64)
    B64 = np.asarray(B, dtype=np.float64)
    k = A.shape[0]
    if A.shape != (k, k) or B64.ndim != 2 or B64.shape[1] != k:
        raise ValueError(f"A must be (k, k) and B (d, k) with the same k, got A {A.shape} "
                         f"and B {B64.shape}")
    check_int("max_iter", max_iter, 1)
    check_float("tol", tol, 0)
    if lam_init is None:
        lam = np.maximum(np.linalg.norm(B64, axis=0) - np.diag(A), 0.0)
    else:
        lam = np.maximum(np.asarray(lam_init, dtype=np.float64).reshape(k), 0.0)
    # A tiny ridge keeps A + Λ invertible when an atom has λ_j = 0 and A is singular.
    ridge = 1e-12 * max(float(np.trace(A)) / max(k, 1), 1e-300)
    cur = _dual(A, B64, lam, ridge)
    while cur is None:  # only if A has negative eigenvalues from rounding
        ridge *= 100
        cur = _dual(A, B64, lam, ridge)
    D, M, g = cur
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        grad = 0.5 * (np.einsum("dk,dk->k", D, D) - 1.0)
        free = (lam > 0) | (grad > 0)
        pg = np.abs(grad[free]).max() if free.any() else 0.0
        if pg <= tol:
            break
        H = (D.T @ D) * M  # −Hessian (positive semi-definite)
        f = np.flatnonzero(free)
        step = np.zeros(k)
        try:
            step[f] = scipy.linalg.solve(H[np.ix_(f, f)] + 1e-14 * np.eye(f.size), grad[f],
                                         assume_a="pos", check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            step[f] = grad[f]  # gradient ascent when the Hessian is numerically singular
        t = 1.0
        accepted = False
        for _ in range(40):
            new_lam = np.maximum(lam + t * step, 0.0)
            nxt = _dual(A, B64, new_lam, ridge)
            if nxt is not None and nxt[2] >= g + 1e-4 * float(grad @ (new_lam - lam)):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        lam = new_lam
        D, M, g = nxt
    return D.astype(np.asarray(B).dtype, copy=False), lam, it
