"""Virtual adversarial training: the power method against a brute-force KL Hessian, the
penalty against its second-order expansion, shared dropout masks, seeding, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aekit.classifier import AutoencoderClassifier
from aekit.objectives import vat_direction, vat_loss


def _net(dropout: float = 0.3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Dropout(dropout), nn.Linear(9, 4),
                         nn.Tanh(), nn.Linear(4, 3)).double().train()


def _kl_hessian(model: nn.Module, x: torch.Tensor, i: int, rng: torch.Tensor) -> torch.Tensor:
    """Brute force ∇²_r KL(p(x_i) ‖ p(x_i + r)) at r = 0 = J_iᵀ (diag p − p pᵀ) J_i, with the
    dropout masks that ``rng`` draws, from the full Jacobian (float64)."""
    def logits_i(xi):
        torch.set_rng_state(rng)
        X = x.clone()
        X[i] = xi
        return model(X)[i]

    J = torch.autograd.functional.jacobian(logits_i, x[i])  # (C, d)
    with torch.no_grad():
        p = F.softmax(logits_i(x[i]), dim=0)
    return J.T @ (torch.diag(p) - torch.outer(p, p)) @ J


def test_direction_is_the_hessian_power_step_with_shared_masks():
    """One power step is H_i d_i / ‖H_i d_i‖ exactly, with H_i built from the masks of the
    clean pass; many steps reach the top eigenvector (ratio of eigenvalues printed)."""
    model = _net()
    x = torch.randn(5, 6, dtype=torch.float64)
    d0 = torch.randn(5, 6, dtype=torch.float64)
    rng = torch.get_rng_state()
    one = vat_direction(model, x, d0=d0)
    torch.set_rng_state(rng)
    many = vat_direction(model, x, d0=d0, n_power=80)
    assert one.shape == x.shape
    for i in range(len(x)):
        H = _kl_hessian(model, x, i, rng)
        hd = H @ d0[i]
        err = float((hd / hd.norm() - one[i]).abs().max())
        assert err < 1e-12, f"sample {i}: one power step differs from H d/|H d| by {err:.2e}"
        w, V = torch.linalg.eigh(H)
        cos = float(abs(V[:, -1] @ many[i]))
        assert cos > 1 - 1e-8, (f"sample {i}: |cos| to the top eigenvector {cos:.10f} "
                                f"(λ1/λ2 = {float(w[-1] / w[-2]):.2f})")


def test_penalty_matches_second_order_expansion():
    """KL(p(x) ‖ p(x + ε v)) = ½ ε² vᵀHv + O(ε³): with shared dropout masks the penalty
    vanishes like ε² (separate masks would leave an O(1) KL), and with v the top eigenvector
    the penalty / ε² tends to mean_i λ_max,i / 2."""
    model = _net()
    x = torch.randn(4, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    rng = torch.get_rng_state()
    lam = np.mean([float(torch.linalg.eigvalsh(_kl_hessian(model, x, i, rng))[-1])
                   for i in range(len(x))])
    ce = None
    ratios = []
    for eps in (1e-2, 1e-3):
        torch.set_rng_state(rng)
        total = vat_loss(model, x, y, eps, n_power=80)
        torch.set_rng_state(rng)
        ce = F.cross_entropy(model(x), y)
        ratios.append(float((total - ce).detach()) / eps**2)
    rel = [abs(r - lam / 2) / (lam / 2) for r in ratios]
    assert rel[-1] < 1e-2 and rel[-1] < rel[0] + 1e-12, (
        f"penalty/ε² {ratios} against λ_max/2 = {lam / 2:.6g} (relative errors {rel})")


def test_loss_is_clean_ce_plus_kl_at_the_adversarial_point():
    """In eval mode the loss equals CE(x) + α mean KL(p(x) ‖ p(x + ε·direction)) computed by
    hand from the same random start; ε = 0 or α = 0 give the clean cross-entropy."""
    model = _net().eval()
    x = torch.randn(7, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (7,))
    torch.manual_seed(3)
    got = vat_loss(model, x, y, 0.7, alpha=2.5)
    torch.manual_seed(3)
    with torch.no_grad():
        logits = model(x)
    d0 = torch.randn(x.shape, dtype=x.dtype)
    r = 0.7 * vat_direction(model, x, d0=d0)
    with torch.no_grad():
        logp = F.log_softmax(logits, 1)
        kl = (logp.exp() * (logp - F.log_softmax(model(x + r), 1))).sum(1).mean()
        want = F.cross_entropy(logits, y) + 2.5 * kl
    assert abs(float(got) - float(want)) < 1e-12, (float(got), float(want))
    assert float(kl) > 0
    clean = float(F.cross_entropy(logits, y))
    assert float(vat_loss(model, x, y, 0.0)) == pytest.approx(clean, abs=1e-14)
    assert float(vat_loss(model, x, y, 1.0, alpha=0.0)) == pytest.approx(clean, abs=1e-14)


def test_seeded_and_rng_advances_like_one_pass():
    """Two calls from one seed give the same loss and gradients; afterwards the global RNG is
    where one forward pass and the draw of the start direction leave it."""
    model = _net()
    x = torch.randn(8, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (8,))
    grads = []
    for _ in range(2):
        torch.manual_seed(11)
        model.zero_grad()
        vat_loss(model, x, y, 0.5).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        after = torch.rand(3)
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(11)
    model(x)
    torch.randn(x.shape, dtype=x.dtype)
    assert torch.equal(torch.rand(3), after)


def test_bf16_autocast_close_to_fp32():
    """The bf16 path (float32 model) gives the fp32 loss within bf16 rounding."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5)).train()
    x, y = torch.rand(16, 20), torch.randint(0, 5, (16,))
    torch.manual_seed(1)
    fp32 = float(vat_loss(model, x, y, 1.0))
    torch.manual_seed(1)
    dtypes = []
    hook = model[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    bf16 = float(vat_loss(model, x, y, 1.0, autocast_bf16=True))
    hook.remove()
    assert abs(bf16 - fp32) < 0.05 * abs(fp32), (fp32, bf16)
    # the passes really ran under autocast (clean, power step, perturbed): bf16 matmuls
    assert dtypes and all(d == torch.bfloat16 for d in dtypes), dtypes


@pytest.mark.parametrize("kw, match", [
    ({"eps": -1.0}, "eps"), ({"eps": float("inf")}, "eps"), ({"alpha": -0.5}, "alpha"),
    ({"n_power": 0}, "n_power"), ({"n_power": 1.5}, "n_power"), ({"n_power": True}, "n_power"),
])
def test_bad_arguments(kw, match):
    model = _net()
    x, y = torch.randn(3, 6, dtype=torch.float64), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=match):
        vat_loss(model, x, y, **{"eps": 1.0, **kw})
    with pytest.raises(ValueError, match="d0"):
        vat_direction(model, x, d0=torch.randn(3, 5, dtype=torch.float64))


def test_vat_fine_tuning_on_digits(digits):
    """The estimator with vat_eps trains a working, seeded classifier that differs from the
    plain one (the penalty is used); it refuses a frozen encoder and FGSM by name."""
    tr, te = digits
    kw = dict(n_components=16, hidden_layer_sizes=(64,), pretrain_max_iter=3, max_iter=30,
              learning_rate=3e-3, random_state=0)
    clf = AutoencoderClassifier(vat_eps=0.2, **kw).fit(tr.X, tr.y)
    acc = clf.score(te.X, te.y)
    assert acc > 0.9, f"VAT fine-tuned accuracy {acc:.4f}"
    again = AutoencoderClassifier(vat_eps=0.2, **kw).fit(tr.X, tr.y)
    np.testing.assert_array_equal(clf.predict_proba(te.X), again.predict_proba(te.X))
    plain = AutoencoderClassifier(**kw).fit(tr.X, tr.y)  # same seed, no penalty
    assert clf.loss_curve_[0] != plain.loss_curve_[0], "vat_eps did not change the objective"
    assert not np.array_equal(clf.predict_proba(te.X), plain.predict_proba(te.X))
    for bad, match in (({"vat_eps": 0.5, "freeze_encoder": True}, "vat_eps"),
                       ({"vat_eps": 0.5, "adversarial_eps": 0.1}, "alternatives"),
                       ({"vat_eps": -1.0}, "vat_eps"), ({"vat_eps": "x"}, "vat_eps")):
        with pytest.raises(ValueError, match=match):
            AutoencoderClassifier(max_iter=1, pretrain_max_iter=1,
                                  **bad).fit(tr.X[:50], tr.y[:50])


def test_confident_float32_model_does_not_underflow():
    """A float32 linear softmax whose wrong-class probabilities are ~1e-26: H d is ~1e-26,
    whose squares underflow float32. The directions still have unit norm and match the
    float64 computation, and the penalty stays at its float64 value (no blow-up)."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    with torch.no_grad():
        model.weight.mul_(0.05)
        model.bias.copy_(torch.tensor([60.0, 0.0, 0.0]))
    x, d0 = torch.rand(5, 6), torch.randn(5, 6)
    got = vat_direction(model, x, d0=d0)
    want = vat_direction(_as_double(model), x.double(), d0=d0.double())
    norms = got.norm(dim=1)
    assert torch.allclose(norms, torch.ones(5), atol=1e-5), norms
    cos = F.cosine_similarity(got.double(), want, dim=1)
    assert float(cos.min()) > 0.999, cos
    y = torch.zeros(5, dtype=torch.long)
    torch.manual_seed(1)
    pen32 = float(vat_loss(model, x, y, 2.0)) - float(F.cross_entropy(model(x), y))
    torch.manual_seed(1)
    m64 = _as_double(model)
    pen64 = float(vat_loss(m64, x.double(), y, 2.0)) - float(F.cross_entropy(m64(x.double()), y))
    assert -1e-9 < pen32 < 1e-6 and abs(pen32 - pen64) < 1e-6, (pen32, pen64)


def _as_double(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).double()
