"""Saving and loading models and resumable training checkpoints (safetensors + JSON, atomic).

A saved model is one ``.safetensors`` file whose header holds the registry name and the
constructor arguments; :func:`load` rebuilds the architecture from those and fills in the
weights. Nothing in a file is ever executed: there is no pickle on any path.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import FileFormatError, expect, load_tensor_file, pack_tree, save_tensor_file, unpack_tree
from ..models import MODELS, Autoencoder

__all__ = ["checkpoint_owner", "find_checkpoints", "load", "load_checkpoint",
           "read_checkpoint", "save_checkpoint", "save_model"]

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
    if not isinstance(name, str) or name not in MODELS:
        raise FileFormatError(f"{path} holds unknown model {name!r}; known: {', '.join(MODELS)}",
                              path=path, field="model", expected=", ".join(MODELS))
    config = doc.get("config")
    if not isinstance(config, dict):
        raise FileFormatError(f"{path} has no model config in its header")
    try:
        # Build on the meta device first (no memory) and compare shapes with the stored
        # tensors, so a header claiming a huge model cannot make us allocate it.
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in MODELS[name](**config).state_dict().items()}
        stored = {k: tuple(v.shape) for k, v in tensors.items()}
        if shapes != stored:
            diff = sorted(set(shapes.items()) ^ set(stored.items()))[:4]
            raise ValueError(f"tensor names/shapes differ: {diff}")
        model = MODELS[name](**config)
        model.load_state_dict(tensors, strict=True)
    except (TypeError, RuntimeError, ValueError, AttributeError, KeyError, IndexError,
            OverflowError, NotImplementedError) as e:
        raise FileFormatError(f"{path}: weights do not match the {name!r} model "
                              f"described in its header: {e}", path=path, field="config",
                              expected=f"the {name!r} model of the stored weights") from None
    model.eval()
    return (model, doc) if with_meta else model


# ckpt-<step>.safetensors (no owner) or ckpt-<step>-<run id>.safetensors (a run's own)
_CKPT = re.compile(r"^ckpt-(\d{10})(?:-([0-9a-f]{8,32}))?\.safetensors$")
_RUN_ID = re.compile(r"^[0-9a-f]{8,32}$")
_OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("aekit_ckpt_owner",
                                                                    default=None)
_TREE_STATE_KEYS = ("epoch", "batch", "step", "perm", "sums", "gen", "torch_rng", "n", "bs",
                    "epochs", "callbacks")
_TREE_MODULES = ("model", "objective", "optimizer", "scheduler")


@contextlib.contextmanager
def checkpoint_owner(run_id: str | None) -> Iterator[None]:
    """Within this block, checkpoints belong to run ``run_id`` (8-32 lowercase hex digits).

    Saving stamps the id into the file name (``ckpt-<step>-<id>.safetensors``) and the
    header; finding, loading and clean-up only see files of this run, so a checkpoint that
    another run left in the same folder is ignored, never loaded and never deleted. Outside
    such a block (plain :func:`aekit.fit` use) every ``ckpt-*.safetensors`` file counts.
    """
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ValueError(f"run_id must be 8-32 lowercase hex digits, got {run_id!r}")
    token = _OWNER.set(run_id)
    try:
        yield
    finally:
        _OWNER.reset(token)


def find_checkpoints(directory: str | os.PathLike, run_id: str | None = None) -> list[Path]:
    """Checkpoint files in ``directory``, newest (highest global step) first.

    With ``run_id`` (or inside :func:`checkpoint_owner`) only that run's files are listed.
    """
    run_id = run_id if run_id is not None else _OWNER.get()
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT.match(p.name))
             and (run_id is None or m.group(2) == run_id) and p.is_file()]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(directory: str | os.PathLike, step: int, modules: dict[str, Any],
                    state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``ckpt-<step>.safetensors`` atomically and keep the ``keep`` newest.

    ``modules`` maps names to objects with ``state_dict()`` (model, objective, optimizer,
    scheduler); ``state`` is any nested dict/list of tensors and JSON scalars (RNG states,
    counters, history). Everything is stored as tensors + JSON; nothing is pickled. Inside
    :func:`checkpoint_owner` the file carries the run id and clean-up only removes that
    run's older checkpoints.
    """
    run_id = _OWNER.get()
    tensors: dict[str, torch.Tensor] = {}
    tree = {
        "modules": {k: pack_tree(v.state_dict(), f"m.{k}", tensors) for k, v in modules.items()},
        "state": pack_tree(state, "s", tensors),
    }
    # Tensors that alias (e.g. optimizer state sharing storage) must be separate for safetensors.
    tensors = {k: v.detach().clone() for k, v in tensors.items()}
    name = f"ckpt-{int(step):010d}" + (f"-{run_id}" if run_id else "") + ".safetensors"
    path = Path(directory) / name
    meta: dict[str, Any] = {"step": int(step), "tree": tree}
    if run_id:
        meta["run_id"] = run_id
    save_tensor_file(path, tensors, CHECKPOINT_FORMAT, meta)
    for old in find_checkpoints(directory, run_id)[max(1, keep):]:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: str | os.PathLike, run_id: str | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read one checkpoint file and check its tree: ``(module_states, state)``.

    Raises :class:`~aekit.io.FileFormatError` naming the file and the field for anything
    but a complete checkpoint (of run ``run_id``, when given).
    """
    path = Path(path)
    tensors, doc = load_tensor_file(path, CHECKPOINT_FORMAT)
    if run_id is not None and doc.get("run_id") != run_id:
        raise FileFormatError.bad(path, "run_id", f"this run's id {run_id!r}",
                                  doc.get("run_id"))
    tree = expect(doc.get("tree"), dict, path, "tree")
    mods = expect(tree.get("modules"), dict, path, "tree.modules")
    for k in _TREE_MODULES:
        expect(mods.get(k), dict, path, f"tree.modules.{k}")
    modules = {k: unpack_tree(v, tensors, where=f"tree.modules.{k}", path=path)
               for k, v in mods.items()}
    state = unpack_tree(tree.get("state"), tensors, where="tree.state", path=path)
    expect(state, dict, path, "tree.state")
    missing = [k for k in _TREE_STATE_KEYS if k not in state]
    if missing:
        raise FileFormatError.bad(path, "tree.state", f"keys {list(_TREE_STATE_KEYS)}",
                                  f"an object without {missing}")
    for k in ("epoch", "batch", "step", "n", "bs", "epochs"):
        expect(state[k], int, path, f"tree.state.{k}")
    for k in ("gen", "torch_rng"):
        if not isinstance(state[k], torch.Tensor) or state[k].dtype != torch.uint8:
            raise FileFormatError.bad(path, f"tree.state.{k}", "a uint8 RNG state tensor",
                                      type(state[k]).__name__)
    if state["perm"] is not None and not isinstance(state["perm"], torch.Tensor):
        raise FileFormatError.bad(path, "tree.state.perm", "a tensor or null", state["perm"])
    expect(state["sums"], dict, path, "tree.state.sums")
    expect(state["callbacks"], dict, path, "tree.state.callbacks")
    return modules, state


def load_checkpoint(directory: str | os.PathLike, *, strict: bool = False
                    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Load the newest readable checkpoint in ``directory``.

    Returns ``(module_states, state)`` or None if there is none. A corrupt or truncated newest
    checkpoint is skipped with a warning and the previous one is used. Inside
    :func:`checkpoint_owner` only that run's checkpoints are considered. With ``strict``,
    checkpoints that exist but are all unreadable raise :class:`FileFormatError` naming each
    file and why, instead of returning None (a resume would silently start over).
    """
    run_id = _OWNER.get()
    failed = []
    for path in find_checkpoints(directory, run_id):
        try:
            return read_checkpoint(path, run_id)
        except (FileFormatError, OSError) as e:
            failed.append(f"{path.name}: {e}")
            warnings.warn(f"skipping unreadable checkpoint {path.name}: {e}", stacklevel=2)
    if strict and failed:
        raise FileFormatError(f"cannot resume from {directory}: no checkpoint is readable ("
                              + "; ".join(failed) + "); remove them to start over",
                              path=Path(directory), field="checkpoints",
                              expected="a readable checkpoint")
    return None


def load_module_state(module: nn.Module | Any, state: dict) -> None:
    """``load_state_dict`` with a clear error when a checkpoint does not match."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as e:
        raise FileFormatError(f"checkpoint does not match this training setup: {e}") from None
