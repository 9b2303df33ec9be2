"""Ranking metrics for retrieval: precision at recall levels, precision@k, mean average
precision, and averaged precision-recall curves, with every query ranking the whole database.

For one query with database relevance ``rel`` (ranked by decreasing similarity) and
``R = Σ rel`` relevant items, let ``p_t`` be the rank (1-based) of the t-th relevant item:

* precision at recall ρ: ``P(ρ) = t / p_t`` with ``t = max(1, ⌈ρ R⌉)`` (the precision when
  the fraction ρ of the relevant items has been retrieved, as in Hinton & Salakhutdinov 2006,
  Fig. 4, which plots it averaged over queries);
* precision@k: ``(1/k) Σ_{i≤k} rel_i``;
* average precision: ``AP = (1/R) Σ_t t / p_t``; mAP is its mean over queries.

Queries with no relevant item in the database are left out of every average (reported as
``n_queries_used``). Relevance: single labels (n,) are relevant when equal; multi-label
indicators (n, T) when they share a label. Ties in Hamming distance are broken by database
order (a stable sort), so Hamming rankings, which tie a lot, are deterministic; real-valued
scores are sorted with numpy's default (introsort), where exact ties are rare.

References
----------
C. Manning, P. Raghavan & H. Schütze, *Introduction to Information Retrieval*, 2008,
sections 8.3-8.4. Hinton & Salakhutdinov, Science 313, 2006, Fig. 4.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .hashing import hamming_distances, pack_bits

__all__ = ["RECALL_LEVELS", "RetrievalScores", "average_precision", "evaluate_retrieval",
           "precision_at_k", "precision_at_recall", "relevance", "similarities"]

#: The recall levels of the benchmark tables.
RECALL_LEVELS = (0.001, 0.01, 0.1, 0.5)


def relevance(y_query, y_db) -> np.ndarray:
    """``rel[i, j]``: does database item j share a class with query i. (m,), (n,) -> (m, n)
    for single labels; (m, T), (n, T) bool -> (m, n) for multi-label (share ≥ 1 label)."""
    yq, yd = np.asarray(y_query), np.asarray(y_db)
    if yq.ndim != yd.ndim or yq.ndim not in (1, 2):
        raise ValueError(f"labels must both be (n,) classes or both (n, T) indicators, got "
                         f"shapes {yq.shape} and {yd.shape}")
    if yq.ndim == 1:
        return yq[:, None] == yd[None, :]
    if yq.shape[1] != yd.shape[1]:
        raise ValueError(f"label indicators have {yq.shape[1]} and {yd.shape[1]} columns")
    return (yq.astype(np.float32) @ yd.astype(np.float32).T) > 0


def _ranked_stats(rel_sorted: np.ndarray):
    cum = np.cumsum(rel_sorted, axis=1, dtype=np.int64)
    return cum, cum[:, -1]


def precision_at_recall(rel_sorted, levels=RECALL_LEVELS) -> np.ndarray:
    """``P(ρ)`` per query and level from ranked relevance: (m, n) bool -> (m, L) float
    (NaN for a query without relevant items)."""
    rel_sorted = np.asarray(rel_sorted, bool)
    cum, R = _ranked_stats(rel_sorted)
    levels = np.asarray(levels, np.float64)
    if levels.ndim != 1 or ((levels <= 0) | (levels > 1)).any():
        raise ValueError(f"recall levels must be in (0, 1], got {levels.tolist()}")
    out = np.full((rel_sorted.shape[0], levels.size), np.nan)
    ok = R > 0
    t = np.maximum(1, np.ceil(levels[None, :] * R[ok, None] - 1e-9)).astype(np.int64)
    for li in range(levels.size):
        pos = np.argmax(cum[ok] >= t[:, li:li + 1], axis=1)  # 0-based rank of t-th hit
        out[ok, li] = t[:, li] / (pos + 1)
    return out


def precision_at_k(rel_sorted, ks=(100,)) -> np.ndarray:
    """Precision of the top k per query: (m, n) bool -> (m, len(ks)); NaN without relevant
    items."""
    rel_sorted = np.asarray(rel_sorted, bool)
    cum, R = _ranked_stats(rel_sorted)
    out = np.full((rel_sorted.shape[0], len(ks)), np.nan)
    for i, k in enumerate(ks):
        if not 1 <= k <= rel_sorted.shape[1]:
            raise ValueError(f"k must be in [1, {rel_sorted.shape[1]}], got {k}")
        out[R > 0, i] = cum[R > 0, k - 1] / k
    return out


def average_precision(rel_sorted) -> np.ndarray:
    """``AP = (1/R) Σ_t t / p_t`` per query: (m, n) bool -> (m,); NaN without relevant
    items."""
    rel_sorted = np.asarray(rel_sorted, bool)
    cum, R = _ranked_stats(rel_sorted)
    ranks = np.arange(1, rel_sorted.shape[1] + 1)
    s = (rel_sorted * (cum / ranks)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(R > 0, s / np.maximum(R, 1), np.nan)


def similarities(Q, D, metric: str = "cosine") -> np.ndarray:
    """Similarity scores (higher = closer): (m, d), (n, d) -> (m, n) float32.

    ``cosine``: ``q·x / (‖q‖‖x‖)`` (a zero vector has similarity 0); ``euclidean``:
    ``−‖q − x‖²``; ``hamming``: ``−‖q ⊕ x‖_H`` on 0/1 or bool codes; ``dot``: ``q·x``.
    """
    if metric == "hamming":
        return -hamming_distances(pack_bits(np.asarray(Q)), pack_bits(np.asarray(D))
                                  ).astype(np.float32)
    Q = np.asarray(Q, np.float32)
    D = np.asarray(D, np.float32)
    if Q.ndim != 2 or D.ndim != 2 or Q.shape[1] != D.shape[1]:
        raise ValueError(f"Q and D must be (m, d) and (n, d), got {Q.shape} and {D.shape}")
    if metric == "cosine":
        qn = np.linalg.norm(Q, axis=1, keepdims=True)
        dn = np.linalg.norm(D, axis=1, keepdims=True)
        return (Q / np.where(qn > 0, qn, 1)) @ (D / np.where(dn > 0, dn, 1)).T
    if metric == "euclidean":
        return -(np.sum(Q * Q, 1)[:, None] - 2 * Q @ D.T + np.sum(D * D, 1)[None, :])
    if metric == "dot":
        return Q @ D.T
    raise ValueError(f"metric must be 'cosine', 'euclidean', 'hamming' or 'dot', got {metric!r}")


class RetrievalScores(NamedTuple):
    """Averages over the queries with at least one relevant item.

    Attributes
    ----------
    precision_at_recall : dict[float, float]
    precision_at_k : dict[int, float]
    mean_average_precision : float
    curve_recall, curve_precision : ndarray, shape (G,)
        Averaged precision at a grid of recall levels (for precision-recall plots).
    n_queries_used : int
    """

    precision_at_recall: dict
    precision_at_k: dict
    mean_average_precision: float
    curve_recall: np.ndarray
    curve_precision: np.ndarray
    n_queries_used: int

    def as_dict(self) -> dict:
        return {"precision_at_recall": {str(k): v for k, v in self.precision_at_recall.items()},
                "precision_at_k": {str(k): v for k, v in self.precision_at_k.items()},
                "mAP": self.mean_average_precision,
                "curve": {"recall": self.curve_recall.tolist(),
                          "precision": self.curve_precision.tolist()},
                "n_queries_used": self.n_queries_used}


def evaluate_retrieval(Q, D, y_query, y_db, *, metric: str = "cosine", scores=None,
                       exclude_self: bool = False, recall_levels=RECALL_LEVELS,
                       ks=(100,), curve_levels=None, chunk: int = 256) -> RetrievalScores:
    """Rank the whole database for every query and average the ranking metrics.

    Parameters
    ----------
    Q : array (m, d) or None
        Query representations (codes, vectors, or 0/1 codes for ``metric="hamming"``).
    D : array (n, d) or None
        Database representations.
    y_query, y_db : labels
        (m,) / (n,) classes or (m, T) / (n, T) multi-label indicators.
    metric : str
        See :func:`similarities`.
    scores : callable, optional
        ``scores(i0, i1) -> (i1 - i0, n)`` similarities for queries i0..i1 (instead of
        ``Q``/``D``, e.g. a sparse TF-IDF product).
    exclude_self : bool
        Queries are the database's first m items (query i is item i), which is left out of
        its own ranking (the "every test document as a query" protocol).
    recall_levels, ks : the table's levels and cut-offs.
    curve_levels : array, optional
        Recall grid of the averaged precision-recall curve (default 0.001..1, 31 levels,
        log-spaced).

    Returns
    -------
    RetrievalScores
    """
    yq, yd = np.asarray(y_query), np.asarray(y_db)
    m, n = yq.shape[0], yd.shape[0]
    if scores is None:
        if Q is None or D is None:
            raise ValueError("pass Q and D, or scores")
        if len(Q) != m or len(D) != n:
            raise ValueError(f"Q has {len(Q)} rows but y_query {m}; D has {len(D)} rows but "
                             f"y_db {n}")
    if exclude_self and m > n:
        raise ValueError(f"exclude_self needs m <= n, got {m} queries and {n} items")
    curve_levels = np.geomspace(1e-3, 1, 31) if curve_levels is None else \
        np.asarray(curve_levels)
    pr, pk, ap, cv = [], [], [], []
    for s in range(0, m, chunk):
        e = min(m, s + chunk)
        S = scores(s, e) if scores is not None else similarities(Q[s:e], D, metric)
        S = np.asarray(S, np.float32).copy()
        if exclude_self:
            S[np.arange(e - s), np.arange(s, e)] = -np.inf
        if metric == "hamming" and scores is None:
            # integer distances tie a lot: a stable (radix) sort keeps database order
            Di = np.where(np.isinf(S), 2**30, -S).astype(np.int32)
            order = np.argsort(Di, axis=1, kind="stable")
        else:
            order = np.argsort(-S, axis=1)
        if exclude_self:
            order = order[:, :-1]  # self is last (−inf)
        rel = np.take_along_axis(relevance(yq[s:e], yd), order, axis=1)
        pr.append(precision_at_recall(rel, recall_levels))
        pk.append(precision_at_k(rel, ks))
        ap.append(average_precision(rel))
        cv.append(precision_at_recall(rel, curve_levels))
    pr, pk, ap, cv = (np.concatenate(a) for a in (pr, pk, ap, cv))
    used = ~np.isnan(ap)
    if not used.any():
        raise ValueError("no query has a relevant item in the database")
    return RetrievalScores(
        {float(r): float(np.mean(pr[used, i])) for i, r in enumerate(recall_levels)},
        {int(k): float(np.mean(pk[used, i])) for i, k in enumerate(ks)},
        float(np.mean(ap[used])), np.asarray(curve_levels, float),
        np.mean(cv[used], axis=0), int(used.sum()))
