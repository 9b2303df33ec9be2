"""The training loop: determinism, optimisers, schedules, early stopping, exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from aekit import DenseAE, fit, make_objective
from aekit.train import find_checkpoints, lr_factor


def _data(n=200, d=16, seed=0):
    g = np.random.default_rng(seed)
    Z = g.normal(size=(n, 3))
    A = g.normal(size=(3, d))
    return (1 / (1 + np.exp(-(Z @ A)))).astype(np.float32)  # in (0, 1), rank-3 structure


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return DenseAE([16, 12, 3], output="sigmoid", **kw)


def _weights(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_same_seed_gives_identical_weights_and_other_seed_differs():
    X = _data()
    runs = []
    for seed in (3, 3, 4):
        m = _model()
        fit(m, make_objective("bce"), X, max_iter=3, batch_size=32, random_state=seed)
        runs.append(_weights(m))
    assert _same(runs[0], runs[1])
    assert not _same(runs[0], runs[2])


@pytest.mark.parametrize("optimizer, lr, epochs", [("adam", 1e-2, 30), ("adamw", 1e-2, 30),
                                                   ("sgd", 0.05, 30), ("lbfgs", 1.0, 15)])
def test_every_optimizer_reduces_the_loss(optimizer, lr, epochs):
    """Each optimiser removes >= 94 % of the initial excess cross-entropy over its floor (the
    data's own entropy, Σ_j H(x_ij), reachable here: rank-3 data, 3-D code); L-BFGS >= 99.5 %."""
    from aekit.train import evaluate

    X = _data()
    Xt = torch.from_numpy(X).double()
    floor = float(-(Xt * Xt.log() + (1 - Xt) * (1 - Xt).log()).sum(1).mean())
    m = _model()
    start = evaluate(m, make_objective("bce"), X)["loss"] - floor
    h = fit(m, make_objective("bce"), X, max_iter=epochs, batch_size=32, optimizer=optimizer,
            learning_rate=lr, random_state=0)
    end = evaluate(m, make_objective("bce"), X)["loss"] - floor
    limit = 0.005 if optimizer == "lbfgs" else 0.06
    assert end < limit * start, (f"{optimizer}: excess loss over the entropy floor {floor:.4f} "
                                 f"went {start:.4f} -> {end:.4f} (limit {limit:.3f} x)")
    assert len(h) == epochs


def test_history_has_every_term_and_is_written_as_jsonl(tmp_path):
    X = _data()
    m = _model()
    path = tmp_path / "h.jsonl"
    h = fit(m, make_objective("bce", weight_decay=1e-3), X[:150], val=X[150:], max_iter=4,
            batch_size=50, history_path=path, schedule="cosine")
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    assert lines == json.loads(json.dumps(h.records))
    for key in ("train_loss", "train_recon", "train_weight_decay", "val_loss", "val_recon",
                "val_weight_decay", "lr", "epoch", "time_s"):
        assert key in lines[-1], key
    r = lines[-1]
    assert r["train_loss"] == pytest.approx(r["train_recon"] + r["train_weight_decay"], rel=1e-5)
    assert r["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine ends at zero


def test_lr_schedules():
    assert lr_factor("constant", 5, 100, 10) == 1.0
    assert lr_factor("cosine", 0, 100, 10) == pytest.approx(1.0)
    assert lr_factor("cosine", 50, 100, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, 100, 10, min_factor=0.1) == pytest.approx(0.1)
    assert lr_factor("step", 25, 100, 10, step_size=2, gamma=0.5) == pytest.approx(0.5)
    assert lr_factor("exponential", 30, 100, 10, gamma=0.5) == pytest.approx(0.125)
    assert lr_factor("constant", 4, 100, 10, warmup_steps=10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("zigzag", 0, 1, 1)


def test_early_stopping_stops_and_restores_best_weights():
    X = _data()
    m = _model()
    best = {}

    def remember(epoch, record, model):
        if record["val_loss"] <= min([*remember.vals, math.inf]):
            best["w"] = _weights(model)
        remember.vals.append(record["val_loss"])

    remember.vals = []
    # A huge learning rate makes validation loss bounce, so patience runs out.
    h = fit(m, make_objective("bce"), X[:150], val=X[150:], max_iter=200, batch_size=16,
            learning_rate=0.3, optimizer="sgd", early_stopping=3, callbacks=[remember],
            random_state=0)
    assert h.stopped_early and len(h) < 200
    assert h.best_epoch == int(np.argmin(h["val_loss"])) + 1
    assert _same(_weights(m), best["w"])


def test_early_stopping_mode_max_keeps_the_highest_score():
    """mode="max": the best epoch is the one of the highest monitored value, its weights are
    restored, and patience counts epochs without a higher value; mode="min" on the same
    record picks the lowest. An unknown mode names the argument."""
    from aekit.train.callbacks import EarlyStopping

    X = _data()
    for mode, pick in (("max", np.argmax), ("min", np.argmin)):
        m = _model()
        best = {}

        def score(epoch, record, model, mode=mode, best=best):  # before the stopping below
            record["val_score"] = float(np.sin(3.0 * epoch))  # rises and falls
            score.vals.append(record["val_score"])
            if score.vals[-1] == (max if mode == "max" else min)(score.vals):
                best["w"] = _weights(model)

        score.vals = []
        es = EarlyStopping(patience=4, monitor="val_score", mode=mode)
        h = fit(m, make_objective("bce"), X[:150], val=X[150:], max_iter=30, batch_size=32,
                learning_rate=1e-2, callbacks=[score, es], random_state=0)
        want = int(pick(score.vals)) + 1
        assert es.best_epoch == want, (mode, es.best_epoch, want, score.vals)
        assert len(h) == want + 4, (mode, len(h), want)  # stopped after 4 worse epochs
        assert _same(_weights(m), best["w"]), mode
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(monitor="val_score", mode="maximum")


def test_callback_can_stop_training():
    h = fit(_model(), make_objective("bce"), _data(), max_iter=50,
            callbacks=[lambda e, r, m: e >= 2])
    assert len(h) == 2


def test_nan_loss_stops_with_clear_error(tmp_path):
    X = _data()
    m = _model()
    with pytest.raises(FloatingPointError, match="training loss became"):
        fit(m, make_objective("bce"), X, max_iter=3, learning_rate=1e30, optimizer="sgd",
            checkpoint_dir=tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_iter=-1), "max_iter"), (dict(batch_size=0), "batch_size"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
    (dict(schedule="zigzag"), "unknown schedule 'zigzag'"),
    (dict(resume=True), "resume=True needs checkpoint_dir"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(_model(), make_objective("bce"), _data(), **kwargs)


@pytest.mark.parametrize("X, match", [
    (np.full((4, 16), np.nan, np.float32), "NaN"),
    (np.zeros((0, 16), np.float32), "empty"),
    (np.zeros((4, 15), np.float32), "has 15 features, the model expects 16"),
    (np.zeros(16, np.float32), "2-D"),
    (np.array([["a"] * 16]), "numeric"),
])
def test_bad_data(X, match):
    with pytest.raises(ValueError, match=match):
        fit(_model(), make_objective("bce"), X, max_iter=1)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("checkpoint_steps", [None, 3])
def test_resume_after_crash_reaches_identical_weights(tmp_path, optimizer, checkpoint_steps):
    """Crash mid-run (an exception from a callback), resume from the checkpoint: the final
    weights and history equal an uninterrupted run's, bit for bit."""
    X = _data()
    kw = dict(max_iter=6, batch_size=32, optimizer=optimizer, learning_rate=1e-2,
              schedule="cosine", random_state=5, checkpoint_steps=checkpoint_steps, val=X[:40],
              early_stopping=10)
    ref = _model(dropout=0.1)
    h_ref = fit(ref, make_objective("bce", weight_decay=1e-4), X[40:], **kw)

    def crash(epoch, record, model):
        if epoch == 4:
            raise _Boom

    m = _model(dropout=0.1)
    with pytest.raises(_Boom):
        fit(m, make_objective("bce", weight_decay=1e-4), X[40:], checkpoint_dir=tmp_path,
            callbacks=[crash], **kw)
    assert find_checkpoints(tmp_path)
    m2 = _model(seed=99, dropout=0.1)  # different init: everything must come from the file
    h = fit(m2, make_objective("bce", weight_decay=1e-4), X[40:], checkpoint_dir=tmp_path,
            resume=True, **kw)
    assert h.resumed_from_step is not None
    assert _same(_weights(ref), _weights(m2))
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in h.records]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in h_ref.records]


def test_resume_from_mid_epoch_checkpoint_is_exact(tmp_path):
    X = _data()
    kw = dict(max_iter=2, batch_size=16, random_state=1, checkpoint_steps=5, keep_checkpoints=100)
    ref = _model()
    fit(ref, make_objective("bce"), X, **kw)
    m = _model()
    fit(m, make_objective("bce"), X, checkpoint_dir=tmp_path, **kw)
    assert _same(_weights(ref), _weights(m))
    names = [p.name for p in find_checkpoints(tmp_path)]
    assert "ckpt-0000000010.safetensors" in names  # mid-epoch (13 steps per epoch)
    for p in find_checkpoints(tmp_path):
        if p.name != "ckpt-0000000010.safetensors":
            p.unlink()
    m2 = _model(seed=7)
    h = fit(m2, make_objective("bce"), X, checkpoint_dir=tmp_path, resume=True, **kw)
    assert h.resumed_from_step == 10
    assert _same(_weights(ref), _weights(m2))


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path):
    X = _data()
    kw = dict(max_iter=3, batch_size=64, random_state=2)
    fit(_model(), make_objective("bce"), X, checkpoint_dir=tmp_path, **kw)
    newest = find_checkpoints(tmp_path)[0]
    data = bytearray(newest.read_bytes())
    data[-5] ^= 0xFF
    newest.write_bytes(bytes(data))
    m = _model()
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"):
        h = fit(m, make_objective("bce"), X, checkpoint_dir=tmp_path, resume=True, **kw)
    assert h.resumed_from_step is not None and len(h) == 3


def test_lbfgs_full_batch_with_weight_decay_is_deterministic():
    X = _data()
    ws = []
    for _ in range(2):
        m = _model()
        fit(m, make_objective("bce", weight_decay=1e-3), X, max_iter=3, optimizer="lbfgs",
            learning_rate=1.0)
        ws.append(_weights(m))
    assert _same(*ws)


def test_progress_bar_is_quiet_under_ci(capsys, monkeypatch):
    monkeypatch.setenv("CI", "true")
    fit(_model(), make_objective("bce"), _data(), max_iter=1)
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out == ""


def test_memmap_input_streams_and_matches_in_memory(tmp_path):
    X = _data()
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ws = []
    for data in (X, mm):
        m = _model()
        fit(m, make_objective("bce"), data, max_iter=2, batch_size=32, random_state=0)
        ws.append(_weights(m))
    assert _same(*ws)
    bad = np.lib.format.open_memmap(tmp_path / "bad.npy", mode="w+", dtype=np.float32,
                                    shape=(10, 16))
    bad[3, 2] = np.nan
    bad.flush()
    with pytest.raises(ValueError, match="NaN"):
        fit(_model(), make_objective("bce"), np.load(tmp_path / "bad.npy", mmap_mode="r"))
