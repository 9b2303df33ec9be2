"""Training: the one loop, its callbacks and strategies, checkpoints and saved models."""

from .batchnorm import recalibrate_batch_norm
from .callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    FunctionCallback,
    History,
    ProgressBar,
    SignalHandler,
    TimeBudget,
    TrainingInterrupted,
    WeightAverage,
)
from .checkpoint import find_checkpoints, load, load_checkpoint, save_checkpoint, save_model
from .fit import Loop, evaluate, fit
from .optim import OPTIMIZERS, PRECISIONS, SCHEDULES, lr_factor, native_bf16, resolve_precision
from .pretrain import Pretrained, pretrain_layers, stack_into_deep_ae

__all__ = ["OPTIMIZERS", "PRECISIONS", "SCHEDULES", "Callback", "Checkpoint", "EarlyStopping",
           "FunctionCallback", "History", "Loop", "Pretrained", "ProgressBar", "SignalHandler",
           "TimeBudget", "TrainingInterrupted", "WeightAverage", "evaluate", "find_checkpoints",
           "fit", "load", "load_checkpoint", "lr_factor", "native_bf16", "pretrain_layers",
           "recalibrate_batch_norm", "resolve_precision", "save_checkpoint", "save_model",
           "stack_into_deep_ae"]
