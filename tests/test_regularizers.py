"""Regularisation terms equal their formulas; the contractive closed form equals the Jacobian."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import jacrev, vmap

from aekit import DenseAE, LinearAE, Objective
from aekit.analysis import activity_stats, batch_jacobian
from aekit.data.batch import Batch
from aekit.models.base import AEOutput
from aekit.objectives import (
    Contractive,
    DeadUnitEntropy,
    KLSparsity,
    L1Activity,
    kl_bernoulli,
)


def fake_out(code: torch.Tensor, pre: torch.Tensor | None = None) -> AEOutput:
    z = torch.zeros(code.shape[0], 3, dtype=code.dtype)
    return AEOutput(code, z, z, (code if pre is None else pre,))


def sigmoid_ae(d=7, k=5, **kw) -> DenseAE:
    return DenseAE([d, k], code_activation="sigmoid", output="sigmoid", **kw).double()


def jacobian_sq_norm(model, x) -> torch.Tensor:
    """Reference: mean over samples of ‖∂f(x_i)/∂x‖²_F from an explicit jacrev per sample."""
    f = lambda xi: model.encode(xi.unsqueeze(0)).squeeze(0)  # noqa: E731
    J = vmap(jacrev(f))(x)  # (n, k, d)
    return J.pow(2).sum((1, 2)).mean()


# ---------------------------------------------------------------- L1 and KL


def test_l1_activity_hand_value():
    code = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    # mean over samples of Σ_j |h_ij| = (3 + 3) / 2 = 3
    assert L1Activity(0.5)(None, None, fake_out(code)).item() == pytest.approx(1.5)
    assert L1Activity(0.0)(None, None, fake_out(code)).item() == 0.0


def test_kl_bernoulli_is_zero_at_target_and_matches_formula():
    rho = 0.05
    assert kl_bernoulli(rho, torch.tensor([rho], dtype=torch.float64)).item() == pytest.approx(
        0.0, abs=1e-15)
    q = torch.tensor([0.5, 0.2, 0.01], dtype=torch.float64)
    ref = [rho * math.log(rho / v) + (1 - rho) * math.log((1 - rho) / (1 - v)) for v in q.tolist()]
    assert kl_bernoulli(rho, q).tolist() == pytest.approx(ref, rel=1e-12)
    assert (kl_bernoulli(rho, torch.rand(100)) >= 0).all()
    # Saturated units give a large finite penalty, not inf/NaN.
    assert torch.isfinite(kl_bernoulli(rho, torch.tensor([0.0, 1.0]))).all()


def test_kl_sparsity_term_hand_value():
    m = sigmoid_ae(3, 2)
    code = torch.tensor([[0.2, 0.9], [0.0, 0.5]], dtype=torch.float64)  # ρ̂ = (0.1, 0.7)
    rho, beta = 0.1, 2.0
    ref = beta * (0.0 + rho * math.log(rho / 0.7) + (1 - rho) * math.log((1 - rho) / 0.3))
    assert KLSparsity(rho, beta)(m, None, fake_out(code)).item() == pytest.approx(ref)
    code_at_target = torch.full((4, 2), rho, dtype=torch.float64)
    assert KLSparsity(rho, beta)(m, None, fake_out(code_at_target)).item() == \
        pytest.approx(0.0, abs=1e-14)


@pytest.mark.parametrize("act", ["relu", "linear", "topk:2"])
def test_kl_sparsity_needs_sigmoid_code(act):
    m = DenseAE([4, 3], code_activation=act)
    x = torch.rand(5, 4)
    obj = Objective("mse", [KLSparsity(0.05, 1.0)])
    with pytest.raises(ValueError, match="code_activation='sigmoid'"):
        obj(m, x)
    with pytest.raises(ValueError, match="code_activation='sigmoid'"):
        Objective("mse", [KLSparsity(0.05)])(LinearAE(4, 2), x)


# ---------------------------------------------------------------- dead units


def test_dead_unit_entropy_formula_and_dead_count():
    pre = torch.tensor([[1.0, -1.0, -5.0], [2.0, 0.5, -4.0]], dtype=torch.float64)
    code = pre.clamp_min(0)  # ReLU code; unit 2 is off on every sample
    t = DeadUnitEntropy(0.3)
    assert t.n_dead == -1
    v = t(None, None, fake_out(code, pre)).item()
    m = [sum(math.log1p(math.exp(a)) for a in col) / 2 for col in zip(*pre.tolist())]
    p = [mj / sum(m) for mj in m]
    H = -sum(pj * math.log(pj) for pj in p)
    assert v == pytest.approx(0.3 * (math.log(3) - H), rel=1e-12)
    assert t.n_dead == 1
    # Equal activity in every unit: maximal entropy, zero penalty.
    eq = torch.ones(4, 6)
    assert t(None, None, fake_out(eq, eq)).item() == pytest.approx(0.0, abs=1e-6)
    assert t.n_dead == 0


def test_dead_unit_entropy_pushes_the_dead_unit_up():
    pre = torch.tensor([[1.0, 0.5, -3.0], [2.0, 1.0, -4.0]], requires_grad=True)
    DeadUnitEntropy(1.0)(None, None, fake_out(pre.clamp_min(0), pre)).backward()
    # Gradient descent raises a_ij where the gradient is negative: the dead unit's column.
    assert (pre.grad[:, 2] < 0).all(), pre.grad
    assert (pre.grad[:, 0] > 0).all(), pre.grad


def test_activity_stats_hand_case():
    H = torch.tensor([[0.0, 1.0, 0.0, 0.2], [0.0, 3.0, 0.5, 0.0]])
    s = activity_stats(H)
    assert s.mean_activation == pytest.approx(4.7 / 8)
    assert s.fraction_active == pytest.approx(4 / 8)
    assert s.dead_units == 1
    assert s.unit_frequency.tolist() == [0.0, 1.0, 0.5, 0.5]
    assert activity_stats(H, threshold=0.3).dead_units == 2
    with pytest.raises(ValueError, match="codes"):
        activity_stats(torch.zeros(3))


# ---------------------------------------------------------------- contractive


def test_contractive_hand_value():
    m = sigmoid_ae(2, 1)
    with torch.no_grad():
        m.enc[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        m.enc[0].bias.zero_()
    x = torch.zeros(1, 2, dtype=torch.float64)  # h = 0.5, h(1-h) = 0.25
    v = Contractive(2.0)(m, Batch(x), m(x)).item()
    assert v == pytest.approx(2.0 * 0.25**2 * (1 + 4))


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "linear"])
@pytest.mark.parametrize("tied", [False, True])
def test_contractive_closed_form_equals_jacobian_norm(act, tied):
    torch.manual_seed(1)
    m = DenseAE([7, 5], code_activation=act, tied=tied).double()
    with torch.no_grad():
        m.enc[0].bias.normal_()
    x = torch.randn(9, 7, dtype=torch.float64)
    t = Contractive(0.7, method="closed_form")
    assert t.resolve_method(m) == "closed_form"
    v = t(m, Batch(x), m(x))
    ref = 0.7 * jacobian_sq_norm(m, x)
    torch.testing.assert_close(v, ref, rtol=1e-12, atol=1e-14)
    v_auto = Contractive(0.7, method="autograd")(m, Batch(x), m(x))
    torch.testing.assert_close(v_auto, ref, rtol=1e-12, atol=1e-14)


def test_contractive_closed_form_gradient_matches_autograd_path():
    torch.manual_seed(2)
    m = sigmoid_ae(6, 4, tied=True)
    x = torch.rand(11, 6, dtype=torch.float64)
    grads = {}
    for method in ("closed_form", "autograd"):
        m.zero_grad()
        Contractive(0.5, method=method)(m, Batch(x), m(x)).backward()
        grads[method] = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
    assert set(grads["closed_form"]) == set(grads["autograd"]) == {"enc.0.weight", "enc.0.bias"}
    for n, g in grads["closed_form"].items():
        torch.testing.assert_close(g, grads["autograd"][n], rtol=1e-10, atol=1e-12)


def test_contractive_gradcheck_closed_form():
    torch.manual_seed(3)
    m = sigmoid_ae(4, 3)
    x = torch.rand(5, 4, dtype=torch.float64)
    W, b = m.enc[0].weight, m.enc[0].bias
    term = Contractive(1.0, method="closed_form")

    def f(W_, b_):
        with torch.no_grad():
            W.copy_(W_)
            b.copy_(b_)
        # Functional re-evaluation so gradcheck differentiates through W_ and b_.
        a = x @ W_.T + b_
        h = torch.sigmoid(a)
        return (((h * (1 - h)) ** 2) @ W_.pow(2).sum(1)).mean()

    W0, b0 = W.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (W0, b0))
    torch.testing.assert_close(term(m, Batch(x), m(x)), f(W0, b0).detach())


def test_contractive_deep_encoder_uses_exact_jacobian():
    torch.manual_seed(4)
    m = DenseAE([6, 8, 3], activation="tanh", code_activation="sigmoid").double()
    x = torch.randn(7, 6, dtype=torch.float64)
    t = Contractive(1.5)
    assert t.resolve_method(m) == "autograd"
    v = t(m, Batch(x), m(x))
    ref = 1.5 * torch.stack([
        torch.autograd.functional.jacobian(m.encode, xi.unsqueeze(0)).pow(2).sum()
        for xi in x]).mean()
    torch.testing.assert_close(v, ref, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="closed_form"):
        Contractive(1.0, method="closed_form")(m, Batch(x), m(x))


def test_contractive_overcomplete_topk_uses_forward_mode():
    torch.manual_seed(5)
    m = DenseAE([4, 10], code_activation="topk:3").double()  # k > d: jacfwd
    x = torch.randn(6, 4, dtype=torch.float64)
    J = batch_jacobian(m, x)
    ref = torch.stack([torch.autograd.functional.jacobian(m.encode, xi.unsqueeze(0))
                       .reshape(10, 4) for xi in x])
    torch.testing.assert_close(J, ref)


def test_contractive_is_evaluated_at_the_encoder_input():
    m = sigmoid_ae(5, 4)
    x = torch.rand(6, 5, dtype=torch.float64)
    xt = torch.zeros_like(x)
    for method in ("closed_form", "autograd"):
        v = Contractive(1.0, method=method)(m, Batch(x, xt), m(xt))
        torch.testing.assert_close(v, jacobian_sq_norm(m, xt))


def test_contractive_linear_ae_is_frobenius_norm_of_w():
    m = LinearAE(6, 3).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    v = Contractive(0.1)(m, Batch(x), m(x))
    torch.testing.assert_close(v, 0.1 * m.encoder.weight.pow(2).sum())


def test_batch_jacobian_restores_training_mode_and_handles_batch_norm():
    m = DenseAE([5, 6, 3], batch_norm=True, dropout=0.2, code_activation="sigmoid").double()
    m.train()
    x = torch.randn(8, 5, dtype=torch.float64)
    J = batch_jacobian(m, x)
    assert m.training and J.shape == (8, 3, 5)
    m.eval()
    ref = torch.autograd.functional.jacobian(m.encode, x[:1]).reshape(3, 5)
    torch.testing.assert_close(J[0], ref)


def test_objective_breakdown_names():
    m = sigmoid_ae(5, 4)
    x = torch.rand(3, 5, dtype=torch.float64)
    terms = [L1Activity(0.1), KLSparsity(0.1, 0.5), DeadUnitEntropy(0.1), Contractive(0.1)]
    total, parts = Objective("bce", terms)(m, x)
    assert set(parts) == {"recon", "l1_activity", "kl_sparsity", "dead_unit_entropy",
                          "contractive"}
    torch.testing.assert_close(total, sum(parts.values()))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("make,name", [
    (lambda: L1Activity(-1.0), "lam"),
    (lambda: KLSparsity(0.05, beta=-1.0), "beta"),
    (lambda: KLSparsity(0.0), "rho"),
    (lambda: KLSparsity(1.0), "rho"),
    (lambda: KLSparsity(float("nan")), "rho"),
    (lambda: DeadUnitEntropy(-0.1), "lam"),
    (lambda: Contractive(-0.1), "lam"),
    (lambda: Contractive(float("inf")), "lam"),
    (lambda: Contractive(0.1, method="finite_difference"), "method"),
    (lambda: Contractive(0.1, chunk_size=0), "chunk_size"),
])
def test_bad_parameters_raise_naming_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_batch_jacobian_on_a_slice_of_a_larger_batch():
    # A slice shares storage with its base; torch.func must see only the slice (k > d: jacfwd).
    torch.manual_seed(6)
    m = DenseAE([5, 8], code_activation="sigmoid").double()
    X = torch.rand(500, 5, dtype=torch.float64)
    torch.testing.assert_close(batch_jacobian(m, X[100:][:4]),
                               batch_jacobian(m, X[100:104].clone()))


def test_activity_monitor_logs_every_epoch():
    import numpy as np

    from aekit import DenseAE, fit, make_objective
    from aekit.analysis import ActivityMonitor

    X = np.random.default_rng(0).random((200, 12)).astype(np.float32)
    torch.manual_seed(0)
    m = DenseAE([12, 16], code_activation="relu", output="sigmoid")
    h = fit(m, make_objective("bce", l1=0.5), X, max_iter=6, learning_rate=1e-2,
            callbacks=[ActivityMonitor(X[:100])])
    frac = h["code_fraction_active"]
    assert len(frac) == 6 and all(0.0 <= f <= 1.0 for f in frac)
    assert frac[-1] < frac[0], f"L1 should reduce activity: {frac}"
    assert all(isinstance(r["code_dead_units"], int) for r in h.records)
