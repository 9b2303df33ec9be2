"""Magnetic Tile Defects: image-level detection and pixel-level localisation with aekit's
AnomalyDetector — L2 vs SSIM scores; PCA vs dense (residual) vs convolutional vs U-Net
(skips off) — and example heatmaps.

Protocol: ``load_magnetic_tiles(size=(64, 64))`` (grayscale in [0, 1], masks thresholded at
full resolution then any-coverage downsampled). The 952 defect-free (``Free``) tiles are split
once (seed 0): 70 % for training, 30 % for testing; the test set adds all 392 defective tiles.
Detectors are fitted on the defect-free training tiles only (10 % of them held out inside the
detector for early stopping), seed 0. No setting is tuned on the test tiles; all are fixed
a priori:

* ``pca``: PCA-32 reconstruction (``model="pca"``), the baseline;
* ``dense``: the residual AE on the 4,096 flattened pixels (``model="residual"``, k = 32,
  hidden (256,));
* ``conv``: ``ConvAE`` (channels 16-32-64, stride 2, flat code 64, sigmoid output);
* ``unet``: ``UNetAE`` with its skip connections *off* (features 8, depth 3), when it is in
  ``aekit.MODELS`` (with skips on, a U-Net reproduces defects and cannot detect them).

Each model is fitted once and scored twice: L2 (squared error of the residual low-passed with
σ = 1 px, ``recon="mse"``) and SSIM (``(1 − SSIM)/2``, 11×11 Gaussian window). Image-level
score: the mean of the map; image AUROC over the test tiles (defective = 1). Pixel level: the
maps smoothed with σ = 2 px, pixel AUROC over every test pixel, and PRO (mean per-region
overlap integrated to FPR 0.3, normalised) against the defect masks.

``--quick``: 200 defect-free + 60 defective tiles, 2 epochs.

    OMP_NUM_THREADS=1 python benchmarks/anomaly_tiles.py [--quick]

Writes ``benchmarks/results/anomaly_tiles[_quick].json`` and ``docs/anomaly_tiles.png``
(full mode).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from _common import ROOT, md_table, write_results
from aekit.anomaly import AnomalyDetector, auroc, pixel_auroc, pro_score
from aekit.data.datasets import load_magnetic_tiles
from aekit.models import MODELS


def models(epochs):
    out = {
        "pca": dict(model="pca", n_components=32),
        "dense": dict(model="residual", n_components=32, hidden_layer_sizes=(256,),
                      max_iter=epochs),
        "conv": dict(model="conv", n_components=64, hidden_layer_sizes=(16, 32, 64),
                     max_iter=epochs,
                     model_params={"output": "sigmoid"}),
    }
    if "unet" in MODELS:
        out["unet"] = dict(model=MODELS["unet"](1, features=8, depth=3, skips=False,
                                                image_shape=(1, 64, 64)), max_iter=epochs)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(a.threads)
    epochs = 2 if a.quick else a.epochs
    imgs, masks, labels = load_magnetic_tiles(size=(64, 64))
    labels = np.asarray(labels)
    free = np.flatnonzero(labels == "Free")
    bad = np.flatnonzero(labels != "Free")
    rng = np.random.default_rng(0)
    free = rng.permutation(free)
    if a.quick:
        free, bad = free[:200], rng.permutation(bad)[:60]
    n_tr = int(round(0.7 * len(free)))
    tr, te = free[:n_tr], np.r_[free[n_tr:], bad]
    Xtr, Xte, Mte = imgs[tr], imgs[te], masks[te]
    y = (labels[te] != "Free").astype(int)
    rows, maps_keep = [], {}
    for name, kw in models(epochs).items():
        t0 = time.perf_counter()
        det = AnomalyDetector(score="recon", random_state=0, **kw).fit(Xtr)
        fit_s = time.perf_counter() - t0
        for kind in ("mse", "ssim"):
            raw = det.error_maps(Xte, kind=kind)
            img_score = raw.reshape(len(raw), -1).mean(1)
            sm = det.error_maps(Xte, kind=kind, sigma=2.0)
            rows.append({"model": name, "score": "L2" if kind == "mse" else "SSIM",
                         "image_auroc": 100 * auroc(y, img_score),
                         "pixel_auroc": 100 * pixel_auroc(sm, Mte),
                         "pro": 100 * pro_score(sm, Mte), "fit_s": fit_s,
                         "epochs_run": len(det.history_)})
            maps_keep[(name, kind)] = sm
            print(rows[-1], flush=True)
    table = md_table(["model", "score", "image AUROC %", "pixel AUROC %", "PRO (FPR ≤ 0.3) %",
                      "fit s", "epochs run"],
                     [[r["model"], r["score"], r["image_auroc"], r["pixel_auroc"], r["pro"],
                       r["fit_s"], r["epochs_run"]] for r in rows])
    best = max(rows, key=lambda r: r["pixel_auroc"])
    if not a.quick:
        from aekit.anomaly.heatmaps import heatmap_grid
        from aekit.plots.grids import save_png

        pick = [i for i in np.flatnonzero(y == 1)][::max(1, int(y.sum()) // 8)][:8]
        m = maps_keep[(best["model"], "mse" if best["score"] == "L2" else "ssim")]
        fig = heatmap_grid(Xte[pick], m[pick], masks=Mte[pick],
                           titles=[labels[te][i] for i in pick])
        save_png(fig, Path(ROOT) / "docs" / "anomaly_tiles.png", dpi=110)
    name = a.name or ("anomaly_tiles_quick" if a.quick else "anomaly_tiles")
    write_results(name, {
        "settings": {"quick": a.quick, "epochs": epochs, "threads": a.threads,
                     "n_train": int(len(tr)), "n_test": int(len(te)),
                     "n_test_defective": int(y.sum()), "unet_available": "unet" in MODELS},
        "protocol": __doc__.split("\n\n", 1)[1].split("``--quick``")[0].strip(),
        "heatmaps_from": f"{best['model']} {best['score']} (best pixel AUROC)",
        "rows": rows}, table)


if __name__ == "__main__":
    main()
