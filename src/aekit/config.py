"""Run-level configuration: dataclasses loaded from TOML, with ``--set a.b=c`` overrides.

Unknown keys and wrong types are errors that name the key. The same structure is written to
a run directory's ``config.json``, so ``aekit train --resume`` and ``aekit info`` read it back.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DataConfig", "ModelConfig", "ObjectiveConfig", "RunConfig", "TrainConfig",
           "apply_override", "load_config", "read_toml", "upgrade_keys"]


@dataclass
class DataConfig:
    """Which data: a built-in name (``digits``, ``mnist``, ``fashion-mnist``) or a file
    (.npy/.npz/.csv); ``path`` points a built-in name at its files (e.g. mnist.npz);
    ``header``: whether a CSV's first row is a header (None: the rule of
    :data:`aekit.data.arrays.CSV_HEADER_RULE`). Every field is a :class:`aekit.schema.Setting`
    (name, default, range, doc)."""

    dataset: str = "digits"
    path: str | None = None
    header: bool | None = None
    validation_fraction: float = 0.1
    #: CSV only: a column (header name, or 1-based number) of group labels; the validation
    #: split then holds out whole groups (``aekit.data.arrays.split_indices``) and the
    #: column is not a feature.
    val_groups: str | None = None
    limit: int | None = None
    #: image files and folders (``aekit.data.load_images``): resize to (H, W), cut into
    #: patches, channels, at most this many patches
    image_size: list[int] | None = None
    patch_size: int | None = None
    patch_stride: int | None = None
    color: str = "auto"
    max_patches: int | None = None
    random_state: int = 0


@dataclass
class ModelConfig:
    """Architecture: ``name`` dense, linear, conv, residual or unet. Dense:
    ``sizes = [d, *hidden_layer_sizes, n_components]``. Conv/unet: ``channels`` of the
    convolution blocks (conv: ``kernel_size``, ``strides``). An option the model does not
    have is an error (:data:`aekit.schema.MODEL_OPTIONS`)."""

    name: str = "dense"
    n_components: int = 8
    hidden_layer_sizes: list[int] = field(default_factory=lambda: [256])
    channels: list[int] = field(default_factory=lambda: [16, 32])
    kernel_size: int = 3
    strides: int = 2
    activation: str = "elu"
    code_activation: str = "linear"
    output: str = "auto"
    tied: bool = False
    batch_norm: bool = False
    dropout: float = 0.0


@dataclass
class ObjectiveConfig:
    """Loss, regularisers and input corruption. ``loss="auto"``: cross-entropy for data in
    [0, 1], else MSE. ``noise``: none, masking, gaussian or salt_pepper at ``noise_level``
    (unset: the corruption's documented default, ν = 0.25 / σ = 0.1 / p = 0.1; 0 is refused).
    ``sparsity_target`` ρ and ``sparsity_weight`` β: the KL sparsity penalty (unset ρ: off)."""

    loss: str = "auto"
    weight_decay: float = 0.0
    l1: float = 0.0
    sparsity_target: float | None = None
    sparsity_weight: float = 1.0
    dead_unit: float = 0.0
    contractive: float = 0.0
    #: vae only: KL weight β and importance samples k (1: ELBO, > 1: IWAE)
    beta: float = 1.0
    iw_samples: int = 1
    #: vae only, IWAE: the encoder's gradient estimator ("iwae" or "dreg")
    iw_gradient: str = "iwae"
    noise: str = "none"
    noise_level: float | None = None


@dataclass
class TrainConfig:
    """Options of :func:`aekit.fit` for a run. ``max_iter="auto"``: epochs from the step
    budget ``max_steps`` (:func:`aekit.schema.resolve_max_iter`); ``early_stopping`` with
    patience ``n_iter_no_change`` on ``monitor``."""

    max_iter: int | str = "auto"
    max_steps: int = 5000
    batch_size: int = 256
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    momentum: float = 0.9
    optimizer_weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    early_stopping: bool = True
    n_iter_no_change: int = 20
    #: What early stopping watches: any logged part, e.g. "val_recon" (the reconstruction
    #: alone) or "val_loss" (the whole objective).
    monitor: str = "val_recon"
    max_grad_norm: float | None = None
    random_state: int = 0
    checkpoint_every: int = 1
    checkpoint_steps: int | None = None
    precision: str = "fp32"


@dataclass
class RunConfig:
    """A whole run: ``[data]``, ``[model]``, ``[objective]``, ``[train]`` TOML tables."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> RunConfig:
        """Build from nested dicts (TOML tables, ``config.json``); old key names are
        accepted with a FutureWarning naming the new one (:func:`upgrade_keys`)."""
        return _build(cls, upgrade_keys(d, where), where)


def upgrade_keys(d: Any, where: str = "config", warn: bool = True) -> Any:
    """A copy of a run-config dict with the old key names of :data:`aekit.schema.RENAMED_KEYS`
    replaced by the new ones (FutureWarning each, unless ``warn`` is False). ``model.hidden``
    becomes ``channels`` for conv/unet and ``hidden_layer_sizes`` otherwise; an integer
    ``train.early_stopping`` (the old patience) becomes ``early_stopping = true`` +
    ``n_iter_no_change``, and null ``false``; a null ``train.monitor`` (the old default)
    becomes ``"val_loss"``, what it meant. Giving an old and a new name of one setting is
    an error."""
    import warnings

    from .schema import RENAMED_KEYS, warn_renamed

    if not isinstance(d, dict):
        return d
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}

    def rename(table: str, old: str, new: str) -> None:
        tab = out.get(table)
        if not isinstance(tab, dict) or old not in tab:
            return
        if new in tab:
            raise ValueError(f"{table}.{old} and {table}.{new} both given in {where}: "
                             f"{old!r} is the old name of {new!r}; keep {new!r} only")
        if warn:
            warn_renamed(f"{table}.{old}", f"{table}.{new}", where, stacklevel=5)
        tab[new] = tab.pop(old)

    for old_key, new_key in RENAMED_KEYS.items():
        table, old = old_key.split(".", 1)
        if old_key == "model.hidden":
            model = out.get("model")
            conv = isinstance(model, dict) and model.get("name") in ("conv", "unet")
            rename("model", "hidden", "channels" if conv else "hidden_layer_sizes")
            continue
        rename(table, old, new_key.split(".", 1)[1])
    train = out.get("train")
    if isinstance(train, dict):
        es = train.get("early_stopping", True)
        if es is None or (isinstance(es, int) and not isinstance(es, bool)):
            if "n_iter_no_change" in train and es is not None:
                raise ValueError(f"train.early_stopping = {es} (the old patience) and "
                                 f"train.n_iter_no_change both given in {where}")
            if warn:
                warnings.warn(f"{where}: train.early_stopping = {json_dump(es)} is the old "
                              "form; write early_stopping = "
                              f"{'false' if es is None else 'true'}"
                              + ("" if es is None else f" and n_iter_no_change = {es}")
                              + "; the old form is accepted until the next release",
                              FutureWarning, stacklevel=4)
            train["early_stopping"] = es is not None
            if es is not None:
                train["n_iter_no_change"] = es
        if "monitor" in train and train["monitor"] is None:
            train["monitor"] = "val_loss"
    return out


def json_dump(v: Any) -> str:
    import json

    return json.dumps(v)


def _check_type(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, got {type(value).__name__} {value!r}")
        return [_check_type(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} for {key}")


def _build(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a table, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} in {where}: "
                         f"{', '.join(unknown)} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for k, v in d.items():
        tp = hints[k]
        key = f"{where}.{k}" if where != "config" else k
        if dataclasses.is_dataclass(tp):
            kwargs[k] = _build(tp, v, key)
        else:
            kwargs[k] = _check_type(v, tp, key)
    return cls(**kwargs)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML file (or start from the defaults) and apply ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        data = read_toml(p)
        try:  # the file's own mistakes are reported with its name, before any --set
            data = upgrade_keys(data, str(p))
            RunConfig.from_dict(data)
        except ValueError as e:
            from .io import FileFormatError

            raise FileFormatError(f"{p}: {e}", path=p, expected="a valid run config") from None
    for ov in overrides:
        apply_override(data, ov)
    cfg = RunConfig.from_dict(data)
    from .schema import check_run_config

    check_run_config(cfg.to_dict())
    return cfg


MAX_TOML_BYTES = 1 << 20  # a run config is a few hundred bytes
MAX_TOML_DEPTH = 16


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML config file, size-bounded (1 MiB, checked before reading) and
    depth-bounded (tomllib recurses on nested arrays and inline tables); errors are
    :class:`aekit.io.FileFormatError` naming the file."""
    from .io import FileFormatError, read_text_file

    p = Path(path)
    raw = read_text_file(p, max_bytes=MAX_TOML_BYTES, what="TOML config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise FileFormatError(f"{p}: line {line}: not UTF-8 text (byte {e.start})", path=p,
                              field=f"line {line}", expected="UTF-8 TOML") from None
    depth = 0
    for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}]', text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > MAX_TOML_DEPTH:
                raise FileFormatError(f"{p}: arrays/tables nested more than {MAX_TOML_DEPTH} "
                                      "levels deep", path=p, expected="shallow TOML")
        elif tok in "]}":
            depth = max(0, depth - 1)
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise FileFormatError(f"{p}: invalid TOML: {e}", path=p,
                              expected="valid TOML") from None


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply ``"section.key=value"`` to a nested dict; the value is parsed as TOML when it
    can be (``3``, ``1e-3``, ``true``, ``[256, 64]``) and taken as a string otherwise."""
    if "=" not in override:
        raise ValueError(f"--set expects key=value, got {override!r}")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--set key must look like section.name (e.g. "
                         f"train.learning_rate), got {key!r}")
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        value: Any = None
    else:
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):
            value = raw
    data.setdefault(parts[0], {})
    if not isinstance(data[parts[0]], dict):
        raise ValueError(f"--set {key}: {parts[0]} is not a table")
    data[parts[0]][parts[1]] = value
