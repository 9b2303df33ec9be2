"""MNIST classification: does autoencoder pretraining help a permutation-invariant MLP or a CNN?

Question: with one architecture (784-1000-1000-1000-10) and one modern fine-tuning recipe, what
test error do random initialisation (``mlp``) and greedy layer-wise pretraining with stacked
plain (``sae``), denoising (``sdae``) and contractive (``scae``) autoencoders reach, next to the
published numbers (Vincent et al. 2010; Rifai et al. 2011; Hinton & Salakhutdinov 2006)?

Protocols. **Default mode**: the standard 60,000/10,000 split, pixels / 255, no image
transforms (the task stays permutation invariant), seed ``--seed``; one run per variant, the
headline the test error after the last fine-tuning epoch, the per-epoch test error recorded
for the error-vs-time plot. A single run selects nothing, but the recipes of the earlier
published rows (FGSM → VAT, ε, dropout) evolved across runs after seeing their test errors,
so those rows are not an honest protocol. ``--val`` trains on the first 55,000 images and
also reports the error on the last 5,000. **``--select RECIPE ...``**: the validation
protocol (see ``select_and_test``): recipes chosen on the 55k/5k split, the winner retrained
on 60,000 for two seeds, the test set touched once per final network. The protocol is
many hours of one core; ``--pieces DIR`` stores every network as it finishes (resume after a
kill, job by job) and ``--shard I/N`` splits the jobs over processes or sessions (see
:class:`Pieces`; pieces of other settings or code are refused, never mixed).

* Pretraining (``sae``/``sdae``/``scae``): :func:`aekit.train.pretrain.pretrain_layers`, each
  layer a shallow AE with ``--activation`` (sigmoid) hidden units trained on the codes of the
  layer below for ``--pretrain-epochs`` epochs, Adam lr 1e-3, batch 128, cross-entropy
  reconstruction (every layer's input lies in [0, 1]). ``sae``: plain AEs. ``sdae``: masking
  noise ν = 25 % on every layer's input (Vincent et al. 2010). ``scae``: contractive penalty
  λ ‖J_f(x)‖²_F, λ = ``--cae-lambda`` (0.1), closed form (Rifai et al. 2011). The layers are
  stacked with :func:`stack_into_deep_ae`; the decoder is dropped.
* Fine-tuning (every variant, :func:`aekit.fit` with the library's classification objective
  :func:`aekit.classifier.classifier_objective`): the encoder's linear layers
  with the same activation, dropout ``--input-dropout`` (0.2) on the pixels and ``--dropout``
  (0.5) after every hidden layer, a linear softmax layer with 10 outputs, cross-entropy, Adam
  lr ``--lr`` (1e-3) with cosine decay to 0 over ``--epochs`` (100), batch 128. ``mlp`` starts
  from aekit's Glorot initialisation instead of pretrained weights.

``--arch conv`` asks the same question of a convolutional network, which is *not*
permutation invariant (it uses the pixel grid), so its rows are a separate table and never
compared with the permutation-invariant published rows: the :class:`aekit.ConvAE` encoder
(5×5 convolutions with stride 2, 32 and 64 channels, 28 → 14 → 7, then a fully connected
layer of 256 units; :data:`CONV`) and a softmax layer (:class:`aekit.classifier.
EncoderClassifier`, dropout ``--dropout`` on the 256 units and ``--input-dropout`` on the
pixels). ``cnn`` starts from aekit's seeded initialisation; ``cdae`` from the same weights
pretrained as a whole denoising ConvAE (masking ν on the pixels, cross-entropy
reconstruction, ``--pretrain-epochs``; the convolutional pretraining of Masci et al. 2011,
trained end to end rather than layer by layer). ``--shift S`` (or the recipe key
``shift=S``) trains on images translated by up to S pixels (:class:`aekit.data.augment.
RandomShift`), allowed only for this architecture.

``--adversarial EPS`` adds adversarial training to the fine-tuning (every variant alike): the
loss is ½ J(x) + ½ J(x + EPS·sign ∇ₓJ(x)), the fast-gradient-sign perturbation of Goodfellow et
al. 2015, clipped to [0, 1]; it treats the input as a vector, so the task stays permutation
invariant. ``--vat EPS`` instead adds the virtual adversarial penalty of Miyato et al. 2019,
KL(p(·|x) ‖ p(·|x + r)) with ‖r‖₂ = EPS along the direction found by one power iteration
(:class:`aekit.objectives.VAT`; dropout masks are shared by the passes of one step).
``--precision bf16`` runs the fine-tuning matmuls under bf16 autocast (only where
the CPU has native bf16).

``--minutes`` caps each variant's training time (pretraining included); a variant that hits it
stops at the end of that epoch, and its row says so. Train times exclude the per-epoch
evaluations.

    python benchmarks/mnist_classification.py --quick --threads 1   # 3,000 / 1,000 images
    python benchmarks/mnist_classification.py --threads 2           # full, all four variants
    python benchmarks/mnist_classification.py --variants mlp sdae --activation relu \\
        --name mnist_classification_relu
    python benchmarks/mnist_classification.py --threads 1 --variants sdae --activation relu \
        --vat 2.0 --dropout 0 --input-dropout 0 --precision bf16 --name mnist_classification_vat
    python benchmarks/mnist_classification.py --variants mlp sdae --activation relu \
        --select "vat=2.0,dropout=0,input_dropout=0" "adversarial=0.25" --seeds 0 1
    # the same protocol over two cores (or two sessions), then assembled:
    python benchmarks/mnist_classification.py ... --pieces runs/cls --shard 0/2   # core 1
    python benchmarks/mnist_classification.py ... --pieces runs/cls --shard 1/2   # core 2
    python benchmarks/mnist_classification.py ... --pieces runs/cls  # trains what is left

    # the convolutional network under the validation protocol (two shards, then assembled):
    python benchmarks/mnist_classification.py --arch conv --activation relu --precision bf16 \
        --epochs 30 --select "dropout=0.5,input_dropout=0" "shift=2,dropout=0.5,input_dropout=0" \
        --pieces runs/conv --shard 0/2 --name mnist_classification_conv_protocol

``--dataset fashion-mnist`` runs the same protocol on Fashion-MNIST (``apt-get install -y
dataset-fashion-mnist``); the published MNIST rows are then left out of the table.

Writes ``benchmarks/results/<--name>.json`` (default ``mnist_classification``, ``_quick`` in
quick mode) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Pieces,
    add_dataset_args,
    add_pieces_args,
    check_pieces_args,
    md_table,
    write_results,
)
from aekit import ConvAE, DenseAE, fit
from aekit.classifier import EncoderClassifier, classifier_objective
from aekit.corruption import Masking
from aekit.data import load_dataset
from aekit.data.augment import RandomShift
from aekit.layers import activation as make_activation
from aekit.layers import init_linear
from aekit.objectives import Contractive, make_objective
from aekit.train import PRECISIONS, Callback, recalibrate_batch_norm, resolve_precision
from aekit.train.pretrain import pretrain_layers, stack_into_deep_ae

HIDDEN = [1000, 1000, 1000]
QUICK_HIDDEN = [128, 128, 128]
#: The initialisations compared per architecture: random (``mlp`` / ``cnn``) or pretrained.
ARCH_VARIANTS = {"dense": ("mlp", "sae", "sdae", "scae"), "conv": ("cnn", "cdae")}
VARIANTS = tuple(v for vs in ARCH_VARIANTS.values() for v in vs)
#: ``--arch conv``: the :class:`aekit.ConvAE` encoder (5×5 convolutions with stride 2, 28 →
#: 14 → 7, relu), its fully connected code layer (relu) as the last hidden layer.
CONV = {"channels": [32, 64], "kernel_size": 5, "strides": 2, "code_size": 256}
QUICK_CONV = {"channels": [8, 16], "kernel_size": 5, "strides": 2, "code_size": 32}
N_CLASSES = 10
NU = 0.25  # masking fraction of the sdae layers (Vincent et al. 2010, MNIST: 25 %)

# Published test errors (%), permutation-invariant MNIST.
PAPER = {
    "mlp": [],
    "sae": [("SAE-3 (Vincent et al. 2010)", 1.40), ("AE, 1×1000 (Rifai et al. 2011)", 1.78)],
    "sdae": [("SdA-3, masking 25 % (Vincent et al. 2010)", 1.28),
             ("DAE, 1×1000 (Rifai et al. 2011)", 1.18)],
    "scae": [("CAE, 1×1000 (Rifai et al. 2011)", 1.14)],
    "cnn": [], "cdae": [],
}
PAPER_ONLY = [("DBN-3 (Vincent et al. 2010)", 1.24),
              ("RBM-pretrained 784-500-500-2000-10 (Hinton & Salakhutdinov 2006)", 1.2)]


class Tracker:
    """Training time excluding evaluations, and the per-variant time budget (pretraining
    and fine-tuning together, so not :class:`aekit.train.TimeBudget`)."""

    def __init__(self, budget_s: float):
        self.budget_s, self.t_start = budget_s, time.perf_counter()
        self.eval_s, self.hit_budget = 0.0, False

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start - self.eval_s

    def deadline(self, epoch=None, record=None, model=None) -> bool:
        """fit() callback (pretraining): True stops the layer once the budget is spent."""
        self.hit_budget = self.hit_budget or self.elapsed() > self.budget_s
        return self.hit_budget


class EpochLog(Callback):
    """Per-epoch test (and validation) error for the error-vs-time curve, timed apart from
    training; stops fine-tuning once the variant's budget is spent. With ``recalibrate``
    (batch norm), the running statistics are first recomputed on the training images with
    the current weights (:func:`aekit.train.recalibrate_batch_norm`; the moving averages lag
    behind fine-tuned pretrained layers), counted as evaluation time."""

    def __init__(self, tracker: Tracker, data: dict, curve: list[dict],
                 recalibrate: bool = False):
        self.tr, self.data, self.curve = tracker, data, curve
        self.recalibrate = recalibrate

    def on_epoch_end(self, loop, record):
        avg = loop.weight_average  # with --weight-average the averaged weights are evaluated
        with avg.swapped() if avg is not None else contextlib.nullcontext():
            return self._log(loop, record)

    def _log(self, loop, record):
        train_s = self.tr.elapsed()
        t0 = time.perf_counter()
        if self.recalibrate:
            recalibrate_batch_norm(loop.model, torch.from_numpy(self.data["Xtr"]))
        rec = {"epoch": record["epoch"], "train_time_s": round(train_s, 2),
               "train_loss": round(record["train_loss"], 5)}
        if self.data.get("test_each_epoch", True):
            rec["test_error_pct"] = round(error_pct(loop.model, self.data["Xte"],
                                                    self.data["yte"]), 3)
        if self.data["Xva"] is not None:
            rec["val_error_pct"] = round(error_pct(loop.model, self.data["Xva"],
                                                   self.data["yva"]), 3)
        self.tr.eval_s += time.perf_counter() - t0
        self.curve.append(rec)
        val = f"  val error {rec['val_error_pct']:.2f} %" if "val_error_pct" in rec else ""
        test = (f"  test error {rec['test_error_pct']:.2f} %" if "test_error_pct" in rec
                else "")
        print(f"    epoch {rec['epoch']:3d}  {train_s:8.1f} s  loss {rec['train_loss']:.4f}"
              f"{test}{val}", flush=True)
        return self.tr.deadline()


class Classifier(nn.Module):
    """``x -> Dropout(p_in) -> [Linear -> (BatchNorm) -> act -> Dropout(p)] × L -> Linear``
    (logits); with ``batch_norm`` call :func:`identity_batch_norm_` before training."""

    def __init__(self, linears: list[nn.Linear], act: str, dropout: float,
                 input_dropout: float, batch_norm: bool = False):
        super().__init__()
        mods: list[nn.Module] = [nn.Dropout(input_dropout)]
        for lin in linears:
            bn = [nn.BatchNorm1d(lin.out_features)] if batch_norm else []
            mods += [lin, *bn, make_activation(act), nn.Dropout(dropout)]
        head = nn.Linear(linears[-1].out_features, N_CLASSES)
        init_linear(head, "linear")
        self.net = nn.Sequential(*mods, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def identity_batch_norm_(model: nn.Module, X: torch.Tensor) -> None:
    """Initialise every batch-norm layer of ``model.net`` to the identity on the data ``X``:
    with ``μ``, ``σ²`` the mean and variance of the layer's input over ``X`` (the layers
    below in eval mode), ``running_mean = μ``, ``running_var = σ²``, ``γ = √(σ² + ε)``,
    ``β = μ``. Then ``BN(h) = h`` in eval mode, and about ``h`` in train mode, so the network
    starts as the function it is without batch norm: pretrained features are kept, and
    batch norm only changes how the fine-tuning moves them (as in the data-dependent
    initialisation of Salimans & Kingma 2016, section 2.2, here used to preserve the function
    rather than to normalise it)."""
    was = model.training
    model.eval()
    h = X
    for mod in model.net:
        if isinstance(mod, nn.BatchNorm1d):
            mu, var = h.mean(0), h.var(0)
            mod.running_mean.copy_(mu)
            mod.running_var.copy_(var)
            mod.weight.copy_((var + mod.eps).sqrt())
            mod.bias.copy_(mu)
        h = mod(h)
    model.train(was)


@torch.no_grad()
def error_pct(model: nn.Module, X: torch.Tensor, y: torch.Tensor, bs: int = 4096) -> float:
    model.eval()
    wrong = sum(int((model(X[i:i + bs]).argmax(1) != y[i:i + bs]).sum())
                for i in range(0, len(X), bs))
    model.train()
    return 100.0 * wrong / len(X)


def pretrain_spec(variant: str, a: argparse.Namespace) -> dict | None:
    """``layer_kwargs`` of :func:`pretrain_layers` for every layer (None: no pretraining)."""
    return {"mlp": None, "sae": {}, "sdae": {"corruption": Masking(NU)},
            "scae": {"terms": [Contractive(a.cae_lambda, "closed_form")]}}[variant]


def arch_text(a: argparse.Namespace) -> str:
    """The fine-tuned network in words, for the tables."""
    if a.arch == "dense":
        return f"784-{'-'.join(map(str, a.hidden))}-10, {a.activation} units"
    c = QUICK_CONV if a.quick else CONV
    k = c["kernel_size"]
    convs = " → ".join(f"conv {k}×{k}/{c['strides']} ×{ch}" for ch in c["channels"])
    return (f"28×28 → {convs} → fully connected {c['code_size']} → 10, {a.activation} units "
            "(the aekit.ConvAE encoder and a softmax layer; not permutation invariant)")


def sizes_of(a: argparse.Namespace) -> list[int] | None:
    """The dense network's layer sizes (None for ``--arch conv``; see :func:`arch_text`)."""
    return [784, *a.hidden, N_CLASSES] if a.arch == "dense" else None


def pretraining_text(variant: str, a: argparse.Namespace) -> str:
    """The variant's pretraining in words ("none" for the random starts mlp and cnn)."""
    return {"mlp": "none", "cnn": "none", "sae": "plain AE",
            "sdae": f"denoising AE, masking {NU:.0%}",
            "scae": f"contractive AE, lambda {a.cae_lambda}",
            "cdae": f"convolutional denoising AE (whole ConvAE), masking {NU:.0%}"}[variant]


def conv_network(variant: str, data: dict, a: argparse.Namespace, tr: Tracker
                 ) -> tuple[nn.Module, float]:
    """``--arch conv``: the ConvAE encoder + softmax (:class:`EncoderClassifier`, dropout
    ``--input-dropout`` on the pixels and ``--dropout`` on the fully connected layer), random
    (``cnn``) or pretrained as a whole denoising ConvAE (``cdae``: masking ν, cross-entropy
    reconstruction, Adam 1e-3, batch 128, ``--pretrain-epochs``, ``--precision``). Both start
    from the same seeded initial weights. Returns the network and the pretraining seconds."""
    spec = QUICK_CONV if a.quick else CONV
    torch.manual_seed(a.seed)
    ae = ConvAE((28, 28), activation=a.activation, code_activation=a.activation,
                output="sigmoid", **spec)
    t_pre = 0.0
    if variant == "cdae":
        hist = fit(ae, make_objective("bce"), data["Xtr"], corruption=Masking(NU),
                   max_iter=a.pretrain_epochs, batch_size=128, optimizer="adam",
                   learning_rate=1e-3, random_state=a.seed, precision=a.precision,
                   callbacks=[tr.deadline], progress=False, desc="cdae pretraining")
        t_pre = tr.elapsed()
        print(f"    pretraining {len(hist)} epochs, {t_pre:.1f} s, train loss "
              f"{hist['train_loss'][-1]:.4g}", flush=True)
    torch.manual_seed(a.seed)
    net = EncoderClassifier(ae, N_CLASSES, dropout=a.dropout, input_dropout=a.input_dropout)
    return net.train(), t_pre


def run_variant(variant: str, data: dict, a: argparse.Namespace) -> dict:
    tr = Tracker(a.minutes * 60)
    if a.arch == "conv":
        print(f"== {variant}  {arch_text(a)}", flush=True)
        model, t_pre = conv_network(variant, data, a, tr)
        return finetune(variant, model, t_pre, tr, data, a)
    sizes = [784, *a.hidden]
    layer_kwargs = pretrain_spec(variant, a)
    print(f"== {variant}  sizes {sizes}+{N_CLASSES}  pretraining {layer_kwargs}", flush=True)
    t_pre = 0.0
    if layer_kwargs is not None:
        pre = pretrain_layers(sizes, data["Xtr"], activation=a.activation,
                              code_activation=a.activation, output="sigmoid",
                              layer_kwargs=layer_kwargs, max_iter=a.pretrain_epochs,
                              batch_size=128, optimizer="adam", learning_rate=1e-3,
                              random_state=a.seed,
                              callbacks=[tr.deadline], progress=False)
        t_pre = tr.elapsed()
        for i, h in enumerate(pre.histories):
            print(f"    pretrain layer {i + 1}: {len(h)} epochs, train loss "
                  f"{h['train_loss'][-1]:.4g}", flush=True)
        print(f"    pretraining {t_pre:.1f} s", flush=True)
        linears = list(stack_into_deep_ae(pre.layers).enc)
    else:
        torch.manual_seed(a.seed)
        linears = list(DenseAE(sizes, activation=a.activation,
                               code_activation=a.activation).enc)

    torch.manual_seed(a.seed)
    model = Classifier(linears, a.activation, a.dropout, a.input_dropout,
                       bool(a.batch_norm)).train()
    if a.batch_norm:  # the same data-dependent identity start for every variant
        identity_batch_norm_(model, torch.from_numpy(data["Xtr"][:10_000]))
    return finetune(variant, model, t_pre, tr, data, a)


def finetune(variant: str, model: nn.Module, t_pre: float, tr: Tracker, data: dict,
             a: argparse.Namespace) -> dict:
    """Fine-tune ``model`` (logits) with the library's classification objective and loop;
    the result row of the variant."""
    Xtr, ytr = torch.from_numpy(data["Xtr"]), torch.from_numpy(data["ytr"])
    # The library's fine-tuning objective (cross-entropy, + FGSM or VAT) and its one loop.
    objective = classifier_objective(a.adversarial, a.vat)
    curve: list[dict] = []
    t_ft0 = tr.elapsed()
    fit(model, objective, (Xtr, ytr), max_iter=a.epochs, batch_size=128, optimizer="adam",
        learning_rate=a.lr, schedule="cosine", random_state=a.seed, precision=a.precision,
        progress=False,
        callbacks=[EpochLog(tr, data, curve, recalibrate=bool(a.batch_norm))], desc=variant,
        weight_average=a.weight_average or None,
        augment=RandomShift((28, 28), a.shift) if a.shift else None)
    last = dict(curve[-1])
    if "test_error_pct" not in last and data["Xte"] is not None:  # the protocol's one touch
        last["test_error_pct"] = round(error_pct(model, data["Xte"], data["yte"]), 3)
    pretraining = pretraining_text(variant, a)
    return {"method": variant, "pretraining": pretraining,
            "test_error_pct": last.get("test_error_pct"),
            "val_error_pct": last.get("val_error_pct"),
            "pretrain_time_s": round(t_pre, 2), "finetune_time_s": round(tr.elapsed() - t_ft0, 2),
            "epochs": len(curve), "pretrain_epochs": 0 if pretraining == "none"
            else a.pretrain_epochs, "n_train": len(Xtr),
            "n_test": 0 if data["Xte"] is None else len(data["Xte"]),
            "stopped_by_budget": tr.hit_budget, "seed": a.seed,
            "curve": curve, "curve_note": "per-epoch test error (if any) for plotting only; "
                                          "the reported test error is the last epoch's"}


def table(rows: list[dict], a: argparse.Namespace) -> str:
    val = a.val
    headers = ["variant", "pretraining", "test error % (ours)", "published test error %",
               *(["val error %"] if val else []), "epochs", "pretrain (s)", "fine-tune (s)",
               "n train / test"]
    out = []
    for r in rows:
        pub = "; ".join(f"{name}: {e:.2f}" for name, e in PAPER[r["method"]]
                        if a.dataset == "mnist") or "—"
        out.append([r["method"], r["pretraining"], f"{r['test_error_pct']:.2f}", pub,
                    *([f"{r['val_error_pct']:.2f}"] if val else []), r["epochs"],
                    round(r["pretrain_time_s"], 1), round(r["finetune_time_s"], 1),
                    f"{r['n_train']} / {r['n_test']}"
                    + (" (budget hit)" if r["stopped_by_budget"] else "")])
    for name, e in PAPER_ONLY if a.dataset == "mnist" and a.arch == "dense" else []:
        out.append([name, "(paper only)", "—", f"{e:.2f}", *(["—"] if val else []),
                    "—", "—", "—", "—"])
    md = md_table(headers, out)
    md += (f"\n\n{a.dataset}. Architecture {arch_text(a)}; "
           f"fine-tuning: input dropout {a.input_dropout}, dropout {a.dropout}, Adam lr {a.lr} "
           f"cosine, batch 128, {a.epochs} epochs"
           + (f", FGSM adversarial training ε = {a.adversarial}, α = 0.5" if a.adversarial else "")
           + (f", virtual adversarial training ε = {a.vat} (L2), α = 1, one power "
              "iteration" if a.vat else "")
           + (", bf16 autocast" if a.precision == "bf16" else "")
           + (f", random shifts of up to {a.shift} pixels" if a.shift else "")
           + (", batch norm after every hidden linear layer (initialised to the identity on "
              "10,000 training images; running statistics recomputed on the training images "
              "before each evaluation)" if a.batch_norm else "")
           + "; test error after the last epoch (no "
           "selection on the test set).")
    if a.dataset == "mnist" and a.arch == "dense":
        md += (" Published rows: Vincent et al. 2010 (JMLR, table 3, 3 hidden layers); Rifai "
               "et al. 2011 (ICML, one hidden layer of 1000 units); Hinton & Salakhutdinov "
               "2006 (Science).")
    if a.quick:
        md += " Quick mode: a smoke test, not a result."
    return md


RECIPE_KEYS = {"adversarial": float, "vat": float, "dropout": float, "input_dropout": float,
               "lr": float, "epochs": int, "pretrain_epochs": int, "activation": str,
               "weight_average": float, "batch_norm": int, "shift": int}


def parse_recipe(text: str) -> dict:
    """``"vat=2.0,dropout=0,input_dropout=0"`` -> overrides of the fine-tuning settings."""
    out = {}
    for part in filter(None, text.split(",")):
        key, sep, val = part.partition("=")
        if not sep or key not in RECIPE_KEYS:
            raise SystemExit(f"--select: bad recipe item {part!r} in {text!r}; expected "
                             f"key=value with key one of {', '.join(RECIPE_KEYS)}")
        out[key] = RECIPE_KEYS[key](val)
    if out.get("vat") and out.get("adversarial"):
        raise SystemExit(f"--select: recipe {text!r} gives both vat and adversarial")
    return out


def _data(Xtr, ytr, Xva, yva, Xte, yte, test_each_epoch):
    t = lambda A: None if A is None else torch.from_numpy(np.ascontiguousarray(A))  # noqa: E731
    return {"Xtr": np.ascontiguousarray(Xtr, dtype=np.float32), "ytr": ytr,
            "Xte": t(None if Xte is None else Xte.astype(np.float32)), "yte": t(yte),
            "Xva": t(None if Xva is None else Xva.astype(np.float32)), "yva": t(yva),
            "test_each_epoch": test_each_epoch}


def select_and_test(a, Xtr, ytr, Xte, yte) -> None:
    """The validation protocol: every recipe of ``--select`` fine-tunes every variant of
    ``--variants`` (seed ``--seed``) on the first 55,000 training images and is scored by the
    mean over the variants of the error on the last 5,000 after the last epoch (one recipe
    for all variants, so the comparison with the random-init MLP is under the same recipe);
    the winner is retrained on all 60,000 for every seed of ``--seeds``, and each final
    network touches the test set once, after its last epoch. With ``--pieces`` every job is
    stored and reused (see :class:`Pieces`); with ``--shard`` this process trains only its
    share, and the results file is written by the run that finds every piece done."""
    import copy

    pieces = Pieces(a, __file__)
    n_val = len(Xtr) // 12  # 5,000 of 60,000
    sel_data = _data(Xtr[:-n_val], ytr[:-n_val], Xtr[-n_val:], ytr[-n_val:], None, None,
                     test_each_epoch=False)
    selection = []
    for text in a.select:
        b = copy.copy(a)
        vars(b).update(parse_recipe(text))
        runs = [pieces.run("select", text, v, a.seed,
                           lambda v=v, b=b: run_variant(v, sel_data, b)) for v in a.variants]
        if any(r is None for r in runs):
            continue
        score = float(np.mean([r["val_error_pct"] for r in runs]))
        selection.append({"recipe": text, "mean_val_error_pct": score, "runs": runs})
        print(f"== recipe {text!r}: mean validation error {score:.3f} %", flush=True)
    if pieces.pending:
        print(f"--shard {a.shard}: selection pieces still to train elsewhere: "
              f"{', '.join(pieces.pending)}; run again (without --shard, or with every "
              "shard) once they are in --pieces", flush=True)
        return
    best = min(selection, key=lambda s: s["mean_val_error_pct"])
    b = copy.copy(a)
    vars(b).update(parse_recipe(best["recipe"]))
    fin_data = _data(Xtr, ytr, None, None, Xte, yte, test_each_epoch=False)
    finals = []
    for v in a.variants:
        for seed in a.seeds:
            bs = copy.copy(b)
            bs.seed = seed
            finals.append(pieces.run("final", best["recipe"], v, seed,
                                     lambda v=v, bs=bs: run_variant(v, fin_data, bs)))
    if pieces.pending:
        print(f"--shard {a.shard}: final pieces still to train elsewhere: "
              f"{', '.join(pieces.pending)}", flush=True)
        return
    pieces.refuse_dirty(a.quick)
    rows = [[s["recipe"], *[f"{r['val_error_pct']:.2f}" for r in s["runs"]],
             f"{s['mean_val_error_pct']:.3f}", "chosen" if s is best else ""]
            for s in selection]
    md = md_table(["recipe (55k train / 5k val)", *[f"{v} val error %" for v in a.variants],
                   "mean", ""], rows)
    frows = []
    for v in a.variants:
        errs = [r["test_error_pct"] for r in finals if r["method"] == v]
        frows.append([v, best["recipe"], ", ".join(f"{e:.2f}" for e in errs),
                      f"{np.mean(errs):.3f}", round(np.mean(
                          [r["pretrain_time_s"] + r["finetune_time_s"] for r in finals
                           if r["method"] == v]) / 60, 1)])
    md += "\n\n" + md_table(["variant (60k train)", "recipe", "test error % per seed "
                              f"({', '.join(map(str, a.seeds))})", "mean",
                              "train time (min)"], frows)
    md += (f"\n\n{a.dataset}; architecture {arch_text(a)}; recipes "
           "chosen on the validation split only, the test set touched once per final network.")
    if a.quick:
        md += " Quick mode: a smoke test, not a result."
    write_results(a.name or ("mnist_classification_selected" + ("_quick" if a.quick else "")),
                  {"settings": vars(a), "sizes": sizes_of(a), "architecture": arch_text(a),
                   "dataset": a.dataset, "selection": selection, "chosen": best["recipe"],
                   "final": finals, "pieces": pieces.used or None,
                   "code_changed": pieces.code_changed,
                   "settings_defaulted": pieces.defaulted or None,
                   "code": pieces.signature["code"],
                   "unit": "error in percent",
                   "protocol": f"{a.dataset}: every recipe fine-tunes every variant on the "
                               "first 55k training images, scored by the mean validation "
                               "error on the last 5k after the last epoch; the best recipe "
                               "retrained on all 60k for each seed; the test set touched "
                               "once per final network (no per-epoch test evaluation)"}, md)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(p)
    p.add_argument("--quick", action="store_true",
                   help="3,000 training and 1,000 test images, hidden 128-128-128, "
                        "1 pretraining epoch, 2 fine-tuning epochs")
    p.add_argument("--arch", default="dense", choices=tuple(ARCH_VARIANTS),
                   help="dense: the permutation-invariant 784-1000-1000-1000-10 network "
                        "(variants mlp sae sdae scae); conv: the ConvAE encoder + softmax "
                        f"({CONV}; variants cnn cdae), not permutation invariant")
    p.add_argument("--variants", nargs="+", default=None, choices=VARIANTS,
                   help="default: every variant of --arch")
    p.add_argument("--hidden", type=int, nargs="+", default=None,
                   help="hidden sizes of --arch dense (default 1000 1000 1000; quick: 128 128 "
                        "128)")
    p.add_argument("--activation", default="sigmoid", choices=("sigmoid", "relu", "tanh"),
                   help="hidden units, in pretraining and fine-tuning")
    p.add_argument("--epochs", type=int, default=100, help="fine-tuning epochs")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="epochs per pretrained layer")
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tuning Adam learning rate")
    p.add_argument("--dropout", type=float, default=0.5, help="after every hidden layer")
    p.add_argument("--input-dropout", type=float, default=0.2, help="on the input pixels")
    p.add_argument("--cae-lambda", type=float, default=0.1, help="contractive weight (scae)")
    p.add_argument("--adversarial", type=float, default=0.0, metavar="EPS",
                   help="fine-tune with FGSM adversarial training, step EPS in pixel units "
                        "(Goodfellow et al. 2015 used 0.25); 0 = off")
    p.add_argument("--vat", type=float, default=0.0, metavar="EPS",
                   help="fine-tune with virtual adversarial training, perturbations of L2 norm "
                        "EPS (Miyato et al. 2019 used 2.0 on MNIST); 0 = off")
    p.add_argument("--weight-average", type=float, default=None, metavar="DECAY",
                   help="fine-tune with an exponential moving average of the weights "
                        "(fit(weight_average=DECAY), e.g. 0.999): the average is evaluated "
                        "and kept")
    p.add_argument("--batch-norm", action="store_true",
                   help="batch norm after every hidden linear layer of the fine-tuned network, "
                        "initialised to the identity on training data (identity_batch_norm_), "
                        "running statistics recomputed on the training images before each "
                        "evaluation (recalibrate_batch_norm); VAT then perturbs with the clean "
                        "batch's statistics frozen (aekit.objectives.batch_stats_frozen)")
    p.add_argument("--shift", type=int, default=0, metavar="S",
                   help="--arch conv: fine-tune on training images translated by a random "
                        "integer offset in [-S, S]² (aekit.data.augment.RandomShift, zero "
                        "fill); 0 = off. Refused for --arch dense (permutation invariant)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fine-tuning matmul precision (bf16: autocast, only on CPUs with "
                        "native bf16; elsewhere falls back to fp32 with a warning)")
    p.add_argument("--val", action="store_true",
                   help="train on the first 55,000 images, report the error on the last 5,000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--select", nargs="+", default=None, metavar="RECIPE",
                   help="the validation protocol (see select_and_test): recipes such as "
                        "'vat=2.0,dropout=0,input_dropout=0' or 'adversarial=0.25' chosen on a "
                        "55k/5k split, the winner retrained on 60k for every --seeds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                   help="seeds of the final networks with --select")
    add_pieces_args(p)
    p.add_argument("--minutes", type=float, default=120.0,
                   help="training-time budget per variant (pretraining included)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--name", default=None,
                   help="results file stem (default mnist_classification[_quick])")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.adversarial < 0 or not math.isfinite(a.adversarial):
        p.error(f"--adversarial must be a finite number >= 0, got {a.adversarial}")
    if a.vat < 0 or not math.isfinite(a.vat):
        p.error(f"--vat must be a finite number >= 0, got {a.vat}")
    if a.vat and a.adversarial:
        p.error("--vat and --adversarial are alternatives; give one")
    a.precision = resolve_precision(a.precision)
    if a.variants is None:
        a.variants = list(ARCH_VARIANTS[a.arch])
    wrong = [v for v in a.variants if v not in ARCH_VARIANTS[a.arch]]
    if wrong:
        p.error(f"--variants {' '.join(wrong)} not of --arch {a.arch} (its variants: "
                f"{' '.join(ARCH_VARIANTS[a.arch])})")
    if a.arch == "conv" and (a.hidden is not None or a.batch_norm):
        p.error("--hidden and --batch-norm are options of --arch dense")
    if a.quick:
        a.epochs, a.pretrain_epochs = 2, 1
    if a.hidden is None and a.arch == "dense":
        a.hidden = list(QUICK_HIDDEN if a.quick else HIDDEN)
    if a.epochs < 1 or a.pretrain_epochs < 1:
        p.error("--epochs and --pretrain-epochs must be >= 1")
    train, test = load_dataset(a.dataset, data_path=a.data)
    Xtr, ytr = train.X, train.y.astype(np.int64)
    Xte, yte = test.X, test.y.astype(np.int64)
    if a.quick:
        Xtr, ytr, Xte, yte = Xtr[:3000], ytr[:3000], Xte[:1000], yte[:1000]
    check_pieces_args(p, a)
    recipes = [parse_recipe(t) for t in a.select or []]  # checked before any training
    shifts = [a.shift, *[r.get("shift", 0) for r in recipes]]
    if min(shifts) < 0 or (a.arch == "dense" and max(shifts) > 0):
        p.error("shift must be >= 0, and 0 with --arch dense (a translated image uses the "
                f"pixel grid, which the permutation-invariant task may not); got {shifts}")
    if a.select:
        select_and_test(a, Xtr, ytr, Xte, yte)
        return
    Xva = yva = None
    if a.val:
        n_val = len(Xtr) // 12  # 5,000 of 60,000
        Xtr, Xva, ytr, yva = Xtr[:-n_val], Xtr[-n_val:], ytr[:-n_val], ytr[-n_val:]
    data = {"Xtr": np.ascontiguousarray(Xtr, dtype=np.float32), "ytr": ytr,
            "Xte": torch.from_numpy(np.ascontiguousarray(Xte, dtype=np.float32)),
            "yte": torch.from_numpy(yte),
            "Xva": None if Xva is None else torch.from_numpy(
                np.ascontiguousarray(Xva, dtype=np.float32)),
            "yva": None if yva is None else torch.from_numpy(yva)}

    rows = [run_variant(v, data, a) for v in a.variants]
    md = table(rows, a)
    name = a.name or ("mnist_classification" + ("_quick" if a.quick else ""))
    write_results(name, {
        "settings": vars(a), "sizes": sizes_of(a), "architecture": arch_text(a), "rows": rows,
        "dataset": a.dataset,
        "published": {} if a.dataset != "mnist" else {
            **{k: v for k, v in PAPER.items() if v}, "other": PAPER_ONLY},
        "unit": "test error in percent (misclassified test images / n_test)",
        "protocol": f"{a.dataset} 60k/10k (or 55k/5k/10k with --val), pixels/255, no augmentation; "
                    "layer-wise AE pretraining (Adam 1e-3, batch 128, bce) then end-to-end "
                    "fine-tuning with a softmax head (cross-entropy, dropout, Adam cosine, "
                    "batch 128); test error after the last epoch; no selection inside this "
                    "run, but the recipe may come from earlier runs' test errors (use "
                    "--select for the validation protocol)"}, md)


if __name__ == "__main__":
    main()
