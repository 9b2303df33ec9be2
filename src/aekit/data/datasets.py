"""Named datasets: the built-in ``digits`` and ``mnist`` (:func:`load_dataset` resolves a name
or a file), and loaders for the real benchmark archives in ``$AEKIT_DATA`` (default
``../shared/data``).

Each archive loader reads its archive in memory through :mod:`aekit.data.archives` (nothing is
extracted, unsafe members are refused) and takes ``path=`` (the archive, or the folder holding
it) to override the default location. A missing archive raises ``FileNotFoundError`` naming the path
and the ``AEKIT_DATA`` variable.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io import FileFormatError
from .archives import iter_members, list_members, read_member
from .arrays import (
    PATH_READERS,
    Dataset,
    check_finite_2d,
    load_idx,
    load_npz,
    read_array,
    scale_unit,
)
from .images import IMAGE_SUFFIXES, read_image

__all__ = [
    "ADBENCH_FILE",
    "NEWS20_FILE",
    "TILES_FILE",
    "TILE_CLASSES",
    "data_dir",
    "list_adbench",
    "load_20newsgroups",
    "load_adbench",
    "load_dataset",
    "load_digits",
    "load_images",
    "load_magnetic_tiles",
    "load_mnist",
]

ADBENCH_FILE = "adbench_classical.tar"
NEWS20_FILE = "20news-bydate.tar.gz"
TILES_FILE = "magnetic_tile_defects.zip"
TILE_CLASSES = ("Blowhole", "Break", "Crack", "Fray", "Free", "Uneven")


# ------------------------------------------------------------------------ built-in names
def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Where real datasets live: ``path``, else ``$AEKIT_DATA``, else ``../shared/data``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("AEKIT_DATA")
    if env:
        return Path(env)
    # A source checkout next to shared/ (src/aekit/data/datasets.py -> repo/../shared/data),
    # else the working directory's ../shared/data.
    candidates = [Path(__file__).resolve().parents[3].parent / "shared" / "data",
                  Path.cwd().parent / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def load_digits() -> tuple[Dataset, Dataset]:
    """scikit-learn's 8×8 digits (1,797 images) scaled to [0, 1] (pixel values / 16).

    Split as the estimator's quality check uses it: the first 1,500 rows for training, the
    remaining 297 for testing. Returns ``(train, test)``.
    """
    from sklearn.datasets import load_digits as _ld

    d = _ld()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return Dataset(X[:1500], y[:1500], (8, 8)), Dataset(X[1500:], y[1500:], (8, 8))


def load_mnist(path: str | os.PathLike | None = None) -> tuple[Dataset, Dataset]:
    """MNIST (or Fashion-MNIST) as flattened images scaled to [0, 1]: ``(train, test)``.

    ``path`` may be an ``.npz`` with ``x_train, y_train, x_test, y_test`` (as
    ``../shared/data/mnist.npz``), or a folder with the four IDX files
    (``train-images-idx3-ubyte[.gz]`` etc.). Default: ``data_dir()/mnist.npz``.
    Shapes: X (60000, 784) and (10000, 784) float32; y int64.
    """
    p = data_dir() / "mnist.npz" if path is None else Path(path)
    if p.is_dir():
        def find(stem: str) -> Path:
            for name in (stem, stem + ".gz"):
                if (p / name).exists():
                    return p / name
            raise FileNotFoundError(f"{p} has no {stem}[.gz]")
        xtr = load_idx(find("train-images-idx3-ubyte"))
        ytr = load_idx(find("train-labels-idx1-ubyte"))
        xte = load_idx(find("t10k-images-idx3-ubyte"))
        yte = load_idx(find("t10k-labels-idx1-ubyte"))
    else:
        arrs = load_npz(p, ("x_train", "y_train", "x_test", "y_test"))
        xtr, ytr, xte, yte = (arrs[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    if xtr.ndim != 3 or xtr.shape[0] != len(ytr) or xte.shape[0] != len(yte):
        raise ValueError(f"{p}: unexpected MNIST shapes {xtr.shape}, {ytr.shape}, {xte.shape}")
    shape = tuple(int(s) for s in xtr.shape[1:])

    def prep(x):  # (n, H, W) uint8 -> (n, H*W) float32 in [0, 1]
        return (x.reshape(len(x), -1).astype(np.float32) / 255.0)

    return (Dataset(prep(xtr), ytr.astype(np.int64), shape),
            Dataset(prep(xte), yte.astype(np.int64), shape))


#: The first ten training and test labels of each dataset's canonical files: a fingerprint
#: that tells MNIST from Fashion-MNIST (same shapes, same format) without hashing 50 MB.
_MNIST_FINGERPRINTS = {
    "mnist": ([5, 0, 4, 1, 9, 2, 1, 3, 1, 4], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
    "fashion-mnist": ([9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]),
}


def _check_mnist_flavour(name: str, train: Dataset, test: Dataset, path) -> None:
    """Refuse ``--data fashion-mnist --data-path mnist.npz`` (and the reverse): a dataset name
    promises those contents, and the two have identical shapes, so nothing else would notice."""
    got = (train.y[:10].tolist(), test.y[:10].tolist())
    if got == _MNIST_FINGERPRINTS[name]:
        return
    other = next((k for k, v in _MNIST_FINGERPRINTS.items() if v == got), None)
    where = path if path is not None else data_dir() / "mnist.npz"
    if other is not None:
        raise ValueError(f"data_path {str(where)!r} holds {other}, not {name}: pass "
                         f"--data {other}, or point --data-path at the {name} files")
    raise ValueError(f"data_path {str(where)!r} is not the canonical {name} (its first labels "
                     f"differ); to train on other data pass the file itself as --data")


def load_dataset(name_or_path: str, *, data_path: str | os.PathLike | None = None,
                 scale: bool = True, header: bool | None = None, image_size=None,
                 patch_size=None, patch_stride=None, color: str = "auto",
                 max_patches: int | None = None, skip_other: bool = False
                 ) -> tuple[Dataset, Dataset | None]:
    """Resolve a dataset name (``digits``, ``mnist``, ``fashion-mnist``), a file or a folder
    of images to ``(train, test)``.

    A file yields ``(data, None)``; with ``scale`` its values are min-max scaled to [0, 1]:
    a file stored as ``uint8`` (8-bit images) by the fixed range 0..255, anything else by the
    data's own minimum and maximum (so integers 0..16 become 0..1, not 0..0.06). ``header``
    is the CSV header choice of :func:`aekit.data.load_array`. An image file or a folder of
    images (PNG, JPEG, TIFF, BMP; recursively) is read by :func:`load_images`
    with ``image_size``, ``patch_size``, ``patch_stride``, ``color``, ``max_patches`` and
    ``skip_other``; its pixels are already in [0, 1] and are not rescaled. Image options
    given for a built-in name or an array file raise ``ValueError`` (never ignored).
    """
    image_opts = {k: v for k, v in (("image_size", image_size), ("patch_size", patch_size),
                                    ("patch_stride", patch_stride),
                                    ("max_patches", max_patches)) if v is not None}
    if color != "auto":
        image_opts["color"] = color
    if name_or_path in ("digits", "mnist", "fashion-mnist") and image_opts:
        raise ValueError(f"{', '.join(image_opts)} appl{'ies' if len(image_opts) == 1 else 'y'}"
                         f" to image files and folders, not the built-in dataset "
                         f"{name_or_path!r}")
    if name_or_path == "digits":
        return load_digits()
    if name_or_path in ("mnist", "fashion-mnist"):
        default = (Path("/usr/share/datasets/fashion-mnist") if name_or_path == "fashion-mnist"
                   else None)
        train, test = load_mnist(data_path or default)
        _check_mnist_flavour(name_or_path, train, test, data_path or default)
        return train, test
    p = Path(name_or_path)
    if not p.exists():
        raise FileNotFoundError(f"dataset {name_or_path!r}: not a built-in name (digits, mnist, "
                                "fashion-mnist) and no such file or folder")
    ds, dtype = read_array(p, header=header, image_size=image_size, patch_size=patch_size,
                           patch_stride=patch_stride, color=color, max_patches=max_patches,
                           skip_other=skip_other)
    X = ds.X
    if dtype is None:  # image files: read_image already scaled by the bit depth
        return ds, None
    if scale:
        lo, hi = (0.0, 255.0) if dtype == np.uint8 else (None, None)
        X = scale_unit(X, lo=lo, hi=hi)
    return Dataset(X, ds.y, ds.image_shape), None


# ------------------------------------------------------------------------------ images
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
COLORS = ("auto", "gray", "rgb")


def _image_suffixes() -> tuple[str, ...]:
    return IMAGE_SUFFIXES


def _is_image_data(p: Path) -> bool:
    return p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES


def _pair(v, name: str) -> tuple[int, int] | None:
    """``None``, an int ``s`` (-> (s, s)) or a pair of ints >= 1 as ``(h, w)``."""
    if v is None:
        return None
    vals = [v, v] if isinstance(v, int | np.integer) and not isinstance(v, bool) else v
    try:
        vals = list(vals)
    except TypeError:
        raise ValueError(f"{name} must be an int or (height, width), got {v!r}") from None
    if (len(vals) != 2 or any(isinstance(a, bool) or not isinstance(a, int | np.integer)
                              or a < 1 for a in vals)):
        raise ValueError(f"{name} must be an int >= 1 or (height, width) of ints >= 1, got "
                         f"{v!r}")
    return int(vals[0]), int(vals[1])


def _list_image_files(folder: Path, skip_other: bool) -> list[Path]:
    """Image files under ``folder``, recursively, sorted by relative path; hidden files and
    folders (``.name``) are skipped; any other file raises naming it unless ``skip_other``."""
    suffixes = _image_suffixes()
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            q = Path(root) / name
            if q.suffix.lower() in suffixes:
                files.append(q)
            elif not skip_other:
                raise FileFormatError(
                    f"{q} is not an image file (expected {', '.join(suffixes)}); a data folder "
                    "must hold only images (hidden files are skipped): move it out, or pass "
                    "skip_other=True", path=q, expected="an image file")
    files.sort(key=lambda q: q.relative_to(folder).parts)
    if not files:
        raise ValueError(f"image folder {str(folder)!r} holds no images "
                         f"({', '.join(suffixes)}), searched recursively")
    return files


def _header(p: Path) -> tuple[str, tuple[int, int]]:
    """``(Pillow mode, (H, W))`` from the file's header (no pixels decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            return im.mode, (int(im.height), int(im.width))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such image: {p}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            struct.error, Image.DecompressionBombError) as e:
        raise FileFormatError(f"{p} is not a readable image: {type(e).__name__}: {e}",
                              path=p, expected="an image Pillow can decode") from None


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) float32 -> (C, h, w) with Pillow's antialiased bilinear filter, channel by
    channel in 32-bit float (no 8-bit rounding)."""
    from PIL import Image

    h, w = size
    return np.stack([np.asarray(Image.fromarray(c, mode="F").resize(
        (w, h), Image.Resampling.BILINEAR), dtype=np.float32) for c in a])


def _patches(a: np.ndarray, p: tuple[int, int], s: tuple[int, int]) -> np.ndarray:
    """All ``p``-sized windows of (C, H, W) at stride ``s`` in row-major order, flattened
    channel-first: (n_windows, C·ph·pw)."""
    C = a.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(a, p, axis=(1, 2))  # (C, H', W', ph, pw)
    win = win[:, ::s[0], ::s[1]]
    return np.ascontiguousarray(win.transpose(1, 2, 0, 3, 4)).reshape(-1, C * p[0] * p[1])


def load_images(path: str | os.PathLike, *, image_size=None, patch_size=None,
                patch_stride=None, color: str = "auto", max_patches: int | None = None,
                skip_other: bool = False, seed: int = 0) -> Dataset:
    """Image files as data rows: a folder of images (recursively) or a single image file.

    Every image is read with :func:`aekit.data.images.read_image` as float32 (C, H, W) in
    [0, 1] (8-bit files divided by 255, 16-bit grayscale by 65535) and flattened
    channel-first, ``x = vec(I) ∈ [0, 1]^{C·H·W}``, the layout :class:`aekit.ConvAE`
    reshapes back.

    Parameters
    ----------
    path : path
        A folder (searched recursively; files sorted by relative path; hidden ``.files``
        skipped) or one ``.png``/``.jpg``/``.jpeg``/``.tif``/``.tiff``/``.bmp`` file.
    image_size : int or (int, int), optional
        Resize every image to ``(H, W)`` (Pillow's antialiased bilinear filter, in float).
        Without it all images must share one size, else a ``ValueError`` names two files of
        different sizes.
    patch_size : int or (int, int), optional
        Cut every image (after ``image_size``) into ``(ph, pw)`` patches at
        ``patch_stride``; then images of different sizes are fine. Without it, each image is
        one row (a single file gives one row).
    patch_stride : int or (int, int), optional
        Step between patches (default ``patch_size``: non-overlapping tiles, row-major).
    color : {"auto", "gray", "rgb"}
        ``"auto"``: grayscale (C = 1) when every file is grayscale, else RGB (C = 3; gray
        files repeated to three channels, alpha dropped). ``"gray"`` converts with Pillow's
        ITU-R 601 luma ``L = 0.299 R + 0.587 G + 0.114 B``.
    max_patches : int, optional
        Keep at most this many patches, a uniform random subset without replacement drawn
        with ``seed`` (kept in their original order).
    skip_other : bool
        Skip non-image files in a folder instead of raising.
    seed : int

    Returns
    -------
    Dataset
        ``X`` (n, C·h·w) float32; ``y``: for a folder whose images all sit in sub-folders
        (``cats/1.png``, ``dogs/2.png``), the index of the top-level sub-folder in sorted
        order (the torchvision ``ImageFolder`` convention), else None; ``image_shape``
        ``(h, w)`` for grayscale, ``(C, h, w)`` for colour (h, w: image or patch size).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    aekit.io.FileFormatError
        A non-image file in the folder, or a file Pillow cannot decode (naming it).
    ValueError
        Mixed image sizes without ``image_size``/``patch_size`` (naming two files), an image
        smaller than ``patch_size`` (naming it), bad option values.

    References
    ----------
    ITU-R Recommendation BT.601 (luma); Olshausen & Field, "Emergence of simple-cell receptive
    field properties by learning a sparse code for natural images", Nature 1996 (image
    patches as data rows).
    """
    p = Path(path)
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    size, psize = _pair(image_size, "image_size"), _pair(patch_size, "patch_size")
    stride = _pair(patch_stride, "patch_stride")
    if stride is not None and psize is None:
        raise ValueError("patch_stride needs patch_size")
    stride = stride or psize
    if max_patches is not None:
        if psize is None:
            raise ValueError("max_patches needs patch_size")
        if isinstance(max_patches, bool) or not isinstance(max_patches, int | np.integer) \
                or max_patches < 1:
            raise ValueError(f"max_patches must be an int >= 1, got {max_patches!r}")
    if not p.exists():
        raise FileNotFoundError(f"no such image file or folder: {p}")
    folder = p.is_dir()
    files = _list_image_files(p, skip_other) if folder else [p]
    if not folder and p.suffix.lower() not in _image_suffixes():
        raise ValueError(f"{p}: unsupported image type {p.suffix!r}; expected one of "
                         f"{', '.join(_image_suffixes())}")
    heads = [_header(f) for f in files]
    if color == "auto":
        color = "gray" if all(m in _GRAY_MODES for m, _ in heads) else "rgb"
    if size is None and psize is None:
        first = heads[0][1]
        for f, (_, hw) in zip(files, heads):
            if hw != first:
                raise ValueError(
                    f"images differ in size: {f} is {hw[0]}x{hw[1]} (HxW) but {files[0]} is "
                    f"{first[0]}x{first[1]}; pass image_size=(H, W) (--image-size H W) to "
                    "resize them all, or patch_size (--patch-size) to cut patches")
    rows, shape = [], None
    for f, (mode, _) in zip(files, heads):
        if color == "gray":
            a = read_image(f, "L")
        elif mode in _GRAY_MODES:  # keep 16-bit precision, then repeat to RGB
            a = read_image(f, "L")
            a = np.repeat(a[:1], 3, axis=0)
        else:
            a = read_image(f, "RGB")
        if size is not None and a.shape[1:] != size:
            a = _resize(a, size)
        if psize is not None:
            if a.shape[1] < psize[0] or a.shape[2] < psize[1]:
                raise ValueError(f"{f} is {a.shape[1]}x{a.shape[2]} (HxW), smaller than "
                                 f"patch_size {psize[0]}x{psize[1]}")
            rows.append(_patches(a, psize, stride))
            shape = (a.shape[0], *psize)
        else:
            rows.append(a.reshape(1, -1))
            shape = a.shape
    counts = [len(r) for r in rows]
    X = np.concatenate(rows).astype(np.float32, copy=False)
    y = None
    if folder:
        tops = [f.relative_to(p).parts for f in files]
        if all(len(t) > 1 for t in tops):
            names = sorted({t[0] for t in tops})
            index = {n: i for i, n in enumerate(names)}
            y = np.repeat(np.array([index[t[0]] for t in tops], dtype=np.int64), counts)
    if max_patches is not None and len(X) > max_patches:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), int(max_patches),
                                                          replace=False))
        X, y = X[keep], (y[keep] if y is not None else None)
    image_shape = tuple(int(s) for s in (shape[1:] if shape[0] == 1 else shape))
    return Dataset(np.ascontiguousarray(X), y, image_shape)


PATH_READERS.append((_is_image_data, load_images))


# ---------------------------------------------------------------------------- archives
def archive_path(path: str | os.PathLike | None, filename: str) -> Path:
    """``path`` (a file, or a folder holding ``filename``), else ``data_dir() / filename``."""
    p = data_dir() / filename if path is None else Path(path)
    if p.is_dir():
        p = p / filename
    if not p.is_file():
        env = os.environ.get("AEKIT_DATA")
        raise FileNotFoundError(
            f"{filename} not found at {p}; set the AEKIT_DATA environment variable to the "
            f"folder holding it (now {'AEKIT_DATA=' + env if env else 'unset'}) or pass path=")
    return p


# --------------------------------------------------------------------------------- ADBench
def _adbench_members(p: Path) -> list[str]:
    return [n for n in list_members(p) if "/" not in n and n.endswith(".npz")]


def _set_number(stem: str) -> int:
    head = stem.split("_", 1)[0]
    return int(head) if head.isdigit() else 10**9


def list_adbench(path: str | os.PathLike | None = None) -> list[str]:
    """Names of the ADBench sets in the archive (e.g. ``"6_cardio"``), by ADBench number."""
    p = archive_path(path, ADBENCH_FILE)
    return sorted((n[:-4] for n in _adbench_members(p)), key=lambda s: (_set_number(s), s))


def load_adbench(name: str, path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One ADBench "Classical" tabular anomaly-detection set from ``adbench_classical.tar``.

    Parameters
    ----------
    name : str
        The set's file stem, with or without its ADBench number and ``.npz``, case-insensitive:
        ``"6_cardio"``, ``"cardio"`` or ``"6_cardio.npz"``.
    path : str or PathLike, optional
        The tar file or its folder; default ``data_dir() / "adbench_classical.tar"``.

    Returns
    -------
    X : ndarray of float32, shape (n, d)
        Raw (unscaled) features.
    y : ndarray of int64, shape (n,)
        1 = anomaly, 0 = inlier. E.g. ``cardio``: (1831, 21) with 176 anomalies.

    Raises ``ValueError`` for an unknown name (listing those available), a pickled or
    malformed ``.npz``, NaN/inf features or non-binary labels.

    References
    ----------
    S. Han, X. Hu, H. Huang, M. Jiang, Y. Zhao, "ADBench: Anomaly Detection Benchmark",
    NeurIPS 2022 Datasets and Benchmarks.
    """
    p = archive_path(path, ADBENCH_FILE)
    members = _adbench_members(p)
    want = name.strip().lower().removesuffix(".npz")
    hits = [m for m in members if m[:-4].lower() == want]
    if not hits:
        hits = [m for m in members if m[:-4].lower().split("_", 1)[-1] == want]
    if len(hits) != 1:
        avail = ", ".join(sorted((m[:-4] for m in members), key=lambda s: (_set_number(s), s)))
        what = "is ambiguous" if hits else "not found"
        raise ValueError(f"ADBench set {name!r} {what} in {p}; available: {avail}")
    member = hits[0]
    arrs = load_npz(p, ("X", "y"), data=read_member(p, member), label=f"{p}: {member}")
    X, y = arrs["X"], arrs["y"]
    X = check_finite_2d(X, f"X in {member}").astype(np.float32)
    if not np.isfinite(X).all():
        raise ValueError(f"X in {member} overflows float32")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{member}: y has shape {y.shape}, expected ({len(X)},)")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{member}: y must be 0/1 (1 = anomaly), got values "
                         f"{np.unique(y)[:10].tolist()}")
    return X, y.astype(np.int64)


# ----------------------------------------------------------------------------- 20 Newsgroups
def load_20newsgroups(subset: str = "train", path: str | os.PathLike | None = None
                      ) -> tuple[list[str], np.ndarray, list[str]]:
    """The 20 Newsgroups "bydate" split as raw posts, from ``20news-bydate.tar.gz``.

    Parameters
    ----------
    subset : {"train", "test", "all"}
        ``train``: 11,314 posts; ``test``: 7,532; ``all``: train then test.
    path : str or PathLike, optional
        The archive or its folder; default ``data_dir() / "20news-bydate.tar.gz"``.

    Returns
    -------
    texts : list of str, length n
        Posts with headers, decoded as latin-1, ordered by (split, group, file name).
    labels : ndarray of int64, shape (n,)
        Index into ``label_names``.
    label_names : list of str
        The group names, sorted (20 of them, e.g. ``"alt.atheism"``).

    References
    ----------
    K. Lang, "NewsWeeder: Learning to filter netnews", ICML 1995; "bydate" split by J. Rennie,
    http://qwone.com/~jason/20Newsgroups/.
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}")
    p = archive_path(path, NEWS20_FILE)
    splits = ("train", "test") if subset == "all" else (subset,)
    tops = {f"20news-bydate-{s}": i for i, s in enumerate(splits)}
    prefix = "20news-bydate-" if subset == "all" else f"20news-bydate-{subset}/"
    docs = []
    for name, data in iter_members(p, prefix=prefix):
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in tops or any(q.startswith(".") for q in parts):
            continue  # stray files such as .DS_Store
        docs.append((tops[parts[0]], parts[1], parts[2], data.decode("latin-1")))
    if not docs:
        raise ValueError(f"{p} holds no 20news-bydate-{subset}/<group>/<id> files "
                         "(is it the 20 Newsgroups bydate archive?)")
    docs.sort(key=lambda d: d[:3])
    label_names = sorted({d[1] for d in docs})
    index = {g: i for i, g in enumerate(label_names)}
    labels = np.array([index[d[1]] for d in docs], dtype=np.int64)
    return [d[3] for d in docs], labels, label_names


# ------------------------------------------------------------------------ Magnetic tiles
_TILE = re.compile(r"^MT_([A-Za-z]+)/Imgs/[^/]+\.jpg$")


def _decode_gray(data: bytes, where: str, size: tuple[int, int], *, mask: bool = False
                 ) -> tuple[tuple[int, int], np.ndarray]:
    """``(original (W, H), resized array (H, W))`` of an image converted to grayscale.

    Images: uint8 resized with Pillow's antialiased bilinear filter. Masks: thresholded at 128
    at full resolution, area-averaged (box filter, float) to ``size``, then any coverage > 0
    marks the output pixel, so no defect vanishes when downsampling (bool).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            orig = im.size
            g = im.convert("L")
            if not mask:
                return orig, np.asarray(g.resize((size[1], size[0]), Image.Resampling.BILINEAR))
            binary = (np.asarray(g) > 127).astype(np.float32)
            cover = Image.fromarray(binary).resize((size[1], size[0]),
                                                             Image.Resampling.BOX)
            return orig, np.asarray(cover) > 0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise ValueError(f"cannot decode {where}: {e}") from None


def load_magnetic_tiles(path: str | os.PathLike | None = None, size: tuple[int, int] = (64, 64),
                        *, limit: int | None = None, classes: Iterable[str] | None = None
                        ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Magnetic Tile Defects images with pixel masks, from ``magnetic_tile_defects.zip``.

    Reads every ``MT_<class>/Imgs/NAME.jpg`` with its same-size ``NAME.png`` mask (the
    top-level ``dataset.jpg/.png`` README figure is ignored): 952 ``Free`` (defect-free) and
    392 defective (Blowhole 115, Break 85, Crack 57, Fray 32, Uneven 103) tiles.

    Parameters
    ----------
    path : str or PathLike, optional
        The zip or its folder; default ``data_dir() / "magnetic_tile_defects.zip"``.
    size : (int, int)
        Output ``(height, width)``. Images are resized with Pillow's (antialiased) bilinear
        filter. Masks are thresholded at 128 at full resolution (some are anti-aliased), then
        an output pixel is a defect when any part of its area is, so thin cracks and small
        blowholes survive downsampling (the masks grow by up to one output pixel).
    limit : int, optional
        Read only the first ``limit`` images (in sorted name order, after ``classes``).
    classes : iterable of str, optional
        Only these classes (from ``TILE_CLASSES``, e.g. ``["Free"]``).

    Returns
    -------
    images : ndarray of float32, shape (n, H, W)
        Grayscale in [0, 1].
    masks : ndarray of bool, shape (n, H, W)
        True = defect (all False for ``Free``, and for 4 ``Uneven`` tiles whose source masks
        are empty).
    labels : list of str, length n
        The defect class, or ``"Free"``; samples are in sorted member-name order.

    References
    ----------
    Y. Huang, C. Qiu, K. Yuan, "Surface defect saliency of magnetic tile", The Visual
    Computer 36 (2020) 85–96.
    """
    if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size)):
        raise ValueError(f"size must be (height, width) positive ints, got {size!r}")
    size = (int(size[0]), int(size[1]))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    wanted_classes = None
    if classes is not None:
        wanted_classes = set([classes] if isinstance(classes, str) else classes)
        unknown = wanted_classes - set(TILE_CLASSES)
        if unknown:
            raise ValueError(f"unknown tile classes {sorted(unknown)}; known: {TILE_CLASSES}")
    p = archive_path(path, TILES_FILE)
    names = list_members(p)
    imgs = sorted(n for n in names if (m := _TILE.match(n))
                  and (wanted_classes is None or m.group(1) in wanted_classes))
    if not imgs and limit != 0:
        which = "" if wanted_classes is None else f" of classes {sorted(wanted_classes)}"
        raise ValueError(f"{p} holds no MT_<class>/Imgs/*.jpg images{which}"
                         " (is it the Magnetic Tile Defects archive?)")
    if limit is not None:
        imgs = imgs[:limit]
    present = set(names)
    masks_of = {n: n[:-4] + ".png" for n in imgs}
    lacking = [n for n, m in masks_of.items() if m not in present]
    if lacking:
        raise ValueError(f"{p}: no mask .png for {lacking[:3]}{' ...' if len(lacking) > 3 else ''}")
    wanted = set(imgs) | set(masks_of.values())
    decoded = {}
    for name, data in iter_members(p, include=wanted.__contains__):
        decoded[name] = _decode_gray(data, f"{p}:{name}", size, mask=name.endswith(".png"))
    n = len(imgs)
    images = np.empty((n, *size), dtype=np.float32)
    masks = np.empty((n, *size), dtype=bool)
    for i, name in enumerate(imgs):
        (isz, img), (msz, mask) = decoded[name], decoded[masks_of[name]]
        if isz != msz:
            raise ValueError(f"{p}: {name} is {isz[0]}×{isz[1]} but its mask is "
                             f"{msz[0]}×{msz[1]}")
        images[i] = img.astype(np.float32) / 255.0
        masks[i] = mask
    labels = [_TILE.match(name).group(1) for name in imgs]
    return images, masks, labels
