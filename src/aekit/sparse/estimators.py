"""scikit-learn façade for sparse coding: ``SparseCoder``, ``DictionaryLearning``,
``MiniBatchDictionaryLearning``, drop-in replacements for ``sklearn.decomposition``'s.

Every parameter, default, attribute and method of scikit-learn's three estimators is here
with scikit-learn's meaning (a test introspects scikit-learn's classes to keep it so), and
the algorithms are scikit-learn's (SVD initialisation, block-coordinate atom updates on the
unit ball, re-drawn unused atoms, the same ``random_state`` draws, the same early stopping),
so changing the import gives the same dictionary up to the solvers' rounding. The code steps
run on aekit's solvers (:mod:`aekit.sparse.sklearn_api`): ``"lars"`` while fitting and
``"lasso_lars"`` in ``transform`` are the exact homotopy walk, the fast path.

The objective and ``alpha`` are scikit-learn's: ``½‖X − U V‖²_F + α‖U‖₁,₁`` with codes U
(n, k) and ``components_ = V`` (k, d), atoms in the unit ball. Computation keeps the dtype of
X (float32 or float64).

``fit_algorithm``: ``"lars"`` (default; Lasso by homotopy), ``"cd"``, or aekit's
``"fista"``, ``"ista"``, ``"homotopy"``, ``"feature_sign"``.
``transform_algorithm``: ``"omp"`` (default), ``"lasso_lars"``, ``"lasso_cd"``, ``"lars"``,
``"threshold"``, or aekit's ``"fista"``, ``"ista"``, ``"cd"``, ``"homotopy"``,
``"feature_sign"``. aekit's extension ``dict_update="lagrange_dual"`` solves each dictionary
step exactly through its dual (Lee et al. 2006) instead of one block-coordinate sweep.

``n_jobs`` sets the number of threads of aekit's solvers (torch / numba) and of NumPy/SciPy's
BLAS (threadpoolctl) during fit and transform (``effective_n_jobs``: ``-1`` is all cores);
``None`` leaves them as they are. On a small shared machine ``n_jobs=1`` avoids BLAS
oversubscription, which was measured to slow the small SVD/QR calls of the initialisation
by 10-50x.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state, gen_batches
from sklearn.utils.extmath import randomized_svd, svd_flip
from sklearn.utils.validation import check_is_fitted, validate_data

from ..validation import check_choice, check_float, check_int
from .sklearn_coding import (
    AEKIT_ALGORITHMS,
    SKLEARN_ALGORITHMS,
    check_positive_coding,
    sparse_encode,
    torch_threads,
    update_dict,
)

__all__ = ["DictionaryLearning", "MiniBatchDictionaryLearning", "SparseCoder"]

FIT_ALGORITHMS = ("lars", "cd", "fista", "ista", "homotopy", "feature_sign")
TRANSFORM_ALGORITHMS = SKLEARN_ALGORITHMS + AEKIT_ALGORITHMS
DICT_UPDATES = ("bcd", "lagrange_dual")


def _code_method(fit_algorithm: str) -> str:
    """Fit algorithm -> sparse_encode algorithm (scikit-learn prefixes ``lasso_``)."""
    return "lasso_" + fit_algorithm if fit_algorithm in ("lars", "cd") else fit_algorithm


class _BaseSparseCoding(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """Shared ``transform`` / ``inverse_transform`` over a (k, d) dictionary."""

    def _check_transform_params(self):
        check_choice("transform_algorithm", self.transform_algorithm, TRANSFORM_ALGORITHMS)
        if self.transform_alpha is not None:
            check_float("transform_alpha", self.transform_alpha, 0)
        if self.transform_n_nonzero_coefs is not None:
            check_int("transform_n_nonzero_coefs", self.transform_n_nonzero_coefs, 1)
        check_int("transform_max_iter", self.transform_max_iter, 0)
        if self.positive_code and self.transform_algorithm in ("omp", "lars"):
            raise ValueError(f"positive_code=True is not supported by transform_algorithm="
                             f"{self.transform_algorithm!r} (scikit-learn: Positive constraint "
                             "not supported)")

    def _transform(self, X, dictionary):
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        self._check_transform_params()
        if hasattr(self, "alpha") and self.transform_alpha is None:
            transform_alpha = self.alpha
        else:
            transform_alpha = self.transform_alpha
        code = sparse_encode(X, dictionary, algorithm=self.transform_algorithm,
                             n_nonzero_coefs=self.transform_n_nonzero_coefs,
                             alpha=transform_alpha, max_iter=self.transform_max_iter,
                             n_jobs=self.n_jobs, positive=self.positive_code)
        if self.split_sign:
            # feature vector split into a positive and a negative side: (n, k) -> (n, 2k)
            n, k = code.shape
            split = np.empty((n, 2 * k), dtype=code.dtype)
            split[:, :k] = np.maximum(code, 0)
            split[:, k:] = -np.minimum(code, 0)
            code = split
        return code

    def transform(self, X):
        """Codes of X (n, d) against ``components_``: (n, k), or (n, 2k) with
        ``split_sign``; X must have the features seen in ``fit``."""
        check_is_fitted(self)
        return self._transform(X, self.components_)

    def _inverse_transform(self, code, dictionary):
        code = check_array(code, dtype=[np.float64, np.float32], input_name="X")
        expected = dictionary.shape[0] * (2 if self.split_sign else 1)
        if code.shape[1] != expected:
            raise ValueError("The number of components in the code is different from the "
                             f"number of components in the dictionary. Expected {expected}, "
                             f"got {code.shape[1]}.")
        if self.split_sign:
            k = code.shape[1] // 2
            code = code[:, :k] - code[:, k:]
        return code @ np.asarray(dictionary).astype(code.dtype, copy=False)

    def inverse_transform(self, X):
        """Reconstruction ``X · components_``: (n, k) -> (n, d)."""
        check_is_fitted(self)
        return self._inverse_transform(X, self.components_)


class SparseCoder(_BaseSparseCoding, BaseEstimator):
    """Sparse codes of X against a fixed dictionary, scikit-learn's ``SparseCoder``.

    ``transform(X)`` returns ``Z`` (n, k): per row ``min_z ½‖x − Vᵀz‖² + α‖z‖₁`` for the
    ℓ1 algorithms (``V`` = dictionary), the OMP / LARS code with
    ``transform_n_nonzero_coefs`` atoms, or ``S_α(Vx)`` for ``"threshold"``; with
    ``split_sign`` the result is ``[max(Z, 0), −min(Z, 0)]`` (n, 2k).

    Parameters
    ----------
    dictionary : ndarray (n_components, n_features)
        Atoms as rows (scikit-learn's algorithms assume unit norm).
    transform_algorithm : str, default="omp"
        See the module docstring.
    transform_n_nonzero_coefs : int, optional
        Atoms per sample for "omp"/"lars"; default ``min(max(n_features / 10, 1), k)``.
    transform_alpha : float, optional
        α of the ℓ1 algorithms and the threshold; ``None`` means 1.0.
    split_sign : bool, default=False
    n_jobs : int, optional
        Solver threads for ``transform`` (see the module docstring).
    positive_code : bool, default=False
    transform_max_iter : int, default=1000

    Attributes
    ----------
    n_components_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray (only when X had string feature names)

    References
    ----------
    scikit-learn ``sklearn.decomposition.SparseCoder``; Efron et al. 2004 (LARS).

    Examples
    --------
    >>> coder = SparseCoder(np.eye(3), transform_algorithm="lasso_lars", transform_alpha=1.0)
    >>> coder.transform(np.array([[2.0, 0.5, -3.0]]))
    array([[ 1.,  0., -2.]])
    """

    def __init__(self, dictionary, *, transform_algorithm="omp", transform_n_nonzero_coefs=None,
                 transform_alpha=None, split_sign=False, n_jobs=None, positive_code=False,
                 transform_max_iter=1000):
        self.dictionary = dictionary
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.split_sign = split_sign
        self.n_jobs = n_jobs
        self.positive_code = positive_code
        self.transform_max_iter = transform_max_iter

    def fit(self, X, y=None):
        """Validate X and the parameters (nothing is learned). Returns self."""
        X = validate_data(self, X)
        self._check_transform_params()
        self.n_components_ = self.dictionary.shape[0]
        if X.shape[1] != self.dictionary.shape[1]:
            raise ValueError(
                "Dictionary and X have different numbers of features:"
                f"dictionary.shape: {self.dictionary.shape} X.shape: {X.shape}")
        return self

    def transform(self, X, y=None):
        """Codes (n, k) of X (n, d); no ``fit`` needed."""
        return super()._transform(X, self.dictionary)

    def inverse_transform(self, X):
        """Reconstruction ``Z · dictionary``: (n, k) -> (n, d)."""
        return self._inverse_transform(X, self.dictionary)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components_


class _LearnedSparseCoding(_BaseSparseCoding, BaseEstimator):
    """Parameter checks shared by the two learners."""

    def _check_fit_params(self, X):
        check_float("alpha", self.alpha, 0)
        k = X.shape[1] if self.n_components is None else check_int("n_components",
                                                                   self.n_components, 1)
        check_choice("fit_algorithm", self.fit_algorithm, FIT_ALGORITHMS)
        check_choice("dict_update", self.dict_update, DICT_UPDATES)
        check_int("max_iter", self.max_iter, 0)
        check_float("tol", self.tol, 0)
        if self.positive_dict and self.dict_update == "lagrange_dual":
            raise ValueError("positive_dict=True needs dict_update='bcd' (the Lagrange dual "
                             "update solves for atoms in the unit ball, of any sign)")
        self._check_transform_params()
        if self.positive_code and self.fit_algorithm == "omp":
            check_positive_coding(self.fit_algorithm, True)
        return k

    def _dictionary_init(self, D, k, dtype):
        D = check_array(D, dtype=dtype, input_name="dict_init")
        if D.shape[0] != k:
            raise ValueError(f"dict_init must have n_components={k} rows (atoms), got "
                             f"{D.shape[0]}")
        return np.array(D, dtype=dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.components_.shape[0]


class DictionaryLearning(_LearnedSparseCoding):
    """Batch dictionary learning, scikit-learn's ``DictionaryLearning``.

    Minimises ``½‖X − U V‖²_F + α‖U‖₁,₁`` over codes U (n, k) and atoms V (k, d),
    ``‖V_j‖₂ ≤ 1``. Initialisation: ``U, S, V`` of the thin SVD of X (sign-flipped), V scaled
    by S (or ``code_init`` and ``dict_init`` when both are given). Each iteration solves all
    codes (warm-started; exact with "lars") and takes one dictionary step (block-coordinate
    sweep, or the Lagrange dual), and stops when the cost decreases by less than
    ``tol · cost``.

    Parameters
    ----------
    n_components : int, optional
        Number of atoms k; ``None`` means n_features.
    alpha : float, default=1
    max_iter : int, default=1000
    tol : float, default=1e-8
    fit_algorithm : str, default="lars"
        Code solver while fitting (module docstring).
    transform_algorithm : str, default="omp"
    transform_n_nonzero_coefs : int, optional
    transform_alpha : float, optional
        Defaults to ``alpha``.
    n_jobs : int, optional
        Solver threads (module docstring).
    code_init : ndarray (n_samples, n_components), optional
    dict_init : ndarray (n_components, n_features), optional
    callback : callable, optional
        Called every 5 iterations with a dict of the loop's state (``ii``, ``dictionary``,
        ``code``, ``errors``, ``current_cost``).
    verbose : bool or int, default=False
    split_sign : bool, default=False
    random_state : int, RandomState or None
        Draws the atoms that replace unused ones.
    positive_code : bool, default=False
    positive_dict : bool, default=False
        Non-negative atoms (``dict_update="bcd"``).
    transform_max_iter : int, default=1000
        Also the code solver's iterations while fitting, as in scikit-learn.
    dict_update : {"bcd", "lagrange_dual"}, default="bcd"
        aekit extension: the dictionary step.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
    error_ : list of float
        Cost after every iteration.
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray (only when X had string feature names)

    References
    ----------
    Lee, Battle, Raina & Ng, NIPS 2006 (Lagrange dual); Mairal et al., JMLR 11, 2010,
    Algorithm 2; scikit-learn ``sklearn.decomposition.DictionaryLearning``.
    """

    def __init__(self, n_components=None, *, alpha=1, max_iter=1000, tol=1e-8,
                 fit_algorithm="lars", transform_algorithm="omp",
                 transform_n_nonzero_coefs=None, transform_alpha=None, n_jobs=None,
                 code_init=None, dict_init=None, callback=None, verbose=False,
                 split_sign=False, random_state=None, positive_code=False,
                 positive_dict=False, transform_max_iter=1000, dict_update="bcd"):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_algorithm = fit_algorithm
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.n_jobs = n_jobs
        self.code_init = code_init
        self.dict_init = dict_init
        self.callback = callback
        self.verbose = verbose
        self.split_sign = split_sign
        self.random_state = random_state
        self.positive_code = positive_code
        self.positive_dict = positive_dict
        self.transform_max_iter = transform_max_iter
        self.dict_update = dict_update

    def fit(self, X, y=None):
        """Learn the dictionary from X (n, d); ``y`` is ignored. Returns self."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        """Learn the dictionary and return the codes of X found while fitting, (n, k)."""
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n_components = self._check_fit_params(X)
        method = _code_method(self.fit_algorithm)
        random_state = check_random_state(self.random_state)
        alpha = float(self.alpha)
        t0 = time.perf_counter()
        if self.code_init is not None and self.dict_init is not None:
            code = check_array(self.code_init, dtype=X.dtype, input_name="code_init")
            if code.shape[0] != X.shape[0]:
                raise ValueError(f"code_init must have n_samples={X.shape[0]} rows, got "
                                 f"{code.shape[0]}")
            code = np.array(code)
            dictionary = self._dictionary_init(self.dict_init, n_components, X.dtype)
        else:
            with torch_threads(self.n_jobs):
                code, S, dictionary = linalg.svd(X, full_matrices=False)
            code, dictionary = svd_flip(code, dictionary)
            dictionary = S[:, np.newaxis] * dictionary
        if dictionary.shape[1] != X.shape[1]:
            raise ValueError(f"dict_init must have n_features={X.shape[1]} columns, got "
                             f"{dictionary.shape[1]}")
        r = len(dictionary)
        if n_components <= r:
            code = code[:, :n_components]
            dictionary = dictionary[:n_components, :]
        else:
            code = np.c_[code, np.zeros((len(code), n_components - r), dtype=code.dtype)]
            dictionary = np.r_[dictionary,
                               np.zeros((n_components - r, dictionary.shape[1]),
                                        dtype=dictionary.dtype)]
        dictionary = np.array(dictionary, dtype=X.dtype, order="C")
        code = np.array(code, dtype=X.dtype)
        errors = []
        self._elapsed = []  # seconds since the start after each iteration (benchmarks)
        current_cost = np.nan
        lam = None
        ii = -1
        with torch_threads(self.n_jobs):
            for ii in range(int(self.max_iter)):
                if self.verbose == 1:
                    sys.stdout.write(".")
                    sys.stdout.flush()
                elif self.verbose:
                    print(f"Iteration {ii: 3d} (elapsed time: {time.perf_counter() - t0:.0f}s, "
                          f"current cost {current_cost:7.3f})")
                code = sparse_encode(X, dictionary, algorithm=method, alpha=alpha, init=code,
                                     positive=self.positive_code,
                                     max_iter=self.transform_max_iter, check_input=False)
                lam, _ = update_dict(dictionary, X, code, random_state=random_state,
                                     positive=self.positive_dict, method=self.dict_update,
                                     lam_init=lam, verbose=self.verbose)
                current_cost = 0.5 * float(np.sum((X - code @ dictionary) ** 2)) \
                    + alpha * float(np.sum(np.abs(code)))
                errors.append(current_cost)
                self._elapsed.append(time.perf_counter() - t0)
                if ii > 0 and errors[-2] - errors[-1] < self.tol * errors[-1]:
                    if self.verbose:
                        print(f"--- Convergence reached after {ii} iterations")
                    break
                if ii % 5 == 0 and self.callback is not None:
                    self.callback({"ii": ii, "dictionary": dictionary, "code": code,
                                   "errors": errors, "current_cost": current_cost})
        self.components_ = dictionary
        self.error_ = errors
        self.n_iter_ = ii + 1
        return code


class MiniBatchDictionaryLearning(_LearnedSparseCoding):
    """Online / mini-batch dictionary learning, scikit-learn's ``MiniBatchDictionaryLearning``.

    Mairal et al.'s algorithm with scikit-learn's details: initial atoms from a randomized
    SVD of X (or ``dict_init``); for each mini-batch of size η at step t the codes U are
    solved exactly, the statistics are updated ``A ← βA + UᵀU/η``, ``B ← βB + XᵀU/η`` with
    ``β = (θ + 1 − η)/(θ + 1)``, ``θ = (t + 1)η`` if ``t < η − 1`` else ``η² + t + 1 − η``,
    and one dictionary step is taken. Early stopping: ``‖ΔV‖_F / k ≤ tol`` or no
    improvement of the smoothed batch cost for ``max_no_improvement`` steps (after the first
    ``min(100, n/η)`` steps).

    One ``RandomState`` drawn from ``random_state`` at the first ``fit``/``partial_fit``
    drives every random choice and is advanced, never re-seeded, across ``partial_fit``
    calls: ``fit(X)`` with ``shuffle=False`` and ``dict_init`` gives the same dictionary as
    ``partial_fit`` on the same batches in the same order.

    Parameters
    ----------
    n_components : int, optional
    alpha : float, default=1
    max_iter : int, default=1000
        Epochs over X.
    fit_algorithm : str, default="lars"
    n_jobs : int, optional
    batch_size : int, default=256
    shuffle : bool, default=True
    dict_init : ndarray (n_components, n_features), optional
    transform_algorithm : str, default="omp"
    transform_n_nonzero_coefs : int, optional
    transform_alpha : float, optional
    verbose : bool or int, default=False
    split_sign : bool, default=False
    random_state : int, RandomState or None
    positive_code : bool, default=False
    positive_dict : bool, default=False
    transform_max_iter : int, default=1000
    callback : callable, optional
        Called after every step (but the last) with a dict of the loop's state.
    tol : float, default=1e-3
    max_no_improvement : int or None, default=10
    dict_update : {"bcd", "lagrange_dual"}, default="bcd"
        aekit extension: the dictionary step.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
    n_iter_ : float
        Epochs (started) over X.
    n_steps_ : int
        Mini-batch steps, including ``partial_fit`` calls.
    error_ : list of float
        aekit extension: mean cost of every mini-batch against the dictionary before its step.
    n_features_in_ : int
    feature_names_in_ : ndarray (only when X had string feature names)

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, ICML 2009 and JMLR 11, 2010; scikit-learn
    ``sklearn.decomposition.MiniBatchDictionaryLearning``.
    """

    def __init__(self, n_components=None, *, alpha=1, max_iter=1000, fit_algorithm="lars",
                 n_jobs=None, batch_size=256, shuffle=True, dict_init=None,
                 transform_algorithm="omp", transform_n_nonzero_coefs=None,
                 transform_alpha=None, verbose=False, split_sign=False, random_state=None,
                 positive_code=False, positive_dict=False, transform_max_iter=1000,
                 callback=None, tol=1e-3, max_no_improvement=10, dict_update="bcd"):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.fit_algorithm = fit_algorithm
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dict_init = dict_init
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.verbose = verbose
        self.split_sign = split_sign
        self.random_state = random_state
        self.positive_code = positive_code
        self.positive_dict = positive_dict
        self.transform_max_iter = transform_max_iter
        self.callback = callback
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.dict_update = dict_update

    def _check_params(self, X):
        self._n_components = self._check_fit_params(X)
        check_int("batch_size", self.batch_size, 1)
        if self.max_no_improvement is not None:
            check_int("max_no_improvement", self.max_no_improvement, 0)
        self._fit_algorithm = _code_method(self.fit_algorithm)
        self._batch_size = min(int(self.batch_size), X.shape[0])

    def _initialize_dict(self, X, random_state):
        if self.dict_init is not None:
            dictionary = self._dictionary_init(self.dict_init, self._n_components, X.dtype)
            if dictionary.shape[1] != X.shape[1]:
                raise ValueError(f"dict_init must have n_features={X.shape[1]} columns, got "
                                 f"{dictionary.shape[1]}")
        else:
            _, S, dictionary = randomized_svd(X, self._n_components, random_state=random_state)
            dictionary = S[:, np.newaxis] * dictionary
        if self._n_components <= len(dictionary):
            dictionary = dictionary[: self._n_components, :]
        else:
            dictionary = np.concatenate(
                (dictionary, np.zeros((self._n_components - len(dictionary),
                                       dictionary.shape[1]), dtype=dictionary.dtype)))
        return np.array(dictionary, dtype=X.dtype, order="C")

    def _update_inner_stats(self, X, code, batch_size, step):
        if step < batch_size - 1:
            theta = (step + 1) * batch_size
        else:
            theta = batch_size**2 + step + 1 - batch_size
        beta = (theta + 1 - batch_size) / (theta + 1)
        self._A *= beta
        self._A += code.T @ code / batch_size
        self._B *= beta
        self._B += X.T @ code / batch_size

    def _minibatch_step(self, X, dictionary, random_state, step):
        batch_size = X.shape[0]
        code = sparse_encode(X, dictionary, algorithm=self._fit_algorithm, alpha=self.alpha,
                             positive=self.positive_code, max_iter=self.transform_max_iter,
                             check_input=False)
        batch_cost = (0.5 * float(((X - code @ dictionary) ** 2).sum())
                      + float(self.alpha) * float(np.sum(np.abs(code)))) / batch_size
        self._update_inner_stats(X, code, batch_size, step)
        self._lam, _ = update_dict(dictionary, X, code, self._A, self._B,
                                   random_state=random_state, positive=self.positive_dict,
                                   method=self.dict_update, lam_init=self._lam,
                                   verbose=self.verbose)
        self.error_.append(batch_cost)
        return batch_cost

    def _check_convergence(self, X, batch_cost, new_dict, old_dict, n_samples, step, n_steps):
        batch_size = X.shape[0]
        step = step + 1
        if step <= min(100, n_samples / batch_size):
            if self.verbose:
                print(f"Minibatch step {step}/{n_steps}: mean batch cost: {batch_cost}")
            return False
        if self._ewa_cost is None:
            self._ewa_cost = batch_cost
        else:
            a = min(batch_size / (n_samples + 1), 1)
            self._ewa_cost = self._ewa_cost * (1 - a) + batch_cost * a
        if self.verbose:
            print(f"Minibatch step {step}/{n_steps}: mean batch cost: {batch_cost}, "
                  f"ewa cost: {self._ewa_cost}")
        dict_diff = linalg.norm(new_dict - old_dict) / self._n_components
        if self.tol > 0 and dict_diff <= self.tol:
            return True
        if self._ewa_cost_min is None or self._ewa_cost < self._ewa_cost_min:
            self._no_improvement = 0
            self._ewa_cost_min = self._ewa_cost
        else:
            self._no_improvement += 1
        return (self.max_no_improvement is not None
                and self._no_improvement >= self.max_no_improvement)

    def fit(self, X, y=None):
        """Learn the dictionary from X (n, d) by mini-batches; ``y`` is ignored."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", copy=False)
        self._check_params(X)
        self._random_state = check_random_state(self.random_state)
        with torch_threads(self.n_jobs):
            dictionary = self._initialize_dict(X, self._random_state)
        old_dict = dictionary.copy()
        if self.shuffle:
            X_train = X.copy()
            self._random_state.shuffle(X_train)
        else:
            X_train = X
        n_samples, n_features = X_train.shape
        self._A = np.zeros((self._n_components, self._n_components), dtype=X.dtype)
        self._B = np.zeros((n_features, self._n_components), dtype=X.dtype)
        self._lam = None
        self.error_ = []
        self._ewa_cost = None
        self._ewa_cost_min = None
        self._no_improvement = 0
        batches = itertools.cycle(gen_batches(n_samples, self._batch_size))
        n_steps_per_iter = int(np.ceil(n_samples / self._batch_size))
        n_steps = int(self.max_iter) * n_steps_per_iter
        i = -1
        t0 = time.perf_counter()
        self._elapsed = []
        with torch_threads(self.n_jobs):
            for i, batch in zip(range(n_steps), batches):
                X_batch = X_train[batch]
                batch_cost = self._minibatch_step(X_batch, dictionary, self._random_state, i)
                self._elapsed.append(time.perf_counter() - t0)
                if self._check_convergence(X_batch, batch_cost, dictionary, old_dict,
                                           n_samples, i, n_steps):
                    break
                if self.callback is not None:
                    self.callback({"i": i, "dictionary": dictionary, "batch_cost": batch_cost,
                                   "X_batch": X_batch})
                old_dict[:] = dictionary
        self.n_steps_ = i + 1
        self.n_iter_ = np.ceil(self.n_steps_ / n_steps_per_iter)
        self.components_ = dictionary
        return self

    def partial_fit(self, X, y=None):
        """One online step with X (η, d) as the mini-batch. Returns self.

        The first call initialises the dictionary from this batch (or ``dict_init``) and
        the estimator's ``RandomState``; later calls continue both."""
        has_components = hasattr(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C",
                          reset=not has_components)
        if not has_components:
            self._check_params(X)
            self._random_state = check_random_state(self.random_state)
            dictionary = self._initialize_dict(X, self._random_state)
            self.n_steps_ = 0
            self._A = np.zeros((self._n_components, self._n_components), dtype=X.dtype)
            self._B = np.zeros((X.shape[1], self._n_components), dtype=X.dtype)
            self._lam = None
            self.error_ = []
        else:
            self._check_fit_params(X)
            dictionary = self.components_
        if not hasattr(self, "_random_state"):  # fitted by fit() of an older pickle
            self._random_state = check_random_state(self.random_state)
        with torch_threads(self.n_jobs):
            self._minibatch_step(X, dictionary, self._random_state, self.n_steps_)
        self.components_ = dictionary
        self.n_steps_ += 1
        return self
