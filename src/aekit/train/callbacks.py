"""Callbacks of :func:`aekit.fit`: everything around the core loop, each owning its state.

A callback overrides the hooks it needs; the loop calls them in list order:

* ``on_fit_start(loop)`` once, after a resume has restored every state;
* ``on_batch_end(loop)`` after every optimiser step (``loop.step`` counts them);
* ``on_epoch_end(loop, record) -> bool`` with the epoch's record (add keys to it to log
  them); returning True stops training after this epoch;
* ``on_fit_end(loop)`` once when training ends normally; ``teardown(loop)`` always, last.

State that must survive a kill lives in ``state_dict()`` / ``load_state_dict()`` (the
protocol of ``torch.optim``): a checkpoint holds the model, objective, optimiser, scheduler,
RNG and loop position plus every callback's state under its ``key``, so a resumed run reaches
the same weights, history and decisions as an uninterrupted one. States are nested dicts of
tensors and JSON values (no pickle).

A plain function ``f(epoch, record, model) -> bool`` is accepted wherever a callback is and
wrapped in :class:`FunctionCallback`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_write_text
from ..validation import check_float, check_int
from .checkpoint import save_checkpoint

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "FunctionCallback", "History",
           "ProgressBar", "SignalHandler", "TimeBudget", "TrainingInterrupted", "WeightAverage",
           "progress_enabled"]


class Callback:
    """Base class of :func:`aekit.fit` callbacks: no-op hooks and an empty state."""

    #: Name of this callback's state in a checkpoint (default: the class name; the loop
    #: appends ``#2``, ``#3`` … for repeats).
    key: str | None = None

    def on_fit_start(self, loop) -> None:
        """Called once before the first step (after a resume)."""

    def on_batch_end(self, loop) -> None:
        """Called after every optimiser step."""

    def on_epoch_end(self, loop, record: dict[str, Any]) -> bool | None:
        """Called after every epoch; return True to stop."""

    def on_fit_end(self, loop) -> None:
        """Called once when training ends without an error."""

    def teardown(self, loop) -> None:
        """Called last, always (also after an error): release what ``on_fit_start`` took."""

    def state_dict(self) -> dict[str, Any]:
        """Resumable state (tensors and JSON values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class FunctionCallback(Callback):
    """Wraps ``f(epoch, record, model) -> bool`` (the epoch is 1-based), stateless."""

    def __init__(self, fn: Callable[[int, dict, Any], bool | None]):
        self.fn = fn
        self.key = f"fn:{getattr(fn, '__qualname__', type(fn).__name__)}"

    def on_epoch_end(self, loop, record):
        return self.fn(loop.epoch + 1, record, loop.model)


class History(Callback):
    """Per-epoch records: ``{"epoch", "step", "lr", "time_s", "train_loss", "train_<part>",
    ..., "val_loss", "val_<part>"}`` for every part of the objective's breakdown.

    ``fit`` returns it. With ``path`` the records are written as JSON lines, atomically,
    after every epoch (by the writing process only).
    """

    key = "history"

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = path
        self.records: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.resumed_from_step: int | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def columns(self) -> list[str]:
        """Every key that appears in at least one record, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    def __getitem__(self, key: str) -> list[float]:
        """Column by name, e.g. ``history["val_loss"]`` (NaN in epochs that lack it).

        Indexing is by column name only: an integer or slice raises ``TypeError`` (records
        are ``history.records[i]``), and a name that no record has raises ``KeyError``
        listing the columns.
        """
        if not isinstance(key, str):
            raise TypeError(f"History is indexed by column name (e.g. history['val_loss']), "
                            f"got {type(key).__name__} {key!r}; the per-epoch records are "
                            f"history.records[i]")
        if not any(key in r for r in self.records):
            cols = ", ".join(self.columns) or "none: no epoch has run"
            raise KeyError(f"no column {key!r} in this history; columns: {cols}")
        return [r.get(key, float("nan")) for r in self.records]

    def to_jsonl(self) -> str:
        return "".join(json.dumps(r) + "\n" for r in self.records)

    def on_epoch_end(self, loop, record):
        self.records.append(record)
        if self.path is not None and loop.dist.is_writer:
            atomic_write_text(self.path, self.to_jsonl())

    def state_dict(self):
        return {"records": self.records, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early}

    def load_state_dict(self, state):
        self.records = list(state["records"])
        self.best_epoch, self.stopped_early = state["best_epoch"], state["stopped_early"]


class EarlyStopping(Callback):
    """Track the best epoch of ``monitor``; with ``patience``, stop after that many epochs
    without an improvement of ``min_delta`` and restore the best weights.

    Parameters
    ----------
    patience : int or None
        Epochs without improvement before stopping; None only tracks the best epoch.
    monitor : str
        A key of the epoch record, e.g. ``"val_loss"`` or ``"val_recon"`` (the reconstruction
        alone, penalties excluded).
    min_delta : float
        Improvement needed to count, ``current < best − min_delta``.
    restore_best : bool
        Load the best epoch's weights at the end (only with a ``patience``).
    history : History, optional
        Receives ``best_epoch`` and ``stopped_early``.
    include_start : bool
        Score the model before training too (epoch 0; ``monitor`` must be a ``val_`` key), so
        with ``restore_best`` the result is never worse than the start on validation data.
    mode : {"min", "max"}
        Whether lower (a loss) or higher (a score) values of ``monitor`` are better; with
        "max" an improvement is ``current > best + min_delta``.
    """

    key = "early_stopping"

    def __init__(self, patience: int | None = None, monitor: str = "val_loss",
                 min_delta: float = 0.0, restore_best: bool = True,
                 history: History | None = None, include_start: bool = False,
                 mode: str = "min"):
        self.patience = None if patience is None else check_int("early_stopping", patience, 1)
        self.monitor, self.restore_best, self.history = monitor, bool(restore_best), history
        self.include_start = bool(include_start)
        if self.include_start and not monitor.startswith("val_"):
            raise ValueError(f"include_start needs a validation monitor ('val_...'), got "
                             f"{monitor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.min_delta = check_float("min_delta", min_delta, 0)
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs, self.best_epoch = 0, None
        self.best_state: dict[str, torch.Tensor] | None = None

    def improved(self, current: float) -> bool:
        """``current < best − min_delta`` ("min") or ``current > best + min_delta`` ("max")."""
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    @property
    def keeps_weights(self) -> bool:
        return self.restore_best and (self.patience is not None or self.include_start)

    def on_fit_start(self, loop):
        if self.include_start and loop.step == 0:
            start = loop.validate()
            if self.monitor not in start:
                raise ValueError(f"include_start: the validation record has no "
                                 f"{self.monitor!r} (it has {sorted(start)}); pass val=")
            self.best, self.best_epoch = start[self.monitor], 0
            if self.keeps_weights:
                self.best_state = loop.evaluation_state()

    def on_epoch_end(self, loop, record):
        if self.monitor not in record:
            raise ValueError(f"early stopping monitors {self.monitor!r}, which the epoch "
                             f"record does not have; it has {sorted(record)}")
        current = record[self.monitor]
        stop = False
        if self.improved(current):
            self.best, self.bad_epochs, self.best_epoch = current, 0, loop.epoch + 1
            if self.keeps_weights:
                self.best_state = loop.evaluation_state()
        else:
            self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            stop = True
        if self.history is not None:
            self.history.best_epoch = self.best_epoch
            self.history.stopped_early = self.history.stopped_early or stop
        return stop

    def on_fit_end(self, loop):
        if self.best_state is not None and self.restore_best:
            loop.model.load_state_dict(self.best_state)

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs, "best_epoch": self.best_epoch,
                "best_state": self.best_state}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]
        self.best_epoch, self.best_state = state["best_epoch"], state["best_state"]


class WeightAverage(Callback):
    """Exponential moving average of the weights (Polyak averaging), used for evaluation and
    returned at the end of training.

    After every ``every``-th optimiser step past ``start`` the average ``θ̄`` of every floating
    entry of the model's ``state_dict`` (parameters and buffers such as batch-norm running
    statistics) is updated ``θ̄ ← d_t θ̄ + (1 − d_t) θ``, with ``d_t = decay`` or, with
    ``warmup``, ``d_t = min(decay, (1 + t)/(10 + t))`` after t updates (so early averages do
    not remember the initialisation); the first update sets ``θ̄ = θ``. Integer buffers are
    copied. Validation (``val_*`` keys of the epoch records, hence early stopping and the
    best epoch it restores) is computed with ``θ̄``, and the model holds ``θ̄`` when training
    ends (the best epoch's ``θ̄`` with early stopping). ``θ̄`` and t are checkpointed, so a
    resumed run reaches the same average bit for bit. Cost: one pass over the weights per
    update (``torch._foreach_lerp_``).

    Use it through ``aekit.fit(..., weight_average=decay)``, which puts it before early
    stopping; passed in ``callbacks=`` it is moved there too.

    Parameters
    ----------
    decay : float in (0, 1)
        E.g. 0.999: an average over roughly the last ``1 / (1 − decay)`` updates.
    start : int
        Optimiser steps before averaging begins (0: from the first step).
    warmup : bool
        Use ``min(decay, (1 + t)/(10 + t))``.
    every : int
        Update after every ``every``-th step.

    References
    ----------
    Polyak & Juditsky, "Acceleration of stochastic approximation by averaging", SIAM J.
    Control Optim. 30(4), 1992; Izmailov et al., "Averaging weights leads to wider optima and
    better generalization", UAI 2018 (SWA); the ``num_updates`` warm-up of TensorFlow's
    ``ExponentialMovingAverage``.
    """

    key = "weight_average"

    def __init__(self, decay: float = 0.999, *, start: int = 0, warmup: bool = True,
                 every: int = 1):
        self.decay = check_float("weight_average", decay, 0, 1, lo_open=True, hi_open=True)
        self.start = check_int("start", start, 0)
        self.every = check_int("every", every, 1)
        self.warmup = bool(warmup)
        self.updates = 0
        self.avg: dict[str, torch.Tensor] | None = None
        self._live: dict[str, torch.Tensor] = {}

    def on_fit_start(self, loop):
        # state_dict() tensors share storage with the parameters and buffers; the optimiser
        # updates them in place, so these references stay current
        self._live = dict(loop.model.state_dict())
        if self.avg is not None and set(self.avg) != set(self._live):
            raise ValueError("weight_average: the checkpointed average does not match the "
                             "model's state_dict keys")
        self._float = [k for k, v in self._live.items() if v.is_floating_point()]
        self._other = [k for k, v in self._live.items() if not v.is_floating_point()]
        loop.weight_average = self

    def rate(self) -> float:
        """``1 − d_t`` of the next update."""
        d = self.decay
        if self.warmup:
            d = min(d, (1 + self.updates) / (10 + self.updates))
        return 1.0 - d

    @torch.no_grad()
    def update(self) -> None:
        """One averaging step from the model's current weights."""
        if self.avg is None:
            self.avg = {k: v.detach().clone() for k, v in self._live.items()}
        else:
            if self._float:
                torch._foreach_lerp_([self.avg[k] for k in self._float],
                                     [self._live[k] for k in self._float], self.rate())
            for k in self._other:
                self.avg[k].copy_(self._live[k])
        self.updates += 1

    def on_batch_end(self, loop):
        if loop.step > self.start and (loop.step - self.start) % self.every == 0:
            self.update()

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the averaged weights (the current weights before the first update)."""
        src = self.avg if self.avg is not None else self._live
        return {k: v.detach().clone() for k, v in src.items()}

    @contextlib.contextmanager
    def swapped(self):
        """Context in which the model holds ``θ̄``; its own weights come back after."""
        if self.avg is None:
            yield
            return
        saved = {k: v.clone() for k, v in self._live.items()}
        self._load(self.avg)
        try:
            yield
        finally:
            self._load(saved)

    @torch.no_grad()
    def _load(self, src: dict[str, torch.Tensor]) -> None:
        """Copy ``src`` into the model's parameters and buffers, in place."""
        for k, v in self._live.items():
            v.copy_(src[k])

    def on_fit_end(self, loop):
        if self.avg is not None:
            self._load(self.avg)

    def state_dict(self):
        return {"updates": self.updates, "avg": self.avg}

    def load_state_dict(self, state):
        self.updates, self.avg = int(state["updates"]), state["avg"]


class Checkpoint(Callback):
    """Write ``ckpt-<step>.safetensors`` every ``every`` epochs, every ``steps`` steps, at the
    last epoch and when training stops; keep the ``keep`` newest.

    The file holds the whole training state (:meth:`Loop.training_state`); resume with
    ``fit(..., resume=True)``. Every process takes part (mid-epoch sums are all-reduced);
    only the writer writes.
    """

    key = "checkpoint"

    def __init__(self, directory: str | os.PathLike, every: int = 1, steps: int | None = None,
                 keep: int = 2):
        self.directory = Path(directory)
        self.every = check_int("checkpoint_every", every, 1)
        self.steps = None if not steps else check_int("checkpoint_steps", steps, 1)
        self.keep = check_int("keep_checkpoints", keep, 1)
        #: The file this run wrote last (None until one is written), for error messages.
        self.last_path: Path | None = None

    def save(self, loop, end_of_epoch: bool = False) -> Path | None:
        """Write the current training state now; returns the path (None off the writer).

        ``end_of_epoch``: the epoch's record is complete, so a resume starts the next epoch.
        """
        modules, state = loop.training_state(end_of_epoch)
        if not loop.dist.is_writer:
            return None
        self.last_path = save_checkpoint(self.directory, loop.step, modules, state,
                                         keep=self.keep)
        return self.last_path

    def on_batch_end(self, loop):
        if self.steps and loop.step % self.steps == 0 and loop.batch < loop.n_batches:
            self.save(loop)

    def on_epoch_end(self, loop, record):
        # Runs after the other callbacks (fit puts it last), so their state is current.
        done = loop.epoch + 1
        if done % self.every == 0 or done == loop.epochs or loop.stop:
            self.save(loop, end_of_epoch=True)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`fit` after SIGINT/SIGTERM, once a checkpoint has been written."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


class SignalHandler(Callback):
    """On SIGINT/SIGTERM, write a checkpoint at the next step and raise
    :class:`TrainingInterrupted`. Every process stops at the same step."""

    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint
        self.caught: list[int] = []
        self.old: dict[int, Any] = {}

    def on_fit_start(self, loop):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, lambda s, f: self.caught.append(s))

    def on_batch_end(self, loop):
        if not self.old:
            return
        signum = int(loop.dist.any(float(self.caught[0]) if self.caught else 0.0))
        if signum:
            path = self.checkpoint.save(loop)
            raise TrainingInterrupted(signum, loop.step, path)

    def teardown(self, loop):
        for sig, h in self.old.items():
            signal.signal(sig, h)
        self.old = {}


class TimeBudget(Callback):
    """Stop at the end of the first epoch after ``seconds`` of training (across resumes).

    ``exclude`` (a callable returning seconds) subtracts time spent elsewhere, e.g. on
    evaluations a benchmark does not count.
    """

    key = "time_budget"

    def __init__(self, seconds: float):
        self.seconds = check_float("seconds", seconds, 0, lo_open=True)
        self.spent, self.hit = 0.0, False
        self._t0: float | None = None

    def elapsed(self) -> float:
        return self.spent + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def on_fit_start(self, loop):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, loop, record):
        self.hit = self.hit or self.elapsed() > self.seconds
        return self.hit

    def state_dict(self):
        return {"spent": self.elapsed(), "hit": self.hit}

    def load_state_dict(self, state):
        self.spent, self.hit = float(state["spent"]), bool(state["hit"])


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars show only on a terminal and never under ``CI=true``."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return sys.stderr.isatty()


class ProgressBar(Callback):
    """A tqdm bar over optimiser steps with the last epoch's losses (writer process only)."""

    def __init__(self, desc: str = "train"):
        self.desc, self.bar = desc, None

    def on_fit_start(self, loop):
        if loop.dist.is_writer:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=loop.n_batches * loop.epochs, initial=loop.step,
                            desc=self.desc, unit="step", dynamic_ncols=True, leave=False)

    def on_batch_end(self, loop):
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, loop, record):
        if self.bar is not None:
            self.bar.set_postfix({k.split("_", 1)[0]: f"{record[k]:.4g}"
                                  for k in ("train_loss", "val_loss") if k in record})

    def teardown(self, loop):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
