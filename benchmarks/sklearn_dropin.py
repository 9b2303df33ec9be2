"""The scikit-learn drop-in (issue 19): aekit's sparse-coding estimators and functions and
LinearAEPCA against scikit-learn's, same data, same settings, same run.

Protocol: 8×8 natural-image patches (seed 0, ``aekit.sparse.patches``), float64, alpha=1.
Every row runs scikit-learn and aekit with identical arguments (scikit-learn's defaults
unless listed in the row) and reports both times, the ratio and the relative difference of
the final objective ``½‖X − UV‖² + α‖U‖₁`` (per sample for mini-batch). Dictionary-update
rows: DictionaryLearning with ``dict_update="bcd"`` vs ``"lagrange_dual"``, time until the
cost first reaches the cost BCD ends with. PCA: MNIST's 60,000 training images (pixels / 255;
a synthetic rank-50-plus-noise matrix of that size when the file is absent), k = 30,
scikit-learn ``PCA`` "full" and "randomized" vs ``LinearAEPCA``
"auto" (covariance) and "randomized"; relative reconstruction error on the training data.

``--threads`` sets torch's, numba's and the BLAS (threadpoolctl) thread counts, the same for
both libraries. Command: ``python benchmarks/sklearn_dropin.py --threads 1 [--quick]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import sklearn.decomposition as skd
import torch

from _common import md_table, write_results
from aekit.decomposition import LinearAEPCA
from aekit.sparse import sklearn_api
from aekit.sparse.estimators import DictionaryLearning, MiniBatchDictionaryLearning, SparseCoder
from aekit.sparse.patches import natural_image_patches


def _t(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _cost(X, V, U, alpha=1.0):
    return 0.5 * float(((X - U @ V) ** 2).sum()) + alpha * float(np.abs(U).sum())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # NumPy/SciPy BLAS too, for both libraries: with its default pool (one thread per core)
    # on a shared 2-core machine, the small BLAS calls of both sides (randomized SVD, QR,
    # LU, gemv) were measured 10-50x slower from oversubscription, which swamped the rows
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    q = args.quick
    n_dl, k_dl, it_dl = (300, 32, 5) if q else (1000, 64, 20)
    n_mb, k_mb, ep_mb = (2000, 32, 1) if q else (5000, 64, 2)
    n_enc, k_enc = (500, 64) if q else (2000, 256)
    P = natural_image_patches(10_000, 8, generator=torch.Generator().manual_seed(0))
    P = P.double().numpy()
    P = P - P.mean(1, keepdims=True)
    sklearn_api.sparse_encode(P[:4], np.eye(64))  # numba compile / cache load
    sklearn_api.update_dict(np.eye(64)[:8].copy(), P[:4], np.ones((4, 8)))  # same, atom sweep
    rows, rec = [], []

    def add(name, settings, t_sk, t_ae, f_sk, f_ae):
        rel = abs(f_ae - f_sk) / abs(f_sk) if f_sk else 0.0
        rows.append([name, settings, round(t_sk, 3), round(t_ae, 3), round(t_sk / t_ae, 1),
                     f"{rel:.1e}"])
        rec.append({"name": name, "settings": settings, "sklearn_s": t_sk, "aekit_s": t_ae,
                    "speedup": t_sk / t_ae, "objective_sklearn": f_sk,
                    "objective_aekit": f_ae, "objective_rel_diff": rel})
        print(rows[-1], flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = P[:n_dl]
        kw = {"n_components": k_dl, "max_iter": it_dl, "random_state": 0}
        sk, t_sk = _t(lambda: skd.DictionaryLearning(**kw).fit(X))
        ae, t_ae = _t(lambda: DictionaryLearning(**kw).fit(X))
        add("DictionaryLearning().fit", f"n={n_dl}, {kw}", t_sk, t_ae, sk.error_[-1],
            ae.error_[-1])
        X = P[:n_mb]
        kw = {"n_components": k_mb, "max_iter": ep_mb, "random_state": 0}
        sk, t_sk = _t(lambda: skd.MiniBatchDictionaryLearning(**kw).fit(X))
        ae, t_ae = _t(lambda: MiniBatchDictionaryLearning(**kw).fit(X))
        Usk = skd.sparse_encode(X, sk.components_, alpha=1.0)
        Uae = sklearn_api.sparse_encode(X, ae.components_, alpha=1.0)
        add("MiniBatchDictionaryLearning().fit", f"n={n_mb}, {kw}", t_sk, t_ae,
            _cost(X, sk.components_, Usk), _cost(X, ae.components_, Uae))
        X = P[-n_enc:]
        V = np.random.RandomState(0).normal(size=(k_enc, 64))
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        zs, t_sk = _t(lambda: skd.SparseCoder(V, transform_algorithm="lasso_lars",
                                              transform_alpha=1.0).transform(X))
        za, t_ae = _t(lambda: SparseCoder(V, transform_algorithm="lasso_lars",
                                          transform_alpha=1.0).transform(X))
        add('SparseCoder(transform_algorithm="lasso_lars").transform',
            f"n={n_enc}, k={k_enc}, alpha=1, random unit atoms", t_sk, t_ae,
            _cost(X, V, zs), _cost(X, V, za))
        zs, t_sk = _t(lambda: skd.sparse_encode(X, V, algorithm="lasso_lars", alpha=1.0))
        za, t_ae = _t(lambda: sklearn_api.sparse_encode(X, V, algorithm="lasso_lars",
                                                        alpha=1.0))
        add('sparse_encode(algorithm="lasso_lars")', f"n={n_enc}, k={k_enc}, alpha=1",
            t_sk, t_ae, _cost(X, V, zs), _cost(X, V, za))

        # Lagrange dual vs block-coordinate dictionary update
        X = P[:n_dl]
        kw = {"n_components": k_dl, "max_iter": 3 * it_dl, "random_state": 0, "tol": 0.0}
        bcd = DictionaryLearning(**kw).fit(X)
        dual = DictionaryLearning(dict_update="lagrange_dual", **kw).fit(X)
        target = bcd.error_[-1]
        hit = [t for t, e in zip(dual._elapsed, dual.error_, strict=True) if e <= target]
        t_dual = hit[0] if hit else float("nan")
        dual_rows = [["block-coordinate (1 sweep / iteration)", kw["max_iter"],
                      round(bcd._elapsed[-1], 3), f"{target:.6g}"],
                     ["Lagrange dual (exact step)",
                      1 + next((i for i, e in enumerate(dual.error_) if e <= target), -1),
                      round(t_dual, 3), f"{dual.error_[-1]:.6g} (final)"]]
        dual_rec = {"settings": f"n={n_dl}, {kw}", "bcd_s": bcd._elapsed[-1],
                    "bcd_final_cost": target, "dual_s_to_target": t_dual,
                    "dual_costs": dual.error_, "bcd_costs": bcd.error_}
        print(dual_rows)

    # PCA
    n, d, k = (6000, 784, 30) if q else (60_000, 784, 30)
    try:  # MNIST's training images (pixels / 255) where the file is present
        from aekit.data import load_dataset

        Xp = np.ascontiguousarray(load_dataset("mnist")[0].X[:n], dtype=np.float32)
        pca_data = f"MNIST training images, first {n}, pixels / 255"
    except (FileNotFoundError, OSError, ValueError):
        rng = np.random.RandomState(0)
        Xp = (rng.normal(size=(n, 50)) @ rng.normal(size=(50, d)) + rng.normal(size=(n, d))
              ).astype(np.float32)
        pca_data = "synthetic (MNIST not found): rank-50 Gaussian signal plus unit noise"
    print(f"PCA data: {pca_data}", flush=True)
    pca_rows, pca_rec = [], []
    for name, make in [("sklearn PCA full", lambda: skd.PCA(k, svd_solver="full")),
                       ("sklearn PCA randomized",
                        lambda: skd.PCA(k, svd_solver="randomized", random_state=0)),
                       ("LinearAEPCA auto (covariance)", lambda: LinearAEPCA(k)),
                       ("LinearAEPCA randomized",
                        lambda: LinearAEPCA(k, svd_solver="randomized", random_state=0))]:
        est, t = _t(lambda make=make: make().fit(Xp))
        R = est.inverse_transform(est.transform(Xp))
        err = float(((R - Xp) ** 2).sum() / ((Xp - Xp.mean(0)) ** 2).sum())
        pca_rows.append([name, round(t, 3), f"{err:.6f}"])
        pca_rec.append({"name": name, "seconds": t, "relative_reconstruction_error": err})
        print(pca_rows[-1], flush=True)
    base = pca_rec[0]["seconds"]
    for r, rr in zip(pca_rows, pca_rec, strict=True):
        r.insert(2, round(base / rr["seconds"], 2))
        rr["speedup_vs_sklearn_full"] = base / rr["seconds"]

    md = "### Drop-in estimators vs scikit-learn (patches, alpha = 1)\n\n" + md_table(
        ["call", "settings", "sklearn (s)", "aekit (s)", "speed-up", "objective rel. diff"],
        rows)
    md += "\n\n### Dictionary step: Lagrange dual vs block-coordinate\n\n" + md_table(
        ["update", "iterations", "time to BCD's final cost (s)", "cost"], dual_rows)
    md += f"\n\n### PCA, {n} × {d}, k = {k} (float32; {pca_data})\n\n" + md_table(
        ["estimator", "fit (s)", "speed-up vs PCA full", "relative reconstruction error"],
        pca_rows)
    write_results("sklearn_dropin_quick" if q else "sklearn_dropin", {
        "protocol": __doc__,
        "settings": {"quick": q, "threads": args.threads, "blas_threads": args.threads},
        "rows": rec, "dictionary_update": dual_rec, "pca": pca_rec, "pca_data": pca_data}, md)


if __name__ == "__main__":
    main()
