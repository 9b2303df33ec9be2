"""Greedy layer-wise pretraining: stacking is exact, pretraining helps a deep sigmoid AE,
per-layer variants, RBMs trained by CD-1 (definitions checked), batch-norm stacking, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from aekit import DenseAE, LinearAE, fit, make_objective
from aekit.corruption import Masking
from aekit.data.batch import Batch
from aekit.models.rbm import RBM
from aekit.objectives import Contractive, ContrastiveDivergence, KLSparsity, rbm_objective
from aekit.runs import reconstruction_errors
from aekit.train.pretrain import encode_batched, pretrain_layers, stack_into_deep_ae


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks: one thread avoids oversubscribing a shared CPU (and is faster here).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def X300():
    from aekit import load_digits

    return load_digits()[0].X[:300]


def _composed_codes(layers, X):
    H = torch.from_numpy(X)
    for m in layers:
        H = encode_batched(m, H)
    return H


@pytest.mark.parametrize("decoder, tied", [("shallow", False), ("transpose", False),
                                           ("shallow", True)])
def test_stacked_codes_equal_shallow_encoders(X300, decoder, tied):
    pre = pretrain_layers([64, 32, 16, 4], X300, activation="elu", output="sigmoid",
                          max_iter=2, batch_size=64)
    deep = stack_into_deep_ae(pre.layers, decoder=decoder, tied=tied)
    assert deep.sizes == [64, 32, 16, 4] and deep.activation == "elu"
    assert deep.output == "sigmoid" and deep.code_activation == "linear" and deep.tied == tied
    with torch.no_grad():
        code = deep.encode(torch.from_numpy(X300))
    torch.testing.assert_close(code, _composed_codes(pre.layers, X300), rtol=1e-6, atol=1e-6)
    L = len(pre.layers)
    for i, m in enumerate(pre.layers):
        dec = deep.dec[L - 1 - i]
        want = m.enc[0].weight.t() if decoder == "transpose" or tied else m.dec[0].weight
        torch.testing.assert_close(dec.weight, want)
        torch.testing.assert_close(dec.bias, m.dec[0].bias)
    # the stack is a copy: training it leaves the pretrained layers alone
    w0 = pre.layers[0].enc[0].weight.clone()
    fit(deep, make_objective("bce"), X300, max_iter=1)
    assert torch.equal(pre.layers[0].enc[0].weight, w0)


def test_one_layer_stack_is_the_shallow_autoencoder(X300):
    pre = pretrain_layers([64, 10], X300, code_activation="sigmoid", output="sigmoid",
                          max_iter=1)
    deep = stack_into_deep_ae(pre.layers)
    x = torch.from_numpy(X300)
    with torch.no_grad():
        torch.testing.assert_close(deep(x).reconstruction, pre.layers[0](x).reconstruction)


def test_pretraining_beats_random_init_at_equal_finetuning(digits):
    """Deep sigmoid AE 64-128-64-8 on digits: 5 epochs of fine-tuning after 5 epochs of
    pretraining per layer reconstruct the test digits much better than 5 epochs from a random
    initialisation (Hinton & Salakhutdinov 2006, Fig. 2's point, at small scale)."""
    tr, te = digits
    sizes = [64, 128, 64, 8]
    kw = dict(max_iter=5, batch_size=64, learning_rate=3e-3)
    pre = pretrain_layers(sizes, tr.X, activation="sigmoid", output="sigmoid", **kw)
    deep = stack_into_deep_ae(pre.layers)
    fit(deep, make_objective("bce"), tr.X, **kw)
    torch.manual_seed(0)
    rand = DenseAE(sizes, activation="sigmoid", output="sigmoid")
    fit(rand, make_objective("bce"), tr.X, **kw)
    e_pre = float(reconstruction_errors(deep, te.X).mean())
    e_rand = float(reconstruction_errors(rand, te.X).mean())
    assert e_pre < 0.8 * e_rand, f"pretrained {e_pre:.3f} vs random init {e_rand:.3f}"


def test_per_layer_denoising_sparse_contractive(X300):
    layer_kwargs = [
        {"corruption": Masking(0.3), "max_iter": 2},
        {"terms": [KLSparsity(rho=0.05, beta=0.1)]},
        {"terms": [Contractive(lam=0.1)], "optimizer": "adamw", "optimizer_weight_decay": 1e-4},
    ]
    pre = pretrain_layers([64, 32, 16, 8], X300, activation="sigmoid",
                          code_activation="sigmoid", output="sigmoid", max_iter=1,
                          layer_kwargs=layer_kwargs, random_state=3, val=X300[:50])
    h = pre.histories
    assert all("val_recon" in x.records[-1] for x in h)  # val codes follow the layers
    assert [len(x) for x in h] == [2, 1, 1]
    assert "train_kl_sparsity" in h[1].records[0] and "train_contractive" in h[2].records[0]
    assert [m.output for m in pre.layers] == ["sigmoid"] * 3  # codes in [0, 1]: bce above
    assert pre.train_time_s > 0
    deep = stack_into_deep_ae(pre.layers)
    with torch.no_grad():
        c = deep.encode(torch.from_numpy(X300))
    torch.testing.assert_close(c, _composed_codes(pre.layers, X300), rtol=1e-6, atol=1e-6)


def test_same_seed_same_layers(X300):
    kw = dict(activation="relu", max_iter=1, layer_kwargs={"corruption": Masking(0.2)})
    a = pretrain_layers([64, 16, 4], X300, random_state=5, **kw).layers
    b = pretrain_layers([64, 16, 4], X300, random_state=5, **kw).layers
    c = pretrain_layers([64, 16, 4], X300, random_state=6, **kw).layers
    for ma, mb in zip(a, b):
        for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()):
            assert torch.equal(va, vb), k
    assert not torch.equal(a[0].enc[0].weight, c[0].enc[0].weight)


def test_batch_norm_stack_computes_the_same_function(X300):
    pre = pretrain_layers([64, 32, 16, 4], X300, activation="relu", max_iter=1)
    plain = stack_into_deep_ae(pre.layers)
    bn = stack_into_deep_ae(pre.layers, batch_norm=True, X=X300)
    x = torch.from_numpy(X300)
    with torch.no_grad():
        torch.testing.assert_close(bn.eval()(x).reconstruction, plain(x).reconstruction,
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(bn.encode(x), _composed_codes(pre.layers, X300),
                                   rtol=1e-4, atol=1e-4)
    fit(bn, make_objective("mse"), X300, max_iter=1)  # and it trains


# --- RBMs -------------------------------------------------------------------------------------

def _energy(rbm, v, h):
    W, b, c = rbm.linear.weight, rbm.linear.bias, rbm.visible_bias
    e = -(h @ b) - (h @ (W @ v))
    e = e + (0.5 * (v - c).pow(2).sum() if rbm.visible == "gaussian" else -(c @ v))
    return e + (0.5 * h.pow(2).sum() if rbm.hidden == "gaussian" else 0.0)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_rbm_free_energy_matches_enumeration(visible):
    torch.manual_seed(0)
    rbm = RBM(4, 3, visible=visible, init_std=0.7).double()
    with torch.no_grad():
        rbm.linear.bias.normal_()
        rbm.visible_bias.normal_()
        V = torch.rand(5, 4, dtype=torch.float64)
        F = rbm.free_energy(V)
        brute = torch.stack([-torch.logsumexp(torch.stack([
            -_energy(rbm, v, torch.tensor(h, dtype=torch.float64))
            for h in itertools.product([0.0, 1.0], repeat=3)]), 0) for v in V])
    torch.testing.assert_close(F - F[0], brute - brute[0])  # equal up to a constant


def test_rbm_gaussian_hidden_free_energy_matches_integral():
    torch.manual_seed(1)
    rbm = RBM(3, 1, hidden="gaussian", init_std=0.8).double()
    with torch.no_grad():
        V = torch.rand(4, 3, dtype=torch.float64)
        F = rbm.free_energy(V).numpy()
        brute = np.array([-math.log(quad(lambda h, v=v: math.exp(-float(_energy(
            rbm, v, torch.tensor([h], dtype=torch.float64)))), -30, 30)[0]) for v in V])
    np.testing.assert_allclose(F - F[0], brute - brute[0], atol=1e-8)


def test_cd1_gradient_is_the_cd_update():
    """∇ of the CD term = −(⟨h vᵀ⟩_data − ⟨h vᵀ⟩_recon) with the same Gibbs sample."""
    torch.manual_seed(0)
    rbm = RBM(6, 4, init_std=0.5).double()
    v0 = (torch.rand(8, 6, dtype=torch.float64) > 0.5).double()
    term = ContrastiveDivergence(k=1, seed=7)
    g = torch.Generator().manual_seed(7)
    v1 = rbm.gibbs(v0, 1, g)
    term(rbm, Batch(v0), rbm(v0)).backward()
    with torch.no_grad():
        h0, h1 = rbm.encode(v0), rbm.encode(v1)
        n = len(v0)
        torch.testing.assert_close(rbm.linear.weight.grad, -(h0.T @ v0 - h1.T @ v1) / n)
        torch.testing.assert_close(rbm.linear.bias.grad, -(h0 - h1).mean(0))
        torch.testing.assert_close(rbm.visible_bias.grad, -(v0 - v1).mean(0))


def test_rbm_stack_trains_and_unrolls(digits):
    """Hinton & Salakhutdinov's recipe in small: Bernoulli RBMs, a Gaussian-hidden top RBM,
    CD-1 through fit(); the reconstruction error falls and the unrolled AE fine-tunes."""
    X = digits[0].X[:600]
    pre = pretrain_layers([64, 32, 8], X, activation="sigmoid", code_activation="linear",
                          output="sigmoid", max_iter=4, layer_kwargs={"kind": "rbm"})
    r0, r1 = pre.layers
    assert (r0.visible, r0.hidden, r1.visible, r1.hidden) == (
        "bernoulli", "bernoulli", "bernoulli", "gaussian")
    rec = pre.histories[0]["train_recon"]
    assert rec[-1] < 0.8 * rec[0], f"RBM reconstruction error {rec}"
    assert "train_cd" in pre.histories[0].records[0]
    assert "train_weight_decay" in pre.histories[0].records[0]  # weight cost on by default
    deep = stack_into_deep_ae(pre.layers, decoder="transpose")
    x = torch.from_numpy(X)
    with torch.no_grad():
        torch.testing.assert_close(deep.encode(x), _composed_codes(pre.layers, X))
    e0 = float(reconstruction_errors(deep, X).mean())
    fit(deep, make_objective("bce"), X, max_iter=3, learning_rate=3e-3)
    e1 = float(reconstruction_errors(deep, X).mean())
    assert e1 < e0, (e0, e1)


def test_rbm_through_fit_directly():
    torch.manual_seed(0)
    X = (torch.rand(200, 10) < torch.linspace(0.1, 0.9, 10)).float()
    rbm = RBM(10, 5)
    h = fit(rbm, rbm_objective(k=2, eta=1e-4), X, optimizer="sgd", learning_rate=0.1, max_iter=5,
            batch_size=20)
    assert len(h) == 5 and math.isfinite(h.records[-1]["train_cd"])
    with pytest.raises(ValueError, match="needs an RBM"):
        ContrastiveDivergence()(LinearAE(10, 2), Batch(X), LinearAE(10, 2)(X))


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"sizes": [64]}, "sizes"),
    ({"sizes": [32, 4]}, "features"),
    ({"layer_kwargs": [{}]}, "layer_kwargs has 1 entries"),
    ({"layer_kwargs": {"colour": 1}}, "unknown keys"),
    ({"layer_kwargs": "abc"}, "layer_kwargs must be"),
    ({"layer_kwargs": {"kind": "vae"}}, "kind"),
    ({"layer_kwargs": {"loss": "hinge"}}, "loss"),
    ({"layer_kwargs": {"kind": "rbm"}}, "RBM"),  # relu hidden units
    ({"layer_kwargs": {"kind": "rbm", "terms": []}, "activation": "sigmoid"}, "RBM layer"),
    ({"layer_kwargs": {"cd_k": 2}}, "cd_k"),
    ({"max_iter": -1}, "max_iter"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"colour": 1}, "unknown fit"),
    ({"activation": "swishy"}, "activation"),
    ({"output": "softmax"}, "output"),
])
def test_pretrain_bad_input(X300, kwargs, match):
    kw = {"sizes": [64, 8, 4], "max_iter": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        pretrain_layers(kw.pop("sizes"), X300, **kw)


def test_pretrain_rejects_nan(X300):
    X = X300.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pretrain_layers([64, 4], X)


def test_stack_bad_input(X300):
    a, b = DenseAE([64, 8]), DenseAE([8, 4], output="linear")
    with pytest.raises(ValueError, match="empty"):
        stack_into_deep_ae([])
    with pytest.raises(ValueError, match="decoder"):
        stack_into_deep_ae([a, b], decoder="random")
    with pytest.raises(ValueError, match="takes 6 inputs"):
        stack_into_deep_ae([a, DenseAE([6, 4])])
    with pytest.raises(ValueError, match="one-layer"):
        stack_into_deep_ae([DenseAE([64, 8, 4])])
    with pytest.raises(ValueError, match="share one activation"):
        stack_into_deep_ae([DenseAE([64, 8], code_activation="relu"),
                            DenseAE([8, 6], code_activation="tanh"), DenseAE([6, 2])])
    with pytest.raises(ValueError, match="output"):
        stack_into_deep_ae([DenseAE([64, 8], code_activation="relu"),
                            DenseAE([8, 4], output="sigmoid")])
    with pytest.raises(ValueError, match="hidden must be one of"):
        RBM(4, 2, hidden="poisson")
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        ContrastiveDivergence(k=0)


def test_gaussian_visible_rbm_trains_at_the_defaults_and_divergence_names_the_layer():
    """Standardised real-valued data (300 x 500) under a Gaussian-visible RBM: the default rate
    is the small one of linear units and trains; lr 0.1 (the old default here) diverges within
    a few epochs, and the error names the layer and its settings."""
    g = np.random.default_rng(0)
    X = g.normal(size=(300, 10)) @ g.normal(size=(10, 500)) + 0.5 * g.normal(size=(300, 500))
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    pre = pretrain_layers([500, 200, 30], X, activation="sigmoid", code_activation="linear",
                          output="linear", layer_kwargs={"kind": "rbm"}, max_iter=30,
                          progress=False)
    recon = pre.histories[0]["train_recon"]
    assert np.isfinite(recon).all() and recon[-1] < 0.5 * recon[0], recon
    with pytest.raises(FloatingPointError, match=r"pretraining layer 1 of 2 \(RBM 500->200, "
                                                 r"optimizer sgd, learning_rate 0.1\)"):
        pretrain_layers([500, 200, 30], X, activation="sigmoid", code_activation="linear",
                        output="linear", max_iter=30, progress=False,
                        layer_kwargs=[{"kind": "rbm", "learning_rate": 0.1}, {"kind": "rbm"}])
