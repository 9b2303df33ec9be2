"""Dictionary learning (batch and online) and natural-image patches."""

import numpy as np
import pytest
import torch

from aekit.sparse import (
    dict_learning,
    dict_learning_online,
    fista,
    lasso_objective,
    update_dictionary,
)
from aekit.sparse.patches import (
    apply_zca,
    center_patches,
    extract_patches,
    fit_zca,
    load_photos,
    natural_image_patches,
)


@pytest.fixture(scope="module")
def patches():
    return natural_image_patches(1500, 8, generator=torch.Generator().manual_seed(0),
                                 dtype=torch.float64)


def _unit(D):
    return float((torch.linalg.vector_norm(D, dim=0) - 1).abs().max())


def test_batch_learning_is_monotone_with_unit_atoms(patches):
    g = torch.Generator().manual_seed(1)
    D, Z, info = dict_learning(patches[:500], 24, alpha=0.5, max_iter=8, tol=0.0, method="cd",
                               generator=g)
    assert _unit(D) < 1e-10, f"atom norms off by {_unit(D):.2e}"
    inc = np.diff(info.objective)
    # exact block minimisation over D, monotone CD over Z (warm-started): never up
    assert inc.max() <= 1e-9 * info.objective[0], f"objective rose by {inc.max():.3e}"
    assert info.objective[-1] < 0.9 * info.objective[0], info.objective
    assert Z.shape == (500, 24) and D.shape == (64, 24)


def test_atom_update_is_exact_block_minimiser():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(200, 6, generator=g, dtype=torch.float64)
    D0 = torch.nn.functional.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=0)
    Z, _ = fista(X, D0, 0.1)
    A, B = Z.T @ Z / 200, X.T @ Z / 200
    D1 = update_dictionary(D0, A, B)

    def surrogate(D):
        return float(0.5 * torch.trace(D.T @ D @ A) - torch.trace(D.T @ B))
    # any other unit-norm choice of the first atom (others fixed at D1's) is no better
    for _ in range(200):
        Dp = D1.clone()
        Dp[:, 0] = torch.nn.functional.normalize(
            D1[:, 0] + 0.3 * torch.randn(6, generator=g, dtype=torch.float64), dim=0)
        if Dp[:, 1:].equal(D1[:, 1:]):
            assert surrogate(D1) <= surrogate(Dp) + 1e-12


def test_online_learning_matches_sklearn(patches):
    from sklearn.decomposition import MiniBatchDictionaryLearning
    Xt = patches[:1000]
    state, info = dict_learning_online(Xt, 32, alpha=0.5, max_iter=3, batch_size=100,
                                       generator=torch.Generator().manual_seed(0), tol=0.0,
                                       max_no_improvement=None)
    assert _unit(state.D) < 1e-10 and info.n_iter == 30 and state.n_steps == 30
    sk = MiniBatchDictionaryLearning(32, alpha=0.5, max_iter=3, batch_size=100, tol=0.0,
                                     max_no_improvement=None, random_state=0,
                                     fit_algorithm="cd").fit(Xt.numpy())
    D_sk = torch.from_numpy(sk.components_.T.copy())

    def full_objective(D):
        return lasso_objective(Xt, D, fista(Xt, D, 0.5, tol=1e-6)[0], 0.5)[0]
    ours, theirs = full_objective(state.D), full_objective(D_sk)
    assert ours <= 1.03 * theirs, f"objective ours {ours:.4f} vs sklearn {theirs:.4f}"


def test_warm_start_seed_and_resume(patches):
    X = patches[:600]
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    D1, _, i1 = dict_learning(X[:300], 16, alpha=0.5, max_iter=4, generator=g())
    D2, _, _ = dict_learning(X[:300], 16, alpha=0.5, max_iter=4, generator=g())
    assert torch.equal(D1, D2), "same seed, same dictionary"
    _, _, i3 = dict_learning(X[:300], 16, alpha=0.5, max_iter=1, dict_init=D1, generator=g())
    assert i3.objective[0] <= i1.objective[-1] * (1 + 1e-6), (i3.objective[0], i1.objective)
    s1, _ = dict_learning_online(X, 16, alpha=0.5, max_iter=1, batch_size=100, generator=g())
    s2, _ = dict_learning_online(X, 16, alpha=0.5, max_iter=1, batch_size=100, state=s1,
                                 generator=g())
    assert s2.n_steps == s1.n_steps + 6


def test_early_stopping_on_tolerance(patches):
    _, _, info = dict_learning(patches[:300], 16, alpha=0.5, max_iter=500, tol=1e-2,
                               generator=torch.Generator().manual_seed(0))
    assert info.converged and info.n_iter < 500


def test_bad_arguments(patches):
    X = patches[:50]
    with pytest.raises(ValueError, match="n_components"):
        dict_learning(X, 0)
    with pytest.raises(ValueError, match="alpha"):
        dict_learning_online(X, 4, alpha=-1.0)
    with pytest.raises(ValueError, match="method"):
        dict_learning(X, 4, method="omp")
    with pytest.raises(ValueError, match="dict_init"):
        dict_learning(X, 4, dict_init=torch.zeros(64, 4, dtype=X.dtype))
    with pytest.raises(ValueError, match="X contains NaN"):
        dict_learning(torch.full_like(X, float("nan")), 4)


def test_patches_and_whitening():
    imgs = load_photos(("camera", "china"))
    assert all(im.ndim == 2 and 0 <= float(im.min()) and float(im.max()) <= 1 for im in imgs)
    P1 = extract_patches(imgs, 12, 300, generator=torch.Generator().manual_seed(0))
    P2 = extract_patches(imgs, 12, 300, generator=torch.Generator().manual_seed(0))
    assert P1.shape == (300, 144) and torch.equal(P1, P2)
    # every patch is a real window: on an image with unique pixel values, each one is found
    img = torch.arange(20 * 24, dtype=torch.float64).reshape(20, 24)
    P = extract_patches(img, 5, 50, generator=torch.Generator().manual_seed(1))
    windows = img.unfold(0, 5, 1).unfold(1, 5, 1).reshape(-1, 25)
    assert all(bool((windows == p).all(1).any()) for p in P)
    C = center_patches(P1.double())
    assert float(C.mean(1).abs().max()) < 1e-12
    eps = 1e-4
    zca = fit_zca(C, eps=eps)
    W = apply_zca(C, zca)
    # whitened covariance = U diag(s / (s + eps)) Uᵀ: spectrum s/(s+eps), ≈ 1 where s >> eps
    Cc = C - C.mean(0)
    s_ = torch.linalg.eigvalsh(Cc.T @ Cc / len(C)).clamp_min(0)
    eig = torch.linalg.eigvalsh(W.T @ W / len(W))
    err = float((eig - s_ / (s_ + eps)).abs().max())
    assert err < 1e-8, f"whitened spectrum off by {err:.2e}"
    assert float(torch.linalg.eigvalsh(zca.W).min()) > 0 and torch.allclose(zca.W, zca.W.T)
    assert torch.allclose(apply_zca(W, zca, inverse=True), C, atol=1e-8)
