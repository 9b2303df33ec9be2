"""Anomaly scores from an autoencoder: reconstruction errors (MSE, BCE, SSIM), distances in
code space (kNN), their rank-normalised combination, and per-feature / per-pixel error maps.

All functions take and return NumPy/Torch arrays of samples first: rows ``X`` (n, d),
reconstructions ``X̂`` (n, d), codes ``Z`` (n, k), images (n, c, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["RECON_SCORES", "RankNormalizer", "check_energy_exponent", "error_maps",
           "gaussian_kernel", "knn_distance", "reconstruction_error", "smooth_maps", "ssim_map",
           "top_features"]

#: Reconstruction scores by name.
RECON_SCORES = ("mse", "bce", "ssim")


def _t(a: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    return t if t.is_floating_point() else t.double()


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """1-D normalised Gaussian ``g_i ∝ exp(−i² / 2σ²)``, ``|i| ≤ ⌈truncate σ⌉`` (float64)."""
    r = max(1, int(truncate * float(sigma) + 0.5))
    i = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (i / float(sigma)) ** 2)
    return g / g.sum()


def _blur(img: torch.Tensor, sigma: float, mode: str = "reflect",
          truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur of (n, c, H, W), same size (reflect padding; replicate for
    images smaller than the kernel's radius)."""
    g = gaussian_kernel(sigma, truncate).to(img.dtype)
    r = len(g) // 2
    n, c, H, W = img.shape
    x = img.reshape(n * c, 1, H, W)
    if mode == "reflect" and H > r and W > r:
        x = F.pad(x, (r, r, r, r), mode="reflect")
        x = F.conv2d(x, g.view(1, 1, -1, 1))
        x = F.conv2d(x, g.view(1, 1, 1, -1))
    else:  # replicate padding works for any size
        x = F.pad(x, (r, r, r, r), mode="replicate")
        x = F.conv2d(x, g.view(1, 1, -1, 1))
        x = F.conv2d(x, g.view(1, 1, 1, -1))
    return x.reshape(n, c, H, W)


def ssim_map(x: Any, y: Any, *, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Local structural similarity of two image batches, per pixel.

    ``SSIM(p) = (2 μ_x μ_y + C₁)(2 σ_xy + C₂) / ((μ_x² + μ_y² + C₁)(σ_x² + σ_y² + C₂))``
    with Gaussian-weighted local statistics (σ = 1.5), ``C₁ = (0.01 L)²``, ``C₂ = (0.03 L)²``.

    Parameters
    ----------
    x, y : array-like, shape (n, c, H, W)
    sigma : float
        Gaussian window width.
    data_range : float
        L, the dynamic range of the pixel values.

    Returns
    -------
    Tensor, shape (n, c, H, W), values in [−1, 1] (1 = identical).

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from
    error visibility to structural similarity", IEEE TIP 13 (2004), §III-B, eq. 13.
    """
    x, y = _t(x), _t(y).to(_t(x).dtype)
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f"ssim needs two image batches of the same shape (n, c, H, W), got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    def blur(t):  # Wang et al.'s 11 x 11 window for sigma 1.5 (radius 3.5 sigma)
        return _blur(t, sigma, truncate=3.5)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def _images(a: torch.Tensor, image_shape: Sequence[int] | None, what: str) -> torch.Tensor:
    if a.ndim == 4:
        return a
    if image_shape is None:
        raise ValueError(f"{what} needs images: pass image_shape (c, H, W) or (H, W) for "
                         f"flattened rows of shape {tuple(a.shape)}")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or int(np.prod(shape)) != a[0].numel():
        raise ValueError(f"image_shape {tuple(image_shape)} does not match rows of "
                         f"{a[0].numel()} values")
    return a.reshape(len(a), *shape)  # (n, d) -> (n, c, H, W)


def reconstruction_error(X: Any, X_hat: Any, kind: str = "mse", *,
                         image_shape: Sequence[int] | None = None,
                         residual_sigma: float | None = None, eps: float = 1e-6,
                         energy_exponent: float = 0.0) -> np.ndarray:
    """Per-sample reconstruction error, float64 (n,).

    * ``"mse"``: ``‖x − x̂‖² / d``; for images with ``residual_sigma`` σ,
      ``‖G_σ ∗ (x − x̂)‖² / d``: the residual is low-passed per channel before it is squared,
      which cancels the ± pairs a slightly misplaced edge leaves and keeps errors that are
      coherent over a region (a missing or extra part).
    * ``"bce"``: ``−(1/d) Σ_j [x_j log x̂_j + (1 − x_j) log(1 − x̂_j)]`` with x̂ clipped to
      ``[eps, 1 − eps]``; needs ``x ∈ [0, 1]``.
    * ``"ssim"``: ``mean_p (1 − SSIM(p)) / 2`` over the pixels of the image (in [0, 1]);
      needs images (``image_shape`` for flattened rows).

    With ``energy_exponent`` α > 0 (``"mse"`` only) the error is divided by the sample's
    own energy to the power α, ``e_α(x) = e(x) / E(x)^α`` with ``E(x) = ‖G_σ ∗ x‖² / d``
    (``‖x‖² / d`` without ``residual_sigma``): α = 1 is the relative error, the share of the
    (low-passed) signal energy the model does not explain, invariant to the sample's scale;
    α = 0 the plain error. The plain error grows with the energy of the input, so samples
    with little ink (a thin "1" against a model of "8") score low whatever their shape;
    dividing by ``E^α`` removes that bias.

    Parameters
    ----------
    X, X_hat : array-like, shape (n, d) or (n, c, H, W)
    kind : {"mse", "bce", "ssim"}
    image_shape : (c, H, W) or (H, W), optional
        For flattened image rows.
    residual_sigma : float, optional
        σ of the residual's Gaussian low-pass (``"mse"``, images only).
    eps : float
        Clipping of x̂ for ``"bce"``.
    energy_exponent : float in [0, 1]
        α of the energy normalisation (``"mse"`` only).

    Returns
    -------
    ndarray (n,), float64

    References
    ----------
    SSIM score: P. Bergmann, S. Löwe, M. Fauser, D. Sattlegger, C. Steger, "Improving
    unsupervised defect segmentation by applying structural similarity to autoencoders",
    VISAPP 2019, §3.2. Relative residual energy (α = 1): L. L. Scharf, B. Friedlander,
    "Matched subspace detectors", IEEE Trans. Signal Process. 42(8) (1994), §III (the
    detector for an unknown noise level compares ``‖P⊥x‖²`` with ``‖x‖²``).
    """
    maps = error_maps(X, X_hat, kind, image_shape=image_shape, eps=eps, per_feature=True,
                      residual_sigma=residual_sigma, energy_exponent=energy_exponent)
    return maps.reshape(len(maps), -1).mean(1)


def error_maps(X: Any, X_hat: Any, kind: str = "mse", *,
               image_shape: Sequence[int] | None = None, sigma: float | None = None,
               residual_sigma: float | None = None, eps: float = 1e-6,
               per_feature: bool = False, energy_exponent: float = 0.0) -> np.ndarray:
    """Per-pixel (images) or per-feature (rows) anomaly maps, float64.

    ``mse``: ``(x − x̂)²``; ``bce``: the per-feature cross-entropy of
    :func:`reconstruction_error`; ``ssim``: ``(1 − SSIM(p)) / 2``. For images the map is
    averaged over channels and optionally smoothed with a Gaussian of width ``sigma``
    pixels (reflect padding); the per-sample score is the mean of the unsmoothed map.

    Parameters
    ----------
    X, X_hat : array-like, shape (n, d) or (n, c, H, W)
    image_shape : (c, H, W) or (H, W), optional
        Reshapes flattened rows into images; without it, rows stay rows.
    sigma : float, optional
        Gaussian smoothing (images only).
    residual_sigma : float, optional
        ρ: Gaussian low-pass of the signed residual before squaring (``mse``, images only).
    per_feature : bool
        Keep channels and skip the map smoothing ``sigma`` (the elementwise map).
    energy_exponent : float in [0, 1]
        α: every sample's ``mse`` map is divided by ``E(x)^α``, ``E(x) = ‖G_ρ ∗ x‖² / d``
        (see :func:`reconstruction_error`), so the map's mean stays the score.

    Returns
    -------
    ndarray: (n, H, W) for images, (n, d) for rows (or X's shape with ``per_feature``).
    """
    if kind not in RECON_SCORES:
        raise ValueError(f"score kind must be one of {RECON_SCORES}, got {kind!r}")
    x, xh = _t(X), _t(X_hat)
    xh = xh.to(x.dtype)
    if x.shape != xh.shape:
        raise ValueError(f"X and X_hat must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(xh.shape)}")
    if sigma is not None and not float(sigma) > 0:
        raise ValueError(f"sigma must be > 0 or None, got {sigma}")
    if residual_sigma is not None and not float(residual_sigma) > 0:
        raise ValueError(f"residual_sigma must be > 0 or None, got {residual_sigma}")
    images = x.ndim == 4 or image_shape is not None or kind == "ssim"
    if images:
        x = _images(x, image_shape, f"score {kind!r}")
        xh = _images(xh, image_shape, f"score {kind!r}")
    if residual_sigma is not None and (not images or kind != "mse"):
        raise ValueError("residual_sigma applies to the 'mse' score of images only (pass "
                         "image_shape for flattened rows)")
    alpha = check_energy_exponent(energy_exponent)
    if alpha and kind != "mse":
        raise ValueError(f"energy_exponent applies to the 'mse' score only, got kind {kind!r}")
    if kind == "mse":
        r = x - xh
        if residual_sigma is not None:
            r = _blur(r.double(), float(residual_sigma))
        m = r ** 2
        if alpha:
            xs = _blur(x.double(), float(residual_sigma)) if residual_sigma is not None \
                else x.double()
            energy = (xs ** 2).reshape(len(xs), -1).mean(1).clamp_min(1e-12)
            m = m.double() / energy.pow(alpha).reshape(-1, *([1] * (m.ndim - 1)))
    elif kind == "bce":
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise ValueError("score 'bce' needs data in [0, 1]; got values in "
                             f"[{float(x.min()):.3g}, {float(x.max()):.3g}] (use 'mse')")
        p = xh.clamp(eps, 1 - eps)
        m = -(x * torch.log(p) + (1 - x) * torch.log1p(-p))
    else:
        m = (1.0 - ssim_map(x, xh)) / 2.0
    if per_feature:
        return m.double().numpy()
    if images:
        m = m.mean(1, keepdim=True)  # (n, c, H, W) -> (n, 1, H, W)
        if sigma is not None:
            m = _blur(m.double(), float(sigma))
        return m[:, 0].double().numpy()
    return m.double().numpy()


def check_energy_exponent(energy_exponent: Any) -> float:
    """α of the energy normalisation (:func:`reconstruction_error`) as a float in [0, 1];
    ``ValueError`` naming ``energy_exponent`` otherwise."""
    a = energy_exponent
    if isinstance(a, bool) or not isinstance(a, (int, float, np.number)) \
            or not 0.0 <= float(a) <= 1.0:
        raise ValueError(f"energy_exponent must be a number in [0, 1], got {a!r}")
    return float(a)


def smooth_maps(maps: Any, sigma: float) -> np.ndarray:
    """Gaussian-smoothed (n, H, W) maps (reflect padding), float64."""
    m = _t(maps).double()
    if m.ndim != 3:
        raise ValueError(f"maps must have shape (n, H, W), got {tuple(m.shape)}")
    if not float(sigma) > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return _blur(m[:, None], float(sigma))[:, 0].numpy()


def top_features(X: Any, X_hat: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` features of each row with the largest squared reconstruction error.

    Returns ``(index, contribution)``, both (n, k), sorted by decreasing contribution
    ``(x_j − x̂_j)²`` (int64, float64).
    """
    m = error_maps(X, X_hat, "mse", per_feature=True)
    if m.ndim != 2:
        m = m.reshape(len(m), -1)
    k = int(k)
    if not 1 <= k <= m.shape[1]:
        raise ValueError(f"k must be in [1, {m.shape[1]}], got {k}")
    idx = np.argsort(-m, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(m, idx, axis=1)


def knn_distance(Z: Any, reference: Any, k: int = 5, *, exclude_self: bool = False,
                 chunk: int = 2048) -> np.ndarray:
    """Mean Euclidean distance from each row of ``Z`` to its ``k`` nearest ``reference``
    rows: ``s(z) = (1/k) Σ_{i ≤ k} ‖z − r_(i)(z)‖``, float64 (n,).

    Parameters
    ----------
    Z : array-like, shape (n, k_code)
    reference : array-like, shape (m, k_code)
        Codes of the normal training data.
    k : int
        Neighbours (1 ≤ k ≤ m, or m − 1 with ``exclude_self``).
    exclude_self : bool
        ``Z`` *is* ``reference`` (same rows, same order): each row's own zero distance is
        left out (leave-one-out scores for the training data).

    References
    ----------
    S. Ramaswamy, R. Rastogi, K. Shim, "Efficient algorithms for mining outliers from large
    data sets", SIGMOD 2000 (kNN distance); F. Angiulli, C. Pizzuti, "Fast outlier detection
    in high dimensional spaces", PKDD 2002 (mean over k); L. Bergman, N. Cohen, Y. Hoshen,
    "Deep nearest neighbor anomaly detection", arXiv:2002.10445 (kNN on learned features).
    """
    z, r = _t(Z).double(), _t(reference).double()
    if z.ndim != 2 or r.ndim != 2 or z.shape[1] != r.shape[1]:
        raise ValueError(f"Z and reference must be (n, k) and (m, k), got {tuple(z.shape)} "
                         f"and {tuple(r.shape)}")
    k = int(k)
    kk = k + int(exclude_self)
    if not 1 <= k or kk > len(r):
        raise ValueError(f"n_neighbors must be in [1, {len(r) - int(exclude_self)}] for "
                         f"{len(r)} reference rows, got {k}")
    if exclude_self and len(z) != len(r):
        raise ValueError("exclude_self needs Z to be the reference rows themselves")
    out = np.empty(len(z))
    rr = (r * r).sum(1)
    for i in range(0, len(z), chunk):
        zc = z[i:i + chunk]
        d2 = ((zc * zc).sum(1, keepdim=True) - 2 * zc @ r.T + rr).clamp_min_(0.0)
        if exclude_self:  # the row itself: distance 0 by definition (not by rounding)
            j = torch.arange(i, i + len(zc))
            d2[torch.arange(len(zc)), j] = -1.0
        v = d2.topk(kk, dim=1, largest=False).values
        if exclude_self:
            v = v[:, 1:]
        out[i:i + len(zc)] = v.clamp_min(0.0).sqrt().mean(1).numpy()
    return out


class RankNormalizer:
    """Maps a score to its (interpolated) empirical CDF on reference scores, so scores of
    different units can be averaged.

    With the distinct sorted reference values ``r_1 < … < r_q`` at mid-rank positions
    ``p_i = (#{r < r_i} + ½ #{r = r_i}) / m``, ``u(s)`` interpolates linearly between the
    ``(r_i, p_i)``; beyond the extremes it continues with exponential tails,
    ``u(s) = 1 − (1/(2m)) exp(−(s − r_q) / τ)`` above and ``(1/(2m)) exp(−(r_1 − s) / τ)``
    below, τ the reference's interquartile range. So u is continuous, strictly increasing
    (no ties between different scores, which matters for thresholds and AUROC) and in (0, 1).

    Parameters
    ----------
    reference : array-like, shape (m,)
        Scores of held-out normal data.

    References
    ----------
    Rank-normalised combination of detector outputs: A. Lazarevic, V. Kumar, "Feature
    bagging for outlier detection", KDD 2005, §3; C. C. Aggarwal, S. Sathe, *Outlier
    Ensembles* (2017), §5.2.
    """

    def __init__(self, reference: Any):
        r = np.sort(np.asarray(reference, dtype=np.float64).ravel())
        if len(r) == 0 or not np.isfinite(r).all():
            raise ValueError("reference scores must be non-empty and finite")
        m = len(r)
        self.reference = r
        self.values, first, counts = np.unique(r, return_index=True, return_counts=True)
        self.positions = (first + 0.5 * counts) / m
        self.m = m
        q1, q3 = np.percentile(r, [25, 75])
        self.tau = float(q3 - q1) or float(r[-1] - r[0]) or 1.0

    def __call__(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        v, p = self.values, self.positions
        u = np.interp(s, v, p)
        above, below = s > v[-1], s < v[0]
        u[above] = 1.0 - (1.0 - p[-1]) * np.exp(-(s[above] - v[-1]) / self.tau)
        u[below] = p[0] * np.exp(-(v[0] - s[below]) / self.tau)
        return u
