"""LinearAEPCA against scikit-learn's PCA: parameters, attributes, transforms, likelihood."""

import inspect

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.decomposition import LinearAEPCA


@parametrize_with_checks([LinearAEPCA(n_components=2)])
def test_sklearn_api(estimator, check):
    check(estimator)


def test_every_pca_parameter_and_default():
    mine = inspect.signature(LinearAEPCA).parameters
    ref = inspect.signature(PCA).parameters
    bad = {n: (mine[n].default if n in mine else "missing", p.default)
           for n, p in ref.items() if n not in mine or mine[n].default != p.default}
    assert not bad, f"(ours, PCA) differ: {bad}"
    methods = {m for m in dir(PCA) if not m.startswith("_") and callable(getattr(PCA, m))}
    assert not methods - set(dir(LinearAEPCA)), methods - set(dir(LinearAEPCA))


def _data(n=300, d=20, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "randomized", "auto"])
@pytest.mark.parametrize("whiten", [False, True])
def test_matches_sklearn_pca(solver, whiten):
    X = _data()
    ours = LinearAEPCA(5, whiten=whiten, svd_solver=solver, random_state=0).fit(X)
    ref = PCA(5, whiten=whiten, svd_solver=solver, random_state=0).fit(X)
    tol = 1e-4 if solver == "randomized" else 1e-8
    ctol = 1e-4 if solver == "randomized" else 1e-6
    for name in ("components_", "explained_variance_", "explained_variance_ratio_",
                 "singular_values_", "mean_", "noise_variance_"):
        a, b = np.asarray(getattr(ours, name)), np.asarray(getattr(ref, name))
        err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
        assert err < tol, f"{solver} whiten={whiten} {name}: relative error {err:.2e}"
    Z, Zr = ours.transform(X), ref.transform(X)
    err = np.abs(Z - Zr).max() / np.abs(Zr).max()
    assert err < 1e3 * tol, f"{solver}: relative code error {err:.2e}"
    rec = ((ours.inverse_transform(Z) - X) ** 2).sum()
    rec_ref = ((ref.inverse_transform(Zr) - X) ** 2).sum()
    assert abs(rec - rec_ref) <= 1e-6 * rec_ref, f"{solver}: error {rec!r} vs {rec_ref!r}"
    assert np.allclose(ours.get_covariance(), ref.get_covariance(), rtol=ctol, atol=1e-8)
    assert np.allclose(ours.score_samples(X), ref.score_samples(X), rtol=ctol)
    assert list(ours.get_feature_names_out()) == [f"linearaepca{i}" for i in range(5)]


def test_float_n_components_float32_and_pipeline():
    X = _data()
    ours, ref = LinearAEPCA(0.9).fit(X), PCA(0.9).fit(X)
    assert ours.n_components_ == ref.n_components_
    X32 = X.astype(np.float32)
    assert LinearAEPCA(3).fit(X32).transform(X32).dtype == np.float32
    pipe = make_pipeline(StandardScaler(), LinearAEPCA(4)).fit(X)
    ref_pipe = make_pipeline(StandardScaler(), PCA(4)).fit(X)
    assert np.allclose(np.abs(pipe.transform(X)), np.abs(ref_pipe.transform(X)), atol=1e-8)
    with pytest.raises(ValueError, match="n_components"):
        LinearAEPCA(50).fit(X[:, :10])
    with pytest.raises(ValueError, match="svd_solver"):
        LinearAEPCA(2, svd_solver="lobpcg").fit(X)
