"""Reading and writing image files with Pillow: PNG, JPEG, TIFF; grayscale or RGB; 8 or 16 bit.

Arrays are float32 ``(C, H, W)`` in [0, 1] (C = 1 gray, 3 RGB). Writing is atomic (a
temporary file renamed into place), so a failed write never leaves half a file.
"""

from __future__ import annotations

import io as _io
import os
from pathlib import Path

import numpy as np

from ..data.images import IMAGE_SUFFIXES, read_image
from ..io import FileFormatError, atomic_write_bytes

__all__ = ["IMAGE_SUFFIXES", "as_chw", "list_images", "load_folder", "read_image",
           "write_image"]

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
            ".bmp": "BMP", ".webp": "WEBP"}


def as_chw(image, name: str = "image", *, any_channels: bool = False) -> np.ndarray:
    """``image`` as float32 (C, H, W): accepts (H, W), (C, H, W) with C in {1, 3} or
    (H, W, C) with C in {1, 3, 4} (alpha dropped); with ``any_channels`` any (C, H, W)."""
    a = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[0] not in (1, 3) and a.shape[2] in (1, 3, 4) \
            and not any_channels:
        a = a[..., :3].transpose(2, 0, 1)
    if a.ndim != 3 or (a.shape[0] not in (1, 3) and not any_channels):
        raise ValueError(f"{name} must be (H, W), (C, H, W) or (H, W, C) with 1 or 3 channels, "
                         f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(a)


def write_image(path: str | os.PathLike, image, *, bits: int = 8, quality: int = 95) -> Path:
    """Write ``image`` (values in [0, 1], clipped) to ``path``; the suffix picks the format.

    ``q = round(clip(x, 0, 1) · (2^bits − 1))``. 16 bits are for grayscale PNG/TIFF (Pillow
    has no 16-bit RGB mode). JPEG/WebP use ``quality``. Written atomically.

    Parameters
    ----------
    path : path
        ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``, ``.bmp`` or ``.webp``.
    image : array (H, W), (C, H, W) or (H, W, C), C in {1, 3}
    bits : {8, 16}
    quality : int
        JPEG/WebP quality 1..100.
    """
    from PIL import Image

    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path}: unsupported suffix {path.suffix!r}; expected one "
                         f"of {', '.join(sorted(_FORMATS))}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    a = as_chw(image)
    if bits == 16 and (a.shape[0] != 1 or fmt not in ("PNG", "TIFF")):
        raise ValueError(f"cannot write {path}: 16 bits are supported for grayscale PNG/TIFF "
                         f"only (got {a.shape[0]} channels, {fmt})")
    top = 65535.0 if bits == 16 else 255.0
    q = np.rint(np.clip(a, 0.0, 1.0) * top)
    if bits == 16:
        im = Image.fromarray(q[0].astype(np.uint16))  # Pillow mode "I;16"
    elif a.shape[0] == 1:
        im = Image.fromarray(q[0].astype(np.uint8), mode="L")
    else:
        im = Image.fromarray(q.transpose(1, 2, 0).astype(np.uint8), mode="RGB")
    buf = _io.BytesIO()
    kw = {"quality": int(quality)} if fmt in ("JPEG", "WEBP") else {}
    im.save(buf, format=fmt, **kw)
    atomic_write_bytes(path, buf.getvalue())
    return path


def list_images(folder: str | os.PathLike, *, skip_other: bool = False) -> list[Path]:
    """Image files of ``folder`` sorted by name.

    A file without an image suffix raises (naming it) unless ``skip_other``; hidden files
    (``.name``) and sub-folders are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} is not a directory")
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        elif not skip_other:
            raise FileFormatError(f"{p} is not an image file (expected one of "
                                  f"{', '.join(IMAGE_SUFFIXES)}); remove it or skip other files",
                                  path=p, expected="an image file")
    if not files:
        raise ValueError(f"image folder {str(folder)!r} holds no images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_folder(folder: str | os.PathLike, mode: str | None = "L", *,
                skip_other: bool = False) -> list[np.ndarray]:
    """Every image of a folder, of any sizes, as a list of float32 (C, H, W) arrays in [0, 1].

    ``mode`` ``"L"`` or ``"RGB"`` converts every image; unreadable files raise
    :class:`aekit.io.FileFormatError` naming the file.
    """
    out = []
    for p in list_images(folder, skip_other=skip_other):
        a = read_image(p, mode)
        if a.shape[0] == 4:
            a = a[:3]
        out.append(a)
    return out
