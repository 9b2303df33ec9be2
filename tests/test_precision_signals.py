"""bf16 autocast (only where the CPU has it), and SIGTERM/SIGINT -> checkpoint + clean exit."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aekit import DenseAE, fit, make_objective
from aekit.train import find_checkpoints

fit_module = importlib.import_module("aekit.train.optim")


def _data():
    g = np.random.default_rng(0)
    return (1 / (1 + np.exp(-g.normal(size=(256, 3)) @ g.normal(size=(3, 32))))).astype(
        np.float32)


def test_bf16_falls_back_to_fp32_with_a_warning_without_native_support(monkeypatch):
    monkeypatch.setattr(fit_module, "native_bf16", lambda: False)
    X = _data()
    ws = []
    for precision in ("bf16", "fp32"):
        torch.manual_seed(0)
        m = DenseAE([32, 16, 4], output="sigmoid")
        if precision == "bf16":
            with pytest.warns(RuntimeWarning, match="no native bf16"):
                fit(m, make_objective("bce"), X, max_iter=2, precision="bf16")
        else:
            fit(m, make_objective("bce"), X, max_iter=2)
        ws.append(m.state_dict())
    assert all(torch.equal(ws[0][k], ws[1][k]) for k in ws[0])  # really ran in fp32


@pytest.mark.skipif(not fit_module.native_bf16(), reason="this CPU has no native bf16")
def test_bf16_loss_parity_with_fp32():
    X = _data()
    finals, seen, weights = {}, {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        m = DenseAE([32, 64, 4], output="sigmoid")
        dtypes = set()  # what the first layer's matmul produced during training
        hook = m.enc[0].register_forward_hook(
            lambda mod, i, o, dtypes=dtypes: dtypes.add(o.dtype) if mod.training else None)
        h = fit(m, make_objective("bce"), X, max_iter=20, learning_rate=3e-3, precision=precision)
        hook.remove()
        finals[precision], seen[precision] = h["train_loss"][-1], dtypes
        weights[precision] = m.enc[0].weight.detach().clone()
        assert m.enc[0].weight.dtype == torch.float32  # master weights stay fp32
    # bf16 really ran (autocast did not silently fall back) and fp32 did not use it
    assert seen == {"fp32": {torch.float32}, "bf16": {torch.bfloat16}}, seen
    assert not torch.equal(weights["fp32"], weights["bf16"])
    rel = abs(finals["bf16"] - finals["fp32"]) / finals["fp32"]
    assert rel < 0.03, f"final loss fp32 {finals['fp32']:.4f} vs bf16 {finals['bf16']:.4f}"


def test_unknown_precision():
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        fit(DenseAE([32, 4]), make_objective("mse"), _data(), precision="fp8")


ARGS = ["train", "--data", "digits", "--max-iter", "40", "--hidden-layer-sizes", "64",
        "--batch-size", "64", "--checkpoint-steps", "50", "--no-early-stopping", "--no-report",
        "--no-progress"]


# SIGTERM by default; SIGINT takes the same path (about 25 s more) and runs with -m slow.
@pytest.mark.parametrize("sig", [signal.SIGTERM,
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_signal_saves_checkpoint_and_resume_matches(tmp_path, sig):
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "aekit.cli"]
    ref = subprocess.Popen([*cmd, *ARGS, "--output", str(tmp_path / "ref")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p = subprocess.Popen([*cmd, *ARGS, "--output", str(tmp_path / "run")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ck = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not find_checkpoints(ck):
        time.sleep(0.02)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err.decode()
    msg = err.decode()
    assert "checkpoint saved" in msg and "--resume" in msg, msg
    assert not (tmp_path / "run" / "model.safetensors").exists()
    r = subprocess.run([*cmd, "train", "--output", str(tmp_path / "run"), "--resume",
                        "--no-progress"], env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert ref.wait(timeout=300) == 0
    a = load_file(tmp_path / "ref" / "model.safetensors")
    b = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
