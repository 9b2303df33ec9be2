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
    fit(model, obj, X[: 10 * batch], max_iter=1, batch_size=batch, learning_rate=1e-3)  # warm-up
    per_epoch = len(X)
    t0 = time.perf_counter()
    fit(model, obj, X, max_iter=1, batch_size=batch, learning_rate=1e-3)
    one = time.perf_counter() - t0
    epochs = max(1, round(seconds / one))
    t0 = time.perf_counter()
    fit(model, obj, X, max_iter=epochs, batch_size=batch, learning_rate=1e-3, random_state=1)
    return epochs * per_epoch / (time.perf_counter() - t0)


def tiny_overhead(repeats: int, epochs: int = 10, batch: int = 16) -> dict:
    """Per-step cost of fit's machinery (batches, callbacks, sums) on a tiny model.

    DenseAE([64, 32, 8]), MSE, Adam, batch 16 on 4,096 random rows: the step itself is cheap,
    so the difference to an equivalent hand-written loop (same model, seed, fused Adam,
    shuffling and loss) is the loop's own overhead. Medians over ``repeats`` alternating runs.
    """
    X = torch.randn(4096, 64, generator=torch.Generator().manual_seed(0))
    steps = epochs * (len(X) // batch)

    def model():
        torch.manual_seed(0)
        return DenseAE([64, 32, 8])

    def run_fit():
        t0 = time.perf_counter()
        fit(model(), make_objective("mse"), X, max_iter=epochs, batch_size=batch, progress=False)
        return (time.perf_counter() - t0) / steps

    def run_hand():
        m = model()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3, fused=True)
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(len(X), generator=g)
            for s in range(0, len(X), batch):
                x = X.index_select(0, perm[s:s + batch])
                loss = (m(x).reconstruction - x).pow(2).sum(1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return (time.perf_counter() - t0) / steps

    run_fit(), run_hand()  # warm-up
    f, h = [], []
    for _ in range(repeats):
        f.append(run_fit())
        h.append(run_hand())
    fm, hm = statistics.median(f), statistics.median(h)
    return {"model": "DenseAE([64, 32, 8])", "batch": batch, "steps_per_run": steps,
            "fit_us_per_step": 1e6 * fm, "hand_us_per_step": 1e6 * hm,
            "overhead_us_per_step": 1e6 * (fm - hm), "fit_all_us": [1e6 * v for v in f],
            "hand_all_us": [1e6 * v for v in h]}


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
    tiny = tiny_overhead(max(3, a.repeats))
    print(tiny, flush=True)
    md = md_table(["batch", "hand loop samples/s", "aekit fit samples/s", "ratio",
                   "aekit GFLOP/s", "of fp32 matmul peak"], table)
    md += f"\n\nfp32 matmul peak (2048², same run): {peak['gflops']:.1f} GFLOP/s; " \
          f"model parameters: {n_params:,}. Loop overhead on a tiny model " \
          f"({tiny['model']}, batch {tiny['batch']}): fit {tiny['fit_us_per_step']:.0f} µs " \
          f"vs hand loop {tiny['hand_us_per_step']:.0f} µs per step, " \
          f"{tiny['overhead_us_per_step']:.0f} µs of overhead."
    write_results("speed_fit" + ("_quick" if a.quick else ""),
                  {"settings": vars(a), "matmul_peak": peak, "n_params": n_params,
                   "rows": rows, "tiny_overhead": tiny}, md)


if __name__ == "__main__":
    main()
