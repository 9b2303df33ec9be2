"""Arrays from files and the checks every loader shares: ``.npy``/``.npz``/``.csv``
(:func:`load_array`), IDX (:func:`load_idx`, the MNIST format), rows of a ``.npy`` read on
demand (:class:`NpyReader`), finite-2-D checks, [0, 1] scaling and a seeded split.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "Dataset",
    "NpyReader",
    "check_finite_2d",
    "load_array",
    "load_idx",
    "load_npz",
    "read_bytes",
    "scale_unit",
    "train_val_split",
]


class Dataset(NamedTuple):
    """Features and optional labels: ``X`` (n, d) float32, ``y`` (n,) or None, and the image
    shape of one sample (e.g. ``(28, 28)``) when the features are flattened images."""

    X: np.ndarray
    y: np.ndarray | None
    image_shape: tuple[int, ...] | None = None


def check_finite_2d(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a 2-D float array, raising ``ValueError`` on NaN/inf, empty input,
    a wrong number of dimensions or features, or non-numeric data."""
    try:
        A = np.asarray(X)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{name} must be a numeric 2-D array: {e}") from None
    if A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {A.dtype}")
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {A.shape}")
    if A.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if A.shape[1] == 0:
        raise ValueError(f"{name} has 0 features")
    if n_features is not None and A.shape[1] != n_features:
        raise ValueError(f"{name} has {A.shape[1]} features, expected {n_features}")
    if not np.issubdtype(A.dtype, np.floating):
        A = A.astype(np.float32)
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return A


def scale_unit(X: np.ndarray, *, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Min-max scale to [0, 1]: ``(X − lo) / (hi − lo)`` with global ``lo``/``hi`` (the data's
    own min and max unless given, e.g. 0 and 255 for 8-bit images). Returns float32."""
    X = np.asarray(X, dtype=np.float32)
    lo = float(X.min()) if lo is None else float(lo)
    hi = float(X.max()) if hi is None else float(hi)
    if hi <= lo:
        raise ValueError(f"cannot scale to [0, 1]: max {hi} <= min {lo}")
    return (X - lo) / (hi - lo)


def train_val_split(X: np.ndarray, y: np.ndarray | None = None, *, val_fraction: float = 0.1,
                    seed: int = 0):
    """Seeded random split: returns ``(X_train, X_val, y_train, y_val)`` (labels None if none).

    ``val_fraction`` in [0, 1); 0 gives an empty validation set (``X_val`` is None).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(X)
    n_val = int(round(n * val_fraction))
    if n_val == 0:
        return X, None, y, None
    if n - n_val < 1:
        raise ValueError(f"val_fraction={val_fraction} leaves no training samples out of {n}")
    perm = np.random.default_rng(seed).permutation(n)
    tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return X[tr], X[va], (y[tr] if y is not None else None), (y[va] if y is not None else None)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Layout: magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the
    data. Raises ``ValueError`` on a bad magic number or a size mismatch (truncation).

    Reference: LeCun et al., "THE MNIST DATABASE of handwritten digits" (file format section).
    """
    path = Path(path)
    raw = read_bytes(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dt = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(shape, dtype=np.int64))
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dt.itemsize:
        raise ValueError(f"{path}: IDX header says shape {shape} ({count * dt.itemsize} bytes) "
                         f"but the file holds {len(body)} bytes (truncated or corrupt)")
    return np.frombuffer(body, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def read_bytes(path: Path) -> bytes:
    """The bytes of file ``path``; clear errors for a missing file, a folder, no permission."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, expected a file")
    try:
        return path.read_bytes()
    except PermissionError:
        raise PermissionError(f"cannot read {path}: permission denied") from None


def load_npz(path: Path, keys: tuple[str, ...] | None = None, *, data: bytes | None = None,
              label: str | None = None) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (from ``path``, or from ``data`` bytes, e.g. an archive
    member named ``label``), never unpickling; ``keys`` must all be present."""
    import io
    import zipfile

    label = label or str(path)
    if data is None and not path.is_file():
        read_bytes(path)  # raises the clear missing-file / is-a-directory error
    try:
        with np.load(io.BytesIO(data) if data is not None else path, allow_pickle=False) as z:
            if keys is not None:
                missing = [k for k in keys if k not in z.files]
                if missing:
                    raise ValueError(f"{label} lacks arrays {missing} (has {z.files})")
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "lacks arrays" in str(e):
            raise
        raise ValueError(f"{label} is not a readable .npz file ({e}); aekit never loads "
                         "pickled data") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{label} is not a readable .npz file: {e}") from None


def load_array(path: str | os.PathLike, *, key: str | None = None) -> Dataset:
    """Load a 2-D array from ``.npy``, ``.npz`` (``key``, or ``X``/``x``/``data``/the only
    array; labels from ``y`` if present), or ``.csv`` (comma-separated numbers, an optional
    header line is skipped). Pickled object arrays are refused."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if not p.is_file():
            read_bytes(p)  # raises the clear missing-file / is-a-directory error
        try:
            X = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{p}: {e} (aekit never loads pickled arrays)") from None
        except (EOFError, OSError) as e:
            raise ValueError(f"{p} is not a readable .npy file: {e}") from None
        y = None
    elif suffix == ".npz":
        arrs = load_npz(p)
        if key is None:
            cands = [k for k in ("X", "x", "data", "x_train") if k in arrs]
            if cands:
                key = cands[0]
            elif len(arrs) == 1:
                key = next(iter(arrs))
            else:
                raise ValueError(f"{p} holds {sorted(arrs)}; pass key= to choose one")
        if key not in arrs:
            raise ValueError(f"{p} has no array {key!r} (has {sorted(arrs)})")
        X = arrs[key]
        y = arrs.get("y")
    elif suffix == ".csv":
        raw = read_bytes(p).decode("utf-8", errors="replace").splitlines()
        rows = [r for r in raw if r.strip()]
        if rows and not _numeric_row(rows[0]):
            rows = rows[1:]
        if not rows:
            raise ValueError(f"{p} holds no data rows")
        try:
            X = np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float64)
        except ValueError as e:
            raise ValueError(f"{p}: non-numeric or ragged CSV ({e})") from None
        y = None
    else:
        raise ValueError(f"{p}: unsupported file type {suffix!r}; expected .npy, .npz or .csv")
    if X.ndim > 2:  # images: (n, H, W[, C]) -> (n, H*W*C)
        shape = tuple(int(s) for s in X.shape[1:])
        X = X.reshape(len(X), -1)
    else:
        shape = None
    X = check_finite_2d(X, f"data in {p.name}")
    return Dataset(X.astype(np.float32), y, shape)


def _numeric_row(row: str) -> bool:
    try:
        [float(v) for v in row.split(",")]
        return True
    except ValueError:
        return False


class NpyReader:
    """Rows of a ``.npy`` file read on demand with ``pread`` (no memory map).

    Unlike ``np.load(mmap_mode="r")``, pages read here do not stay mapped in the process, so
    peak RSS stays flat however large the file is. Supports ``len``, ``shape``, ``dtype``,
    ``X[i:j]`` (contiguous rows) and ``X[index_array]`` (rows in the order given). Rows with
    more than one trailing dimension are flattened: shape (n, d) with d = prod(shape[1:]).

    Raises ``ValueError`` for a file that is not a plain (non-object, C-order) ``.npy``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such file: {self.path}")
        with open(self.path, "rb") as f:
            try:
                major, _ = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if major == 1
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(f)
            except (ValueError, EOFError, OSError) as e:
                raise ValueError(f"{self.path} is not a readable .npy file: {e}") from None
            self.offset = f.tell()
        if dtype.hasobject:
            raise ValueError(f"{self.path} holds Python objects; aekit never loads pickled data")
        if fortran and len(shape) > 1:
            raise ValueError(f"{self.path} is Fortran-ordered; save it in C order to stream it")
        if len(shape) < 2:
            raise ValueError(f"{self.path} must hold a 2-D array (n, d), got shape {shape}")
        d = int(np.prod(shape[1:]))
        self.shape = (int(shape[0]), d)
        self.dtype = dtype
        self.ndim = 2
        self.row_bytes = d * dtype.itemsize
        size = self.path.stat().st_size
        if size < self.offset + self.shape[0] * self.row_bytes:
            raise ValueError(f"{self.path} is truncated: header says {self.shape[0]} rows")

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, start: int, count: int) -> np.ndarray:
        buf = bytearray(count * self.row_bytes)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            got = os.preadv(fd, [buf], self.offset + start * self.row_bytes)
        finally:
            os.close(fd)
        if got != len(buf):
            raise ValueError(f"{self.path}: short read at row {start} (file changed?)")
        return np.frombuffer(buf, dtype=self.dtype).reshape(count, self.shape[1])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._read(start, max(0, stop - start))
        idx = np.asarray(key)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("NpyReader supports slices and 1-D integer index arrays")
        out = np.empty((len(idx), self.shape[1]), dtype=self.dtype)
        order = np.argsort(idx, kind="stable")
        fd = os.open(self.path, os.O_RDONLY)
        try:  # read rows in file order (sequential-ish I/O), place them in the order asked
            for j in order:
                i = int(idx[j])
                if not 0 <= i < self.shape[0]:
                    raise IndexError(f"row {i} out of range for {self.shape[0]} rows")
                out[j] = np.frombuffer(os.pread(fd, self.row_bytes,
                                                self.offset + i * self.row_bytes),
                                       dtype=self.dtype)
        finally:
            os.close(fd)
        return out
