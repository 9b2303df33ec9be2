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
import torch

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


def _bench_module(name="image_denoise"):
    """A benchmark script of SCRIPT's folder as a module (``image_denoise`` by default)."""
    import importlib

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPT.parent))


@pytest.mark.parametrize("margin", [1.0, 1.1, 1.5])
def test_calibrated_schedule_plans_epochs_with_the_margin(monkeypatch, margin):
    """epochs = ⌊(budget − calibration time) / (step time · margin · steps per epoch)⌋: with
    the step time pinned at 0.01 s, 8 steps per epoch and the clock frozen, a 10 s budget
    plans ⌊10 / (0.08 · margin)⌋ epochs."""
    bench = _bench_module()
    seen = {}

    def fake_fit(model, obj, data, **kw):
        seen["max_iter"] = kw["max_iter"]
        return SimpleNamespace(records=[{"val_loss": 1.0}])

    monkeypatch.setattr(bench, "fit", fake_fit)
    monkeypatch.setattr(bench, "fit_step_time", lambda *a, **k: 0.01)
    monkeypatch.setattr(bench, "EPOCH", 64)
    monkeypatch.setattr(bench, "MARGIN", margin)
    # the benchmark's clock frozen: the calibration's own seconds are exactly 0 (on a busy
    # machine they were 0.56 s once, 7 epochs fewer, and the test failed)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: 100.0))
    img = np.random.default_rng(0).random((1, 64, 64)).astype("float32")
    bench.train(UNetAE(1, features=4, depth=1), [img], GaussianNoise(0.1), 10.0, patch=16,
                batch=8)
    want = int(10.0 / (0.01 * margin * 64 / 8))
    assert seen["max_iter"] == want, (margin, seen, want)


def test_margin_outside_1_to_2_is_refused():
    bench = _bench_module()
    with pytest.raises(SystemExit, match="--margin must be in \\[1, 2\\], got 0.5"):
        bench.main(["--quick", "--margin", "0.5"])


@pytest.mark.parametrize("photos", ["camera", "chelsea", "coins,astronaut", ","])
def test_val_photos_must_be_validation_or_extra_photos(photos):
    """A test or training photo can never become a validation photo, in the selection script
    or the main benchmark (refused before any training)."""
    bench = _bench_module()
    sel = _select_module()
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


def _select_module():
    return _bench_module("image_denoise_select")


def test_rgb_material_leaves_validation_photos_out_in_every_form():
    """Each RGB candidate's training material: the right images, the right channel counts,
    and an excluded (validation) photo absent as colour, as gray and as opponent channels."""
    from aekit.images import load_photo, load_photos, opponent_to_rgb

    sel = _select_module()
    rgb = load_photos("train", "RGB")
    gray = load_photos("train", "L")
    assert "chelsea" not in rgb and "chelsea" in gray, (list(rgb), list(gray))
    n_rgb, n_gray = len(rgb), len(gray) - 1  # chelsea, the RGB validation photo, left out
    plain = sel.rgb_material("rgb", exclude=("chelsea",))
    assert len(plain) == n_rgb and all(v.shape[0] == 3 for v in plain), len(plain)
    orders = sel.rgb_material("rgb_orders_gray", exclude=("chelsea",))
    assert len(orders) == 6 * n_rgb + n_gray, (len(orders), n_rgb, n_gray)
    first = orders[:6]  # the 6 channel orders of the first colour photo, all distinct
    assert all(np.array_equal(np.sort(v, 0), np.sort(first[0], 0)) for v in first)
    assert len({v.tobytes() for v in first}) == 6
    assert all(np.array_equal(v[0], v[1]) and np.array_equal(v[1], v[2])
               for v in orders[6 * n_rgb:]), "gray photos must be R = G = B"
    g = sel.rgb_material("gray", exclude=("chelsea",))
    chelsea = load_photo("chelsea", "L")
    assert len(g) == n_gray and not any(v.shape == chelsea.shape and np.array_equal(v, chelsea)
                                        for v in g)
    opp = sel.rgb_material("gray_opponent", exclude=("chelsea",))
    assert len(opp) == n_gray + 3 * n_rgb and all(v.shape[0] == 1 for v in opp)
    back = opponent_to_rgb(np.concatenate(opp[n_gray:n_gray + 3], 0))
    assert np.abs(back - plain[0]).max() < 1e-5, np.abs(back - plain[0]).max()
    coffee = sel.rgb_material("rgb", exclude=("chelsea", "coffee"))
    assert len(coffee) == n_rgb - 1
    with pytest.raises(ValueError, match="kind must be one of"):
        sel.rgb_material("cmyk")


def test_rgb_validation_is_colour_and_never_a_training_or_test_photo():
    sel = _select_module()
    assert sel.rgb_val_photo_names(None) == ["chelsea"]
    assert sel.rgb_val_photo_names("motorcycle_right") == ["chelsea", "motorcycle_right"]
    with pytest.raises(SystemExit, match="must be colour photos, got \\['text'\\]"):
        sel.rgb_val_photo_names("text")
    for bad in ("astronaut", "coffee"):
        with pytest.raises(SystemExit, match="--val-photos must name some of"):
            sel.main(["--quick", "--kind", "rgb", "--val-photos", bad])
    one = UNetAE(1, features=4, depth=1)
    three = UNetAE(3, features=4, depth=1)
    img = np.random.default_rng(0).random((3, 16, 16)).astype("float32")
    assert [v.shape for v in sel.rgb_validation_patches(one, [img])] == [(1, 16, 16)] * 3
    assert sel.rgb_validation_patches(three, [img])[0] is img


def test_rgb_main_must_be_a_colour_candidate_with_a_budget():
    bench = _bench_module()
    sel = _select_module()
    name = next(iter(sel.RGB_CANDIDATES))
    assert bench._rgb_spec(name)[1][5] == sel.RGB_SIGMA
    guided = next(iter(sel.GUIDED_CANDIDATES))  # a guided pair: its luminance model's spec
    assert bench._rgb_spec(guided) == (guided, sel.RGB_CANDIDATES[sel.GUIDED_CANDIDATES[
        guided][0]])
    with pytest.raises(SystemExit, match="--rgb-main must be one of"):
        bench.main(["--quick", "--kinds", "rgb", "--rgb-main", "nope", "--rgb-budget", "1"])
    with pytest.raises(SystemExit, match="--rgb-main needs --rgb-budget"):
        bench.main(["--quick", "--kinds", "rgb", "--rgb-main", name])
    with pytest.raises(SystemExit, match="unknown --candidates"):
        sel.main(["--quick", "--kind", "rgb", "--candidates", "U-Net f32 d3 BN (residual)"])


def test_opponent_band_candidates_cover_the_opponent_noise_of_their_rgb_sigma():
    """A one-channel colour candidate for RGB σ trains on σ ~ U[σ/√3, σ/√2], the levels of the
    opponent channels (measured here on real noise); mixed-σ selections are refused."""
    from aekit.images import rgb_to_opponent

    sel = _select_module()
    assert sel.opponent_band(0.2) == (0.1155, 0.1414), sel.opponent_band(0.2)
    rng = np.random.default_rng(0)
    for name, spec in sel.RGB_CANDIDATES.items():
        s = sel.RGB_TARGET[name]
        if spec[0]().config()["in_channels"] == 1:
            lo, hi = spec[5]
            noise = rgb_to_opponent(rng.normal(0, s, (3, 256, 256)) + 0.5) - rgb_to_opponent(
                np.full((3, 256, 256), 0.5))
            measured = noise.reshape(3, -1).std(1)
            assert lo * 0.98 <= measured.min() and measured.max() <= hi * 1.02, (name, measured)
        else:
            assert spec[5] == s, (name, spec[5], s)
    assert sorted(set(sel.RGB_TARGET.values())) == [0.1, 0.2, 0.3]
    names = [n for n in sel.RGB_CANDIDATES if sel.RGB_TARGET[n] in (0.1, 0.2)][-2:]
    with pytest.raises(SystemExit, match="must be for one RGB σ"):
        sel.main(["--quick", "--kind", "rgb", "--candidates", *names])


def test_guided_candidates_pair_chroma_with_luminance_and_invert_exactly():
    """A guided candidate's chroma material is (c, Y) of each colour photo in its 6 channel
    orders (12 images a photo, Y the same in all); its denoiser with identity models (zero
    residual) returns the noisy image exactly, and one that zeroes a chroma channel's
    residual is the only one that changes that channel; its luminance model is a one-channel
    band candidate of the same RGB σ."""
    import torch

    from aekit.images import rgb_to_opponent

    sel = _select_module()
    # inside [0.1, 0.9], so that the final clip to [0, 1] never acts below
    img = (0.1 + 0.8 * np.random.default_rng(0).random((3, 16, 24))).astype("float32")
    pairs = sel.chroma_pairs([img])
    assert len(pairs) == 12 and all(p.shape == (2, 16, 24) for p in pairs)
    opp = rgb_to_opponent(img)
    assert all(np.allclose(p[1], opp[0], atol=1e-6) for p in pairs)
    assert np.allclose(pairs[0][0], opp[1]) and np.allclose(pairs[1][0], opp[2])
    assert len({p[0].tobytes() for p in pairs}) >= 9  # O2 in 6 signs/pairs, O3 in 3

    def identity(ch):
        m = UNetAE(ch, features=4, depth=1, residual=True)
        with torch.no_grad():
            m.head.weight.zero_()
            m.head.bias.zero_()
        return m.eval()

    luma, chroma = identity(1), identity(2)
    out = sel.guided_denoise(luma, chroma, img)
    assert np.abs(out - img).max() < 1e-5, np.abs(out - img).max()
    with torch.no_grad():  # the residual s = 0.01 on the chroma output: chroma moves by -0.01
        chroma.head.bias.fill_(0.01)
    moved = rgb_to_opponent(sel.guided_denoise(luma, chroma, img)) - opp
    assert np.abs(moved[0]).max() < 1e-5 and np.allclose(moved[1:], -0.01, atol=1e-4), \
        np.abs(moved).reshape(3, -1).max(1)
    for name, spec in sel.GUIDED_CANDIDATES.items():
        luma_name, make = spec[0], spec[1]
        assert sel.RGB_TARGET[luma_name] == sel.RGB_TARGET[name] == spec[6]
        assert sel.RGB_CANDIDATES[luma_name][0]().config()["in_channels"] == 1
        assert make().config()["in_channels"] == 2 and 0 < spec[7] < 1


def test_choose_refine_scores_the_grid_on_validation_and_keeps_none_when_it_does_not_help():
    """choose_refine: a row for 'none' and for every grid setting, the chosen one the best of
    them; an identity 'denoiser' (the noisy image back) is helped by the chroma pass, a
    denoiser that returns the clean image is not, so it keeps None; --refine needs a
    one-channel --rgb-main."""
    from torch import nn

    from aekit.images import load_photo

    sel = _select_module()
    bench = _bench_module()
    clean = load_photo("chelsea", "RGB")[:, 100:164, 100:164]

    class Identity(nn.Module):
        _images = True
        in_channels = 1

        def forward(self, x):
            return x

    r, p0, p1, rows = sel.choose_refine(Identity(), [clean], 0.2, [7])
    n_grid = len(sel.REFINE_CHROMA_H) * len(sel.REFINE_PATCH) + len(sel.REFINE_LUMA_H)
    assert len(rows) == 1 + n_grid and rows[0] == {"refine": None, "psnr": p0}, rows[:2]
    assert r is not None and p1 == max(row["psnr"] for row in rows) and p1 > p0 + 0.3, (p0, p1)
    assert r.config() in [row["refine"] for row in rows]

    class Oracle(nn.Module):  # returns the clean opponent channels, one call (tile) each
        _images = True
        in_channels = 1

        def __init__(self, channels):
            super().__init__()
            self.channels, self.calls = channels, 0

        def forward(self, x):
            out = torch.from_numpy(self.channels[self.calls % 3])[None, None]
            self.calls += 1
            return out.expand_as(x).clone()

    from aekit.images import rgb_to_opponent

    oracle = Oracle(rgb_to_opponent(clean))
    r, p0, p1, _ = sel.choose_refine(oracle, [clean], 0.2, [7])
    assert r is None and p1 == p0, (r, p0, p1)
    with pytest.raises(SystemExit, match="--refine needs a one-channel --rgb-main"):
        bench.main(["--quick", "--kinds", "rgb", "--refine"])
