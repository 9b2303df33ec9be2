"""Segment magnetic-tile defects with a U-Net (Dice + BCE) and score IoU / Dice.

    OMP_NUM_THREADS=1 AEKIT_DATA=/path/to/data python examples/image_segment.py [--epochs 4]

Needs ``magnetic_tile_defects.zip`` in ``$AEKIT_DATA``. Splits the images by a seeded,
class-stratified split, trains on 64×64 patches of the training tiles (96×96), picks nothing
on the test tiles, and prints pooled IoU / Dice on them next to Otsu thresholding. Writes
``tile.png`` and ``mask.png`` for the first defective test tile. CLI equivalent::

    aekit segment tile.png -o mask.png --train --model seg.safetensors
"""

import argparse

import numpy as np
import torch

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

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=4)
args = ap.parse_args()
torch.set_num_threads(1)
ims, masks, labels = load_magnetic_tiles(size=(96, 96))
tr, va, te = split_by_image(labels, seed=0)
model, hist = train_segmenter(ims[tr], masks[tr], val=(ims[va], masks[va]), epochs=args.epochs,
                              n_patches=1024, progress=True)
truth = np.concatenate([masks[i].ravel() for i in te])
for name, f in [("U-Net", lambda x: segment(model, x)), ("Otsu", otsu_segment)]:
    pred = np.concatenate([f(ims[i]).ravel() for i in te])
    print(f"{name:6s} pooled IoU {iou(truth, pred):.3f}, Dice {dice(truth, pred):.3f}")
k = next(i for i in te if labels[i] != "Free")
write_image("tile.png", ims[k])
write_image("mask.png", segment(model, ims[k]).astype(np.float32))
