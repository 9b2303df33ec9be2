"""Built-in training material that needs no download.

Photos shipped with scikit-image and scikit-learn, split once and for all into training photos
and a fixed held-out set of whole photos (:data:`TEST_PHOTOS`, never used for training or
model selection); MNIST and Fashion-MNIST as (n, 1, 28, 28) images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["EXTRA_PHOTOS", "TEST_PHOTOS", "TRAIN_PHOTOS", "VAL_PHOTOS", "load_fashion_mnist",
           "load_mnist_images", "load_photo", "load_photos"]

#: Natural photos for training (scikit-image / scikit-learn sample data, no download).
TRAIN_PHOTOS = ("chelsea", "coffee", "rocket", "flower", "immunohistochemistry",
                "hubble_deep_field", "moon", "brick", "grass", "gravel", "page", "retina")
#: Photos for model selection (validation), carved from the training material.
VAL_PHOTOS = ("coins",)
#: The fixed held-out test photos (whole images): touched once, by the benchmarks.
TEST_PHOTOS = ("camera", "astronaut", "china", "clock")
#: Further local sample photos in no split by default, for benchmarks that choose to use them
#: (e.g. a second, natural validation photo): the two views of scikit-image's Middlebury stereo
#: pair (a cluttered indoor scene; near-duplicates of each other, so never one in training and
#: the other in validation), a photo of text on a textured surface, and a microscopy image.
EXTRA_PHOTOS = ("motorcycle_left", "motorcycle_right", "text", "cell")

_RGB = {"chelsea", "coffee", "rocket", "flower", "china", "astronaut", "immunohistochemistry",
        "hubble_deep_field", "retina", "motorcycle_left", "motorcycle_right"}
_MAX_SIDE = 640  # larger photos (retina 1411², hubble 872×1000) are downscaled to this


def _gray(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.709 luma weights, as skimage.color.rgb2gray
    return (rgb[:3] * np.array([0.2125, 0.7154, 0.0721], np.float32)[:, None, None]).sum(0,
                                                                                       keepdims=True)


def load_photo(name: str, mode: str = "L") -> np.ndarray:
    """One built-in photo as float32 (C, H, W) in [0, 1]; ``mode`` ``"L"`` or ``"RGB"``.

    Grayscale photos in ``"RGB"`` mode are repeated over 3 channels; colour photos in ``"L"``
    mode use the BT.709 luma. Photos with a side above 640 are downscaled (Lanczos).
    """
    from PIL import Image

    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images
        imgs = load_sample_images()
        files = [f.rsplit("/", 1)[-1] for f in imgs.filenames]
        a = imgs.images[files.index(f"{name}.jpg")]
    else:
        import skimage.data
        known = set(TRAIN_PHOTOS) | set(VAL_PHOTOS) | set(TEST_PHOTOS) | set(EXTRA_PHOTOS)
        if name not in known:
            raise ValueError(f"unknown photo {name!r}; expected one of {sorted(known)}")
        if name.startswith("motorcycle_"):
            a = skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1]
        else:
            a = getattr(skimage.data, name)()
    a = np.asarray(a)
    if max(a.shape[:2]) > _MAX_SIDE:
        s = _MAX_SIDE / max(a.shape[:2])
        im = Image.fromarray(a)
        a = np.asarray(im.resize((round(a.shape[1] * s), round(a.shape[0] * s)),
                                 Image.Resampling.LANCZOS))
    x = a.astype(np.float32) / 255.0
    x = x[None] if x.ndim == 2 else x[..., :3].transpose(2, 0, 1)
    if mode == "L" and x.shape[0] == 3:
        x = _gray(x)
    elif mode == "RGB" and x.shape[0] == 1:
        x = np.repeat(x, 3, 0)
    return np.ascontiguousarray(np.clip(x, 0, 1), dtype=np.float32)


def load_photos(split: str = "train", mode: str = "L") -> dict[str, np.ndarray]:
    """Built-in photos of one split (``"train"``, ``"val"``, ``"test"``) as ``{name: (C, H,
    W)}``. In ``"RGB"`` mode only the colour photos are returned."""
    names = {"train": TRAIN_PHOTOS, "val": VAL_PHOTOS, "test": TEST_PHOTOS}.get(split)
    if names is None:
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if mode == "RGB":  # colour photos only; chelsea is the colour validation photo
        names = ("chelsea",) if split == "val" else tuple(
            n for n in names if n in _RGB and n != "chelsea")
    return {n: load_photo(n, mode) for n in names}


def _idx_folder(path: str | os.PathLike | None, default: str) -> Path:
    p = Path(path) if path is not None else Path(default)
    if not p.exists():
        raise FileNotFoundError(f"{p} not found (set path= to a folder with the IDX files or "
                                "an mnist.npz)")
    return p


def load_fashion_mnist(path: str | os.PathLike | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images ``(train, test)`` as float32 (n, 1, 28, 28) in [0, 1].

    Default location: ``/usr/share/datasets/fashion-mnist`` (the four IDX files).
    """
    from ..data.datasets import load_mnist

    tr, te = load_mnist(_idx_folder(path, "/usr/share/datasets/fashion-mnist"))
    return (np.asarray(tr.X, np.float32).reshape(-1, 1, 28, 28),
            np.asarray(te.X, np.float32).reshape(-1, 1, 28, 28))


def load_mnist_images(path: str | os.PathLike | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images ``(train, test)`` as float32 (n, 1, 28, 28) in [0, 1] (default
    ``$AEKIT_DATA/mnist.npz``)."""
    from ..data.datasets import load_mnist

    tr, te = load_mnist(path)
    return (np.asarray(tr.X, np.float32).reshape(-1, 1, 28, 28),
            np.asarray(te.X, np.float32).reshape(-1, 1, 28, 28))
