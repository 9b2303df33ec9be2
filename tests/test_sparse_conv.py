"""Convolutional sparse coding: the Fourier operator against direct convolution, FISTA
against a generic solver on the explicit matrix, filter learning."""

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from aekit.sparse import (
    csc_adjoint,
    csc_encode,
    csc_learn,
    csc_lipschitz,
    csc_objective,
    csc_reconstruct,
    fista,
    lasso_objective,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny FFTs and element-wise ops: thread start-up costs more than it saves, and the
    # test machines are shared.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _naive(Z, F):
    """Σ_j d_j * z_j by a loop over the filter taps with periodic shifts (the documented
    definition: centre c = ((fh − 1)//2, (fw − 1)//2))."""
    n, k, H, W = Z.shape
    _, fh, fw = F.shape
    ch, cw = (fh - 1) // 2, (fw - 1) // 2
    out = torch.zeros(n, H, W, dtype=Z.dtype)
    for j in range(k):
        for a in range(fh):
            for b in range(fw):
                out += F[j, a, b] * torch.roll(Z[:, j], shifts=(a - ch, b - cw), dims=(1, 2))
    return out


def _explicit(F, H, W):
    """The (H·W, k·H·W) matrix of Z ↦ Σ_j d_j * z_j, column by column."""
    k = F.shape[0]
    E = torch.eye(k * H * W, dtype=F.dtype).reshape(k * H * W, k, H, W)
    return csc_reconstruct(E, F).reshape(k * H * W, H * W).T


@pytest.mark.parametrize("fsize", [(5, 5), (4, 6), (3, 2), (1, 1)])
def test_fft_convolution_equals_direct(fsize):
    Z, F = _rand(2, 3, 11, 12, seed=1), _rand(3, *fsize, seed=2)
    A = csc_reconstruct(Z, F)
    torch.testing.assert_close(A, _naive(Z, F), rtol=0, atol=1e-12)
    ref = np.zeros((2, 11, 12))
    for i in range(2):
        for j in range(3):
            ref[i] += convolve2d(Z[i, j].numpy(), F[j].numpy(), mode="same", boundary="wrap")
    np.testing.assert_allclose(A.numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("fsize", [(5, 5), (4, 3)])
def test_adjoint_dot_product(fsize):
    Z, F, R = _rand(3, 4, 10, 9, seed=3), _rand(4, *fsize, seed=4), _rand(3, 10, 9, seed=5)
    lhs = float((csc_reconstruct(Z, F) * R).sum())
    rhs = float((Z * csc_adjoint(R, F)).sum())
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs), (lhs, rhs)


def test_lipschitz_is_largest_eigenvalue_of_explicit_operator():
    F = _rand(3, 3, 3, seed=6)
    A = _explicit(F, 6, 7)
    lam_max = float(torch.linalg.eigvalsh(A @ A.T)[-1])
    L = csc_lipschitz(F, (6, 7))
    assert L == pytest.approx(lam_max, rel=1e-10)


def test_fista_monotone_and_matches_generic_fista_on_explicit_matrix():
    H = W = 8
    F = torch.nn.functional.normalize(_rand(3, 3, 3, seed=7).flatten(1), dim=1).reshape(3, 3, 3)
    X = _rand(4, H, W, seed=8)
    lam = 0.3
    Z, info = csc_encode(X, F, lam, max_iter=3000, tol=1e-10)
    obj = np.array(info.objective)
    assert np.all(np.diff(obj) <= 1e-12 * obj[0]), f"max increase {np.diff(obj).max():.3e}"
    # The same Lasso with the explicit (64, 192) matrix as the dictionary.
    A = _explicit(F, H, W)
    Zg, _ = fista(X.reshape(4, H * W), A, lam, tol=1e-12, max_iter=20000)
    f_ref = lasso_objective(X.reshape(4, H * W), A, Zg, lam)[0]
    f = csc_objective(X, F, Z, lam)[0]
    assert f == pytest.approx(obj[-1], rel=1e-10)
    assert abs(f - f_ref) <= 1e-8 * f_ref, f"CSC {f!r} vs explicit FISTA {f_ref!r}"
    err = float((Z.reshape(4, -1) - Zg).abs().max())
    assert err < 1e-4, f"max |Z − Z_explicit| = {err:.2e}"


def test_encode_float32_positive_and_warm_start():
    X, F = _rand(2, 16, 16, seed=9, dtype=torch.float32), _rand(4, 5, 5, seed=10,
                                                                dtype=torch.float32) / 5
    Z, info = csc_encode(X, F, 0.1, positive=True, max_iter=200)
    assert Z.dtype == torch.float32 and Z.shape == (2, 4, 16, 16)
    assert float(Z.min()) >= 0
    _, info2 = csc_encode(X, F, 0.1, positive=True, init=Z, max_iter=200)
    assert info2.objective[0] == pytest.approx(info.objective[-1], rel=1e-5)
    assert info2.objective[-1] <= info2.objective[0] * (1 + 1e-6)


def test_encode_rejects_bad_input():
    X, F = _rand(2, 8, 8), _rand(3, 3, 3)
    with pytest.raises(ValueError, match="alpha"):
        csc_encode(X, F, -1.0)
    with pytest.raises(ValueError, match="do not fit"):
        csc_encode(X, _rand(3, 9, 3), 0.1)
    with pytest.raises(ValueError, match="dtype"):
        csc_encode(X, F.float(), 0.1)
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        csc_encode(X[0], F, 0.1)
    with pytest.raises(ValueError, match="init"):
        csc_encode(X, F, 0.1, init=torch.zeros(2, 3, 8, 7, dtype=X.dtype))


def test_learn_unit_norm_filters_and_lower_objective():
    # Images synthesised from 3 filters and sparse spikes.
    g = torch.Generator().manual_seed(11)
    true = torch.nn.functional.normalize(torch.randn(3, 25, generator=g), dim=1).reshape(3, 5, 5)
    spikes = torch.randn(4, 3, 20, 20, generator=g) * (torch.rand(4, 3, 20, 20, generator=g)
                                                       < 0.03)
    X = csc_reconstruct(spikes, true) + 0.01 * torch.randn(4, 20, 20, generator=g)
    lam = 0.05
    F, info = csc_learn(X, 3, 5, lam, max_iter=8, generator=torch.Generator().manual_seed(0))
    norms = torch.linalg.vector_norm(F.flatten(1), dim=1)
    torch.testing.assert_close(norms, torch.ones(3), rtol=0, atol=1e-5)
    assert F.shape == (3, 5, 5) and F.dtype == torch.float32
    obj = np.array(info.objective)
    assert obj[-1] < obj[0] and np.all(np.diff(obj) <= 1e-3 * obj[0]), obj
    # Learned filters explain the images better than where they started.
    from aekit.sparse import init_filters
    F0 = init_filters(X, 3, 5, generator=torch.Generator().manual_seed(0))
    f0 = csc_encode(X, F0, lam, max_iter=300)[1].objective[-1]
    f1 = csc_encode(X, F, lam, max_iter=300)[1].objective[-1]
    assert f1 < 0.9 * f0, f"objective with learned filters {f1:.4g} vs initial {f0:.4g}"


def test_learn_recovers_true_filters_from_a_nearby_start():
    # A wrong gradient, centring or step would walk away from the generating filters.
    g = torch.Generator().manual_seed(11)
    true = torch.nn.functional.normalize(torch.randn(3, 25, generator=g), dim=1).reshape(3, 5, 5)
    spikes = torch.randn(4, 3, 20, 20, generator=g) * (torch.rand(4, 3, 20, 20, generator=g)
                                                       < 0.03)
    X = csc_reconstruct(spikes, true) + 0.01 * torch.randn(4, 20, 20, generator=g)
    F0 = true + 0.1 * torch.randn(3, 5, 5, generator=g)
    cos0 = torch.nn.functional.normalize(F0.flatten(1), dim=1).mul(true.flatten(1)).sum(1)
    F, _ = csc_learn(X, 3, 5, 0.05, max_iter=10, filters_init=F0)
    cos = F.flatten(1).mul(true.flatten(1)).sum(1)
    assert float(cos0.max()) < 0.9 and float(cos.min()) > 0.99, (cos0, cos)
