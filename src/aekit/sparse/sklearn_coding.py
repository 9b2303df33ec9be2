"""The engine of the scikit-learn-compatible layer: :func:`sparse_encode` (NumPy, (k, d)
dictionaries) and :func:`update_dict`, used by :mod:`aekit.sparse.estimators` and re-exported
with ``dict_learning`` / ``dict_learning_online`` by :mod:`aekit.sparse.sklearn_api`.

scikit-learn-compatible sparse coding functions: NumPy in, NumPy out, (k, d) dictionaries.

Drop-in replacements for ``sklearn.decomposition.sparse_encode``, ``dict_learning`` and
``dict_learning_online``, with scikit-learn's argument order, defaults and return values:
the dictionary is ``(n_components, n_features)`` (atoms as rows, ``X ≈ code @ dictionary``)
and the per-sample problem of the ℓ1 algorithms is

    min_z  ½‖x − dictionaryᵀ z‖² + α‖z‖₁

(scikit-learn's ``alpha``; it divides by ``n_features`` internally for ``Lasso``/``LassoLars``
to get exactly this). The computation runs on aekit's solvers: ``"lasso_lars"`` on the exact
homotopy walk (:func:`aekit.sparse.homotopy`; its compiled kernel is called on the NumPy
arrays directly, without the torch front end's per-call checks), ``"lars"`` on the same
compiled walk without drops (:func:`aekit.sparse.homotopy.lars`), ``"lasso_cd"`` on
batched coordinate descent, ``"omp"`` on Batch-OMP; aekit's own algorithms (``"fista"``,
``"ista"``, ``"cd"``, ``"homotopy"``, ``"feature_sign"``) are accepted by name as well.

The torch-native functions of the same names (``(d, k)`` dictionaries, tensors in and
``(codes, info)`` out) stay in :mod:`aekit.sparse.encode` and :mod:`aekit.sparse.dictionary`
and are what ``aekit.sparse.sparse_encode`` etc. refer to.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import torch
from joblib import effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from threadpoolctl import threadpool_limits

from ..validation import check_choice, check_float, check_int
from . import _homotopy_kernel as _hk
from .encode import sparse_encode as _torch_sparse_encode
from .homotopy import lars as _lars
from .lagrange_dual import lagrange_dual_update

__all__ = [
    "AEKIT_ALGORITHMS",
    "SKLEARN_ALGORITHMS",
    "check_positive_coding",
    "sparse_encode",
    "torch_threads",
    "update_dict",
]

SKLEARN_ALGORITHMS = ("lasso_lars", "lasso_cd", "lars", "omp", "threshold")
AEKIT_ALGORITHMS = ("fista", "ista", "cd", "homotopy", "feature_sign")
# scikit-learn name -> aekit solver
_SOLVER = {"lasso_lars": "homotopy", "lasso_cd": "cd"}
_ITERATIVE = ("lasso_cd", "fista", "ista", "cd", "feature_sign")


def check_positive_coding(method: str, positive: bool) -> None:
    """scikit-learn's rule and message: no positive codes for ``"omp"`` and ``"lars"``."""
    if positive and method in ("omp", "lars"):
        raise ValueError(f"Positive constraint not supported for '{method}' coding method.")


@contextmanager
def torch_threads(n_jobs):
    """Run the block with ``effective_n_jobs(n_jobs)`` torch, numba and BLAS (NumPy/SciPy,
    through threadpoolctl) threads when ``n_jobs`` is given; ``None`` keeps the current
    settings."""
    if n_jobs is None:
        yield
        return
    prev = torch.get_num_threads()
    n = max(1, int(effective_n_jobs(n_jobs)))
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(prev)


if _hk.AVAILABLE:
    from numba import njit

    @njit(cache=True, nogil=True)
    def _bcd_atoms(dictionary, A, B, start, positive):  # pragma: no cover - compiled
        """scikit-learn's block-coordinate sweep from atom ``start`` on, in place:
        ``v_j ← v_j + (b_j − Σ_i A_ji v_i)/A_jj`` (the atoms before j already updated),
        clipped at 0 when ``positive``, projected on the unit ball. Stops at the first
        unused atom (``A_jj ≤ 1e-6``), whose index it returns for the caller to re-draw
        (random draws stay in Python, in scikit-learn's order); ``k`` when the sweep ends."""
        k, d = dictionary.shape
        acc = np.empty(d)
        for j in range(start, k):
            ajj = A[j, j]
            if not ajj > 1e-6:
                return j
            for f in range(d):
                acc[f] = B[f, j]
            for i in range(k):
                aji = A[j, i]
                if aji != 0.0:
                    for f in range(d):
                        acc[f] -= aji * dictionary[i, f]
            nrm = 0.0
            for f in range(d):
                v = dictionary[j, f] + acc[f] / ajj
                if positive and v < 0.0:
                    v = 0.0
                dictionary[j, f] = v
                nrm += float(dictionary[j, f]) ** 2
            nrm = np.sqrt(nrm)
            if nrm > 1.0:
                for f in range(d):
                    dictionary[j, f] /= nrm
        return k


def sparse_encode(X, dictionary, *, gram=None, cov=None, algorithm="lasso_lars",
                  n_nonzero_coefs=None, alpha=None, copy_cov=True, init=None, max_iter=1000,
                  n_jobs=None, check_input=True, verbose=0, positive=False) -> np.ndarray:
    """Sparse codes of X against a (k, d) dictionary, scikit-learn's ``sparse_encode``.

    Each row ``z`` of the result solves, for its row ``x`` of X:

    * ``"lasso_lars"`` (default), ``"lasso_cd"``, ``"fista"``, ``"ista"``, ``"cd"``,
      ``"homotopy"``, ``"feature_sign"``: ``min_z ½‖x − Vᵀz‖² + α‖z‖₁`` (``V`` = dictionary);
      ``"lasso_lars"``/``"homotopy"`` exactly (homotopy path, aekit's fastest),
      the others iteratively;
    * ``"lars"``: the least-angle regression code with ``n_nonzero_coefs`` atoms;
    * ``"omp"``: ``min ‖x − Vᵀz‖²`` s.t. ``‖z‖₀ ≤ n_nonzero_coefs``;
    * ``"threshold"``: ``S_α(V x)`` (soft threshold of the correlations).

    Parameters
    ----------
    X : array-like (n_samples, n_features)
    dictionary : array-like (n_components, n_features)
        Atoms as rows (some algorithms assume unit-norm rows, as in scikit-learn). Zero
        atoms get zero codes.
    gram : array-like (n_components, n_components), optional
        Accepted for compatibility and checked for shape; aekit's solvers form ``V Vᵀ``
        themselves (a negligible cost next to the solve).
    cov : array-like (n_components, n_samples), optional
        Same as ``gram`` for ``V Xᵀ``.
    algorithm : str, default="lasso_lars"
        One of :data:`SKLEARN_ALGORITHMS` or :data:`AEKIT_ALGORITHMS`.
    n_nonzero_coefs : int, optional
        For ``"lars"``/``"omp"``; default ``min(max(n_features / 10, 1), n_components)``.
    alpha : float, optional
        α of the ℓ1 algorithms and the threshold; default 1.0.
    copy_cov : bool, default=True
        Accepted (aekit never overwrites ``cov``).
    init : array-like (n_samples, n_components), optional
        Warm start of the iterative solvers (``"lasso_cd"``, ``"fista"``, ``"ista"``,
        ``"cd"``).
    max_iter : int, default=1000
        Iterations of the iterative solvers; path steps of ``"lasso_lars"`` (a sample that
        needs more is finished exactly by coordinate descent).
    n_jobs : int, optional
        Threads of aekit's solvers and of BLAS for this call (``effective_n_jobs(n_jobs)``,
        so ``-1`` means all cores); ``None`` keeps the current settings.
    check_input : bool, default=True
        Validate X and the dictionary with ``check_array``.
    verbose : int, default=0
        Accepted; aekit's solvers print nothing.
    positive : bool, default=False
        Non-negative codes (not for ``"omp"`` and ``"lars"``, as in scikit-learn).

    Returns
    -------
    code : ndarray (n_samples, n_components), dtype of X

    Warns
    -----
    ConvergenceWarning
        When an iterative solver stops at ``max_iter`` before its tolerance.

    References
    ----------
    scikit-learn ``sklearn.decomposition.sparse_encode``; Efron et al., Ann. Statist. 2004
    (LARS, Lasso modification); Pati et al. 1993 and Rubinstein et al. 2008 (Batch-OMP).

    Examples
    --------
    >>> sparse_encode(np.array([[2.0, 0.5, -3.0]]), np.eye(3), alpha=1.0)
    array([[ 1.,  0., -2.]])
    """
    if check_input:
        dictionary = check_array(dictionary, dtype=[np.float64, np.float32],
                                 input_name="dictionary")
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    else:
        X = np.asarray(X)
        dictionary = np.asarray(dictionary)
    if dictionary.shape[1] != X.shape[1]:
        raise ValueError(
            "Dictionary and X have different numbers of features:"
            f"dictionary.shape: {dictionary.shape} X.shape{X.shape}")
    check_choice("algorithm", algorithm, SKLEARN_ALGORITHMS + AEKIT_ALGORITHMS)
    check_positive_coding(algorithm, positive)
    n, d = X.shape
    k = dictionary.shape[0]
    if gram is not None and np.shape(gram) != (k, k):
        raise ValueError(f"gram must have shape (n_components, n_components) = {(k, k)}, got "
                         f"{np.shape(gram)}")
    if cov is not None and np.shape(cov) != (k, n):
        raise ValueError(f"cov must have shape (n_components, n_samples) = {(k, n)}, got "
                         f"{np.shape(cov)}")
    check_int("max_iter", max_iter, 0)
    if algorithm in ("lars", "omp"):
        s = n_nonzero_coefs
        s = int(min(max(d / 10, 1), k)) if s is None else check_int("n_nonzero_coefs", s, 1)
        a = 1.0
    else:
        a = 1.0 if alpha is None else check_float("alpha", alpha, 0)
        s = None
    code = np.zeros((n, k), dtype=X.dtype)
    if n == 0 or k == 0:
        return code
    nz = np.flatnonzero(np.any(dictionary != 0, axis=1))  # zero atoms never enter a code
    if nz.size == 0:
        return code
    dt = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = torch.from_numpy(np.ascontiguousarray(X)).to(dt)
    if not X.flags.writeable:
        Xt = Xt.clone()
    Dt = torch.from_numpy(np.ascontiguousarray(dictionary[nz].T, dtype=X.dtype)).to(dt)
    it = max(int(max_iter), 1)
    with torch_threads(n_jobs), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-writable.*")
        if algorithm == "lars":
            Z, info = _lars(Xt, Dt, min(s, nz.size))
        elif algorithm == "omp":
            Z, info = _torch_sparse_encode(Xt, Dt, algorithm="omp",
                                           n_nonzero_coefs=min(s, nz.size))
        elif algorithm in ("lasso_lars", "homotopy") and a == 0:
            # λ = 0: the end of the LARS path (least squares on at most min(n, d) atoms)
            Z, info = _lars(Xt, Dt, min(nz.size, d))
        elif algorithm in ("lasso_lars", "homotopy") and _hk.AVAILABLE:
            Z, info = _homotopy_direct(X, dictionary[nz], Xt, Dt, a, bool(positive), it)
        else:
            solver = _SOLVER.get(algorithm, algorithm)
            z0 = None
            if init is not None and solver in ("cd", "fista", "ista"):
                init = check_array(init, dtype=X.dtype, input_name="init")
                if init.shape != (n, k):
                    raise ValueError(f"init must have shape (n_samples, n_components) = "
                                     f"{(n, k)}, got {init.shape}")
                z0 = torch.from_numpy(np.ascontiguousarray(init[:, nz])).to(dt).clone()
            tol = 1e-8 if algorithm == "lasso_cd" else None
            Z, info = _torch_sparse_encode(Xt, Dt, algorithm=solver, alpha=a, max_iter=it,
                                           tol=tol, positive=bool(positive), init=z0)
    if algorithm in _ITERATIVE and not info.converged:
        warnings.warn(f"sparse_encode: algorithm={algorithm!r} stopped at max_iter={max_iter} "
                      "before reaching its tolerance; increase max_iter "
                      "(transform_max_iter in the estimators).", ConvergenceWarning,
                      stacklevel=2)
    code[:, nz] = Z.numpy()
    return code


def _homotopy_direct(X, V, Xt, Dt, alpha, positive, max_steps):
    """The compiled homotopy walk called on NumPy arrays, without the torch front end's
    per-call checks (the same walk and tolerance as :func:`aekit.sparse.homotopy.homotopy`,
    which finishes the rare sample the walk leaves unsolved: those rows are passed to it)."""
    V64 = V.astype(np.float64)
    # c = V x in X's dtype (float32: sgemm), then float64, as the torch front end does
    C = (X @ V.T.astype(X.dtype, copy=False)).astype(np.float64, copy=False)
    tol = 1e-9 if X.dtype == np.float64 else 1e-5
    k, d = V.shape
    Z, status, _, _, _ = _hk.walk(C, V64 @ V64.T, alpha, positive, max_steps, tol,
                                  min(k, d), torch.get_num_threads())
    converged = True
    bad = np.flatnonzero(status != _hk.OK)
    if bad.size:
        Zb, info = _torch_sparse_encode(Xt[torch.from_numpy(bad)], Dt, algorithm="homotopy",
                                        alpha=alpha, max_iter=max_steps, positive=positive)
        Z[bad] = Zb.double().numpy()
        converged = info.converged
    return torch.from_numpy(Z.astype(X.dtype, copy=False)), _Converged(converged)


class _Converged:
    def __init__(self, converged):
        self.converged = converged



def _redraw_atom(dictionary, code, Y, j, random_state) -> None:
    """Replace unused atom ``j`` by a random sample plus 1 % noise (scikit-learn's draws, in
    its order) and zero its codes."""
    newd = Y[random_state.choice(len(Y))]
    noise = random_state.normal(0, 0.01 * (newd.std() or 1), size=len(newd))
    dictionary[j] = newd + noise
    code[:, j] = 0


def _project_atom(dictionary, j, positive) -> None:
    """Atom ``j`` onto the unit ball (and the non-negative orthant when ``positive``)."""
    if positive:
        np.clip(dictionary[j], 0, None, out=dictionary[j])
    dictionary[j] /= max(np.linalg.norm(dictionary[j]), 1)


def update_dict(dictionary: np.ndarray, Y: np.ndarray, code: np.ndarray, A=None, B=None, *,
                random_state=None, positive: bool = False, method: str = "bcd",
                lam_init=None, verbose=False):
    """One dictionary step in place: scikit-learn's block-coordinate update or the Lagrange
    dual; returns the multipliers of the dual (None for ``"bcd"``) and the number of atoms
    that were re-drawn.

    ``"bcd"`` (scikit-learn's ``_update_dict``, the atom loop compiled with numba): for
    each atom j,
    ``v_j ← v_j + (b_j − V a_j)/A_jj``, clipped at 0 when ``positive``, then projected on
    the unit ball ``v_j ← v_j / max(‖v_j‖, 1)``. ``"lagrange_dual"``: all atoms at once,
    :func:`aekit.sparse.lagrange_dual.lagrange_dual_update` (the exact minimiser of
    ``½ tr(V A Vᵀ) − tr(V B)`` over unit-ball atoms). In both, an atom with
    ``A_jj ≤ 1e-6`` (unused) is re-drawn as a random row of Y plus 1% Gaussian noise, drawn
    from ``random_state`` exactly as scikit-learn does, and its codes are zeroed.

    Parameters
    ----------
    dictionary : ndarray (k, d), modified in place
    Y : ndarray (n, d)
    code : ndarray (n, k), modified in place (zeroed columns of re-drawn atoms)
    A : ndarray (k, k), optional
        ``codeᵀ code`` by default.
    B : ndarray (d, k), optional
        ``Yᵀ code`` by default.
    random_state : int, RandomState or None
    positive : bool, default=False
        Non-negative atoms (``"bcd"`` only).
    method : {"bcd", "lagrange_dual"}, default="bcd"
    lam_init : ndarray (k,), optional
        Warm start of the dual.
    verbose : bool

    Returns
    -------
    lam : ndarray (k,) or None
    n_unused : int

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, JMLR 11, 2010, Algorithm 2; Lee, Battle, Raina & Ng,
    NIPS 2006, §4; scikit-learn ``sklearn.decomposition._dict_learning._update_dict``.
    """
    n_components = code.shape[1]
    random_state = check_random_state(random_state)
    if A is None:
        A = code.T @ code
    if B is None:
        B = Y.T @ code
    n_unused = 0
    if method == "bcd" and _hk.AVAILABLE and dictionary.flags.c_contiguous \
            and dictionary.dtype == A.dtype == B.dtype:
        j = _bcd_atoms(dictionary, A, B, 0, bool(positive))
        while j < n_components:  # an unused atom: re-drawn here, as scikit-learn does
            _redraw_atom(dictionary, code, Y, j, random_state)
            n_unused += 1
            _project_atom(dictionary, j, positive)
            j = _bcd_atoms(dictionary, A, B, j + 1, bool(positive))
        lam = None
    elif method == "bcd":
        for k in range(n_components):
            if A[k, k] > 1e-6:
                # 1e-6 is arbitrary but consistent with the spams implementation
                dictionary[k] += (B[:, k] - A[k] @ dictionary) / A[k, k]
            else:
                _redraw_atom(dictionary, code, Y, k, random_state)
                n_unused += 1
            _project_atom(dictionary, k, positive)
        lam = None
    else:
        used = np.diagonal(A) > 1e-6
        for k in np.flatnonzero(~used):
            _redraw_atom(dictionary, code, Y, k, random_state)
            _project_atom(dictionary, k, False)  # the dual has no positive variant
            n_unused += 1
        lam = np.zeros(n_components)
        u = np.flatnonzero(used)
        if u.size:
            li = None if lam_init is None else np.asarray(lam_init)[u]
            Du, lam_u, _ = lagrange_dual_update(A[np.ix_(u, u)], B[:, u], lam_init=li)
            dictionary[u] = Du.T
            lam[u] = lam_u
    if verbose and n_unused > 0:
        print(f"{n_unused} unused atoms resampled.")
    return lam, n_unused
