"""Denoise a photo with a blind residual U-Net trained on the built-in photos.

    OMP_NUM_THREADS=1 python examples/image_denoise.py [--minutes 3]

Trains on noisy/clean patches made on the fly (σ ~ U[0.05, 0.35], noise level not given),
then denoises the held-out ``camera`` photo at σ = 0.2 and prints PSNR/SSIM next to the noisy
input and BM3D-free classical baselines (see benchmarks/image_denoise.py for the full table).
Writes ``denoised.png``, ``noisy.png`` and ``denoise_report.html`` (before/after thumbnails with
PSNR/SSIM, also with the x8 self-ensemble). CLI equivalent::

    aekit denoise noisy.png -o clean.png --train --model den.safetensors --report page.html
"""

import argparse

import numpy as np
import torch

from aekit.images import (
    GaussianNoise,
    denoise,
    estimate_noise,
    load_photo,
    load_photos,
    psnr,
    ssim,
    train_denoiser,
    write_image,
)
from aekit.report.images import ImageExample, write_image_report

ap = argparse.ArgumentParser()
ap.add_argument("--minutes", type=float, default=3.0)
args = ap.parse_args()
torch.set_num_threads(1)
clean = load_photo("camera")
noisy = GaussianNoise(0.2)(torch.from_numpy(clean)[None], torch.Generator().manual_seed(0))[0]
noisy = noisy.numpy()
model, hist = train_denoiser(list(load_photos("train").values()), level=(0.05, 0.35),
                             max_iter=1000, n_patches=512, batch_size=32, precision="bf16",
                             time_budget_s=60 * args.minutes,
                             val_images=list(load_photos("val").values()), progress=True)
out = denoise(model, noisy)
print(f"estimated σ = {estimate_noise(noisy):.3f} (true 0.2)")
print(f"noisy    PSNR {psnr(clean, np.clip(noisy, 0, 1)):.2f} dB")
print(f"denoised PSNR {psnr(clean, out):.2f} dB, SSIM {ssim(clean, out):.3f}")
ens = denoise(model, noisy, self_ensemble=True)  # the 8 flips/rotations averaged
print(f"x8 self-ensemble PSNR {psnr(clean, ens):.2f} dB, SSIM {ssim(clean, ens):.3f}")
write_image("noisy.png", noisy)
write_image("denoised.png", out)
write_image_report("denoise_report.html", [
    ImageExample("camera", input=clean, damaged=noisy, output=out, target=clean,
                 note="σ = 0.2, blind"),
    ImageExample("camera (x8 self-ensemble)", damaged=noisy, output=ens, target=clean)],
    title="aekit denoising example")
