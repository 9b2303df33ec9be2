"""Apply a model to inputs larger than memory, a chunk of rows at a time.

``map_rows(model, X, "encode" | "reconstruct" | "score", out=path)`` reads ``X`` (an array or
an ``np.memmap`` from ``np.load(path, mmap_mode="r")``) in chunks and writes the result to a
``.npy`` file through a memory map, so peak memory is bounded by the chunk size, not the
input size. The output is written to a temporary file and renamed at the end: an error part
way (e.g. NaN in row 10⁷) never leaves half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .arrays import NpyReader, load_array

if TYPE_CHECKING:  # annotations only: data is below models in the layers
    from ..models.base import Autoencoder

__all__ = ["OPERATIONS", "map_rows", "open_rows"]

OPERATIONS = ("encode", "reconstruct", "score")


def open_rows(path: str | os.PathLike, *, header: bool | None = None, **image_options):
    """Open a ``.npy`` file for chunked reading (:class:`aekit.data.NpyReader`, nothing read
    yet); other formats are loaded into memory with :func:`aekit.data.load_array` (``header``:
    its CSV header choice; ``image_options``: ``image_size``, ``patch_size``, ... for image
    files and folders)."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        return NpyReader(p)
    return load_array(p, header=header, **image_options).X


def _apply(model: Autoencoder, x: torch.Tensor, op: str) -> torch.Tensor:
    if op == "encode":
        return model.encode(x)
    r = model(x).reconstruction
    return r if op == "reconstruct" else (r - x).pow(2).sum(1)


@torch.no_grad()
def map_rows(model: Autoencoder, X: np.ndarray, op: str, *, out: str | os.PathLike | None = None,
             chunk: int = 8192) -> np.ndarray | Path:
    """Codes, reconstructions or per-sample squared errors of ``X`` (n, d), chunk by chunk.

    Returns an array (n, k), (n, d) or (n,) when ``out`` is None, else writes ``out`` (.npy)
    atomically and returns its path. Raises ``ValueError`` naming the first bad row range on
    NaN/inf, or on a wrong feature count.
    """
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if X.ndim != 2 or X.shape[1] != model.n_features:
        raise ValueError(f"input must have shape (n, {model.n_features}), got {X.shape}")
    if len(X) == 0:
        raise ValueError("input is empty (0 samples)")
    n = len(X)
    width = {"encode": (model.n_components,), "reconstruct": (model.n_features,),
             "score": ()}[op]
    model.eval()
    tmp = None
    if out is None:
        res = np.empty((n, *width), np.float32)
    else:
        out = Path(out)
        if out.suffix.lower() != ".npy":
            raise ValueError(f"out must be a .npy file, got {out.name!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp.npy", dir=out.parent)
        f = os.fdopen(fd, "wb")
        # header first, then rows appended chunk by chunk (no memory map: flat RSS)
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (n, *width)})
    try:
        for i in range(0, n, chunk):
            raw = np.asarray(X[i:i + chunk])
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                a = np.array(raw, dtype=np.float32)  # a writable copy of the chunk
            if not np.isfinite(a).all():
                if raw.dtype.kind in "fc" and not np.isfinite(raw).all():
                    raise ValueError("input contains NaN or infinite values in rows "
                                     f"{i}..{i + len(a) - 1}")
                raise ValueError(f"input values in rows {i}..{i + len(a) - 1} overflow "
                                 "float32 (|x| > 3.4e38)")
            y = _apply(model, torch.from_numpy(np.ascontiguousarray(a)), op).numpy()
            if tmp is None:
                res[i:i + len(a)] = y
            else:
                f.write(np.ascontiguousarray(y, dtype="<f4").tobytes())
        if tmp is None:
            return res
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, out)
        tmp = None
        return out
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                f.close()
                os.unlink(tmp)
