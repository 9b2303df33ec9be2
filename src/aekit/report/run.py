"""The report of one run directory: what the autoencoder learned, next to PCA of its size."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text
from .html import Section, esc, figure, fmt, page, table

__all__ = ["IMAGE_SECTIONS", "write_report"]

#: Sections drawn only for image data (``config.json`` ``data.image_shape`` is a picture).
IMAGE_SECTIONS = ("reconstructions", "traversal", "interpolation", "filters", "tangents")


@dataclass
class _Ctx:
    run: dict[str, Any]
    model: Any
    X_train: np.ndarray | None = None
    X_eval: np.ndarray | None = None
    y_eval: np.ndarray | None = None
    split: str = ""
    image_shape: tuple[int, ...] | None = None
    vmin: float = 0.0
    vmax: float = 1.0
    e_ae: np.ndarray | None = None
    e_pca: np.ndarray | None = None
    R_pca: np.ndarray | None = None
    pca_curve: tuple[np.ndarray, np.ndarray] | None = None
    note: str = ""


def _load_data(ctx: _Ctx) -> None:
    """Re-load the run's data (deterministic split); on failure leave a note, not an error."""
    from ..analysis.reconstruction import display_shape, pca_reconstruct
    from ..runs import load_run_data

    try:
        data = load_run_data(ctx.run["config"], where=Path(ctx.run["dir"]) / "config.json")
    except (FileNotFoundError, ValueError, OSError) as e:
        ctx.note = f"The run's data could not be loaded, so only the saved numbers are shown: {e}"
        return
    d = ctx.model.n_features
    if data.train.X.shape[1] != d:
        ctx.note = (f"The run's data now have {data.train.X.shape[1]} features but the model "
                    f"expects {d}; only the saved numbers are shown.")
        return
    for split, ds in (("test", data.test), ("validation", data.val), ("training", data.train)):
        if ds is not None and len(ds.X):
            ctx.X_eval, ctx.y_eval, ctx.split = ds.X, ds.y, split
            break
    ctx.X_train = data.train.X
    shape = ctx.run["info"]["data"].get("image_shape")
    ctx.image_shape = display_shape(shape, d) if shape else None
    ctx.vmin, ctx.vmax = float(ctx.X_train.min()), float(ctx.X_train.max())
    k = min(ctx.model.n_components, *ctx.X_train.shape)
    try:
        ctx.R_pca = pca_reconstruct(ctx.X_train, ctx.X_eval, k)[0]
    except _SECTION_ERRORS as e:
        ctx.X_eval = None
        ctx.note = f"The data-based sections are skipped: {e}"


# What drawing a section on unusual data (a handful of samples, constant features) raises.
# (A RuntimeError is a failure of the code, not of the data: it propagates, nothing is written.)
_SECTION_ERRORS = (ValueError, FloatingPointError, ZeroDivisionError, IndexError,
                   np.linalg.LinAlgError)


def _subsample(n: int, m: int) -> np.ndarray:
    """At most m of n indices, evenly spread and sorted (deterministic)."""
    return np.arange(n) if n <= m else np.unique(np.linspace(0, n - 1, m).astype(int))


# ---- sections ------------------------------------------------------------------------------

def _overview(ctx: _Ctx) -> Section:
    info, cfg = ctx.run["info"], ctx.run["config"]
    dd = info["data"]
    rows = [("dataset", cfg.data.dataset), ("training samples", dd["n_train"]),
            ("validation samples", dd["n_val"]), ("test samples", dd["n_test"]),
            ("features d", dd["n_features"]),
            ("image shape", "×".join(map(str, dd["image_shape"])) if dd.get("image_shape")
             else "none (feature vectors)")]
    if ctx.X_train is not None:
        rows += [("value range (training)", f"[{ctx.vmin:.4g}, {ctx.vmax:.4g}]")]
    if ctx.X_eval is not None:
        rows += [("evaluated on", f"{ctx.split} split, {len(ctx.X_eval)} samples")]
    arch = info["model"]
    mrows = [("model", arch["name"]),
             *[(k, v) for k, v in arch["config"].items()],
             ("parameters", arch["n_parameters"]), ("code size k", ctx.model.n_components),
             ("loss", info["objective"]["loss"]),
             ("regularisation terms", ", ".join(info["objective"]["terms"]) or "none")]
    body = ('<div class="cols"><div><h3>Data</h3>' + table(rows) + "</div><div><h3>Model</h3>"
            + table(mrows) + "</div></div>")
    if ctx.note:
        body += f'<p class="note">{esc(ctx.note)}</p>'
    return Section("overview", "Overview", body)


def _metrics(ctx: _Ctx) -> Section:
    from ..analysis.rate_distortion import pca_equivalent_code_size
    from ..analysis.reconstruction import error_summary

    m = ctx.run["metrics"]
    k = ctx.model.n_components
    body = ""
    if ctx.e_ae is not None:
        sa, sp = error_summary(ctx.e_ae), error_summary(ctx.e_pca)
        names = {"mean": "mean", "median": "median", "p90": "90th percentile",
                 "p99": "99th percentile", "max": "maximum"}
        rows = [(names[key], sa[key], sp[key], sa[key] / sp[key] if sp[key] > 0 else "n/a")
                for key in names]
        ks, pe = ctx.pca_curve
        keq = pca_equivalent_code_size(sa["mean"], ks, pe)
        body += (f"<p>Per-sample reconstruction error Σⱼ (xⱼ − x̂ⱼ)² on the {ctx.split} split "
                 f"({len(ctx.X_eval)} samples); PCA has the same code size k = {k} and is "
                 "fitted on the training split. Ratio &lt; 1: the autoencoder is better.</p>")
        body += table(rows, ["error statistic", "autoencoder", f"PCA (k = {k})",
                             "autoencoder / PCA"])
        body += ("<p>PCA needs "
                 + (f"<b>k = {keq}</b> components" if keq is not None else
                    f"more than {int(ks[-1])} components")
                 + f" to match the autoencoder's mean error (whose code has {k} units).</p>")
    else:
        res = m.get("test") or m.get("val") or {}
        if res:
            body += table([("mean error (saved)", res.get("ae_error"), res.get("pca_error"),
                            res.get("ae_over_pca"))],
                          ["", "autoencoder", f"PCA (k = {res.get('code_size')})",
                           "autoencoder / PCA"])
    fin = m.get("final", {})
    trows = [("epochs run", m.get("epochs_run")), ("best epoch", m.get("best_epoch")),
             ("stopped early", m.get("stopped_early")),
             ("training time (s)", m.get("train_time_s")),
             *[(f"final {key.replace('_', ' ')}", v) for key, v in fin.items()
               if key.startswith(("train_", "val_"))]]
    body = (f'<div class="cols"><div><h3>Reconstruction error</h3>{body}</div>'
            f"<div><h3>Training</h3>{table(trows)}</div></div>")
    return Section("metrics", "Metrics", body)


def _curves(ctx: _Ctx) -> Section | None:
    from .. import plots

    hist = ctx.run["history"]
    if not hist:
        return None
    loss = ctx.run["info"]["objective"]["loss"]
    fig = plots.training_curves({"run": hist}, loss=loss)
    return Section("curves", "Training curves", figure(
        fig, "Every term of the objective per epoch, mean over samples (training: solid, "
        "validation: dashed), and the learning rate."))


def _pca(ctx: _Ctx) -> Section | None:
    from .. import plots

    if ctx.e_ae is None:
        return None
    ks, pe = ctx.pca_curve
    k = ctx.model.n_components
    fig = plots.rate_distortion_plot(ks, pe, [(f"autoencoder (k = {k})", k,
                                               float(ctx.e_ae.mean()))])
    body = figure(fig, f"Mean {ctx.split} error of PCA for every code size (the best a linear "
                  "code of that size can do) and of this autoencoder. A point below the curve "
                  "beats every linear code of its size.")
    fig = plots.error_histograms({"autoencoder": ctx.e_ae, f"PCA (k = {k})": ctx.e_pca})
    body += figure(fig, f"Distribution of the per-sample error on the {ctx.split} split.")
    return Section("pca", "Comparison with PCA", f'<div class="cols">{body}</div>')


def _reconstructions(ctx: _Ctx) -> Section | None:
    from .. import plots
    from ..analysis.reconstruction import reconstruction_grid

    if ctx.image_shape is None or ctx.X_eval is None:
        return None
    idx = _subsample(len(ctx.X_eval), 12)[:12]
    g = reconstruction_grid(ctx.model, ctx.X_eval[idx], n=len(idx))
    k = ctx.model.n_components
    fig = plots.image_rows([("input", g.inputs), ("autoencoder", g.autoencoder),
                            (f"PCA (k = {k})", ctx.R_pca[idx])], ctx.image_shape,
                           vmin=ctx.vmin, vmax=ctx.vmax)
    return Section("reconstructions", "Reconstructions", figure(
        fig, f"{len(idx)} {ctx.split} samples spread over the split: inputs, the "
        f"autoencoder's reconstructions g(f(x)) and PCA's with the same code size, on one grey "
        f"scale [{ctx.vmin:.3g}, {ctx.vmax:.3g}]."))


def _worst(ctx: _Ctx) -> Section | None:
    from .. import plots
    from ..analysis.reconstruction import worst_reconstructions

    if ctx.e_ae is None:
        return None
    w = worst_reconstructions(ctx.model, ctx.X_eval, 10, errors=ctx.e_ae)
    med = float(np.median(ctx.e_ae))
    if ctx.image_shape is not None:
        labels = [f"{e:.3g}" for e in w.errors]
        fig = plots.image_rows([("input", w.inputs), ("autoencoder", w.reconstructions),
                                ("PCA", ctx.R_pca[w.indices])], ctx.image_shape,
                               col_labels=labels, vmin=ctx.vmin, vmax=ctx.vmax)
        body = figure(fig, f"The {len(w.indices)} {ctx.split} samples with the largest "
                      f"autoencoder error (value under each column; the median is {med:.3g}).")
    else:
        has_y = ctx.y_eval is not None
        rows = [(int(i), float(e), float(e / med) if med > 0 else "n/a", float(ctx.e_pca[i]),
                 *([ctx.y_eval[i]] if has_y else []))
                for i, e in zip(w.indices, w.errors)]
        body = (f"<p>The {len(rows)} {ctx.split} samples with the largest autoencoder error "
                f"(median error {med:.3g}); row: index in the {ctx.split} split.</p>"
                + table(rows, ["row", "autoencoder error", "× median", "PCA error",
                               *(["label"] if has_y else [])]))
    return Section("worst", "Worst reconstructions", body)


def _codes(ctx: _Ctx, tsne: bool) -> Section | None:
    from .. import plots
    from ..analysis.latent import code_map, encode

    if ctx.X_eval is None:
        return None
    idx = _subsample(len(ctx.X_eval), 2000)
    X = ctx.X_eval[idx]
    H = encode(ctx.model, X)
    k = H.shape[1]
    cm = code_map(H)
    title = "codes" if cm.method == "codes" else f"codes (PCA of the {k} code units)"
    panels = [(title, cm.points, cm.axis_labels)]
    if tsne:
        ts = code_map(H, method="tsne", random_state=ctx.run["config"].data.random_state)
        panels.append(("codes (t-SNE)", ts.points, ts.axis_labels))
    dm = code_map(X, method="pca")
    panels.append((f"data (PCA of the {X.shape[1]} features)", dm.points, dm.axis_labels))
    y = ctx.y_eval[idx] if ctx.y_eval is not None else None
    fig = plots.scatter_maps(panels, labels=y, colour=None if y is not None else
                             ctx.e_ae[idx], colour_label="autoencoder error per sample")
    coloured = ("label. Classes that separate in the code but not in the data PCA are "
                "structure the encoder found" if y is not None else
                "the autoencoder's per-sample error")
    return Section("codes", "Code space", figure(
        fig, f"{len(idx)} {ctx.split} samples in code space"
        + (" (also as a t-SNE embedding, which keeps neighbourhoods but not distances)"
           if tsne else "") + " and, for reference, the first two "
        f"principal components of the raw data; colour: {coloured}."))


def _traversal(ctx: _Ctx) -> Section | None:
    from .. import plots
    from ..analysis.latent import encode, latent_traversal, traversal_values

    if ctx.image_shape is None or ctx.X_eval is None:
        return None
    H = encode(ctx.model, ctx.X_eval)
    qs = (0.05, 0.95)
    V = traversal_values(H, 9, quantiles=qs)  # (k, 9)
    units = np.argsort(-H.std(0), kind="stable")[:10]
    x0 = ctx.X_eval[0]
    imgs = np.stack([latent_traversal(ctx.model, x0, int(j), V[j]).reconstructions
                     for j in units])
    cols = [f"q{100 * q:.0f}" for q in np.linspace(*qs, 9)]
    fig = plots.traversal_plot(imgs, [int(j) for j in units], cols, ctx.image_shape,
                               vmin=ctx.vmin, vmax=ctx.vmax)
    return Section("traversal", "Latent traversals", figure(
        fig, f"Starting from the code of the first {ctx.split} sample, one unit at a time is "
        "swept from the 5th to the 95th percentile of its values over the split (columns) "
        f"while the others are held; rows: "
        + (f"the {len(units)} units with the largest spread." if len(units) > 1 else
           "the code's only unit.")))


def _interpolation(ctx: _Ctx) -> Section | None:
    from .. import plots
    from ..analysis.latent import interpolate

    if ctx.image_shape is None or ctx.X_eval is None or len(ctx.X_eval) < 2:
        return None
    n = len(ctx.X_eval)
    # Pairs of different classes when labels exist, else samples far apart in the split.
    pairs: list[tuple[int, int]] = []
    if ctx.y_eval is not None:
        y, used = ctx.y_eval, set()
        for i in range(min(n, 400)):
            if y[i] in used:
                continue
            j = next((j for j in range(i + 1, min(n, 400))
                      if y[j] != y[i] and y[j] not in used), None)
            if j is not None:
                pairs.append((i, j))
                used |= {y[i], y[j]}
            if len(pairs) == 4:
                break
    for i in range(n // 2):
        if len(pairs) >= min(4, n // 2):
            break
        pairs.append((i, n - 1 - i))
    steps = 8
    rows = []
    for a, b in pairs:
        it = interpolate(ctx.model, ctx.X_eval[a], ctx.X_eval[b], steps)
        rows.append((f"#{a} → #{b}", np.concatenate([ctx.X_eval[a:a + 1], it.reconstructions,
                                                      ctx.X_eval[b:b + 1]])))
    cols = ["x₀", *[f"t={t:.2g}" for t in np.linspace(0, 1, steps)], "x₁"]
    fig = plots.image_rows(rows, ctx.image_shape, col_labels=cols, vmin=ctx.vmin,
                           vmax=ctx.vmax)
    return Section("interpolation", "Interpolation in code space", figure(
        fig, "Decodings of h(t) = (1 − t) f(x₀) + t f(x₁) between two inputs (first and last "
        "columns); t = 0 and t = 1 are the reconstructions of the two inputs."))


def _filters(ctx: _Ctx) -> Section | None:
    from .. import plots
    from ..analysis.latent import decoder_filters, encoder_filters

    if ctx.image_shape is None:
        return None
    panels = []
    for title, fn in (("encoder: rows of W₁", encoder_filters),
                      ("decoder: columns of the last layer", decoder_filters)):
        try:
            panels.append((title, fn(ctx.model)))
        except ValueError:
            continue
    if not panels:
        return None
    fig = plots.filter_grids(panels, ctx.image_shape)
    return Section("filters", "Filters", figure(
        fig, "The input pattern each first-layer unit responds to (encoder) and the pattern "
        "each unit before the output adds to the reconstruction (decoder), at most 64 each; "
        "every filter on its own scale (grey = 0, white = positive, black = negative)."))


def _activity(ctx: _Ctx) -> Section | None:
    from .. import plots
    from ..analysis.latent import activation_summary

    if ctx.X_eval is None:
        return None
    a = activation_summary(ctx.model, ctx.X_eval[_subsample(len(ctx.X_eval), 10000)])
    k = ctx.model.n_components
    if a.stats is not None:
        vals = a.stats.unit_frequency.numpy()
        label = f"fraction of samples with hⱼ > {a.threshold:g}"
        text = (f"<p>{a.stats.dead_units} of {k} code units are dead (never above "
                f"t = {a.threshold:g} on the {ctx.split} split); on average "
                f"{100 * a.stats.fraction_active:.1f}% of the units are active per sample, "
                f"mean activation {a.stats.mean_activation:.3g}.</p>")
    else:
        vals = a.unit_std
        label = "standard deviation of hⱼ over samples"
        flat = int((a.unit_std < 1e-6 * max(float(a.unit_std.max()), 1e-30)).sum())
        text = (f"<p>The code activation is {esc(getattr(ctx.model, 'code_activation', 'linear'))}"
                f", so there is no rest state and no notion of a dead unit; units with "
                f"(near) zero spread carry no information: {flat} of {k}.</p>")
    fig = plots.activation_plot(a.counts, a.edges, vals, unit_label=label,
                                threshold=a.threshold)
    return Section("activity", "Code activations", text + figure(
        fig, f"Code values h = f(x) over the {ctx.split} split: all values pooled (left) and "
        "per unit (right)."))


def _jacobian(ctx: _Ctx) -> list[Section]:
    from .. import plots
    from ..analysis.manifold import jacobian_spectrum, tangent_directions

    if ctx.X_eval is None:
        return []
    idx = _subsample(len(ctx.X_eval), 200)
    S = jacobian_spectrum(ctx.model, ctx.X_eval[idx]).double().numpy()
    fro = float((S ** 2).sum(1).mean())
    rank = float((S > 0.1 * S[:, :1]).sum(1).mean())
    out = [Section("jacobian", "Encoder Jacobian spectrum", (
        f"<p>Singular values of the encoder Jacobian ∂f/∂x at {len(idx)} {ctx.split} samples. "
        f"Mean ‖J‖<sub>F</sub>² = Σᵢ σᵢ² = {fro:.4g} (the contractive penalty); on average "
        f"{rank:.1f} singular values exceed 10% of the largest, a rough count of the input "
        "directions the code is sensitive to (the local manifold dimension).</p>")
        + figure(plots.singular_value_plot(S),
                 "A contractive encoder has a few large singular values and many small ones."))]
    if ctx.image_shape is not None:
        r = min(5, S.shape[1])
        sel = idx[:4]
        V = tangent_directions(ctx.model, ctx.X_eval[sel], r).double().numpy()
        fig = plots.tangent_plot(ctx.X_eval[sel], V, S[:len(sel)], ctx.image_shape,
                                 vmin=ctx.vmin, vmax=ctx.vmax)
        out.append(Section("tangents", "Tangent directions", figure(
            fig, f"For {len(sel)} samples: the input and the {r} leading right-singular "
            "vectors of ∂f/∂x (the input directions the code changes most along, an estimate "
            "of the data manifold's tangent plane), each on its own signed grey scale.")))
    return out


def _config(ctx: _Ctx) -> Section:
    info = ctx.run["info"]
    rows = [(f"{sec}.{key}", v) for sec, vals in info["config"].items()
            for key, v in vals.items()]
    env = [("aekit", info.get("aekit_version")), ("torch", info.get("torch")),
           ("python", info.get("python")), ("run directory", str(Path(ctx.run["dir"]).resolve()))]
    return Section("config", "Configuration", '<div class="cols"><div>' + table(rows)
                   + "</div><div><h3>Environment (training)</h3>" + table(env) + "</div></div>")


# ---- the report ----------------------------------------------------------------------------

def _variational(ctx: _Ctx) -> Section | None:
    """Prior samples, traversals of the active units, interpolation and the importance-sampled
    log-likelihood of a VAE run (:func:`aekit.report.vae.vae_section`); None for other models."""
    if not getattr(ctx.model, "variational", False):
        return None
    from .vae import vae_section

    X = ctx.X_eval
    shape = ctx.image_shape[-2:] if ctx.image_shape is not None else None
    return vae_section(ctx.model, X, shape)


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 tsne: bool = False) -> Path:
    """Write a self-contained HTML report of a run directory and return its path.

    The page holds the run's configuration, data and metrics; the training curves; the
    comparison with PCA of the same code size (rate–distortion curve, per-sample error
    distributions); the worst reconstructions; 2-D maps of the code space; code-unit
    activity; the encoder Jacobian's singular values; and, for image data, reconstruction
    grids, latent traversals, interpolations, filters and tangent directions. Pictures are
    base64 PNGs inside the file; there is no script and no external resource.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``aekit train`` (:func:`aekit.runs.train_run`).
    out : path, optional
        Output file; ``run_dir/report.html`` by default.
    tsne : bool
        Also draw a t-SNE map of the codes (slower: seconds to minutes).

    Returns
    -------
    Path of the written file.

    Raises
    ------
    FileNotFoundError, ValueError
        The run directory is missing, incomplete (the message names the missing files) or
        from an incompatible aekit version. Nothing is written on any error: the page is built
        in memory and written atomically.
    """
    from ..analysis.rate_distortion import pca_error_curve
    from ..analysis.reconstruction import reconstruct, sample_errors
    from ..runs import read_run
    from .images import run_image_outputs_section

    run = read_run(run_dir)
    ctx = _Ctx(run=run, model=run["model"])
    _load_data(ctx)
    if ctx.X_eval is not None:
        try:
            ctx.e_ae = sample_errors(ctx.X_eval, reconstruct(ctx.model, ctx.X_eval))
            ctx.e_pca = sample_errors(ctx.X_eval, ctx.R_pca)
            ctx.pca_curve = pca_error_curve(ctx.X_train, ctx.X_eval)
        except _SECTION_ERRORS as e:  # e.g. too few samples for the PCA curve
            ctx.e_ae = ctx.e_pca = ctx.pca_curve = None
            ctx.X_eval = None
            ctx.note = (ctx.note + " " if ctx.note else "") + (
                f"The data-based sections are skipped: {e}")
    builders = [("overview", lambda: _overview(ctx)), ("metrics", lambda: _metrics(ctx)),
                ("training curves", lambda: _curves(ctx)), ("PCA", lambda: _pca(ctx)),
                ("reconstructions", lambda: _reconstructions(ctx)),
                ("worst reconstructions", lambda: _worst(ctx)),
                ("code maps", lambda: _codes(ctx, tsne)), ("traversal", lambda: _traversal(ctx)),
                ("interpolation", lambda: _interpolation(ctx)),
                ("filters", lambda: _filters(ctx)), ("unit activity", lambda: _activity(ctx)),
                ("Jacobian spectrum", lambda: _jacobian(ctx)),
                ("variational model", lambda: _variational(ctx)),
                ("image outputs", lambda: run_image_outputs_section(run["dir"])),
                ("configuration", lambda: _config(ctx))]
    sections: list[Section] = []
    for name, b in builders:
        # A section that cannot be drawn (tiny data: "method='pca' needs at least 3 points")
        # becomes a note; the report, like the run, is still written.
        try:
            s = b()
        except _SECTION_ERRORS as e:
            s = Section(f"skipped-{len(sections)}", f"{name[0].upper()}{name[1:]} (skipped)",
                        f'<p class="note">This section was skipped: {esc(str(e))}</p>')
        sections += s if isinstance(s, list) else ([s] if s is not None else [])
    info = run["info"]
    arch = info["model"]
    sizes = arch["config"].get("sizes")
    shape = "–".join(map(str, sizes)) if sizes else f"{ctx.model.n_features}–" \
        f"{ctx.model.n_components}"
    res = run["metrics"].get("test") or run["metrics"].get("val") or {}
    headline = (f" Mean test error {fmt(res['ae_error'])} vs {fmt(res['pca_error'])} for PCA "
                f"with the same code size (ratio {fmt(res['ae_over_pca'])})."
                if res else "")
    intro = (f"<p>A <b>{esc(arch['name'])}</b> autoencoder {esc(shape)} "
             f"({arch['n_parameters']:,} parameters, code size k = {ctx.model.n_components}) "
             f"trained with the <b>{esc(info['objective']['loss'])}</b> loss on "
             f"<b>{esc(run['config'].data.dataset)}</b>.{headline}</p>"
             f'<p class="muted">Written by aekit {esc(_version())} on '
             f"{datetime.date.today().isoformat()}; errors are sums over features of squared "
             "differences, averaged over samples.</p>")
    title = f"aekit run {Path(run['dir']).resolve().name}"
    doc = page(title, intro, sections)
    path = Path(out) if out is not None else Path(run["dir"]) / "report.html"
    atomic_write_text(path, doc)
    return path


def _version() -> str:
    from ..version import __version__

    return __version__
