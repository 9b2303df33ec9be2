"""Inpainting / watermark removal: U-Nets (mask given, and blind) vs biharmonic inpainting.

Held-out photos (``aekit.images.TEST_PHOTOS`` in grayscale, 256×256 centre crops) damaged by
text overlays (watermark / captions rendered with Pillow at random positions, sizes and
opacities) or by two missing blocks; PSNR inside the damaged region, outside it and over the
whole image, and SSIM. Baselines in the same run: the damaged input and scikit-image's
``inpaint_biharmonic`` given the mask, and aekit's ``diffusion_fill`` alone. aekit: a U-Net
that starts from the diffusion fill and corrects it inside the holes (``UNetAE(fill=
"diffusion")``, the default of ``train_inpainter(given_mask=True)``), the plain U-Net given
``[x̃, m]`` (known pixels kept), and a blind U-Net given ``x̃`` alone, each trained for the
same budget on the training photos with damage drawn on the fly.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_inpaint.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import _common
from aekit.images import (
    Blocks,
    MaskInput,
    TextOverlay,
    diffusion_fill,
    inpaint,
    load_photos,
    psnr,
    ssim,
    write_image,
)
from aekit.models import UNetAE

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_denoise
from image_denoise import BF16, train


def region_psnr(clean, est, mask):
    m = np.broadcast_to(mask[None] > 0, clean.shape)
    if not m.any() or m.all():
        return float("nan")
    return psnr(clean[m].reshape(1, 1, -1), est[m].reshape(1, 1, -1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=None,
                    help="training seconds per model (default 150 full, 15 quick)")
    args = ap.parse_args(argv)
    q = args.quick
    image_denoise.EPOCH = 256 if q else 1024
    torch.set_num_threads(1)
    budget = args.budget or (15.0 if q else 150.0)
    side = 96 if q else 256
    tr = list(load_photos("train", "L").values())
    val = list(load_photos("val", "L").values())
    test = load_photos("test", "L")

    def centre(v):
        H, W = v.shape[1:]
        y0, x0 = (H - side) // 2, (W - side) // 2
        return v[:, y0:y0 + side, x0:x0 + side]
    test = {k: centre(v) for k, v in test.items()}
    damages = {"text overlay": TextOverlay(lines=3, size=(0.08, 0.2), opacity=(0.5, 1.0)),
               "2 missing blocks": Blocks(count=2, size=0.15)}
    rows, info, grid = [], {}, None
    for dname, dmg in damages.items():
        models = {}
        for mode in ("given mask", "given mask, no fill", "blind"):
            torch.manual_seed(0)
            if mode == "given mask":
                m = UNetAE(2, out_channels=1, features=32, depth=3, fill="diffusion")
            else:
                m = UNetAE(1 if mode == "blind" else 2, out_channels=1, features=32, depth=3,
                           output="sigmoid")
            d = dmg if mode == "blind" else MaskInput(dmg)
            info[f"{dname} / {mode}"] = train(m, tr, d, budget, val=val)
            models[mode] = m.to(memory_format=torch.contiguous_format)
            print(dname, mode, info[f"{dname} / {mode}"], flush=True)
        scores: dict[str, list] = {}
        for i, (name, clean) in enumerate(test.items()):
            g = torch.Generator().manual_seed(100 + i)
            y, mask = dmg.with_mask(torch.from_numpy(clean)[None], g)
            y, mask = y[0].numpy(), mask[0, 0].numpy()
            from skimage.restoration import inpaint_biharmonic
            t0 = time.perf_counter()
            bih = np.asarray(inpaint_biharmonic(y[0], mask.astype(bool)), np.float32)[None]
            tb = time.perf_counter() - t0
            fill = diffusion_fill(torch.from_numpy(y)[None], torch.from_numpy(mask)[None, None])
            outs = {"damaged input": y, "biharmonic (skimage, mask given)": bih,
                    "diffusion fill (aekit, mask given; the U-Net's start)": fill[0].numpy(),
                    "aekit U-Net from the diffusion fill, mask given":
                        inpaint(models["given mask"], y, mask),
                    "aekit U-Net, mask given, no fill":
                        inpaint(models["given mask, no fill"], y, mask),
                    "aekit U-Net, blind": inpaint(models["blind"], y)}
            for k, o in outs.items():
                o = np.clip(o, 0, 1)
                scores.setdefault(k, []).append((region_psnr(clean, o, mask),
                                                 region_psnr(clean, o, 1 - mask),
                                                 psnr(clean, o), ssim(clean, o)))
            scores.setdefault("_time_biharmonic", []).append(tb)
            if name == "camera" and dname == "text overlay":
                grid = np.concatenate([clean, y, bih, np.clip(
                    outs["aekit U-Net from the diffusion fill, mask given"], 0, 1),
                    np.clip(outs["aekit U-Net, blind"], 0, 1)], 2)
        for k, v in scores.items():
            if k.startswith("_"):
                continue
            a = np.array(v, np.float64)
            rows.append({"damage": dname, "method": k,
                         "psnr_inside": round(float(np.nanmean(a[:, 0])), 3),
                         "psnr_outside": round(float(np.nanmean(a[:, 1])), 3),
                         "psnr_whole": round(float(np.mean(a[:, 2])), 3),
                         "ssim": round(float(np.mean(a[:, 3])), 4), "n_images": len(v)})
        print({r["method"]: (r["psnr_inside"], r["psnr_whole"]) for r in rows[-6:]}, flush=True)
    if grid is not None:
        d = _common.ROOT / "docs" / "images"
        d.mkdir(parents=True, exist_ok=True)
        write_image(d / ("inpaint_camera_text" + ("_quick" if q else "") + ".png"), grid)
    table = _common.md_table(["damage", "method", "PSNR inside", "PSNR outside", "PSNR whole",
                              "SSIM"],
                             [[r["damage"], r["method"], r["psnr_inside"], r["psnr_outside"],
                               r["psnr_whole"], r["ssim"]] for r in rows])
    _common.write_results("image_inpaint_quick" if q else "image_inpaint", {
        "settings": {"quick": q, "threads": torch.get_num_threads(),
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "training_budget_s_per_model": budget, "precision": "bf16" if BF16
                     else "fp32"},
        "protocol": {
            "test": f"held-out photos {', '.join(test)} (gray), {side}x{side} centre crops; "
                    "one damage draw per image (seed 100 + i)",
            "damage": "text overlay: 3 words from a fixed list, font 8-20 % of the height, "
                      "opacity 0.5-1, white/black/grey; blocks: 2 squares of 15 % of the side "
                      "filled with 0",
            "aekit": "U-Nets (32 features, depth 3) trained on random 48x48 patches of the "
                     "training photos with the damage drawn on the fly, the same budget each; "
                     "given mask, from the fill: UNetAE(fill='diffusion'), input [fill, mask], "
                     "linear output = fill + correction inside the holes, known pixels "
                     "kept (the loss sees only the holes); given mask, no fill: input "
                     "[damaged, mask], sigmoid output, known pixels kept at inference only; "
                     "blind: damaged image only, sigmoid, whole output used; best epoch on "
                     "damaged validation patches (coins)",
            "baseline": "skimage.restoration.inpaint_biharmonic given the mask; "
                        "aekit.images.diffusion_fill alone (the fill U-Net's starting point)",
            "metrics": "PSNR inside / outside the damaged pixels and over the whole image, "
                       "SSIM (skimage defaults), averaged over images",
        },
        "training": info, "rows": rows}, table)


if __name__ == "__main__":
    main()
