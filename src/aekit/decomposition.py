"""``LinearAEPCA``: the linear autoencoder's closed-form optimum with scikit-learn ``PCA``'s
interface, so it stands in for ``PCA`` in a pipeline.

The encoder ``h = V_kᵀ(x − μ)`` (divided by ``σ_j = √explained_variance_j`` when
``whiten``) and decoder ``x̂ = V_k h + μ`` are the optimum of the linear AE with squared error
(Eckart & Young 1936; Baldi & Hornik 1989), computed by
:func:`aekit.models.linear.pca_solution` (covariance eigen-decomposition for tall data, thin
SVD, or randomized SVD). Attributes, ``transform``, ``inverse_transform``,
``get_covariance``, ``get_precision``, ``score_samples`` and ``score`` follow scikit-learn's
``PCA`` (probabilistic PCA of Tipping & Bishop 1999 for the likelihood).
"""

from __future__ import annotations

from math import log

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.extmath import fast_logdet
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .models.linear import pca_solution
from .validation import check_choice, check_float, check_int

__all__ = ["LinearAEPCA"]

_SOLVERS = {"auto": "auto", "full": "svd", "covariance_eigh": "covariance",
            "randomized": "randomized", "arpack": "svd"}


class LinearAEPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """PCA as the optimal linear autoencoder, with scikit-learn ``PCA``'s interface.

    ``transform(X) = (X − mean_) components_ᵀ`` (n, k), divided by
    ``√explained_variance_`` when ``whiten``; ``inverse_transform`` is the decoder. The
    reconstruction error of ``inverse_transform(transform(X))`` on the training data is the
    Eckart–Young minimum ``Σ_{j>k} s_j² / n`` (per sample).

    Parameters
    ----------
    n_components : int, float in (0, 1) or None, default=None
        Code size k; a float keeps the fewest components whose explained variance ratio
        reaches it; None means ``min(n_samples, n_features)``.
    copy : bool, default=True
        Accepted (X is never modified).
    whiten : bool, default=False
    svd_solver : {"auto", "full", "covariance_eigh", "randomized", "arpack"}, default="auto"
        ``"covariance_eigh"``: eigen-decomposition of ``X_cᵀX_c`` (fast for n ≫ d);
        ``"full"``/``"arpack"``: thin SVD (exact); ``"randomized"``: Halko et al.;
        ``"auto"``: covariance when n >= d, else SVD.
    tol : float, default=0.0
        Accepted (the exact solvers need no tolerance).
    iterated_power : int or "auto", default="auto"
        Power iterations of ``"randomized"`` ("auto": 7).
    n_oversamples : int, default=10
    power_iteration_normalizer : str, default="auto"
        Accepted (torch's ``svd_lowrank`` normalises by QR).
    random_state : int or None
        Seeds ``"randomized"``.

    Attributes
    ----------
    components_ : ndarray (k, d)
        Principal axes (sign convention of scikit-learn).
    explained_variance_ : ndarray (k,)
        ``s_j² / (n − 1)``.
    explained_variance_ratio_ : ndarray (k,)
    singular_values_ : ndarray (k,)
    mean_ : ndarray (d,)
    n_components_ : int
    n_samples_ : int
    noise_variance_ : float
        Mean of the discarded eigenvalues of the covariance (Tipping & Bishop 1999).
    n_features_in_ : int

    References
    ----------
    Eckart & Young, Psychometrika 1936; Baldi & Hornik, Neural Networks 1989; Tipping &
    Bishop, "Probabilistic principal component analysis", JRSS B 61(3), 1999; Halko,
    Martinsson & Tropp, SIAM Review 2011; scikit-learn ``sklearn.decomposition.PCA``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> LinearAEPCA(2).fit(X).transform(X).shape
    (100, 2)
    """

    def __init__(self, n_components=None, *, copy=True, whiten=False, svd_solver="auto",
                 tol=0.0, iterated_power="auto", n_oversamples=10,
                 power_iteration_normalizer="auto", random_state=None):
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.tol = tol
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the principal subspace of X (n, d). Returns self."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n, d = X.shape
        r = min(n, d)
        method = _SOLVERS[check_choice("svd_solver", self.svd_solver, tuple(_SOLVERS))]
        check_float("tol", self.tol, 0)
        nc = self.n_components
        frac = None
        if nc is None:
            k = r
        elif isinstance(nc, float) and not isinstance(nc, bool):
            frac = check_float("n_components", nc, 0, 1, lo_open=True, hi_open=True)
            k = r
        else:
            k = check_int("n_components", nc, 1, r)
        it = 7 if self.iterated_power == "auto" else check_int("iterated_power",
                                                                self.iterated_power, 0)
        seed = 0 if self.random_state is None else int(
            np.random.RandomState(self.random_state).randint(0, 2**31 - 1)) \
            if not isinstance(self.random_state, int) else self.random_state
        sol = pca_solution(X, k, method=method, n_oversamples=check_int(
            "n_oversamples", self.n_oversamples, 0), n_iter=it, seed=seed)
        ev = np.asarray(sol.explained_variance, dtype=np.float64)
        total_var = sol.total_variance * n / (n - 1)  # trace of the sample covariance
        ratio = ev / total_var if total_var > 0 else np.zeros_like(ev)
        if frac is not None:
            k = int(np.searchsorted(np.cumsum(ratio), frac, side="right") + 1)
            k = min(k, r)
        self.components_ = np.ascontiguousarray(np.asarray(sol.components)[:, :k].T)
        self.explained_variance_ = ev[:k].astype(X.dtype)
        self.explained_variance_ratio_ = ratio[:k].astype(X.dtype)
        self.singular_values_ = np.asarray(sol.singular_values)[:k].astype(X.dtype)
        self.mean_ = np.asarray(sol.mean).astype(X.dtype)
        self.n_components_ = k
        self.n_samples_ = n
        self.noise_variance_ = float((total_var - ev[:k].sum()) / (r - k)) if k < r else 0.0
        self.noise_variance_ = max(self.noise_variance_, 0.0)
        return self

    def transform(self, X):
        """Codes (n, k): ``(X − mean_) components_ᵀ`` (whitened when ``whiten``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Z = X @ self.components_.T.astype(X.dtype, copy=False) - (
            self.mean_ @ self.components_.T).astype(X.dtype)
        if self.whiten:
            scale = np.sqrt(self.explained_variance_)
            Z /= np.maximum(scale, np.finfo(scale.dtype).eps)
        return Z

    def inverse_transform(self, X):
        """Decoder: (n, k) -> (n, d), ``Z components_ + mean_`` (scaled back if whitened)."""
        check_is_fitted(self)
        X = check_array(X, input_name="X", dtype=[np.float64, np.float32])
        C = self.components_
        if self.whiten:
            C = np.sqrt(self.explained_variance_[:, None]) * C
        return X @ C + self.mean_

    def get_covariance(self):
        """Model covariance ``Vᵀ diag(ev − σ²) V + σ² I`` (d, d), as scikit-learn's PCA."""
        check_is_fitted(self)
        C = self.components_
        ev = self.explained_variance_
        if self.whiten:
            C = C * np.sqrt(ev[:, None])
        diff = np.where(ev > self.noise_variance_, ev - self.noise_variance_, 0.0)
        cov = (C.T * diff) @ C
        cov.flat[:: len(cov) + 1] += self.noise_variance_
        return cov

    def get_precision(self):
        """Inverse of :meth:`get_covariance` (d, d)."""
        return np.linalg.inv(self.get_covariance())

    def score_samples(self, X):
        """Log-likelihood of each sample under the probabilistic PCA model, (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Xr = X - self.mean_
        P = self.get_precision()
        ll = -0.5 * np.sum(Xr * (Xr @ P), axis=1)
        return ll - 0.5 * (X.shape[1] * log(2.0 * np.pi) - fast_logdet(P))

    def score(self, X, y=None):
        """Mean log-likelihood of the samples."""
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.components_.shape[0]
