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
import re
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "FileFormatError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "expect",
    "load_tensor_file",
    "pack_tree",
    "parse_json",
    "read_json_file",
    "read_text_file",
    "save_tensor_file",
    "unpack_tree",
]

FORMAT_VERSION = 1


MAX_JSON_DEPTH = 64  # run files and headers nest a handful of levels; 64 is far above that
MAX_JSON_BYTES = 256 * 1024**2  # a run's JSON file or a tensor header; bigger is refused
MAX_HEADER_BYTES = 100 * 1024**2  # safetensors' own limit on a header
_MISSING = object()


class FileFormatError(ValueError):
    """A file is missing, truncated, corrupt, or not the kind of aekit file expected.

    The one exception type of aekit's file readers. ``path`` is the file, ``field`` the
    place inside it (``"config.train.lr"``, ``"header"``, ``"row 3, column 2"``) and
    ``expected`` what should have been there; the message says all three. The CLI turns it
    into exit status 2 and one line.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 field: str | None = None, expected: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.field = field
        self.expected = expected

    @classmethod
    def bad(cls, path: str | os.PathLike, field: str | None, expected: str,
            got: Any = _MISSING) -> FileFormatError:
        """``"<path>: <field>: expected <expected>, got <got>"`` as a FileFormatError."""
        where = f"{path}: {field}" if field else f"{path}"
        msg = f"{where}: expected {expected}"
        if got is not _MISSING:
            msg += f", got {_describe(got)}"
        return cls(msg, path=path, field=field, expected=expected)


def _describe(v: Any) -> str:
    """A short description of a JSON value for an error message."""
    if v is None:
        return "nothing (missing or null)"
    if isinstance(v, dict):
        return f"an object with keys {sorted(map(str, v))[:8]}"
    if isinstance(v, list):
        return f"a list of length {len(v)}"
    r = repr(v)
    return f"{type(v).__name__} {r[:60] + '...' if len(r) > 60 else r}"


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer",
               float: "a number", bool: "true or false"}


def expect(value: Any, types: type | tuple[type, ...], path: str | os.PathLike,
           field: str, *, optional: bool = False) -> Any:
    """Return ``value`` if it is of ``types`` (``bool`` is not an int or float here; an int
    is accepted as a float), else raise :class:`FileFormatError` naming ``path`` and
    ``field``. ``optional`` also accepts None."""
    ts = types if isinstance(types, tuple) else (types,)
    if value is None and optional:
        return value
    ok = isinstance(value, ts)
    if isinstance(value, bool) and bool not in ts:
        ok = False
    if not ok and float in ts and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in ts)
        raise FileFormatError.bad(path, field, want + (" or null" if optional else ""), value)
    return value


# Strings are removed before counting brackets, so "[" inside a string does not count.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_depth(raw: bytes) -> int:
    """Maximum nesting depth of the arrays/objects in JSON text ``raw`` (no parsing)."""
    if b"[" not in raw and b"{" not in raw:
        return 0
    b = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    step = ((b == ord("[")) | (b == ord("{"))).astype(np.int32) - \
        ((b == ord("]")) | (b == ord("}"))).astype(np.int32)
    return int(np.cumsum(step).max()) if len(step) else 0


def parse_json(raw: bytes | str, where: str | os.PathLike, *,
               max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse JSON text from ``where`` (a file name, or "file: field" for embedded JSON) with
    bounds: at most ``max_bytes`` bytes and ``max_depth`` levels of nesting, checked before
    parsing, so hostile input costs neither a RecursionError nor unbounded memory.

    Raises :class:`FileFormatError` naming ``where`` on too large, too deep, non-UTF-8 or
    invalid JSON (and on NaN/Infinity literals, which are not JSON).
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogatepass")
    if len(raw) > max_bytes:
        raise FileFormatError(f"{where}: JSON of {len(raw)} bytes is larger than the limit of "
                              f"{max_bytes} bytes", path=where, expected=f"<= {max_bytes} bytes")
    depth = _json_depth(raw)
    if depth > max_depth:
        raise FileFormatError(f"{where}: JSON nested {depth} levels deep; expected at most "
                              f"{max_depth}", path=where, expected=f"depth <= {max_depth}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{where}: not UTF-8 text (byte {e.start}): expected UTF-8 JSON",
                              path=where, expected="UTF-8 JSON") from None

    def _no_constant(name: str):
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise FileFormatError(f"{where}: not valid JSON: {e}", path=where,
                              expected="valid JSON") from None


def read_text_file(path: str | os.PathLike, *, max_bytes: int = MAX_JSON_BYTES,
                   what: str = "file") -> bytes:
    """Bytes of ``path`` with clear errors: missing file, a directory, unreadable, or larger
    than ``max_bytes`` (checked before reading)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such {what}: {p}")
    if p.is_dir():
        raise FileFormatError(f"{p} is a directory, expected a {what}", path=p,
                              expected=f"a {what}")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise FileFormatError(f"{p}: {size} bytes is larger than the limit of {max_bytes} "
                                  f"bytes for a {what}", path=p, expected=f"<= {max_bytes} bytes")
        return p.read_bytes()
    except OSError as e:
        raise FileFormatError(f"cannot read {p}: {e.strerror}", path=p,
                              expected="a readable file") from None


def read_json_file(path: str | os.PathLike, *, max_depth: int = MAX_JSON_DEPTH,
                   max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file with the bounds of :func:`parse_json` (size checked before reading)."""
    return parse_json(read_text_file(path, max_bytes=max_bytes, what="JSON file"), path,
                      max_depth=max_depth, max_bytes=max_bytes)


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


def _is_pickle(data: bytes) -> bool:
    """Whether ``data`` parses as a pickle opcode stream (any protocol, 0 included), using
    :func:`pickletools.genops`, which reads opcodes and never executes them."""
    import pickletools

    if not data or data[:1] not in _PICKLE_FIRST:
        return False
    try:
        with warnings.catch_warnings():  # genops decodes string literals; hush their warnings
            warnings.simplefilter("ignore")
            for op, _, _ in pickletools.genops(data[:1 << 20]):
                if op.name == "STOP":
                    return True
    except Exception:  # any parse failure just means "not a pickle"
        return False
    return False


# First opcodes of pickles: PROTO (protocol >= 2) and the protocol 0/1 opcodes that start
# a value: MARK, GLOBAL, INT, LONG, STRING, UNICODE, FLOAT, NONE, EMPTY_LIST/DICT/TUPLE, ...
_PICKLE_FIRST = frozenset(bytes([c]) for c in b"\x80(cILSVFN]})dlJKMGTUXqhj")


def _sniff(data: bytes) -> str | None:
    if data[:2] == b"PK":
        return "a zip archive (e.g. a torch.save .pt file)"
    if data[:1] == b"\x80" or _is_pickle(data):  # PROTO opcode (protocol 2+), or 0/1
        return "a Python pickle"
    return None


def load_tensor_file(path: str | os.PathLike, fmt: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Load and verify a file written by :func:`save_tensor_file`.

    The header is size-bounded (at most 100 MB, checked before it is read), its JSON and the
    aekit metadata inside it are depth-bounded and must be objects of the expected shape.

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
        raise FileFormatError(f"{path} is a directory, expected a {fmt} .safetensors file",
                              path=path, expected=f"a {fmt} .safetensors file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FileFormatError(f"cannot read {path}: {e.strerror}", path=path,
                              expected="a readable file") from None
    # A safetensors file starts with a little-endian u64 header length followed by "{"; check
    # that first, since its low byte may be 0x80 like a pickle's first byte.
    plausible = (len(data) >= 9 and data[8:9] == b"{"
                 and 8 + struct.unpack("<Q", data[:8])[0] <= len(data))
    what = None if plausible else _sniff(data)
    if what:
        raise FileFormatError(f"{path} is {what}, not a safetensors file; aekit never loads "
                              "pickled files (they can execute code)", path=path,
                              expected="a .safetensors file")
    if len(data) < 8:
        raise FileFormatError(f"{path} is truncated ({len(data)} bytes): not a safetensors file",
                              path=path, expected="a .safetensors file")
    (hlen,) = struct.unpack("<Q", data[:8])
    if hlen > len(data) - 8:
        raise FileFormatError(f"{path} is truncated or not a safetensors file (header claims "
                              f"{hlen} bytes, file has {len(data) - 8})", path=path,
                              field="header length", expected=f"<= {len(data) - 8} bytes")
    if hlen > MAX_HEADER_BYTES:
        raise FileFormatError(f"{path}: header of {hlen} bytes is larger than the limit of "
                              f"{MAX_HEADER_BYTES}", path=path, field="header length",
                              expected=f"<= {MAX_HEADER_BYTES} bytes")
    header = parse_json(data[8:8 + hlen], f"{path}: header", max_bytes=MAX_HEADER_BYTES)
    expect(header, dict, path, "header")
    meta = header.get("__metadata__")
    if meta is None or not isinstance(meta, dict) or "aekit" not in meta:
        raise FileFormatError(f"{path} is a safetensors file but not one written by aekit "
                              f"(no aekit header); expected format {fmt!r}", path=path,
                              field="header.__metadata__.aekit", expected=f"format {fmt!r}")
    expect(meta["aekit"], str, path, "header.__metadata__.aekit")
    doc = parse_json(meta["aekit"], f"{path}: header.__metadata__.aekit",
                     max_bytes=MAX_HEADER_BYTES)
    expect(doc, dict, path, "header.__metadata__.aekit")
    if doc.get("format") != fmt:
        raise FileFormatError(f"{path} holds format {doc.get('format')!r}, expected {fmt!r}",
                              path=path, field="format", expected=repr(fmt))
    version = doc.get("version")
    expect(version, int, path, "version")
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{path} has format version {version}, newer than this "
                              f"aekit understands ({FORMAT_VERSION}); upgrade aekit",
                              path=path, field="version", expected=f"<= {FORMAT_VERSION}")
    expect(doc.get("sha256"), str, path, "sha256")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError,
            UnicodeDecodeError) as e:
        raise FileFormatError(f"{path} is truncated or corrupt: {e}", path=path,
                              expected="a valid safetensors file") from None
    if doc["sha256"] != _digest(tensors):
        raise FileFormatError(f"{path} is corrupt: checksum of the tensor data does not match",
                              path=path, field="sha256", expected="the tensors' checksum")
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


def unpack_tree(tree: Any, tensors: dict[str, torch.Tensor], *, where: str = "tree",
                path: str | os.PathLike | None = None) -> Any:
    """Inverse of :func:`pack_tree`.

    A malformed tree (a file edited by hand, or one whose checksum was recomputed) raises
    :class:`FileFormatError` naming ``path`` and the place in the tree, never KeyError.
    """
    src = path if path is not None else "checkpoint"
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            key = tree["__tensor__"]
            if not isinstance(key, str) or key not in tensors:
                raise FileFormatError.bad(src, where, "the name of a stored tensor", key)
            return tensors[key]
        if "__float__" in tree:
            v = tree["__float__"]
            if v not in ("nan", "inf", "-inf"):
                raise FileFormatError.bad(src, where, "'nan', 'inf' or '-inf'", v)
            return float(v)
        items = tree.get("__dict__")
        if not isinstance(items, list):
            raise FileFormatError.bad(src, where, "an object with __tensor__, __float__ or "
                                      "__dict__", tree)
        out = {}
        for i, item in enumerate(items):
            ok = (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list)
                  and len(item[0]) == 2 and ((item[0][0] == "int" and isinstance(item[0][1], int)
                                              and not isinstance(item[0][1], bool))
                                             or (item[0][0] == "str"
                                                 and isinstance(item[0][1], str))))
            if not ok:
                raise FileFormatError.bad(src, f"{where}.__dict__[{i}]",
                                          "[[\"int\" or \"str\", key], value]", item)
            out[item[0][1]] = unpack_tree(item[1], tensors, where=f"{where}.{item[0][1]}",
                                          path=path)
        return out
    if isinstance(tree, list):
        return [unpack_tree(v, tensors, where=f"{where}[{i}]", path=path)
                for i, v in enumerate(tree)]
    return tree
