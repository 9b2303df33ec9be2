"""Several runs side by side: metrics, configuration differences, overlaid training curves,
and test error against code size next to PCA."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text
from .html import Section, esc, figure, fmt, page, table

__all__ = ["rate_distortion_from_runs", "write_comparison"]


def _labels(dirs: Sequence[Path]) -> list[str]:
    """Short unique names: the directory name, with parents added until they differ."""
    parts = [Path(d).resolve().parts for d in dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{n} ({i + 1})" for i, n in enumerate(names)]


def rate_distortion_from_runs(run_dirs: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Code size and saved mean test errors (autoencoder and PCA of the same size) of runs.

    Reads each run's ``metrics.json`` (its ``test`` entry, else ``val``), without loading
    data or models.

    Returns
    -------
    dict with ``code_size`` (m,) int, ``ae_error`` (m,), ``pca_error`` (m,) and ``labels``
    (m,), sorted by code size.
    """
    from ..runs import read_run

    runs = [read_run(d) for d in run_dirs]
    return _rd(runs, _labels([r["dir"] for r in runs]))


def _rd(runs: list[dict[str, Any]], labels: list[str]) -> dict[str, np.ndarray]:
    rows = []
    for r, name in zip(runs, labels):
        res = r["metrics"].get("test") or r["metrics"].get("val")
        if res:
            rows.append((int(res["code_size"]), float(res["ae_error"]),
                         float(res["pca_error"]), name))
    rows.sort(key=lambda t: t[0])
    return {"code_size": np.array([t[0] for t in rows], dtype=int),
            "ae_error": np.array([t[1] for t in rows]),
            "pca_error": np.array([t[2] for t in rows]),
            "labels": np.array([t[3] for t in rows], dtype=object)}


def _shared_data(runs: list[dict[str, Any]]):
    """The runs' data when they all use the same data settings (else None, reason)."""
    from ..runs import load_run_data

    keys = {tuple(sorted(r["info"]["config"]["data"].items())) for r in runs}
    if len(keys) != 1:
        return None, "the runs use different data settings, so their errors are not measured " \
            "on the same samples"
    try:
        data = load_run_data(runs[0]["config"], where=Path(runs[0]["dir"]) / "config.json")
    except (FileNotFoundError, ValueError, OSError) as e:
        return None, f"the runs' data could not be loaded ({e})"
    if any(r["model"].n_features != data.train.X.shape[1] for r in runs):
        return None, "the data no longer match the models' input size"
    return data, ""


def write_comparison(run_dirs: Sequence[str | Path], out: str | Path, *,
                     labels: Sequence[str] | None = None) -> Path:
    """Write an HTML page comparing runs: metrics side by side, the configuration keys that
    differ, overlaid training curves, and test error against code size with PCA's curve.

    Parameters
    ----------
    run_dirs : sequence of path
        Two or more run directories (one is allowed).
    out : path
        Output HTML file (written atomically).
    labels : sequence of str, optional
        A name per run; unique shortest path suffixes by default.

    Returns
    -------
    Path of the written file.

    Raises
    ------
    FileNotFoundError, ValueError
        A run is missing, incomplete (the message names it and the missing files) or from an
        incompatible aekit version.
    """
    from .. import plots
    from ..analysis.rate_distortion import pca_error_curve
    from ..analysis.reconstruction import reconstruct, sample_errors
    from ..runs import read_run

    if not run_dirs:
        raise ValueError("run_dirs must name at least one run directory")
    runs = [read_run(d) for d in run_dirs]
    names = list(labels) if labels is not None else _labels([r["dir"] for r in runs])
    if len(names) != len(runs):
        raise ValueError(f"labels has {len(names)} entries for {len(runs)} runs")

    # -- metrics side by side
    def res(r):
        return r["metrics"].get("test") or r["metrics"].get("val") or {}

    def shape(r):
        s = r["info"]["model"]["config"].get("sizes")
        return "–".join(map(str, s)) if s else f"{r['model'].n_features}–" \
            f"{r['model'].n_components}"

    errs = [res(r).get("ae_error") for r in runs]
    best = min((e for e in errs if e is not None), default=None)
    spec = [("model", lambda r: r["info"]["model"]["name"]), ("layer sizes", shape),
            ("parameters", lambda r: r["info"]["model"]["n_parameters"]),
            ("code size k", lambda r: r["model"].n_components),
            ("loss", lambda r: r["info"]["objective"]["loss"]),
            ("terms", lambda r: ", ".join(r["info"]["objective"]["terms"]) or "none"),
            ("dataset", lambda r: r["config"].data.dataset),
            ("epochs run", lambda r: r["metrics"].get("epochs_run")),
            ("best epoch", lambda r: r["metrics"].get("best_epoch")),
            ("training time (s)", lambda r: r["metrics"].get("train_time_s")),
            ("test error, autoencoder", lambda r: res(r).get("ae_error")),
            ("test error, PCA same k", lambda r: res(r).get("pca_error")),
            ("autoencoder / PCA", lambda r: res(r).get("ae_over_pca")),
            ("final training loss", lambda r: r["metrics"].get("final", {}).get("train_loss")),
            ("final validation loss", lambda r: r["metrics"].get("final", {}).get("val_loss"))]
    rows = []
    for label, f in spec:
        cells = []
        for r in runs:
            v = f(r)
            c = fmt(v if v is not None else "–")
            if label == "test error, autoencoder" and v is not None and v == best \
                    and len(runs) > 1:
                c = f'<b class="best">{c}</b>'
            cells.append(c)
        rows.append((esc(label), *cells))
    body = table(rows, ["", *names], raw=True)
    body += ('<p class="muted">Test error: mean over test samples of Σⱼ (xⱼ − x̂ⱼ)²; PCA is '
             "fitted on each run's training split with the run's code size. Bold: lowest.</p>")
    sections = [Section("metrics", "Metrics", body)]

    # -- configuration differences
    flat = [{f"{s}.{k}": v for s, vals in r["info"]["config"].items() for k, v in vals.items()}
            for r in runs]
    keys = sorted({k for f in flat for k in f})
    diff = [(k, *[f.get(k, "–") for f in flat]) for k in keys
            if len({repr(f.get(k)) for f in flat}) > 1]
    sections.append(Section("config", "Configuration differences", table(
        diff, ["key", *names]) if diff else "<p>The runs share every configuration key.</p>"))

    # -- overlaid training curves
    hists = {n: r["history"] for n, r in zip(names, runs) if r["history"]}
    if hists:
        losses = {r["info"]["objective"]["loss"] for r in runs}
        fig = plots.training_curves(hists, loss=losses.pop() if len(losses) == 1 else None)
        sections.append(Section("curves", "Training curves", figure(
            fig, "Every objective term per epoch for each run (one colour per run; training "
            "solid, validation dashed) and the learning rate.")))

    # -- rate–distortion
    rd = _rd(runs, names)
    data, why = _shared_data(runs)
    ks = pe = np.array([])
    body = ""
    if data is not None:
        Xe = data.test.X if data.test is not None else (data.val.X if data.val else None)
        if Xe is not None:
            ks, pe = pca_error_curve(data.train.X, Xe)
            e = {n: sample_errors(Xe, reconstruct(r["model"], Xe)) for n, r in zip(names, runs)}
    else:
        body += f'<p class="muted">PCA is shown only at each run\'s code size: {esc(why)}.</p>'
    figs = ""
    if len(rd["code_size"]):
        fig = plots.rate_distortion_plot(
            ks, pe, list(zip(rd["labels"], rd["code_size"], rd["ae_error"])),
            pca_points=list(zip(rd["code_size"], rd["pca_error"])) if not len(ks) else ())
        figs += figure(fig, "Mean test error against code size: each run, and PCA (the best "
                       "linear code of each size).")
    if data is not None and len(ks):
        figs += figure(plots.error_histograms(e), "Per-sample test error of each run.")
    if figs:
        body += f'<div class="cols">{figs}</div>'
    if body:
        sections.append(Section("rate-distortion", "Error against code size", body))

    intro = (f"<p>{len(runs)} runs: " + ", ".join(f"<b>{esc(n)}</b>" for n in names) + ".</p>"
             f'<p class="muted">Written on {datetime.date.today().isoformat()}.</p>')
    doc = page("aekit run comparison", intro, sections)
    path = Path(out)
    atomic_write_text(path, doc)
    return path
