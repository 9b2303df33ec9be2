"""benchmarks/vae_mnist.py under torchrun: two processes train one model data-parallel on
rank 0's clock and only rank 0 evaluates and writes (slow: two interpreters, about a minute)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "vae_mnist.py"


@pytest.mark.slow
def test_vae_mnist_under_torchrun_two_processes(mnist_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not found next to the Python interpreter")
    name = f"_test_vae_ddp_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1",
           "AEKIT_DATA": str(mnist_path.parent)}
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", str(SCRIPT), "--quick",
           "--models", "iwae5", "--budget-minutes", "0.1", "--clock", "cpu", "--lr", "1e-3",
           "--lr-decay", "0.1", "--lr-source", "test", "--test-n", "20", "--allow-dirty",
           "--name", name]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=400)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.count(f"wrote benchmarks/results/{name}.json") == 1, proc.stdout
        res = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    assert res["settings"]["processes"] == 2
    run = res["runs"]["iwae5"]
    steps = [c["step"] for c in run["curve"]]
    assert len(steps) == 6 and steps == sorted(steps), steps  # 5 checkpoints + the end
    assert run["train_s"] >= 6.0 and run["steps"] > 0, run
    assert 0 < run["test_nll"] < 600, run["test_nll"]
    # the decayed rate at the end: lr · 0.1^(t/T), t = T
    assert run["last_learning_rate"] == pytest.approx(1e-4, rel=0.05), run["last_learning_rate"]

    alone = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--models", "ae",
                            "--lr", "1e-3"], cwd=ROOT,
                           env={**env, "WORLD_SIZE": "2"}, capture_output=True, text=True,
                           timeout=120)
    assert alone.returncode != 0 and "torchrun" in alone.stderr, alone.stderr[-500:]
