"""Proximal operators and projections used by the sparse-coding solvers.

The proximal operator of a function ``h`` with step ``t`` is

    prox_{t h}(v) = argmin_z  ½‖z − v‖² + t h(z),

and the projection onto a set ``C`` is the prox of its indicator. Every function here is
batched (it acts elementwise or per row / column of any leading shape), works on float32 and
float64 tensors and returns the input dtype; none of them modifies its input.

References
----------
Parikh & Boyd, "Proximal Algorithms", Foundations and Trends in Optimization 1(3), 2014,
§6.5 (ℓ1 and group norms) and §6.2 (projections).
"""

from __future__ import annotations

import torch

from ..validation import check_float

__all__ = [
    "group_soft_threshold",
    "hard_threshold",
    "project_nonneg",
    "project_unit_norm",
    "soft_threshold",
]


def _check_thresh(thresh) -> None:
    """A number goes through :func:`~aekit.validation.check_float`; a tensor must be >= 0."""
    if not isinstance(thresh, torch.Tensor):
        check_float("thresh", thresh, 0)
    elif thresh.numel() and bool((thresh < 0).any()):
        raise ValueError(f"thresh must be >= 0, got a tensor with min {thresh.min().item()}")


def soft_threshold(x: torch.Tensor, thresh: float | torch.Tensor, *,
                   positive: bool = False) -> torch.Tensor:
    """Soft thresholding, the prox of ``thresh·‖z‖₁`` (optionally on ``z ≥ 0``).

    ``S_t(v) = sign(v) · max(|v| − t, 0)``; with ``positive=True`` it is
    ``max(v − t, 0)``, the prox of ``t‖z‖₁ + ι_{z ≥ 0}(z)``.

    Parameters
    ----------
    x : Tensor, any shape
    thresh : float or Tensor broadcastable to ``x``, >= 0
    positive : bool, default=False

    Returns
    -------
    Tensor, same shape and dtype as ``x``.

    References
    ----------
    Donoho, "De-noising by soft-thresholding", IEEE Trans. Inf. Theory 41(3), 1995;
    Parikh & Boyd 2014, §6.5.2.

    Examples
    --------
    >>> soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    tensor([-1.,  0.,  2.])
    """
    _check_thresh(thresh)
    if positive:
        return torch.clamp_min(x - thresh, 0.0)
    # v − clip(v, −t, t) is S_t(v) in two passes over memory instead of five.
    if isinstance(thresh, torch.Tensor):
        return x - torch.minimum(torch.maximum(x, -thresh), thresh)
    return x - x.clamp(-thresh, thresh)


def hard_threshold(x: torch.Tensor, thresh: float | torch.Tensor) -> torch.Tensor:
    """Hard thresholding: keep entries with ``|v| > thresh``, zero the others.

    ``H_t(v) = v · 1[|v| > t]`` is the prox of ``(t²/2)·‖z‖₀`` (entrywise,
    ``argmin_z ½(z − v)² + (t²/2)·1[z ≠ 0]``; at the tie ``|v| = t`` both 0 and ``v``
    are minimisers and 0 is returned).

    Parameters
    ----------
    x : Tensor, any shape
    thresh : float or Tensor broadcastable to ``x``, >= 0

    Returns
    -------
    Tensor, same shape and dtype as ``x``.

    References
    ----------
    Blumensath & Davies, "Iterative thresholding for sparse approximations", J. Fourier Anal.
    Appl. 14, 2008, §2.
    """
    _check_thresh(thresh)
    return torch.where(x.abs() > thresh, x, torch.zeros_like(x))


def project_nonneg(x: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the non-negative orthant, ``max(v, 0)``, any shape."""
    return torch.clamp_min(x, 0.0)


def project_unit_norm(D: torch.Tensor, *, ball: bool = False, eps: float = 1e-12) -> torch.Tensor:
    """Project every column (atom) of a dictionary onto the unit sphere or unit ball.

    ``d_j ← d_j / ‖d_j‖₂`` (sphere) or ``d_j ← d_j / max(‖d_j‖₂, 1)`` (ball). A column with
    norm below ``eps`` is left unchanged (it has no direction; the caller decides whether to
    re-initialise it).

    Parameters
    ----------
    D : Tensor, shape (d, k) or (..., d, k)
        Dictionary with atoms as columns, so ``x ≈ D z``.
    ball : bool, default=False
        Project onto ``{‖d_j‖ ≤ 1}`` (convex, Mairal et al. 2010) instead of the sphere.
    eps : float, default=1e-12

    Returns
    -------
    Tensor, same shape and dtype as ``D``.

    References
    ----------
    Mairal, Bach, Ponce & Sapiro, "Online learning for matrix factorization and sparse
    coding", JMLR 11, 2010, eq. (5) and Algorithm 2.
    """
    if D.ndim < 2:
        raise ValueError(f"D must have shape (d, k), got {tuple(D.shape)}")
    norms = torch.linalg.vector_norm(D, dim=-2, keepdim=True)  # (..., 1, k)
    scale = torch.clamp_min(norms, 1.0) if ball else norms
    scale = torch.where(norms < eps, torch.ones_like(scale), scale)
    return D / scale


def group_soft_threshold(x: torch.Tensor, thresh: float | torch.Tensor,
                         groups: torch.Tensor | None = None) -> torch.Tensor:
    """Group (block) soft thresholding, the prox of ``thresh·Σ_g ‖z_g‖₂``.

    ``z_g = v_g · max(1 − t / ‖v_g‖₂, 0)`` for every group ``g`` of the last axis.

    Parameters
    ----------
    x : Tensor, shape (..., k)
    thresh : float or Tensor broadcastable to (..., n_groups), >= 0
    groups : LongTensor, shape (k,), optional
        Group index (0..n_groups−1) of every entry of the last axis; groups need not be
        contiguous. ``None`` makes the whole last axis one group.

    Returns
    -------
    Tensor, same shape and dtype as ``x``.

    References
    ----------
    Yuan & Lin, "Model selection and estimation in regression with grouped variables",
    JRSS-B 68(1), 2006; Parikh & Boyd 2014, §6.5.4.
    """
    _check_thresh(thresh)
    if groups is None:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        scale = torch.clamp_min(1.0 - thresh / torch.clamp_min(norm, torch.finfo(x.dtype).tiny),
                                0.0)
        return x * scale
    groups = torch.as_tensor(groups, device=x.device)
    if groups.ndim != 1 or groups.shape[0] != x.shape[-1]:
        raise ValueError(f"groups must have shape ({x.shape[-1]},), got {tuple(groups.shape)}")
    if groups.dtype.is_floating_point or (groups.numel() and int(groups.min()) < 0):
        raise ValueError("groups must hold non-negative integer group indices")
    groups = groups.long()
    n_groups = int(groups.max()) + 1 if groups.numel() else 0
    sq = torch.zeros(*x.shape[:-1], n_groups, dtype=x.dtype, device=x.device)
    sq.index_add_(-1, groups, x * x)  # (..., n_groups): squared group norms
    norm = sq.sqrt()
    scale = torch.clamp_min(1.0 - thresh / torch.clamp_min(norm, torch.finfo(x.dtype).tiny), 0.0)
    return x * scale.index_select(-1, groups)
