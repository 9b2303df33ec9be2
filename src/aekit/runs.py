"""A run: data + model + objective + ``fit`` + evaluation against PCA, written to a directory.

Layout of a run directory::

    run.json           the marker: run id and status (training, complete, incomplete + reason)
    config.json        the RunConfig, data shapes, model spec, aekit version
    checkpoints/       ckpt-<step>.safetensors while training (kept for --resume)
    history.jsonl      one JSON record per epoch, every objective term
    model.safetensors  the trained model (safetensors + JSON header, no pickle)
    metrics.json       test reconstruction error of the AE and of PCA with the same code size
    report.html        a self-contained report (``aekit report``)

Every file is written atomically; a run that fails before training starts leaves nothing.

Ownership: ``run.json`` holds a random run id. ``train_run`` only writes into an empty (or
new) directory or one of its own runs, never over a user's files; its checkpoints carry the
run id (:func:`aekit.train.checkpoint.checkpoint_owner`), so a resume neither loads nor
deletes checkpoints that another run left in the folder. Every run file is read back through
a schema-checked, size- and depth-bounded reader that raises
:class:`aekit.io.FileFormatError` naming the file and the field.
"""

from __future__ import annotations

import platform
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import RunConfig
from .corruption import CORRUPTIONS
from .data import Dataset, load_dataset, train_val_split
from .data.arrays import split_indices
from .io import (
    MAX_JSON_BYTES,
    FileFormatError,
    atomic_write_json,
    expect,
    parse_json,
    read_json_file,
    read_text_file,
)
from .models import MODELS, Autoencoder
from .objectives import TERMS, make_objective
from .train import fit, load, save_model
from .train.checkpoint import checkpoint_owner, find_checkpoints, read_checkpoint
from .train.distributed import world_and_rank
from .train.optim import check_fit_args
from .version import __version__

__all__ = ["MARKER", "RunData", "check_out_dir", "evaluate_against_pca", "fresh_subdir",
           "load_run_data", "pca_errors", "read_history", "read_marker", "read_metrics",
           "read_run", "read_run_config", "reconstruction_errors", "train_run", "write_marker"]

RUN_FORMAT = "aekit-run"
RUN_FILES = ("config.json", "model.safetensors", "history.jsonl", "metrics.json")
MARKER = "run.json"
MARKER_FORMAT = "aekit-run-marker"
STATUSES = ("training", "complete", "incomplete")


# ------------------------------------------------------------------ ownership and status
def read_marker(run_dir: str | Path) -> dict[str, Any] | None:
    """The run marker ``run_dir/run.json`` (``{"format", "run_id", "status", "reason"}``),
    or None when there is none; a malformed marker raises :class:`FileFormatError`."""
    path = Path(run_dir) / MARKER
    if not path.exists():
        return None
    m = expect(read_json_file(path, max_bytes=1 << 20), dict, path, "top level")
    if m.get("format") != MARKER_FORMAT:
        raise FileFormatError.bad(path, "format", repr(MARKER_FORMAT), m.get("format"))
    rid = expect(m.get("run_id"), str, path, "run_id")
    if not (8 <= len(rid) <= 32 and all(c in "0123456789abcdef" for c in rid)):
        raise FileFormatError.bad(path, "run_id", "8-32 lowercase hex digits", rid)
    if m.get("status") not in STATUSES:
        raise FileFormatError.bad(path, "status", " or ".join(STATUSES), m.get("status"))
    expect(m.get("reason"), str, path, "reason", optional=True)
    return m


def write_marker(run_dir: str | Path, run_id: str, status: str, reason: str | None = None,
                 **extra: Any) -> None:
    """Write the run marker atomically: ``status`` one of training, complete, incomplete."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    atomic_write_json(Path(run_dir) / MARKER, {"format": MARKER_FORMAT, "run_id": run_id,
                                               "status": status, "reason": reason,
                                               "aekit_version": __version__, **extra})


def check_out_dir(out: str | Path) -> None:
    """Raise a clear error when ``out`` or one of its parents is an existing non-directory
    (instead of NotADirectoryError part way through writing)."""
    out = Path(out)
    for q in (out, *out.parents):
        if q.exists() or q.is_symlink():
            if not q.is_dir():
                raise FileExistsError(f"--output {out}: {q} is a file, not a directory; choose "
                                      "another --output")
            return


def fresh_subdir(out: str | Path) -> Path:
    """A new, not yet existing ``out/run-<time>-<id>`` for ``aekit train --force``: the run
    goes there and nothing already in ``out`` is moved, changed or deleted."""
    out = Path(out)
    check_out_dir(out)
    return out / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _claim(out: Path, resume: bool) -> tuple[str, dict | None]:
    """Check that ``out`` may hold this run; return ``(run_id, marker or None)``."""
    check_out_dir(out)
    marker = read_marker(out) if out.is_dir() else None
    if resume:
        if marker is None:
            what = ("was written by an aekit without run markers (run.json), so its "
                    "checkpoints cannot be told from foreign ones"
                    if (out / "config.json").exists() else "is not an aekit run (no run.json)")
            raise FileNotFoundError(f"cannot resume {out}: it {what}; start a new run with "
                                    "another --output")
        return marker["run_id"], marker
    if out.is_dir() and any(out.iterdir()):
        if marker is None:
            raise FileExistsError(
                f"--output {out} is not empty and is not an aekit run (no {MARKER}); aekit never "
                "writes over files it did not create: choose an empty or new --output, or pass "
                "--force to write the run into a new subdirectory of it")
        if (out / "config.json").exists():
            raise FileExistsError(f"{out} already holds a run; pass --resume to continue it "
                                  "or choose another --output")
    return uuid.uuid4().hex[:16], marker


def _resume_checkpoint(out: Path, run_id: str) -> Path:
    """The newest readable checkpoint of run ``run_id``, or a FileFormatError naming every
    file tried (and those of other runs that were ignored)."""
    ck = out / "checkpoints"
    tried = []
    for path in find_checkpoints(ck, run_id):
        try:
            read_checkpoint(path, run_id)
            return path
        except (FileFormatError, OSError) as e:
            tried.append(f"{path.name} ({e})")
    foreign = [p.name for p in find_checkpoints(ck) if p not in find_checkpoints(ck, run_id)]
    msg = (f"cannot resume {out}: no readable checkpoint of this run (id {run_id}) in {ck}"
           + (f"; unreadable: {'; '.join(tried)}" if tried else "; found none")
           + (f"; ignored (not this run's): {', '.join(foreign)}" if foreign else "")
           + "; pass --restart to train it again from step 0")
    raise FileFormatError(msg, path=ck, field="checkpoints",
                          expected=f"a readable checkpoint of run {run_id}")


# -------------------------------------------------------------------- validated readers
def read_run_config(path: str | Path) -> dict[str, Any]:
    """Read and check a run's ``config.json`` (schema, aekit major version, the config)."""
    path = Path(path)
    info = expect(read_json_file(path), dict, path, "top level")
    if info.get("format") != RUN_FORMAT:
        raise FileFormatError(f"{path} is not an aekit run config (format "
                              f"{info.get('format')!r}, expected {RUN_FORMAT!r})", path=path,
                              field="format", expected=repr(RUN_FORMAT))
    version = expect(info.get("aekit_version"), str, path, "aekit_version")
    if version.split(".")[0] != __version__.split(".")[0]:
        raise FileFormatError(f"{path.parent} was written by aekit {version}, this is "
                              f"{__version__}: incompatible run format", path=path,
                              field="aekit_version", expected=f"{__version__.split('.')[0]}.x")
    cfg = expect(info.get("config"), dict, path, "config")
    try:
        RunConfig.from_dict(cfg)
    except (ValueError, TypeError) as e:
        raise FileFormatError(f"{path}: {e}", path=path, field="config",
                              expected="a valid run config") from None
    model = expect(info.get("model"), dict, path, "model")
    expect(model.get("name"), str, path, "model.name")
    expect(model.get("config"), dict, path, "model.config")
    expect(model.get("n_parameters"), int, path, "model.n_parameters")
    obj = expect(info.get("objective"), dict, path, "objective")
    expect(obj.get("loss"), str, path, "objective.loss")
    for i, t in enumerate(expect(obj.get("terms"), list, path, "objective.terms")):
        expect(t, str, path, f"objective.terms[{i}]")
    data = expect(info.get("data"), dict, path, "data")
    for k in ("n_train", "n_val", "n_test", "n_features"):
        expect(data.get(k), int, path, f"data.{k}")
    return info


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read and check a run's ``metrics.json``."""
    path = Path(path)
    m = expect(read_json_file(path), dict, path, "top level")
    expect(m.get("epochs_run"), int, path, "epochs_run")
    expect(m.get("best_epoch"), int, path, "best_epoch", optional=True)
    expect(m.get("stopped_early"), bool, path, "stopped_early")
    expect(m.get("train_time_s"), float, path, "train_time_s")
    expect(m.get("final", {}), dict, path, "final")
    for split in ("test", "val"):
        if split in m:
            r = expect(m[split], dict, path, split)
            for k in ("n_test", "code_size"):
                expect(r.get(k), int, path, f"{split}.{k}")
            for k in ("ae_error", "pca_error", "ae_over_pca"):
                expect(r.get(k), float, path, f"{split}.{k}")
            expect(r.get("unit"), str, path, f"{split}.unit")
    return m


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a run's ``history.jsonl`` (one JSON object per line)."""
    path = Path(path)
    raw = read_text_file(path, max_bytes=MAX_JSON_BYTES, what="history file")
    out = []
    for i, line in enumerate(raw.split(b"\n"), 1):
        if line.strip():
            rec = parse_json(line, f"{path}: line {i}")
            out.append(expect(rec, dict, path, f"line {i}"))
    return out



@dataclass
class RunData:
    """Training, validation and test splits of a run (arrays (n, d) float32)."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None


def load_run_data(cfg: RunConfig, where: str | Path | None = None) -> RunData:
    """Load and split the data a config describes (deterministic in ``data.random_state``).

    ``where``: the file the config came from (a run's ``config.json``); a dataset that cannot
    be loaded is then reported against that file, since that is what the user must fix.
    """
    if where is None:
        return _load_run_data(cfg)
    try:
        return _load_run_data(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise type(e)(f"{where}: its data cannot be loaded: {e}") from e


def _load_run_data(cfg: RunConfig) -> RunData:
    groups = None
    if cfg.data.val_groups is not None:  # a CSV with a column of group labels
        X, groups = csv_groups(cfg.data.dataset, cfg.data.val_groups, header=cfg.data.header)
        y, train, test = None, Dataset(X, None, None), None
    else:
        train, test = load_dataset(cfg.data.dataset, data_path=cfg.data.path,
                                   header=cfg.data.header, **image_options(cfg))
        X, y = train.X, train.y
    if cfg.data.limit is not None:
        if cfg.data.limit < 1:
            raise ValueError(f"data.limit must be >= 1 (--limit), got {cfg.data.limit}")
        X, y = X[:cfg.data.limit], (y[:cfg.data.limit] if y is not None else None)
        groups = groups[:cfg.data.limit] if groups is not None else None
    if groups is not None:
        tr, va = split_indices(len(X), validation_fraction=cfg.data.validation_fraction,
                               groups=groups, random_state=cfg.data.random_state)
        Xtr, Xva, ytr, yva = X[tr], X[va], None, None
    else:
        Xtr, Xva, ytr, yva = train_val_split(
            X, y, validation_fraction=cfg.data.validation_fraction,
            random_state=cfg.data.random_state)
    shape = train.image_shape
    return RunData(Dataset(Xtr, ytr, shape),
                   Dataset(Xva, yva, shape) if Xva is not None else None,
                   test)


def image_options(cfg: RunConfig) -> dict:
    """The ``[data]`` options for image files and folders, as keywords of
    :func:`aekit.data.load_dataset` / :func:`aekit.data.load_array` (only those set, so
    array files and built-in names never see them)."""
    d = cfg.data
    opts = {"image_size": tuple(d.image_size) if d.image_size else None,
            "patch_size": d.patch_size, "patch_stride": d.patch_stride,
            "max_patches": d.max_patches}
    opts = {k: v for k, v in opts.items() if v is not None}
    if d.color != "auto":
        opts["color"] = d.color
    return opts


def csv_groups(path: str | Path, column: str, *, header: bool | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Features and group labels of a CSV whose ``column`` (a header name, or a 1-based
    column number) holds the group of each row (any text); the other columns must be
    numbers. Returns ``X`` (n, d−1) float32 and ``groups`` (n,) of str."""
    import csv
    import io

    from .data.arrays import CSV_HEADER_RULE, read_bytes

    p = Path(path)
    if p.suffix.lower() != ".csv":
        raise ValueError(f"--val-groups (data.val_groups) needs CSV data, got {p.name}")
    try:
        rows = [r for r in csv.reader(io.StringIO(read_bytes(p).decode("utf-8-sig")))
                if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise FileFormatError(f"{p}: not UTF-8 text", path=p, expected="UTF-8 text") from None
    if not rows:
        raise FileFormatError(f"{p} holds no data rows", path=p, expected="rows of numbers")
    names = [c.strip() for c in rows[0]]
    if column.isdigit():
        j = int(column) - 1
        if not 0 <= j < len(names):
            raise ValueError(f"--val-groups {column}: {p} has {len(names)} columns")
        has_header = bool(header)
    else:
        if header is False or column not in names:
            raise ValueError(f"--val-groups {column!r}: no such column in the header of {p} "
                             f"(header: {names}); give a header name or a 1-based column "
                             f"number ({CSV_HEADER_RULE})")
        j, has_header = names.index(column), True
    body = rows[1:] if has_header else rows
    if not body:
        raise FileFormatError(f"{p} holds a header but no data rows", path=p,
                              expected="rows of numbers")
    groups, X = [], []
    for i, r in enumerate(body, 2 if has_header else 1):
        if len(r) != len(names):
            raise FileFormatError(f"{p}: ragged CSV: row {i} has {len(r)} values, expected "
                                  f"{len(names)}", path=p, field=f"row {i}",
                                  expected=f"{len(names)} values")
        groups.append(r[j].strip())
        try:
            X.append([float(v) for k, v in enumerate(r) if k != j])
        except ValueError:
            raise FileFormatError(f"{p}: row {i}: a feature cell is not a number", path=p,
                                  field=f"row {i}", expected="numbers outside the group "
                                  "column") from None
    A = np.asarray(X, dtype=np.float64)
    if A.shape[1] == 0 or not np.isfinite(A).all():
        raise FileFormatError(f"{p}: the features (all columns but {column!r}) must be "
                              "finite numbers", path=p, field="data",
                              expected="finite numbers")
    return A.astype(np.float32), np.asarray(groups)


def _resolve_loss(cfg: RunConfig, X: np.ndarray) -> str:
    loss = cfg.objective.loss
    if loss == "auto":
        loss = "bce" if X.min() >= 0 and X.max() <= 1 else "mse"
    return loss


def _objective_loss_label(cfg: RunConfig, X: np.ndarray, model, objective) -> str:
    """The reconstruction loss as trained: the resolved ``objective.loss`` for a deterministic
    model; for a variational one the decoder's negative log-likelihood (``bernoulli_nll`` /
    ``gaussian_nll``), or ``none`` when the objective is the IWAE bound alone."""
    if getattr(model, "variational", False):
        if getattr(objective, "recon_name", "") == "none":
            return "none"
        return f"{model.likelihood}_nll"
    return _resolve_loss(cfg, X)


def variance_scale(X: np.ndarray) -> float:
    """``S = Σ_j Var(x_j)`` of the training rows X (n, d), the unit of ``weight_decay`` in a
    run and in :class:`aekit.Autoencoder` (1 when X has no variance or one row)."""
    if len(X) < 2:
        return 1.0
    s = float(np.asarray(X, dtype=np.float64).var(0).sum())
    return s if s > 0 else 1.0


def build(cfg: RunConfig, n_features: int, X: np.ndarray,
          image_shape: tuple[int, ...] | None = None):
    """Model and objective for a config and data of ``n_features`` features (and, for the
    convolutional model, the data's ``image_shape``). A model option the chosen model does
    not have is an error naming its flag (:func:`aekit.schema.check_model_options`)."""
    from .schema import check_model_options

    m = cfg.model
    loss = _resolve_loss(cfg, X)
    if m.name not in MODELS:
        raise ValueError(f"unknown model.name {m.name!r} (--model); expected one of: "
                         f"{', '.join(MODELS)}")
    check_model_options(cfg.to_dict()["model"])
    if m.name != "unet" and m.n_components > n_features:
        raise ValueError(f"model.n_components={m.n_components} (--n-components) is larger "
                         f"than the input size {n_features}")
    output = m.output if m.output != "auto" else ("sigmoid" if loss == "bce" else "linear")
    hidden = m.channels if m.name in ("conv", "unet", "conv_vae") else m.hidden_layer_sizes
    model = MODELS[m.name].from_spec(
        n_features=n_features, code_size=m.n_components, hidden=list(hidden),
        image_shape=image_shape, activation=m.activation, code_activation=m.code_activation,
        output=output, tied=m.tied, batch_norm=m.batch_norm, dropout=m.dropout)
    if m.name == "conv" and (m.kernel_size, m.strides) != (3, 2):
        # from_spec builds the default blocks; the run asks for others (image_shape checked)
        model = MODELS["conv"](list(image_shape), channels=list(m.channels),
                               code_size=m.n_components, kernel_size=m.kernel_size,
                               strides=m.strides, activation=m.activation,
                               code_activation=m.code_activation, output=output,
                               batch_norm=m.batch_norm)
    o = cfg.objective
    if getattr(model, "variational", False) or \
            (o.beta, o.iw_samples, o.iw_gradient) != (1.0, 1, "iwae"):
        from .variational import variational_run_objective

        objective = variational_run_objective(cfg, model, X, loss)
        if objective is not None:
            return model, objective
    # η per unit of the training data's total variance S = Σ_j Var(x_j), as in
    # aekit.Autoencoder: one value means the same on every dataset
    objective = make_objective(loss, n_features=n_features,
                               weight_decay=o.weight_decay * variance_scale(X),
                               l1=o.l1, sparsity_target=o.sparsity_target,
                               sparsity_weight=o.sparsity_weight,
                               dead_unit=o.dead_unit, contractive=o.contractive)
    objective.check_model(model)
    return model, objective


def build_corruption(cfg: RunConfig):
    """The training-input corruption a config asks for, or None."""
    from .corruption import make_corruption

    if cfg.objective.noise in ("none", ""):
        return None
    return make_corruption(cfg.objective.noise, cfg.objective.noise_level)


def reconstruction_errors(model: Autoencoder, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Per-sample squared error ``Σ_j (x_ij − x̂_ij)²`` of ``model`` on X (n, d) -> (n,),
    computed in chunks (see :func:`aekit.data.streaming.map_rows`)."""
    from .data.streaming import map_rows

    return map_rows(model, X, "score", chunk=batch_size)


def pca_errors(X_train: np.ndarray, X_test: np.ndarray, k: int) -> np.ndarray:
    """Per-sample squared error on ``X_test`` of exact PCA with ``k`` components fitted on
    ``X_train`` (the optimal linear autoencoder of that code size, :func:`pca_solution`)."""
    from .analysis.reconstruction import pca_reconstruct, sample_errors

    return sample_errors(X_test, pca_reconstruct(X_train, X_test, k)[0])


def evaluate_against_pca(model: Autoencoder, X_train: np.ndarray,
                         X_test: np.ndarray) -> dict[str, float]:
    """Test reconstruction error (mean over samples of Σ_j (x − x̂)²) of the model and of PCA
    with the same code size, and their ratio (< 1: the AE is better)."""
    e_ae = reconstruction_errors(model, X_test)
    e_pca = pca_errors(X_train, X_test, model.n_components)
    return {"n_test": int(len(X_test)), "code_size": int(model.n_components),
            "ae_error": float(e_ae.mean()), "pca_error": float(e_pca.mean()),
            "ae_over_pca": float(e_ae.mean() / e_pca.mean()),
            "unit": "sum over features of squared error, mean over test samples"}


def train_run(cfg: RunConfig, out: str | Path, *, resume: bool = False, restart: bool = False,
              progress: bool | None = None) -> dict[str, Any]:
    """Train the run ``cfg`` into directory ``out`` and return its metrics (the HTML report,
    :func:`aekit.report.write_report`, is a separate step: ``aekit train`` runs it after).

    Everything that can fail on bad input (config, data, model, the ``out`` directory) is
    checked before ``out`` is written to. ``out`` must be new, empty, or a run of aekit's
    (``run.json``); a directory holding other files is refused (``aekit train --force`` puts
    the run in :func:`fresh_subdir` instead). With ``resume`` the newest checkpoint of this
    run in ``out/checkpoints`` is continued and the final weights equal those of an
    uninterrupted run; no readable checkpoint of its own is an error naming the files tried,
    unless ``restart`` (train again from step 0 in the same directory). Checkpoints other runs
    left in the folder are neither loaded nor deleted. ``run.json`` says ``training`` while
    it runs, ``complete`` at the end, and ``incomplete`` with the reason when training failed
    or was interrupted.
    """
    out = Path(out)
    world, rank = world_and_rank()
    writer = rank == 0
    # Only the writer owns the directory; other processes of a distributed run read the id
    # on resume and never write a checkpoint.
    run_id = _claim(out, resume)[0] if writer or resume else uuid.uuid4().hex[:16]
    t = cfg.train
    from .schema import check_run_config, resolve_max_iter

    check_run_config(cfg.to_dict())  # every value in range, every model option applies
    data = load_run_data(cfg)
    epochs = resolve_max_iter(t.max_iter, t.max_steps, len(data.train.X), t.batch_size)
    try:
        check_fit_args(max_iter=epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                       optimizer=t.optimizer, schedule=t.schedule,
                       early_stopping=t.n_iter_no_change if t.early_stopping else None,
                       precision=t.precision)
    except ValueError as e:  # name the config key: "train.learning_rate must be ..."
        raise ValueError(f"train.{e}") from None
    torch.manual_seed(cfg.train.random_state)
    model, objective = build(cfg, data.train.X.shape[1], data.train.X, data.train.image_shape)
    corruption = build_corruption(cfg)
    info = {
        "format": RUN_FORMAT, "aekit_version": __version__, "config": cfg.to_dict(),
        "model": {"name": model.name, "config": model.config(),
                  "n_parameters": int(sum(p.numel() for p in model.parameters()))},
        "objective": {"loss": _objective_loss_label(cfg, data.train.X, model, objective),
                      "terms": [t.name for t in objective.terms],
                      "corruption": repr(corruption) if corruption is not None else None},
        "data": {"n_train": int(len(data.train.X)),
                 "n_val": int(len(data.val.X)) if data.val else 0,
                 "n_test": int(len(data.test.X)) if data.test else 0,
                 "n_features": int(data.train.X.shape[1]),
                 "image_shape": list(data.train.image_shape) if data.train.image_shape
                 else None},
        "torch": torch.__version__, "python": platform.python_version(),
        "processes": world,
    }
    if resume and (out / "config.json").exists():
        import warnings

        prev = read_run_config(out / "config.json")
        with warnings.catch_warnings():  # old names were reported when the config was read
            warnings.simplefilter("ignore", FutureWarning)
            prev_cfg = RunConfig.from_dict(prev["config"]).to_dict()
        if prev_cfg != info["config"]:
            raise ValueError(f"cannot resume {out}: its config.json differs from this config")
    if resume and not restart:
        _resume_checkpoint(out, run_id)
    if writer:
        out.mkdir(parents=True, exist_ok=True)
        write_marker(out, run_id, "training")
        atomic_write_json(out / "config.json", info)
    t0 = time.perf_counter()
    try:
        with checkpoint_owner(run_id):
            history = fit(
                model, objective, data.train.X, val=data.val.X if data.val else None,
                corruption=corruption,
                max_iter=epochs, batch_size=t.batch_size, optimizer=t.optimizer,
                learning_rate=t.learning_rate, momentum=t.momentum,
                optimizer_weight_decay=t.optimizer_weight_decay,
                schedule=t.schedule, warmup_steps=t.warmup_steps,
                early_stopping=t.n_iter_no_change if t.early_stopping else None,
                monitor=t.monitor if data.val is not None else None,
                max_grad_norm=t.max_grad_norm, random_state=t.random_state,
                checkpoint_dir=out / "checkpoints", checkpoint_every=t.checkpoint_every,
                checkpoint_steps=t.checkpoint_steps, resume=resume and not restart,
                history_path=out / "history.jsonl", progress=progress,
                precision=t.precision)
        train_time = time.perf_counter() - t0
        if not writer:
            return {}
        save_model(model, out / "model.safetensors", extra={"run": str(out.name),
                                                            "run_id": run_id})
        metrics: dict[str, Any] = {
            "epochs_run": len(history), "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early, "train_time_s": train_time,
            "resumed_from_step": history.resumed_from_step,
            "final": {k: v for k, v in history.records[-1].items() if k != "time_s"}
            if history.records else {},
        }
        Xeval = data.test.X if data.test is not None else (data.val.X if data.val else None)
        if Xeval is not None:
            metrics["test" if data.test is not None else "val"] = evaluate_against_pca(
                model, data.train.X, Xeval)
        atomic_write_json(out / "metrics.json", metrics)
    except BaseException as e:
        if writer:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            write_marker(out, run_id, "incomplete",
                         f"{reason}; continue with aekit train --output {out} --resume")
        raise
    write_marker(out, run_id, "complete")
    return metrics


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read a run directory's JSON files and model through the validated readers, with clear
    errors (:class:`FileFormatError`, ``FileNotFoundError``) for missing or malformed pieces
    and for a run that is not complete (its ``run.json`` status and reason)."""
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"run directory not found: {d}")
    marker = read_marker(d)
    if marker is not None and marker["status"] != "complete":
        why = marker.get("reason") or ("training was interrupted or is still running; "
                                       f"continue it with aekit train --output {d} --resume")
        raise FileNotFoundError(f"{d} is not a complete aekit run: status {marker['status']}"
                                f" ({why})")
    missing = [f for f in RUN_FILES if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(f"{d} is not a complete aekit run: missing {', '.join(missing)}"
                                + (" (training may still be running or was interrupted; "
                                   "continue it with aekit train --output DIR --resume)"
                                   if "model.safetensors" in missing else ""))
    info = read_run_config(d / "config.json")
    metrics = read_metrics(d / "metrics.json")
    history = read_history(d / "history.jsonl")
    model = load(d / "model.safetensors")
    return {"dir": d, "info": info, "metrics": metrics, "history": history, "model": model,
            "config": RunConfig.from_dict(info["config"]), "marker": marker}


def registry_params() -> dict[str, dict[str, tuple]]:
    """The declared hyperparameters of every registry entry:
    ``{"terms": {name: params}, "corruptions": {...}, "models": {...}}`` (models declare
    ``params`` where they have them; an empty tuple otherwise). Here, not in
    :mod:`aekit.schema`, which the data layer imports and so must not import the registries."""
    return {"terms": {k: tuple(c.params) for k, c in TERMS.items()},
            "corruptions": {k: tuple(c.params) for k, c in CORRUPTIONS.items()},
            "models": {k: tuple(getattr(c, "params", ())) for k, c in MODELS.items()}}
