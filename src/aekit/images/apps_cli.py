"""``aekit clean-document|colourise|segment``: document cleaning, colourisation and defect
segmentation on real image files.

Each command trains a model on the fly (``--train``; rendered pages, the built-in training
photos or a folder, the Magnetic Tile Defects training split) or applies a saved one
(``--model FILE.safetensors``), reads the input image with Pillow and writes the output
atomically (a failed run never leaves half a file).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parser"]


def _model(args, trainer):
    import aekit

    if args.model and not args.train:
        if not Path(args.model).is_file():
            raise FileNotFoundError(f"--model {args.model}: no such file (pass --train to "
                                    "train one and save it there)")
        return aekit.load(args.model)
    if not args.train:
        raise ValueError("--model MODEL.safetensors is required unless --train is given")
    m = trainer()
    if args.model:
        aekit.save_model(m, args.model)
    return m


def _check_model(m, cin: int, cout: int, what: str, path) -> None:
    got = (getattr(m, "in_channels", None), getattr(m, "out_channels", None))
    if got != (cin, cout):
        raise ValueError(f"--model {path}: a {what} model maps {cin} channel(s) to {cout}, this "
                         f"one maps {got[0]} to {got[1]}")


def run_clean_document(args) -> int:
    from .documents import binarise, clean_document, train_document_cleaner
    from .io import load_folder, read_image, write_image

    x = read_image(args.input, "L")
    pages = load_folder(args.train_images, "L", skip_other=True) if args.train_images else None
    m = _model(args, lambda: train_document_cleaner(
        pages, n_pages=args.pages, max_iter=args.max_iter, n_patches=args.patches,
        random_state=args.random_state, progress=False)[0])
    _check_model(m, 1, 1, "document", args.model)
    out = clean_document(m, x)
    if args.binarise:
        out = (~binarise(out, 0.5)).astype("float32")[None]
    write_image(args.output, out)
    _report(args, "clean-document", input=x, output=out)
    print(json.dumps({"input": str(args.input), "output": str(args.output),
                      "size": list(x.shape[1:]), "binarised": bool(args.binarise)}))
    return 0


def run_colourise(args) -> int:
    from .builtin import load_photos
    from .colour import colourfulness, colourise, train_colouriser
    from .io import load_folder, read_image, write_image

    x = read_image(args.input, None)
    if x.shape[0] == 4:
        x = x[:3]
    if x.shape[0] not in (1, 3):
        raise ValueError(f"{args.input}: expected a grayscale or RGB image, got {x.shape[0]} "
                         "channels")

    def trainer():
        if args.train_images:
            imgs = load_folder(args.train_images, "RGB", skip_other=True)
            val = None
        else:
            imgs = list(load_photos("train", "RGB").values())
            val = list(load_photos("val", "RGB").values())
        return train_colouriser(imgs, val_images=val, max_iter=args.max_iter,
                                n_patches=args.patches, random_state=args.random_state,
                                progress=False)[0]

    m = _model(args, trainer)
    _check_model(m, 1, 2, "colourisation", args.model)
    out = colourise(m, x)
    write_image(args.output, out)
    if x.shape[0] == 3:  # recoloured from its lightness: the original colours are the target
        import numpy as np

        from .colour import lab_to_rgb, rgb_to_lab

        lab = rgb_to_lab(x)  # the lightness the model saw, with zero chroma
        gray = lab_to_rgb(np.concatenate([lab[:1], np.zeros_like(lab[1:])]))
        _report(args, "colourise", input=x, damaged=gray, output=out, target=x,
                note="recoloured from its lightness")
    else:
        _report(args, "colourise", input=x, output=out)
    print(json.dumps({"input": str(args.input), "output": str(args.output),
                      "colourfulness": round(colourfulness(out), 3)}))
    return 0


def run_segment(args) -> int:
    import numpy as np

    from .io import read_image, write_image
    from .segmentation import segment, split_by_image, train_segmenter

    x = read_image(args.input, "L")

    def trainer():
        from ..data.datasets import load_magnetic_tiles
        ims, ms, labels = load_magnetic_tiles(args.data, size=(args.size, args.size))
        tr, va, _ = split_by_image(labels, seed=args.random_state)
        return train_segmenter(ims[tr], ms[tr], val=(ims[va], ms[va]), max_iter=args.max_iter,
                               n_patches=args.patches, random_state=args.random_state,
                               progress=False)[0]

    m = _model(args, trainer)
    _check_model(m, 1, 1, "segmentation", args.model)
    if not 0 < args.threshold < 1:
        raise ValueError(f"--threshold must be in (0, 1), got {args.threshold}")
    if args.probabilities:
        out = segment(m, x, threshold=None)
    else:
        out = segment(m, x, threshold=args.threshold).astype(np.float32)
    write_image(args.output, out)
    _report(args, "segment", input=x, output=out)
    print(json.dumps({"input": str(args.input), "output": str(args.output),
                      "defect_fraction": round(float((out >= args.threshold).mean()), 5)}))
    return 0


def _report(args, command: str, **images) -> None:
    from .cli import write_command_report

    write_command_report(args, command, **images)


def _common(p, epochs: int, patches: int):
    p.add_argument("input", help="image file (PNG, JPEG, TIFF, ...)")
    p.add_argument("--output", "-o", required=True, help="output image file (written "
                   "atomically; the suffix picks the format)")
    p.add_argument("--model", help="saved model (.safetensors): applied, or written after "
                   "--train")
    p.add_argument("--train", action="store_true", help="train a model first")
    from ..cli import add_renamed_flag

    p.add_argument("--max-iter", type=int, default=epochs,
                   help=f"training epochs (default {epochs})")
    add_renamed_flag(p, "--epochs", "--max-iter", type=int)
    p.add_argument("--patches", type=int, default=patches, help="random patches per epoch")
    p.add_argument("--random-state", type=int, default=0,
                   help="seed of the split, patches and initialisation (default 0)")
    add_renamed_flag(p, "--seed", "--random-state", type=int)
    from .cli import add_report_flag

    add_report_flag(p)


def add_parser(subparsers) -> None:
    """Add ``clean-document``, ``colourise`` and ``segment`` to the ``aekit`` subparsers."""
    p = subparsers.add_parser(
        "clean-document", help="clean a scanned page (stains, creases, speckle, lighting)",
        description="Clean a scanned text page with a U-Net trained on rendered pages with "
        "synthetic scan damage. Example: aekit clean-document scan.png -o clean.png --train "
        "--model doc.safetensors")
    _common(p, 8, 2048)
    p.add_argument("--train-images", help="folder of clean grayscale pages to train on "
                   "(default: rendered text pages)")
    p.add_argument("--pages", type=int, default=24, help="rendered training pages")
    p.add_argument("--binarise", action="store_true", help="write black/white text "
                   "(cleaned page thresholded at 0.5)")
    p.set_defaults(handler=run_clean_document)

    p = subparsers.add_parser(
        "colourise", help="colourise a grayscale photo (L in, ab out)",
        description="Colourise a grayscale photo with a U-Net predicting the Lab ab channels "
        "from L, trained on the built-in colour photos (or --train-images). An RGB input is "
        "recoloured from its lightness. Example: aekit colourise gray.png -o colour.png "
        "--train --model col.safetensors")
    _common(p, 10, 2048)
    p.add_argument("--train-images", help="folder of colour training photos")
    p.set_defaults(handler=run_colourise)

    p = subparsers.add_parser(
        "segment", help="segment defects of a tile image with a U-Net",
        description="Defect mask of a grayscale image with a U-Net trained on the Magnetic Tile "
        "Defects images (--train, needs magnetic_tile_defects.zip). Writes a white-on-black "
        "mask. Example: aekit segment tile.png -o mask.png --train --model seg.safetensors")
    _common(p, 10, 2048)
    p.add_argument("--data", help="magnetic_tile_defects.zip or its folder (default: "
                   "$AEKIT_DATA)")
    p.add_argument("--size", type=int, default=128, help="training tiles are resized to "
                   "SIZE x SIZE")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--probabilities", action="store_true", help="write the defect "
                   "probability instead of the thresholded mask")
    p.set_defaults(handler=run_segment)
