"""The code space: 2-D maps of the codes, latent traversals, interpolation between two inputs,
encoder/decoder filters, and the distribution of code activations.

Every function returns arrays or numbers; drawing lives in :mod:`aekit.plots`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..models.base import Autoencoder
from .activity import ActivityStats, unit_activity
from .reconstruction import as_2d, first_parameter, forward_codes

__all__ = ["ActivationSummary", "CodeMap", "Interpolation", "Traversal", "activation_summary",
           "code_map", "decoder_filters", "default_threshold", "encode", "encoder_filters",
           "interpolate", "latent_traversal", "traversal_values"]

CODE_MAP_METHODS = ("auto", "codes", "pca", "tsne")


def encode(model: Autoencoder, X, *, batch_size: int = 4096) -> np.ndarray:
    """Codes ``h = f(x)`` of every row of X in eval mode: (n, d) -> (n, k), in X's dtype."""
    A = as_2d(X, "X", model.n_features)
    H = forward_codes(model, A, lambda m, x: m.encode(x), batch_size)
    return H.reshape(len(A), model.n_components)


def _decode(model: Autoencoder, H: np.ndarray) -> np.ndarray:
    p = first_parameter(model)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            R = model.decode(torch.from_numpy(np.ascontiguousarray(H)).to(p.device, p.dtype))
    finally:
        model.train(was)
    return R.cpu().numpy().astype(H.dtype, copy=False)


class CodeMap(NamedTuple):
    """A 2-D picture of a point cloud."""

    points: np.ndarray                    # (n, 2)
    method: str                           # "codes", "pca" or "tsne"
    axis_labels: tuple[str, str]
    explained_variance: np.ndarray | None  # (2,) fractions, for "pca"


def code_map(H, *, method: str = "auto", random_state: int = 0,
             perplexity: float = 30.0) -> CodeMap:
    """Map points (codes, or raw data) to 2-D for a scatter plot.

    ``"codes"`` plots the first two coordinates as they are (k <= 2; k = 1 is paired with a
    zero second axis); ``"pca"`` projects on the two leading principal axes,
    ``z = V_2 (h − μ)``; ``"tsne"`` runs scikit-learn's t-SNE (PCA initialisation);
    ``"auto"`` is ``"codes"`` for k <= 2 and ``"pca"`` otherwise.

    Parameters
    ----------
    H : array-like, shape (n, k)
    method : {"auto", "codes", "pca", "tsne"}
    random_state : int
        Seed of t-SNE (PCA is deterministic up to the sign of each axis, which is fixed so
        the largest-magnitude loading is positive).
    perplexity : float
        t-SNE perplexity; lowered to (n − 1) / 3 for small n.

    Returns
    -------
    CodeMap

    References
    ----------
    van der Maaten & Hinton, "Visualizing data using t-SNE", JMLR 2008.
    """
    if method not in CODE_MAP_METHODS:
        raise ValueError(f"method must be one of {CODE_MAP_METHODS}, got {method!r}")
    A = as_2d(H, "H").astype(np.float64)
    n, k = A.shape
    if method == "auto":
        method = "codes" if k <= 2 else "pca"
    if method == "codes":
        if k > 2:
            raise ValueError(f"method='codes' needs k <= 2 code units, got k={k}")
        P = np.column_stack([A[:, 0], A[:, 1] if k == 2 else np.zeros(n)])
        return CodeMap(P, "codes", ("code unit 1", "code unit 2" if k == 2 else "(none)"),
                       None)
    if n < 3:
        raise ValueError(f"method={method!r} needs at least 3 points, got {n}")
    if method == "pca":
        C = A - A.mean(0)
        _, s, Vt = np.linalg.svd(C, full_matrices=False)
        V = Vt[:2]
        V = V * np.sign(V[np.arange(len(V)), np.abs(V).argmax(1)])[:, None]
        P = C @ V.T
        if P.shape[1] < 2:
            P = np.column_stack([P[:, 0], np.zeros(n)])
        tot = float((s ** 2).sum())
        ev = (s[:2] ** 2) / tot if tot > 0 else np.zeros(min(2, len(s)))
        ev = np.pad(ev, (0, 2 - len(ev)))
        return CodeMap(P, "pca", (f"PC 1 ({100 * ev[0]:.0f}% of variance)",
                                  f"PC 2 ({100 * ev[1]:.0f}% of variance)"), ev)
    from sklearn.manifold import TSNE

    perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    P = TSNE(n_components=2, perplexity=perp, init="pca", random_state=random_state
             ).fit_transform(A)
    return CodeMap(P, "tsne", ("t-SNE 1", "t-SNE 2"), None)


def traversal_values(H, n_steps: int = 7, *, quantiles: tuple[float, float] = (0.05, 0.95)
                     ) -> np.ndarray:
    """Evenly spaced values per code unit between two quantiles of its distribution in H.

    ``v_j = linspace(q_lo(h_j), q_hi(h_j), n_steps)``, so a traversal stays in the range the
    encoder actually produces.

    Parameters
    ----------
    H : array-like, shape (n, k)
        Codes of a reference set.
    n_steps : int
        >= 2.
    quantiles : (float, float)
        0 <= lo < hi <= 1.

    Returns
    -------
    ndarray, shape (k, n_steps)
    """
    A = as_2d(H, "H")
    if int(n_steps) < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    lo, hi = (float(q) for q in quantiles)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= lo < hi <= 1, got {quantiles}")
    q = np.quantile(A, [lo, hi], axis=0)  # (2, k)
    return np.linspace(q[0], q[1], int(n_steps), axis=1).astype(A.dtype)


class Traversal(NamedTuple):
    """Codes and decodings along a sweep of one code unit."""

    values: np.ndarray           # (m,) values given to the swept unit
    codes: np.ndarray            # (m, k) h(v): f(x) with unit j set to v
    reconstructions: np.ndarray  # (m, d) g(h(v))


def latent_traversal(model: Autoencoder, x, unit: int, values) -> Traversal:
    """Sweep one code unit while holding the others at a sample's code.

    ``h(v) = f(x) + (v − f_j(x)) e_j`` and ``x̂(v) = g(h(v))`` for each v in ``values``.

    Parameters
    ----------
    model : Autoencoder
    x : array-like, shape (d,) or (1, d)
    unit : int
        j, 0 <= j < k.
    values : array-like, shape (m,)

    Returns
    -------
    Traversal

    References
    ----------
    Higgins et al., "β-VAE", ICLR 2017, figure 1 (latent traversals).
    """
    x2 = as_2d(np.asarray(x).reshape(1, -1), "x", model.n_features)
    if not 0 <= int(unit) < model.n_components:
        raise ValueError(f"unit must be in [0, {model.n_components}), got {unit}")
    v = np.asarray(values, dtype=x2.dtype).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("values must be a non-empty array of finite numbers")
    h = encode(model, x2)[0]
    Hs = np.repeat(h[None], len(v), axis=0)
    Hs[:, int(unit)] = v
    return Traversal(v, Hs, _decode(model, Hs))


class Interpolation(NamedTuple):
    """Decodings along the straight line between two codes."""

    t: np.ndarray                # (m,) from 0 to 1
    codes: np.ndarray            # (m, k) (1 − t) f(x0) + t f(x1)
    reconstructions: np.ndarray  # (m, d)


def interpolate(model: Autoencoder, x0, x1, n_steps: int = 8) -> Interpolation:
    """Linear interpolation in code space between two inputs.

    ``h(t) = (1 − t) f(x0) + t f(x1)``, ``x̂(t) = g(h(t))``, t = 0, 1/(m−1), ..., 1; the
    endpoints are the reconstructions of x0 and x1.

    Parameters
    ----------
    model : Autoencoder
    x0, x1 : array-like, shape (d,) or (1, d)
    n_steps : int
        m >= 2.

    Returns
    -------
    Interpolation

    References
    ----------
    Berthelot et al., "Understanding and improving interpolation in autoencoders via an
    adversarial regularizer", ICLR 2019, section 2.
    """
    if int(n_steps) < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    a = as_2d(np.asarray(x0).reshape(1, -1), "x0", model.n_features)
    b = as_2d(np.asarray(x1).reshape(1, -1), "x1", model.n_features)
    H = encode(model, np.concatenate([a, b.astype(a.dtype)]))
    t = np.linspace(0.0, 1.0, int(n_steps)).astype(H.dtype)
    Hs = (1 - t)[:, None] * H[0] + t[:, None] * H[1]
    Hs[0], Hs[-1] = H[0], H[1]  # exact endpoints, whatever the rounding of (1 − t)
    return Interpolation(t, Hs, _decode(model, Hs))


def _weight(layer) -> np.ndarray:
    return layer.weight.detach().cpu().numpy()


def encoder_filters(model: Autoencoder) -> np.ndarray:
    """Rows of the first encoder weight: the input pattern each first-layer unit responds to.

    ``a_1 = W_1 x + b_1``; returns W_1 of shape (k_1, d) (k_1 = k for a one-layer encoder).

    References
    ----------
    Vincent et al., "Stacked denoising autoencoders", JMLR 2010, figures 6–8.
    """
    layers = model.encoder_layers()
    if not layers:
        raise ValueError(f"model {model.name!r} exposes no encoder layers")
    return _weight(layers[0])


def decoder_filters(model: Autoencoder) -> np.ndarray:
    """Columns of the last decoder weight, one per unit feeding the output, as rows.

    ``x̂ = σ(W' h' + c)``; returns ``W'ᵀ`` of shape (k', d): the pattern each unit adds to
    the output (for a one-layer decoder, the dictionary atom of each code unit).
    """
    last = None
    dec = getattr(model, "dec", None)
    if dec is not None and len(dec):
        last = dec[-1]
    elif getattr(model, "decoder", None) is not None and hasattr(model.decoder, "weight"):
        last = model.decoder
    if last is None:
        raise ValueError(f"model {model.name!r} has no linear decoder layer to draw")
    W = _weight(last)  # (d, k') like nn.Linear.weight (TiedLinear returns the transpose)
    if W.shape[0] != model.n_features:
        raise ValueError(f"the last decoder layer maps to {W.shape[0]} features, not "
                         f"{model.n_features}")
    return W.T.copy()


class ActivationSummary(NamedTuple):
    """Distribution of the code values over a data set."""

    counts: np.ndarray          # (bins,) histogram of all h_ij
    edges: np.ndarray           # (bins + 1,)
    unit_std: np.ndarray        # (k,) standard deviation of each unit over the samples
    threshold: float | None     # t used for "active"; None for a linear code
    stats: ActivityStats | None  # from aekit.analysis.activity.unit_activity, None if linear


def default_threshold(code_activation: str) -> float | None:
    """Activity threshold t for a code activation: 0 for ReLU-like and top-k codes, 0.05 for
    sigmoid codes, None (no notion of "dead") for linear, tanh and other signed codes."""
    a = str(code_activation).split(":")[0].lower()
    if a in ("relu", "topk"):
        return 0.0
    if a == "sigmoid":
        return 0.05
    return None


def activation_summary(model: Autoencoder, X, *, bins: int = 50,
                       threshold: float | str | None = "auto") -> ActivationSummary:
    """Histogram of the code activations ``h_ij`` and, for codes with a rest state, the
    activity of each unit (fraction of samples with ``h_ij > t``) and the dead units.

    Parameters
    ----------
    model : Autoencoder
    X : array-like, shape (n, d)
    bins : int
    threshold : float, None or "auto"
        t; "auto" uses :func:`default_threshold` of the model's code activation.

    Returns
    -------
    ActivationSummary

    References
    ----------
    Ng, "Sparse autoencoder", CS294A lecture notes 2011, section 3.
    """
    if int(bins) < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    A = as_2d(X, "X", model.n_features)
    if len(A) == 0:
        raise ValueError("X must hold at least one sample")
    if threshold == "auto":
        threshold = default_threshold(getattr(model, "code_activation", "linear"))
    H = encode(model, A).astype(np.float64)
    lo, hi = float(H.min()), float(H.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(H, bins=int(bins), range=(lo, hi))
    stats = unit_activity(model, A, threshold=float(threshold)) if threshold is not None \
        else None
    return ActivationSummary(counts, edges, H.std(0), threshold, stats)
