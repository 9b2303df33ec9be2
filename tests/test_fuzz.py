"""Property-based fuzzing: every input to the estimator and the loaders either works or
raises the documented error (ValueError / FileNotFoundError / FileFormatError) — never a
crash of another kind, a hang, or silently non-finite output."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import aekit
from aekit.data import load_array, load_idx
from aekit.io import FileFormatError

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_])


@st.composite
def matrices(draw):
    dt = draw(dtypes)
    shape = draw(st.tuples(st.integers(0, 12), st.integers(0, 6)) | st.tuples(
        st.integers(0, 5)) | st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))
    elems = floats if np.issubdtype(dt, np.floating) else None
    return draw(arrays(dt, shape, elements=elems))


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    return aekit.Autoencoder(n_components=2, hidden_layer_sizes=(3,), max_iter=2,
                             random_state=0).fit(X)


@SETTINGS
@given(X=matrices())
def test_estimator_fit_any_matrix(X):
    est = aekit.Autoencoder(n_components=1, hidden_layer_sizes=(2,), max_iter=2, random_state=0)
    try:
        est.fit(X)
    except ValueError:
        return
    Z = est.transform(X)
    assert Z.shape == (len(X), 1) and np.isfinite(Z).all(), X


@SETTINGS
@given(X=matrices())
def test_estimator_transform_any_matrix(fitted, X):
    try:
        Z = fitted.transform(X)
    except ValueError:
        return
    assert X.ndim == 2 and X.shape[1] == 4 and np.isfinite(Z).all()
    assert np.isfinite(X.astype(np.float64)).all()


@SETTINGS
@given(scale=st.floats(1e-30, 1e30))
def test_huge_and_tiny_values_never_give_silent_garbage(fitted, scale):
    X = np.random.default_rng(1).random((5, 4)) * scale
    try:
        s = fitted.score_samples(X)
    except ValueError:
        return
    # float32 overflow to inf is reported as an infinite error, never NaN
    assert not np.isnan(s).any(), (scale, s)


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".npy", ".npz", ".csv", ".idx"]))
def test_loaders_on_random_bytes(tmp_path_factory, data, suffix):
    p = tmp_path_factory.mktemp("f") / ("f" + suffix)
    p.write_bytes(data)
    try:
        out = (load_idx if suffix == ".idx" else load_array)(p)
    except ValueError as e:  # "not an IDX file", "truncated", "pickled", "non-numeric", ...
        assert p.name in str(e), f"the error does not name the file: {e}"
        return
    X = np.asarray(out if suffix == ".idx" else out.X)
    # whatever loads is a non-empty, finite, real array (never a silently garbled one)
    assert X.size > 0 and np.issubdtype(X.dtype, np.number), (data, X.dtype, X.shape)
    assert not np.iscomplexobj(X) and np.isfinite(X.astype(np.float64)).all(), (data, X)


@SETTINGS
@given(cut=st.integers(0, 2000), flip=st.integers(0, 2000))
def test_model_file_damage_is_always_detected(tmp_path_factory, cut, flip):
    d = tmp_path_factory.mktemp("m")
    m = aekit.DenseAE([6, 3], output="sigmoid")
    path = aekit.save_model(m, d / "m.safetensors")
    raw = bytearray(path.read_bytes())
    if flip < len(raw):
        raw[flip] ^= 0x5A
    raw = raw[:max(1, len(raw) - cut)] if cut % 3 else raw
    path.write_bytes(bytes(raw))
    try:
        m2 = aekit.load(path)
    except (FileFormatError, FileNotFoundError):
        return
    # the only way to load is an undamaged file: then the weights are the original ones
    for k, v in m.state_dict().items():
        assert np.array_equal(v.numpy(), m2.state_dict()[k].numpy())
