"""recalibrate_batch_norm: running statistics recomputed from data equal the brute-force
statistics of each layer's inputs in the eval-mode network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aekit.train import recalibrate_batch_norm


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(8, 5), nn.BatchNorm1d(5), nn.Tanh()).double()


def test_recalibrated_statistics_equal_the_layer_inputs_statistics():
    net = _net().train()
    X = torch.randn(600, 6, dtype=torch.float64) * 3 + 1
    for m in (net[1], net[5]):  # stale statistics, as after fast-moving training
        m.running_mean.fill_(5.0)
        m.running_var.fill_(9.0)
    assert recalibrate_batch_norm(net, X, batch_size=200) == 2
    # brute force: each BN layer's inputs with the network in eval mode except that BN layer
    # normalises by batch statistics, batch by batch (dropout off)
    with torch.no_grad():
        h1 = net[0](X)
        m1 = torch.stack([h1[i:i + 200].mean(0) for i in range(0, 600, 200)]).mean(0)
        v1 = torch.stack([h1[i:i + 200].var(0) for i in range(0, 600, 200)]).mean(0)
        outs = []
        for i in range(0, 600, 200):
            b = h1[i:i + 200]
            z = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + net[1].eps)
            outs.append(net[4](torch.relu(z * net[1].weight + net[1].bias)))
        m2 = torch.stack([o.mean(0) for o in outs]).mean(0)
        v2 = torch.stack([o.var(0) for o in outs]).mean(0)
    for got, want in ((net[1].running_mean, m1), (net[1].running_var, v1),
                      (net[5].running_mean, m2), (net[5].running_var, v2)):
        err = float((got - want).abs().max())
        assert err < 1e-10, f"running statistic differs from brute force by {err:.3g}"
    # modes and momenta restored; dropout did not act during the pass (else m2 would differ)
    assert net.training and net[3].training and net[1].momentum == 0.1


def test_recalibration_makes_eval_mode_match_train_mode_on_the_same_data():
    """Eval mode with recalibrated statistics on the whole data = train mode on the whole data
    as one batch (up to the unbiased-variance factor n/(n−1))."""
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double()
    X = torch.randn(500, 4, dtype=torch.float64)
    recalibrate_batch_norm(net, X, batch_size=500)
    net.eval()
    with torch.no_grad():
        ev = net(X)
        h = net[0](X)
        want = (h - h.mean(0)) / torch.sqrt(h.var(0) + net[1].eps) * net[1].weight + net[1].bias
    assert float((ev - want).abs().max()) < 1e-10


def test_recalibrate_errors_and_no_batch_norm():
    assert recalibrate_batch_norm(nn.Linear(3, 2), torch.randn(4, 3)) == 0
    net = _net()
    with pytest.raises(ValueError, match="X must hold"):
        recalibrate_batch_norm(net, torch.zeros(0, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch_size"):
        recalibrate_batch_norm(net, torch.zeros(5, 6, dtype=torch.float64), batch_size=1)
