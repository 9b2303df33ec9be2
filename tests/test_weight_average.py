"""WeightAverage: the EMA of the weights against a naive recurrence, validation on the
average, early stopping restoring the average, bit-exact resume, errors."""

from __future__ import annotations

import pytest
import torch

from aekit import DenseAE, fit, make_objective
from aekit.train import WeightAverage, evaluate, find_checkpoints
from aekit.train.callbacks import Callback


def _data(n=160, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g).numpy()


def _model(seed=0):
    torch.manual_seed(seed)
    return DenseAE([12, 8, 4], batch_norm=True)


class _Snap(Callback):
    """Records a float64 copy of the weights after every step."""

    def __init__(self):
        self.snaps = []

    def on_batch_end(self, loop):
        self.snaps.append({k: v.detach().double() if v.is_floating_point() else v.clone()
                           for k, v in loop.model.state_dict().items()})


def test_average_matches_the_naive_recurrence_and_is_returned():
    X = _data()
    snap = _Snap()
    m = _model()
    decay, start = 0.9, 3
    fit(m, make_objective("mse"), X, max_iter=3, batch_size=32, learning_rate=1e-2,
        callbacks=[snap, WeightAverage(decay, start=start)], random_state=1)
    # naive: first update at step start+1 copies, then θ̄ ← d_t θ̄ + (1 − d_t) θ
    avg, t = None, 0
    for step, w in enumerate(snap.snaps, start=1):
        if step <= start:
            continue
        if avg is None:
            avg = {k: v.clone() for k, v in w.items()}
        else:
            d = min(decay, (1 + t) / (10 + t))
            avg = {k: (d * avg[k] + (1 - d) * v if v.is_floating_point() else v)
                   for k, v in w.items()}
        t += 1
    assert t == len(snap.snaps) - start == 12
    got = m.state_dict()
    errs = {k: float((got[k].double() - avg[k]).abs().max()) for k in avg}
    assert max(errs.values()) < 1e-5, f"returned weights differ from the naive average: {errs}"
    last = snap.snaps[-1]
    diff = max(float((got[k].double() - last[k]).abs().max()) for k in avg
               if last[k].is_floating_point())
    assert diff > 1e-4, f"the returned weights are the last step's, not the average ({diff})"
    # integer buffers (batch norm's counter) are the live ones
    nbt = [k for k in got if k.endswith("num_batches_tracked")]
    assert nbt and all(int(got[k]) == int(last[k]) == 15 for k in nbt)


def test_validation_and_early_stopping_use_the_average():
    X, V = _data(), _data(40, seed=3)
    seen = {}

    class Check(Callback):
        def on_epoch_end(self, loop, record):
            with loop.weight_average.swapped():
                seen[record["epoch"]] = (record["val_loss"], evaluate(
                    loop.model, loop.objective, V)["loss"])

    m = _model()
    h = fit(m, make_objective("mse"), X, val=V, max_iter=4, batch_size=32, learning_rate=3e-2,
            weight_average=0.8, early_stopping=10, callbacks=[Check()], random_state=2)
    for ep, (rec, ref) in seen.items():
        assert rec == pytest.approx(ref, rel=1e-6), (ep, rec, ref)
    # the model returned is the best epoch's average: its val loss is that epoch's record
    best = h.best_epoch
    final = evaluate(m, make_objective("mse"), V)["loss"]
    assert final == pytest.approx(seen[best][0], rel=1e-6), (best, final, seen)
    # and without averaging the validation losses differ (the test would notice a no-op)
    m2 = _model()
    h2 = fit(m2, make_objective("mse"), X, val=V, max_iter=4, batch_size=32,
             learning_rate=3e-2, random_state=2)
    assert h2["val_loss"] != h["val_loss"]


class _Boom(Exception):
    pass


def test_resume_reaches_the_same_average_bit_for_bit(tmp_path):
    X = _data()
    kw = dict(max_iter=5, batch_size=32, learning_rate=1e-2, random_state=4, val=X[:32],
              weight_average=0.95, checkpoint_steps=3)
    ref = _model()
    fit(ref, make_objective("mse"), X[32:], **kw)

    def crash(epoch, record, model):
        if epoch == 3:
            raise _Boom

    m = _model()
    with pytest.raises(_Boom):
        fit(m, make_objective("mse"), X[32:], checkpoint_dir=tmp_path, callbacks=[crash], **kw)
    assert find_checkpoints(tmp_path)
    m2 = _model(seed=9)
    h = fit(m2, make_objective("mse"), X[32:], checkpoint_dir=tmp_path, resume=True, **kw)
    assert h.resumed_from_step is not None
    for (k, a), b in zip(ref.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, float("nan"), True])
def test_bad_decay_is_named(decay):
    with pytest.raises(ValueError, match="weight_average"):
        fit(_model(), make_objective("mse"), _data(), max_iter=1, weight_average=decay)


def test_twice_is_refused():
    with pytest.raises(ValueError, match="given twice"):
        fit(_model(), make_objective("mse"), _data(), max_iter=1, weight_average=0.9,
            callbacks=[WeightAverage(0.9)])
