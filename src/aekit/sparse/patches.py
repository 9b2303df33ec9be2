"""Natural-image patches for sparse coding: extraction, centring, contrast normalisation, ZCA.

Images are grayscale float tensors in [0, 1] of shape (H, W); patches are rows of a matrix
``X`` of shape (n, p·p) (row-major within the patch), ready for ``x ≈ D z``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "PHOTOS",
    "ZCA",
    "apply_zca",
    "center_patches",
    "extract_patches",
    "fit_zca",
    "load_photos",
    "natural_image_patches",
    "normalize_contrast",
]

#: Photos shipped with scikit-image and scikit-learn (no download needed).
PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "china", "flower")


def _gray(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.709 luma weights, as skimage.color.rgb2gray.
    return rgb[..., :3] @ np.array([0.2125, 0.7154, 0.0721])


def load_photos(names: tuple[str, ...] | list[str] = PHOTOS,
                dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Grayscale photos in [0, 1] as (H, W) tensors.

    ``camera``, ``astronaut``, ``coffee``, ``chelsea`` come from ``skimage.data``; ``china``
    and ``flower`` from ``sklearn.datasets.load_sample_images``. Colour images are converted
    with the BT.709 luma weights (as ``skimage.color.rgb2gray``).
    """
    out = []
    for name in names:
        if name in ("china", "flower"):
            from sklearn.datasets import load_sample_images
            imgs = load_sample_images()
            files = [f.rsplit("/", 1)[-1] for f in imgs.filenames]
            img = imgs.images[files.index(f"{name}.jpg")]
        elif name in ("camera", "astronaut", "coffee", "chelsea"):
            import skimage.data
            img = getattr(skimage.data, name)()
        else:
            raise ValueError(f"names must be among {PHOTOS}, got {name!r}")
        img = np.asarray(img, dtype=np.float64) / 255.0
        if img.ndim == 3:
            img = _gray(img)
        out.append(torch.from_numpy(np.ascontiguousarray(img)).to(dtype))
    return out


def extract_patches(images: list[torch.Tensor] | torch.Tensor, patch_size: int, n_patches: int,
                    *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random square patches, spread over the images in proportion to their valid positions.

    Parameters
    ----------
    images : list of Tensor (H, W), or one Tensor (H, W)
    patch_size : int
        Side p (8..16 is usual for sparse coding).
    n_patches : int
    generator : torch.Generator, optional
        Seeds the positions; same seed, same patches.

    Returns
    -------
    Tensor (n_patches, p·p), dtype of the images.
    """
    if isinstance(images, torch.Tensor):
        images = [images]
    if not isinstance(patch_size, int | np.integer) or patch_size < 1:
        raise ValueError(f"patch_size must be an int >= 1, got {patch_size!r}")
    if not isinstance(n_patches, int | np.integer) or n_patches < 0:
        raise ValueError(f"n_patches must be an int >= 0, got {n_patches!r}")
    p = int(patch_size)
    counts = []
    for img in images:
        if img.ndim != 2:
            raise ValueError(f"images must be 2-D grayscale (H, W), got {tuple(img.shape)}")
        counts.append(max(img.shape[0] - p + 1, 0) * max(img.shape[1] - p + 1, 0))
    total = sum(counts)
    if total == 0:
        raise ValueError(f"patch_size={p} is larger than every image")
    weights = torch.tensor(counts, dtype=torch.float64)
    which = torch.multinomial(weights, n_patches, replacement=True, generator=generator) \
        if n_patches else torch.zeros(0, dtype=torch.long)
    out = torch.empty(n_patches, p * p, dtype=images[0].dtype)
    for i, img in enumerate(images):
        sel = torch.nonzero(which == i).flatten()
        if sel.numel() == 0:
            continue
        H, W = img.shape
        r = torch.randint(H - p + 1, (sel.numel(),), generator=generator)
        c = torch.randint(W - p + 1, (sel.numel(),), generator=generator)
        # (H-p+1, W-p+1, p, p) view of all patches, then gather the chosen ones.
        windows = img.unfold(0, p, 1).unfold(1, p, 1)
        out[sel] = windows[r, c].reshape(-1, p * p).to(out.dtype)
    return out


def center_patches(X: torch.Tensor) -> torch.Tensor:
    """Remove each patch's mean (its DC component): ``x ← x − mean(x)``, (n, d) -> (n, d)."""
    return X - X.mean(1, keepdim=True)


def normalize_contrast(X: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Divide each (centred) patch by ``sqrt(var(x) + eps)``: local contrast normalisation.

    ``eps`` keeps flat patches from being blown up to noise.

    References
    ----------
    Coates, Lee & Ng, "An analysis of single-layer networks in unsupervised feature
    learning", AISTATS 2011, §3 (normalisation with ε = 10 for 0..255 pixels).
    """
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    return X / torch.sqrt(X.var(1, keepdim=True, unbiased=False) + eps)


class ZCA(NamedTuple):
    """Fitted ZCA whitening: ``x_w = (x − mean) W``, ``W = U diag(1/sqrt(s + eps)) Uᵀ``."""

    mean: torch.Tensor  # (d,)
    W: torch.Tensor  # (d, d), symmetric
    W_inv: torch.Tensor  # (d, d), un-whitening


def fit_zca(X: torch.Tensor, eps: float = 1e-2) -> ZCA:
    """Fit ZCA whitening on X (n, d).

    With the covariance ``Σ = U diag(s) Uᵀ``, ``W = U diag((s + ε)^{-1/2}) Uᵀ`` — the
    whitening transform closest to the identity, so whitened patches still look like
    patches. ``eps`` regularises the small eigenvalues (noise).

    References
    ----------
    Bell & Sejnowski, "The 'independent components' of natural scenes are edge filters",
    Vision Research 37(23), 1997; Krizhevsky, "Learning multiple layers of features from
    tiny images", 2009, App. A.
    """
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must have shape (n, d) with n >= 2, got {tuple(X.shape)}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    X64 = X.double()
    mean = X64.mean(0)
    Xc = X64 - mean
    cov = Xc.T @ Xc / X.shape[0]
    s, U = torch.linalg.eigh(cov)
    s = s.clamp_min(0.0)
    W = (U / torch.sqrt(s + eps)) @ U.T
    W_inv = (U * torch.sqrt(s + eps)) @ U.T
    return ZCA(mean.to(X.dtype), W.to(X.dtype), W_inv.to(X.dtype))


def apply_zca(X: torch.Tensor, zca: ZCA, *, inverse: bool = False) -> torch.Tensor:
    """Whiten X (n, d) with a fitted :class:`ZCA` (or undo it with ``inverse=True``)."""
    if inverse:
        return X @ zca.W_inv + zca.mean
    return (X - zca.mean) @ zca.W


def natural_image_patches(n_patches: int, patch_size: int = 8, *,
                          generator: torch.Generator | None = None,
                          names: tuple[str, ...] = PHOTOS, contrast_eps: float | None = 1e-2,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Centred (and contrast-normalised) patches from :data:`PHOTOS`: (n, p·p).

    The preprocessing used by the sparse-coding benchmark and tests: extract, remove the
    patch mean, divide by ``sqrt(var + contrast_eps)`` (skipped when ``None``).
    """
    X = extract_patches(load_photos(names, dtype=torch.float64), patch_size, n_patches,
                        generator=generator)
    X = center_patches(X)
    if contrast_eps is not None:
        X = normalize_contrast(X, contrast_eps)
    return X.to(dtype)
