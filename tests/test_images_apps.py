"""Document cleaning, colourisation and segmentation: definitions, shapes, errors, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.images import write_image
from aekit.images.colour import (
    ChannelSplit,
    colourfulness,
    colourise,
    lab_to_rgb,
    luminance,
    rgb_to_lab,
    train_colouriser,
)
from aekit.images.documents import (
    ScanDamage,
    binarise,
    char_agreement,
    clean_document,
    crease_field,
    find_fonts,
    render_page,
    ring_field,
    stain_field,
)
from aekit.images.patches import PatchSource
from aekit.images.segmentation import (
    dice,
    dice_bce,
    iou,
    otsu_segment,
    segment,
    split_by_image,
    train_segmenter,
)
from aekit.io import FileFormatError
from aekit.models import UNetAE


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared, loaded CPU, two spinning threads make tiny nets crawl."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- documents -------------------------------------------------------------------------------
def test_render_page_deterministic_and_boxes_hold_the_ink():
    a, b = render_page(3, (96, 128)), render_page(3, (96, 128))
    assert a.image.shape == (1, 96, 128) and a.image.dtype == np.float32
    assert np.array_equal(a.image, b.image) and a.chars == b.chars
    assert a.image.max() == 1.0 and a.image.min() < 0.2, (a.image.min(), a.image.max())
    assert len(a.boxes) == len(a.chars) > 10, len(a.chars)
    ink = a.image[0] < 1.0  # every antialiased ink pixel
    inside = np.zeros_like(ink)
    for x0, y0, x1, y1 in a.boxes:
        inside[y0:y1, x0:x1] = True
    frac = ink[inside].sum() / ink.sum()
    assert frac == 1.0, f"{frac:.4f} of the ink lies inside the character boxes"
    assert not np.array_equal(render_page(4, (96, 128)).image, a.image)


def test_find_fonts_sorted_and_default_font_fallback(tmp_path):
    fonts = find_fonts()
    assert fonts == sorted(fonts)
    assert find_fonts([tmp_path]) == []
    p = render_page(0, (64, 64), fonts=[])
    assert p.font.startswith("<pillow default>") and len(p.chars) > 0


def test_damage_fields_change_only_their_support():
    H, W = 64, 80
    s = stain_field(H, W, 30, 40, 10, 15, 0.5)
    yy, xx = np.mgrid[:H, :W]
    outside = ((yy - 30) / 10) ** 2 + ((xx - 40) / 15) ** 2 >= 1
    assert np.all(s[outside] == 1) and s[30, 40] == pytest.approx(0.5), s[30, 40]
    r = ring_field(H, W, 32, 32, 20, 3, 0.4)
    d = np.sqrt((yy - 32) ** 2 + (xx - 32) ** 2)
    assert np.all(r[np.abs(d - 20) >= 3] == 1)
    assert r[32, 52] == pytest.approx(0.6), r[32, 52]  # on the ring: 1 - strength
    c = crease_field(H, W, 20, 0, 0.0, 0.3, 0.1)  # horizontal line at y = 20
    assert c[20, 5] == pytest.approx(0.7) and c[0, 5] == pytest.approx(1.0, abs=1e-6)
    assert c[40, 5] == pytest.approx(0.9, abs=1e-6), c[40, 5]  # shadow side


def test_scan_damage_shapes_mask_and_determinism():
    x = torch.from_numpy(np.stack([render_page(i, (64, 64)).image for i in range(4)]))
    d = ScanDamage()
    y1, m1 = d.with_mask(x, torch.Generator().manual_seed(1))
    y2, _ = d.with_mask(x, torch.Generator().manual_seed(1))
    assert y1.shape == x.shape and m1.shape == (4, 1, 64, 64)
    assert torch.equal(y1, y2)
    assert 0 <= float(y1.min()) and float(y1.max()) <= 1
    changed = (y1 - x).abs() > 0.02
    assert torch.equal(changed.float(), m1), "mask must be exactly the pixels changed > 0.02"
    with pytest.raises(ValueError, match="speckle"):
        ScanDamage(speckle=1.5)
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        d(x[0])


def test_binarise_and_char_agreement_definitions():
    ref = np.zeros((10, 10), bool)
    ref[2:5, 2:5] = True  # char 0: 9 ink pixels
    ref[6:8, 6:9] = True  # char 1: 6 ink pixels
    boxes = [(1, 1, 6, 6), (5, 5, 10, 10)]
    pred = ref.copy()
    pred[2, 2] = False  # char 0: IoU 8/9
    pred[6:8, 6:9] = False
    pred[6, 6] = True  # char 1: IoU 1/6
    r = char_agreement(ref, pred, boxes)
    assert r["char_iou"] == pytest.approx((8 / 9 + 1 / 6) / 2)
    assert r["char_agreement"] == 0.5
    assert r["ink_f1"] == pytest.approx(2 * 9 / (15 + 9))
    assert r["pixel_error"] == pytest.approx(6 / 100)
    g = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    assert np.array_equal(binarise(g, 0.5), g < 0.5)
    from skimage.filters import threshold_otsu
    assert np.array_equal(binarise(g, "otsu"), g < threshold_otsu(g))
    with pytest.raises(ValueError, match="method"):
        binarise(g, "median")
    with pytest.raises(ValueError, match="grayscale"):
        binarise(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="reference_ink"):
        char_agreement(ref, pred[:5], boxes)


def test_clean_document_errors_and_identity_shape():
    m = UNetAE(1, features=4, depth=2, output="sigmoid")
    out = clean_document(m, np.full((37, 50), 0.5, np.float32))
    assert out.shape == (1, 37, 50) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="image has 3 channels"):
        clean_document(m, np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="smaller than"):
        clean_document(m, np.zeros((1, 3, 32), np.float32))


# --- colour ----------------------------------------------------------------------------------
def test_lab_round_trip_and_known_values():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 12, 9)).astype(np.float32)
    back = lab_to_rgb(rgb_to_lab(x))
    err = float(np.abs(back - x).max())
    assert err < 1e-4, f"Lab round trip error {err}"
    white = rgb_to_lab(np.ones((3, 2, 2), np.float32))
    assert np.allclose(white[:, 0, 0], [1, 0, 0], atol=1e-3), white[:, 0, 0]
    red = rgb_to_lab(np.array([1, 0, 0], np.float32)[:, None, None] * np.ones((3, 1, 1)))
    assert np.allclose(red[:, 0, 0] * 100, [53.24, 80.09, 67.20], atol=0.05), red[:, 0, 0]
    g = np.full((1, 4, 4), 0.5, np.float32)
    assert np.allclose(luminance(g), rgb_to_lab(np.repeat(g, 3, 0))[:1])
    with pytest.raises(ValueError, match="RGB image"):
        rgb_to_lab(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="lab must have 3"):
        lab_to_rgb(np.zeros((2, 4, 4)))


def test_colourfulness_hand_computed():
    assert colourfulness(np.full((3, 4, 4), 0.3)) == 0.0
    x = np.zeros((3, 2, 1), np.float32)
    x[0, 0, 0] = 1.0  # pixel 1 pure red, pixel 2 black
    # rg = (255, 0), yb = (127.5, 0): σ_rg = 127.5, σ_yb = 63.75, μ_rg = 127.5, μ_yb = 63.75
    want = np.hypot(127.5, 63.75) + 0.3 * np.hypot(127.5, 63.75)
    assert colourfulness(x) == pytest.approx(want), (colourfulness(x), want)
    with pytest.raises(ValueError, match="3 channels"):
        colourfulness(np.zeros((1, 4, 4)))


def test_channel_split_keeps_pairs_aligned():
    rng = np.random.default_rng(0)
    im = rng.uniform(0, 1, (1, 20, 20)).astype(np.float32)
    stacked = np.concatenate([im, 2 * im])  # target = 2 × input, pixel by pixel
    src = ChannelSplit(PatchSource([stacked], 8, 16, seed=0), 1)
    b = src.take(torch.arange(16))
    assert b.x.shape == (16, 1, 8, 8) and b.y.shape == (16, 1, 8, 8)
    assert torch.allclose(b.y, 2 * b.x), "flips/rotations must move input and target together"
    with pytest.raises(ValueError, match="k must be"):
        ChannelSplit(PatchSource([stacked], 8, 4), 2)


def test_colouriser_trains_and_colourises_any_size():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, (1, 40, 40)).astype(np.float32)
    imgs = [np.concatenate([base, base * 0.5, base * 0.2])]  # orange-ish photo
    m, h = train_colouriser(imgs, features=4, depth=1, patch_size=16, n_patches=32,
                            max_iter=2, batch_size=16, progress=False)
    assert len(h.records) == 2
    out = colourise(m, base[:, :27, :33])
    assert out.shape == (3, 27, 33) and out.min() >= 0 and out.max() <= 1
    with torch.no_grad():  # a model that predicts ab = 0: the output is the input's gray
        m.head.weight.zero_()
        m.head.bias.zero_()
    out = colourise(m, base[:, :27, :33])
    L_in, L_out = luminance(base[:, :27, :33]), rgb_to_lab(out)[:1]
    gap = float(np.abs(L_in - L_out).max())
    assert gap < 1e-3, f"lightness changed by {gap}"
    assert np.abs(out - base[:, :27, :33]).max() < 2e-3, "ab = 0 must give back the gray image"
    with pytest.raises(ValueError, match="1 channel"):
        colourise(UNetAE(1, features=4, depth=1), base)


# --- segmentation ----------------------------------------------------------------------------
def _brute(a, b):
    inter = sum(1 for u, v in zip(a.ravel(), b.ravel()) if u and v)
    sa, sb = int(a.sum()), int(b.sum())
    union = sa + sb - inter
    return (1.0 if sa + sb == 0 else 2 * inter / (sa + sb)), (1.0 if union == 0 else
                                                           inter / union)


def test_dice_iou_hand_made_and_brute_force():
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True
    b = np.zeros((4, 4), bool)
    b[1:3, 1:3] = True
    assert dice(a, b) == pytest.approx(2 * 1 / 8) and iou(a, b) == pytest.approx(1 / 7)
    assert dice(a, a) == iou(a, a) == 1.0
    z = np.zeros((4, 4), bool)
    assert dice(z, z) == iou(z, z) == 1.0 and dice(a, z) == iou(a, z) == 0.0
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = rng.random((5, 6)) < 0.4, rng.random((5, 6)) < 0.3
        d, j = _brute(p, q)
        assert dice(p, q) == pytest.approx(d) and iou(p, q) == pytest.approx(j)
        assert iou(p, q) == pytest.approx(dice(p, q) / (2 - dice(p, q)))
    with pytest.raises(ValueError, match="differ in shape"):
        dice(a, b[:3])


def test_dice_bce_definition():
    s = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    t = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    p = torch.sigmoid(s)
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    d = (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    got = dice_bce(t, s)
    assert got.shape == (1,) and torch.allclose(got, bce + 1 - d), (got, bce + 1 - d)
    # batch Dice: one Dice over every pixel of the batch, the same for every sample
    s2, t2 = torch.cat([s, -s]), torch.cat([t, torch.zeros_like(t)])
    p2 = torch.sigmoid(s2)
    db = (2 * (p2 * t2).sum() + 1) / (p2.sum() + t2.sum() + 1)
    b2 = torch.nn.functional.binary_cross_entropy_with_logits(s2, t2, reduction="none")
    want = b2.flatten(1).mean(1) + 1 - db
    got = dice_bce(t2, s2, batch=True)
    assert torch.allclose(got, want), (got, want)
    # an empty target predicted (nearly) empty: Dice loss ~ 0
    e = dice_bce(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), -20.0))
    assert float(e) < 1e-6, float(e)


def test_split_by_image_partition_and_stratified():
    labels = ["Free"] * 50 + ["Crack"] * 10 + ["Fray"] * 5
    tr, va, te = split_by_image(labels, seed=3)
    allidx = np.concatenate([tr, va, te])
    assert sorted(allidx.tolist()) == list(range(65)), "every image in exactly one split"
    lab = np.array(labels)
    assert (lab[te] == "Crack").sum() == 2 and (lab[tr] == "Free").sum() == 35
    tr2, _, _ = split_by_image(labels, seed=3)
    assert np.array_equal(tr, tr2) and not np.array_equal(tr, split_by_image(labels, seed=4)[0])
    with pytest.raises(ValueError, match="fractions"):
        split_by_image(labels, fractions=(0.5, 0.5, 0.5))


def test_segmenter_learns_bright_squares_and_errors():
    rng = np.random.default_rng(0)
    ims, ms = [], []
    for _ in range(6):
        im = rng.uniform(0.3, 0.5, (32, 32)).astype(np.float32)
        m = np.zeros((32, 32), bool)
        y, x = rng.integers(0, 24, 2)
        m[y:y + 8, x:x + 8] = True
        im[m] = 0.9
        ims.append(im)
        ms.append(m)
    model, _ = train_segmenter(ims, ms, features=4, depth=1, patch_size=16, n_patches=128,
                               max_iter=8, batch_size=16, learning_rate=1e-2, progress=False)
    pred = segment(model, ims[0])
    assert pred.shape == (32, 32) and pred.dtype == bool
    assert dice(ms[0], pred) > 0.8, dice(ms[0], pred)
    prob = segment(model, ims[0], threshold=None)
    assert prob.dtype == np.float32 and 0 <= prob.min() and prob.max() <= 1
    assert np.array_equal(otsu_segment(ims[0], dark=False), ims[0] > 0.7)
    with pytest.raises(ValueError, match=r"train masks\[1\] has shape"):
        train_segmenter(ims[:2], [ms[0], ms[1][:5]], max_iter=1)
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        train_segmenter(ims[:2], ms[:1], max_iter=1)
    with pytest.raises(ValueError, match="image has 3 channels"):
        segment(model, np.zeros((3, 32, 32), np.float32))


# --- CLI -------------------------------------------------------------------------------------
def test_cli_clean_document_colourise_segment(tmp_path, capsys):
    page = render_page(7, (64, 64)).image
    write_image(tmp_path / "page.png", page)
    doc = UNetAE(1, features=4, depth=2, output="sigmoid")
    aekit.save_model(doc, tmp_path / "doc.safetensors")
    assert main(["clean-document", str(tmp_path / "page.png"), "-o", str(tmp_path / "c.png"),
                 "--model", str(tmp_path / "doc.safetensors"), "--binarise"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["size"] == [64, 64] and (tmp_path / "c.png").is_file()
    col = UNetAE(1, out_channels=2, features=4, depth=2)
    aekit.save_model(col, tmp_path / "col.safetensors")
    assert main(["colourise", str(tmp_path / "page.png"), "-o", str(tmp_path / "col.png"),
                 "--model", str(tmp_path / "col.safetensors")]) == 0
    from aekit.images import read_image
    assert read_image(tmp_path / "col.png").shape == (3, 64, 64)
    seg = UNetAE(1, out_channels=1, features=4, depth=2, output="sigmoid")
    aekit.save_model(seg, tmp_path / "seg.safetensors")
    assert main(["segment", str(tmp_path / "page.png"), "-o", str(tmp_path / "m.png"),
                 "--model", str(tmp_path / "seg.safetensors")]) == 0
    assert read_image(tmp_path / "m.png").shape == (1, 64, 64)


@pytest.mark.parametrize("cmd", ["clean-document", "colourise", "segment"])
def test_cli_errors_name_the_file(tmp_path, capsys, cmd):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    out = tmp_path / "out.png"
    m = tmp_path / "m.safetensors"
    aekit.save_model(UNetAE(1, out_channels=2, features=4, depth=1), m)  # wrong for doc/seg
    assert main([cmd, str(bad), "-o", str(out), "--model", str(m)]) == 2
    assert "bad.png" in capsys.readouterr().err
    write_image(tmp_path / "ok.png", np.full((1, 16, 16), 0.5, np.float32))
    assert main([cmd, str(tmp_path / "ok.png"), "-o", str(out), "--model",
                 str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert main([cmd, str(tmp_path / "ok.png"), "-o", str(out)]) == 2
    assert "--model" in capsys.readouterr().err
    if cmd != "colourise":
        assert main([cmd, str(tmp_path / "ok.png"), "-o", str(out), "--model", str(m)]) == 2
        assert "m.safetensors" in capsys.readouterr().err
    assert not out.exists(), "no output may be written on error"
    assert not list(tmp_path.glob("out.png*")), list(tmp_path.iterdir())


def test_real_tiles_segmentation_data_shapes():
    from aekit.data import data_dir
    from aekit.data.datasets import load_magnetic_tiles

    p = data_dir() / "magnetic_tile_defects.zip"
    if not p.exists():
        pytest.skip(f"Magnetic Tile Defects not found at {p} (set AEKIT_DATA)")
    ims, ms, labels = load_magnetic_tiles(p, size=(32, 32), limit=40)
    tr, va, te = split_by_image(labels, seed=0)
    assert len(tr) + len(va) + len(te) == 40
    for i in itertools.islice(range(len(ims)), 3):
        assert otsu_segment(ims[i]).shape == ms[i].shape == (32, 32)


def test_unreadable_file_is_named(tmp_path):
    from aekit.images import read_image
    bad = tmp_path / "page.tif"
    bad.write_bytes(b"\x00" * 20)
    with pytest.raises(FileFormatError, match="page.tif"):
        read_image(bad)


def test_self_ensemble_is_the_average_over_the_eight_symmetries():
    import torch

    from aekit.images import SelfEnsemble, denoise, dihedral, dihedral_inverse

    x = torch.rand(2, 1, 6, 6)
    for k in range(8):
        assert torch.equal(dihedral_inverse(dihedral(x, k), k), x), k
    # a model that is not equivariant: a fixed 3x3 filter with an asymmetric kernel
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(9.0).reshape(1, 1, 3, 3) / 36)
    naive = sum(dihedral_inverse(conv(dihedral(x, k)), k) for k in range(8)) / 8
    got = SelfEnsemble(conv)(x)
    torch.testing.assert_close(got, naive)
    # the ensemble of a filter is the filter with the symmetrised kernel (a D4-invariant one)
    ks = sum(dihedral(conv.weight, k) for k in range(8)) / 8
    sym = torch.nn.functional.conv2d(x, ks, padding=1)
    torch.testing.assert_close(got, sym, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(conv(x), got)
    # through denoise on a whole image (tiled): identity stays the identity
    img = np.random.default_rng(0).random((1, 40, 33)).astype(np.float32)
    out = denoise(torch.nn.Identity(), img, tile=16, overlap=4, self_ensemble=True)
    np.testing.assert_allclose(out, img, atol=1e-6)
