"""Validation-only sweep of the binary-code AE's neighbourhood term (issue 22): which weight λ
and which code (relaxed tanh(a/2τ) or hard ±1 with a straight-through gradient)?

Same split as ``retrieval_images.py`` (20,000 training images drawn with seed 0; the first
2,000 are validation queries against the other 18,000; no test image is read). For each
configuration (a JSON list of keyword overrides for ``fit_binary_code_ae``; defaults here:
decoder 3 epochs, 6 fine-tuning epochs, no early stopping, Adam lr 1e-4) it prints the
validation precision@100 and mAP per epoch (0 = the ITQ start) and the kNN graph's label
agreement (the fraction of graph edges joining images of one class: a diagnostic, not used).
It prints only (a development tool; the numbers it gave are in docs/retrieval.md).

Command::

    OMP_NUM_THREADS=1 AEKIT_DATA=../shared/data python benchmarks/retrieval_images_graph_sweep.py \
        mnist 32 '[{"graph_weight": 300.0, "graph_code": "hard"}]'
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch


def main() -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    from aekit.data import load_dataset
    from aekit.retrieval.binary_ae import fit_binary_code_ae, knn_graph

    ds, b, configs = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    train, _ = load_dataset(ds)
    X, y = train.X.astype(np.float32), train.y.astype(np.int64)
    fit_i = np.sort(np.random.default_rng(0).permutation(len(X))[:20000])
    nv = 2000
    Xv, yv, Xt, yt = X[fit_i][:nv], y[fit_i][:nv], X[fit_i][nv:], y[fit_i][nv:]
    t = time.time()
    nb = knn_graph(Xt, 10)
    print("graph", round(time.time() - t, 1), "s, label agreement",
          float((yt[nb] == yt[:, None]).mean()), flush=True)
    for cfg in configs:
        t = time.time()
        kw = dict(decoder_max_iter=3, max_iter=6, patience=99, learning_rate=1e-4,
                  random_state=0)
        kw.update(cfg)
        _, info = fit_binary_code_ae(Xt, b, X_val=Xv, y_val=yv, y_train=yt, k=100, **kw)
        print(ds, b, cfg, "P", [round(v, 4) for v in info["val_p_at_k"]], "mAP",
              [round(v, 4) for v in info["val_map"]], "best", info["best_epoch"],
              round(time.time() - t, 1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
