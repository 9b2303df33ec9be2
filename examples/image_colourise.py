"""Colourise a grayscale photo: a U-Net predicting the Lab ab channels from L.

    OMP_NUM_THREADS=1 python examples/image_colourise.py [--epochs 6]

Trains on patches of the built-in colour training photos (``chelsea`` keeps the best epoch),
then colourises the held-out ``astronaut`` photo from its lightness alone and prints PSNR and
colourfulness next to the grayscale input. Writes ``gray.png`` and ``colourised.png``. CLI
equivalent::

    aekit colourise gray.png -o colour.png --train --model col.safetensors
"""

import argparse

import numpy as np
import torch

from aekit.images import load_photo, load_photos, psnr, write_image
from aekit.images.colour import (
    colourfulness,
    colourise,
    lab_to_rgb,
    rgb_to_lab,
    train_colouriser,
)

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=6)
args = ap.parse_args()
torch.set_num_threads(1)
model, hist = train_colouriser(list(load_photos("train", "RGB").values()),
                               val_images=list(load_photos("val", "RGB").values()),
                               epochs=args.epochs, n_patches=1024, progress=True)
truth = load_photo("astronaut", "RGB")
lab = rgb_to_lab(truth)
gray = lab_to_rgb(np.concatenate([lab[:1], np.zeros_like(lab[1:])]))
out = colourise(model, gray)
print(f"grayscale  PSNR {psnr(truth, gray):.2f} dB, colourfulness {colourfulness(gray):.1f}")
print(f"colourised PSNR {psnr(truth, out):.2f} dB, colourfulness {colourfulness(out):.1f} "
      f"(true photo {colourfulness(truth):.1f})")
write_image("gray.png", gray)
write_image("colourised.png", out)
