"""Image retrieval with short binary codes on MNIST and Fashion-MNIST: autoencoder codes vs
random-hyperplane LSH, PCA with sign thresholding and ITQ at the same bit counts.

Question (issue 22; Torralba, Fergus & Weiss 2008; Gong & Lazebnik 2011): ranking a database
by Hamming distance to the query's code, which b-bit code (b = 32, 64) retrieves images of
the query's class best, by precision@100 and mean average precision?

Protocol
--------
* Data: the 60,000 training images (pixels / 255) are the database; 1,000 test images drawn
  with seed 0 are the queries; relevant = same class. Every method is fitted on the same
  ``N_FIT`` = 20,000 training images (seed 0), of which 10 % are held out for the
  autoencoder's early stopping (the only choice made on data; every other setting is fixed
  in advance and listed here); the test images are touched once.
* AE: ``DenseAE`` 784-512-256-b, ReLU hidden units, linear pre-code followed (in a small
  wrapper) by Gaussian noise of σ = 4 in training and a logistic unit (semantic-hashing
  noise, Salakhutdinov & Hinton 2009), sigmoid output, Bernoulli cross-entropy; Adam lr 1e-3,
  batch 128, at most ``EPOCHS`` epochs, early stopping (patience 3) on the validation loss.
  Code = [σ(a) > 0.5].
* LSH: b random Gaussian hyperplanes through the data mean (Charikar 2002). PCA-sign: the top
  b principal directions, sign of the centred projection. ITQ: PCA-b then 50 iterations of
  the orthogonal Procrustes rotation (Gong & Lazebnik 2011, section 2.3), seed 0.
* Ranking: stable sort of Hamming distances (ties in database order); precision@100 and mAP
  over the 60,000 items (``aekit.retrieval.metrics``).
* ``--quick``: 3,000 fitting images, 10,000 database images, 200 queries, 2 epochs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, md_table, write_results

os.environ.setdefault("OMP_NUM_THREADS", "1")

EPOCHS, N_FIT, SIGMA = 15, 20_000, 4.0


def _noisy_code_ae(b, sigma):
    import torch
    from torch import nn

    from aekit import DenseAE
    from aekit.models.base import AEOutput

    class NoisyCodeAE(nn.Module):
        """``z = σ(a + σ_n ε)`` in training, ``σ(a)`` in eval; decoder of the DenseAE."""

        output = "sigmoid"

        def __init__(self):
            super().__init__()
            self.ae = DenseAE([784, 512, 256, b], activation="relu", output="sigmoid")
            self.n_features, self.n_components = 784, b

        def encode(self, x):
            a = self.ae.encode(x)
            if self.training:
                a = a + sigma * torch.randn_like(a)
            return torch.sigmoid(a)

        def forward(self, x):
            z = self.encode(x)
            logits = self.ae.decode_logits(z)
            return AEOutput(z, torch.sigmoid(logits), logits, ())

    return NoisyCodeAE()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--name", default=None)
    ap.add_argument("--datasets", default="mnist,fashion-mnist")
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    args = ap.parse_args()
    import torch

    from aekit.data import load_dataset
    from aekit.objectives import Objective
    from aekit.retrieval.baselines import ITQ, LSH, PCASign
    from aekit.retrieval.metrics import evaluate_retrieval
    from aekit.train import fit

    torch.set_num_threads(1)
    n_fit, n_db, n_q = (3000, 10_000, 200) if args.quick else (N_FIT, 60_000, 1000)
    epochs = 2 if args.quick else EPOCHS
    rows, table, curves = [], [], {}
    for ds in args.datasets.split(","):
        train, test = load_dataset(ds)
        X, y = train.X.astype(np.float32), train.y.astype(np.int64)
        r = np.random.default_rng(0)
        fit_i = np.sort(r.permutation(len(X))[:n_fit])
        q_i = np.sort(r.permutation(len(test.X))[:n_q])
        Xf = X[fit_i]
        Xdb, ydb = X[:n_db], y[:n_db]
        Xq, yq = test.X[q_i].astype(np.float32), test.y[q_i].astype(np.int64)
        nv = n_fit // 10
        for b in (32, 64):
            codes, fit_s = {}, {}
            t0 = time.time()
            torch.manual_seed(0)
            m = _noisy_code_ae(b, SIGMA)
            h = fit(m, Objective("bce"), Xf[nv:], val=Xf[:nv], max_iter=epochs, batch_size=128,
                    learning_rate=1e-3, early_stopping=3, random_state=0, progress=False,
                    handle_signals=False)
            m.eval()
            with torch.no_grad():
                enc = lambda A, _m=m: np.concatenate([  # noqa: E731
                    _m.encode(torch.from_numpy(A[s:s + 4096])).numpy()
                    for s in range(0, len(A), 4096)]) > 0.5
                codes["AE"] = (enc(Xdb), enc(Xq))
            fit_s["AE"] = {"s": time.time() - t0, "epochs": len(h.records)}
            for name, est in (("LSH", LSH(b)), ("PCA-sign", PCASign(b)), ("ITQ", ITQ(b))):
                t0 = time.time()
                est.fit(Xf)
                codes[name] = (est.transform(Xdb), est.transform(Xq))
                fit_s[name] = {"s": time.time() - t0}
            for name, (Bd, Bq) in codes.items():
                s = evaluate_retrieval(Bq, Bd, yq, ydb, metric="hamming", ks=(100,))
                row = {"dataset": ds, "bits": b, "method": name, **s.as_dict(),
                       "fit": fit_s[name], "distinct_db_codes": int(
                           np.unique(np.packbits(Bd, axis=1), axis=0).shape[0])}
                rows.append(row)
                curves[(ds, b, name)] = (s.curve_recall, s.curve_precision)
                table.append([ds, b, name, f"{s.precision_at_k[100]:.4f}",
                              f"{s.mean_average_precision:.4f}", row["distinct_db_codes"]])
                print(table[-1], flush=True)
    goals = {}
    for ds in args.datasets.split(","):
        for b in (32, 64):
            sel = {r["method"]: r for r in rows if r["dataset"] == ds and r["bits"] == b}
            ae = sel["AE"]
            goals[f"{ds}-{b}"] = {
                "AE_best_p100": all(ae["precision_at_k"]["100"] > v["precision_at_k"]["100"]
                                    for k, v in sel.items() if k != "AE"),
                "AE_best_mAP": all(ae["mAP"] > v["mAP"] for k, v in sel.items() if k != "AE")}
    md = md_table(["dataset", "bits", "codes", "precision@100", "mAP", "distinct codes"], table)
    settings = {"quick": args.quick, "n_fit": n_fit, "n_database": n_db, "n_queries": n_q,
                "epochs": epochs, "sigma": SIGMA, "seed": 0,
                "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": 1},
                "note": "shared 2-core machine with other jobs running"}
    name = args.name or ("retrieval_images_quick" if args.quick else "retrieval_images")
    write_results(name, {"settings": settings, "rows": rows, "goals": goals}, md)
    if not args.quick:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        dss = args.datasets.split(",")
        fig, axs = plt.subplots(1, 2 * len(dss), figsize=(5 * 2 * len(dss), 4))
        for i, (ds, b) in enumerate((d, b) for d in dss for b in (32, 64)):
            ax = np.atleast_1d(axs)[i]
            for (d2, b2, n), (rc, pr) in curves.items():
                if (d2, b2) == (ds, b):
                    ax.plot(rc, pr, label=n, lw=2 if n == "AE" else 1)
            ax.set_xscale("log")
            ax.set_title(f"{ds}, {b} bits")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.legend(fontsize=8)
        fig.tight_layout()
        Path(args.docs).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(args.docs) / "retrieval_images_pr.png", dpi=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
