"""PatchSource focus sampling (patches centred on marked pixels) and train_segmenter's
defect_fraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.images import PatchSource
from aekit.images.segmentation import train_segmenter


def _pair(h, w, marks, seed):
    """A (2, h, w) image: random values, then a mask channel with ones at ``marks``."""
    x = np.random.default_rng(seed).random((2, h, w)).astype(np.float32)
    x[1] = 0
    for y, xx in marks:
        x[1, y, xx] = 1
    return x


def test_focus_zero_draws_exactly_as_without_focus():
    ims = [_pair(40, 50, [(5, 7)], 0), _pair(30, 30, [], 1)]
    a = PatchSource(ims, 16, 64, seed=4)
    b = PatchSource(ims, 16, 64, seed=4, focus_channel=1, focus_fraction=0.0)
    for _ in range(3):
        assert torch.equal(a.take(torch.arange(64)).x, b.take(torch.arange(64)).x)


def test_focus_one_puts_a_marked_pixel_in_every_patch_uniformly_over_offsets():
    # one marked pixel far from the borders; no flips, so its offset in the patch is readable
    ims = [_pair(60, 60, [(30, 31)], 0), _pair(40, 40, [], 1)]
    p, n = 4, 4000
    src = PatchSource(ims, p, n, augment=False, seed=0, focus_channel=1, focus_fraction=1.0)
    m = src.take(torch.arange(n)).x[:, 1]
    assert bool((m.flatten(1).sum(1) == 1).all()), "every focused patch holds the marked pixel"
    offsets = torch.nonzero(m)[:, 1:]  # (n, 2) position of the pixel inside its patch
    counts = torch.bincount(offsets[:, 0] * p + offsets[:, 1], minlength=p * p).double()
    expect = n / (p * p)
    chi2 = float(((counts - expect) ** 2 / expect).sum())
    # 15 degrees of freedom: the 0.999 quantile is 37.7
    assert chi2 < 37.7, f"offsets not uniform: chi2 {chi2:.1f}, counts {counts.tolist()}"


def test_focus_fraction_half_and_marked_pixels_weighted_equally():
    # image 0 holds 1 marked pixel, image 1 holds 3: focused patches go 1:3 between them
    ims = [_pair(50, 50, [(25, 25)], 0), _pair(50, 50, [(10, 10), (25, 25), (40, 40)], 1)]
    ims[0][0] = 0.0  # image 0 is all zeros in channel 0, image 1 is > 0: tells them apart
    ims[1][0] += 1.0
    src = PatchSource(ims, 8, 8000, augment=False, seed=1, focus_channel=1, focus_fraction=1.0)
    x = src.take(torch.arange(8000)).x
    from_0 = float((x[:, 0].flatten(1).max(1).values == 0).double().mean())
    assert abs(from_0 - 0.25) < 0.02, f"share of patches from the 1-mark image: {from_0:.3f}"
    # fraction 0.5 on sparse marks: about half of the patches hold a marked pixel
    big = [_pair(200, 200, [(100, 100)], 2)]
    src = PatchSource(big, 8, 4000, seed=2, focus_channel=1, focus_fraction=0.5)
    hit = float((src.take(torch.arange(4000)).x[:, 1].flatten(1).max(1).values > 0).double()
                .mean())
    # uniform 8x8 crops of a 200x200 image hit the pixel with probability 64/193² = 0.0017
    assert abs(hit - 0.5017) < 0.035, f"share of patches holding the pixel: {hit:.3f}"


def test_focus_near_the_border_is_clamped_and_errors_name_the_argument():
    ims = [_pair(20, 20, [(0, 19)], 0)]
    src = PatchSource(ims, 8, 200, augment=False, seed=0, focus_channel=1, focus_fraction=1.0)
    m = src.take(torch.arange(200)).x[:, 1]
    assert bool((m[:, 0, 7] == 1).all()), "a corner pixel must sit in the patch's corner"
    with pytest.raises(ValueError, match="focus_fraction must be in"):
        PatchSource(ims, 8, focus_channel=1, focus_fraction=1.5)
    with pytest.raises(ValueError, match="needs focus_channel"):
        PatchSource(ims, 8, focus_fraction=0.5)
    with pytest.raises(ValueError, match="is not a channel"):
        PatchSource(ims, 8, focus_channel=2, focus_fraction=0.5)
    with pytest.raises(ValueError, match="no image has a marked pixel"):
        PatchSource([_pair(20, 20, [], 0)], 8, focus_channel=1, focus_fraction=0.5)


def test_train_segmenter_defect_fraction_sees_the_defects(monkeypatch):
    import aekit.images.colour as colour

    seen = {}

    def fake_fit(m, objective, src, val, **kw):
        b = src.take(torch.arange(len(src)))
        seen["hit"] = float((b.y.flatten(1).max(1).values > 0).double().mean())
        return None

    monkeypatch.setattr(colour, "fit_patches", fake_fit)
    rng = np.random.default_rng(0)
    ims = [rng.random((96, 96)).astype(np.float32) for _ in range(4)]
    masks = [np.zeros((96, 96), bool) for _ in range(4)]
    masks[0][40:43, 50:53] = True  # one small defect in one of four images
    train_segmenter(ims, masks, patch_size=16, n_patches=512, defect_fraction=0.0)
    base = seen["hit"]
    train_segmenter(ims, masks, patch_size=16, n_patches=512, defect_fraction=0.8)
    # expected 0.8 + 0.2 · base ≈ 0.80 (binomial sd 0.018 over 512 patches)
    assert seen["hit"] > 0.72 and base < 0.1, (base, seen["hit"])
    with pytest.raises(ValueError, match="defect_fraction must be in"):
        train_segmenter(ims, masks, defect_fraction=-0.1)
    with pytest.raises(ValueError, match="no training mask has a defect"):
        train_segmenter(ims, [np.zeros((96, 96), bool)] * 4, defect_fraction=0.5)
