"""Image compression that starts from PCA on patches and learns a residual decoder.

:class:`PCAResidualCodec` encodes an image exactly as the classical PCA-on-patches codec
(non-overlapping p×p blocks, the first k principal coefficients, each uniformly quantised to
b bits over its training range, LZMA) and decodes with the PCA reconstruction followed by a
learned residual network (a no-BN :class:`~aekit.models.DnCNN`) whose last layer starts at
zero. At initialisation it *is* the PCA codec (same bits, same output); training the decoder
on (PCA-decoded, clean) pairs of training patches can only be kept when it lowers the
validation error, so the learned codec sits at PCA's rate with a lower distortion. The codes
are quantised by the fixed encoder, so training sees exactly the test-time quantisation (no
straight-through or noise proxy is needed).
"""

from __future__ import annotations

import json
import lzma
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import FileFormatError, atomic_write_bytes, load_tensor_file, save_tensor_file
from .io import as_chw

__all__ = ["PCAResidualCodec", "train_pca_codec"]

_MAGIC = b"AEKP1\n"
_FORMAT = "aekit-pca-codec"


class PCAResidualCodec(nn.Module):
    """PCA-on-patches codec with a learned residual decoder.

    Encoder (fixed after :meth:`fit_basis`): the image (C, H, W) is edge-padded to multiples
    of p and cut into non-overlapping p×p blocks ``P_i`` (C·p² values);
    ``c_i = V_k (P_i − μ)`` (V_k: the first k principal directions of training blocks),
    ``q_ij = round((clip(c_ij, lo_j, hi_j) − lo_j) / (hi_j − lo_j) · (2^b − 1))`` with
    ``[lo_j, hi_j]`` the 0.1 % / 99.9 % quantiles of coefficient j on the training blocks.
    The file is a JSON header and ``LZMA(q)`` stored coefficient-major (k, H/p, W/p), uint8.

    Decoder: ``ĉ_ij = lo_j + q_ij (hi_j − lo_j) / (2^b − 1)``, ``R = blocks(V_kᵀ ĉ + μ)``
    (the PCA reconstruction), then ``x̂ = R − r_θ(R)`` with ``r_θ`` a residual CNN whose
    last layer is zero at initialisation (``x̂ = R``, the PCA codec, before training).

    Parameters
    ----------
    channels : int
    patch_size : int
        p, the block side.
    n_coefficients : int
        k <= C·p².
    bits : int
        b in 1..8.
    features, depth, downscale : int
        The residual decoder: ``DnCNN(channels, features, depth, batch_norm=False,
        downscale=downscale)``; ``depth=0`` means no learned decoder (plain PCA codec).

    References
    ----------
    Rate–distortion with transform coding: Goyal, "Theoretical foundations of transform
    coding", IEEE SPM 18(5), 2001, sections 3–4 (the KLT/PCA transform, scalar quantisation,
    entropy coding); learned post-filtering of a block codec: Dong, Deng, Loy & Tang,
    "Compression artifacts reduction by a deep convolutional network" (AR-CNN), ICCV 2015,
    section 3; residual learning: Zhang et al., IEEE TIP 2017, section III-B.
    """

    def __init__(self, channels: int = 1, patch_size: int = 8, n_coefficients: int = 8,
                 bits: int = 5, features: int = 48, depth: int = 8, downscale: int = 2):
        super().__init__()
        from ..models import DnCNN

        c, p, k = int(channels), int(patch_size), int(n_coefficients)
        if c < 1 or p < 1:
            raise ValueError(f"channels and patch_size must be >= 1, got {channels}, "
                             f"{patch_size}")
        if not 1 <= k <= c * p * p:
            raise ValueError(f"n_coefficients must be in 1..{c * p * p} (C·p²), got "
                             f"{n_coefficients}")
        if not 1 <= int(bits) <= 8:
            raise ValueError(f"bits must be in 1..8, got {bits}")
        if int(depth) == 1 or int(depth) < 0:
            raise ValueError(f"depth must be 0 (no learned decoder) or >= 2, got {depth}")
        self.channels, self.patch_size, self.n_coefficients = c, p, k
        self.bits, self.features, self.depth = int(bits), int(features), int(depth)
        self.downscale = int(downscale)
        d = c * p * p
        self.register_buffer("mean", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("basis", torch.zeros(k, d, dtype=torch.float64))
        self.register_buffer("lo", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("hi", torch.ones(k, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.in_channels = c
        self.post = None
        if self.depth:
            self.post = DnCNN(c, self.features, self.depth, batch_norm=False,
                              downscale=self.downscale)
            nn.init.zeros_(self.post.head.weight)
            nn.init.zeros_(self.post.head.bias)

    # --- PCA ---------------------------------------------------------------------------------
    def fit_basis(self, images: Sequence, n_patches: int = 40000, seed: int = 0
                  ) -> PCAResidualCodec:
        """Principal directions, mean and coefficient ranges of random p×p training blocks
        (SVD of the centred block matrix, float64)."""
        from .patches import PatchSource

        src = PatchSource(images, self.patch_size, int(n_patches), augment=False, seed=seed)
        if src.channels != self.channels:
            raise ValueError(f"images have {src.channels} channels, the codec {self.channels}")
        X = src.take(torch.arange(int(n_patches))).x.flatten(1).double()
        mu = X.mean(0)
        _, _, V = torch.linalg.svd(X - mu, full_matrices=False)
        Vk = V[:self.n_coefficients]
        C = (X - mu) @ Vk.T
        self.mean.copy_(mu)
        self.basis.copy_(Vk)
        self.lo.copy_(C.quantile(0.001, 0))
        self.hi.copy_(torch.maximum(C.quantile(0.999, 0), self.lo + 1e-6))
        self.fitted.fill_(True)
        return self

    def _check(self, x: np.ndarray) -> None:
        if not bool(self.fitted):
            raise ValueError("the codec has no basis yet: call fit_basis (or train_pca_codec)")
        if x.shape[0] != self.channels:
            raise ValueError(f"the codec expects {self.channels}-channel images, the image has "
                             f"{x.shape[0]}")

    def quantise(self, image) -> np.ndarray:
        """Quantised coefficients ``q`` (k, ⌈H/p⌉, ⌈W/p⌉), uint8."""
        x = as_chw(image)
        self._check(x)
        p = self.patch_size
        C, H, W = x.shape
        xp = np.pad(x, ((0, 0), (0, (-H) % p), (0, (-W) % p)), mode="edge")
        hb, wb = xp.shape[1] // p, xp.shape[2] // p
        P = torch.from_numpy(xp).double().reshape(C, hb, p, wb, p).permute(1, 3, 0, 2, 4)
        coef = (P.reshape(hb * wb, -1) - self.mean) @ self.basis.T
        L = 2 ** self.bits - 1
        q = torch.round((torch.maximum(torch.minimum(coef, self.hi), self.lo) - self.lo)
                        / (self.hi - self.lo) * L)
        return q.T.reshape(self.n_coefficients, hb, wb).numpy().astype(np.uint8)

    def pca_decode(self, q: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """The PCA reconstruction R (C, H, W) of quantised coefficients (no learned part)."""
        C, H, W = (int(v) for v in shape)
        p, k = self.patch_size, self.n_coefficients
        q = np.asarray(q)
        hb, wb = -(-H // p), -(-W // p)
        if q.shape != (k, hb, wb):
            raise ValueError(f"codes of shape {q.shape} do not fit a {H}x{W} image "
                             f"(expected {(k, hb, wb)})")
        L = 2 ** self.bits - 1
        c = torch.from_numpy(q.reshape(k, -1).T.astype(np.float64)) / L * (self.hi - self.lo) \
            + self.lo
        R = (c @ self.basis + self.mean).reshape(hb, wb, C, p, p).permute(2, 0, 3, 1, 4)
        return R.reshape(C, hb * p, wb * p)[:, :H, :W].numpy().astype(np.float32)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """The learned decoder on PCA reconstructions ``R`` (n, C, H, W): ``R − r_θ(R)``."""
        if self.post is None:
            return r
        return self.post(r).reconstruction

    @torch.no_grad()
    def decode(self, q: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """``x̂`` (C, H, W) in [0, 1] from quantised coefficients."""
        from .tiling import predict_tiled

        R = self.pca_decode(q, shape)
        if self.post is None:
            return np.clip(R, 0, 1)
        was = self.training
        self.eval()
        try:
            out = predict_tiled(lambda t: self(t), R, tile=256, overlap=32)
        finally:
            self.train(was)
        return np.clip(out, 0, 1)

    # --- files -------------------------------------------------------------------------------
    def compress(self, image, path: str | os.PathLike | None = None) -> bytes:
        """Bytes of the compressed image (written atomically to ``path`` if given). Rate:
        ``8 · len(bytes) / (H W)`` bits per pixel."""
        x = as_chw(image)
        q = self.quantise(x)
        header = json.dumps({"s": list(x.shape), "k": self.n_coefficients, "b": self.bits,
                             "p": self.patch_size}, separators=(",", ":")).encode()
        payload = lzma.compress(q.tobytes(), format=lzma.FORMAT_RAW,
                                filters=[{"id": lzma.FILTER_LZMA2,
                                          "preset": 9 | lzma.PRESET_EXTREME}])
        data = _MAGIC + struct.pack("<H", len(header)) + header + payload
        if path is not None:
            atomic_write_bytes(path, data)
        return data

    def read(self, data: bytes | str | os.PathLike) -> tuple[dict, np.ndarray]:
        """``(header, q)`` of compressed bytes or a file; checks it matches this codec."""
        where = "data"
        if not isinstance(data, bytes | bytearray):
            where = str(data)
            if not Path(data).is_file():
                raise FileNotFoundError(f"no such compressed image: {data}")
            data = Path(data).read_bytes()
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 2:
            raise FileFormatError(f"{where} is not an aekit PCA-codec image (bad magic)",
                                  expected="an aekit PCA-codec image")
        (n,) = struct.unpack("<H", data[len(_MAGIC):len(_MAGIC) + 2])
        start = len(_MAGIC) + 2
        try:
            h = json.loads(data[start:start + n])
            shape = [int(v) for v in h["s"]]
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"bad shape {shape}")
            raw = lzma.decompress(data[start + n:], format=lzma.FORMAT_RAW,
                                  filters=[{"id": lzma.FILTER_LZMA2}])
        except (ValueError, KeyError, TypeError, lzma.LZMAError) as e:
            raise FileFormatError(f"{where} is a damaged aekit PCA-codec image: {e}",
                                  expected="an aekit PCA-codec image") from None
        mine = (self.channels, self.n_coefficients, self.bits, self.patch_size)
        theirs = (shape[0], h["k"], h["b"], h["p"])
        if mine != theirs:
            raise ValueError(f"{where} was made by a codec with (C, k, bits, p) = {theirs}, "
                             f"this one is {mine}")
        p = self.patch_size
        want = self.n_coefficients * (-(-shape[1] // p)) * (-(-shape[2] // p))
        if len(raw) != want:
            raise FileFormatError(f"{where}: {len(raw)} code bytes, expected {want}",
                                  expected="an aekit PCA-codec image")
        q = np.frombuffer(raw, np.uint8).reshape(self.n_coefficients, -(-shape[1] // p),
                                                 -(-shape[2] // p))
        return {"shape": shape, "k": h["k"], "bits": h["b"], "patch_size": p}, q

    def decompress(self, data: bytes | str | os.PathLike) -> np.ndarray:
        """Decode bytes / a file from :meth:`compress` to (C, H, W) in [0, 1]."""
        h, q = self.read(data)
        return self.decode(q, h["shape"])

    def config(self) -> dict[str, Any]:
        return {"channels": self.channels, "patch_size": self.patch_size,
                "n_coefficients": self.n_coefficients, "bits": self.bits,
                "features": self.features, "depth": self.depth, "downscale": self.downscale}

    def save(self, path: str | os.PathLike) -> Path:
        """Save basis, ranges and decoder to a ``.safetensors`` file (atomically)."""
        save_tensor_file(path, dict(self.state_dict()), _FORMAT, {"config": self.config()})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PCAResidualCodec:
        """A codec saved by :meth:`save`."""
        tensors, doc = load_tensor_file(path, _FORMAT)
        try:
            m = cls(**doc["config"])
            m.load_state_dict(tensors, strict=True)
        except (TypeError, KeyError, RuntimeError, ValueError) as e:
            raise FileFormatError(f"{path}: not a matching PCA codec: {e}", path=path,
                                  expected="a file written by PCAResidualCodec.save") from None
        return m.eval()


class _Pairs:
    """Random aligned crops of (PCA-decoded, clean) image pairs: Batch(x=clean, x̃=decoded)."""

    def __init__(self, src, c: int):
        self.src, self.c = src, c

    def __len__(self):
        return len(self.src)

    def take(self, idx):
        from ..data.batch import Batch

        b = self.src.take(idx).x
        return Batch(b[:, self.c:].contiguous(), x_tilde=b[:, :self.c].contiguous())


def train_pca_codec(images: Sequence, *, n_coefficients: int = 8, bits: int = 5,
                    patch_size: int = 8, val_images: Sequence | None = None,
                    crop_size: int = 64, n_patches: int = 1024, max_iter: int = 20,
                    batch_size: int = 16, learning_rate: float = 1e-3,
                    time_budget_s: float | None = None, random_state: int = 0,
                    progress: bool | None = False, **codec_kwargs: Any):
    """Fit the PCA encoder on ``images`` and train the residual decoder.

    ``min_θ Σ ‖R − r_θ(R) − x‖²`` over random ``crop_size``² crops (with the 8 flips /
    rotations) of the training images ``x`` and their PCA-codec reconstructions ``R`` (the
    whole image encoded once, so the block grid is the test-time one); Adam with a cosine
    schedule, ``max_iter`` epochs of ``n_patches`` crops; with ``val_images`` the epoch with
    the lowest validation error is kept, and if no epoch beats the PCA codec (the decoder at
    zero) on validation, the decoder stays zero. Other keywords build the
    :class:`PCAResidualCodec`.

    Returns
    -------
    (codec, History or None)
    """
    from ..objectives import Objective
    from ..train import fit
    from ..train.callbacks import TimeBudget
    from .patches import PatchSource

    imgs = [as_chw(im, f"images[{i}]") for i, im in enumerate(images)]
    codec = PCAResidualCodec(imgs[0].shape[0], patch_size, n_coefficients, bits, **codec_kwargs)
    codec.fit_basis(imgs, seed=random_state)
    if codec.post is None:
        return codec.eval(), None

    def pairs(ims):
        return [np.concatenate([codec.pca_decode(codec.quantise(x), x.shape), x]) for x in ims]

    c = codec.channels
    src = _Pairs(PatchSource(pairs(imgs), crop_size, n_patches, seed=random_state), c)
    val = None
    if val_images:
        vims = [as_chw(im, f"val_images[{i}]") for i, im in enumerate(val_images)]
        val = _Pairs(PatchSource(pairs(vims), crop_size, max(64, n_patches // 8), fresh=False,
                                 seed=random_state + 1), c)
    cbs = [TimeBudget(time_budget_s)] if time_budget_s is not None else []
    obj = Objective("mse")
    base = None
    if val is not None:  # the PCA codec's own validation error (the decoder at zero)
        with torch.no_grad():
            b = val.take(torch.arange(len(val)))
            base = float(((b.x_tilde - b.x) ** 2).flatten(1).sum(1).mean())
    h = fit(codec, obj, src, val=val, max_iter=max_iter, batch_size=batch_size,
            learning_rate=learning_rate, schedule="cosine", random_state=random_state,
            callbacks=cbs, progress=progress, early_stopping=10 ** 6)
    if base is not None:
        best = min(r.get("val_loss", float("inf")) for r in h.records)
        if not best < base:
            nn.init.zeros_(codec.post.head.weight)
            nn.init.zeros_(codec.post.head.bias)
    return codec.eval(), h
