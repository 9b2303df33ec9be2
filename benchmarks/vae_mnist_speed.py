"""Training-step throughput of the VAE / IWAE objectives (issue 23): the fused Bernoulli
log-likelihood and the concatenation-free IWAE log weights against the previous composed
formula, and optionally bf16 autocast, all in the same run on the same batches.

Protocol. Model 784-200-200-50, tanh, Bernoulli decoder (Burda et al. 2016, section 5), batch
100 of dynamically binarised MNIST training images, Adam (lr 1e-3, ε 1e-4), one thread. A
step is what ``aekit.fit`` does per batch: ``objective(model, batch)``, backward, Adam step
(under ``torch.autocast("cpu", bfloat16)`` for the bf16 rows, as ``fit(precision="bf16")``).
``before`` is the previous implementation, kept here verbatim as the reference:
``log p(x|z) = Σ (x·s − softplus(s))`` composed by autograd, and the IWAE log weights
computed on ``torch.cat`` of the first sample's logits with the k − 1 others (a (k, n, 784)
copy). ``after`` is the library (:func:`aekit.models.vae.bernoulli_log_prob`,
:func:`aekit.objectives.iwae_log_weights`); ``after_compiled`` the library with
``model.compile_likelihood = True`` (:func:`aekit.models.vae.compiled_bernoulli_log_prob`,
compiled during the warm-up, which is not timed). Variants are interleaved in ``--rounds`` rounds
of ``--steps`` steps each (after a warm-up) and the median steps per CPU second of the
process (``time.process_time``; one torch thread, so steps per second of one core) is
reported: CPU time rather than wall-clock, and interleaving, so that load from other processes
sharing the cores affects every variant alike.

Command: ``OMP_NUM_THREADS=1 python benchmarks/vae_mnist_speed.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

from _common import md_table, write_results
from aekit.data import load_mnist
from aekit.data.batch import Batch
from aekit.models import VAE
from aekit.objectives import IWAEBound, Objective, variational_objective
from aekit.objectives.variational import log_mean_exp, log_normal
from aekit.variational import dynamic_binarization


class OldVAE(VAE):
    """The previous ``log_px``: composed ``Σ (x s − softplus(s))``."""

    def log_px(self, x, logits):
        x = x.reshape(x.shape[0], -1)
        return (x * logits - F.softplus(logits)).sum(-1)


class OldIWAE(IWAEBound):
    """The previous IWAE log weights: (k, n, d) logits concatenated, then ``log_px``."""

    def forward(self, model, batch, out):
        x = batch.target
        mu, log_var = out.preactivations[:2]
        z1 = out.preactivations[2].unsqueeze(0)
        z = model.reparameterize(mu, log_var, self.k - 1)
        zz = torch.cat([z1, z])
        lg = torch.cat([out.logits.reshape(1, x.shape[0], -1), model.decode_logits(z)])
        log_w = model.log_px(x, lg) + log_normal(zz) - log_normal(zz, mu, log_var)
        return -log_mean_exp(log_w, 0).mean()


def make(k, old, compiled=False):
    torch.manual_seed(0)
    model = (OldVAE if old else VAE)([784, 200, 200, 50], activation="tanh")
    model.compile_likelihood = compiled
    if k == 1:
        obj = variational_objective(model)
    else:
        obj = Objective(None, [OldIWAE(k)]) if old else variational_objective(model,
                                                                              iw_samples=k)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)
    return model, obj, opt


def run_steps(model, obj, opt, batches, bf16):
    t0 = time.process_time()
    for x in batches:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            total, _ = obj(model, Batch(x))
        total.backward()
        opt.step()
    return len(batches) / (time.process_time() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="steps per round (default 40)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast rows")
    ap.add_argument("--name", default=None,
                    help="results name (default vae_mnist_speed, quick: vae_mnist_speed_quick)")
    ap.add_argument("--no-compile", action="store_true",
                    help="skip the rows with the torch.compile-fused likelihood")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    steps = args.steps or (10 if q else 40)
    rounds = args.rounds or (2 if q else 5)
    path = os.environ.get("AEKIT_DATA")
    train_ds, _ = load_mnist(None if path is None else os.path.join(path, "mnist.npz"))
    X = torch.from_numpy(np.asarray(train_ds.X[:30_000], dtype=np.float32))  # >= 120 batches
    g = torch.Generator().manual_seed(0)
    bf16_ok = not args.no_bf16 and torch.backends.mkldnn.is_available() and \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    variants = [(old, bf, False) for bf in ((False, True) if bf16_ok else (False,))
                for old in (True, False)]
    if not args.no_compile:  # the library with model.compile_likelihood, fp32 and bf16
        variants += [(False, bf, True) for bf in ((False, True) if bf16_ok else (False,))]
    results, rows = {}, []
    for name, k in (("vae", 1), ("iwae5", 5), ("iwae50", 50)):
        n_steps = max(4, steps // 4) if k == 50 else (steps if k == 5 else steps * 3)
        batches = [dynamic_binarization(X[i * 100:(i + 1) * 100], g) for i in range(n_steps)]
        runs = {v: make(k, v[0], v[2]) for v in variants}
        for v in variants:  # warm-up (and, for the compiled rows, the compilation)
            run_steps(*runs[v], batches[:3], v[1])
        rates = {v: [] for v in variants}
        for _ in range(rounds):
            for v in variants:
                rates[v].append(run_steps(*runs[v], batches, v[1]))
        res = {}
        for (old, bf, comp), r in rates.items():
            key = ("before" if old else "after") + ("_bf16" if bf else "") + \
                ("_compiled" if comp else "")
            res[key] = {"steps_per_s": statistics.median(r), "rounds": r}
        base = res["before"]["steps_per_s"]
        for key, r in res.items():
            r["speedup_vs_before"] = r["steps_per_s"] / base
            rows.append([name, key, round(r["steps_per_s"], 1), round(r["speedup_vs_before"], 2)])
        results[name] = {"k": k, "steps_per_round": n_steps, **res}
        print(name, {kk: round(v["steps_per_s"], 1) for kk, v in res.items()}, flush=True)
    md = md_table(["model", "variant", "steps/s (median)", "× before (fp32)"], rows)
    write_results(args.name or ("vae_mnist_speed_quick" if q else "vae_mnist_speed"), {
        "protocol": __doc__,
        "settings": {"quick": q, "steps": steps, "rounds": rounds, "threads": args.threads,
                     "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "batch_size": 100,
                     "bf16_supported": bf16_ok, "argv": sys.argv},
        "runs": results}, md)


if __name__ == "__main__":
    main()
