"""Model selection for the blind gray denoiser of ``image_denoise.py``, on validation only.

Short runs (``--budget`` seconds of training each, 150 by default) of candidate residual
denoisers on patches of ``aekit.images.TRAIN_PHOTOS`` with σ ~ U[0, 0.35] (DnCNN-B style),
scored by PSNR on the validation photos (``VAL_PHOTOS``: coins, whole, gray; ``--val-photos``
adds e.g. ``motorcycle_right`` of ``EXTRA_PHOTOS``, in no training set) at σ = 0.1 / 0.2 / 0.3.
No test photo is read. The candidate with the best mean validation PSNR at σ = 0.2 is the
one ``image_denoise.py`` trains for 30 minutes.

``--kind rgb`` selects among the colour candidates (``RGB_CANDIDATES`` and the
luminance-guided pairs of ``GUIDED_CANDIDATES``) for one RGB σ, on RGB validation photos.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_denoise_select.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import _common
import image_denoise as bench
from aekit.images import (
    VAL_PHOTOS,
    GaussianNoise,
    NoiseLevelMap,
    estimate_noise,
    load_photo,
    load_photos,
    opponent_noise_band,
    opponent_to_rgb,
    psnr,
    rgb_to_opponent,
)
from aekit.models import DnCNN, UNetAE

CANDIDATES = {
    # name: (constructor, patch, batch, learning rate); a model with noise_map=True is trained
    # on NoiseLevelMap pairs and told the true σ on validation (as BM3D is)
    "U-Net f32 d3 BN (residual)": (lambda: UNetAE(1, features=32, depth=3, residual=True), 48,
                                   32, 1e-3),
    "U-Net f48 d3 BN (residual)": (lambda: UNetAE(1, features=48, depth=3, residual=True), 48,
                                   32, 1e-3),
    "U-Net f32 d4 BN (residual)": (lambda: UNetAE(1, features=32, depth=4, residual=True), 48,
                                   32, 1e-3),
    **{f"U-Net f32 d3 BN (residual, σ = {s} only)": (
        lambda: UNetAE(1, features=32, depth=3, residual=True), 48, 32, 1e-3)
       for s in (0.1, 0.2, 0.3)},
    "U-Net f32 d3 BN (residual, noise map)": (
        lambda: UNetAE(2, out_channels=1, features=32, depth=3, residual=True, noise_map=True),
        48, 32, 1e-3),
    "FFDNet-style 64x12 no BN": (lambda: DnCNN(1, 64, 12, batch_norm=False, downscale=2), 64,
                                 32, 1e-3),
    "FFDNet-style 64x12 no BN, lr 3e-4": (lambda: DnCNN(1, 64, 12, batch_norm=False,
                                                        downscale=2), 64, 32, 3e-4),
    "FFDNet-style 64x15 no BN": (lambda: DnCNN(1, 64, 15, batch_norm=False, downscale=2), 64,
                                 32, 1e-3),
    "FFDNet-style 64x12 BN": (lambda: DnCNN(1, 64, 12, batch_norm=True, downscale=2), 64, 32,
                              1e-3),
}
#: training noise level of a candidate (σ, or a (low, high) range drawn per patch); every
#: other candidate is blind over σ ~ U[0, 0.35] (DnCNN-B style). A σ-specific model (DnCNN-S
#: style) spends its capacity on one level: it is scored on the σ = 0.2 selection column only.
TRAIN_SIGMA = {f"U-Net f32 d3 BN (residual, σ = {s} only)": s for s in (0.1, 0.2, 0.3)}
BLIND_SIGMA = (0.0, 0.35)

#: the RGB level the colour candidates are trained for: the one RGB setting where aekit was
#: still below a classical baseline other than BM3D (NL-means, σ = 0.1)
RGB_SIGMA = 0.1


def opponent_band(sigma: float) -> tuple[float, float]:
    """``aekit.images.opponent_noise_band(σ)`` rounded to 4 digits (for candidate names)."""
    return tuple(round(v, 4) for v in opponent_noise_band(sigma))


OPPONENT_BAND = opponent_band(RGB_SIGMA)


def _unet(channels):
    return lambda: UNetAE(channels, features=32, depth=3, residual=True)


#: colour candidates, selected with ``--kind rgb`` on RGB validation photos at RGB_SIGMA:
#: name -> (constructor, patch, batch, learning rate, training material, training σ, the RGB
#: σ it is for and scored at). A
#: three-channel model denoises R, G, B jointly; a one-channel model is run on the three
#: opponent channels (``aekit.images.denoise(colour="opponent")``, CBM3D's colour space) and
#: trained on σ drawn per patch from those channels' band. Training material (RGB validation
#: photos always left out, also as gray photos):
#:   "rgb": the colour training photos;
#:   "rgb_orders_gray": those in all 6 channel orders (RGB noise is i.i.d. per channel, so a
#:       permuted photo is as valid a training pair) plus every gray training photo as R=G=B;
#:   "gray": the gray training photos;
#:   "gray_opponent": those plus each opponent channel of every colour training photo.
RGB_CANDIDATES = {
    f"RGB U-Net f32 d3 BN (residual, σ = {RGB_SIGMA} only)": (
        _unet(3), 48, 32, 1e-3, "rgb", RGB_SIGMA, RGB_SIGMA),
    f"RGB U-Net f32 d3 BN (residual, σ = {RGB_SIGMA} only, 6 channel orders + gray photos)": (
        _unet(3), 48, 32, 1e-3, "rgb_orders_gray", RGB_SIGMA, RGB_SIGMA),
    f"opponent: gray U-Net f32 d3 BN (residual, σ ~ U{list(OPPONENT_BAND)})": (
        _unet(1), 48, 32, 1e-3, "gray", OPPONENT_BAND, RGB_SIGMA),
    f"opponent: gray U-Net f32 d3 BN (residual, σ ~ U{list(OPPONENT_BAND)}, + colour photos' "
    "opponent channels)": (_unet(1), 48, 32, 1e-3, "gray_opponent", OPPONENT_BAND, RGB_SIGMA),
    # the σ = 0.1 choice (opponent band, gray photos) at the other RGB levels: no selection of
    # their own
    **{f"opponent: gray U-Net f32 d3 BN (residual, σ ~ U{list(opponent_band(s))})": (
        _unet(1), 48, 32, 1e-3, "gray", opponent_band(s), s) for s in (0.2, 0.3)},
}
#: luminance-guided colour candidates (CBM3D's idea that chroma is denoised along the
#: luminance's structure): the luminance channel Y by a one-channel RGB_CANDIDATES model, each
#: chroma channel c by a two-channel net that sees (noisy c, noisy Y) and predicts both
#: (``guided_denoise``; c is kept). The RGB noise is independent across opponent channels,
#: so a chroma training pair is (c, Y) with independent noise in each, as at test time. The
#: candidate's budget is shared: ``share`` of it trains the luminance model, the rest the
#: chroma model. name -> (luminance candidate, chroma constructor, patch, batch, learning
#: rate, chroma training σ, the RGB σ, share).
GUIDED_CANDIDATES = {
    f"luminance-guided chroma: gray U-Net for Y + (c, Y) U-Net f32 d3 BN (residual, σ ~ "
    f"U{list(opponent_band(s))}), half the budget each": (
        f"opponent: gray U-Net f32 d3 BN (residual, σ ~ U{list(opponent_band(s))})",
        _unet(2), 48, 32, 1e-3, opponent_band(s), s, 0.5) for s in (0.1, 0.2, 0.3)}
#: the RGB noise level each colour candidate is trained for (and scored at)
RGB_TARGET = {**{name: spec[6] for name, spec in RGB_CANDIDATES.items()},
              **{name: spec[6] for name, spec in GUIDED_CANDIDATES.items()}}
RGB_MATERIAL = ("rgb", "rgb_orders_gray", "gray", "gray_opponent")


def chroma_pairs(images: list[np.ndarray]) -> list[np.ndarray]:
    """Two-channel (c, Y) training images of a guided chroma net: for each RGB image in each
    of the 6 channel orders (RGB noise is i.i.d. per channel, so a permuted photo is as valid
    a clean image), each chroma opponent channel c with the luminance Y, as (2, H, W)."""
    import itertools

    out = []
    for v in images:
        for o in itertools.permutations(range(3)):
            opp = rgb_to_opponent(np.ascontiguousarray(v[list(o)]))
            out += [np.ascontiguousarray(opp[[c, 0]]) for c in (1, 2)]
    return out


class GuidedPair(torch.nn.Module):
    """The two trained models of a guided candidate, kept together (``luma``: one channel,
    ``chroma``: (c, Y) -> (c, Y)); run by :func:`guided_denoise`, not by ``forward``."""

    def __init__(self, luma: torch.nn.Module, chroma: torch.nn.Module):
        super().__init__()
        self.luma, self.chroma = luma, chroma

    def forward(self, x):
        raise TypeError("a GuidedPair is run by guided_denoise(pair.luma, pair.chroma, rgb)")


def guided_denoise(luma, chroma, rgb: np.ndarray, ensemble: bool = False) -> np.ndarray:
    """Denoise a noisy RGB image (3, H, W) with a guided candidate: ``Ŷ = luma(Y)``,
    ``ĉ = chroma([c, Y])[0]`` for the two chroma channels (tiled, each clipped to [0, 1]),
    back to RGB by :func:`aekit.images.opponent_to_rgb`, clipped to [0, 1]."""
    opp = rgb_to_opponent(rgb)
    out = [bench.run_model(luma, opp[:1], ensemble=ensemble)[0]]
    out += [bench.run_model(chroma, np.ascontiguousarray(opp[[c, 0]]), ensemble=ensemble)[0]
            for c in (1, 2)]
    return np.clip(opponent_to_rgb(np.stack(out)), 0, 1)


#: the grid :func:`choose_refine` searches, in two stages: (chroma_h, patch) with no luminance
#: pass, then luma_h with the chosen chroma pass; the window is 21 throughout. (The σ = 0.2
#: run of 792d8b7 searched chroma_h from 0.02 and luma_h from 0.005; its ensemble chose both
#: lowest values, so the grid now reaches lower.)
REFINE_CHROMA_H = (0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06)
REFINE_PATCH = (3, 5)
REFINE_LUMA_H = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02)


def choose_refine(model, val: list[np.ndarray], sigma: float, seeds, ensemble: bool = False):
    """Choose a :class:`aekit.images.GuidedRefine` for ``model`` on validation photos.

    Each clean RGB photo of ``val`` gets fixed Gaussian noise σ (seed from ``seeds``), is
    denoised once by the model (``denoise(clip=False)``, on the opponent channels for a
    one-channel model; with the x8 self-ensemble if ``ensemble``), and every setting of the
    grid is scored by mean PSNR of ``clip(refine(output))``: first chroma_h × patch
    (REFINE_CHROMA_H × REFINE_PATCH), then luma_h (REFINE_LUMA_H) on top of the best, each
    stage keeping "none" when nothing beats it. Returns (the chosen GuidedRefine or None,
    the mean PSNR without it, with it, and every score as rows)."""
    from aekit.images import GuidedRefine, denoise

    data = []
    for c, seed in zip(val, seeds, strict=True):
        y = bench.noisy_of(c, "gaussian", sigma, seed)
        data.append((c, denoise(model, y, clip=False, self_ensemble=ensemble)))

    def score(r):
        return float(np.mean([psnr(c, np.clip(d if r is None else r(d), 0, 1))
                              for c, d in data]))

    rows = [{"refine": None, "psnr": round(score(None), 3)}]
    best, best_p = None, rows[0]["psnr"]
    for h in REFINE_CHROMA_H:
        for patch in REFINE_PATCH:
            r = GuidedRefine(chroma_h=h, patch=patch)
            rows.append({"refine": r.config(), "psnr": round(score(r), 3)})
            if rows[-1]["psnr"] > best_p:
                best, best_p = r, rows[-1]["psnr"]
    base = best or GuidedRefine(chroma_h=None)
    for h in REFINE_LUMA_H:
        r = GuidedRefine(chroma_h=base.chroma_h, luma_h=h, patch=base.patch)
        rows.append({"refine": r.config(), "psnr": round(score(r), 3)})
        if rows[-1]["psnr"] > best_p:
            best, best_p = r, rows[-1]["psnr"]
    return best, rows[0]["psnr"], best_p, rows


def rgb_material(kind: str, exclude=()) -> list[np.ndarray]:
    """Training images of an RGB candidate's ``kind`` (see :data:`RGB_CANDIDATES`), leaving
    out the photos named in ``exclude`` (the RGB validation photos) in every form."""
    if kind not in RGB_MATERIAL:
        raise ValueError(f"kind must be one of {RGB_MATERIAL}, got {kind!r}")
    rgb = [v for k, v in load_photos("train", "RGB").items() if k not in exclude]
    gray = [v for k, v in load_photos("train", "L").items() if k not in exclude]
    if kind == "rgb":
        return rgb
    if kind == "rgb_orders_gray":
        import itertools

        return [np.ascontiguousarray(v[list(o)]) for v in rgb
                for o in itertools.permutations(range(3))] + [np.repeat(g, 3, 0) for g in gray]
    if kind == "gray":
        return gray
    return gray + _opponent_channels(rgb)


def _opponent_channels(images: list[np.ndarray]) -> list[np.ndarray]:
    """The three opponent channels of each RGB image, each as a gray (1, H, W) image."""
    return [np.ascontiguousarray(rgb_to_opponent(v)[c:c + 1]) for v in images for c in range(3)]


def rgb_validation_patches(model, images: list[np.ndarray]) -> list[np.ndarray]:
    """Clean validation images in the model's own input space: the RGB images for a
    three-channel model, their three opponent channels as gray images for a one-channel one."""
    return images if model.config()["in_channels"] == 3 else _opponent_channels(images)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=None, help="training seconds per candidate")
    ap.add_argument("--candidates", nargs="+", default=None, metavar="NAME",
                    help="a subset of the candidates (default: all)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="train every candidate for this many epochs of 1,024 patches instead "
                    "of a calibrated time budget (equal steps on a shared machine; --budget "
                    "then only caps the time)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--val-photos", default=None, metavar="NAME,...",
                    help="validation photos (whole, gray; default the VAL_PHOTOS split, "
                    f"{','.join(VAL_PHOTOS)}); any of VAL_PHOTOS and EXTRA_PHOTOS, never a "
                    "training or test photo")
    ap.add_argument("--kind", choices=("gray", "rgb"), default="gray",
                    help="gray: CANDIDATES, chosen at σ = 0.2 on gray validation photos; rgb: "
                    f"RGB_CANDIDATES, chosen at σ = {RGB_SIGMA} on RGB validation photos "
                    "(chelsea, the RGB validation photo, and any --val-photos)")
    ap.add_argument("--name", default=None, help="results name (default image_denoise_select)")
    args = ap.parse_args(argv)
    if args.kind == "rgb":
        return main_rgb(args)
    names = args.candidates or list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise SystemExit(f"unknown --candidates {unknown}; expected some of {list(CANDIDATES)}")
    q = args.quick
    budget = args.budget or (15.0 if q else 150.0)
    bench.EPOCH = 256 if q else 1024
    torch.set_num_threads(args.threads)
    tr = list(load_photos("train", "L").values())
    val_names = bench.val_photo_names(args.val_photos)
    val = [load_photo(v, "L") for v in val_names]
    rows = []
    for name in names:
        make, patch, batch, lr = CANDIDATES[name]
        torch.manual_seed(0)
        m = make()
        noise_map = bool(getattr(m, "noise_map", False))
        damage = GaussianNoise(TRAIN_SIGMA.get(name, BLIND_SIGMA))
        info = bench.train(m, tr, NoiseLevelMap(damage) if noise_map else damage, budget,
                           patch=patch, batch=batch, lr=lr,
                           val=[v[:, :128, :128] for v in val], epochs=args.epochs)
        row = {"candidate": name, "noise_map": noise_map, "patch": patch, "batch": batch,
               "train_sigma": TRAIN_SIGMA.get(name, BLIND_SIGMA),
               "learning_rate": lr,
               "parameters": sum(p.numel() for p in m.parameters()), **info}
        for s in (0.1, 0.2, 0.3):
            ps, pe = [], []
            for i, c in enumerate(val):
                y = bench.noisy_of(c, "gaussian", s, 10_000 + i)
                ps.append(psnr(c, bench.run_model(m, y, sigma=s)))
                row[f"val_psnr_{s}_{val_names[i]}"] = round(float(ps[-1]), 3)
                if noise_map:  # also told the wavelet estimate of σ instead of the truth
                    pe.append(psnr(c, bench.run_model(m, y, sigma=estimate_noise(y))))
            row[f"val_psnr_{s}"] = round(float(np.mean(ps)), 3)
            if noise_map:
                row[f"val_psnr_{s}_sigma_estimated"] = round(float(np.mean(pe)), 3)
        row["patches_per_s"] = round(info["steps"] * batch / max(info["fit_s"], 1e-9), 1)
        rows.append(row)
        print(row, flush=True)
    best = max(rows, key=lambda r: r["val_psnr_0.2"])
    table = _common.md_table(
        ["candidate", "params", "patch", "batch", "lr", "steps", "patches/s", "val PSNR σ=0.1",
         "σ=0.2", "σ=0.3"],
        [[r["candidate"], r["parameters"], r["patch"], r["batch"], r["learning_rate"],
          r["steps"], r["patches_per_s"], r["val_psnr_0.1"], r["val_psnr_0.2"],
          r["val_psnr_0.3"]] for r in rows])
    out_name = args.name or "image_denoise_select"
    _common.write_results(out_name + "_quick" if q else out_name, {
        "settings": {"quick": q, "threads": torch.get_num_threads(), "candidates": names,
                     "epochs": args.epochs, "val_photos": val_names,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "budget_s_per_candidate": budget, "bf16": bench.BF16},
        "protocol": {
            "training": "random patches of aekit.images.TRAIN_PHOTOS (gray) with the 8 "
                        "flips/rotations, Gaussian σ ~ U[0, 0.35] per patch (blind, or with "
                        "the σ map as an extra input for a noise-map candidate); Adam, "
                        "cosine schedule over the epochs that fit the budget (step time "
                        "calibrated first; with --epochs the same fixed number of epochs for "
                        "every candidate), best epoch on 128x128 validation crops",
            "selection": "mean PSNR on the whole validation photos (settings.val_photos, gray; "
                         "never a training or test photo) with fixed noise at "
                         "σ = 0.1 / 0.2 / 0.3, tiled inference (a noise-map candidate told the "
                         "true σ, as BM3D is; its σ-estimated PSNR recorded too); the best at "
                         "σ = 0.2 is chosen; no test photo is read",
        },
        "rows": rows, "chosen": best["candidate"],
    }, table)
    print("chosen:", best["candidate"], time.strftime("%H:%M:%S"))


def rgb_val_photo_names(text: str | None) -> list[str]:
    """The RGB validation photos: chelsea (the RGB validation photo) and the colour photos of
    ``--val-photos`` (from ``EXTRA_PHOTOS``; never a training or test photo)."""
    extra = [n for n in bench.val_photo_names(text) if n not in VAL_PHOTOS] if text else []
    gray_only = [n for n in extra if np.ptp(load_photo(n, "RGB"), 0).max() == 0]
    if gray_only:
        raise SystemExit(f"--val-photos for --kind rgb must be colour photos, got {gray_only}")
    return ["chelsea", *extra]


def train_rgb_candidate(name, budget, val_names, crops, epochs):
    """Train one RGB_CANDIDATES model for ``budget`` seconds; its RGB denoiser, row and
    model."""
    make, patch, batch, lr, material, sigma, _ = RGB_CANDIDATES[name]
    torch.manual_seed(0)
    m = make()
    tr = rgb_material(material, exclude=val_names)
    info = bench.train(m, tr, GaussianNoise(sigma), budget, patch=patch, batch=batch, lr=lr,
                       val=rgb_validation_patches(m, crops), epochs=epochs)
    opponent = m.config()["in_channels"] == 1
    row = {"candidate": name, "material": material, "training_images": len(tr),
           "route": "opponent" if opponent else "direct", "patch": patch, "batch": batch,
           "train_sigma": sigma, "learning_rate": lr,
           "parameters": sum(p.numel() for p in m.parameters()), **info,
           "patches_per_s": round(info["steps"] * batch / max(info["fit_s"], 1e-9), 1)}
    return (lambda y: bench.run_model(m, y, opponent=opponent)), row, m


def train_guided(name, budget, val_names, crops, epochs):
    """Train a GUIDED_CANDIDATES pair: the luminance model for ``share`` of the budget, then
    the (c, Y) chroma model (on :func:`chroma_pairs` of the colour training photos, the
    validation photos left out) for the rest; its RGB denoiser and row."""
    luma_name, make, patch, batch, lr, sigma, _, share = GUIDED_CANDIDATES[name]
    _, row_y, luma = train_rgb_candidate(luma_name, budget * share, val_names, crops, epochs)
    torch.manual_seed(0)
    m = make()
    tr = chroma_pairs(rgb_material("rgb", exclude=val_names))
    info = bench.train(m, tr, GaussianNoise(sigma), budget * (1 - share), patch=patch,
                       batch=batch, lr=lr, val=chroma_pairs(crops), epochs=epochs)
    row = {"candidate": name, "material": f"Y: {row_y['material']}; chroma: (c, Y) of the "
                                          "colour photos in 6 channel orders",
           "training_images": row_y["training_images"] + len(tr), "route": "guided",
           "patch": patch, "batch": batch, "train_sigma": sigma, "learning_rate": lr,
           "parameters": row_y["parameters"] + sum(p.numel() for p in m.parameters()),
           "steps": row_y["steps"] + info["steps"],
           "fit_s": row_y["fit_s"] + info["fit_s"],
           "patches_per_s": round((row_y["steps"] + info["steps"]) * batch
                                  / max(row_y["fit_s"] + info["fit_s"], 1e-9), 1),
           "luminance": row_y, "chroma": info}
    return (lambda y: guided_denoise(luma, m, y)), row


def main_rgb(args):
    """``--kind rgb``: train each of RGB_CANDIDATES for the budget and score it on the whole
    RGB validation photos at σ = RGB_SIGMA; the best is chosen."""
    names = args.candidates or [n for n in RGB_CANDIDATES if RGB_TARGET[n] == RGB_SIGMA]
    unknown = [n for n in names if n not in RGB_TARGET]
    if unknown:
        raise SystemExit(f"unknown --candidates {unknown}; expected some of "
                         f"{list(RGB_TARGET)}")
    if len({RGB_TARGET[n] for n in names}) > 1:
        raise SystemExit("--candidates of --kind rgb must be for one RGB σ, got "
                         f"{sorted({RGB_TARGET[n] for n in names})}")
    level = RGB_TARGET[names[0]]
    q = args.quick
    budget = args.budget or (15.0 if q else 150.0)
    bench.EPOCH = 256 if q else 1024
    torch.set_num_threads(args.threads)
    val_names = rgb_val_photo_names(args.val_photos)
    val = [load_photo(v, "RGB") for v in val_names]
    rows = []
    crops = [v[:, :128, :128] for v in val]
    for name in names:
        if name in GUIDED_CANDIDATES:
            run, row = train_guided(name, budget, val_names, crops, args.epochs)
        else:
            run, row, _ = train_rgb_candidate(name, budget, val_names, crops, args.epochs)
        ps = []
        for i, c in enumerate(val):
            y = bench.noisy_of(c, "gaussian", level, 10_000 + i)
            ps.append(psnr(c, run(y)))
            row[f"val_psnr_{level}_{val_names[i]}"] = round(float(ps[-1]), 3)
        row[f"val_psnr_{level}"] = round(float(np.mean(ps)), 3)
        rows.append(row)
        print(row, flush=True)
    key = f"val_psnr_{level}"
    best = max(rows, key=lambda r: r[key])
    table = _common.md_table(
        ["candidate", "training images", "route", "steps", "patches/s",
         f"val PSNR σ={level}", *(f"{v}" for v in val_names)],
        [[r["candidate"], r["training_images"], r["route"], r["steps"], r["patches_per_s"],
          r[key], *(r[f"{key}_{v}"] for v in val_names)] for r in rows])
    out_name = args.name or "image_denoise_select_rgb"
    _common.write_results(out_name + "_quick" if q else out_name, {
        "settings": {"quick": q, "kind": "rgb", "threads": torch.get_num_threads(),
                     "candidates": names, "epochs": args.epochs, "val_photos": val_names,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "budget_s_per_candidate": budget, "bf16": bench.BF16},
        "protocol": {
            "training": "random patches of each candidate's training material (see "
                        "RGB_CANDIDATES; the validation photos left out in every form) with "
                        "the 8 flips/rotations, Gaussian noise at the candidate's σ; Adam, "
                        "cosine schedule over the epochs that fit the budget, best epoch on "
                        "128x128 validation crops in the model's input space",
            "selection": f"mean PSNR on the whole RGB validation photos (settings.val_photos) "
                         f"with fixed noise at σ = {level}, tiled inference (a one-channel "
                         "model on the opponent channels); the best is chosen; no test photo "
                         "is read",
        },
        "rows": rows, "chosen": best["candidate"],
    }, table)
    print("chosen:", best["candidate"], time.strftime("%H:%M:%S"))


if __name__ == "__main__":
    main()
