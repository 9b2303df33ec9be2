"""Safe files: atomic writes, and tensors + JSON in safetensors with a checksum. No pickle.

Every file aekit writes goes to a temporary file in the destination folder, is flushed and
fsync'ed, then renamed over the target (``os.replace`` is atomic on POSIX), so a crash leaves
either the old file or the new one, never half of one.

A tensor file carries, in the safetensors header metadata, a JSON document with a ``format``
tag (``"aekit-model"``, ``"aekit-checkpoint"``), a format ``version``, and the SHA-256 of the
tensor bytes, so truncation, bit rot and foreign files are told apart with clear messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = [
    "FileFormatError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_tensor_file",
    "pack_tree",
    "save_tensor_file",
    "unpack_tree",
]

FORMAT_VERSION = 1


class FileFormatError(ValueError):
    """A file is missing, truncated, corrupt, or not the kind of aekit file expected."""


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous().reshape(-1)
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_tensor_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], fmt: str,
                     meta: dict[str, Any]) -> None:
    """Save tensors and a JSON header to a safetensors file, atomically, with a checksum."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    doc = {"format": fmt, "version": FORMAT_VERSION, "sha256": _digest(tensors), **meta}
    data = st_save(tensors, metadata={"aekit": json.dumps(doc, default=_json_default)})
    atomic_write_bytes(path, data)


def _sniff(head: bytes) -> str | None:
    if head[:2] == b"PK":
        return "a zip archive (e.g. a torch.save .pt file)"
    if head[:1] == b"\x80":
        return "a Python pickle"
    return None


def load_tensor_file(path: str | os.PathLike, fmt: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Load and verify a file written by :func:`save_tensor_file`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    FileFormatError
        The file is truncated, corrupt (checksum mismatch), not safetensors (a pickle is
        refused without being read as one), or has another ``format`` tag than ``fmt``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise FileFormatError(f"{path} is a directory, expected a {fmt} .safetensors file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FileFormatError(f"cannot read {path}: {e.strerror}") from None
    # A safetensors file starts with a little-endian u64 header length followed by "{"; check
    # that first, since its low byte may be 0x80 like a pickle's first byte.
    plausible = (len(data) >= 9 and data[8:9] == b"{"
                 and 8 + struct.unpack("<Q", data[:8])[0] <= len(data))
    what = None if plausible else _sniff(data[:8])
    if what:
        raise FileFormatError(f"{path} is {what}, not a safetensors file; aekit never loads "
                              "pickled files (they can execute code)")
    if len(data) < 8:
        raise FileFormatError(f"{path} is truncated ({len(data)} bytes): not a safetensors file")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > len(data) - 8:
        raise FileFormatError(f"{path} is truncated or not a safetensors file (header claims "
                              f"{hlen} bytes, file has {len(data) - 8})")
    try:
        header = json.loads(data[8:8 + hlen])
        tensors = st_load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path} is truncated or corrupt: {e}") from None
    meta = (header.get("__metadata__") or {}) if isinstance(header, dict) else {}
    try:
        doc = json.loads(meta["aekit"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise FileFormatError(f"{path} is a safetensors file but not one written by aekit "
                              f"(no aekit header); expected format {fmt!r}") from None
    if doc.get("format") != fmt:
        raise FileFormatError(f"{path} holds format {doc.get('format')!r}, expected {fmt!r}")
    if int(doc.get("version", -1)) > FORMAT_VERSION:
        raise FileFormatError(f"{path} has format version {doc.get('version')}, newer than this "
                              f"aekit understands ({FORMAT_VERSION}); upgrade aekit")
    if doc.get("sha256") != _digest(tensors):
        raise FileFormatError(f"{path} is corrupt: checksum of the tensor data does not match")
    return tensors, doc


def pack_tree(tree: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Split a nested dict/list holding tensors into JSON (tensors replaced by keys) + tensors.

    Used to store optimiser and scheduler ``state_dict()`` without pickle. Tuples come back
    as lists; dict keys are stored as strings with their type so int keys survive.
    """
    if isinstance(tree, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = tree
        return {"__tensor__": key}
    if isinstance(tree, dict):
        return {"__dict__": [[_key(k), pack_tree(v, f"{prefix}.{k}", tensors)]
                             for k, v in tree.items()]}
    if isinstance(tree, list | tuple):
        return [pack_tree(v, f"{prefix}.{i}", tensors) for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, bool | int | float | str):
        if isinstance(tree, float) and not (tree == tree and abs(tree) != float("inf")):
            return {"__float__": repr(tree)}
        return tree
    raise TypeError(f"cannot store {type(tree).__name__} at {prefix}")


def _key(k: Any) -> list:
    if isinstance(k, bool | int):
        return ["int", int(k)]
    if isinstance(k, str):
        return ["str", k]
    raise TypeError(f"unsupported dict key {k!r}")


def unpack_tree(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack_tree`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__float__" in tree:
            return float(tree["__float__"])
        return {(int(k[1]) if k[0] == "int" else k[1]): unpack_tree(v, tensors)
                for k, v in tree["__dict__"]}
    if isinstance(tree, list):
        return [unpack_tree(v, tensors) for v in tree]
    return tree
