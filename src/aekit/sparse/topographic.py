"""Topographic sparse coding: code units on a 2-D grid, pooled over overlapping neighbourhoods.

The k = gh·gw code units sit on a (gh, gw) grid with wrap-around (a torus). Every unit g
has a neighbourhood ``N(g)`` of m×m units centred on it, and the sparsity penalty acts on the
pooled energies rather than on the units:

    E(x, z; D) = ½‖x − D z‖² + λ Σ_g sqrt(Σ_{j∈N(g)} z_j² + ε),

with ``X`` (n, d), ``D`` (d, k) unit-norm atoms and ``Z`` (n, k). Units that are active
together share a pool and pay less than units far apart, so atoms that tend to fire together
(similar orientation, position and frequency) are drawn next to each other on the grid and
the filter map varies smoothly. ``ε > 0`` keeps the penalty differentiable at 0, so codes
are inferred by accelerated gradient descent on the whole smooth objective (no prox); the
codes are therefore small but not exactly zero.

References
----------
Kavukcuoglu, Ranzato, Fergus & LeCun, "Learning invariant features through topographic
filter maps", CVPR 2009, §2–3 (the energy, 3×3 overlapping pools, gradient inference);
Hyvärinen & Hoyer, "A two-layer sparse coding model learns simple and complex cell receptive
fields and topography from natural images", Vision Research 41(18), 2001.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from ..validation import check_float, check_int
from .common import SolveInfo, check_problem, progress_bar
from .dictionary import DictInfo, init_dictionary, update_dictionary

__all__ = [
    "TopographyScore",
    "topographic_encode",
    "topographic_learn",
    "topographic_objective",
    "topographic_penalty",
    "topographic_pooling",
    "topography_score",
]


def _check_grid(grid, k: int | None = None) -> tuple[int, int]:
    if (not isinstance(grid, tuple | list) or len(grid) != 2
            or not all(isinstance(g, int | np.integer) and g >= 1 for g in grid)):
        raise ValueError(f"grid must be a pair of ints >= 1 (rows, cols), got {grid!r}")
    gh, gw = int(grid[0]), int(grid[1])
    if k is not None and gh * gw != k:
        raise ValueError(f"grid {(gh, gw)} holds {gh * gw} units but the dictionary has "
                         f"{k} atoms")
    return gh, gw


def topographic_pooling(grid: tuple[int, int], neighbourhood: int = 3, *,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pooling matrix ``P`` (k, k) of overlapping m×m wrap-around neighbourhoods.

    ``P[g, j] = 1`` when unit j lies in the m×m window centred on unit g of the
    (gh, gw) torus (units are numbered row-major), else 0. The pooled energies of a code
    batch are ``Z² Pᵀ`` (n, k). With m larger than a grid side the window wraps onto itself
    and the repeats count once.

    Parameters
    ----------
    grid : (int, int)
        (gh, gw), k = gh·gw.
    neighbourhood : int, default=3
        Odd window side m.
    dtype : torch.dtype, default=float32

    Returns
    -------
    Tensor (k, k), symmetric, 0/1.
    """
    gh, gw = _check_grid(grid)
    m = neighbourhood
    if not (isinstance(m, int | np.integer) and m >= 1 and m % 2 == 1):
        raise ValueError(f"neighbourhood must be an odd int >= 1, got {m!r}")
    r = m // 2
    rows = torch.arange(gh).repeat_interleave(gw)  # (k,) grid row of every unit
    cols = torch.arange(gw).repeat(gh)
    dr = (rows[:, None] - rows[None, :]) % gh
    dc = (cols[:, None] - cols[None, :]) % gw
    near_r = torch.minimum(dr, gh - dr) <= r  # circular distance on the torus
    near_c = torch.minimum(dc, gw - dc) <= r
    return (near_r & near_c).to(dtype)


def topographic_penalty(Z: torch.Tensor, P: torch.Tensor, alpha: float = 1.0,
                        eps: float = 1e-2) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample topographic penalty and its gradient.

    ``Ω(z) = λ Σ_g sqrt((P z²)_g + ε)``,
    ``∂Ω/∂z_j = λ z_j Σ_g P[g, j] / sqrt((P z²)_g + ε)``.

    Parameters
    ----------
    Z : Tensor (n, k)
    P : Tensor (k, k)
        From :func:`topographic_pooling`.
    alpha : float, default=1.0
        λ >= 0.
    eps : float, default=1e-2
        ε > 0.

    Returns
    -------
    value : Tensor (n,)
    grad : Tensor (n, k)

    References
    ----------
    Kavukcuoglu et al., CVPR 2009, eq. (3).
    """
    check_float("alpha", alpha, 0)
    check_float("eps", eps, 0, lo_open=True)
    s = torch.sqrt(Z.pow(2) @ P.T + eps)  # (n, groups): pooled amplitudes
    return alpha * s.sum(1), alpha * Z * ((1.0 / s) @ P)


def topographic_objective(X: torch.Tensor, D: torch.Tensor, Z: torch.Tensor, P: torch.Tensor,
                          alpha: float, eps: float = 1e-2) -> tuple[float, float, float]:
    """Mean per-sample energy ``(1/n) Σ_i [½‖x_i − D z_i‖² + Ω(z_i)]`` as ``(F, fit, reg)``."""
    n = max(X.shape[0], 1)
    fit = 0.5 * float((X - Z @ D.T).double().pow(2).sum()) / n
    reg = float(topographic_penalty(Z, P, alpha, eps)[0].double().sum()) / n
    return fit + reg, fit, reg


def _lipschitz(D, P, alpha, eps) -> float:
    # Hessian of Ω ≼ λ Σ_g diag(P_g)/sqrt(ε), so ‖∇²Ω‖ ≤ λ·max_j Σ_g P[g, j] / √ε.
    D64 = D.detach().double()
    M = D64 @ D64.T if D.shape[0] <= D.shape[1] else D64.T @ D64
    return float(torch.linalg.eigvalsh(M)[-1]) + alpha * float(P.sum(0).max()) / math.sqrt(eps)


def topographic_encode(X: torch.Tensor, D: torch.Tensor, grid: tuple[int, int], *,
                       alpha: float = 0.5, neighbourhood: int = 3, eps: float = 1e-2,
                       max_iter: int = 300, tol: float = 1e-4,
                       init: torch.Tensor | None = None,
                       L: float | None = None) -> tuple[torch.Tensor, SolveInfo]:
    """Codes minimising the topographic energy, by accelerated gradient descent with restart.

    ``min_z ½‖x − Dz‖² + λ Σ_g sqrt(Σ_{j∈N(g)} z_j² + ε)`` for every row of X, with
    Nesterov/FISTA momentum on the smooth objective, step ``1/L``,
    ``L = ‖D‖₂² + λ·m²/√ε`` (a bound on the Hessian), per-sample momentum restart when the
    objective would rise (that step is rejected, so the objective is non-increasing).

    Parameters
    ----------
    X : Tensor (n, d), float32 or float64
    D : Tensor (d, k), k = gh·gw atoms laid out row-major on the grid
    grid : (int, int)
    alpha : float, default=0.5
        λ >= 0.
    neighbourhood : int, default=3
        Odd side m of the pooling window.
    eps : float, default=1e-2
        ε > 0 (larger: smoother, faster, less sparse).
    max_iter : int, default=300
    tol : float, default=1e-4
        A sample stops when ``‖z_t − z_{t−1}‖ ≤ tol·‖z_t‖``.
    init : Tensor (n, k), optional
        Warm start.
    L : float, optional
        Step-size constant; the bound above when omitted.

    Returns
    -------
    Z : Tensor (n, k); info : SolveInfo (``regulariser`` is the mean Ω)

    References
    ----------
    Kavukcuoglu et al., CVPR 2009, §3; Nesterov, "Introductory Lectures on Convex
    Optimization", 2004, §2.2; O'Donoghue & Candès, Found. Comput. Math. 15, 2015.
    """
    check_problem(X, D, alpha, init)
    check_float("alpha", alpha, 0)
    check_float("eps", eps, 0, lo_open=True)
    gh, gw = _check_grid(grid, D.shape[1])
    check_int("max_iter", max_iter, 1)
    check_float("tol", tol, 0)
    P = topographic_pooling((gh, gw), neighbourhood, dtype=X.dtype)
    if L is None:
        L = _lipschitz(D, P, alpha, eps)
    step = 1.0 / float(L)
    n, k = X.shape[0], D.shape[1]
    with torch.no_grad():
        G = D.T @ D  # (k, k)
        C = X @ D  # (n, k)
        xsq = 0.5 * X.pow(2).sum(1)

        def energy(Zm):
            fit = (xsq + (Zm * (0.5 * (Zm @ G) - C)).sum(1)).clamp_min(0.0)
            pen, _ = topographic_penalty(Zm, P, alpha, eps)
            return fit, pen

        def grad(Zm):
            return Zm @ G - C + topographic_penalty(Zm, P, alpha, eps)[1]

        Z = X.new_zeros(n, k) if init is None else init.detach().clone().to(X.dtype)
        fit, pen = energy(Z)
        nn = max(n, 1)
        objective = [float((fit + pen).sum()) / nn]
        data_fit, regulariser = [float(fit.sum()) / nn], [float(pen.sum()) / nn]
        Y = Z
        t = X.new_ones(n, 1)
        active = torch.ones(n, 1, dtype=torch.bool)
        plain = torch.ones(n, 1, dtype=torch.bool)  # Y = Z: no momentum in the next step
        n_iter, converged = 0, n == 0
        for it in range(1, max_iter + 1):
            n_iter = it
            Zn = Y - step * grad(Y)
            fit_n, pen_n = energy(Zn)
            # A step from Y = Z (no momentum) cannot go up but by rounding: accept it.
            worse = ((fit_n + pen_n) > (fit + pen)).view(n, 1) & ~plain
            ok = active & ~worse
            prop = torch.linalg.vector_norm(Zn - Z, dim=1, keepdim=True)
            dZ = torch.where(ok, Zn - Z, torch.zeros_like(Z))
            Z = Z + dZ
            fit = torch.where(ok.view(n), fit_n, fit)
            pen = torch.where(ok.view(n), pen_n, pen)
            t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
            beta = torch.where(worse, torch.zeros_like(t), (t - 1.0) / t_new)
            t = torch.where(active, torch.where(worse, torch.ones_like(t), t_new), t)
            Y = torch.where(active, Z + beta * dZ, Z)
            plain = beta == 0
            objective.append(float((fit + pen).sum()) / nn)
            data_fit.append(float(fit.sum()) / nn)
            regulariser.append(float(pen.sum()) / nn)
            # Converged when the proposed step is small, accepted or not (near the optimum
            # a rejection is only rounding).
            done = prop <= tol * torch.linalg.vector_norm(Zn, dim=1, keepdim=True)
            active = active & ~done
            if not bool(active.any()):
                converged = True
                break
    return Z, SolveInfo(objective, data_fit, regulariser, n_iter, converged)


def topographic_learn(X: torch.Tensor, grid: tuple[int, int], *, alpha: float = 0.5,
                      neighbourhood: int = 3, eps: float = 1e-2, max_iter: int = 5,
                      batch_size: int = 256, solver_max_iter: int = 100,
                      solver_tol: float = 1e-3, dict_init: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      progress: bool | None = None) -> tuple[torch.Tensor, DictInfo]:
    """Learn a topographic dictionary by mini-batch alternation (online statistics).

    For each shuffled mini-batch: codes by :func:`topographic_encode` against the current
    dictionary, statistics ``A ← βA + ZᵀZ/η``, ``B ← βB + XᵀZ/η`` with the forgetting factor
    of :func:`aekit.sparse.online_step`, and one block-coordinate sweep of
    :func:`aekit.sparse.update_dictionary` (unit-norm atoms). The atom update only sees
    ``½‖x − Dz‖²``; the topography comes from the pooled penalty in the codes.

    Parameters
    ----------
    X : Tensor (n, d)
        E.g. :func:`aekit.sparse.natural_image_patches` (centred, contrast-normalised).
    grid : (int, int)
        (gh, gw); the dictionary has k = gh·gw atoms, numbered row-major.
    alpha, neighbourhood, eps : see :func:`topographic_encode`
    max_iter : int, default=5
        Epochs over X.
    batch_size : int, default=256
    solver_max_iter, solver_tol : passed to :func:`topographic_encode`
    dict_init : Tensor (d, k), optional
    generator : torch.Generator, optional
    progress : bool, optional

    Returns
    -------
    D : Tensor (d, k), unit-norm atoms
    info : DictInfo
        ``objective``: mean energy of each mini-batch before its update.

    References
    ----------
    Kavukcuoglu et al., CVPR 2009, §3; Mairal, Bach, Ponce & Sapiro, JMLR 11, 2010,
    Algorithms 1–2 (online statistics and the atom update).
    """
    check_problem(X, torch.ones(X.shape[1] if X.ndim == 2 else 1, 1, dtype=X.dtype), alpha)
    check_float("alpha", alpha, 0)
    check_float("eps", eps, 0, lo_open=True)
    gh, gw = _check_grid(grid)
    k = gh * gw
    n, d = X.shape
    if n == 0:
        raise ValueError(f"X must have at least one sample, got shape {tuple(X.shape)}")
    epochs = check_int("max_iter", max_iter, 1)
    bs = min(check_int("batch_size", batch_size, 1), n)
    if dict_init is None:
        D = init_dictionary(X, k, generator=generator)
    else:
        if not isinstance(dict_init, torch.Tensor) or tuple(dict_init.shape) != (d, k):
            raise ValueError(f"dict_init must have shape (d, k) = {(d, k)}")
        D = torch.nn.functional.normalize(dict_init.detach().to(X.dtype), dim=0)
    P = topographic_pooling((gh, gw), neighbourhood, dtype=X.dtype)
    A = X.new_zeros(k, k)
    B = X.new_zeros(d, k)
    objective: list[float] = []
    steps = math.ceil(n / bs)
    bar = progress_bar(epochs * steps, "topographic_learn", progress)
    t = 0
    with torch.no_grad():
        for _epoch in range(epochs):
            order = torch.randperm(n, generator=generator)
            for b in range(steps):
                batch = X[order[b * bs:(b + 1) * bs]]
                eta = batch.shape[0]
                Z, _ = topographic_encode(batch, D, (gh, gw), alpha=alpha,
                                          neighbourhood=neighbourhood, eps=eps,
                                          max_iter=solver_max_iter, tol=solver_tol)
                objective.append(topographic_objective(batch, D, Z, P, alpha, eps)[0])
                theta = (t + 1) * eta if t < eta - 1 else eta * eta + t + 1 - eta
                beta = (theta + 1 - eta) / (theta + 1)
                A = beta * A + Z.T @ Z / eta
                B = beta * B + batch.T @ Z / eta
                D = update_dictionary(D, A, B, X=batch, generator=generator)
                t += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(objective=f"{objective[-1]:.5g}")
    if bar is not None:
        bar.close()
    return D, DictInfo(objective, t, False)


class TopographyScore(NamedTuple):
    """How much more alike grid neighbours are than units far apart.

    Attributes
    ----------
    neighbour : float
        Mean similarity of pairs at grid (Chebyshev, wrap-around) distance 1.
    distant : float
        Mean similarity of pairs farther apart than the pooling radius.
    ratio : float
        ``neighbour / distant`` (> 1 means a topographic map; ≈ 1 for a shuffled grid).
    """

    neighbour: float
    distant: float
    ratio: float


def topography_score(D: torch.Tensor, grid: tuple[int, int], *,
                     patch_shape: tuple[int, int] | None = None,
                     radius: int = 1) -> TopographyScore:
    """Similarity of neighbouring atoms on the grid against pairs far apart.

    The similarity of two atoms is ``|cos(d_i, d_j)|`` or, with ``patch_shape``, the
    correlation of their 2-D Fourier amplitude spectra ``|F(d)|``: the latter ignores
    phase and position, which vary between neighbours of a topographic map while
    orientation and frequency stay close (Kavukcuoglu et al. 2009, Fig. 3; Hyvärinen &
    Hoyer 2001, §4).

    Parameters
    ----------
    D : Tensor (d, k), atoms as columns, laid out row-major on the grid
    grid : (int, int)
    patch_shape : (int, int), optional
        (p_h, p_w) with ``p_h·p_w = d``: compare amplitude spectra.
    radius : int, default=1
        Neighbours are pairs at Chebyshev distance in ``1..radius``; distant pairs are
        farther than ``radius + 1``.

    Returns
    -------
    TopographyScore
    """
    if D.ndim != 2:
        raise ValueError(f"D must have shape (d, k), got {tuple(D.shape)}")
    d, k = D.shape
    gh, gw = _check_grid(grid, k)
    Dd = D.detach().double()
    if patch_shape is None:
        F = torch.nn.functional.normalize(Dd, dim=0).T  # (k, d)
        S = (F @ F.T).abs()
    else:
        ph, pw = patch_shape
        if ph * pw != d:
            raise ValueError(f"patch_shape {tuple(patch_shape)} has {ph * pw} pixels but the "
                             f"atoms have {d}")
        amp = torch.fft.rfft2(Dd.T.reshape(k, ph, pw)).abs().flatten(1)  # (k, ph*(pw//2+1))
        amp = amp - amp.mean(1, keepdim=True)
        amp = torch.nn.functional.normalize(amp, dim=1)
        S = amp @ amp.T
    rows = torch.arange(gh).repeat_interleave(gw)
    cols = torch.arange(gw).repeat(gh)
    dr = (rows[:, None] - rows[None, :]) % gh
    dc = (cols[:, None] - cols[None, :]) % gw
    dist = torch.maximum(torch.minimum(dr, gh - dr), torch.minimum(dc, gw - dc))
    near = (dist >= 1) & (dist <= radius)
    far = dist > radius + 1
    if not bool(near.any()) or not bool(far.any()):
        raise ValueError(f"grid {(gh, gw)} is too small to tell neighbours (distance <= "
                         f"{radius}) from distant pairs (> {radius + 1})")
    a, b = float(S[near].mean()), float(S[far].mean())
    return TopographyScore(a, b, a / b if b != 0 else math.inf)
