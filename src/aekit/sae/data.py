"""Activation matrices as training data: in memory or streamed from a ``.npy`` file.

:class:`ActivationSource` is a :class:`~aekit.data.DataSource` over an (n, d) activation
matrix: an array, an ``np.memmap``, an :class:`~aekit.data.NpyReader` or the path of a
``.npy`` file, which is then read batch by batch with ``pread`` (flat memory however large the
file is). Rows come back in the order asked, so training from a file gives the same weights as
training from the same matrix in memory. Non-finite values are refused with the file and the
first bad row named.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.arrays import NpyReader
from ..data.batch import Batch

__all__ = ["ActivationSource", "as_activations"]


def _first_bad_row(a: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])


class ActivationSource:
    """Rows of an activation matrix X (n, d), as :class:`~aekit.data.batch.Batch` es.

    Parameters
    ----------
    X : str, Path, NpyReader, np.ndarray, np.memmap or Tensor, shape (n, d)
        A ``.npy`` path is opened with :class:`~aekit.data.NpyReader` and streamed.
    n_features : int, optional
        Expected width d (the model's); a different width is a ``ValueError``.
    check : bool
        Scan the whole matrix once, chunk by chunk, for NaN/inf before training (the error
        names the file and the row). Batches are checked again as they are read.
    chunk : int
        Rows per chunk of the scan.
    dtype : torch.dtype
        Dtype of the batches.
    name : str
        What the error messages call the data when it is not a file.

    Raises
    ------
    FileNotFoundError, aekit.io.FileFormatError, ValueError
        Missing file; not a 2-D numeric ``.npy``; wrong width; empty; NaN/inf (file and row).
    """

    def __init__(self, X: Any, *, n_features: int | None = None, check: bool = True,
                 chunk: int = 65536, dtype: torch.dtype = torch.float32, name: str = "X"):
        if isinstance(X, str | os.PathLike):
            p = Path(X)
            if p.suffix.lower() != ".npy":
                raise ValueError(f"{name}: activations to stream must be a .npy file, got "
                                 f"{p.name!r}")
            X = NpyReader(p)
        self.path = X.path if isinstance(X, NpyReader) else getattr(X, "filename", None)
        self.what = f"activations file {self.path}" if self.path else name
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if not isinstance(X, NpyReader | np.ndarray):
            X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{self.what} must be 2-D (n_samples, n_features), got shape "
                             f"{tuple(X.shape)}")
        if X.dtype.kind not in "fiu" or X.dtype == np.bool_:
            raise ValueError(f"{self.what} must be real and numeric, got dtype {X.dtype}")
        if X.shape[0] == 0:
            raise ValueError(f"{self.what} is empty (0 rows)")
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"{self.what} has width {X.shape[1]}, the model expects "
                             f"{n_features} features")
        self.X, self.dtype = X, dtype
        self.shape = (int(X.shape[0]), int(X.shape[1]))
        self.lazy = isinstance(X, NpyReader) or isinstance(X, np.memmap)
        if check and X.dtype.kind == "f":
            for i in range(0, self.shape[0], int(chunk)):
                a = np.asarray(X[i:i + int(chunk)])
                if not np.isfinite(a).all():
                    raise ValueError(f"{self.what} has a non-finite value (NaN or inf) in row "
                                     f"{i + _first_bad_row(a)}")
        if not self.lazy:
            self.X = torch.from_numpy(np.ascontiguousarray(X)).to(dtype)
        self.index: torch.Tensor | None = None  # rows of X this source covers (subset)

    def subset(self, rows: Any) -> ActivationSource:
        """The rows ``rows`` (1-D ints, in that order) of this source as a source of its own,
        sharing the matrix (no copy, no second scan): e.g. a token budget out of a large file."""
        r = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        if r.ndim != 1 or len(r) == 0:
            raise ValueError(f"rows must be a non-empty 1-D index array, got shape "
                             f"{tuple(r.shape)}")
        if int(r.min()) < 0 or int(r.max()) >= len(self):
            raise ValueError(f"rows must be in [0, {len(self)}), got {int(r.min())}.."
                             f"{int(r.max())}")
        sub = object.__new__(ActivationSource)
        sub.__dict__.update(self.__dict__)
        sub.index = r if self.index is None else self.index[r]
        sub.shape = (len(r), self.shape[1])
        return sub

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def n_features(self) -> int:
        """Width d of the rows."""
        return self.shape[1]

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Contiguous rows ``start:stop`` as a (m, d) tensor."""
        if self.index is not None:
            return self.take(torch.arange(start, stop)).x
        if not self.lazy:
            return self.X[start:stop]
        return self._checked(np.asarray(self.X[start:stop]), np.arange(start, stop))

    def _checked(self, a: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a)).to(self.dtype)
        if not torch.isfinite(t).all():  # the file changed since the scan
            bad = int(idx[_first_bad_row(t.numpy())])
            raise ValueError(f"{self.what} has a non-finite value (NaN or inf) in row {bad}")
        return t

    def take(self, idx: torch.Tensor) -> Batch:
        """Rows ``idx`` (int64, any order) as a :class:`Batch`."""
        if self.index is not None:
            idx = self.index[idx]
        if not self.lazy:
            return Batch(self.X.index_select(0, idx))
        i = idx.numpy()
        return Batch(self._checked(np.asarray(self.X[i]), i))

    def all(self) -> Batch:
        """Every row in memory."""
        return Batch(self.rows(0, len(self)))

    def chunks(self, size: int = 8192):
        """``(start, rows)`` over the matrix in order, ``size`` rows at a time."""
        for i in range(0, len(self), int(size)):
            yield i, self.rows(i, min(i + int(size), len(self)))


def as_activations(X: Any, *, n_features: int | None = None, check: bool = True,
                   name: str = "X") -> ActivationSource:
    """``X`` as an :class:`ActivationSource` (returned as is when it already is one, after
    checking its width)."""
    if isinstance(X, ActivationSource):
        if n_features is not None and X.n_features != n_features:
            raise ValueError(f"{X.what} has width {X.n_features}, the model expects "
                             f"{n_features} features")
        return X
    return ActivationSource(X, n_features=n_features, check=check, name=name)
