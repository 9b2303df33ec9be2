"""Non-blind denoising with a noise-level map input (FFDNet-style): the training damage, the
U-Net's residual over the image channels, denoise()'s σ map, train_denoiser and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import aekit
from aekit.cli import main
from aekit.images import (
    GaussianNoise,
    NoiseLevelMap,
    SaltPepperNoise,
    denoise,
    estimate_noise,
    load_photo,
    psnr,
    train_denoiser,
    write_image,
)
from aekit.models import UNetAE


def test_noise_level_map_channel_is_the_sigma_each_image_got():
    x = torch.rand(64, 1, 32, 32)
    g = torch.Generator().manual_seed(3)
    y, m = NoiseLevelMap(GaussianNoise((0.05, 0.35))).with_mask(x, g)
    assert y.shape == (64, 2, 32, 32) and m.shape == (64, 1, 32, 32) and bool((m == 1).all())
    sig = y[:, 1]
    assert torch.equal(sig, sig[:, :1, :1].expand_as(sig)), "the map must be constant per image"
    s = sig[:, 0, 0]
    assert float(s.min()) >= 0.05 and float(s.max()) <= 0.35 and float(s.std()) > 0.05, s
    # the map is the σ the noise was drawn with: the residual's std matches it per image
    est = (y[:, 0] - x[:, 0]).flatten(1).std(1)
    rel = ((est - s).abs() / s).max()
    assert float(rel) < 0.12, f"noise std vs map: worst relative gap {float(rel):.3f}"
    # the noisy channel is exactly what GaussianNoise draws with the same generator
    y2, s2 = GaussianNoise((0.05, 0.35)).with_sigma(x, torch.Generator().manual_seed(3))
    assert torch.equal(y[:, :1], y2) and torch.equal(s, s2.flatten())
    with pytest.raises(TypeError, match="noise must be a GaussianNoise"):
        NoiseLevelMap(SaltPepperNoise(0.1))


def test_unet_noise_map_subtracts_from_the_image_channels_reads_the_map_and_round_trips(
        tmp_path):
    torch.manual_seed(0)
    net = UNetAE(2, out_channels=1, features=4, depth=2, residual=True, noise_map=True).eval()
    x = torch.rand(2, 1, 16, 16)
    inp = torch.cat([x, torch.full_like(x, 0.2)], 1)
    with torch.no_grad():
        padded = net._pad(inp)[0]
        h, sk = net._encode_maps(padded)
        s = net._decode_maps(h, sk)
        out = net(inp).reconstruction
        torch.testing.assert_close(out, x - s)
        other = net(torch.cat([x, torch.full_like(x, 0.0)], 1)).reconstruction
    assert float((out - other).abs().max()) > 1e-4, "the σ channel must change the output"
    aekit.save_model(net, tmp_path / "n.safetensors")
    back = aekit.load(tmp_path / "n.safetensors").eval()
    assert back.noise_map is True
    with torch.no_grad():
        torch.testing.assert_close(back(inp).reconstruction, out)
    with pytest.raises(ValueError, match="noise_map=True reads the last input channel"):
        UNetAE(1, noise_map=True)
    with pytest.raises(ValueError, match="noise_map=True reads the last input channel"):
        UNetAE(2, out_channels=1, noise_map=True, fill="diffusion")
    with pytest.raises(ValueError, match="residual=True"):
        UNetAE(2, out_channels=1, residual=True)


class _Probe(nn.Module):
    """Returns one input channel: the image (identity) or the σ map."""

    noise_map = True
    in_channels = 2
    _images = True  # tiled as a fully convolutional image model (as UNetAE / DnCNN are)

    def __init__(self, channel: int):
        super().__init__()
        self.channel = channel

    def forward(self, x):
        return x[:, self.channel:self.channel + 1]


def test_denoise_gives_the_model_the_sigma_map_given_or_estimated():
    rng = np.random.default_rng(0)
    clean = load_photo("camera")[:, :150, :170]
    noisy = (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)
    # an identity model reproduces the image exactly through the tiles, with or without σ
    out = denoise(_Probe(0), noisy, sigma=0.2, clip=False)
    np.testing.assert_allclose(out, noisy, atol=1e-6)
    out = denoise(_Probe(0), noisy, clip=False, self_ensemble=True)
    np.testing.assert_allclose(out, noisy, atol=1e-6)
    # the map the model sees: the given σ, else the wavelet estimate
    np.testing.assert_allclose(denoise(_Probe(1), noisy, sigma=0.2, clip=False), 0.2, atol=1e-6)
    est = estimate_noise(noisy)
    assert 0.08 < est < 0.12, est
    np.testing.assert_allclose(denoise(_Probe(1), noisy, clip=False), est, atol=1e-6)
    with pytest.raises(ValueError, match="sigma must be a finite noise level"):
        denoise(_Probe(0), noisy, sigma=float("nan"))
    with pytest.raises(ValueError, match="sigma must be a finite noise level"):
        denoise(_Probe(0), noisy, sigma=-0.1)
    with pytest.raises(ValueError, match="the model is blind"):
        denoise(UNetAE(1, features=4, depth=2, residual=True), noisy, sigma=0.1)


def _blocks(seed: int, n: int = 96, b: int = 8) -> np.ndarray:
    """A piecewise-constant image (1, n, n) of random gray b×b blocks in [0.2, 0.8]."""
    r = np.random.default_rng(seed)
    return np.kron(r.uniform(0.2, 0.8, (n // b, n // b)), np.ones((b, b)))[None].astype(
        np.float32)


def test_train_denoiser_noise_map_learns_to_use_the_level():
    """A small noise-map U-Net trained on σ ~ U[0, 0.3] (block images, fixed seeds): told the
    true σ it denoises far better than told σ = 0, and told σ = 0 it changes the image less.
    (Measured: noisy 13.99 dB; told 0 / 0.1 / 0.2 / 0.3: 14.06 / 15.22 / 20.65 / 18.01;
    seeds 1 and 2 gave margins over σ = 0 of 2.2 and 2.5 dB.)"""
    photos = [_blocks(s) for s in range(4)]
    torch.manual_seed(0)
    net = UNetAE(2, out_channels=1, features=8, depth=2, residual=True, noise_map=True)
    m, _ = train_denoiser(photos, level=(0.0, 0.3), model=net, noise_map=True, max_iter=4,
                          n_patches=512, patch_size=24, batch_size=16, learning_rate=3e-3,
                          progress=False, random_state=0)
    clean = _blocks(99)
    noisy = (clean + 0.2 * np.random.default_rng(1).standard_normal(clean.shape)).astype(
        np.float32)
    told0 = denoise(m, noisy, sigma=0.0, clip=False)
    told = denoise(m, noisy, sigma=0.2, clip=False)
    p_in, p0, p = psnr(clean, noisy), psnr(clean, told0), psnr(clean, told)
    msg = f"noisy {p_in:.2f} dB, told σ=0: {p0:.2f}, told the true 0.2: {p:.2f}"
    assert p > p0 + 1.5 and p > p_in + 4.0, msg
    assert np.abs(told0 - noisy).mean() < np.abs(told - noisy).mean(), msg
    one = photos[:1]
    with pytest.raises(ValueError, match="noise_map=True is for Gaussian noise"):
        train_denoiser(one, noise="salt_pepper", level=0.1, noise_map=True)
    with pytest.raises(ValueError, match="noise_map=True needs model='unet'"):
        train_denoiser(one, model="dncnn", noise_map=True)
    with pytest.raises(ValueError, match="the given model has noise_map=False"):
        train_denoiser(one, model=UNetAE(1, features=4, depth=2), noise_map=True)


def test_cli_denoise_noise_map_and_sigma(tmp_path, capsys):
    rng = np.random.default_rng(5)
    clean = load_photo("camera")[:, 100:164, 100:164]
    write_image(tmp_path / "noisy.png", np.clip(clean + 0.1 * rng.standard_normal(clean.shape),
                                                0, 1))
    folder = tmp_path / "train"
    folder.mkdir()
    write_image(folder / "a.png", load_photo("coins")[:, :96, :96])
    common = ["--train", "--train-images", str(folder), "--max-iter", "1", "--patches", "8"]
    noisy, out = str(tmp_path / "noisy.png"), str(tmp_path / "out.png")
    model = str(tmp_path / "nm.safetensors")
    assert main(["denoise", noisy, "-o", out, "--model", model, "--noise-map", "--sigma",
                 "0.1", *common]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["sigma_used"] == 0.1, rep
    assert aekit.load(model).noise_map is True
    # the saved non-blind model without --sigma uses the estimate
    assert main(["denoise", noisy, "-o", out, "--model", model]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["sigma_used"] == rep["estimated_sigma"], rep
    # errors exit 2 and name the flag; nothing is written
    for bad in (["--sigma", "0.1", "--model", str(tmp_path / "blind.safetensors"), *common],
                ["--noise", "salt_pepper", "--noise-map", *common],
                ["--sigma", "-1", "--model", model]):
        assert main(["denoise", noisy, "-o", str(tmp_path / "bad.png"), *bad]) == 2, bad
        err = capsys.readouterr().err
        assert "--sigma" in err or "--noise-map" in err, err
    assert not (tmp_path / "bad.png").exists()
