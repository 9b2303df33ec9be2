"""Folders of images as a data source for :func:`aekit.fit` (read on demand with Pillow).

``ImageFolder("scans/")`` yields batches of the images themselves (reconstruction);
``ImageFolder("damaged/", targets="clean/")`` pairs every image with the file of the same name
in ``targets`` (damaged → clean, image → mask). Images are read when a batch asks for them,
so a folder larger than memory trains with bounded RAM. Pixel values are scaled to [0, 1]
from the file's bit depth (8-bit and 16-bit grayscale, RGB, RGBA).
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import torch

from ..io import FileFormatError
from .batch import Batch

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "read_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_MODES = ("L", "RGB", None)


def read_image(path: str | os.PathLike, mode: str | None = None) -> np.ndarray:
    """One image as float32 (c, H, W) in [0, 1].

    ``mode`` ``"L"`` (grayscale) or ``"RGB"`` converts; ``None`` keeps the file's channels
    (grayscale → 1, RGB → 3, RGBA → 4). 16-bit grayscale files are divided by 65535, others
    by 255.

    Raises
    ------
    aekit.io.FileFormatError
        The file is not an image Pillow can read, or decodes to more than Pillow's
        decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) of pixels (the message names
        it).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
            sixteen = im.mode.startswith("I")  # 16-bit grayscale opens as "I" or "I;16*"
            if mode is not None and im.mode != mode and not (mode == "L" and sixteen):
                im = im.convert(mode)  # (16-bit grayscale stays 16-bit: "L" would clip it)
                sixteen = False
            a = np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such image: {path}") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError, EOFError, IndexError, TypeError, struct.error, MemoryError,
            ZeroDivisionError, KeyError, Image.DecompressionBombWarning) as e:
        # Pillow's decoders report malformed files through many exception types.
        raise FileFormatError(f"{path} is not a readable image: {type(e).__name__}: {e}",
                              path=path, expected="an image Pillow can decode") from None
    a = a.astype(np.float32) / (65535.0 if sixteen else 255.0)
    return a[None] if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def _files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(f"{what} {str(folder)!r} is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{what} {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


class ImageFolder:
    """The images of a folder (sorted by name) as a data source, optionally paired.

    Parameters
    ----------
    folder : path
        Input images. All must have one size (use patches for mixed sizes).
    targets : path, optional
        Target images with the same file names (a target for every input, or an error
        naming the missing ones).
    mode : {"L", "RGB", None}
        Colour conversion of inputs (and targets, unless ``target_mode`` is given).
    flatten : bool
        Return (n, c·H·W) rows for dense models instead of (n, c, H, W).
    target_mode : {"L", "RGB", None}, optional

    Attributes
    ----------
    files, target_files : list of Path
    shape : tuple
        (c, H, W) of every input image.
    """

    def __init__(self, folder: str | os.PathLike, targets: str | os.PathLike | None = None, *,
                 mode: str | None = "L", flatten: bool = True, target_mode: str | None = None):
        if mode not in _MODES or target_mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r} / {target_mode!r}")
        self.files = _files(Path(folder), "folder")
        self.mode, self.flatten = mode, bool(flatten)
        self.target_mode = target_mode if target_mode is not None else mode
        self.target_files = None
        if targets is not None:
            by_name = {p.name: p for p in _files(Path(targets), "targets")}
            missing = [p.name for p in self.files if p.name not in by_name]
            if missing:
                raise ValueError(f"targets {str(targets)!r} has no image for {missing[:5]}"
                                 + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            self.target_files = [by_name[p.name] for p in self.files]
        self.shape = read_image(self.files[0], mode).shape

    def __len__(self) -> int:
        return len(self.files)

    def _stack(self, paths: list[Path], mode: str | None, what: str) -> torch.Tensor:
        arrs = [read_image(p, mode) for p in paths]
        for p, a in zip(paths, arrs):
            if a.shape != arrs[0].shape:
                raise ValueError(f"{what} {p.name} has shape {a.shape}, {paths[0].name} has "
                                 f"{arrs[0].shape}; images of a folder must share one size")
        t = torch.from_numpy(np.stack(arrs))  # (n, c, H, W)
        return t.flatten(1) if self.flatten else t

    def take(self, idx: torch.Tensor) -> Batch:
        """Images ``idx`` (and their targets) as a :class:`Batch`."""
        ids = [int(i) for i in idx]
        x = self._stack([self.files[i] for i in ids], self.mode, "image")
        if x.shape[1:] != (torch.Size([int(np.prod(self.shape))]) if self.flatten
                           else torch.Size(self.shape)):
            raise ValueError(f"images of a folder must share one size; expected {self.shape}")
        y = None if self.target_files is None else self._stack(
            [self.target_files[i] for i in ids], self.target_mode, "target")
        return Batch(x, y=y)

    def all(self) -> Batch:
        """Every image in memory (full-batch methods)."""
        return self.take(torch.arange(len(self)))
