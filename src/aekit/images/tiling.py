"""Whole-image inference of any size by overlapping tiles blended with a smooth window.

``ŷ = Σ_t w_t · f(x_t) / Σ_t w_t`` (sums over the tiles covering a pixel), with ``w`` the
separable window ``w(i) = sin²(π (i + ½) / T)`` (T the tile side), which is > 0 everywhere
and small at the tile borders where a convolutional net sees padding: no seams. The sums are
accumulated in float64, so an identity model reproduces a float32 image exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from .io import as_chw

__all__ = ["predict_tiled", "tile_positions", "window"]


def window(tile: int) -> np.ndarray:
    """The 2-D blending window (T, T): ``w(i) w(j)`` with ``w(i) = sin²(π (i + ½) / T)``."""
    w = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    return np.outer(w, w)


def tile_positions(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``0..size`` with stride
    ``tile − overlap``; the last tile ends at ``size``."""
    if tile >= size:
        return [0]
    stride = max(1, tile - overlap)
    pos = list(range(0, size - tile + 1, stride))
    if pos[-1] != size - tile:
        pos.append(size - tile)
    return pos


def _is_image_model(model) -> bool:
    return hasattr(model, "_images") or hasattr(model, "_as_images")


def _fixed_size(model, channels: int) -> tuple[int, int] | None:
    """The H × W a model needs (flat-code and dense models), or None for any size."""
    if getattr(model, "code", None) == "map" or getattr(model, "n_features", None) is None:
        return None
    if hasattr(model, "_as_images"):  # U-Net / DnCNN: fully convolutional
        return None
    shape = getattr(model, "image_shape", None)
    if shape is not None:
        return int(shape[1]), int(shape[2])
    d = int(model.n_features)  # a dense model on square patches: d = C·T²
    side = int(round((d / channels) ** 0.5))
    if side * side * channels != d:
        raise ValueError(f"a model with {d} input features cannot take square {channels}-"
                         "channel tiles")
    return side, side


def _channels(model) -> int | None:
    for attr in ("in_channels", "channels"):
        v = getattr(model, attr, None)
        if isinstance(v, int):
            return v
    shape = getattr(model, "image_shape", None)
    return int(shape[0]) if shape is not None else None


def run_model(model, x: torch.Tensor) -> torch.Tensor:
    """The image a model maps a batch to: ``model(x)``'s reconstruction (or the output of a
    plain callable), shaped ``(n, C_out, H, W)`` for ``x`` of shape ``(n, C, H, W)``."""
    if callable(model) and not isinstance(model, torch.nn.Module):
        return model(x)
    out = model(x)
    rec = out.reconstruction if hasattr(out, "reconstruction") else out
    return rec.reshape(x.shape[0], -1, *x.shape[2:])


@torch.no_grad()
def predict_tiled(model, image, *, tile: int = 128, overlap: int = 32, batch_size: int = 16,
                  out_channels: int | None = None) -> np.ndarray:
    """Apply an image model to a whole image of any size by overlapping, blended tiles.

    Parameters
    ----------
    model : Autoencoder or callable ``(n, C, T, T) -> (n, C', T, T)``
        Run in eval mode. Flat-code models (``ConvAE`` with ``code="flat"``, models with a
        fixed ``image_shape``) get tiles of exactly their size.
    image : array (C, H, W), (H, W) or (H, W, C)
    tile, overlap : int
        Tile side and overlap in pixels (``overlap < tile``).
    batch_size : int
        Tiles per forward pass.
    out_channels : int, optional
        C' of the output (default: the model's output channels, found on the first batch).

    Returns
    -------
    ndarray, float32 (C', H, W)

    Raises
    ------
    ValueError
        The image's channels differ from the model's, or the image is smaller than a
        fixed-size model's input.
    """
    x = as_chw(image, any_channels=True)
    C, H, W = x.shape
    want = _channels(model) if isinstance(model, torch.nn.Module) else None
    if want is not None and want != C:
        raise ValueError(f"the model expects {want}-channel images, the image has {C} "
                         f"(shape {x.shape}); convert it (mode 'L' or 'RGB')")
    fixed = _fixed_size(model, C) if isinstance(model, torch.nn.Module) else None
    if fixed is not None:
        if H < fixed[0] or W < fixed[1]:
            raise ValueError(f"image {H}x{W} is smaller than the model's input {fixed[0]}x"
                             f"{fixed[1]}")
        th, tw = fixed
    else:
        th, tw = min(tile, H), min(tile, W)
    if not 0 <= overlap < (tile if fixed is None else max(th, tw)):
        raise ValueError(f"overlap must be in [0, tile), got {overlap} with tile "
                         f"{tile if fixed is None else (th, tw)}")
    was = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    dtype = torch.float32
    if isinstance(model, torch.nn.Module):
        ps = list(model.parameters())
        dtype = ps[0].dtype if ps else torch.float32
    wy = np.sin(np.pi * (np.arange(th) + 0.5) / th) ** 2
    wx = np.sin(np.pi * (np.arange(tw) + 0.5) / tw) ** 2
    win = np.outer(wy, wx)  # (th, tw), > 0
    coords = [(y, x0) for y in tile_positions(H, th, min(overlap, th - 1))
              for x0 in tile_positions(W, tw, min(overlap, tw - 1))]
    acc = den = None
    xt = torch.from_numpy(x)
    try:
        for b in range(0, len(coords), batch_size):
            cs = coords[b:b + batch_size]
            batch = torch.stack([xt[:, y:y + th, x0:x0 + tw] for y, x0 in cs]).to(dtype)
            if isinstance(model, torch.nn.Module) and not _is_image_model(model):
                out = model(batch.flatten(1))  # dense models: (n, C*T*T) rows
                rec = out.reconstruction if hasattr(out, "reconstruction") else out
                pred = rec.reshape(batch.shape[0], -1, th, tw)
            else:
                pred = run_model(model, batch)
            pred = pred.double().numpy()
            if acc is None:
                co = out_channels or pred.shape[1]
                acc = np.zeros((co, H, W))
                den = np.zeros((H, W))
            for (y, x0), p in zip(cs, pred):
                acc[:, y:y + th, x0:x0 + tw] += win * p
                den[y:y + th, x0:x0 + tw] += win
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was)
    return (acc / den).astype(np.float32)
