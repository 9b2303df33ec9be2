"""Encoder Jacobians, their spectrum and tangent directions; dataset activity; filter figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit import Batch, Contractive, DenseAE, LinearAE, activity_stats
from aekit.analysis import encoder_jacobian, jacobian_spectrum, tangent_directions, unit_activity
from aekit.plots import save_filter_grid, save_reconstruction_grid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_encoder_jacobian_matches_autograd_per_sample():
    torch.manual_seed(0)
    m = DenseAE([6, 9, 4], activation="tanh", code_activation="sigmoid").double()
    X = np.random.default_rng(0).normal(size=(7, 6))
    J = encoder_jacobian(m, X, batch_size=3)  # several chunks
    assert J.shape == (7, 4, 6) and J.dtype == torch.float64 and not J.requires_grad
    for i in range(7):
        xi = torch.as_tensor(X[i:i + 1])
        ref = torch.autograd.functional.jacobian(m.encode, xi).reshape(4, 6)
        torch.testing.assert_close(J[i], ref)


def test_spectrum_squares_sum_to_the_contractive_penalty():
    torch.manual_seed(1)
    m = DenseAE([8, 5], code_activation="sigmoid").double()
    x = torch.rand(10, 8, dtype=torch.float64)
    S = jacobian_spectrum(m, x)
    assert S.shape == (10, 5)
    assert (S[:, :-1] >= S[:, 1:]).all(), "singular values must be sorted, largest first"
    per_sample = S.pow(2).sum(1)
    torch.testing.assert_close(per_sample.mean(), Contractive(1.0)(m, Batch(x), m(x)))


def test_tangent_directions_of_a_linear_encoder_are_the_right_singular_vectors():
    torch.manual_seed(2)
    m = LinearAE(6, 3).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    V = tangent_directions(m, x, 2)
    assert V.shape == (4, 2, 6)
    _, _, Vh = torch.linalg.svd(m.encoder.weight.detach(), full_matrices=False)
    for i in range(4):
        # Unit vectors, orthogonal, equal to ±Vh rows; the sign convention is deterministic.
        torch.testing.assert_close(V[i] @ V[i].T, torch.eye(2, dtype=torch.float64))
        torch.testing.assert_close((V[i] * Vh[:2]).sum(1).abs(),
                                   torch.ones(2, dtype=torch.float64))
        torch.testing.assert_close(V[i], V[0])
    assert (V.gather(-1, V.abs().argmax(-1, keepdim=True)) > 0).all()


def test_tangent_directions_image_shape_and_validation():
    m = DenseAE([16, 5], code_activation="sigmoid")
    x = torch.rand(3, 16)
    assert tangent_directions(m, x, 2, image_shape=(4, 4)).shape == (3, 2, 4, 4)
    with pytest.raises(ValueError, match="n_dirs"):
        tangent_directions(m, x, 6)
    with pytest.raises(ValueError, match="n_dirs"):
        tangent_directions(m, x, 0)
    with pytest.raises(ValueError, match="image_shape"):
        tangent_directions(m, x, 2, image_shape=(3, 5))
    with pytest.raises(ValueError, match="shape"):
        encoder_jacobian(m, torch.rand(3, 15))


def test_analyses_keep_the_training_flag():
    m = DenseAE([5, 4], code_activation="sigmoid")
    m.train()
    encoder_jacobian(m, torch.rand(2, 5))
    unit_activity(m, torch.rand(2, 5))
    assert m.training


def test_unit_activity_equals_activity_stats_on_all_codes():
    torch.manual_seed(3)
    m = DenseAE([10, 12], code_activation="relu")
    with torch.no_grad():
        m.enc[0].bias[:3] = -100.0  # three units that never fire
    X = torch.rand(50, 10)
    s = unit_activity(m, X, batch_size=7)
    with torch.no_grad():
        ref = activity_stats(m.encode(X))
    assert s.dead_units == ref.dead_units >= 3
    assert s.mean_activation == pytest.approx(ref.mean_activation, rel=1e-6)
    assert s.fraction_active == pytest.approx(ref.fraction_active)
    torch.testing.assert_close(s.unit_frequency, ref.unit_frequency)
    torch.testing.assert_close(s.unit_mean, ref.unit_mean)


# ---------------------------------------------------------------- figures


def test_filter_grid_writes_a_png_atomically(tmp_path):
    m = DenseAE([64, 20], code_activation="sigmoid")
    p = save_filter_grid(m, tmp_path / "sub" / "filters.png", n=16)
    assert p.read_bytes()[:8] == PNG_MAGIC
    assert sorted(f.name for f in p.parent.iterdir()) == ["filters.png"], "temp file left"
    # Raw (k, d) matrices work too, with a non-square image shape.
    W = np.random.default_rng(0).random((5, 12))
    p2 = save_filter_grid(W, tmp_path / "w.png", image_shape=(3, 4), title="W")
    assert p2.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="square"):
        save_filter_grid(W, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_reconstruction_grid(tmp_path):
    x = torch.rand(12, 64)
    p = save_reconstruction_grid(x * 0.5, x, tmp_path / "rec.png", clean=x, n=6)
    assert p.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="one shape"):
        save_reconstruction_grid(x, x[:, :32], tmp_path / "bad.png")
