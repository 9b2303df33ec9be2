"""A run: data + model + objective + ``fit`` + evaluation against PCA, written to a directory.

Layout of a run directory::

    config.json        the RunConfig, data shapes, model spec, aekit version
    checkpoints/       ckpt-<step>.safetensors while training (kept for --resume)
    history.jsonl      one JSON record per epoch, every objective term
    model.safetensors  the trained model (safetensors + JSON header, no pickle)
    metrics.json       test reconstruction error of the AE and of PCA with the same code size
    report.html        a self-contained report (``aekit report``)

Every file is written atomically; a run that fails before training starts leaves nothing.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import RunConfig
from .data import Dataset, load_dataset, train_val_split
from .io import atomic_write_json
from .models import MODELS, Autoencoder
from .objectives import make_objective
from .train import fit, load, save_model
from .train.distributed import world_and_rank
from .train.optim import check_fit_args
from .version import __version__

__all__ = ["RunData", "evaluate_against_pca", "load_run_data", "pca_errors", "read_run",
           "reconstruction_errors", "train_run"]

RUN_FORMAT = "aekit-run"
RUN_FILES = ("config.json", "model.safetensors", "history.jsonl", "metrics.json")


@dataclass
class RunData:
    """Training, validation and test splits of a run (arrays (n, d) float32)."""

    train: Dataset
    val: Dataset | None
    test: Dataset | None


def load_run_data(cfg: RunConfig) -> RunData:
    """Load and split the data a config describes (deterministic in ``data.seed``)."""
    train, test = load_dataset(cfg.data.dataset, data_path=cfg.data.path)
    X, y = train.X, train.y
    if cfg.data.limit is not None:
        if cfg.data.limit < 1:
            raise ValueError(f"data.limit must be >= 1, got {cfg.data.limit}")
        X, y = X[:cfg.data.limit], (y[:cfg.data.limit] if y is not None else None)
    Xtr, Xva, ytr, yva = train_val_split(X, y, val_fraction=cfg.data.val_fraction,
                                         seed=cfg.data.seed)
    shape = train.image_shape
    return RunData(Dataset(Xtr, ytr, shape),
                   Dataset(Xva, yva, shape) if Xva is not None else None,
                   test)


def _resolve_loss(cfg: RunConfig, X: np.ndarray) -> str:
    loss = cfg.objective.loss
    if loss == "auto":
        loss = "bce" if X.min() >= 0 and X.max() <= 1 else "mse"
    return loss


def build(cfg: RunConfig, n_features: int, X: np.ndarray,
          image_shape: tuple[int, ...] | None = None):
    """Model and objective for a config and data of ``n_features`` features (and, for the
    convolutional model, the data's ``image_shape``)."""
    m = cfg.model
    loss = _resolve_loss(cfg, X)
    if m.code_size > n_features:
        raise ValueError(f"model.code_size={m.code_size} is larger than the input size "
                         f"{n_features}")
    output = m.output if m.output != "auto" else ("sigmoid" if loss == "bce" else "linear")
    if m.name not in MODELS:
        raise ValueError(f"unknown model.name {m.name!r}; expected one of: {', '.join(MODELS)}")
    model = MODELS[m.name].from_spec(
        n_features=n_features, code_size=m.code_size, hidden=list(m.hidden),
        image_shape=image_shape, activation=m.activation, code_activation=m.code_activation,
        output=output, tied=m.tied, batch_norm=m.batch_norm, dropout=m.dropout)
    o = cfg.objective
    objective = make_objective(loss, n_features=n_features, weight_decay=o.weight_decay,
                               l1=o.l1, kl_rho=o.kl_rho, kl_beta=o.kl_beta,
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


def train_run(cfg: RunConfig, out: str | Path, *, resume: bool = False,
              progress: bool | None = None) -> dict[str, Any]:
    """Train the run ``cfg`` into directory ``out`` and return its metrics (the HTML report,
    :func:`aekit.report.write_report`, is a separate step: ``aekit train`` runs it after).

    Everything that can fail on bad input (config, data, model) is checked before ``out`` is
    created. With ``resume`` the newest checkpoint in ``out/checkpoints`` is continued and the
    final weights equal those of an uninterrupted run.
    """
    out = Path(out)
    world, rank = world_and_rank()
    writer = rank == 0
    if writer and not resume and (out / "config.json").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or "
                              "choose another --out")
    t = cfg.train
    check_fit_args(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, optimizer=t.optimizer,
                   schedule=t.schedule, early_stopping=t.early_stopping, precision=t.precision)
    data = load_run_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model, objective = build(cfg, data.train.X.shape[1], data.train.X, data.train.image_shape)
    corruption = build_corruption(cfg)
    info = {
        "format": RUN_FORMAT, "aekit_version": __version__, "config": cfg.to_dict(),
        "model": {"name": model.name, "config": model.config(),
                  "n_parameters": int(sum(p.numel() for p in model.parameters()))},
        "objective": {"loss": _resolve_loss(cfg, data.train.X),
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
        prev = json.loads((out / "config.json").read_text())
        if prev.get("config") != info["config"]:
            raise ValueError(f"cannot resume {out}: its config.json differs from this config")
    if writer:
        atomic_write_json(out / "config.json", info)
    t0 = time.perf_counter()
    history = fit(
        model, objective, data.train.X, val=data.val.X if data.val else None,
        corruption=corruption,
        epochs=t.epochs, batch_size=t.batch_size, optimizer=t.optimizer, lr=t.lr,
        momentum=t.momentum, weight_decay=t.optimizer_weight_decay, schedule=t.schedule,
        warmup_steps=t.warmup_steps, early_stopping=t.early_stopping,
        max_grad_norm=t.max_grad_norm, seed=t.seed, checkpoint_dir=out / "checkpoints",
        checkpoint_every=t.checkpoint_every, checkpoint_steps=t.checkpoint_steps,
        resume=resume, history_path=out / "history.jsonl", progress=progress,
        precision=t.precision)
    train_time = time.perf_counter() - t0
    if not writer:
        return {}
    save_model(model, out / "model.safetensors", extra={"run": str(out.name)})
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
    return metrics


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read a run directory's JSON files and model, with clear errors for missing pieces."""
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"run directory not found: {d}")
    missing = [f for f in RUN_FILES if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(f"{d} is not a complete aekit run: missing {', '.join(missing)}"
                                + (" (training may still be running or was interrupted; "
                                   "continue it with aekit train --out DIR --resume)"
                                   if "model.safetensors" in missing else ""))
    try:
        info = json.loads((d / "config.json").read_text())
        metrics = json.loads((d / "metrics.json").read_text())
        history = [json.loads(line) for line in (d / "history.jsonl").read_text().splitlines()
                   if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{d}: a run file is not valid JSON: {e}") from None
    if info.get("format") != RUN_FORMAT:
        raise ValueError(f"{d}/config.json is not an aekit run config (format "
                         f"{info.get('format')!r})")
    major = str(info.get("aekit_version", "?")).split(".")[0]
    if major != __version__.split(".")[0]:
        raise ValueError(f"{d} was written by aekit {info.get('aekit_version')}, this is "
                         f"{__version__}: incompatible run format")
    model = load(d / "model.safetensors")
    return {"dir": d, "info": info, "metrics": metrics, "history": history, "model": model,
            "config": RunConfig.from_dict(info["config"])}
