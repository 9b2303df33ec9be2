"""Image damage made on the fly: ``damage(x, generator) -> x̃`` on batches (n, C, H, W).

Each damage is a callable usable as :func:`aekit.fit`'s ``corruption`` or as a
:class:`~aekit.images.PatchSource`'s ``damage``; :meth:`Damage.with_mask` also returns the
damaged-pixel mask (n, 1, H, W) (1 = damaged) for inpainting. Values stay in the data's range
except for Gaussian noise, which is not clipped (the usual AWGN protocol).

References
----------
Vincent et al., "Stacked denoising autoencoders", JMLR 2010, section 4.3 (masking,
Gaussian, salt-and-pepper noise); Xie, Xu & Chen, "Image denoising and inpainting with deep
neural networks", NeurIPS 2012, section 4 (text overlays); Pathak et al., "Context encoders",
CVPR 2016, section 3.3 (missing blocks).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["DAMAGES", "Blocks", "Damage", "GaussianNoise", "NoiseLevelMap", "PixelMask",
           "SaltPepperNoise", "TextOverlay", "make_damage"]


def check_image_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"damage expects images (n, C, H, W), got shape {tuple(x.shape)}")


def uniform_noise(shape, g, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=g, dtype=dtype)


class Damage:
    """Base class: ``__call__(x, g) = with_mask(x, g)[0]``."""

    name = "damage"

    def with_mask(self, x: torch.Tensor, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        return self.with_mask(x, generator)[0]


class GaussianNoise(Damage):
    """``x̃ = x + σ ε``, ε ~ N(0, I); σ fixed, or drawn per image uniformly in [σ_lo, σ_hi]
    (a blind denoiser, as DnCNN-B of Zhang et al. 2017, section IV-A).

    Parameters
    ----------
    sigma : float or (float, float)
    clip : bool
        Clip x̃ to [0, 1] (off by default, the AWGN benchmark protocol).
    """

    name = "gaussian"

    def __init__(self, sigma: float | tuple[float, float] = 0.1, clip: bool = False):
        lo, hi = (sigma, sigma) if np.isscalar(sigma) else tuple(sigma)
        if not 0 <= lo <= hi:
            raise ValueError(f"sigma must be >= 0 (or a range lo <= hi), got {sigma}")
        self.lo, self.hi, self.clip = float(lo), float(hi), bool(clip)

    def with_sigma(self, x: torch.Tensor, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x̃, σ)``: the noisy batch (n, C, H, W) and the σ of each image (n, 1, 1, 1)."""
        check_image_batch(x)
        s = self.lo + (self.hi - self.lo) * uniform_noise((x.shape[0], 1, 1, 1), generator, x.dtype)
        y = x + s * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        if self.clip:
            y = y.clamp(0, 1)
        return y, s

    def with_mask(self, x, generator=None):
        return self.with_sigma(x, generator)[0], torch.ones_like(x[:, :1])

    def __repr__(self):
        return f"GaussianNoise({self.lo}, {self.hi})" if self.lo != self.hi else \
            f"GaussianNoise({self.lo})"


class NoiseLevelMap(Damage):
    """Gaussian noise plus the map of its level as an extra input channel:
    ``x̃' = [x + σε, σ·1]`` (n, C + 1, H, W), σ drawn per image as by ``noise``; the mask is
    all ones. Training pairs for a non-blind denoiser that is told σ (FFDNet, Zhang, Zuo &
    Zhang, "FFDNet: toward a fast and flexible solution for CNN-based image denoising", IEEE
    TIP 27(9), 2018, section III-A), e.g. ``UNetAE(C + 1, out_channels=C, residual=True,
    noise_map=True)``.

    Parameters
    ----------
    noise : GaussianNoise
    """

    name = "gaussian_map"

    def __init__(self, noise: GaussianNoise):
        if not isinstance(noise, GaussianNoise):
            raise TypeError(f"noise must be a GaussianNoise, got {type(noise).__name__}")
        self.noise = noise

    def with_mask(self, x, generator=None):
        y, s = self.noise.with_sigma(x, generator)
        return torch.cat([y, s.expand(-1, 1, *x.shape[2:])], 1), torch.ones_like(x[:, :1])

    def __repr__(self):
        return f"NoiseLevelMap({self.noise!r})"


class SaltPepperNoise(Damage):
    """Each pixel (all channels together) is, with probability p, set to 0 or 1 (fair coin)."""

    name = "salt_pepper"

    def __init__(self, p: float = 0.1):
        if not 0 <= p < 1:
            raise ValueError(f"p must be in [0, 1), got {p}")
        self.p = float(p)

    def with_mask(self, x, generator=None):
        check_image_batch(x)
        n, _, H, W = x.shape
        hit = uniform_noise((n, 1, H, W), generator) < self.p
        salt = (uniform_noise((n, 1, H, W), generator) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x), hit.to(x.dtype)


class PixelMask(Damage):
    """Masking noise: each pixel (all channels) is set to ``fill`` with probability ν."""

    name = "masking"

    def __init__(self, nu: float = 0.25, fill: float = 0.0):
        if not 0 <= nu < 1:
            raise ValueError(f"nu must be in [0, 1), got {nu}")
        self.nu, self.fill = float(nu), float(fill)

    def with_mask(self, x, generator=None):
        check_image_batch(x)
        n, _, H, W = x.shape
        hit = uniform_noise((n, 1, H, W), generator) < self.nu
        return torch.where(hit, torch.full_like(x, self.fill), x), hit.to(x.dtype)


class Blocks(Damage):
    """``count`` missing square blocks of side ``size`` (a fraction of the short side when < 1)
    at random positions, filled with ``fill``."""

    name = "blocks"

    def __init__(self, count: int = 1, size: float = 0.25, fill: float = 0.0):
        if int(count) < 1 or not size > 0:
            raise ValueError(f"count must be >= 1 and size > 0, got {count}, {size}")
        self.count, self.size, self.fill = int(count), float(size), float(fill)

    def with_mask(self, x, generator=None):
        check_image_batch(x)
        n, _, H, W = x.shape
        side = int(round(self.size * min(H, W))) if self.size < 1 else int(self.size)
        side = max(1, min(side, H, W))
        mask = torch.zeros(n, 1, H, W, dtype=x.dtype)
        ys = (uniform_noise((n, self.count), generator) * (H - side + 1)).long()
        xs = (uniform_noise((n, self.count), generator) * (W - side + 1)).long()
        for i in range(n):
            for j in range(self.count):
                mask[i, 0, ys[i, j]:ys[i, j] + side, xs[i, j]:xs[i, j] + side] = 1
        return torch.where(mask > 0, torch.full_like(x, self.fill), x), mask


_WORDS = ("SAMPLE", "© aekit", "DRAFT", "PROOF", "2026", "watermark", "STOCK", "COPY",
          "confidential", "preview", "photo", "#1234")


class TextOverlay(Damage):
    """Watermark / caption text rendered with Pillow at random positions, sizes, opacities.

    Each image gets ``lines`` strings drawn from a word list, font size a random fraction in
    ``size`` of the image height, colour white or black (or random grey), opacity α in
    ``opacity``: ``x̃ = (1 − α m) x + α m c`` with ``m`` the rendered glyph coverage. The
    mask is ``m > 0``.
    """

    name = "text"

    def __init__(self, lines: int = 2, size: tuple[float, float] = (0.08, 0.2),
                 opacity: tuple[float, float] = (0.5, 1.0)):
        if int(lines) < 1 or not 0 < size[0] <= size[1] or not 0 < opacity[0] <= opacity[1] <= 1:
            raise ValueError(f"need lines >= 1, 0 < size lo <= hi, 0 < opacity lo <= hi <= 1; "
                             f"got {lines}, {size}, {opacity}")
        self.lines, self.size, self.opacity = int(lines), tuple(size), tuple(opacity)

    @staticmethod
    def _font(px: int):
        from PIL import ImageFont
        try:
            return ImageFont.load_default(size=px)
        except TypeError:  # Pillow < 10.1: a fixed bitmap font
            return ImageFont.load_default()

    def with_mask(self, x, generator=None):
        from PIL import Image, ImageDraw

        check_image_batch(x)
        n, _, H, W = x.shape
        out, masks = x.clone(), torch.zeros(n, 1, H, W, dtype=x.dtype)
        u = uniform_noise((n, self.lines, 7), generator).numpy()
        for i in range(n):
            alpha = np.zeros((H, W), np.float32)
            colour = np.zeros((H, W), np.float32)
            for j in range(self.lines):
                r = u[i, j]
                px = max(6, int(H * (self.size[0] + (self.size[1] - self.size[0]) * r[0])))
                word = _WORDS[int(r[1] * len(_WORDS)) % len(_WORDS)]
                layer = Image.new("L", (W, H), 0)
                ImageDraw.Draw(layer).text((int(r[2] * W * 0.8) - W // 10,
                                            int(r[3] * (H - px))), word, fill=255,
                                           font=self._font(px))
                m = np.asarray(layer, np.float32) / 255.0
                a = self.opacity[0] + (self.opacity[1] - self.opacity[0]) * r[4]
                c = 1.0 if r[5] < 0.45 else (0.0 if r[5] < 0.9 else float(r[6]))
                alpha = np.maximum(alpha, a * m)
                colour = np.where(m > 0, c, colour)
            al = torch.from_numpy(alpha)[None]
            out[i] = (1 - al) * x[i] + al * torch.from_numpy(colour)[None]
            masks[i, 0] = torch.from_numpy((alpha > 0).astype(np.float32))
        return out, masks


#: Damages by name.
DAMAGES = {"gaussian": GaussianNoise, "salt_pepper": SaltPepperNoise, "masking": PixelMask,
           "blocks": Blocks, "text": TextOverlay}


def make_damage(name: str, level: float | None = None) -> Damage:
    """A damage by name: ``gaussian`` (σ), ``salt_pepper`` (p), ``masking`` (ν), ``blocks``
    (block side as a fraction), ``text`` (opacity upper bound)."""
    if name not in DAMAGES:
        raise ValueError(f"unknown damage {name!r}; expected one of: {', '.join(DAMAGES)}")
    cls = DAMAGES[name]
    if level is None:
        return cls()
    if name == "text":
        return TextOverlay(opacity=(min(0.5, float(level)), float(level)))
    return cls(float(level))
