"""Mini-batches with targets and the data sources :func:`aekit.fit` draws them from.

A :class:`Batch` is ``(x, x_tilde, y)``: the clean input, the encoder input after corruption,
and an optional target (a clean image for a damaged one, ab channels for L, a mask, class
labels). Reconstruction is the case ``y = None``, whose :attr:`Batch.target` is ``x``.

A data source is anything with ``len(source)`` and ``source.take(idx) -> Batch`` (rows ``idx``
in the order given); :class:`ArraySource` covers tensors, arrays, memory maps and
:class:`~aekit.data.NpyReader` files, alone or paired with targets. :func:`as_source` turns
what users pass to ``fit`` (``X``, ``(X, Y)`` or a source) into one.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from .arrays import NpyReader

__all__ = ["ArraySource", "Batch", "DataSource", "as_source", "as_tensor"]


class Batch(NamedTuple):
    """One mini-batch: inputs, corrupted inputs and targets.

    Attributes
    ----------
    x : Tensor, shape (n, ...)
        Clean inputs.
    x_tilde : Tensor, shape (n, ...), optional
        What the model is fed (``corruption(x)``); None means ``x`` itself.
    y : Tensor, optional
        Targets when they are not ``x``: (n, ...) images or masks, or (n,) int64 labels.
    rng_state : Tensor, optional
        Torch's global RNG state just before the model's forward pass on this batch, set by
        :class:`~aekit.objectives.Objective` for terms that replay the pass's dropout masks
        (virtual adversarial training).
    """

    x: torch.Tensor
    x_tilde: torch.Tensor | None = None
    y: torch.Tensor | None = None
    rng_state: torch.Tensor | None = None

    @property
    def input(self) -> torch.Tensor:
        """The model's input: ``x_tilde`` if set, else ``x``."""
        return self.x if self.x_tilde is None else self.x_tilde

    @property
    def target(self) -> torch.Tensor:
        """The loss target: ``y`` if set, else the clean ``x`` (reconstruction)."""
        return self.x if self.y is None else self.y

    @property
    def size(self) -> int:
        """Number of samples n (``len()`` of a NamedTuple counts its fields)."""
        return int(self.x.shape[0])


@runtime_checkable
class DataSource(Protocol):
    """What :func:`aekit.fit` draws batches from: ``len()`` and ``take(idx) -> Batch``."""

    def __len__(self) -> int: ...

    def take(self, idx: torch.Tensor) -> Batch: ...


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_tensor(A: Any, name: str, dtype: torch.dtype | None = None, *,
              n_features: int | None = None, allow_int: bool = False) -> torch.Tensor:
    """``A`` as a finite tensor with at least one row, with errors that name ``name``.

    Parameters
    ----------
    A : array-like or Tensor, shape (n, ...)
    name : str
        Used in error messages (``"X"``, ``"val"``, ``"y"``).
    dtype : torch.dtype, optional
        Float dtype to convert to (kept as is when None and ``allow_int``).
    n_features : int, optional
        If given, ``A`` must be 2-D with this many columns.
    allow_int : bool
        Keep integer data as int64 (class labels) instead of converting it to ``dtype``.
    """
    if isinstance(A, torch.Tensor):
        t = A.detach()
    else:
        arr = np.asarray(A)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       and not np.iscomplexobj(arr)):
            raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point()
                                                        or t.dtype in _INT_DTYPES):
        raise ValueError(f"{name} must be real and numeric, got dtype {t.dtype}")
    if n_features is not None:
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape "
                             f"{tuple(t.shape)}")
        if t.shape[1] != n_features:
            raise ValueError(f"{name} has {t.shape[1]} features, the model expects {n_features}")
    if t.ndim == 0 or t.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples), shape {tuple(t.shape)}")
    if allow_int and not t.is_floating_point():
        return t.to(torch.int64).contiguous()
    t = t.to(dtype or torch.float32).contiguous()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


class _Rows:
    """Rows of a memory-mapped array or :class:`~aekit.data.NpyReader`, read on demand.

    Only the rows of the current batch are read, so data larger than memory trains with
    bounded RAM; rows come back in the order asked, so results equal the in-memory path.
    """

    def __init__(self, A: Any, name: str, dtype: torch.dtype, n_features: int | None,
                 chunk: int = 65536):
        if len(A.shape) != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {A.shape}")
        if A.shape[0] == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        if n_features is not None and A.shape[1] != n_features:
            raise ValueError(f"{name} has {A.shape[1]} features, the model expects {n_features}")
        if not np.issubdtype(A.dtype, np.number) or A.dtype == np.bool_ or \
                np.issubdtype(A.dtype, np.complexfloating):
            raise ValueError(f"{name} must be real and numeric, got dtype {A.dtype}")
        for i in range(0, A.shape[0], chunk):  # one streaming pass to reject NaN/inf early
            if not np.isfinite(A[i:i + chunk]).all():
                raise ValueError(f"{name} contains NaN or infinite values (rows {i}..)")
        self.A, self.dtype, self.shape = A, dtype, tuple(A.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def index_select(self, dim: int, idx: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.A[idx.numpy()])).to(self.dtype)

    def load(self) -> torch.Tensor:
        return torch.from_numpy(np.array(self.A[:])).to(self.dtype)


def _is_lazy(A: Any) -> bool:
    return isinstance(A, np.memmap | NpyReader)


class ArraySource:
    """Inputs ``X`` (n, ...) and optional targets ``Y`` (n, ...) or labels (n,), as batches.

    ``take(idx)`` returns ``Batch(X[idx], y=Y[idx])``. An ``np.memmap`` or
    :class:`~aekit.data.NpyReader` ``X`` is read batch by batch instead of being loaded.

    Parameters
    ----------
    X : array-like, Tensor, np.memmap or NpyReader, shape (n, ...)
        Must be finite.
    Y : array-like or Tensor, shape (n, ...) or (n,), optional
        Targets; integer data is kept as int64 labels, float data must be finite.
    dtype : torch.dtype
        Float dtype of the inputs (and of float targets).
    n_features : int, optional
        If given, ``X`` must be (n, n_features).
    name : str
        Used in error messages.
    """

    def __init__(self, X: Any, Y: Any = None, *, dtype: torch.dtype = torch.float32,
                 n_features: int | None = None, name: str = "X"):
        self.X = (_Rows(X, name, dtype, n_features) if _is_lazy(X)
                  else as_tensor(X, name, dtype, n_features=n_features))
        self.Y = None
        if Y is not None:
            self.Y = as_tensor(Y, f"targets of {name}", dtype, allow_int=True)
            if self.Y.shape[0] != len(self):
                raise ValueError(f"targets of {name} have {self.Y.shape[0]} rows, {name} has "
                                 f"{len(self)}")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def lazy(self) -> bool:
        """True when rows are read from disk on demand."""
        return isinstance(self.X, _Rows)

    def take(self, idx: torch.Tensor) -> Batch:
        """Rows ``idx`` (int64, any order, repeats allowed) as a :class:`Batch`."""
        x = self.X.index_select(0, idx)
        return Batch(x, y=None if self.Y is None else self.Y.index_select(0, idx))

    def all(self) -> Batch:
        """Every row, in memory (full-batch methods such as L-BFGS)."""
        x = self.X.load() if self.lazy else self.X
        return Batch(x, y=self.Y)


def as_source(data: Any, *, dtype: torch.dtype = torch.float32, n_features: int | None = None,
              name: str = "X") -> DataSource:
    """What ``fit`` accepts as data, as a source: a source as is, ``X``, or ``(X, Y)``.

    A tuple ``(X, Y)`` pairs inputs with targets; anything else that is not a
    :class:`DataSource` (an array, a tensor, a list of rows, a memory map) is ``X`` alone
    (reconstruction).
    """
    if isinstance(data, DataSource) and not isinstance(data, torch.Tensor | np.ndarray | list):
        return data  # (arrays and tensors have len() and take() too, but are X)
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(f"data given as a tuple must be (X, Y), got {len(data)} items")
        return ArraySource(data[0], data[1], dtype=dtype, n_features=n_features, name=name)
    return ArraySource(data, dtype=dtype, n_features=n_features, name=name)
