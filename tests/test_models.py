"""Models: shapes, the registry-wide contract, tied-weight gradients."""

from __future__ import annotations

import pytest
import torch

import aekit
from aekit.layers import TiedLinear, TopK
from aekit.models import MODELS, AEOutput, DenseAE, LinearAE, make_model

# One small instance per registry entry; a new model must add itself here (checked below).
EXAMPLES = {
    "dense": dict(sizes=[12, 9, 5, 3], activation="tanh", output="sigmoid"),
    "linear": dict(n_features=12, n_components=4),
    "rbm": dict(n_visible=12, n_hidden=4),
    "conv": dict(image_shape=[2, 7, 6], channels=[3, 4], code_size=3, batch_norm=True),
    "residual": dict(n_features=12, n_components=3, hidden=[9, 5], activation="tanh"),
    "unet": dict(in_channels=2, features=3, depth=2, skips=False, image_shape=[2, 7, 6]),
    "dncnn": dict(channels=2, features=4, depth=3, image_shape=[2, 7, 6]),
    "document": dict(sizes=[12, 9, 4], code_activation="sigmoid"),
    "vae": dict(sizes=[12, 9, 3], activation="tanh"),
    "conv_vae": dict(image_shape=[2, 7, 6], channels=[3, 4], code_size=3),
    "topk_sae": dict(n_features=12, n_latents=16, k=4),
}


def test_every_registered_model_has_an_example():
    assert set(EXAMPLES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registry_contract(name, tmp_path):
    m = make_model(name, **EXAMPLES[name]).double()
    x = torch.rand(7, m.n_features, dtype=torch.float64)
    out = m(x)
    assert isinstance(out, AEOutput)
    assert out.code.shape == (7, m.n_components)
    assert out.reconstruction.shape == x.shape == out.logits.shape
    assert torch.equal(m.encode(x), out.code)
    if getattr(m, "decodes_from_code", True):  # a U-Net with skips or DnCNN needs the input
        assert torch.allclose(m.decode(out.code), out.reconstruction)
    # gradients reach every parameter
    out.reconstruction.pow(2).sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {pname}"
    # save -> load -> identical outputs
    path = aekit.save_model(m.float(), tmp_path / "m.safetensors")
    m2 = aekit.load(path)
    assert type(m2) is type(m) and m2.config() == m.config()
    xf = x.float()
    with torch.no_grad():
        assert torch.equal(m.eval()(xf).reconstruction, m2(xf).reconstruction)


def test_deep_autoencoder_shapes():
    m = DenseAE([784, 1000, 500, 250, 30])
    out = m(torch.rand(4, 784))
    assert out.code.shape == (4, 30)
    assert [a.shape[1] for a in out.preactivations] == [1000, 500, 250, 30]
    # the code layer is linear by default: code == last pre-activation
    assert torch.equal(out.code, out.preactivations[-1])
    n_params = sum(p.numel() for p in m.parameters())
    assert n_params == 2 * (784 * 1000 + 1000 * 500 + 500 * 250 + 250 * 30) + \
        (1000 + 500 + 250 + 30) + (250 + 500 + 1000 + 784)


def test_tied_weights_share_storage_and_gradient_is_sum_of_parts():
    torch.manual_seed(1)
    m = DenseAE([6, 4], activation="sigmoid", code_activation="sigmoid", tied=True).double()
    assert isinstance(m.dec[0], TiedLinear)
    W = m.enc[0].weight  # (4, 6)
    assert m.dec[0].weight.data_ptr() == W.data_ptr()
    names = [n for n, _ in m.named_parameters()]
    assert names.count("enc.0.weight") == 1 and len(names) == 3  # W, b_enc, b_dec
    x = torch.rand(5, 6, dtype=torch.float64)
    loss = (m(x).reconstruction - x).pow(2).sum()
    (g_tied,) = torch.autograd.grad(loss, W)
    # The same function with two independent copies of W: gradient of each part.
    We = W.detach().clone().requires_grad_()
    Wd = W.detach().clone().requires_grad_()
    h = torch.sigmoid(x @ We.T + m.enc[0].bias)
    r = h @ Wd + m.dec[0].bias
    ge, gd = torch.autograd.grad((r - x).pow(2).sum(), (We, Wd))
    torch.testing.assert_close(g_tied, ge + gd)
    assert ge.abs().sum() > 0 and gd.abs().sum() > 0


def test_tied_deep_model_mirrors_encoder():
    m = DenseAE([10, 6, 3], tied=True)
    assert m.dec[0]._tied is m.enc[1] and m.dec[1]._tied is m.enc[0]
    assert m(torch.rand(2, 10)).reconstruction.shape == (2, 10)


def test_linear_ae_and_topk():
    m = LinearAE(8, 3, tied=True)
    assert m(torch.rand(2, 8)).code.shape == (2, 3)
    z = torch.tensor([[3.0, -1.0, 2.0, 0.5]])
    assert torch.equal(TopK(2)(z), torch.tensor([[3.0, 0.0, 2.0, 0.0]]))
    m = DenseAE([8, 6], code_activation="topk:2")
    assert ((m.encode(torch.rand(5, 8)) != 0).sum(1) <= 2).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=[8]), "at least"),
    (dict(sizes=[8, 0]), ">= 1"),
    (dict(sizes=[8, 4], activation="swishy"), "unknown activation 'swishy'"),
    (dict(sizes=[8, 4], output="softmax"), "output must be one of"),
    (dict(sizes=[8, 4], code_activation="topk:5"), "larger than the code size"),
    (dict(sizes=[8, 4], dropout=1.0), "dropout"),
])
def test_bad_dense_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DenseAE(**kwargs)


def test_bad_registry_use():
    with pytest.raises(ValueError, match="unknown model 'vae2'"):
        make_model("vae2")
    with pytest.raises(ValueError, match="model 'dense'"):
        make_model("dense", sizes=[4, 2], colour="red")
    with pytest.raises(ValueError, match="larger than n_features"):
        LinearAE(3, 5)


def test_conv_ae_shapes_and_odd_sizes():
    from aekit.models import ConvAE

    for shape in ([28, 28], [1, 9, 13], [3, 16, 16]):
        m = ConvAE(shape, channels=[4, 8], code_size=5)
        c, h, w = ([1, *shape] if len(shape) == 2 else shape)
        x = torch.rand(2, c * h * w)
        out = m(x)
        assert out.code.shape == (2, 5) and out.reconstruction.shape == x.shape
        x4 = x.reshape(2, c, h, w)
        assert m(x4).reconstruction.shape == x4.shape
        torch.testing.assert_close(m(x4).reconstruction.flatten(1), out.reconstruction)
    assert ConvAE([2, 2], channels=[4, 4, 4])(torch.rand(1, 4)).reconstruction.shape == (1, 4)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvAE([8, 8], kernel_size=4)
    with pytest.raises(ValueError, match="input must be"):
        ConvAE([8, 8])(torch.rand(2, 63))


def test_conv_ae_trains_with_fit(digits):
    from aekit import fit, make_objective
    from aekit.models import ConvAE

    train, _ = digits
    torch.manual_seed(0)
    m = ConvAE([8, 8], channels=[8, 16], code_size=8)
    h = fit(m, make_objective("bce"), train.X[:600], max_iter=8, learning_rate=3e-3, random_state=0)
    assert h["train_recon"][-1] < 0.8 * h["train_recon"][0], h["train_recon"]
