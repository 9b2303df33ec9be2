"""Image denoising: aekit models vs classical denoisers (BM3D included), all in the same run.

Held-out whole photos (``aekit.images.TEST_PHOTOS``: camera, astronaut, china, clock in
grayscale; astronaut and china in RGB) and Fashion-MNIST test images, Gaussian σ = 0.1 / 0.2 /
0.3 (pixels in [0, 1], not clipped) and salt-and-pepper 10 %. aekit models are *blind*: the
main gray denoiser is ONE residual net (architecture and learning rate chosen on validation by
``image_denoise_select.py``) trained for 30 minutes (``--gray-budget``) on σ ~ U[0, 0.35]
(DnCNN-B style), serving every Gaussian level; the other models (one Gaussian model per image
kind trained on σ ~ U[0.05, 0.35], one salt-and-pepper model) share ``--budget`` seconds;
baselines get the true σ (BM3D, NLM, wavelet) and their other
hyper-parameters chosen on a validation photo (coins gray / chelsea RGB) or 100 Fashion-MNIST
training images. Training material: ``aekit.images.TRAIN_PHOTOS`` patches (and Fashion-MNIST
training images), never a test image. Also: training throughput of ConvAE / UNetAE at batch 64.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_denoise.py [--quick]``.

Data-parallel over the cores: ``OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 2
benchmarks/image_denoise.py ...`` trains every model with ``aekit.fit``'s DistributedDataParallel
strategy (gloo): each global batch is split over the processes and the gradients averaged, so
batch norm sees ``batch / processes`` patches per process (``--main-batch`` sets the main
models' global batch, e.g. twice the selected one to keep 32 per process). Each process draws
its own fresh patches (``PatchSource``'s per-rank stream). The epochs of the calibrated
schedule are rank 0's; a budget stop at an epoch end is agreed by all processes. Rank 0 alone
evaluates, runs the baselines and writes the results (``processes`` recorded).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import _common
from aekit import fit
from aekit.data.batch import Batch
from aekit.images import (
    EXTRA_PHOTOS,
    VAL_PHOTOS,
    GaussianNoise,
    NoiseLevelMap,
    PatchSource,
    SaltPepperNoise,
    SelfEnsemble,
    denoise,
    estimate_noise,
    load_fashion_mnist,
    load_photo,
    load_photos,
    predict_tiled,
    psnr,
    ssim,
    write_image,
)
from aekit.models import ConvAE, DenseAE, DnCNN, UNetAE
from aekit.objectives import Objective
from aekit.train.callbacks import TimeBudget
from aekit.train.distributed import world_and_rank

SIGMAS = (0.1, 0.2, 0.3)
SP = 0.1
EPOCH = 1024  # patches per epoch
MARGIN = 1.1  # calibrated epochs assume steps this much slower than measured (--margin)


def _bf16_native() -> bool:
    import warnings

    from aekit.train.optim import resolve_precision
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resolve_precision("bf16") == "bf16"


BF16 = _bf16_native()


class FlatSource:
    """Patches as flat rows for the dense DAE."""

    def __init__(self, src):
        self.src = src

    def __len__(self):
        return len(self.src)

    def take(self, idx):
        b = self.src.take(idx)
        return Batch(b.x.flatten(1), x_tilde=b.x_tilde.flatten(1))


class _Prefix:
    """The first ``n`` samples of a data source (``len`` + ``take``)."""

    def __init__(self, src, n):
        self.src, self.n = src, n

    def __len__(self):
        return self.n

    def take(self, idx):
        return self.src.take(idx)


class _Images:
    """A fixed tensor of images (n, C, H, W) as a data source for ``fit``."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def take(self, idx):
        return Batch(self.x[idx])


def _rank0_int(v: int) -> int:
    """``v`` of rank 0 on every process (``v`` itself without a process group)."""
    import torch.distributed as dist

    if world_and_rank()[0] == 1:
        return int(v)
    t = torch.tensor([int(v)], dtype=torch.int64)
    dist.broadcast(t, src=0)
    return int(t)


def fit_step_time(model, obj, data, batch, precision, lr):
    """Seconds per optimiser step of ``aekit.fit`` on ``data`` (one epoch, batch ``batch``),
    after a one-batch warm-up fit; trains ``model`` in place (pass a copy to keep it)."""
    kw = dict(batch_size=batch, learning_rate=lr, precision=precision, progress=False,
              random_state=0)
    fit(model, obj, _Prefix(data, batch), max_iter=1, **kw)
    t0 = time.perf_counter()
    fit(model, obj, data, max_iter=1, **kw)
    return (time.perf_counter() - t0) / (len(data) // batch)


def train(model, images, damage, budget_s, *, patch=48, batch=32, lr=1e-3, seed=0, val=None,
          flat=False, epochs=None):
    """Train for about ``budget_s`` seconds: steps/s calibrated first, then a cosine schedule
    over the epochs that fit; the best validation epoch is kept. With ``epochs`` the number
    of epochs is fixed instead (no calibration; ``budget_s`` only caps the time): on a shared
    machine that keeps a comparison of candidates at equal steps."""
    src = PatchSource(images, patch, EPOCH, damage=damage, seed=seed)
    vsrc = PatchSource(val, patch, 128, damage=damage, fresh=False, seed=seed + 1) if val \
        else None
    prec = "bf16" if BF16 else "fp32"
    model.to(memory_format=torch.channels_last)
    if flat:
        src, vsrc = FlatSource(src), (FlatSource(vsrc) if vsrc else None)
    obj = Objective("mse")
    # time a few steps of fit on a throw-away copy: the model itself is trained by fit alone
    t0 = time.perf_counter()
    if epochs is None:
        # long runs: a steadier estimate (12 steps overestimated the step time by ~10 % under
        # torchrun, where each fit call also sets up DistributedDataParallel)
        n_cal = 3 if budget_s < 600 else 32
        per_step = fit_step_time(copy.deepcopy(model), obj, _Prefix(src, batch * n_cal), batch,
                                 prec, lr)
        spent = time.perf_counter() - t0
        epochs = max(1, int((budget_s - spent) / (per_step * MARGIN * EPOCH / batch)))
        epochs = _rank0_int(epochs)  # under torchrun every process runs rank 0's schedule
    t1 = time.perf_counter()
    h = fit(model, obj, src, val=vsrc, max_iter=epochs, batch_size=batch, learning_rate=lr,
            schedule="cosine", random_state=seed, progress=False, early_stopping=10 ** 6,
            precision=prec,
            callbacks=[TimeBudget(budget_s * 1.1)])
    model.eval()
    return {"train_s": round(time.perf_counter() - t0, 1), "epochs": len(h.records),
            "steps": len(h.records) * (EPOCH // batch), "precision": prec,
            "best_val": min(r.get("val_loss", float("inf")) for r in h.records),
            "fit_s": round(time.perf_counter() - t1, 1)}


def run_model(model, img, flat=False, ensemble=False, sigma=None, opponent=False):
    """Whole-image inference (tiles of 128 overlapping 32), clipped to [0, 1]; a noise-map
    model (``noise_map=True``) is given ``[y, σ·1]`` with ``sigma`` (required for it).
    ``opponent``: a one-channel model on the opponent channels of an RGB image
    (``aekit.images.denoise(colour="opponent")``, CBM3D's colour space)."""
    if opponent:
        return denoise(model, img, tile=128, overlap=32, self_ensemble=ensemble,
                       sigma=sigma if getattr(model, "noise_map", False) else None,
                       colour="opponent")
    if getattr(model, "noise_map", False):
        if sigma is None:
            raise ValueError("a noise-map model needs sigma")
        img = np.concatenate([img, np.full_like(img[:1], sigma)], 0)
    if flat:
        return np.clip(predict_tiled(model, img, overlap=12), 0, 1)
    f = SelfEnsemble(model) if ensemble else model
    return np.clip(predict_tiled(f, img, tile=128, overlap=32), 0, 1)


#: where --refine chooses its settings: the RGB validation photo and a colour photo of
#: EXTRA_PHOTOS (in no training set), whole, as in image_denoise_select.py --kind rgb
REFINE_VAL_PHOTOS = ("chelsea", "motorcycle_right")

#: The main gray denoiser: the candidate of image_denoise_select.py with the best validation
#: PSNR at σ = 0.2 (results/image_denoise_select.json, "chosen").
MAIN_CHOICE = "U-Net f32 d3 BN (residual)"
MAIN_LABEL = "aekit blind denoiser (30 min)"


def _main_spec(name=MAIN_CHOICE):
    import image_denoise_select as sel

    if name not in sel.CANDIDATES:
        raise SystemExit(f"--main must be a candidate of image_denoise_select.py, got {name!r}; "
                         f"candidates: {', '.join(sel.CANDIDATES)}")
    return name, sel.CANDIDATES[name], sel.TRAIN_SIGMA.get(name, sel.BLIND_SIGMA)


def _rgb_spec(name):
    """(name, RGB_CANDIDATES[name]) of image_denoise_select.py, or for a GUIDED_CANDIDATES
    name (name, the spec of its luminance candidate); or a clear exit."""
    import image_denoise_select as sel

    if name in sel.GUIDED_CANDIDATES:
        return name, sel.RGB_CANDIDATES[sel.GUIDED_CANDIDATES[name][0]]
    if name not in sel.RGB_CANDIDATES:
        raise SystemExit("--rgb-main must be one of image_denoise_select.RGB_CANDIDATES or "
                         f"GUIDED_CANDIDATES, got {name!r}; candidates: "
                         f"{', '.join([*sel.RGB_CANDIDATES, *sel.GUIDED_CANDIDATES])}")
    return name, sel.RGB_CANDIDATES[name]


def val_photo_names(text: str | None) -> list[str]:
    """``--val-photos "a,b"`` as a list of validation photo names (``None``: ``VAL_PHOTOS``);
    only names of ``VAL_PHOTOS`` and ``EXTRA_PHOTOS``, never a training or test photo."""
    if text is None:
        return list(VAL_PHOTOS)
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names or set(names) - set(VAL_PHOTOS) - set(EXTRA_PHOTOS):
        raise SystemExit(f"--val-photos must name some of {VAL_PHOTOS + EXTRA_PHOTOS}, got "
                         f"{text!r}")
    return names


# --- baselines -------------------------------------------------------------------------------
def median(y, size):
    from scipy.ndimage import median_filter
    return np.stack([median_filter(c, size=size) for c in y])


def gblur(y, s):
    from scipy.ndimage import gaussian_filter
    return np.stack([gaussian_filter(c, s) for c in y])


def nlm(y, sigma, h):
    from skimage.restoration import denoise_nl_means
    if y.shape[0] == 1:  # a 2-D call for gray (channel_axis on one channel misbehaves)
        out = denoise_nl_means(y[0], h=h * sigma, sigma=sigma, fast_mode=True, patch_size=5,
                               patch_distance=6)
    else:
        out = denoise_nl_means(y, h=h * sigma, sigma=sigma, fast_mode=True, patch_size=5,
                               patch_distance=6, channel_axis=0)
    return np.asarray(out, np.float32).reshape(y.shape)


def wavelet(y, sigma, method):
    from skimage.restoration import denoise_wavelet
    return denoise_wavelet(y, sigma=sigma, method=method, mode="soft", channel_axis=0,
                           convert2ycbcr=y.shape[0] == 3,
                           rescale_sigma=True).astype(np.float32)


def bm3d_(y, sigma):
    import bm3d
    if y.shape[0] == 3:
        return np.asarray(bm3d.bm3d_rgb(y.transpose(1, 2, 0), sigma), np.float32).transpose(2, 0,
                                                                                           1)
    return np.asarray(bm3d.bm3d(y[0], sigma), np.float32)[None]


class PCAPatches:
    """PCA-k reconstruction of every overlapping p×p patch, averaged (fitted on training
    patches)."""

    def __init__(self, images, p=8, n=20000, seed=0):
        src = PatchSource(images, p, n, seed=seed)
        X = src.take(torch.arange(n)).x.flatten(1).double()
        self.mean = X.mean(0)
        _, _, V = torch.linalg.svd(X - self.mean, full_matrices=False)
        self.V, self.p = V, p

    def __call__(self, y, k):
        V = self.V[:k].T.float()
        mu = self.mean.float()

        def f(t):  # (n, C, p, p) -> same, through the PCA subspace
            X = t.flatten(1) - mu
            return ((X @ V) @ V.T + mu).reshape(t.shape)
        return predict_tiled(f, y, tile=self.p, overlap=self.p - 1)


def choose(fn, grid, pairs):
    """The grid value with the best mean PSNR on the validation pairs (clean, noisy)."""
    scores = [np.mean([psnr(c, np.clip(fn(n, g), 0, 1)) for c, n in pairs]) for g in grid]
    return grid[int(np.argmax(scores))]


def noisy_of(clean, kind, level, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(clean)[None]
    d = GaussianNoise(level) if kind == "gaussian" else SaltPepperNoise(level)
    return d(x, g)[0].numpy()


def throughput(quick):
    rows = []
    from aekit.train.optim import resolve_precision
    bf16_native = resolve_precision("bf16") == "bf16"
    for name, make in [("ConvAE", lambda: ConvAE([1, 48, 48], channels=[32, 64, 64],
                                                 code_size=64, strides=[2, 2, 1], code="map",
                                                 output="linear")),
                       ("UNetAE", lambda: UNetAE(1, features=32, depth=3, residual=True)),
                       ("DnCNN 64x12, downscale 2, no BN", lambda: DnCNN(
                           1, 64, 12, batch_norm=False, downscale=2))]:
        for prec, cl in [(p, c) for p in (["fp32", "bf16"] if bf16_native else ["fp32"])
                         for c in (False, True)]:
            m = make()
            if cl:
                m = m.to(memory_format=torch.channels_last)
            steps = 2 if quick else 6
            dt = fit_step_time(m, Objective("mse"), _Images(torch.rand(64 * steps, 1, 48, 48)), 64,
                               prec, 1e-3) * steps
            rows.append({"model": name, "precision": prec, "channels_last": cl, "batch": 64,
                         "patch": "1x48x48",
                         "samples_per_s": round(64 * steps / dt, 1)})
    return rows, bf16_native


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=None,
                    help="training seconds shared by the smaller models (default 330 full, 40 "
                    "quick)")
    ap.add_argument("--gray-budget", type=float, default=None,
                    help="training seconds of the main blind gray denoiser (default 1800 full, "
                    "30 quick)")
    ap.add_argument("--rgb-budget", type=float, default=None,
                    help="also train a main blind RGB denoiser (the main gray recipe at 3 "
                    "channels, σ ~ U[0, 0.35]) for this many seconds (default: none; the RGB "
                    "rows then have only the small-budget RGB U-Net)")
    ap.add_argument("--rgb-main", default=None, metavar="NAME",
                    help="with --rgb-budget: train this candidate of image_denoise_select.py's "
                    "RGB_CANDIDATES (the one its --kind rgb selection chose) as the main RGB "
                    "denoiser instead of the gray recipe at 3 channels; a one-channel "
                    "candidate runs on the opponent channels; a σ-specific one is scored at "
                    "its σ only")
    ap.add_argument("--budget-of", action="append", default=[], metavar="KEY=SECONDS",
                    help="training seconds of one smaller model, e.g. gray_sp_unet=480 "
                    "(repeatable; overrides its share of --budget)")
    ap.add_argument("--only", default=None, metavar="KEY,...",
                    help="train only these models (keys as in the results' 'training', e.g. "
                    "gray_sp_unet,fashion_unet); settings with no trained aekit model are "
                    "skipped, so baselines run only where a model is compared")
    ap.add_argument("--sp-select", action="store_true",
                    help="salt-and-pepper models: train a plain and a residual U-Net, each "
                    "for the model's budget, and keep the one with the lower validation loss "
                    "(the choice and both losses are recorded)")
    ap.add_argument("--sp-residual", action="store_true",
                    help="salt-and-pepper models: the residual U-Net only (the choice an "
                    "earlier --sp-select run made on validation; say which with --main-source)")
    ap.add_argument("--save-model", help="also save the main gray denoiser here (.safetensors)")
    ap.add_argument("--save-rgb-model", help="also save the --rgb-main model here "
                    "(.safetensors; not a guided pair)")
    ap.add_argument("--refine", action="store_true",
                    help="with a one-channel --rgb-main: also rows with a GuidedRefine second "
                    "pass (guided NL-means of the opponent channels), its settings chosen "
                    "with the trained model on the whole RGB validation photos "
                    f"({', '.join(REFINE_VAL_PHOTOS)}), for the single model and the x8 "
                    "ensemble separately")
    ap.add_argument("--finish-by", default=None, metavar="HH:MM",
                    help="UTC time the run must end by: the main model's budget is cut to "
                    "what is left after --reserve seconds for the rest (recorded)")
    ap.add_argument("--reserve", type=float, default=1500.0,
                    help="seconds kept for everything but the main model (with --finish-by)")
    ap.add_argument("--main", default=MAIN_CHOICE,
                    help="the main gray denoiser: a candidate name of image_denoise_select.py "
                    f"(default {MAIN_CHOICE!r}, the one its selection run chose)")
    ap.add_argument("--main-batch", type=int, default=None, metavar="N",
                    help="global batch of the main models instead of the selected one (under "
                    "torchrun it is split over the processes; say why with --main-source)")
    ap.add_argument("--main-source", default=None,
                    help="where --main comes from (recorded), e.g. a selection results file")
    ap.add_argument("--margin", type=float, default=1.1,
                    help="calibrated schedules plan for steps this factor slower than "
                    "measured (validation, a busier machine); default 1.1")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the trained models (initial weights, patches, noise draws "
                    "and validation patches; the test noise is fixed whatever the seed)")
    ap.add_argument("--val-photos", default=None, metavar="NAME,...",
                    help="gray validation photos (centre crops: best epoch and the baselines' "
                    "settings) instead of VAL_PHOTOS, from VAL_PHOTOS and EXTRA_PHOTOS, e.g. "
                    "coins,motorcycle_right (the set the main model was selected on)")
    ap.add_argument("--grid-dir", default=None,
                    help="folder of the before/after grid PNG (default docs/images)")
    ap.add_argument("--name", default=None, help="results name (default from --kinds)")
    ap.add_argument("--kinds", default="gray,rgb,fashion",
                    help="image kinds to train and test (comma-separated subset of gray, rgb, "
                    "fashion; a subset writes results/image_denoise_<kinds>.json)")
    args = ap.parse_args(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun
        import torch.distributed as dist

        dist.init_process_group("gloo")
    world, rank = world_and_rank()
    q = args.quick
    global EPOCH, MARGIN
    EPOCH = 256 if q else 1024
    if not 1.0 <= args.margin <= 2.0:
        raise SystemExit(f"--margin must be in [1, 2], got {args.margin}")
    MARGIN = args.margin
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    total_budget = args.budget or (40.0 if q else 330.0)
    gray_budget = args.gray_budget or (30.0 if q else 1800.0)
    budget_note = None
    if args.finish_by:
        import datetime as dt
        hh, mm = (int(v) for v in args.finish_by.split(":"))
        now = dt.datetime.now(dt.UTC)
        end = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        left = (end - now).total_seconds() - args.reserve
        if left < gray_budget:
            budget_note = (f"main model budget cut from {gray_budget:.0f} s to {left:.0f} s so "
                           f"the run ends by {args.finish_by} UTC (the slot on the shared "
                           "machine came late)")
            gray_budget = max(60.0, left)
            print(budget_note, flush=True)
    global MAIN_LABEL
    main_name, (make_main, main_patch, main_batch, main_lr), main_sigma = _main_spec(args.main)
    selected_batch = main_batch
    if args.main_batch is not None:
        if args.main_batch < world:
            raise SystemExit(f"--main-batch must be at least the number of processes ({world}), "
                             f"got {args.main_batch}")
        main_batch = args.main_batch
    main_map = bool(getattr(make_main(), "noise_map", False))
    main_specific = not isinstance(main_sigma, tuple)
    MAIN_LABEL = (f"aekit non-blind denoiser, σ given ({gray_budget / 60:.0f} min)" if main_map
                  else f"aekit denoiser trained at σ = {main_sigma} only "
                  f"({gray_budget / 60:.0f} min)" if main_specific
                  else f"aekit blind denoiser ({gray_budget / 60:.0f} min)")
    # share of the smaller models' budget per model (the same seconds as the 600 s run of
    # b8ee725, whose remaining 45 % went to a gray U-Net, replaced by the 30-minute model)
    shares = {"gray_dncnn": 0.08, "gray_conv": 0.04, "gray_dense": 0.02,
              "gray_unet_noskip": 0.04, "gray_sp_unet": 0.08, "rgb_unet": 0.17,
              "rgb_sp_unet": 0.05, "fashion_unet": 0.04, "fashion_sp_unet": 0.03}
    shares = {k: round(v / sum(shares.values()), 4) for k, v in shares.items()}
    tr_gray = list(load_photos("train", "L").values())
    tr_rgb = list(load_photos("train", "RGB").values())
    val_gray_names = val_photo_names(args.val_photos)
    val_gray = [load_photo(v, "L") for v in val_gray_names]
    val_rgb = list(load_photos("val", "RGB").values())
    test_gray = load_photos("test", "L")
    test_rgb = load_photos("test", "RGB")
    side = 96 if q else 256

    def centre(d):
        out = {}
        for k, v in d.items():
            H, W = v.shape[1:]
            y0, x0 = (H - side) // 2, (W - side) // 2
            out[k] = v[:, y0:y0 + side, x0:x0 + side]
        return out
    val_gray = list(centre(dict(enumerate(val_gray))).values())
    val_rgb = list(centre(dict(enumerate(val_rgb))).values())
    whole_gray = centre(test_gray) if q else test_gray
    n_fash = 10 if q else 20
    f_test, f_train, f_val = {}, [], []
    if "fashion" in args.kinds:  # read only when asked for (the files are an apt package)
        f_tr, f_te = load_fashion_mnist()
        f_test = {f"fashion{i}": f_te[i] for i in range(n_fash)}
        f_train = list(f_tr[:5000])
        f_val = list(f_tr[-100:])

    blind = GaussianNoise((0.05, 0.35))
    sp = SaltPepperNoise(SP)
    B = {k: v * total_budget for k, v in shares.items()}
    B["gray_main"] = gray_budget
    for item in args.budget_of:
        key, _, sec = item.partition("=")
        if key not in shares or not sec:
            raise SystemExit(f"--budget-of must be KEY=SECONDS with KEY one of "
                             f"{', '.join(shares)}; got {item!r}")
        B[key] = float(sec)
    if args.sp_select and args.sp_residual:
        raise SystemExit("--sp-select and --sp-residual are alternatives; give one")
    only = None if args.only is None else {k.strip() for k in args.only.split(",") if k.strip()}
    if only is not None and only - set(B) - {"rgb_main"}:
        raise SystemExit(f"--only: unknown model keys {sorted(only - set(B))}; known: "
                         f"{', '.join(['gray_main', 'rgb_main', *shares])}")
    rgb_spec = _rgb_spec(args.rgb_main) if args.rgb_main else None
    if rgb_spec and not args.rgb_budget:
        raise SystemExit("--rgb-main needs --rgb-budget (its training seconds)")
    if args.rgb_budget and not rgb_spec:
        if main_map or main_specific:
            raise SystemExit("--rgb-budget needs a blind --main (its recipe is reused at 3 "
                             "channels)")
        B["rgb_main"] = args.rgb_budget
    rgb_label = f"aekit blind RGB denoiser ({(args.rgb_budget or 0) / 60:.0f} min)"
    rgb_sigma, rgb_opponent = None, False  # a σ-specific / one-channel --rgb-main
    rgb_guided = None  # a GUIDED_CANDIDATES spec: the luminance model + a (c, Y) chroma model
    if rgb_spec:
        (rgb_make, rgb_patch, rgb_batch, rgb_lr, rgb_material, rgb_train_sigma,
         rgb_sigma) = rgb_spec[1]
        rgb_opponent = rgb_make().config()["in_channels"] == 1
        import image_denoise_select as sel
        rgb_label = (f"aekit RGB denoiser for σ = {rgb_sigma}"
                     + (" (gray net on opponent channels" if rgb_opponent else " (")
                     + f", {args.rgb_budget / 60:.0f} min)")
        B["rgb_main"] = args.rgb_budget
        if rgb_spec[0] in sel.GUIDED_CANDIDATES:  # the budget shared by the two models
            rgb_guided = sel.GUIDED_CANDIDATES[rgb_spec[0]]
            rgb_opponent = False
            rgb_label = (f"aekit RGB denoiser for σ = {rgb_sigma} (gray net for Y, "
                         f"luminance-guided chroma net, {args.rgb_budget / 60:.0f} min)")
            B["rgb_main"] = args.rgb_budget * rgb_guided[7]
            B["rgb_chroma"] = args.rgb_budget - B["rgb_main"]
    if args.refine and not rgb_opponent:  # (a guided pair has rgb_opponent False)
        raise SystemExit("--refine needs a one-channel --rgb-main (a gray net run on the "
                         "opponent channels)")
    models, train_info = {}, {}

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or set(kinds) - {"gray", "rgb", "fashion"}:
        raise SystemExit(f"--kinds must list some of gray, rgb, fashion; got {args.kinds!r}")

    def do(key, model, imgs, dmg, val, **kw):
        only_key = "rgb_main" if key == "rgb_chroma" else key  # one model for --only
        if key.split("_")[0] not in kinds or (only is not None and only_key not in only):
            return
        if args.sp_residual and key.endswith("_sp_unet"):
            model = type(model)(**{**model.config(), "residual": True})
            train_info[key] = {"selection": {"chosen": "residual", "by": "--sp-residual",
                                             "source": args.main_source}}
        if args.sp_select and key.endswith("_sp_unet"):
            # the plain U-Net and its residual twin, same budget, seed and validation patches
            twin = type(model)(**{**model.config(), "residual": True})
            cands = {}
            for label, m in (("plain", model), ("residual", twin)):
                torch.manual_seed(args.seed)
                info = train(m, imgs, dmg, B[key], val=val, seed=args.seed, **kw)
                cands[label] = (m, info)
                print(key, label, info, flush=True)
            pick = min(cands, key=lambda c: cands[c][1]["best_val"])
            models[key] = cands[pick][0]
            train_info[key] = {**cands[pick][1], "selection": {
                "chosen": pick, "by": "lowest best-epoch validation MSE (same patches)",
                "best_val": {c: v[1]["best_val"] for c, v in cands.items()},
                "train_s": {c: v[1]["train_s"] for c, v in cands.items()}}}
            print(key, "chose", pick, flush=True)
            return
        torch.manual_seed(args.seed)
        train_info[key] = {**train(model, imgs, dmg, B[key], val=val, seed=args.seed, **kw),
                           **train_info.get(key, {})}
        models[key] = model
        print(key, train_info[key], flush=True)

    main_noise = GaussianNoise(main_sigma)
    do("gray_main", make_main(), tr_gray, NoiseLevelMap(main_noise) if main_map else main_noise,
       val_gray, patch=main_patch, batch=main_batch, lr=main_lr)
    if rgb_spec:  # the RGB candidate chosen by image_denoise_select.py --kind rgb
        import image_denoise_select as sel
        rgb_m = rgb_make()
        tr_m = sel.rgb_material(rgb_material, exclude=("chelsea",))
        do("rgb_main", rgb_m, tr_m, GaussianNoise(rgb_train_sigma),
           sel.rgb_validation_patches(rgb_m, val_rgb), patch=rgb_patch,
           batch=args.main_batch or rgb_batch, lr=rgb_lr)
        if rgb_guided and "rgb_main" in models:  # then the chroma model; one pair
            _, c_make, c_patch, c_batch, c_lr, c_sigma, _, _ = rgb_guided
            do("rgb_chroma", c_make(), sel.chroma_pairs(tr_rgb), GaussianNoise(c_sigma),
               sel.chroma_pairs(val_rgb), patch=c_patch, batch=args.main_batch or c_batch,
               lr=c_lr)
            luma_info, chroma_info = train_info.pop("rgb_main"), train_info.pop("rgb_chroma")
            models["rgb_main"] = sel.GuidedPair(models["rgb_main"], models.pop("rgb_chroma"))
            train_info["rgb_main"] = {
                "train_s": round(luma_info["train_s"] + chroma_info["train_s"], 1),
                "luminance": luma_info, "chroma": chroma_info}
    elif args.rgb_budget:  # the main gray architecture, patch, batch and lr at 3 channels
        rgb_main = make_main()
        rgb_main = type(rgb_main)(**{**rgb_main.config(), "in_channels": 3,
                                        "out_channels": 3})
        do("rgb_main", rgb_main, tr_rgb, main_noise, val_rgb, patch=main_patch,
           batch=main_batch, lr=main_lr)
    do("gray_unet_noskip", UNetAE(1, features=32, depth=3, skips=False), tr_gray, blind,
       val_gray)
    do("gray_dncnn", DnCNN(1, features=48, depth=10), tr_gray, blind, val_gray, patch=40)
    do("gray_conv", ConvAE([1, 48, 48], channels=[32, 64, 64], code_size=64,
                           strides=[2, 2, 1], code="map", output="linear"),
       tr_gray, blind, val_gray)
    do("gray_dense", DenseAE([256, 512, 256], activation="relu"), tr_gray, blind, val_gray,
       patch=16, flat=True, batch=64)
    do("gray_sp_unet", UNetAE(1, features=32, depth=3), tr_gray, sp, val_gray)
    do("rgb_unet", UNetAE(3, features=32, depth=3, residual=True), tr_rgb, blind, val_rgb)
    do("rgb_sp_unet", UNetAE(3, features=32, depth=3), tr_rgb, sp, val_rgb)
    do("fashion_unet", UNetAE(1, features=32, depth=2, residual=True), f_train, blind, f_val,
       patch=28, batch=64)
    do("fashion_sp_unet", UNetAE(1, features=32, depth=2), f_train, sp, f_val, patch=28,
       batch=64)

    if world > 1:  # training done: rank 0 goes on alone (its later fits are one-process)
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    if rank != 0:  # data-parallel helper: rank 0 evaluates, runs the baselines and writes
        return
    if args.save_model:
        import aekit
        aekit.save_model(models["gray_main"], args.save_model)
    if args.save_rgb_model:  # e.g. to choose a refinement again later without retraining
        import aekit
        m = models.get("rgb_main")
        if m is None or not hasattr(m, "config"):
            print("--save-rgb-model: no single --rgb-main model was trained; nothing saved")
        else:
            aekit.save_model(m, args.save_rgb_model)
    refine, refine_info = {}, {}  # --refine: ensemble? -> the chosen GuidedRefine or None
    if args.refine and "rgb_main" in models:
        import image_denoise_select as sel
        rv = [load_photo(n, "RGB") for n in REFINE_VAL_PHOTOS]
        rv = list(centre(dict(enumerate(rv))).values()) if q else rv
        for e in (False, True):
            t0 = time.perf_counter()
            r, p0, p1, grid = sel.choose_refine(models["rgb_main"], rv, rgb_sigma,
                                                range(10_000, 10_000 + len(rv)), ensemble=e)
            refine[e] = r
            refine_info["x8 self-ensemble" if e else "single model"] = {
                "chosen": r.config() if r else None, "val_psnr_without": p0,
                "val_psnr_with": p1, "seconds": round(time.perf_counter() - t0, 1),
                "grid": grid}
            print("refine", "ensemble" if e else "single", r, p0, "->", p1, flush=True)
    pca = {"gray": PCAPatches(tr_gray) if "gray" in kinds else None,
           "rgb": PCAPatches(tr_rgb) if "rgb" in kinds else None,
           "fashion": PCAPatches(f_train, n=20000) if "fashion" in kinds else None}
    settings = [("gaussian", s) for s in SIGMAS] + [("salt_pepper", SP)]
    # the goal setting (whole gray photos, σ = 0.2) first
    sets = [("photos gray whole" + (" (quick: crops)" if q else ""), whole_gray, val_gray,
             "gray", [("gaussian", 0.2)]),
            (f"photos gray {side}x{side} centre crops", centre(test_gray), val_gray, "gray",
             settings),
            (f"photos RGB {side}x{side} centre crops", centre(test_rgb), val_rgb, "rgb",
             settings),
            # a σ-specific RGB model: also the whole RGB photos at its σ
            *([("photos RGB whole" + (" (quick: crops)" if q else ""),
                centre(test_rgb) if q else test_rgb, val_rgb, "rgb",
                [("gaussian", rgb_sigma)])] if rgb_sigma is not None else []),
            ("Fashion-MNIST", f_test, f_val, "fashion", settings)]
    sets = [st for st in sets if st[3] in kinds]
    rows, per_image, chosen = [], [], {}
    grid_png = None
    for set_name, test, val, kind, set_settings in sets:
        for noise, level in set_settings:
            t_set = time.perf_counter()
            vpairs = [(c, noisy_of(c, noise, level, 10_000 + i)) for i, c in enumerate(val)]
            sig = level if noise == "gaussian" else None
            vp = vpairs[:20] if kind == "fashion" else vpairs
            methods = {}
            if noise == "gaussian":
                if kind == "gray":
                    aek = {MAIN_LABEL: (models.get("gray_main"), False),
                           # the 8x-inference ensemble on the whole photos only (time)
                           **({MAIN_LABEL + " + x8 self-ensemble": (models.get("gray_main"), "ens")}
                              if set_name.startswith("photos gray whole") else {}),
                           # a non-blind model also told the wavelet estimate of σ instead
                           **({MAIN_LABEL.replace("σ given", "σ estimated"):
                               (models.get("gray_main"), "est")} if main_map else {}),
                           "aekit U-Net, no skips": (models.get("gray_unet_noskip"), False),
                                "aekit DnCNN": (models.get("gray_dncnn"), False),
                                "aekit ConvAE (code map)": (models.get("gray_conv"), False),
                           "aekit dense DAE (16x16 patches)": (models.get("gray_dense"), True)}
                    aek = {k: v for k, v in aek.items() if v[0] is not None}
                else:
                    aek = {"aekit U-Net (residual)": (models[f"{kind}_unet"], False)} \
                        if f"{kind}_unet" in models else {}
                    if kind == "rgb" and "rgb_main" in models:
                        mode = "guided" if rgb_guided else "opp" if rgb_opponent else False
                        ens = "guided_ens" if rgb_guided else "opp_ens" if rgb_opponent \
                            else "ens"
                        aek = {rgb_label: (models["rgb_main"], mode),
                               rgb_label + " + x8 self-ensemble": (models["rgb_main"], ens),
                               **({rgb_label + " + guided refinement":
                                   (models["rgb_main"], "opp_ref")} if refine.get(False)
                                  else {}),
                               **({rgb_label + " + x8 self-ensemble + guided refinement":
                                   (models["rgb_main"], "opp_ens_ref")} if refine.get(True)
                                  else {}),
                               **aek}
                    if kind == "rgb" and "gray_main" in models:  # the gray model, CBM3D-style
                        opp = MAIN_LABEL + " on opponent channels"
                        aek = {opp: (models["gray_main"], "opp"),
                               opp + " + x8 self-ensemble": (models["gray_main"], "opp_ens"),
                               **aek}
            else:
                sp_sel = train_info.get(f"{kind}_sp_unet", {}).get("selection")
                aek = {"aekit U-Net" + (" (residual)" if sp_sel and sp_sel["chosen"] ==
                                        "residual" else ""):
                       (models[f"{kind}_sp_unet"], False)} if f"{kind}_sp_unet" in models \
                    else {}
            if main_specific and (kind != "gray" or level != main_sigma):
                # a model trained at one σ is scored at that σ on gray images only (the
                # opponent channels of RGB noise have other levels)
                aek = {k: v for k, v in aek.items() if v[0] is not models.get("gray_main")}
            if rgb_sigma is not None and (kind != "rgb" or noise != "gaussian"
                                          or level != rgb_sigma):
                aek = {k: v for k, v in aek.items() if v[0] is not models.get("rgb_main")}
            if not aek:  # a partial run (--only): only the settings a trained model is in
                continue
            key_of = {id(v): k for k, v in models.items()}
            trained_s = {name: train_info[key_of[id(m)]]["train_s"] for name, (m, _) in
                         aek.items()}
            for name, (m, flat) in aek.items():
                if flat in ("guided", "guided_ens"):
                    import image_denoise_select as sel
                    methods[name] = (lambda y, m=m, e=flat == "guided_ens": sel.guided_denoise(
                        m.luma, m.chroma, y, ensemble=e))
                    continue
                if flat in ("opp_ref", "opp_ens_ref"):
                    e = flat == "opp_ens_ref"
                    methods[name] = (lambda y, m=m, e=e: denoise(m, y, self_ensemble=e,
                                                                 refine=refine[e]))
                    continue
                methods[name] = (lambda y, m=m, flat=flat, s_=sig: run_model(
                    m, y, flat is True, flat in ("ens", "opp_ens"),
                    sigma=estimate_noise(y) if flat == "est" else s_,
                    opponent=flat in ("opp", "opp_ens")))
            msize = choose(median, [3, 5], vp)
            gs = choose(gblur, [0.5, 1.0, 1.5, 2.0], vp)
            pk = choose(pca[kind], [2, 4, 8, 16], vp[:2] if kind != "fashion" else vp[:10])
            methods["median filter"] = lambda y, a=msize: median(y, a)
            methods["Gaussian blur"] = lambda y, a=gs: gblur(y, a)
            methods["PCA on 8x8 patches"] = lambda y, a=pk, kd=kind: pca[kd](y, a)
            if sig is not None:
                hh = choose(lambda y, h, s_=sig: nlm(y, s_, h), [0.6, 0.8, 1.0], vp[:2])
                wm = choose(lambda y, m, s_=sig: wavelet(y, s_, m), ["BayesShrink", "VisuShrink"],
                            vp[:2])
                methods["NL-means (skimage)"] = lambda y, a=hh, s_=sig: nlm(y, s_, a)
                methods["wavelet (skimage)"] = lambda y, a=wm, s_=sig: wavelet(y, s_, a)
                methods["BM3D"] = lambda y, s_=sig: bm3d_(y, s_)
                ch = {"median": msize, "blur_sigma": gs, "pca_k": pk, "nlm_h": hh,
                      "wavelet": wm, "bm3d_sigma": sig}
            else:  # no σ for impulse noise: NLM / wavelet / BM3D get a σ tuned on validation
                bs = choose(bm3d_, [0.15, 0.3], vp[:1])
                ns = choose(lambda y, s: nlm(y, s, 0.8), [0.1, 0.2, 0.3], vp[:2])
                ws = choose(lambda y, s: wavelet(y, s, "BayesShrink"), [0.1, 0.2, 0.3], vp[:2])
                methods["NL-means (skimage)"] = lambda y, a=ns: nlm(y, a, 0.8)
                methods["wavelet (skimage)"] = lambda y, a=ws: wavelet(y, a, "BayesShrink")
                methods["BM3D"] = lambda y, a=bs: bm3d_(y, a)
                ch = {"median": msize, "blur_sigma": gs, "pca_k": pk, "nlm_sigma": ns,
                      "wavelet_sigma": ws, "bm3d_sigma": bs}
            chosen[f"{set_name} {noise} {level}"] = ch
            scores = {k: ([], []) for k in ["noisy input", *methods]}
            times = {k: 0.0 for k in methods}
            for i, (name, clean) in enumerate(test.items()):
                y = noisy_of(clean, noise, level, i)
                out = {"noisy input": np.clip(y, 0, 1)}
                for k, f in methods.items():
                    t0 = time.perf_counter()
                    out[k] = np.clip(f(y), 0, 1)
                    times[k] += time.perf_counter() - t0
                for k, o in out.items():
                    p, s = psnr(clean, o), ssim(clean, o) if min(clean.shape[1:]) >= 7 else \
                        float("nan")
                    scores[k][0].append(p)
                    scores[k][1].append(s)
                    if kind != "fashion":
                        per_image.append({"set": set_name, "noise": noise, "level": level,
                                          "image": name, "method": k, "psnr": round(p, 3),
                                          "ssim": round(s, 4)})
                if name == "camera" and level == 0.2 and set_name.startswith("photos gray whole"):
                    best = max((k for k in out if k.startswith("aekit")),
                               key=lambda k: psnr(clean, out[k]))
                    r = slice(180, 308) if not q else slice(0, 96)
                    cc = slice(200, 328) if not q else slice(0, 96)
                    grid_png = np.concatenate([clean[:, r, cc], out["noisy input"][:, r, cc],
                                               out["BM3D"][:, r, cc], out[best][:, r, cc]], 2)
            bm = np.mean(scores["BM3D"][0])
            for k, (ps, ss) in scores.items():
                rows.append({"set": set_name, "noise": noise, "level": level, "method": k,
                             "psnr": round(float(np.mean(ps)), 3),
                             "ssim": round(float(np.nanmean(ss)), 4),
                             "psnr_minus_bm3d": round(float(np.mean(ps) - bm), 3),
                             "train_s": trained_s.get(k),
                             "time_s": round(times.get(k, 0.0), 2), "n_images": len(ps)})
            print(set_name, noise, level, f"{time.perf_counter() - t_set:.0f}s",
                  {r["method"]: r["psnr"] for r in rows[-len(scores):]}, flush=True)
    thr, bf16_native = throughput(q)
    if grid_png is not None:
        out_dir = Path(args.grid_dir) if args.grid_dir else _common.ROOT / "docs" / "images"
        out_dir.mkdir(parents=True, exist_ok=True)
        write_image(out_dir / ("denoise_camera_s0.2" + ("_quick" if q else "") + ".png"), grid_png)
    headers = ["set", "noise", "level", "method", "PSNR dB", "SSIM", "PSNR − BM3D",
               "training s", "inference s"]
    table = _common.md_table(headers, [[r["set"], r["noise"], r["level"], r["method"], r["psnr"],
                                        r["ssim"], r["psnr_minus_bm3d"],
                                        "" if r["train_s"] is None else r["train_s"],
                                        r["time_s"]]
                                       for r in rows])
    table += "\n\n" + _common.md_table(
        ["model", "precision", "channels-last", "batch", "patch", "samples/s"],
        [[r["model"], r["precision"], r["channels_last"], r["batch"], r["patch"],
          r["samples_per_s"]] for r in thr])
    out_name = args.name or ("image_denoise" + ("" if set(kinds) == {"gray", "rgb", "fashion"}
                                                else "_" + "_".join(kinds)))
    _common.write_results(out_name + "_quick" if q else out_name, {
        "settings": {"quick": q, "threads": torch.get_num_threads(), "processes": world,
                     "calibration_margin": MARGIN,
                     "main_batch": main_batch, "main_batch_selected": selected_batch,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "training_budget_s_main_gray": gray_budget,
                     "training_budget_s_other_models": total_budget, "budget_shares": shares,
                     "main_gray_model": main_name, "main_noise_map": main_map,
                     "main_train_sigma": main_sigma, "seed": args.seed,
                     "main_source": args.main_source, "kinds": kinds,
                     "training_budget_s_main_rgb": args.rgb_budget,
                     "main_rgb_model": rgb_spec[0] if rgb_spec else None,
                     "training_budget_s_overrides": {k: B[k] for k in B if k in
                                                     {i.partition("=")[0] for i in
                                                      args.budget_of}} or None,
                     "only": sorted(only) if only is not None else None,
                     "sp_select": args.sp_select, "sp_residual": args.sp_residual,
                     "main_budget_note": budget_note, "val_photos_gray": val_gray_names,
                     "refine": args.refine},
        **({"refine_selection": refine_info} if refine_info else {}),
        "protocol": {
            "test": "held-out photos " + ", ".join(test_gray) + " (gray), "
                    + ", ".join(test_rgb) + f" (RGB): {side}x{side} centre crops for every "
                    "setting (BM3D on whole photos at every setting does not fit the one-core "
                    "time budget), and the whole gray photos at σ = 0.2 (the goal setting)"
                    + f"; Fashion-MNIST test images 0..{n_fash - 1} (subsampled for BM3D's time)",
            "noise": "Gaussian σ in {0.1, 0.2, 0.3} on [0, 1] pixels, not clipped; "
                     "salt-and-pepper p = 0.1 (pixel set to 0 or 1); one fixed seed per image",
            "aekit_main": f"{MAIN_LABEL}: ONE "
                          + ("non-blind (noise-level map input, FFDNet-style; told the true σ "
                             "as BM3D / NLM / wavelet are, and in a second row the wavelet "
                             "estimate of σ) " if main_map else "" if main_specific
                             else "blind ")
                          + ("residual denoiser trained at one σ and scored at that σ on "
                             "the gray photos only" if main_specific
                             else "residual denoiser for every Gaussian level")
                          + f", trained {gray_budget:.0f} s (wall clock, calibrated cosine "
                          "schedule, bf16 autocast + channels-last where the CPU has native "
                          "bf16) on random patches of the gray training photos with "
                          + (f"σ = {main_sigma} (DnCNN-S style)" if main_specific else
                             f"σ ~ U[{main_sigma[0]}, {main_sigma[1]}] per patch (DnCNN-B "
                             "style)") + ", best epoch on noisy validation "
                          "patches of the validation photo; architecture, patch, batch and "
                          "learning rate chosen on the validation photo by "
                          "image_denoise_select.py (short runs; no test photo); the '+ x8 "
                          "self-ensemble' row averages the model over the 8 flips/rotations of "
                          "each tile (8x inference, no retraining; on the whole photos only)",
            "aekit_main_on_rgb": "when the main gray denoiser is trained in the run (kinds gray "
                                 "and rgb), the RGB rows also run it on the three channels of "
                                 "the orthogonal opponent transform Y = (R+G+B)/3, (R−B)/2 + "
                                 "1/2, (R−2G+B)/4 + 1/2 (aekit.images.rgb_to_opponent; the "
                                 "noise stays white, σ/√3, σ/√2, σ√6/4 per channel) and maps "
                                 "the result back, as CBM3D runs grayscale BM3D; no RGB "
                                 "training",
            **({"aekit_main_rgb": f"{rgb_label}: the main gray recipe (architecture, patch, "
                "batch, learning rate, σ ~ U[0, 0.35], best validation epoch) at 3 input/output "
                f"channels, trained {args.rgb_budget:.0f} s on patches of the RGB training "
                "photos, validation on the RGB validation photo (chelsea); the recipe was chosen "
                "on the gray validation photo and reused, not re-selected for RGB; the '+ x8 "
                "self-ensemble' row as for gray"} if args.rgb_budget and not rgb_spec else {}),
            **({"aekit_main_rgb": f"{rgb_label}: the candidate {rgb_spec[0]!r} of "
                "image_denoise_select.RGB_CANDIDATES, "
                + ("chosen by its --kind rgb selection on RGB validation photos at σ = "
                   f"{rgb_sigma} (no test photo)" if rgb_sigma == sel.RGB_SIGMA else
                   f"the kind of net the σ = {sel.RGB_SIGMA} selection chose, at σ = "
                   f"{rgb_sigma} (no selection of its own)")
                + f", trained for a budget of {args.rgb_budget:.0f} s (the seconds it took: "
                "'training'; the time cap is 1.1x the budget) on its training material "
                f"({rgb_spec[1][4]!r}; chelsea left out in every form) with noise σ = "
                f"{rgb_spec[1][5]}, best epoch on the chelsea validation crop"
                + (" (its three opponent channels)" if rgb_opponent else "")
                + f"; scored at σ = {rgb_sigma} only, on the RGB crops and whole RGB photos"
                + ("; run on the opponent channels (aekit.images.denoise(colour='opponent'))"
                   if rgb_opponent else "") + "; the '+ x8 self-ensemble' row as for gray"}
               if rgb_spec and not rgb_guided else {}),
            **({"aekit_main_rgb": f"{rgb_label}: the candidate {rgb_spec[0]!r} of "
                "image_denoise_select.GUIDED_CANDIDATES, chosen by its --kind rgb selection "
                f"on RGB validation photos at σ = {rgb_sigma} (no test photo). A budget of "
                f"{args.rgb_budget:.0f} s shared: {rgb_guided[7]:.0%} trains the luminance "
                f"model (the one-channel candidate {rgb_guided[0]!r}, on its material "
                f"{rgb_spec[1][4]!r} with σ ~ U{list(rgb_spec[1][5])}), the rest the two-channel "
                "chroma model on (c, Y) of the colour training photos in 6 channel orders "
                f"(image_denoise_select.chroma_pairs) with σ ~ U{list(rgb_guided[5])} "
                "independently in both channels; each keeps its best epoch on the chelsea "
                "validation crop (the seconds each took: 'training'). Run by "
                "image_denoise_select.guided_denoise: Ŷ from the noisy Y, each chroma channel "
                "from (noisy c, noisy Y); scored at σ = "
                f"{rgb_sigma} only, on the RGB crops and whole RGB photos; the '+ x8 "
                "self-ensemble' row runs both models with the 8 flips/rotations"}
               if rgb_guided else {}),
            **({"aekit_main_rgb_refine": "the '+ guided refinement' rows: the same trained "
                "model, then aekit.images.GuidedRefine (guided NL-means of the chroma, and "
                "of the luminance if chosen, over the patch matches of the denoised opponent "
                "channels; no learning). Its settings were chosen with the trained model on the "
                "whole RGB validation photos " + ", ".join(REFINE_VAL_PHOTOS)
                + f" at σ = {rgb_sigma} (fixed noise; image_denoise_select.choose_refine: "
                "chroma_h x patch, then luma_h), for the single model and the x8 ensemble "
                "separately (refine_selection); no test photo was read for it"}
               if args.refine else {}),
            "aekit": "other models: blind Gaussian models trained on σ ~ U[0.05, 0.35] (σ not "
                     "given) sharing the smaller budget (training seconds in the table), a "
                     "separate salt-and-pepper model; random 48x48 patches (40 DnCNN, 16 dense, "
                     "28 Fashion) of the training photos with the 8 flips/rotations, fresh each "
                     "epoch; Adam lr 1e-3 cosine, batch 32; best epoch on damaged validation "
                     "patches of the validation photo; whole-image inference by 128-pixel "
                     "tiles overlapping 32 with sin² blending; outputs clipped to [0, 1]",
            "baselines": "median size, blur σ, PCA k (8x8 patches fitted on 20000 training "
                         "patches), NLM h, wavelet method chosen by validation PSNR; BM3D / "
                         "NLM / wavelet given the true σ (σ tuned on validation for "
                         "salt-and-pepper)",
            "training_material": "aekit.images.TRAIN_PHOTOS (validation: "
                                 + ", ".join(val_gray_names) + " gray, chelsea "
                                 "RGB); Fashion-MNIST training images 0..4999 (validation: the "
                                 "last 100)",
            "metrics": "PSNR (data range 1) and SSIM (skimage defaults, 7x7 uniform window) of "
                       "clipped outputs, averaged over images",
        },
        "training": train_info, "chosen_hyperparameters": chosen, "rows": rows,
        "per_image": per_image, "throughput": thr, "bf16_native": bf16_native,
    }, table)


if __name__ == "__main__":
    main()
