"""Clipped vs unclipped training noise for denoising *image files* (the ``aekit denoise`` CLI).

An 8- or 16-bit image file cannot hold values outside [0, 1], so the noise in a real noisy
file is clipped: ``x̃ = clip(x + σε, 0, 1)``. The benchmark protocol of ``image_denoise.py``
(like the literature's AWGN protocol) keeps the noise unclipped. This script trains the same
residual U-Net twice, with the same seed, once on unclipped and
once on clipped blind noise (σ ~ U[0, 0.35] per patch), for the same number of steps
(``--epochs`` of 1,024 patches, batch 32, Adam 1e-3 with a cosine schedule, the best epoch on
validation crops kept), and scores both on the held-out gray
photos (``aekit.images.TEST_PHOTOS``) with clipped noise (what files hold) and unclipped noise,
σ = 0.1 / 0.2 / 0.3. Nothing is selected: the CLI's choice (clipped training noise by default,
``--unclipped-noise`` to switch it off) follows from what files hold; this measures what it
is worth.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_denoise_clip.py [--quick] [--epochs N]``.
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
import image_denoise as bench
from aekit import Objective, fit
from aekit.images import GaussianNoise, PatchSource, load_photos, psnr
from aekit.models import UNetAE

SIGMAS = (0.1, 0.2, 0.3)


def noisy(clean, sigma, seed, clip):
    g = torch.Generator().manual_seed(seed)
    return GaussianNoise(sigma, clip=clip)(torch.from_numpy(clean)[None], g)[0].numpy()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=None,
                    help="training epochs of 1,024 patches per model (default 12)")
    args = ap.parse_args(argv)
    q = args.quick
    epochs = args.epochs or (2 if q else 12)
    bench.EPOCH = 256 if q else 1024
    torch.set_num_threads(1)
    t0 = time.time()
    tr = list(load_photos("train", "L").values())
    val = [v[:, :128, :128] for v in load_photos("val", "L").values()]
    test = load_photos("test", "L")
    if q:
        test = {k: v[:, :128, :128] for k, v in test.items()}
    rows = []
    for train_clip in (False, True):
        torch.manual_seed(0)
        m = UNetAE(1, features=32, depth=3, residual=True)
        t1 = time.perf_counter()
        src = PatchSource(tr, 48, bench.EPOCH, damage=GaussianNoise((0.0, 0.35), clip=train_clip),
                          seed=0)
        vsrc = PatchSource(val, 48, 128, damage=GaussianNoise((0.0, 0.35), clip=train_clip),
                           fresh=False, seed=1)
        fit(m, Objective("mse"), src, val=vsrc, max_iter=epochs, batch_size=32,
            learning_rate=1e-3, schedule="cosine", random_state=0, progress=False,
            early_stopping=10 ** 6, precision="bf16" if bench.BF16 else "fp32")
        m.eval()
        info = {"steps": epochs * (bench.EPOCH // 32), "fit_s": time.perf_counter() - t1}
        for test_clip in (True, False):
            for s in SIGMAS:
                ps_in, ps = [], []
                for i, c in enumerate(test.values()):
                    y = noisy(c, s, 20_000 + i, test_clip)
                    ps_in.append(psnr(c, np.clip(y, 0, 1)))
                    ps.append(psnr(c, bench.run_model(m, y)))
                rows.append({"training_noise": "clipped" if train_clip else "unclipped",
                             "test_noise": "clipped" if test_clip else "unclipped",
                             "sigma": s, "psnr": round(float(np.mean(ps)), 3),
                             "psnr_noisy": round(float(np.mean(ps_in)), 3),
                             "steps": info["steps"], "fit_s": round(info["fit_s"], 1)})
                print(rows[-1], flush=True)
    hdr = ["test noise", "σ", "trained unclipped", "trained clipped", "clipped − unclipped",
           "noisy input"]
    out = []
    for test_clip in ("clipped", "unclipped"):
        for s in SIGMAS:
            a, b = (next(r for r in rows if r["training_noise"] == t and r["test_noise"]
                         == test_clip and r["sigma"] == s) for t in ("unclipped", "clipped"))
            out.append([test_clip, s, a["psnr"], b["psnr"], round(b["psnr"] - a["psnr"], 3),
                        a["psnr_noisy"]])
    table = (f"Held-out gray photos ({', '.join(test)}), mean PSNR (dB); residual U-Net "
             f"(f32, depth 3), {epochs} epochs of {bench.EPOCH} patches each, same seed\n\n"
             + _common.md_table(hdr, out))
    _common.write_results("image_denoise_clip_quick" if q else "image_denoise_clip", {
        "settings": {"quick": q, "epochs": epochs, "patches_per_epoch": bench.EPOCH,
                     "threads": torch.get_num_threads(),
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "bf16": bench.BF16,
                     "test_photos": list(test)},
        "protocol": __doc__, "rows": rows, "total_s": round(time.time() - t0, 1)}, table)
    print(table)


if __name__ == "__main__":
    main()
