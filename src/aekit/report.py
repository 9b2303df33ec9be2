"""A self-contained HTML report of a run directory (images embedded, no network, no scripts).

``write_report(run_dir)`` reads the run (config, history, metrics, model), re-loads its test
data, and writes ``report.html`` atomically: metrics vs PCA, training curves of every
objective term, reconstructions (input | AE | PCA) for image data, and the per-sample error
distributions of the AE and PCA.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_write_text

__all__ = ["write_report"]


def _fig_to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _curves(history: list[dict[str, Any]]):
    import matplotlib.pyplot as plt

    parts = sorted({k[len("train_"):] for r in history for k in r if k.startswith("train_")})
    fig, axes = plt.subplots(1, len(parts), figsize=(4.2 * len(parts), 3.2), squeeze=False)
    ep = [r["epoch"] for r in history]
    for ax, p in zip(axes[0], parts):
        ax.plot(ep, [r.get(f"train_{p}", np.nan) for r in history], label="train")
        if any(f"val_{p}" in r for r in history):
            ax.plot(ep, [r.get(f"val_{p}", np.nan) for r in history], label="validation")
        ax.set_title(p)
        ax.set_xlabel("epoch")
        ax.set_ylabel("per-sample value")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _recon_grid(X, R_ae, R_pca, shape, n=10):
    import matplotlib.pyplot as plt

    n = min(n, len(X))
    fig, axes = plt.subplots(3, n, figsize=(1.1 * n, 3.6))
    rows = [("input", X), ("autoencoder", R_ae), ("PCA", R_pca)]
    for r, (label, A) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c] if n > 1 else axes[r]
            ax.imshow(np.clip(A[c].reshape(shape), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


def _error_hist(e_ae, e_pca):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    hi = float(np.percentile(np.concatenate([e_ae, e_pca]), 99.5))
    bins = np.linspace(0, hi if hi > 0 else 1, 40)
    ax.hist(e_ae, bins=bins, alpha=0.6, label=f"autoencoder (mean {e_ae.mean():.3g})")
    ax.hist(e_pca, bins=bins, alpha=0.6, label=f"PCA (mean {e_pca.mean():.3g})")
    ax.set_xlabel("squared error per sample, Σ_j (x_j − x̂_j)²")
    ax.set_ylabel("test samples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _table(rows: list[tuple[str, Any]]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.5g}"
        return html.escape(str(v))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run directory and return its path.

    Raises ``FileNotFoundError``/``ValueError`` naming what is missing or incompatible; the
    file is written atomically, so a failure never leaves half a report.
    """
    import matplotlib

    matplotlib.use("Agg")
    from .runs import load_run_data, pca_errors, read_run, reconstruction_errors

    run = read_run(run_dir)
    cfg, info, metrics, history, model = (run["config"], run["info"], run["metrics"],
                                          run["history"], run["model"])
    images: list[tuple[str, str]] = []
    if history:
        images.append(("Training curves (every objective term)",
                       _fig_to_data_uri(_curves(history))))
    try:
        data = load_run_data(cfg)
    except (FileNotFoundError, ValueError) as e:
        data = None
        note = f"<p class=note>Data not available for plots: {html.escape(str(e))}</p>"
    else:
        note = ""
    if data is not None:
        Xte = data.test.X if data.test is not None else (data.val.X if data.val else None)
        if Xte is not None:
            e_ae = reconstruction_errors(model, Xte)
            e_pca, pca = pca_errors(data.train.X, Xte, model.n_components, cfg.data.seed)
            images.append(("Per-sample test error: autoencoder vs PCA of the same code size",
                           _fig_to_data_uri(_error_hist(e_ae, e_pca))))
            shape = data.train.image_shape
            if shape is not None:
                import torch

                with torch.no_grad():
                    R = model(torch.from_numpy(Xte[:10])).reconstruction.numpy()
                Rp = pca.inverse_transform(pca.transform(Xte[:10]))
                images.append(("Test reconstructions: input | autoencoder | PCA",
                               _fig_to_data_uri(_recon_grid(Xte, R, Rp, shape))))
    m = metrics.get("test") or metrics.get("val") or {}
    mrows = [(k, v) for k, v in m.items()]
    mrows += [("epochs run", metrics.get("epochs_run")), ("best epoch", metrics.get("best_epoch")),
              ("training time (s)", metrics.get("train_time_s"))]
    crow = []
    for sec, vals in info["config"].items():
        for k, v in vals.items():
            crow.append((f"{sec}.{k}", v))
    arch = info["model"]
    figs = "".join(f"<figure><img src=\"{uri}\" alt=\"{html.escape(t)}\"><figcaption>"
                   f"{html.escape(t)}</figcaption></figure>" for t, uri in images)
    title = f"aekit run {Path(run['dir']).resolve().name}"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 0.9em; }}
th {{ background: #f3f3f3; font-weight: 600; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
figcaption {{ font-size: 0.9em; color: #555; }} .note {{ color: #a33; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Model <b>{html.escape(arch['name'])}</b> {html.escape(str(arch['config'].get('sizes', '')))},
{arch['n_parameters']:,} parameters; loss <b>{html.escape(info['objective']['loss'])}</b>;
terms: {html.escape(', '.join(info['objective']['terms']) or 'none')}.
Data: {html.escape(cfg.data.dataset)}, {info['data']['n_train']} train /
{info['data']['n_val']} validation / {info['data']['n_test']} test samples,
{info['data']['n_features']} features. aekit {html.escape(info['aekit_version'])}.</p>
<h2>Metrics (test set)</h2>{_table(mrows)}
{note}
<h2>Plots</h2>{figs}
<h2>Configuration</h2>{_table(crow)}
</body></html>
"""
    path = Path(out) if out is not None else Path(run["dir"]) / "report.html"
    atomic_write_text(path, doc)
    return path
