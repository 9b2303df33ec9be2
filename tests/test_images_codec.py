"""PCAResidualCodec: the PCA encoder against a per-block reference, equality with PCA at
initialisation, files, errors, and the keep-only-if-better training rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.images import psnr
from aekit.images.pca_codec import PCAResidualCodec, train_pca_codec
from aekit.io import FileFormatError


def _images(n=3, h=40, w=36, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / 10.0
    out = []
    for _ in range(n):
        a, b, c = rng.normal(size=3)
        im = 0.5 + 0.2 * np.sin(a * x + b * y) + 0.1 * np.cos(c * x * y / 4)
        out.append(np.clip(im + 0.02 * rng.normal(size=(h, w)), 0, 1)[None].astype(np.float32))
    return out


def test_encoder_matches_a_per_block_reference_and_full_basis_is_near_lossless():
    ims = _images()
    c = PCAResidualCodec(1, patch_size=4, n_coefficients=5, bits=6, depth=0)
    c.fit_basis(ims, n_patches=2000)
    x = ims[0][:, :, :35]  # width not a multiple of p: edge padding
    q = c.quantise(x)
    assert q.shape == (5, 10, 9) and q.dtype == np.uint8
    xp = np.pad(x[0], ((0, 0), (0, 1)), mode="edge")
    mu, V = c.mean.numpy(), c.basis.numpy()
    lo, hi = c.lo.numpy(), c.hi.numpy()
    R = np.zeros_like(xp, dtype=np.float64)
    for i in range(10):
        for j in range(9):
            blk = xp[4 * i:4 * i + 4, 4 * j:4 * j + 4].reshape(-1).astype(np.float64)
            coef = V @ (blk - mu)
            qq = np.round((np.clip(coef, lo, hi) - lo) / (hi - lo) * 63)
            assert np.array_equal(qq, q[:, i, j]), (i, j, qq, q[:, i, j])
            R[4 * i:4 * i + 4, 4 * j:4 * j + 4] = ((qq / 63 * (hi - lo) + lo) @ V + mu
                                                   ).reshape(4, 4)
    np.testing.assert_allclose(c.pca_decode(q, x.shape)[0], R[:, :35], atol=1e-5)
    # all C·p² coefficients at 8 bits: only the quantisation error is left
    full = PCAResidualCodec(1, patch_size=4, n_coefficients=16, bits=8, depth=0)
    full.fit_basis(ims, n_patches=2000)
    err = full.decompress(full.compress(ims[1]))
    assert psnr(ims[1], err) > 40, psnr(ims[1], err)


def test_learned_codec_is_the_pca_codec_at_initialisation_and_files_round_trip(tmp_path):
    ims = _images()
    pca = PCAResidualCodec(1, 4, 3, 4, depth=0).fit_basis(ims, n_patches=1500)
    res = PCAResidualCodec(1, 4, 3, 4, features=8, depth=3)
    res.load_state_dict(pca.state_dict(), strict=False)
    x = ims[2]
    data = res.compress(x, path=tmp_path / "x.aekp")
    assert data == pca.compress(x) == (tmp_path / "x.aekp").read_bytes()
    np.testing.assert_array_equal(res.decompress(data), pca.decompress(data))
    h, q = res.read(tmp_path / "x.aekp")
    assert h["shape"] == [1, 40, 36] and np.array_equal(q, res.quantise(x))
    # save / load: the same decoder
    with torch.no_grad():
        res.post.head.weight.normal_(0, 0.01)
    out = res.decompress(data)
    assert not np.array_equal(out, pca.decompress(data))
    back = PCAResidualCodec.load(res.save(tmp_path / "codec.safetensors"))
    np.testing.assert_array_equal(back.decompress(data), out)
    # errors name the problem
    with pytest.raises(FileFormatError, match="bad magic"):
        res.read(b"nope")
    with pytest.raises(FileFormatError, match="damaged aekit PCA-codec image"):
        res.read(data[:-5] + b"xxxxx")
    other = PCAResidualCodec(1, 4, 2, 4, depth=0).fit_basis(ims, n_patches=500)
    with pytest.raises(ValueError, match=r"\(C, k, bits, p\) = \(1, 3, 4, 4\), this one is "
                                         r"\(1, 2, 4, 4\)"):
        other.read(data)
    with pytest.raises(FileNotFoundError, match="no such compressed image"):
        res.read(tmp_path / "missing.aekp")


def test_codec_errors():
    with pytest.raises(ValueError, match="n_coefficients must be in 1..16"):
        PCAResidualCodec(1, 4, 17)
    with pytest.raises(ValueError, match="bits must be in 1..8"):
        PCAResidualCodec(1, 4, 3, bits=9)
    with pytest.raises(ValueError, match="depth must be 0"):
        PCAResidualCodec(1, 4, 3, depth=1)
    c = PCAResidualCodec(1, 4, 3, depth=0)
    with pytest.raises(ValueError, match="no basis yet"):
        c.quantise(np.zeros((1, 8, 8)))
    c.fit_basis(_images(), n_patches=200)
    with pytest.raises(ValueError, match="expects 1-channel images, the image has 3"):
        c.quantise(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="do not fit a 9x8 image"):
        c.pca_decode(np.zeros((3, 2, 2), np.uint8), (1, 9, 8))


def test_training_keeps_the_decoder_only_if_it_beats_pca_on_validation():
    ims, val = _images(4, seed=1), _images(1, seed=2)
    torch.manual_seed(0)
    codec, h = train_pca_codec(ims, n_coefficients=2, bits=3, patch_size=4, val_images=val,
                               crop_size=16, n_patches=64, max_iter=3, batch_size=16,
                               features=8, depth=3, downscale=1)
    x = val[0]
    q = codec.quantise(x)
    e_pca = float(np.mean((codec.pca_decode(q, x.shape) - x) ** 2))
    e_out = float(np.mean((codec.decode(q, x.shape) - x) ** 2))
    best = min(r["val_loss"] for r in h.records)
    zero = bool((codec.post.head.weight == 0).all())
    # either the decoder was kept (its validation loss beat PCA's) or it is exactly PCA
    if zero:
        assert e_out == pytest.approx(e_pca, rel=1e-5), (e_out, e_pca)
    else:
        assert e_out < e_pca * 1.02, (e_out, e_pca, best)
