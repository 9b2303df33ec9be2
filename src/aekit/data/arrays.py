"""Arrays from files and the checks every loader shares: ``.npy``/``.npz``/``.csv``
(:func:`load_array`), IDX (:func:`load_idx`, the MNIST format), rows of a ``.npy`` read on
demand (:class:`NpyReader`), finite-2-D checks, [0, 1] scaling and a seeded split.
"""

from __future__ import annotations

import gzip
import os
import struct
import tokenize
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..io import FileFormatError

__all__ = [
    "Dataset",
    "NpyReader",
    "check_finite_2d",
    "is_image_path",
    "load_array",
    "load_idx",
    "load_npz",
    "npy_header",
    "read_array",
    "read_bytes",
    "scale_unit",
    "split_indices",
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
    if np.issubdtype(A.dtype, np.complexfloating):
        raise ValueError(f"{name} holds complex numbers (dtype {A.dtype}); aekit works on real "
                         "data: put the real and imaginary parts in separate features")
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


def train_val_split(X: np.ndarray, y: np.ndarray | None = None, *,
                    validation_fraction: float = 0.1, random_state: int = 0, **old):
    """Seeded random split: returns ``(X_train, X_val, y_train, y_val)`` (labels None if none).

    ``n_val = round(validation_fraction · n)`` rows drawn by the permutation
    ``numpy.random.default_rng(random_state)``; ``validation_fraction`` in [0, 1), 0 gives an
    empty validation set (``X_val`` is None). The old keywords ``val_fraction`` and ``seed``
    still work until the next release, with a ``FutureWarning``.

    Reference: Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed.,
    sect. 7.2 (a validation set for model selection, held out from training).
    """
    if old:
        from ..schema import pop_renamed

        v = pop_renamed("aekit.data.train_val_split", old,
                        {"validation_fraction": validation_fraction,
                         "random_state": random_state},
                        {"validation_fraction": 0.1, "random_state": 0})
        validation_fraction, random_state = v["validation_fraction"], v["random_state"]
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    n = len(X)
    n_val = int(round(n * validation_fraction))
    if n_val == 0:
        return X, None, y, None
    if n - n_val < 1:
        raise ValueError(f"validation_fraction={validation_fraction} leaves no training "
                         f"samples out of {n}")
    perm = np.random.default_rng(random_state).permutation(n)
    tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return X[tr], X[va], (y[tr] if y is not None else None), (y[va] if y is not None else None)


def split_indices(n: int, *, validation_fraction: float = 0.1, groups=None,
                  random_state: int = 0, min_val: int = 2, min_train: int = 2,
                  **old) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row indices, random or grouped; ``(train_idx, val_idx)``.

    Without ``groups``: ``n_val = max(ceil(validation_fraction · n), min_val)`` rows drawn by
    a seeded permutation, so tiny data still gets a usable validation set. With ``groups``
    (n,) (e.g. a person or a document source per row): like scikit-learn's
    ``GroupShuffleSplit(n_splits=1, test_size=validation_fraction)``,
    ``ceil(validation_fraction · G)`` of
    the G distinct groups (at least one, at most G − 1), drawn by a seeded permutation, go
    to validation whole, so no group is on both sides.

    Raises ``ValueError`` naming the numbers when fewer than ``min_val`` validation or
    ``min_train`` training rows would remain (or fewer than two groups are given).

    Parameters
    ----------
    n : int
        Number of rows.
    validation_fraction : float in (0, 1)
    groups : array-like (n,), optional
    random_state : int
        Seed of the permutation (``numpy.random.default_rng``).
    min_val, min_train : int

    The old keywords ``val_fraction`` and ``seed`` still work until the next release, with a
    ``FutureWarning``.

    References
    ----------
    Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed., sect. 7.10
    (validation sets must not share units with the training set: group-wise splitting).
    """
    if old:
        from ..schema import pop_renamed

        v = pop_renamed("aekit.data.arrays.split_indices", old,
                        {"validation_fraction": validation_fraction,
                         "random_state": random_state},
                        {"validation_fraction": 0.1, "random_state": 0})
        validation_fraction, random_state = v["validation_fraction"], v["random_state"]
    val_fraction = validation_fraction
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(random_state)
    if groups is None:
        n_val = max(int(np.ceil(val_fraction * n)), int(min_val))
        if n - n_val < min_train:
            raise ValueError(
                f"n_samples = {n} is too few for a validation split: "
                f"validation_fraction={val_fraction} holds out {n_val} rows (at least "
                f"{min_val}) and at least {min_train} must remain for training, so at least "
                f"{min_val + min_train} samples are needed; pass more samples or turn early "
                "stopping off")
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups must have shape ({n},) (one group label per sample), got "
                         f"{g.shape}")
    labels, inv = np.unique(g, return_inverse=True)
    G = len(labels)
    if G < 2:
        raise ValueError(f"groups has {G} distinct value(s); a grouped validation split needs "
                         "at least 2")
    n_val_groups = min(max(int(np.ceil(val_fraction * G)), 1), G - 1)
    val_groups = rng.permutation(G)[:n_val_groups]
    is_val = np.isin(inv, val_groups)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(va) < min_val or len(tr) < min_train:
        raise ValueError(
            f"the grouped validation split (validation_fraction={val_fraction} of {G} groups "
            f"= {n_val_groups} groups) gives {len(va)} validation and {len(tr)} training rows; "
            f"at least {min_val} and {min_train} are needed: use more groups or samples")
    return tr, va


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
            raise FileFormatError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise FileFormatError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise FileFormatError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dt = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(shape, dtype=np.int64))
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dt.itemsize:
        raise FileFormatError(f"{path}: IDX header says shape {shape} ({count * dt.itemsize} "
                              f"bytes) but the file holds {len(body)} bytes (truncated or "
                              "corrupt)", path=path, field="shape")
    return np.frombuffer(body, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def read_bytes(path: Path) -> bytes:
    """The bytes of file ``path``; clear errors for a missing file, a folder, no permission."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise FileFormatError(f"{path} is a directory, expected a file", path=path,
                              expected="a file")
    try:
        return path.read_bytes()
    except PermissionError:
        raise PermissionError(f"cannot read {path}: permission denied") from None


def npy_header(f, label: str | os.PathLike, size: int | None
               ) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Read and check the header of a ``.npy`` stream ``f`` (positioned at its start):
    ``(shape, fortran_order, dtype, header_bytes)``, before any data is read.

    Refused with :class:`FileFormatError` naming ``label``: a bad magic or header, Python
    objects (pickles), complex, string or other non-numeric dtypes, and, when ``size`` (the
    stream's length in bytes) is given, a shape whose data would not fit in the stream, so a
    header claiming 10¹² rows is reported as truncated instead of being allocated.
    """
    try:
        major, _ = np.lib.format.read_magic(f)
        if major not in (1, 2, 3):
            raise ValueError(f"unsupported .npy format version {major}")
        read = (np.lib.format.read_array_header_1_0 if major == 1
                else np.lib.format.read_array_header_2_0)
        with warnings.catch_warnings():  # literal_eval of a hostile header may warn
            warnings.simplefilter("ignore")
            shape, fortran, dtype = read(f, max_header_size=1 << 16)
        hdr = f.tell()
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, OverflowError,
            RecursionError, MemoryError, tokenize.TokenError) as e:
        # numpy parses the header dict with the tokenizer and ast.literal_eval, which report
        # malformed text as SyntaxError/TokenError (found by tests/test_fuzz_files.py)
        raise FileFormatError(f"{label} is not a readable .npy file: bad header ({e})",
                              path=label, field="header", expected="a .npy header") from None
    if dtype.hasobject:
        raise FileFormatError(f"{label} holds Python objects (a pickle); aekit never loads "
                              "pickled data", path=label, field="dtype",
                              expected="a numeric dtype")
    if np.issubdtype(dtype, np.complexfloating):
        raise FileFormatError(f"{label} holds complex numbers (dtype {dtype}); aekit works on "
                              "real data: put the real and imaginary parts in separate features",
                              path=label, field="dtype", expected="a real numeric dtype")
    if dtype.fields is not None or dtype.subdtype is not None or not (
            np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise FileFormatError(f"{label} has dtype {dtype}, expected numbers", path=label,
                              field="dtype", expected="a real numeric dtype")
    if any(int(n) < 0 for n in shape):
        raise FileFormatError(f"{label}: negative size in shape {shape}", path=label,
                              field="shape", expected="sizes >= 0")
    count = 1
    for n in shape:
        count *= int(n)
    need = count * dtype.itemsize
    if size is not None and hdr + need > size:
        raise FileFormatError(f"{label} is truncated: its header says shape {tuple(shape)} "
                              f"({need} bytes of data) but it holds {max(size - hdr, 0)}",
                              path=label, field="shape",
                              expected=f"<= {max(size - hdr, 0)} bytes of data")
    return tuple(int(n) for n in shape), bool(fortran), dtype, hdr


def _load_npy(p: Path) -> np.ndarray:
    """A ``.npy`` file, its header checked (size-bounded, no pickles) before reading."""
    if not p.is_file():
        read_bytes(p)  # raises the clear missing-file / is-a-directory error
    try:
        with open(p, "rb") as f:
            npy_header(f, p, os.fstat(f.fileno()).st_size)
        return np.load(p, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        if isinstance(e, FileFormatError):
            raise
        raise FileFormatError(f"{p} is not a readable .npy file: {e}", path=p,
                              expected="a .npy file") from None


def load_npz(path: Path, keys: tuple[str, ...] | None = None, *, data: bytes | None = None,
             label: str | None = None, max_bytes: int = 8 * 1024**3) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (from ``path``, or from ``data`` bytes, e.g. an archive
    member named ``label``), never unpickling; ``keys`` must all be present.

    Every member's ``.npy`` header is checked against the member's size before its data is
    read, and the members' total uncompressed size is bounded by ``max_bytes``, so neither a
    lying header nor a zip bomb allocates memory. Errors are :class:`FileFormatError`.
    """
    import io
    import zipfile
    import zlib

    label = label or str(path)
    if data is None and not path.is_file():
        read_bytes(path)  # raises the clear missing-file / is-a-directory error
    try:
        if data is None:
            with open(path, "rb") as f:
                head = f.read(4)
        else:
            head = data[:4]
        if head[:2] != b"PK":
            what = ("a .npy file" if head[:4] == b"\x93NUM" else "not a zip archive")
            raise FileFormatError(f"{label} is not a readable .npz file: not an .npz archive "
                                  f"({what}); expected a zip of .npy arrays (np.savez)",
                                  path=label,
                                  expected="an .npz (zip) archive")
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise FileFormatError(f"{label}: members hold {total} bytes uncompressed, more "
                                      f"than the limit of {max_bytes}", path=label,
                                      expected=f"<= {max_bytes} bytes")
            out: dict[str, np.ndarray] = {}
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                where = f"{label}: {info.filename}"
                with zf.open(info) as f:
                    shape, fortran, dtype, _ = npy_header(f, where, info.file_size)
                    count = 1
                    for n in shape:
                        count *= n
                    body = f.read(count * dtype.itemsize)
                if len(body) != count * dtype.itemsize:
                    raise FileFormatError(f"{where} is truncated", path=label,
                                          field=info.filename, expected="complete data")
                a = np.frombuffer(body, dtype=dtype, count=count)
                out[name] = a.reshape(shape, order="F" if fortran else "C").copy()
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError,
            NotImplementedError, RuntimeError, struct.error, OverflowError,
            UnicodeDecodeError) as e:
        raise FileFormatError(f"{label} is not a readable .npz file: {e}", path=label,
                              expected="an .npz archive of .npy arrays") from None
    if keys is not None:
        missing = [k for k in keys if k not in out]
        if missing:
            raise FileFormatError(f"{label} lacks arrays {missing} (has {sorted(out)})",
                                  path=label, field=", ".join(missing),
                                  expected=f"arrays {list(keys)}")
    return out


CSV_HEADER_RULE = (
    "a CSV's first row is a header when none of its cells is a number, data when all of "
    "them are; a first row mixing text and numbers is an error (pass --header / --no-header, "
    "header=True/False, to say which)")


def _read_csv(p: Path, header: bool | None) -> np.ndarray:
    """Rows of a comma-separated file of numbers (see :data:`CSV_HEADER_RULE`)."""
    raw = read_bytes(p)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise FileFormatError(f"{p}: line {line}: not UTF-8 text (byte {e.start})", path=p,
                              field=f"line {line}", expected="UTF-8 text") from None
    lines = [(i, r) for i, r in enumerate(text.splitlines(), 1) if r.strip()]
    if not lines:
        raise FileFormatError(f"{p} holds no data rows", path=p, expected="rows of numbers")

    def number(v: str) -> bool:
        try:
            float(v)
            return True
        except ValueError:
            return False

    first_line, first = lines[0]
    cells = first.split(",")
    numeric = [number(c) for c in cells]
    if header is None:
        if all(numeric):
            header = False
        elif not any(numeric):
            header = True
        else:
            j = numeric.index(False)
            raise FileFormatError(
                f"{p}: row {first_line} mixes text ({cells[j].strip()!r} in column {j + 1}) "
                "and numbers, so it is neither a header nor a data row; pass --header if it "
                "is a header (header=True in Python), or fix the cell", path=p,
                field=f"row {first_line}", expected="a header (all text) or numbers")
    if header:
        lines = lines[1:]
        if not lines:
            raise FileFormatError(f"{p} holds a header but no data rows", path=p,
                                  expected="rows of numbers")
    width = len(lines[0][1].split(","))
    rows = []
    for i, r in lines:
        vals = r.split(",")
        if len(vals) != width:
            raise FileFormatError(f"{p}: ragged CSV: row {i} has {len(vals)} values, row "
                                  f"{lines[0][0]} has {width}", path=p, field=f"row {i}",
                                  expected=f"{width} values")
        try:
            rows.append([float(v) for v in vals])
        except ValueError:
            j = next(k for k, v in enumerate(vals) if not number(v))
            raise FileFormatError(f"{p}: row {i}, column {j + 1}: {vals[j].strip()[:40]!r} is "
                                  "not a number", path=p, field=f"row {i}, column {j + 1}",
                                  expected="a number") from None
    return np.array(rows, dtype=np.float64)


def read_array(path: str | os.PathLike, *, key: str | None = None,
               header: bool | None = None, image_size=None, patch_size=None,
               patch_stride=None, color: str = "auto", max_patches: int | None = None,
               skip_other: bool = False) -> tuple[Dataset, np.dtype | None]:
    """Like :func:`load_array`, also returning the dtype stored in the file (``uint8`` tells
    8-bit images apart from small integers, e.g. for scaling); ``None`` for image files and
    folders, whose pixels :func:`load_images` already scaled to [0, 1]."""
    p = Path(path)
    suffix = p.suffix.lower()
    reader = _path_reader(p)
    if reader is not None:
        return reader(p, image_size=image_size, patch_size=patch_size,
                      patch_stride=patch_stride, color=color, max_patches=max_patches,
                      skip_other=skip_other), None
    given = {k: v for k, v in (("image_size", image_size), ("patch_size", patch_size),
                               ("patch_stride", patch_stride), ("max_patches", max_patches))
             if v is not None}
    if color != "auto":
        given["color"] = color
    if given:  # no setting silently ignored
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to image "
                         f"files and folders of images; {p} is a {suffix or 'file'} array")
    if suffix == ".npy":
        X = _load_npy(p)
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
                raise FileFormatError(
                    f"{p} holds arrays {sorted(arrs)}; aekit reads the one named X (or x, "
                    "data, x_train), or the only array: rename the data array to X (in "
                    "Python: load_array(path, key=NAME))", path=p, field="X",
                    expected="an array named X, x, data or x_train, or a single array")
        if key not in arrs:
            raise FileFormatError(f"{p} has no array {key!r} (has {sorted(arrs)})", path=p,
                                  field=key, expected=f"an array {key!r}")
        X = arrs[key]
        y = arrs.get("y")
    elif suffix == ".csv":
        X = _read_csv(p, header)
        y = None
    else:
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p}")
        raise ValueError(f"{p}: unsupported file type {suffix!r}; expected .npy, .npz, .csv, "
                         "an image file (.png, .jpg, .jpeg, .tif, .tiff, .bmp) or a folder "
                         "of images")
    dtype = X.dtype
    if X.ndim > 2:  # images: (n, H, W[, C]) -> (n, H*W*C)
        shape = tuple(int(s) for s in X.shape[1:])
        X = X.reshape(len(X), -1)
    else:
        shape = None
    try:
        X = check_finite_2d(X, f"data in {p.name}")
    except ValueError as e:
        raise FileFormatError(f"{p}: {e}", path=p, field="data",
                              expected="a finite 2-D numeric array") from None
    big = float(np.abs(X).max()) if X.size and X.dtype.itemsize > 4 else 0.0
    if big > float(np.finfo(np.float32).max):
        raise FileFormatError(f"{p}: values up to {big:.3g} overflow float32 (max "
                              f"{float(np.finfo(np.float32).max):.3g}); rescale the data",
                              path=p, field="data", expected="values within float32 range")
    return Dataset(X.astype(np.float32), y, shape), dtype


def load_array(path: str | os.PathLike, *, key: str | None = None,
               header: bool | None = None, image_size=None, patch_size=None,
               patch_stride=None, color: str = "auto", max_patches: int | None = None,
               skip_other: bool = False) -> Dataset:
    """Load a 2-D array from ``.npy``, ``.npz`` (``key``, or ``X``/``x``/``data``/the only
    array; labels from ``y`` if present), ``.csv`` (comma-separated numbers, UTF-8), an
    image file or a folder of image files (:func:`aekit.data.load_images`, which takes
    ``image_size``, ``patch_size``, ``patch_stride``, ``color``, ``max_patches`` and
    ``skip_other``; passing
    those for array files is an error, never silently ignored). This is the one loader behind
    ``aekit train --data``, ``encode``/``reconstruct``/``score --input`` and ``aekit sparse
    learn --data`` / ``encode --input``.

    A CSV's first row is a header by an explicit rule (:data:`CSV_HEADER_RULE`): with
    ``header=None`` it is a header when none of its cells is a number and data when all are,
    and a row mixing both is an error; ``header=True``/``False`` says which. Headers of
    ``.npy``/``.npz`` data are checked before anything is allocated. Pickled object arrays
    and complex data are refused. Errors are :class:`aekit.io.FileFormatError` naming the
    file and the field.
    """
    return read_array(path, key=key, header=header, image_size=image_size,
                      patch_size=patch_size, patch_stride=patch_stride, color=color,
                      max_patches=max_patches, skip_other=skip_other)[0]


# ----------------------------------------------------------------- other kinds of path
#: Readers for paths that are not array files: ``(predicate(path) -> bool, reader(path,
#: **options) -> Dataset)``. :mod:`aekit.data.datasets` registers image files and folders
#: (:func:`aekit.data.load_images`) when ``aekit.data`` is imported, so this module needs no
#: import of the image code (which imports this one).
PATH_READERS: list = []


def _path_reader(p: Path):
    return next((reader for pred, reader in PATH_READERS if pred(p)), None)


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is data for :func:`aekit.data.load_images`: a folder, or a file with an
    image suffix (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``, ``.bmp``)."""
    return _path_reader(Path(path)) is not None


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
            shape, fortran, dtype, self.offset = npy_header(f, self.path,
                                                            os.fstat(f.fileno()).st_size)
        if fortran and len(shape) > 1:
            raise FileFormatError(f"{self.path} is Fortran-ordered; save it in C order to "
                                  "stream it", path=self.path, field="fortran_order",
                                  expected="C order")
        if len(shape) < 2:
            raise FileFormatError(f"{self.path} must hold a 2-D array (n, d), got shape "
                                  f"{shape}", path=self.path, field="shape",
                                  expected="(n, d)")
        d = int(np.prod(shape[1:]))
        self.shape = (int(shape[0]), d)
        self.dtype = dtype
        self.ndim = 2
        self.row_bytes = d * dtype.itemsize
        size = self.path.stat().st_size
        if size < self.offset + self.shape[0] * self.row_bytes:
            raise FileFormatError(f"{self.path} is truncated: header says {self.shape[0]} "
                                  "rows", path=self.path, field="shape")

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
