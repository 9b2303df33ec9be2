"""Optimisers, learning-rate schedules, precision and the checks of :func:`aekit.fit`'s
options."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from ..validation import check_choice, check_float, check_int

__all__ = ["OPTIMIZERS", "PRECISIONS", "SCHEDULES", "check_fit_args", "lr_factor",
           "make_optimizer", "native_bf16", "resolve_precision"]

OPTIMIZERS = ("adam", "adamw", "sgd", "lbfgs")
SCHEDULES = ("constant", "cosine", "step", "exponential")
PRECISIONS = ("fp32", "bf16")


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


def make_optimizer(name: str, params: list[nn.Parameter], lr: float, momentum: float,
                   weight_decay: float, lbfgs_max_iter: int) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``params``: Adam/AdamW (fused kernels where available),
    SGD with Nesterov momentum, or L-BFGS with a strong-Wolfe line search (full batch).

    References: Kingma & Ba, "Adam", ICLR 2015; Loshchilov & Hutter, "Decoupled weight decay
    regularization", ICLR 2019; Nocedal & Wright, *Numerical Optimization*, ch. 7 (L-BFGS).
    """
    params = [{"params": list(params)}]  # one group; an empty one is allowed (nothing trains)
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


def check_fit_args(*, max_iter: int, batch_size: int, learning_rate: float, optimizer: str,
                   schedule: str, early_stopping: int | None, precision: str = "fp32") -> None:
    """Validate :func:`fit`'s options up front (callers use it before creating anything)."""
    check_int("max_iter", max_iter, 0)
    check_int("batch_size", batch_size, 1)
    check_float("learning_rate", learning_rate, 0, lo_open=True)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("schedule", schedule, SCHEDULES)
    if early_stopping is not None:
        check_int("early_stopping", early_stopping, 1)
    check_choice("precision", precision, PRECISIONS)
