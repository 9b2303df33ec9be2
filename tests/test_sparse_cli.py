"""``aekit sparse learn|encode``: round trip on a small problem and clear errors."""

import argparse

import numpy as np
import pytest
import torch

from aekit.io import FileFormatError, load_tensor_file, save_tensor_file
from aekit.sparse import sparse_encode
from aekit.sparse.cli import add_sparse_parser, run_sparse


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _run(argv):
    p = argparse.ArgumentParser(prog="aekit")
    sub = p.add_subparsers(dest="command", required=True)
    add_sparse_parser(sub)
    args = p.parse_args(["sparse", *map(str, argv)])
    return run_sparse(args)


@pytest.fixture
def data(tmp_path):
    # Sparse combinations of 6 atoms in 16 dimensions.
    g = torch.Generator().manual_seed(0)
    D = torch.nn.functional.normalize(torch.randn(16, 6, generator=g), dim=0)
    Z = torch.randn(300, 6, generator=g) * (torch.rand(300, 6, generator=g) < 0.3)
    X = (Z @ D.T + 0.01 * torch.randn(300, 16, generator=g)).numpy().astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path, X


@pytest.mark.parametrize("algorithm", ["online", "batch"])
def test_learn_encode_round_trip(tmp_path, data, algorithm, capsys):
    path, X = data
    out = tmp_path / "dict.safetensors"
    assert _run(["learn", "--data", path, "--n-components", 8, "--alpha", 0.1,
                 "--algorithm", algorithm, "--max-iter", 3, "--batch-size", 64,
                 "--output", out]) == 0
    assert out.exists() and out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tensors, meta = load_tensor_file(out, "aekit-dictionary")
    D = tensors["D"]
    assert D.shape == (16, 8) and meta["n_components"] == 8 and meta["alpha"] == 0.1
    assert meta["atom_shape"] == [4, 4] and meta["algorithm"] == algorithm
    torch.testing.assert_close(torch.linalg.vector_norm(D, dim=0), torch.ones(8))
    codes = tmp_path / "codes.npy"
    assert _run(["encode", out, "--input", path, "--output", codes]) == 0
    Z = np.load(codes)
    ref, _ = sparse_encode(torch.from_numpy(X), D, alpha=0.1)
    assert Z.shape == (300, 8) and Z.dtype == np.float32
    np.testing.assert_allclose(Z, ref.numpy(), atol=1e-6)
    # The dictionary explains the data: most of the variance is reconstructed.
    err = float(((X - Z @ D.numpy().T) ** 2).sum() / (X ** 2).sum())
    assert err < 0.2, f"relative reconstruction error {err:.3f}"
    assert _run(["encode", out, "--input", path, "--output", codes, "--algorithm", "omp",
                 "--n-nonzero-coefs", 2]) == 0
    assert int((np.load(codes) != 0).sum(1).max()) <= 2
    assert "wrote" in capsys.readouterr().out


def test_learn_from_photos(tmp_path):
    out = tmp_path / "photos.safetensors"
    assert _run(["learn", "--n-components", 16, "--patch-size", 6, "--n-patches", 400,
                 "--max-iter", 1, "--random-state", 3, "--output", out]) == 0
    tensors, meta = load_tensor_file(out, "aekit-dictionary")
    assert tensors["D"].shape == (36, 16) and meta["data"] == "photos"
    assert out.with_suffix(".png").exists()


def test_npz_key(tmp_path, data):
    _, X = data
    npz = tmp_path / "X.npz"
    np.savez(npz, a=X, b=X[:, :4])
    out = tmp_path / "d.safetensors"
    with pytest.raises(ValueError, match="--key"):
        _run(["learn", "--data", npz, "--n-components", 4, "--output", out])
    assert _run(["learn", "--data", npz, "--key", "a", "--n-components", 4, "--max-iter", 1,
                 "--no-png", "--output", out]) == 0
    assert not out.with_suffix(".png").exists()


def test_bad_inputs_give_clear_errors(tmp_path, data):
    path, _ = data
    out = tmp_path / "dict.safetensors"
    with pytest.raises(ValueError, match="alpha"):
        _run(["learn", "--data", path, "--alpha", -1, "--output", out])
    with pytest.raises(ValueError, match="n-components"):
        _run(["learn", "--data", path, "--n-components", 0, "--output", out])
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        _run(["learn", "--data", tmp_path / "missing.npy", "--output", out])
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        _run(["learn", "--data", tmp_path / "cube.npy", "--output", out])
    assert not out.exists()
    assert _run(["learn", "--data", path, "--n-components", 4, "--max-iter", 1, "--no-png",
                 "--output", out]) == 0
    codes = tmp_path / "codes.npy"
    np.save(tmp_path / "wide.npy", np.zeros((5, 17), np.float32))
    with pytest.raises(ValueError, match="17 features per row .* 16 features"):
        _run(["encode", out, "--input", tmp_path / "wide.npy", "--output", codes])
    with pytest.raises(ValueError, match="alpha"):
        _run(["encode", out, "--input", path, "--output", codes, "--alpha", -0.5])
    # A foreign file: an aekit file of another format, and a plain .npy.
    other = tmp_path / "model.safetensors"
    save_tensor_file(other, {"W": torch.zeros(2, 2)}, "aekit-model", {})
    with pytest.raises(FileFormatError, match="expected 'aekit-dictionary'"):
        _run(["encode", other, "--input", path, "--output", codes])
    with pytest.raises(FileFormatError):
        _run(["encode", path, "--input", path, "--output", codes])
    with pytest.raises(FileNotFoundError):
        _run(["encode", tmp_path / "nope.safetensors", "--input", path, "--output", codes])
    with pytest.raises(ValueError, match="not a .npy or .npz file"):
        _run(["encode", out, "--input", out, "--output", codes])
    bad = tmp_path / "nan.npy"
    np.save(bad, np.full((3, 16), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        _run(["encode", out, "--input", bad, "--output", codes])
    assert not codes.exists()


def test_atom_grid_png(tmp_path):
    from aekit.plots import atom_grid_png, save_atom_grid

    filters = torch.randn(5, 3, 4)  # a (k, fh, fw) filter bank
    assert atom_grid_png(filters)[:4] == b"\x89PNG"
    save_atom_grid(tmp_path / "g.png", torch.randn(36, 16), grid=(4, 4), title="t")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="fewer cells"):
        atom_grid_png(torch.randn(36, 16), grid=(3, 3))
    with pytest.raises(ValueError, match="atom_shape"):
        atom_grid_png(torch.randn(36, 16), atom_shape=(5, 5))
