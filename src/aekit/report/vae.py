"""The variational section of an HTML report: samples from the prior, latent traversals in
prior standard deviations, spherical interpolation between two inputs' posterior means, and
(with binary data for a Bernoulli decoder) the importance-sampled log-likelihood and the ELBO.

``vae_section(model, X, image_shape)`` returns a :class:`~aekit.report.html.Section` that any
report page can include (the run report of ``aekit train --model vae`` already has the
generic reconstruction/traversal/interpolation sections); ``write_vae_report(...)`` writes a
page of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .html import Section, figure, page, table

__all__ = ["vae_section", "write_vae_report"]


def vae_section(model: Any, X: Any = None, image_shape: Sequence[int] | None = None, *,
                n_samples: int = 32, n_units: int = 8, ll_samples: int = 500,
                ll_rows: int = 200, random_state: int = 0) -> Section:
    """A report section describing a trained variational model.

    Parameters
    ----------
    model : aekit.models.VAE or ConvVAE
    X : array-like (n, d), optional
        Data for the interpolation and the likelihood table (binary for a Bernoulli decoder,
        else the likelihood rows are skipped with a note).
    image_shape : shape of one sample for pictures (e.g. (28, 28)); None: tables only.
    n_samples : int
        Samples ``E[x|z]``, ``z ~ N(0, I)``, drawn for the grid.
    n_units : int
        Traversals of the ``n_units`` latent units with the largest mean KL on ``X`` (the
        active units; Burda et al. 2016, section 5.2), or the first ones without ``X``.
    ll_samples, ll_rows : int
        k and the number of rows of ``X`` for the log-likelihood estimate.

    References
    ----------
    Kingma & Welling, ICLR 2014 (samples); Higgins et al., ICLR 2017 (traversals); White 2016
    (spherical interpolation); Burda et al., ICLR 2016 (log-likelihood, active units).
    """
    from .. import plots
    from ..objectives.variational import gaussian_kl
    from ..variational import check_bernoulli_data, elbo, interpolate, latent_traversal
    from ..variational import log_likelihood as _ll

    if not getattr(model, "variational", False):
        raise ValueError(f"model must be a variational model, got {type(model).__name__}")
    model.eval()
    k = model.n_components
    rows: list[list[Any]] = [["latent units k", k], ["decoder likelihood", model.likelihood]]
    parts: list[str] = []
    Xa = None if X is None else np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    order = np.arange(k)
    if Xa is not None and len(Xa):
        with torch.no_grad():
            mu, lv = model.posterior(torch.from_numpy(Xa[:2000]))
            kl = gaussian_kl(mu, lv).mean(0).double().numpy()  # (k,)
        order = np.argsort(-kl, kind="stable")
        rows += [["mean KL per sample (nats)", float(kl.sum())],
                 ["active units (mean KL > 0.01 nats)", int((kl > 0.01).sum())]]
        ok = True
        if model.likelihood == "bernoulli":
            try:
                check_bernoulli_data(Xa, "X")
            except ValueError as e:
                ok = False
                rows.append(["log-likelihood", f"not computed: {e}"])
        if ok:
            sub = Xa[:ll_rows]
            ll = _ll(model, sub, n_samples=ll_samples, random_state=random_state)
            el = elbo(model, sub, n_samples=1, random_state=random_state)
            rows += [[f"log-likelihood, k = {ll_samples} ({len(sub)} rows), nats",
                      float(ll.mean())], ["ELBO (same rows), nats", float(el.mean())]]
    if image_shape is not None:
        g = torch.Generator().manual_seed(int(random_state))
        S = model.sample(n_samples, generator=g).double().numpy()
        per = max(1, int(np.ceil(n_samples / 4)))
        grid = [(f"samples {i * per + 1}-{min(n_samples, (i + 1) * per)}",
                 S[i * per:(i + 1) * per]) for i in range(int(np.ceil(n_samples / per)))]
        grid = [r for r in grid if len(r[1]) == per]
        parts.append(figure(plots.image_rows(grid, image_shape, vmin=0.0, vmax=1.0),
                            f"Decoder means E[x|z] of {per * len(grid)} draws z ~ N(0, I)."))
        x0 = Xa[0] if Xa is not None and len(Xa) else np.zeros(model.n_features, np.float32)
        units = [int(u) for u in order[:min(n_units, k)]]
        vals = np.linspace(-3, 3, 9)
        T = latent_traversal(model, x0, dims=units, values=vals)
        parts.append(figure(plots.traversal_plot(
            T, units, [f"{v:+.1f}σ" for v in vals], image_shape, vmin=0.0, vmax=1.0),
            "Latent traversals: from the posterior mean of the first sample, one unit at a "
            "time set to −3σ … +3σ of the prior (rows: the units with the largest mean KL)."))
        if Xa is not None and len(Xa) >= 2:
            pairs = [(0, len(Xa) - 1), (1, len(Xa) // 2)]
            ir = [(f"#{a} → #{b}", interpolate(model, Xa[a], Xa[b], steps=8, spherical=True))
                  for a, b in pairs if a != b]
            parts.append(figure(plots.image_rows(ir, image_shape, vmin=0.0, vmax=1.0),
                                "Spherical interpolation between the posterior means of two "
                                "inputs (decoder means)."))
    body = table(rows) + "\n".join(parts)
    return Section("variational", "Variational model", body)


def write_vae_report(model: Any, X: Any, path: str | os.PathLike, *,
                     image_shape: Sequence[int] | None = None, title: str = "VAE report",
                     **kwargs: Any) -> Path:
    """Write a one-section HTML page (:func:`vae_section`) to ``path``, atomically."""
    from ..io import atomic_write_text

    path = Path(path)
    sec = vae_section(model, X, image_shape, **kwargs)
    atomic_write_text(path, page(title, "<p>Samples, traversals, interpolation and the "
                                 "log-likelihood of a variational autoencoder.</p>", [sec]))
    return path
