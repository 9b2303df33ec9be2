"""Topographic sparse coding: the pooled penalty, its gradient, inference, and a topographic
map learned on natural-image patches."""

import numpy as np
import pytest
import torch

from aekit.sparse import (
    topographic_encode,
    topographic_learn,
    topographic_objective,
    topographic_penalty,
    topographic_pooling,
    topography_score,
)
from aekit.sparse.patches import natural_image_patches


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small matrices: thread start-up costs more than it saves on the shared test machines.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_pooling_matrix_wraps_around():
    P = topographic_pooling((4, 5), 3, dtype=torch.float64)
    assert P.shape == (20, 20)
    torch.testing.assert_close(P, P.T)
    assert torch.all(P.sum(1) == 9)
    # Unit 0 (row 0, col 0) pools rows {3, 0, 1} x cols {4, 0, 1} on the torus.
    expect = {r * 5 + c for r in (3, 0, 1) for c in (4, 0, 1)}
    assert set(torch.nonzero(P[0]).flatten().tolist()) == expect
    assert torch.all(topographic_pooling((4, 4), 1) == torch.eye(16))
    with pytest.raises(ValueError, match="neighbourhood"):
        topographic_pooling((4, 4), 2)


def test_penalty_equals_formula_and_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    P = topographic_pooling((4, 4), 3, dtype=torch.float64)
    Z = torch.randn(3, 16, generator=g, dtype=torch.float64)
    Z[0, :5] = 0.0  # the gradient is smooth at zero too (eps > 0)
    lam, eps = 0.7, 1e-2
    val, grad = topographic_penalty(Z, P, lam, eps)
    ref = torch.stack([lam * sum(torch.sqrt(sum(Z[i, j] ** 2 for j in range(16) if P[gi, j])
                                            + eps) for gi in range(16)) for i in range(3)])
    torch.testing.assert_close(val, ref)
    h = 1e-6
    fd = torch.zeros_like(Z)
    for j in range(16):
        e = torch.zeros_like(Z)
        e[:, j] = h
        fd[:, j] = (topographic_penalty(Z + e, P, lam, eps)[0]
                    - topographic_penalty(Z - e, P, lam, eps)[0]) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)


def test_encode_monotone_and_stationary():
    g = torch.Generator().manual_seed(1)
    D = torch.nn.functional.normalize(torch.randn(12, 16, generator=g, dtype=torch.float64), dim=0)
    X = torch.randn(5, 12, generator=g, dtype=torch.float64)
    lam, eps = 0.3, 1e-2
    Z, info = topographic_encode(X, D, (4, 4), alpha=lam, eps=eps, max_iter=5000, tol=1e-12)
    obj = np.array(info.objective)
    assert np.all(np.diff(obj) <= 1e-12 * obj[0]), f"max increase {np.diff(obj).max():.3e}"
    P = topographic_pooling((4, 4), 3, dtype=torch.float64)
    assert obj[-1] == pytest.approx(topographic_objective(X, D, Z, P, lam, eps)[0], rel=1e-10)
    # Smooth objective: the gradient vanishes at the minimiser.
    grad = (Z @ D.T - X) @ D + topographic_penalty(Z, P, lam, eps)[1]
    assert float(grad.abs().max()) < 1e-6, float(grad.abs().max())
    # Same answer as a generic optimiser on the same energy.
    Zt = torch.zeros_like(Z, requires_grad=True)
    opt = torch.optim.LBFGS([Zt], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f = 0.5 * (X - Zt @ D.T).pow(2).sum() + topographic_penalty(Zt, P, lam, eps)[0].sum()
        f.backward()
        return f
    opt.step(closure)
    torch.testing.assert_close(Z, Zt.detach(), rtol=0, atol=1e-5)


def test_encode_rejects_bad_input():
    D = torch.nn.functional.normalize(torch.randn(8, 16), dim=0)
    X = torch.randn(3, 8)
    with pytest.raises(ValueError, match="grid"):
        topographic_encode(X, D, (3, 4))
    with pytest.raises(ValueError, match="eps"):
        topographic_encode(X, D, (4, 4), eps=0.0)
    with pytest.raises(ValueError, match="alpha"):
        topographic_encode(X, D, (4, 4), alpha=-1.0)


def test_learned_map_is_topographic():
    X = natural_image_patches(2000, 6, generator=torch.Generator().manual_seed(0))
    D, info = topographic_learn(X, (8, 8), alpha=0.3, eps=1e-2, max_iter=2, batch_size=250,
                                solver_max_iter=50, generator=torch.Generator().manual_seed(1))
    assert D.shape == (36, 64) and D.dtype == torch.float32
    torch.testing.assert_close(torch.linalg.vector_norm(D, dim=0), torch.ones(64))
    assert info.objective[-1] < info.objective[0], info.objective
    s = topography_score(D, (8, 8))
    assert s.ratio > 1.15, f"neighbours {s.neighbour:.3f} vs distant pairs {s.distant:.3f}"
    # The same atoms on a shuffled grid lose the structure.
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(3))
    s_shuf = topography_score(D[:, perm], (8, 8))
    assert s_shuf.ratio < s.ratio - 0.1, (s, s_shuf)
    # Phase-invariant comparison (amplitude spectra) agrees.
    spectral = topography_score(D, (8, 8), patch_shape=(6, 6))
    assert spectral.neighbour > spectral.distant, spectral
