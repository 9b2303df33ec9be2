"""``aekit denoise|inpaint|compress``: the image applications on real image files.

``denoise`` trains a blind denoiser on built-in photos (or a folder) with noise made on the
fly, or loads a saved one, and writes the cleaned image; ``inpaint`` removes text overlays /
blocks (blind, or with a mask image); ``compress`` writes quantised codes of a ConvAE to a file
and decodes them back, printing bits per pixel, PSNR and SSIM. Outputs are written atomically.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["add_parser"]


def _photos(args, mode):
    from .builtin import load_photos
    from .io import load_folder

    if args.train_images:
        return load_folder(args.train_images, mode, skip_other=True)
    return list(load_photos("train", mode).values())


def _model(args, trainer):
    import aekit

    if args.model and Path(args.model).exists() and not args.train:
        return aekit.load(args.model)
    if args.model is None and not args.train:
        raise ValueError("--model MODEL.safetensors is required unless --train is given")
    m = trainer()
    if args.model:
        aekit.save_model(m, args.model)
    return m


def _mode(args):
    return "RGB" if args.color else "L"


def run_denoise(args) -> int:
    from .apps import denoise, denoise_colour_mode, estimate_noise, train_denoiser
    from .io import read_image, write_image
    from .metrics import psnr, ssim

    x = read_image(args.input, _mode(args))
    level = args.level
    if args.noise == "gaussian" and level is None:
        level = (0.05, 0.35)  # blind training range
    if args.noise_map and args.noise != "gaussian":
        raise ValueError(f"--noise-map is for Gaussian noise, got --noise {args.noise}")
    if args.sigma is not None and not (math.isfinite(args.sigma) and args.sigma >= 0):
        raise ValueError(f"--sigma must be a finite noise level >= 0, got {args.sigma}")
    refine = None  # checked before any training
    if args.refine_chroma is not None or args.refine_luma is not None:
        from .guided import GuidedRefine

        try:
            refine = GuidedRefine(chroma_h=args.refine_chroma, luma_h=args.refine_luma,
                                  patch=args.refine_patch)
        except ValueError as e:  # name the flag, not the field
            msg = str(e).replace("chroma_h", "--refine-chroma").replace("luma_h",
                                                                       "--refine-luma")
            raise ValueError(msg.replace("patch must", "--refine-patch must")) from None
    m = _model(args, lambda: train_denoiser(
        _photos(args, _mode(args)), noise=args.noise, level=level or 0.1,
        clip=not args.unclipped_noise, noise_map=args.noise_map, max_iter=args.max_iter,
        n_patches=args.patches, random_state=args.random_state,
        progress=False)[0])
    non_blind = bool(getattr(m, "noise_map", False))
    if args.sigma is not None and not non_blind:
        raise ValueError("--sigma needs a non-blind model (trained with --noise-map); "
                         f"{args.model or 'the trained model'} is blind")
    ref = read_image(args.reference, _mode(args)) if args.reference else None
    if ref is not None and ref.shape != x.shape:
        raise ValueError(f"--reference {args.reference} is {ref.shape[1]}x{ref.shape[2]}x"
                         f"{ref.shape[0]}, the input is {x.shape[1]}x{x.shape[2]}x{x.shape[0]}")
    out = denoise(m, x, sigma=args.sigma, refine=refine)
    write_image(args.output, out)
    report = {"input": str(args.input), "output": str(args.output),
              "estimated_sigma": round(estimate_noise(x), 4),
              # a gray model on a colour image runs on its opponent channels
              "colour": denoise_colour_mode(m, x)}
    if refine is not None:
        report["refine"] = refine.config()
    if non_blind:
        report["sigma_used"] = round(args.sigma if args.sigma is not None
                                     else report["estimated_sigma"], 4)
    if ref is not None:
        report.update(psnr_in=round(psnr(ref, x), 3), psnr_out=round(psnr(ref, out), 3),
                      ssim_out=round(ssim(ref, out), 4))
    write_command_report(args, "denoise", input=x, output=out, target=ref,
            note=f"estimated σ = {report['estimated_sigma']}")
    print(json.dumps(report))
    return 0


def run_inpaint(args) -> int:
    import numpy as np

    from .apps import inpaint, train_inpainter
    from .io import read_image, write_image

    x = read_image(args.input, _mode(args))
    mask = None
    if args.mask:
        mask = read_image(args.mask, "L")[0] > 0.5
        if mask.shape != x.shape[1:]:
            raise ValueError(f"--mask {args.mask} is {mask.shape[0]}x{mask.shape[1]}, the image "
                             f"is {x.shape[1]}x{x.shape[2]}")
    m = _model(args, lambda: train_inpainter(
        _photos(args, _mode(args)), damage=args.damage, given_mask=mask is not None,
        max_iter=args.max_iter, n_patches=args.patches, random_state=args.random_state,
        progress=False)[0])
    out = inpaint(m, x, None if mask is None else mask.astype(np.float32))
    write_image(args.output, out)
    write_command_report(args, "inpaint", input=x, output=out,
            note="mask given" if mask is not None else "blind")
    print(json.dumps({"input": str(args.input), "output": str(args.output),
                      "mask": args.mask}))
    return 0


def run_compress(args) -> int:
    from .apps import compress_image, decompress_image, train_compressor
    from .io import read_image, write_image
    from .metrics import psnr, ssim

    x = read_image(args.input, _mode(args))
    m = _model(args, lambda: train_compressor(
        _photos(args, _mode(args)), bits=args.bits, code_channels=args.code_channels,
        max_iter=args.max_iter, n_patches=args.patches, random_state=args.random_state,
        progress=False))
    data = compress_image(m, x, bits=args.bits, path=args.output)
    out = decompress_image(m, args.output)
    if args.decoded:
        write_image(args.decoded, out)
    H, W = x.shape[1:]
    write_command_report(args, "compress", output=out, target=x,
            note=f"{8 * len(data) / (H * W):.3f} bits per pixel")
    print(json.dumps({"output": str(args.output), "bytes": len(data),
                      "bpp": round(8 * len(data) / (H * W), 4),
                      "psnr": round(psnr(x, out), 3), "ssim": round(ssim(x, out), 4)}))
    return 0


def write_command_report(args, command: str, **images) -> None:
    """``--report FILE.html``: a page with the before/after thumbnails and PSNR/SSIM."""
    if not getattr(args, "report", None):
        return
    from ..report.images import ImageExample, write_image_report

    ex = ImageExample(Path(args.input).name, **images)
    write_image_report(args.report, [ex], title=f"aekit {command}: {Path(args.input).name}",
                       intro=f"<p><code>aekit {command}</code> on <code>{args.input}</code>, "
                       f"output written to <code>{args.output}</code>.</p>")


def add_report_flag(p) -> None:
    """Add ``--report FILE.html`` to an image command's parser."""
    p.add_argument("--report", help="also write a self-contained HTML page with input / "
                   "output (/ reference) thumbnails and PSNR / SSIM")


def _common(p, default_epochs=20):
    p.add_argument("input", help="image file (PNG, JPEG, TIFF)")
    p.add_argument("--output", "-o", required=True, help="output file")
    p.add_argument("--model", help="saved model (.safetensors): loaded, or written after --train")
    p.add_argument("--train", action="store_true",
                   help="train a model first (on the built-in photos or --train-images)")
    p.add_argument("--train-images", help="folder of training images (default: built-in photos)")
    p.add_argument("--color", action="store_true", help="RGB instead of grayscale")
    from ..cli import add_renamed_flag

    p.add_argument("--max-iter", type=int, default=default_epochs,
                   help=f"training epochs (default {default_epochs})")
    add_renamed_flag(p, "--epochs", "--max-iter", type=int)
    p.add_argument("--patches", type=int, default=2048, help="random patches per epoch")
    p.add_argument("--random-state", type=int, default=0, help="seed of the training patches "
                   "and initialisation (default 0)")
    add_renamed_flag(p, "--seed", "--random-state", type=int)
    add_report_flag(p)


def add_parser(subparsers) -> None:
    """Add ``denoise``, ``inpaint`` and ``compress`` to the ``aekit`` subparsers."""
    p = subparsers.add_parser("denoise", help="remove noise from an image with a trained CNN",
                              description="Denoise an image with a residual U-Net trained on "
                              "(noisy, clean) patches made on the fly. Example: aekit denoise "
                              "noisy.png -o clean.png --train --model den.safetensors")
    _common(p)
    p.add_argument("--noise", choices=["gaussian", "salt_pepper", "masking"], default="gaussian")
    p.add_argument("--level", type=float, default=None,
                   help="σ / p / ν for training (default: blind Gaussian σ in [0.05, 0.35])")
    p.add_argument("--noise-map", action="store_true",
                   help="with --train: a non-blind model that is also given the noise level σ "
                   "as an input channel (FFDNet-style); σ is --sigma or estimated")
    p.add_argument("--sigma", type=float, default=None,
                   help="the image's Gaussian noise level in [0, 1] pixel units, for a "
                   "non-blind (--noise-map) model (default: estimated by wavelet MAD)")
    p.add_argument("--reference", help="clean image: report PSNR/SSIM against it")
    p.add_argument("--refine-chroma", type=float, default=None, metavar="H",
                   help="second pass on a colour result: guided NL-means of the chroma along "
                   "the denoised image's patch matches, filtering parameter H (e.g. 0.04; "
                   "aekit.images.GuidedRefine)")
    p.add_argument("--refine-luma", type=float, default=None, metavar="H",
                   help="second pass on the luminance (or a gray result) too, with this H "
                   "(small, e.g. 0.01)")
    p.add_argument("--refine-patch", type=int, default=5,
                   help="patch side of the guided NL-means pass (odd; default 5)")
    p.add_argument("--unclipped-noise", action="store_true",
                   help="train on unclipped Gaussian noise (the AWGN benchmark protocol); by "
                   "default the training noise is clipped to [0, 1] like the noise an image "
                   "file holds")
    p.set_defaults(handler=run_denoise)

    p = subparsers.add_parser("inpaint", help="remove text overlays / fill missing blocks",
                              description="Inpaint an image with a U-Net: blind (it finds the "
                              "overlay) or with --mask (white = damaged).")
    _common(p)
    p.add_argument("--mask", help="mask image, white = damaged (same size as the input)")
    p.add_argument("--damage", choices=["text", "blocks"], default="text",
                   help="damage to train on")
    p.set_defaults(handler=run_inpaint)

    p = subparsers.add_parser("compress", help="compress an image to quantised AE codes",
                              description="Encode an image with a convolutional AE, write its "
                              "quantised code map (LZMA) and decode it back; prints bpp, PSNR, "
                              "SSIM.")
    _common(p)
    p.add_argument("--bits", type=int, default=4, help="bits per code value (1..8)")
    p.add_argument("--code-channels", type=int, default=8)
    p.add_argument("--decoded", help="also write the decoded image here")
    p.set_defaults(handler=run_compress)
