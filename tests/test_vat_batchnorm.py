"""VAT with batch norm in train mode: the extra passes use the clean batch's statistics, frozen
(batch_stats_frozen), so the direction is the per-sample Hessian power step of that frozen
network, the penalty vanishes like ε², and the running statistics are the main pass's only."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from aekit.objectives import batch_stats_frozen, vat_direction, vat_loss
from test_vat import _kl_hessian  # brute-force KL Hessian, dropout masks replayed


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 9), nn.BatchNorm1d(9), nn.Tanh(), nn.Dropout(0.3),
                         nn.Linear(9, 3)).double().train()


def _frozen_copy(model: nn.Module, x: torch.Tensor, rng: torch.Tensor) -> nn.Module:
    """Built by hand: a copy whose batch norm, in eval mode, uses the batch mean and biased
    variance of the train-mode pass ``model(x)`` (dropout masks of ``rng``); its dropout stays
    in train mode."""
    m2 = copy.deepcopy(model)
    seen = {}
    hook = m2[1].register_forward_pre_hook(lambda m, i: seen.__setitem__("h", i[0].detach()))
    torch.set_rng_state(rng)
    with torch.no_grad():
        m2(x)
    hook.remove()
    m2[1].running_mean = seen["h"].mean(0)
    m2[1].running_var = seen["h"].var(0, unbiased=False)
    m2[1].eval()
    return m2


def test_direction_is_the_power_step_of_the_frozen_statistics_network():
    model = _bn_net()
    x = torch.randn(6, 6, dtype=torch.float64)
    d0 = torch.randn(6, 6, dtype=torch.float64)
    rng = torch.get_rng_state()
    one = vat_direction(model, x, d0=d0)
    torch.set_rng_state(rng)
    many = vat_direction(model, x, d0=d0, n_power=80)
    frozen = _frozen_copy(model, x, rng)
    for i in range(len(x)):
        H = _kl_hessian(frozen, x, i, rng)
        hd = H @ d0[i]
        err = float((hd / hd.norm() - one[i]).abs().max())
        assert err < 1e-10, f"sample {i}: one power step differs from H d/|H d| by {err:.2e}"
        w, V = torch.linalg.eigh(H)
        cos = float(abs(V[:, -1] @ many[i]))
        assert cos > 1 - 1e-8, (f"sample {i}: |cos| to the top eigenvector {cos:.10f} "
                                f"(λ1/λ2 = {float(w[-1] / w[-2]):.2f})")
    assert model[1].training, "the batch-norm layer must be back in train mode"


def test_penalty_vanishes_like_eps_squared_and_running_stats_are_the_main_pass_only():
    model = _bn_net()
    x = torch.randn(8, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    rng = torch.get_rng_state()
    frozen = _frozen_copy(model, x, rng)
    lam = np.mean([float(torch.linalg.eigvalsh(_kl_hessian(frozen, x, i, rng))[-1])
                   for i in range(len(x))])
    ratios = []
    for eps in (1e-2, 1e-3):
        m, ref = copy.deepcopy(model), copy.deepcopy(model)
        torch.set_rng_state(rng)
        total = vat_loss(m, x, y, eps, n_power=80)
        torch.set_rng_state(rng)
        ce = F.cross_entropy(ref(x), y)  # the main pass alone, on an identical copy
        ratios.append(float((total - ce).detach()) / eps ** 2)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            a, b = getattr(m[1], name), getattr(ref[1], name)
            assert torch.equal(a, b), f"{name} moved beyond the main pass: {a} vs {b}"
        assert m[1].training
    rel = [abs(r - lam / 2) / (lam / 2) for r in ratios]
    assert rel[-1] < 1e-2 and rel[-1] < rel[0] + 1e-12, (
        f"penalty/ε² {ratios} against λ_max/2 = {lam / 2:.6g} (relative errors {rel})")


def test_batch_stats_frozen_reproduces_the_train_pass_and_restores_everything():
    model = _bn_net()
    x = torch.randn(10, 6, dtype=torch.float64)
    rng = torch.get_rng_state()
    with torch.no_grad():
        want = model(x)  # train mode: batch statistics (and one running-average step)
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    with batch_stats_frozen(model, x, rng):
        assert not model[1].training and model[3].training
        torch.set_rng_state(rng)
        with torch.no_grad():
            got = model(x)
            # a perturbed batch: the statistics stay those of x, so each sample's output
            # depends on that sample only
            x2 = x.clone()
            x2[3] += 5.0
            torch.set_rng_state(rng)
            moved = model(x2)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    keep = [i for i in range(10) if i != 3]
    torch.testing.assert_close(moved[keep], got[keep], rtol=0, atol=0)
    after = model[1].state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), f"{k} changed by the frozen block"
    assert model[1].training
    # a model without batch norm: no extra pass, nothing changes
    plain = nn.Sequential(nn.Linear(6, 3)).double()
    calls = []
    plain.register_forward_hook(lambda *a: calls.append(1))
    with batch_stats_frozen(plain, x):
        pass
    assert calls == []
