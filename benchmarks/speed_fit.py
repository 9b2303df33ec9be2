"""Training speed: aekit's ``fit`` vs the hand-written PyTorch loop, same model, same run.

Model 784-1000-500-250-30 (ReLU, linear code, logits out), BCE-with-logits, fused Adam
lr 1e-3, random data in [0, 1] (8,192 rows or 8 batches), fp32. For each batch size the two
are measured alternately ``--repeats`` times for ``--seconds`` each; the table reports medians
and the ratio aekit / hand loop (goal >= 0.95), plus the fraction of the fp32 matmul peak
(a training step costs about 6 x n_params FLOPs per sample).

    python benchmarks/speed_fit.py            # full: 5 repeats x 3 s per batch size
    python benchmarks/speed_fit.py --quick    # 2 repeats x 1 s
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, md_table, write_results

sys.path.insert(0, str(SHARED / "bench"))
import reference

from aekit import DenseAE, fit, make_objective

SIZES = [784, 1000, 500, 250, 30]


def aekit_rate(batch: int, seconds: float) -> float:
    """Samples/s of aekit's fit for about ``seconds`` (whole epochs, library overhead included)."""
    torch.manual_seed(0)
    model = DenseAE(SIZES, activation="relu", code_activation="linear", output="sigmoid")
    obj = make_objective("bce")
    X = torch.rand(max(8192, 8 * batch), 784)
    fit(model, obj, X[: 10 * batch], epochs=1, batch_size=batch, lr=1e-3)  # warm-up
    per_epoch = len(X)
    t0 = time.perf_counter()
    fit(model, obj, X, epochs=1, batch_size=batch, lr=1e-3)
    one = time.perf_counter() - t0
    epochs = max(1, round(seconds / one))
    t0 = time.perf_counter()
    fit(model, obj, X, epochs=epochs, batch_size=batch, lr=1e-3, seed=1)
    return epochs * per_epoch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.seconds, a.repeats = 1.0, 2
    peak = reference.matmul_peak(torch.float32)
    n_params = sum(q.numel() for q in DenseAE(SIZES).parameters())
    rows, table = [], []
    for bs in a.batch:
        ref, ours = [], []
        for _ in range(a.repeats):  # alternate so drift hits both alike
            ref.append(reference.hand_loop(bs, a.seconds, 1, False)["samples_per_s"])
            ours.append(aekit_rate(bs, a.seconds))
        r, o = statistics.median(ref), statistics.median(ours)
        gflops = o * 6 * n_params / 1e9
        row = {"batch": bs, "dtype": "fp32", "hand_loop_samples_per_s": r,
               "aekit_samples_per_s": o, "ratio": o / r, "hand_loop_all": ref,
               "aekit_all": ours, "aekit_gflops": gflops,
               "fraction_of_matmul_peak": gflops / peak["gflops"]}
        rows.append(row)
        table.append([bs, round(r), round(o), round(o / r, 3), round(gflops, 1),
                      f"{100 * gflops / peak['gflops']:.1f}%"])
        print(row, flush=True)
    md = md_table(["batch", "hand loop samples/s", "aekit fit samples/s", "ratio",
                   "aekit GFLOP/s", "of fp32 matmul peak"], table)
    md += f"\n\nfp32 matmul peak (2048², same run): {peak['gflops']:.1f} GFLOP/s; " \
          f"model parameters: {n_params:,}"
    write_results("speed_fit", {"settings": vars(a), "matmul_peak": peak, "n_params": n_params,
                                "rows": rows}, md)


if __name__ == "__main__":
    main()
