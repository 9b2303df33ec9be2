"""The sparse-autoencoder section of an HTML report: FVU, L0, dead latents, the latents'
firing frequencies and their top-activating examples (as images when the rows come from
images).

``sae_section(model, X, images=...)`` returns a :class:`~aekit.report.html.Section`;
``write_sae_report(model, X, path)`` writes a page of its own.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .html import Section, figure, page, table

__all__ = ["sae_section", "write_sae_report"]


def _frequency_figure(freq: np.ndarray, n_tokens: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    alive = freq[freq > 0]
    if len(alive):
        ax.hist(np.log10(alive), bins=40, color="#4a7ab5")
    ax.set_xlabel("log10 firing frequency (fraction of rows)")
    ax.set_ylabel("latents")
    ax.set_title(f"{int((freq == 0).sum())} of {len(freq)} latents never fired in "
                 f"{n_tokens:,} rows", fontsize=9)
    fig.tight_layout()
    return fig


def _examples_figure(images: np.ndarray, ex, n_show: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m, n = len(ex.latents), min(n_show, ex.rows.shape[1])
    fig, axes = plt.subplots(m, n, figsize=(0.9 * n + 0.8, 0.95 * m), squeeze=False)
    for r in range(m):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            i = int(ex.rows[r, c])
            if i >= 0:
                img = images[i]
                img = img[0] if img.ndim == 3 and img.shape[0] == 1 else img
                ax.imshow(img, cmap="gray")
                ax.set_title(f"{ex.values[r, c]:.2g}", fontsize=6)
        axes[r][0].text(-0.15, 0.5, f"#{int(ex.latents[r])}", transform=axes[r][0].transAxes,
                        ha="right", va="center", fontsize=7)
    fig.tight_layout()
    return fig


def sae_section(model: Any, X: Any, *, images: Any = None, n_latents: int = 12,
                n_top: int = 8, window: int | None = None, batch_size: int = 4096) -> Section:
    """A report section for a :class:`~aekit.models.TopKSAE` (or a fitted
    :class:`~aekit.sae.SparseAutoencoder`) on activations ``X`` (n, d).

    Parameters
    ----------
    model : TopKSAE or SparseAutoencoder
    X : array, ``.npy`` path, NpyReader or ActivationSource
        The rows to describe (e.g. held-out activations).
    images : array (n, H, W) or (n, 1, H, W), optional
        The inputs the rows of X came from; the top-activating examples are then shown as
        images (one row of the grid per latent).
    n_latents : int
        Latents described: evenly spaced over the live latents ranked by frequency.
    n_top : int
        Examples per latent.
    window : int, optional
        Rows of X used for the metrics (all when None).

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024 (FVU, L0, dead latents);
    Bricken et al., "Towards monosemanticity", 2023 (top-activating examples).
    """
    from ..sae.data import as_activations
    from ..sae.examples import top_activating_examples
    from ..sae.metrics import evaluate_sae

    model = getattr(model, "model_", model)
    X = as_activations(X, n_features=model.n_features)
    met = evaluate_sae(model, X, window=window, batch_size=batch_size)
    freq = met.fire_counts / met.n_tokens
    rows = [["latents L (dictionary size)", model.n_latents], ["k", model.k],
            ["BatchTopK", model.batch_topk], ["rows evaluated", met.n_tokens],
            ["FVU (fraction of variance unexplained)", met.fvu], ["L0", met.l0],
            ["dead fraction (never fired in these rows)", met.dead_fraction],
            ["MSE per row", met.mse]]
    parts = [table(rows, ["quantity", "value"]),
             figure(_frequency_figure(freq, met.n_tokens),
                    "Firing frequency of the live latents (Gao et al. 2024, section 2.4)")]
    alive = np.flatnonzero(freq > 0)
    if len(alive):
        ranked = alive[np.argsort(-freq[alive], kind="stable")]
        pick = ranked[np.unique(np.linspace(0, len(ranked) - 1,
                                            min(int(n_latents), len(ranked))).astype(int))]
        ex = top_activating_examples(model, X, n_top=n_top, latents=pick,
                                     batch_size=batch_size)
        trows = [[f"#{int(lat)}", f"{f:.3g}",
                  ", ".join(f"{int(i)} ({v:.3g})" for i, v in zip(r, vv) if i >= 0)]
                 for lat, f, r, vv in zip(ex.latents, ex.frequency, ex.rows, ex.values)]
        parts.append("<p>Top-activating rows (row index and activation), latents spread "
                     "from the most to the least frequent live one:</p>")
        parts.append(table(trows, ["latent", "frequency", "top rows (activation)"]))
        if images is not None:
            imgs = np.asarray(images)
            if len(imgs) < len(X):
                raise ValueError(f"images has {len(imgs)} rows, X has {len(X)}")
            parts.append(figure(_examples_figure(imgs, ex, n_top),
                                "Top-activating inputs per latent (activation above each)"))
    return Section("sae", "Sparse autoencoder", "".join(parts))


def write_sae_report(model: Any, X: Any, path: str | os.PathLike = "sae.html",
                     **kwargs: Any) -> str:
    """Write a self-contained HTML page with :func:`sae_section`; returns the path."""
    from ..io import atomic_write_text

    sec = sae_section(model, X, **kwargs)
    atomic_write_text(path, page("Sparse autoencoder report",
                                 "<p>A top-k sparse autoencoder on activations.</p>",
                                 [sec]))
    return str(path)
