"""Thresholds that turn anomaly scores into decisions (``anomaly ⇔ score > threshold``).

* :func:`contamination_threshold` — the ``1 − c`` quantile of the training scores, PyOD's
  rule: it flags the fraction ``c`` of the training data.
* :func:`fpr_threshold` — from scores of held-out *normal* data only, the conformal
  order statistic whose false-positive rate on fresh normal data is at most the target
  (no contamination to guess).
* :func:`best_f1_threshold` — the threshold of best F1 on a labelled validation set.
* a fixed value, given by the user.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["best_f1_threshold", "check_contamination", "contamination_threshold",
           "fpr_threshold", "realised_fpr"]


def _scores(scores: Any, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite ({int((~np.isfinite(s)).sum())} are not)")
    return s


def check_contamination(contamination: Any) -> float:
    """``contamination`` as a float in (0, 0.5] (PyOD's range), else ``ValueError``."""
    if isinstance(contamination, bool) or not isinstance(contamination, (int, float, np.number)):
        raise ValueError(f"contamination must be a float in (0, 0.5], got {contamination!r}")
    c = float(contamination)
    if not 0.0 < c <= 0.5:
        raise ValueError(f"contamination must be in (0, 0.5], got {contamination}")
    return c


def contamination_threshold(scores: Any, contamination: float) -> float:
    """The ``100 (1 − c)``-th percentile of the training scores (linear interpolation), so
    that ``score > threshold`` flags ``⌊c n⌋`` or ``⌈c n⌉`` of the n training samples (fewer
    only with ties).

    Parameters
    ----------
    scores : array-like, shape (n,)
        Training scores (higher = more anomalous).
    contamination : float in (0, 0.5]
        c, the expected fraction of anomalies in the training data.

    References
    ----------
    Y. Zhao, Z. Nasrullah, Z. Li, "PyOD: A Python toolbox for scalable outlier detection",
    JMLR 20 (2019), ``BaseDetector._process_decision_scores``.
    """
    c = check_contamination(contamination)
    s = _scores(scores)
    return float(np.percentile(s, 100.0 * (1.0 - c)))


def fpr_threshold(normal_scores: Any, target_fpr: float) -> float:
    """Threshold whose false-positive rate on fresh normal data is at most ``target_fpr``.

    With held-out normal scores ``s_(1) ≤ … ≤ s_(m)`` the threshold is the order statistic
    ``s_(j)``, ``j = ⌈(m + 1)(1 − α)⌉``; if the held-out and new normal samples are
    exchangeable, ``P(s_new > s_(j)) ≤ α`` (split-conformal guarantee) and the expected
    realised FPR is ``(m + 1 − j) / (m + 1) ∈ (α − 1/(m+1), α]``.

    Parameters
    ----------
    normal_scores : array-like, shape (m,)
        Scores of normal samples that the model was *not* fitted on.
    target_fpr : float in (0, 1)
        α. Needs ``m ≥ 1/α − 1`` samples (e.g. 99 for 1 %), else ``ValueError``.

    References
    ----------
    V. Vovk, A. Gammerman, G. Shafer, *Algorithmic Learning in a Random World* (2005), ch. 2;
    S. Bates, E. Candès, L. Lei, Y. Romano, M. Sesia, "Testing for outliers with conformal
    p-values", Annals of Statistics 51 (2023), §2.
    """
    a = float(target_fpr)
    if not 0.0 < a < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    s = np.sort(_scores(normal_scores, "normal_scores"))
    m = len(s)
    j = math.ceil((m + 1) * (1.0 - a))
    if j > m:
        raise ValueError(f"target_fpr={a} needs at least {math.ceil(1.0 / a - 1.0)} held-out "
                         f"normal samples, got {m}; raise validation_fraction or target_fpr")
    return float(s[j - 1])


def best_f1_threshold(y: Any, scores: Any) -> tuple[float, float]:
    """The threshold with the highest F1 on labelled data: ``(threshold, f1)``.

    Candidates are the midpoints between consecutive distinct scores (and below the
    minimum), so the rule ``score > threshold`` reproduces the precision-recall curve's
    points exactly.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
        1 = anomaly; needs both classes.
    scores : array-like, shape (n,)

    References
    ----------
    C. J. van Rijsbergen, *Information Retrieval* (1979), ch. 7 (F-measure).
    """
    from .metrics import labels_scores

    y, s = labels_scores(y, scores)
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(s) + 1)
    last = np.r_[ss[1:] != ss[:-1], True]  # flag the top-k only at the end of a tie group
    tp, k, ss_l = tp[last], k[last], ss[last]
    f1 = 2.0 * tp / (k + y.sum())
    i = int(np.argmax(f1))
    nxt = ss[np.flatnonzero(last)[i] + 1] if np.flatnonzero(last)[i] + 1 < len(ss) else None
    t = 0.5 * (ss_l[i] + nxt) if nxt is not None else ss_l[i] - max(1.0, abs(ss_l[i]))
    return float(t), float(f1[i])


def realised_fpr(normal_scores: Any, threshold: float) -> float:
    """Fraction of normal scores above ``threshold``: the realised false-positive rate."""
    s = _scores(normal_scores, "normal_scores")
    return float((s > float(threshold)).mean())
