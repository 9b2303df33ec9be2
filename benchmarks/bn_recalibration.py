"""Batch norm after pretrained layers: stale running statistics, and recalibration (issue 18).

Question: why did the stacked-CAE classifier with batch norm (``mnist_classification.py``
recipe ``batch_norm=1``) sit near chance in eval mode? This reproduces it small: the first
10,000 MNIST training images, a 784-1000-1000-1000 ReLU stack pretrained layer-wise as
contractive AEs (λ = 0.1, ``--pretrain-epochs`` epochs, Adam 1e-3, batch 128), batch norm
after every hidden linear layer initialised to the identity on the same images
(``identity_batch_norm_``), fine-tuned with VAT (ε = 2, no dropout) for ``--epochs`` epochs
(Adam 1e-3 cosine, batch 128, bf16 where native). Scored on the last 2,000 training images
(never trained on; no test image is read): the error in eval mode with the running
statistics as training left them, in train mode (batch statistics of the 2,000 images), and
in eval mode after :func:`aekit.train.recalibrate_batch_norm` on the 10,000 training images.
The same net without batch norm and a random-init MLP with batch norm are the references.

Command: ``OMP_NUM_THREADS=1 python benchmarks/bn_recalibration.py [--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mnist_classification as mc
from _common import md_table, write_results
from aekit import DenseAE, fit
from aekit.classifier import classifier_objective
from aekit.data import load_mnist
from aekit.train import recalibrate_batch_norm, resolve_precision
from aekit.train.pretrain import pretrain_layers, stack_into_deep_ae


@torch.no_grad()
def _err(m, X, y, train_mode=False):
    m.train(train_mode)
    e = float((m(X).argmax(1) != y).float().mean()) * 100
    m.train()
    return round(e, 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    q = args.quick
    n, hidden = (2000, 128) if q else (10_000, 1000)
    pre_ep = 1 if q else args.pretrain_epochs
    path = os.environ.get("AEKIT_DATA")
    tr, _ = load_mnist(None if path is None else os.path.join(path, "mnist.npz"))
    X = torch.from_numpy(tr.X[:n].astype(np.float32))
    y = torch.from_numpy(tr.y[:n].astype(np.int64))
    Xv = torch.from_numpy(tr.X[-2000:].astype(np.float32))
    yv = torch.from_numpy(tr.y[-2000:].astype(np.int64))
    prec = resolve_precision("bf16")
    sizes = [784, hidden, hidden, hidden]
    spec = mc.pretrain_spec("scae", argparse.Namespace(cae_lambda=0.1))
    t0 = time.perf_counter()
    pre = pretrain_layers(sizes, X.numpy(), activation="relu", code_activation="relu",
                          output="sigmoid", layer_kwargs=spec, max_iter=pre_ep, batch_size=128,
                          optimizer="adam", learning_rate=1e-3, random_state=0, progress=False)
    t_pre = time.perf_counter() - t0
    stacked = list(stack_into_deep_ae(pre.layers).enc)
    rows, runs = [], {}
    for name, bn, pretrained in [("stacked CAE + batch norm", True, True),
                                 ("stacked CAE, no batch norm", False, True),
                                 ("random-init MLP + batch norm", True, False)]:
        torch.manual_seed(0)
        lin = copy.deepcopy(stacked) if pretrained else list(
            DenseAE(sizes, activation="relu", code_activation="relu").enc)
        m = mc.Classifier(lin, "relu", 0.0, 0.0, bn).train()
        if bn:
            mc.identity_batch_norm_(m, X)
        with torch.no_grad():  # share of hidden units of layers 2-3 that are 0 on 2,000 images
            h, zero = Xv, []
            for mod in m.net:
                h = mod(h) if not isinstance(mod, torch.nn.BatchNorm1d) else h
                if isinstance(mod, torch.nn.ReLU):
                    zero.append(float(((h > 0).float().mean(0) == 0).float().mean()))
            dead = [round(z, 3) for z in zero]
        t1 = time.perf_counter()
        fit(m, classifier_objective(0.0, 2.0), (X, y), max_iter=args.epochs, batch_size=128,
            optimizer="adam", learning_rate=1e-3, schedule="cosine", random_state=0,
            precision=prec, progress=False)
        r = {"eval_error_pct": _err(m, Xv, yv), "train_mode_error_pct": _err(m, Xv, yv, True),
             "dead_units_at_start": dead, "finetune_s": round(time.perf_counter() - t1, 1)}
        if bn:
            recalibrate_batch_norm(m, X)
            r["eval_error_recalibrated_pct"] = _err(m, Xv, yv)
        runs[name] = r
        rows.append([name, r["eval_error_pct"], r["train_mode_error_pct"],
                     r.get("eval_error_recalibrated_pct", "—"), dead])
        print(name, r, flush=True)
    md = md_table(["net", "eval-mode error %", "train-mode error %",
                   "eval-mode after recalibration %", "dead ReLU share per layer at start"],
                  rows)
    write_results("bn_recalibration_quick" if q else "bn_recalibration", {
        "protocol": __doc__,
        "settings": {"quick": q, "n_train": n, "hidden": hidden, "pretrain_epochs": pre_ep,
                     "epochs": args.epochs, "precision": prec, "pretrain_s": round(t_pre, 1),
                     "argv": sys.argv},
        "runs": runs}, md)


if __name__ == "__main__":
    main()
