"""Convolutional sparse coding (CSC) over whole images, with the convolutions in Fourier.

An image is a sum of small filters convolved with full-size sparse coefficient maps:

    x ≈ Σ_j d_j * z_j,      min_Z  ½‖x − Σ_j d_j * z_j‖² + λ Σ_j ‖z_j‖₁,

with images ``X`` (n, H, W), filters ``D`` (k, fh, fw) and codes ``Z`` (n, k, H, W).

Boundary: the convolution is **periodic** (circular) on the H×W grid, which is what makes
it diagonal in the Fourier domain: with ``D̂_j`` the 2-D DFT of filter j zero-padded to H×W,
``(Σ_j d_j * z_j)^ = Σ_j D̂_j Ẑ_j`` frequency by frequency. The filter is anchored at its
centre ``c = ((fh − 1) // 2, (fw − 1) // 2)`` (the padded filter is rolled by ``−c``), so

    (d * z)[p, q] = Σ_{a, b} d[a, b] · z[(p − a + c_h) mod H, (q − b + c_w) mod W]

and a coefficient at ``(p, q)`` puts the centre of its filter at ``(p, q)``; this is
``scipy.signal.convolve2d(z, d, mode="same", boundary="wrap")``. Structure
that wraps around the border is an artefact of this choice: pad the images (e.g. by the
filter size, ``mode="reflect"``) and crop afterwards when it matters. The ℓ1 penalty cannot
pay for smooth, low-frequency content, so images are usually high-pass filtered first
(subtract a blurred copy), as in the references.

The objective reported everywhere is the **mean over images** of the per-image objective,
as in :mod:`aekit.sparse.common`.

References
----------
Zeiler, Krishnan, Taylor & Fergus, "Deconvolutional networks", CVPR 2010 (the model);
Bristow, Eriksson & Lucey, "Fast convolutional sparse coding", CVPR 2013 (Fourier domain);
Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 25(1),
2016, §II–III; Chalasani, Principe & Ramakrishnan, "A fast proximal method for
convolutional sparse coding", IJCNN 2013 (FISTA for CSC).
"""

from __future__ import annotations

import numpy as np
import torch

from ..validation import check_float, check_int
from .common import SolveInfo, progress_bar
from .dictionary import DictInfo
from .prox import soft_threshold

__all__ = [
    "conv_spectrum",
    "csc_adjoint",
    "csc_encode",
    "csc_learn",
    "csc_lipschitz",
    "csc_objective",
    "csc_reconstruct",
    "init_filters",
]


# ----------------------------------------------------------------------------- validation

def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch tensor, got {type(images).__name__}")
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, H, W), got {tuple(images.shape)}")
    if images.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"images must be float32 or float64, got {images.dtype}")
    if min(images.shape[1:]) < 1:
        raise ValueError(f"images must be at least 1x1, got {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")


def _check_filters(filters, images: torch.Tensor | None = None) -> None:
    if not isinstance(filters, torch.Tensor):
        raise ValueError(f"filters must be a torch tensor, got {type(filters).__name__}")
    if filters.ndim != 3 or filters.shape[0] < 1:
        raise ValueError(f"filters must have shape (k, fh, fw) with k >= 1, got "
                         f"{tuple(filters.shape)}")
    if not bool(torch.isfinite(filters).all()):
        raise ValueError("filters contain NaN or infinite values")
    if images is not None:
        if filters.dtype != images.dtype:
            raise ValueError(f"filters have dtype {filters.dtype} but images have "
                             f"{images.dtype}; pass both in one dtype")
        if filters.shape[1] > images.shape[1] or filters.shape[2] > images.shape[2]:
            raise ValueError(f"filters of size {tuple(filters.shape[1:])} do not fit in images "
                             f"of size {tuple(images.shape[1:])}")


# ---------------------------------------------------------------------- Fourier operator

def conv_spectrum(filters: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Half-spectrum DFT of the filters zero-padded to ``shape`` and centred at the origin.

    ``D̂_j = rfft2(roll(pad(d_j), −c))`` with ``c = ((fh − 1) // 2, (fw − 1) // 2)``.

    Parameters
    ----------
    filters : Tensor, shape (k, fh, fw)
    shape : (int, int)
        Image size (H, W), at least the filter size.

    Returns
    -------
    Tensor, shape (k, H, W // 2 + 1), complex.
    """
    _check_filters(filters)
    H, W = int(shape[0]), int(shape[1])
    k, fh, fw = filters.shape
    if fh > H or fw > W:
        raise ValueError(f"filters of size {(fh, fw)} do not fit in shape {(H, W)}")
    pad = filters.new_zeros(k, H, W)
    pad[:, :fh, :fw] = filters
    pad = torch.roll(pad, shifts=(-((fh - 1) // 2), -((fw - 1) // 2)), dims=(1, 2))
    return torch.fft.rfft2(pad)


def csc_reconstruct(Z: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """The synthesis operator ``A Z = Σ_j d_j * z_j`` (periodic), via the FFT.

    Parameters
    ----------
    Z : Tensor, shape (n, k, H, W)
    filters : Tensor, shape (k, fh, fw), dtype of Z

    Returns
    -------
    Tensor, shape (n, H, W).
    """
    if Z.ndim != 4 or Z.shape[1] != filters.shape[0]:
        raise ValueError(f"Z must have shape (n, k={filters.shape[0]}, H, W), got "
                         f"{tuple(Z.shape)}")
    H, W = Z.shape[-2:]
    Dh = conv_spectrum(filters.to(Z.dtype), (H, W))
    return torch.fft.irfft2((Dh * torch.fft.rfft2(Z)).sum(1), s=(H, W))


def csc_adjoint(R: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """The adjoint ``Aᵀ r = (d_j ⋆ r)_j``: periodic correlation with every filter.

    ``⟨A Z, R⟩ = ⟨Z, Aᵀ R⟩``; in Fourier ``(Aᵀ r)^_j = conj(D̂_j) R̂``.

    Parameters
    ----------
    R : Tensor, shape (n, H, W)
    filters : Tensor, shape (k, fh, fw)

    Returns
    -------
    Tensor, shape (n, k, H, W).
    """
    if R.ndim != 3:
        raise ValueError(f"R must have shape (n, H, W), got {tuple(R.shape)}")
    H, W = R.shape[-2:]
    Dh = conv_spectrum(filters.to(R.dtype), (H, W))
    return torch.fft.irfft2(Dh.conj() * torch.fft.rfft2(R).unsqueeze(1), s=(H, W))


def _lipschitz_from_spectrum(Dh: torch.Tensor) -> float:
    return float(Dh.abs().double().pow(2).sum(0).max())


def csc_lipschitz(filters: torch.Tensor, shape: tuple[int, int]) -> float:
    """Lipschitz constant of ``Z ↦ Aᵀ(AZ − x)``: ``L = max_ω Σ_j |D̂_j(ω)|²``.

    ``AᵀA`` is block-diagonal in Fourier with rank-one blocks ``d̂(ω) d̂(ω)ᴴ`` (k, k), whose
    only non-zero eigenvalue is ``‖d̂(ω)‖²``; ``L`` is the largest over the frequencies, so it
    is exact (not a bound) for the periodic operator.

    Parameters
    ----------
    filters : Tensor (k, fh, fw); shape : (H, W)

    Returns
    -------
    float

    References
    ----------
    Wohlberg, IEEE TIP 25(1), 2016, §III (the frequency-domain structure of ``AᵀA``).
    """
    return _lipschitz_from_spectrum(conv_spectrum(filters, shape))


def csc_objective(images: torch.Tensor, filters: torch.Tensor, Z: torch.Tensor,
                  alpha: float) -> tuple[float, float, float]:
    """Mean per-image CSC objective and its two parts, ``(F, fit, reg)``.

    ``F = (1/n) Σ_i [½‖x_i − Σ_j d_j * z_ij‖² + λ Σ_j ‖z_ij‖₁]``.

    Parameters
    ----------
    images : Tensor (n, H, W); filters : Tensor (k, fh, fw); Z : Tensor (n, k, H, W)
    alpha : float (λ)
    """
    n = max(images.shape[0], 1)
    R = images - csc_reconstruct(Z, filters)
    fit = 0.5 * float(R.double().pow(2).sum()) / n
    reg = alpha * float(Z.double().abs().sum()) / n
    return fit + reg, fit, reg


# -------------------------------------------------------------------------------- FISTA

def _fista_csc(X, Dh, alpha, *, max_iter, tol, positive, init, restart, L):
    """FISTA on the Fourier-diagonal operator; the state ``S = Σ_j D̂_j Ẑ_j`` is linear in Z,
    so the momentum point's state is the same combination and each iteration costs one
    rfft2 and one irfft2 of the k maps, plus one irfft2 of the residual for the objective."""
    n, H, W = X.shape
    k = Dh.shape[0]
    step, thresh = 1.0 / L, alpha / L
    Xh = torch.fft.rfft2(X)  # (n, H, W//2+1)
    Dc = Dh.conj()

    def state(Zm):
        return (Dh * torch.fft.rfft2(Zm)).sum(1)  # (n, H, W//2+1)

    def rows(Zm, S):
        fit = 0.5 * torch.fft.irfft2(S - Xh, s=(H, W)).pow(2).sum((1, 2))
        return fit, alpha * Zm.abs().sum((1, 2, 3))

    Z = X.new_zeros(n, k, H, W) if init is None else init.detach().clone()
    if positive:
        Z.clamp_(min=0.0)
    S = state(Z)
    fit, reg = rows(Z, S)
    objective = [float(fit.sum() + reg.sum()) / max(n, 1)]
    data_fit = [float(fit.sum()) / max(n, 1)]
    regulariser = [float(reg.sum()) / max(n, 1)]
    Y, SY = Z, S
    t = X.new_ones(n, 1, 1, 1)
    active = torch.ones(n, dtype=torch.bool)
    plain = torch.ones(n, dtype=torch.bool)  # Y = Z: no momentum in the next step
    n_iter, converged = 0, n == 0
    for it in range(1, max_iter + 1):
        n_iter = it
        G = torch.fft.irfft2(Dc * (SY - Xh).unsqueeze(1), s=(H, W))  # (n, k, H, W) gradient
        Zn = soft_threshold(Y - step * G, thresh, positive=positive)
        del G
        Sn = state(Zn)
        fit_n, reg_n = rows(Zn, Sn)
        # Converged images keep their iterate (a frozen row changes nothing below).
        act = active.view(n, 1, 1, 1)
        if restart:
            # Monotone variant: a momentum step that raises an image's objective is rejected
            # and that image restarts from its current iterate with t = 1 (the next step is
            # then a plain proximal-gradient step, which never increases the objective).
            # A step from Y = Z (no momentum) cannot go up but by rounding: accept it.
            worse = ((fit_n + reg_n) > (fit + reg)) & ~plain
            ok = (~worse).view(n, 1, 1, 1) & act
        else:
            worse = torch.zeros(n, dtype=torch.bool)
            ok = act
        prop = torch.linalg.vector_norm((Zn - Z).flatten(1), dim=1)
        dZ = torch.where(ok, Zn - Z, torch.zeros_like(Z))
        Znew = Z + dZ
        Snew = torch.where(ok.view(n, 1, 1), Sn, S)
        t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        if restart:
            # Gradient-based restart (O'Donoghue & Candès 2015, §3.2): momentum uphill.
            bad = ((Y - Zn) * (Zn - Z)).sum((1, 2, 3)) > 0
            bad = (bad | worse).view(n, 1, 1, 1)
            t_new = torch.where(bad, torch.ones_like(t_new), t_new)
            beta = torch.where(bad, torch.zeros_like(beta), beta)
        Y = torch.where(act, Znew + beta * dZ, Z)
        SY = torch.where(act.view(n, 1, 1), Snew + beta.view(n, 1, 1) * (Snew - S), S)
        t = torch.where(act, t_new, t)
        plain = beta.view(n) == 0
        fit = torch.where(ok.view(n), fit_n, fit)
        reg = torch.where(ok.view(n), reg_n, reg)
        Z, S = Znew, Snew
        objective.append(float(fit.sum() + reg.sum()) / max(n, 1))
        data_fit.append(float(fit.sum()) / max(n, 1))
        regulariser.append(float(reg.sum()) / max(n, 1))
        # Converged when the proposed step is small, accepted or not (near the optimum a
        # rejection is only rounding).
        done = prop <= tol * torch.linalg.vector_norm(Zn.flatten(1), dim=1)
        active = active & ~done
        if not bool(active.any()):
            converged = True
            break
    return Z, SolveInfo(objective, data_fit, regulariser, n_iter, converged)


def csc_encode(images: torch.Tensor, filters: torch.Tensor, alpha: float, *,
               max_iter: int = 500, tol: float = 1e-4, positive: bool = False,
               init: torch.Tensor | None = None, restart: bool = True,
               L: float | None = None) -> tuple[torch.Tensor, SolveInfo]:
    """Convolutional sparse codes of a batch of images by FISTA in the Fourier domain.

    Solves, for every image, ``min_Z ½‖x − Σ_j d_j * z_j‖² + λ Σ_j ‖z_j‖₁`` (periodic
    convolution, filters centred; see the module notes) with
    ``Z⁺ = S_{λ/L}(Y − Aᵀ(AY − x)/L)``, ``L = max_ω Σ_j |D̂_j(ω)|²``, and the FISTA momentum.
    With ``restart=True`` an image's momentum is reset when it points uphill
    (``⟨Y − Z⁺, Z⁺ − Z⟩ > 0``) and a step that would raise its objective is rejected, so each
    image's objective is non-increasing.

    Parameters
    ----------
    images : Tensor, shape (n, H, W), float32 or float64
    filters : Tensor, shape (k, fh, fw), same dtype, ``fh ≤ H``, ``fw ≤ W``
    alpha : float
        λ >= 0.
    max_iter : int, default=500
    tol : float, default=1e-4
        An image stops when ``‖Z_t − Z_{t−1}‖ ≤ tol·‖Z_t‖``.
    positive : bool, default=False
        Constrain ``Z ≥ 0``.
    init : Tensor, shape (n, k, H, W), optional
        Warm start.
    restart : bool, default=True
    L : float, optional
        Lipschitz constant; computed by :func:`csc_lipschitz` when omitted.

    Returns
    -------
    Z : Tensor, shape (n, k, H, W), dtype of images
    info : SolveInfo
        Mean per-image objective, fit and ℓ1 term before the first and after every
        iteration.

    References
    ----------
    Beck & Teboulle, SIAM J. Imaging Sci. 2(1), 2009, §4; Chalasani et al., IJCNN 2013;
    Wohlberg, IEEE TIP 25(1), 2016, §III; O'Donoghue & Candès, Found. Comput. Math. 15, 2015.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> Z, info = csc_encode(torch.randn(2, 16, 16, generator=g),
    ...                      torch.randn(4, 5, 5, generator=g) / 5, alpha=0.1)
    >>> Z.shape, info.objective[-1] <= info.objective[0]
    (torch.Size([2, 4, 16, 16]), True)
    """
    _check_images(images)
    _check_filters(filters, images)
    check_float("alpha", alpha, 0)
    check_int("max_iter", max_iter, 1)
    check_float("tol", tol, 0)
    n, H, W = images.shape
    k = filters.shape[0]
    if init is not None:
        if not isinstance(init, torch.Tensor) or tuple(init.shape) != (n, k, H, W):
            shape = tuple(init.shape) if isinstance(init, torch.Tensor) else type(init).__name__
            raise ValueError(f"init must be a tensor of shape {(n, k, H, W)}, got {shape}")
        init = init.to(images.dtype)
    if n == 0:  # nothing to solve (and MKL refuses an empty FFT)
        return images.new_zeros(0, k, H, W), SolveInfo([0.0], [0.0], [0.0], 0, True)
    with torch.no_grad():
        Dh = conv_spectrum(filters, (H, W))
        if L is None:
            L = _lipschitz_from_spectrum(Dh)
        if not float(L) > 0:
            raise ValueError(f"L must be > 0 (are all filters zero?), got {L}")
        return _fista_csc(images, Dh, float(alpha), max_iter=int(max_iter), tol=float(tol),
                          positive=positive, init=init, restart=restart, L=float(L))


# ----------------------------------------------------------------------- filter learning

def _unit(filters: torch.Tensor) -> torch.Tensor:
    norms = torch.linalg.vector_norm(filters.flatten(1), dim=1).clamp_min(1e-12)
    return filters / norms.view(-1, 1, 1)


def init_filters(images: torch.Tensor, n_filters: int, filter_size: int | tuple[int, int], *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Initial filters: random image patches, mean removed, unit norm (Gaussian if flat).

    Returns a tensor of shape (k, fh, fw) in the dtype of the images.
    """
    _check_images(images)
    k = check_int("n_filters", n_filters, 1)
    fh, fw = _filter_shape(filter_size, images)
    n, H, W = images.shape
    i = torch.randint(n, (k,), generator=generator)
    r = torch.randint(H - fh + 1, (k,), generator=generator)
    c = torch.randint(W - fw + 1, (k,), generator=generator)
    windows = images.unfold(1, fh, 1).unfold(2, fw, 1)  # (n, H-fh+1, W-fw+1, fh, fw)
    F = windows[i, r, c].clone()
    F = F - F.mean((1, 2), keepdim=True)
    flat = torch.linalg.vector_norm(F.flatten(1), dim=1) <= 1e-8
    if bool(flat.any()):
        F[flat] = torch.randn(int(flat.sum()), fh, fw, generator=generator, dtype=images.dtype)
    return _unit(F)


def _filter_shape(filter_size, images) -> tuple[int, int]:
    fs = (filter_size, filter_size) if isinstance(filter_size, int | np.integer) \
        else tuple(filter_size)
    if len(fs) != 2 or not all(isinstance(s, int | np.integer) and s >= 1 for s in fs):
        raise ValueError(f"filter_size must be an int >= 1 or a pair of them, got "
                         f"{filter_size!r}")
    if fs[0] > images.shape[1] or fs[1] > images.shape[2]:
        raise ValueError(f"filter_size {tuple(fs)} does not fit in images of size "
                         f"{tuple(images.shape[1:])}")
    return int(fs[0]), int(fs[1])


def _filter_gradient(Zh, Xh, Dh, shape, fsize):
    """Gradient of ``(1/n) Σ_i ½‖x_i − Σ_j d_j * z_ij‖²`` with respect to the filters,
    restricted to their support: ``(1/n) Σ_i crop(z_ij ⋆ r_i)``."""
    H, W = shape
    fh, fw = fsize
    n = Zh.shape[0]
    Rh = (Dh * Zh).sum(1) - Xh  # (n, H, W//2+1): residual A Z − x
    Gh = (Zh.conj() * Rh.unsqueeze(1)).sum(0) / n  # (k, H, W//2+1)
    G = torch.fft.irfft2(Gh, s=(H, W))
    G = torch.roll(G, shifts=((fh - 1) // 2, (fw - 1) // 2), dims=(1, 2))  # undo the centring
    return G[:, :fh, :fw]


def _filter_lipschitz(Zh: torch.Tensor) -> float:
    """Largest eigenvalue of the filter Hessian of the mean fit: its Fourier blocks are
    ``(1/n) Σ_i ẑ_i(ω) ẑ_i(ω)ᴴ`` (k, k), so ``L_D = max_ω λ_max`` of those (restricting the
    filters to their support cannot raise it)."""
    n = Zh.shape[0]
    V = Zh.flatten(2).permute(2, 1, 0).to(torch.complex128)  # (freqs, k, n)
    M = V @ V.mH / n  # (freqs, k, k) Hermitian
    return float(torch.linalg.eigvalsh(M)[:, -1].max())


def csc_learn(images: torch.Tensor, n_filters: int, filter_size: int | tuple[int, int],
              alpha: float, *, max_iter: int = 20, filter_steps: int = 5,
              solver_max_iter: int = 100, solver_tol: float = 1e-3, tol: float = 1e-5,
              positive: bool = False, filters_init: torch.Tensor | None = None,
              generator: torch.Generator | None = None,
              progress: bool | None = None) -> tuple[torch.Tensor, DictInfo]:
    """Learn convolutional filters by alternating code inference and filter updates.

    Minimises ``(1/n) Σ_i [½‖x_i − Σ_j d_j * z_ij‖² + λ Σ_j ‖z_ij‖₁]`` subject to
    ``‖d_j‖₂ = 1``. Each outer iteration: codes by :func:`csc_encode` (warm-started), then
    ``filter_steps`` projected gradient steps on the filters,
    ``d_j ← Π(d_j − ∇_{d_j}/L_D)`` with ``Π`` the projection onto the unit sphere and
    ``L_D = max_ω λ_max((1/n) Σ_i ẑ_i(ω) ẑ_i(ω)ᴴ)``, the largest eigenvalue of the filter
    Hessian, whose Fourier blocks are those (k, k) matrices (restricting the filters to
    their support cannot raise it). A projected step of length ``1/L_D`` onto a set that
    contains the current point never raises the objective, even for the non-convex sphere,
    so the objective after each outer iteration is non-increasing up to the inexact codes.

    Parameters
    ----------
    images : Tensor (n, H, W), float32 or float64
        Usually high-pass filtered (the ℓ1 codes cannot pay for the smooth part).
    n_filters : int
        k.
    filter_size : int or (int, int)
    alpha : float
        λ >= 0.
    max_iter : int, default=20
        Outer iterations.
    filter_steps : int, default=5
        Projected gradient steps on the filters per outer iteration.
    solver_max_iter, solver_tol : int, float
        Passed to :func:`csc_encode`.
    tol : float, default=1e-5
        Stop when the objective decreases by less than ``tol·F`` in an outer iteration.
    positive : bool, default=False
        Non-negative coefficient maps.
    filters_init : Tensor (k, fh, fw), optional
        Warm start (normalised); otherwise :func:`init_filters`.
    generator : torch.Generator, optional
    progress : bool, optional
        tqdm bar; by default only on a terminal and never under ``CI=true``.

    Returns
    -------
    filters : Tensor (k, fh, fw), unit Frobenius norm each
    info : DictInfo
        ``objective`` is ``F`` after every outer iteration (codes from that iteration, filters
        after the update).

    References
    ----------
    Zeiler et al., CVPR 2010, §2; Bristow, Eriksson & Lucey, CVPR 2013, §3 (Fourier-domain
    filter update); Wohlberg, IEEE TIP 25(1), 2016, §V (dictionary update with the
    unit-norm constraint).
    """
    _check_images(images)
    check_float("alpha", alpha, 0)
    k = check_int("n_filters", n_filters, 1)
    fh, fw = _filter_shape(filter_size, images)
    check_int("max_iter", max_iter, 1)
    check_int("filter_steps", filter_steps, 1)
    check_float("tol", tol, 0)
    n, H, W = images.shape
    if n == 0:
        raise ValueError("images must hold at least one image, got shape "
                         f"{tuple(images.shape)}")
    if filters_init is None:
        F = init_filters(images, k, (fh, fw), generator=generator)
    else:
        _check_filters(filters_init, images)
        if tuple(filters_init.shape) != (k, fh, fw):
            raise ValueError(f"filters_init must have shape {(k, fh, fw)}, got "
                             f"{tuple(filters_init.shape)}")
        F = _unit(filters_init.detach().clone())
    Xh = torch.fft.rfft2(images)
    Z = None
    objective: list[float] = []
    converged = False
    bar = progress_bar(max_iter, "csc_learn", progress)
    it = 0
    with torch.no_grad():
        for it in range(1, max_iter + 1):  # noqa: B007
            Z, _ = csc_encode(images, F, alpha, max_iter=solver_max_iter, tol=solver_tol,
                              positive=positive, init=Z)
            Zh = torch.fft.rfft2(Z)  # (n, k, H, W//2+1)
            LD = _filter_lipschitz(Zh)
            if LD > 0:
                for _ in range(filter_steps):
                    Dh = conv_spectrum(F, (H, W))
                    Gd = _filter_gradient(Zh, Xh, Dh, (H, W), (fh, fw))
                    Fn = F - Gd / LD
                    norms = torch.linalg.vector_norm(Fn.flatten(1), dim=1)
                    # A filter whose step lands on 0 has no direction: keep the old one.
                    keep = (norms <= 1e-12).view(-1, 1, 1)
                    F = torch.where(keep, F, _unit(Fn))
            f = csc_objective(images, F, Z, alpha)[0]
            objective.append(f)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(objective=f"{f:.5g}")
            if len(objective) > 1 and objective[-2] - f <= tol * abs(f):
                converged = True
                break
    if bar is not None:
        bar.close()
    return F, DictInfo(objective, it, converged)
