"""``aekit detect fit|score|explain``: the anomaly detector on arrays, CSV files and image
folders.

* ``aekit detect fit DATA --output det.safetensors`` fits :class:`AnomalyDetector` on (mostly)
  normal data and prints the threshold (and, with ``--threshold fpr``, the realised
  false-positive rate on the held-out normal rows).
* ``aekit detect score det.safetensors DATA --output scores.csv`` writes one row per sample:
  ``sample,score,anomaly,confidence``.
* ``aekit detect explain det.safetensors DATA --output DIR`` writes, for images, one heatmap
  overlay PNG per sample (``--sigma`` smooths the maps) and ``maps.npy``; for rows,
  ``top_features.csv`` with the ``--top`` features of largest error per row.

DATA is a ``.npy``/``.npz``/``.csv`` array (rows, or images (n, H, W)) or a folder of images
(all of one size).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "load_data"]


def load_data(path: str, *, header: bool | None = None, key: str | None = None
              ) -> tuple[np.ndarray, list[str], tuple[int, ...] | None]:
    """``(X, sample names, image shape or None)`` from an array file or an image folder.

    Image folders: every image is read as float32 (c, H, W) in [0, 1]; images of different
    sizes are an error naming two of them and their sizes.
    """
    from ..data.arrays import read_array
    from ..data.images import IMAGE_SUFFIXES, read_image

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"DATA {path!r} does not exist")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"DATA folder {path!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        imgs = [read_image(f) for f in files]
        shapes = {im.shape for im in imgs}
        if len(shapes) > 1:
            first = imgs[0].shape
            other = next(i for i, im in enumerate(imgs) if im.shape != first)
            raise ValueError(f"DATA folder {path!r} mixes image sizes: {files[0].name} is "
                             f"{first} (c, H, W) but {files[other].name} is "
                             f"{imgs[other].shape}; resize them to one size")
        X = np.stack(imgs)
        return X, [f.name for f in files], tuple(int(s) for s in X.shape[1:])
    ds, _ = read_array(p, key=key, header=header)
    X = ds.X
    shape = tuple(int(s) for s in ds.image_shape) if ds.image_shape is not None else None
    if shape is not None:
        shape = (1, *shape) if len(shape) == 2 else shape
        if len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] not in (1, 3, 4):
            # (n, H, W, C) files: rows are H·W·C in that order -> (n, C, H, W)
            X = X.reshape(len(X), *shape).transpose(0, 3, 1, 2)
            shape = (shape[2], shape[0], shape[1])
            X = X.reshape(len(X), -1)
        X = X.reshape(len(X), *shape)
    return X, [str(i) for i in range(len(X))], shape


def _threshold(v: str) -> str | float:
    if v in ("contamination", "fpr"):
        return v
    try:
        return float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--threshold must be 'contamination', 'fpr' or a number, got {v!r}") from None


def _cmd_fit(a: argparse.Namespace) -> int:
    from .detector import AnomalyDetector
    from .thresholds import realised_fpr

    X, _, shape = load_data(a.data, header=a.header)
    if a.output is None:
        raise ValueError("--output is required (the detector file, e.g. det.safetensors)")
    out = Path(a.output)
    if out.exists() and not a.force:
        raise FileExistsError(f"--output {str(out)!r} exists; pass --force to overwrite it")
    det = AnomalyDetector(model=a.model, n_components=a.n_components,
                          hidden_layer_sizes=tuple(a.hidden_layer_sizes), score=a.score,
                          recon=a.recon,
                          n_neighbors=a.neighbors, contamination=a.contamination,
                          threshold=a.threshold, target_fpr=a.target_fpr,
                          validation_fraction=a.validation_fraction,
                          max_iter=a.max_iter, batch_size=a.batch_size,
                          learning_rate=a.learning_rate, random_state=a.random_state,
                          constant_columns="ignore" if a.ignore_constant else "error")
    det.fit(X)
    det.save(out)
    info = {"detector": str(out), "n_samples": int(len(X)), "image_shape": shape,
            "n_components": det.n_components_, "threshold": det.threshold_,
            "flagged_training_fraction": float(det.labels_.mean())}
    if len(det.val_scores_):
        info["heldout_fpr"] = realised_fpr(det.val_scores_, det.threshold_)
    print(json.dumps(info))
    return 0


def _load_det(path: str):
    from .detector import AnomalyDetector

    if not Path(path).exists():
        raise FileNotFoundError(f"DETECTOR {path!r} does not exist (write it with "
                                "`aekit detect fit`)")
    return AnomalyDetector.load(path)


def _cmd_score(a: argparse.Namespace) -> int:
    from ..io import atomic_write_text

    det = _load_det(a.detector)
    X, names, _ = load_data(a.data, header=a.header)
    labels, conf = det.predict(X, return_confidence=True)
    s = det.decision_function(X)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["sample", "score", "anomaly", "confidence"])
    for n, v, lab, c in zip(names, s, labels, conf):
        w.writerow([n, repr(float(v)), int(lab), f"{float(c):.6g}"])
    if a.output is None:
        print(buf.getvalue(), end="")
    else:
        atomic_write_text(a.output, buf.getvalue())
        print(json.dumps({"scores": a.output, "n": len(s), "anomalies": int(labels.sum()),
                          "threshold": det.threshold_}))
    return 0


def _cmd_explain(a: argparse.Namespace) -> int:
    from ..io import atomic_write_bytes, atomic_write_text
    from .heatmaps import overlay_png

    det = _load_det(a.detector)
    X, names, _ = load_data(a.data, header=a.header)
    if a.output is None:
        raise ValueError("--output is required (a folder for the heatmaps or "
                         "top_features.csv)")
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--output {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if det.image_shape_ is not None:
        maps = det.error_maps(X, sigma=a.sigma)
        imgs = np.asarray(X, dtype=np.float64).reshape(len(X), *det.image_shape_)
        vmax = float(np.percentile(maps, 99.5)) if a.vmax is None else a.vmax
        written = []
        for name, img, m in zip(names, imgs, maps):
            fn = out / (Path(name).stem + "_heatmap.png")
            atomic_write_bytes(fn, overlay_png(img, m, vmax=vmax))
            written.append(fn.name)
        bio = io.BytesIO()
        np.save(bio, maps, allow_pickle=False)
        atomic_write_bytes(out / "maps.npy", bio.getvalue())
        print(json.dumps({"heatmaps": len(written), "folder": str(out), "maps": "maps.npy",
                          "vmax": vmax}))
        return 0
    k = min(a.top, det.n_features_in_)
    idx, val = det.top_features(X, k)
    s = det.decision_function(X)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["sample", "score"] + [h for j in range(k) for h in (f"feature_{j + 1}",
                                                                     f"error_{j + 1}")])
    for n, sc, ii, vv in zip(names, s, idx, val):
        w.writerow([n, repr(float(sc))] + [v for i, e in zip(ii, vv)
                                           for v in (int(i), f"{float(e):.6g}")])
    atomic_write_text(out / "top_features.csv", buf.getvalue())
    print(json.dumps({"top_features": str(out / "top_features.csv"), "k": k}))
    return 0


def _neighbors(v: str) -> int | str:
    return "auto" if v == "auto" else _positive_int(v)


def _positive_int(v: str) -> int:
    i = int(v)
    if i < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {v}")
    return i


def add_parser(subparsers) -> None:
    """Add ``aekit detect {fit,score,explain}`` (old flags ``--out``, ``--code-size``,
    ``--hidden``, ``--epochs``, ``--lr``, ``--seed`` still work until the next release, hidden,
    with a FutureWarning naming the new one)."""
    from ..cli import add_renamed_flag
    from .detector import SCORES
    from .scores import RECON_SCORES

    p = subparsers.add_parser("detect", help="anomaly detection: fit a detector on normal "
                              "data, score new data, explain with heatmaps",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="detect_command", required=True)

    def data_args(q, detector: bool):
        if detector:
            q.add_argument("detector", help="detector file written by `aekit detect fit`")
        q.add_argument("data", help=".npy/.npz/.csv array or a folder of images")
        q.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                       help="a CSV's first row is (--header) or is not (--no-header) a header")

    f = sub.add_parser("fit", help="fit a detector on (mostly) normal data")
    data_args(f, False)
    f.add_argument("--output", "-o", help="detector file to write (.safetensors)")
    add_renamed_flag(f, "--out", "--output")
    f.add_argument("--force", action="store_true", help="overwrite --output")
    f.add_argument("--model", default="residual", help="residual (default), pca, dense, conv, "
                   "or another name in aekit.MODELS")
    f.add_argument("--n-components", type=_positive_int, default=None, help="code size k "
                   "(default: min(32, ceil(d/2)))")
    add_renamed_flag(f, "--code-size", "--n-components", type=_positive_int)
    f.add_argument("--hidden-layer-sizes", type=_positive_int, nargs="*", default=[256],
                   help="hidden sizes (residual branches; channels for conv)")
    add_renamed_flag(f, "--hidden", "--hidden-layer-sizes", type=_positive_int, nargs="*")
    f.add_argument("--score", default="auto", choices=("auto", *SCORES),
                   help="auto (default): joint (kNN on code and error) for tabular rows, "
                   "recon for images")
    f.add_argument("--recon", default="mse", choices=RECON_SCORES)
    f.add_argument("--neighbors", type=_neighbors, default="auto",
                   help="k of the kNN code distance; auto (default): ceil(contamination * m) "
                   "for m training codes")
    f.add_argument("--contamination", type=float, default=0.1)
    f.add_argument("--threshold", type=_threshold, default="contamination",
                   help="contamination (default), fpr, or a fixed number")
    f.add_argument("--target-fpr", type=float, default=0.05)
    f.add_argument("--validation-fraction", type=float, default=0.1)
    f.add_argument("--max-iter", type=int, default=30, help="training epochs")
    add_renamed_flag(f, "--epochs", "--max-iter", type=int)
    f.add_argument("--batch-size", type=_positive_int, default=128)
    f.add_argument("--learning-rate", type=float, default=1e-3)
    add_renamed_flag(f, "--lr", "--learning-rate", type=float)
    f.add_argument("--random-state", type=int, default=0)
    add_renamed_flag(f, "--seed", "--random-state", type=int)
    f.add_argument("--ignore-constant", action="store_true",
                   help="leave constant columns unscaled instead of refusing them")
    f.set_defaults(handler=_cmd_fit)

    s = sub.add_parser("score", help="score data; CSV sample,score,anomaly,confidence")
    data_args(s, True)
    s.add_argument("--output", "-o", help="CSV file to write (default: standard output)")
    add_renamed_flag(s, "--out", "--output")
    s.set_defaults(handler=_cmd_score)

    e = sub.add_parser("explain", help="heatmap PNGs (images) or top features (rows)")
    data_args(e, True)
    e.add_argument("--output", "-o", help="folder to write into")
    add_renamed_flag(e, "--out", "--output")
    e.add_argument("--sigma", type=float, default=None, help="Gaussian smoothing of the maps "
                   "(pixels)")
    e.add_argument("--vmax", type=float, default=None, help="map value shown at full colour "
                   "(default: 99.5th percentile)")
    e.add_argument("--top", type=_positive_int, default=5, help="features per row (tabular)")
    e.set_defaults(handler=_cmd_explain)
