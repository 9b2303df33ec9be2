"""Top-k sparse autoencoders (issue 23, part B) on 512-wide activations of an aekit model:
FVU vs k, dead latents with and without AuxK, and training throughput against a plain PyTorch
loop of the same model on the same data, all in one run.

Protocol.
* Activations: a DenseAE 784-512-32 (ReLU hidden layer, linear code, MSE, Adam 1e-3, batch
  256, 3 epochs, seed 0) is trained with ``aekit.fit`` on 54,000 MNIST training images
  (pixels / 255); the other 6,000 training images are the validation pool and the 10,000
  test images the test pool. The activations are its 512 ReLU hidden units on images shifted
  by a random (dx, dy) in [-2, 2]² (zero fill, seed 0): 10⁶ rows from the training pool
  (float32 .npy, 2 GB, streamed from disk by ``aekit.sae.ActivationSource``), 32,768 from the
  validation pool, 65,536 from the test pool. Generation is part of the script and cached under
  ``--cache`` (default /tmp/aekit_sae_bench).
* SAEs: ``aekit.TopKSAE`` with L = 4·512 and 16·512 latents, k ∈ {16, 32, 64}, with AuxK
  (Gao et al.'s normalised MSE of the residual, α = 1/32, k_aux = 256, dead after 65,536
  tokens without firing) and without (α = 0). Adam, batch 1024 (more steps per token than
  Gao et al.'s large batches: the budget here is tokens), ``b_pre`` = geometric median of
  4096 training rows, unit-norm atoms after every step (Gao et al. 2024). Initialisation
  "data" for every SAE: atoms (and the tied encoder rows) at centred, normalised training
  rows, then the encoder rescaled once by Gao et al.'s released rule (random unit inputs
  reconstruct at norm ~1). The random initialisation (aekit's default) is not in the grid:
  in the run of 54fbdf9 it left 11.8 / 17.0 / 32.2 % of the latents dead on the validation
  rows at factors 1 / 2 / 4 (4× k = 32, 256 steps; 6.7 % at factor ½ and 4× k = 16 in the
  investigation runs of docs/sae.md), against 0.00 / 0.49 / 71.3 % with the data
  initialisation, so under the rule below it could only be chosen where everything fails.
  Every SAE trains on the same ``--tokens`` rows (a seeded random subset of the 10⁶,
  streamed from the file; 2¹⁹ = 524,288 in the full run = 512 steps, one pass: Gao et al.
  train on billions of tokens, so the FVUs here are those of short runs, and the
  dead-latent window is scaled down with them). The number of latents idle for the window
  is recorded every 32 steps (``dead_in_window_every_32_steps``).
* Learning rate, chosen per (dictionary, k) on the 32,768 validation rows: Gao et al.'s rule
  lr = c · 2·10⁻⁴ / sqrt(L / 2¹⁴), c tried in the order 2, 1, ½ (``--factors``). Each
  candidate is the full AuxK SAE (all the training tokens, so the validation count sees the
  latents that die late in the run — the previous protocol selected after half the tokens,
  at 4× k = 32 only, and its 0.49 % dead on validation became 1.22 % on test after 512
  steps), scored on the validation rows; the first c that leaves < 1 % of the latents dead
  there is chosen and the lower factors are not trained (validation FVU fell with c in all
  six measured (init, c) cells of 54fbdf9, so on this grid this is the rule "best validation
  FVU among the candidates with < 1 % dead"); if no c does, the fewest dead. The chosen
  candidate is the final AuxK SAE; the SAE without AuxK is trained with the same (init, c).
  The test rows are used once per final SAE, at the end. Every candidate's validation FVU,
  dead fraction and firing histogram are in ``lr_selection``. The trade-off rows of the
  previous run (4× k = 32 at the best validation FVU alone and at the old default) are not
  repeated (they are in the result of 54fbdf9, quoted in docs/sae.md).
* Metrics on the 65,536 test rows: FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖², L0, the fraction of latents
  that never fire on them (dead, "over a token window" of 65,536 tokens) and the histogram
  of the latents' firing frequencies on them (``test_fire_hist``: never, then bins of the
  fraction of rows a latent fires on); also the training dead fraction (latents idle for the
  last 65,536 training tokens at the end). Baseline: PCA
  with k components fitted on the first 131,072 of the same training rows (dense codes,
  L0 = k).
* Throughput: ``aekit.sae.train_sae`` (through ``aekit.fit``) against a hand-written loop of
  the same model (same TopKSAE encode/decode, MSE + the same normalised AuxK, fused Adam,
  normalisation after each step, rows by a seeded permutation of an in-memory tensor), 4×
  and 16×, k = 32, batch 1024, dead window 4096 tokens (so AuxK is active), random
  initialisation, the lr factor chosen for (L, k = 32); measured after the SAEs above. The two are
  alternated step by step in one process: a callback runs one hand step after each aekit
  step, and each side's step is timed on the wall clock and on the process's CPU clock
  (aekit's from the end of the previous hand step, so it includes fetching the batch, the
  objective, the callbacks and the loop's bookkeeping). 3 warm-up steps, 24 timed steps per
  side, 5 repeats (fresh models); samples/s = 1024 / median step time; ratio = the median
  over the repeats of aekit / hand. aekit is measured on the in-memory matrix (same data as
  the loop) and streaming from the .npy file (the hand loop in memory in both).

Command: ``OMP_NUM_THREADS=1 python benchmarks/sae_topk.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from _common import md_table, write_results
from aekit import DenseAE, Objective, fit, load, load_mnist, save_model
from aekit.models.sae import SparseSelection, TopKSAE
from aekit.sae import ActivationSource, evaluate_sae, train_sae
from aekit.sae.train import default_learning_rate
from aekit.train.callbacks import Callback

D = 512


def shifted(X: np.ndarray, rng: np.random.Generator, n: int, max_shift: int = 2) -> np.ndarray:
    """``n`` images drawn from X (m, 784) with replacement, each shifted by a random
    (dx, dy) in [-s, s]² with zero fill: (n, 784)."""
    imgs = X.reshape(-1, 28, 28)
    idx = rng.integers(0, len(imgs), n)
    dx = rng.integers(-max_shift, max_shift + 1, n)
    dy = rng.integers(-max_shift, max_shift + 1, n)
    p = max_shift
    pad = np.zeros((n, 28 + 2 * p, 28 + 2 * p), np.float32)
    pad[:, p:p + 28, p:p + 28] = imgs[idx]
    out = np.empty((n, 28, 28), np.float32)
    for sx in range(-p, p + 1):
        for sy in range(-p, p + 1):
            sel = (dx == sx) & (dy == sy)
            out[sel] = pad[sel, p + sy:p + sy + 28, p + sx:p + sx + 28]
    return out.reshape(n, 784)


@torch.no_grad()
def write_activations(model: DenseAE, X: np.ndarray, n: int, path: Path, seed: int) -> None:
    """Hidden ReLU activations of ``model`` on ``n`` shifted images, to ``path`` (.npy),
    chunk by chunk (header first, then rows)."""
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (n, D)})
        for i in range(0, n, 16384):
            m = min(16384, n - i)
            x = torch.from_numpy(shifted(X, rng, m))
            h = torch.relu(model.enc[0](x))
            f.write(h.numpy().astype("<f4").tobytes())
    tmp.replace(path)


def prepare(cache: Path, n_train: int, n_val: int, n_test: int, quick: bool) -> dict:
    cache.mkdir(parents=True, exist_ok=True)
    meta_path = cache / "meta.json"
    want = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "version": 1, "quick": quick}
    paths = {k: cache / f"{k}.npy" for k in ("train", "val", "test")}
    if meta_path.exists() and json.loads(meta_path.read_text()) == want and \
            all(p.exists() for p in paths.values()):
        return {"paths": paths, "cached": True, "model_s": None, "gen_s": None}
    tr, te = load_mnist()
    perm = np.random.default_rng(0).permutation(len(tr.X))
    Xtr, Xval = tr.X[perm[:54000]], tr.X[perm[54000:]]
    mpath = cache / "act_model.safetensors"
    t0 = time.perf_counter()
    torch.manual_seed(0)
    ae = DenseAE([784, D, 32])
    # quick: one epoch on 10,000 images (smoke test of the pipeline only)
    fit(ae, Objective("mse"), Xtr[:10000] if quick else Xtr, max_iter=1 if quick else 3,
        batch_size=256, learning_rate=1e-3, random_state=0, progress=False)
    save_model(ae, mpath)
    model_s = time.perf_counter() - t0
    ae = load(mpath)
    t0 = time.perf_counter()
    write_activations(ae, Xtr, n_train, paths["train"], 1)
    write_activations(ae, Xval, n_val, paths["val"], 2)
    write_activations(ae, te.X, n_test, paths["test"], 3)
    meta_path.write_text(json.dumps(want))
    return {"paths": paths, "cached": False, "model_s": model_s,
            "gen_s": time.perf_counter() - t0}


def make_hand_step(X: torch.Tensor, L: int, k: int, lr: float, batch: int, alpha: float,
                   k_aux: int, dead_tokens: int):
    """One step of the plainest loop over the same TopKSAE: MSE + the same (normalised) AuxK,
    fused Adam, normalisation after the step, rows from a seeded permutation of X in memory."""
    torch.manual_seed(0)
    m = TopKSAE(D, L, k)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=lr, fused=True)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))

    def step(i):
        x = X.index_select(0, perm[(i * batch) % (len(X) - batch):][:batch])
        sel, vals, a = m.encode_sparse(x)
        r = m.decode_sparse(sel, vals)
        loss = (r - x).pow(2).sum(1).mean()
        dead = m.tokens_since_fired >= dead_tokens
        nd = int(dead.sum())
        if nd:
            idx = a.masked_fill(~dead, float("-inf")).topk(min(k_aux, nd), dim=1,
                                                          sorted=False).indices
            s2 = SparseSelection.from_topk(idx)
            e_hat = m.decode_sparse(s2, torch.relu(m.select(x, s2, a)), bias=False)
            e = (x - r).detach()
            with torch.no_grad():
                scale = (x - x.mean(0)).pow(2).sum(1).mean() / (e - e.mean(0)).pow(2).sum(1).mean()
            loss = loss + alpha * scale * (e - e_hat).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        m.normalize_decoder_()

    return step


def interleaved_rates(data, Xmem: torch.Tensor, L: int, k: int, lr: float, steps: int,
                      batch: int, alpha: float, k_aux: int, dead_tokens: int, warm: int = 3
                      ) -> dict:
    """aekit's ``train_sae`` step and the hand loop's step, alternated one for one inside the
    same run: after each aekit step (timed from the end of the previous one, so it includes
    fetching the batch, the objective and the callbacks) one hand step is run and timed.
    Returns the per-step wall and CPU (process) times of both sides after ``warm`` steps."""
    hand = make_hand_step(Xmem, L, k, lr, batch, alpha, k_aux, dead_tokens)

    class Alternate(Callback):
        def __init__(self):
            self.t = self.c = None
            self.ae_wall, self.ae_cpu, self.h_wall, self.h_cpu = [], [], [], []

        def on_batch_end(self, loop):
            t, c = time.perf_counter(), time.process_time()
            if self.t is not None and loop.step > warm:
                self.ae_wall.append(t - self.t)
                self.ae_cpu.append(c - self.c)
            hand(loop.step)
            t2, c2 = time.perf_counter(), time.process_time()
            if loop.step > warm:
                self.h_wall.append(t2 - t)
                self.h_cpu.append(c2 - c)
            self.t, self.c = time.perf_counter(), time.process_time()

    n = (warm + steps + 1) * batch
    rows = np.arange(n) if not isinstance(data, ActivationSource) else \
        np.random.default_rng(0).permutation(len(data))[:n]
    src = (data if isinstance(data, ActivationSource) else ActivationSource(data)).subset(rows)
    torch.manual_seed(0)
    m = TopKSAE(D, L, k)
    alt = Alternate()
    train_sae(m, src, auxk_alpha=alpha, k_aux=k_aux, dead_tokens=dead_tokens, max_iter=1,
              batch_size=batch, learning_rate=lr, b_pre_init="zeros", callbacks=[alt],
              progress=False, init_rows=1)
    return {"aekit_wall": alt.ae_wall, "aekit_cpu": alt.ae_cpu, "hand_wall": alt.h_wall,
            "hand_cpu": alt.h_cpu}


class DeadTrace(Callback):
    """The number of latents idle for ``window`` training tokens, every 32 steps."""

    def __init__(self, window: int):
        self.window, self.counts = int(window), []

    def on_batch_end(self, loop):
        if loop.step % 32 == 0:
            self.counts.append([loop.step, int(loop.model.dead_mask(self.window).sum())])


#: Initialisations compared on the validation rows (keyword arguments of ``train_sae``).
INITS = {"random": {"atom_init": "random", "encoder_scale": "none"},
         "data": {"atom_init": "data", "encoder_scale": "unit_inputs"}}

HIST_EDGES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def fire_hist(counts: np.ndarray, n: int) -> dict:
    """Latents per firing-frequency bin over a window of n rows: never, then
    [0, 1e-5), [1e-5, 1e-4), ... of the rows (as fractions), as a dict."""
    f = np.asarray(counts, dtype=np.float64) / n
    out = {"never": int((counts == 0).sum())}
    lo = 0.0
    for hi in (*HIST_EDGES, 1.01):
        out[f"[{lo:g},{hi:g})"] = int(((f > 0) & (f >= lo) & (f < hi)).sum())
        lo = hi
    return out


def pca_fvu(train_rows: np.ndarray, test: np.ndarray, k: int) -> float:
    mu = train_rows.mean(0, dtype=np.float64)
    C = np.cov((train_rows - mu).T.astype(np.float64), bias=True)
    _, V = np.linalg.eigh(C)
    P = V[:, ::-1][:, :k]
    T = test.astype(np.float64)
    R = (T - mu) @ P @ P.T + mu
    return float(((T - R) ** 2).sum() / ((T - T.mean(0)) ** 2).sum())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=None, help="training rows per config")
    ap.add_argument("--cache", default="/tmp/aekit_sae_bench")
    ap.add_argument("--name", default=None)
    ap.add_argument("--factors", type=float, nargs="+", default=[2.0, 1.0, 0.5],
                    help="lr factors tried per configuration, largest first")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    n_train, n_val, n_test = (2 ** 15, 4096, 8192) if q else (10 ** 6, 32768, 65536)
    T = args.tokens or (2 ** 14 if q else 2 ** 19)
    batch, k_aux, dead_tokens, alpha = 1024, 256, 2 ** 16, 1 / 32
    if q:
        dead_tokens = 2 ** 13
    factors = sorted(set(args.factors), reverse=True)
    if not factors or min(factors) <= 0:
        raise ValueError(f"--factors must be positive numbers, got {args.factors}")
    expansions = (4,) if q else (4, 16)
    ks = (16, 32) if q else (16, 32, 64)
    cache = Path(args.cache) / ("quick" if q else "full")
    t_all = time.perf_counter()
    prep = prepare(cache, n_train, n_val, n_test, q)
    paths = prep["paths"]
    src = ActivationSource(paths["train"])
    val = np.load(paths["val"])
    test = np.load(paths["test"])
    rows = np.sort(np.random.default_rng(0).permutation(len(src))[:T])
    print(f"activations ready ({'cached' if prep['cached'] else 'generated'}); "
          f"{len(src)} train rows, training on {T} per config", flush=True)

    # --- per (dictionary, k): lr factor chosen on validation, then test once ---------------
    # Candidates are trained with AuxK on the full token budget, largest factor first; the
    # first that leaves < 1 % of the latents dead on the validation rows is the choice (the
    # lower factors are then not trained: validation FVU fell with the factor in every
    # measured case, so on this grid this is the rule "best validation FVU among the < 1 %
    # dead"); if none does, the fewest dead. The chosen candidate is the final AuxK SAE.
    train_rows_mem = np.asarray(src.X[rows[: min(T, 2 ** 17)]])  # PCA fit sample
    pca = {k: pca_fvu(train_rows_mem, test, k) for k in ks}
    init = "data"
    sel, res, choice, thr = [], [], {}, []

    def train_one(e: int, k: int, c: float, a: float):
        L = e * D
        lr = c * default_learning_rate(L)
        torch.manual_seed(0)
        m = TopKSAE(D, L, k)
        trace = DeadTrace(dead_tokens)
        t0 = time.perf_counter()
        h = train_sae(m, src.subset(rows), auxk_alpha=a, k_aux=k_aux, dead_tokens=dead_tokens,
                      max_iter=1, batch_size=batch, learning_rate=lr, progress=False,
                      callbacks=[trace], **INITS[init])
        secs = time.perf_counter() - t0
        info = {"expansion": e, "n_latents": L, "k": k, "auxk_alpha": a, "init": init,
                "lr_factor": c, "learning_rate": lr, "tokens": T, "train_seconds": secs,
                "samples_per_s": T / secs,
                "train_dead_fraction": float(m.dead_mask(dead_tokens).float().mean()),
                "final_train_recon": h.records[-1]["train_recon"],
                "dead_in_window_every_32_steps": trace.counts}
        return m, info

    def test_row(m, info: dict, rule: str) -> dict:
        r = evaluate_sae(m, test)  # the test rows: once per final SAE
        row = dict(info, lr_rule=rule, test_fvu=r.fvu, test_l0=r.l0,
                   test_dead_fraction=r.dead_fraction,
                   test_fire_hist=fire_hist(r.fire_counts, r.n_tokens))
        res.append(row)
        print(json.dumps(row), flush=True)
        return row

    def publish(complete: bool) -> None:
        """Write the results so far (after every configuration, so a cut-short run keeps
        them)."""
        by = {(r["expansion"], r["k"], r["auxk_alpha"] > 0): r for r in res}
        fvu_rows = []
        for e in expansions:
            for k in ks:
                if (e, k, True) not in by or (e, k, False) not in by:
                    continue
                w, wo = by[(e, k, True)], by[(e, k, False)]
                v = next(s_ for s_ in sel if s_["expansion"] == e and s_["k"] == k
                         and s_["lr_factor"] == w["lr_factor"])
                fvu_rows.append([f"{e}× ({e * D})", k, f"{w['init']}, {w['lr_factor']:g}",
                                 f"{v['val_fvu']:.4f} / {100 * v['val_dead_fraction']:.2f} %",
                                 w["test_fvu"], wo["test_fvu"], pca[k],
                                 f"{100 * w['test_dead_fraction']:.2f} %",
                                 f"{100 * wo['test_dead_fraction']:.2f} %",
                                 f"{100 * w['train_dead_fraction']:.2f} %",
                                 f"{100 * wo['train_dead_fraction']:.2f} %",
                                 round(w["samples_per_s"])])
        md = (f"Test FVU and dead latents ({len(test):,} held-out rows; {T:,} training rows per "
              "SAE; lr = factor · 2e-4 / sqrt(L / 2^14); data atoms + Gao's encoder rescale; "
              "factor chosen per configuration on validation)\n\n"
              + md_table(["dictionary", "k", "init, lr factor", "val FVU / dead (AuxK)",
                          "FVU AuxK", "FVU no AuxK", "FVU PCA-k",
                          "dead AuxK (test)", "dead no AuxK (test)", "dead AuxK (train)",
                          "dead no AuxK (train)", "samples/s"], fvu_rows))
        md += ("\n\nCandidates on the validation rows (AuxK, full token budget, largest "
               "factor first, stop at the first < 1 % dead)\n\n"
               + md_table(["dictionary", "k", "lr factor", "val FVU", "val dead", "chosen"],
                          [[f"{s_['expansion']}×", s_["k"], f"{s_['lr_factor']:g}",
                            s_["val_fvu"], f"{100 * s_['val_dead_fraction']:.2f} %",
                            "yes" if choice.get((s_["expansion"], s_["k"])) ==
                            s_["lr_factor"] else ""] for s_ in sel]))
        md += ("\n\nTraining throughput, k = 32, batch 1024: samples/s from the median step "
               "time, aekit and the hand loop alternated step by step; ratio = median over the "
               "repeats of aekit / hand (wall clock; CPU time of the process in brackets)\n\n"
               + md_table(["dictionary", "hand loop", "aekit (memory)", "ratio",
                           "aekit (streamed .npy)", "ratio"],
                          [[f"{r['expansion']}×", round(r["hand_loop"]),
                            round(r["aekit_in_memory"]),
                            f"{r['ratio_in_memory_wall']:.3f} ({r['ratio_in_memory_cpu']:.3f})",
                            round(r["aekit_streamed"]),
                            f"{r['ratio_streamed_wall']:.3f} ({r['ratio_streamed_cpu']:.3f})"]
                           for r in thr]))
        name = args.name or ("sae_topk_quick" if q else "sae_topk")
        finals = [r for r in res if r["auxk_alpha"] > 0]
        write_results(name, {
            "protocol": __doc__,
            "settings": {"quick": q, "threads": args.threads, "n_train": n_train, "n_val": n_val,
                         "n_test": n_test, "tokens_per_config": T, "batch_size": batch,
                         "k_aux": k_aux, "auxk_alpha": alpha, "dead_tokens": dead_tokens,
                         "auxk_normalize": True,
                         "expansions": list(expansions), "ks": list(ks),
                         "lr_rule": "c * 2e-4 / sqrt(L / 2**14)",
                         "lr_factors_tried_in_order": list(factors),
                         "selection_rule": "per (dictionary, k): factors largest first, each "
                                           "trained with AuxK on all tokens; first with val "
                                           "dead < 1 % chosen, else fewest val dead",
                         "init": {init: INITS[init]},
                         "init_and_lr_factor": {f"{e}x_k{k}": [init, c]
                                                for (e, k), c in choice.items()},
                         "activation_model": "DenseAE 784-512-32 ReLU, 3 epochs on 54k MNIST",
                         "shifts": "uniform integer (dx, dy) in [-2, 2]^2"},
            "preparation": {"cached": prep["cached"], "model_seconds": prep["model_s"],
                            "generation_seconds": prep["gen_s"]},
            "lr_selection": sel, "rows": res, "pca_test_fvu": {str(k): v for k, v in pca.items()},
            "throughput": thr,
            "goals": {"dead_with_auxk_below_1pct": bool(finals) and all(
                r["test_dead_fraction"] < 0.01 for r in finals),
                      "throughput_ratio_at_least_0.95": bool(thr) and all(
                          r["ratio_in_memory"] >= 0.95 for r in thr)},
            "complete": complete, "total_seconds": time.perf_counter() - t_all}, md)

    for e in expansions:
        for k in ks:
            cands = []
            for c in factors:
                m, info = train_one(e, k, c, alpha)
                v = evaluate_sae(m, val)
                cand = dict(info, val_fvu=v.fvu, val_dead_fraction=v.dead_fraction,
                            val_fire_hist=fire_hist(v.fire_counts, v.n_tokens))
                sel.append(cand)
                cands.append((cand, m, info))
                print(json.dumps({kk: vv for kk, vv in cand.items()
                                  if kk not in ("dead_in_window_every_32_steps",)}), flush=True)
                if v.dead_fraction < 0.01:
                    break
            ok = [t for t in cands if t[0]["val_dead_fraction"] < 0.01]
            best = (min(ok, key=lambda t: t[0]["val_fvu"]) if ok
                    else min(cands, key=lambda t: t[0]["val_dead_fraction"]))
            choice[(e, k)] = best[0]["lr_factor"]
            rule = "dead<1% on val" if ok else "fewest dead on val (none < 1%)"
            test_row(best[1], best[2], rule)
            del cands
            m, info = train_one(e, k, choice[(e, k)], 0.0)
            test_row(m, info, rule)
            publish(False)

    # --- throughput vs the hand-written loop, alternated step by step ----------------------
    steps, reps = (4, 2) if q else (24, 5)
    Xmem = torch.from_numpy(np.asarray(src.X[0:(steps + 4) * batch * 2]))

    def med_rate(ts):
        return batch / statistics.median(ts)

    for e in expansions:
        L = e * D
        lr = choice.get((e, 32), 1.0) * default_learning_rate(L)
        reps_out = {"in_memory": [], "streamed": []}
        for _ in range(reps):
            for kind, data in (("in_memory", Xmem.numpy()), ("streamed", src)):
                reps_out[kind].append(interleaved_rates(data, Xmem, L, 32, lr, steps, batch,
                                                        alpha, k_aux, 2 ** 12))
        row = {"expansion": e, "n_latents": L, "k": 32, "batch": batch, "steps": steps,
               "repeats": reps, "lr_factor": choice.get((e, 32), 1.0)}
        for kind, runs in reps_out.items():
            for clock in ("wall", "cpu"):
                ratios = [med_rate(r[f"aekit_{clock}"]) / med_rate(r[f"hand_{clock}"])
                          for r in runs]
                row[f"ratio_{kind}_{clock}"] = statistics.median(ratios)
                row[f"ratios_{kind}_{clock}"] = ratios
                row[f"aekit_{kind}_{clock}"] = med_rate(
                    [t for r in runs for t in r[f"aekit_{clock}"]])
                row[f"hand_{kind}_{clock}"] = med_rate(
                    [t for r in runs for t in r[f"hand_{clock}"]])
        row["hand_loop"] = row["hand_in_memory_wall"]
        row["aekit_in_memory"] = row["aekit_in_memory_wall"]
        row["aekit_streamed"] = row["aekit_streamed_wall"]
        row["ratio_in_memory"] = row["ratio_in_memory_wall"]
        row["ratio_streamed"] = row["ratio_streamed_wall"]
        thr.append(row)
        print(json.dumps({k: v for k, v in row.items() if not k.startswith("ratios")}),
              flush=True)

    publish(True)


if __name__ == "__main__":
    main()
