"""Quality on MNIST: a 784-256-32 autoencoder vs PCA-32, test error in the unit of
Hinton & Salakhutdinov (2006): Σ over the 784 pixels in [0, 1] of the squared error, averaged
over the 10,000 test images.

Protocol: the standard 60,000/10,000 split; pixels / 255; the AE trains on the first 55,000
training images (5,000 held out for early stopping), PCA fits all 60,000 — PCA's advantage.
AE: ELU hidden layer, linear 32-D code, sigmoid output, cross-entropy loss, Adam lr 3e-3 with
cosine decay, batch 128, seed 0.

    python benchmarks/quality_mnist.py            # full: 40 epochs
    python benchmarks/quality_mnist.py --quick    # 10,000 images, 5 epochs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, write_results
from aekit import DenseAE, fit, load_mnist, make_objective
from aekit.runs import pca_errors, reconstruction_errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="mnist.npz or IDX folder (default $AEKIT_DATA/mnist.npz)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    train, test = load_mnist(a.data)
    Xtr, Xte = train.X, test.X
    if a.quick:
        Xtr, a.epochs = Xtr[:10000], 5
    n_val = len(Xtr) // 12
    t0 = time.perf_counter()
    e_pca = pca_errors(Xtr, Xte, 32)
    t_pca = time.perf_counter() - t0
    torch.manual_seed(0)
    model = DenseAE([784, 256, 32], activation="elu", output="sigmoid")
    t0 = time.perf_counter()
    hist = fit(model, make_objective("bce"), Xtr[:-n_val], val=Xtr[-n_val:], max_iter=a.epochs,
               batch_size=128, learning_rate=3e-3, schedule="cosine", early_stopping=10,
               random_state=0)
    t_ae = time.perf_counter() - t0
    e_ae = reconstruction_errors(model, Xte)
    rows = [
        {"method": "PCA-32", "test_error": float(e_pca.mean()), "train_time_s": t_pca},
        {"method": "AE 784-256-32", "test_error": float(e_ae.mean()), "train_time_s": t_ae,
         "epochs": len(hist), "best_epoch": hist.best_epoch},
    ]
    ratio = rows[1]["test_error"] / rows[0]["test_error"]
    md = md_table(["method", "test error (Σ pixels sq. err., mean over 10k test)",
                   "train time (s)"],
                  [[r["method"], round(r["test_error"], 3), round(r["train_time_s"], 1)]
                   for r in rows])
    md += f"\n\nAE / PCA error ratio: {ratio:.3f}" + (" (quick mode: 10k images, 5 epochs)"
                                                      if a.quick else "")
    write_results("quality_mnist" + ("_quick" if a.quick else ""),
                  {"settings": vars(a), "n_train": int(len(Xtr) - n_val),
                   "n_test": int(len(Xte)), "rows": rows, "ae_over_pca": ratio,
                   "unit": "sum over 784 pixels of squared error, mean over test images"},
                  md)
    np.testing.assert_array_less(ratio, 1.0)


if __name__ == "__main__":
    main()
