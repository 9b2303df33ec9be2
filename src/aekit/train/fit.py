"""The one training loop, :func:`fit`. Everything else (early stopping, checkpoints, progress,
history) is an option or a callback around it, not another trainer class.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..io import atomic_write_text
from ..models.base import AEOutput, Autoencoder
from ..objectives import Objective
from .checkpoint import load_checkpoint, load_module_state, save_checkpoint

__all__ = ["OPTIMIZERS", "PRECISIONS", "SCHEDULES", "Callback", "History", "TrainingInterrupted",
           "check_fit_args", "fit", "lr_factor", "native_bf16", "progress_enabled",
           "resolve_precision"]

OPTIMIZERS = ("adam", "adamw", "sgd", "lbfgs")
SCHEDULES = ("constant", "cosine", "step", "exponential")
PRECISIONS = ("fp32", "bf16")


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`fit` after SIGINT/SIGTERM, once a checkpoint has been written."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


def native_bf16() -> bool:
    """True where the CPU multiplies bf16 natively (AVX512-BF16 or AMX tiles).

    Without it, PyTorch's bf16 matmul takes a slow fallback (seen ~100x below fp32 on an
    AVX2-only AMD EPYC), so ``precision="bf16"`` falls back to fp32 with a warning there.
    """
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch without the probes
        return False


def resolve_precision(precision: str) -> str:
    """Validate ``precision`` and return the one that will run ("bf16" only when native)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "bf16" and not native_bf16():
        warnings.warn("precision='bf16' requested but this CPU has no native bf16 matmul "
                      "(no AVX512-BF16/AMX); bf16 would run far slower than fp32 here, so "
                      "training runs in fp32", RuntimeWarning, stacklevel=3)
        return "fp32"
    return precision


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class Callback(Protocol):
    """Hook called at the end of every epoch; return True to stop training."""

    def __call__(self, epoch: int, record: dict[str, float], model: Autoencoder) -> bool | None:
        ...


@dataclass
class History:
    """Per-epoch records: ``{"epoch", "lr", "time_s", "train_loss", "train_<part>", ...,
    "val_loss", "val_<part>"}`` for every part of the objective's breakdown."""

    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from_step: int | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        """Column by name, e.g. ``history["val_loss"]``."""
        return [r.get(key, float("nan")) for r in self.records]

    def to_jsonl(self) -> str:
        import json
        return "".join(json.dumps(r) + "\n" for r in self.records)


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars show only on a terminal and never under ``CI=true``."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return sys.stderr.isatty()


def lr_factor(schedule: str, step: int, total_steps: int, steps_per_epoch: int, *,
              warmup_steps: int = 0, min_factor: float = 0.0, step_size: int = 10,
              gamma: float = 0.1) -> float:
    """Multiplier of the base learning rate after ``step`` optimiser steps.

    ``constant``: 1. ``cosine``: ``m + (1 − m) · ½(1 + cos(π t / T))`` over the post-warm-up
    steps. ``step``: ``γ^⌊epoch / step_size⌋``. ``exponential``: ``γ^epoch`` (per epoch).
    A linear warm-up from 0 over ``warmup_steps`` multiplies any of them.
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    epoch = step // max(1, steps_per_epoch)
    if schedule == "constant":
        f = 1.0
    elif schedule == "cosine":
        t = max(0, step - warmup_steps)
        T = max(1, total_steps - warmup_steps)
        f = min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(t, T) / T))
    elif schedule == "step":
        f = gamma ** (epoch // max(1, step_size))
    elif schedule == "exponential":
        f = gamma ** epoch
    else:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    return warm * f


class MemmapRows:
    """Rows of a memory-mapped (n, d) array, read one mini-batch at a time.

    ``fit`` uses this for ``np.memmap`` input (e.g. ``np.load(path, mmap_mode="r")``), so data
    larger than memory trains with bounded RAM: only the rows of the current batch are read.
    Rows come back in the order asked, so results equal those of the in-memory path.
    """

    def __init__(self, A: np.ndarray, name: str, n_features: int, dtype: torch.dtype,
                 chunk: int = 65536):
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {A.shape}")
        if A.shape[0] == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        if A.shape[1] != n_features:
            raise ValueError(f"{name} has {A.shape[1]} features, the model expects {n_features}")
        if not np.issubdtype(A.dtype, np.number) or A.dtype == np.bool_:
            raise ValueError(f"{name} must be numeric, got dtype {A.dtype}")
        for i in range(0, A.shape[0], chunk):  # one streaming pass to reject NaN/inf early
            if not np.isfinite(A[i:i + chunk]).all():
                raise ValueError(f"{name} contains NaN or infinite values (rows {i}..)")
        self.A, self.dtype, self.shape = A, dtype, A.shape

    def index_select(self, dim: int, idx: torch.Tensor) -> torch.Tensor:
        rows = np.asarray(self.A[idx.numpy()])
        return torch.from_numpy(rows).to(self.dtype)

    def __getitem__(self, s: slice) -> torch.Tensor:
        return torch.from_numpy(np.array(self.A[s])).to(self.dtype)


def _as_tensor(X: Any, name: str, n_features: int, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            t = torch.from_numpy(np.ascontiguousarray(np.asarray(X)))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be a numeric array, got {type(X).__name__}: {e}") \
                from None
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in (
            torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise ValueError(f"{name} must be numeric, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if t.shape[1] != n_features:
        raise ValueError(f"{name} has {t.shape[1]} features, the model expects {n_features}")
    t = t.to(dtype).contiguous()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _make_optimizer(name: str, params: list[nn.Parameter], lr: float, momentum: float,
                    weight_decay: float, lbfgs_max_iter: int) -> torch.optim.Optimizer:
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        kw: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
        try:  # fused kernels where this torch build has them for these tensors
            return cls(params, fused=True, **kw)
        except (RuntimeError, TypeError):
            return cls(params, **kw)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=momentum > 0)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=lbfgs_max_iter,
                                 history_size=20, line_search_fn="strong_wolfe")
    raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")


def check_fit_args(*, epochs: int, batch_size: int, lr: float, optimizer: str, schedule: str,
                   early_stopping: int | None, precision: str = "fp32") -> None:
    """Validate :func:`fit`'s options up front (callers use it before creating anything)."""
    if epochs < 0 or int(epochs) != epochs:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs}")
    if batch_size < 1 or int(batch_size) != batch_size:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be > 0, got {lr}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    if early_stopping is not None and early_stopping < 1:
        raise ValueError(f"early_stopping must be >= 1 epochs, got {early_stopping}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")


def fit(
    model: Autoencoder,
    objective: Objective,
    X: Any,
    *,
    corruption: Callable[..., torch.Tensor] | None = None,
    augment: Callable[..., torch.Tensor] | None = None,
    val: Any = None,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    warmup_steps: int = 0,
    min_lr_factor: float = 0.0,
    step_size: int = 10,
    gamma: float = 0.1,
    lbfgs_max_iter: int = 20,
    max_grad_norm: float | None = None,
    early_stopping: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    checkpoint_steps: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    history_path: str | os.PathLike | None = None,
    progress: bool | None = None,
    precision: str = "fp32",
    handle_signals: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` to minimise ``objective`` on ``X``; the one loop every variant uses.

    Each step draws a mini-batch ``x`` (n_b, d) from a seeded permutation, forms the encoder
    input ``x̃ = corruption(x, generator)`` (or ``x̃ = x``), computes
    ``(J, parts) = objective(model, x, x̃, model(x̃))`` and takes an optimiser step on J. With
    ``optimizer="lbfgs"`` each epoch is one full-batch L-BFGS step of ``lbfgs_max_iter``
    iterations (the corruption, if any, is drawn once per epoch so the function is fixed).

    Parameters
    ----------
    model : Autoencoder
    objective : Objective
        Its parameters (e.g. learned variances of ``gaussian_nll``) are trained too.
    X : array-like or Tensor, shape (n, d)
        Training data; must be finite. An ``np.memmap`` or :class:`aekit.data.NpyReader` is
        streamed batch by batch (see :class:`MemmapRows`) instead of being loaded.
    corruption : callable ``(x, generator) -> x̃``, optional
        Applied to training batches only; the loss is always against the clean ``x``.
    augment : callable ``(x, generator) -> x'``, optional
        Data augmentation (e.g. :class:`aekit.augment.RandomShift`): replaces the training
        batch itself, so input and target are both ``x'``; drawn before the corruption from
        the same seeded generator (resumable). Validation data is never augmented.
    val : array-like, shape (n_val, d), optional
        Validation data, evaluated each epoch in eval mode without corruption.
    epochs, batch_size : int
    optimizer : {"adam", "adamw", "sgd", "lbfgs"}
        Adam/AdamW use fused kernels when available; SGD uses Nesterov momentum.
    lr, momentum, weight_decay : float
        ``weight_decay`` is the optimiser's (decoupled for AdamW); the logged, bias-free
        penalty is the objective term :class:`aekit.objectives.WeightDecay`.
    schedule : {"constant", "cosine", "step", "exponential"}
        Learning-rate schedule, stepped per optimiser step (see :func:`lr_factor`).
    early_stopping : int, optional
        Stop after this many epochs without an improvement of ``min_delta`` in the monitored
        loss (``val_loss`` when ``val`` is given, else ``train_loss``); the best weights are
        restored when ``restore_best``.
    callbacks : sequence of callables ``(epoch, record, model) -> bool``
        Called after each epoch; returning True stops training.
    seed : int
        Seeds the generator used for shuffling and corruption (and torch's global RNG, e.g.
        for dropout), so the same seed gives identical weights.
    checkpoint_dir : path, optional
        Where ``ckpt-<step>.safetensors`` files are written atomically every
        ``checkpoint_every`` epochs and every ``checkpoint_steps`` steps, holding model,
        objective, optimiser, scheduler and RNG states.
    resume : bool
        Continue from the newest readable checkpoint in ``checkpoint_dir``; the result is
        identical to an uninterrupted run.
    history_path : path, optional
        JSON-lines file rewritten atomically after every epoch.
    progress : bool, optional
        Force the progress bar on/off; by default on only for a terminal and not under CI.
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the forward pass under CPU autocast (losses in fp32), only where the
        CPU has native bf16 (:func:`native_bf16`); elsewhere it warns and uses fp32.
    handle_signals : bool
        With a ``checkpoint_dir``, SIGINT/SIGTERM write a checkpoint at the next step and
        raise :class:`TrainingInterrupted` (resume later with ``resume=True``).

    Distributed training: when ``torch.distributed`` is initialised (e.g. under
    ``torchrun``), the model is wrapped in ``DistributedDataParallel``, ``batch_size`` is the
    *global* batch, each process takes a contiguous share of every batch from the common
    seeded permutation, the loss is rescaled so the averaged gradient equals the global-batch
    gradient, epoch sums are all-reduced, and only rank 0 writes history and checkpoints. With
    per-sample losses this matches one process with the same global batch up to float
    round-off; batch-statistic terms (batch norm, KL sparsity) see the local batch.

    Returns
    -------
    History
        Per-epoch records with every part of the objective.

    References
    ----------
    Kingma & Ba, "Adam", ICLR 2015; Nocedal & Wright, *Numerical Optimization*, ch. 7 (L-BFGS).
    """
    check_fit_args(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                   schedule=schedule, early_stopping=early_stopping, precision=precision)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    objective.check_model(model)
    bf16 = resolve_precision(precision) == "bf16"
    world, rank = _dist_info()
    if world > 1 and optimizer == "lbfgs":
        raise ValueError("optimizer='lbfgs' (full batch) is not supported with torch.distributed")

    params = list(model.parameters())
    dtype = params[0].dtype if params else torch.float32
    from ..data import NpyReader

    X = (MemmapRows(X, "X", model.n_features, dtype) if isinstance(X, np.memmap | NpyReader)
         else _as_tensor(X, "X", model.n_features, dtype))
    Xv = _as_tensor(val, "val", model.n_features, dtype) if val is not None else None
    objective.to(dtype)
    n = X.shape[0]
    full_batch = optimizer == "lbfgs"
    if full_batch and isinstance(X, MemmapRows):
        X = X[:]  # a full-batch method needs every row in memory anyway
    bs = n if full_batch else min(int(batch_size), n)
    nb = 1 if full_batch else math.ceil(n / bs)
    total_steps = nb * int(epochs)

    if world > 1 and n % bs and n % bs < world:
        nb -= 1  # a last batch smaller than the process count would leave a rank empty
        total_steps = nb * int(epochs)
    all_params = params + [p for p in objective.parameters() if p.requires_grad]
    fwd: Callable[[torch.Tensor], AEOutput] = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        fwd = DistributedDataParallel(model)  # broadcasts rank 0's weights now
    opt = _make_optimizer(optimizer, all_params, lr, momentum, weight_decay, lbfgs_max_iter)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(
        schedule, s, total_steps, nb, warmup_steps=warmup_steps, min_factor=min_lr_factor,
        step_size=step_size, gamma=gamma))

    # A constant schedule never changes the rate; skip its per-step Python overhead.
    step_sched = schedule != "constant" or warmup_steps > 0
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    history = History()
    start_epoch, start_b, perm = 0, 0, None
    acc: dict[str, torch.Tensor] = {}
    best_val, bad_epochs, best_state = math.inf, 0, None
    monitor = "val_loss" if Xv is not None else "train_loss"
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    writer = rank == 0
    # Corruption noise must differ between processes: each rank reseeds its own generator
    # from (seed, rank, step), which also makes it resumable without storing its state.
    g_noise = torch.Generator() if world > 1 else g

    def snapshot(epoch: int, b: int, step: int) -> Path | None:
        acc_g = {k: v.clone() for k, v in acc.items()} if b > 0 else {}
        if world > 1:  # mid-epoch sums are per process: store the global ones
            for v in acc_g.values():
                _all_reduce_sum(v)
        if not writer:
            return None
        state = {
            "epoch": epoch, "batch": b, "step": step,
            "perm": perm if perm is not None and b > 0 else None,
            "acc": acc_g,
            "gen": g.get_state(), "torch_rng": torch.get_rng_state(),
            "records": history.records, "best_epoch": history.best_epoch,
            "best_val": best_val, "bad_epochs": bad_epochs, "best_state": best_state,
            "n": n, "bs": bs, "epochs": int(epochs),
        }
        return save_checkpoint(ckdir, step, {"model": model, "objective": objective,
                                             "optimizer": opt, "scheduler": sched}, state,
                               keep=keep_checkpoints)

    if resume:
        loaded = load_checkpoint(ckdir)
        if loaded is not None:
            mods, st = loaded
            if (st["n"], st["bs"]) != (n, bs):
                raise ValueError(f"cannot resume: checkpoint was made with n={st['n']}, "
                                 f"batch_size={st['bs']}; now n={n}, batch_size={bs}")
            load_module_state(model, mods["model"])
            load_module_state(objective, mods["objective"])
            load_module_state(opt, mods["optimizer"])
            load_module_state(sched, mods["scheduler"])
            g.set_state(st["gen"])
            torch.set_rng_state(st["torch_rng"])
            start_epoch, start_b = st["epoch"], st["batch"]
            perm, acc = st["perm"], dict(st["acc"])
            if rank > 0:  # global sums live on rank 0 only; they are all-reduced later
                acc = {k: torch.zeros_like(v) for k, v in acc.items()}
            history.records = list(st["records"])
            history.best_epoch = st["best_epoch"]
            best_val, bad_epochs, best_state = st["best_val"], st["bad_epochs"], st["best_state"]
            history.resumed_from_step = st["step"]

    bar = None
    if writer and progress_enabled(progress):
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=start_epoch * nb + start_b, desc=desc,
                   unit="step", dynamic_ncols=True, leave=False)

    step = start_epoch * nb + start_b
    stop = False
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())

    def forward(xt: torch.Tensor) -> AEOutput:
        if not bf16:
            return fwd(xt)
        with autocast:
            out = fwd(xt)
        # losses and terms in fp32
        return AEOutput(out.code.float(), out.reconstruction.float(), out.logits.float(),
                        tuple(a.float() for a in out.preactivations))

    caught: list[int] = []
    old_handlers = {}
    if handle_signals and ckdir is not None and \
            threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, lambda s, f: caught.append(s))
    try:
        for epoch in range(start_epoch, int(epochs)):
            model.train()
            objective.train()
            t0 = time.perf_counter()
            if start_b == 0:
                perm = torch.randperm(n, generator=g) if not full_batch else None
                acc = {}
            for b in range(start_b, nb):
                if full_batch:
                    xb = augment(X, g) if augment is not None else X
                    xt = corruption(xb, g) if corruption is not None else xb
                    last: dict[str, torch.Tensor] = {}

                    def closure(xb=xb, xt=xt, last=last):
                        opt.zero_grad(set_to_none=True)
                        total, parts = objective(model, xb, xt, forward(xt))
                        total.backward()
                        last.update(parts)
                        return total

                    opt.step(closure)
                    parts = last
                    nb_i = n
                else:
                    idx = perm[b * bs:(b + 1) * bs]
                    if world > 1:  # this process's contiguous share of the global batch
                        m_i = idx.shape[0]
                        idx = idx[rank * m_i // world:(rank + 1) * m_i // world]
                        g_noise.manual_seed(int(seed) * 1_000_003 + rank * 7919 + step)
                    xb = X.index_select(0, idx)
                    if augment is not None:
                        xb = augment(xb, g_noise)
                    xt = corruption(xb, g_noise) if corruption is not None else xb
                    total, parts = objective(model, xb, xt, forward(xt))
                    if world > 1:  # DDP averages gradients: weight by the local share
                        total = total * (idx.shape[0] * world / m_i)
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    if max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(all_params, max_grad_norm)
                    opt.step()
                    nb_i = idx.shape[0]
                if step_sched:
                    sched.step()
                step += 1
                for k, v in parts.items():  # running sums, one in-place op per part
                    if k in acc:
                        acc[k].add_(v.detach(), alpha=nb_i)
                    else:
                        acc[k] = v.detach() * nb_i
                if bar is not None:
                    bar.update(1)
                if checkpoint_steps and ckdir is not None and step % checkpoint_steps == 0 \
                        and b + 1 < nb:
                    snapshot(epoch, b + 1, step)
                if old_handlers and (caught or world > 1):
                    sig_now = torch.tensor(float(caught[0]) if caught else 0.0)
                    if world > 1:  # every process must stop at the same step
                        import torch.distributed as dist

                        dist.all_reduce(sig_now, op=dist.ReduceOp.MAX)
                    if sig_now.item():
                        path = snapshot(epoch, b + 1, step)
                        raise TrainingInterrupted(int(sig_now.item()), step, path)
            start_b = 0
            if world > 1:
                for v in acc.values():
                    _all_reduce_sum(v)

            record: dict[str, Any] = {"epoch": epoch + 1, "step": step,
                                      "lr": opt.param_groups[0]["lr"]}
            tot = sum(acc.values())
            record["train_loss"] = float(tot) / n
            if not math.isfinite(record["train_loss"]):
                raise FloatingPointError(
                    f"training loss became {record['train_loss']} at epoch {epoch + 1}; lower the "
                    "learning rate or check the data (the last checkpoint is kept)")
            for k, v in acc.items():
                record[f"train_{k}"] = float(v) / n
            for t in getattr(objective, "terms", ()):
                for k, v in t.metrics().items():  # e.g. dead units of a sparse code
                    record[f"{t.name}_{k}"] = v
            if Xv is not None:
                record.update(evaluate(model, objective, Xv, batch_size=max(bs, 1024),
                                       prefix="val_"))
            record["time_s"] = time.perf_counter() - t0
            history.records.append(record)

            current = record[monitor]
            if current < best_val - min_delta:
                best_val, bad_epochs, history.best_epoch = current, 0, epoch + 1
                if early_stopping is not None and restore_best:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
            if early_stopping is not None and bad_epochs >= early_stopping:
                history.stopped_early = stop = True
            for cb in callbacks:
                if cb(epoch + 1, record, model):
                    stop = True
            if bar is not None:
                bar.set_postfix({"loss": f"{record['train_loss']:.4g}"} |
                                ({"val": f"{record['val_loss']:.4g}"} if Xv is not None else {}))
            if history_path is not None and writer:
                atomic_write_text(history_path, history.to_jsonl())
            if ckdir is not None and ((epoch + 1) % max(1, checkpoint_every) == 0
                                      or epoch + 1 == epochs or stop):
                snapshot(epoch + 1, 0, step)
            if stop:
                break
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    if bar is not None:
        bar.close()
    if best_state is not None and restore_best:
        model.load_state_dict(best_state)
    model.eval()
    return history


@torch.no_grad()
def evaluate(model: Autoencoder, objective: Objective, X: torch.Tensor, *,
             batch_size: int = 1024, prefix: str = "") -> dict[str, float]:
    """Mean objective parts over ``X`` in eval mode without corruption: ``{prefix+"loss", ...}``.

    Terms are averaged per batch weighted by batch size (exact for terms that are means over
    samples).
    """
    was = model.training
    model.eval()
    objective.eval()
    sums: dict[str, float] = {}
    n = X.shape[0]
    for i in range(0, n, batch_size):
        xb = X[i:i + batch_size]
        total, parts = objective(model, xb, xb, model(xb))
        w = xb.shape[0]
        sums["loss"] = sums.get("loss", 0.0) + float(total) * w
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v) * w
    model.train(was)
    return {prefix + k: v / n for k, v in sums.items()}
