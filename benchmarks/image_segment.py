"""Segmentation of Magnetic Tile Defects: U-Net vs the same net without skips vs Otsu.

Data: ``magnetic_tile_defects.zip`` (``aekit.data.datasets.load_magnetic_tiles``), every
image resized to S×S (masks: a pixel is a defect when any part of its area is). Seeded split
by image, stratified by class (``split_by_image``, 70 / 10 / 20 %, seed 0); the test images
are scored once. Models: ``UNetAE(1 -> 1, features=16, depth=3, sigmoid)`` with and without
skip connections, trained with BCE + batch soft Dice on random 64×64 patches of the training
images (defective images repeated to about half of the list),
the best validation epoch kept and the probability threshold chosen on the validation images
(from 0.05..0.9 by pooled Dice). Baseline: Otsu's global threshold per image, polarity (dark
or bright defects) chosen on the validation images.

Scores on the test images: pooled IoU / Dice (all test pixels together), the mean per-image
IoU / Dice over the defective test images, and the false-positive pixel rate on the
defect-free test images.

``--validation-only`` trains the nets and scores them on the validation images only (the test
images are not read into any score): the mode used to choose ``--size``, ``--patch``,
``--epochs`` and ``--features`` before the one run that touches the test images.

Command: ``OMP_NUM_THREADS=1 AEKIT_DATA=/path/to/data python benchmarks/image_segment.py
[--quick] [--size S] [--patch P] [--epochs E] [--validation-only --name NAME]``.
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
from aekit.data.datasets import load_magnetic_tiles
from aekit.images import write_image
from aekit.images.segmentation import (
    dice,
    iou,
    otsu_segment,
    segment,
    split_by_image,
    train_segmenter,
)


def scores(masks, preds, defective):
    pooled_m, pooled_p = np.concatenate([m.ravel() for m in masks]), np.concatenate(
        [p.ravel() for p in preds])
    d_img = [dice(m, p) for m, p, d in zip(masks, preds, defective) if d]
    i_img = [iou(m, p) for m, p, d in zip(masks, preds, defective) if d]
    fp = [p.mean() for p, d in zip(preds, defective) if not d]
    return {"pooled_iou": round(iou(pooled_m, pooled_p), 4),
            "pooled_dice": round(dice(pooled_m, pooled_p), 4),
            "mean_iou_defective": round(float(np.mean(i_img)), 4),
            "mean_dice_defective": round(float(np.mean(d_img)), 4),
            "fp_rate_free": round(float(np.mean(fp)), 5) if fp else float("nan")}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", help="magnetic_tile_defects.zip or its folder (default $AEKIT_DATA)")
    ap.add_argument("--epochs", type=int, default=None, help="default 8 (quick 1)")
    ap.add_argument("--patches", type=int, default=None,
                    help="patches per epoch (default 1024, quick 256)")
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--size", type=int, default=None,
                    help="images resized to SIZE x SIZE (default 128, quick 96)")
    ap.add_argument("--patch", type=int, default=64, help="training patch side (default 64)")
    ap.add_argument("--models", default="skips,noskips",
                    help="comma list of nets to train: skips, noskips")
    ap.add_argument("--validation-only", action="store_true",
                    help="score on the validation images only; the test images are not scored")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16 autocast (only where the CPU has native bf16)")
    ap.add_argument("--defect-fraction", type=float, default=0.0,
                    help="share of training patches centred on a defect pixel (train_segmenter "
                    "defect_fraction; default 0: uniform patches)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--name", default=None, help="results file name (default image_segment)")
    args = ap.parse_args(argv)
    q = args.quick
    torch.set_num_threads(args.threads)
    size = args.size or (96 if q else 128)
    want = [m.strip() for m in args.models.split(",") if m.strip()]
    if not want or set(want) - {"skips", "noskips"}:
        raise SystemExit(f"--models: a comma list of skips, noskips; got {args.models!r}")
    if args.patch < 16 or args.patch > size:
        raise SystemExit(f"--patch must be in [16, --size={size}], got {args.patch}")
    epochs, n_patches = (1, 256) if q else (8, 1024)
    epochs = args.epochs or epochs
    n_patches = args.patches or n_patches
    t_start = time.perf_counter()
    ims, ms, labels = load_magnetic_tiles(args.data, size=(size, size))
    tr, va, te = split_by_image(labels, seed=0)
    if q:
        rng = np.random.default_rng(0)
        tr = np.sort(rng.choice(tr, 200, replace=False))
        te = np.sort(rng.choice(te, 60, replace=False))
    defective = np.array([lab != "Free" for lab in labels])
    print(f"{len(tr)} train, {len(va)} val, {len(te)} test images of {size}x{size}", flush=True)
    ts = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]
    rows, info, preds_all = [], {}, {}
    vm = np.concatenate([ms[i].ravel() for i in va])  # validation pixels, scored per threshold
    nets = [(n, sk) for key, n, sk in (("skips", "aekit U-Net (skips)", True),
                                       ("noskips", "same net without skips", False))
            if key in want]
    for name, skips in nets:
        t0 = time.perf_counter()
        model, hist = train_segmenter(ims[tr], ms[tr], val=(ims[va], ms[va]), skips=skips,
                                      features=args.features, depth=3, patch_size=args.patch,
                                      n_patches=n_patches, max_iter=epochs, batch_size=16,
                                      random_state=0, progress=False,
                                      defect_fraction=args.defect_fraction,
                                      precision=args.precision)
        train_s = time.perf_counter() - t0
        vprob = [segment(model, ims[i], threshold=None) for i in va]
        t_best = max(ts, key=lambda t: dice(vm, np.concatenate([p.ravel() >= t
                                                                for p in vprob])))
        if args.validation_only:
            vpred = [p >= t_best for p in vprob]
            info[name] = {"train_s": round(train_s, 1), "epochs": len(hist.records),
                          "threshold": t_best}
            print(name, info[name], flush=True)
            rows.append({"method": name, **scores([ms[i] for i in va], vpred,
                                                  defective[va])})
            continue
        t1 = time.perf_counter()
        preds = [segment(model, ims[i], threshold=t_best) for i in te]
        info[name] = {"train_s": round(train_s, 1), "epochs": len(hist.records),
                      "threshold": t_best, "inference_s": round(time.perf_counter() - t1, 2),
                      "val_loss": [round(r.get("val_loss", float("nan")), 5)
                                   for r in hist.records]}
        print(name, info[name], flush=True)
        preds_all[name] = preds
        rows.append({"method": name, **scores([ms[i] for i in te], preds, defective[te])})
    if args.validation_only:
        _write_validation(args, rows, info, size, epochs, n_patches, tr, va, t_start)
        return
    dark = max((True, False), key=lambda d: dice(vm, np.concatenate(
        [otsu_segment(ims[i], dark=d).ravel() for i in va])))
    preds = [otsu_segment(ims[i], dark=dark) for i in te]
    preds_all["otsu"] = preds
    rows.append({"method": f"Otsu threshold ({'dark' if dark else 'bright'} = defect)",
                 **scores([ms[i] for i in te], preds, defective[te])})
    # grid: 4 defective test images: image | truth | U-Net | no skips | Otsu
    pick = [k for k, i in enumerate(te) if defective[i]][:4]
    grid = np.concatenate([np.concatenate([ims[te[k]], ms[te[k]].astype(np.float32),
                                           *(preds_all[n][k].astype(np.float32)
                                             for n in ("aekit U-Net (skips)",
                                                       "same net without skips", "otsu"))], 1)
                           for k in pick], 0)
    d = _common.ROOT / "docs" / "images"
    d.mkdir(parents=True, exist_ok=True)
    write_image(d / ("apps_segment" + ("_quick" if q else "") + ".png"), grid)
    table = _common.md_table(
        ["method", "pooled IoU", "pooled Dice", "mean IoU (defective)", "mean Dice (defective)",
         "FP rate (defect-free)"],
        [[r["method"], r["pooled_iou"], r["pooled_dice"], r["mean_iou_defective"],
          r["mean_dice_defective"], r["fp_rate_free"]] for r in rows])
    _common.write_results(args.name or ("image_segment_quick" if q else "image_segment"), {
        "settings": {"quick": q, "threads": torch.get_num_threads(), "epochs": epochs,
                     "patches_per_epoch": n_patches, "features": args.features,
                     "precision": args.precision, "defect_fraction": args.defect_fraction,
                     "size": size, "patch": args.patch,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "total_s": round(time.perf_counter() - t_start, 1)},
        "protocol": {
            "data": f"Magnetic Tile Defects, {len(labels)} images resized to {size}x{size}; "
                    "masks: a pixel is defect when any part of its area is",
            "split": f"split_by_image(labels, seed=0): stratified by class, 70/10/20 % -> "
                     f"{len(tr)} train, {len(va)} val, {len(te)} test"
                     + (" (quick: random subsets of train/test)" if q else ""),
            "aekit": f"UNetAE(1 -> 1, features={args.features}, depth=3, sigmoid), skips on / "
                     f"off, {args.precision}, mean "
                     "pixel BCE + soft Dice over the whole batch, defective training images "
                     "repeated to about half of the training list, random "
                     f"{args.patch}x{args.patch} patches with flips/rotations ("
                     f"{args.defect_fraction:.0%} of them centred on a defect pixel), {epochs} "
                     f"epochs x {n_patches} patches, batch 16, Adam 1e-3 cosine, best "
                     "validation epoch; "
                     f"threshold chosen on the validation images from {ts} (pooled Dice)",
            "otsu": "skimage threshold_otsu per image; polarity chosen on the validation images",
            "metrics": "pooled IoU/Dice over every test pixel; mean per-image IoU/Dice over the "
                       "defective test images; mean predicted-defect fraction on defect-free "
                       "test images",
            "budget": "sized for about 10 minutes of one core at OMP_NUM_THREADS=1 (full mode)",
        },
        "training": info, "rows": rows}, table)


def _write_validation(args, rows, info, size, epochs, n_patches, tr, va, t_start):
    """The ``--validation-only`` results: the same scores on the validation images."""
    table = _common.md_table(
        ["method (validation images)", "pooled IoU", "pooled Dice", "mean IoU (defective)",
         "mean Dice (defective)", "FP rate (defect-free)", "threshold"],
        [[r["method"], r["pooled_iou"], r["pooled_dice"], r["mean_iou_defective"],
          r["mean_dice_defective"], r["fp_rate_free"], info[r["method"]]["threshold"]]
         for r in rows])
    _common.write_results(args.name or "image_segment_val", {
        "settings": {"quick": args.quick, "threads": torch.get_num_threads(),
                     "epochs": epochs, "patches_per_epoch": n_patches, "size": size,
                     "patch": args.patch, "features": args.features,
                     "precision": args.precision, "models": args.models,
                     "defect_fraction": args.defect_fraction,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "total_s": round(time.perf_counter() - t_start, 1)},
        "protocol": {"mode": "validation only: scores on the validation images "
                             f"({len(va)}); the threshold is chosen on the same images, so "
                             "the scores are optimistic by that one choice; the test images "
                             "are not scored",
                     "split": f"split_by_image(labels, seed=0): {len(tr)} train, {len(va)} "
                              "val"},
        "training": info, "rows": rows}, table)


if __name__ == "__main__":
    main()
