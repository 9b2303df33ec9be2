"""Lasso / OMP solvers against scikit-learn and against the theory."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso, orthogonal_mp

from aekit.sparse import (
    coordinate_descent,
    feature_sign,
    fista,
    homotopy,
    ista,
    lasso_objective,
    lipschitz_constant,
    omp,
    sparse_encode,
)
from aekit.sparse._homotopy_kernel import AVAILABLE as NUMBA_AVAILABLE

LAM = 0.2


def _problem(d, k, n=6, seed=0, dtype=torch.float64, corr=0.0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(d, k, generator=g, dtype=dtype)
    if corr:  # correlated atoms: an ill-conditioned Gram matrix
        D = D + corr * torch.randn(d, 1, generator=g, dtype=dtype)
    D = torch.nn.functional.normalize(D, dim=0)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    return X, D


def _sklearn_codes(X, D, lam, positive=False):
    d = D.shape[0]
    # Lasso minimises (1/(2d))‖x − Dz‖² + (λ/d)‖z‖₁ = (1/d)·[our objective]
    return torch.tensor(np.array([
        Lasso(alpha=lam / d, fit_intercept=False, tol=1e-12, max_iter=200000,
              positive=positive).fit(D.numpy(), x).coef_ for x in X.numpy()]))


SOLVERS = {
    "fista": lambda X, D, **kw: fista(X, D, LAM, tol=1e-10, max_iter=20000, **kw),
    "ista": lambda X, D, **kw: ista(X, D, LAM, tol=1e-11, max_iter=200000, **kw),
    "cd": lambda X, D, **kw: coordinate_descent(X, D, LAM, tol=1e-10, max_iter=20000, **kw),
    "feature_sign": lambda X, D, **kw: feature_sign(X, D, LAM, **kw),
    "homotopy": lambda X, D, **kw: homotopy(X, D, LAM, **kw),
}


# (20, 30): k <= 2d, Gram path; (10, 40): k > 2d, residual path
@pytest.mark.parametrize("shape", [(20, 30), (10, 40)])
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_reaches_sklearn_lasso_objective(name, positive, shape):
    X, D = _problem(*shape)
    ref = _sklearn_codes(X, D, LAM, positive)
    Z, info = SOLVERS[name](X, D, positive=positive)
    f, f_ref = lasso_objective(X, D, Z, LAM)[0], lasso_objective(X, D, ref, LAM)[0]
    assert f <= f_ref + 1e-9 * abs(f_ref), f"{name}: objective {f!r} vs sklearn {f_ref!r}"
    err = float((Z - ref).abs().max())
    assert err < 1e-5, f"{name}: max |Z − Z_sklearn| = {err:.2e}"
    assert info.converged and Z.dtype == X.dtype
    assert abs(info.objective[-1] - f) <= 1e-9 * abs(f), "trace ends at the returned codes"
    if positive:
        assert float(Z.min()) >= 0.0


@pytest.mark.parametrize("fn", [ista, coordinate_descent])
@pytest.mark.parametrize("shape", [(20, 30), (10, 40)])
def test_monotone_solvers_never_increase_the_objective(fn, shape):
    X, D = _problem(*shape, corr=1.0)
    _, info = fn(X, D, LAM, tol=0.0, max_iter=300)
    inc = np.diff(info.objective)
    assert inc.max() <= 1e-12 * info.objective[0], f"largest increase {inc.max():.3e}"


def test_fista_rate_bound_and_restart_speedup():
    X, D = _problem(10, 40, corr=2.0)
    z_star, _ = fista(X, D, LAM, tol=1e-13, max_iter=100000)
    f_star = lasso_objective(X, D, z_star, LAM)[0]
    L = lipschitz_constant(D)
    _, info = fista(X, D, LAM, tol=0.0, max_iter=300, restart=False)
    # Beck & Teboulle Thm 4.4 from z0 = 0, averaged over samples
    r0 = float(z_star.pow(2).sum(1).mean())
    for t, f in enumerate(info.objective[1:], start=1):
        bound = 2 * L * r0 / (t + 1) ** 2
        assert f - f_star <= bound + 1e-12, f"t={t}: gap {f - f_star:.3e} > bound {bound:.3e}"
    _, plain = fista(X, D, LAM, tol=1e-8, max_iter=100000, restart=False)
    _, rest = fista(X, D, LAM, tol=1e-8, max_iter=100000, restart=True)
    assert rest.n_iter < plain.n_iter, f"restart {rest.n_iter} vs plain {plain.n_iter} iters"


@pytest.mark.parametrize("name", ["fista", "cd", "homotopy"])
def test_float32_matches_float64(name):
    X, D = _problem(16, 32, n=20)
    lam = 0.5
    Z64, i64 = sparse_encode(X, D, algorithm=name, alpha=lam, tol=1e-10, max_iter=20000)
    Z32, i32 = sparse_encode(X.float(), D.float(), algorithm=name, alpha=lam, tol=1e-6,
                             max_iter=20000)
    assert Z32.dtype == torch.float32 and i32.converged
    rel = abs(i32.objective[-1] - i64.objective[-1]) / i64.objective[-1]
    assert rel < 1e-6, f"objective float32 vs float64: relative difference {rel:.2e}"
    err = float((Z32.double() - Z64).abs().max() / Z64.abs().max())
    assert err < 1e-3, f"max code difference {err:.2e} (relative to max |z|)"


def test_warm_start_from_the_solution_stops_at_once():
    X, D = _problem(16, 48)
    Z, _ = fista(X, D, LAM, tol=1e-12, max_iter=20000)
    Z2, info = fista(X, D, LAM, tol=1e-6, init=Z)
    assert info.n_iter <= 2, f"{info.n_iter} iterations from the optimum"
    assert torch.allclose(Z, Z2, atol=1e-9)


def test_omp_recovers_a_planted_support():
    g = torch.Generator().manual_seed(3)
    d, k, n, s = 64, 128, 50, 5
    D = torch.nn.functional.normalize(torch.randn(d, k, generator=g, dtype=torch.float64), dim=0)
    Z_true = torch.zeros(n, k, dtype=torch.float64)
    for i in range(n):
        idx = torch.randperm(k, generator=g)[:s]
        Z_true[i, idx] = (torch.sign(torch.randn(s, generator=g))
                          * (1 + torch.rand(s, generator=g))).double()
    X = Z_true @ D.T
    for kw in ({"n_nonzero_coefs": s}, {"tol": 1e-10}):
        Z, info = omp(X, D, **kw, chunk_size=16)  # several chunks
        same = ((Z != 0) == (Z_true != 0)).all(1).float().mean().item()
        assert same == 1.0, f"{kw}: support recovered for {same:.0%} of samples"
        err = float((Z - Z_true).abs().max())
        assert err < 1e-8, f"{kw}: coefficient error {err:.2e}"
        assert info.converged


def test_omp_matches_sklearn_on_noisy_data():
    X, D = _problem(32, 64, n=40, seed=4)
    Z, _ = omp(X, D, n_nonzero_coefs=6)
    ref = orthogonal_mp(D.numpy(), X.numpy().T, n_nonzero_coefs=6).T
    err = float(np.abs(Z.numpy() - ref).max())
    assert err < 1e-8, f"max |Z − Z_sklearn| = {err:.2e}"
    Z32, _ = omp(X.float(), D.float(), n_nonzero_coefs=6)
    assert Z32.dtype == torch.float32 and ((Z32 != 0) == (Z != 0)).all()


def test_threshold_and_dispatcher():
    X, D = _problem(8, 8)
    Z, _ = sparse_encode(X, D, algorithm="threshold", alpha=0.3)
    C = X @ D
    assert torch.allclose(Z, torch.sign(C) * (C.abs() - 0.3).clamp_min(0))
    Za, _ = sparse_encode(X, D, algorithm="lasso_cd", alpha=LAM)
    Zb, _ = sparse_encode(X, D, algorithm="cd", alpha=LAM)
    assert torch.equal(Za, Zb)


def test_bad_inputs_raise_naming_the_argument():
    X, D = _problem(8, 12)
    cases = [
        (dict(X=X, D=D, alpha=-1.0), "alpha"),
        (dict(X=X[0], D=D, alpha=0.1), "X must have shape"),
        (dict(X=X, D=D[:5], alpha=0.1), "features"),
        (dict(X=X.float(), D=D, alpha=0.1), "dtype"),
        (dict(X=torch.full_like(X, float("nan")), D=D, alpha=0.1), "X contains NaN"),
        (dict(X=X, D=torch.cat([D[:, :3], torch.zeros(8, 1, dtype=D.dtype)], 1), alpha=0.1),
         "zero-norm"),
    ]
    for kw, msg in cases:
        for name in ("fista", "ista", "cd", "feature_sign"):
            with pytest.raises(ValueError, match=msg):
                sparse_encode(kw["X"], kw["D"], algorithm=name, alpha=kw["alpha"])
    with pytest.raises(ValueError, match="algorithm"):
        sparse_encode(X, D, algorithm="lars")
    with pytest.raises(ValueError, match="positive"):
        sparse_encode(X, D, algorithm="omp", positive=True)
    with pytest.raises(ValueError, match="n_nonzero_coefs"):
        omp(X, D, n_nonzero_coefs=0)
    with pytest.raises(ValueError, match="max_iter"):
        fista(X, D, 0.1, max_iter=0)
    with pytest.raises(ValueError, match="init"):
        fista(X, D, 0.1, init=torch.zeros(3, 3, dtype=X.dtype))


# ------------------------------------------------------------------------------ homotopy

def _hard_problem(n=300, d=16, k=64, seed=1, dtype=torch.float64):
    """Correlated, unequal-norm atoms and signals of varied sparsity."""
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(d, k, generator=g, dtype=dtype) + 0.5 * torch.randn(d, 1, generator=g,
                                                                         dtype=dtype)
    D = D * torch.linspace(0.5, 2.0, k, dtype=dtype)  # column norms vary
    Z0 = torch.randn(n, k, generator=g, dtype=dtype) * (torch.rand(n, k, generator=g) < 0.1)
    X = Z0 @ D.T + 0.1 * torch.randn(n, d, generator=g, dtype=dtype)
    return X, D


def _lars_codes(X, D, lam, positive=False):
    """scikit-learn's LARS-Lasso, one sample at a time (the exact reference)."""
    from sklearn.linear_model import LassoLars
    d = D.shape[0]
    return torch.tensor(np.array([
        LassoLars(alpha=lam / d, fit_intercept=False, positive=positive, max_iter=10_000)
        .fit(D.numpy(), x).coef_ for x in X.numpy()]))


BACKENDS = ["torch", pytest.param("numba", marks=pytest.mark.skipif(
    not NUMBA_AVAILABLE, reason="numba is not installed"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_homotopy_is_exact_on_a_hard_batch(dtype, positive, backend):
    X, D = _hard_problem()
    # references: scikit-learn's LARS; for positive codes feature-sign (scikit-learn's
    # positive LARS stops short of the optimum on this problem)
    ref = (feature_sign(X, D, 1.0, tol=1e-12, positive=True)[0] if positive
           else _lars_codes(X, D, 1.0))
    Z, info = homotopy(X.to(dtype), D.to(dtype), 1.0, positive=positive, backend=backend)
    assert Z.dtype == dtype and info.converged
    f, f_ref = lasso_objective(X, D, Z.double(), 1.0)[0], lasso_objective(X, D, ref, 1.0)[0]
    rel = (f - f_ref) / f_ref
    assert rel < (1e-10 if dtype == torch.float64 else 1e-6), f"relative gap {rel:.2e}"
    err = float((Z.double() - ref).abs().max())
    assert err < (1e-6 if dtype == torch.float64 else 1e-3), f"max |Z − Z_lars| = {err:.2e}"
    if positive:
        assert bool((Z >= 0).all())
    # KKT in float64: |d_jᵀr| ≤ λ everywhere, = λ·sign(z_j) on the support
    Rf = (X - Z.double() @ D.T) @ D
    nz = Z != 0
    worst = float((Rf if positive else Rf.abs()).max())
    assert worst <= 1.0 + 1e-4, f"max correlation {worst:.6f} > λ = 1"
    assert float((Rf[nz] - torch.sign(Z.double()[nz])).abs().max()) < 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_homotopy_fallbacks_keep_it_exact(backend):
    X, D = _hard_problem(n=60)
    ref = _lars_codes(X, D, 1.0)
    f_ref = lasso_objective(X, D, ref, 1.0)[0]
    # a float32 input checked at an impossible tolerance: every row fails the check (torch:
    # walked again in float64; numba: finished by coordinate descent)
    Z32, _ = homotopy(X.float(), D.float(), 1.0, tol=1e-12, backend=backend)
    rel = (lasso_objective(X, D, Z32.double(), 1.0)[0] - f_ref) / f_ref
    assert rel < 1e-6, f"fallback after a failed check: relative gap {rel:.2e}"
    # a float64 walk cut after 2 steps: wrong supports, finished by coordinate descent
    X, D = _problem(16, 32, n=30)
    ref = _lars_codes(X, D, LAM)
    Z2, info2 = homotopy(X, D, LAM, max_iter=2, backend=backend)
    rel = (lasso_objective(X, D, Z2, LAM)[0] - lasso_objective(X, D, ref, LAM)[0]) / f_ref
    assert info2.converged and rel < 1e-6, f"coordinate-descent fallback: gap {rel:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_homotopy_duplicate_atoms_stay_exact(backend):
    """Two identical atoms make G_AA singular once both would be active: the walk must not
    return garbage (numba: the Cholesky update refuses the second copy; the sample is then
    finished by coordinate descent)."""
    X, D = _hard_problem(n=40, k=24)
    D = torch.cat([D, D[:, :4]], 1)  # atoms 24..27 repeat atoms 0..3
    Z, info = homotopy(X, D, 0.5, backend=backend)
    ref, _ = coordinate_descent(X, D, 0.5, max_iter=20_000, tol=1e-12)
    f, f_ref = lasso_objective(X, D, Z, 0.5)[0], lasso_objective(X, D, ref, 0.5)[0]
    assert (f - f_ref) / f_ref < 1e-8, f"objective {f:.10f} vs coordinate descent {f_ref:.10f}"
    assert info.converged


def test_homotopy_backends_agree_and_bad_backend():
    X, D = _hard_problem(n=200)
    Zt, _ = homotopy(X, D, 0.7, backend="torch")
    Za, _ = homotopy(X, D, 0.7)  # auto: numba where installed
    assert float((Zt - Za).abs().max()) < 1e-8
    with pytest.raises(ValueError, match="backend"):
        homotopy(X, D, 0.7, backend="cuda")


def test_homotopy_trivial_cases_and_errors():
    X, D = _hard_problem(n=5)
    lam_max = float((X @ D).abs().max())
    Z, info = homotopy(X, D, lam_max * 1.01)
    assert bool((Z == 0).all()) and info.converged
    Z, _ = sparse_encode(torch.tensor([[2.0, 0.5, -3.0]]), torch.eye(3), algorithm="lasso_lars",
                         alpha=1.0)
    assert torch.equal(Z, torch.tensor([[1.0, 0.0, -2.0]]))
    with pytest.raises(ValueError, match="alpha"):
        homotopy(X, D, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        homotopy(X, D, float("nan"))
