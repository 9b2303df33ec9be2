"""aekit.data.datasets: loaders on tiny synthetic archives with the real layouts, and (marked
``data``) on the real archives under $AEKIT_DATA / ../shared/data when present."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from aekit.data import data_dir
from aekit.data.datasets import (
    list_adbench,
    load_20newsgroups,
    load_adbench,
    load_magnetic_tiles,
)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None):
    info = tarfile.TarInfo(name)
    if data is None:
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
    else:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


# ----------------------------------------------------------------------------- ADBench
@pytest.fixture
def adbench_tar(tmp_path):
    rng = np.random.default_rng(0)
    sets = {
        "6_cardio": (rng.normal(size=(12, 3)), np.r_[np.zeros(10), np.ones(2)].astype(np.int64)),
        "14_glass": (rng.integers(-5, 5, size=(7, 4)).astype(np.int16),
                     np.array([0, 1, 0, 0, 0, 1, 0], dtype=np.uint8)),
        "15_Hepatitis": (rng.normal(size=(5, 2)), np.array([0.0, 0, 1, 0, 0])),
    }
    p = tmp_path / "adbench_classical.tar"
    with tarfile.open(p, "w") as tf:
        for name, (X, y) in sets.items():
            _add(tf, f"{name}.npz", _npz(X=X, y=y))
        _add(tf, "99_pickled.npz", _npz(X=np.array([{"a": 1}], dtype=object), y=np.zeros(1)))
        _add(tf, "98_noy.npz", _npz(X=np.zeros((3, 2))))
    return p, sets


def test_load_adbench_synthetic(adbench_tar):
    p, sets = adbench_tar
    for key in ("6_cardio", "cardio", "CARDIO", "6_cardio.npz"):
        X, y = load_adbench(key, path=p)
        assert X.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_allclose(X, sets["6_cardio"][0].astype(np.float32))
        np.testing.assert_array_equal(y, sets["6_cardio"][1])
    X, y = load_adbench("glass", path=p.parent)  # the folder holding the tar also works
    np.testing.assert_array_equal(X, sets["14_glass"][0].astype(np.float32))
    assert y.tolist() == [0, 1, 0, 0, 0, 1, 0] and y.dtype == np.int64
    assert load_adbench("hepatitis", path=p)[1].tolist() == [0, 0, 1, 0, 0]
    assert list_adbench(p) == ["6_cardio", "14_glass", "15_Hepatitis", "98_noy", "99_pickled"]


def test_load_adbench_errors(adbench_tar, tmp_path, monkeypatch):
    p, _ = adbench_tar
    with pytest.raises(ValueError, match=r"'speech' not found .*available: 6_cardio, 14_glass"):
        load_adbench("speech", path=p)
    with pytest.raises(ValueError, match="never loads pickled"):
        load_adbench("pickled", path=p)
    with pytest.raises(ValueError, match=r"lacks arrays \['y'\]"):
        load_adbench("noy", path=p)
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere/adbench_classical\.tar.*AEKIT_DATA"):
        load_adbench("cardio")


# ------------------------------------------------------------------------ 20 Newsgroups
@pytest.fixture
def news_tgz(tmp_path):
    posts = {
        "20news-bydate-train/sci.space/60001": b"From: a\n\nRockets are fun.\n",
        "20news-bydate-train/sci.space/59999": b"From: b\n\nOrbit.\n",
        "20news-bydate-train/alt.atheism/51060": b"From: c\n\nCaf\xe9 discussion\n",
        "20news-bydate-test/alt.atheism/53068": b"test post\n",
        "20news-bydate-test/rec.autos/10001": b"cars\xff\n",
    }
    p = tmp_path / "20news-bydate.tar.gz"
    with tarfile.open(p, "w:gz") as tf:
        for top in ("20news-bydate-train", "20news-bydate-train/alt.atheism",
                    "20news-bydate-train/sci.space", "20news-bydate-test"):
            _add(tf, top)
        for name, data in posts.items():
            _add(tf, name, data)
        _add(tf, "20news-bydate-train/.DS_Store", b"\x00junk")
    return p


def test_load_20newsgroups_synthetic(news_tgz):
    texts, labels, names = load_20newsgroups("train", path=news_tgz)
    assert names == ["alt.atheism", "sci.space"]
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 1]
    assert texts[0] == "From: c\n\nCafé discussion\n"  # latin-1
    assert texts[1] == "From: b\n\nOrbit.\n" and texts[2].endswith("Rockets are fun.\n")
    texts, labels, names = load_20newsgroups("test", path=news_tgz)
    assert names == ["alt.atheism", "rec.autos"] and labels.tolist() == [0, 1]
    assert texts[1] == "cars\u00ff\n"
    texts, labels, names = load_20newsgroups("all", path=news_tgz)
    assert len(texts) == 5 and names == ["alt.atheism", "rec.autos", "sci.space"]
    with pytest.raises(ValueError, match="subset must be"):
        load_20newsgroups("validation", path=news_tgz)


def test_load_20newsgroups_wrong_archive(adbench_tar, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="holds no 20news-bydate-train"):
        load_20newsgroups(path=adbench_tar[0])
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="20news-bydate.tar.gz.*AEKIT_DATA"):
        load_20newsgroups()


# ------------------------------------------------------------------------ Magnetic tiles
def _img_bytes(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture
def tiles_zip(tmp_path):
    H, W = 40, 30
    gray = np.full((H, W), 128, np.uint8)
    crack_mask = np.zeros((H, W), np.uint8)
    crack_mask[:, : W // 2] = 255  # left half defective
    p = tmp_path / "magnetic_tile_defects.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("MT_Crack/", b"")
        zf.writestr("MT_Crack/Imgs/", b"")
        zf.writestr("MT_Crack/Imgs/exp1_num_1.jpg", _img_bytes(gray, "JPEG"))
        zf.writestr("MT_Crack/Imgs/exp1_num_1.png", _img_bytes(crack_mask, "PNG"))
        zf.writestr("MT_Free/Imgs/exp2_num_7.jpg", _img_bytes(np.full((H, W), 255, np.uint8),
                                                              "JPEG"))
        zf.writestr("MT_Free/Imgs/exp2_num_7.png", _img_bytes(np.zeros((H, W), np.uint8), "PNG"))
        zf.writestr("dataset.jpg", _img_bytes(np.zeros((5, 5), np.uint8), "JPEG"))
        zf.writestr("dataset.png", _img_bytes(np.zeros((5, 5), np.uint8), "PNG"))
        zf.writestr("README.md", b"# tiles\n")
    return p


def test_load_magnetic_tiles_synthetic(tiles_zip):
    images, masks, labels = load_magnetic_tiles(tiles_zip, size=(16, 8))
    assert labels == ["Crack", "Free"]  # dataset.jpg ignored
    assert images.shape == (2, 16, 8) and images.dtype == np.float32
    assert masks.shape == (2, 16, 8) and masks.dtype == bool
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_allclose(images[0], 128 / 255, atol=0.02)
    np.testing.assert_allclose(images[1], 1.0, atol=0.02)
    assert masks[0][:, :4].all() and not masks[0][:, 4:].any()  # left half
    assert not masks[1].any()
    imgs, m, lab = load_magnetic_tiles(tiles_zip, size=(8, 8), limit=1)
    assert imgs.shape == (1, 8, 8) and lab == ["Crack"]
    imgs, m, lab = load_magnetic_tiles(tiles_zip, size=(8, 8), classes=["Free"])
    assert lab == ["Free"] and not m.any()


def test_load_magnetic_tiles_errors(tiles_zip, tmp_path):
    with pytest.raises(ValueError, match="size must be"):
        load_magnetic_tiles(tiles_zip, size=(0, 8))
    with pytest.raises(ValueError, match="unknown tile classes"):
        load_magnetic_tiles(tiles_zip, classes=["Scratch"])
    lacking = tmp_path / "lacking.zip"
    with zipfile.ZipFile(lacking, "w") as zf:
        zf.writestr("MT_Free/Imgs/a.jpg", _img_bytes(np.zeros((4, 4), np.uint8), "JPEG"))
    with pytest.raises(ValueError, match="no mask .png"):
        load_magnetic_tiles(lacking)
    corrupt = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(corrupt, "w") as zf:
        zf.writestr("MT_Free/Imgs/a.jpg", b"not a jpeg")
        zf.writestr("MT_Free/Imgs/a.png", _img_bytes(np.zeros((4, 4), np.uint8), "PNG"))
    with pytest.raises(ValueError, match="cannot decode .*a.jpg"):
        load_magnetic_tiles(corrupt)
    with pytest.raises(FileNotFoundError, match="AEKIT_DATA"):
        load_magnetic_tiles(tmp_path / "missing.zip")


# ---------------------------------------------------------------------- real archives
def _real(filename: str):
    p = data_dir() / filename
    if not p.is_file():
        pytest.skip(f"{filename} not found at {p} (set AEKIT_DATA to the folder holding it)")
    return p


@pytest.mark.data
def test_real_adbench_cardio():
    p = _real("adbench_classical.tar")
    X, y = load_adbench("cardio", path=p)
    assert X.shape == (1831, 21) and X.dtype == np.float32
    assert y.shape == (1831,) and int(y.sum()) == 176
    X, y = load_adbench("38_thyroid", path=p)
    assert X.shape == (3772, 6) and int(y.sum()) == 93
    names = list_adbench(p)
    assert len(names) == 43 and names[0] == "1_ALOI" and "6_cardio" in names


@pytest.mark.data
def test_real_20newsgroups_train():
    p = _real("20news-bydate.tar.gz")
    texts, labels, names = load_20newsgroups("train", path=p)
    assert len(texts) == 11314 and len(names) == 20
    assert np.bincount(labels).min() > 300 and names[0] == "alt.atheism"
    assert all(isinstance(t, str) for t in texts[:10])


@pytest.mark.data
def test_real_magnetic_tiles_few():
    from aekit.data.archives import list_members

    p = _real("magnetic_tile_defects.zip")
    jpgs = [n for n in list_members(p) if n.startswith("MT_") and n.endswith(".jpg")]
    free = sum(n.startswith("MT_Free/") for n in jpgs)
    assert (free, len(jpgs) - free) == (952, 392)
    images, masks, labels = load_magnetic_tiles(p, size=(32, 32), limit=3)
    assert images.shape == (3, 32, 32) and masks.shape == (3, 32, 32)
    assert labels == ["Blowhole"] * 3 and masks.any(axis=(1, 2)).all()  # small defects kept
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.01
    images, masks, labels = load_magnetic_tiles(p, size=(16, 16), limit=2, classes=["Free"])
    assert labels == ["Free", "Free"] and not masks.any()


def test_a_dataset_name_must_match_the_files_it_is_given(mnist_path, tmp_path):
    """``--data fashion-mnist --data-path mnist.npz`` used to train on MNIST silently."""
    from aekit.data import load_dataset

    with pytest.raises(ValueError, match="holds mnist, not fashion-mnist"):
        load_dataset("fashion-mnist", data_path=mnist_path)
    m = np.load(mnist_path)
    fake = tmp_path / "other.npz"  # right format and shapes, other contents
    np.savez(fake, x_train=m["x_train"][:50], y_train=(m["y_train"][:50] + 1) % 10,
             x_test=m["x_test"][:20], y_test=m["y_test"][:20])
    with pytest.raises(ValueError, match="is not the canonical mnist"):
        load_dataset("mnist", data_path=fake)
    train, _ = load_dataset("mnist", data_path=mnist_path)
    assert train.X.shape == (60000, 784)
