"""Long checks, deselected by default and run with ``pytest -m slow``: repeated SIGKILLs at
random steps of one run, and an autoencoder against PCA on full MNIST."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aekit.train import find_checkpoints

pytestmark = pytest.mark.slow

ARGS = ["train", "--data", "digits", "--max-iter", "20", "--hidden-layer-sizes", "64",
        "--batch-size", "64", "--checkpoint-steps", "5", "--no-early-stopping",
        "--set", "model.dropout=0.1",
        "--no-report", "--no-progress"]


def _run(args):
    env = dict(os.environ, CI="true", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "aekit.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _newest(ck) -> int:
    found = find_checkpoints(ck)
    return int(found[0].stem.split("-")[1]) if found else -1


def test_five_kills_at_random_steps_resume_bit_identically(tmp_path):
    ref = _run([*ARGS, "--output", str(tmp_path / "ref")])
    assert ref.wait(timeout=600) == 0, ref.stderr.read().decode()[-2000:]
    total = json.loads((tmp_path / "ref" / "history.jsonl").read_text().splitlines()[-1])["step"]
    rng = random.Random(7)
    out, ck = tmp_path / "run", tmp_path / "run" / "checkpoints"
    for k, target in enumerate(sorted(rng.sample(range(5, total - 5), 5))):
        p = _run([*ARGS, "--output", str(out)] if k == 0 else
                 ["train", "--output", str(out), "--resume", "--no-progress"])
        deadline = time.time() + 300
        while p.poll() is None and time.time() < deadline and _newest(ck) < target:
            time.sleep(0.005)
        assert p.poll() is None, f"kill {k} came too late: the run had ended"
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not (out / "model.safetensors").exists() and _newest(ck) >= target
    last = _run(["train", "--output", str(out), "--resume", "--no-progress"])
    assert last.wait(timeout=600) == 0, last.stderr.read().decode()[-2000:]
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(out / "model.safetensors")
    diffs = {k: float((a[k] - b[k]).abs().max()) for k in a}
    assert max(diffs.values()) == 0.0, diffs
    h_ref = (tmp_path / "ref" / "history.jsonl").read_text().splitlines()
    h_run = (out / "history.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(r).items() if k != "time_s"} for r in h_ref]
    assert [{k: v for k, v in json.loads(r).items() if k != "time_s"} for r in h_run] == strip


def test_mnist_autoencoder_beats_pca_by_2_5x(mnist_path):
    """784-256-32 ReLU AE, 15 epochs on 60,000 images: test error < PCA-32's / 2.5 (measured
    4.80 vs 13.19)."""
    from aekit import DenseAE, fit, make_objective
    from aekit.data import load_dataset
    from aekit.runs import pca_errors, reconstruction_errors

    train, test = load_dataset("mnist", data_path=mnist_path)
    Xtr, Xte = train.X.astype(np.float32), test.X.astype(np.float32)
    torch.manual_seed(0)
    model = DenseAE([784, 256, 32], activation="relu", output="sigmoid")
    fit(model, make_objective("bce"), Xtr, max_iter=15, batch_size=256, learning_rate=2e-3,
        schedule="cosine", random_state=0, progress=False)
    ae = float(reconstruction_errors(model, Xte).mean())
    pca = float(pca_errors(Xtr, Xte, 32).mean())
    assert ae < pca / 2.5, f"AE {ae:.3f} vs PCA-32 {pca:.3f}"
