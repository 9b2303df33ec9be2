"""Training: the one loop, checkpoints and saved models."""

from .checkpoint import find_checkpoints, load, load_checkpoint, save_checkpoint, save_model
from .fit import OPTIMIZERS, SCHEDULES, History, evaluate, fit, lr_factor

__all__ = ["OPTIMIZERS", "SCHEDULES", "History", "evaluate", "find_checkpoints", "fit", "load",
           "load_checkpoint", "lr_factor", "save_checkpoint", "save_model"]
