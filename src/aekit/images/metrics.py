"""Image quality: PSNR and SSIM (the latter as scikit-image's default, tested against it).

Images are arrays (C, H, W) or (H, W) in the same units as ``data_range`` (1 for [0, 1]).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from .io import as_chw

__all__ = ["psnr", "ssim"]


def psnr(reference, estimate, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(R² / MSE)``, ``MSE = mean((x − x̂)²)``.

    Returns ``inf`` for identical images. Shapes must match.

    References
    ----------
    Wang & Bovik, "Mean squared error: love it or leave it?", IEEE SPM 2009, eq. (2).
    """
    x = as_chw(reference, "reference").astype(np.float64)
    y = as_chw(estimate, "estimate").astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"reference {x.shape} and estimate {y.shape} differ in shape")
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def ssim(reference, estimate, *, data_range: float = 1.0, win_size: int = 7) -> float:
    """Mean structural similarity, averaged over channels.

    ``SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`` with local
    means and (sample) covariances over a ``win_size`` × ``win_size`` uniform window,
    ``C1 = (0.01 R)²``, ``C2 = (0.03 R)²``, averaged over the pixels whose window lies inside
    the image — the defaults of ``skimage.metrics.structural_similarity``.

    References
    ----------
    Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4), 2004, eq. (13).
    """
    x = as_chw(reference, "reference").astype(np.float64)
    y = as_chw(estimate, "estimate").astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"reference {x.shape} and estimate {y.shape} differ in shape")
    if win_size % 2 == 0 or min(x.shape[1:]) < win_size:
        raise ValueError(f"win_size must be odd and <= the image side, got {win_size} for "
                         f"{x.shape[1:]}")
    np_ = win_size ** 2
    cov_norm = np_ / (np_ - 1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    pad = (win_size - 1) // 2
    vals = []
    for a, b in zip(x, y):
        ux, uy = uniform_filter(a, win_size), uniform_filter(b, win_size)
        uxx, uyy = uniform_filter(a * a, win_size), uniform_filter(b * b, win_size)
        uxy = uniform_filter(a * b, win_size)
        vx, vy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
        vals.append(s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean())
    return float(np.mean(vals))
