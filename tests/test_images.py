"""aekit.images: file I/O, tiling, metrics against scikit-image, patches, damage, apps, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.images import (
    Blocks,
    GaussianNoise,
    PatchSource,
    SaltPepperNoise,
    TextOverlay,
    compress_image,
    decompress_image,
    dihedral,
    inpaint,
    list_images,
    load_folder,
    load_photo,
    predict_tiled,
    psnr,
    read_compressed,
    read_image,
    ssim,
    write_image,
)
from aekit.io import FileFormatError
from aekit.models import ConvAE, DenseAE, UNetAE

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("suffix, bits, c, tol", [(".png", 8, 1, 0.5 / 255),
                                                  (".png", 8, 3, 0.5 / 255),
                                                  (".png", 16, 1, 0.5 / 65535),
                                                  (".tif", 16, 1, 0.5 / 65535),
                                                  (".tif", 8, 3, 0.5 / 255),
                                                  (".jpg", 8, 3, 0.2)])
def test_write_read_round_trip(tmp_path, suffix, bits, c, tol):
    rng = np.random.default_rng(0)
    a = rng.random((c, 13, 17)).astype(np.float32)
    p = write_image(tmp_path / f"x{suffix}", a, bits=bits)
    b = read_image(p, None)
    assert b.shape == a.shape, (b.shape, a.shape)
    err = np.abs(b - a).max() if suffix != ".jpg" else np.abs(b - a).mean()
    assert err <= tol + 1e-7, err


def test_io_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="16 bits are supported for grayscale"):
        write_image(tmp_path / "a.png", np.zeros((3, 4, 4)), bits=16)
    with pytest.raises(ValueError, match="unsupported suffix '.gif2'"):
        write_image(tmp_path / "a.gif2", np.zeros((4, 4)))
    assert not list(tmp_path.iterdir())  # nothing half-written
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(FileFormatError, match="broken.png"):
        read_image(bad)
    folder = tmp_path / "f"
    folder.mkdir()
    write_image(folder / "a.png", np.zeros((5, 7)))
    write_image(folder / "b.png", np.ones((9, 4)))
    (folder / "notes.txt").write_text("hi")
    with pytest.raises(FileFormatError, match="notes.txt"):
        list_images(folder)
    imgs = load_folder(folder, skip_other=True)  # mixed sizes are fine
    assert [i.shape for i in imgs] == [(1, 5, 7), (1, 9, 4)]


@pytest.mark.parametrize("hw, tile, overlap", [((37, 53), 16, 5), ((16, 16), 32, 8),
                                               ((100, 41), 24, 12)])
def test_identity_model_is_reproduced_exactly_by_tiling(hw, tile, overlap):
    x = np.random.default_rng(1).random((3, *hw)).astype(np.float32)
    out = predict_tiled(lambda t: t, x, tile=tile, overlap=overlap)
    assert np.array_equal(out, x), np.abs(out - x).max()


def test_tiling_blends_without_seams_and_matches_a_fully_convolutional_model():
    torch.manual_seed(0)
    m = UNetAE(1, features=4, depth=2).eval()
    x = np.random.default_rng(2).random((1, 64, 72)).astype(np.float32)
    with torch.no_grad():
        whole = m(torch.from_numpy(x)[None]).reconstruction[0].numpy()
    tiled = predict_tiled(m, x, tile=48, overlap=24)
    # away from the image border, tile borders are down-weighted: close to the whole pass
    inner = np.abs(tiled - whole)[:, 8:-8, 8:-8]
    assert inner.mean() < 0.05 * np.abs(whole).mean() + 1e-3, inner.mean()


def test_tiling_dense_and_flat_code_models_and_errors():
    dense = DenseAE([64, 8]).eval()
    out = predict_tiled(dense, RNG.random((20, 30)), overlap=4)
    assert out.shape == (1, 20, 30)
    conv = ConvAE([1, 12, 12], channels=[4], code_size=3).eval()
    assert predict_tiled(conv, RNG.random((1, 25, 14)), overlap=6).shape == (1, 25, 14)
    with pytest.raises(ValueError, match="smaller than the model's input 12x12"):
        predict_tiled(conv, RNG.random((1, 10, 14)))
    with pytest.raises(ValueError, match="expects 3-channel images, the image has 1"):
        predict_tiled(UNetAE(3, depth=1), RNG.random((1, 16, 16)))


def test_psnr_and_ssim_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(3)
    gray = load_photo("camera")[:, :96, :128]
    noisy = np.clip(gray + 0.1 * rng.standard_normal(gray.shape), 0, 1).astype(np.float32)
    ref = structural_similarity(gray[0], noisy[0], data_range=1.0)
    assert abs(ssim(gray, noisy) - ref) < 1e-6, (ssim(gray, noisy), ref)
    assert abs(psnr(gray, noisy) - peak_signal_noise_ratio(gray, noisy, data_range=1)) < 1e-6
    rgb = rng.random((3, 40, 50)).astype(np.float32)
    rgb2 = np.clip(rgb + 0.05 * rng.standard_normal(rgb.shape), 0, 1)
    ref = structural_similarity(rgb, rgb2, data_range=1.0, channel_axis=0)
    assert abs(ssim(rgb, rgb2) - ref) < 1e-6, (ssim(rgb, rgb2), ref)
    # hand-made cases
    assert psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)) == pytest.approx(20.0)
    assert psnr(gray, gray) == float("inf") and ssim(gray, gray) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_patch_source_shapes_symmetries_and_fixed_validation():
    a = np.arange(2 * 30 * 40, dtype=np.float32).reshape(2, 30, 40) / 2400
    b = RNG.random((2, 50, 20)).astype(np.float32)
    src = PatchSource([a, b], patch_size=16, n_patches=10, damage=GaussianNoise(0.1), seed=0)
    batch = src.take(torch.arange(10))
    assert batch.x.shape == (10, 2, 16, 16) and batch.x_tilde.shape == batch.x.shape
    assert 0.05 < float((batch.x_tilde - batch.x).std()) < 0.15
    assert not torch.equal(src.take(torch.arange(10)).x, batch.x)  # fresh every call
    val = PatchSource([a, b], 16, 10, damage=GaussianNoise(0.1), fresh=False, seed=3)
    v1, v2 = val.take(torch.tensor([4, 2])), val.take(torch.tensor([2, 4]))
    assert torch.equal(v1.x[0], v2.x[1]) and torch.equal(v1.x_tilde[1], v2.x_tilde[0])
    # the 8 symmetries are distinct on an asymmetric patch and rot90^4 = identity
    p = torch.arange(9.0).reshape(1, 3, 3)
    assert len({tuple(dihedral(p, k).flatten().tolist()) for k in range(8)}) == 8
    with pytest.raises(ValueError, match=r"images\[1\] of size \(50, 20\) is smaller"):
        PatchSource([a, b], patch_size=24)
    with pytest.raises(ValueError, match=r"images\[1\] has 1 channels"):
        PatchSource([a, b[:1]], patch_size=8)


def test_damages_change_what_they_say():
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 3, 64, 64), 0.5)
    y, m = SaltPepperNoise(0.1).with_mask(x, g)
    frac = float(m.mean())
    assert 0.08 < frac < 0.12, frac
    assert set(torch.unique(y[m.expand_as(y) > 0]).tolist()) <= {0.0, 1.0}
    assert torch.equal(y[m.expand_as(y) == 0], x[m.expand_as(x) == 0])
    y, m = Blocks(count=1, size=0.25).with_mask(x, g)
    assert float(m.sum()) == 4 * 16 * 16 and torch.equal(y[m.expand_as(y) == 0],
                                                         x[m.expand_as(x) == 0])
    y, m = TextOverlay(lines=2).with_mask(x, g)
    kept = m.expand_as(y) == 0
    assert float(m.mean()) > 0.005 and torch.equal(y[kept], x[kept])
    with pytest.raises(ValueError, match=r"expects images \(n, C, H, W\)"):
        GaussianNoise(0.1)(torch.rand(3, 5))


def test_inpaint_with_mask_keeps_known_pixels_and_checks_the_mask():
    torch.manual_seed(0)
    m = UNetAE(2, out_channels=1, features=4, depth=1, output="sigmoid").eval()
    x = RNG.random((1, 20, 24)).astype(np.float32)
    mask = np.zeros((20, 24), np.float32)
    mask[5:10, 6:12] = 1
    out = inpaint(m, x, mask)
    assert np.array_equal(out[:, mask == 0], x[:, mask == 0])
    with pytest.raises(ValueError, match=r"mask has shape \(20, 20\), the image is 20x24"):
        inpaint(m, x, mask[:, :20])
    with pytest.raises(ValueError, match="pass mask"):
        inpaint(m, x)


def test_compress_round_trip_and_bad_files(tmp_path):
    torch.manual_seed(0)
    m = ConvAE([1, 16, 16], channels=[4, 4], code_size=3, code="map",
               code_activation="sigmoid").eval()
    x = RNG.random((1, 21, 30)).astype(np.float32)
    data = compress_image(m, x, bits=4, path=tmp_path / "x.aekc")
    header, q = read_compressed(tmp_path / "x.aekc")
    assert header["shape"] == [1, 21, 30] and q.shape == (3, 6, 8) and q.max() <= 15
    out = decompress_image(m, data)
    assert out.shape == x.shape
    # the decoded image equals the model's decoding of the dequantised code
    z = torch.from_numpy(q / 15.0).float()[None]
    ref = m.decode(z)[0, :, :21, :30].detach().numpy()
    np.testing.assert_allclose(out, np.clip(ref, 0, 1), atol=1e-6)
    (tmp_path / "bad.aekc").write_bytes(b"nope")
    with pytest.raises(FileFormatError, match="bad.aekc is not an aekit compressed image"):
        read_compressed(tmp_path / "bad.aekc")
    with pytest.raises(ValueError, match="bits must be in 1..8"):
        compress_image(m, x, bits=9)


def test_cli_denoise_inpaint_compress_on_real_files(tmp_path, capsys):
    import json

    from aekit.cli import main

    rng = np.random.default_rng(5)
    clean = load_photo("camera")[:, 100:164, 100:164]
    write_image(tmp_path / "clean.png", clean)
    write_image(tmp_path / "noisy.png", np.clip(clean + 0.1 * rng.standard_normal(clean.shape),
                                                0, 1))
    folder = tmp_path / "train"
    folder.mkdir()
    write_image(folder / "a.png", load_photo("coins")[:, :96, :96])
    common = ["--train", "--train-images", str(folder), "--max-iter", "1", "--patches", "8"]
    rc = main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "out.png"),
               "--model", str(tmp_path / "d.safetensors"), "--reference",
               str(tmp_path / "clean.png"), *common])
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and read_image(tmp_path / "out.png").shape == (1, 64, 64), rep
    assert 0.05 < rep["estimated_sigma"] < 0.15, rep
    # the saved model is reused without --train
    assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "o2.png"),
                 "--model", str(tmp_path / "d.safetensors")]) == 0
    mask = np.zeros((64, 64), np.float32)
    mask[10:20, 10:30] = 1
    write_image(tmp_path / "mask.png", mask)
    assert main(["inpaint", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "i.png"),
                 "--mask", str(tmp_path / "mask.png"), *common]) == 0
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "clean.png"), "-o", str(tmp_path / "c.aekc"),
                 "--bits", "3", "--decoded", str(tmp_path / "dec.png"), *common]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["bpp"] == pytest.approx(8 * (tmp_path / "c.aekc").stat().st_size / 64 ** 2,
                                      abs=1e-4)
    # errors name the argument / file and exit 2
    write_image(tmp_path / "small_mask.png", mask[:32])
    assert main(["inpaint", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "j.png"),
                 "--mask", str(tmp_path / "small_mask.png"), *common]) == 2
    assert "small_mask.png" in capsys.readouterr().err
    assert main(["denoise", str(tmp_path / "missing.png"), "-o", str(tmp_path / "k.png"),
                 "--model", str(tmp_path / "d.safetensors")]) == 2
    assert not (tmp_path / "j.png").exists() and not (tmp_path / "k.png").exists()


def test_train_image_model_old_keywords_warn_and_train_the_same():
    """issue 16: epochs/lr/seed -> max_iter/learning_rate/random_state (FutureWarning); the
    same weights either way (also through train_denoiser's keywords)."""
    import warnings

    from aekit.images import train_denoiser

    rng = np.random.default_rng(0)
    imgs = [rng.random((1, 24, 24)).astype(np.float32) for _ in range(2)]
    kw = dict(model="conv", patch_size=16, n_patches=8, batch_size=4, progress=False)
    torch.manual_seed(0)
    a, _ = train_denoiser(imgs, max_iter=1, learning_rate=1e-2, random_state=3, **kw)
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        b, _ = train_denoiser(imgs, epochs=1, lr=1e-2, seed=3, **kw)
    msgs = " | ".join(str(w.message) for w in rec if issubclass(w.category, FutureWarning))
    for old, new in (("epochs", "max_iter"), ("lr", "learning_rate"), ("seed", "random_state")):
        assert f"'{old}' is renamed '{new}'" in msgs, (old, msgs)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="pass 'max_iter' only"):
        train_denoiser(imgs, epochs=1, max_iter=2, **kw)


@pytest.mark.parametrize("cmd", ["denoise", "inpaint", "compress"])
def test_image_commands_old_flags_warn(cmd):
    from aekit.cli import _parser

    for old, dest in (("--epochs", "max_iter"), ("--seed", "random_state")):
        with pytest.warns(FutureWarning, match=f"'{old}' is renamed"):
            ns = _parser().parse_args([cmd, "x.png", "-o", "y.png", old, "4"])
        assert getattr(ns, dest) == 4, (cmd, old)


@pytest.mark.parametrize("cmd", ["clean-document", "colourise", "segment"])
def test_image_app_commands_old_flags_warn(cmd):
    from aekit.cli import _parser

    for old, dest in (("--epochs", "max_iter"), ("--seed", "random_state")):
        with pytest.warns(FutureWarning, match=f"'{old}' is renamed"):
            ns = _parser().parse_args([cmd, "x.png", "-o", "y.png", old, "4"])
        assert getattr(ns, dest) == 4, (cmd, old)


def test_image_app_trainers_old_keywords_warn_and_train_the_same():
    """train_colouriser (and fit_patches under it): epochs/lr/seed -> max_iter/learning_rate/
    random_state with a FutureWarning; the same weights."""
    import warnings

    from aekit.images.colour import train_colouriser

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, (1, 24, 24)).astype(np.float32)
    imgs = [np.concatenate([base, base * 0.5, base * 0.2])]
    kw = dict(features=4, depth=1, patch_size=16, n_patches=8, batch_size=4, progress=False)
    a, _ = train_colouriser(imgs, max_iter=1, learning_rate=1e-2, random_state=2, **kw)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        b, _ = train_colouriser(imgs, epochs=1, lr=1e-2, seed=2, **kw)
    msgs = " | ".join(str(w.message) for w in rec if issubclass(w.category, FutureWarning))
    for old, new in (("epochs", "max_iter"), ("lr", "learning_rate"), ("seed", "random_state")):
        assert f"train_colouriser: '{old}' is renamed '{new}'" in msgs, (old, msgs)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_denoiser_training_noise_clipped_for_files(monkeypatch, tmp_path):
    """``train_denoiser(clip=True)`` trains on x̃ = clip(x + σε, 0, 1) (what an image file
    holds); the CLI trains that way unless ``--unclipped-noise``."""
    import aekit.images.apps as apps
    from aekit.cli import main
    from aekit.images import train_denoiser

    seen = []

    def fake_train(model, imgs, damage, **kw):
        x = torch.full((4, 1, 16, 16), 0.95)
        y = damage(x, torch.Generator().manual_seed(0))
        seen.append((float(y.max()), float(y.min())))
        return torch.nn.Identity(), {}

    monkeypatch.setattr(apps, "train_image_model", fake_train)
    img = [np.full((1, 24, 24), 0.95, np.float32)]
    train_denoiser(img, level=0.3, clip=True)
    train_denoiser(img, level=0.3)
    assert seen[0][0] <= 1.0 and seen[0][1] >= 0.0, seen
    assert seen[1][0] > 1.2, f"unclipped AWGN at σ=0.3 around 0.95 should exceed 1: {seen}"
    write_image(tmp_path / "n.png", img[0])
    monkeypatch.setattr(apps, "denoise", lambda m, x, **kw: x)
    folder = tmp_path / "tr"
    folder.mkdir()
    write_image(folder / "a.png", img[0])
    base = ["denoise", str(tmp_path / "n.png"), "-o", str(tmp_path / "o.png"), "--train",
            "--train-images", str(folder), "--level", "0.3"]
    assert main(base) == 0 and seen[2][0] <= 1.0, seen
    assert main([*base, "--unclipped-noise"]) == 0 and seen[3][0] > 1.2, seen


def test_photo_splits_are_disjoint_and_extra_photos_load():
    """Training, validation, test and the extra photos never share a photo; the extra ones
    load from local files (no download) as (C, H, W) float32 in [0, 1]; the two motorcycle
    views differ (left vs right), and an unknown name is refused by name."""
    from aekit.images import EXTRA_PHOTOS, TEST_PHOTOS, TRAIN_PHOTOS, VAL_PHOTOS

    splits = [set(TRAIN_PHOTOS), set(VAL_PHOTOS), set(TEST_PHOTOS), set(EXTRA_PHOTOS)]
    assert sum(map(len, splits)) == len(set().union(*splits)), splits
    left, right = load_photo("motorcycle_left"), load_photo("motorcycle_right")
    assert left.shape == right.shape == (1, 432, 640), (left.shape, right.shape)
    assert float(np.abs(left - right).mean()) > 0.01, "left and right views are the same image"
    assert load_photo("motorcycle_left", "RGB").shape == (3, 432, 640)
    for name in ("text", "cell"):
        a = load_photo(name)
        assert a.dtype == np.float32 and a.ndim == 3 and 0 <= a.min() and a.max() <= 1, name
    with pytest.raises(ValueError, match="unknown photo 'lena'"):
        load_photo("lena")
