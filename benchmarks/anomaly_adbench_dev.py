"""How aekit's tabular default score was chosen: candidate scores of one fitted autoencoder
compared on ADBench's *development* sets, never on the sets held out from the choice.

Protocol: the splits, subsampling and preprocessing of ``anomaly_adbench.py`` (stratified
70/30, seeds 0-2, at most 3,000 training and 10,000 test rows, z-scores of the training
split). Development sets = every other set in ADBench-number order starting with the first
(``anomaly_adbench.DEV_SETS``, 22 sets); ``--part held`` evaluates the other 21 (run only
after the choice, to report it). Per set and seed one ``AnomalyDetector`` (the residual AE
of the defaults; the score does not change the training) is fitted and the candidates
below are computed from its codes ``f(x)``, residuals ``x − x̂`` and errors
``e = ‖x − x̂‖²/d``; the reference set of every kNN score is the detector's training rows (not
its held-out rows); rank normalisation uses its held-out rows:

* ``mse``: e; ``pf``: per-feature standardised error ``mean_j (r_j / s_j)²``, s_j the RMS
  training residual of feature j;
* ``knn{k}``: mean distance to the k nearest training codes, k ∈ {5, 10, 20, 50, 100, 200,
  c = ⌈0.1 m⌉}; ``knnT{k}``: the same with the 10 % worst-reconstructed training rows
  dropped from the reference; ``xknn{k}``: the same in input space;
* ``joint`` ``[f(x), ‖x − x̂‖]`` and ``joint-vec`` ``[f(x), x − x̂]``, k = c;
  ``joint-std``: ``joint`` with every coordinate z-scored on the training rows;
  ``joint-rms``: ``joint`` with the code block divided by the RMS training-code norm and
  the error coordinate by the RMS training error norm (both parts weigh the same; added
  after the choice of ``joint``, to check a fix of its scale imbalance: on the README's
  toy subspace example ``joint`` has AUROC 0.825, ``recon`` 0.99998);
* ``A+B``: the rank-normalised average of two of them (the former default is
  ``mse+knn5``); IsolationForest (100 trees) on the same splits for reference.

Mean test AUROC (%) per set over the seeds, then over sets.

    OMP_NUM_THREADS=1 python benchmarks/anomaly_adbench_dev.py [--part dev|held] [--quick]

Writes ``benchmarks/results/anomaly_adbench_dev[_held][_quick].json``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from _common import md_table, write_results
from aekit.anomaly import AnomalyDetector, RankNormalizer, auroc, knn_distance
from aekit.data.datasets import list_adbench, load_adbench
from anomaly_adbench import DEV_SETS, _sub


def _knn(q, ref, k):
    return knn_distance(q, ref, max(1, min(int(k), len(ref))))


def candidates(det, Xtr, Xte):
    """{name: (held-out scores, test scores)} of one fitted detector."""
    vi = det.val_index_
    ti = np.setdiff1d(np.arange(len(Xtr)), vi)
    parts = {}
    for part, Xp in (("tr", Xtr[ti]), ("val", Xtr[vi]), ("te", Xte)):
        Xs = det._standardised(Xp).astype(np.float64)
        Z, R = det._forward(Xs.astype(np.float32))
        parts[part] = (Xs, Z, Xs - R)
    (x_tr, z_tr, r_tr), (x_v, z_v, r_v), (x_te, z_te, r_te) = (parts[p] for p in
                                                                ("tr", "val", "te"))
    m = len(z_tr)
    c = int(np.ceil(0.1 * m))
    out = {"mse": [(r ** 2).mean(1) for r in (r_v, r_te)]}
    s = np.sqrt((r_tr ** 2).mean(0)) + 1e-6
    out["pf"] = [((r / s) ** 2).mean(1) for r in (r_v, r_te)]
    e_tr = (r_tr ** 2).mean(1)
    keep = e_tr <= np.quantile(e_tr, 0.9)
    for k in (5, 10, 20, 50, 100, 200, "c"):
        kk = c if k == "c" else k
        out[f"knn{k}"] = [_knn(q, z_tr, kk) for q in (z_v, z_te)]
        out[f"knnT{k}"] = [_knn(q, z_tr[keep], int(np.ceil(0.1 * keep.sum())) if k == "c"
                                else kk) for q in (z_v, z_te)]
        out[f"xknn{k}"] = [_knn(q, x_tr, kk) for q in (x_v, x_te)]

    def joint(z, r):
        return np.hstack([z, np.linalg.norm(r, axis=1, keepdims=True)])

    out["joint"] = [_knn(joint(z, r), joint(z_tr, r_tr), c) for z, r in ((z_v, r_v),
                                                                          (z_te, r_te))]
    out["joint-vec"] = [_knn(np.hstack([z, r]), np.hstack([z_tr, r_tr]), c)
                        for z, r in ((z_v, r_v), (z_te, r_te))]
    # the joint space with its parts put on one scale by the training rows: every
    # coordinate z-scored ("joint-std"), or the code block and the error coordinate each
    # divided by its RMS norm so that both weigh the same ("joint-rms")
    j_tr = joint(z_tr, r_tr)
    sd = j_tr.std(0) + 1e-12
    out["joint-std"] = [_knn(joint(z, r) / sd, j_tr / sd, c) for z, r in ((z_v, r_v),
                                                                          (z_te, r_te))]
    w = np.r_[np.full(z_tr.shape[1], np.sqrt((z_tr ** 2).sum(1).mean()) + 1e-12),
              np.sqrt((j_tr[:, -1] ** 2).mean()) + 1e-12]
    out["joint-rms"] = [_knn(joint(z, r) / w, j_tr / w, c) for z, r in ((z_v, r_v),
                                                                        (z_te, r_te))]
    for a in ("mse", "pf"):
        for b in ("knn5", "knn50", "knnc", "knnTc", "knn200", "xknnc"):
            (va, ta), (vb, tb) = out[a], out[b]
            out[f"{a}+{b}"] = [None, 0.5 * (RankNormalizer(va)(ta) + RankNormalizer(vb)(tb))]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("dev", "held"), default="dev")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-train", type=int, default=3000)
    ap.add_argument("--max-test", type=int, default=10000)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from sklearn.ensemble import IsolationForest
    from sklearn.model_selection import train_test_split

    order = list_adbench()
    sets = [s for s in order if (s in DEV_SETS) == (a.part == "dev")]
    if a.quick:
        sets = sets[:4]
    seeds = list(range(1 if a.quick else a.seeds))
    t0 = time.perf_counter()
    per_set = {}
    for name in sets:
        X, y = load_adbench(name)
        X = X.astype(np.float64)
        runs = []
        for seed in seeds:
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y,
                                                  random_state=seed)
            rng = np.random.default_rng(seed)
            Xtr, ytr, _ = _sub(Xtr, ytr, a.max_train, rng)
            Xte, yte, _ = _sub(Xte, yte, a.max_test, rng)
            keep = Xtr.std(0) > 0
            mu, sd = Xtr[:, keep].mean(0), Xtr[:, keep].std(0)
            Xtr, Xte = (Xtr[:, keep] - mu) / sd, (Xte[:, keep] - mu) / sd
            torch.manual_seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                det = AnomalyDetector(random_state=seed, constant_columns="ignore",
                                      score="recon+knn", n_neighbors=5).fit(Xtr)
                iso = IsolationForest(n_estimators=100, random_state=seed).fit(Xtr)
            sc = {k: t for k, (_, t) in candidates(det, Xtr, Xte).items()}
            sc["IsolationForest"] = -iso.score_samples(Xte)
            runs.append({k: 100 * auroc(yte, s) for k, s in sc.items()})
        per_set[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        print(f"{name}: {time.perf_counter() - t0:.0f}s", flush=True)
    names = list(next(iter(per_set.values())))
    mean = {k: float(np.mean([v[k] for v in per_set.values()])) for k in names}
    ranked = sorted(names, key=lambda k: -mean[k])
    table = md_table(["candidate", f"mean AUROC ({a.part} sets, {len(sets)})"],
                     [[k, mean[k]] for k in ranked])
    name = "anomaly_adbench_dev" + ("_held" if a.part == "held" else "") + \
        ("_quick" if a.quick else "")
    write_results(name, {
        "settings": {"part": a.part, "quick": a.quick, "sets": sets, "seeds": seeds,
                     "max_train": a.max_train, "max_test": a.max_test, "threads": 1},
        "protocol": __doc__.split("\n\n", 1)[1].split("    OMP_NUM_THREADS")[0].strip(),
        "mean_auroc": mean, "per_set": per_set, "total_s": time.perf_counter() - t0}, table)


if __name__ == "__main__":
    main()
