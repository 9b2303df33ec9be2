"""benchmarks/image_denoise.py under torchrun: two processes train the main gray denoiser
data-parallel, then rank 0 alone evaluates, runs the baselines and writes the results (slow:
two interpreters and the quick baselines, about two minutes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from aekit.images import GaussianNoise
from aekit.models import UNetAE

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "image_denoise.py"


@pytest.mark.slow
def test_image_denoise_under_torchrun_two_processes(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not found next to the Python interpreter")
    pytest.importorskip("bm3d")
    name = f"_test_denoise_ddp_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}_quick.json"
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", str(SCRIPT), "--quick",
           "--kinds", "gray", "--only", "gray_main", "--gray-budget", "20", "--main-batch", "16",
           "--grid-dir", str(tmp_path), "--allow-dirty", "--val-photos", "coins,motorcycle_right",
           "--name", name]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count(f"wrote benchmarks/results/{name}_quick.json") == 1, \
            proc.stdout[-2000:]
        res = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
        out.with_suffix(".md").unlink(missing_ok=True)
    s = res["settings"]
    assert (s["processes"], s["main_batch"]) == (2, 16), s
    assert s["main_batch_selected"] == 32, s
    assert s["val_photos_gray"] == ["coins", "motorcycle_right"], s
    assert res["training"]["gray_main"]["steps"] > 0, res["training"]
    assert (tmp_path / "denoise_camera_s0.2_quick.png").is_file()
    # the trained model denoises (wall-clock budget, so a margin for a loaded machine)
    rows = [r for r in res["rows"] if r["set"].startswith("photos gray whole")]
    by = {r["method"]: r["psnr"] for r in rows}
    main = [v for k, v in by.items() if k.startswith("aekit blind denoiser")]
    assert main and min(main) > by["noisy input"] + 1, by  # measured: 15 s gave +1.8 dB


def _bench_module():
    import importlib

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module("image_denoise")
    finally:
        sys.path.remove(str(SCRIPT.parent))


@pytest.mark.parametrize("margin", [1.0, 1.1, 1.5])
def test_calibrated_schedule_plans_epochs_with_the_margin(monkeypatch, margin):
    """epochs = ⌊(budget − calibration time) / (step time · margin · steps per epoch)⌋: with
    the step time pinned at 0.01 s and 8 steps per epoch, a 10 s budget plans ⌊10 / (0.08 ·
    margin)⌋ epochs (the calibration's own seconds are negligible here)."""
    bench = _bench_module()
    seen = {}

    def fake_fit(model, obj, data, **kw):
        seen["max_iter"] = kw["max_iter"]
        return SimpleNamespace(records=[{"val_loss": 1.0}])

    monkeypatch.setattr(bench, "fit", fake_fit)
    monkeypatch.setattr(bench, "fit_step_time", lambda *a, **k: 0.01)
    monkeypatch.setattr(bench, "EPOCH", 64)
    monkeypatch.setattr(bench, "MARGIN", margin)
    img = np.random.default_rng(0).random((1, 64, 64)).astype("float32")
    bench.train(UNetAE(1, features=4, depth=1), [img], GaussianNoise(0.1), 10.0, patch=16,
                batch=8)
    want = int(10.0 / (0.01 * margin * 64 / 8))
    assert abs(seen["max_iter"] - want) <= 1, (margin, seen, want)


def test_margin_outside_1_to_2_is_refused():
    bench = _bench_module()
    with pytest.raises(SystemExit, match="--margin must be in \\[1, 2\\], got 0.5"):
        bench.main(["--quick", "--margin", "0.5"])


@pytest.mark.parametrize("photos", ["camera", "chelsea", "coins,astronaut", ","])
def test_val_photos_must_be_validation_or_extra_photos(photos):
    """A test or training photo can never become a validation photo, in the selection script
    or the main benchmark (refused before any training)."""
    import importlib

    bench = _bench_module()
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        sel = importlib.import_module("image_denoise_select")
    finally:
        sys.path.remove(str(SCRIPT.parent))
    with pytest.raises(SystemExit, match="--val-photos must name some of"):
        sel.main(["--quick", "--val-photos", photos])
    with pytest.raises(SystemExit, match="--val-photos must name some of"):
        bench.main(["--quick", "--kinds", "gray", "--val-photos", photos])


def test_main_spec_carries_the_training_noise_of_the_candidate():
    """The main model is trained on its candidate's noise: blind U[0, 0.35] by default, one σ
    for a σ-specific candidate (whose label and protocol then say so)."""
    bench = _bench_module()
    name, (_, patch, batch, lr), sigma = bench._main_spec()
    assert name == bench.MAIN_CHOICE and sigma == (0.0, 0.35), (name, sigma)
    assert (patch, batch, lr) == (48, 32, 1e-3), (patch, batch, lr)
    name, _, sigma = bench._main_spec("U-Net f32 d3 BN (residual, σ = 0.2 only)")
    assert name.endswith("σ = 0.2 only)") and sigma == 0.2, (name, sigma)
    with pytest.raises(SystemExit, match="--main must be a candidate"):
        bench._main_spec("nope")
