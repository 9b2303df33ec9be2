"""Semantic hashing: binary codes, packed bits, and indexes that use a code as a memory address.

A b-bit code is stored as ``W = ceil(b / 64)`` little-endian uint64 words per item: bit ``i``
of the code is bit ``i % 64`` of word ``i // 64`` (the same bit order as
``np.packbits(..., bitorder="little")``, so the words' bytes are faiss's binary codes).

* :class:`HammingTable` stores every item at the address equal to its code (a direct table of
  ``2**b`` buckets in CSR form, b ≤ ``MAX_TABLE_BITS``) and answers a radius-r query by visiting
  each of the ``Σ_{j≤r} C(b, j)`` addresses in the Hamming ball around the query: the result
  needs no distance computation, the distance of a hit is the number of flipped bits.
* :class:`MultiIndexHash` (Norouzi, Punjani & Fleet 2012) splits longer codes into m
  substrings, each with its own direct table; by the pigeonhole principle an item within
  distance r of the query is within ``floor(r / m)`` of it on at least one substring, so the
  union of the substring balls is a complete candidate set, which is then filtered by the
  exact distance.
* :func:`hamming_distances` / :func:`brute_force_radius` are the exhaustive reference
  (packed bits, XOR and popcount, vectorised).

The query loops are compiled with numba; the index is saved as safetensors + JSON, never
pickle.

References
----------
R. Salakhutdinov & G. Hinton, "Semantic hashing", IJAR 50(7), 2009, sections 1 and 4.
M. Norouzi, A. Punjani & D. Fleet, "Fast search in Hamming space with multi-index hashing",
CVPR 2012, sections 3-4.
"""

from __future__ import annotations

import math
import os
from itertools import combinations
from typing import NamedTuple

import numba
import numpy as np
import torch

from ..io import FileFormatError, load_tensor_file, save_tensor_file

__all__ = ["MAX_TABLE_BITS", "HammingTable", "MultiIndexHash", "RadiusResult", "ball_masks",
           "binarize", "brute_force_radius", "code_words", "hamming_distances", "load_index",
           "pack_bits", "unpack_bits"]

#: Largest code (or substring) length stored in a direct table: 2**24 buckets = 64 MiB of
#: int32 offsets.
MAX_TABLE_BITS = 24
INDEX_FORMAT = "aekit.hash_index"


# --------------------------------------------------------------------------- bits and words
def binarize(H, threshold: float = 0.5) -> np.ndarray:
    """Binary codes ``B_ij = [H_ij > threshold]`` from real codes: (n, b) -> (n, b) bool.

    For logistic code units trained with noise (Salakhutdinov & Hinton 2009, section 4) the
    threshold is 0.5; for sign codes (LSH, PCA, ITQ) it is 0.
    """
    H = np.asarray(H)
    if H.ndim != 2:
        raise ValueError(f"H must be a 2-D array (n, n_bits), got shape {H.shape}")
    return H > threshold


def pack_bits(B) -> np.ndarray:
    """Pack a (n, b) 0/1 array into (n, W) uint64 words, ``W = ceil(b / 64)``.

    Bit ``i`` goes to bit ``i % 64`` of word ``i // 64``; padding bits are 0. The bytes of the
    words (``P.view(np.uint8)[:, :ceil(b/8)]``) are faiss's binary code layout.
    """
    B = np.asarray(B)
    if B.ndim != 2 or B.shape[1] == 0:
        raise ValueError(f"B must be a 2-D array (n, n_bits) with n_bits >= 1, got {B.shape}")
    n, b = B.shape
    if B.dtype != bool:
        if not np.isin(B, (0, 1)).all():
            raise ValueError("B must hold only 0 and 1 (or bool)")
        B = B.astype(bool)
    w = -(-b // 64)
    by = np.packbits(B, axis=1, bitorder="little")  # (n, ceil(b/8))
    out = np.zeros((n, 8 * w), np.uint8)
    out[:, :by.shape[1]] = by
    return out.view("<u8").reshape(n, w).astype(np.uint64, copy=False)


def unpack_bits(P, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: (n, W) uint64 -> (n, n_bits) bool."""
    P = _check_words(P, "P")
    if not 1 <= n_bits <= 64 * P.shape[1]:
        raise ValueError(f"n_bits must be in [1, {64 * P.shape[1]}], got {n_bits}")
    by = np.ascontiguousarray(P).view(np.uint8).reshape(P.shape[0], -1)
    return np.unpackbits(by, axis=1, count=n_bits, bitorder="little").astype(bool)


def code_words(codes, n_bits: int | None = None) -> tuple[np.ndarray, int]:
    """``(words, n_bits)`` from a (n, b) 0/1 array or from (n, W) uint64 words (then
    ``n_bits`` is required)."""
    codes = np.asarray(codes)
    if codes.dtype == np.uint64:
        if n_bits is None:
            raise ValueError("n_bits is required when codes are packed uint64 words")
        P = _check_words(codes, "codes")
        if not 1 <= n_bits <= 64 * P.shape[1]:
            raise ValueError(f"n_bits must be in [1, {64 * P.shape[1]}] for {P.shape[1]} "
                             f"words, got {n_bits}")
        return P, int(n_bits)
    if codes.ndim != 2:
        raise ValueError(f"codes must be a 2-D array (n, n_bits), got shape {codes.shape}")
    if n_bits is not None and n_bits != codes.shape[1]:
        raise ValueError(f"n_bits={n_bits} but codes have {codes.shape[1]} columns")
    return pack_bits(codes), codes.shape[1]


def _check_words(P, name: str) -> np.ndarray:
    P = np.asarray(P)
    if P.dtype != np.uint64 or P.ndim != 2 or P.shape[1] == 0:
        raise ValueError(f"{name} must be packed codes: a (n, W) uint64 array, got "
                         f"{P.dtype} of shape {P.shape}")
    return np.ascontiguousarray(P)


def hamming_distances(Q, P) -> np.ndarray:
    """All Hamming distances ``D_ij = popcount(q_i XOR p_j)``: (m, W), (n, W) -> (m, n) int32.

    Vectorised XOR + ``np.bitwise_count`` on packed words (the brute-force reference).
    """
    Q, P = _check_words(Q, "Q"), _check_words(P, "P")
    if Q.shape[1] != P.shape[1]:
        raise ValueError(f"Q has {Q.shape[1]} words per code, P has {P.shape[1]}")
    D = np.zeros((Q.shape[0], P.shape[0]), np.int32)
    for w in range(P.shape[1]):
        D += np.bitwise_count(Q[:, w, None] ^ P[None, :, w])
    return D


class RadiusResult(NamedTuple):
    """Results of a batch of radius queries, in CSR form.

    Attributes
    ----------
    offsets : ndarray of int64, shape (m + 1,)
        Query i's hits are ``ids[offsets[i]:offsets[i + 1]]``.
    ids : ndarray of int64
        Item ids of the hits.
    distances : ndarray of int32
        Their Hamming distances to the query.
    """

    offsets: np.ndarray
    ids: np.ndarray
    distances: np.ndarray

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, distances)`` of query ``i``, sorted by (distance, id)."""
        s, e = self.offsets[i], self.offsets[i + 1]
        ids, d = self.ids[s:e], self.distances[s:e]
        o = np.lexsort((ids, d))
        return ids[o], d[o]

    def sets(self) -> list[set[int]]:
        """Each query's hits as a set of ids (for comparing result sets)."""
        return [set(self.ids[s:e].tolist()) for s, e in zip(self.offsets[:-1], self.offsets[1:])]


def brute_force_radius(Q, P, radius: int, ids=None, chunk: int = 256) -> RadiusResult:
    """Every item within Hamming distance ``radius`` of each query, by exhaustive comparison.

    Packed bits, XOR and popcount over all n items for every query (vectorised numpy);
    ``O(m n W)``. The reference for the indexes.
    """
    Q, P = _check_words(Q, "Q"), _check_words(P, "P")
    radius = _check_radius(radius)
    ids = np.arange(P.shape[0], dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    offs, out_i, out_d = [0], [], []
    for s in range(0, Q.shape[0], chunk):
        D = hamming_distances(Q[s:s + chunk], P)
        for row in D:
            j = np.flatnonzero(row <= radius)
            out_i.append(ids[j])
            out_d.append(row[j])
            offs.append(offs[-1] + j.size)
    return RadiusResult(np.asarray(offs, np.int64),
                        np.concatenate(out_i) if out_i else np.zeros(0, np.int64),
                        np.concatenate(out_d).astype(np.int32) if out_d else np.zeros(0, np.int32))


def _check_radius(radius) -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
    return int(radius)


def ball_masks(n_bits: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """XOR masks of every address within Hamming distance ``radius`` of 0 in ``n_bits`` bits.

    Returns ``(masks, dist)``: (M,) uint64 and (M,) int32, ordered by distance, with
    ``M = Σ_{j=0}^{r} C(n_bits, j)``. ``q XOR masks`` enumerates the Hamming ball around q.
    """
    if not 1 <= n_bits <= 64:
        raise ValueError(f"n_bits must be in [1, 64], got {n_bits}")
    radius = min(_check_radius(radius), n_bits)
    total = sum(math.comb(n_bits, j) for j in range(radius + 1))
    if total > 50_000_000:
        raise ValueError(f"a Hamming ball of radius {radius} in {n_bits} bits has {total} "
                         "addresses; use a smaller radius or MultiIndexHash")
    masks, dist = [0], [0]
    bit = [1 << i for i in range(n_bits)]
    for j in range(1, radius + 1):
        for c in combinations(bit, j):
            masks.append(sum(c))
            dist.append(j)
    return np.asarray(masks, np.uint64), np.asarray(dist, np.int32)


def _substring_keys(P: np.ndarray, start: int, length: int) -> np.ndarray:
    """Bits ``[start, start + length)`` of each code as an integer key: (n, W) -> (n,) int64."""
    w, s = divmod(start, 64)
    key = P[:, w] >> np.uint64(s)
    if s + length > 64:
        key = key | (P[:, w + 1] << np.uint64(64 - s))
    if length < 64:
        key = key & np.uint64((1 << length) - 1)
    return key.astype(np.int64)


def _build_table(keys: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR direct table: ``offsets`` (2**n_bits + 1,) and ``order`` (n,) so the items stored at
    address a are ``order[offsets[a]:offsets[a + 1]]``."""
    order = np.argsort(keys, kind="stable").astype(np.int64)
    counts = np.bincount(keys, minlength=1 << n_bits)
    # int32 offsets when they fit: half the table's memory, so fewer cache and TLB misses
    # when a query visits its Hamming ball
    dt = np.int32 if keys.size < 2**31 else np.int64
    offsets = np.zeros((1 << n_bits) + 1, dt)
    np.cumsum(counts, out=offsets[1:])
    return offsets, order


@numba.njit(cache=True, nogil=True)
def _ball_count(qkeys, masks, offsets):  # pragma: no cover - compiled
    m = qkeys.shape[0]
    counts = np.zeros(m, np.int64)
    for i in range(m):
        q = qkeys[i]
        c = 0
        for t in range(masks.shape[0]):
            a = q ^ masks[t]
            c += offsets[a + 1] - offsets[a]
        counts[i] = c
    return counts


@numba.njit(cache=True, nogil=True)
def _ball_fill(qkeys, masks, mdist, offsets, order, ids, res_off, out_ids, out_d):
    # pragma: no cover - compiled
    for i in range(qkeys.shape[0]):
        q = qkeys[i]
        pos = res_off[i]
        for t in range(masks.shape[0]):
            a = q ^ masks[t]
            for s in range(offsets[a], offsets[a + 1]):
                out_ids[pos] = ids[order[s]]
                out_d[pos] = mdist[t]
                pos += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _popcount(x):  # pragma: no cover - compiled
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))  # SWAR popcount
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True, nogil=True, inline="always")
def _sub_bits(x, start, length):  # pragma: no cover - compiled
    """Bits [start, start + length) of the multi-word bit string x (length ≤ 64)."""
    w = start // 64
    s = start % 64
    key = x[w] >> np.uint64(s)
    if s + length > 64:
        key = key | (x[w + 1] << np.uint64(64 - s))
    if length < 64:
        key = key & ((np.uint64(1) << np.uint64(length)) - np.uint64(1))
    return key


@numba.njit(cache=True, nogil=True)
def _mih_query(qkeys, qwords, masks, mask_start, tab_base, offsets, sorted_words, sorted_ids,
               starts, lengths, sub_r, radius, n):  # pragma: no cover - compiled
    """Multi-index radius search over m substring tables stored back to back.

    Table j's offsets start at ``tab_base[j]`` in ``offsets``; its bucket entries are rows
    ``j n + s`` of ``sorted_words`` / ``sorted_ids`` (the codes copied in table order, so a
    bucket is read sequentially); its ball masks are ``masks[mask_start[j]:mask_start[j+1]]``.
    A candidate from table j is skipped if an earlier table j' < j also reaches it (its
    substring j' is within ``sub_r[j']``), so each hit is reported once with no visited set.
    """
    m = qwords.shape[0]
    nsub = qkeys.shape[1]
    nw = qwords.shape[1]
    res_i = [np.int64(0) for _ in range(0)]
    res_d = [np.int32(0) for _ in range(0)]
    off = np.zeros(m + 1, np.int64)
    x = np.empty(nw, np.uint64)
    for i in range(m):
        for j in range(nsub):
            q = qkeys[i, j]
            tb = tab_base[j]
            ob = j * n
            for t in range(mask_start[j], mask_start[j + 1]):
                a = tb + (q ^ masks[t])
                for s in range(offsets[a], offsets[a + 1]):
                    row = ob + s
                    d = 0
                    for w in range(nw):
                        x[w] = qwords[i, w] ^ sorted_words[row, w]
                        d += _popcount(x[w])
                    if d > radius:
                        continue
                    dup = False
                    for jj in range(j):
                        if _popcount(_sub_bits(x, starts[jj], lengths[jj])) <= sub_r[jj]:
                            dup = True
                            break
                    if not dup:
                        res_i.append(sorted_ids[row])
                        res_d.append(np.int32(d))
        off[i + 1] = len(res_i)
    out_i = np.empty(len(res_i), np.int64)
    out_d = np.empty(len(res_d), np.int32)
    for t in range(len(res_i)):
        out_i[t] = res_i[t]
        out_d[t] = res_d[t]
    return off, out_i, out_d


# ----------------------------------------------------------------------------- the indexes
class _Index:
    kind = ""
    n_bits: int
    words: np.ndarray
    ids: np.ndarray
    meta: dict

    def __len__(self) -> int:
        return self.words.shape[0]

    def _query_words(self, Q, n_bits: int | None = None) -> np.ndarray:
        P, b = code_words(Q, self.n_bits if np.asarray(Q).dtype == np.uint64 else n_bits)
        if b != self.n_bits or P.shape[1] != self.words.shape[1]:
            raise ValueError(f"queries have {b} bits, the index holds {self.n_bits}-bit codes")
        return P

    def search(self, Q, k: int, *, max_radius: int | None = None) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        """The k nearest items in Hamming distance by growing the search radius.

        The radius grows from 0 until at least ``k`` items are found (or ``max_radius``,
        default ``n_bits``, is reached); hits are sorted by (distance, id), so the result
        equals a stable sort of exhaustive distances. Returns ``(ids, distances)``, each
        (m, k), padded with -1 where fewer than k items exist within ``max_radius``.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        P = self._query_words(Q)
        top = self.n_bits if max_radius is None else min(_check_radius(max_radius),
                                                          self.n_bits)
        m = P.shape[0]
        out_i = np.full((m, k), -1, np.int64)
        out_d = np.full((m, k), -1, np.int32)

        def put(t, ids, d):
            out_i[t, :min(k, ids.size)] = ids[:k]
            out_d[t, :min(k, ids.size)] = d[:k]

        todo = np.arange(m)
        r = 0
        while todo.size and r <= top:
            if self._probes(r) > len(self):
                # Enumerating the ball would visit more addresses than there are items:
                # finish these queries exhaustively (same result, fewer operations).
                D = hamming_distances(P[todo], self.words)
                for t, row in zip(todo, D):
                    j = np.flatnonzero(row <= top)
                    o = np.lexsort((self.ids[j], row[j]))
                    put(t, self.ids[j][o], row[j][o])
                break
            res = self.radius_search(P[todo], r)
            counts = np.diff(res.offsets)
            done = (counts >= k) | (r == top)
            for t in np.flatnonzero(done):
                put(todo[t], *res.query(int(t)))
            todo = todo[~done]
            r += 1
        return out_i, out_d

    def _probes(self, radius: int) -> int:
        """Addresses visited by a radius-``radius`` query."""
        raise NotImplementedError

    def radius_search(self, Q, radius: int) -> RadiusResult:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to a safetensors file (codes, ids) with a JSON header; no pickle.

        The tables are rebuilt from the codes on :func:`load_index` (a sort, O(n log n)), so
        a file cannot hold a table inconsistent with its codes.
        """
        tensors = {"words": torch.from_numpy(self.words.view(np.int64).copy()),
                   "ids": torch.from_numpy(self.ids.copy())}
        save_tensor_file(path, tensors, INDEX_FORMAT,
                         {"kind": self.kind, "n_bits": self.n_bits,
                          "n_substrings": getattr(self, "n_substrings", 1),
                          "meta": self.meta})


class HammingTable(_Index):
    """A direct-address table: item j is stored at address ``code_j`` (an integer < 2**b).

    ``radius_search(q, r)`` visits the ``Σ_{j≤r} C(b, j)`` addresses ``q XOR m`` for every
    mask m of at most r set bits and returns what is stored there: the hit's distance is
    popcount(m), so no distance is computed. Memory: ``4 (2**b + 1) + 8 n`` bytes (plus the codes).

    Parameters
    ----------
    codes : array, (n, b) 0/1, or (n, W) uint64 words with ``n_bits``
    n_bits : int, optional
    ids : array of int, shape (n,), optional
        External item ids (default ``0..n-1``).
    meta : dict, optional
        JSON-serialisable metadata saved with the index.

    Raises
    ------
    ValueError
        ``b > MAX_TABLE_BITS`` (the table would need ``2**b`` buckets): use
        :class:`MultiIndexHash`.

    References
    ----------
    Salakhutdinov & Hinton, "Semantic hashing", IJAR 2009, section 4 (a code is a memory
    address; documents at nearby addresses are found by flipping bits).
    """

    kind = "table"

    def __init__(self, codes, n_bits: int | None = None, *, ids=None, meta: dict | None = None):
        P, b = code_words(codes, n_bits)
        if b > MAX_TABLE_BITS:
            raise ValueError(f"codes of {b} bits are longer than a direct table allows "
                             f"(MAX_TABLE_BITS={MAX_TABLE_BITS}, 2**{b} addresses); use "
                             f"MultiIndexHash(codes, n_substrings={-(-b // MAX_TABLE_BITS)} "
                             "or more)")
        self.words, self.n_bits = P, b
        self.ids = _check_ids(ids, P.shape[0])
        self.meta = dict(meta or {})
        self.keys = _substring_keys(P, 0, b)
        self.offsets, self.order = _build_table(self.keys, b)
        self._masks: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _probes(self, radius: int) -> int:
        return sum(math.comb(self.n_bits, j) for j in range(min(radius, self.n_bits) + 1))

    def radius_search(self, Q, radius: int) -> RadiusResult:
        """Every item within Hamming distance ``radius`` of each query (m queries).

        Returns a :class:`RadiusResult` (hits grouped by increasing distance per query).
        """
        P = self._query_words(Q)
        radius = _check_radius(radius)
        if radius not in self._masks:
            mk, md = ball_masks(self.n_bits, radius)
            self._masks[radius] = (mk.astype(np.int64), md)
        masks, mdist = self._masks[radius]
        qk = _substring_keys(P, 0, self.n_bits)
        counts = _ball_count(qk, masks, self.offsets)
        off = np.zeros(P.shape[0] + 1, np.int64)
        np.cumsum(counts, out=off[1:])
        out_i = np.empty(off[-1], np.int64)
        out_d = np.empty(off[-1], np.int32)
        _ball_fill(qk, masks, mdist, self.offsets, self.order, self.ids, off, out_i, out_d)
        return RadiusResult(off, out_i, out_d)


class MultiIndexHash(_Index):
    """Multi-index hashing: m direct tables on disjoint substrings of the codes.

    The b bits are split into ``n_substrings`` contiguous substrings of ``⌈b/m⌉`` or
    ``⌊b/m⌋`` bits. Write ``r = m r' + a`` with ``0 ≤ a < m``. If ``‖q − p‖_H ≤ r`` then
    ``‖q^(j) − p^(j)‖_H ≤ r'`` on one of the first ``a + 1`` substrings or
    ``≤ r' − 1`` on one of the others (pigeonhole: otherwise the distance would be at least
    ``(a + 1)(r' + 1) + (m − a − 1) r' > r``), so searching those substring balls finds every
    true neighbour; candidates are de-duplicated and kept when their full distance is ≤ r.
    The result is exactly the brute-force result set.

    Parameters
    ----------
    codes, n_bits, ids, meta
        As :class:`HammingTable`.
    n_substrings : int, optional
        m; default ``max(1, round(b / log2(n)))``, Norouzi et al.'s choice, raised so that no
        substring exceeds ``MAX_TABLE_BITS`` bits.

    References
    ----------
    Norouzi, Punjani & Fleet, "Fast search in Hamming space with multi-index hashing",
    CVPR 2012, section 3 (Proposition 1) and 4.
    """

    kind = "multi"

    def __init__(self, codes, n_bits: int | None = None, *, n_substrings: int | None = None,
                 ids=None, meta: dict | None = None):
        P, b = code_words(codes, n_bits)
        n = P.shape[0]
        if n_substrings is None:
            n_substrings = max(1, round(b / max(1.0, math.log2(max(n, 2)))))
            n_substrings = max(n_substrings, -(-b // MAX_TABLE_BITS))
        if (isinstance(n_substrings, bool) or not isinstance(n_substrings, (int, np.integer))
                or not 1 <= n_substrings <= b):
            raise ValueError(f"n_substrings must be an integer in [1, {b}], got {n_substrings!r}")
        lens = [b // n_substrings + (1 if j < b % n_substrings else 0)
                for j in range(n_substrings)]
        if max(lens) > MAX_TABLE_BITS:
            raise ValueError(f"n_substrings={n_substrings} gives {max(lens)}-bit substrings; "
                             f"each must be <= MAX_TABLE_BITS={MAX_TABLE_BITS}, so use "
                             f"n_substrings >= {-(-b // MAX_TABLE_BITS)}")
        self.words, self.n_bits, self.n_substrings = P, b, int(n_substrings)
        self.ids = _check_ids(ids, n)
        self.meta = dict(meta or {})
        self.starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        self.lengths = lens
        offs, ords, tab_base = [], [], [0]
        for st, ln in zip(self.starts, lens):
            off, order = _build_table(_substring_keys(P, int(st), ln), ln)
            offs.append(off)
            ords.append(order)
            tab_base.append(tab_base[-1] + off.size)
        # the m tables back to back, so the compiled query reads plain arrays; each table
        # keeps its own copy of the codes in bucket order (m n W words), so verifying a
        # bucket's candidates reads memory sequentially
        self.offsets = np.concatenate(offs)
        order = np.concatenate(ords)
        self.sorted_words = np.ascontiguousarray(P[order])
        self.sorted_ids = self.ids[order]
        self.tab_base = np.asarray(tab_base[:-1], np.int64)
        self._masks: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _sub_radii(self, radius: int) -> tuple[int, ...]:
        """Per-substring search radii: with ``r = m r' + a`` (0 ≤ a < m), the first a + 1
        substrings are searched within r' and the others within r' − 1 (−1: not at all);
        a neighbour within r cannot exceed those on every substring (Norouzi et al. 2012,
        section 3, the refined pigeonhole bound)."""
        rp, a = divmod(radius, self.n_substrings)
        return tuple(rp if j <= a else rp - 1 for j in range(self.n_substrings))

    def _probes(self, radius: int) -> int:
        return sum(math.comb(ln, j) for ln, rj in zip(self.lengths, self._sub_radii(radius))
                   for j in range(min(rj, ln) + 1))

    def radius_search(self, Q, radius: int) -> RadiusResult:
        """Every item within Hamming distance ``radius`` of each query; see the class doc."""
        P = self._query_words(Q)
        radius = _check_radius(radius)
        sub_r = self._sub_radii(radius)
        qk = np.stack([_substring_keys(P, int(s), ln)
                       for s, ln in zip(self.starts, self.lengths)], axis=1)
        if sub_r not in self._masks:
            ms = [ball_masks(ln, rj)[0].astype(np.int64) if rj >= 0 else np.zeros(0, np.int64)
                  for ln, rj in zip(self.lengths, sub_r)]
            self._masks[sub_r] = (np.concatenate(ms), np.concatenate(
                [[0], np.cumsum([x.size for x in ms])]).astype(np.int64))
        masks, mask_start = self._masks[sub_r]
        off, ids, d = _mih_query(qk, P, masks, mask_start, self.tab_base, self.offsets,
                                 self.sorted_words, self.sorted_ids,
                                 np.asarray(self.starts, np.int64),
                                 np.asarray(self.lengths, np.int64),
                                 np.asarray(sub_r, np.int64), radius, len(self))
        return RadiusResult(off, ids, d)


def _check_ids(ids, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be an integer array of shape ({n},), got {ids.dtype} "
                         f"{ids.shape}")
    return ids.astype(np.int64)


def load_index(path: str | os.PathLike) -> HammingTable | MultiIndexHash:
    """Read an index written by ``index.save(path)``; tables are rebuilt from the codes.

    Raises
    ------
    FileNotFoundError
        No such file.
    FileFormatError
        Not a safetensors file written by aekit as an index (a pickle or another aekit file
        is refused), corrupt (checksum), or inconsistent shapes.
    """
    tensors, doc = load_tensor_file(path, INDEX_FORMAT)
    kind, b, m = doc.get("kind"), doc.get("n_bits"), doc.get("n_substrings")
    words, ids = tensors.get("words"), tensors.get("ids")
    if kind not in ("table", "multi") or not isinstance(b, int) or not isinstance(m, int):
        raise FileFormatError(f"{path}: index header needs kind 'table'|'multi', integer "
                              f"n_bits and n_substrings; got {kind!r}, {b!r}, {m!r}",
                              path=path, field="kind", expected="'table' or 'multi'")
    if (words is None or ids is None or words.dtype != torch.int64 or words.ndim != 2
            or ids.ndim != 1 or ids.shape[0] != words.shape[0] or ids.dtype != torch.int64
            or not 1 <= b <= 64 * words.shape[1] or words.shape[1] != -(-b // 64)):
        raise FileFormatError(f"{path}: expected tensors 'words' (n, ceil(n_bits/64)) int64 "
                              "and 'ids' (n,) int64", path=path, field="words",
                              expected="(n, W) int64 codes and (n,) ids")
    P = words.numpy().view(np.uint64)
    if b % 64 and (P[:, -1] >> np.uint64(b % 64)).any():
        raise FileFormatError(f"{path}: codes have bits set beyond n_bits={b}", path=path,
                              field="words", expected=f"{b}-bit codes")
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    try:
        if kind == "table":
            return HammingTable(P, b, ids=ids.numpy(), meta=meta)
        return MultiIndexHash(P, b, n_substrings=m, ids=ids.numpy(), meta=meta)
    except ValueError as e:
        raise FileFormatError(f"{path}: {e}", path=path, field="n_bits") from None
