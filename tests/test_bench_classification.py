"""Smoke test of benchmarks/mnist_classification.py: its --quick mode runs and writes the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "mnist_classification.py"
VARIANTS = ["mlp", "sae", "sdae", "scae"]


def test_quick_mode_writes_results(mnist_path):
    name = f"_test_mnist_classification_quick_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    env = {**os.environ, "CI": "true"}
    try:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--data", str(mnist_path),
             "--name", name], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        res = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)

    assert res["benchmark"] == name
    assert res["settings"]["quick"] is True
    assert res["sizes"] == [784, 128, 128, 128, 10]
    rows = {r["method"]: r for r in res["rows"]}
    assert list(rows) == VARIANTS
    for v, r in rows.items():
        # two epochs on 3,000 images: far from converged, but it learns (chance is 90 %)
        assert r["test_error_pct"] < 88.0, (v, r["test_error_pct"])
        assert r["curve"][1]["train_loss"] < r["curve"][0]["train_loss"], (v, r["curve"])
        assert r["epochs"] == 2 and len(r["curve"]) == 2
        assert [c["epoch"] for c in r["curve"]] == [1, 2]
        assert r["curve"][-1]["test_error_pct"] == r["test_error_pct"]  # last epoch, no pick
        assert (r["n_train"], r["n_test"]) == (3000, 1000)
        assert r["finetune_time_s"] > 0 and not r["stopped_by_budget"]
        assert r["val_error_pct"] is None
        if v == "mlp":
            assert r["pretrain_time_s"] == 0 and r["pretraining"] == "none"
        else:
            assert r["pretrain_time_s"] > 0 and r["pretrain_epochs"] == 1
    md = res["table_markdown"]
    for paper in ("1.28", "1.40", "1.24", "1.20", "1.14", "1.18", "1.78", "SdA-3"):
        assert paper in md
    for v in VARIANTS:
        assert f"| {v} |" in md
    assert "test error after the last epoch" in res["protocol"]
    assert f"wrote benchmarks/results/{name}.json" in proc.stdout


def _quick_mlp(mnist_path, tag: str, good: list[str], bad: list[tuple[list[str], str]]) -> dict:
    """Run the script in quick mode (mlp only) with the flags ``good`` and return its results;
    each ``(flags, word)`` in ``bad`` must be refused with exit code 2 naming ``word``, and
    must write no results file."""
    name = f"_test_mnist_classification_{tag}_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    env = {**os.environ, "CI": "true"}
    base = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--data", str(mnist_path),
            "--variants", "mlp", "--name", name]
    try:
        proc = subprocess.run([*base, *good], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        res = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    for flags, word in bad:
        refused = subprocess.run([*base, *flags], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode == 2 and word in refused.stderr, refused.stderr[-500:]
        assert not out.exists()
    row = res["rows"][0]
    assert row["test_error_pct"] < 88.0, row["test_error_pct"]  # it learns; chance is 90 %
    assert row["curve"][1]["train_loss"] < row["curve"][0]["train_loss"], row["curve"]
    return res


def test_quick_mode_adversarial_bf16(mnist_path):
    """--adversarial and --precision reach the fine-tuning and the table; a bad EPS is refused
    by name."""
    res = _quick_mlp(mnist_path, "adv", ["--adversarial", "0.1", "--precision", "bf16"],
                     [(["--adversarial", "-1"], "--adversarial")])
    assert res["settings"]["adversarial"] == 0.1
    from aekit.train import native_bf16
    want = "bf16" if native_bf16() else "fp32"  # fp32 (with a warning) where bf16 is not native
    assert res["settings"]["precision"] == want, (res["settings"]["precision"], want)
    assert ("bf16 autocast" in res["table_markdown"]) == (want == "bf16")
    assert "FGSM adversarial training ε = 0.1" in res["table_markdown"]


def test_quick_mode_vat(mnist_path):
    """--vat reaches the fine-tuning and the table; it is refused with --adversarial or when
    negative, by name."""
    res = _quick_mlp(mnist_path, "vat", ["--vat", "1.5", "--dropout", "0", "--input-dropout", "0"],
                     [(["--vat", "-1"], "--vat"),
                      (["--vat", "1", "--adversarial", "0.1"], "alternatives")])
    assert res["settings"]["vat"] == 1.5 and res["settings"]["dropout"] == 0.0
    assert "virtual adversarial training ε = 1.5" in res["table_markdown"]
