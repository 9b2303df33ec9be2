"""Chunked encode / reconstruct / score over memory-mapped inputs: equal to the in-memory
result, bounded memory, and no half-written output on error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit import DenseAE
from aekit.cli import main
from aekit.streaming import map_rows, open_rows


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DenseAE([20, 8, 3], output="sigmoid").eval()


@pytest.mark.parametrize("op", ["encode", "reconstruct", "score"])
def test_chunks_equal_one_pass(tmp_path, model, op):
    X = np.random.default_rng(0).random((1001, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    mm = open_rows(tmp_path / "x.npy")
    assert isinstance(mm, np.memmap)
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
    assert main(["train", "--data", "digits", "--epochs", "1", "--hidden", "16", "--out",
                 str(run), "--no-report", "--no-progress"]) == 0
    X = np.random.default_rng(0).random((300, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["score", str(run), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "s.npy"), "--chunk", "64"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (300,) and (s > 0).all()
