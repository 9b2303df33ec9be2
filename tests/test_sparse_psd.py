"""Predictive sparse decomposition: energy, training, encoder vs optimal codes."""

import pytest
import torch

from aekit.models.psd import PSD, psd_energy, psd_report
from aekit.sparse import lasso_objective
from aekit.sparse.patches import natural_image_patches
from aekit.train.psd import fit_psd


@pytest.fixture(scope="module")
def trained():
    g = torch.Generator().manual_seed(0)
    X = natural_image_patches(3000, 8, generator=g)
    model, hist = fit_psd(X[:2500], 48, alpha=0.5, max_iter=4, batch_size=100, generator=g)
    return model, hist, X[2500:]


def test_energy_is_its_formula():
    g = torch.Generator().manual_seed(1)
    x, z, zp = (torch.randn(4, 6, generator=g), torch.randn(4, 9, generator=g),
                torch.randn(4, 9, generator=g))
    D = torch.randn(6, 9, generator=g)
    e = psd_energy(x, z, D, zp, lam=0.3, alpha=2.0)
    for i in range(4):
        ref = (0.5 * torch.sum((x[i] - D @ z[i]) ** 2) + 0.3 * z[i].abs().sum()
               + 1.0 * torch.sum((z[i] - zp[i]) ** 2))
        assert torch.isclose(e[i], ref, rtol=1e-5), (e[i], ref)


def test_training_lowers_energy_and_keeps_unit_atoms(trained):
    model, hist, _ = trained
    assert hist.energy[-1] < 0.8 * hist.energy[0], f"energy per epoch {hist.energy}"
    assert hist.prediction[-1] < hist.prediction[0], f"prediction term {hist.prediction}"
    norms = torch.linalg.vector_norm(model.D, dim=0)
    assert float((norms - 1).abs().max()) < 1e-5


def test_encoder_approximates_optimal_codes_fast(trained):
    model, _, Xte = trained
    rep = psd_report(model, Xte, 0.5, repeats=2)
    # the encoder's codes recover most of the objective decrease that the optimum achieves
    closed = (rep.zero_objective - rep.encoder_objective) / (rep.zero_objective
                                                            - rep.optimal_objective)
    assert closed > 0.5, f"encoder closes {closed:.0%} of the gap; report {rep}"
    assert rep.rel_code_error < 1.0, f"relative code error {rep.rel_code_error:.3f}"
    assert rep.speedup > 5, f"encoder only {rep.speedup:.1f}x faster than FISTA"
    f_opt = lasso_objective(Xte, model.D, torch.zeros(len(Xte), 48), 0.5)[0]
    assert abs(f_opt - rep.zero_objective) < 1e-6 * f_opt


def test_sigmoid_encoder_gives_nonnegative_codes():
    g = torch.Generator().manual_seed(2)
    X = natural_image_patches(400, 8, generator=g)
    model, _ = fit_psd(X, 16, encoder="sigmoid", max_iter=1, generator=g)
    with torch.no_grad():
        assert float(model.encode(X).min()) >= 0


def test_bad_arguments():
    X = torch.randn(10, 4)
    with pytest.raises(ValueError, match="encoder"):
        PSD(4, 8, encoder="relu")
    with pytest.raises(ValueError, match="prediction_weight"):
        fit_psd(X, 8, prediction_weight=0.0)
    with pytest.raises(ValueError, match="alpha"):  # the ℓ1 weight, as the solvers' alpha
        fit_psd(X, 8, alpha=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        fit_psd(X, 8, max_iter=0)
    with pytest.raises(ValueError, match="learning_rate"):
        fit_psd(X, 8, learning_rate=float("nan"))
    with pytest.raises(ValueError, match="dict_learning_rate"):
        fit_psd(X, 8, dict_learning_rate=-0.1)


def test_shrink_encoder_starts_at_thresholding_and_improves():
    """encoder="shrink": F(x) = g ⊙ S_b(Wx) starts at S_λ(Dᵀx) and training brings its codes
    closer to the optimum than that starting point; its codes contain exact zeros."""
    from aekit.sparse.prox import soft_threshold

    g = torch.Generator().manual_seed(3)
    X = natural_image_patches(3000, 8, generator=g)
    Xtr, Xte = X[:2500], X[2500:]
    model0, _ = fit_psd(Xtr, 48, alpha=0.5, encoder="shrink", max_iter=1, learning_rate=0.0,
                        dict_learning_rate=0.0, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = soft_threshold(Xte @ model0.D, 0.5)
        assert torch.allclose(model0.encode(Xte), ref, atol=1e-6)
    model, _ = fit_psd(Xtr, 48, alpha=0.5, encoder="shrink", max_iter=4, batch_size=100,
                       generator=torch.Generator().manual_seed(4))
    rep = psd_report(model, Xte, 0.5, repeats=1)
    with torch.no_grad():
        Z = model.encode(Xte)
        f_thr = lasso_objective(Xte, model.D, soft_threshold(Xte @ model.D, 0.5), 0.5)[0]
    closed = (rep.zero_objective - rep.encoder_objective) / (rep.zero_objective
                                                            - rep.optimal_objective)
    closed_thr = (rep.zero_objective - f_thr) / (rep.zero_objective - rep.optimal_objective)
    assert closed > max(closed_thr, 0.5), (
        f"trained shrink encoder closes {closed:.0%} of the gap, thresholding {closed_thr:.0%}")
    assert float((Z == 0).float().mean()) > 0.3, "shrink codes should contain exact zeros"
