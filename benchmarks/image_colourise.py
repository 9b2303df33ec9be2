"""Colourisation: a U-Net predicting Lab ab from L vs the grayscale input and a constant-chroma
baseline, on the held-out built-in photos.

Training: the colour photos of ``aekit.images.TRAIN_PHOTOS`` (RGB mode; the colour
validation photo ``chelsea`` keeps the best epoch); test: the colour photos among
``TEST_PHOTOS`` (astronaut, china), whole images, touched once. Every method keeps the test
photo's own lightness L and predicts only ab: grayscale (ab = 0), constant chroma (ab = the
mean ab over every training pixel), and the U-Net. Scores in RGB against the true photo: PSNR,
SSIM (skimage defaults, averaged over channels) and the colourfulness of Hasler & Süsstrunk
(2003) next to the true photo's.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_colourise.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common
from aekit.images import load_photos, psnr, ssim, write_image
from aekit.images.colour import (
    colourfulness,
    colourise,
    lab_to_rgb,
    rgb_to_lab,
    train_colouriser,
)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    q = args.quick
    torch.set_num_threads(1)
    epochs, n_patches = (1, 256) if q else (10, 1024)
    t_start = time.perf_counter()
    train = load_photos("train", "RGB")
    val = load_photos("val", "RGB")
    test = load_photos("test", "RGB")
    if q:
        test = {k: v[:, :128, :128] for k, v in test.items()}
    mean_ab = np.mean(np.concatenate([rgb_to_lab(v)[1:].reshape(2, -1) for v in
                                      train.values()], 1), 1)
    t0 = time.perf_counter()
    model, hist = train_colouriser(list(train.values()), val_images=list(val.values()),
                                   max_iter=epochs, n_patches=n_patches, batch_size=16,
                                   patch_size=64, random_state=0, progress=False)
    train_s = time.perf_counter() - t0
    print(f"trained {len(hist.records)} epochs in {train_s:.0f} s", flush=True)
    methods = ["grayscale input (ab = 0)", "constant chroma (training mean ab)",
               "aekit U-Net (L -> ab)"]
    per: dict[str, list] = {m: [] for m in methods}
    truth_cf, grids = [], []
    for rgb in test.values():
        lab = rgb_to_lab(rgb)
        L = lab[:1]
        gray = lab_to_rgb(np.concatenate([L, np.zeros_like(lab[1:])]))  # the model's input
        outs = [gray,
                lab_to_rgb(np.concatenate([L, np.broadcast_to(mean_ab[:, None, None],
                                                              lab[1:].shape)])),
                colourise(model, gray)]
        truth_cf.append(colourfulness(rgb))
        for m, o in zip(methods, outs):
            per[m].append({"psnr": psnr(rgb, o), "ssim": ssim(rgb, o),
                           "colourfulness": colourfulness(o)})
        H = min(rgb.shape[1], 192)
        W = min(rgb.shape[2], 256)
        grids.append(np.concatenate([o[:, :H, :W] for o in [rgb, *outs]], 2))
    rows = [{"method": m, **{k: round(float(np.mean([r[k] for r in per[m]])), 4)
                             for k in ("psnr", "ssim", "colourfulness")}, "n_images": len(per[m])}
            for m in methods]
    rows.append({"method": "true photo", "psnr": None, "ssim": 1.0,
                 "colourfulness": round(float(np.mean(truth_cf)), 4), "n_images": len(test)})
    d = _common.ROOT / "docs" / "images"
    d.mkdir(parents=True, exist_ok=True)
    Wg = min(g.shape[2] for g in grids)
    write_image(d / ("apps_colourise" + ("_quick" if q else "") + ".png"),
                np.concatenate([g[:, :, :Wg] for g in grids], 1))
    table = _common.md_table(["method", "PSNR RGB (dB)", "SSIM RGB", "colourfulness"],
                             [[r["method"], "—" if r["psnr"] is None else r["psnr"], r["ssim"],
                               r["colourfulness"]]
                              for r in rows])
    _common.write_results("image_colourise_quick" if q else "image_colourise", {
        "settings": {"quick": q, "threads": torch.get_num_threads(),
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "total_s": round(time.perf_counter() - t_start, 1)},
        "protocol": {
            "train": f"colour training photos {sorted(train)} (RGB, sides <= 640); validation "
                     f"{sorted(val)} (best epoch)",
            "test": f"held-out colour photos {sorted(test)}" + (" (128x128 crops, quick)" if q
                                                                else ", whole images"),
            "input": "the test photo's L channel only (Lab, skimage rgb2lab, D65)",
            "aekit": f"UNetAE(1 -> 2, features=16, depth=3, linear) on L/100 -> ab/100, MSE, "
                     f"random 64x64 patches with flips/rotations, {epochs} epochs x {n_patches} "
                     "patches, batch 16, Adam 1e-3 cosine; tiled inference (128, overlap 32)",
            "constant_chroma": "ab = mean over every training pixel = "
                               f"{np.round(mean_ab * 100, 3).tolist()}",
            "metrics": "PSNR and SSIM (skimage defaults, mean over RGB channels) against the "
                       "true photo; colourfulness of Hasler & Süsstrunk 2003 (0-255 units)",
            "budget": "sized for about 10 minutes of one core at OMP_NUM_THREADS=1 (full mode)",
            "grid": "docs/images/apps_colourise.png: true | grayscale | constant chroma | U-Net, "
                    "one row per test photo (top-left crop)",
        },
        "training": {"train_s": round(train_s, 1), "epochs": len(hist.records),
                     "val_loss": [round(r.get("val_loss", float("nan")), 5)
                                  for r in hist.records]},
        "ratios": {"unet_psnr_minus_constant_chroma_db": round(rows[2]["psnr"] - rows[1]["psnr"],
                                                               3),
                   "unet_psnr_minus_grayscale_db": round(rows[2]["psnr"] - rows[0]["psnr"], 3),
                   "unet_colourfulness_over_truth": round(rows[2]["colourfulness"]
                                                          / rows[3]["colourfulness"], 3)},
        "rows": rows}, table)


if __name__ == "__main__":
    main()
