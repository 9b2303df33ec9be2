"""Safe, in-memory readers for tar (plain, ``.tar.gz``, ``.tar.bz2``, ``.tar.xz``) and zip archives.

Nothing is ever extracted to disk: members come back as ``(name, bytes)`` pairs. Even so, every
member header is checked *before* any data is returned, and an archive holding a single unsafe
member is refused as a whole with :class:`UnsafeArchiveError` (a ``ValueError``) naming that
member. Refused:

* absolute names (``/etc/passwd``), Windows drive or UNC names (``C:\\x``, ``\\\\host\\share``),
  and any ``..`` component, with ``\\`` treated as a separator (``..\\evil``), so a zip name
  that would normalise outside the archive root is caught too;
* symbolic links and hard links (tar link entries; zip entries whose Unix mode is a link);
* devices, FIFOs, sockets and unknown member types;
* names that are empty, hold a NUL byte, or occur twice (ambiguous reads);
* encrypted zip members (not supported).

Why: ``tarfile.extractall`` joined member names to the target folder unchecked for 15 years
(CVE-2007-4559, rediscovered in 2022 in ~350,000 projects); the same flaw in zip tools is "Zip
Slip" (Snyk, 2018). Links let a later member write through an earlier one, and device files
or FIFOs can block or touch hardware. Python 3.12 added extraction filters (PEP 706); reading
in memory sidesteps extraction, and refusing such archives outright means a name we hand back
can never be joined to a folder to escape it, and a tampered data file is reported rather than
silently half-read.

Decompression bombs (a few kB that inflate to terabytes, e.g. "42.zip") are stopped by
``max_bytes``: an archive whose uncompressed content exceeds it is refused *before* that
content is decompressed. For tar it bounds the uncompressed tar stream (headers included), for
zip the sum of the members' declared sizes; reads are also checked against the declared sizes.

References: CVE-2007-4559 (https://nvd.nist.gov/vuln/detail/CVE-2007-4559); PEP 706,
"Filter for tarfile.extractall"; Snyk, "Zip Slip Vulnerability" (2018); D. Fifield, "A better
zip bomb", WOOT 2019.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..io import FileFormatError
from ..validation import check_int

__all__ = [
    "DEFAULT_MAX_BYTES",
    "UnsafeArchiveError",
    "archive_format",
    "iter_members",
    "list_members",
    "read_member",
]

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB of uncompressed content per archive

_DRIVE = re.compile(r"^[A-Za-z]:")
# What a corrupt compressed stream can raise from tarfile/zipfile/gzip/bz2/lzma.
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError)


class UnsafeArchiveError(FileFormatError):
    """An archive member that could escape a target folder, a link or device, or an archive
    whose uncompressed size exceeds ``max_bytes``."""


@dataclass(frozen=True)
class _Entry:
    name: str  # normalised: '/'-separated, no '.' or empty components
    size: int  # declared uncompressed size in bytes
    ref: tarfile.TarInfo | zipfile.ZipInfo


def archive_format(path: str | os.PathLike) -> str:
    """``"zip"`` or ``"tar"`` (possibly gzip/bz2/xz-compressed), judged by the file's magic bytes.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a folder or a file
    that is neither format.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such archive: {p}")
    if p.is_dir():
        raise FileFormatError(f"{p} is a directory, expected a tar or zip archive")
    with open(p, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if (head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00"
            or head[257:262] == b"ustar"):
        return "tar"
    try:
        if tarfile.is_tarfile(p):  # old V7 tar without the "ustar" magic
            return "tar"
    except _CORRUPT:
        pass
    raise FileFormatError(f"{p} is not a tar or zip archive (it starts with {head[:8]!r}); "
                     "expected .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz or .zip")


def _safe_name(raw: str, where: Path) -> str:
    """Normalised member name, or ``UnsafeArchiveError`` naming the member."""
    def bad(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{where}: refusing member {raw!r}: {why}")

    if not raw or "\x00" in raw:
        raise bad("empty name or NUL byte in the name")
    s = raw.replace("\\", "/")  # "..\\evil" and "C:\\x" are traversal on Windows
    if s.startswith("/"):
        raise bad("absolute path")
    if _DRIVE.match(s):
        raise bad("Windows drive path")
    parts = [q for q in s.split("/") if q not in ("", ".")]
    if ".." in parts:
        raise bad("'..' component (path traversal outside the archive root)")
    return "/".join(parts)


def _scan_tar(tf: tarfile.TarFile, path: Path, max_bytes: int) -> list[_Entry]:
    entries = []
    while True:
        m = tf.next()  # reads one header; the previous member's data is skipped only now
        if m is None:
            break
        name = _safe_name(m.name, path)
        if m.issym() or m.islnk():
            kind = "symbolic link" if m.issym() else "hard link"
            raise UnsafeArchiveError(f"{path}: refusing member {m.name!r}: {kind} to "
                                     f"{m.linkname!r}")
        if m.ischr() or m.isblk() or m.isfifo():
            kind = "FIFO" if m.isfifo() else "device file"
            raise UnsafeArchiveError(f"{path}: refusing member {m.name!r}: {kind}")
        if not (m.isreg() or m.isdir()):
            raise UnsafeArchiveError(f"{path}: refusing member {m.name!r}: unsupported tar "
                                     f"member type {m.type!r}")
        if m.offset_data + m.size > max_bytes:  # checked before tarfile decompresses the data
            raise UnsafeArchiveError(
                f"{path}: member {m.name!r} takes the uncompressed archive past "
                f"max_bytes={max_bytes} bytes (decompression bomb?); pass a larger max_bytes "
                "if the archive is trusted")
        if m.isreg():
            entries.append(_Entry(name, int(m.size), m))
    return entries


def _scan_zip(zf: zipfile.ZipFile, path: Path, max_bytes: int) -> list[_Entry]:
    entries, total = [], 0
    for info in zf.infolist():
        name = _safe_name(info.filename, path)
        ftype = stat.S_IFMT(info.external_attr >> 16)  # Unix mode, when the zip records one
        if ftype == stat.S_IFLNK:
            raise UnsafeArchiveError(f"{path}: refusing member {info.filename!r}: symbolic link")
        if ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{path}: refusing member {info.filename!r}: device, "
                                     "FIFO or socket")
        if info.is_dir():
            continue
        if not name:
            raise UnsafeArchiveError(f"{path}: refusing member {info.filename!r}: empty name")
        if info.flag_bits & 0x1:
            raise FileFormatError(f"{path}: member {info.filename!r} is encrypted (not supported)")
        total += info.file_size
        if total > max_bytes:
            raise UnsafeArchiveError(
                f"{path}: member {info.filename!r} takes the uncompressed content past "
                f"max_bytes={max_bytes} bytes (decompression bomb?); pass a larger max_bytes "
                "if the archive is trusted")
        entries.append(_Entry(name, int(info.file_size), info))
    return entries


def _open(path: Path, kind: str):
    try:
        if kind == "zip":
            return zipfile.ZipFile(path)
        return tarfile.open(path, "r:*")
    except _CORRUPT as e:
        raise FileFormatError(f"{path} is not a readable {kind} archive: {e}") from None


def _scan(path: Path, max_bytes: int) -> tuple[str, list[_Entry], os.stat_result]:
    kind = archive_format(path)
    st = path.stat()
    with _open(path, kind) as arc:
        try:
            entries = (_scan_zip(arc, path, max_bytes) if kind == "zip"
                       else _scan_tar(arc, path, max_bytes))
        except UnsafeArchiveError:
            raise
        except _CORRUPT as e:
            raise FileFormatError(f"{path}: corrupt {kind} archive ({e})") from None
    seen = set()
    for e in entries:
        if e.name in seen:
            raise UnsafeArchiveError(f"{path}: refusing member {e.name!r}: it occurs twice "
                                     "(ambiguous)")
        seen.add(e.name)
    return kind, entries, st


def _read(arc, kind: str, e: _Entry, path: Path) -> bytes:
    try:
        f = arc.open(e.ref) if kind == "zip" else arc.extractfile(e.ref)
        with f:
            data = f.read(e.size + 1)  # never more than the declared size (+1 to detect lies)
    except _CORRUPT as err:
        raise FileFormatError(f"{path}: cannot read member {e.name!r}: {err}") from None
    if len(data) != e.size:
        raise FileFormatError(f"{path}: member {e.name!r} holds {len(data)}"
                         f"{'+' if len(data) > e.size else ''} bytes but its header says "
                         f"{e.size} (corrupt or tampered archive)")
    return data


def _select(entries: list[_Entry], prefix: str | None,
            include: Callable[[str], bool] | None) -> list[_Entry]:
    return [e for e in entries
            if (prefix is None or e.name.startswith(prefix))
            and (include is None or include(e.name))]


def list_members(path: str | os.PathLike, *, prefix: str | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """Names of the regular files in the archive (normalised, ``/``-separated, in archive
    order), optionally only those starting with ``prefix``. The whole archive is checked as in
    :func:`iter_members`; no member data is decompressed for zip or plain tar."""
    path = Path(path)
    _, entries, _ = _scan(path, check_int("max_bytes", max_bytes, 1))
    return [e.name for e in _select(entries, prefix, None)]


def iter_members(path: str | os.PathLike, *, prefix: str | None = None,
                 include: Callable[[str], bool] | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, data)`` for each regular file in a tar or zip archive, in archive order.

    Parameters
    ----------
    path : str or PathLike
        A ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` or ``.zip`` file (the format
        is judged by content, not by suffix).
    prefix : str, optional
        Only members whose normalised name starts with this string (e.g. ``"train/"``).
    include : callable, optional
        Only members for which ``include(name)`` is true.
    max_bytes : int
        Cap on the archive's uncompressed size (see the module docstring).

    Notes
    -----
    Directories are skipped. Names are normalised (``./a//b`` → ``a/b``, ``\\`` → ``/``). The
    whole archive is validated when this function is called, before anything is yielded, so
    errors surface at the call; each member is read into memory only when its turn comes.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    UnsafeArchiveError
        A member is unsafe (absolute, ``..``, link, device, duplicate), or the archive exceeds
        ``max_bytes``. A subclass of ``ValueError``.
    ValueError
        Not a tar/zip archive, or corrupt.
    """
    path = Path(path)
    kind, entries, st = _scan(path, check_int("max_bytes", max_bytes, 1))
    return _reader(path, kind, _select(entries, prefix, include), st)


def _reader(path: Path, kind: str, entries: list[_Entry],
            st: os.stat_result) -> Iterator[tuple[str, bytes]]:
    if not entries:
        return
    with _open(path, kind) as arc:
        now = path.stat()
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
            raise FileFormatError(f"{path} changed between checking and reading it")
        for e in entries:
            yield e.name, _read(arc, kind, e, path)


def read_member(path: str | os.PathLike, name: str, *,
                max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of one regular file in a tar or zip archive, after checking the whole archive
    as :func:`iter_members` does. ``name`` is matched after the same normalisation.

    Raises ``ValueError`` when the archive has no such regular file.
    """
    path = Path(path)
    try:
        want = _safe_name(name, path)
    except UnsafeArchiveError:
        raise FileFormatError(f"{path}: {name!r} is not a valid member name (absolute or '..')")\
            from None
    for _, data in iter_members(path, include=want.__eq__, max_bytes=max_bytes):
        return data
    raise FileFormatError(f"{path} has no regular file named {name!r}")
