"""Lossy image compression: a convolutional AE with a quantised code map vs PCA on patches,
JPEG and WebP at matched rates, all in the same run.

Rate is the real file size (header + LZMA payload for the AE and PCA, the Pillow file for
JPEG/WebP) in bits per pixel; distortion PSNR / SSIM on the held-out gray photos
(``aekit.images.TEST_PHOTOS``, whole). For each AE point the baselines are scored at the best
setting whose rate is not above the AE's ("matched rate": a baseline never gets more bits).
Also the MNIST point of the seeds' comparison: dense AEs with 10 and 20 latent units, codes
quantised to 8 bits.

aekit codecs: (1) ``PCAResidualCodec`` — the PCA-on-patches encoder (the PCA baseline's own
codes and file format, so the same bits) with a learned residual decoder that starts at zero
(= PCA at initialisation) and is kept only if it beats PCA on validation; its (k, bits)
settings are the PCA settings with the best mean PSNR under target rates 0.1 / 0.2 / 0.4
bpp on the training + validation photos; (2) the convolutional AE with a quantised code map
(noise-trained).
The PCA baseline is the same codec with no learned decoder, swept over k and bits.

Command: ``OMP_NUM_THREADS=1 python benchmarks/image_compress.py [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch

import _common
from aekit.images import (
    PatchSource,
    compress_image,
    decompress_image,
    load_photos,
    psnr,
    ssim,
)
from aekit.images.apps import _NoisyCode
from aekit.images.pca_codec import PCAResidualCodec, train_pca_codec
from aekit.models import ConvAE

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_denoise
from image_denoise import BF16, train


def pillow_codec(x, fmt, quality):
    from PIL import Image
    im = Image.fromarray(np.rint(np.clip(x[0], 0, 1) * 255).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    im.save(buf, format=fmt, quality=int(quality))
    data = buf.getvalue()
    dec = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)[None] / 255.0
    return len(data), dec


class PCACodec:
    """Non-overlapping 8x8 patches, PCA-k coefficients uniformly quantised to b bits per
    coefficient over the training range of each, LZMA-compressed: ``PCAResidualCodec`` with
    no learned decoder (one basis fitted with k = 24, sliced for smaller k)."""

    def __init__(self, images, p=8, n=40000):
        self.full = PCAResidualCodec(1, p, 24, 8, depth=0).fit_basis(images, n_patches=n)
        self.p = p

    def codec(self, k, bits):
        c = PCAResidualCodec(1, self.p, k, bits, depth=0)
        sd = self.full.state_dict()
        c.load_state_dict({"mean": sd["mean"], "basis": sd["basis"][:k], "lo": sd["lo"][:k],
                           "hi": sd["hi"][:k], "fitted": sd["fitted"]})
        return c

    def __call__(self, x, k, bits):
        c = self.codec(k, bits)
        data = c.compress(x)
        return len(data), c.decompress(data)


class OldPCACodec:
    """The row-major PCA codec of the first version of this benchmark (kept for reference)."""

    def __init__(self, images, p=8, n=40000):
        X = PatchSource(images, p, n, seed=0).take(torch.arange(n)).x.flatten(1).double()
        self.mean = X.mean(0)
        _, _, V = torch.linalg.svd(X - self.mean, full_matrices=False)
        self.V, self.p = V, p
        C = (X - self.mean) @ V.T
        self.lo, self.hi = C.quantile(0.001, 0), C.quantile(0.999, 0)

    def __call__(self, x, k, bits):
        p = self.p
        _, H, W = x.shape
        xp = np.pad(x[0], ((0, (-H) % p), (0, (-W) % p)), mode="edge")
        Hp, Wp = xp.shape
        P = torch.from_numpy(xp).double().reshape(Hp // p, p, Wp // p, p).permute(0, 2, 1, 3)
        P = P.reshape(-1, p * p)
        C = (P - self.mean) @ self.V[:k].T
        lo, hi = self.lo[:k], self.hi[:k]
        L = 2 ** bits - 1
        qc = torch.round((C.clamp(lo, hi) - lo) / (hi - lo) * L)
        payload = lzma.compress(qc.numpy().astype(np.uint8 if bits <= 8 else np.uint16)
                                .tobytes(), preset=9 | lzma.PRESET_EXTREME)
        header = json.dumps({"shape": [1, H, W], "k": k, "bits": bits}).encode()
        Cd = qc / L * (hi - lo) + lo
        R = (Cd @ self.V[:k] + self.mean).reshape(Hp // p, Wp // p, p, p).permute(0, 2, 1, 3)
        out = R.reshape(Hp, Wp)[:H, :W].numpy().astype(np.float32)[None]
        return len(payload) + len(header) + 10, np.clip(out, 0, 1)


def best_at_rate(points, bpp):
    """Best (psnr, ssim, bpp, setting) among points with rate <= bpp (None if none)."""
    ok = [p for p in points if p[0] <= bpp + 1e-9]
    return max(ok, key=lambda p: p[1]) if ok else None


def mnist_point(quick):
    from aekit import DenseAE, fit, make_objective
    from aekit.data import load_mnist
    try:
        tr, te = load_mnist()
    except (FileNotFoundError, OSError) as e:
        return {"skipped": str(e)}
    Xtr = torch.as_tensor(np.asarray(tr.X[: 6000 if quick else 20000]), dtype=torch.float32)
    Xte = torch.as_tensor(np.asarray(te.X[:2000]), dtype=torch.float32)
    out = {}
    for k in (10, 20):
        torch.manual_seed(0)
        m = DenseAE([784, 256, k], activation="relu", code_activation="sigmoid",
                    output="sigmoid")
        fit(m, make_objective("bce"), Xtr, max_iter=2 if quick else 10, learning_rate=2e-3,
            random_state=0, progress=False)
        with torch.no_grad():
            z = torch.round(m.encode(Xte) * 255) / 255  # 8-bit codes
            rec = m.decode(z).numpy()
        ps = [psnr(a.reshape(1, 28, 28), b.reshape(1, 28, 28)) for a, b in
              zip(Xte.numpy(), rec)]
        out[f"{k} latent units"] = {"bits_per_pixel": round(k * 8 / 784, 4),
                                    "psnr": round(float(np.mean(ps)), 3)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=None,
                    help="training seconds per ConvAE (default 120 full, 15 quick)")
    ap.add_argument("--pca-budget", type=float, default=None,
                    help="training seconds per PCA + residual decoder codec (default 200 full, "
                    "15 quick)")
    args = ap.parse_args(argv)
    q = args.quick
    image_denoise.EPOCH = 256 if q else 1024
    torch.set_num_threads(1)
    budget = args.budget or (15.0 if q else 120.0)
    pca_budget = args.pca_budget or (15.0 if q else 200.0)
    tr = list(load_photos("train", "L").values())
    val = list(load_photos("val", "L").values())
    test = load_photos("test", "L")
    if q:
        test = {k: v[:, :128, :128] for k, v in test.items()}
    configs = [(4, 4), (8, 4), (16, 5)] if not q else [(4, 4)]
    targets = (0.1, 0.2, 0.4) if not q else (0.2,)
    pca = PCACodec(tr)
    ks, bs = (1, 2, 3, 4, 6, 8, 12, 16, 24), (3, 4, 5, 6, 8)
    jpeg = {name: [] for name in test}
    webp = {name: [] for name in test}
    pcap = {name: [] for name in test}
    for name, x in test.items():
        H, W = x.shape[1:]
        for qual in range(5, 96, 5):
            for fmt, store in (("JPEG", jpeg), ("WEBP", webp)):
                n, dec = pillow_codec(x, fmt, qual)
                store[name].append((8 * n / (H * W), psnr(x, dec), ssim(x, dec), qual))
        for k in ks:
            for b in bs:
                n, dec = pca(x, k, b)
                pcap[name].append((8 * n / (H * W), psnr(x, dec), ssim(x, dec), [k, b]))
    # (k, bits) of the learned codecs: the PCA frontier on the training + validation photos
    vpts = []
    sel = tr + val
    for k in ks:
        for b in bs:
            pts = [pca(v, k, b) for v in sel]
            vpts.append((float(np.mean([8 * n / v[0].size for (n, _), v in zip(pts, sel)])),
                         float(np.mean([psnr(v, d) for (_, d), v in zip(pts, sel)])), 0.0,
                         (k, b)))
    pca_configs = []
    for t in targets:
        b = best_at_rate(vpts, t)
        if b is not None and b[3] not in pca_configs:
            pca_configs.append(b[3])
    rows, info = [], {}

    def score(label, name, x, data, dec):
        H, W = x.shape[1:]
        bpp = 8 * len(data) / (H * W)
        row = {"image": name, "ae": label, "bpp": round(bpp, 4),
               "ae_psnr": round(psnr(x, dec), 3), "ae_ssim": round(ssim(x, dec), 4)}
        for bname, store in (("pca", pcap), ("jpeg", jpeg), ("webp", webp)):
            b = best_at_rate(store[name], bpp)
            row[f"{bname}_psnr"] = None if b is None else round(b[1], 3)
            row[f"{bname}_ssim"] = None if b is None else round(b[2], 4)
            row[f"{bname}_bpp"] = None if b is None else round(b[0], 4)
            row[f"{bname}_setting"] = None if b is None else b[3]
        rows.append(row)

    labels = []
    for k, b in pca_configs:
        label = f"PCA k={k} x {b} bits + residual decoder"
        labels.append(label)
        torch.manual_seed(0)
        t0 = time.perf_counter()
        codec, h = train_pca_codec(tr, n_coefficients=k, bits=b, val_images=val,
                                   crop_size=64, n_patches=512 if not q else 64,
                                   max_iter=10 ** 4, batch_size=16, learning_rate=1e-3,
                                   time_budget_s=pca_budget, features=48, depth=8,
                                   downscale=2)
        kept = not bool((codec.post.head.weight == 0).all())
        info[label] = {"train_s": round(time.perf_counter() - t0, 1), "epochs": len(h.records),
                       "best_val": min(r.get("val_loss", float("inf")) for r in h.records),
                       "decoder_kept": kept}
        print(label, info[label], flush=True)
        for name, x in test.items():
            data = codec.compress(x)
            score(label, name, x, data, codec.decompress(data))
    for kc, bits in configs:
        torch.manual_seed(0)
        label = f"ConvAE {kc} code channels x {bits} bits"
        labels.append(label)
        m = ConvAE([1, 48, 48], channels=[64, 64, 64], code_size=kc, kernel_size=[5, 3, 3],
                   code="map", code_activation="sigmoid", output="sigmoid")
        info[label] = train(_NoisyCode(m, bits), tr, None, budget, val=val)
        m = m.to(memory_format=torch.contiguous_format).eval()
        print(label, info[label], flush=True)
        for name, x in test.items():
            data = compress_image(m, x, bits=bits)
            score(label, name, x, data, decompress_image(m, data))
    agg = []
    for label in labels:
        rs = [r for r in rows if r["ae"] == label]

        def mean(key, rs=rs):
            v = [r[key] for r in rs if r[key] is not None]
            return round(float(np.mean(v)), 3) if len(v) == len(rs) else None
        agg.append({"ae": rs[0]["ae"], "bpp": mean("bpp"), "ae_psnr": mean("ae_psnr"),
                    "ae_ssim": mean("ae_ssim"), "pca_psnr": mean("pca_psnr"),
                    "jpeg_psnr": mean("jpeg_psnr"), "webp_psnr": mean("webp_psnr"),
                    "pca_ssim": mean("pca_ssim"), "jpeg_ssim": mean("jpeg_ssim"),
                    "webp_ssim": mean("webp_ssim")})
        a = agg[-1]
        a["ae_minus_pca_psnr"] = (None if a["pca_psnr"] is None or a["ae_psnr"] is None
                                  else round(a["ae_psnr"] - a["pca_psnr"], 3))
        a["images_beating_pca"] = sum(r["pca_psnr"] is not None and r["ae_psnr"] > r["pca_psnr"]
                                      for r in rs)
    mn = mnist_point(q)
    table = _common.md_table(
        ["AE", "bpp", "AE PSNR", "PCA PSNR", "AE − PCA", "images AE > PCA", "JPEG PSNR",
         "WebP PSNR", "AE SSIM", "PCA SSIM", "JPEG SSIM", "WebP SSIM"],
        [[a["ae"], a["bpp"], a["ae_psnr"], a["pca_psnr"], a["ae_minus_pca_psnr"],
          f"{a['images_beating_pca']}/{len(test)}", a["jpeg_psnr"], a["webp_psnr"],
          a["ae_ssim"], a["pca_ssim"], a["jpeg_ssim"], a["webp_ssim"]] for a in agg])
    table += "\n\nMNIST (dense AE, 8-bit codes): " + json.dumps(mn)
    _common.write_results("image_compress_quick" if q else "image_compress", {
        "settings": {"quick": q, "threads": torch.get_num_threads(),
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "training_budget_s_per_convae": budget,
                     "training_budget_s_per_pca_residual_codec": pca_budget,
                     "pca_residual_configs": pca_configs, "target_rates_bpp": targets,
                     "precision": "bf16" if BF16 else "fp32"},
        "protocol": {
            "test": "held-out gray photos " + ", ".join(test) + (" (128x128 crops, quick)"
                                                                   if q else " (whole)"),
            "rate": "bits per pixel from the real compressed size: AE = aekit file (JSON "
                    "header + LZMA of the quantised code map), PCA = the PCAResidualCodec file "
                    "without a learned decoder (header + raw LZMA2 of the coefficient-major "
                    "quantised coefficients), JPEG/WebP = Pillow file at quality 5..95",
            "matched_rate": "each baseline at its best PSNR among settings whose bpp is <= "
                            "the AE's on that image (sweeps: PCA k in 1..24 x bits 3..8 on "
                            "non-overlapping 8x8 patches; JPEG/WebP quality 5..95 step 5); "
                            "None when no setting is that small",
            "aekit_pca_residual": "PCAResidualCodec: the PCA baseline's encoder and file "
                                  "(8x8 blocks, k coefficients, b bits, LZMA2 coefficient-"
                                  "major) with a learned residual decoder x̂ = R − r(R), r a "
                                  "DnCNN 48x8 on the 2x2 pixel-unshuffled PCA reconstruction "
                                  "R, last layer zero at init (= PCA), trained with MSE on "
                                  "64x64 crops of (R, x) of the training photos (Adam 1e-3 "
                                  "cosine, batch 16), best validation epoch kept and only if "
                                  "it beats PCA on validation crops (coins); (k, b) = the PCA "
                                  "setting with the best mean PSNR on the training + "
                                  "validation photos at mean rate <= each target rate (0.1, "
                                  "0.2, 0.4 bpp)",
            "aekit": "ConvAE 3 blocks (64 ch, kernels 5/3/3, strides 2), sigmoid code map "
                     "(k channels at 1/8 resolution) quantised to b bits, trained on 48x48 "
                     "training-photo patches with uniform noise of one quantisation step on "
                     "the code (Ballé et al. 2017), MSE, best epoch on validation (coins)",
            "mnist": "DenseAE 784-256-k (sigmoid code, 8-bit quantised), BCE, 20000 "
                     "training images, 10 epochs; PSNR on 2000 test images; rate k*8/784 bpp "
                     "before entropy coding",
        },
        "training": info, "rows": rows, "aggregate": agg, "mnist": mn,
        "baseline_curves": {"jpeg": jpeg, "webp": webp}}, table)


if __name__ == "__main__":
    main()
