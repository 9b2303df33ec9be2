"""Anomaly detection with autoencoders: a PyOD/scikit-learn detector, thresholds set from
normal data, reconstruction / code-space scores, per-pixel heatmaps and metrics."""

from .detector import SCORES, THRESHOLDS, AnomalyDetector
from .metrics import (
    auroc,
    average_precision,
    f1_at_threshold,
    pixel_auroc,
    pro_curve,
    pro_score,
    roc_curve_points,
)
from .scores import (
    RECON_SCORES,
    RankNormalizer,
    error_maps,
    knn_distance,
    reconstruction_error,
    smooth_maps,
    ssim_map,
    top_features,
)
from .thresholds import (
    best_f1_threshold,
    check_contamination,
    contamination_threshold,
    fpr_threshold,
    realised_fpr,
)

__all__ = ["RECON_SCORES", "SCORES", "THRESHOLDS", "AnomalyDetector", "RankNormalizer",
           "auroc", "average_precision", "best_f1_threshold", "check_contamination",
           "contamination_threshold", "error_maps", "f1_at_threshold", "fpr_threshold",
           "knn_distance", "pixel_auroc", "pro_curve", "pro_score", "realised_fpr",
           "reconstruction_error", "roc_curve_points", "smooth_maps", "ssim_map",
           "top_features"]
