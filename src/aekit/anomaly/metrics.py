"""Detection and localisation metrics: AUROC, average precision, F1 at a threshold,
pixel-level AUROC against ground-truth masks, and the per-region overlap (PRO) curve.

Sample-level metrics are scikit-learn's (:func:`sklearn.metrics.roc_auc_score`,
:func:`~sklearn.metrics.average_precision_score`, :func:`~sklearn.metrics.f1_score`); this
module checks their inputs (names the argument) and adds the pixel-level ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["auroc", "average_precision", "f1_at_threshold", "pixel_auroc", "pro_curve",
           "pro_score", "roc_curve_points"]


def labels_scores(y: Any, scores: Any, *, y_name: str = "y", s_name: str = "scores"
                   ) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(f"{y_name} and {s_name} must be 1-D of the same length, got shapes "
                         f"{y.shape} and {s.shape}")
    if not np.isin(y, (0, 1, False, True)).all():
        raise ValueError(f"{y_name} must be 0/1 (1 = anomaly), got values "
                         f"{np.unique(y)[:10].tolist()}")
    y = y.astype(np.int64)
    if not np.isfinite(s).all():
        raise ValueError(f"{s_name} must be finite ({int((~np.isfinite(s)).sum())} are not)")
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError(f"{y_name} must contain both normal (0) and anomalous (1) samples")
    return y, s


def auroc(y: Any, scores: Any) -> float:
    """Area under the ROC curve, ``P(s(anomaly) > s(normal)) + ½ P(tie)``.

    Parameters
    ----------
    y : array-like of {0, 1}, shape (n,)
        1 = anomaly.
    scores : array-like of float, shape (n,)
        Higher = more anomalous.

    Returns
    -------
    float in [0, 1] (scikit-learn's ``roc_auc_score``).

    References
    ----------
    T. Fawcett, "An introduction to ROC analysis", Pattern Recognition Letters 27 (2006), §7.
    """
    from sklearn.metrics import roc_auc_score

    y, s = labels_scores(y, scores)
    return float(roc_auc_score(y, s))


def average_precision(y: Any, scores: Any) -> float:
    """Average precision ``AP = Σ_n (R_n − R_{n−1}) P_n`` over the thresholds of ``scores``
    (scikit-learn's step-wise definition, no interpolation). Shapes as :func:`auroc`.

    References
    ----------
    Manning, Raghavan & Schütze, *Introduction to Information Retrieval* (2008), §8.4.
    """
    from sklearn.metrics import average_precision_score

    y, s = labels_scores(y, scores)
    return float(average_precision_score(y, s))


def f1_at_threshold(y: Any, scores: Any, threshold: float) -> float:
    """F1 of the rule ``anomaly ⇔ score > threshold``: ``2PR / (P + R)`` (0 when nothing is
    flagged). Shapes as :func:`auroc`.

    References
    ----------
    C. J. van Rijsbergen, *Information Retrieval* (1979), ch. 7.
    """
    from sklearn.metrics import f1_score

    y, s = labels_scores(y, scores)
    t = float(threshold)
    if not np.isfinite(t):
        raise ValueError(f"threshold must be finite, got {threshold}")
    return float(f1_score(y, (s > t).astype(np.int64), zero_division=0.0))


def roc_curve_points(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of the ROC curve (scikit-learn's ``roc_curve``), for plotting."""
    from sklearn.metrics import roc_curve

    y, s = labels_scores(y, scores)
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def _maps_masks(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    if masks is None:
        raise ValueError("masks are required for pixel-level metrics (got None)")
    a = np.asarray(maps, dtype=np.float64)
    m = np.asarray(masks)
    if a.ndim == 2:
        a = a[None]
    if m.ndim == 2:
        m = m[None]
    if a.ndim != 3 or a.shape != m.shape:
        raise ValueError(f"maps and masks must have the same shape (n, H, W), got {a.shape} "
                         f"and {m.shape}")
    if not np.isin(m, (0, 1, False, True)).all():
        raise ValueError("masks must be boolean or 0/1")
    if not np.isfinite(a).all():
        raise ValueError("maps must be finite")
    return a, m.astype(bool)


def pixel_auroc(maps: Any, masks: Any) -> float:
    """AUROC of every pixel's anomaly value against its ground-truth mask value.

    Parameters
    ----------
    maps : array-like, shape (n, H, W)
        Per-pixel anomaly scores (e.g. :func:`aekit.anomaly.error_maps`).
    masks : array-like of bool, shape (n, H, W)
        True = defect pixel. Needs both defect and normal pixels.

    References
    ----------
    P. Bergmann, M. Fauser, D. Sattlegger, C. Steger, "MVTec AD — a comprehensive real-world
    dataset for unsupervised anomaly detection", CVPR 2019, §4.2.
    """
    a, m = _maps_masks(maps, masks)
    if not m.any() or m.all():
        raise ValueError("masks must contain both defect and normal pixels for pixel AUROC")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(m.ravel(), a.ravel()))


def pro_curve(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve: ``(fpr, pro)`` over every threshold of ``maps``.

    At threshold t, each connected ground-truth region r (8-connectivity, per image) is
    covered by ``O_r(t) = |{p ∈ r : a_p > t}| / |r|``; ``PRO(t)`` is the mean of ``O_r(t)``
    over all regions, and ``FPR(t)`` the fraction of normal pixels (of all images) above t.
    Computed exactly: pixels sorted by decreasing value, each region pixel adds
    ``1 / (R |r|)`` to PRO and each normal pixel ``1 / N_normal`` to FPR; ties are resolved
    by keeping the last point of each group of equal values.

    Returns
    -------
    fpr, pro : ndarray, shape (T + 1,)
        Both start at 0 and end at 1.

    References
    ----------
    P. Bergmann, K. Batzner, M. Fauser, D. Sattlegger, C. Steger, "The MVTec anomaly
    detection dataset", IJCV 129 (2021), §5.2 (PRO); Bergmann et al., "Uninformed
    Students", CVPR 2020, §4.2.
    """
    from scipy import ndimage

    a, m = _maps_masks(maps, masks)
    if not m.any():
        raise ValueError("masks hold no defect region; PRO needs at least one")
    if m.all():
        raise ValueError("masks hold no normal pixel; PRO needs some for the FPR")
    weight = np.zeros(a.shape, dtype=np.float64)
    sizes, labels = [], []
    for i in range(len(m)):
        lab, n = ndimage.label(m[i], structure=np.ones((3, 3), dtype=int))
        if n:
            counts = np.bincount(lab.ravel(), minlength=n + 1).astype(np.float64)
            sizes.append(counts[1:])
            labels.append((i, lab, counts))
    n_regions = sum(len(s) for s in sizes)
    for i, lab, counts in labels:
        inside = lab > 0
        weight[i][inside] = 1.0 / (n_regions * counts[lab[inside]])
    normal = ~m
    flat, w, nrm = a.ravel(), weight.ravel(), normal.ravel().astype(np.float64)
    order = np.argsort(-flat, kind="stable")
    v = flat[order]
    pro = np.cumsum(w[order])
    fpr = np.cumsum(nrm[order]) / nrm.sum()
    last = np.r_[v[1:] != v[:-1], True]  # the last pixel of each group of equal values
    return np.r_[0.0, fpr[last]], np.r_[0.0, np.minimum(pro[last], 1.0)]


def pro_score(maps: Any, masks: Any, max_fpr: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``max_fpr``:
    ``(1 / max_fpr) ∫₀^{max_fpr} PRO(f) df`` (trapezoid, the curve interpolated at
    ``max_fpr``); 1 is perfect. Shapes as :func:`pixel_auroc`.

    References
    ----------
    Bergmann et al., IJCV 129 (2021), §5.2 (the MVTec AD protocol integrates to FPR 0.3).
    """
    if not 0.0 < float(max_fpr) <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    fpr, pro = pro_curve(maps, masks)
    f = float(max_fpr)
    keep = fpr <= f
    x, y = fpr[keep], pro[keep]
    if x[-1] < f:
        y_end = float(np.interp(f, fpr, pro))
        x, y = np.r_[x, f], np.r_[y, y_end]
    return float(np.trapezoid(y, x) / f)
