"""The image applications as Python functions: denoising, inpainting, compression.

Each trains through :func:`aekit.fit` on random patches damaged on the fly
(:class:`~aekit.images.PatchSource`) and runs on whole images of any size through
:func:`~aekit.images.predict_tiled`.
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

from ..io import FileFormatError, atomic_write_bytes
from ..models import ConvAE, UNetAE
from ..models.base import AEOutput
from .damage import Damage, make_damage
from .guided import GuidedRefine
from .io import as_chw
from .opponent import (  # noqa: F401  (re-exported: aekit.images.apps.* as before)
    OPPONENT_NOISE_SCALE,
    opponent_noise_band,
    opponent_to_rgb,
    rgb_to_opponent,
)
from .patches import PatchSource
from .tiling import predict_tiled

__all__ = [
    "MaskInput",
    "SelfEnsemble",
    "compress_image",
    "decompress_image",
    "denoise",
    "denoise_colour_mode",
    "dihedral_inverse",
    "estimate_noise",
    "inpaint",
    "opponent_to_rgb",
    "read_compressed",
    "rgb_to_opponent",
    "train_compressor",
    "train_denoiser",
    "train_image_model",
    "train_inpainter",
]


def estimate_noise(image) -> float:
    """Gaussian noise σ of an image (values in [0, 1]), by wavelet MAD.

    ``σ̂ = median(|d|) / 0.6745`` over the finest diagonal wavelet coefficients d (averaged over
    channels): ``skimage.restoration.estimate_sigma``.

    References
    ----------
    Donoho & Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 1994,
    section 4.2.
    """
    from skimage.restoration import estimate_sigma

    x = as_chw(image)
    return float(np.mean([estimate_sigma(c) for c in x]))


def train_image_model(model: nn.Module, images: Sequence, damage, *, patch_size: int = 48,
                      n_patches: int = 4096, max_iter: int = 10, batch_size: int = 32,
                      learning_rate: float = 1e-3, val_images: Sequence | None = None,
                      time_budget_s: float | None = None, random_state: int = 0,
                      progress: bool | None = None, loss: str = "mse", **fit_kwargs: Any):
    """Train an image-to-image ``model`` on random patches of ``images`` damaged by ``damage``.

    ``min_θ E ‖m_θ(damage(x)) − x‖²`` over random ``patch_size``² patches with flips and
    rotations (fresh ones every epoch), Adam with a cosine learning-rate schedule; with
    ``val_images`` the best epoch on a fixed set of damaged validation patches is kept.
    ``max_iter`` epochs of ``n_patches`` patches, ``batch_size`` patches per step, Adam step
    ``learning_rate``, seed ``random_state`` (patches, initialisation order, shuffling); other
    keywords go to :func:`aekit.fit`. The old keywords ``epochs``, ``lr``, ``seed`` still work
    until the next release, with a ``FutureWarning``.

    Returns
    -------
    (model, History)
    """
    from ..objectives import Objective
    from ..train import fit
    from ..train.callbacks import TimeBudget

    old = {k: fit_kwargs.pop(k) for k in ("epochs", "lr", "seed") if k in fit_kwargs}
    if old:
        from ..schema import pop_renamed

        v = pop_renamed("aekit.images.train_image_model", old,
                        {"max_iter": max_iter, "learning_rate": learning_rate,
                         "random_state": random_state},
                        {"max_iter": 10, "learning_rate": 1e-3, "random_state": 0})
        max_iter, learning_rate, random_state = (v["max_iter"], v["learning_rate"],
                                                 v["random_state"])
    src = PatchSource(images, patch_size, n_patches, damage=damage, seed=random_state)
    val = None
    if val_images:
        val = PatchSource(val_images, patch_size, max(256, n_patches // 8), damage=damage,
                          fresh=False, seed=random_state + 1)
    cbs = list(fit_kwargs.pop("callbacks", ()))
    if time_budget_s is not None:
        cbs.append(TimeBudget(time_budget_s))
    h = fit(model, Objective(loss), src, val=val, max_iter=max_iter, batch_size=batch_size,
            learning_rate=learning_rate, schedule=fit_kwargs.pop("schedule", "cosine"),
            random_state=random_state, callbacks=cbs, progress=progress, **fit_kwargs)
    return model, h


def _denoiser(kind: str, channels: int, noise_map: bool = False) -> nn.Module:
    if noise_map and kind != "unet":
        raise ValueError(f"noise_map=True needs model='unet' (a residual U-Net with a noise-"
                         f"level input channel), got model={kind!r}")
    if kind == "unet":
        if noise_map:
            return UNetAE(channels + 1, out_channels=channels, features=32, depth=3,
                          residual=True, noise_map=True)
        return UNetAE(channels, features=32, depth=3, residual=True)
    if kind == "unet-noskip":
        return UNetAE(channels, features=32, depth=3, skips=False)
    if kind == "dncnn":
        from ..models import DnCNN
        return DnCNN(channels, features=48, depth=10)
    if kind == "conv":
        return ConvAE([channels, 48, 48], channels=[32, 64, 64], code_size=64,
                      strides=[2, 2, 1], code="map", output="linear")
    raise ValueError(f"model must be 'unet', 'unet-noskip', 'dncnn' or 'conv', got {kind!r}")


def train_denoiser(images: Sequence, *, noise: str = "gaussian",
                   level: float | tuple[float, float] = 0.1, model: str | nn.Module = "unet",
                   clip: bool = False, noise_map: bool = False, **kwargs: Any):
    """A denoiser trained on (noisy, clean) patch pairs made on the fly.

    ``noise`` ``"gaussian"`` (σ, or a range (σ_lo, σ_hi) for a blind model),
    ``"salt_pepper"`` (p) or ``"masking"`` (ν); ``model`` a name (``"unet"``: a residual
    U-Net, ``"dncnn"``, ``"conv"``, ``"unet-noskip"``) or a module. ``clip``: train on
    Gaussian noise clipped to [0, 1], ``x̃ = clip(x + σε, 0, 1)``, the noise an 8- or 16-bit
    image file actually holds (off: unclipped AWGN, the benchmark protocol). ``noise_map``
    (Gaussian only): the model is also given the map of σ as an input channel
    (:class:`~aekit.images.NoiseLevelMap`, FFDNet-style; ``UNetAE(..., noise_map=True)``), and
    :func:`denoise` then takes ``sigma`` or estimates it. Other keywords go to
    :func:`train_image_model`.
    """
    from .damage import GaussianNoise, NoiseLevelMap

    imgs = [as_chw(im, f"images[{i}]") for i, im in enumerate(images)]
    if noise_map and noise != "gaussian":
        raise ValueError(f"noise_map=True is for Gaussian noise (a σ map), got noise={noise!r}")
    if noise == "gaussian":
        damage: Damage = GaussianNoise(level, clip=clip)
        if noise_map:
            damage = NoiseLevelMap(damage)
    else:
        damage = make_damage(noise, float(level))
    if isinstance(model, str):
        m = _denoiser(model, imgs[0].shape[0], noise_map)
    else:
        m = model
        if noise_map != bool(getattr(m, "noise_map", False)):
            raise ValueError(f"noise_map={noise_map} but the given model has noise_map="
                             f"{bool(getattr(m, 'noise_map', False))}")
    return train_image_model(m, imgs, damage, **kwargs)


def dihedral_inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`aekit.images.dihedral`: ``dihedral_inverse(dihedral(x, k), k)
    == x`` (flip back when ``k >= 4``, then rotate by ``−(k mod 4)`` quarter turns)."""
    y = torch.flip(x, dims=(-1,)) if k >= 4 else x
    return torch.rot90(y, -(k % 4), dims=(-2, -1))


class SelfEnsemble:
    """Geometric self-ensemble of an image-to-image model:
    ``f̄(x) = (1/8) Σ_{k=0..7} T_k⁻¹(f(T_k x))`` over the 8 symmetries ``T_k`` of the square
    (:func:`~aekit.images.dihedral`). For a model trained with flips and rotations it averages
    8 estimates whose errors are partly independent, at 8× the inference cost.

    A callable ``(n, C, H, W) -> (n, C', H, W)`` (run in eval mode, no gradients) that
    :func:`~aekit.images.predict_tiled` accepts in place of the model.

    References
    ----------
    Timofte, Rothe & Van Gool, "Seven ways to improve example-based single image super
    resolution", CVPR 2016, section 2.1; Lim, Son, Kim, Nah & Lee, "Enhanced deep residual
    networks for single image super-resolution" (EDSR), CVPRW 2017, section 4.3.
    """

    def __init__(self, model: nn.Module):
        self.model = model

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from .patches import dihedral
        from .tiling import run_model

        was = self.model.training
        self.model.eval()
        try:
            acc = None
            for k in range(8):
                y = dihedral_inverse(run_model(self.model, dihedral(x, k)), k)
                acc = y if acc is None else acc + y
        finally:
            self.model.train(was)
        return acc / 8


def denoise_colour_mode(model: nn.Module, image, colour: str = "auto") -> str:
    """How :func:`denoise` feeds ``image`` (C, H, W) to ``model``: ``"opponent"`` for
    ``colour="auto"`` with a one-channel model (image channels, not counting a noise map) and
    an RGB image, else ``"direct"``; an explicit ``colour`` is returned as given."""
    if colour not in ("auto", "direct", "opponent"):
        raise ValueError(f"colour must be 'auto', 'direct' or 'opponent', got {colour!r}")
    if colour != "auto":
        return colour
    cin = getattr(model, "in_channels", None)
    c_model = cin - int(bool(getattr(model, "noise_map", False))) if isinstance(cin, int) \
        else None
    return "opponent" if c_model == 1 and np.shape(image)[0] == 3 else "direct"


def denoise(model: nn.Module, image, *, tile: int = 128, overlap: int = 32,
            clip: bool = True, self_ensemble: bool = False,
            sigma: float | None = None, colour: str = "auto",
            refine: GuidedRefine | None = None) -> np.ndarray:
    """Denoise a whole image of any size: tiled inference, clipped to [0, 1]. (C, H, W).

    With ``self_ensemble`` the model is applied to the 8 flips/rotations of every tile and the
    results averaged (:class:`SelfEnsemble`, 8× slower). A model with ``noise_map=True``
    (non-blind, FFDNet-style) is given ``[x̃, σ·1]``: ``sigma`` the noise level in pixel units
    of [0, 1] when known, else :func:`estimate_noise` of the image. A blind model takes no
    ``sigma``: passing one is an error, so a σ is never silently dropped.

    ``colour``: ``"opponent"`` runs a grayscale (one-channel) denoiser on the three channels
    of :func:`rgb_to_opponent` of an RGB image and maps the result back, as CBM3D does with
    grayscale BM3D: the transform keeps Gaussian noise white and independent per channel,
    at levels σ/√3, σ/√2, σ·√6/4 (a given ``sigma`` is scaled so for a noise-map model;
    otherwise each channel's level is estimated). ``"direct"`` gives the image to the model
    as it is. ``"auto"`` (default) is ``"opponent"`` for a one-channel model and an RGB image,
    else ``"direct"``.

    ``refine``: a :class:`~aekit.images.GuidedRefine` second pass on the model's (unclipped)
    output, before clipping: guided NL-means of the chroma (and optionally the luminance)
    along the patch matches of the denoised image, CBM3D's use of the luminance for chroma."""
    if refine is not None and not isinstance(refine, GuidedRefine):
        raise TypeError(f"refine must be a GuidedRefine or None, got {type(refine).__name__}")
    x = as_chw(image)
    n_map = bool(getattr(model, "noise_map", False))
    cin = getattr(model, "in_channels", None)
    c_model = (cin - 1 if n_map else cin) if isinstance(cin, int) else None
    colour = denoise_colour_mode(model, x, colour)
    if colour == "opponent":
        if x.shape[0] != 3 or c_model not in (1, None):
            raise ValueError(f"colour='opponent' runs a one-channel model on an RGB image; got "
                             f"a {x.shape[0]}-channel image and a {c_model}-channel model")
        if sigma is not None and not n_map:
            raise ValueError("sigma is given but the model is blind (no noise-level input); "
                             "train it with noise_map=True to use a known σ")
        y = rgb_to_opponent(x)
        out = np.stack([denoise(model, y[c:c + 1], tile=tile, overlap=overlap, clip=False,
                                self_ensemble=self_ensemble,
                                sigma=None if sigma is None else
                                float(sigma) * OPPONENT_NOISE_SCALE[c])[0]
                        for c in range(3)])
        out = opponent_to_rgb(out)
        if refine is not None:
            out = refine(out)
        return np.clip(out, 0, 1) if clip else out
    if n_map:
        if sigma is None:
            sigma = estimate_noise(x)
        sigma = float(sigma)
        if not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"sigma must be a finite noise level >= 0, got {sigma}")
        x = np.concatenate([x, np.full_like(x[:1], sigma)], 0)
    elif sigma is not None:
        raise ValueError("sigma is given but the model is blind (no noise-level input); "
                         "train it with noise_map=True to use a known σ")
    if self_ensemble and isinstance(cin, int) and cin != x.shape[0]:
        raise ValueError(f"the model expects {cin}-channel images, the image has {x.shape[0]}")
    f = SelfEnsemble(model) if self_ensemble else model
    out = predict_tiled(f, x, tile=tile, overlap=overlap)
    if refine is not None:
        out = refine(out)
    return np.clip(out, 0, 1) if clip else out


# --- inpainting ------------------------------------------------------------------------------
class MaskInput(Damage):
    """Wraps a damage so the model also sees the mask: ``x̃' = [x̃, m]`` (C + 1 channels)."""

    def __init__(self, damage: Damage):
        self.damage = damage

    def with_mask(self, x, generator=None):
        y, m = self.damage.with_mask(x, generator)
        return torch.cat([y, m], 1), m


def train_inpainter(images: Sequence, *, damage: str | Damage = "text",
                    given_mask: bool = False, features: int = 32, depth: int = 3,
                    fill: str = "diffusion", **kwargs):
    """An inpainting U-Net: blind (input the damaged image) or with the mask given
    (input ``[x̃, m]``, C + 1 channels). ``damage`` ``"text"`` (watermark / captions),
    ``"blocks"`` or a :class:`~aekit.images.Damage`.

    With the mask given, ``fill="diffusion"`` (the default) starts the U-Net from
    :func:`~aekit.models.unet.diffusion_fill` of the holes and trains it to correct that fill
    inside them only (see :class:`~aekit.models.UNetAE`); ``fill="none"`` is the plain U-Net
    on ``[x̃, m]`` with a sigmoid output."""
    imgs = [as_chw(im, f"images[{i}]") for i, im in enumerate(images)]
    d = make_damage(damage) if isinstance(damage, str) else damage
    c = imgs[0].shape[0]
    if given_mask and fill != "none":
        m = UNetAE(c + 1, out_channels=c, features=features, depth=depth, fill=fill)
    else:
        m = UNetAE(c + (1 if given_mask else 0), out_channels=c, features=features, depth=depth,
                   output="sigmoid")
    return train_image_model(m, imgs, MaskInput(d) if given_mask else d, **kwargs)


def inpaint(model: nn.Module, image, mask=None, *, tile: int = 128, overlap: int = 32
            ) -> np.ndarray:
    """Inpaint ``image`` (C, H, W). A model trained with the mask given needs ``mask``
    (H, W), 1 = damaged; the known pixels are then kept: ``x̂ = m ⊙ f([x̃, m]) + (1 − m) ⊙ x̃``.
    A blind model gets the image alone and its whole output is returned."""
    x = as_chw(image)
    C, H, W = x.shape
    cin = getattr(model, "in_channels", C)
    if cin == C + 1:
        if mask is None:
            raise ValueError("this inpainting model was trained with the mask given: pass "
                             "mask (H, W), 1 = damaged")
        m = np.asarray(mask, np.float32)
        m = m[0] if m.ndim == 3 else m
        if m.shape != (H, W):
            raise ValueError(f"mask has shape {m.shape}, the image is {H}x{W}")
        m = (m > 0.5).astype(np.float32)
        pred = predict_tiled(model, np.concatenate([x, m[None]]), tile=tile, overlap=overlap)
        return np.clip(m * pred + (1 - m) * x, 0, 1)
    if cin != C:
        raise ValueError(f"the model expects {cin}-channel images, the image has {C}")
    return np.clip(predict_tiled(model, x, tile=tile, overlap=overlap), 0, 1)


# --- compression -----------------------------------------------------------------------------
_MAGIC = b"AEKC1\n"


class _NoisyCode(nn.Module):
    """Training proxy for a quantised code: ``x̂ = g(z + u)``, ``u ~ U(−Δ/2, Δ/2)``,
    ``Δ = 1/(2^b − 1)`` (Ballé et al. 2017, section 2.1: additive uniform noise stands in for
    rounding during training)."""

    def __init__(self, model: ConvAE, bits: int):
        super().__init__()
        self.model, self.step = model, 1.0 / (2 ** bits - 1)
        self.output = model.output

    def forward(self, x):
        z, pre = self.model.encode_full(x)
        z = z + (torch.rand_like(z) - 0.5) * self.step if self.training else z
        logits = self.model._decode(z, _sizes_for(self.model, x))
        return AEOutput(z, self.model._squash(logits), logits, pre)


def _sizes_for(model: ConvAE, x: torch.Tensor):
    from ..models.conv import conv_output_sizes
    return conv_output_sizes(tuple(x.shape[2:]), model._ks, model._ss)


def train_compressor(images: Sequence, *, code_channels: int = 8, bits: int = 4,
                     channels: Sequence[int] = (64, 64, 64), **kwargs):
    """A fully convolutional ConvAE with a sigmoid code map (``code_channels`` × H/8 × W/8),
    trained with uniform noise of one quantisation step on the code (so the decoder learns to
    read a ``bits``-bit code)."""
    imgs = [as_chw(im, f"images[{i}]") for i, im in enumerate(images)]
    c = imgs[0].shape[0]
    m = ConvAE([c, 48, 48], channels=list(channels), code_size=code_channels,
               kernel_size=[5] + [3] * (len(channels) - 1), code="map",
               code_activation="sigmoid", output="sigmoid")
    train_image_model(_NoisyCode(m, bits), imgs, None, **kwargs)
    m.eval()
    return m


def _pad_multiple(x: np.ndarray, m: int) -> np.ndarray:
    H, W = x.shape[1:]
    ph, pw = (-H) % m, (-W) % m
    return np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(H, W) > max(ph, pw)
                  else "edge")


@torch.no_grad()
def compress_image(model: ConvAE, image, bits: int = 4, path: str | os.PathLike | None = None
                   ) -> bytes:
    """Encode ``image`` (C, H, W) to bytes: the code map quantised to ``bits`` bits,
    ``q = round(z (2^b − 1))``, LZMA-compressed, after a JSON header (no pickle). Written
    atomically to ``path`` if given. Rate: ``8 · len(bytes) / (H W)`` bits per pixel."""
    if not isinstance(model, ConvAE) or model.code != "map" or model.code_activation != \
            "sigmoid":
        raise ValueError("compression needs a ConvAE with code='map' and "
                         "code_activation='sigmoid' (see train_compressor)")
    if not 1 <= int(bits) <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    x = as_chw(image)
    if x.shape[0] != model.image_shape[0]:
        raise ValueError(f"the model expects {model.image_shape[0]}-channel images, the image "
                         f"has {x.shape[0]}")
    C, H, W = x.shape
    stride = int(np.prod(model._ss))
    xp = torch.from_numpy(_pad_multiple(x, stride))[None]
    model.eval()
    z = model.encode(xp)[0].numpy()  # (k, h, w) in (0, 1)
    levels = 2 ** int(bits) - 1
    q = np.rint(np.clip(z, 0, 1) * levels).astype(np.uint8)
    header = json.dumps({"shape": [C, H, W], "code_shape": list(q.shape), "bits": int(bits),
                         "model": model.config()}).encode()
    payload = lzma.compress(q.tobytes(), preset=9 | lzma.PRESET_EXTREME)
    data = _MAGIC + struct.pack("<I", len(header)) + header + payload
    if path is not None:
        atomic_write_bytes(path, data)
    return data


def read_compressed(data: bytes | str | os.PathLike) -> tuple[dict, np.ndarray]:
    """``(header, q)`` of a compressed image (bytes or a file)."""
    where = "data"
    if not isinstance(data, bytes | bytearray):
        where = str(data)
        p = Path(data)
        if not p.is_file():
            raise FileNotFoundError(f"no such compressed image: {p}")
        data = p.read_bytes()
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
        raise FileFormatError(f"{where} is not an aekit compressed image (bad magic)",
                              expected="an aekit compressed image")
    (n,) = struct.unpack("<I", data[len(_MAGIC):len(_MAGIC) + 4])
    start = len(_MAGIC) + 4
    try:
        header = json.loads(data[start:start + n])
        shape = [int(v) for v in header["code_shape"]]
        q = np.frombuffer(lzma.decompress(data[start + n:]), np.uint8)
        q = q.reshape(shape)
    except (ValueError, KeyError, TypeError, lzma.LZMAError) as e:
        raise FileFormatError(f"{where} is a damaged aekit compressed image: {e}",
                              expected="an aekit compressed image") from None
    return header, q


@torch.no_grad()
def decompress_image(model: ConvAE, data) -> np.ndarray:
    """Decode bytes / a file from :func:`compress_image` back to (C, H, W) in [0, 1]."""
    header, q = read_compressed(data)
    if header.get("model") != model.config():
        raise ValueError("the compressed image was made with another model (configs differ)")
    C, H, W = header["shape"]
    z = torch.from_numpy(q.astype(np.float32) / (2 ** int(header["bits"]) - 1))[None]
    model.eval()
    stride = int(np.prod(model._ss))
    Hp, Wp = H + (-H) % stride, W + (-W) % stride
    out = model._squash(model._decode(z, _sizes_for(model, torch.empty(1, C, Hp, Wp))))
    return np.clip(out[0, :, :H, :W].numpy(), 0, 1)
