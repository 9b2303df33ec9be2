"""The one training loop, :func:`fit`: batch → corruption → objective → step → running sums →
callbacks. Everything else (early stopping, checkpoints, history, progress, signals, time
budgets, monitors) is a callback owning its state (:mod:`aekit.train.callbacks`), and
everything that depends on the process count is a strategy (:mod:`aekit.train.distributed`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.batch import ArraySource, Batch, DataSource, as_source
from ..objectives import Objective
from .callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    FunctionCallback,
    History,
    ProgressBar,
    SignalHandler,
    TrainingInterrupted,
    WeightAverage,
    progress_enabled,
)
from .checkpoint import load_checkpoint, load_module_state
from .distributed import SingleProcess, strategy
from .optim import check_fit_args, lr_factor, make_optimizer, resolve_precision

__all__ = ["Loop", "TrainingInterrupted", "evaluate", "fit"]


def _source(data: Any, model: nn.Module, dtype: torch.dtype, name: str) -> DataSource:
    return as_source(data, dtype=dtype, n_features=getattr(model, "n_features", None), name=name)


class Loop:
    """The state of one training run, read and changed by callbacks.

    Attributes
    ----------
    model, objective, optimizer, scheduler
    data : DataSource; val : DataSource or None
    epochs, n_batches, batch_size : int
    epoch : int
        Current epoch, 0-based. ``batch``: batches done in it; ``step``: optimiser steps done.
    sums : dict[str, Tensor]
        Running sums over the epoch of every objective part times its batch size.
    stop : bool
        Set by a callback (or returned from ``on_epoch_end``) to end after this epoch.
    dist : SingleProcess or DataParallel
    callbacks : list[Callback]
    """

    def __init__(self, model: nn.Module, objective: Objective, data: DataSource,
                 optimizer: torch.optim.Optimizer, scheduler, *, epochs: int, batch_size: int,
                 generator: torch.Generator, dist: SingleProcess, callbacks: Sequence[Callback],
                 val: DataSource | None = None, corruption: Callable | None = None,
                 augment: Callable | None = None, max_grad_norm: float | None = None,
                 precision: str = "fp32", step_scheduler: bool = True):
        self.model, self.objective, self.data, self.val = model, objective, data, val
        self.optimizer, self.scheduler, self.generator, self.dist = \
            optimizer, scheduler, generator, dist
        self.corruption, self.augment, self.max_grad_norm = corruption, augment, max_grad_norm
        self.full_batch = isinstance(optimizer, torch.optim.LBFGS)
        self.n = len(data)
        self.batch_size = self.n if self.full_batch else min(int(batch_size), self.n)
        self.n_batches = 1 if self.full_batch else dist.batches_per_epoch(self.n,
                                                                          self.batch_size)
        self.epochs, self.step_scheduler = int(epochs), step_scheduler
        self.callbacks = list(callbacks)
        self.forward = dist.wrap(model)
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.autocast = precision == "bf16"
        self.epoch = self.batch = self.step = 0
        self.perm: torch.Tensor | None = None
        self.sums: dict[str, torch.Tensor] = {}
        self.stop = False
        self.resumed_from_step: int | None = None
        #: set by a :class:`~aekit.train.callbacks.WeightAverage` callback at fit start
        self.weight_average = None

    # --- the core -------------------------------------------------------------------------
    def next_batch(self, b: int) -> tuple[Batch, float, int]:
        """Batch ``b`` of the epoch: rows, augmentation, corruption; its loss scale and size."""
        if self.full_batch:
            batch, scale, g = self.data.all(), 1.0, self.generator
        else:
            idx = self.perm[b * self.batch_size:(b + 1) * self.batch_size]
            idx, scale, g = self.dist.shard(idx, self.step, self.generator)
            batch = self.data.take(idx)
        if self.augment is not None:
            batch = batch._replace(x=self.augment(batch.x, g))
        if self.corruption is not None:
            batch = batch._replace(x_tilde=self.corruption(batch.x, g))
        return batch, scale, batch.size

    def objective_step(self, batch: Batch, scale: float) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``; returns the objective's parts."""
        last: dict[str, torch.Tensor] = {}

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast \
                    else contextlib.nullcontext():
                total, parts = self.objective(self.model, batch, forward=self.forward)
            (total * scale if scale != 1.0 else total).backward()
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            last.update(parts)
            return total

        if self.full_batch:
            self.optimizer.step(closure)  # L-BFGS evaluates the closure several times
        else:
            closure()
            self.optimizer.step()
        return last

    def run(self) -> None:
        """Train from the current position to ``epochs`` (or until a callback stops it)."""
        # Only callbacks that override the per-step hook are called every step.
        per_step = [cb.on_batch_end for cb in self.callbacks
                    if type(cb).on_batch_end is not Callback.on_batch_end]
        try:
            for cb in self.callbacks:
                cb.on_fit_start(self)
            while self.epoch < self.epochs and not self.stop:
                self.model.train()
                self.objective.train()
                t0 = time.perf_counter()
                if self.batch == 0:
                    self.perm = None if self.full_batch else torch.randperm(
                        self.n, generator=self.generator)
                    self.sums = {}
                while self.batch < self.n_batches:
                    batch, scale, m = self.next_batch(self.batch)
                    parts = self.objective_step(batch, scale)
                    if self.step_scheduler:
                        self.scheduler.step()
                    self.batch += 1
                    self.step += 1
                    for k, v in parts.items():  # running sums, one in-place op per part
                        if k in self.sums:
                            self.sums[k].add_(v.detach(), alpha=m)
                        else:
                            self.sums[k] = v.detach() * m
                    for hook in per_step:
                        hook(self)
                record = self.epoch_record(t0)
                for cb in self.callbacks:
                    if cb.on_epoch_end(self, record):
                        self.stop = True
                # every process stops together: a stop decided on one (a wall-clock budget,
                # a callback of its own) would otherwise leave the others in a collective
                self.stop = bool(self.dist.any(float(self.stop)))
                self.epoch, self.batch = self.epoch + 1, 0
            for cb in self.callbacks:
                cb.on_fit_end(self)
        finally:
            for cb in self.callbacks:
                cb.teardown(self)

    def epoch_record(self, t0: float) -> dict[str, Any]:
        """The epoch's record: mean parts over the epoch, term metrics, validation."""
        self.dist.all_reduce_(self.sums.values())
        record: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step,
                                  "lr": self.optimizer.param_groups[0]["lr"]}
        record["train_loss"] = float(sum(self.sums.values())) / self.n
        if not torch.isfinite(torch.tensor(record["train_loss"])):
            raise FloatingPointError(
                f"training loss became {record['train_loss']} at epoch {self.epoch + 1}; "
                "lower the learning rate or check the data" + self._kept_checkpoint())
        record.update({f"train_{k}": float(v) / self.n for k, v in self.sums.items()})
        record.update(self.objective.metrics())
        self.dist.sync_buffers_(self.model)  # every rank validates (and keeps) rank 0's model
        record.update(self.validate())
        record["time_s"] = time.perf_counter() - t0
        return record

    def _kept_checkpoint(self) -> str:
        """Names the checkpoint a failed run leaves behind, only when one exists on disk."""
        for cb in self.callbacks:
            if isinstance(cb, Checkpoint):
                p = cb.last_path
                if p is not None and Path(p).exists():
                    return f" (the last checkpoint, {p}, is kept)"
                if self.resumed_from_step is not None:
                    return (f" (the checkpoint this run resumed from, step "
                            f"{self.resumed_from_step}, is kept in {cb.directory})")
                return " (no checkpoint was written before the failure)"
        return ""

    def validate(self) -> dict[str, float]:
        """``{"val_loss", "val_<part>"}`` of the current model on the validation data ({}
        without any)."""
        if self.val is None:
            return {}
        with self.weight_average.swapped() if self.weight_average is not None \
                else contextlib.nullcontext():
            return evaluate(self.model, self.objective, self.val,
                            batch_size=max(self.batch_size, 1024), prefix="val_")

    def evaluation_state(self) -> dict[str, torch.Tensor]:
        """A copy of the weights validation uses: the model's, or their running average
        with a :class:`~aekit.train.callbacks.WeightAverage` callback."""
        if self.weight_average is not None:
            return self.weight_average.state()
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # --- checkpoint state ----------------------------------------------------------------
    def callback_states(self) -> dict[str, Callback]:
        """Callbacks by their unique checkpoint key."""
        out: dict[str, Callback] = {}
        for cb in self.callbacks:
            key = cb.key or type(cb).__name__
            k, i = key, 1
            while k in out:
                i += 1
                k = f"{key}#{i}"
            out[k] = cb
        return out

    def training_state(self, end_of_epoch: bool = False) -> tuple[dict[str, Any], dict]:
        """``(modules, state)`` of a checkpoint: every state_dict, the RNGs and the position.

        Collective under data parallelism (mid-epoch sums are all-reduced).
        """
        sums = {} if end_of_epoch else {k: v.clone() for k, v in self.sums.items()}
        self.dist.all_reduce_(sums.values())
        state = {
            "epoch": self.epoch + 1 if end_of_epoch else self.epoch,
            "batch": 0 if end_of_epoch else self.batch, "step": self.step,
            "perm": None if end_of_epoch or self.perm is None else self.perm,
            "sums": sums, "gen": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "n": self.n, "bs": self.batch_size, "epochs": self.epochs,
            "callbacks": {k: cb.state_dict() for k, cb in self.callback_states().items()},
        }
        modules = {"model": self.model, "objective": self.objective,
                   "optimizer": self.optimizer, "scheduler": self.scheduler}
        return modules, state

    def restore(self, modules: dict[str, Any], state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`training_state`."""
        if "callbacks" not in state:
            raise ValueError("cannot resume: the checkpoint was written by an older aekit "
                             "training loop; start the run again")
        if (state["n"], state["bs"]) != (self.n, self.batch_size):
            raise ValueError(f"cannot resume: checkpoint was made with n={state['n']}, "
                             f"batch_size={state['bs']}; now n={self.n}, "
                             f"batch_size={self.batch_size}")
        for name in ("model", "objective", "optimizer", "scheduler"):
            load_module_state(getattr(self, name), modules[name])
        self.generator.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.perm = state["perm"]
        # Global sums live on the writer only; other processes add zeros when reducing.
        self.sums = {k: (v if self.dist.is_writer else torch.zeros_like(v))
                     for k, v in state["sums"].items()}
        saved = state["callbacks"]
        for key, cb in self.callback_states().items():
            if key in saved:
                cb.load_state_dict(saved[key])
            elif cb.state_dict():
                raise ValueError(f"cannot resume: the checkpoint has no state for callback "
                                 f"{key!r} (it was written with other callbacks)")
        self.resumed_from_step = state["step"]


def fit(
    model: nn.Module,
    objective: Objective,
    data: Any,
    *,
    corruption: Callable[..., torch.Tensor] | None = None,
    augment: Callable[..., torch.Tensor] | None = None,
    val: Any = None,
    max_iter: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    momentum: float = 0.9,
    optimizer_weight_decay: float = 0.0,
    schedule: str = "constant",
    warmup_steps: int = 0,
    min_lr_factor: float = 0.0,
    step_size: int = 10,
    gamma: float = 0.1,
    lbfgs_max_iter: int = 20,
    max_grad_norm: float | None = None,
    early_stopping: int | None = None,
    monitor: str | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    include_start: bool = False,
    weight_average: float | None = None,
    callbacks: Sequence[Callback | Callable] = (),
    random_state: int = 0,
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
    params: Sequence[nn.Parameter] | None = None,
    generator: torch.Generator | None = None,
    **renamed: Any,
) -> History:
    """Train ``model`` to minimise ``objective`` on ``data``; the one loop every trainer uses.

    Each step takes a mini-batch from a seeded permutation of the data, augments and corrupts
    its inputs (``x̃ = corruption(x, generator)``), evaluates
    ``(J, parts) = objective(model, Batch(x, x̃, y))`` and takes an optimiser step on J; the
    parts are summed over the epoch and logged. With ``optimizer="lbfgs"`` each epoch is one
    full-batch L-BFGS step of ``lbfgs_max_iter`` iterations (the corruption, if any, drawn once
    per epoch so the function is fixed).

    Parameters
    ----------
    model : nn.Module
        An autoencoder (output :class:`~aekit.models.base.AEOutput`) or any module whose
        output the objective's loss understands (e.g. a classifier's logits).
    objective : Objective
        Its parameters (e.g. learned variances of ``gaussian_nll``) are trained too.
    data : array-like, ``(X, Y)`` tuple or DataSource
        ``X`` (n, d) alone trains a reconstruction; ``(X, Y)`` pairs inputs with targets
        (images, masks, int64 labels). Must be finite. An ``np.memmap`` or
        :class:`aekit.data.NpyReader` ``X`` is streamed batch by batch.
    corruption : callable ``(x, generator) -> x̃``, optional
        Applied to training inputs only; the loss is against the clean ``x`` (or ``y``).
    augment : callable ``(x, generator) -> x'``, optional
        Replaces the training input itself (so a reconstruction target too); drawn before the
        corruption from the same seeded generator. Validation data is never augmented. With
        targets ``(X, Y)`` only for class labels (1-D integer ``Y``, unchanged by the
        transform); paired image targets need the transform inside the data source.
    val : like ``data``, optional
        Evaluated each epoch in eval mode without corruption: ``val_loss``, ``val_<part>``.
    max_iter : int, default=10
        Epochs (passes over the data; scikit-learn's name). Old name ``epochs``.
    batch_size : int, default=128
    optimizer : {"adam", "adamw", "sgd", "lbfgs"}
    learning_rate : float, default=1e-3
        Old name ``lr``.
    momentum : float
    optimizer_weight_decay : float, default=0.0
        The optimiser's own decay (decoupled for AdamW). Old name ``weight_decay``: everywhere
        else ``weight_decay`` is the logged, bias-free objective term
        :class:`aekit.objectives.WeightDecay` (``make_objective(weight_decay=...)``).
    schedule, warmup_steps, min_lr_factor, step_size, gamma
        Learning-rate schedule stepped per optimiser step (see :func:`lr_factor`).
    max_grad_norm : float, optional
        Clip the global gradient norm.
    early_stopping : int, optional
        Patience of :class:`~aekit.train.callbacks.EarlyStopping` on ``monitor`` (default
        ``val_loss`` with ``val``, else ``train_loss``), ``min_delta``, ``restore_best``. The
        best epoch is tracked either way (``History.best_epoch``).
    include_start : bool
        Also score the model before the first step (epoch 0) on ``monitor`` (a ``val_`` key),
        so with ``restore_best`` training never ends worse than where it started on the
        validation data (e.g. a model initialised at PCA).
    weight_average : float in (0, 1), optional
        Keep an exponential moving average of the weights with this decay (e.g. 0.999;
        :class:`~aekit.train.callbacks.WeightAverage`): validation, early stopping and the
        returned model use the average (Polyak & Juditsky 1992).
    callbacks : sequence of Callback or ``f(epoch, record, model) -> bool``
        Run after the built-in early stopping and before history and checkpoints.
    random_state : int, default=0
        Seeds the generator for shuffling and corruption and torch's global RNG (dropout):
        the same seed gives identical weights. Old name ``seed``.
    checkpoint_dir, checkpoint_every, checkpoint_steps, keep_checkpoints
        :class:`~aekit.train.callbacks.Checkpoint`: the whole training state, atomically.
    resume : bool
        Continue from the newest readable checkpoint in ``checkpoint_dir``; the result is
        identical to an uninterrupted run.
    history_path : path, optional
        JSON-lines history rewritten atomically after every epoch.
    progress : bool, optional
        Progress bar on/off; by default on only for a terminal and not under CI.
    precision : {"fp32", "bf16"}
        ``"bf16"`` runs the objective under CPU autocast (model outputs cast back to fp32
        for the losses), only where the CPU has native bf16; elsewhere it warns, uses fp32.
    handle_signals : bool
        With a ``checkpoint_dir``, SIGINT/SIGTERM write a checkpoint at the next step and
        raise :class:`TrainingInterrupted`.
    params : sequence of Parameter, optional
        What the optimiser updates (default: the model's and the objective's trainable
        parameters), e.g. a classifier's head alone.
    generator : torch.Generator, optional
        Draws the shuffling and the corruption instead of a generator seeded with ``seed``
        (its state is checkpointed like the default one's).

    **renamed
        The old names ``epochs``, ``lr``, ``seed`` and ``weight_decay``, accepted with a
        FutureWarning until the next release (:data:`aekit.schema.RENAMED_KWARGS`).

    The defaults of this low-level loop differ from the run and estimator defaults for the
    reasons in :data:`aekit.schema.SURFACE_EXCEPTIONS`.

    Data parallelism under ``torchrun`` is handled by :mod:`aekit.train.distributed`:
    ``batch_size`` is then the global batch and only rank 0 writes.

    Returns
    -------
    History
        Per-epoch records with every part of the objective.

    References
    ----------
    Kingma & Ba, "Adam", ICLR 2015; Nocedal & Wright, *Numerical Optimization*, ch. 7 (L-BFGS).
    """
    if renamed:
        from ..schema import pop_renamed

        given = {"max_iter": max_iter, "learning_rate": learning_rate,
                 "random_state": random_state, "optimizer_weight_decay": optimizer_weight_decay}
        new = pop_renamed("aekit.fit", renamed, given, _FIT_DEFAULTS)
        max_iter, learning_rate = new["max_iter"], new["learning_rate"]
        random_state, optimizer_weight_decay = new["random_state"], new["optimizer_weight_decay"]
    epochs, lr, seed = max_iter, learning_rate, random_state
    check_fit_args(max_iter=epochs, batch_size=batch_size, learning_rate=lr,
                   optimizer=optimizer, schedule=schedule, early_stopping=early_stopping,
                   precision=precision)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    objective.check_model(model)
    dist = strategy(seed)
    if dist.world > 1 and optimizer == "lbfgs":
        raise ValueError("optimizer='lbfgs' (full batch) is not supported with torch.distributed")
    if dist.world > 1 and any(t.needs_input_grad for t in getattr(objective, "terms", ())):
        raise ValueError("terms that differentiate the input (FGSM, VAT) are not supported "
                         "with torch.distributed")
    ps = list(model.parameters())
    dtype = ps[0].dtype if ps else torch.float32
    source = _source(data, model, dtype, "X")
    if (augment is not None and isinstance(source, ArraySource) and source.Y is not None
            and not (source.Y.ndim == 1 and not source.Y.is_floating_point())):
        raise ValueError("augment transforms the inputs only; with targets (X, Y) other than "
                         "class labels put the transform in the data source so both get it")
    val_source = _source(val, model, dtype, "val") if val is not None else None
    objective.to(dtype)
    if params is None:
        params = ps + [p for p in objective.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, list(params), lr, momentum, optimizer_weight_decay,
                         lbfgs_max_iter)
    g = generator if generator is not None else torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    history = History(history_path)
    monitor = monitor or ("val_loss" if val is not None else "train_loss")
    cbs: list[Callback] = [EarlyStopping(early_stopping, monitor, min_delta, restore_best,
                                         history, include_start=include_start)]
    cbs += [cb if isinstance(cb, Callback) else FunctionCallback(cb) for cb in callbacks]
    if weight_average is not None:
        cbs.insert(0, WeightAverage(weight_average))
    # a weight average goes first: early stopping snapshots (and restores) the average
    cbs.sort(key=lambda cb: not isinstance(cb, WeightAverage))
    if sum(isinstance(cb, WeightAverage) for cb in cbs) > 1:
        raise ValueError("weight_average is given twice (the argument and a WeightAverage "
                         "callback)")
    if progress_enabled(progress):
        cbs.append(ProgressBar(desc))
    cbs.append(history)
    if checkpoint_dir is not None:
        ckpt = Checkpoint(checkpoint_dir, checkpoint_every, checkpoint_steps, keep_checkpoints)
        cbs += [ckpt] + ([SignalHandler(ckpt)] if handle_signals else [])
    # L-BFGS sees one batch per epoch; the schedule counts optimiser steps either way.
    loop = Loop(model, objective, source, opt, None, epochs=epochs, batch_size=batch_size,
                generator=g, dist=dist, callbacks=cbs, val=val_source, corruption=corruption,
                augment=augment, max_grad_norm=max_grad_norm,
                precision=resolve_precision(precision),
                # a constant schedule never changes the rate; skip its per-step overhead
                step_scheduler=schedule != "constant" or warmup_steps > 0)
    total = loop.n_batches * loop.epochs
    loop.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(
        schedule, s, total, loop.n_batches, warmup_steps=warmup_steps,
        min_factor=min_lr_factor, step_size=step_size, gamma=gamma))
    if resume:
        loaded = load_checkpoint(Path(checkpoint_dir), strict=True)
        if loaded is not None:
            loop.restore(*loaded)
            history.resumed_from_step = loop.resumed_from_step
    dist.run(loop)  # loop.run(), then a data-parallel strategy frees its DDP wrapper
    model.eval()
    return history


_FIT_DEFAULTS = {"max_iter": 10, "learning_rate": 1e-3, "random_state": 0,
                 "optimizer_weight_decay": 0.0}


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, data: Any, *, batch_size: int = 1024,
             prefix: str = "") -> dict[str, float]:
    """Mean objective parts over ``data`` in eval mode without corruption.

    Returns ``{prefix + "loss": ..., prefix + <part>: ...}``; terms are averaged per batch,
    weighted by batch size (exact for terms that are means over samples). ``data`` is like
    :func:`fit`'s (``X``, ``(X, Y)`` or a source).
    """
    ps = list(model.parameters())
    source = _source(data, model, ps[0].dtype if ps else torch.float32, "data")
    was = model.training
    model.eval()
    objective.eval()
    sums: dict[str, float] = {}
    n = len(source)
    try:
        with torch.enable_grad() if any(t.needs_input_grad for t in objective.terms) \
                else contextlib.nullcontext():
            for i in range(0, n, batch_size):
                batch = source.take(torch.arange(i, min(i + batch_size, n)))
                total, parts = objective(model, batch)
                w = batch.size
                sums["loss"] = sums.get("loss", 0.0) + float(total) * w
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * w
    finally:
        model.train(was)
    return {prefix + k: v / n for k, v in sums.items()}
