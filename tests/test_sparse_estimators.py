"""scikit-learn estimators for sparse coding: API checks, agreement, validation."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import SparseCoder as SkSparseCoder
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.sparse import (
    DictionaryLearning,
    MiniBatchDictionaryLearning,
    SparseCoder,
    lasso_objective,
)

# SparseCoder holds a fixed (k, d) dictionary, so every generic check that feeds X with
# another number of features fails by design (scikit-learn's own SparseCoder passes them
# only through per-check dictionaries in its private test-instance table).
_FEATURES = "fixed dictionary: generic check data has a different number of features"
_CODER_XFAIL = {name: _FEATURES for name in [
    "check_estimators_overwrite_params", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_transformers_unfitted_stateless", "check_fit2d_1sample", "check_fit2d_1feature",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
]}


def _expected_failures(est):
    return _CODER_XFAIL if isinstance(est, SparseCoder) else {}


@parametrize_with_checks(
    [SparseCoder(np.random.RandomState(0).normal(size=(5, 3))),
     DictionaryLearning(n_components=3, max_iter=10),
     MiniBatchDictionaryLearning(n_components=3, batch_size=10, max_iter=3)],
    expected_failed_checks=_expected_failures)
def test_sklearn_api(estimator, check):
    check(estimator)


def _data(n=200, d=16, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n, d)).astype(dtype)


def test_sparse_coder_matches_sklearn_lasso_cd():
    X = _data(30, 12)
    Dk = np.random.RandomState(1).normal(size=(20, 12))
    Dk /= np.linalg.norm(Dk, axis=1, keepdims=True)
    ref = SkSparseCoder(Dk, transform_algorithm="lasso_cd", transform_alpha=0.3,
                        transform_max_iter=10000).transform(X)
    def objective(Z):
        return lasso_objective(torch.tensor(X), torch.tensor(Dk.T), torch.tensor(Z), 0.3)[0]

    f_ref = objective(ref)
    for algo in ("fista", "cd", "feature_sign"):
        # default tolerances: the objective agrees to 1e-6; codes only to ~1e-2 along the
        # flat directions of this overcomplete problem
        Z = SparseCoder(Dk, transform_algorithm=algo, transform_alpha=0.3).transform(X)
        f = objective(Z)
        assert f <= f_ref * (1 + 1e-6), f"{algo}: objective {f!r} vs sklearn {f_ref!r}"
        err = np.abs(Z - ref).max()
        assert err < 1e-2, f"{algo}: max |Z − Z_sklearn| = {err:.2e}"
    Zo = SparseCoder(Dk, transform_algorithm="omp", transform_n_nonzero_coefs=3).transform(X)
    ref_o = SkSparseCoder(Dk, transform_algorithm="omp",
                          transform_n_nonzero_coefs=3).transform(X)
    assert np.abs(Zo - ref_o).max() < 1e-8


@pytest.mark.parametrize("cls", [DictionaryLearning, MiniBatchDictionaryLearning])
def test_learned_estimators(cls):
    X = _data(300, 16, dtype=np.float32)
    est = cls(n_components=24, alpha=0.3, max_iter=5, random_state=0).fit(X)
    assert est.components_.shape == (24, 16) and est.components_.dtype == np.float32
    norms = np.linalg.norm(est.components_, axis=1)
    assert np.abs(norms - 1).max() < 1e-5, f"atom norms {norms.min()}..{norms.max()}"
    Z = est.transform(X)
    assert Z.shape == (300, 24) and Z.dtype == np.float32
    assert (Z == 0).mean() > 0.2, f"codes only {(Z == 0).mean():.0%} zeros"
    R = est.inverse_transform(Z)
    assert R.shape == X.shape
    assert len(est.error_) >= 1 and est.error_[-1] < est.error_[0]
    assert np.allclose(cls(n_components=24, alpha=0.3, max_iter=5,
                           random_state=0).fit(X).components_, est.components_)


def test_minibatch_partial_fit():
    X = _data(400, 16)
    est = MiniBatchDictionaryLearning(n_components=8, alpha=0.3, random_state=0)
    for i in range(0, 400, 100):
        est.partial_fit(X[i:i + 100])
    assert est.n_steps_ == 4 and len(est.error_) == 4
    assert np.abs(np.linalg.norm(est.components_, axis=1) - 1).max() < 1e-8
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:10, :5])


def test_validation_errors_name_the_argument():
    X = _data(50, 8)
    bad_x = X.copy()
    bad_x[0, 0] = np.nan
    cases = [
        (lambda: DictionaryLearning(alpha=-1).fit(X), "alpha"),
        (lambda: MiniBatchDictionaryLearning(alpha=-0.5).fit(X), "alpha"),
        (lambda: DictionaryLearning(n_components=0).fit(X), "n_components"),
        (lambda: DictionaryLearning(max_iter=2).fit(bad_x), "NaN"),
        (lambda: DictionaryLearning(max_iter=2).fit(np.full((5, 8), np.inf)), "infinity"),
        (lambda: DictionaryLearning(max_iter=2).fit(np.zeros((0, 8))), "sample"),
        (lambda: DictionaryLearning(max_iter=2).fit(X).transform(X[:, :5]), "features"),
        (lambda: DictionaryLearning(transform_algorithm="lars").fit(X), "transform_algorithm"),
        (lambda: DictionaryLearning(fit_algorithm="omp").fit(X), "fit_algorithm"),
        (lambda: DictionaryLearning(n_components=4, dict_init=np.zeros((4, 8))).fit(X),
         "dict_init"),
        (lambda: DictionaryLearning(n_components=4, dict_init=np.ones((3, 8))).fit(X),
         "dict_init"),
        (lambda: SparseCoder(np.zeros((3, 8))).transform(X), "dictionary"),
        (lambda: SparseCoder(np.ones((3, 8))).transform(X[:, :4]), "features"),
        (lambda: SparseCoder(np.ones((3, 8)), transform_alpha=-1.0).transform(X),
         "transform_alpha"),
        (lambda: SparseCoder(np.ones((3, 8)), transform_algorithm="omp",
                             positive_code=True).transform(X), "positive_code"),
        (lambda: MiniBatchDictionaryLearning(batch_size=0).fit(X), "batch_size"),
    ]
    for fn, msg in cases:
        with pytest.raises(ValueError, match=msg):
            fn()


def test_positive_codes_and_dtype():
    X = _data(100, 10)
    est = DictionaryLearning(n_components=12, alpha=0.2, max_iter=4, positive_code=True,
                             random_state=0).fit(X)
    Z = est.transform(X)
    assert Z.min() >= 0 and Z.dtype == np.float64
    assert torch.get_default_dtype() == torch.float32  # estimators never change the default
