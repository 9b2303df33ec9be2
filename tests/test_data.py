"""Data loaders: IDX (gz or not), npz/npy/csv, scaling, splits, and their errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from aekit.data import (
    check_finite_2d,
    load_array,
    load_dataset,
    load_digits,
    load_idx,
    load_mnist,
    scale_unit,
    train_val_split,
)


def _idx(arr: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    b = _idx(a)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    p.write_bytes(gzip.compress(b) if gz else b)
    np.testing.assert_array_equal(load_idx(p), a)
    i = np.array([-1, 7, 1 << 20], dtype=np.int32)
    (tmp_path / "i.idx").write_bytes(_idx(i))
    np.testing.assert_array_equal(load_idx(tmp_path / "i.idx"), i)


def test_idx_errors(tmp_path):
    a = np.zeros((2, 2), np.uint8)
    (tmp_path / "t.idx").write_bytes(_idx(a)[:-1])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_idx(tmp_path / "t.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x1f\x00\x00\x00junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(tmp_path / "bad.idx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_idx(tmp_path / "missing.idx")


def test_mnist_from_idx_folder(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y = np.arange(5, dtype=np.uint8)
    for stem, arr in [("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                      ("t10k-images-idx3-ubyte", x[:2]), ("t10k-labels-idx1-ubyte", y[:2])]:
        (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(_idx(arr)))
    tr, te = load_mnist(tmp_path)
    assert tr.X.shape == (5, 784) and te.X.shape == (2, 784) and tr.image_shape == (28, 28)
    np.testing.assert_allclose(tr.X, x.reshape(5, -1) / 255.0, rtol=1e-6)
    assert tr.X.dtype == np.float32 and tr.y.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.data
def test_real_mnist(mnist_path):
    tr, te = load_mnist(mnist_path)
    assert tr.X.shape == (60000, 784) and te.X.shape == (10000, 784)
    assert 0.0 == tr.X.min() and tr.X.max() == 1.0
    assert np.bincount(te.y).tolist()[:3] == [980, 1135, 1032]


def test_arrays_npy_npz_csv(tmp_path):
    a = np.random.default_rng(0).random((6, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "a.npz", X=a, y=np.arange(6))
    (tmp_path / "a.csv").write_text("f1,f2,f3\n" + "\n".join(",".join(map(str, r)) for r in a))
    for name in ("a.npy", "a.npz", "a.csv"):
        np.testing.assert_allclose(load_array(tmp_path / name).X, a, rtol=1e-6)
    assert load_array(tmp_path / "a.npz").y.tolist() == list(range(6))
    imgs = np.zeros((4, 5, 5), np.uint8)
    np.save(tmp_path / "imgs.npy", imgs)
    ds = load_array(tmp_path / "imgs.npy")
    assert ds.X.shape == (4, 25) and ds.image_shape == (5, 5)


def test_array_errors(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="never loads pickled"):
        load_array(tmp_path / "obj.npy")
    (tmp_path / "r.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="ragged"):
        load_array(tmp_path / "r.csv")
    (tmp_path / "e.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="no data rows"):
        load_array(tmp_path / "e.csv")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_array(tmp_path / "x.txt")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_array(tmp_path / "bad.npz")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        load_array(tmp_path / "nan.npy")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_array(tmp_path / "missing.npy")
    with pytest.raises(FileNotFoundError, match="not a built-in name"):
        load_dataset("cifar-11")


def test_check_finite_2d():
    with pytest.raises(ValueError, match="2-D"):
        check_finite_2d(np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        check_finite_2d(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="inf"):
        check_finite_2d(np.array([[np.inf]]))
    with pytest.raises(ValueError, match="expected 4"):
        check_finite_2d(np.zeros((2, 3)), n_features=4)


def test_scale_and_split():
    X = np.array([[0.0, 5.0], [10.0, 2.5]])
    np.testing.assert_allclose(scale_unit(X), [[0, 0.5], [1, 0.25]])
    with pytest.raises(ValueError, match="cannot scale"):
        scale_unit(np.ones((2, 2)))
    X = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    a = train_val_split(X, y, validation_fraction=0.2, random_state=1)
    b = train_val_split(X, y, validation_fraction=0.2, random_state=1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    Xtr, Xva, ytr, yva = a
    assert len(Xva) == 10 and len(Xtr) == 40 and set(ytr) | set(yva) == set(range(50))
    assert train_val_split(X, validation_fraction=0.0)[1] is None
    with pytest.raises(ValueError, match="validation_fraction"):
        train_val_split(X, validation_fraction=1.0)


def test_digits_builtin():
    tr, te = load_digits()
    assert tr.X.shape == (1500, 64) and te.X.shape == (297, 64)
    assert tr.X.min() == 0.0 and tr.X.max() == 1.0 and tr.image_shape == (8, 8)
