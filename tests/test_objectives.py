"""Objectives: every loss and term equals its formula; the breakdown adds up."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from aekit.data.batch import Batch
from aekit.models import AEOutput, DenseAE
from aekit.objectives import GaussianNLL, Objective, WeightDecay, bce, make_objective, mse


def _out(logits, squash=True):
    rec = torch.sigmoid(logits) if squash else logits
    return AEOutput(code=torch.zeros(len(logits), 1), reconstruction=rec, logits=logits,
                    preactivations=())


def test_mse_is_sum_over_features():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    r = torch.tensor([[1.0, 1.0], [0.0, 1.5]], dtype=torch.float64)
    want = torch.tensor([1.0, 1.25], dtype=torch.float64)
    assert torch.equal(mse(x, _out(r, squash=False)), want)


def test_bce_matches_naive_formula_and_is_stable():
    torch.manual_seed(0)
    s = torch.randn(6, 5, dtype=torch.float64) * 3
    x = torch.rand(6, 5, dtype=torch.float64)
    p = torch.sigmoid(s)
    naive = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    torch.testing.assert_close(bce(x, _out(s)), naive)
    # extreme logits: the naive float32 form gives inf/nan, the stable one the exact value
    s = torch.tensor([[100.0, -100.0]])
    x = torch.tensor([[0.0, 1.0]])
    v = bce(x, _out(s))
    assert torch.isfinite(v).all() and abs(v.item() - 200.0) < 1e-3, v


def test_gaussian_nll_matches_normal_log_prob():
    torch.manual_seed(0)
    x, r = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    g = GaussianNLL(3).double()
    with torch.no_grad():
        g.log_var.copy_(torch.tensor([0.0, -1.0, 2.0]))
    want = -torch.distributions.Normal(r, torch.exp(0.5 * g.log_var)).log_prob(x).sum(1)
    torch.testing.assert_close(g(x, _out(r, squash=False)), want)
    fixed = GaussianNLL(3, sigma=2.0).double()
    want = -torch.distributions.Normal(r, 2.0).log_prob(x).sum(1)
    torch.testing.assert_close(fixed(x, _out(r, squash=False)), want)
    assert not list(fixed.parameters())
    with pytest.raises(ValueError, match="sigma must be > 0"):
        GaussianNLL(3, sigma=0.0)


def test_weight_decay_excludes_biases_and_counts_tied_weight_once():
    m = DenseAE([5, 3], tied=True).double()
    W = m.enc[0].weight
    wd = WeightDecay(0.5)(m, Batch(torch.zeros(1, 5, dtype=torch.float64)), None)
    torch.testing.assert_close(wd, 0.5 * W.pow(2).sum())
    m2 = DenseAE([5, 4, 2], batch_norm=True)
    with torch.no_grad():
        for n, p in m2.named_parameters():
            p.fill_(1.0 if n.endswith("weight") and p.ndim == 2 else 100.0)
    want = sum(p.numel() for n, p in m2.named_parameters() if p.ndim == 2)
    got = WeightDecay(1.0)(m2, Batch(torch.zeros(1, 5)), None)
    assert got.item() == pytest.approx(want), (got, want)
    with pytest.raises(ValueError, match="eta must be a finite number >= 0"):
        WeightDecay(-1e-3)


def test_objective_breakdown_adds_up_and_gradient_flows():
    torch.manual_seed(0)
    m = DenseAE([6, 4, 2], output="sigmoid")
    obj = make_objective("bce", weight_decay=1e-2)
    x = torch.rand(8, 6)
    total, parts = obj(m, x)
    assert set(parts) == {"recon", "weight_decay"}
    torch.testing.assert_close(total, parts["recon"] + parts["weight_decay"])
    torch.testing.assert_close(parts["recon"], bce(x, m(x)).mean())
    total.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_objective_errors():
    with pytest.raises(ValueError, match="unknown loss 'l3'"):
        Objective("l3")
    with pytest.raises(ValueError, match="unique"):
        Objective("mse", [WeightDecay(1.0), WeightDecay(2.0)])
    with pytest.raises(ValueError, match="needs a model with output='sigmoid'"):
        Objective("bce").check_model(DenseAE([4, 2], output="linear"))
    with pytest.raises(ValueError, match="n_features"):
        Objective("gaussian_nll")


def test_gaussian_nll_learns_the_residual_variance():
    # With the reconstruction fixed, the optimal log σ_j² is log of the per-feature MSE.
    torch.manual_seed(0)
    x = torch.randn(512, 2, dtype=torch.float64) * torch.tensor([0.5, 2.0], dtype=torch.float64)
    g = GaussianNLL(2).double()
    out = _out(torch.zeros_like(x), squash=False)
    opt = torch.optim.LBFGS(g.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        v = g(x, out).mean()
        v.backward()
        return v

    opt.step(closure)
    want = x.pow(2).mean(0).log()
    torch.testing.assert_close(g.log_var.detach(), want, atol=1e-5, rtol=0)
    assert math.isfinite(float(g(x, out).mean().detach()))


def test_mse_objective_equals_functional_sum():
    x, r = torch.rand(3, 4), torch.rand(3, 4)
    want = F.mse_loss(r, x, reduction="sum") / 3
    torch.testing.assert_close(Objective("mse").per_sample(x, _out(r, False)).mean(), want)
