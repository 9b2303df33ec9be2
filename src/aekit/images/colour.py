"""Colourisation: the L channel in, the ab channels out (CIE Lab), with a U-Net.

Images are float32 (C, H, W) in [0, 1] (sRGB). The model works on the normalised Lab channels
``L/100`` (input, 1 channel) and ``(a, b)/100`` (output, 2 channels, linear); the colour image is
``lab2rgb(L, a, b)`` clipped to [0, 1] (scikit-image's conversions, D65 white point).

References
----------
Zhang, Isola & Efros, "Colorful image colorization", ECCV 2016, section 2 (predicting ab
from L in Lab space; regression to the mean gives desaturated colours, section 2.1);
Hasler & Süsstrunk, "Measuring colourfulness in natural images", SPIE Human Vision and
Electronic Imaging VIII (2003), section 4 (the colourfulness metric).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.batch import Batch
from .io import as_chw
from .patches import PatchSource

__all__ = ["AB_SCALE", "L_SCALE", "ChannelSplit", "colourfulness", "colourise", "fit_patches",
           "lab_to_rgb", "luminance", "rgb_to_lab", "train_colouriser"]

#: Normalisation of the Lab channels: L/100 in [0, 1], a/100 and b/100 in about [-1, 1].
L_SCALE, AB_SCALE = 100.0, 100.0


def _rgb(image, name: str) -> np.ndarray:
    x = as_chw(image, name)
    if x.shape[0] != 3:
        raise ValueError(f"{name} must be an RGB image (3 channels), got {x.shape[0]} channel(s)")
    return x


def rgb_to_lab(image) -> np.ndarray:
    """sRGB (3, H, W) in [0, 1] -> normalised Lab (3, H, W): ``(L/100, a/100, b/100)``.

    ``skimage.color.rgb2lab`` (sRGB → linear RGB → XYZ (D65) → CIE L*a*b*; CIE 15:2004,
    section 8.2.1).
    """
    from skimage.color import rgb2lab

    x = _rgb(image, "image")
    lab = rgb2lab(np.clip(x, 0, 1).transpose(1, 2, 0).astype(np.float64)).transpose(2, 0, 1)
    return (lab / np.array([L_SCALE, AB_SCALE, AB_SCALE])[:, None, None]).astype(np.float32)


def lab_to_rgb(lab) -> np.ndarray:
    """Normalised Lab (3, H, W) -> sRGB (3, H, W) in [0, 1] (``skimage.color.lab2rgb``,
    out-of-gamut values clipped)."""
    from skimage.color import lab2rgb

    a = as_chw(lab, "lab", any_channels=True)
    if a.shape[0] != 3:
        raise ValueError(f"lab must have 3 channels (L, a, b), got {a.shape[0]}")
    lab_ = a.astype(np.float64) * np.array([L_SCALE, AB_SCALE, AB_SCALE])[:, None, None]
    return np.clip(lab2rgb(lab_.transpose(1, 2, 0)), 0, 1).transpose(2, 0, 1).astype(np.float32)


def luminance(image) -> np.ndarray:
    """The normalised lightness ``L/100`` (1, H, W) of an image: of its Lab conversion when
    RGB; a grayscale image g is taken as the neutral colour (g, g, g)."""
    x = as_chw(image, "image")
    if x.shape[0] == 1:
        x = np.repeat(x, 3, 0)
    return rgb_to_lab(x)[:1]


def colourfulness(image) -> float:
    """Colourfulness of Hasler & Süsstrunk (2003), section 4, eq. (2), in their units (0–255).

    With ``rg = R − G`` and ``yb = (R + G)/2 − B`` over the pixels (R, G, B in 0..255):
    ``M = sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²)`` (population standard deviations).
    0 for any gray image; about 59 is "extremely colourful" in their scale.
    """
    x = _rgb(image, "image").astype(np.float64) * 255.0
    rg = x[0] - x[1]
    yb = 0.5 * (x[0] + x[1]) - x[2]
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2)
                 + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


class ChannelSplit:
    """A data source of ``Batch(x=patch[:, :k], y=patch[:, k:])`` from a patch source over
    stacked (input, target) channels — both cropped, flipped and rotated together.

    Used for L → ab (k = 1 on Lab images) and image → mask (k = 1 on [image, mask]).
    """

    def __init__(self, source: PatchSource, k: int):
        if not 0 < int(k) < source.channels:
            raise ValueError(f"k must be in 1..{source.channels - 1}, got {k}")
        self.source, self.k = source, int(k)

    def __len__(self) -> int:
        return len(self.source)

    def take(self, idx) -> Batch:
        b = self.source.take(idx)
        return Batch(b.x[:, :self.k].contiguous(), y=b.x[:, self.k:].contiguous())

    def state_dict(self) -> dict:
        return self.source.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.source.load_state_dict(state)


def resolve_renamed_training(where: str, fit_kwargs: dict, max_iter: int,
                             learning_rate: float, random_state: int,
                             defaults: tuple[int, float, int]) -> tuple[int, float, int]:
    """``(max_iter, learning_rate, random_state)`` with the old keywords ``epochs``, ``lr``,
    ``seed`` (popped from ``fit_kwargs``) mapped onto them with a FutureWarning (issue 16)."""
    old = {k: fit_kwargs.pop(k) for k in ("epochs", "lr", "seed") if k in fit_kwargs}
    if not old:
        return max_iter, learning_rate, random_state
    from ..schema import pop_renamed

    names = ("max_iter", "learning_rate", "random_state")
    v = pop_renamed(where, old, dict(zip(names, (max_iter, learning_rate, random_state))),
                    dict(zip(names, defaults)))
    return v["max_iter"], v["learning_rate"], v["random_state"]


def train_colouriser(images: Sequence, *, features: int = 16, depth: int = 3,
                     patch_size: int = 64, n_patches: int = 2048, max_iter: int = 10,
                     batch_size: int = 16, learning_rate: float = 1e-3,
                     val_images: Sequence | None = None, time_budget_s: float | None = None,
                     random_state: int = 0, progress: bool | None = None, **fit_kwargs):
    """A U-Net mapping ``L/100`` (1 channel) to ``(a, b)/100`` (2 channels), trained on photo
    patches.

    ``min_θ E ‖f_θ(L) − ab‖²`` over random ``patch_size``² patches (flips / rotations) of the
    Lab-converted RGB ``images``; Adam, cosine schedule; with ``val_images`` the best epoch on
    fixed validation patches is kept (Zhang et al. 2016, section 2, with the plain L2 loss of
    their regression baseline). ``max_iter`` epochs of ``n_patches`` patches, Adam step
    ``learning_rate``, seed ``random_state``.
    The old keywords ``epochs``, ``lr``, ``seed`` still work until the
    next release, with a ``FutureWarning``.

    Returns
    -------
    (UNetAE, History)
    """
    from ..models import UNetAE
    from ..objectives import Objective

    max_iter, learning_rate, random_state = resolve_renamed_training(
        "aekit.images.train_colouriser", fit_kwargs, max_iter, learning_rate, random_state,
        (10, 1e-3, 0))
    seed = random_state
    labs = [rgb_to_lab(_rgb(im, f"images[{i}]")) for i, im in enumerate(images)]
    if not labs:
        raise ValueError("images is empty")
    src = ChannelSplit(PatchSource(labs, patch_size, n_patches, seed=seed), 1)
    val = None
    if val_images:
        vl = [rgb_to_lab(_rgb(im, f"val_images[{i}]")) for i, im in enumerate(val_images)]
        val = ChannelSplit(PatchSource(vl, patch_size, max(64, n_patches // 8), fresh=False,
                                       seed=seed + 1), 1)
    torch.manual_seed(seed)
    m = UNetAE(1, out_channels=2, features=features, depth=depth, output="linear")
    h = fit_patches(m, Objective("mse"), src, val, max_iter=max_iter, batch_size=batch_size,
                    learning_rate=learning_rate, time_budget_s=time_budget_s,
                    random_state=random_state, progress=progress, **fit_kwargs)
    return m, h


def fit_patches(model: nn.Module, objective, source, val=None, *, max_iter: int = 10,
                batch_size: int = 16, learning_rate: float = 1e-3,
                time_budget_s: float | None = None, random_state: int = 0,
                progress: bool | None = None, **fit_kwargs):
    """:func:`aekit.fit` on a patch source: Adam (step ``learning_rate``), cosine schedule,
    ``max_iter`` passes of the source's patches, the best validation epoch kept, an optional
    wall-clock budget (:class:`aekit.train.callbacks.TimeBudget`); the model is left in eval
    mode. The old keywords ``epochs``, ``lr``, ``seed`` still work until the
    next release, with a ``FutureWarning``.

    Returns
    -------
    History
    """
    from ..train import fit
    from ..train.callbacks import TimeBudget

    max_iter, learning_rate, random_state = resolve_renamed_training(
        "aekit.images.colour.fit_patches", fit_kwargs, max_iter, learning_rate, random_state,
        (10, 1e-3, 0))
    cbs = list(fit_kwargs.pop("callbacks", ()))
    if time_budget_s is not None:
        cbs.append(TimeBudget(time_budget_s))
    h = fit(model, objective, source, val=val, max_iter=max_iter, batch_size=batch_size,
            learning_rate=learning_rate, schedule=fit_kwargs.pop("schedule", "cosine"),
            random_state=random_state, callbacks=cbs, progress=progress, **fit_kwargs)
    model.eval()
    return h


def colourise(model: nn.Module, image, *, tile: int = 128, overlap: int = 32) -> np.ndarray:
    """Colourise a grayscale image (or recolour the lightness of an RGB one).

    ``L = luminance(image)``; ``ab = f(L)`` by tiled inference; returns
    ``lab2rgb(L, ab)`` (3, H, W) in [0, 1]. The lightness of the input is kept exactly (up to
    gamut clipping).

    Parameters
    ----------
    model : UNetAE with 1 input and 2 output channels (from :func:`train_colouriser`)
    image : array (H, W), (1, H, W) or (3, H, W) / (H, W, 3), values in [0, 1]
    """
    from .tiling import predict_tiled

    cin, cout = getattr(model, "in_channels", 1), getattr(model, "out_channels", 2)
    if cin != 1 or cout != 2:
        raise ValueError(f"model must map 1 channel (L) to 2 (ab), got {cin} -> {cout}")
    L = luminance(image)
    m = getattr(model, "multiple", 1)
    if min(L.shape[1:]) < m:
        raise ValueError(f"image {L.shape[1]}x{L.shape[2]} is smaller than the model's minimum "
                         f"size {m}x{m}")
    ab = predict_tiled(model, L, tile=tile, overlap=overlap)
    return lab_to_rgb(np.concatenate([L, ab]))
