"""Training: the one loop, checkpoints and saved models."""

from .checkpoint import find_checkpoints, load, load_checkpoint, save_checkpoint, save_model
from .fit import OPTIMIZERS, SCHEDULES, History, TrainingInterrupted, evaluate, fit, lr_factor
from .pretrain import (
    ContrastiveDivergence,
    Pretrained,
    pretrain_layers,
    rbm_objective,
    stack_into_deep_ae,
)

__all__ = ["OPTIMIZERS", "SCHEDULES", "ContrastiveDivergence", "History", "Pretrained",
           "TrainingInterrupted", "evaluate", "find_checkpoints", "fit", "load",
           "load_checkpoint", "lr_factor", "pretrain_layers", "rbm_objective",
           "save_checkpoint", "save_model", "stack_into_deep_ae"]
