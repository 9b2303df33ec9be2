"""Regularised AEs trained with the one fit loop on scikit-learn digits (fixed seeds).

Each fit is a 64-100 net for a few hundred Adam steps (about a second on one core).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from aekit import DenseAE, Objective, fit
from aekit.analysis import jacobian_spectrum, unit_activity
from aekit.corruption import Masking
from aekit.objectives import Contractive, DeadUnitEntropy, KLSparsity, L1Activity

EPOCHS, BATCH, LR = 30, 50, 3e-3


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # These nets are tiny: one thread avoids oversubscribing a shared CPU (10x faster here).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data(digits):
    tr, te = digits
    return torch.from_numpy(tr.X), torch.from_numpy(te.X)


def train(code_activation: str, terms=(), corruption=None, X=None, seed: int = 0,
          k: int = 100) -> DenseAE:
    torch.manual_seed(seed)
    m = DenseAE([64, k], code_activation=code_activation, output="sigmoid")
    fit(m, Objective("bce", list(terms)), X, corruption=corruption, max_iter=EPOCHS,
        batch_size=BATCH, learning_rate=LR, random_state=seed)
    return m


@torch.no_grad()
def sse(m: DenseAE, x_in: torch.Tensor, x_clean: torch.Tensor) -> float:
    """Σ_pixels (x̂ − x)² per image, averaged; x̂ from x_in, error against the clean x."""
    return float((m(x_in).reconstruction - x_clean).pow(2).sum(1).mean())


def test_denoising_ae_reconstructs_masked_inputs_better(data):
    Xtr, Xte = data
    X_masked = Masking(0.25)(Xte, torch.Generator().manual_seed(123))
    plain = train("sigmoid", X=Xtr)
    dae = train("sigmoid", corruption=Masking(0.25), X=Xtr)
    e_plain, e_dae = sse(plain, X_masked, Xte), sse(dae, X_masked, Xte)
    # Measured: plain 2.04, DAE 1.61 (squared error per 64-pixel image).
    assert e_dae < 0.9 * e_plain, f"DAE {e_dae:.3f} vs plain AE {e_plain:.3f} on masked inputs"


def test_denoising_training_is_deterministic(data):
    Xtr, _ = data
    kw = dict(max_iter=2, batch_size=BATCH, learning_rate=LR, random_state=5,
              corruption=Masking(0.3))
    ws = []
    for _ in range(2):
        torch.manual_seed(0)
        m = DenseAE([64, 16], code_activation="sigmoid", output="sigmoid")
        fit(m, Objective("bce"), Xtr[:300], **kw)
        ws.append(m.enc[0].weight.detach().clone())
    assert torch.equal(ws[0], ws[1])


def test_kl_sparse_ae_mean_activation_is_near_rho(data):
    Xtr, Xte = data
    rho = 0.1
    m = train("sigmoid", [KLSparsity(rho, beta=1.0)], X=Xtr)
    plain_act = unit_activity(train("sigmoid", X=Xtr), Xte).mean_activation
    act = unit_activity(m, Xte).mean_activation
    # Measured: 0.121 with the penalty, about 0.5 without.
    assert rho / 1.5 <= act <= rho * 1.5, f"mean test activation {act:.4f}, target rho={rho}"
    assert act < plain_act, f"KL {act:.3f} vs plain {plain_act:.3f}"


def test_l1_reduces_mean_activity(data):
    Xtr, Xte = data
    base = unit_activity(train("relu", X=Xtr), Xte)
    l1 = unit_activity(train("relu", [L1Activity(0.03)], X=Xtr), Xte)
    # Measured: 1.29 -> 0.26 mean activation, 0.92 -> 0.50 fraction active.
    assert l1.mean_activation < 0.5 * base.mean_activation, \
        f"L1 {l1.mean_activation:.3f} vs none {base.mean_activation:.3f}"
    assert l1.fraction_active < base.fraction_active


def test_dead_unit_entropy_keeps_l1_sparse_units_alive(data):
    Xtr, Xte = data
    l1 = train("relu", [L1Activity(0.1)], X=Xtr)
    l1_ent = train("relu", [L1Activity(0.1), DeadUnitEntropy(1.0)], X=Xtr)
    dead, dead_ent = unit_activity(l1, Xte).dead_units, unit_activity(l1_ent, Xte).dead_units
    # Measured: 20 dead units of 100 with L1 alone, 0 with the entropy term.
    assert dead_ent < dead and dead_ent <= 2, f"dead units: L1 {dead}, L1 + entropy {dead_ent}"


def test_lbfgs_full_batch_contractive_decreases_the_objective(data):
    Xtr, _ = data
    X = Xtr[:400].double()
    torch.manual_seed(0)
    m = DenseAE([64, 32], code_activation="sigmoid", output="sigmoid").double()
    obj = Objective("bce", [Contractive(0.1)])
    with torch.no_grad():
        j0, _ = obj(m, X)
    hist = fit(m, obj, X, optimizer="lbfgs", learning_rate=1.0, max_iter=4, lbfgs_max_iter=15)
    with torch.no_grad():
        j1, parts1 = obj(m, X)
    losses = hist["train_loss"]
    assert j1 < 0.7 * j0, f"objective {float(j0):.3f} -> {float(j1):.3f}"
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(losses)), losses
    assert float(parts1["contractive"]) > 0


def test_contractive_ae_is_more_contractive(data):
    Xtr, Xte = data
    plain = train("sigmoid", X=Xtr, k=64)
    cae = train("sigmoid", [Contractive(0.3)], X=Xtr, k=64)
    f_plain = jacobian_spectrum(plain, Xte[:50]).pow(2).sum(1).mean()
    f_cae = jacobian_spectrum(cae, Xte[:50]).pow(2).sum(1).mean()
    # Measured: mean ‖J‖²_F 39 (plain) vs 4.2 (CAE) on 50 test digits.
    assert f_cae < 0.5 * f_plain, f"‖J‖²_F: CAE {f_cae:.3f} vs plain {f_plain:.3f}"


def test_closed_form_and_autograd_train_the_same_model(data):
    Xtr, _ = data
    X = Xtr[:100].double()
    ws = {}
    for method in ("closed_form", "autograd"):
        torch.manual_seed(0)
        m = DenseAE([64, 16], code_activation="sigmoid", output="sigmoid").double()
        fit(m, Objective("bce", [Contractive(0.2, method=method)]), X, max_iter=3,
            batch_size=25, learning_rate=1e-2, random_state=0)
        ws[method] = m.enc[0].weight.detach()
    torch.testing.assert_close(ws["closed_form"], ws["autograd"], rtol=1e-9, atol=1e-11)
