"""Document cleaning: a U-Net trained on rendered pages with synthetic scan damage vs Otsu and
Sauvola thresholding (scikit-image), on held-out rendered pages.

Pages: 256×256 text pages rendered with Pillow (system TrueType fonts found by
``aekit.images.documents.find_fonts``, 11–18 px); training pages seeds 0..N−1, validation
pages seeds 900000.., test pages seeds 5000000.. (never used before the final scoring). Each
test page is damaged once by ``ScanDamage()`` (blur, uneven lighting, stains, coffee ring,
crease, speckle, sensor noise) with generator seed 100 + i.

Scores per page, averaged: PSNR of the output image against the clean page (for the
thresholding baselines the output is the binary page, ink 0 / paper 1), and after binarisation
(U-Net output < t, t chosen on the validation pages; Otsu; Sauvola with window and k chosen on
the validation pages) the character-level agreement: the fraction of characters whose ink IoU
with the clean page's ink (clean < 0.5) inside the character's box is ≥ 0.75, the mean
per-character IoU, the ink F1 and the pixel error rate.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_documents.py [--quick]``.
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
from aekit.images import psnr, ssim, write_image
from aekit.images.documents import (
    ScanDamage,
    binarise,
    char_agreement,
    clean_document,
    find_fonts,
    render_pages,
    train_document_cleaner,
)


def damaged(pages, seed0):
    d = ScanDamage()
    out = []
    for i, p in enumerate(pages):
        g = torch.Generator().manual_seed(seed0 + i)
        out.append(d(torch.from_numpy(p.image)[None], g)[0].numpy())
    return out


def score(page, out_img, ink):
    ref = page.image[0] < 0.5
    r = char_agreement(ref, ink, page.boxes)
    r["psnr"] = psnr(page.image, out_img)
    r["ssim"] = ssim(page.image, out_img)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    q = args.quick
    torch.set_num_threads(1)
    n_train, n_test, epochs, n_patches = (8, 3, 1, 256) if q else (24, 8, 8, 1024)
    t_start = time.perf_counter()
    fonts = find_fonts()
    train = render_pages(range(n_train))
    val = render_pages(range(900_000, 900_004))
    test = render_pages(range(5_000_000, 5_000_000 + n_test))
    val_d = damaged(val, 900)
    test_d = damaged(test, 100)

    t0 = time.perf_counter()
    model, hist = train_document_cleaner([p.image for p in train],
                                         val_images=[p.image for p in val], max_iter=epochs,
                                         n_patches=n_patches, batch_size=16, patch_size=64,
                                         random_state=0, progress=False)
    train_s = time.perf_counter() - t0
    print(f"trained {len(hist.records)} epochs in {train_s:.0f} s", flush=True)

    # validation choices (never the test pages): U-Net threshold, Sauvola window and k
    val_out = [clean_document(model, x) for x in val_d]
    ts = [0.3, 0.4, 0.5, 0.6, 0.7]
    t_best = max(ts, key=lambda t: np.mean([char_agreement(p.image[0] < 0.5, o[0] < t,
                                                           p.boxes)["char_iou"]
                                            for p, o in zip(val, val_out)]))
    grid_s = [(w, k) for w in (15, 25, 41) for k in (0.1, 0.2, 0.3, 0.4)]
    w_best, k_best = max(grid_s, key=lambda wk: np.mean([
        char_agreement(p.image[0] < 0.5, binarise(x, "sauvola", window_size=wk[0], k=wk[1]),
                       p.boxes)["char_iou"] for p, x in zip(val, val_d)]))
    print(f"validation: U-Net threshold {t_best}, Sauvola window {w_best} k {k_best}",
          flush=True)

    methods = ["damaged input (Otsu-binarised for characters)", "Otsu (skimage)",
               f"Sauvola (skimage, w={w_best}, k={k_best})", "aekit U-Net",
               "aekit U-Net, binarised"]
    per: dict[str, list] = {m: [] for m in methods}
    times: dict[str, float] = {"otsu": 0.0, "sauvola": 0.0, "unet": 0.0}
    grid = None
    for i, (page, x) in enumerate(zip(test, test_d)):
        t = time.perf_counter()
        otsu = binarise(x, "otsu")
        times["otsu"] += time.perf_counter() - t
        t = time.perf_counter()
        sau = binarise(x, "sauvola", window_size=w_best, k=k_best)
        times["sauvola"] += time.perf_counter() - t
        t = time.perf_counter()
        out = clean_document(model, x)
        times["unet"] += time.perf_counter() - t
        ink_u = binarise(out, t_best)
        as_img = lambda ink: (~ink).astype(np.float32)[None]  # noqa: E731
        per[methods[0]].append(score(page, x, otsu))
        per[methods[1]].append(score(page, as_img(otsu), otsu))
        per[methods[2]].append(score(page, as_img(sau), sau))
        per[methods[3]].append(score(page, out, ink_u))
        per[methods[4]].append(score(page, as_img(ink_u), ink_u))
        if i == 0:
            grid = np.concatenate([page.image, x, as_img(otsu), as_img(sau), out], 2)
    rows = []
    for m in methods:
        a = per[m]
        rows.append({"method": m, **{k: round(float(np.mean([r[k] for r in a])), 4)
                                     for k in ("psnr", "ssim", "char_agreement", "char_iou",
                                               "ink_f1", "pixel_error")},
                     "n_pages": len(a)})
    best_base = max(r["char_agreement"] for r in rows[:3])
    best_base_psnr = max(r["psnr"] for r in rows[:3])
    ratios = {"unet_char_agreement_minus_best_baseline": round(
        rows[3]["char_agreement"] - best_base, 4),
        "unet_psnr_minus_best_baseline_db": round(rows[3]["psnr"] - best_base_psnr, 3)}
    if grid is not None:
        d = _common.ROOT / "docs" / "images"
        d.mkdir(parents=True, exist_ok=True)
        write_image(d / ("apps_documents" + ("_quick" if q else "") + ".png"), grid)
    table = _common.md_table(
        ["method", "PSNR (dB)", "SSIM", "char agreement (IoU≥0.75)", "mean char IoU", "ink F1",
         "pixel error"],
        [[r["method"], r["psnr"], r["ssim"], r["char_agreement"], r["char_iou"], r["ink_f1"],
          r["pixel_error"]] for r in rows])
    _common.write_results("image_documents_quick" if q else "image_documents", {
        "settings": {"quick": q, "threads": torch.get_num_threads(),
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "total_s": round(time.perf_counter() - t_start, 1)},
        "protocol": {
            "pages": "256x256 rendered text pages, fonts "
                     f"{[str(f) for f in fonts] or 'Pillow default'}, 11-18 px; train seeds "
                     f"0..{n_train - 1}, validation seeds "
                     f"900000..900003, test seeds 5000000..{5_000_000 + n_test - 1} (held out, "
                     "scored once)",
            "damage": "aekit.images.documents.ScanDamage() defaults; one draw per page, "
                      "generator seed 100 + i (test), 900 + i (validation)",
            "aekit": f"UNetAE(1, features=16, depth=3, sigmoid) trained with MSE on random "
                     f"64x64 patches (flips/rotations) of the training pages damaged on the fly, "
                     f"{epochs} epochs x {n_patches} patches, batch 16, Adam 1e-3 cosine, best "
                     "validation epoch kept; whole pages by tiled inference (128, overlap 32)",
            "binarisation": f"ink = output < {t_best} for the U-Net (threshold chosen on the "
                            f"validation pages from {ts} by mean char IoU); Otsu global; Sauvola "
                            f"window/k chosen on the validation pages from {grid_s}",
            "char_agreement": "reference ink = clean page < 0.5; for each rendered character "
                              "box, IoU of predicted and reference ink inside the box; a "
                              "character agrees when IoU >= 0.75 (fixed before any run)",
            "psnr": "against the clean page; for Otsu/Sauvola the binary page (ink 0, paper 1)",
            "budget": "sized for about 10 minutes of one core at OMP_NUM_THREADS=1 (full mode)",
        },
        "training": {"train_s": round(train_s, 1), "epochs": len(hist.records),
                     "val_loss": [round(r.get("val_loss", float("nan")), 5)
                                  for r in hist.records]},
        "choices": {"unet_threshold": t_best, "sauvola_window": w_best, "sauvola_k": k_best},
        "inference_s_total": {k: round(v, 2) for k, v in times.items()},
        "ratios": ratios, "rows": rows}, table)


if __name__ == "__main__":
    main()
