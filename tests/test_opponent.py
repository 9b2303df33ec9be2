"""A grayscale denoiser on colour images through the opponent colour space (CBM3D's way):
the transform's algebra, the noise it leaves, and denoise()'s routing."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from torch import nn

from aekit.images import denoise, opponent_to_rgb, rgb_to_opponent
from aekit.images.opponent import _OPPONENT, OPPONENT_NOISE_SCALE
from aekit.models import UNetAE


def test_opponent_transform_is_exact_orthogonal_and_maps_the_cube_into_the_unit_cube():
    rng = np.random.default_rng(0)
    x = rng.random((3, 7, 9)).astype(np.float32)  # images are float32 (as_chw)
    back = opponent_to_rgb(rgb_to_opponent(x))
    assert np.abs(back - x).max() < 3e-7, np.abs(back - x).max()  # float32 rounding
    # rows orthogonal, norms = the noise scales: T Tᵀ = diag(scale²)
    np.testing.assert_allclose(_OPPONENT @ _OPPONENT.T, np.diag(np.square(OPPONENT_NOISE_SCALE)),
                               atol=1e-15)
    # the 8 corners of the RGB cube land in [0, 1]³ (so does the cube, by convexity)
    corners = np.array(list(itertools.product([0.0, 1.0], repeat=3))).T[:, :, None]
    y = rgb_to_opponent(corners)
    assert y.min() >= -1e-7 and y.max() <= 1 + 1e-7, (y.min(), y.max())
    assert y.dtype == np.float32


def test_opponent_keeps_gaussian_noise_white_at_the_stated_levels():
    sigma = 0.2
    noise = sigma * np.random.default_rng(1).standard_normal((3, 400, 500))
    y = rgb_to_opponent(0.5 + noise) - rgb_to_opponent(np.full((3, 400, 500), 0.5))
    std = y.reshape(3, -1).std(1)
    want = sigma * np.array(OPPONENT_NOISE_SCALE)
    np.testing.assert_allclose(std, want, rtol=0.01, err_msg=f"measured {std}, want {want}")
    corr = np.corrcoef(y.reshape(3, -1))
    off = np.abs(corr[~np.eye(3, dtype=bool)]).max()
    assert off < 0.01, f"cross-channel correlation {off:.4f}"


class _Gray(nn.Module):
    """A one-channel image model: identity, or (noise_map=True) the σ map it was given."""

    _images = True

    def __init__(self, noise_map: bool = False):
        super().__init__()
        self.noise_map, self.in_channels = noise_map, 2 if noise_map else 1
        self.seen: list[float] = []

    def forward(self, x):
        self.seen.append(float(x[:, 0].mean()))
        return x[:, -1:] if self.noise_map else x[:, :1]


def test_denoise_runs_a_gray_model_on_the_opponent_channels_of_an_rgb_image():
    rng = np.random.default_rng(2)
    rgb = rng.random((3, 40, 50)).astype(np.float32)
    m = _Gray()
    out = denoise(m, rgb, clip=False)  # auto: a one-channel model and an RGB image
    np.testing.assert_allclose(out, rgb, atol=1e-5)
    # the model saw the three opponent channels (one tile each here), in order
    np.testing.assert_allclose(m.seen, rgb_to_opponent(rgb).reshape(3, -1).mean(1), atol=1e-5)
    np.testing.assert_allclose(denoise(_Gray(), rgb, clip=False, self_ensemble=True), rgb,
                               atol=1e-5)
    # a non-blind model is told σ scaled for each channel: its σ maps come back through the
    # inverse transform
    out = denoise(_Gray(noise_map=True), rgb, sigma=0.3, clip=False)
    maps = 0.3 * np.array(OPPONENT_NOISE_SCALE)[:, None, None] * np.ones((3, 40, 50))
    np.testing.assert_allclose(out, opponent_to_rgb(maps), atol=1e-5)
    # gray images and RGB models keep the direct path
    gray = rgb[:1]
    np.testing.assert_allclose(denoise(_Gray(), gray, clip=False), gray, atol=1e-6)


def test_denoise_colour_errors():
    rgb = np.random.default_rng(3).random((3, 32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match="colour must be"):
        denoise(_Gray(), rgb, colour="lab")
    with pytest.raises(ValueError, match="one-channel model on an RGB image"):
        denoise(_Gray(), rgb[:1], colour="opponent")
    with pytest.raises(ValueError, match="one-channel model on an RGB image"):
        denoise(UNetAE(3, features=4, depth=2, residual=True), rgb, colour="opponent")
    with pytest.raises(ValueError, match="the model is blind"):
        denoise(_Gray(), rgb, sigma=0.1)
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        rgb_to_opponent(rgb[:1])
    with pytest.raises(ValueError, match="3 \\(opponent\\) channels"):
        opponent_to_rgb(rgb[:1])


def test_cli_denoises_a_colour_file_with_a_gray_model(tmp_path, capsys):
    """`aekit denoise --color` with a saved one-channel model runs it on the opponent channels
    (reported as "colour": "opponent") and writes an RGB file."""
    from aekit.cli import main
    from aekit.images import load_photo, read_image, write_image

    rng = np.random.default_rng(6)
    clean = load_photo("astronaut", "RGB")[:, 100:164, 100:164]
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
    write_image(tmp_path / "noisy.png", noisy)
    folder = tmp_path / "train"
    folder.mkdir()
    write_image(folder / "a.png", load_photo("coins")[:, :96, :96])
    model, out = str(tmp_path / "gray.safetensors"), str(tmp_path / "out.png")
    assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "g.png"),
                 "--train", "--train-images", str(folder), "--max-iter", "1", "--patches",
                 "8", "--model", model]) == 0  # trained gray (mode L)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["colour"] == "direct"
    assert main(["denoise", str(tmp_path / "noisy.png"), "-o", out, "--color", "--model",
                 model]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["colour"] == "opponent", rep
    assert read_image(out, "RGB").shape == clean.shape


def test_opponent_noise_band_spans_the_measured_levels_of_the_three_channels():
    """[σ/√3, σ/√2] holds the measured σ of every opponent channel (and no wider band
    would be needed): the lowest is Y's, the highest C₁'s."""
    from aekit.images import opponent_noise_band

    for sigma in (0.05, 0.1, 0.3):
        lo, hi = opponent_noise_band(sigma)
        np.testing.assert_allclose((lo, hi), (sigma / 3 ** 0.5, sigma / 2 ** 0.5), rtol=1e-12)
        noise = sigma * np.random.default_rng(2).standard_normal((3, 300, 300))
        std = (rgb_to_opponent(0.5 + noise) - rgb_to_opponent(np.full_like(noise, 0.5))
               ).reshape(3, -1).std(1)
        assert lo * 0.98 < std.min() and std.max() < hi * 1.02, (sigma, std, lo, hi)
        np.testing.assert_allclose([std.min(), std.max()], [lo, hi], rtol=0.02)
    assert opponent_noise_band((0.0, 0.35)) == (0.0, 0.35 * max(OPPONENT_NOISE_SCALE))
    for bad in (-0.1, float("nan"), (0.3, 0.1)):
        with pytest.raises(ValueError, match="sigma must be a finite level"):
            opponent_noise_band(bad)


def test_a_gray_net_trained_on_the_band_denoises_an_rgb_image_through_the_opponent_route():
    """The documented recipe end to end: train_denoiser on gray images at the band of RGB
    σ = 0.1, then denoise(model, rgb) runs it on the opponent channels and improves PSNR."""
    import torch

    from aekit.images import denoise, load_photo, opponent_noise_band, psnr, train_denoiser
    from aekit.images.apps import denoise_colour_mode

    torch.manual_seed(0)
    gray = [load_photo("coffee", "L")[:, :192, :192]]
    net = UNetAE(1, features=16, depth=2, residual=True)
    m, _ = train_denoiser(gray, level=opponent_noise_band(0.1), model=net, max_iter=10,
                          n_patches=512, progress=False, random_state=0)
    rgb = load_photo("chelsea", "RGB")[:, :128, :128]
    noisy = rgb + 0.1 * np.random.default_rng(3).standard_normal(rgb.shape).astype(np.float32)
    assert denoise_colour_mode(m, noisy) == "opponent"
    before, after = psnr(rgb, np.clip(noisy, 0, 1)), psnr(rgb, denoise(m, noisy))
    # 160 steps of a small net: measured 20.08 -> 21.31 dB (returning the input: +0)
    assert after > before + 1.0, f"PSNR {before:.2f} -> {after:.2f} dB"
