"""Smoke test of benchmarks/mnist_classification.py: its --quick mode runs and writes the JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _quick(mnist_path, tag: str, fixed: list[str], good: list[str],
           bad: list[tuple[list[str], str]]) -> dict:
    """Run the script in quick mode with the flags ``fixed + good`` and return its results;
    each ``(flags, word)`` in ``bad`` (after ``fixed``) must be refused with exit code 2
    naming ``word``, and must write no results file."""
    name = f"_test_mnist_classification_{tag}_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    env = {**os.environ, "CI": "true"}
    base = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--data", str(mnist_path),
            *fixed, "--name", name]
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
        assert refused.returncode == 2 and word in refused.stderr, (flags, refused.stderr[-500:])
        assert not out.exists()
    return res


def _quick_mlp(mnist_path, tag: str, good: list[str], bad: list[tuple[list[str], str]]) -> dict:
    """:func:`_quick` with the mlp variant only, which must learn."""
    res = _quick(mnist_path, tag, ["--variants", "mlp"], good, bad)
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


def test_quick_mode_batch_norm_vat(mnist_path):
    """--batch-norm with VAT trains (the VAT passes freeze the batch statistics) and reaches
    the table."""
    res = _quick_mlp(mnist_path, "bn", ["--batch-norm", "--vat", "2.0", "--dropout", "0",
                                        "--input-dropout", "0"], [])
    assert res["settings"]["batch_norm"] is True
    assert "batch norm after every hidden linear layer" in res["table_markdown"]


def test_quick_mode_conv(mnist_path):
    """--arch conv: both variants (random cnn, pretrained cdae) train the ConvAE-encoder
    classifier with shifted images and reach the table, which says it is not permutation
    invariant and lists no permutation-invariant paper rows; arch/variant mixes, --hidden,
    --batch-norm and shifts of the dense net are refused by name, writing nothing."""
    res = _quick(mnist_path, "conv", ["--activation", "relu"], ["--arch", "conv", "--shift", "1"],
                 [(["--arch", "conv", "--variants", "mlp"], "not of --arch conv"),
                  (["--variants", "cdae"], "not of --arch dense"),
                  (["--arch", "conv", "--hidden", "64"], "--hidden"),
                  (["--arch", "conv", "--batch-norm"], "--batch-norm"),
                  (["--shift", "1"], "permutation-invariant"),
                  (["--select", "shift=2"], "permutation-invariant"),
                  (["--arch", "conv", "--shift", "-1"], "shift must be >= 0")])
    rows = {r["method"]: r for r in res["rows"]}
    assert list(rows) == ["cnn", "cdae"]
    assert rows["cnn"]["pretrain_time_s"] == 0 and rows["cnn"]["pretraining"] == "none"
    assert rows["cdae"]["pretrain_time_s"] > 0 and rows["cdae"]["pretrain_epochs"] == 1
    # the random-init cnn learns in 48 steps (chance is 90 %); cdae's 24 pretraining steps
    # leave a near-constant code that 48 steps do not undo, so only its plumbing is checked
    # here (its pretraining: test_conv_variants_share_the_start_and_pretraining_moves_it)
    assert rows["cnn"]["test_error_pct"] < 88.0, rows["cnn"]["test_error_pct"]
    assert all(r["epochs"] == 2 and r["finetune_time_s"] > 0 for r in rows.values())
    md = res["table_markdown"]
    assert "not permutation invariant" in md and "random shifts of up to 1 pixels" in md
    assert "SdA-3" not in md and "Hinton" not in md
    assert res["sizes"] is None and "conv 5×5/2 ×8" in res["architecture"]


def test_conv_variants_share_the_start_and_pretraining_moves_it():
    """cnn and cdae start from the same seeded ConvAE; cdae's encoder is the pretrained one
    (its weights moved, its decoder dropped), cnn's is the initial one, and the two networks
    compute different functions only because of the pretraining."""
    import argparse
    import importlib

    import torch

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        mod = importlib.import_module("mnist_classification")
    finally:
        sys.path.remove(str(SCRIPT.parent))
    a = argparse.Namespace(quick=True, seed=3, activation="relu", pretrain_epochs=2,
                           precision="fp32", dropout=0.5, input_dropout=0.0)
    X = torch.rand(256, 784, generator=torch.Generator().manual_seed(0)).numpy()
    nets = {v: mod.conv_network(v, {"Xtr": X}, a, mod.Tracker(60))[0] for v in ("cnn", "cdae")}
    torch.manual_seed(3)
    fresh = mod.ConvAE((28, 28), activation="relu", code_activation="relu", output="sigmoid",
                       **mod.QUICK_CONV)
    cnn, cdae = nets["cnn"].encoder, nets["cdae"].encoder
    assert torch.equal(cnn.enc[0].weight, fresh.enc[0].weight)
    moved = float((cdae.enc[0].weight - fresh.enc[0].weight).abs().max())
    assert moved > 1e-3, f"pretraining left the first convolution at its start ({moved})"
    assert len(cdae.dec) == 0 and len(cnn.dec) == 0  # decoders dropped
    assert torch.equal(nets["cnn"].head.weight, nets["cdae"].head.weight)  # same seeded head


def test_identity_batch_norm_keeps_the_function():
    """With batch norm initialised to the identity on the data, the network computes what it
    computes without batch norm (same linear layers), in eval mode exactly and in train mode
    on that data batch up to the variance convention; the default init does not (in train
    mode)."""
    import importlib.util

    import torch
    from torch import nn

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("aekit_bench_cls", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    lins = [nn.Linear(20, 16), nn.Linear(16, 12)]
    X = torch.rand(500, 20) * 3 + 1
    plain = mod.Classifier(lins, "relu", 0.0, 0.0, batch_norm=False).eval()
    bn = mod.Classifier(lins, "relu", 0.0, 0.0, batch_norm=True).eval()
    bn.net[-1].load_state_dict(plain.net[-1].state_dict())
    with torch.no_grad():
        want = plain(X)
        bn.train()  # default init in train mode: batch statistics normalise the features away
        before = float((bn(X) - want).abs().max())
        bn.eval()
        mod.identity_batch_norm_(bn, X)
        got = bn(X)
        bn.train()
        train_gap = float((bn(X) - want).abs().max())
    err = float((got - want).abs().max())
    assert err < 1e-5, f"eval-mode output moved by {err:.2e}"
    # train mode normalises with the biased batch variance: a relative change of ~1/(2n)
    assert train_gap < 1e-2 * float(want.abs().max()) < before, (train_gap, before)


def _run_quick(script, name, mnist_path, *args):
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--threads", "1",
             "--data", str(mnist_path), "--name", name, *args], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def test_classification_select_protocol_touches_test_once(mnist_path):
    """--select: recipes scored on the validation split only (no test error during
    selection), the lowest mean validation error chosen, every final network tested once
    after its last epoch (no per-epoch test error), one row per variant and seed."""
    res = _run_quick("mnist_classification.py", f"_test_cls_select_{os.getpid()}", mnist_path,
                     "--variants", "mlp", "sdae", "--select", "dropout=0.5",
                     "vat=2.0,dropout=0,input_dropout=0", "--seeds", "0", "1")
    sel = res["selection"]
    assert [s["recipe"] for s in sel] == ["dropout=0.5", "vat=2.0,dropout=0,input_dropout=0"]
    for s in sel:
        for r in s["runs"]:
            assert r["test_error_pct"] is None and r["n_train"] == 2750, r["n_train"]
            assert all("test_error_pct" not in c for c in r["curve"]), r["curve"]
        want = sum(r["val_error_pct"] for r in s["runs"]) / 2
        assert abs(s["mean_val_error_pct"] - want) < 1e-9, (s["mean_val_error_pct"], want)
    best = min(sel, key=lambda s: s["mean_val_error_pct"])["recipe"]
    assert res["chosen"] == best
    finals = [(r["method"], r["seed"]) for r in res["final"]]
    assert finals == [("mlp", 0), ("mlp", 1), ("sdae", 0), ("sdae", 1)], finals
    for r in res["final"]:
        assert r["n_train"] == 3000 and r["val_error_pct"] is None
        assert all("test_error_pct" not in c for c in r["curve"]), r["curve"]
        assert r["test_error_pct"] < 88.0, r["test_error_pct"]  # it learned; chance is 90 %


def test_hinton_select_protocol_touches_test_once(mnist_path):
    """hinton_mnist --select: candidates scored by their last-epoch validation error, the
    winner retrained on all training images, the test set touched once."""
    res = _run_quick("hinton_mnist.py", f"_test_hs_select_{os.getpid()}", mnist_path,
                     "--select", "adam+ep1", "bn_adamw+ep2+bf16", "--minutes", "1")
    sel = {r["method"]: r for r in res["selection"]}
    assert set(sel) == {"adam+ep1", "bn_adamw+ep2+bf16"}
    assert sel["bn_adamw+ep2+bf16"]["spec"]["precision"] == "bf16", sel
    assert sel["adam+ep1"]["spec"]["precision"] == "fp32", sel
    for r in sel.values():
        assert "test_error" not in r and r["n_train"] == 2750 and r["n_val"] == 250
        assert r["val_error"] == pytest.approx(r["curve"][-1]["val_error"], abs=1e-3)
        assert all("test_error" not in c for c in r["curve"])
    assert res["chosen"] == min(sel.values(), key=lambda r: r["val_error"])["method"]
    fin = res["final"]
    assert fin["method"] == res["chosen"] and fin["n_train"] == 3000 and fin["n_test"] == 2000
    assert all("test_error" not in c and "val_error" not in c for c in fin["curve"])
    assert 0 < fin["test_error"] < res["pca"]["test_error"] * 3, fin["test_error"]


@pytest.mark.slow  # about 50 s; the same Pieces machinery runs by default in the Hinton test
def test_classification_pieces_shards_equal_one_run(mnist_path, tmp_path):
    """--pieces/--shard: two shards and a final assembling run give exactly the test errors
    of one uninterrupted run (same seeds, one thread), every job trained once; a piece of
    other settings or a corrupt piece is refused by name, never mixed in."""
    common = ["--variants", "mlp", "--hidden", "32", "32", "--select", "dropout=0.5",
              "dropout=0.1", "--seeds", "0", "1"]
    whole = _run_quick("mnist_classification.py", f"_test_cls_whole_{os.getpid()}",
                       mnist_path, *common)
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--data", str(mnist_path),
            *common, "--pieces", str(tmp_path / "pieces")]
    name = f"_test_cls_pieces_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    for shard in ("0/2", "1/2"):
        proc = subprocess.run([*base, "--shard", shard, "--name", name], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "still to train elsewhere" in proc.stdout, proc.stderr
        assert not out.exists()
    stored = sorted(p.name for p in (tmp_path / "pieces").iterdir())
    assert len(stored) == 3, stored  # 2 selection jobs + the final job of shard 1
    try:
        res = _run_quick("mnist_classification.py", name, mnist_path, *common, "--pieces",
                         str(tmp_path / "pieces"))
    finally:
        out.unlink(missing_ok=True)
    assert res["chosen"] == whole["chosen"]
    assert [s["mean_val_error_pct"] for s in res["selection"]] == \
        [s["mean_val_error_pct"] for s in whole["selection"]]
    assert [r["test_error_pct"] for r in res["final"]] == \
        [r["test_error_pct"] for r in whole["final"]], (res["final"], whole["final"])
    assert len(res["pieces"]) == 4 and res["code"]["src_tree"], res["pieces"]
    assert res["settings_defaulted"] is None, res["settings_defaulted"]

    # one more candidate recipe: the jobs it shares with the run above are reused (the
    # candidate list is not part of a job's settings), only the new candidate is trained
    before = {p.name for p in (tmp_path / "pieces").iterdir()}
    i = base.index("--select") + 3  # after the two recipes of `common`
    more = [*base[:i], "dropout=0.3", *base[i:]]
    grown = subprocess.run([*more, "--shard", "2/3", "--name", name], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert grown.returncode == 0 and grown.stdout.count("(reusing select-") == 2, \
        (grown.stdout[-1500:], grown.stderr[-1000:])
    added = {p.name for p in (tmp_path / "pieces").iterdir()} - before
    assert len(added) == 1 and next(iter(added)).startswith("select-mlp-s0-"), added
    (tmp_path / "pieces" / next(iter(added))).unlink()
    out.unlink(missing_ok=True)  # written when the new candidate lost (finals all stored)
    # a setting added to the script after a piece was trained: absent from the piece, it
    # matches at its default (listed), and refuses the piece at any other value
    old = tmp_path / "pieces" / stored[1]
    piece = json.loads(old.read_text())
    assert piece["signature"]["settings"].pop("batch_norm") is False
    old.write_text(json.dumps(piece))
    try:
        aged = _run_quick("mnist_classification.py", name, mnist_path, *common, "--pieces",
                          str(tmp_path / "pieces"))
    finally:
        out.unlink(missing_ok=True)
    assert aged["settings_defaulted"] == [f"{stored[1]}: batch_norm"], aged["settings_defaulted"]
    assert [r["test_error_pct"] for r in aged["final"]] == \
        [r["test_error_pct"] for r in whole["final"]]
    bn = subprocess.run([*base, "--batch-norm", "--name", name], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
    assert bn.returncode != 0 and "batch_norm" in bn.stderr, bn.stderr[-500:]

    other = subprocess.run([*base, "--lr", "0.002", "--name", name], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert other.returncode != 0 and "other settings" in other.stderr \
        and "lr" in other.stderr, other.stderr[-500:]
    victim = tmp_path / "pieces" / stored[0]
    piece = json.loads(victim.read_text())
    piece["signature"]["code"]["src_tree"] = "0" * 40  # as if trained by another commit
    victim.write_text(json.dumps(piece))
    moved = subprocess.run([*base, "--name", name], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert moved.returncode != 0 and "code.src_tree" in moved.stderr, moved.stderr[-500:]
    assert not out.exists()
    try:
        mixed = _run_quick("mnist_classification.py", name, mnist_path, *common, "--pieces",
                           str(tmp_path / "pieces"), "--allow-code-change")
    finally:
        out.unlink(missing_ok=True)
    assert mixed["code_changed"] == [stored[0]], mixed["code_changed"]
    assert [r["test_error_pct"] for r in mixed["final"]] == \
        [r["test_error_pct"] for r in whole["final"]]
    victim.write_text("{not json")
    bad = subprocess.run([*base, "--name", name], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0 and stored[0] in bad.stderr, bad.stderr[-500:]
    assert not out.exists()
    refused = subprocess.run([*base[:-2], "--shard", "2/2", "--name", name], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--shard" in refused.stderr, refused.stderr[-500:]


def test_hinton_pieces_shards_equal_one_run(mnist_path, tmp_path):
    """hinton_mnist --select with --pieces/--shard: the candidates trained by two shards and
    the final run of an assembling run give exactly the numbers of one uninterrupted run (one
    thread); a shard that does not own the final run writes no results."""
    common = ["--select", "adam+ep1", "bn_adamw+ep2", "--minutes", "1"]
    whole = _run_quick("hinton_mnist.py", f"_test_hs_whole_{os.getpid()}", mnist_path, *common)
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    script = ROOT / "benchmarks" / "hinton_mnist.py"
    base = [sys.executable, str(script), "--quick", "--threads", "1", "--data", str(mnist_path),
            *common, "--pieces", str(tmp_path / "pieces")]
    name = f"_test_hs_pieces_{os.getpid()}"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    for shard in ("0/2", "1/2"):
        proc = subprocess.run([*base, "--shard", shard, "--name", name], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        # shard 0 trains candidate 0 and waits for candidate 1; shard 1 trains candidate 1
        # and leaves the final run (job 2) to shard 0's owner, here the assembling run
        want = "still to train elsewhere" if shard == "0/2" else "another shard's job"
        assert proc.returncode == 0 and want in proc.stdout, \
            (proc.stdout[-1000:], proc.stderr[-1000:])
        assert not out.exists()
    stored = sorted(p.name for p in (tmp_path / "pieces").iterdir())
    assert [s.split("-")[0] for s in stored] == ["select", "select"], stored
    try:
        res = _run_quick("hinton_mnist.py", name, mnist_path, *common, "--pieces",
                         str(tmp_path / "pieces"))
    finally:
        out.unlink(missing_ok=True)
    assert res["chosen"] == whole["chosen"]
    assert [r["val_error"] for r in res["selection"]] == \
        [r["val_error"] for r in whole["selection"]]
    assert res["final"]["test_error"] == whole["final"]["test_error"], \
        (res["final"]["test_error"], whole["final"]["test_error"])
    assert len(res["pieces"]) == 3 and res["code"]["script_blob"], res["pieces"]
    assert len(list((tmp_path / "pieces").iterdir())) == 3
    refused = subprocess.run([*base[:-2], "--shard", "0/2", "--name", name], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--shard" in refused.stderr, refused.stderr[-500:]
