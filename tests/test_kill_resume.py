"""A real training process killed with SIGKILL and resumed ends with the same weights as an
uninterrupted run (bit for bit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aekit.train import find_checkpoints

ARGS = ["train", "--data", "digits", "--max-iter", "25", "--hidden-layer-sizes", "64",
        "--batch-size", "64", "--checkpoint-steps", "7", "--no-early-stopping",
        "--set", "model.dropout=0.1",
        "--no-report", "--no-progress"]


def _aekit(*args, **kw):
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "aekit.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _tensors(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


# Mid-epoch checkpoints, early to late. The middle one runs by default; the early and late
# kills (about 25 s each) run with ``pytest -m slow`` to keep the default suite short.
@pytest.mark.parametrize("kill_after_step", [pytest.param(20, marks=pytest.mark.slow), 75,
                                             pytest.param(140, marks=pytest.mark.slow)])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, kill_after_step):
    ref = _aekit(*ARGS, "--output", str(tmp_path / "ref"))
    victim = _aekit(*ARGS, "--output", str(tmp_path / "victim"))
    ck = tmp_path / "victim" / "checkpoints"
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and victim.poll() is None:
        cks = find_checkpoints(ck)
        # kill once training is well under way, at a mid-epoch step checkpoint
        if cks and int(cks[0].stem.split("-")[1]) >= kill_after_step:
            victim.send_signal(signal.SIGKILL)
            killed_at = cks[0].name
            break
        time.sleep(0.02)
    victim.wait()
    assert killed_at is not None, "training finished before it could be killed"
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "victim" / "model.safetensors").exists()

    resumed = _aekit("train", "--output", str(tmp_path / "victim"), "--resume", "--no-progress")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    _, err_ref = ref.communicate(timeout=300)
    assert ref.returncode == 0, err_ref.decode()

    a, b = _tensors(tmp_path / "ref"), _tensors(tmp_path / "victim")
    assert a.keys() == b.keys()
    diff = {k: float((a[k] - b[k]).abs().max()) for k in a}
    assert all(torch.equal(a[k], b[k]) for k in a), f"killed at {killed_at}; max |diff| {diff}"
    hist_ref = (tmp_path / "ref" / "history.jsonl").read_text().splitlines()
    hist = (tmp_path / "victim" / "history.jsonl").read_text().splitlines()
    assert len(hist) == len(hist_ref) == 25


def test_sigkill_resume_ignores_a_foreign_checkpoint_planted_in_the_run(tmp_path):
    """Issue 17: a killed run whose checkpoints/ folder gets another run's (newer, compatible)
    checkpoints before --resume: the resume continues its own checkpoint (weights identical
    to an uninterrupted run) and leaves the foreign files byte-for-byte untouched."""
    ref = _aekit(*ARGS, "--output", str(tmp_path / "ref"))
    other = _aekit(*ARGS, "--seed", "1", "--output", str(tmp_path / "other"))
    victim = _aekit(*ARGS, "--output", str(tmp_path / "victim"))
    ck = tmp_path / "victim" / "checkpoints"
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and victim.poll() is None:
        cks = find_checkpoints(ck)
        if cks and int(cks[0].stem.split("-")[1]) >= 75:
            victim.send_signal(signal.SIGKILL)
            killed_at = cks[0].name
            break
        time.sleep(0.02)
    victim.wait()
    assert killed_at is not None, "training finished before it could be killed"
    assert other.wait(timeout=300) == 0
    src = find_checkpoints(tmp_path / "other" / "checkpoints")[0]
    planted = [ck / src.name, ck / "ckpt-0000099999.safetensors"]  # owned by another run; unowned
    for p in planted:
        p.write_bytes(src.read_bytes())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in planted}

    resumed = _aekit("train", "--output", str(tmp_path / "victim"), "--resume", "--no-progress")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert ref.wait(timeout=300) == 0
    a, b = _tensors(tmp_path / "ref"), _tensors(tmp_path / "victim")
    diff = {k: float((a[k] - b[k]).abs().max()) for k in a}
    assert all(torch.equal(a[k], b[k]) for k in a), f"killed at {killed_at}; max |diff| {diff}"
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in planted}
    assert after == before, "a foreign checkpoint was changed or deleted"
