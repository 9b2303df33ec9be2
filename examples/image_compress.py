"""Compress a photo to a quantised convolutional code map and decode it back.

    OMP_NUM_THREADS=1 python examples/image_compress.py [--minutes 2]

Prints bits per pixel, PSNR and SSIM of the AE next to JPEG at about the same size.
CLI equivalent::

    aekit compress photo.png -o photo.aekc --train --model comp.safetensors --bits 4
"""

import argparse
import io

import numpy as np
import torch
from PIL import Image

from aekit.images import (
    compress_image,
    decompress_image,
    load_photo,
    load_photos,
    psnr,
    ssim,
    train_compressor,
)

ap = argparse.ArgumentParser()
ap.add_argument("--minutes", type=float, default=2.0)
args = ap.parse_args()
torch.set_num_threads(1)
model = train_compressor(list(load_photos("train").values()), code_channels=8, bits=4,
                         max_iter=1000, n_patches=512, time_budget_s=60 * args.minutes,
                         precision="bf16")
x = load_photo("camera")
data = compress_image(model, x, bits=4, path="camera.aekc")
dec = decompress_image(model, data)
bpp = 8 * len(data) / x[0].size
print(f"AE:   {bpp:.3f} bpp, PSNR {psnr(x, dec):.2f} dB, SSIM {ssim(x, dec):.3f}")
for q in range(5, 96, 5):  # the largest JPEG quality not above the AE's size
    buf = io.BytesIO()
    Image.fromarray(np.rint(x[0] * 255).astype(np.uint8)).save(buf, "JPEG", quality=q)
    if 8 * buf.tell() / x[0].size > bpp:
        break
    jq, jb = q, 8 * buf.tell() / x[0].size
    buf.seek(0)
    jd = np.asarray(Image.open(buf), np.float32) / 255
print(f"JPEG: {jb:.3f} bpp (quality {jq}), PSNR {psnr(x, jd[None]):.2f} dB")
