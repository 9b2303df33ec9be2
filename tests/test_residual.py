"""ResidualAE starts as PCA, and early stopping from the start never ends worse than PCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit import fit, make_objective
from aekit.models import ResidualAE, pca_solution
from aekit.train import evaluate


def _pca_recon(Xtr, X, k):
    sol = pca_solution(Xtr, k)
    return (X - sol.mean) @ sol.components @ sol.components.T + sol.mean


def test_untrained_model_reproduces_pca():
    X = torch.randn(300, 20, dtype=torch.float64) @ torch.randn(20, 20, dtype=torch.float64)
    m = ResidualAE(20, 4, hidden=[32, 16]).double().init_pca(X)
    with torch.no_grad():
        got = m(X).reconstruction
    want = _pca_recon(X, X, 4)
    err = float((got - want).abs().max())
    assert err < 1e-10, f"max |ResidualAE - PCA| = {err:.3g}"
    with pytest.raises(ValueError, match="needs more than n_components"):
        ResidualAE(20, 4).init_pca(X[:4])


def _split(g, n, d, noise):
    Z = g.normal(size=(n, 3))
    X = np.tanh(Z @ g.normal(size=(3, d))) + noise * g.normal(size=(n, d))
    return X.astype(np.float32)


def test_early_stopping_from_the_start_never_ends_worse_than_pca():
    """60 noisy training rows, a 256-unit residual branch and 150 epochs overfit; with the
    start scored too, the validation error stays at or below PCA's."""
    g = np.random.default_rng(0)
    Xtr, Xva = _split(g, 60, 40, 0.5), _split(g, 500, 40, 0.5)
    torch.manual_seed(0)
    m = ResidualAE(40, 5, hidden=[256]).init_pca(Xtr)
    obj = make_objective("mse")
    pca = evaluate(m, obj, Xva)["recon"]
    h = fit(m, obj, Xtr, val=Xva, max_iter=150, batch_size=16, learning_rate=1e-2,
            monitor="val_recon",
            early_stopping=200, include_start=True)
    end = evaluate(m, obj, Xva)["recon"]
    assert min(h["val_recon"]) > pca or h.best_epoch > 0  # either it overfit or it helped
    assert end <= pca * (1 + 1e-6), f"validation error {end:.4f} vs PCA {pca:.4f}"
    if h.best_epoch == 0:  # kept the start: exactly PCA again
        assert end == pytest.approx(pca, rel=1e-6)


def test_nonlinear_data_improves_on_pca():
    """Points on a circle in 10-D: one code unit; PCA-1 keeps a line, the residual AE bends."""
    g = np.random.default_rng(1)
    t = g.uniform(0, 2 * np.pi, size=2000)
    C = np.stack([np.cos(t), np.sin(t)], 1) @ g.normal(size=(2, 10))
    X = (C + 0.02 * g.normal(size=C.shape)).astype(np.float32)
    Xtr, Xva = X[:1500], X[1500:]
    torch.manual_seed(0)
    m = ResidualAE(10, 2, hidden=[64]).init_pca(Xtr)
    obj = make_objective("mse")
    pca = evaluate(m, obj, Xva)["recon"]
    m1 = ResidualAE(10, 1, hidden=[64, 64]).init_pca(Xtr)
    pca1 = evaluate(m1, obj, Xva)["recon"]
    fit(m1, obj, Xtr, val=Xva, max_iter=60, batch_size=64, learning_rate=3e-3, monitor="val_recon",
        include_start=True, early_stopping=60)
    end = evaluate(m1, obj, Xva)["recon"]
    assert end < 0.5 * pca1, (f"1-D code: residual AE {end:.4f} vs PCA-1 {pca1:.4f} "
                              f"(PCA-2 {pca:.4f})")


def test_include_start_needs_a_validation_monitor():
    m = ResidualAE(4, 2, hidden=[3])
    with pytest.raises(ValueError, match="include_start needs a validation monitor"):
        fit(m, make_objective("mse"), np.random.default_rng(0).random((20, 4)), include_start=True)
