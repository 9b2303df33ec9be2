"""Label-free data augmentation for flattened images: ``x' = T(x)`` for input *and* target.

An augmentation is a callable ``augment(x, generator) -> x'`` on a batch ``x`` of shape (n, d)
with ``d = height × width`` (one channel) or ``channels × height × width``. Unlike a
corruption (the encoder sees ``x̃``, the loss compares with the clean ``x``), :func:`aekit.fit`
replaces the batch itself, so the autoencoder learns to reconstruct the transformed image:
the training distribution is enlarged, not the task changed. Every transform is drawn per
sample from the explicit generator, so a run is reproducible and resumable.

References
----------
Simard, Steinkraus & Platt, "Best practices for convolutional neural networks applied to
visual document analysis", ICDAR 2003 (small affine and elastic distortions of MNIST).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["RandomAffine", "RandomShift"]


def _check_shape(shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width) or (channels, height, width) "
                         f"of positive ints, got {shape}")
    return shape


def _as_images(x: torch.Tensor, shape: tuple[int, int, int], name: str) -> torch.Tensor:
    if x.ndim != 2 or x.shape[1] != math.prod(shape):
        raise ValueError(f"{name} expects a batch of shape (n, {math.prod(shape)}) for images "
                         f"{shape}, got {tuple(x.shape)}")
    return x.reshape(x.shape[0], *shape)


class RandomShift:
    """Translate each image by an integer offset drawn uniformly from [−s, s]², zero fill.

    ``x'(i, j) = x(i − δᵢ, j − δⱼ)`` (0 outside the image), with (δᵢ, δⱼ) independent per
    sample. Applied with probability ``p`` per sample (the rest pass unchanged).

    Parameters
    ----------
    image_shape : (H, W) or (C, H, W)
    max_shift : int
        s ≥ 1.
    p : float
        Probability in (0, 1] that a sample is shifted.
    """

    def __init__(self, image_shape, max_shift: int = 1, p: float = 1.0):
        self.shape = _check_shape(image_shape)
        if int(max_shift) != max_shift or max_shift < 1:
            raise ValueError(f"max_shift must be a positive int, got {max_shift!r}")
        if not 0.0 < float(p) <= 1.0:
            raise ValueError(f"p must be in (0, 1], got {p}")
        self.max_shift, self.p = int(max_shift), float(p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        img = _as_images(x, self.shape, "RandomShift")
        n, (_, h, w), s = img.shape[0], self.shape, self.max_shift
        d = torch.randint(-s, s + 1, (n, 2), generator=generator)
        if self.p < 1.0:
            d = d * (torch.rand(n, 1, generator=generator) < self.p)
        pad = F.pad(img, (s, s, s, s))
        # gather rows/columns: output pixel (i, j) reads padded (i + s − δᵢ, j + s − δⱼ)
        ii = (torch.arange(h)[None, :] + s - d[:, :1]).to(x.device)  # (n, h)
        jj = (torch.arange(w)[None, :] + s - d[:, 1:]).to(x.device)  # (n, w)
        c = self.shape[0]
        rows = pad.gather(2, ii[:, None, :, None].expand(n, c, h, w + 2 * s))
        out = rows.gather(3, jj[:, None, None, :].expand(n, c, h, w))
        return out.reshape(n, -1)

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift}, p={self.p})"


class RandomAffine:
    """Small random affine warps with bilinear resampling (zero outside the image).

    Per sample: rotation θ ~ U(−r, r) degrees, isotropic scale s ~ U(1 − σ, 1 + σ), shear
    ~ U(−h, h) and translation t ~ U(−τ, τ) pixels; the output samples the input at
    ``A·p + t`` (p in normalised coordinates, ``F.affine_grid``/``F.grid_sample``).

    Parameters
    ----------
    image_shape : (H, W) or (C, H, W)
    degrees, scale, shear, translate : float
        r in degrees, σ (relative), h (relative), τ in pixels; all ≥ 0.
    """

    def __init__(self, image_shape, degrees: float = 8.0, scale: float = 0.08,
                 shear: float = 0.1, translate: float = 1.0):
        self.shape = _check_shape(image_shape)
        for name, v in (("degrees", degrees), ("scale", scale), ("shear", shear),
                        ("translate", translate)):
            if not (math.isfinite(float(v)) and float(v) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if scale >= 1:
            raise ValueError(f"scale must be < 1, got {scale}")
        self.degrees, self.scale = float(degrees), float(scale)
        self.shear, self.translate = float(shear), float(translate)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        img = _as_images(x, self.shape, "RandomAffine")
        n, (_, h, w) = img.shape[0], self.shape
        u = torch.rand(n, 5, generator=generator, dtype=torch.float64) * 2 - 1  # U(−1, 1)
        th = u[:, 0] * math.radians(self.degrees)
        s = 1 + u[:, 1] * self.scale
        sh = u[:, 2] * self.shear
        cos, sin = torch.cos(th) / s, torch.sin(th) / s
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin + sh * cos
        theta[:, 1, 0], theta[:, 1, 1] = sin, cos + sh * sin
        theta[:, 0, 2] = u[:, 3] * self.translate * 2 / w
        theta[:, 1, 2] = u[:, 4] * self.translate * 2 / h
        grid = F.affine_grid(theta.to(x.dtype).to(x.device), list(img.shape),
                             align_corners=False)
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return out.reshape(n, -1)

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees}, scale={self.scale}, "
                f"shear={self.shear}, translate={self.translate})")
