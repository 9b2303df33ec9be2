"""aekit.data.archives: malicious tar/zip archives are refused, nothing is extracted, good members
read back byte-exact, and the size cap stops decompression bombs."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from contextlib import nullcontext

import numpy as np
import pytest

from aekit.data.archives import (
    UnsafeArchiveError,
    archive_format,
    iter_members,
    list_members,
    read_member,
)

GOOD = {
    "data/a.txt": b"hello\n",
    "data/sub/b.bin": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
    "top.csv": b"1,2,3\n",
    "empty": b"",
}


def _tar(path, members, mode="w"):
    """members: list of (TarInfo, data or None)."""
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _good_tar(path, mode="w"):
    d = tarfile.TarInfo("data")
    d.type = tarfile.DIRTYPE
    return _tar(path, [(d, None)] + [_file(n, b) for n, b in GOOD.items()], mode)


def _zip(path, members):
    """members: list of (name or ZipInfo, data)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _good_zip(path):
    return _zip(path, [("data/", b""), *GOOD.items()])


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory deep inside tmp_path; the test checks nothing appears anywhere."""
    work = tmp_path / "w" / "x" / "y"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


# ---------------------------------------------------------------------------- good archives
@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tar.bz2", "tar.xz", "zip"])
def test_good_members_read_back_byte_exact(tmp_path, kind):
    p = tmp_path / f"good.{kind}"
    if kind == "zip":
        _good_zip(p)
    else:
        _good_tar(p, "w" if kind == "tar" else "w:" + kind.split(".")[1])
    before = _tree(tmp_path)
    assert archive_format(p) == ("zip" if kind == "zip" else "tar")
    got = dict(iter_members(p))
    assert got == GOOD  # directories skipped, bytes exact
    assert list_members(p) == list(GOOD)
    assert dict(iter_members(p, prefix="data/")) == {k: v for k, v in GOOD.items()
                                                    if k.startswith("data/")}
    assert dict(iter_members(p, include=lambda n: n.endswith(".csv"))) == {"top.csv": b"1,2,3\n"}
    for name, data in GOOD.items():
        assert read_member(p, name) == data
    assert read_member(p, "./data//a.txt") == GOOD["data/a.txt"]  # normalised lookup
    with pytest.raises(ValueError, match="no regular file named 'nope'"):
        read_member(p, "nope")
    with pytest.raises(ValueError, match="no regular file"):
        read_member(p, "data")  # a directory, not a file
    assert _tree(tmp_path) == before  # nothing extracted


def test_dot_slash_tar_names_are_normalised(tmp_path):
    p = _tar(tmp_path / "dot.tar", [_file("./a/b.txt", b"x")])
    assert list(iter_members(p)) == [("a/b.txt", b"x")]


# ------------------------------------------------------------------------ malicious tar
def _link(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


BAD_TAR = {
    "absolute": _file("/tmp/aekit_evil_abs", b"pwned"),
    "dotdot": _file("../evil", b"pwned"),
    "nested dotdot": _file("data/../../evil", b"pwned"),
    "backslash dotdot": _file("..\\evil", b"pwned"),
    "drive": _file("C:\\evil", b"pwned"),
    "drive slash": _file("C:/evil", b"pwned"),
    "symlink": _link("data/link", "/etc/passwd", tarfile.SYMTYPE),
    "relative symlink": _link("link", "../../outside", tarfile.SYMTYPE),
    "hardlink": _link("data/hard", "/etc/passwd", tarfile.LNKTYPE),
    "fifo": _special("pipe", tarfile.FIFOTYPE),
    "char device": _special("null", tarfile.CHRTYPE),
    "block device": _special("sda", tarfile.BLKTYPE),
}


@pytest.mark.parametrize("case", list(BAD_TAR))
@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_malicious_tar_refused(sandbox, case, mode):
    info, data = BAD_TAR[case]
    arc = sandbox / ("bad.tar" if mode == "w" else "bad.tar.gz")
    # a good member before and after: the whole archive is refused, not just the bad member
    _tar(arc, [_file("ok.txt", b"fine"), (info, data), _file("z.txt", b"fine too")], mode)
    before = _tree(sandbox)
    for call in (lambda: list(iter_members(arc)), lambda: list_members(arc),
                 lambda: read_member(arc, "ok.txt"),
                 lambda: list(iter_members(arc, prefix="ok"))):
        with pytest.raises(UnsafeArchiveError) as e:
            call()
        assert repr(info.name) in str(e.value)  # names the member
        assert isinstance(e.value, ValueError)
    assert _tree(sandbox) == before  # nothing written, anywhere under tmp
    assert not (sandbox.parent / "evil").exists()
    assert not os.path.exists("/tmp/aekit_evil_abs")


# ------------------------------------------------------------------------ malicious zip
def _zinfo(name, mode):
    zi = zipfile.ZipInfo(name)
    zi.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    zi.external_attr = mode << 16
    return zi


BAD_ZIP = {
    "dotdot": ("../evil", b"pwned"),
    "nested dotdot": ("a/./../../evil", b"pwned"),
    "absolute": ("/tmp/aekit_evil_abs", b"pwned"),
    "backslash dotdot": ("..\\..\\evil", b"pwned"),
    "drive": ("C:\\Windows\\evil", b"pwned"),
    "unc": ("\\\\host\\share\\evil", b"pwned"),
    "symlink": (_zinfo("data/link", stat.S_IFLNK | 0o777), b"/etc/passwd"),
    "fifo": (_zinfo("pipe", stat.S_IFIFO | 0o644), b""),
    "duplicate": ("ok.txt", b"second copy"),
}


@pytest.mark.parametrize("case", list(BAD_ZIP))
def test_malicious_zip_refused(sandbox, case):
    name, data = BAD_ZIP[case]
    arc = sandbox / "bad.zip"
    with pytest.warns(UserWarning, match="Duplicate") if case == "duplicate" else nullcontext():
        _zip(arc, [("ok.txt", b"fine"), (name, data), ("z.txt", b"fine")])
    raw = name.filename if isinstance(name, zipfile.ZipInfo) else name
    before = _tree(sandbox)
    for call in (lambda: list(iter_members(arc)), lambda: list_members(arc),
                 lambda: read_member(arc, "z.txt")):
        with pytest.raises(UnsafeArchiveError) as e:
            call()
        assert repr(raw) in str(e.value)
    assert _tree(sandbox) == before
    assert not (sandbox.parent / "evil").exists()
    assert not os.path.exists("/tmp/aekit_evil_abs")


def test_read_member_refuses_unsafe_lookup_name(tmp_path):
    p = _good_zip(tmp_path / "g.zip")
    with pytest.raises(ValueError, match="not a valid member name"):
        read_member(p, "../etc/passwd")


# ------------------------------------------------------------------ not an archive / missing
def test_non_archive_gives_clear_error(tmp_path):
    p = tmp_path / "notes.tar"
    p.write_bytes(b"just some text, not an archive\n" * 40)
    with pytest.raises(ValueError, match="is not a tar or zip archive"):
        list(iter_members(p))
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is not a tar or zip archive"):
        read_member(empty, "x")
    gz = tmp_path / "plain.gz"  # gzip, but not of a tar
    gz.write_bytes(gzip.compress(b"hello " * 1000))
    with pytest.raises(ValueError, match="tar"):
        list_members(gz)
    with pytest.raises(ValueError, match="is a directory"):
        list_members(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such archive"):
        list_members(tmp_path / "missing.zip")


def test_truncated_archives_give_value_error(tmp_path):
    for name, make in (("t.tar.gz", lambda q: _good_tar(q, "w:gz")), ("t.zip", _good_zip)):
        full = make(tmp_path / ("full_" + name)).read_bytes()
        cut = tmp_path / name
        cut.write_bytes(full[: len(full) // 2])
        with pytest.raises(ValueError):
            list(iter_members(cut))


# ------------------------------------------------------------------------------ size cap
def test_size_cap_plain(tmp_path):
    members = [_file(f"f{i}", b"x" * 1000) for i in range(3)]
    t = _tar(tmp_path / "three.tar", members)
    z = _zip(tmp_path / "three.zip", [(f"f{i}", b"x" * 1000) for i in range(3)])
    for p in (t, z):
        assert len(list(iter_members(p, max_bytes=10_000))) == 3
        with pytest.raises(UnsafeArchiveError, match="max_bytes=2000"):
            list(iter_members(p, max_bytes=2000))
        with pytest.raises(UnsafeArchiveError, match="max_bytes"):
            read_member(p, "f0", max_bytes=2000)  # the whole archive counts
    with pytest.raises(ValueError, match="max_bytes must be an integer >= 1"):
        list_members(t, max_bytes=0)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_size_cap_stops_decompression_bomb(tmp_path, kind):
    big = 64 * 1024 * 1024  # 64 MiB of zeros compresses to ~64 kB
    p = tmp_path / f"bomb.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf, \
                zf.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(big >> 20):
                f.write(chunk)
    else:
        info = tarfile.TarInfo("zeros.bin")
        info.size = big
        with tarfile.open(p, "w:gz", compresslevel=1) as tf:

            class Zeros(io.RawIOBase):
                def readinto(self, b):
                    b[:] = bytes(len(b))
                    return len(b)

            tf.addfile(info, Zeros())
    assert p.stat().st_size < big // 50
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        list(iter_members(p, max_bytes=1 << 20))
    assert _tree(tmp_path) == [p.name]
