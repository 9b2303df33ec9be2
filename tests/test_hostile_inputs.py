"""Issue 17: nothing lost, nothing cryptic. Each case a hostile user found is reproduced here:
run directories are owned (a user's files are never overwritten, foreign checkpoints are
neither loaded nor deleted), every malformed file gives exit 2 and one line naming it, and
runs are complete or marked incomplete with the reason."""

from __future__ import annotations

import json
import pickle
import shutil
import struct

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.data import load_array
from aekit.io import FileFormatError, load_tensor_file, parse_json, save_tensor_file
from aekit.runs import read_marker
from aekit.train.checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoint_owner,
    find_checkpoints,
    load_checkpoint,
    read_checkpoint,
)

FAST = ["--max-iter", "2", "--hidden-layer-sizes", "8", "--n-components", "2", "--no-progress"]


def _one_line_error(capsys, *needles):
    """The captured stderr is one `aekit ...: error:` line holding every needle."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and ": error: " in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "good"
    assert main(["train", "--data", "digits", "--output", str(out), "--no-report", *FAST]) == 0
    return out


# ---------------------------------------------------------------- data loss / wrong results
def test_out_with_user_files_is_refused_and_force_uses_a_fresh_subdirectory(tmp_path, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"my own model")
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "ckpt-0000000800.safetensors").write_bytes(b"someone else's")
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    assert main(["train", "--data", "digits", "--output", str(d), *FAST]) == 2
    _one_line_error(capsys, str(d), "not an aekit run", "--force")
    assert main(["train", "--data", "digits", "--output", str(d), "--force", *FAST]) == 0
    after = {p: p.read_bytes() for p in d.rglob("*") if p.is_file() and p in before}
    assert after == before, "a user file changed"
    subs = [p for p in d.iterdir() if p.name.startswith("run-")]
    assert len(subs) == 1 and (subs[0] / "model.safetensors").is_file(), list(d.iterdir())
    assert read_marker(subs[0])["status"] == "complete"


def test_checkpoints_carry_the_run_id_and_foreign_ones_are_ignored_never_deleted(tmp_path):
    lin = torch.nn.Linear(2, 2)
    d = tmp_path / "ck"
    with checkpoint_owner("aaaaaaaa"):
        foreign = aekit.train.save_checkpoint(d, 800, {"model": lin}, {"x": 1})
    plain = aekit.train.save_checkpoint(d, 900, {"model": lin}, {"x": 2})  # no owner
    with checkpoint_owner("bbbbbbbb"):
        for step in (1, 2, 3):
            aekit.train.save_checkpoint(d, step, {"model": lin}, {"x": step}, keep=2)
        own = find_checkpoints(d)
        assert [p.name for p in own] == ["ckpt-0000000003-bbbbbbbb.safetensors",
                                        "ckpt-0000000002-bbbbbbbb.safetensors"], own
        with pytest.warns(UserWarning, match="tree.modules.objective"):
            assert load_checkpoint(d) is None  # own files lack a training tree
    assert foreign.exists() and plain.exists(), "a foreign checkpoint was deleted"
    _, doc = load_tensor_file(own[0], CHECKPOINT_FORMAT)
    assert doc["run_id"] == "bbbbbbbb"


def test_resume_never_adopts_a_foreign_checkpoint(run, tmp_path, capsys):
    """A run whose own checkpoints are gone: --resume is an error naming the files (the
    foreign, newer checkpoint planted there is listed as ignored and left untouched), and
    --restart trains it again from step 0."""
    victim = tmp_path / "victim"
    shutil.copytree(run, victim)
    (victim / "model.safetensors").unlink()
    own = find_checkpoints(victim / "checkpoints")
    foreign_src = tmp_path / "other"
    assert main(["train", "--data", "digits", "--output", str(foreign_src), "--no-report",
                 "--max-iter", "5", "--hidden-layer-sizes", "8", "--n-components", "2",
                 "--no-progress"]) == 0
    planted = victim / "checkpoints" / find_checkpoints(foreign_src / "checkpoints")[0].name
    shutil.copy(find_checkpoints(foreign_src / "checkpoints")[0], planted)
    planted_bytes = planted.read_bytes()
    for p in own:  # corrupt every own checkpoint
        b = bytearray(p.read_bytes())
        b[-3] ^= 0xFF
        p.write_bytes(bytes(b))
    m = read_marker(victim)
    (victim / "run.json").write_text(json.dumps({**m, "status": "training"}))
    assert main(["train", "--output", str(victim), "--resume", "--no-progress"]) == 2
    _one_line_error(capsys, "no readable checkpoint", own[0].name, planted.name, "--restart")
    assert main(["train", "--output", str(victim), "--resume", "--restart", "--no-progress",
                 "--no-report"]) == 0
    capsys.readouterr()
    metrics = json.loads((victim / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["resumed_from_step"] is None, metrics
    assert planted.read_bytes() == planted_bytes
    a = aekit.load(run).state_dict()
    b = aekit.load(victim).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "restart differs from the original run"


def test_csv_first_row_rule_and_row_alignment(run, tmp_path, capsys):
    X = np.random.default_rng(0).random((60, 64))
    rows = [",".join(f"{v:.5f}" for v in r) for r in X]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join(["abc," + rows[0].split(",", 1)[1], *rows[1:]]) + "\n")
    with pytest.raises(FileFormatError, match="row 1 mixes text"):
        load_array(mixed)
    assert main(["encode", str(run), "--input", str(mixed), "--output",
                 str(tmp_path / "z.npy")]) == 2
    _one_line_error(capsys, "mixed.csv", "row 1", "--header")
    assert not (tmp_path / "z.npy").exists()
    header = tmp_path / "h.csv"
    header.write_text("\n".join([",".join(f"f{i}" for i in range(64)), *rows]) + "\n")
    plain = tmp_path / "p.csv"
    plain.write_text("\n".join(rows) + "\n")
    assert load_array(header).X.shape == (60, 64)
    assert load_array(plain).X.shape == (60, 64)
    assert load_array(plain, header=True).X.shape == (59, 64)
    with pytest.raises(FileFormatError, match="row 1, column 1"):
        load_array(header, header=False)
    for src in (header, plain):
        out = tmp_path / f"z_{src.stem}.npy"
        assert main(["encode", str(run), "--input", str(src), "--output", str(out)]) == 0
        assert np.load(out).shape[0] == 60, f"{src.name}: rows not aligned with the input"


def test_complex_input_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((4, 3), np.complex64) * (1 + 2j))
    with pytest.raises(FileFormatError, match="complex"):
        load_array(tmp_path / "c.npy")
    with pytest.raises(ValueError, match="(?i)complex"):
        aekit.Autoencoder(n_components=1, max_iter=1).fit(np.ones((4, 3)) * (1 + 1j))


# ---------------------------------------------------------------------- one clear error
def _tensor_file_with_header(path, header: bytes, body: bytes = b""):
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)


@pytest.mark.parametrize("header,needle", [
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (json.dumps({"__metadata__": {"aekit": "[" * 5000 + "]" * 5000}}).encode(), "nested"),
    (json.dumps({"__metadata__": {"aekit": "[1, 2]"}}).encode(), "expected an object"),
    (json.dumps({"__metadata__": [1, 2]}).encode(), "not one written by aekit"),
    (b"[1, 2]", "header: expected an object"),
])
def test_tensor_header_json_is_bounded_and_schema_checked(run, tmp_path, capsys, header, needle):
    p = tmp_path / "m.safetensors"
    _tensor_file_with_header(p, header)
    with pytest.raises(FileFormatError, match=needle):
        aekit.load(p)
    assert main(["encode", str(p), "--input", "x.npy", "--output", str(tmp_path / "z.npy")]) == 2
    _one_line_error(capsys, str(p), needle)


@pytest.mark.parametrize("edit,needle", [
    (("config.json", "[1,2]"), "expected an object"),
    (("config.json", "DROP_CONFIG"), "config: expected an object, got nothing"),
    (("metrics.json", "{}"), "metrics.json: epochs_run"),
    (("metrics.json", "[" * 50_000 + "]" * 50_000), "nested"),
    (("history.jsonl", '{"epoch": 1}\n[3]\n'), "line 2"),
    (("run.json", '{"format": "aekit-run-marker"}'), "run_id"),
])
def test_hand_edited_run_files(run, tmp_path, capsys, edit, needle):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    name, text = edit
    if text == "DROP_CONFIG":
        info = json.loads((bad / name).read_text())
        del info["config"]
        text = json.dumps(info)
    (bad / name).write_text(text)
    for cmd in (["info", str(bad)], ["evaluate", str(bad)], ["report", str(bad)]):
        assert main(cmd) == 2, cmd
        _one_line_error(capsys, name, needle)
    assert not (bad / "report.html").exists()


def test_checkpoint_with_valid_checksum_but_broken_tree(run, tmp_path):
    own = find_checkpoints(run / "checkpoints")[0]
    tensors, doc = load_tensor_file(own, CHECKPOINT_FORMAT)
    meta = {k: v for k, v in doc.items() if k not in ("format", "version", "sha256")}
    for broken, needle in [({k: v for k, v in meta.items() if k != "tree"}, "tree"),
                           ({**meta, "tree": {"modules": {}, "state": {}}}, "tree.modules"),
                           ({**meta, "tree": {**meta["tree"], "state": {"__tensor__": "nope"}}},
                            "tree.state")]:
        p = tmp_path / own.name
        save_tensor_file(p, tensors, CHECKPOINT_FORMAT, broken)  # recomputes the checksum
        with pytest.raises(FileFormatError, match=needle):
            read_checkpoint(p)
        with pytest.warns(UserWarning, match="skipping unreadable"):
            assert load_checkpoint(tmp_path) is None


def test_npy_header_claiming_huge_shape_is_truncated_not_allocated(run, tmp_path, capsys):
    p = tmp_path / "huge.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 64)})
        f.write(b"\0" * 256)
    out = tmp_path / "r"
    assert main(["train", "--data", str(p), "--output", str(out), *FAST]) == 2
    _one_line_error(capsys, "huge.npy", "truncated")
    assert not out.exists()
    npz = tmp_path / "huge.npz"
    np.savez(npz, X=np.zeros((2, 3), np.float32))
    raw = npz.read_bytes().replace(b"(2, 3)", b"(9999999999, 3)"[:6])  # same length
    npz.write_bytes(raw)
    with pytest.raises(FileFormatError):
        load_array(npz)


def test_out_under_a_regular_file_and_npy_for_mnist(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--data", "digits", "--output", str(tmp_path / "file" / "sub"),
                 *FAST]) == 2
    _one_line_error(capsys, "is a file, not a directory")
    np.save(tmp_path / "m.npy", np.zeros((3, 4)))
    assert main(["train", "--data", "mnist", "--data-path", str(tmp_path / "m.npy"), "--output",
                 str(tmp_path / "mn"), *FAST]) == 2
    _one_line_error(capsys, "m.npy", "not an .npz archive")


# ------------------------------------------------------------------------ half-finished
def test_tiny_data_gives_a_complete_run_with_a_degraded_report(tmp_path, capsys):
    for n in (1, 2, 5, 25):
        np.save(tmp_path / f"t{n}.npy", np.random.default_rng(n).random((n, 6)).astype("f4"))
        out = tmp_path / f"run{n}"
        assert main(["train", "--data", str(tmp_path / f"t{n}.npy"), "--output", str(out),
                     "--set", "data.validation_fraction=0", *FAST]) == 0, capsys.readouterr().err
        capsys.readouterr()
        assert (out / "report.html").is_file(), n
        assert read_marker(out)["status"] == "complete", n


def test_max_iter_zero_is_refused(tmp_path, capsys):
    assert main(["train", "--data", "digits", "--output", str(tmp_path / "e"), "--max-iter", "0",
                 "--no-report"]) == 2
    _one_line_error(capsys, "train.max_iter must be an integer >= 1", "(--max-iter)")
    assert not (tmp_path / "e").exists()


def test_failed_training_is_marked_incomplete_with_the_reason(tmp_path, capsys):
    out = tmp_path / "nan"
    assert main(["train", "--data", "digits", "--output", str(out), "--learning-rate", "1e30",
                 "--set", "train.optimizer=sgd", *FAST]) == 2
    capsys.readouterr()
    m = read_marker(out)
    assert m["status"] == "incomplete" and "FloatingPointError" in m["reason"], m
    assert main(["info", str(out)]) == 2
    _one_line_error(capsys, "not a complete aekit run", "incomplete")


# -------------------------------------------------------------------------------- small
def test_transform_before_fit_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    for method in ("transform", "reconstruct", "score_samples", "inverse_transform"):
        with pytest.raises(NotFittedError):
            getattr(aekit.Autoencoder(), method)(np.ones((2, 3)))


def test_small_integers_are_min_max_scaled_not_divided_by_255(tmp_path):
    from aekit.data import load_dataset

    np.save(tmp_path / "i.npy", np.arange(34, dtype=np.int64).reshape(17, 2) % 17)
    X = load_dataset(str(tmp_path / "i.npy"))[0].X
    assert X.min() == 0 and X.max() == 1, (X.min(), X.max())
    np.save(tmp_path / "u.npy", np.array([[0, 16], [8, 4]], np.uint8))
    U = load_dataset(str(tmp_path / "u.npy"))[0].X
    assert U.max() == pytest.approx(16 / 255), U.max()


def test_multi_array_npz_message_is_actionable(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", a=np.zeros((3, 4)), b=np.zeros((3, 4)))
    assert main(["train", "--data", str(tmp_path / "m.npz"), "--output", str(tmp_path / "r"),
                 *FAST]) == 2
    err = _one_line_error(capsys, "m.npz", "rename the data array to X")
    assert "pass key=" not in err


@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
def test_pickles_of_every_protocol_are_named_as_pickles(tmp_path, protocol):
    p = tmp_path / "p.safetensors"
    p.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=protocol))
    with pytest.raises(FileFormatError, match="is a Python pickle"):
        aekit.load(p)


def test_parse_json_bounds():
    with pytest.raises(FileFormatError, match="nested 65 levels"):
        parse_json("[" * 65 + "]" * 65, "x.json")
    assert parse_json('["[[[[", {"a": "]]"}]', "x.json") == ["[[[[", {"a": "]]"}]
    with pytest.raises(FileFormatError, match="not valid JSON"):
        parse_json("[NaN]", "x.json")
    with pytest.raises(FileFormatError, match="larger than the limit"):
        parse_json("1" * 20, "x.json", max_bytes=10)
