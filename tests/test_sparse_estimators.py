"""scikit-learn estimators and functions for sparse coding: drop-in compatibility with
scikit-learn (parameters and defaults introspected from scikit-learn's own classes), results
against scikit-learn at the same settings, warnings, validation, reproducible online learning
and the Lagrange-dual dictionary update."""

import inspect
import warnings

import numpy as np
import pytest
import sklearn.decomposition as skd
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.sparse import DictionaryLearning, MiniBatchDictionaryLearning, SparseCoder, sklearn_api
from aekit.sparse.lagrange_dual import lagrange_dual_update

PAIRS = [(SparseCoder, skd.SparseCoder), (DictionaryLearning, skd.DictionaryLearning),
         (MiniBatchDictionaryLearning, skd.MiniBatchDictionaryLearning)]
FUNCS = [(sklearn_api.sparse_encode, skd.sparse_encode),
         (sklearn_api.dict_learning, skd.dict_learning),
         (sklearn_api.dict_learning_online, skd.dict_learning_online)]

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
     # as in scikit-learn's own check table: fit_transform returns the Lasso codes of the
     # fit, so transform must solve the same problem for the consistency checks
     DictionaryLearning(n_components=3, max_iter=20, transform_algorithm="lasso_lars"),
     MiniBatchDictionaryLearning(n_components=3, batch_size=10, max_iter=3)],
    expected_failed_checks=_expected_failures)
def test_sklearn_api(estimator, check):
    check(estimator)


def _same_default(a, b):
    return a is b or (type(a) is type(b) and a == b)


@pytest.mark.parametrize("ours, theirs", PAIRS + FUNCS, ids=lambda c: c.__name__)
def test_every_sklearn_parameter_with_its_default(ours, theirs):
    """Every parameter of scikit-learn's class/function exists here with the same default
    and kind, and scikit-learn's positional order is kept (a new scikit-learn parameter
    fails here)."""
    mine = inspect.signature(ours).parameters
    ref = inspect.signature(theirs).parameters
    missing = [n for n in ref if n not in mine]
    assert not missing, f"{ours.__name__} lacks scikit-learn parameters {missing}"
    wrong = {n: (mine[n].default, p.default) for n, p in ref.items()
             if not _same_default(mine[n].default, p.default) or mine[n].kind != p.kind}
    assert not wrong, f"{ours.__name__}: (ours, scikit-learn) defaults/kinds differ: {wrong}"
    assert list(mine)[:len(ref)] == list(ref), f"{ours.__name__}: order {list(mine)}"


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=lambda c: c.__name__)
def test_every_sklearn_method(ours, theirs):
    public = {m for m in dir(theirs) if not m.startswith("_") and callable(getattr(theirs, m))}
    missing = sorted(m for m in public if not callable(getattr(ours, m, None)))
    assert not missing, f"{ours.__name__} lacks scikit-learn methods {missing}"


def _data(n=200, d=16, seed=0, dtype=np.float64):
    return np.random.RandomState(seed).normal(size=(n, d)).astype(dtype)


def _fitted_attrs(est):
    return {a for a in vars(est) if a.endswith("_") and not a.startswith("_")}


@pytest.mark.parametrize("kw", [{}, {"positive_dict": True}, {"fit_algorithm": "cd"},
                                {"n_components": 20}], ids=str)
def test_dictionary_learning_equals_sklearn(kw):
    """Same settings, same random_state: scikit-learn's dictionary, costs and iterations."""
    X = _data(120, 10)
    kw = {"n_components": 8, "alpha": 1.0, "max_iter": 30, "random_state": 0} | kw
    ours = DictionaryLearning(**kw).fit(X)
    ref = skd.DictionaryLearning(**kw).fit(X)
    tol = 1e-5 if kw.get("fit_algorithm") == "cd" else 1e-7
    err = np.abs(ours.components_ - ref.components_).max()
    assert err < tol, f"{kw}: max |V − V_sklearn| = {err:.2e}"
    rel = abs(ours.error_[-1] - ref.error_[-1]) / ref.error_[-1]
    assert rel < 1e-7, f"{kw}: final cost {ours.error_[-1]!r} vs {ref.error_[-1]!r}"
    assert ours.n_iter_ == ref.n_iter_
    assert _fitted_attrs(ref) <= _fitted_attrs(ours), _fitted_attrs(ref) - _fitted_attrs(ours)
    if kw.get("positive_dict"):
        assert ours.components_.min() >= 0


def test_minibatch_equals_sklearn_and_defaults_match():
    X = _data(300, 12)
    kw = {"n_components": 10, "alpha": 0.5, "batch_size": 30, "random_state": 0}
    ours = MiniBatchDictionaryLearning(**kw).fit(X)
    ref = skd.MiniBatchDictionaryLearning(**kw).fit(X)
    err = np.abs(ours.components_ - ref.components_).max()
    assert err < 1e-8, f"max |V − V_sklearn| = {err:.2e}"
    assert (ours.n_steps_, ours.n_iter_) == (ref.n_steps_, ref.n_iter_)
    assert _fitted_attrs(ref) <= _fitted_attrs(ours)
    # default transform is scikit-learn's (OMP): the same codes
    Z, Zr = ours.transform(X), ref.transform(X)
    assert np.abs(Z - Zr).max() < 1e-8


@pytest.mark.parametrize("algo", ["lasso_lars", "lasso_cd", "lars", "omp", "threshold"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transform_algorithms_match_sklearn(algo, dtype):
    X = _data(60, 12, dtype=dtype)
    Dk = np.random.RandomState(1).normal(size=(20, 12)).astype(dtype)
    Dk /= np.linalg.norm(Dk, axis=1, keepdims=True)
    kw = {"transform_algorithm": algo, "transform_alpha": 0.3, "transform_n_nonzero_coefs": 3}
    Z = SparseCoder(Dk, **kw).transform(X)
    Zr = skd.SparseCoder(Dk, **kw).transform(X)
    assert Z.dtype == Zr.dtype == dtype
    # lasso_cd is iterative on both sides (scikit-learn's Lasso stops on a duality gap)
    tol = {np.float32: 1e-4, np.float64: 1e-10}[dtype] if algo != "lasso_cd" else 5e-3
    err = np.abs(Z - Zr).max()
    assert err < tol, f"{algo} {dtype.__name__}: max |Z − Z_sklearn| = {err:.2e}"


def test_split_sign_feature_names_and_set_output():
    X = _data(40, 8)
    Dk = np.linalg.qr(np.random.RandomState(2).normal(size=(8, 8)))[0]
    kw = {"transform_algorithm": "lasso_lars", "transform_alpha": 0.2, "split_sign": True}
    Z = SparseCoder(Dk, **kw).fit(X).transform(X)
    Zr = skd.SparseCoder(Dk, **kw).fit(X).transform(X)
    assert Z.shape == (40, 16) and np.abs(Z - Zr).max() < 1e-10
    assert np.allclose(SparseCoder(Dk, **kw).inverse_transform(Z),
                       skd.SparseCoder(Dk, **kw).inverse_transform(Zr))
    est = DictionaryLearning(4, max_iter=3, random_state=0).fit(X)
    ref = skd.DictionaryLearning(4, max_iter=3, random_state=0).fit(X)
    assert list(est.get_feature_names_out()) == list(ref.get_feature_names_out())
    pd = pytest.importorskip("pandas")
    out = est.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(
        ref.get_feature_names_out())


def test_convergence_warning_and_feature_check():
    X = _data(30, 12)
    Dk = np.random.RandomState(1).normal(size=(20, 12))
    for est in (SparseCoder(Dk, transform_algorithm="lasso_cd", transform_max_iter=1),
                DictionaryLearning(5, max_iter=2, transform_algorithm="lasso_cd",
                                   transform_max_iter=1, random_state=0).fit(X)):
        with pytest.warns(ConvergenceWarning, match="max_iter"):
            est.transform(X)
    fitted = DictionaryLearning(5, max_iter=2, random_state=0).fit(X)
    ref = skd.DictionaryLearning(5, max_iter=2, random_state=0).fit(X)
    for a, b in ((fitted, ref), (SparseCoder(Dk).fit(X), skd.SparseCoder(Dk).fit(X))):
        with pytest.raises(ValueError) as e1:
            a.transform(X[:, :5])
        with pytest.raises(ValueError) as e2:
            b.transform(X[:, :5])
        assert str(e1.value) == str(e2.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SparseCoder(Dk, transform_algorithm="lasso_lars", transform_max_iter=1).transform(X)


def test_sklearn_functions_numpy_in_out():
    X = _data(80, 10)
    Dk = np.random.RandomState(3).normal(size=(14, 10))
    Dk /= np.linalg.norm(Dk, axis=1, keepdims=True)
    for algo in ("lasso_lars", "lars", "omp", "threshold"):
        Z = sklearn_api.sparse_encode(X, Dk, algorithm=algo, alpha=0.4)
        Zr = skd.sparse_encode(X, Dk, algorithm=algo, alpha=0.4)
        assert isinstance(Z, np.ndarray) and np.abs(Z - Zr).max() < 1e-10, algo
    # positive codes: exact (KKT to rounding), never worse than scikit-learn's positive
    # LassoLars, whose codes can miss the optimum (measured: correlations up to 0.4028 > α)
    Zp = sklearn_api.sparse_encode(X, Dk, alpha=0.4, positive=True, n_jobs=1)
    Zpr = skd.sparse_encode(X, Dk, alpha=0.4, positive=True)
    R = (X - Zp @ Dk) @ Dk.T
    assert Zp.min() >= 0 and R.max() <= 0.4 * (1 + 1e-9), f"max correlation {R.max()!r}"
    assert np.abs(R[Zp > 0] - 0.4).max() < 1e-9

    def cost(Z):
        return 0.5 * ((X - Z @ Dk) ** 2).sum(1) + 0.4 * np.abs(Z).sum(1)

    assert (cost(Zp) <= cost(Zpr) + 1e-12).all(), (cost(Zp) - cost(Zpr)).max()
    with pytest.raises(ValueError, match="Positive constraint"):
        sklearn_api.sparse_encode(X, Dk, algorithm="omp", positive=True)
    out = sklearn_api.dict_learning(X, 6, alpha=1.0, max_iter=10, random_state=0,
                                    return_n_iter=True)
    ref = skd.dict_learning(X, 6, alpha=1.0, max_iter=10, random_state=0, return_n_iter=True)
    assert len(out) == 4 and out[3] == ref[3]
    assert np.abs(out[1] - ref[1]).max() < 1e-8 and np.abs(out[0] - ref[0]).max() < 1e-8
    code, V = sklearn_api.dict_learning_online(X, 6, alpha=1.0, max_iter=2, batch_size=20,
                                               random_state=0)
    code_r, V_r = skd.dict_learning_online(X, 6, alpha=1.0, max_iter=2, batch_size=20,
                                           random_state=0)
    assert np.abs(V - V_r).max() < 1e-8 and np.abs(code - code_r).max() < 1e-8


def test_partial_fit_reproduces_fit_and_advances_one_generator():
    """fit (no shuffle) and partial_fit on the same batches: the same dictionary, with
    unused atoms re-drawn along the way (so the shared RandomState matters)."""
    X = _data(200, 12)
    D0 = np.random.RandomState(5).normal(size=(16, 12))
    kw = {"n_components": 16, "alpha": 3.0, "batch_size": 25, "dict_init": D0,
          "shuffle": False, "max_iter": 2, "tol": 0.0, "max_no_improvement": None,
          "random_state": 7}
    full = MiniBatchDictionaryLearning(**kw).fit(X)
    part = MiniBatchDictionaryLearning(**kw)
    for _ in range(2):
        for i in range(0, 200, 25):
            part.partial_fit(X[i:i + 25])
    assert full.n_steps_ == part.n_steps_ == 16
    err = np.abs(full.components_ - part.components_).max()
    assert err < 1e-12, f"fit vs partial_fit: max |ΔV| = {err:.2e}"
    again = MiniBatchDictionaryLearning(**(kw | {"random_state": 8})).fit(X)
    assert np.abs(again.components_ - full.components_).max() > 1e-3, \
        "no atom was re-drawn: the test does not exercise the generator"


def test_lagrange_dual_is_the_exact_dictionary_step():
    """The dual's dictionary equals many block-coordinate sweeps run to convergence (the
    step is a convex problem), and beats one sweep."""
    rng = np.random.RandomState(0)
    n, d, k = 300, 12, 10
    Z = rng.normal(size=(n, k)) * (rng.rand(n, k) < 0.3)
    X = rng.normal(size=(n, d)) * 2
    A, B = Z.T @ Z, X.T @ Z
    D, lam, _ = lagrange_dual_update(A, B)
    V = rng.normal(size=(k, d))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    V1 = V.copy()
    sklearn_api.update_dict(V1, X, Z.copy(), A, B, random_state=0)
    for _ in range(3000):
        sklearn_api.update_dict(V, X, Z.copy(), A, B, random_state=0)

    def f(Vk):
        return 0.5 * np.trace(Vk @ Vk.T @ A) - np.trace(Vk @ B)

    assert np.linalg.norm(D, axis=0).max() <= 1 + 1e-9 and (lam >= 0).all()
    assert abs(f(D.T) - f(V)) <= 1e-9 * abs(f(V)), f"dual {f(D.T)!r} vs BCD {f(V)!r}"
    assert np.abs(D.T - V).max() < 1e-5, f"max |D_dual − D_bcd| = {np.abs(D.T - V).max():.2e}"
    assert f(D.T) < f(V1), "one sweep should not reach the exact minimiser"


@pytest.mark.parametrize("cls", [DictionaryLearning, MiniBatchDictionaryLearning])
def test_lagrange_dual_learning_lowers_the_cost(cls):
    X = _data(200, 12)
    kw = {"n_components": 10, "alpha": 1.0, "max_iter": 10, "random_state": 0}
    if cls is MiniBatchDictionaryLearning:
        kw |= {"batch_size": 50, "tol": 0.0, "max_no_improvement": None}
    dual = cls(dict_update="lagrange_dual", **kw).fit(X)
    norms = np.linalg.norm(dual.components_, axis=1)
    assert norms.max() <= 1 + 1e-8
    Z = sklearn_api.sparse_encode(X, dual.components_, alpha=1.0)
    cost = 0.5 * ((X - Z @ dual.components_) ** 2).sum() + np.abs(Z).sum()
    Z0 = sklearn_api.sparse_encode(X, cls(max_iter=1, **{k: v for k, v in kw.items()
                                                      if k != "max_iter"}).fit(X).components_,
                                   alpha=1.0)
    assert cost < 0.5 * (X ** 2).sum(), f"cost {cost} not below ‖X‖²/2"
    assert Z0.shape == Z.shape
    with pytest.raises(ValueError, match="positive_dict"):
        cls(dict_update="lagrange_dual", positive_dict=True).fit(X)


def test_validation_errors_name_the_argument():
    X = _data(50, 8)
    cases = [
        (lambda: DictionaryLearning(alpha=-1).fit(X), "alpha"),
        (lambda: MiniBatchDictionaryLearning(alpha=-0.5).fit(X), "alpha"),
        (lambda: DictionaryLearning(n_components=0).fit(X), "n_components"),
        (lambda: DictionaryLearning(transform_algorithm="nope").fit(X), "transform_algorithm"),
        (lambda: DictionaryLearning(fit_algorithm="omp").fit(X), "fit_algorithm"),
        (lambda: DictionaryLearning(dict_update="newton").fit(X), "dict_update"),
        (lambda: DictionaryLearning(n_components=4, dict_init=np.ones((3, 8)),
                                    code_init=np.ones((50, 4))).fit(X), "dict_init"),
        (lambda: SparseCoder(np.ones((3, 8)), transform_alpha=-1.0).transform(X),
         "transform_alpha"),
        (lambda: SparseCoder(np.ones((3, 8)), positive_code=True).transform(X),
         "positive_code"),
        (lambda: MiniBatchDictionaryLearning(batch_size=0).fit(X), "batch_size"),
        (lambda: sklearn_api.sparse_encode(X, np.ones((3, 5))), "numbers of features"),
    ]
    for fn, msg in cases:
        with pytest.raises(ValueError, match=msg):
            fn()


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_atom_sweep_equals_sklearn_update_dict(positive, dtype):
    """The compiled block-coordinate sweep (numba) against scikit-learn's Python loop, with
    unused atoms in the middle and at the end (re-drawn from the same RandomState calls)."""
    from sklearn.decomposition._dict_learning import _update_dict

    rng = np.random.RandomState(3)
    n, d, k = 80, 12, 9
    Y = rng.normal(size=(n, d)).astype(dtype)
    code = (rng.normal(size=(n, k)) * (rng.rand(n, k) < 0.4)).astype(dtype)
    code[:, [2, 8]] = 0  # unused atoms: re-drawn
    V = rng.normal(size=(k, d)).astype(dtype)
    A, B = code.T @ code, Y.T @ code
    ours, ref = V.copy(), V.copy()
    c1, c2 = code.copy(), code.copy()
    sklearn_api.update_dict(ours, Y, c1, A, B, random_state=np.random.RandomState(0),
                            positive=positive)
    _update_dict(ref, Y, c2, A, B, random_state=np.random.RandomState(0), positive=positive)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert np.abs(ours - ref).max() < tol
    assert np.array_equal(c1, c2)
    assert not np.allclose(ours[[2, 8]], V[[2, 8]])
