"""Proximal operators against their definitions, by brute-force minimisation."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from aekit.sparse import (
    group_soft_threshold,
    hard_threshold,
    project_nonneg,
    project_unit_norm,
    soft_threshold,
)

GRID = np.linspace(-6.0, 6.0, 240001)  # step 5e-5


def _grid_argmin(f):
    return GRID[np.argmin(f(GRID))]


@pytest.mark.parametrize("positive", [False, True])
def test_soft_threshold_is_prox_of_l1(positive):
    rng = np.random.default_rng(0)
    for v, t in zip(rng.uniform(-4, 4, 25), rng.uniform(0, 2, 25)):
        def f(z, v=v, t=t):
            val = 0.5 * (z - v) ** 2 + t * np.abs(z)
            return np.where(z < 0, np.inf, val) if positive else val
        ref = _grid_argmin(f)
        got = soft_threshold(torch.tensor([v], dtype=torch.float64), t, positive=positive).item()
        assert abs(got - ref) <= 1e-4, f"v={v:.4f} t={t:.4f}: prox {got:.6f} vs grid {ref:.6f}"


def test_hard_threshold_is_prox_of_l0():
    rng = np.random.default_rng(1)
    for v, t in zip(rng.uniform(-4, 4, 25), rng.uniform(0.1, 2, 25)):
        # ½(z − v)² + (t²/2)·1[z ≠ 0] on a grid that contains 0 exactly
        def f(z, v=v, t=t):
            return 0.5 * (z - v) ** 2 + 0.5 * t * t * (z != 0)
        ref = _grid_argmin(f)
        got = hard_threshold(torch.tensor([v], dtype=torch.float64), t).item()
        assert abs(got - ref) <= 1e-4, f"v={v:.4f} t={t:.4f}: prox {got:.6f} vs grid {ref:.6f}"


def test_group_soft_threshold_minimises_its_objective():
    rng = np.random.default_rng(2)
    groups = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    for trial in range(8):
        v = rng.normal(size=7) * 1.5
        t = float(rng.uniform(0.2, 2.0))

        def obj(z, v=v, t=t):
            s = 0.5 * np.sum((z - v) ** 2)
            return s + t * sum(np.linalg.norm(z[groups.numpy() == g]) for g in range(3))

        got = group_soft_threshold(torch.tensor(v), t, groups).numpy()
        best = min((minimize(obj, x0, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14})
                    for x0 in (v, got + 1e-3, np.zeros(7))), key=lambda r: r.fun)
        assert obj(got) <= best.fun + 1e-9, f"trial {trial}: prox {obj(got)} > scipy {best.fun}"
    # one group = whole vector
    v = torch.tensor([3.0, 4.0])
    assert torch.allclose(group_soft_threshold(v, 1.0), v * 0.8)
    assert torch.equal(group_soft_threshold(v, 5.0), torch.zeros(2))


def test_projections():
    g = torch.Generator().manual_seed(0)
    D = torch.randn(8, 5, generator=g)
    D[:, 2] = 0.0
    D[:, 3] *= 1e-3
    P = project_unit_norm(D)
    norms = torch.linalg.vector_norm(P, dim=0)
    assert torch.allclose(norms[[0, 1, 3, 4]], torch.ones(4), atol=1e-6), norms
    assert torch.equal(P[:, 2], torch.zeros(8)), "zero atoms are left unchanged"
    B = project_unit_norm(D, ball=True)
    assert torch.equal(B[:, 3], D[:, 3]), "atoms inside the ball are unchanged"
    assert float(torch.linalg.vector_norm(B, dim=0).max()) <= 1 + 1e-6
    assert torch.equal(project_nonneg(torch.tensor([-1.0, 0.0, 2.0])), torch.tensor([0, 0, 2.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_batching_and_no_mutation(dtype):
    x = torch.randn(3, 4, 5, dtype=dtype)
    x0 = x.clone()
    thr = torch.full((5,), 0.3, dtype=dtype)  # per-coordinate thresholds broadcast
    for out in (soft_threshold(x, 0.3), soft_threshold(x, thr), hard_threshold(x, 0.3),
                group_soft_threshold(x, 0.3), project_unit_norm(x), project_nonneg(x)):
        assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(soft_threshold(x, 0.3), soft_threshold(x, thr))
    assert torch.equal(x, x0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="thresh"):
        soft_threshold(torch.ones(3), -1.0)
    with pytest.raises(ValueError, match="thresh"):
        hard_threshold(torch.ones(3), float("nan"))
    with pytest.raises(ValueError, match="groups"):
        group_soft_threshold(torch.ones(3), 1.0, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="D must"):
        project_unit_norm(torch.ones(3))
