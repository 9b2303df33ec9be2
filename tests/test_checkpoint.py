"""Safe files: no pickle, clear errors for corrupt, truncated, foreign and pickled files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

import aekit
from aekit.io import FileFormatError, atomic_write_bytes, pack_tree, unpack_tree


@pytest.fixture
def saved(tmp_path):
    m = aekit.DenseAE([10, 6, 3], output="sigmoid", tied=True)
    return m, aekit.save_model(m, tmp_path / "m.safetensors")


def test_roundtrip_run_dir_and_meta(saved, tmp_path):
    m, path = saved
    m2, meta = aekit.load(path, with_meta=True)
    assert meta["model"] == "dense" and meta["config"]["tied"] is True
    for (k, a), (k2, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    os.replace(path, tmp_path / "model.safetensors")
    assert aekit.load(tmp_path).config() == m.config()  # a run directory works too


def test_flipped_byte_is_detected_by_checksum(saved):
    _, path = saved
    b = bytearray(path.read_bytes())
    b[-3] ^= 0x01
    path.write_bytes(bytes(b))
    with pytest.raises(FileFormatError, match="corrupt: checksum"):
        aekit.load(path)


@pytest.mark.parametrize("keep", [0, 5, 100, -20])
def test_truncated_file(saved, keep):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(FileFormatError, match="truncated|corrupt"):
        aekit.load(path)


def test_foreign_safetensors_file(tmp_path):
    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, p)
    with pytest.raises(FileFormatError, match="not one written by aekit"):
        aekit.load(p)


def test_checkpoint_is_not_a_model(tmp_path):
    from aekit import fit, make_objective

    m = aekit.DenseAE([4, 2], output="sigmoid")
    fit(m, make_objective("bce"), torch.rand(8, 4), max_iter=1, checkpoint_dir=tmp_path)
    ck = next(tmp_path.glob("ckpt-*.safetensors"))
    with pytest.raises(FileFormatError, match="holds format 'aekit-checkpoint'"):
        aekit.load(ck)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    for name, data in [("model.safetensors", pickle.dumps(_Evil())),
                       ("model.pt", None)]:
        p = tmp_path / name
        if data is None:
            torch.save({"x": _Evil()}, p)  # a zip-based .pt whose pickle would run code
        else:
            p.write_bytes(data)
        with pytest.raises(FileFormatError, match="never loads pickled"):
            aekit.load(p)
    assert not _Evil.marker.exists()


def test_missing_path_and_directory_without_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        aekit.load(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError):
        aekit.load(tmp_path)  # a directory with no model.safetensors


def test_header_with_wrong_weights_is_refused(tmp_path, saved):
    _, path = saved
    from aekit.io import load_tensor_file, save_tensor_file

    tensors, doc = load_tensor_file(path, "aekit-model")
    doc["config"]["sizes"] = [10, 7, 3]
    save_tensor_file(path, tensors, "aekit-model", {k: doc[k] for k in ("model", "config")})
    with pytest.raises(FileFormatError, match="weights do not match"):
        aekit.load(path)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_bytes(p, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(p, 12345)  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]  # no temp file left


def test_pack_tree_roundtrip():
    tree = {"state": {0: {"step": torch.tensor(3.0), "m": torch.ones(2)}},
            "groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0, 1], "x": None,
                        "inf": float("inf")}]}
    tensors = {}
    packed = pack_tree(tree, "o", tensors)
    import json

    back = unpack_tree(json.loads(json.dumps(packed)), tensors)
    assert back["state"][0]["m"].equal(torch.ones(2)) and back["groups"][0]["betas"] == [0.9, 0.99]
    assert back["groups"][0]["inf"] == float("inf") and 0 in back["state"]


def test_header_length_with_pickle_like_first_byte_still_loads(tmp_path):
    """A safetensors header length ≡ 128 (mod 256) makes the first byte 0x80, a pickle's
    opcode; such a file must load, not be refused as a pickle (seen as a flaky CLI test)."""
    from aekit.io import load_tensor_file, save_tensor_file

    t = {"w": torch.arange(6.0)}
    for pad in range(300):
        path = tmp_path / "x.safetensors"
        save_tensor_file(path, t, "probe", {"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding produced a header length with low byte 0x80")
    tensors, meta = load_tensor_file(path, "probe")
    assert torch.equal(tensors["w"], t["w"]) and meta["pad"] == "x" * pad
