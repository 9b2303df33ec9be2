"""Supervised segmentation with the U-Net: defect masks of the Magnetic Tile Defects images.

The model maps a grayscale image (1, H, W) to per-pixel defect logits (1, H, W) (sigmoid
output); it trains through :func:`aekit.fit` with the :func:`dice_bce` loss on random patches
of ``[image, mask]`` (cropped, flipped and rotated together) and segments whole images of any
size by tiled inference (:func:`segment`). :func:`dice` and :func:`iou` score binary masks.

References
----------
Ronneberger, Fischer & Brox, "U-Net: convolutional networks for biomedical image
segmentation", MICCAI 2015, section 3; Milletari, Navab & Ahmadi, "V-Net", 3DV 2016,
section 3 (the soft Dice loss); Huang, Qiu & Yuan, "Surface defect saliency of magnetic
tile", The Visual Computer 36 (2020) 85–96 (the data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..models.base import AEOutput
from .io import as_chw
from .patches import PatchSource

__all__ = ["dice", "dice_bce", "iou", "otsu_segment", "segment", "split_by_image",
           "train_segmenter"]


def dice(reference, prediction) -> float:
    """Dice coefficient of two binary masks: ``2 |A ∩ B| / (|A| + |B|)``; 1.0 when both are
    empty (nothing to find, nothing found).

    References
    ----------
    Dice, "Measures of the amount of ecologic association between species", Ecology 26
    (1945), eq. 1.
    """
    a, b = _pair(reference, prediction)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else float(2 * np.logical_and(a, b).sum() / s)


def iou(reference, prediction) -> float:
    """Intersection over union (Jaccard index) of two binary masks: ``|A ∩ B| / |A ∪ B|``;
    1.0 when both are empty. ``IoU = Dice / (2 − Dice)``.

    References
    ----------
    Jaccard, "The distribution of the flora in the alpine zone", New Phytologist 11 (1912).
    """
    a, b = _pair(reference, prediction)
    u = int(np.logical_or(a, b).sum())
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


def _pair(reference, prediction) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(reference), np.asarray(prediction)
    if a.shape != b.shape:
        raise ValueError(f"reference mask {a.shape} and prediction {b.shape} differ in shape")
    return a.astype(bool), b.astype(bool)


def dice_bce(target: torch.Tensor, out: AEOutput | torch.Tensor, *, eps: float = 1.0,
             batch: bool = False) -> torch.Tensor:
    """Segmentation loss: mean pixel BCE plus the soft Dice loss, (n,).

    With ``p = σ(s)`` (s the logits) and target t:
    ``ℓ_i = mean_j BCE(s_ij, t_ij) + 1 − (2 Σ p t + ε) / (Σ p + Σ t + ε)``
    (Milletari et al. 2016, eq. 1, smoothed by ε so that an empty target predicted empty has
    zero Dice loss). The Dice sums run over each sample's pixels (``batch=False``), or over
    every pixel of the batch (``batch=True``: one Dice term, the same for every sample, so
    the batch mean is ``mean BCE + 1 − Dice(batch)``; with rare defects the per-sample form
    rewards the many empty patches for predicting nothing). Usable as
    :class:`aekit.objectives.Objective`'s loss (``functools.partial(dice_bce, batch=True)``).
    """
    logits = out.logits if isinstance(out, AEOutput) else out
    s, t = logits.flatten(1), target.flatten(1)
    bce = F.binary_cross_entropy_with_logits(s, t, reduction="none").mean(1)
    p = torch.sigmoid(s)
    if batch:
        d = (2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps)
        return bce + 1 - d.expand_as(bce)
    d = (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
    return bce + 1 - d


def _dice_bce_batch(target: torch.Tensor, out: AEOutput | torch.Tensor) -> torch.Tensor:
    return dice_bce(target, out, batch=True)


def split_by_image(labels: Sequence[str], *, fractions: tuple[float, float, float] = (0.7, 0.1,
                   0.2), seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train / validation / test split of image indices, stratified by class label.

    Each class's indices are permuted (``numpy.random.default_rng(seed)``) and cut at the
    cumulative ``fractions``; every image is in exactly one split.
    """
    f = np.asarray(fractions, np.float64)
    if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1):
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got "
                         f"{fractions}")
    lab = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for c in sorted(set(lab.tolist())):
        idx = rng.permutation(np.flatnonzero(lab == c))
        cut = np.rint(np.cumsum(f)[:2] * len(idx)).astype(int)
        for k, chunk in enumerate(np.split(idx, cut)):
            parts[k].extend(chunk.tolist())
    return tuple(np.array(sorted(p), np.int64) for p in parts)  # type: ignore[return-value]


def train_segmenter(images, masks, *, skips: bool = True, features: int = 16, depth: int = 3,
                    patch_size: int = 64, n_patches: int = 2048, max_iter: int = 10,
                    batch_size: int = 16, learning_rate: float = 1e-3, val: tuple | None = None,
                    batch_dice: bool = True, balance: bool = True, defect_fraction: float = 0.0,
                    time_budget_s: float | None = None, random_state: int = 0,
                    progress: bool | None = None, **fit_kwargs):
    """A U-Net segmenter trained on random patches of (image, mask) pairs with :func:`dice_bce`.

    With ``balance`` the images holding defect pixels are repeated in the training list so
    that they are about half of it (patches are drawn uniformly over the list's pixels); with
    ``batch_dice`` the Dice term is computed over the whole batch (see :func:`dice_bce`).
    ``defect_fraction`` in [0, 1] is the share of training patches centred on a defect pixel.
    The defect pixel is drawn uniformly over all defect pixels and placed at a random position
    inside the patch (:class:`~aekit.images.PatchSource` ``focus_fraction``). Small defects
    are then seen in most batches, not only when a uniform crop happens to hit them. The
    validation patches stay uniform.

    Parameters
    ----------
    images : array (n, H, W) or sequence of (H, W) / (1, H, W), values in [0, 1]
    masks : same shapes, bool or {0, 1}
    skips : bool
        U-Net skip connections (False: the same net as a plain encoder–decoder).
    val : (images, masks), optional
        Fixed validation patches; the best epoch is kept.
    max_iter, batch_size, learning_rate, random_state : training settings
        Epochs of ``n_patches`` patches, patches per step, Adam's step, seed.
        The old keywords ``epochs``, ``lr``, ``seed`` still work until the
        next release, with a ``FutureWarning``.

    Returns
    -------
    (UNetAE, History)
    """
    from ..models import UNetAE
    from ..objectives import Objective
    from .colour import ChannelSplit, fit_patches, resolve_renamed_training

    max_iter, learning_rate, random_state = resolve_renamed_training(
        "aekit.images.train_segmenter", fit_kwargs, max_iter, learning_rate, random_state,
        (10, 1e-3, 0))
    seed = random_state

    def stack(ims, ms, what):
        if len(ims) != len(ms):
            raise ValueError(f"{what}: {len(ims)} images but {len(ms)} masks")
        out = []
        for i, (im, m) in enumerate(zip(ims, ms)):
            x = as_chw(im, f"{what} images[{i}]")
            if x.shape[0] != 1:
                raise ValueError(f"{what} images[{i}] must be grayscale, got {x.shape[0]} "
                                 "channels")
            mm = np.asarray(m, np.float32)
            mm = mm[0] if mm.ndim == 3 else mm
            if mm.shape != x.shape[1:]:
                raise ValueError(f"{what} masks[{i}] has shape {mm.shape}, the image is "
                                 f"{x.shape[1:]}")
            out.append(np.concatenate([x, (mm > 0.5).astype(np.float32)[None]]))
        return out

    train = stack(images, masks, "train")
    if balance:
        pos = [x for x in train if x[1].any()]
        neg = [x for x in train if not x[1].any()]
        if pos and neg and len(pos) < len(neg):
            train = neg + pos * int(round(len(neg) / len(pos)))
    if not 0.0 <= float(defect_fraction) <= 1.0:
        raise ValueError(f"defect_fraction must be in [0, 1], got {defect_fraction}")
    if defect_fraction > 0 and not any(x[1].any() for x in train):
        raise ValueError(f"defect_fraction={defect_fraction} but no training mask has a defect "
                         "pixel")
    src = ChannelSplit(PatchSource(train, patch_size, n_patches, seed=seed, focus_channel=1,
                                   focus_fraction=float(defect_fraction)), 1)
    vsrc = None
    if val is not None:
        vsrc = ChannelSplit(PatchSource(stack(val[0], val[1], "val"), patch_size,
                                        max(64, n_patches // 8), fresh=False, seed=seed + 1), 1)
    torch.manual_seed(seed)
    m = UNetAE(1, out_channels=1, features=features, depth=depth, skips=skips,
               output="sigmoid")
    loss = _dice_bce_batch if batch_dice else dice_bce
    h = fit_patches(m, Objective(loss), src, vsrc, max_iter=max_iter, batch_size=batch_size,
                    learning_rate=learning_rate, time_budget_s=time_budget_s,
                    random_state=random_state, progress=progress, **fit_kwargs)
    return m, h


def segment(model: nn.Module, image, *, threshold: float | None = 0.5, tile: int = 128,
            overlap: int = 32) -> np.ndarray:
    """Segment a whole grayscale image of any size by tiled inference.

    Returns the mask ``σ(f(x)) ≥ threshold`` (H, W) bool, or the probabilities (H, W) float32
    when ``threshold`` is None.
    """
    from .tiling import predict_tiled

    x = as_chw(image, "image")
    cin = getattr(model, "in_channels", 1)
    if x.shape[0] != cin:
        raise ValueError(f"image has {x.shape[0]} channels, the segmentation model expects "
                         f"{cin} (read it in grayscale, mode 'L')")
    m = getattr(model, "multiple", 1)
    if min(x.shape[1:]) < m:
        raise ValueError(f"image {x.shape[1]}x{x.shape[2]} is smaller than the model's minimum "
                         f"size {m}x{m}")
    p = np.clip(predict_tiled(model, x, tile=tile, overlap=overlap)[0], 0, 1)
    return p if threshold is None else p >= float(threshold)


def otsu_segment(image, *, dark: bool = True) -> np.ndarray:
    """Otsu's global threshold as a segmenter (the classical baseline): pixels darker (or
    brighter, ``dark=False``) than the threshold maximising the between-class variance
    (Otsu 1979, eq. 18), (H, W) bool."""
    from skimage.filters import threshold_otsu

    x = as_chw(image, "image")
    if x.shape[0] != 1:
        raise ValueError(f"image must be grayscale (1 channel), got {x.shape[0]}")
    g = x[0]
    if g.min() == g.max():
        return np.zeros(g.shape, bool)
    t = threshold_otsu(g)
    return g < t if dark else g > t
