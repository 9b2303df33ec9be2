"""scikit-learn façade for sparse coding: ``SparseCoder``, ``DictionaryLearning``,
``MiniBatchDictionaryLearning``, mirroring ``sklearn.decomposition``'s names and attributes.

The objective and ``alpha`` mean the same as in scikit-learn:
``(1/n) Σ_i [½‖x_i − D z_i‖² + α‖z_i‖₁]`` with ``components_ = Dᵀ`` of shape (k, d)
(atoms as rows, unit norm). Computation runs in torch in the dtype of X (float32 or float64),
and ``transform`` returns that dtype.

``transform_algorithm`` (and ``fit_algorithm`` for the ℓ1 solvers) takes:

=================  ======================================================================
``"fista"``        FISTA with adaptive restart (default), :func:`aekit.sparse.fista`
``"ista"``         proximal gradient, :func:`aekit.sparse.ista`
``"cd"``           batched coordinate descent (alias ``"lasso_cd"``)
``"feature_sign"`` Lee et al.'s feature-sign search (exact; per-sample loop)
``"omp"``          orthogonal matching pursuit, ``transform_n_nonzero_coefs`` atoms (L0)
``"threshold"``    one step ``S_α(Dᵀx)``
=================  ======================================================================

Unlike scikit-learn (whose default ``transform_algorithm`` is ``"omp"``), the default here
is ``"fista"`` so that ``transform`` solves the problem the dictionary was fitted for.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..validation import check_float, check_int
from .dictionary import (
    OnlineState,
    dict_learning,
    dict_learning_online,
    init_dictionary,
    online_step,
)
from .encode import ALGORITHMS, ALIASES, sparse_encode
from .prox import project_unit_norm

__all__ = ["DictionaryLearning", "MiniBatchDictionaryLearning", "SparseCoder"]

_FIT_ALGORITHMS = ("fista", "ista", "cd", "lasso_cd", "homotopy", "lasso_lars", "feature_sign")


def _to_torch(X: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """NumPy -> torch without a copy when possible (read-only arrays, e.g. memmaps, are copied:
    torch tensors must be writable)."""
    X = np.ascontiguousarray(X)
    t = torch.from_numpy(X) if X.flags.writeable else torch.tensor(X)
    return t.to(dtype)


def _check_dictionary(dictionary, name: str, n_features: int | None = None,
                      n_components: int | None = None) -> np.ndarray:
    """Validate a user dictionary given as (k, d) like scikit-learn's ``components_``."""
    try:
        Dk = check_array(dictionary, dtype=[np.float64, np.float32], input_name=name)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if n_features is not None and Dk.shape[1] != n_features:
        raise ValueError(f"{name} has {Dk.shape[1]} features per atom but X has {n_features}; "
                         f"{name} must have shape (n_components, n_features)")
    if n_components is not None and Dk.shape[0] != n_components:
        raise ValueError(f"{name} has {Dk.shape[0]} atoms, expected n_components="
                         f"{n_components}")
    zero = np.linalg.norm(Dk, axis=1) == 0
    if zero.any():
        raise ValueError(f"{name} has {int(zero.sum())} zero-norm atoms (rows "
                         f"{np.flatnonzero(zero)[:10].tolist()}); every atom needs a direction")
    return Dk


class _BaseSparseCoding(TransformerMixin):
    """Shared ``transform`` / ``inverse_transform`` over a (k, d) dictionary."""

    def _transform_settings(self):
        algo = self.transform_algorithm
        if algo not in ALGORITHMS and algo not in ALIASES:
            raise ValueError(f"transform_algorithm must be one of {ALGORITHMS} (or "
                             f"{tuple(ALIASES)}), got {algo!r}")
        alpha = self.transform_alpha
        alpha = check_float("transform_alpha",
                            getattr(self, "alpha", 1.0) if alpha is None else alpha, 0)
        nnz = self.transform_n_nonzero_coefs
        if nnz is not None:
            nnz = check_int("transform_n_nonzero_coefs", nnz, 1)
        max_iter = check_int("transform_max_iter", self.transform_max_iter, 1)
        if self.positive_code and ALIASES.get(algo, algo) == "omp":
            raise ValueError("positive_code=True is not supported by transform_algorithm='omp'")
        return algo, alpha, nnz, max_iter

    def _encode(self, X: np.ndarray, components: np.ndarray) -> np.ndarray:
        algo, alpha, nnz, max_iter = self._transform_settings()
        dt = torch.float64 if X.dtype == np.float64 else torch.float32
        Xt = _to_torch(X, dt)
        D = _to_torch(components.T, dt)
        if nnz is None and ALIASES.get(algo, algo) == "omp":
            nnz = max(X.shape[1] // 10, 1)
        Z, _ = sparse_encode(Xt, D, algorithm=algo, alpha=alpha, n_nonzero_coefs=nnz,
                             max_iter=max_iter, positive=bool(self.positive_code))
        return Z.numpy().astype(X.dtype, copy=False)

    def _inverse(self, Z, components: np.ndarray) -> np.ndarray:
        Z = check_array(Z, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != components.shape[0]:
            raise ValueError(f"codes must have shape (n, {components.shape[0]}), got {Z.shape}")
        return Z @ components.astype(Z.dtype, copy=False)


class SparseCoder(_BaseSparseCoding, BaseEstimator):
    """Sparse codes of X against a fixed dictionary (scikit-learn's ``SparseCoder`` API).

    ``transform(X)`` returns ``Z`` (n, k) solving ``min_z ½‖x − Dz‖² + α‖z‖₁`` per row (or
    the OMP / threshold variants), with ``D = dictionaryᵀ``.

    Parameters
    ----------
    dictionary : array of shape (n_components, n_features)
        Atoms as rows (need not be normalised; no zero rows).
    transform_algorithm : str, default="fista"
        See the module docstring.
    transform_n_nonzero_coefs : int, optional
        Atoms per sample for ``"omp"`` (default ``max(n_features // 10, 1)``).
    transform_alpha : float, default=None
        ``α`` of the ℓ1 algorithms and the threshold; ``None`` means 1.0.
    positive_code : bool, default=False
    transform_max_iter : int, default=1000

    Attributes
    ----------
    n_components_ : int
    n_features_in_ : int

    References
    ----------
    scikit-learn ``sklearn.decomposition.SparseCoder``; Beck & Teboulle 2009 (FISTA).

    Examples
    --------
    >>> coder = SparseCoder(np.eye(3), transform_alpha=1.0)
    >>> coder.transform(np.array([[2.0, 0.5, -3.0]]))
    array([[ 1.,  0., -2.]])
    """

    def __init__(self, dictionary, *, transform_algorithm="fista", transform_n_nonzero_coefs=None,
                 transform_alpha=None, positive_code=False, transform_max_iter=1000):
        self.dictionary = dictionary
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.positive_code = positive_code
        self.transform_max_iter = transform_max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X, y=None):
        """Validate X against the dictionary (nothing is learned). Returns self."""
        Dk = _check_dictionary(self.dictionary, "dictionary")
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if X.shape[1] != Dk.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but dictionary atoms have "
                             f"{Dk.shape[1]}")
        self._transform_settings()
        self.n_components_ = Dk.shape[0]
        return self

    def transform(self, X, y=None):
        """Codes (n, k) of X (n, d)."""
        Dk = _check_dictionary(self.dictionary, "dictionary")
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if X.shape[1] != Dk.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but dictionary atoms have "
                             f"{Dk.shape[1]}")
        return self._encode(X, Dk)

    def inverse_transform(self, X):
        """Reconstruction ``Z · dictionary``: (n, k) -> (n, d)."""
        return self._inverse(X, _check_dictionary(self.dictionary, "dictionary"))

    @property
    def components_(self) -> np.ndarray:
        """The dictionary, (k, d)."""
        return np.asarray(self.dictionary)


class _LearnedSparseCoding(_BaseSparseCoding, BaseEstimator):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _check_common(self, X):
        alpha = check_float("alpha", self.alpha, 0)
        k = self.n_components
        k = X.shape[1] if k is None else check_int("n_components", k, 1)
        if self.fit_algorithm not in _FIT_ALGORITHMS:
            raise ValueError(f"fit_algorithm must be one of {_FIT_ALGORITHMS}, got "
                             f"{self.fit_algorithm!r}")
        check_int("max_iter", self.max_iter, 1)
        check_float("tol", self.tol, 0)
        self._transform_settings()
        method = ALIASES.get(self.fit_algorithm, self.fit_algorithm)
        return alpha, k, method

    def _dict_init(self, X, k):
        if self.dict_init is None:
            return None
        Dk = _check_dictionary(self.dict_init, "dict_init", X.shape[1], k)
        return torch.from_numpy(np.ascontiguousarray(Dk.T)).to(_torch_dtype(X))

    def transform(self, X):
        """Codes (n, k) of X (n, d) against ``components_``."""
        check_is_fitted(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._encode(X, self.components_)

    def inverse_transform(self, X):
        """Reconstruction ``Z · components_``: (n, k) -> (n, d)."""
        check_is_fitted(self, "components_")
        return self._inverse(X, self.components_)


def _torch_dtype(X: np.ndarray) -> torch.dtype:
    return torch.float64 if X.dtype == np.float64 else torch.float32


def _generator(random_state) -> tuple[torch.Generator, int]:
    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    return torch.Generator().manual_seed(seed), seed


class DictionaryLearning(_LearnedSparseCoding):
    """Batch dictionary learning (scikit-learn's ``DictionaryLearning`` API).

    Minimises ``(1/n) Σ_i [½‖x_i − D z_i‖² + α‖z_i‖₁]`` over ``Z`` and unit-norm atoms
    ``D`` by alternating code solves (warm-started) and block-coordinate atom updates,
    see :func:`aekit.sparse.dict_learning`.

    Parameters
    ----------
    n_components : int, optional
        Number of atoms k; ``None`` means n_features.
    alpha : float, default=1.0
    max_iter : int, default=100
        Outer iterations.
    tol : float, default=1e-6
        Relative objective decrease at which fitting stops.
    fit_algorithm : str, default="fista"
        Code solver while fitting: "fista", "ista", "cd" (alias "lasso_cd"), "homotopy"
        (alias "lasso_lars", exact and fastest on very sparse codes) or "feature_sign".
    transform_algorithm : str, default="fista"
    transform_n_nonzero_coefs : int, optional
    transform_alpha : float, optional
        Defaults to ``alpha``.
    transform_max_iter : int, default=1000
    dict_init : array (n_components, n_features), optional
    code_init : array (n_samples, n_components), optional
    positive_code : bool, default=False
    random_state : int, RandomState or None
    verbose : bool, default=False
        Progress bar (only on a terminal and not under ``CI=true``).

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Unit-norm atoms as rows, ``Dᵀ``.
    error_ : list of float
        Objective after every outer iteration.
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Lee, Battle, Raina & Ng, NIPS 2006; Mairal et al., JMLR 11, 2010, Algorithm 2;
    scikit-learn ``sklearn.decomposition.DictionaryLearning``.
    """

    def __init__(self, n_components=None, *, alpha=1.0, max_iter=100, tol=1e-6,
                 fit_algorithm="fista", transform_algorithm="fista",
                 transform_n_nonzero_coefs=None, transform_alpha=None, transform_max_iter=1000,
                 dict_init=None, code_init=None, positive_code=False, random_state=None,
                 verbose=False):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_algorithm = fit_algorithm
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.transform_max_iter = transform_max_iter
        self.dict_init = dict_init
        self.code_init = code_init
        self.positive_code = positive_code
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Learn the dictionary from X (n, d); ``y`` is ignored. Returns self."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        """Learn the dictionary and return the codes of X found while fitting, (n, k)."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        alpha, k, method = self._check_common(X)
        dt = _torch_dtype(X)
        D0 = self._dict_init(X, k)
        Z0 = None
        if self.code_init is not None:
            C = check_array(self.code_init, dtype=[np.float64, np.float32],
                            input_name="code_init")
            if C.shape != (X.shape[0], k):
                raise ValueError(f"code_init must have shape {(X.shape[0], k)}, got {C.shape}")
            Z0 = _to_torch(C, dt)
        gen, _ = _generator(self.random_state)
        D, Z, info = dict_learning(
            _to_torch(X, dt), k, alpha=alpha,
            max_iter=int(self.max_iter), tol=float(self.tol), method=method, dict_init=D0,
            code_init=Z0, positive_code=bool(self.positive_code), generator=gen,
            progress=True if self.verbose else False)
        self.components_ = D.T.contiguous().numpy().astype(X.dtype, copy=False)
        self.error_ = list(info.objective)
        self.n_iter_ = info.n_iter
        return Z.numpy().astype(X.dtype, copy=False)


class MiniBatchDictionaryLearning(_LearnedSparseCoding):
    """Online / mini-batch dictionary learning (scikit-learn's API, Mairal et al. 2009).

    See :func:`aekit.sparse.dict_learning_online`; ``partial_fit(X)`` makes one step with X
    as the mini-batch and keeps the sufficient statistics ``A``, ``B`` between calls.

    Parameters
    ----------
    n_components : int, optional
        ``None`` means n_features.
    alpha : float, default=1.0
    max_iter : int, default=10
        Epochs over X.
    batch_size : int, default=256
    shuffle : bool, default=True
    dict_init : array (n_components, n_features), optional
    fit_algorithm : str, default="fista"
        Code solver while fitting: "fista", "ista", "cd" (alias "lasso_cd"), "homotopy"
        (alias "lasso_lars", exact and fastest on very sparse codes) or "feature_sign".
    transform_algorithm : str, default="fista"
    transform_n_nonzero_coefs : int, optional
    transform_alpha : float, optional
        Defaults to ``alpha``.
    transform_max_iter : int, default=1000
    positive_code : bool, default=False
    tol : float, default=1e-3
        Stop when ``‖ΔD‖_F/√k ≤ tol`` after a step (0 disables).
    max_no_improvement : int or None, default=10
        Stop after that many steps without improvement of the smoothed batch objective.
    random_state : int, RandomState or None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
    error_ : list of float
        Mini-batch objective of every step (against the dictionary before the step).
    n_iter_ : int
        Epochs run (fractional epochs count as started).
    n_steps_ : int
        Mini-batch steps taken (including ``partial_fit`` calls).
    n_features_in_ : int

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, ICML 2009 and JMLR 11, 2010; scikit-learn
    ``sklearn.decomposition.MiniBatchDictionaryLearning``.
    """

    def __init__(self, n_components=None, *, alpha=1.0, max_iter=10, batch_size=256,
                 shuffle=True, dict_init=None, fit_algorithm="fista",
                 transform_algorithm="fista", transform_n_nonzero_coefs=None,
                 transform_alpha=None, transform_max_iter=1000, positive_code=False, tol=1e-3,
                 max_no_improvement=10, random_state=None, verbose=False):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dict_init = dict_init
        self.fit_algorithm = fit_algorithm
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.transform_max_iter = transform_max_iter
        self.positive_code = positive_code
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.random_state = random_state
        self.verbose = verbose

    def _check_batch(self):
        check_int("batch_size", self.batch_size, 1)
        if self.max_no_improvement is not None:
            check_int("max_no_improvement", self.max_no_improvement, 1)

    def _state(self, dt) -> OnlineState:
        return OnlineState(_to_torch(self.components_.T, dt),
                           torch.from_numpy(self._A).to(dt), torch.from_numpy(self._B).to(dt),
                           int(self.n_steps_))

    def _store(self, state: OnlineState, dtype) -> None:
        self.components_ = state.D.T.contiguous().numpy().astype(dtype, copy=False)
        self._A = state.A.numpy()
        self._B = state.B.numpy()
        self.n_steps_ = int(state.n_steps)

    def fit(self, X, y=None):
        """Learn the dictionary from X (n, d) by mini-batches; ``y`` is ignored."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        alpha, k, method = self._check_common(X)
        self._check_batch()
        dt = _torch_dtype(X)
        gen, self._seed = _generator(self.random_state)
        Xt = _to_torch(X, dt)
        state, info = dict_learning_online(
            Xt, k, alpha=alpha, max_iter=int(self.max_iter), batch_size=int(self.batch_size),
            shuffle=bool(self.shuffle), method=method, dict_init=self._dict_init(X, k),
            positive_code=bool(self.positive_code), tol=float(self.tol),
            max_no_improvement=self.max_no_improvement, generator=gen,
            progress=True if self.verbose else False)
        self._store(state, X.dtype)
        self.error_ = list(info.objective)
        steps_per_epoch = math.ceil(X.shape[0] / min(int(self.batch_size), X.shape[0]))
        self.n_iter_ = math.ceil(info.n_iter / steps_per_epoch)
        return self

    def partial_fit(self, X, y=None):
        """One online step with X (η, d) as the mini-batch. Returns self."""
        first = not hasattr(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first,
                          ensure_min_samples=1)
        alpha, k, method = self._check_common(X)
        self._check_batch()
        dt = _torch_dtype(X)
        Xt = _to_torch(X, dt)
        if first:
            gen, seed = _generator(self.random_state)
            self._seed = seed
            D0 = self._dict_init(X, k)
            D = init_dictionary(Xt, k, generator=gen) if D0 is None else project_unit_norm(D0)
            state = OnlineState(D, torch.zeros(k, k, dtype=dt), torch.zeros(X.shape[1], k,
                                                                             dtype=dt), 0)
            self.error_ = []
            self.n_iter_ = 0
        else:
            state = self._state(dt)
            gen = torch.Generator().manual_seed(self._seed + self.n_steps_)
        state, f = online_step(state, Xt, alpha=alpha, method=method,
                               positive_code=bool(self.positive_code), generator=gen)
        self._store(state, X.dtype)
        self.error_.append(f)
        return self
