"""The estimator as complete as the CLI (issue 16, item 3): model="dense"|"conv"|"linear" and
their options, image arrays (n, H, W) / (n, C, H, W), get_feature_names_out / set_output,
save -> load_estimator (safetensors + JSON, never pickle), foreign files refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from aekit import Autoencoder, AutoencoderClassifier, load_estimator
from aekit.io import FileFormatError, save_tensor_file
from aekit.models import ConvAE, DenseAE, LinearAE, ResidualAE


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits_images():
    """400 digits as (n, 8, 8) images in [0, 1]."""
    return (load_digits().data[:400] / 16.0).reshape(-1, 8, 8)


def test_fit_on_3d_images_equals_fit_on_rows(digits_images):
    """Failed before issue 16 ("Found array with dim 3"). A dense model flattens the images,
    so the same seed on (n, 8, 8) and on (n, 64) gives identical codes."""
    X = digits_images
    kw = dict(n_components=4, max_iter=3, random_state=0)
    a = Autoencoder(**kw).fit(X)
    b = Autoencoder(**kw).fit(X.reshape(len(X), -1))
    assert a.sample_shape_ == (8, 8) and a.n_features_in_ == 64 and a.image_shape_ is None
    np.testing.assert_array_equal(a.transform(X), b.transform(X.reshape(len(X), -1)))
    np.testing.assert_array_equal(a.transform(X), a.transform(X.reshape(len(X), -1)))
    R = a.reconstruct(X)
    assert R.shape == X.shape and R.dtype == np.float64
    assert a.inverse_transform(a.transform(X)).shape == X.shape
    np.testing.assert_allclose(a.score_samples(X), -((R - X) ** 2).sum((1, 2)), rtol=1e-6,
                               atol=1e-9)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(8, 8\)"):
        a.transform(X[:, :4, :])
    with pytest.raises(ValueError, match="must be"):
        a.transform(X[:, None, None])


def test_conv_model_on_4d_images_and_its_options():
    g = np.random.default_rng(0)
    X = g.random((60, 3, 8, 8)).astype(np.float32)
    ae = Autoencoder(n_components=5, model="conv", channels=(4, 6), kernel_size=(3, 5),
                     strides=(2, 1), batch_norm=True, max_iter=2, random_state=0).fit(X)
    m = ae.model_
    assert isinstance(m, ConvAE) and ae.init_ == "random" and ae.loss_ == "bce"
    assert m.channels == [4, 6] and m.kernel_size == [3, 5] and m.strides == [2, 1]
    assert m.image_shape == [3, 8, 8] and m.output == "sigmoid"
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules()) == 3
    Z = ae.transform(X)
    assert Z.shape == (60, 5) and Z.dtype == np.float32
    np.testing.assert_array_equal(Z, ae.transform(X.reshape(60, -1)))
    assert ae.reconstruct(X).shape == X.shape
    # flat rows with a square size: a one-channel image is assumed; else image_shape is needed
    flat = Autoencoder(n_components=2, model="conv", channels=(2,), max_iter=1,
                       random_state=0).fit(g.random((20, 36)))
    assert flat.image_shape_ == (1, 6, 6)
    with pytest.raises(ValueError, match="model='conv' needs images"):
        Autoencoder(n_components=2, model="conv", max_iter=1).fit(g.random((20, 35)))
    rect = Autoencoder(n_components=2, model="conv", channels=(2,), image_shape=(5, 7),
                       max_iter=1, random_state=0).fit(g.random((20, 35)))
    assert rect.model_.image_shape == [1, 5, 7]
    with pytest.raises(ValueError, match=r"image_shape=\(5, 5\) does not describe"):
        Autoencoder(n_components=2, model="conv", image_shape=(5, 5), max_iter=1).fit(
            g.random((20, 35)))


def test_linear_model_starts_at_pca_exactly(digits_images):
    X = digits_images.reshape(400, -1)
    ae = Autoencoder(n_components=5, model="linear", max_iter=0, early_stopping=False).fit(X)
    pca = PCA(5).fit(X)
    err = float(np.abs(ae.reconstruct(X) - pca.inverse_transform(pca.transform(X))).max())
    assert isinstance(ae.model_, LinearAE) and ae.init_ == "pca" and err < 1e-5, err
    tied = Autoencoder(n_components=5, model="linear", tied=True, max_iter=0,
                       early_stopping=False).fit(X)
    err_t = float(np.abs(tied.reconstruct(X) - ae.reconstruct(X)).max())
    assert tied.model_.tied and err_t < 1e-5, f"tied PCA start differs by {err_t}"


def test_dense_batch_norm_dropout_and_the_start_they_imply(digits_images):
    X = digits_images.reshape(400, -1)
    bn = Autoencoder(n_components=4, batch_norm=True, dropout=0.2, max_iter=1,
                     random_state=0).fit(X)
    assert isinstance(bn.model_, DenseAE) and bn.init_ == "random"
    assert bn.model_.batch_norm and bn.model_.dropout == 0.2
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in bn.model_.modules())
    dr = Autoencoder(n_components=4, dropout=0.3, max_iter=1, random_state=0).fit(X)
    assert isinstance(dr.model_, ResidualAE) and dr.init_ == "pca"
    assert dr.model_.dropout == 0.3
    # eval mode: dropout is off, so transform is deterministic
    np.testing.assert_array_equal(dr.transform(X), dr.transform(X))


@pytest.mark.parametrize("model,setting", [
    ("linear", {"dropout": 0.2}), ("linear", {"batch_norm": True}),
    ("linear", {"hidden_layer_sizes": (8,)}), ("dense", {"channels": (8,)}),
    ("dense", {"kernel_size": 5}), ("conv", {"tied": True}), ("conv", {"dropout": 0.1}),
    ("dense", {"image_shape": (8, 8)}),
])
def test_settings_a_model_does_not_use_are_refused(model, setting):
    X = np.random.default_rng(0).random((30, 64))
    name = next(iter(setting))
    with pytest.raises(ValueError, match=f"{name}=.* is not used by model='{model}'"):
        Autoencoder(n_components=2, model=model, max_iter=1, **setting).fit(X)
    with pytest.raises(ValueError, match="unknown model 'rbm'"):
        Autoencoder(model="rbm").fit(X)


def test_feature_names_and_set_output(digits_images):
    X = digits_images.reshape(400, -1)
    ae = Autoencoder(n_components=3, max_iter=1, random_state=0).fit(X)
    names = ae.get_feature_names_out()
    assert names.tolist() == ["autoencoder0", "autoencoder1", "autoencoder2"], names
    assert isinstance(ae.set_output(transform="default").transform(X), np.ndarray)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Autoencoder().get_feature_names_out()
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        df = ae.set_output(transform="pandas").transform(X)
        assert list(df.columns) == names.tolist() and df.shape == (400, 3)


def _roundtrip(est, tmp_path, X):
    p = est.save(tmp_path / "est.safetensors")
    back = load_estimator(p)
    assert type(back) is type(est)
    assert back.get_params() == {k: (tuple(v) if isinstance(v, list) else v)
                                 for k, v in est.get_params().items()}
    return back


@pytest.mark.parametrize("kw", [
    dict(n_components=3),  # PCA-started ResidualAE
    dict(n_components=3, model="linear", tied=True),
    dict(n_components=3, model="conv", channels=(3,), batch_norm=True),
    dict(n_components=3, init="random", dropout=0.1, code_activation="sigmoid"),
])
def test_save_load_estimator_identical_transform(tmp_path, digits_images, kw):
    X = digits_images
    est = Autoencoder(max_iter=2, random_state=0, **kw).fit(X)
    back = _roundtrip(est, tmp_path, X)
    for A in (X, X.astype(np.float32)):
        np.testing.assert_array_equal(back.transform(A), est.transform(A))
        np.testing.assert_array_equal(back.reconstruct(A), est.reconstruct(A))
    assert back.transform(X).dtype == np.float64
    assert back.history_.records == est.history_.records
    assert back.history_.best_epoch == est.history_.best_epoch
    for a in ("loss_", "init_", "weight_decay_", "n_iter_", "n_features_in_", "sample_shape_",
              "image_shape_", "start_score_", "best_score_"):
        assert getattr(back, a) == getattr(est, a), a
    np.testing.assert_array_equal(back.validation_indices_, est.validation_indices_)
    assert back.get_feature_names_out().tolist() == est.get_feature_names_out().tolist()


def test_saved_estimator_with_weight_decay_auto(tmp_path):
    X = np.random.default_rng(1).normal(size=(80, 6))
    est = Autoencoder(n_components=2, weight_decay="auto", weight_decay_grid=(0.0, 1e-3),
                      max_iter=2, random_state=0).fit(X)
    back = _roundtrip(est, tmp_path, X)
    assert back.validation_curve_ == est.validation_curve_
    np.testing.assert_array_equal(back.transform(X), est.transform(X))


def test_load_estimator_refuses_foreign_and_corrupt_files(tmp_path, digits_images):
    X = digits_images.reshape(400, -1)
    est = Autoencoder(n_components=2, max_iter=1, random_state=0).fit(X)
    good = est.save(tmp_path / "good.safetensors")
    with pytest.raises(FileNotFoundError):
        load_estimator(tmp_path / "missing.safetensors")
    # another aekit format (a model file)
    from aekit import save_model

    save_model(est.model_, tmp_path / "model.safetensors")
    with pytest.raises(FileFormatError, match="expected 'aekit-estimator'"):
        load_estimator(tmp_path / "model.safetensors")
    # a pickle is never unpickled
    (tmp_path / "est.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(FileFormatError, match="pickle"):
        load_estimator(tmp_path / "est.pkl")
    # flipped tensor bytes: checksum
    raw = bytearray(good.read_bytes())
    raw[-3] ^= 0xFF
    (tmp_path / "flip.safetensors").write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="checksum"):
        load_estimator(tmp_path / "flip.safetensors")
    (tmp_path / "trunc.safetensors").write_bytes(good.read_bytes()[:100])
    with pytest.raises(FileFormatError):
        load_estimator(tmp_path / "trunc.safetensors")
    # an aekit-estimator file whose header names another estimator or other settings
    save_tensor_file(tmp_path / "other.safetensors", {"w": torch.zeros(1)}, "aekit-estimator",
                     {"estimator": "os.system"})
    with pytest.raises(FileFormatError, match="holds estimator 'os.system'"):
        load_estimator(tmp_path / "other.safetensors")
    from aekit.io import load_tensor_file

    tensors, doc = load_tensor_file(good, "aekit-estimator")
    doc = {k: v for k, v in doc.items() if k not in ("format", "version", "sha256")}
    bad = dict(doc, model_config=dict(doc["model_config"], n_components=7))
    save_tensor_file(tmp_path / "shapes.safetensors", tensors, "aekit-estimator", bad)
    with pytest.raises(FileFormatError, match="weights do not match"):
        load_estimator(tmp_path / "shapes.safetensors")
    odd = dict(doc, params={"__dict__": [[["str", "evil"], 1]]})
    save_tensor_file(tmp_path / "params.safetensors", tensors, "aekit-estimator", odd)
    with pytest.raises(FileFormatError, match=r"unknown Autoencoder parameters \['evil'\]"):
        load_estimator(tmp_path / "params.safetensors")


def test_classifier_save_load(tmp_path):
    d = load_digits()
    X, y = d.data[:300] / 16.0, np.array([f"d{t}" for t in d.target[:300]])
    clf = AutoencoderClassifier(n_components=8, hidden_layer_sizes=(16,), pretrain_max_iter=1,
                                max_iter=2, random_state=0).fit(X, y)
    back = load_estimator(clf.save(tmp_path / "clf.safetensors"))
    assert isinstance(back, AutoencoderClassifier)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.encode(X), clf.encode(X))
    assert back.classes_.tolist() == clf.classes_.tolist() and back.n_iter_ == clf.n_iter_
