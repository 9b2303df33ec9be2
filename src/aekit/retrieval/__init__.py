"""Retrieval and semantic hashing: bag-of-words text, retrieval metrics, kNN in code space,
binary codes with memory-address indexes, and the LSA / LSH / PCA-sign / ITQ baselines."""

from .hashing import (
    MAX_TABLE_BITS,
    HammingTable,
    MultiIndexHash,
    RadiusResult,
    ball_masks,
    binarize,
    brute_force_radius,
    code_words,
    hamming_distances,
    load_index,
    pack_bits,
    unpack_bits,
)

__all__ = ["MAX_TABLE_BITS", "HammingTable", "MultiIndexHash", "RadiusResult", "ball_masks",
           "binarize", "brute_force_radius", "code_words", "hamming_distances", "load_index",
           "pack_bits", "unpack_bits"]
