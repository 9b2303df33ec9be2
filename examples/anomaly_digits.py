"""Anomaly detection on scikit-learn's 8×8 digits: fit on one digit, flag the others.

    python examples/anomaly_digits.py [--digit 0] [--out anomaly_digits]

The images of one digit are split at random (seed 0) into 60 % for fitting and 40 % for
testing; the test set adds every image of the other digits as anomalies. ``AnomalyDetector``
is fitted on the normal images only, with a threshold for a 5 % false-positive rate set on
30 % of them held out (never trained on). Prints the test AUROC next to PCA's (same code size,
same score) and the realised false-positive rate on the normal test images, and writes
heatmap overlays of the highest-scoring test images and an HTML report into ``--out``.

Measured (seed 0, one core, ~10 s): digit 0: AUROC aekit 100.0 %, PCA-8 100.0 %, realised FPR
4.2 % on 72 normal test images (target 5 %); ``--digit 3``: AUROC 99.5 % vs 98.9 %, realised
FPR 1.4 % on 74.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from aekit import AnomalyDetector
from aekit.anomaly import auroc, realised_fpr
from aekit.anomaly.heatmaps import save_overlay
from aekit.data import load_digits
from aekit.report.anomaly import write_anomaly_report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--digit", type=int, default=0)
    ap.add_argument("--out", default="anomaly_digits")
    a = ap.parse_args(argv)
    train, test = load_digits()
    X = np.r_[train.X, test.X].reshape(-1, 8, 8)
    y = np.r_[train.y, test.y]
    normal = np.random.default_rng(0).permutation(np.flatnonzero(y == a.digit))
    n_fit = int(0.6 * len(normal))
    fit_i, test_i = normal[:n_fit], np.r_[normal[n_fit:], np.flatnonzero(y != a.digit)]
    Xt, yt = X[test_i], (y[test_i] != a.digit).astype(int)
    # 8x8 images: no residual low-pass (1 px is an eighth of the image); reconstruction score
    common = dict(n_components=8, score="recon", residual_sigma=None, random_state=0)
    det = AnomalyDetector(hidden_layer_sizes=(64,), threshold="fpr", target_fpr=0.05,
                          validation_fraction=0.3, max_iter=50, **common).fit(X[fit_i])
    pca = AnomalyDetector(model="pca", **common).fit(X[fit_i])
    s = det.decision_function(Xt)
    print(f"AUROC aekit {100 * auroc(yt, s):.1f} %, PCA-8 "
          f"{100 * auroc(yt, pca.decision_function(Xt)):.1f} %")
    print(f"realised FPR on the {int((yt == 0).sum())} normal test images: "
          f"{100 * realised_fpr(s[yt == 0], det.threshold_):.1f} % (target 5 %)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    maps = det.error_maps(Xt)
    for i in np.argsort(-s)[:5]:
        save_overlay(out / f"test{i}_heatmap.png", Xt[i], maps[i])
    print("report:", write_anomaly_report(det, Xt, yt, out / "report.html"))


if __name__ == "__main__":
    main()
