"""Validation curves of the binary-code AE's fine-tuning: precision@100 *and* mAP per epoch.

Question (issue 22): the AE codes of ``retrieval_images.py`` beat ITQ in precision@100 but
not in mAP on three of four (dataset, bits) pairs. Is that a matter of training length or
selection, or does the reconstruction objective itself trade mAP for precision@100? This
script answers on validation data only (no test image is read): the same data split and
model as ``retrieval_images.py`` (20,000 training images drawn with seed 0, the first 2,000
held out as queries against the other 18,000; ITQ start, decoder fitted 3 epochs on the
frozen code, then straight-through fine-tuning, Adam ``--lr``, batch 128), for ``--epochs``
epochs without early stopping, recording validation precision@100 and mAP after each.

Command: ``OMP_NUM_THREADS=1 python benchmarks/retrieval_images_curves.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, write_results

CONFIGS = (("mnist", 32), ("mnist", 64), ("fashion-mnist", 32), ("fashion-mnist", 64))


def curve(ds: str, b: int, lr: float, epochs: int, n_fit: int) -> list[dict]:
    from aekit.data import load_dataset
    from aekit.objectives import Objective
    from aekit.retrieval.baselines import ITQ
    from aekit.retrieval.binary_ae import BinaryCodeAE
    from aekit.retrieval.metrics import evaluate_retrieval
    from aekit.train import fit

    train, _ = load_dataset(ds)
    X, y = train.X.astype(np.float32), train.y.astype(np.int64)
    fit_i = np.sort(np.random.default_rng(0).permutation(len(X))[:n_fit])
    nv = n_fit // 10
    Xv, yv, Xt, yt = X[fit_i][:nv], y[fit_i][:nv], X[fit_i][nv:], y[fit_i][nv:]
    itq = ITQ(b, n_iter=50, random_state=0).fit(Xt)
    torch.manual_seed(0)
    m = BinaryCodeAE(X.shape[1], b, 512).init_from_itq(itq, Xt)
    common = dict(batch_size=128, random_state=0, progress=False, handle_signals=False)
    fit(m, Objective("bce"), Xt, max_iter=3, learning_rate=1e-3,
        params=list(m.decoder.parameters()), **common)
    out: list[dict] = []

    def score(epoch, record=None, mm=m):
        s = evaluate_retrieval(mm.codes(Xv), mm.codes(Xt), yv, yt, metric="hamming",
                               ks=(100,))
        out.append({"epoch": epoch, "val_p_at_100": float(s.precision_at_k[100]),
                    "val_map": float(s.mean_average_precision),
                    "train_loss": None if record is None else float(record["train_loss"])})
        mm.train()
        print(ds, b, out[-1], flush=True)

    score(0)
    fit(m, Objective("bce"), Xt, max_iter=epochs, learning_rate=lr,
        callbacks=[lambda e, r, mm: score(e, r, mm)], **common)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    n_fit = 3000 if args.quick else 20_000
    epochs = 2 if args.quick else args.epochs
    curves = {f"{ds}-{b}": curve(ds, b, args.lr, epochs, n_fit) for ds, b in CONFIGS}
    rows = []
    for key, c in curves.items():
        c0 = c[0]
        best_p = max(c, key=lambda r: r["val_p_at_100"])
        both = [r for r in c[1:] if r["val_p_at_100"] > c0["val_p_at_100"]
                and r["val_map"] > c0["val_map"]]
        rows.append([key, f"{c0['val_p_at_100']:.4f}", f"{c0['val_map']:.4f}",
                     best_p["epoch"], f"{best_p['val_p_at_100']:.4f}",
                     f"{best_p['val_map']:.4f}", f"{c[-1]['val_p_at_100']:.4f}",
                     f"{c[-1]['val_map']:.4f}", len(both)])
    md = md_table(["data-bits", "ITQ start P@100", "ITQ start mAP", "best-P@100 epoch",
                   "its P@100", "its mAP", f"epoch {epochs} P@100", f"epoch {epochs} mAP",
                   "epochs above the start in both"], rows)
    md += ("\n\nValidation only (2,000 held-out training images as queries against 18,000); "
           "no test image read.")
    write_results("retrieval_images_curves" + ("_quick" if args.quick else ""), {
        "settings": {"quick": args.quick, "epochs": epochs, "lr": args.lr, "n_fit": n_fit,
                     "threads": 1, "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "protocol": __doc__, "curves": curves, "total_s": round(time.time() - t0, 1)}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
