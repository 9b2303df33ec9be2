"""Fully convolutional image-to-image models: :class:`UNetAE` and the residual :class:`DnCNN`.

Both take images of any size ``(n, C, H, W)`` (and, when built with an ``image_shape``, flat
rows ``(n, C·H·W)`` like every other model in :data:`aekit.models.MODELS`), so they train with
:func:`aekit.fit` on patches and run on whole photos through
:func:`aekit.images.predict_tiled`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import activation as make_activation
from .base import OUTPUTS, AEOutput, Autoencoder

__all__ = ["FILLS", "DnCNN", "UNetAE", "diffusion_fill"]

#: Hole fills a mask-aware :class:`UNetAE` can start from (``fill=``).
FILLS = ("none", "diffusion")


def _shape(image_shape: Sequence[int] | None, channels: int) -> list[int] | None:
    if image_shape is None:
        return None
    s = [int(v) for v in image_shape]
    if len(s) == 2:
        s = [channels, *s]
    if len(s) != 3 or min(s) < 1:
        raise ValueError(f"image_shape must be (C, H, W) or (H, W), got {image_shape}")
    if s[0] != channels:
        raise ValueError(f"image_shape {s} has {s[0]} channels, in_channels is {channels}")
    return s


class _Images:
    """Flat (n, C·H·W) <-> (n, C, H, W) handling shared by the image models."""

    image_shape: list[int] | None
    in_channels: int

    def _as_images(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if x.ndim == 4:
            if x.shape[1] != self.in_channels:
                raise ValueError(f"{type(self).__name__} expects {self.in_channels} channel(s), "
                                 f"got an input of shape {tuple(x.shape)}")
            return x, False
        if x.ndim == 2 and self.image_shape is not None and x.shape[1] == self.n_features:
            return x.reshape(x.shape[0], *self.image_shape), True  # (n, C*H*W) -> (n, C, H, W)
        want = (f"(n, {self.in_channels}, H, W)" + (f" or (n, {self.n_features})"
                                                    if self.image_shape is not None else ""))
        raise ValueError(f"input must be {want}, got {tuple(x.shape)}")


def _avg4(u: torch.Tensor) -> torch.Tensor:
    """Mean of the four axial neighbours (replicate padding at the border)."""
    p = F.pad(u, (1, 1, 1, 1), mode="replicate")
    return 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])


@torch.no_grad()
def diffusion_fill(y: torch.Tensor, mask: torch.Tensor, iterations: int = 16) -> torch.Tensor:
    """Fill the holes of ``y`` smoothly from the known pixels around them.

    A pull–push pyramid (Gortler, Grzeszczuk, Szeliski & Cohen, "The Lumigraph", SIGGRAPH
    1996, section 3.3) gives every hole pixel a weighted mean of the known pixels at the
    coarsest scale that has any, then ``iterations`` Jacobi sweeps of the Laplace equation
    ``Δu = 0`` in the holes (``u ← mean of the 4 neighbours``), with the known pixels as
    Dirichlet data, run at every level from coarse to fine (a cascadic multigrid), so the
    fill approaches the harmonic interpolant, a close relative of scikit-image's biharmonic
    inpainting.

    Pull (fine → coarse), with known weights ``w_0 = 1 − m``: ``W_{l+1} = pool(w_l)``,
    ``V_{l+1} = pool(w_l v_l) / W_{l+1}`` (2×2 means), ``w_{l+1} = min(1, 4 W_{l+1})``.
    Push (coarse → fine): ``u_l = w_l v_l + (1 − w_l) up(u_{l+1})`` (nearest up-sampling),
    then the Jacobi sweeps on the pixels with ``w_l < 1``. Known pixels (``m = 0``) are
    returned exactly.

    Parameters
    ----------
    y : tensor (n, C, H, W)
        Image values; those under the mask are ignored.
    mask : tensor (n, 1, H, W) or (n, C, H, W)
        1 (or > 0.5) where a pixel is missing.
    iterations : int
        Jacobi sweeps per level.

    Returns the filled image (n, C, H, W). An image with no known pixel at all is filled with
    zeros.
    """
    if y.ndim != 4 or mask.ndim != 4 or mask.shape[0] != y.shape[0] \
            or mask.shape[-2:] != y.shape[-2:] or mask.shape[1] not in (1, y.shape[1]):
        raise ValueError(f"y must be (n, C, H, W) and mask (n, 1 or C, H, W) of the same n, H, "
                         f"W; got {tuple(y.shape)} and {tuple(mask.shape)}")
    orig = y
    if y.dtype not in (torch.float32, torch.float64):
        y = y.float()
    w = (mask <= 0.5).to(y.dtype).expand_as(y)
    vals, weights = [y * w], [w]
    while min(vals[-1].shape[-2:]) > 1:
        v, ww = vals[-1], weights[-1]
        H, W = v.shape[-2:]
        if H % 2 or W % 2:  # pad odd sides with zero weight
            v = F.pad(v, (0, W % 2, 0, H % 2))
            ww = F.pad(ww, (0, W % 2, 0, H % 2))
        num = F.avg_pool2d(v * ww, 2)
        den = F.avg_pool2d(ww, 2)
        vals.append(torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num)))
        weights.append((4 * den).clamp(max=1.0))
    u = vals[-1]
    for level in range(len(vals) - 1, -1, -1):
        v, ww = vals[level], weights[level]
        if level < len(vals) - 1:
            up = F.interpolate(u, scale_factor=2, mode="nearest")[..., :v.shape[-2], :v.shape[-1]]
            u = ww * v + (1 - ww) * up
        hole = ww < 1
        if bool(hole.any()) and min(v.shape[-2:]) > 1:
            for _ in range(int(iterations)):
                u = torch.where(hole, ww * v + (1 - ww) * _avg4(u), u)
    return torch.where(w > 0, orig, u.to(orig.dtype))


def _block(cin: int, cout: int, k: int, n: int, bn: bool, act: str) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(n):
        mods.append(nn.Conv2d(cin if i == 0 else cout, cout, k, padding=k // 2, bias=not bn))
        if bn:
            mods.append(nn.BatchNorm2d(cout))
        mods.append(make_activation(act))
    return nn.Sequential(*mods)


class UNetAE(_Images, Autoencoder):
    """U-Net encoder–decoder with switchable skip connections and an optional noise residual.

    Encoder level ``l = 0..L−1``: ``e_l = B_l(p_{l−1})``, ``p_l = MaxPool_2(e_l)`` with
    ``B`` = ``convs`` × (Conv k×k → BN → σ), ``f·2^l`` channels; bottleneck
    ``h = B_L(p_{L−1})`` (``f·2^L`` channels, the code). Decoder level ``l = L−1..0``:
    ``d_l = B'_l([ConvT_{2×2, stride 2}(d_{l+1}), e_l])`` — the concatenation with ``e_l`` is
    the skip connection, dropped when ``skips=False`` (then the model is a plain
    convolutional autoencoder whose information passes through the bottleneck only).
    Output ``s = Conv_{1×1}(d_0)``; ``x̂ = out(s)``, or with ``residual=True`` ``x̂ = x − s``
    (the net predicts the noise, as DnCNN).

    Any H × W is accepted: the input is reflect-padded up to a multiple of ``2^L`` and the
    output cropped back, so ``forward`` keeps the input's size.

    Parameters
    ----------
    in_channels : int
        C of the input.
    out_channels : int, optional
        Channels of the output (default ``in_channels``; e.g. 1 for a mask, 2 for ab).
    features : int
        f, channels of the first level (doubled at each level).
    depth : int
        L, the number of 2× down-samplings (0: no pooling, a plain conv stack).
    skips : bool
        Concatenate encoder features into the decoder (Ronneberger et al.).
    residual : bool
        ``x̂ = x − s`` (needs ``out_channels == in_channels`` and ``output="linear"``).
    convs : int
        Convolutions per block.
    kernel_size : int
        Odd kernel size.
    batch_norm : bool
    activation : str
        See :data:`aekit.layers.ACTIVATIONS`.
    output : {"linear", "sigmoid"}
    image_shape : sequence of int, optional
        ``(C, H, W)``: the nominal size, which lets the model take flat rows (n, C·H·W) and
        defines ``n_features`` / ``n_components`` (the flattened bottleneck size); without it
        ``n_features`` is None and inputs are (n, C, H, W) of any size.
    fill : {"none", "diffusion"}
        Inpainting with the mask given: the input is ``[x̃, m]`` (``in_channels = C + 1``, the
        last channel the mask, 1 = missing). With ``"diffusion"`` the holes are first filled by
        :func:`diffusion_fill`, the net sees ``[f, m]`` with ``f = fill(x̃, m)`` and predicts a
        correction ``s`` (its last layer starts at zero, so training starts from the fill),
        and the known pixels are kept: ``x̂ = m ⊙ (f + s) + (1 − m) ⊙ x̃``. The loss then only
        sees the missing pixels (as the partial-convolution and gated-convolution inpainters,
        Liu et al. 2018, Yu et al. 2019, whose outputs are composited the same way).
    noise_map : bool
        Non-blind denoising: the input is ``[x̃, σ·1]`` (``in_channels = C + 1``, the last
        channel a map of the noise level σ, constant for white Gaussian noise), so one net serves
        every σ it was trained on while being told the level, as BM3D is (FFDNet, Zhang, Zuo &
        Zhang 2018, section III-A). With ``residual=True``, ``x̂ = x̃ − s``: the noise is
        subtracted from the image channels only. :func:`aekit.images.denoise` builds the map
        from a given or estimated σ; :class:`aekit.images.NoiseLevelMap` makes training pairs.

    Shapes: ``x`` (n, C, H, W) -> code (n, f·2^L, ⌈H/2^L⌉, ⌈W/2^L⌉) and reconstruction
    (n, C_out, H, W); flat rows give a flat code (n, k) and flat reconstruction.

    References
    ----------
    Ronneberger, Fischer & Brox, "U-Net: convolutional networks for biomedical image
    segmentation", MICCAI 2015, section 2; Zhang, Zuo, Chen, Meng & Zhang, "Beyond a Gaussian
    denoiser: residual learning of deep CNN for image denoising", IEEE TIP 2017, section III-B
    (residual learning).
    """

    name = "unet"

    def __init__(self, in_channels: int = 1, out_channels: int | None = None, features: int = 32,
                 depth: int = 3, skips: bool = True, residual: bool = False, convs: int = 2,
                 kernel_size: int = 3, batch_norm: bool = True, activation: str = "relu",
                 output: str = "linear", image_shape: Sequence[int] | None = None,
                 fill: str = "none", noise_map: bool = False):
        super().__init__()
        cin = int(in_channels)
        cout = cin if out_channels is None else int(out_channels)
        if cin < 1 or cout < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {cin}, {cout}")
        if int(features) < 1:
            raise ValueError(f"features must be >= 1, got {features}")
        if not 0 <= int(depth) <= 8:
            raise ValueError(f"depth must be in 0..8, got {depth}")
        if int(convs) < 1:
            raise ValueError(f"convs must be >= 1, got {convs}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if noise_map and (cin != cout + 1 or fill != "none"):
            raise ValueError("noise_map=True reads the last input channel as the noise-level "
                             "map: it needs in_channels == out_channels + 1 and fill='none' "
                             f"(got in_channels={cin}, out_channels={cout}, fill={fill!r})")
        if residual and (cout != cin - bool(noise_map) or output != "linear"):
            want = "in_channels − 1 (noise_map=True)" if noise_map else "in_channels"
            raise ValueError(f"residual=True predicts the noise x − x̂: it needs out_channels == "
                             f"{want} and output='linear' (got {cout}, {cin}, {output!r})")
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        if fill != "none" and (cin != cout + 1 or residual or output != "linear"):
            raise ValueError(f"fill={fill!r} reads the last input channel as the damage mask: "
                             "it needs in_channels == out_channels + 1, residual=False and "
                             f"output='linear' (got {cin}, {cout}, {residual}, {output!r})")
        make_activation(activation)
        self.fill, self.noise_map = fill, bool(noise_map)
        self.in_channels, self.out_channels = cin, cout
        self.features, self.depth, self.skips = int(features), int(depth), bool(skips)
        self.residual, self.convs, self.kernel_size = bool(residual), int(convs), int(kernel_size)
        self.batch_norm, self.activation, self.output = bool(batch_norm), activation, output
        self.image_shape = _shape(image_shape, cin)
        f, L, k = self.features, self.depth, self.kernel_size
        widths = [f * 2 ** level for level in range(L + 1)]
        self.down = nn.ModuleList(_block(cin if i == 0 else widths[i - 1], widths[i], k, convs,
                                         batch_norm, activation) for i in range(L))
        self.bottleneck = _block(cin if L == 0 else widths[L - 1], widths[L], k, convs,
                                 batch_norm, activation)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(L)))
        self.dec = nn.ModuleList(_block(widths[i] * (2 if skips else 1), widths[i], k, convs,
                                        batch_norm, activation) for i in reversed(range(L)))
        self.head = nn.Conv2d(widths[0], cout, 1)
        if fill != "none":  # start exactly at the fill: the net learns a correction to it
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.multiple = 2 ** L
        if self.image_shape is not None:
            c, h, w = self.image_shape
            m = self.multiple
            self.n_features = c * h * w
            self.n_components = widths[L] * (-(-h // m)) * (-(-w // m))
        else:
            self.n_features = None  # type: ignore[assignment]
            self.n_components = widths[L]

    @property
    def decodes_from_code(self) -> bool:
        """Whether :meth:`decode` works from the code alone (no skips, residual or fill)."""
        return not (self.skips or self.residual or self.fill != "none")

    # --- helpers ---------------------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        H, W = x.shape[-2:]
        m = self.multiple
        if min(H, W) < m:
            raise ValueError(f"image {H}x{W} is smaller than this U-Net's minimum size {m}x{m} "
                             f"(2^depth, depth={self.depth})")
        ph, pw = (-H) % m, (-W) % m
        if ph or pw:  # reflect needs pad < size, which min(H, W) >= m > pad guarantees
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        return x, (H, W)

    def _filled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """With ``fill``: the net's input ``[fill(x̃, m), m]`` and the fill; else ``(x, None)``."""
        if self.fill == "none":
            return x, None
        c = self.out_channels
        m = (x[:, c:] > 0.5).to(x.dtype)
        f0 = diffusion_fill(x[:, :c], m)
        return torch.cat([f0, m], 1), f0

    def _encode_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips, h = [], x
        for blk in self.down:
            e = blk(h)
            skips.append(e)
            h = F.max_pool2d(e, 2)
        return self.bottleneck(h), skips

    def _decode_maps(self, h: torch.Tensor, skips: list[torch.Tensor] | None) -> torch.Tensor:
        for i, (up, blk) in enumerate(zip(self.up, self.dec)):
            h = up(h)
            if self.skips:
                h = torch.cat([h, skips[len(skips) - 1 - i]], 1)
            h = blk(h)
        return self.head(h)

    # --- the Autoencoder interface ---------------------------------------------------------
    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Bottleneck features: (n, C, H, W) -> (n, f·2^L, h, w); flat rows -> (n, k)."""
        img, flat = self._as_images(x)
        h, _ = self._encode_maps(self._pad(self._filled(img)[0])[0])
        code = h.flatten(1) if flat else h
        return code, (code if flat else h.flatten(1),)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder from the bottleneck alone (only without skips and residual)."""
        if not self.decodes_from_code:
            raise ValueError("a U-Net with skips=True, residual=True or a fill cannot decode "
                             "from the code alone (the decoder needs the encoder's features / "
                             "the input); call the model on the input instead")
        flat = h.ndim == 2
        if flat:
            if self.image_shape is None:
                raise ValueError("a flat code needs a model built with image_shape")
            _, H, W = self.image_shape
            m = self.multiple
            h = h.reshape(h.shape[0], self.features * m, -(-H // m), -(-W // m))
        s = self._decode_maps(h, None)
        if flat:
            s = s[..., :self.image_shape[1], :self.image_shape[2]].flatten(1)
        return s

    def forward(self, x: torch.Tensor) -> AEOutput:
        img, flat = self._as_images(x)
        net_in, f0 = self._filled(img)
        padded, (H, W) = self._pad(net_in)
        h, skips = self._encode_maps(padded)
        s = self._decode_maps(h, skips)[..., :H, :W]
        if f0 is not None:  # correct the fill inside the holes, keep the known pixels
            c = self.out_channels
            m = (img[:, c:] > 0.5).to(s.dtype)
            logits = m * (f0 + s) + (1 - m) * img[:, :c]
        elif self.residual:
            logits = img[:, :self.out_channels] - s
        else:
            logits = s
        rec = self._squash(logits)
        if flat:
            return AEOutput(h.flatten(1), rec.flatten(1), logits.flatten(1), (h.flatten(1),))
        return AEOutput(h, rec, logits, (h.flatten(1),))

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``UNetAE(C, features=hidden[0], depth=len(hidden), image_shape=...)``; needs image
        data (``code_size`` is implied by the bottleneck and ignored)."""
        if image_shape is None:
            raise ValueError("model.name='unet' needs image data (digits, mnist, or a .npy of "
                             "shape (n, H, W)); this dataset has flat features")
        shape = [int(s) for s in image_shape]
        shape = [1, *shape] if len(shape) == 2 else shape
        hidden = list(hidden) or [32, 64, 128]
        return cls(shape[0], features=int(hidden[0]), depth=len(hidden) - 1 or 1,
                   image_shape=shape, **cls._pick(options, "activation", "output",
                                                  "batch_norm"))

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "features": self.features, "depth": self.depth, "skips": self.skips,
                "residual": self.residual, "convs": self.convs, "kernel_size": self.kernel_size,
                "batch_norm": self.batch_norm, "activation": self.activation,
                "output": self.output, "image_shape": self.image_shape, "fill": self.fill,
                "noise_map": self.noise_map}


class DnCNN(_Images, Autoencoder):
    """DnCNN: a plain stack of 3×3 convolutions that predicts the noise, ``x̂ = x − R(x)``.

    ``R = Conv → [Conv → BN → ReLU] × (D − 2) → Conv`` (first with ReLU, no BN; last linear),
    all at full resolution with ``features`` channels, so the receptive field is
    ``(2D + 1) × (2D + 1)`` pixels. Trained with MSE against the clean image, it learns the
    residual ``x̃ − x`` (Zhang et al. 2017, eq. 1: ``ℓ = ½‖R(x̃) − (x̃ − x)‖²``, the same as
    ``½‖x̃ − R(x̃) − x‖²``).

    With ``downscale = s > 1`` the stack runs on the ``s × s`` pixel-unshuffled image, as
    FFDNet (Zhang, Zuo & Zhang 2018, section III-A):
    ``x̂ = x − PixelShuffle_s(R(PixelUnshuffle_s(x)))``, where ``PixelUnshuffle_s`` maps
    (C, H, W) to (s²C, H/s, W/s) without loss (each output channel is one of the s² sub-images)
    and ``PixelShuffle_s`` is its inverse. Every convolution then costs ``1/s²`` as much per
    input pixel and the receptive field grows to about ``s(2D + 1)`` pixels. Sides that are not
    multiples of ``s`` are reflect-padded and the output cropped back.

    Parameters
    ----------
    channels : int
        C (1 gray, 3 RGB).
    features : int
        Channels of the hidden layers (64 in the paper).
    depth : int
        D >= 2, the number of convolutions (17 in the paper).
    batch_norm : bool
        BN after the hidden convolutions (the paper's; without it the hidden convolutions are
        He-initialised and a step is about 1.7× faster in bf16 on CPU).
    image_shape : sequence of int, optional
        Nominal (C, H, W) so flat rows (n, C·H·W) are accepted.
    downscale : int
        s >= 1, the pixel-unshuffle factor (1: the plain DnCNN, 2: FFDNet's layout).

    The "code" is the last hidden feature map (n, features, H/s, W/s) (flattened for flat
    input); decoding needs the input too, so :meth:`decode` raises (``decodes_from_code`` is
    False).

    References
    ----------
    Zhang, Zuo, Chen, Meng & Zhang, "Beyond a Gaussian denoiser: residual learning of deep CNN
    for image denoising", IEEE TIP 26(7), 2017, section III; Zhang, Zuo & Zhang, "FFDNet:
    toward a fast and flexible solution for CNN-based image denoising", IEEE TIP 27(9), 2018,
    section III-A (the pixel-unshuffled input).
    """

    name = "dncnn"
    output = "linear"
    decodes_from_code = False

    def __init__(self, channels: int = 1, features: int = 64, depth: int = 17,
                 batch_norm: bool = True, image_shape: Sequence[int] | None = None,
                 downscale: int = 1):
        super().__init__()
        if int(channels) < 1 or int(features) < 1:
            raise ValueError(f"channels and features must be >= 1, got {channels}, {features}")
        if int(depth) < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        if isinstance(downscale, bool) or int(downscale) != downscale or not 1 <= downscale <= 8:
            raise ValueError(f"downscale must be an integer in 1..8, got {downscale!r}")
        self.in_channels = self.channels = int(channels)
        self.features, self.depth, self.batch_norm = int(features), int(depth), bool(batch_norm)
        self.downscale = s = int(downscale)
        self.image_shape = _shape(image_shape, self.channels)
        c, f = self.channels, self.features
        mods: list[nn.Module] = [nn.Conv2d(c * s * s, f, 3, padding=1), nn.ReLU()]
        for _ in range(self.depth - 2):
            mods += [nn.Conv2d(f, f, 3, padding=1, bias=not batch_norm)]
            mods += [nn.BatchNorm2d(f)] if batch_norm else []
            mods += [nn.ReLU()]
        self.body = nn.Sequential(*mods)
        self.head = nn.Conv2d(f, c * s * s, 3, padding=1)
        if not batch_norm:  # He init keeps the activations' scale through the ReLU stack
            for mod in self.body:
                if isinstance(mod, nn.Conv2d):
                    nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                    nn.init.zeros_(mod.bias)
        if self.image_shape is not None:
            _, H, W = self.image_shape
            self.n_features = c * H * W
            self.n_components = f * (-(-H // s)) * (-(-W // s))
        else:
            self.n_features = None  # type: ignore[assignment]
            self.n_components = f

    def _body(self, img: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Hidden features of the (padded, unshuffled) image and the original size."""
        H, W = img.shape[-2:]
        s = self.downscale
        if s > 1:
            ph, pw = (-H) % s, (-W) % s
            if ph or pw:
                mode = "reflect" if min(H, W) > max(ph, pw) else "replicate"
                img = F.pad(img, (0, pw, 0, ph), mode=mode)
            img = F.pixel_unshuffle(img, s)
        return self.body(img), (H, W)

    def _noise(self, h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        r = self.head(h)
        if self.downscale > 1:
            r = F.pixel_shuffle(r, self.downscale)[..., :size[0], :size[1]]
        return r

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        img, flat = self._as_images(x)
        h, _ = self._body(img)
        return (h.flatten(1) if flat else h), (h.flatten(1),)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        raise ValueError("DnCNN predicts x̂ = x − R(x): it needs the input, not only a code; "
                         "call the model on the input instead")

    def forward(self, x: torch.Tensor) -> AEOutput:
        img, flat = self._as_images(x)
        h, size = self._body(img)
        rec = img - self._noise(h, size)
        if flat:
            return AEOutput(h.flatten(1), rec.flatten(1), rec.flatten(1), (h.flatten(1),))
        return AEOutput(h, rec, rec, (h.flatten(1),))

    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "features": self.features, "depth": self.depth,
                "batch_norm": self.batch_norm, "image_shape": self.image_shape,
                "downscale": self.downscale}
