"""The anomaly section of an HTML report: threshold and its realised false-positive rate,
score histograms normal vs anomalous, ROC curve, and heatmap overlays for images.

``anomaly_section(detector, X, y)`` returns a :class:`~aekit.report.html.Section` that any
report page can include; ``write_anomaly_report(detector, X, y, path)`` writes a page of its
own.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .html import Section, esc, figure, page, table

__all__ = ["anomaly_section", "write_anomaly_report"]


def anomaly_section(detector: Any, X: Any, y: Any = None, *, n_heatmaps: int = 8,
                    sigma: float | None = 1.0) -> Section:
    """A report section describing a fitted :class:`aekit.AnomalyDetector` on data ``X``.

    Parameters
    ----------
    detector : AnomalyDetector (fitted)
    X : array-like (n, d) or images (n, [c,] H, W)
    y : array-like of {0, 1}, optional
        1 = anomaly. With labels: AUROC, average precision, F1 at the threshold, the ROC curve
        and the histograms of both classes; without: the histogram of the scores.
    n_heatmaps : int
        For images: overlays of the ``n_heatmaps`` highest-scoring samples.
    sigma : float or None
        Gaussian smoothing of the heatmaps (pixels).

    References
    ----------
    Metrics: :mod:`aekit.anomaly.metrics`; overlays: :func:`aekit.anomaly.heatmaps.overlay_rgb`.
    """
    from ..anomaly.heatmaps import heatmap_grid, roc_figure, score_histogram
    from ..anomaly.metrics import auroc, average_precision, f1_at_threshold
    from ..anomaly.thresholds import realised_fpr

    s = detector.decision_function(X)
    rows = [["score", esc(f"{getattr(detector, 'score_', detector.score)} ({detector.recon})")],
            ["threshold rule", esc(str(detector.threshold))],
            ["threshold", detector.threshold_],
            ["flagged in the training data", float(detector.labels_.mean())],
            ["flagged here", float((s > detector.threshold_).mean())]]
    if len(detector.val_scores_):
        rows.append(["false-positive rate on the held-out normal rows",
                     realised_fpr(detector.val_scores_, detector.threshold_)])
    parts = []
    if y is not None:
        yy = np.asarray(y).astype(int)
        rows += [["AUROC", auroc(yy, s)], ["average precision", average_precision(yy, s)],
                 ["F1 at the threshold", f1_at_threshold(yy, s, detector.threshold_)]]
        parts.append(figure(roc_figure({"detector": (yy, s)}), "ROC curve"))
        parts.append(figure(score_histogram(s, yy, threshold=detector.threshold_),
                            "Scores of normal and anomalous samples; dashed: the threshold"))
    else:
        parts.append(figure(score_histogram(s, np.zeros(len(s), int),
                                            threshold=detector.threshold_),
                            "Scores; dashed: the threshold"))
    if detector.image_shape_ is not None and n_heatmaps > 0:
        top = np.argsort(-s)[:n_heatmaps]
        Xa = np.asarray(X, dtype=np.float64).reshape(len(s), *detector.image_shape_)[top]
        maps = detector.error_maps(Xa, sigma=sigma)
        parts.append(figure(heatmap_grid(Xa, maps, titles=[f"{v:.3g}" for v in s[top]]),
                            f"The {len(top)} highest-scoring images (score above) and where "
                            "they are wrong (error map overlay)"))
    body = table(rows, ["quantity", "value"], raw=False) + "".join(parts)
    return Section("anomaly", "Anomaly detection", body)


def write_anomaly_report(detector: Any, X: Any, y: Any = None,
                         path: str | os.PathLike = "anomaly.html", **kwargs: Any) -> str:
    """Write a self-contained HTML page with :func:`anomaly_section`; returns the path."""
    from ..io import atomic_write_text

    sec = anomaly_section(detector, X, y, **kwargs)
    html = page("Anomaly detection report", "<p>An aekit.AnomalyDetector on the given data."
                "</p>", [sec])
    atomic_write_text(path, html)
    return str(path)
