"""Structured fuzzing of every file reader and every CLI subcommand that takes a file.

Valid files of each kind (a trained run with its JSON files, model and checkpoints; .npy,
.npz and .csv inputs; a TOML config; a PNG; tar and zip archives) are mutated with
hypothesis: truncation, flipped and inserted bytes, lying size fields, JSON values of the
wrong type, deep nesting, huge numbers, wrong dtypes, mixed encodings. The property, for the
CLI: exit 0 with output aligned row for row with the input, or exit 2 with one line on
stderr naming the mutated file; never an exception escaping ``main`` (a traceback), never
partial output, never a change to a file other than the output. For the library readers:
a result, or :class:`aekit.io.FileFormatError` (or FileNotFoundError) naming the file.

The default suite runs a short budget (``FUZZ_EXAMPLES`` per reader); ``-m slow`` runs the
long one (``AEKIT_FUZZ_SLOW_EXAMPLES`` per reader, default 1500). With
``AEKIT_FUZZ_COUNTS=path`` the number of inputs per reader and the outcomes are written to
``path.<xdist worker>``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aekit.cli import main
from aekit.io import FileFormatError

FUZZ_EXAMPLES = int(os.environ.get("AEKIT_FUZZ_EXAMPLES", "30"))
SLOW_EXAMPLES = int(os.environ.get("AEKIT_FUZZ_SLOW_EXAMPLES", "1500"))
COUNTS: Counter = Counter()
OUTCOMES: Counter = Counter()


def _settings(n):
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


def fuzz(strategy):
    """Decorator: a fast test (short budget) and a ``slow`` one (long budget) of one body
    ``body(base, work, example)``; every example gets a fresh, empty ``work`` folder."""
    def wrap(body):
        def test(base, example):
            work = Path(tempfile.mkdtemp(dir=base["root"]))
            try:
                body(base, work, example)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        test.__doc__ = body.__doc__
        fast = _settings(FUZZ_EXAMPLES)(given(example=strategy)(test))
        slow = pytest.mark.slow(_settings(SLOW_EXAMPLES)(given(example=strategy)(test)))
        return fast, slow
    return wrap


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    yield
    path = os.environ.get("AEKIT_FUZZ_COUNTS")
    if path:  # one file per pytest-xdist worker: <path>.<worker>
        path += f".{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        Path(path).write_text(json.dumps({"inputs": dict(COUNTS), "outcomes": dict(OUTCOMES)},
                                         indent=2))


# ---------------------------------------------------------------------- the valid files
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzbase")
    run = root / "run"
    rc = main(["train", "--data", "digits", "--output", str(run), "--max-iter", "2",
               "--hidden-layer-sizes", "8",
               "--n-components", "2", "--no-progress", "--no-report"])
    assert rc == 0
    rng = np.random.default_rng(0)
    X = rng.random((7, 64)).astype(np.float32)
    np.save(root / "x.npy", X)
    np.savez(root / "x.npz", X=X, y=np.arange(7))
    (root / "x.csv").write_text("\n".join(",".join(f"{v:.4f}" for v in r) for r in X) + "\n")
    (root / "cfg.toml").write_text('[model]\nhidden_layer_sizes = [4]\nn_components = 2\n'
                                   '[train]\nmax_iter = 1\nlearning_rate = 0.01\n'
                                   'batch_size = 8\n[data]\nvalidation_fraction = 0.0\n')
    np.save(root / "tiny.npy", rng.random((12, 5)).astype(np.float32))
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((rng.random((6, 5)) * 255).astype(np.uint8)).save(buf, format="PNG")
    (root / "img.png").write_bytes(buf.getvalue())
    with tarfile.open(root / "a.tar", "w") as tf:
        for name, data in (("d/a.txt", b"hello"), ("d/b.npy", (root / "x.npy").read_bytes())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(root / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/a.txt", b"hello" * 50)
        zf.writestr("d/b.npy", (root / "x.npy").read_bytes())
    return {"root": root, "run": run, "X": X}


# ------------------------------------------------------------------------- mutations
def _flip(data: bytes, positions, values) -> bytes:
    b = bytearray(data)
    for p, v in zip(positions, values):
        if b:
            b[p % len(b)] = v
    return bytes(b)


byte_mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.integers(0, 10**9), min_size=1, max_size=6),
              st.lists(st.integers(0, 255), min_size=6, max_size=6)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("head"), st.binary(max_size=16)),
    st.tuples(st.just("random"), st.binary(max_size=200)),
)


def _mutate_bytes(data: bytes, m) -> bytes:
    kind = m[0]
    if kind == "truncate":
        return data[:int(len(data) * m[1])]
    if kind == "flip":
        # flip within the first 4 KiB most of the time: headers are where parsers live
        return _flip(data, [p % max(1, min(len(data), 4096)) for p in m[1]], m[2])
    if kind == "insert":
        i = int(len(data) * m[1])
        return data[:i] + m[2] + data[i:]
    if kind == "head":
        return m[1] + data[len(m[1]):]
    return m[1]


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=12))
json_value = st.recursive(json_scalar, lambda c: st.lists(c, max_size=3)
                          | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)
json_mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), json_value),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("nest"), st.integers(0, 10**6), st.integers(1, 3000)),
    st.tuples(st.just("replace"), json_value),
    st.tuples(st.just("bytes"), byte_mutation),
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _mutate_json(text: str, m) -> bytes:
    """A structured mutation of JSON text: set a value at some path to a random (often
    wrongly typed) value, delete a key, nest deeply, replace the whole document, or bytes."""
    if m[0] == "bytes":
        return _mutate_bytes(text.encode(), m[1])
    if m[0] == "replace":
        return json.dumps(m[1]).encode()
    doc = json.loads(text)
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return json.dumps(m[-1] if m[0] == "set" else doc).encode()
    path = paths[m[1] % len(paths)]
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if m[0] == "set":
        parent[path[-1]] = m[2]
    elif m[0] == "delete":
        del parent[path[-1]]
    else:
        s = json.dumps(doc)
        val = json.dumps(parent[path[-1]])
        return s.replace(val, "[" * m[2] + val + "]" * m[2], 1).encode()
    return json.dumps(doc).encode()


# ------------------------------------------------------------------------ the property
def _snapshot(root: Path, output: Path | None):
    """Size and mtime of every file under ``root`` except ``output`` (a file or a folder)."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and not (output is not None and (p == output
                                                            or output in p.parents))}


def _cli(argv, *, root: Path, names: tuple[str, ...], output: Path | None = None,
         reader: str) -> tuple[int, str]:
    """Run ``aekit argv`` in-process and check the property; returns (exit code, stderr)."""
    COUNTS[reader] += 1
    before = _snapshot(root, output)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
        except BaseException as e:  # the in-process form of a traceback
            raise AssertionError(f"{reader}: {' '.join(map(str, argv))} raised "
                                 f"{type(e).__name__}: {e}") from e
    msg = err.getvalue().strip()
    OUTCOMES[f"{reader}: exit {rc}"] += 1
    assert rc in (0, 2), (reader, rc, msg)
    if rc == 2:
        lines = msg.splitlines()
        assert len(lines) == 1 and ": error: " in lines[0], (reader, msg)
        assert any(n in lines[0] for n in names), (reader, names, msg)
        if output is not None and not output.is_dir():
            assert not output.exists(), f"{reader}: partial output {output} after: {msg}"
            stray = [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}")]
            assert not stray, (reader, stray)
    after = _snapshot(root, output)
    changed = sorted(str(p) for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"{reader}: files outside the output changed: {changed[:5]}"
    return rc, msg


def _rows_in(path: Path) -> int:
    return len(np.load(path, mmap_mode="r")) if path.suffix == ".npy" else \
        len([r for r in path.read_text().splitlines() if r.strip()])


# ---------------------------------------------------------------------------- readers
def _model_file(base, work, m):
    """safetensors header + aekit metadata of a model file, through `aekit encode`."""
    src = (base["run"] / "model.safetensors").read_bytes()
    if m[0] == "bytes":
        data = _mutate_bytes(src, m[1])
    elif m[0] in ("set", "delete", "nest", "replace"):
        (hlen,) = struct.unpack("<Q", src[:8])
        header = json.loads(src[8:8 + hlen])
        if m[0] != "replace" and m[1] % 2:  # the aekit document inside the metadata
            header["__metadata__"]["aekit"] = _mutate_json(
                header["__metadata__"]["aekit"], m).decode("utf-8", "replace")
            hb = json.dumps(header).encode()
        else:
            hb = _mutate_json(json.dumps(header), m)
        data = struct.pack("<Q", len(hb)) + hb + src[8 + hlen:]
    else:
        data = _mutate_bytes(src, m)
    p = work / "m.safetensors"
    p.write_bytes(data)
    out = work / "z.npy"
    rc, _ = _cli(["encode", str(p), "--input", str(base["root"] / "x.npy"), "--output",
                  str(out)], root=work, names=("m.safetensors",), output=out, reader="model")
    if rc == 0:
        assert np.load(out).shape[0] == len(base["X"])


test_model_file, test_model_file_slow = fuzz(byte_mutation | json_mutation)(_model_file)


def _checkpoint(base, work, m):
    """The checkpoint tree: mutated JSON (with the checksum recomputed) or bytes."""
    from aekit.io import load_tensor_file, save_tensor_file
    from aekit.train.checkpoint import CHECKPOINT_FORMAT, find_checkpoints, read_checkpoint

    COUNTS["checkpoint"] += 1
    src = find_checkpoints(base["run"] / "checkpoints")[0]
    p = work / src.name
    if m[0] == "bytes":
        p.write_bytes(_mutate_bytes(src.read_bytes(), m[1]))
    else:
        tensors, doc = load_tensor_file(src, CHECKPOINT_FORMAT)
        meta = {k: v for k, v in doc.items() if k not in ("format", "version", "sha256")}
        try:
            mutated = json.loads(_mutate_json(json.dumps(meta), m))
        except (ValueError, RecursionError):
            return
        if not isinstance(mutated, dict):
            mutated = {"tree": mutated}
        save_tensor_file(p, tensors, CHECKPOINT_FORMAT, mutated)
    try:
        mods, state = read_checkpoint(p)
    except FileFormatError as e:
        OUTCOMES["checkpoint: FileFormatError"] += 1
        assert src.name in str(e), str(e)
        return
    OUTCOMES["checkpoint: read"] += 1
    assert isinstance(mods, dict) and isinstance(state, dict)


test_checkpoint, test_checkpoint_slow = fuzz(json_mutation)(_checkpoint)


def _run_files(base, work, which_m):
    """config.json, metrics.json, history.jsonl, run.json through info / evaluate."""
    which, cmd, m = which_m
    run = work / "run"
    shutil.copytree(base["run"], run)
    f = run / which
    if which == "history.jsonl":
        lines = f.read_text().splitlines()
        lines[0] = _mutate_json(lines[0], m).decode("utf-8", "replace")
        f.write_text("\n".join(lines) + "\n")
    else:
        f.write_bytes(_mutate_json(f.read_text(), m))
    rc, msg = _cli([cmd, str(run)], root=work, names=(which, "run"),
                   reader=f"run files ({which})")
    if rc == 2 and which == "run.json":
        assert "run.json" in msg or "not a complete" in msg, msg


test_run_files, test_run_files_slow = fuzz(st.tuples(
    st.sampled_from(["config.json", "metrics.json", "history.jsonl", "run.json"]),
    st.sampled_from(["info", "evaluate"]), json_mutation))(_run_files)


@st.composite
def npy_files(draw):
    """A .npy with a crafted header (shape, dtype, order) and a body of some length."""
    descr = draw(st.sampled_from(["<f4", "<f8", ">f4", "<i8", "|u1", "|b1", "<c8", "|O",
                                  "<U3", "|V4", "<f2", "[('a', '<f4')]"]))
    shape = draw(st.one_of(st.tuples(st.integers(0, 9), st.just(64)),
                           st.tuples(st.integers(1, 9), st.just(64)),
                           st.tuples(st.integers(0, 10**13), st.integers(0, 10**6)),
                           st.tuples(st.integers(0, 5)), st.just(()),
                           st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 8))))
    fortran = draw(st.booleans())
    body = draw(st.one_of(st.just(None), st.binary(max_size=3000)))
    mut = draw(st.one_of(st.none(), byte_mutation))
    return descr, shape, fortran, body, mut


def _npy_bytes(descr, shape, fortran, body, mut, X):
    f = io.BytesIO()
    try:
        d = eval(descr) if descr.startswith("[") else descr  # a literal from the list above
        np.lib.format.write_array_header_1_0(f, {"descr": d, "fortran_order": fortran,
                                                 "shape": shape})
    except (ValueError, TypeError):
        f = io.BytesIO()
        np.save(f, X)
        return f.getvalue()
    if body is None:  # a body of exactly the claimed size where that is small
        n = int(np.prod(shape, dtype=object)) if shape else 1
        size = n * np.dtype(descr if not descr.startswith("[") else eval(descr)).itemsize \
            if descr not in ("|O",) else n * 8
        body = (np.random.default_rng(0).random(size // 4 + 1).astype("<f4").tobytes()[:size]
                if size <= 10**6 else b"")
    data = f.getvalue() + body
    return _mutate_bytes(data, mut) if mut is not None else data


def _npy(base, work, spec):
    p = work / "in.npy"
    p.write_bytes(_npy_bytes(*spec, base["X"]))
    out = work / "z.npy"
    rc, _ = _cli(["encode", str(base["run"]), "--input", str(p), "--output", str(out)],
                 root=work, names=("in.npy",), output=out, reader="npy (encode)")
    if rc == 0:
        assert np.load(out).shape[0] == len(NpyReaderLen(p))
    rc, _ = _cli(["evaluate", str(base["run"]), "--input", str(p)], root=work,
                 names=("in.npy",), reader="npy (evaluate)")


def NpyReaderLen(p):
    from aekit.data import NpyReader

    return range(len(NpyReader(p)))


test_npy, test_npy_slow = fuzz(npy_files())(_npy)


def _npz(base, work, m):
    p = work / "in.npz"
    kind, arg = m
    if kind == "bytes":
        p.write_bytes(_mutate_bytes((base["root"] / "x.npz").read_bytes(), arg))
    else:  # a zip whose member is a crafted .npy
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED if arg[4] is None else 0) as zf:
            zf.writestr("X.npy", _npy_bytes(*arg, base["X"]))
    out = work / "z.npy"
    rc, _ = _cli(["encode", str(base["run"]), "--input", str(p), "--output", str(out)],
                 root=work, names=("in.npz",), output=out, reader="npz")
    if rc == 0:
        from aekit.data import load_array

        assert np.load(out).shape[0] == len(load_array(p).X)


test_npz, test_npz_slow = fuzz(st.one_of(st.tuples(st.just("bytes"), byte_mutation),
                                         st.tuples(st.just("npy"), npy_files())))(_npz)

csv_cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.integers(-10**30, 10**30).map(str),
                     st.sampled_from(["", " ", "abc", "1e5", "0x10", "1_000", "nan", "-inf",
                                      "1,5", '"3"', "１２", "٣", "1e999", "\t2", "+.5"]),
                     st.text(max_size=5))


@st.composite
def csv_files(draw):
    ncol = draw(st.sampled_from([64] * 6 + [1, 63, 65]))  # mostly the model's width
    rows = draw(st.lists(st.one_of(
        st.lists(st.floats(0, 1, width=32).map(lambda v: f"{v:.4f}"), min_size=ncol,
                 max_size=ncol),
        st.lists(csv_cell, min_size=1, max_size=ncol + 1)), min_size=0, max_size=8))
    text = "\n".join(",".join(r) for r in rows) + draw(st.sampled_from(["", "\n", "\r\n\n"]))
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    header = draw(st.sampled_from([None, True, False]))
    return text, enc, header


def _csv(base, work, spec):
    text, enc, header = spec
    p = work / "in.csv"
    try:
        p.write_bytes(text.encode(enc))
    except UnicodeEncodeError:
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
    out = work / "z.csv"
    flag = [] if header is None else (["--header"] if header else ["--no-header"])
    rc, _ = _cli(["encode", str(base["run"]), "--input", str(p), "--output", str(out), *flag],
                 root=work, names=("in.csv",), output=out, reader="csv")
    if rc == 0:
        lines = [r for r in p.read_bytes().decode("utf-8-sig").splitlines() if r.strip()]

        def number(c):
            try:
                float(c)
                return True
            except ValueError:
                return False
        dropped = header if header is not None else not any(map(number, lines[0].split(",")))
        assert _rows_in(out) == len(lines) - int(dropped), "output rows do not match the input"


test_csv, test_csv_slow = fuzz(csv_files())(_csv)

toml_text = st.one_of(
    st.text(alphabet=st.sampled_from(list("[]{}=\"'.,#\n abcdelmnoprstuvx0123456789_-+")),
            max_size=120),
    st.builds(lambda sec, key, val: f"[{sec}]\n{key} = {val}\n",
              st.sampled_from(["model", "train", "data", "objective", "x"]),
              st.sampled_from(["hidden_layer_sizes", "n_components", "learning_rate",
                               "max_iter", "name", "random_state", "batch_size", "limit",
                               "validation_fraction", "dataset", "zz"]),
              st.sampled_from(["[4]", "1", "-1", "0", "1e400", "'x'", "true", "[[[]]]",
                               "{a = 1}", "2024-01-01", "[" * 40 + "]" * 40, "nan", "0.5",
                               "99999999999999999999"])),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")))


def _toml(base, work, text_and_mut):
    text, mut = text_and_mut
    p = work / "cfg.toml"
    data = (base["root"] / "cfg.toml").read_text() + text
    p.write_bytes(_mutate_bytes(data.encode("utf-8", "surrogatepass"), mut) if mut else
                  data.encode("utf-8", "surrogatepass"))
    out = work / "r"
    rc, _ = _cli(["train", "--config", str(p), "--data", str(base["root"] / "tiny.npy"),
                  "--output", str(out), "--max-iter", "1", "--hidden-layer-sizes", "4",
                  "--n-components", "2",
                  "--set", "data.limit=12", "--set", "model.name=dense", "--no-report",
                  "--no-progress"],
                 root=work, names=("cfg.toml", "config", "train.", "model.", "data.",
                                   "objective.", "tiny.npy"), output=out,
                 reader="toml (train --config)")
    if rc == 2:
        assert not (out / "model.safetensors").exists()


test_toml, test_toml_slow = fuzz(st.tuples(toml_text, st.none() | byte_mutation))(_toml)


def _image(base, work, m):
    from aekit.data import read_image

    COUNTS["image"] += 1
    p = work / "i.png"
    p.write_bytes(_mutate_bytes((base["root"] / "img.png").read_bytes(), m))
    try:
        a = read_image(p)
    except FileFormatError as e:
        OUTCOMES["image: FileFormatError"] += 1
        assert "i.png" in str(e)
        return
    OUTCOMES["image: read"] += 1
    assert a.ndim == 3 and np.isfinite(a).all()


test_image, test_image_slow = fuzz(byte_mutation)(_image)


def _archive(base, work, kind_m):
    from aekit.data.archives import iter_members, list_members

    kind, m = kind_m
    COUNTS[f"archive ({kind})"] += 1
    p = work / f"a.{kind}"
    p.write_bytes(_mutate_bytes((base["root"] / f"a.{kind}").read_bytes(), m))
    try:
        names = list_members(p)
        got = dict(iter_members(p))
    except FileFormatError as e:
        OUTCOMES[f"archive ({kind}): FileFormatError"] += 1
        assert f"a.{kind}" in str(e), str(e)
        return
    OUTCOMES[f"archive ({kind}): read"] += 1
    assert set(got) <= set(names)


test_archive, test_archive_slow = fuzz(st.tuples(st.sampled_from(["tar", "zip"]),
                                                 byte_mutation))(_archive)


def test_counts_cover_every_reader():
    """Documentation of the readers fuzzed here (the counts file lists inputs per reader)."""
    readers = {"model", "checkpoint", "run files", "npy", "npz", "csv", "toml", "image",
               "archive"}
    names = {n.removeprefix("test_").removesuffix("_slow").replace("_", " ")
             for n in globals() if n.startswith("test_") and callable(globals()[n])}
    assert {r.split()[0] for r in readers} <= {n.split()[0] for n in names}, names
