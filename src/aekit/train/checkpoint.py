"""Saving and loading models and resumable training checkpoints (safetensors + JSON, atomic).

A saved model is one ``.safetensors`` file whose header holds the registry name and the
constructor arguments; :func:`load` rebuilds the architecture from those and fills in the
weights. Nothing in a file is ever executed: there is no pickle on any path.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import FileFormatError, load_tensor_file, pack_tree, save_tensor_file, unpack_tree
from ..models import MODELS, Autoencoder

__all__ = ["find_checkpoints", "load", "load_checkpoint", "save_checkpoint", "save_model"]

MODEL_FORMAT = "aekit-model"
CHECKPOINT_FORMAT = "aekit-checkpoint"


def save_model(model: Autoencoder, path: str | os.PathLike, *,
               extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` to ``path`` (a ``.safetensors`` file), atomically.

    The header records ``{"model": name, "config": model.config(), "extra": extra}``; the
    tensors are ``model.state_dict()`` (a tied weight is stored once).
    """
    if model.name not in MODELS:
        raise ValueError(f"model class {type(model).__name__} has no registry name in MODELS")
    path = Path(path)
    save_tensor_file(path, dict(model.state_dict()), MODEL_FORMAT,
                     {"model": model.name, "config": model.config(), "extra": extra or {}})
    return path


def load(path: str | os.PathLike, *, with_meta: bool = False):
    """Rebuild a model saved by :func:`save_model` or a run directory's ``model.safetensors``.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` model file, or a run directory containing ``model.safetensors``.
    with_meta : bool
        Also return the file's JSON header.

    Returns
    -------
    model : Autoencoder, in eval mode (and ``meta`` dict if ``with_meta``).

    Raises
    ------
    FileNotFoundError, aekit.io.FileFormatError
        Missing path; truncated, corrupt, foreign or pickled file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    tensors, doc = load_tensor_file(path, MODEL_FORMAT)
    name = doc.get("model")
    if name not in MODELS:
        raise FileFormatError(f"{path} holds unknown model {name!r}; known: {', '.join(MODELS)}")
    config = doc.get("config")
    if not isinstance(config, dict):
        raise FileFormatError(f"{path} has no model config in its header")
    try:
        model = MODELS[name](**config)
        model.load_state_dict(tensors, strict=True)
    except (TypeError, RuntimeError, ValueError) as e:
        raise FileFormatError(f"{path}: weights do not match the {name!r} model "
                              f"described in its header: {e}") from None
    model.eval()
    return (model, doc) if with_meta else model


_CKPT = re.compile(r"^ckpt-(\d{10})\.safetensors$")


def find_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint files in ``directory``, newest (highest global step) first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(directory: str | os.PathLike, step: int, modules: dict[str, Any],
                    state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``ckpt-<step>.safetensors`` atomically and keep the ``keep`` newest.

    ``modules`` maps names to objects with ``state_dict()`` (model, objective, optimizer,
    scheduler); ``state`` is any nested dict/list of tensors and JSON scalars (RNG states,
    counters, history). Everything is stored as tensors + JSON; nothing is pickled.
    """
    tensors: dict[str, torch.Tensor] = {}
    tree = {
        "modules": {k: pack_tree(v.state_dict(), f"m.{k}", tensors) for k, v in modules.items()},
        "state": pack_tree(state, "s", tensors),
    }
    # Tensors that alias (e.g. optimizer state sharing storage) must be separate for safetensors.
    tensors = {k: v.detach().clone() for k, v in tensors.items()}
    path = Path(directory) / f"ckpt-{int(step):010d}.safetensors"
    save_tensor_file(path, tensors, CHECKPOINT_FORMAT, {"step": int(step), "tree": tree})
    for old in find_checkpoints(directory)[max(1, keep):]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Load the newest readable checkpoint in ``directory``.

    Returns ``(module_states, state)`` or None if there is none. A corrupt or truncated newest
    checkpoint is skipped with a warning and the previous one is used.
    """
    for path in find_checkpoints(directory):
        try:
            tensors, doc = load_tensor_file(path, CHECKPOINT_FORMAT)
        except (FileFormatError, OSError) as e:
            warnings.warn(f"skipping unreadable checkpoint {path.name}: {e}", stacklevel=2)
            continue
        tree = doc["tree"]
        mods = {k: unpack_tree(v, tensors) for k, v in tree["modules"].items()}
        return mods, unpack_tree(tree["state"], tensors)
    return None


def load_module_state(module: nn.Module | Any, state: dict) -> None:
    """``load_state_dict`` with a clear error when a checkpoint does not match."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as e:
        raise FileFormatError(f"checkpoint does not match this training setup: {e}") from None
