"""``aekit sparse learn|encode``: dictionary learning and sparse codes from the command line.

``learn`` fits a dictionary ``D`` (d, k) on natural-image patches (the photos shipped with
scikit-image / scikit-learn, centred and contrast-normalised), on a ``.npy`` / ``.npz`` /
``.csv`` matrix (n, d) used as given, or on image files (one image cut into patches, or a
folder of images, read by :func:`aekit.data.load_images`, pixels in [0, 1] used as given),
and writes ``D`` to a ``.safetensors`` file (format ``"aekit-dictionary"``) plus a PNG of the
atoms next to it. ``encode`` loads such a file and writes the codes (n, k) of the same kinds
of input. Bad input raises ``ValueError`` /
``FileNotFoundError`` with one line naming the problem; the main CLI prints it and exits 2.

The main parser wires it in with ``add_sparse_parser(sub)`` and
``if args.command == "sparse": return run_sparse(args)``. torch and the solvers are
imported only when a sparse command runs.
"""

from __future__ import annotations

import argparse
import io
import math
import time
from pathlib import Path

import numpy as np

from ..validation import check_float, check_int

__all__ = ["add_sparse_parser", "run_sparse"]

FORMAT = "aekit-dictionary"
CODE_ALGORITHMS = ("fista", "ista", "cd", "homotopy", "feature_sign", "omp", "threshold")

EXAMPLES = """examples:
  aekit sparse learn --n-components 100 --alpha 1 --patch-size 8 --output dict.safetensors
  aekit sparse learn --data X.npy --n-components 64 --algorithm batch --output d.safetensors
  aekit sparse learn --data photo.png --patch-size 8 --n-components 64 --output d.safetensors
  aekit sparse encode d.safetensors --input photo.png --patch-size 8 --output codes.npy
  aekit sparse encode dict.safetensors --input X.npy --output codes.npy --algorithm omp \\
      --n-nonzero-coefs 5
"""


def add_sparse_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sparse`` (with ``learn`` and ``encode``) to an argparse subparsers object."""
    sp = subparsers.add_parser(
        "sparse", help="learn a sparse-coding dictionary or encode data with one",
        description="Sparse coding: learn a dictionary D (d, k) with unit-norm atoms so that "
        "x ≈ D z with sparse z (min ½‖x − Dz‖² + α‖z‖₁), or encode data with a learned one.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = sp.add_subparsers(dest="sparse_command", metavar="SUBCOMMAND", required=True)

    lp = sub.add_parser(
        "learn", help="learn a dictionary and write it as .safetensors (+ an atom PNG)",
        description="Learn a dictionary from natural-image patches (default: the photos "
        "shipped with scikit-image/scikit-learn, patch mean removed and contrast normalised) "
        "or from a .npy/.npz matrix (n, d) used as given. Writes OUTPUT and OUTPUT with the "
        "suffix .png (a grid of the atoms).")
    lp.add_argument("--data", default="photos",
                    help="'photos' (built in), a .npy/.npz/.csv file of shape (n, d), an image "
                    "file (cut into --patch-size patches) or a folder of images")
    lp.add_argument("--key", help="array name inside a .npz with several arrays")
    lp.add_argument("--n-components", type=int, default=100, help="atoms k (default 100)")
    lp.add_argument("--alpha", type=float, default=1.0, help="ℓ1 weight λ (default 1.0)")
    lp.add_argument("--patch-size", type=int, default=None,
                    help="patch side: default 8 for --data photos and a single image file; a "
                    "folder of images gives whole images unless this is set")
    lp.add_argument("--n-patches", type=int, default=10000, help="patches drawn for --data "
                    "photos, at most this many (a seeded random subset) from image files "
                    "(default 10000)")
    _image_flags(lp)
    lp.add_argument("--algorithm", choices=("online", "batch"), default="online",
                    help="online mini-batch (Mairal et al. 2010) or batch alternating "
                    "(default online)")
    lp.add_argument("--max-iter", type=int, default=5,
                    help="epochs over the data (online) or outer iterations (batch); "
                    "default 5")
    lp.add_argument("--batch-size", type=int, default=256, help="mini-batch size (online)")
    lp.add_argument("--method", choices=("fista", "ista", "cd", "feature_sign"),
                    default="fista", help="code solver during learning (default fista)")
    lp.add_argument("--positive", action="store_true", help="non-negative codes")
    lp.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    from ..schema import RenamedFlag

    for old, new in (("--epochs", "--max-iter"), ("--seed", "--random-state")):
        lp.add_argument(old, dest=new[2:].replace("-", "_"), type=int, action=RenamedFlag,
                        new_flag=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    lp.add_argument("--output", type=Path, required=True, help="dictionary .safetensors file")
    lp.add_argument("--no-png", action="store_true", help="do not write the atom grid PNG")

    ep = sub.add_parser(
        "encode", help="write the sparse codes of a .npy matrix with a learned dictionary",
        description="Encode the rows of a .npy matrix (n, d) with a dictionary written by "
        "'aekit sparse learn' and write the codes (n, k) as .npy. The rows are used as "
        "given: apply the same preprocessing as the training data (for --data photos: "
        "remove each row's mean and divide by sqrt(var + 0.01)).")
    ep.add_argument("dictionary", type=Path, help=".safetensors file from 'sparse learn'")
    ep.add_argument("--input", type=Path, required=True,
                    help=".npy/.npz/.csv matrix (n, d), an image file or a folder of images")
    ep.add_argument("--patch-size", type=int, default=None,
                    help="cut --input images into patches of this side (all of them)")
    _image_flags(ep)
    ep.add_argument("--key", help="array name inside a .npz with several arrays")
    ep.add_argument("--output", type=Path, required=True, help="codes .npy file")
    ep.add_argument("--algorithm", choices=CODE_ALGORITHMS, default="fista",
                    help="solver (default fista)")
    ep.add_argument("--alpha", type=float, help="ℓ1 weight (default: the one used to learn)")
    ep.add_argument("--n-nonzero-coefs", type=int, help="sparsity for --algorithm omp")
    ep.add_argument("--max-iter", type=int, default=1000)
    ep.add_argument("--tol", type=float, help="solver tolerance")
    ep.add_argument("--positive", action="store_true", help="non-negative codes")
    return sp


# ------------------------------------------------------------------------------ helpers

def _image_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                   help="image data: resize every image to H x W (mixed sizes are an error "
                   "without it, unless --patch-size cuts patches)")
    p.add_argument("--patch-stride", type=int, help="image data: step between patches "
                   "(default: the patch size, non-overlapping)")
    p.add_argument("--color", choices=("auto", "gray", "rgb"), default="auto",
                   help="image data: channels (auto: gray when every file is gray)")


def _load_data(path: Path, a: argparse.Namespace, what: str, *, patch_size: int | None,
               max_patches: int | None = None):
    """``(X float32 (n, d), image_shape or None)`` from image files through the shared loader
    :func:`aekit.data.load_array`, or from a .npy/.npz/.csv matrix."""
    from ..data.arrays import is_image_path, load_array

    path = Path(path)
    image_opts = {"image_size": getattr(a, "image_size", None),
                  "patch_stride": getattr(a, "patch_stride", None),
                  "color": getattr(a, "color", "auto")}
    if is_image_path(path):
        if not path.exists():
            raise FileNotFoundError(f"{what}: no such file or folder: {path}")
        try:
            ds = load_array(path, patch_size=patch_size, max_patches=max_patches,
                            **image_opts)
        except ValueError as e:  # FileFormatError included: name the flag
            raise type(e)(f"{what}: {e}") from None
        return np.ascontiguousarray(ds.X, dtype=np.float32), ds.image_shape
    given = [f for f, v in (("--image-size", image_opts["image_size"]),
                            ("--patch-stride", image_opts["patch_stride"]),
                            ("--patch-size", patch_size))
             if v is not None] + (["--color"] if image_opts["color"] != "auto" else [])
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to image "
                         f"files and folders; {what} {path} is not one")
    if path.suffix.lower() == ".csv":
        try:
            return load_array(path).X, None
        except ValueError as e:
            raise type(e)(f"{what}: {e}") from None
    return _load_matrix(path, a.key, what), None


def _is_image_file(path: Path) -> bool:
    from ..data.images import IMAGE_SUFFIXES

    return path.suffix.lower() in IMAGE_SUFFIXES


def _load_matrix(path: Path, key: str | None, what: str) -> np.ndarray:
    """A 2-D finite float matrix from .npy / .npz (no pickles)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what}: no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{what}: {path} is a directory, expected a .npy or .npz file")
    with open(path, "rb") as f:
        head = f.read(6)
    if head != b"\x93NUMPY" and head[:2] != b"PK":
        raise ValueError(f"{what}: {path} is not a .npy or .npz file")
    try:
        obj = np.load(path, allow_pickle=False)
    except ValueError as e:  # pickled object arrays
        raise ValueError(f"{what}: {path} is not a numeric .npy/.npz file ({e})") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{what}: cannot read {path} as .npy/.npz ({e})") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            names = list(obj.files)
            if key is None:
                if len(names) == 1:
                    key = names[0]
                elif "X" in names:
                    key = "X"
                else:
                    raise ValueError(f"{what}: {path} holds arrays {names}; pick one with --key")
            if key not in names:
                raise ValueError(f"{what}: {path} has no array {key!r} (has {names})")
            arr = obj[key]
    else:
        arr = obj
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{what}: {path} holds dtype {arr.dtype}, expected numbers")
    if arr.ndim != 2:
        raise ValueError(f"{what}: {path} must hold a matrix of shape (n, d), got shape "
                         f"{arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what}: {path} is empty (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: {path} contains NaN or infinite values")
    return arr


# ------------------------------------------------------------------------------- learn

def _learn(a: argparse.Namespace) -> int:
    import torch

    from ..io import save_tensor_file
    from .dictionary import dict_learning, dict_learning_online
    from .patches import natural_image_patches

    k = check_int("--n-components", a.n_components, 1)
    alpha = check_float("--alpha", a.alpha, 0)
    epochs = check_int("--max-iter", a.max_iter, 1)
    bs = check_int("--batch-size", a.batch_size, 1)
    out = Path(a.output)
    if out.suffix == ".png":
        raise ValueError(f"--output {out} must not be a .png (the atom grid goes next to it)")
    if out.exists() and out.is_dir():
        raise ValueError(f"--output {out} is a directory, expected a file path")
    g = torch.Generator().manual_seed(int(a.random_state))
    n_patches = check_int("--n-patches", a.n_patches, 1)
    if a.patch_size is not None:
        check_int("--patch-size", a.patch_size, 1)
    if a.data == "photos":
        p = 8 if a.patch_size is None else a.patch_size
        X = natural_image_patches(n_patches, p, generator=g)
        source, atom_shape, prep = "photos", [p, p], "center+contrast(eps=0.01)"
    else:
        path = Path(a.data)
        patch = a.patch_size
        if patch is None and path.is_file() and _is_image_file(path):
            patch = 8  # one image: its patches are the data
        arr, shape = _load_data(path, a, "--data", patch_size=patch,
                                max_patches=n_patches if patch is not None else None)
        X = torch.from_numpy(arr)
        source, atom_shape, prep = str(a.data), None, "none"
        if shape is not None and len(shape) == 2:
            atom_shape = [int(shape[0]), int(shape[1])]
        elif shape is None:
            s = math.isqrt(X.shape[1])
            if s * s == X.shape[1]:
                atom_shape = [s, s]
    n, d = X.shape
    t0 = time.perf_counter()
    if a.algorithm == "batch":
        D, _, info = dict_learning(X, k, alpha=alpha, max_iter=epochs, method=a.method,
                                   positive_code=a.positive, generator=g)
    else:
        state, info = dict_learning_online(X, k, alpha=alpha, max_iter=epochs,
                                           batch_size=bs, method=a.method,
                                           positive_code=a.positive, generator=g)
        D = state.D
    seconds = time.perf_counter() - t0
    meta = {"n_features": d, "n_components": k, "alpha": alpha, "algorithm": a.algorithm,
            "method": a.method, "positive": bool(a.positive), "epochs": epochs,
            "batch_size": bs, "seed": int(a.random_state), "data": source, "n_samples": n,
            "atom_shape": atom_shape, "preprocessing": prep,
            "objective": info.objective[-1] if info.objective else None,
            "n_iter": info.n_iter, "seconds": round(seconds, 3)}
    save_tensor_file(out, {"D": D.to(torch.float32).contiguous()}, FORMAT, meta)
    print(f"wrote {out}: {k} atoms of {d} features from {n} samples "
          f"({a.algorithm}, {info.n_iter} steps, objective {meta['objective']:.5g}, "
          f"{seconds:.1f} s)")
    if not a.no_png:
        from ..plots import save_atom_grid

        png = out.with_suffix(".png")
        save_atom_grid(png, D, atom_shape=tuple(atom_shape) if atom_shape else None,
                       title=f"{k} atoms, alpha={alpha:g}")
        print(f"wrote {png}")
    return 0


# ------------------------------------------------------------------------------ encode

def _encode(a: argparse.Namespace) -> int:
    import torch

    from ..io import atomic_write_bytes, load_tensor_file
    from .encode import sparse_encode

    tensors, meta = load_tensor_file(a.dictionary, FORMAT)
    if "D" not in tensors or tensors["D"].ndim != 2:
        raise ValueError(f"{a.dictionary} holds no dictionary D of shape (d, k)")
    D = tensors["D"].to(torch.float32)
    d, k = D.shape
    alpha = check_float("--alpha", meta.get("alpha", 1.0) if a.alpha is None else a.alpha, 0)
    check_int("--max-iter", a.max_iter, 1)
    if a.n_nonzero_coefs is not None:
        check_int("--n-nonzero-coefs", a.n_nonzero_coefs, 1)
    if a.tol is not None:
        check_float("--tol", a.tol, 0)
    if a.patch_size is not None:
        check_int("--patch-size", a.patch_size, 1)
    X, _ = _load_data(Path(a.input), a, "--input", patch_size=a.patch_size)
    if X.shape[1] != d:
        raise ValueError(f"--input {a.input} has {X.shape[1]} features per row but the "
                         f"dictionary {a.dictionary} has atoms of {d} features")
    out = Path(a.output)
    if out.exists() and out.is_dir():
        raise ValueError(f"--output {out} is a directory, expected a .npy file path")
    t0 = time.perf_counter()
    Z, info = sparse_encode(torch.from_numpy(X), D, algorithm=a.algorithm, alpha=alpha,
                            n_nonzero_coefs=a.n_nonzero_coefs, max_iter=int(a.max_iter),
                            tol=a.tol, positive=a.positive)
    seconds = time.perf_counter() - t0
    buf = io.BytesIO()
    np.save(buf, Z.numpy().astype(np.float32, copy=False), allow_pickle=False)
    atomic_write_bytes(out, buf.getvalue())
    nnz = float((Z != 0).float().sum(1).mean())
    fit = info.data_fit[-1] if info.data_fit else float("nan")
    print(f"wrote {out}: codes {tuple(Z.shape)} ({a.algorithm}, alpha={alpha:g}), "
          f"mean non-zeros {nnz:.2f} of {k}, mean ½‖x − Dz‖² {fit:.5g}, {seconds:.2f} s"
          + ("" if info.converged else " (not converged; raise --max-iter)"))
    return 0


def run_sparse(args: argparse.Namespace) -> int:
    """Run ``aekit sparse learn|encode`` from parsed arguments; returns the exit status."""
    if args.sparse_command == "learn":
        return _learn(args)
    if args.sparse_command == "encode":
        return _encode(args)
    raise ValueError(f"unknown sparse subcommand {args.sparse_command!r}")
