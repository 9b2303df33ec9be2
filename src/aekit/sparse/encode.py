"""Sparse codes by a named algorithm: :func:`sparse_encode` dispatches to the solvers
(:mod:`~aekit.sparse.ista`, :mod:`~aekit.sparse.cd`, :mod:`~aekit.sparse.homotopy`,
:mod:`~aekit.sparse.feature_sign`, :mod:`~aekit.sparse.omp`) or the one-step threshold."""

from __future__ import annotations

import torch

from .cd import coordinate_descent
from .common import SolveInfo, check_problem, lasso_objective
from .feature_sign import feature_sign
from .homotopy import homotopy
from .ista import fista, ista
from .omp import omp
from .prox import soft_threshold

__all__ = ["ALGORITHMS", "ALIASES", "sparse_encode"]


ALGORITHMS = ("fista", "ista", "cd", "homotopy", "feature_sign", "omp", "threshold")
ALIASES = {"lasso_cd": "cd", "coordinate_descent": "cd", "lasso_fista": "fista",
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
    algo = ALIASES.get(algorithm, algorithm)
    if algo not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} (or {tuple(ALIASES)}), "
                         f"got {algorithm!r}")
    if algo == "omp":
        if positive:
            raise ValueError("positive=True is not supported by algorithm='omp'")
        return omp(X, D, n_nonzero_coefs=n_nonzero_coefs, tol=tol)
    if algo == "threshold":
        check_problem(X, D, alpha)
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
