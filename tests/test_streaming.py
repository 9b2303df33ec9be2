"""Chunked encode / reconstruct / score over memory-mapped inputs: equal to the in-memory
result, bounded memory, and no half-written output on error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit import DenseAE
from aekit.cli import main
from aekit.data import NpyReader
from aekit.data.streaming import map_rows, open_rows


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DenseAE([20, 8, 3], output="sigmoid").eval()


@pytest.mark.parametrize("op", ["encode", "reconstruct", "score"])
def test_chunks_equal_one_pass(tmp_path, model, op):
    X = np.random.default_rng(0).random((1001, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    mm = open_rows(tmp_path / "x.npy")
    assert isinstance(mm, NpyReader)
    np.testing.assert_array_equal(mm[5:9], X[5:9])
    np.testing.assert_array_equal(mm[np.array([7, 2, 7, 0])], X[[7, 2, 7, 0]])
    with torch.no_grad():
        out = model(torch.from_numpy(X))
        want = {"encode": out.code, "reconstruct": out.reconstruction,
                "score": (out.reconstruction - torch.from_numpy(X)).pow(2).sum(1)}[op].numpy()
    got = map_rows(model, mm, op, out=tmp_path / "o.npy", chunk=97)
    np.testing.assert_allclose(np.load(got), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(map_rows(model, X, op, chunk=1000), want, rtol=1e-5, atol=1e-6)


def test_error_mid_stream_leaves_no_file(tmp_path, model):
    X = np.random.default_rng(0).random((500, 20)).astype(np.float32)
    X[450, 3] = np.inf
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match="rows 400..499"):
        map_rows(model, open_rows(tmp_path / "x.npy"), "encode", out=tmp_path / "z.npy",
                 chunk=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
    with pytest.raises(ValueError, match="unknown operation"):
        map_rows(model, X, "decode")
    with pytest.raises(ValueError, match=r"shape \(n, 20\)"):
        map_rows(model, X[:, :5], "encode")


def test_cli_score(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "digits", "--max-iter", "1", "--hidden-layer-sizes", "16",
                 "--output",
                 str(run), "--no-report", "--no-progress"]) == 0
    X = np.random.default_rng(0).random((300, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["score", str(run), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "s.npy"), "--chunk", "64"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (300,) and (s > 0).all()


def test_npy_reader_errors(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="never loads pickled"):
        NpyReader(tmp_path / "obj.npy")
    np.save(tmp_path / "t.npy", np.zeros((10, 3), np.float32))
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match="truncated"):
        NpyReader(tmp_path / "t.npy")
    np.save(tmp_path / "v.npy", np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        NpyReader(tmp_path / "v.npy")


def test_fit_streams_from_npy_reader(tmp_path):
    from aekit import fit, make_objective

    X = np.random.default_rng(0).random((100, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    ws = []
    for data in (X, NpyReader(tmp_path / "x.npy")):
        torch.manual_seed(0)
        m = DenseAE([20, 8, 3], output="sigmoid")
        fit(m, make_objective("bce"), data, max_iter=2, batch_size=16)
        ws.append(m.state_dict())
    assert all(torch.equal(ws[0][k], ws[1][k]) for k in ws[0])
