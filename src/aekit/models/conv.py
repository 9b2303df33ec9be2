"""Convolutional autoencoder for images, taking flattened (n, C·H·W) or (n, C, H, W) input;
the code is a vector or (fully convolutional) a feature map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import activation as make_activation
from .base import OUTPUTS, AEOutput, Autoencoder

__all__ = ["ConvAE"]


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


class ConvAE(Autoencoder):
    """Strided-convolution encoder, code (a vector or a feature map), transposed-conv decoder.

    Encoder: ``L`` blocks ``h_l = σ(BN(Conv_{k_l×k_l, stride s_l}(h_{l−1})))`` (stride 2
    halves the spatial size, stride 1 keeps it). Code: with ``code="flat"`` a linear map of
    the flattened maps, ``z = σ_code(W vec(h_L) + b)`` (n, k); with ``code="map"`` a 1×1
    convolution to ``code_size`` channels, ``z = σ_code(Conv_{1×1}(h_L))``
    (n, k, H/Πs, W/Πs), which makes the model fully convolutional (any image size).
    Decoder: the mirror image, ``Linear -> reshape`` (or ``Conv_{1×1}``) then
    ``ConvTranspose_{stride s_l}`` blocks with output sizes chosen so the reconstruction has
    exactly the input's H × W.

    Parameters
    ----------
    image_shape : sequence of int
        ``(C, H, W)`` or ``(H, W)`` (one channel): the nominal size (flat rows have it; a
        ``code="map"`` model also takes (n, C, H', W') of other sizes).
    channels : sequence of int
        Channels of the encoder blocks, e.g. ``(16, 32)``.
    code_size : int
        k: the code dimension (``"flat"``) or the code map's channels (``"map"``).
    kernel_size : int or sequence of int
        Odd kernel size of every convolution, or one per block.
    activation, code_activation : str
        Hidden and code activations (see :data:`aekit.layers.ACTIVATIONS`).
    output : {"linear", "sigmoid"}
    batch_norm : bool
        Batch normalisation after every hidden convolution.
    strides : int or sequence of int
        Stride of each encoder block, 1 or 2 (default 2 everywhere).
    code : {"flat", "map"}
        The code as a vector (needs the nominal size) or as a feature map.

    Attributes
    ----------
    n_features : int
        C·H·W of the nominal size.
    n_components : int
        k (``"flat"``), or k·h·w of the nominal size's code map (``"map"``).

    Shapes: ``x`` (n, C·H·W) or (n, C, H, W) -> code (n, k) or (n, k, h, w) -> reconstruction
    in ``x``'s shape (a flat input gets a flat code).

    References
    ----------
    Masci, Meier, Cireşan & Schmidhuber, "Stacked convolutional auto-encoders for hierarchical
    feature extraction", ICANN 2011; Ballé, Laparra & Simoncelli, "End-to-end optimized image
    compression", ICLR 2017, section 2 (a convolutional code map for compression).
    """

    name = "conv"

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = (16, 32),
                 code_size: int = 32, kernel_size: int | Sequence[int] = 3,
                 activation: str = "relu", code_activation: str = "linear",
                 output: str = "sigmoid", batch_norm: bool = False,
                 strides: int | Sequence[int] = 2, code: str = "flat"):
        super().__init__()
        shape = [int(s) for s in image_shape]
        if len(shape) == 2:
            shape = [1, *shape]
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) or (H, W), got {image_shape}")
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty list of ints >= 1, got {channels}")
        if int(code_size) < 1:
            raise ValueError(f"code_size must be >= 1, got {code_size}")
        ks = _per_block(kernel_size, len(channels), "kernel_size")
        if any(k < 1 or k % 2 == 0 for k in ks):
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        ss = _per_block(strides, len(channels), "strides")
        if any(s not in (1, 2) for s in ss):
            raise ValueError(f"strides must be 1 or 2, got {strides}")
        if code not in ("flat", "map"):
            raise ValueError(f"code must be 'flat' or 'map', got {code!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        make_activation(activation)
        make_activation(code_activation)
        sizes = conv_output_sizes((shape[1], shape[2]), ks, ss)
        if min(sizes[-1]) < 1:
            raise ValueError(f"image {shape[1]}x{shape[2]} is too small for {len(channels)} "
                             f"blocks with strides {ss}")
        self.image_shape, self.channels = shape, channels
        self.code_size = int(code_size)
        self.kernel_size = ks[0] if isinstance(kernel_size, int) else list(ks)
        self.strides = ss[0] if isinstance(strides, int) else list(ss)
        self._ks, self._ss, self.code = ks, ss, code
        self.activation, self.code_activation = activation, code_activation
        self.output, self.batch_norm = output, bool(batch_norm)
        self.n_features = shape[0] * shape[1] * shape[2]
        self._nominal_sizes = sizes
        h_l, w_l = sizes[-1]
        self.n_components = self.code_size if code == "flat" else self.code_size * h_l * w_l

        chans = [shape[0], *channels]
        self.enc = nn.ModuleList(nn.Conv2d(a, b, k, stride=s, padding=k // 2)
                                 for a, b, k, s in zip(chans[:-1], chans[1:], ks, ss))
        self.enc_bn = nn.ModuleList(nn.BatchNorm2d(c) if batch_norm else nn.Identity()
                                    for c in channels)
        self.enc_act = nn.ModuleList(make_activation(activation) for _ in channels)
        self._last = (channels[-1], h_l, w_l)
        if code == "flat":
            flat = channels[-1] * h_l * w_l
            self.to_code = nn.Linear(flat, self.code_size)
            self.from_code = nn.Linear(self.code_size, flat)
        else:
            self.to_code = nn.Conv2d(channels[-1], self.code_size, 1)
            self.from_code = nn.Conv2d(self.code_size, channels[-1], 1)
        self.code_act = make_activation(code_activation)
        self.dec_act = nn.ModuleList(make_activation(activation) for _ in channels)
        rc = chans[::-1]
        n = len(channels)
        self.dec = nn.ModuleList()
        for i, (a, b) in enumerate(zip(rc[:-1], rc[1:])):
            k, s = ks[n - 1 - i], ss[n - 1 - i]
            hin, win = sizes[n - i]
            hout, wout = sizes[n - i - 1]
            p = k // 2
            op = (hout - ((hin - 1) * s - 2 * p + k), wout - ((win - 1) * s - 2 * p + k))
            self.dec.append(nn.ConvTranspose2d(a, b, k, stride=s, padding=p, output_padding=op))
        self.dec_bn = nn.ModuleList(nn.BatchNorm2d(c) if batch_norm else nn.Identity()
                                    for c in rc[1:-1])

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2 and x.shape[1] == self.n_features:  # (n, C*H*W) -> (n, C, H, W)
            return x.reshape(x.shape[0], *self.image_shape)
        if x.ndim == 4 and list(x.shape[1:]) == self.image_shape:
            return x
        if x.ndim == 4 and self.code == "map" and x.shape[1] == self.image_shape[0]:
            sizes = conv_output_sizes(tuple(x.shape[2:]), self._ks, self._ss)
            if min(sizes[-1]) < 1:
                raise ValueError(f"image {x.shape[2]}x{x.shape[3]} is too small for this "
                                 f"model's {len(self.channels)} blocks (strides {self._ss})")
            return x
        raise ValueError(f"input must be (n, {self.n_features}) or (n, {self.image_shape})"
                         + (f" or (n, {self.image_shape[0]}, H, W)" if self.code == "map"
                            else "") + f", got {tuple(x.shape)}")

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h = self._images(x)
        pre = []
        for conv, bn, act in zip(self.enc, self.enc_bn, self.enc_act):
            a = conv(h)
            pre.append(a.flatten(1))
            h = act(bn(a))
        a = self.to_code(h.flatten(1) if self.code == "flat" else h)
        pre.append(a.flatten(1))
        z = self.code_act(a)
        if self.code == "map" and x.ndim == 2:
            z = z.flatten(1)  # a flat input gets a flat code (n, k*h*w)
        return z, tuple(pre)

    def _decode(self, z: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
        if self.code == "flat":
            h = self.dec_act[0](self.from_code(z)).reshape(z.shape[0], *self._last)
        else:
            h = self.dec_act[0](self.from_code(z))
        last = len(self.dec) - 1
        n = len(self.dec)
        for i, deconv in enumerate(self.dec):
            h = deconv(h, output_size=list(sizes[n - i - 1]))
            if i < last:
                h = self.dec_act[i + 1](self.dec_bn[i](h))
        return h  # (n, C, H, W)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        if self.code == "map":
            if z.ndim == 2:  # flat code of the nominal size -> (n, k, h, w)
                z = z.reshape(z.shape[0], self.code_size, *self._nominal_sizes[-1])
                return self._decode(z, self._nominal_sizes).flatten(1)
            if tuple(z.shape[2:]) == tuple(self._nominal_sizes[-1]):
                sizes = self._nominal_sizes
            else:  # undo the strides exactly (the input size is ambiguous from the code)
                sizes = [(z.shape[2], z.shape[3])]
                for s in reversed(self._ss):
                    sizes.insert(0, (sizes[0][0] * s, sizes[0][1] * s))
            return self._decode(z, sizes)
        return self._decode(z, self._nominal_sizes).flatten(1)  # (n, C, H, W) -> (n, C*H*W)

    def forward(self, x: torch.Tensor):
        code, pre = self.encode_full(x)
        if self.code == "map" and x.ndim == 4:
            sizes = conv_output_sizes(tuple(x.shape[2:]), self._ks, self._ss)
            logits = self._decode(code, sizes)
            return AEOutput(code, self._squash(logits), logits, pre)
        logits = self.decode_logits(code)
        if x.ndim == 4:  # give the reconstruction the input's layout
            logits = logits.reshape(x.shape)
        return AEOutput(code, self._squash(logits), logits, pre)

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``ConvAE(image_shape, channels=hidden, code_size=k, ...)`` (see
        :meth:`Autoencoder.from_spec`); needs image data."""
        if image_shape is None:
            raise ValueError("model.name='conv' needs image data (digits, mnist, or a .npy of "
                             "shape (n, H, W)); this dataset has flat features")
        return cls(list(image_shape), channels=hidden, code_size=code_size, **cls._pick(
            options, "activation", "code_activation", "output", "batch_norm"))

    def config(self) -> dict[str, Any]:
        cfg = {"image_shape": list(self.image_shape), "channels": list(self.channels),
               "code_size": self.code_size, "kernel_size": self.kernel_size,
               "activation": self.activation, "code_activation": self.code_activation,
               "output": self.output, "batch_norm": self.batch_norm}
        # the newer options are written only when not at their defaults, so files and specs
        # of models built the old way are unchanged
        if self.strides != 2:
            cfg["strides"] = self.strides
        if self.code != "flat":
            cfg["code"] = self.code
        return cfg


def _per_block(v: int | Sequence[int], n: int, name: str) -> list[int]:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return [int(v)] * n
    vals = [int(a) for a in v]
    if len(vals) != n:
        raise ValueError(f"{name} must be one int or one per block ({n}), got {list(v)}")
    return vals


def conv_output_sizes(hw: tuple[int, int], ks: list[int], ss: list[int]) -> list[tuple[int, int]]:
    sizes = [(int(hw[0]), int(hw[1]))]
    for k, s in zip(ks, ss):
        h, w = sizes[-1]
        sizes.append((_conv_out(h, k, s, k // 2), _conv_out(w, k, s, k // 2)))
    return sizes
