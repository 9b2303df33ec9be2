"""Image files as data (issue 16, item 4): folders of PNG/JPEG/TIFF files (recursively, gray
or RGB, resized or refused when sizes differ), single images cut into patches, through the one
loader (`aekit.data.load_array` / `load_dataset`) that `aekit train`, `encode` and `aekit
sparse learn/encode` use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.data import load_array, load_dataset, load_images
from aekit.images.io import write_image
from aekit.io import FileFormatError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _q(a):
    """What an 8-bit file holds for values ``a`` in [0, 1]."""
    return np.rint(np.clip(a, 0, 1) * 255) / 255


@pytest.fixture
def gray_folder(tmp_path):
    """Six 8x8 gray PNGs: three at the top, three in a sub-folder; returns (folder, images in
    sorted relative-path order)."""
    g = np.random.default_rng(0)
    root = tmp_path / "pngs"
    (root / "b_sub").mkdir(parents=True)
    imgs = {}
    for name in ("a0.png", "a1.png", "a2.png", "b_sub/c0.png", "b_sub/c1.png", "b_sub/c2.png"):
        a = g.random((8, 8)).astype(np.float32)
        write_image(root / name, a)
        imgs[name] = _q(a)
    order = sorted(imgs, key=lambda n: tuple(n.split("/")))
    return root, np.stack([imgs[n] for n in order])


def test_folder_of_pngs_pixels_exact_and_recursive(gray_folder):
    root, want = gray_folder
    ds = load_array(root)
    assert ds.X.shape == (6, 64) and ds.image_shape == (8, 8), (ds.X.shape, ds.image_shape)
    err = float(np.abs(ds.X - want.reshape(6, -1)).max())
    assert err < 1e-6, f"pixels differ from the files' 8-bit values by up to {err}"
    assert ds.y is None  # top-level images: no sub-folder labels


def test_subfolder_labels_and_hidden_files_skipped(tmp_path):
    g = np.random.default_rng(1)
    for cls, n in (("dogs", 2), ("cats", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            write_image(tmp_path / cls / f"{i}.png", g.random((4, 5)))
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("ignored")
    ds = load_array(tmp_path)
    # sorted sub-folders: cats = 0 (3 images first), dogs = 1
    assert ds.y.tolist() == [0, 0, 0, 1, 1], ds.y
    assert ds.X.shape == (5, 20) and ds.image_shape == (4, 5)


def test_rgb_and_gray_mixed_auto_rgb_and_luma(tmp_path):
    g = np.random.default_rng(2)
    rgb, gray = g.random((3, 6, 6)), g.random((6, 6))
    write_image(tmp_path / "a.png", rgb)
    write_image(tmp_path / "b.png", gray)
    ds = load_array(tmp_path)
    assert ds.image_shape == (3, 6, 6) and ds.X.shape == (2, 108)
    np.testing.assert_allclose(ds.X[0], _q(rgb).ravel(), atol=1e-6)
    np.testing.assert_allclose(ds.X[1], np.repeat(_q(gray)[None], 3, 0).ravel(), atol=1e-6)
    g_ds = load_array(tmp_path, color="gray")
    luma = 0.299 * _q(rgb)[0] + 0.587 * _q(rgb)[1] + 0.114 * _q(rgb)[2]
    err = float(np.abs(g_ds.X[0] - luma.ravel()).max())
    assert g_ds.image_shape == (6, 6) and err <= 1 / 255 + 1e-6, f"luma error {err}"


def test_16bit_tiff_and_jpeg(tmp_path):
    a = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    write_image(tmp_path / "x.tif", a, bits=16)
    ds = load_array(tmp_path / "x.tif")
    err = float(np.abs(ds.X[0] - np.rint(a * 65535).ravel() / 65535).max())
    assert ds.X.shape == (1, 64) and err < 1e-7, f"16-bit pixels off by {err}"
    write_image(tmp_path / "y.jpg", np.full((8, 8), 0.5))
    j = load_array(tmp_path / "y.jpg")
    assert j.X.shape == (1, 64) and float(np.abs(j.X - 128 / 255).max()) < 3 / 255


def test_mixed_sizes_refused_or_resized(tmp_path):
    write_image(tmp_path / "small.png", np.full((6, 6), 0.4))
    write_image(tmp_path / "big.png", np.full((10, 12), 0.4))
    with pytest.raises(ValueError, match=r"small\.png is 6x6.*big\.png is 10x12.*image_size"):
        load_array(tmp_path)
    ds = load_array(tmp_path, image_size=(8, 8))
    # a constant image stays constant under any (normalised) interpolation
    err = float(np.abs(ds.X - round(0.4 * 255) / 255).max())
    assert ds.X.shape == (2, 64) and err < 1e-5, f"resized constant image off by {err}"
    assert load_array(tmp_path, image_size=5).image_shape == (5, 5)


def test_bad_folders_name_the_file(tmp_path):
    write_image(tmp_path / "ok.png", np.zeros((4, 4)))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileFormatError, match=r"notes\.txt is not an image file"):
        load_array(tmp_path)
    assert load_array(tmp_path, skip_other=True).X.shape == (1, 16)
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(FileFormatError, match=r"broken\.png is not a readable image"):
        load_array(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_array(empty)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_array(tmp_path / "nope.png")


def test_single_image_patches_match_brute_force(tmp_path):
    g = np.random.default_rng(3)
    a = _q(g.random((10, 13)))
    write_image(tmp_path / "p.png", a)
    ds = load_array(tmp_path / "p.png", patch_size=4)
    want = np.stack([a[i:i + 4, j:j + 4].ravel() for i in range(0, 7, 4)
                     for j in range(0, 10, 4)])
    assert ds.image_shape == (4, 4) and ds.X.shape == want.shape, (ds.X.shape, want.shape)
    assert float(np.abs(ds.X - want).max()) < 1e-6
    st = load_array(tmp_path / "p.png", patch_size=(3, 5), patch_stride=1)
    want = np.stack([a[i:i + 3, j:j + 5].ravel() for i in range(8) for j in range(9)])
    assert float(np.abs(st.X - want).max()) < 1e-6 and st.X.shape == (72, 15)
    sub = load_array(tmp_path / "p.png", patch_size=3, patch_stride=1, max_patches=10)
    full = load_array(tmp_path / "p.png", patch_size=3, patch_stride=1).X
    rows = {r.tobytes() for r in full}
    assert len(sub.X) == 10 and all(r.tobytes() in rows for r in sub.X)
    with pytest.raises(ValueError, match=r"p\.png is 10x13 \(HxW\), smaller than patch_size"):
        load_array(tmp_path / "p.png", patch_size=11)
    # a folder of mixed sizes is fine when cut into patches
    write_image(tmp_path / "q.png", g.random((8, 8)))
    assert load_array(tmp_path, patch_size=4).X.shape == (6 + 4, 16)


def test_image_options_never_silently_ignored(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="image_size applies to image files"):
        load_array(tmp_path / "X.npy", image_size=4)
    with pytest.raises(ValueError, match="patch_size applies to image files.*'digits'"):
        load_dataset("digits", patch_size=4)
    with pytest.raises(ValueError, match="patch_stride needs patch_size"):
        load_images(tmp_path, patch_stride=2)
    with pytest.raises(ValueError, match="color must be one of"):
        load_images(tmp_path, color="cmyk")


def test_load_dataset_folder_not_rescaled(tmp_path):
    write_image(tmp_path / "a.png", np.full((4, 4), 0.2))
    write_image(tmp_path / "b.png", np.full((4, 4), 0.6))
    train, test = load_dataset(str(tmp_path))
    # min-max rescaling would give 0 and 1; the pixels' own [0, 1] values are kept
    assert test is None and abs(float(train.X.min()) - 51 / 255) < 1e-6, train.X.min()
    assert abs(float(train.X.max()) - 153 / 255) < 1e-6


def test_cli_train_and_encode_on_a_folder_of_pngs(tmp_path, gray_folder):
    """Failed before issue 16 with "unsupported file type ''"."""
    from aekit.cli import main

    root, _ = gray_folder
    for i in range(14):  # 20 images in all: enough rows for a validation split
        write_image(root / f"extra{i:02d}.png", np.random.default_rng(10 + i).random((8, 8)))
    run = tmp_path / "run"
    rc = main(["train", "--data", str(root), "--n-components", "3", "--max-iter", "2",
               "--output", str(run), "--no-report"])
    assert rc == 0 and (run / "model.safetensors").exists()
    codes = tmp_path / "codes.npy"
    assert main(["encode", str(run), "--input", str(root), "--output", str(codes)]) == 0
    Z = np.load(codes)
    assert Z.shape == (20, 3) and np.isfinite(Z).all(), Z.shape


def test_sparse_cli_on_image_files(tmp_path, capsys):
    from aekit.cli import main

    g = np.random.default_rng(4)
    photo = tmp_path / "photo.png"
    write_image(photo, g.random((24, 24)))
    d = tmp_path / "d.safetensors"
    assert main(["sparse", "learn", "--data", str(photo), "--patch-size", "4",
                 "--n-components", "6", "--max-iter", "1", "--output", str(d)]) == 0
    from aekit.io import load_tensor_file

    tensors, meta = load_tensor_file(d, "aekit-dictionary")
    assert tuple(tensors["D"].shape) == (16, 6) and meta["atom_shape"] == [4, 4]
    assert meta["n_samples"] == 36, meta["n_samples"]  # 6 x 6 non-overlapping 4x4 patches
    codes = tmp_path / "z.npy"
    assert main(["sparse", "encode", str(d), "--input", str(photo), "--patch-size", "4",
                 "--output", str(codes)]) == 0
    assert np.load(codes).shape == (36, 6)
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(5):
        write_image(folder / f"{i}.png", g.random((4, 4)))
    assert main(["sparse", "learn", "--data", str(folder), "--n-components", "3",
                 "--max-iter", "1", "--no-png", "--output", str(tmp_path / "f.safetensors")]) == 0
    rc = main(["sparse", "encode", str(d), "--input", str(tmp_path / "z.npy"),
               "--image-size", "4", "4", "--output", str(tmp_path / "w.npy")])
    err = capsys.readouterr().err
    assert rc == 2 and "--image-size applies to image files" in err, (rc, err)


def test_train_and_encode_a_folder_of_mixed_size_images_with_image_size(tmp_path):
    """The [data] image options reach `aekit train` as flags (mixed sizes need --image-size)
    and `aekit encode` reads an image folder the way the run's training images were read."""
    from aekit.cli import main
    from aekit.images import write_image

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, (h, w) in enumerate([(12, 12), (16, 10), (9, 14)] * 4):
        write_image(folder / f"{i:02d}.png", rng.random((1, h, w)).astype(np.float32))
    assert main(["train", "--data", str(folder), "--output", str(tmp_path / "bad"),
                 "--max-iter", "1", "--no-progress", "--no-report"]) == 2
    assert main(["train", "--data", str(folder), "--image-size", "8", "8", "--n-components",
                 "3", "--hidden-layer-sizes", "16", "--max-iter", "1", "--output",
                 str(tmp_path / "run"), "--no-progress", "--no-report"]) == 0
    assert main(["encode", str(tmp_path / "run"), "--input", str(folder), "--output",
                 str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (12, 3)
