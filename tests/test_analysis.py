"""Analyses behind the report: definitions checked against the model and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from aekit.analysis.latent import (
    activation_summary,
    code_map,
    decoder_filters,
    encode,
    encoder_filters,
    interpolate,
    latent_traversal,
    traversal_values,
)
from aekit.analysis.rate_distortion import (
    pca_equivalent_code_size,
    pca_error_curve,
    rate_distortion,
)
from aekit.analysis.reconstruction import (
    display_shape,
    pca_reconstruct,
    reconstruct,
    reconstruction_grid,
    sample_errors,
    tile_images,
    worst_reconstructions,
)
from aekit.models import DenseAE, LinearAE
from aekit.runs import pca_errors, reconstruction_errors


@pytest.fixture(scope="module")
def data(digits):
    train, test = digits
    return train.X[:600], test.X[:120], test.y[:120]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DenseAE([64, 24, 5], activation="elu", output="sigmoid").eval()


def test_traversal_changes_only_the_swept_unit(model, data):
    X = data[1]
    h = encode(model, X[:1])[0]
    values = np.linspace(-2, 3, 6).astype(np.float32)
    for unit in (0, 3):
        t = latent_traversal(model, X[0], unit, values)
        assert t.codes.shape == (6, 5) and t.reconstructions.shape == (6, 64)
        np.testing.assert_array_equal(t.codes[:, unit], values)
        others = np.delete(t.codes, unit, axis=1)
        np.testing.assert_array_equal(others, np.repeat(np.delete(h, unit)[None], 6, axis=0))
        with torch.no_grad():
            expect = model.decode(torch.from_numpy(t.codes)).numpy()
        np.testing.assert_allclose(t.reconstructions, expect, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="unit must be in"):
        latent_traversal(model, X[0], 5, values)


def test_traversal_values_span_the_quantiles(model, data):
    H = encode(model, data[1])
    V = traversal_values(H, 5, quantiles=(0.1, 0.9))
    assert V.shape == (5, 5)
    np.testing.assert_allclose(V[:, 0], np.quantile(H, 0.1, axis=0), rtol=1e-5)
    np.testing.assert_allclose(V[:, -1], np.quantile(H, 0.9, axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="n_steps"):
        traversal_values(H, 1)


def test_interpolation_endpoints_are_the_reconstructions(model, data):
    X = data[1]
    it = interpolate(model, X[3], X[7], n_steps=5)
    with torch.no_grad():
        R = model(torch.from_numpy(X[[3, 7]])).reconstruction.numpy()
        H = model.encode(torch.from_numpy(X[[3, 7]])).numpy()
    np.testing.assert_allclose(it.reconstructions[0], R[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(it.reconstructions[-1], R[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(it.t, [0, 0.25, 0.5, 0.75, 1])
    # The path is the straight line between the two codes.
    np.testing.assert_allclose(it.codes[2], (H[0] + H[1]) / 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="n_steps"):
        interpolate(model, X[0], X[1], n_steps=1)


def test_pca_error_decreases_with_k_and_matches_sklearn(data):
    Xtr, Xte, _ = data
    ks, err = pca_error_curve(Xtr, Xte)
    assert list(ks) == list(range(1, 65))
    assert np.all(np.diff(err) <= 0), "PCA test error must not increase with k"
    assert err[0] > 5 * err[31] and err[-1] < 1e-8 * err[0]
    X64, T64 = Xtr.astype(np.float64), Xte.astype(np.float64)
    for k in (1, 8, 30):  # brute force: an exact (full-SVD) PCA reconstruction
        p = PCA(n_components=k, svd_solver="full").fit(X64)
        brute = ((p.inverse_transform(p.transform(T64)) - T64) ** 2).sum(1).mean()
        assert err[k - 1] == pytest.approx(brute, rel=1e-9), k
    # aekit.runs.pca_errors (metrics.json) is the same exact PCA.
    assert err[7] == pytest.approx(float(pca_errors(Xtr, Xte, 8).mean()), rel=1e-6)
    ks2, err2 = pca_error_curve(Xtr, Xte, [8, 2])
    assert list(ks2) == [8, 2]
    np.testing.assert_allclose(err2, err[[7, 1]], rtol=1e-12)
    assert pca_equivalent_code_size(err[9] + 1e-9, ks, err) == 10
    assert pca_equivalent_code_size(-1.0, ks, err) is None
    with pytest.raises(ValueError, match="code_sizes"):
        pca_error_curve(Xtr, Xte, [0])


def test_rate_distortion_of_models(data):
    Xtr, Xte, _ = data
    torch.manual_seed(1)
    models = [DenseAE([64, 16, 6]), LinearAE(64, 2)]
    rd = rate_distortion(models, Xtr, Xte)
    assert list(rd.code_sizes) == [2, 6] and rd.labels == ["linear k=2", "dense k=6"]
    for k, e, m in zip(rd.code_sizes, rd.ae_error, models[::-1]):
        assert e == pytest.approx(float(reconstruction_errors(m, Xte).mean()), rel=1e-5)
        assert m.n_components == k
    _, pe = pca_error_curve(Xtr, Xte)
    np.testing.assert_allclose(rd.pca_error, pe[[1, 5]])


def test_reconstruction_grid_equals_model_outputs(model, data):
    Xtr, Xte, _ = data
    g = reconstruction_grid(model, Xte, n=7, X_train=Xtr)
    with torch.no_grad():
        R = model(torch.from_numpy(Xte[:7])).reconstruction.numpy()
    np.testing.assert_array_equal(g.inputs, Xte[:7])
    np.testing.assert_allclose(g.autoencoder, R, rtol=1e-6, atol=1e-7)
    pca = PCA(n_components=5, svd_solver="full").fit(Xtr.astype(np.float64))
    np.testing.assert_allclose(g.pca, pca.inverse_transform(pca.transform(Xte[:7])),
                               rtol=1e-5, atol=1e-6)
    assert reconstruction_grid(model, Xte, n=3).pca is None
    e = sample_errors(Xte, reconstruct(model, Xte))
    np.testing.assert_allclose(e, reconstruction_errors(model, Xte), rtol=1e-5)
    R2, mu, V = pca_reconstruct(Xtr, Xte, 5)
    assert R2.dtype == Xte.dtype and V.shape == (5, 64) and mu.shape == (64,)
    np.testing.assert_allclose(V @ V.T, np.eye(5), atol=1e-10)
    np.testing.assert_allclose(sample_errors(Xte, R2), pca_errors(Xtr, Xte, 5), rtol=1e-6)


def test_worst_reconstructions_are_the_largest_errors(model, data):
    X = data[1]
    e = sample_errors(X, reconstruct(model, X))
    w = worst_reconstructions(model, X, 5)
    np.testing.assert_allclose(np.sort(w.errors)[::-1], w.errors)
    np.testing.assert_allclose(w.errors, np.sort(e)[::-1][:5], rtol=1e-6)
    np.testing.assert_array_equal(w.inputs, X[w.indices])
    np.testing.assert_allclose(w.reconstructions, reconstruct(model, X[w.indices]))


def test_code_map(model, data):
    X = data[1]
    H = encode(model, X)
    cm = code_map(H)
    assert cm.method == "pca" and cm.points.shape == (len(X), 2)
    ref = PCA(n_components=2).fit_transform(H.astype(np.float64))
    for j in range(2):  # equal up to the sign of each axis
        c = np.corrcoef(cm.points[:, j], ref[:, j])[0, 1]
        assert abs(c) > 1 - 1e-6, c
    assert 0 < cm.explained_variance.sum() <= 1 + 1e-9
    two = code_map(H[:, :2])
    assert two.method == "codes"
    np.testing.assert_allclose(two.points, H[:, :2])
    np.testing.assert_allclose(code_map(H[:, :1]).points[:, 1], 0)
    with pytest.raises(ValueError, match="method"):
        code_map(H, method="umap")


def test_filters_are_the_weights():
    torch.manual_seed(0)
    m = DenseAE([64, 20, 4])
    np.testing.assert_array_equal(encoder_filters(m), m.enc[0].weight.detach().numpy())
    np.testing.assert_array_equal(decoder_filters(m), m.dec[-1].weight.detach().numpy().T)
    assert decoder_filters(m).shape == (20, 64)
    tied = DenseAE([64, 9], tied=True)
    np.testing.assert_array_equal(decoder_filters(tied), encoder_filters(tied))
    lin = LinearAE(64, 3)
    assert encoder_filters(lin).shape == decoder_filters(lin).shape == (3, 64)


def test_activation_summary_counts_dead_units(data):
    torch.manual_seed(0)
    m = DenseAE([64, 6], code_activation="relu")
    with torch.no_grad():
        m.enc[0].bias[2] = -1e3  # unit 2 never fires
    X = data[1]
    a = activation_summary(m, X, bins=20)
    assert a.threshold == 0.0 and a.stats.dead_units >= 1
    assert float(a.stats.unit_frequency[2]) == 0.0
    assert a.counts.sum() == X.shape[0] * 6 and len(a.edges) == 21
    lin = activation_summary(DenseAE([64, 6]), X)
    assert lin.stats is None and lin.threshold is None and lin.unit_std.shape == (6,)


def test_tiles_and_display_shapes():
    A = np.arange(5 * 6, dtype=float).reshape(5, 6)
    T = tile_images(A, (2, 3), ncols=2, pad=1, pad_value=-1)
    assert T.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(T[0:2, 4:7], A[1].reshape(2, 3))
    np.testing.assert_array_equal(T[6:8, 0:3], A[4].reshape(2, 3))
    assert (T[6:8, 4:7] == -1).all()
    E = tile_images(np.array([[-2.0, 1.0]]), (1, 2), scale="each")
    np.testing.assert_allclose(E, [[0.0, 0.75]])
    assert display_shape((8, 8)) == (8, 8)
    assert display_shape((32, 32, 3)) == (32, 32, 3)
    assert display_shape((3, 32, 32)) == (32, 32, 3)
    assert display_shape((28, 28, 1)) == (28, 28)
    assert display_shape((5, 7, 9)) is None and display_shape(None) is None
    assert display_shape((8, 8), 65) is None
