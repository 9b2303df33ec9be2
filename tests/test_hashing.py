"""Semantic-hashing index: Hamming-ball enumeration and multi-index hashing against brute
force, packed bits, kNN by growing radius, save/load and every error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aekit.io import FileFormatError, save_tensor_file
from aekit.retrieval import (
    MAX_TABLE_BITS,
    HammingTable,
    MultiIndexHash,
    ball_masks,
    binarize,
    brute_force_radius,
    hamming_distances,
    load_index,
    pack_bits,
    unpack_bits,
)


def _codes(n, b, seed=0, p=0.5):
    return np.random.default_rng(seed).random((n, b)) < p


def test_pack_unpack_roundtrip_and_faiss_byte_layout():
    B = _codes(37, 75)
    P = pack_bits(B)
    assert P.shape == (37, 2) and P.dtype == np.uint64
    assert (unpack_bits(P, 75) == B).all()
    # bit i of the code is bit i % 8 of byte i // 8 (LSB first), faiss's layout
    by = P.view(np.uint8)
    i = 13
    assert ((by[:, i // 8] >> (i % 8)) & 1).astype(bool).tolist() == B[:, i].tolist()


def test_hamming_distances_equal_the_definition():
    A, B = _codes(9, 70, 1), _codes(11, 70, 2)
    D = hamming_distances(pack_bits(A), pack_bits(B))
    ref = (A[:, None, :] != B[None, :, :]).sum(-1)
    assert (D == ref).all(), np.abs(D - ref).max()


def test_ball_masks_enumerate_the_ball_exactly_once():
    masks, dist = ball_masks(10, 3)
    assert masks.size == sum(math.comb(10, j) for j in range(4))
    assert np.unique(masks).size == masks.size
    pc = np.bitwise_count(masks)
    assert (pc == dist).all() and (np.diff(dist) >= 0).all()


@pytest.mark.parametrize("b", [6, 16, 20])
@pytest.mark.parametrize("r", [0, 1, 2, 3])
def test_table_ball_enumeration_equals_brute_force(b, r):
    # skewed bits so buckets hold several items and some are empty
    B, Q = _codes(3000, b, 3, p=0.3), _codes(40, b, 4, p=0.3)
    t = HammingTable(B)
    got = t.radius_search(Q, r)
    ref = brute_force_radius(pack_bits(Q), pack_bits(B), r)
    assert got.sets() == ref.sets(), f"b={b} r={r}: {sum(map(len, got.sets()))} hits vs " \
        f"{sum(map(len, ref.sets()))} brute force"
    for i in range(Q.shape[0]):  # distances come from the mask, not computed: check them
        gi, gd = got.query(i)
        ri, rd = ref.query(i)
        assert (gi == ri).all() and (gd == rd).all()


@pytest.mark.parametrize("b,m", [(32, 2), (32, 3), (64, 4), (100, 5), (128, 8)])
def test_multi_index_equals_brute_force(b, m):
    B, Q = _codes(2000, b, 5), _codes(30, b, 6)
    # plant near neighbours so large radii have hits
    Q[:10] = B[:10]
    Q[:10, :3] ^= True
    mih = MultiIndexHash(B, n_substrings=m)
    for r in (0, 3, m - 1, 2 * m + 1, b // 3):
        got = mih.radius_search(Q, r)
        ref = brute_force_radius(pack_bits(Q), pack_bits(B), r)
        assert got.sets() == ref.sets(), f"b={b} m={m} r={r}"
        assert sorted(got.distances.tolist()) == sorted(ref.distances.tolist())


@pytest.mark.parametrize("cls,b", [(HammingTable, 12), (MultiIndexHash, 48)])
def test_knn_search_equals_exhaustive_stable_sort(cls, b):
    B, Q = _codes(1500, b, 7), _codes(20, b, 8)
    ids = np.arange(1500) * 3 + 1
    idx = cls(B, ids=ids)
    got_i, got_d = idx.search(Q, 15)
    D = hamming_distances(pack_bits(Q), pack_bits(B))
    order = np.argsort(D, axis=1, kind="stable")[:, :15]
    assert (got_d == np.take_along_axis(D, order, 1)).all()
    assert (got_i == ids[order]).all()


def test_save_load_roundtrip(tmp_path):
    B, Q = _codes(500, 40, 9), _codes(8, 40, 10)
    idx = MultiIndexHash(B, n_substrings=2, ids=np.arange(500) + 100, meta={"corpus": "x"})
    idx.save(tmp_path / "i.safetensors")
    back = load_index(tmp_path / "i.safetensors")
    assert isinstance(back, MultiIndexHash) and back.meta == {"corpus": "x"}
    assert back.radius_search(Q, 8).sets() == idx.radius_search(Q, 8).sets()
    t = HammingTable(B[:, :16])
    t.save(tmp_path / "t.safetensors")
    assert load_index(tmp_path / "t.safetensors").radius_search(Q[:, :16], 2).sets() == \
        t.radius_search(Q[:, :16], 2).sets()


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    import pickle

    import torch

    p = tmp_path / "i.safetensors"
    HammingTable(_codes(50, 10)).save(p)
    data = bytearray(p.read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="corrupt"):
        load_index(bad)
    pk = tmp_path / "p.safetensors"
    pk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(FileFormatError, match="pickle"):
        load_index(pk)
    other = tmp_path / "model.safetensors"
    save_tensor_file(other, {"w": torch.zeros(2)}, "aekit.model", {})
    with pytest.raises(FileFormatError, match="expected 'aekit.hash_index'"):
        load_index(other)
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "missing.safetensors")
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(bytes(data[:20]))
    with pytest.raises(FileFormatError):
        load_index(trunc)


def test_errors_name_their_argument():
    with pytest.raises(ValueError, match="longer than a direct table allows.*MultiIndexHash"):
        HammingTable(_codes(10, MAX_TABLE_BITS + 1))
    with pytest.raises(ValueError, match="n_substrings"):
        MultiIndexHash(_codes(10, 64), n_substrings=2)
    with pytest.raises(ValueError, match="radius"):
        HammingTable(_codes(10, 8)).radius_search(_codes(1, 8), -1)
    with pytest.raises(ValueError, match="queries have 9 bits"):
        HammingTable(_codes(10, 8)).radius_search(_codes(1, 9), 1)
    with pytest.raises(ValueError, match="k must be"):
        HammingTable(_codes(10, 8)).search(_codes(1, 8), 0)
    with pytest.raises(ValueError, match="B must hold only 0 and 1"):
        pack_bits(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="ids must be"):
        HammingTable(_codes(10, 8), ids=np.arange(9))
    with pytest.raises(ValueError, match="H must be a 2-D"):
        binarize(np.zeros(3))
    with pytest.raises(ValueError, match="n_bits is required"):
        HammingTable(pack_bits(_codes(4, 8)))
