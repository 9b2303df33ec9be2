"""The linear autoencoder is PCA: closed form vs scikit-learn, and gradient training vs the
closed form (Eckart–Young; Baldi & Hornik 1989)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from aekit import LinearAE, fit, make_objective
from aekit.models.linear import init_linear_ae_from_pca, linear_ae_from_pca, pca_solution


@pytest.fixture(autouse=True)
def _one_thread():
    # Small problems: one thread avoids oversubscribing a shared CPU (and is faster here).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pca_error(X, k):
    pca = PCA(k, svd_solver="full").fit(X)
    R = pca.inverse_transform(pca.transform(X))
    return pca, float(((X - R) ** 2).sum(1).mean())


@pytest.mark.parametrize("method", ["covariance", "svd", "randomized"])
def test_matches_sklearn_pca(digits, method):
    X = digits[0].X.astype(np.float64)
    k = 10
    sol = pca_solution(X, k, method=method)
    pca, err = _pca_error(X, k)
    V = sol.components
    assert V.shape == (64, k) and V.dtype == np.float64
    angles = subspace_angles(V, pca.components_.T)
    tol = 1e-6 if method != "randomized" else 5e-3
    assert angles.max() < tol, f"largest principal angle {angles.max():.2e} rad"
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-10)
    np.testing.assert_allclose(sol.mean, pca.mean_, atol=1e-12)
    np.testing.assert_allclose(sol.singular_values, pca.singular_values_, rtol=1e-4)
    np.testing.assert_allclose(sol.explained_variance, pca.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(sol.train_error, err, rtol=1e-6 if method != "randomized"
                               else 1e-3)
    if method != "randomized":  # same sign convention, so the very same components
        np.testing.assert_allclose(V, pca.components_.T, atol=1e-6)


def test_weights_reproduce_pca_reconstruction(digits):
    X, Xte = digits[0].X.astype(np.float64), digits[1].X.astype(np.float64)
    sol = pca_solution(X, 8)
    pca = PCA(8, svd_solver="full").fit(X)
    H = Xte @ sol.encoder_weight.T + sol.encoder_bias  # (n, k)
    R = H @ sol.decoder_weight.T + sol.decoder_bias  # (n, d)
    np.testing.assert_allclose(R, pca.inverse_transform(pca.transform(Xte)), atol=1e-8)
    np.testing.assert_allclose(np.abs(H), np.abs(pca.transform(Xte)), atol=1e-8)
    # the training error formula (1/n) Σ_{j>k} s_j² equals the measured error
    Rtr = (X - sol.mean) @ sol.components @ sol.components.T + sol.mean
    np.testing.assert_allclose(((X - Rtr) ** 2).sum(1).mean(), sol.train_error, rtol=1e-10)


def test_whiten_gives_unit_variance_codes_same_reconstruction(digits):
    X = digits[0].X.astype(np.float64)
    a, w = pca_solution(X, 6), pca_solution(X, 6, whiten=True)
    H = (X - w.mean) @ w.encoder_weight.T
    np.testing.assert_allclose(H.var(0, ddof=1), 1.0, rtol=1e-8)
    np.testing.assert_allclose(w.decoder_weight @ w.encoder_weight,
                               a.decoder_weight @ a.encoder_weight, atol=1e-10)


@pytest.mark.parametrize("tied", [False, True])
def test_linear_ae_from_pca_is_optimal_and_keeps_dtype(digits, tied):
    X = digits[0].X
    m = linear_ae_from_pca(X, 8, tied=tied)
    assert m.encoder.weight.dtype == torch.float32
    x = torch.from_numpy(X)
    with torch.no_grad():
        err = float((m(x).reconstruction - x).pow(2).sum(1).mean())
    _, ref = _pca_error(X.astype(np.float64), 8)
    assert err == pytest.approx(ref, rel=1e-4)
    sol32 = pca_solution(X, 8)
    assert sol32.components.dtype == np.float32
    t = pca_solution(torch.from_numpy(X), 8)
    assert isinstance(t.components, torch.Tensor) and t.components.dtype == torch.float32


def _low_rank_data(n=1000, d=20, seed=0):
    """Data with a clear eigen-gap after 3 components (std 3, 2.5, 2 then <= 0.5), rotated and
    shifted: gradient training converges fast and the top-3 subspace is well defined."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    sd = np.array([3.0, 2.5, 2.0] + [0.5 * 0.9**i for i in range(d - 3)])
    return (rng.normal(size=(n, d)) * sd) @ Q.T + rng.normal(size=d)


@pytest.mark.parametrize("optimizer, epochs, err_tol, ang_tol", [
    ("lbfgs", 5, 1e-4, 1e-2),  # full-batch quasi-Newton: essentially exact
    ("adam", 60, 2e-2, 5e-2),  # mini-batch Adam, cosine decay: close
])
def test_gradient_trained_linear_ae_spans_pca_subspace(optimizer, epochs, err_tol, ang_tol):
    """A LinearAE trained by fit() from a random start reaches the PCA error and spans the PCA
    subspace (decoder columns and codes), but its hidden units are a non-orthogonal mixture of
    the components rather than the components themselves."""
    X = _low_rank_data()
    k = 3
    torch.manual_seed(0)
    model = LinearAE(X.shape[1], k).double()
    fit(model, make_objective("mse"), X, optimizer=optimizer, max_iter=epochs, random_state=0,
        learning_rate=1.0 if optimizer == "lbfgs" else 1e-2, lbfgs_max_iter=30, batch_size=64,
        schedule="cosine" if optimizer == "adam" else "constant")
    sol = pca_solution(X, k)
    x = torch.from_numpy(X)
    with torch.no_grad():
        out = model(x)
    err = float((out.reconstruction - x).pow(2).sum(1).mean())
    assert err == pytest.approx(sol.train_error, rel=err_tol), (err, sol.train_error)
    Wd = model.decoder.weight.detach().numpy()  # (d, k)
    ang = subspace_angles(Wd, sol.components).max()
    assert ang < ang_tol, f"decoder columns: largest principal angle {ang:.2e} rad"
    H = out.code.numpy()  # (n, k): the codes are linear combinations of the PCA scores
    ang = subspace_angles(H - H.mean(0), (X - sol.mean) @ sol.components).max()
    assert ang < 3 * ang_tol, f"codes vs PCA scores: largest principal angle {ang:.2e} rad"
    if optimizer != "lbfgs":
        return  # (Adam's per-coordinate steps happen to leave W_e's rows near-orthogonal)
    # not the components themselves: the rows of W_e are not orthogonal ...
    We = model.encoder.weight.detach().numpy()  # (k, d)
    G = We @ We.T
    off = np.abs(G - np.diag(np.diag(G))).max() / np.diag(G).max()
    assert off > 0.05, f"encoder rows nearly orthogonal (max |off-diagonal| ratio {off:.3f})"
    # ... and the hidden units mix the components (|cos| to the nearest one clearly below 1)
    cos = np.abs(sol.components.T @ (We.T / np.linalg.norm(We, axis=1)))  # (k, k)
    assert cos.max(0).min() < 0.95, f"units aligned with components: {cos.max(0)}"


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(20, 5))
    with pytest.raises(ValueError, match="k must be in"):
        pca_solution(X, 6)
    with pytest.raises(ValueError, match="k must be in"):
        pca_solution(X, 0)
    with pytest.raises(ValueError, match="k must be an int"):
        pca_solution(X, 2.5)
    with pytest.raises(ValueError, match="method"):
        pca_solution(X, 2, method="qr")
    with pytest.raises(ValueError, match="2-D"):
        pca_solution(X[0], 1)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pca_solution(Xn, 2)
    with pytest.raises(ValueError, match="at least 2 samples"):
        pca_solution(X[:1], 1)
    with pytest.raises(ValueError, match="features"):
        init_linear_ae_from_pca(LinearAE(4, 2), X)
    with pytest.raises(ValueError, match="LinearAE"):
        init_linear_ae_from_pca(torch.nn.Linear(5, 2), X)
    with pytest.raises(ValueError, match="untied"):
        init_linear_ae_from_pca(LinearAE(5, 2, tied=True), X, whiten=True)


def test_wide_data_uses_svd():
    X = np.random.default_rng(1).normal(size=(10, 50))
    sol = pca_solution(X, 3)  # n < d: auto picks the SVD route
    pca = PCA(3, svd_solver="full").fit(X)
    assert subspace_angles(sol.components, pca.components_.T).max() < 1e-8


@pytest.mark.data
def test_mnist_pca30_hinton_number(mnist_path):
    """PCA-30 on MNIST: 13.87 in Hinton & Salakhutdinov's unit (Σ pixels of squared error,
    mean over the 10,000 test images)."""
    from aekit import load_mnist

    tr, te = load_mnist(mnist_path)
    sol = pca_solution(tr.X, 30)
    R = (te.X - sol.mean) @ sol.components @ sol.components.T + sol.mean
    err = float(((te.X - R) ** 2).sum(1).mean())
    assert err == pytest.approx(13.87, abs=0.01), f"PCA-30 test error {err:.4f}"
