"""Guided (joint) non-local means: the fast path against the definition, its limits, and
what a clean guide buys on a noisy image."""

import numpy as np
import pytest
from scipy import ndimage

from aekit.images import psnr
from aekit.images.guided import guided_nl_means, naive_guided_nl_means


@pytest.mark.parametrize("patch,window,h,gs", [(3, 5, 0.3, 0.1), (1, 3, 0.05, 0.0),
                                                (5, 7, 1.0, 0.2), (3, 5, (0.1, 0.4), 0.05)])
def test_fast_path_matches_the_definition(patch, window, h, gs):
    rng = np.random.default_rng(patch * 10 + window)
    x = rng.random((2, 13, 11)).astype(np.float32)
    g = rng.random((3, 13, 11)).astype(np.float32)
    fast = guided_nl_means(x, g, h=h, patch=patch, window=window, guide_sigma=gs)
    ref = naive_guided_nl_means(x, g, h=h, patch=patch, window=window, guide_sigma=gs)
    err = float(np.abs(fast - ref).max())
    assert fast.shape == (2, 13, 11) and fast.dtype == np.float32
    assert err < 1e-5, f"max |fast − definition| = {err}"


def test_a_constant_guide_gives_the_window_mean():
    rng = np.random.default_rng(1)
    x = rng.random((20, 17)).astype(np.float32)
    out = guided_nl_means(x, np.full_like(x, 0.5), h=0.1, patch=3, window=5)
    ref = ndimage.uniform_filter(x.astype(np.float64), 5, mode="mirror")
    assert out.shape == x.shape
    err = float(np.abs(out - ref).max())
    assert err < 1e-5, f"max |out − 5x5 mean with reflected borders| = {err}"


def test_a_tiny_h_with_distinct_patches_returns_the_image():
    rng = np.random.default_rng(2)
    x = rng.random((1, 16, 16)).astype(np.float32)
    out = guided_nl_means(x, x, h=1e-3, patch=3, window=7)
    err = float(np.abs(out - x).max())
    assert err < 1e-6, f"only the pixel itself should weigh: max change {err}"


def test_a_clean_guide_denoises_far_better_than_the_noisy_image_itself():
    # low-contrast stripes two pixels wide (a step of half the noise level): the guide shows
    # them, the noisy image's own patches cannot find them at any h
    xx = np.mgrid[:64, :64][1]
    guide = ((xx // 2) % 2).astype(np.float32)[None]
    clean = (0.5 + 0.05 * guide).astype(np.float32)
    noisy = clean + np.random.default_rng(3).normal(0, 0.1, clean.shape).astype(np.float32)
    p_noisy = psnr(clean, noisy)
    p_guided = psnr(clean, guided_nl_means(noisy, guide, h=0.1, patch=5, window=11))
    p_self = max(psnr(clean, guided_nl_means(noisy, noisy, h=h, patch=5, window=11,
                                             guide_sigma=0.1)) for h in (0.03, 0.1, 0.3, 1.0))
    assert p_guided > p_noisy + 12, f"guided {p_guided:.2f} dB vs noisy {p_noisy:.2f}"
    assert p_guided > p_self + 1.5, f"guided {p_guided:.2f} dB vs best self-guided {p_self:.2f}"


@pytest.mark.parametrize("kwargs,match", [
    (dict(h=0.0), "h must be"),
    (dict(h=float("nan")), "h must be"),
    (dict(h=(0.1, 0.2)), "one per image channel \\(1\\)"),
    (dict(h=0.1, patch=4), "patch must be"),
    (dict(h=0.1, window=0), "window must be"),
    (dict(h=0.1, guide_sigma=-1.0), "guide_sigma must be"),
    (dict(h=0.1, window=41), "too small"),
])
def test_bad_arguments_are_named(kwargs, match):
    x = np.zeros((1, 20, 20), np.float32)
    with pytest.raises(ValueError, match=match):
        guided_nl_means(x, x, **kwargs)


def test_bad_images_are_named():
    x = np.zeros((1, 20, 20), np.float32)
    with pytest.raises(ValueError, match="guide must have the image's height and width"):
        guided_nl_means(x, np.zeros((1, 20, 19), np.float32), h=0.1)
    bad = x.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="guide contains NaN"):
        guided_nl_means(x, bad, h=0.1)


def test_refine_keeps_what_it_is_not_asked_to_touch():
    from aekit.images import GuidedRefine, opponent_to_rgb, rgb_to_opponent

    rng = np.random.default_rng(4)
    rgb = rng.random((3, 30, 34)).astype(np.float32)
    # nothing asked: the image back (through the exact opponent round trip)
    same = GuidedRefine(chroma_h=None)(rgb)
    assert np.abs(same - rgb).max() < 1e-6
    # chroma only: the luminance is untouched, the chroma is guided_nl_means of it
    r = GuidedRefine(chroma_h=0.05, patch=3, window=7)
    o, out = rgb_to_opponent(rgb), rgb_to_opponent(r(rgb))
    assert np.abs(out[0] - o[0]).max() < 1e-6
    want = guided_nl_means(o[1:], o, h=0.05, patch=3, window=7)
    assert np.abs(out[1:] - want).max() < 1e-5
    # luma as well: the same guide (the input's opponent channels) for both passes
    r2 = GuidedRefine(chroma_h=0.05, luma_h=0.01, patch=3, window=7)
    want_y = guided_nl_means(o[:1], o, h=0.01, patch=3, window=7)
    np.testing.assert_allclose(r2(rgb), opponent_to_rgb(np.concatenate([want_y, want])),
                               atol=1e-5)
    # a gray image: chroma_h has nothing to act on, luma_h is self-guided NL-means
    gray = rgb[:1]
    assert np.abs(r(gray) - gray).max() == 0
    np.testing.assert_allclose(GuidedRefine(chroma_h=None, luma_h=0.02, patch=3,
                                            window=7)(gray),
                               guided_nl_means(gray, gray, h=0.02, patch=3, window=7),
                               atol=1e-6)
    assert GuidedRefine(**r2.config()) == r2


def test_denoise_applies_refine_to_the_models_output_before_clipping():
    from torch import nn

    from aekit.images import GuidedRefine, denoise

    class Gray(nn.Module):  # one-channel identity: denoise runs it on the opponent channels
        _images = True
        in_channels = 1

        def forward(self, x):
            return x

    rgb = np.random.default_rng(5).random((3, 40, 44)).astype(np.float32)
    r = GuidedRefine(chroma_h=0.05, luma_h=0.02, patch=3, window=9)
    out = denoise(Gray(), rgb, refine=r)
    np.testing.assert_allclose(out, np.clip(r(rgb), 0, 1), atol=1e-5)
    with pytest.raises(TypeError, match="refine must be a GuidedRefine"):
        denoise(Gray(), rgb, refine={"chroma_h": 0.05})


@pytest.mark.parametrize("kwargs,match", [
    (dict(chroma_h=0.0), "chroma_h must be"), (dict(luma_h=-0.1), "luma_h must be"),
    (dict(chroma_h=True), "chroma_h must be"), (dict(patch=2), "patch must be"),
    (dict(window=4), "window must be")])
def test_refine_settings_are_checked(kwargs, match):
    from aekit.images import GuidedRefine

    with pytest.raises(ValueError, match=match):
        GuidedRefine(**kwargs)


def test_cli_refines_a_colour_result_and_names_a_bad_flag(tmp_path, capsys):
    import json

    from aekit import save_model
    from aekit.cli import main
    from aekit.images import load_photo, read_image, write_image
    from aekit.models import UNetAE

    clean = load_photo("astronaut", "RGB")[:, 100:164, 100:164]
    noisy = np.clip(clean + 0.1 * np.random.default_rng(6).standard_normal(clean.shape), 0, 1)
    write_image(tmp_path / "noisy.png", noisy)
    model = tmp_path / "gray.safetensors"
    save_model(UNetAE(1, features=4, depth=2, residual=True), model)
    out = tmp_path / "out.png"
    assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(out), "--color", "--model",
                 str(model), "--refine-chroma", "0.04"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["refine"] == {"chroma_h": 0.04, "luma_h": None, "patch": 5, "window": 21}, rep
    assert read_image(out, "RGB").shape == clean.shape
    assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "x.png"),
                 "--color", "--model", str(model), "--refine-luma", "-1"]) != 0
    assert "--refine-luma must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
