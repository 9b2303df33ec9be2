"""UNetAE, DnCNN and the extended ConvAE: shapes, any-size input, the registry contract."""

from __future__ import annotations

import pytest
import torch

import aekit
from aekit.models import MODELS, AEOutput, ConvAE, DnCNN, UNetAE, make_model

# Registry examples for the image models (tests/test_models.py's EXAMPLES should list them too).
IMAGE_EXAMPLES = {
    "unet": dict(in_channels=2, features=3, depth=2, skips=False, image_shape=[2, 7, 6]),
    "dncnn": dict(channels=2, features=4, depth=3, image_shape=[2, 7, 6]),
}


@pytest.mark.parametrize("name", sorted(IMAGE_EXAMPLES))
def test_registry_contract_for_image_models(name, tmp_path):
    assert MODELS[name].name == name
    m = make_model(name, **IMAGE_EXAMPLES[name]).double()
    x = torch.rand(7, m.n_features, dtype=torch.float64)
    out = m(x)
    assert isinstance(out, AEOutput)
    assert out.code.shape == (7, m.n_components), (out.code.shape, m.n_components)
    assert out.reconstruction.shape == x.shape == out.logits.shape
    assert torch.equal(m.encode(x), out.code)
    if getattr(m, "decodes_from_code", True):
        assert torch.allclose(m.decode(out.code), out.reconstruction)
    else:
        with pytest.raises(ValueError, match="needs the input"):
            m.decode(out.code)
    out.reconstruction.pow(2).sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {pname}"
    path = aekit.save_model(m.float(), tmp_path / "m.safetensors")
    m2 = aekit.load(path)
    assert type(m2) is type(m) and m2.config() == m.config()
    xf = x.float()
    with torch.no_grad():
        assert torch.equal(m.eval()(xf).reconstruction, m2(xf).reconstruction)
        x4 = torch.rand(2, 2, 13, 9)  # fully convolutional: other sizes too
        assert torch.equal(m(x4).reconstruction, m2(x4).reconstruction)


@pytest.mark.parametrize("depth, skips, residual", [(0, True, False), (2, True, False),
                                                    (2, False, False), (3, True, True)])
@pytest.mark.parametrize("hw", [(8, 8), (17, 23), (9, 31)])
def test_unet_any_size(depth, skips, residual, hw):
    m = UNetAE(3, features=4, depth=depth, skips=skips, residual=residual).eval()
    x = torch.rand(2, 3, *hw)
    out = m(x)
    assert out.reconstruction.shape == x.shape
    q = 2 ** depth
    assert out.code.shape == (2, 4 * q, -(-hw[0] // q), -(-hw[1] // q))


def test_unet_skips_change_the_function_and_residual_subtracts():
    torch.manual_seed(0)
    with_skips = UNetAE(1, features=4, depth=2, skips=True)
    without = UNetAE(1, features=4, depth=2, skips=False)
    n_with = sum(p.numel() for p in with_skips.parameters())
    n_without = sum(p.numel() for p in without.parameters())
    # the decoder blocks read twice the channels with skips: 2 levels, first conv each
    assert n_with - n_without == 9 * (4 * 4 + 8 * 8), (n_with, n_without)
    res = UNetAE(1, features=4, depth=2, residual=True).eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        padded = res._pad(x)[0]
        h, sk = res._encode_maps(padded)
        s = res._decode_maps(h, sk)
        torch.testing.assert_close(res(x).reconstruction, x - s)


def test_unet_errors_name_the_problem():
    with pytest.raises(ValueError, match="smaller than this U-Net's minimum size 8x8"):
        UNetAE(1, depth=3)(torch.rand(1, 1, 5, 20))
    with pytest.raises(ValueError, match="expects 3 channel"):
        UNetAE(3)(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="residual=True"):
        UNetAE(1, out_channels=2, residual=True)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        UNetAE(1, kernel_size=4)
    with pytest.raises(ValueError, match="depth must be >= 2"):
        DnCNN(1, depth=1)
    with pytest.raises(ValueError, match="cannot decode from the code alone"):
        UNetAE(1, depth=1).decode(torch.rand(1, 64, 4, 4))


def test_dncnn_is_input_minus_predicted_noise():
    torch.manual_seed(0)
    m = DnCNN(1, features=6, depth=4).eval()
    x = torch.rand(3, 1, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(m(x).reconstruction, x - m.head(m.body(x)))
    # receptive field (2D + 1): a change at one pixel moves outputs at most D pixels away
    y = x.clone()
    y[0, 0, 6, 5] += 1.0
    with torch.no_grad():
        diff = (m(y).reconstruction - m(x).reconstruction)[0, 0].abs() > 0
    rows, cols = torch.nonzero(diff, as_tuple=True)
    assert (rows - 6).abs().max() <= 4 and (cols - 5).abs().max() <= 4, (rows, cols)


def test_conv_ae_old_config_is_unchanged_and_new_options_work(tmp_path):
    m = ConvAE([1, 12, 12], channels=[4, 8], code_size=5)
    assert m.config() == {"image_shape": [1, 12, 12], "channels": [4, 8], "code_size": 5,
                          "kernel_size": 3, "activation": "relu", "code_activation": "linear",
                          "output": "sigmoid", "batch_norm": False}
    # strides / kernel sizes per block and a code map: fully convolutional
    m = ConvAE([3, 20, 20], channels=[8, 16, 16], code_size=4, strides=[2, 2, 1],
               kernel_size=[5, 3, 3], code="map").eval()
    assert m.n_components == 4 * 5 * 5
    out = m(torch.rand(2, 3 * 400))
    assert out.code.shape == (2, 100) and out.reconstruction.shape == (2, 1200)
    x = torch.rand(2, 3, 33, 18)
    out = m(x)
    assert out.code.shape == (2, 4, 9, 5) and out.reconstruction.shape == x.shape
    path = aekit.save_model(m, tmp_path / "c.safetensors")
    m2 = aekit.load(path)
    assert m2.config() == m.config()
    with torch.no_grad():
        assert torch.equal(m2(x).reconstruction, out.reconstruction)
    # code map decoded alone, at a size the strides undo exactly
    z = m.encode(torch.rand(1, 3, 32, 16))
    assert m.decode(z).shape == (1, 3, 32, 16)
    with pytest.raises(ValueError, match="strides must be 1 or 2"):
        ConvAE([8, 8], strides=3)
    with pytest.raises(ValueError, match="kernel_size must be one int or one per block"):
        ConvAE([8, 8], channels=[4, 4], kernel_size=[3])
    with pytest.raises(ValueError, match="code must be 'flat' or 'map'"):
        ConvAE([8, 8], code="cube")
    with pytest.raises(ValueError, match="input must be"):
        ConvAE([8, 8])(torch.rand(1, 1, 9, 9))  # a flat code needs the nominal size


def test_unet_trains_with_fit_on_image_tensors():
    from aekit import fit, make_objective
    from aekit.images import PatchSource

    g = torch.Generator().manual_seed(0)
    imgs = [torch.rand(1, 40, 40, generator=g).cumsum(2) / 40 for _ in range(2)]
    src = PatchSource(imgs, patch_size=16, n_patches=64, seed=0)
    m = UNetAE(1, features=4, depth=2, residual=True)
    h = fit(m, make_objective("mse"), src, corruption=aekit.Gaussian(0.1), max_iter=6,
            batch_size=16, learning_rate=3e-3, random_state=0, progress=False)
    assert h["train_recon"][-1] < 0.5 * h["train_recon"][0], h["train_recon"]


def test_dncnn_downscale_is_ffdnet_layout_and_round_trips(tmp_path):
    import torch.nn.functional as F

    torch.manual_seed(0)
    m = DnCNN(1, features=6, depth=4, batch_norm=False, downscale=2).eval()
    x = torch.rand(2, 1, 12, 10)
    with torch.no_grad():  # x̂ = x − PixelShuffle(R(PixelUnshuffle(x)))
        ref = x - F.pixel_shuffle(m.head(m.body(F.pixel_unshuffle(x, 2))), 2)
        torch.testing.assert_close(m(x).reconstruction, ref)
        assert m.encode(x).shape == (2, 6, 6, 5)
        # odd sides: reflect-padded then cropped back
        xo = torch.rand(1, 1, 13, 9)
        assert m(xo).reconstruction.shape == xo.shape
        # receptive field: about s(2D + 1); a change at one pixel moves outputs at most
        # s·D + s − 1 pixels away
        y = x.clone()
        y[0, 0, 6, 5] += 1.0
        diff = (m(y).reconstruction - m(x).reconstruction)[0, 0].abs() > 0
    rows, cols = torch.nonzero(diff, as_tuple=True)
    assert (rows - 6).abs().max() <= 9 and (cols - 5).abs().max() <= 9, (rows, cols)
    assert (rows - 6).abs().max() > 4, "the unshuffled stack should see further than D = 4"
    # He init without BN keeps the hidden activations' scale (not vanishing through ReLUs)
    big = DnCNN(1, features=32, depth=12, batch_norm=False, downscale=2)
    with torch.no_grad():
        h = big.body(F.pixel_unshuffle(torch.randn(4, 1, 32, 32), 2))
    assert 0.2 < float(h.pow(2).mean().sqrt()) < 20, float(h.pow(2).mean().sqrt())
    path = aekit.save_model(m, tmp_path / "f.safetensors")
    m2 = aekit.load(path)
    assert m2.config()["downscale"] == 2
    with torch.no_grad():
        torch.testing.assert_close(m2(x).reconstruction, m(x).reconstruction)
    for bad in (0, 2.5, True, 9):
        with pytest.raises(ValueError, match="downscale must be an integer in 1..8"):
            DnCNN(1, downscale=bad)


def _harmonic_reference(y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Brute force: solve u_i = mean of its 4 neighbours (replicated at the border) for every
    hole pixel, known pixels fixed, as one dense linear system in float64."""
    H, W = y.shape
    holes = [(i, j) for i in range(H) for j in range(W) if m[i, j] > 0.5]
    idx = {p: n for n, p in enumerate(holes)}
    A = torch.zeros(len(holes), len(holes), dtype=torch.float64)
    b = torch.zeros(len(holes), dtype=torch.float64)
    for (i, j), n in idx.items():
        A[n, n] += 1.0
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            q = (min(max(i + di, 0), H - 1), min(max(j + dj, 0), W - 1))
            if q in idx:
                A[n, idx[q]] -= 0.25
            else:
                b[n] += 0.25 * float(y[q])
    sol = torch.linalg.solve(A, b)
    u = y.double().clone()
    for (i, j), n in idx.items():
        u[i, j] = sol[n]
    return u


def test_diffusion_fill_keeps_known_pixels_and_converges_to_the_harmonic_solution():
    from aekit.models.unet import diffusion_fill

    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, 1, 13, 11, generator=g, dtype=torch.float64)
    m = torch.zeros(1, 1, 13, 11, dtype=torch.float64)
    m[..., 2:9, 3:8] = 1
    m[..., 11, 0:4] = 1  # a hole touching the border
    ref = _harmonic_reference(y[0, 0], m[0, 0])
    out = diffusion_fill(y, m, iterations=3000)
    assert torch.equal(out[m == 0], y[m == 0])
    err = (out[0, 0] - ref).abs().max().item()
    assert err < 1e-6, f"fill vs the direct harmonic solve: max error {err:.2e}"
    # the default (16 sweeps per level) is already close, and obeys the maximum principle
    quick = diffusion_fill(y, m)
    err16 = (quick[0, 0] - ref).abs().max().item()
    assert err16 < 0.05, f"16 sweeps per level: max error {err16:.3f}"
    known = y[m == 0]
    assert known.min() <= quick.min() and quick.max() <= known.max()
    # a linear ramp is harmonic: filled (almost) exactly inside a big hole; constants exactly
    yy, xx = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    ramp = (0.3 + 0.01 * yy + 0.005 * xx)[None, None]
    big = torch.zeros(1, 1, 40, 40)
    big[..., 10:25, 12:30] = 1
    e = (diffusion_fill(ramp, big) - ramp).abs().max().item()
    assert e < 2e-3, f"ramp through a 15x18 hole: max error {e:.2e}"
    c = torch.full((2, 3, 9, 9), 0.7)
    assert torch.allclose(diffusion_fill(c, big[..., :9, :9].expand(2, 1, 9, 9)), c)
    assert torch.equal(diffusion_fill(c, torch.ones(2, 1, 9, 9)), torch.zeros_like(c))
    with pytest.raises(ValueError, match=r"mask \(n, 1 or C, H, W\)"):
        diffusion_fill(c, torch.ones(2, 1, 8, 9))


def test_unet_fill_starts_at_the_fill_trains_on_holes_only_and_round_trips(tmp_path):
    from aekit.models.unet import diffusion_fill

    torch.manual_seed(0)
    net = UNetAE(2, out_channels=1, features=4, depth=2, fill="diffusion")
    x = torch.rand(3, 2, 17, 20)
    x[:, 1] = (x[:, 1] > 0.7).float()
    out = net(x).reconstruction
    assert out.shape == (3, 1, 17, 20)
    assert torch.equal(out, diffusion_fill(x[:, :1], x[:, 1:])), "must start at the fill"
    # the loss on the known pixels has no gradient: they are the input's
    known = x[:, 1:] == 0
    (out[known] - 1).pow(2).sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.parameters())
    net.zero_grad()
    net(x).reconstruction[~known].sum().backward()
    assert net.head.weight.grad.abs().sum() > 0
    with torch.no_grad():  # after a change, known pixels still pass through exactly
        net.head.weight.normal_()
        out = net(x).reconstruction
    assert torch.equal(out[known], x[:, :1][known]) and not torch.equal(
        out, diffusion_fill(x[:, :1], x[:, 1:]))
    path = aekit.save_model(net, tmp_path / "inp.safetensors")
    net2 = aekit.load(path)
    assert net2.config()["fill"] == "diffusion"
    with torch.no_grad():
        assert torch.equal(net.eval()(x).reconstruction, net2(x).reconstruction)
    # without skips the decoder still needs the input (the fill and the known pixels)
    flat = UNetAE(2, out_channels=1, features=4, depth=2, skips=False, fill="diffusion")
    assert flat.decodes_from_code is False
    with pytest.raises(ValueError, match="cannot decode from the code alone"):
        flat.decode(flat.encode(x))
    with pytest.raises(ValueError, match="fill must be one of"):
        UNetAE(2, out_channels=1, fill="telea")
    with pytest.raises(ValueError, match=r"in_channels == out_channels \+ 1"):
        UNetAE(1, fill="diffusion")
    with pytest.raises(ValueError, match="output='linear'"):
        UNetAE(2, out_channels=1, fill="diffusion", output="sigmoid")
