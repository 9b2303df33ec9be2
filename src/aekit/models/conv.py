"""Convolutional autoencoder for images, taking flattened (n, C·H·W) or (n, C, H, W) input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import activation as make_activation
from .base import OUTPUTS, Autoencoder

__all__ = ["ConvAE"]


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


class ConvAE(Autoencoder):
    """Strided-convolution encoder, dense code, transposed-convolution decoder.

    Encoder: ``L`` blocks ``h_l = σ(BN(Conv_{k×k, stride 2}(h_{l−1})))`` halving the spatial
    size, then a linear map of the flattened maps to the code ``z = σ_code(W vec(h_L) + b)``.
    Decoder: the mirror image, ``Linear -> reshape -> ConvTranspose_{stride 2}`` blocks with
    output padding chosen so the reconstruction has exactly the input's H × W.

    Parameters
    ----------
    image_shape : sequence of int
        ``(C, H, W)`` or ``(H, W)`` (one channel).
    channels : sequence of int
        Channels of the encoder blocks, e.g. ``(16, 32)``; each block halves H and W.
    code_size : int
        k, the code dimension.
    kernel_size : int
        Odd kernel size of every convolution.
    activation, code_activation : str
        Hidden and code activations (see :data:`aekit.layers.ACTIVATIONS`).
    output : {"linear", "sigmoid"}
    batch_norm : bool
        Batch normalisation after every hidden convolution.

    Shapes: ``x`` (n, C·H·W) or (n, C, H, W) -> code (n, k) -> reconstruction in ``x``'s shape.

    References
    ----------
    Masci, Meier, Cireşan & Schmidhuber, "Stacked convolutional auto-encoders for hierarchical
    feature extraction", ICANN 2011.
    """

    name = "conv"

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = (16, 32),
                 code_size: int = 32, kernel_size: int = 3, activation: str = "relu",
                 code_activation: str = "linear", output: str = "sigmoid",
                 batch_norm: bool = False):
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
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        make_activation(activation)
        make_activation(code_activation)
        k, p = int(kernel_size), int(kernel_size) // 2
        sizes = [(shape[1], shape[2])]
        for _ in channels:
            h, w = sizes[-1]
            sizes.append((_conv_out(h, k, 2, p), _conv_out(w, k, 2, p)))
        if min(sizes[-1]) < 1:
            raise ValueError(f"image {shape[1]}x{shape[2]} is too small for {len(channels)} "
                             "stride-2 blocks")
        self.image_shape, self.channels = shape, channels
        self.code_size, self.kernel_size = int(code_size), k
        self.activation, self.code_activation = activation, code_activation
        self.output, self.batch_norm = output, bool(batch_norm)
        self.n_features = shape[0] * shape[1] * shape[2]
        self.n_components = self.code_size

        chans = [shape[0], *channels]
        self.enc = nn.ModuleList(nn.Conv2d(a, b, k, stride=2, padding=p)
                                 for a, b in zip(chans[:-1], chans[1:]))
        self.enc_bn = nn.ModuleList(nn.BatchNorm2d(c) if batch_norm else nn.Identity()
                                    for c in channels)
        self.enc_act = nn.ModuleList(make_activation(activation) for _ in channels)
        self._last = (channels[-1], *sizes[-1])
        flat = channels[-1] * sizes[-1][0] * sizes[-1][1]
        self.to_code = nn.Linear(flat, self.code_size)
        self.code_act = make_activation(code_activation)
        self.from_code = nn.Linear(self.code_size, flat)
        self.dec_act = nn.ModuleList(make_activation(activation) for _ in channels)
        rc = chans[::-1]
        self.dec = nn.ModuleList()
        for i, (a, b) in enumerate(zip(rc[:-1], rc[1:])):
            hin, win = sizes[len(channels) - i]
            hout, wout = sizes[len(channels) - i - 1]
            op = (hout - ((hin - 1) * 2 - 2 * p + k), wout - ((win - 1) * 2 - 2 * p + k))
            self.dec.append(nn.ConvTranspose2d(a, b, k, stride=2, padding=p, output_padding=op))
        self.dec_bn = nn.ModuleList(nn.BatchNorm2d(c) if batch_norm else nn.Identity()
                                    for c in rc[1:-1])

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2 and x.shape[1] == self.n_features:  # (n, C*H*W) -> (n, C, H, W)
            return x.reshape(x.shape[0], *self.image_shape)
        if x.ndim == 4 and list(x.shape[1:]) == self.image_shape:
            return x
        raise ValueError(f"input must be (n, {self.n_features}) or (n, {self.image_shape}), "
                         f"got {tuple(x.shape)}")

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h = self._images(x)
        pre = []
        for conv, bn, act in zip(self.enc, self.enc_bn, self.enc_act):
            a = conv(h)
            pre.append(a.flatten(1))
            h = act(bn(a))
        a = self.to_code(h.flatten(1))
        pre.append(a)
        return self.code_act(a), tuple(pre)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dec_act[0](self.from_code(z)).reshape(z.shape[0], *self._last)
        last = len(self.dec) - 1
        for i, deconv in enumerate(self.dec):
            h = deconv(h)
            if i < last:
                h = self.dec_act[i + 1](self.dec_bn[i](h))
        return h.flatten(1)  # (n, C, H, W) -> (n, C*H*W)

    def forward(self, x: torch.Tensor):
        out = super().forward(x)
        if x.ndim == 4:  # give the reconstruction the input's layout
            rec = out.reconstruction.reshape(x.shape)
            return out._replace(reconstruction=rec, logits=out.logits.reshape(x.shape))
        return out

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
        return {"image_shape": list(self.image_shape), "channels": list(self.channels),
                "code_size": self.code_size, "kernel_size": self.kernel_size,
                "activation": self.activation, "code_activation": self.code_activation,
                "output": self.output, "batch_norm": self.batch_norm}
