"""Nearest neighbours in code space: top-k search and kNN classification.

References
----------
T. Cover & P. Hart, "Nearest neighbor pattern classification", IEEE Trans. Inf. Theory
13(1), 1967. Salakhutdinov & Hinton, "Learning a nonlinear embedding by preserving class
neighbourhood structure", AISTATS 2007, section 4 (kNN error in code space).
"""

from __future__ import annotations

import numpy as np

from .metrics import similarities

__all__ = ["knn_classify", "knn_error", "top_k"]


def top_k(Q, D, k: int, metric: str = "cosine", chunk: int = 512
          ) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar database rows for each query: (m, d), (n, d) -> ids (m, k),
    scores (m, k), by decreasing :func:`~aekit.retrieval.metrics.similarities` (ties by
    index)."""
    D = np.asarray(D)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(D):
        raise ValueError(f"k must be an integer in [1, {len(D)}], got {k!r}")
    Q = np.asarray(Q)
    ids, sc = [], []
    for s in range(0, len(Q), chunk):
        S = similarities(Q[s:s + chunk], D, metric)
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(S, part, 1)
        o = np.lexsort((part, -ps), axis=1)
        ids.append(np.take_along_axis(part, o, 1))
        sc.append(np.take_along_axis(ps, o, 1))
    return np.concatenate(ids), np.concatenate(sc)


def knn_classify(train, y_train, test, k: int = 1, metric: str = "euclidean") -> np.ndarray:
    """Majority vote of the k nearest training codes (ties: the smallest class among the
    most frequent): (n_train, d), (n_train,), (m, d) -> (m,) labels."""
    y = np.asarray(y_train)
    if y.shape != (len(train),):
        raise ValueError(f"y_train must have shape ({len(train)},), got {y.shape}")
    ids, _ = top_k(test, train, k, metric)
    votes = y[ids]  # (m, k)
    classes = np.unique(y)
    counts = (votes[:, :, None] == classes[None, None, :]).sum(1)
    return classes[np.argmax(counts, axis=1)]


def knn_error(train, y_train, test, y_test, k: int = 1, metric: str = "euclidean") -> float:
    """kNN classification error rate on the test set (fraction misclassified)."""
    return float(np.mean(knn_classify(train, y_train, test, k, metric) != np.asarray(y_test)))
