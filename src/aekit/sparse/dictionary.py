"""Dictionary learning: batch (alternating) and online / mini-batch (Mairal et al.).

Both minimise the mean per-sample objective

    F(D, Z) = (1/n) Σ_i [½‖x_i − D z_i‖² + λ‖z_i‖₁]   s.t.  ‖d_j‖₂ = 1 for every atom,

with ``X`` (n, d), ``D`` (d, k) and ``Z`` (n, k), the same λ as scikit-learn's
``DictionaryLearning(alpha=λ)``. The atom update is block-coordinate descent on the columns
of D given the statistics ``A = (1/n) Σ z zᵀ`` (k, k) and ``B = (1/n) Σ x zᵀ`` (d, k):
``u_j = d_j + (b_j − D a_j) / A_jj``, ``d_j = u_j / ‖u_j‖``, the exact minimiser over the
unit sphere of ``½ tr(DᵀDA) − tr(DᵀB)`` in column ``j`` (so the batch objective never goes
up). Atoms that are (almost) never used (``A_jj ≤ 1e-6``) are re-drawn from the data.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..validation import check_float, check_int
from .common import check_problem, lasso_objective, progress_bar
from .encode import sparse_encode
from .prox import project_unit_norm

__all__ = [
    "DictInfo",
    "OnlineState",
    "dict_learning",
    "dict_learning_online",
    "init_dictionary",
    "init_online_state",
    "online_step",
    "update_dictionary",
]

_L1_METHODS = ("fista", "ista", "cd", "homotopy", "feature_sign")


class DictInfo(NamedTuple):
    """Trace of dictionary learning.

    Attributes
    ----------
    objective : list of float
        Batch: ``F(D, Z)`` on all of X after every outer iteration. Online: the mean
        per-sample objective of each mini-batch, with the codes computed against the
        dictionary before that step's update.
    n_iter : int
        Outer iterations (batch) or mini-batch steps (online).
    converged : bool
        Whether a tolerance stopped the run before ``max_iter``.
    """

    objective: list[float]
    n_iter: int
    converged: bool


class OnlineState(NamedTuple):
    """State of online dictionary learning, enough to resume (``partial_fit``).

    Attributes
    ----------
    D : Tensor (d, k)
        Dictionary, unit-norm atoms.
    A : Tensor (k, k)
        Weighted past ``Σ z zᵀ`` (normalised by the mini-batch size).
    B : Tensor (d, k)
        Weighted past ``Σ x zᵀ`` (normalised by the mini-batch size).
    n_steps : int
        Mini-batch steps taken so far (drives the forgetting factor).
    """

    D: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    n_steps: int


def _check_method(method: str) -> None:
    if method not in _L1_METHODS:
        raise ValueError(f"method must be one of {_L1_METHODS}, got {method!r}")


def init_dictionary(X: torch.Tensor, n_components: int, *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Initial dictionary: ``k`` distinct random samples of X as unit-norm atoms.

    Samples with zero norm, and atoms beyond the number of samples, are replaced by
    Gaussian noise. Returns a tensor of shape (d, k) in the dtype of X.

    References
    ----------
    Mairal et al., JMLR 11, 2010, §3.4 (initialisation from data samples).
    """
    n, d = X.shape
    k = check_int("n_components", n_components, 1)
    perm = torch.randperm(n, generator=generator)[:k]
    D = torch.randn(d, k, generator=generator, dtype=X.dtype)
    D[:, : perm.numel()] = X[perm].T
    norms = torch.linalg.vector_norm(D, dim=0)
    bad = norms <= 1e-10 * max(float(norms.max()), 1e-30)
    if bool(bad.any()):
        D[:, bad] = torch.randn(d, int(bad.sum()), generator=generator, dtype=X.dtype)
    return project_unit_norm(D)


def update_dictionary(D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, *, n_sweeps: int = 1,
                      X: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Block-coordinate update of the atoms given ``A = mean z zᵀ`` and ``B = mean x zᵀ``.

    For ``j = 1..k``: ``u_j = d_j + (b_j − D a_j) / A_jj``, ``d_j = u_j / ‖u_j‖₂``: the exact
    minimiser of ``½ tr(DᵀDA) − tr(DᵀB)`` over column ``j`` on the unit sphere. An atom with
    ``A_jj ≤ 1e-6`` (unused) is replaced by a random row of ``X`` plus 1% noise (Gaussian
    noise when ``X`` is not given).

    Parameters
    ----------
    D : Tensor (d, k), unit-norm columns
    A : Tensor (k, k)
    B : Tensor (d, k)
    n_sweeps : int, default=1
    X : Tensor (n, d), optional
        Data to re-draw unused atoms from.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor (d, k), a new dictionary with unit-norm columns.

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, "Online learning for matrix factorization and sparse
    coding", JMLR 11, 2010, Algorithm 2.
    """
    D = D.clone()
    d, k = D.shape
    diag = torch.diagonal(A).tolist()
    for _ in range(n_sweeps):
        for j in range(k):
            if diag[j] > 1e-6:
                u = D[:, j] + (B[:, j] - D @ A[:, j]) / diag[j]
            elif X is not None and X.shape[0] > 0:
                i = int(torch.randint(X.shape[0], (1,), generator=generator))
                u = X[i].clone()
                scale = 0.01 * (float(u.std()) if d > 1 and float(u.std()) > 0 else 1.0)
                u += scale * torch.randn(d, generator=generator, dtype=D.dtype)
            else:
                u = torch.randn(d, generator=generator, dtype=D.dtype)
            nrm = float(torch.linalg.vector_norm(u))
            if not nrm > 1e-12:  # degenerate: keep the old atom
                continue
            D[:, j] = u / nrm
    return D


def _encode(X, D, alpha, method, positive, max_iter, tol, init=None):
    Z, _ = sparse_encode(X, D, algorithm=method, alpha=alpha, positive=positive,
                         max_iter=max_iter, tol=tol, init=init if method != "feature_sign"
                         else None)
    return Z


def dict_learning(X: torch.Tensor, n_components: int, *, alpha: float = 1.0,
                  max_iter: int = 100, tol: float = 1e-6, method: str = "fista",
                  dict_init: torch.Tensor | None = None, code_init: torch.Tensor | None = None,
                  positive_code: bool = False, solver_max_iter: int = 1000,
                  solver_tol: float = 1e-4, generator: torch.Generator | None = None,
                  progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, DictInfo]:
    """Batch dictionary learning by alternating minimisation.

    Repeats: codes ``Z = argmin_Z F(D, Z)`` (warm-started from the previous codes), then one
    sweep of :func:`update_dictionary` with ``A = ZᵀZ/n``, ``B = XᵀZ/n``; stops when
    ``F`` decreases by less than ``tol·F`` between outer iterations.

    Parameters
    ----------
    X : Tensor (n, d), float32 or float64
    n_components : int
        Number of atoms k.
    alpha : float, default=1.0
        λ >= 0.
    max_iter : int, default=100
        Outer iterations.
    tol : float, default=1e-6
        Relative decrease of ``F`` below which the run stops.
    method : {"fista", "ista", "cd", "homotopy", "feature_sign"}, default="fista"
        Code solver.
    dict_init : Tensor (d, k), optional
        Warm start (columns are normalised); otherwise :func:`init_dictionary`.
    code_init : Tensor (n, k), optional
        Warm start for the first code step.
    positive_code : bool, default=False
    solver_max_iter, solver_tol : int, float
        Passed to the code solver.
    generator : torch.Generator, optional
        Drives the initialisation and atom re-draws.
    progress : bool, optional
        tqdm bar; by default only on a terminal and never under ``CI=true``.

    Returns
    -------
    D : Tensor (d, k); Z : Tensor (n, k); info : DictInfo

    References
    ----------
    Lee, Battle, Raina & Ng, "Efficient sparse coding algorithms", NIPS 2006, §2
    (alternating scheme); Mairal et al., JMLR 11, 2010, Algorithm 2 (atom update).
    """
    check_problem(X, torch.ones(X.shape[1] if X.ndim == 2 else 1, 1, dtype=X.dtype), alpha)
    if X.shape[0] == 0:
        raise ValueError("X must have at least one sample, got shape " + str(tuple(X.shape)))
    k = check_int("n_components", n_components, 1)
    check_int("max_iter", max_iter, 1)
    _check_method(method)
    check_float("tol", tol, 0)
    n = X.shape[0]
    if dict_init is None:
        D = init_dictionary(X, k, generator=generator)
    else:
        _check_dict_init(dict_init, X, k)
        D = project_unit_norm(dict_init.detach().to(X.dtype).clone())
    Z = None if code_init is None else code_init.detach().to(X.dtype).clone()
    objective: list[float] = []
    converged = False
    bar = progress_bar(max_iter, "dict_learning", progress)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        Z = _encode(X, D, alpha, method, positive_code, solver_max_iter, solver_tol, Z)
        A = Z.T @ Z / n
        B = X.T @ Z / n
        D = update_dictionary(D, A, B, X=X, generator=generator)
        f = lasso_objective(X, D, Z, alpha)[0]
        objective.append(f)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{f:.5g}")
        if len(objective) > 1 and objective[-2] - f <= tol * abs(f):
            converged = True
            break
    if bar is not None:
        bar.close()
    # Codes consistent with the final dictionary.
    Z = _encode(X, D, alpha, method, positive_code, solver_max_iter, solver_tol, Z)
    return D, Z, DictInfo(objective, it, converged)


def _check_dict_init(dict_init, X, k) -> None:
    if not isinstance(dict_init, torch.Tensor) or dict_init.shape != (X.shape[1], k):
        shape = tuple(dict_init.shape) if hasattr(dict_init, "shape") else type(dict_init)
        raise ValueError(f"dict_init must have shape (d, k) = {(X.shape[1], k)}, got {shape}")
    if not bool(torch.isfinite(dict_init).all()):
        raise ValueError("dict_init contains NaN or infinite values")
    if bool((torch.linalg.vector_norm(dict_init, dim=0) == 0).any()):
        raise ValueError("dict_init has zero-norm atoms (columns)")


def online_step(state: OnlineState, X: torch.Tensor, *, alpha: float, method: str = "fista",
                positive_code: bool = False, solver_max_iter: int = 1000,
                solver_tol: float = 1e-4,
                generator: torch.Generator | None = None) -> tuple[OnlineState, float]:
    """One mini-batch step of online dictionary learning.

    With the mini-batch size ``η`` and ``t`` steps already taken: codes ``Z`` of the batch
    against the current ``D``; past statistics scaled by ``β = (θ + 1 − η)/(θ + 1)``,
    ``θ = (t + 1)η`` if ``t < η − 1`` else ``η² + t + 1 − η`` (the forgetting of the paper's
    mini-batch extension, as in scikit-learn); ``A ← βA + ZᵀZ/η``, ``B ← βB + XᵀZ/η``; then
    one sweep of :func:`update_dictionary`.

    Parameters
    ----------
    state : OnlineState
    X : Tensor (η, d)
    alpha : float
    method, positive_code, solver_max_iter, solver_tol : see :func:`dict_learning`
    generator : torch.Generator, optional

    Returns
    -------
    state : OnlineState
        The new state (the input is not modified).
    batch_objective : float
        Mean ``½‖x − Dz‖² + λ‖z‖₁`` of the batch against the dictionary before the update.

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, "Online dictionary learning for sparse coding", ICML 2009,
    Algorithm 1 and §3.4; JMLR 11, 2010, §3.4.
    """
    eta = X.shape[0]
    Z = _encode(X, state.D, alpha, method, positive_code, solver_max_iter, solver_tol)
    f = lasso_objective(X, state.D, Z, alpha)[0]
    t = state.n_steps
    theta = (t + 1) * eta if t < eta - 1 else eta * eta + t + 1 - eta
    beta = (theta + 1 - eta) / (theta + 1)
    A = beta * state.A + Z.T @ Z / eta
    B = beta * state.B + X.T @ Z / eta
    D = update_dictionary(state.D, A, B, X=X, generator=generator)
    return OnlineState(D, A, B, t + 1), f


def init_online_state(D: torch.Tensor) -> OnlineState:
    """Fresh :class:`OnlineState` around a dictionary D (d, k): zero statistics."""
    d, k = D.shape
    return OnlineState(D, torch.zeros(k, k, dtype=D.dtype), torch.zeros(d, k, dtype=D.dtype), 0)


def dict_learning_online(X: torch.Tensor, n_components: int, *, alpha: float = 1.0,
                         max_iter: int = 10, batch_size: int = 256, shuffle: bool = True,
                         method: str = "fista", dict_init: torch.Tensor | None = None,
                         positive_code: bool = False, tol: float = 1e-3,
                         max_no_improvement: int | None = 10, solver_max_iter: int = 1000,
                         solver_tol: float = 1e-4, state: OnlineState | None = None,
                         generator: torch.Generator | None = None,
                         progress: bool | None = None) -> tuple[OnlineState, DictInfo]:
    """Online (mini-batch) dictionary learning over ``max_iter`` epochs of X.

    Runs :func:`online_step` over shuffled mini-batches. Stops early when the dictionary
    moves by ``‖D_t − D_{t−1}‖_F / √k ≤ tol``, or when an exponentially weighted average of
    the mini-batch objective has not improved for ``max_no_improvement`` steps (both as in
    scikit-learn's ``MiniBatchDictionaryLearning``; ``tol=0`` / ``None`` disable them).

    Parameters
    ----------
    X : Tensor (n, d)
    n_components : int
    alpha : float, default=1.0
    max_iter : int, default=10
        Epochs over X.
    batch_size : int, default=256
    shuffle : bool, default=True
    method : {"fista", "ista", "cd", "homotopy", "feature_sign"}, default="fista"
    dict_init : Tensor (d, k), optional
        Warm start; ignored when ``state`` is given.
    positive_code : bool, default=False
    tol : float, default=1e-3
    max_no_improvement : int or None, default=10
    solver_max_iter, solver_tol : passed to the code solver.
    state : OnlineState, optional
        Resume from a previous run (statistics and step count are kept).
    generator : torch.Generator, optional
    progress : bool, optional

    Returns
    -------
    state : OnlineState
        ``state.D`` is the dictionary (d, k).
    info : DictInfo

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, ICML 2009, Algorithm 1; JMLR 11, 2010, §3.4.
    """
    check_problem(X, torch.ones(X.shape[1] if X.ndim == 2 else 1, 1, dtype=X.dtype), alpha)
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"X must have at least one sample, got shape {tuple(X.shape)}")
    k = check_int("n_components", n_components, 1)
    check_int("max_iter", max_iter, 1)
    bs = min(check_int("batch_size", batch_size, 1), n)
    _check_method(method)
    check_float("tol", tol, 0)
    if state is None:
        if dict_init is None:
            D = init_dictionary(X, k, generator=generator)
        else:
            _check_dict_init(dict_init, X, k)
            D = project_unit_norm(dict_init.detach().to(X.dtype).clone())
        state = init_online_state(D)
    elif state.D.shape != (X.shape[1], k):
        raise ValueError(f"state.D has shape {tuple(state.D.shape)}, expected {(X.shape[1], k)}")
    steps_per_epoch = math.ceil(n / bs)
    total = max_iter * steps_per_epoch
    objective: list[float] = []
    ewa, ewa_min, no_improve = None, math.inf, 0
    converged = False
    bar = progress_bar(total, "dict_learning_online", progress)
    step = 0
    for _epoch in range(max_iter):
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for b in range(steps_per_epoch):
            batch = X[order[b * bs:(b + 1) * bs]]
            D_old = state.D
            state, f = online_step(state, batch, alpha=alpha, method=method,
                                   positive_code=positive_code,
                                   solver_max_iter=solver_max_iter, solver_tol=solver_tol,
                                   generator=generator)
            step += 1
            objective.append(f)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(objective=f"{f:.5g}")
            if tol > 0 and float(torch.linalg.vector_norm(state.D - D_old)) / math.sqrt(k) <= tol:
                converged = True
                break
            # Like scikit-learn, ignore the first min(100, n/η) steps: the early batch
            # objectives would make the average's minimum meaningless.
            if max_no_improvement is not None and state.n_steps > min(100, n / bs):
                w = min(batch.shape[0] / (n + 1), 1.0)
                ewa = f if ewa is None else ewa * (1 - w) + f * w
                if ewa < ewa_min:
                    ewa_min, no_improve = ewa, 0
                else:
                    no_improve += 1
                    if no_improve >= max_no_improvement:
                        converged = True
                        break
        if converged:
            break
    if bar is not None:
        bar.close()
    return state, DictInfo(objective, step, converged)
