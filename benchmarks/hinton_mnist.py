"""Hinton & Salakhutdinov (2006) on MNIST: the 784-1000-500-250-30 autoencoder vs PCA-30.

Test error in the paper's unit: Σ over the 784 pixels in [0, 1] of the squared error, averaged
over the 10,000 test images (the paper reports 3.00 for its RBM-pretrained autoencoder, 8.01 for
logistic PCA and 13.87 for PCA with 30 components).

Protocols. **Default mode**: one run per variant on the standard 60,000/10,000 split,
pixels / 255, the test error after every epoch recorded for the error-vs-time plot and the
headline the error after the last epoch. A single run selects nothing, but the settings of
the earlier published rows (weight decay, epoch count, variant) were chosen across runs by
their test errors, so those rows are not an honest protocol. **``--select V1 V2 ...``**: the
validation protocol (see ``select_and_test``): candidates trained on 55,000 training images
and scored on the other 5,000, the winner retrained on 60,000, the test set touched once.
Every deep AE: sigmoid output, cross-entropy loss,
batch 128, lr 1e-3 with cosine decay over ``--epochs``, seed 0, hidden activation
``--activation`` (ELU) and a linear 30-D code. Variants:

* ``pca30``: the closed-form optimal linear AE (``aekit.models.linear.pca_solution``).
* ``adam``: random init, Adam.
* ``adam+pretrain``: greedy layer-wise pretraining (each layer a shallow AE trained for
  ``--pretrain-epochs`` epochs with Adam on the codes below), stacked, then the same
  fine-tuning as ``adam``.
* ``bn_adamw`` / ``bn_adamw+pretrain``: batch norm after every hidden layer and AdamW with
  decoupled weight decay 1e-4 (the stacked BN layers start as the identity on the data).
* ``rbm`` (with ``--rbm``): the paper's recipe in short: logistic hidden units, RBMs trained by
  CD-1 (SGD lr 0.1, momentum 0.9, weight cost 2e-4, batch 100; the linear top RBM lr 1e-3),
  unrolled with transposed decoder weights, fine-tuned with Adam (the paper used conjugate
  gradients).

``--minutes`` caps each variant's training time (pretraining included); a variant that hits it
stops at the end of that epoch, and its row says so.

    python benchmarks/hinton_mnist.py --quick            # 3,000 train / 2,000 test images
    python benchmarks/hinton_mnist.py --minutes 30       # full; add --rbm for the RBM recipe
    python benchmarks/hinton_mnist.py --dataset fashion-mnist --name hinton_fashion
    python benchmarks/hinton_mnist.py --select adam+pretrain+wd0.05 bn_adamw+wd0.05 --minutes 30
    python benchmarks/hinton_mnist.py --select A B --pieces runs/hs --shard 0/2   # core 1
    python benchmarks/hinton_mnist.py --select A B --pieces runs/hs --shard 1/2   # core 2
    python benchmarks/hinton_mnist.py --select A B --pieces runs/hs   # anything missing, table

With ``--pieces DIR`` every candidate and the final run are stored as they finish and reused
by a later run of the same settings and code (``_common.Pieces``), so ``--shard I/N`` trains
the candidates in parallel processes. Jobs are numbered candidates first, then the final run
(job ``len(select)``); the shard that owns the final run trains it, and writes the results,
as soon as it finds every candidate stored; a run without ``--shard`` does whatever is
missing. (Start the assembling run only after the shards have ended, or two processes train
the same final network.)

``--dataset fashion-mnist`` runs the same protocol on Fashion-MNIST (``apt-get install -y
dataset-fashion-mnist``; files under /usr/share/datasets/fashion-mnist); the paper numbers then
do not apply and the table compares with PCA-30 only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Pieces,
    add_dataset_args,
    add_pieces_args,
    check_pieces_args,
    md_table,
    write_results,
)
from aekit import DenseAE, fit, make_objective
from aekit.data import load_dataset
from aekit.data.augment import RandomAffine, RandomShift
from aekit.models.linear import pca_solution
from aekit.runs import reconstruction_errors
from aekit.train.callbacks import Callback
from aekit.train.pretrain import pretrain_layers, stack_into_deep_ae

SIZES = [784, 1000, 500, 250, 30]
VARIANTS = ("adam", "adam+pretrain", "bn_adamw", "bn_adamw+pretrain", "rbm")  # defaults


def pca_row(name: str, Xtr: np.ndarray, Xte: np.ndarray, k: int = 30) -> dict:
    pca_solution(Xtr[:2000], k)  # warm-up: BLAS/LAPACK initialisation is not PCA's cost
    t0 = time.perf_counter()
    sol = pca_solution(Xtr, k)
    t = time.perf_counter() - t0
    R = (Xte - sol.mean) @ sol.components @ sol.components.T + sol.mean  # (n, 784)
    err = float(((Xte - R) ** 2).sum(1).mean())
    return {"method": name, "test_error": err, "train_time_s": t, "n_train": len(Xtr),
            "n_test": len(Xte), "epochs": 0, "pretrain_time_s": 0.0, "curve": [],
            "stopped_by_budget": False}


class Tracker(Callback):
    """Callback: the error on an evaluation set (``label``: "test" or "val") after every
    epoch, train time excluding these evaluations, and the time budget. With ``Xeval=None``
    nothing is evaluated (the protocol's final run touches the test set once, at the end).
    With a weight average (``ema<d>``) the averaged weights are evaluated, as fit's own
    validation does."""

    key = "tracker"

    def on_epoch_end(self, loop, record):
        avg = loop.weight_average
        with avg.swapped() if avg is not None else contextlib.nullcontext():
            return self(loop.epoch + 1, record, loop.model)

    def __init__(self, Xeval: np.ndarray | None, budget_s: float, t_start: float,
                 label: str = "test"):
        self.Xeval, self.budget_s, self.t_start, self.label = Xeval, budget_s, t_start, label
        self.eval_s, self.curve, self.hit_budget = 0.0, [], False

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start - self.eval_s

    def deadline(self, epoch, record, model) -> bool:  # for pretraining: budget only
        self.hit_budget = self.hit_budget or self.elapsed() > self.budget_s
        return self.hit_budget

    def __call__(self, epoch, record, model) -> bool:
        train_s = self.elapsed()
        point = {"epoch": epoch, "train_time_s": round(train_s, 2),
                 "train_loss": record["train_loss"]}
        if self.Xeval is not None:
            t0 = time.perf_counter()
            err = float(reconstruction_errors(model, self.Xeval).mean())
            model.train()
            self.eval_s += time.perf_counter() - t0
            point[f"{self.label}_error"] = round(err, 4)
            print(f"    epoch {epoch:3d}  {train_s:8.1f} s  {self.label} error {err:.3f}",
                  flush=True)
        else:
            print(f"    epoch {epoch:3d}  {train_s:8.1f} s", flush=True)
        self.curve.append(point)
        return self.deadline(epoch, record, model)


def parse_variant(name: str) -> dict:
    """``base[+modifier...]``: base ``adam`` | ``bn_adamw`` | ``rbm``; modifiers ``pretrain``,
    ``shift`` (±1 px translations), ``affine`` (small random affine warps), ``wd<x>`` (weight
    decay), ``drop<x>`` (dropout after hidden layers), ``gelu``/``elu``/``relu`` (activation),
    ``bs<n>`` (batch size), ``lr<x>``, ``ep<n>`` (fine-tuning epochs, the cosine schedule's
    length; default ``--epochs``), ``ema<d>`` (exponential moving average of the weights with
    decay d during fine-tuning, ``fit(weight_average=d)``: the average is evaluated and
    returned), ``bf16`` (fine-tuning under bf16 autocast, ``fit(precision="bf16")``: the
    matmuls in bfloat16, the loss in float32; fast only on CPUs with native bf16, e.g. AMX,
    and refused with a warning elsewhere)."""
    base, *mods = name.split("+")
    if base not in ("adam", "bn_adamw", "rbm"):
        raise SystemExit(f"unknown variant base {base!r} in {name!r}")
    spec = {"pretrain": base == "rbm", "bn": base == "bn_adamw",
            "optimizer": "adamw" if base == "bn_adamw" else "adam",
            "weight_decay": 1e-4 if base == "bn_adamw" else 0.0, "augment": None,
            "dropout": 0.0, "activation": None, "batch_size": 128, "lr": 1e-3,
            "rbm": base == "rbm", "epochs": None, "ema": None, "precision": "fp32"}
    for m in mods:
        if m == "pretrain":
            spec["pretrain"] = True
        elif m in ("shift", "affine"):
            spec["augment"] = m
        elif m in ("gelu", "elu", "relu", "sigmoid"):
            spec["activation"] = m
        elif m.startswith("wd"):
            spec["weight_decay"] = float(m[2:])
            spec["optimizer"] = "adamw"
        elif m.startswith("drop"):
            spec["dropout"] = float(m[4:])
        elif m.startswith("bs"):
            spec["batch_size"] = int(m[2:])
        elif m.startswith("lr"):
            spec["lr"] = float(m[2:])
        elif m.startswith("ema"):
            spec["ema"] = float(m[3:])
        elif m == "bf16":
            spec["precision"] = "bf16"
        elif m.startswith("ep"):
            spec["epochs"] = int(m[2:])
        else:
            raise SystemExit(f"unknown variant modifier {m!r} in {name!r}")
    return spec


def deep_row(name: str, Xtr: np.ndarray, Xeval: np.ndarray | None, a: argparse.Namespace,
             label: str = "test") -> dict:
    """Train variant ``name`` on Xtr; track the ``label`` error on Xeval after every epoch
    (none when Xeval is None); the row reports that set's error after the last epoch."""
    spec = parse_variant(name)
    pretrain, bn = spec["pretrain"], spec["bn"]
    if pretrain and spec["dropout"]:  # checked before any training is spent
        raise SystemExit(f"{name}: dropout with pretraining is not supported by this script")
    act = spec["activation"] or ("sigmoid" if spec["rbm"] else a.activation)
    epochs = spec["epochs"] or a.epochs
    print(f"== {name}  {spec}", flush=True)
    augment = {None: None, "shift": RandomShift((28, 28), 1),
               "affine": RandomAffine((28, 28))}[spec["augment"]]
    tr = Tracker(Xeval, a.minutes * 60, time.perf_counter(), label)
    t_pre = 0.0
    if pretrain:
        layer_kwargs = {"kind": "rbm"} if spec["rbm"] else None
        pre = pretrain_layers(SIZES, Xtr, activation=act, code_activation="linear",
                              output="sigmoid", layer_kwargs=layer_kwargs,
                              max_iter=a.pretrain_epochs, batch_size=128, learning_rate=1e-3,
                              random_state=0,
                              callbacks=[tr.deadline])
        t_pre = tr.elapsed()
        print(f"    pretraining {t_pre:.1f} s", flush=True)
        model = stack_into_deep_ae(pre.layers, decoder="transpose" if spec["rbm"] else
                                   "shallow", batch_norm=bn, X=Xtr if bn else None)
        if Xeval is not None:
            tr.curve.append({"epoch": 0, "train_time_s": round(t_pre, 2), f"{label}_error":
                             round(float(reconstruction_errors(model, Xeval).mean()), 4),
                             "train_loss": None})
    else:
        torch.manual_seed(0)
        model = DenseAE(SIZES, activation=act, output="sigmoid", batch_norm=bn,
                        dropout=spec["dropout"])
    hist = fit(model, make_objective("bce"), Xtr, max_iter=epochs,
               batch_size=spec["batch_size"], optimizer=spec["optimizer"], learning_rate=spec["lr"],
               optimizer_weight_decay=spec["weight_decay"], schedule="cosine", random_state=0,
               augment=augment, callbacks=[tr], weight_average=spec["ema"],
               precision=spec["precision"])
    row = {"method": name, "spec": spec, "train_time_s": tr.elapsed(),
           "pretrain_time_s": t_pre, "epochs": len(hist), "n_train": len(Xtr),
           "curve": tr.curve, "stopped_by_budget": tr.hit_budget,
           "train_error_10k": float(reconstruction_errors(model, Xtr[:10000]).mean())}
    if Xeval is not None:
        row[f"{label}_error"] = float(reconstruction_errors(model, Xeval).mean())
        row[f"n_{label}"] = len(Xeval)
        row[f"best_curve_{label}_error"] = min(c[f"{label}_error"] for c in tr.curve)
    row["model"] = model
    return row


def select_and_test(a: argparse.Namespace, Xtr: np.ndarray, Xte: np.ndarray) -> None:
    """The validation protocol: every candidate in ``--select`` trains on the first 55,000
    training images (scaled with ``--quick``) under the same ``--minutes`` budget and is scored
    on the last 5,000 after its last epoch; the lowest validation error wins; the winner is
    retrained on all 60,000 with the same settings and budget, and the test set is touched
    once, after its last epoch."""
    n_val = len(Xtr) // 12  # 5,000 of 60,000
    Xfit, Xval = Xtr[:-n_val], Xtr[-n_val:]
    pieces = Pieces(a, __file__)

    def candidate(c: str) -> dict:
        r = deep_row(c, Xfit, Xval, a, label="val")
        r.pop("model")
        return r

    def final_run(c: str) -> dict:
        r = deep_row(c, Xtr, None, a)
        model = r.pop("model")
        r["test_error"] = float(reconstruction_errors(model, Xte).mean())  # the one touch
        r["n_test"] = len(Xte)
        return r

    selection = [pieces.run("select", c, "ae", 0, lambda c=c: candidate(c)) for c in a.select]
    if pieces.pending:
        print(f"--shard {a.shard}: candidates still to train elsewhere: "
              f"{', '.join(pieces.pending)}; run again (without --shard) once they are in "
              "--pieces", flush=True)
        return
    pca_val = pca_row("pca30", Xfit, Xval)
    chosen = min(selection, key=lambda r: r["val_error"])["method"]
    print(f"== chosen on validation: {chosen}; retraining on all {len(Xtr)} images", flush=True)
    final = pieces.run("final", chosen, "ae", 0, lambda: final_run(chosen))
    if final is None:
        print(f"--shard {a.shard}: the final run is another shard's job", flush=True)
        return
    pieces.refuse_dirty(a.quick)
    pca = pca_row("pca30", Xtr, Xte)
    rows_md = [[r["method"], round(r["val_error"], 3), round(r["val_error"] /
                                                             pca_val["test_error"], 3),
                r["epochs"], round(r["train_time_s"], 1), round(r["train_error_10k"], 3),
                "chosen" if r["method"] == chosen else ""] for r in selection]
    md = md_table(["candidate (55k train / 5k val)", "val error", "÷ PCA-30 (val)", "epochs",
                   "train time (s)", "train error (10k)", ""], rows_md)
    md += ("\n\n" + md_table(
        ["final (60k train, test touched once)", "test error", "÷ PCA-30", "epochs",
         "train time (s)", "train error (10k)"],
        [[final["method"], round(final["test_error"], 3),
          round(final["test_error"] / pca["test_error"], 3), final["epochs"],
          round(final["train_time_s"], 1) if final["train_time_s"] >= 10 else
          round(final["train_time_s"], 2), round(final["train_error_10k"], 3)],
         ["pca30", round(pca["test_error"], 3), 1.0, 0, round(pca["train_time_s"], 2), "—"]]))
    md += (f"\n\nSelection: {len(selection)} candidates, each with a {a.minutes:g}-minute "
           "training budget on 55,000 images, scored on the 5,000 held-out training images "
           "after the last epoch; the winner retrained on 60,000 under the same budget; test "
           "error Σ over 784 pixels of squared error, mean over test images (Hinton & "
           "Salakhutdinov 2006: AE 3.00, PCA-30 13.87).")
    if a.quick:
        md += " Quick mode: a smoke test, not a result."
    write_results(a.name or ("hinton_mnist_selected" + ("_quick" if a.quick else "")),
                  {"settings": vars(a), "sizes": SIZES, "dataset": a.dataset,
                   "selection": selection, "chosen": chosen, "pca_val": pca_val,
                   "final": final, "pca": pca, "pieces": pieces.used or None,
                   "code_changed": pieces.code_changed, "code": pieces.signature["code"],
                   "settings_defaulted": pieces.defaulted or None,
                   "unit": "sum over 784 pixels of squared error, mean over images",
                   "protocol": f"{a.dataset}: candidates trained on the first 55k training "
                               "images, scored on the last 5k after their last epoch "
                               "(same time budget each); the lowest validation error chosen; "
                               "retrained on all 60k with the same settings and budget; the "
                               "test set touched once, after the final run's last epoch"},
                  md)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(p)
    p.add_argument("--quick", action="store_true",
                   help="3,000 training and 2,000 test images, 2 epochs, 1 pretraining epoch")
    p.add_argument("--epochs", type=int, default=50, help="fine-tuning epochs")
    p.add_argument("--pretrain-epochs", type=int, default=5, help="epochs per pretrained layer")
    p.add_argument("--minutes", type=float, default=30.0,
                   help="training-time budget per variant (pretraining included)")
    p.add_argument("--activation", default="elu", help="hidden activation of the AE variants")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS[:4]),
                   help="variant names, see parse_variant (e.g. bn_adamw+affine+wd0.01)")
    p.add_argument("--rbm", action="store_true", help="also run the RBM-pretrained recipe")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--name", default=None, help="results file stem (default hinton_mnist)")
    p.add_argument("--select", nargs="+", default=None, metavar="VARIANT",
                   help="the validation protocol (see select_and_test): choose among these "
                        "variants on a 55k/5k split of the training set, retrain the winner "
                        "on 60k, touch the test set once; results default to "
                        "hinton_mnist_selected.json")
    add_pieces_args(p)
    a = p.parse_args()
    check_pieces_args(p, a)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.rbm and "rbm" not in a.variants:
        a.variants.append("rbm")
    train, test = load_dataset(a.dataset, data_path=a.data)
    Xtr_full, Xte_full = train.X, test.X
    Xtr, Xte = Xtr_full, Xte_full
    if a.quick:
        Xtr, Xte = Xtr_full[:3000], Xte_full[:2000]
        a.epochs, a.pretrain_epochs = 2, 1

    if a.select:
        select_and_test(a, Xtr, Xte)
        return
    rows = [pca_row("pca30", Xtr, Xte)]
    if a.quick:  # the paper's number needs the full data; PCA is cheap enough to check it
        rows.append(pca_row("pca30 (60k train, 10k test)", Xtr_full, Xte_full))
    for v in a.variants:
        r = deep_row(v, Xtr, Xte, a)
        r.pop("model")
        r["best_curve_error"] = r.pop("best_curve_test_error")
        rows.append(r)

    base = rows[0]["test_error"]
    for r in rows:
        r["over_pca30"] = r["test_error"] / base if r["n_test"] == rows[0]["n_test"] else None
    md = md_table(
        ["method", "test error", "÷ PCA-30", "epochs", "pretrain (s)", "train time (s)",
         "n train / test"],
        [[r["method"], round(r["test_error"], 3),
          "—" if r["over_pca30"] is None else round(r["over_pca30"], 3), r["epochs"],
          round(r["pretrain_time_s"], 1), round(r["train_time_s"], 2)
          if r["train_time_s"] < 10 else round(r["train_time_s"], 1),
          f"{r['n_train']} / {r['n_test']}" + (" (budget hit)" if r["stopped_by_budget"]
                                               else "")] for r in rows])
    md += ("\n\nTest error: Σ over 784 pixels of squared error, mean over test images "
           + ("(Hinton & Salakhutdinov 2006: AE 3.00, PCA-30 13.87)" if a.dataset == "mnist"
              else f"on {a.dataset} (no published number in this unit; compare with PCA-30)")
           + ". Train time excludes the per-epoch test evaluations.")
    if a.quick:
        md += " Quick mode: a smoke test, not a result."
    write_results(a.name or ("hinton_mnist" + ("_quick" if a.quick else "")),
                  {"settings": vars(a), "sizes": SIZES, "rows": rows,
                   "unit": "sum over 784 pixels of squared error, mean over test images",
                   "dataset": a.dataset,
                   "protocol": f"{a.dataset} 60k/10k, pixels/255, bce fine-tuning, batch 128, "
                               "lr 1e-3 cosine, seed 0; one run per variant, test error "
                               "recorded every epoch; no selection inside this run, but the "
                               "variant and its settings may come from earlier runs' test "
                               "errors (use --select for the validation protocol)"},
                  md)


if __name__ == "__main__":
    main()
