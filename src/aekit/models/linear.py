"""The closed-form optimum of the linear autoencoder: PCA by Eckart–Young.

A linear AE ``x̂ = W_d (W_e x + b_e) + b_d`` trained with squared error can do no better than
the best rank-k approximation of the centred data, which the truncated SVD gives
(Eckart & Young 1936). :func:`pca_solution` computes it directly, and
:func:`init_linear_ae_from_pca` / :func:`linear_ae_from_pca` write it into a
:class:`~aekit.models.dense.LinearAE`, so gradient training is only needed to *check* the theory
(Baldi & Hornik 1989), never to get the optimum.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import torch

from .dense import LinearAE

__all__ = ["PCA_METHODS", "PCASolution", "init_linear_ae_from_pca", "linear_ae_from_pca",
           "pca_solution"]

#: Ways :func:`pca_solution` can compute the top-k subspace.
PCA_METHODS = ("auto", "covariance", "svd", "randomized")


class PCASolution(NamedTuple):
    """The optimal linear autoencoder of code size k for data X (n, d).

    Arrays are NumPy arrays when ``pca_solution`` got a NumPy array and tensors when it got a
    tensor, in the input's floating dtype.

    Attributes
    ----------
    mean : (d,)
        ``μ = (1/n) Σ_i x_i``.
    components : (d, k)
        ``V_k``: the top-k right singular vectors of the centred data ``X − 1μᵀ`` as orthonormal
        columns, sorted by decreasing singular value. Sign convention as scikit-learn's PCA:
        the largest-magnitude entry of each column is positive.
    singular_values : (k,)
        ``s_1 >= ... >= s_k`` of the centred data.
    explained_variance : (k,)
        ``s_j² / (n − 1)`` (scikit-learn's ``explained_variance_``).
    encoder_weight : (k, d)
        ``W_e = V_kᵀ`` (``W_e = diag(1/σ_j) V_kᵀ`` with ``σ_j = s_j / √(n−1)`` when whitened).
    encoder_bias : (k,)
        ``b_e = −W_e μ``, so the code is ``h = W_e (x − μ)``.
    decoder_weight : (d, k)
        ``W_d = V_k`` (``V_k diag(σ_j)`` when whitened), so ``W_d W_e = V_k V_kᵀ`` either way.
    decoder_bias : (d,)
        ``b_d = μ``.
    train_error : float
        Mean per-sample squared error on X, ``(1/n) Σ_i ‖x_i − x̂_i‖² = (1/n) Σ_{j>k} s_j²``,
        the minimum any linear AE of code size k can reach on X.
    total_variance : float
        ``(1/n) ‖X − 1μᵀ‖²_F``, the error of the code-size-0 model.
    """

    mean: Any
    components: Any
    singular_values: Any
    explained_variance: Any
    encoder_weight: Any
    encoder_bias: Any
    decoder_weight: Any
    decoder_bias: Any
    train_error: float
    total_variance: float


def _as_float_tensor(X: Any) -> tuple[torch.Tensor, bool]:
    """X as a 2-D finite floating tensor (float32 unless X is float64); and whether X was numpy."""
    is_np = not isinstance(X, torch.Tensor)
    if is_np:
        try:
            A = np.asarray(X)
        except Exception as e:  # ragged lists and the like
            raise ValueError(f"X must be a numeric 2-D array: {e}") from None
        if A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
            raise ValueError(f"X must be numeric, got dtype {A.dtype}")
        if A.dtype != np.float64:
            A = A.astype(np.float32, copy=False)
        T = torch.from_numpy(np.ascontiguousarray(A))
    else:
        T = X.detach()
        if T.dtype not in (torch.float32, torch.float64):
            T = T.to(torch.float32)
    if T.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(T.shape)}")
    if T.shape[0] < 2 or T.shape[1] < 1:
        raise ValueError(f"X needs at least 2 samples and 1 feature, got shape {tuple(T.shape)}")
    return T, is_np


def _check_total(total: float) -> None:
    # NaN/inf anywhere in X makes the mean and so the total scatter non-finite: checking the
    # scalar is free, while torch.isfinite(X).all() costs a pass over X (0.4 s on MNIST).
    if not np.isfinite(total):
        raise ValueError("X contains NaN or infinite values (or values whose squares overflow "
                         "its dtype)")


def pca_solution(X: Any, k: int, *, method: str = "auto", whiten: bool = False,
                 n_oversamples: int = 10, n_iter: int = 7, seed: int = 0) -> PCASolution:
    """Closed-form optimum of the linear autoencoder with code size k (Eckart–Young).

    With ``X_c = X − 1μᵀ = U Σ Vᵀ``, the best rank-k reconstruction in Frobenius norm is
    ``U_k Σ_k V_kᵀ`` (Eckart & Young 1936), reached by the linear AE
    ``h = V_kᵀ (x − μ)``, ``x̂ = V_k h + μ``: the orthogonal projector onto the principal
    subspace. Any ``W_e = A V_kᵀ``, ``W_d = V_k A⁻¹`` with an invertible k×k ``A`` is optimal
    too, which is why a linear AE trained by gradient descent spans the same subspace with
    non-orthogonal hidden units (Baldi & Hornik 1989).

    Parameters
    ----------
    X : array-like or Tensor, shape (n, d)
        Data; float64 stays float64, anything else is computed as float32.
    k : int
        Code size, ``1 <= k <= min(n, d)``.
    method : {"auto", "covariance", "svd", "randomized"}
        ``covariance``: eigen-decomposition of the d×d scatter matrix ``X_cᵀ X_c`` (one
        O(n d²) matrix product in the input dtype, the d×d ``eigh`` in float64); fast for tall
        data, e.g. 60,000 × 784 MNIST in about a second on two cores. ``svd``: thin SVD of
        ``X_c`` (most accurate, O(n d min(n, d))). ``randomized``: ``torch.svd_lowrank``
        with ``k + n_oversamples`` columns and ``n_iter`` power iterations (Halko et al. 2011);
        for a small k of very large data. ``auto``: ``covariance`` when n >= d, else ``svd``.
    whiten : bool
        Scale codes to unit variance: ``W_e = diag(1/σ_j) V_kᵀ``, ``W_d = V_k diag(σ_j)``,
        ``σ_j = s_j / √(n − 1)``. The reconstruction is unchanged.
    n_oversamples, n_iter : int
        Only for ``randomized``.
    seed : int
        Seeds the random test matrix of ``randomized``.

    Returns
    -------
    PCASolution
        Mean, ``V_k`` (d, k), singular values, explained variances, encoder/decoder weights and
        biases, the training error and the total variance.

    References
    ----------
    Eckart & Young, "The approximation of one matrix by another of lower rank",
    Psychometrika 1936. Baldi & Hornik, "Neural networks and principal component analysis:
    learning from examples without local minima", Neural Networks 1989. Halko, Martinsson &
    Tropp, "Finding structure with randomness", SIAM Review 2011, section 4 (randomized).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> sol = pca_solution(X, 2)
    >>> sol.components.shape, sol.encoder_weight.shape
    ((5, 2), (2, 5))
    """
    if method not in PCA_METHODS:
        raise ValueError(f"method must be one of {PCA_METHODS}, got {method!r}")
    T, is_np = _as_float_tensor(X)
    n, d = T.shape
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"k must be an int, got {k!r}")
    k = int(k)
    if not 1 <= k <= min(n, d):
        raise ValueError(f"k must be in [1, min(n, d)] = [1, {min(n, d)}], got {k}")
    if method == "randomized" and (int(n_oversamples) < 0 or int(n_iter) < 0):
        raise ValueError(f"n_oversamples and n_iter must be >= 0, got {n_oversamples}, {n_iter}")
    if method == "auto":
        method = "covariance" if n >= d else "svd"

    dt = T.dtype
    mu = T.mean(0)  # (d,); torch sums in blocks, accurate enough in float32
    Xc = T - mu  # (n, d), centred in the input dtype

    if method == "covariance":
        if Xc.device.type == "cpu":
            # BLAS syrk: the upper triangle of X_cᵀ X_c (d, d), half a GEMM's work; X_c (n, d)
            # C-ordered is X_cᵀ Fortran-ordered, so no copy.
            syrk = scipy.linalg.blas.dsyrk if dt == torch.float64 else scipy.linalg.blas.ssyrk
            C = np.asarray(syrk(1.0, Xc.numpy().T, trans=0), dtype=np.float64)
            lower = False
        else:
            C, lower = (Xc.T @ Xc).double().cpu().numpy(), True
        total = float(np.trace(C)) / n
        _check_total(total)
        # Only the top-k eigenpairs, in float64 (LAPACK syevr via scipy is much faster here
        # than a full torch.linalg.eigh).
        evals, evecs = scipy.linalg.eigh(C, lower=lower, subset_by_index=[d - k, d - 1],
                                         check_finite=False)
        order = np.argsort(evals)[::-1].copy()
        s = torch.from_numpy(np.sqrt(np.clip(evals[order], 0.0, None)))
        V = torch.from_numpy(np.ascontiguousarray(evecs[:, order]))  # (d, k)
    elif method == "svd":
        Xd = Xc.double()
        total = float(Xd.pow(2).sum()) / n
        _check_total(total)
        _, s, Vh = torch.linalg.svd(Xd, full_matrices=False)
        s, V = s[:k], Vh[:k].T
    else:
        total = float(Xc.pow(2).sum()) / n
        _check_total(total)
        with torch.random.fork_rng(devices=[]):  # leave the global RNG as it was
            torch.manual_seed(int(seed))
            q = min(k + int(n_oversamples), min(n, d))
            _, s, V = torch.svd_lowrank(Xc, q=q, niter=int(n_iter))
        s, V = s[:k].double(), V[:, :k].double()
    mu = mu.double().to(V.device)

    # sign convention of scikit-learn's PCA (svd_flip on V): largest |entry| of each column > 0
    idx = V.abs().argmax(0)
    signs = torch.sign(V[idx, torch.arange(k, device=V.device)])
    signs[signs == 0] = 1.0
    V = V * signs

    captured = float(s.pow(2).sum()) / n
    train_error = max(total - captured, 0.0)
    ev = s.pow(2) / (n - 1)
    if whiten:
        sigma = ev.sqrt()
        safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
        We, Wd = V.T / safe[:, None], V * safe
    else:
        We, Wd = V.T.clone(), V.clone()
    be, bd = -(We @ mu), mu

    def out(t: torch.Tensor):
        t = t.to(dtype=dt, device=T.device).contiguous()
        return t.numpy() if is_np else t

    return PCASolution(out(mu), out(V), out(s), out(ev), out(We), out(be), out(Wd), out(bd),
                       float(train_error), float(total))


@torch.no_grad()
def init_linear_ae_from_pca(model: LinearAE, X: Any, **kwargs: Any) -> LinearAE:
    """Set ``model``'s weights to the closed-form optimum :func:`pca_solution` of X, in place.

    ``W_e = V_kᵀ``, ``b_e = −V_kᵀ μ``, ``W_d = V_k``, ``b_d = μ`` (whitened variants with
    ``whiten=True``). For a tied model the shared weight is ``V_kᵀ``, whose transpose is the
    optimal decoder, so tying costs nothing here (unless ``whiten=True``, which needs
    ``W_d ≠ W_eᵀ`` and is refused).

    Parameters
    ----------
    model : LinearAE
        Its ``n_features`` must equal X's columns; its ``n_components`` is k.
    X : array-like or Tensor, shape (n, d)
    **kwargs
        Passed to :func:`pca_solution` (``method``, ``whiten``, ...).

    Returns
    -------
    LinearAE
        The same model, for chaining.

    References
    ----------
    Baldi & Hornik, Neural Networks 1989; Eckart & Young, Psychometrika 1936.
    """
    if not isinstance(model, LinearAE):
        raise ValueError(f"model must be a LinearAE, got {type(model).__name__}")
    T, _ = _as_float_tensor(X)
    if T.shape[1] != model.n_features:
        raise ValueError(f"X has {T.shape[1]} features, the model expects {model.n_features}")
    if model.tied and kwargs.get("whiten", False):
        raise ValueError("whiten=True needs an untied LinearAE (W_d = V_k diag(σ) ≠ W_eᵀ)")
    sol = pca_solution(T, model.n_components, **kwargs)
    p = model.encoder.weight
    model.encoder.weight.copy_(sol.encoder_weight.to(p.dtype))
    model.encoder.bias.copy_(sol.encoder_bias.to(p.dtype))
    if not model.tied:
        model.decoder.weight.copy_(sol.decoder_weight.to(p.dtype))
    model.decoder.bias.copy_(sol.decoder_bias.to(p.dtype))
    return model


def linear_ae_from_pca(X: Any, n_components: int, *, tied: bool = False,
                       **kwargs: Any) -> LinearAE:
    """A new :class:`LinearAE` holding the closed-form optimum for X (the "trained" linear AE).

    ``x̂ = V_k V_kᵀ (x − μ) + μ``, see :func:`pca_solution`. The model is float64 when X is
    float64, else float32.

    Parameters
    ----------
    X : array-like or Tensor, shape (n, d)
    n_components : int
        Code size k.
    tied : bool
        Build a tied model (optimal too, see :func:`init_linear_ae_from_pca`).
    **kwargs
        Passed to :func:`pca_solution`.

    Returns
    -------
    LinearAE

    References
    ----------
    Baldi & Hornik, Neural Networks 1989.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    >>> linear_ae_from_pca(X, 3).n_components
    3
    """
    T, _ = _as_float_tensor(X)
    model = LinearAE(T.shape[1], n_components, tied=tied).to(T.dtype)
    return init_linear_ae_from_pca(model, T, **kwargs)

