"""Regularised autoencoders on MNIST: plain, weight decay, KL-sparse, denoising, contractive.

Question: with one 1000-unit sigmoid hidden layer trained the same way, what does each
regulariser do to test reconstruction, code activity and a linear probe on the codes, and what
does the contractive penalty cost per training step (closed form vs exact autograd Jacobian)?

Protocol (recorded in the JSON): MNIST standard split (``--quick``: the first 10,000 training
and 2,000 test images), pixels / 255, ``DenseAE([784, 1000], code_activation="sigmoid",
output="sigmoid", tied=True)``, cross-entropy summed over pixels and averaged over the batch,
Adam, the same seed for every model. Reported per model:

* ``test_sse``: Σ over the 784 pixels of (x̂ − x)², averaged over test images (clean input);
* ``test_sse_masked``: the same with 25 % of each test image's pixels masked at the input
  (fixed seed), error against the clean image;
* ``mean_activation``, ``fraction_active`` (h > threshold), ``dead_units`` (never above the
  threshold on any test image), on the test set;
* ``probe_error``: test error of scikit-learn ``LogisticRegression`` trained on the training
  codes (settings in the JSON); the raw-pixel probe is the baseline row;
* ``train_time_s``.

Run:  python benchmarks/regularized_mnist.py --quick      (about 1–2 minutes on one core)
      python benchmarks/regularized_mnist.py              (full: 60k images, 20 epochs each;
                                                          about 17 minutes on one core, est.)
Writes benchmarks/results/regularized_mnist.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aekit import DenseAE, Objective, WeightDecay, fit, load_mnist
from aekit.analysis import unit_activity
from aekit.corruption import Masking
from aekit.io import atomic_write_json
from aekit.objectives import Contractive, KLSparsity
from aekit.train import Callback

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "regularized_mnist.json"

# Regulariser settings, fixed in advance for both modes (see the JSON's "protocol").
ETA = 1e-3  # weight decay η on ‖W‖²_F
RHO, BETA = 0.05, 1.0  # KL sparsity target and weight
NU = 0.25  # masking fraction of the denoising AE (and of the masked test input)
LAM = 0.1  # contractive weight λ


def configs() -> list[dict]:
    """One dict per model: name, objective terms, corruption."""
    return [
        {"name": "AE", "terms": [], "corruption": None},
        {"name": "AE + weight decay", "terms": [WeightDecay(ETA)], "corruption": None,
         "setting": f"eta={ETA}"},
        {"name": "sparse AE (KL)", "terms": [KLSparsity(RHO, BETA)], "corruption": None,
         "setting": f"rho={RHO}, beta={BETA}"},
        {"name": "DAE (masking)", "terms": [], "corruption": Masking(NU),
         "setting": f"nu={NU}"},
        {"name": "CAE", "terms": [Contractive(LAM)], "corruption": None,
         "setting": f"lam={LAM} (closed form)"},
    ]


def make_model(seed: int) -> DenseAE:
    torch.manual_seed(seed)
    return DenseAE([784, 1000], code_activation="sigmoid", output="sigmoid", tied=True)


@torch.no_grad()
def sse(model: DenseAE, x_in: torch.Tensor, x_clean: torch.Tensor, bs: int = 2000) -> float:
    """Mean over images of Σ_pixels (x̂ − x)², x̂ = g(f(x_in))."""
    model.eval()
    tot = 0.0
    for i in range(0, len(x_in), bs):
        r = model(x_in[i:i + bs]).reconstruction
        tot += float((r - x_clean[i:i + bs]).pow(2).sum())
    return tot / len(x_in)


@torch.no_grad()
def codes(model: DenseAE, X: torch.Tensor, bs: int = 2000) -> np.ndarray:
    model.eval()
    return torch.cat([model.encode(X[i:i + bs]) for i in range(0, len(X), bs)]).numpy()


def probe(Htr: np.ndarray, ytr: np.ndarray, Hte: np.ndarray, yte: np.ndarray,
          settings: dict) -> tuple[float, int]:
    """Test error of a multinomial logistic regression trained on the training codes."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter is recorded instead
        clf.fit(Htr, ytr)
    return float(1.0 - clf.score(Hte, yte)), int(np.max(clf.n_iter_))


class StepTimer(Callback):
    """Wall time between consecutive optimiser steps of :func:`aekit.fit`."""

    def __init__(self):
        self.times: list[float] = []
        self.t = None

    def on_fit_start(self, loop):
        self.t = time.perf_counter()

    def on_batch_end(self, loop):
        now = time.perf_counter()
        self.times.append(now - self.t)
        self.t = now


def step_cost(terms: list, X: torch.Tensor, batch: int, n_steps: int, seed: int) -> dict:
    """Median wall time of one :func:`aekit.fit` step (batch, forward, objective, backward,
    Adam update) in ms, over ``n_steps`` steps after two warm-up steps."""
    model = make_model(seed)
    timer = StepTimer()
    fit(model, Objective("bce", terms), X[:batch * (n_steps + 2)], max_iter=1, batch_size=batch,
        learning_rate=1e-3, random_state=seed, progress=False, callbacks=[timer])
    times = timer.times[2:]
    return {"ms_per_step": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
            "steps": len(times)}


def machine_info() -> dict:
    """This file's flat layout of the shared record in ``benchmarks/_common.py``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import environment

    env = environment()
    commit = env["git_commit"]
    return {"cpu": env["cpu"]["model"], "cpu_flags": env["cpu"]["flags"],
            "logical_cpus": env["cpu"]["logical_cpus"], "torch": env["torch"],
            "numpy": env["numpy"], "sklearn": env["sklearn"], "python": env["python"],
            "threads": env["torch_threads"], "git_commit": commit.removesuffix("-dirty"),
            "git_dirty": commit.endswith("-dirty")}


def table(rows: list[dict], cost: list[dict]) -> str:
    head = ("| model | setting | test SSE | SSE, 25% masked input | mean act. | frac. active "
            "| dead | probe error | train time (s) |\n|---|---|---|---|---|---|---|---|---|\n")
    body = ""
    for r in rows:
        if r["name"] == "raw pixels":
            body += (f"| raw pixels (probe baseline) | – | – | – | – | – | – | "
                     f"{r['probe_error']:.4f} | – |\n")
            continue
        body += (f"| {r['name']} | {r.get('setting', '–')} | {r['test_sse']:.2f} | "
                 f"{r['test_sse_masked']:.2f} | {r['mean_activation']:.3f} | "
                 f"{r['fraction_active']:.3f} | {r['dead_units']} | {r['probe_error']:.4f} | "
                 f"{r['train_time_s']:.1f} |\n")
    c = "\n| step (batch {}) | ms / step | × plain AE |\n|---|---|---|\n".format(
        cost[0]["batch"])
    for r in cost:
        c += f"| {r['method']} | {r['ms_per_step']:.1f} | {r['ratio_to_plain']:.2f} |\n"
    return head + body + c


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="10k training / 2k test images, 3 epochs (smoke test)")
    ap.add_argument("--epochs", type=int, default=None, help="default: 3 quick, 20 full")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared 2-core machine more threads "
                         "oversubscribe and run several times slower)")
    ap.add_argument("--dead-threshold", type=float, default=0.05,
                    help="a sigmoid unit is active on an image when h > threshold")
    ap.add_argument("--cost-steps", type=int, default=None,
                    help="timed steps per method for the step cost (default 3 quick, 10 full)")
    ap.add_argument("--figures", type=Path, default=None,
                    help="also save filter and reconstruction grids to this folder")
    ap.add_argument("--data", type=Path, default=None, help="mnist.npz (default: data_dir())")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    # Keep scikit-learn's BLAS to the same thread count as torch (no oversubscription).
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    quick = args.quick
    epochs = args.epochs if args.epochs is not None else (3 if quick else 20)
    n_train, n_test = (10_000, 2_000) if quick else (60_000, 10_000)
    cost_steps = args.cost_steps or (3 if quick else 10)
    probe_settings = {"C": 1.0, "max_iter": 200 if quick else 500, "tol": 1e-4,
                      "solver": "lbfgs"}

    tr, te = load_mnist(args.data)
    Xtr, ytr = torch.from_numpy(tr.X[:n_train]), tr.y[:n_train]
    Xte, yte = torch.from_numpy(te.X[:n_test]), te.y[:n_test]
    Xte_masked = Masking(NU)(Xte, torch.Generator().manual_seed(1234))

    started = time.perf_counter()
    rows = []
    t0 = time.perf_counter()
    err, it = probe(tr.X[:n_train], ytr, te.X[:n_test], yte, probe_settings)
    rows.append({"name": "raw pixels", "probe_error": err, "probe_n_iter": it,
                 "probe_time_s": time.perf_counter() - t0})
    print(f"raw pixels: probe error {err:.4f}", file=sys.stderr)

    for cfg in configs():
        model = make_model(args.seed)
        obj = Objective("bce", cfg["terms"])
        t0 = time.perf_counter()
        hist = fit(model, obj, Xtr, corruption=cfg["corruption"], max_iter=epochs,
                   batch_size=args.batch_size, learning_rate=args.lr, random_state=args.seed,
                   progress=False)
        train_time = time.perf_counter() - t0
        act = unit_activity(model, Xte, threshold=args.dead_threshold)
        t1 = time.perf_counter()
        err, it = probe(codes(model, Xtr), ytr, codes(model, Xte), yte, probe_settings)
        last = hist.records[-1]
        row = {
            "name": cfg["name"], "setting": cfg.get("setting", "–"),
            "terms": [repr(t) for t in cfg["terms"]],
            "corruption": repr(cfg["corruption"]) if cfg["corruption"] else None,
            "test_sse": sse(model, Xte, Xte), "test_sse_masked": sse(model, Xte_masked, Xte),
            "mean_activation": act.mean_activation, "fraction_active": act.fraction_active,
            "dead_units": act.dead_units, "probe_error": err, "probe_n_iter": it,
            "probe_time_s": time.perf_counter() - t1, "train_time_s": train_time,
            "final_train": {k: v for k, v in last.items() if k.startswith("train_")},
        }
        rows.append(row)
        if args.figures is not None:
            from aekit.plots import save_filter_grid, save_reconstruction_grid

            slug = cfg["name"].split(" ")[0].lower() + ("_wd" if "decay" in cfg["name"] else "")
            save_filter_grid(model, args.figures / f"filters_{slug}.png", n=100,
                             title=cfg["name"])
            with torch.no_grad():
                rec = model(Xte_masked[:10]).reconstruction
            save_reconstruction_grid(Xte_masked[:10], rec, args.figures / f"recon_{slug}.png",
                                     clean=Xte[:10])
        print(f"{cfg['name']}: SSE {row['test_sse']:.2f}, masked {row['test_sse_masked']:.2f}, "
              f"act {row['mean_activation']:.3f}, dead {row['dead_units']}, probe {err:.4f}, "
              f"{train_time:.1f}s", file=sys.stderr)

    base = next(r for r in rows if r["name"] == "AE")
    for r in rows:
        if "test_sse" in r:
            r["test_sse_ratio_to_ae"] = r["test_sse"] / base["test_sse"]
            r["train_time_ratio_to_ae"] = r["train_time_s"] / base["train_time_s"]

    cost = []
    for method, terms in (("plain AE", []), ("CAE closed form", [Contractive(LAM, "closed_form")]),
                          ("CAE autograd (torch.func)", [Contractive(LAM, "autograd")])):
        c = step_cost(terms, Xtr, args.batch_size, cost_steps, args.seed)
        c.update(method=method, batch=args.batch_size)
        cost.append(c)
        print(f"{method}: {c['ms_per_step']:.1f} ms/step", file=sys.stderr)
    for c in cost:
        c["ratio_to_plain"] = c["ms_per_step"] / cost[0]["ms_per_step"]

    result = {
        "benchmark": "regularized_mnist",
        "command": " ".join(["python", *sys.argv] if argv is None
                            else ["python", "benchmarks/regularized_mnist.py", *argv]),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        **machine_info(),
        "protocol": {
            "data": f"MNIST standard split, first {n_train} train / {n_test} test images, "
                    "pixels / 255",
            "model": "DenseAE([784, 1000], code_activation='sigmoid', output='sigmoid', "
                     "tied=True), default init",
            "loss": "bce: cross-entropy summed over pixels, mean over the batch",
            "optimizer": {"name": "adam", "lr": args.lr, "batch_size": args.batch_size,
                          "epochs": epochs, "seed": args.seed, "schedule": "constant"},
            "regularizers": {"weight_decay_eta": ETA, "kl_rho": RHO, "kl_beta": BETA,
                             "dae_masking_nu": NU, "cae_lambda": LAM},
            "test_sse": "mean over test images of sum over 784 pixels of squared error",
            "masked_test_input": f"Masking({NU}), generator seed 1234; error vs clean image",
            "activity": f"test set, active when h > {args.dead_threshold}; dead = never active",
            "probe": {"estimator": "sklearn.linear_model.LogisticRegression",
                      "settings": probe_settings, "features": "codes h = f(x), no scaling",
                      "train": "the AE's training images", "metric": "test error rate"},
            "step_cost": f"median of {cost_steps} Adam steps after 2 warm-up steps, "
                         f"batch {args.batch_size}",
        },
        "rows": rows,
        "contractive_step_cost": cost,
        "total_time_s": time.perf_counter() - started,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }
    atomic_write_json(args.out, result)
    print(table(rows, cost))
    print(f"wrote {args.out} ({result['total_time_s']:.0f} s)", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
