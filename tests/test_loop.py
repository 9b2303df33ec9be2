"""The one loop: batches with targets, extension points (a toy term, corruption and callback
defined here only), stateful callbacks that resume exactly, registries, and the loop's size."""

from __future__ import annotations

import ast
import inspect
import math
import textwrap

import numpy as np
import pytest
import torch

from aekit import Batch, DenseAE, LinearAE, Objective, Term, fit, make_objective
from aekit.classifier import EncoderClassifier
from aekit.data.batch import ArraySource, as_source
from aekit.models.rbm import RBM
from aekit.objectives import TERMS, make_term, rbm_objective
from aekit.train import Callback, evaluate, find_checkpoints
from aekit.train import fit as fit_module_fn
from aekit.train.fit import Loop
from aekit.validation import Param


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _data(n=240, d=12, seed=0):
    g = np.random.default_rng(seed)
    return (g.normal(size=(n, 3)) @ g.normal(size=(3, d))).astype(np.float32)


# --- extension points defined in this file alone -------------------------------------------------

class CodeEnergy(Term):
    """Toy term: ``lam · mean_i ‖h_i‖²``."""

    name = "code_energy"
    params = (Param("lam", float, 0.1, "weight", lo=0),)

    def __init__(self, lam: float = 0.1):
        super().__init__()
        self.lam = self.check("lam", lam)
        self.calls = 0

    def forward(self, model, batch, out):
        self.calls += 1
        return self.lam * out.code.pow(2).sum(1).mean()


class FlipSign:
    """Toy corruption: negates a random fraction p of the entries, drawn from the generator."""

    def __init__(self, p: float):
        self.p, self.calls = p, 0

    def __call__(self, x, generator=None):
        self.calls += 1
        mask = torch.rand(x.shape, generator=generator) < self.p
        return torch.where(mask, -x, x)


class LossCounter(Callback):
    """Toy stateful callback: counts steps and keeps the sum of epoch losses."""

    key = "loss_counter"

    def __init__(self):
        self.steps, self.total = 0, 0.0

    def on_batch_end(self, loop):
        self.steps += 1

    def on_epoch_end(self, loop, record):
        self.total += record["train_loss"]
        record["counted_steps"] = self.steps

    def state_dict(self):
        return {"steps": self.steps, "total": self.total}

    def load_state_dict(self, state):
        self.steps, self.total = state["steps"], state["total"]


def test_toy_term_corruption_and_callback_train_end_to_end():
    X = _data()
    torch.manual_seed(0)
    model = DenseAE([12, 8, 3])
    term, corrupt, counter = CodeEnergy(0.05), FlipSign(0.1), LossCounter()
    h = fit(model, Objective("mse", [term]), X, corruption=corrupt, max_iter=4, batch_size=32,
            learning_rate=3e-3, callbacks=[counter], val=X[:40])
    steps = 4 * math.ceil(240 / 32)
    assert counter.steps == steps and corrupt.calls == steps, (counter.steps, corrupt.calls)
    assert term.calls >= steps  # training batches plus validation batches
    rec = h.records[-1]
    assert rec["counted_steps"] == steps
    assert {"train_code_energy", "val_code_energy", "train_recon"} <= set(rec), sorted(rec)
    assert rec["train_loss"] == pytest.approx(rec["train_recon"] + rec["train_code_energy"],
                                              rel=1e-5)
    assert h["train_loss"][-1] < h["train_loss"][0], h["train_loss"]
    assert counter.total == pytest.approx(sum(h["train_loss"]), rel=1e-6)


# --- batches with targets ------------------------------------------------------------------------

def test_batch_target_defaults_to_x_and_sources():
    x = torch.ones(3, 2)
    assert Batch(x).target is x and Batch(x).input is x and Batch(x).size == 3
    y = torch.zeros(3, dtype=torch.int64)
    b = Batch(x, x * 2, y)
    assert b.target is y and torch.equal(b.input, x * 2)
    src = as_source((np.eye(4, dtype=np.float32), np.arange(4)))
    got = src.take(torch.tensor([2, 0]))
    assert torch.equal(got.y, torch.tensor([2, 0])) and got.y.dtype == torch.int64
    assert isinstance(as_source([[1.0, 2.0], [3.0, 4.0]]), ArraySource)  # a list is X
    with pytest.raises(ValueError, match="targets of X have 3 rows, X has 4"):
        as_source((np.eye(4), np.zeros(3)))
    with pytest.raises(ValueError, match=r"targets of X contains NaN"):
        as_source((np.eye(2), np.array([[np.nan], [1.0]])))
    with pytest.raises(ValueError, match=r"must be \(X, Y\)"):
        as_source((np.eye(2),))
    with pytest.raises(ValueError, match="augment transforms the inputs only"):
        fit(LinearAE(4, 2), make_objective("mse"), (np.eye(4), np.eye(4)),
            augment=lambda x, g: x)


def test_paired_targets_learn_a_map_not_the_identity():
    """With (X, Y) the loss is against Y: a linear AE learns the feature permutation Y = XP."""
    g = np.random.default_rng(1)
    X = g.normal(size=(400, 6)).astype(np.float32)
    P = np.eye(6, dtype=np.float32)[::-1]
    Y = X @ P
    torch.manual_seed(0)
    model = LinearAE(6, 6)
    obj = make_objective("mse")
    fit(model, obj, (X, Y), max_iter=5, optimizer="lbfgs", learning_rate=1.0, lbfgs_max_iter=50)
    err = evaluate(model, obj, (X, Y))["recon"]
    ident = evaluate(model, obj, X)["recon"]  # the same model scored as an identity AE
    base = float((Y ** 2).sum(1).mean())
    assert err < 1e-3 * base, (err, base)
    assert ident > 0.5 * base, ident


def test_classifier_trains_with_cross_entropy_through_fit():
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16).astype(np.float32)
    y = d.target.astype(np.int64)
    torch.manual_seed(0)
    net = EncoderClassifier(DenseAE([64, 32, 16]), 10)
    h = fit(net, Objective("cross_entropy"), (X[:1400], y[:1400]), val=(X[1400:], y[1400:]),
            max_iter=15, batch_size=64, learning_rate=3e-3, optimizer="adamw")
    acc = float((net(torch.from_numpy(X[1400:])).argmax(1).numpy() == y[1400:]).mean())
    assert "train_ce" in h.records[-1] and "val_ce" in h.records[-1]
    assert acc > 0.85, f"held-out accuracy {acc:.3f} (chance 0.1)"


# --- resume: every callback's and term's state ---------------------------------------------------

class Kill(Callback):
    """Raises after ``at`` steps, once: a stand-in for SIGKILL after a checkpoint."""

    def __init__(self, at: int):
        self.at = at

    def on_batch_end(self, loop):
        if loop.step == self.at:
            raise RuntimeError("killed")


def _rbm_run(ckdir, callbacks, resume=False):
    X = (torch.rand(200, 10, generator=torch.Generator().manual_seed(3))
         < torch.linspace(0.1, 0.9, 10)).float()
    torch.manual_seed(5)
    rbm = RBM(10, 6)
    counter = LossCounter()
    h = fit(rbm, rbm_objective(k=1, seed=11), X, optimizer="sgd", learning_rate=0.05, max_iter=6,
            batch_size=32, early_stopping=50, checkpoint_dir=ckdir, checkpoint_steps=5,
            callbacks=[counter, *callbacks], resume=resume, random_state=2)
    return rbm, counter, h


def test_resume_restores_callbacks_terms_and_rng_bit_exactly(tmp_path):
    """Killed mid-epoch after a step checkpoint, the resumed run reaches the weights, history,
    callback state and CD chain of an uninterrupted one (the chain's generator is term state)."""
    ref, c_ref, h_ref = _rbm_run(tmp_path / "ref", [])
    with pytest.raises(RuntimeError, match="killed"):
        _rbm_run(tmp_path / "run", [Kill(17)])
    assert find_checkpoints(tmp_path / "run")
    run, c_run, h_run = _rbm_run(tmp_path / "run", [], resume=True)
    assert h_run.resumed_from_step == 15
    for k, v in ref.state_dict().items():
        assert torch.equal(v, run.state_dict()[k]), k
    assert (c_run.steps, c_run.total) == (c_ref.steps, c_ref.total)
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in h_ref.records]
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in h_run.records] == strip


def test_resume_refuses_a_checkpoint_without_a_callbacks_state(tmp_path):
    _rbm_run(tmp_path / "a", [])

    class Extra(LossCounter):
        key = "extra"

    with pytest.raises(ValueError, match="no state for callback 'extra'"):
        fit_module_fn(RBM(10, 6), rbm_objective(), torch.rand(200, 10).round(), epochs=6,
                      batch_size=32, checkpoint_dir=tmp_path / "a", resume=True,
                      callbacks=[Extra()], optimizer="sgd", lr=0.05)


# --- registries ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TERMS))
def test_every_term_declares_its_parameters_once(name):
    cls = TERMS[name]
    assert cls.name == name
    sig = inspect.signature(cls.__init__)
    declared = {p.name: p for p in cls.params}
    args = {k: v for k, v in sig.parameters.items() if k != "self"}
    assert set(args) == set(declared), (set(args), set(declared))
    for k, p in declared.items():
        assert args[k].default == p.default, (k, args[k].default, p.default)
        assert p.doc and p.describe().startswith(k)
    term = make_term(name)  # the declared defaults build a valid term
    assert isinstance(term, Term)
    with pytest.raises(ValueError, match="has no parameter"):
        make_term(name, not_a_parameter=1)
    for p in cls.params:  # each bound is enforced with the parameter's name
        if p.type is float and p.lo is not None:
            with pytest.raises(ValueError, match=p.name):
                make_term(name, **{p.name: p.lo - 1.0})


def test_unknown_term():
    with pytest.raises(ValueError, match="unknown term 'nope'; expected one of"):
        make_term("nope")


# --- the loop stays small ------------------------------------------------------------------------

def _code_lines(fn) -> int:
    """Lines of a function's body without its docstring, comments and blank lines."""
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(
        node.body[0].value, ast.Constant) else node.body
    lines = set()
    for stmt in body:
        lines.update(range(stmt.lineno, stmt.end_lineno + 1))
    text = src.splitlines()
    return sum(1 for i in lines if text[i - 1].strip() and not text[i - 1].strip().startswith("#"))


def test_fit_and_its_core_loop_are_small():
    core = {f.__name__: _code_lines(f) for f in (
        fit_module_fn, Loop.run, Loop.next_batch, Loop.objective_step, Loop.epoch_record)}
    assert sum(core.values()) <= 150, core


def test_image_folder_source_pairs_files_by_name_and_trains(tmp_path):
    from PIL import Image

    from aekit.data.images import ImageFolder

    g = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    clean = (g.random((6, 8, 8)) * 255).astype(np.uint8)
    for i, c in enumerate(clean):
        Image.fromarray(c).save(tmp_path / "out" / f"{i}.png")
        Image.fromarray(255 - c).save(tmp_path / "in" / f"{i}.png")  # "damaged": inverted
    Image.fromarray(clean[0].astype(np.uint16) * 257).save(tmp_path / "w16.png")
    src = ImageFolder(tmp_path / "in", targets=tmp_path / "out")
    b = src.take(torch.tensor([3, 1]))
    assert b.x.shape == (2, 64) and b.y.shape == (2, 64)
    np.testing.assert_allclose(b.y[0].numpy(), clean[3].ravel() / 255, atol=1e-6)
    np.testing.assert_allclose(b.x[0].numpy(), 1 - clean[3].ravel() / 255, atol=1e-6)
    from aekit.data.images import read_image

    np.testing.assert_allclose(read_image(tmp_path / "w16.png")[0], clean[0] / 255, atol=1e-6)
    torch.manual_seed(0)
    model = LinearAE(64, 64)
    obj = make_objective("mse")
    fit(model, obj, src, max_iter=5, optimizer="lbfgs", learning_rate=1.0, lbfgs_max_iter=100)
    assert evaluate(model, obj, src)["recon"] < 1e-3  # learned x -> 1 - x, an affine map
    (tmp_path / "in" / "extra.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="has no image for"):
        ImageFolder(tmp_path / "in", targets=tmp_path / "out")
    with pytest.raises(ValueError, match="is not a readable image"):
        ImageFolder(tmp_path / "in").all()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        ImageFolder(tmp_path / "empty")


def test_resume_with_only_unreadable_checkpoints_is_an_error_naming_them(tmp_path):
    """fit(resume=True) never starts over silently when checkpoints exist but none reads."""
    from aekit.io import FileFormatError

    X = _data()
    fit(DenseAE([12, 3]), make_objective("mse"), X, max_iter=2, checkpoint_dir=tmp_path)
    files = find_checkpoints(tmp_path)
    assert files
    for f in files:  # flip a byte in the tensor data: the checksum fails
        raw = bytearray(f.read_bytes())
        raw[-5] ^= 0xFF
        f.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"), \
            pytest.raises(FileFormatError, match="no checkpoint is readable") as e:
        fit(DenseAE([12, 3]), make_objective("mse"), X, max_iter=3, checkpoint_dir=tmp_path,
            resume=True)
    assert all(f.name in str(e.value) for f in files), str(e.value)
    empty = tmp_path / "fresh"  # no checkpoint at all: resume starts from step 0
    h = fit(DenseAE([12, 3]), make_objective("mse"), X, max_iter=1, checkpoint_dir=empty,
            resume=True)
    assert h.resumed_from_step is None and len(h) == 1


def test_history_is_indexed_by_column_name_only():
    """``history[-1]`` used to return a column of NaNs; now it raises, as do unknown names."""
    from aekit.train.callbacks import History

    h = History()
    h.records = [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0, "val_loss": 3.0}]
    assert h["train_loss"] == [2.0, 1.0]
    v = h["val_loss"]  # present in some epochs only: NaN where absent
    assert np.isnan(v[0]) and v[1] == 3.0, v
    with pytest.raises(TypeError, match=r"history.records\[i\]"):
        h[-1]
    with pytest.raises(KeyError, match="columns: epoch, train_loss, val_loss"):
        h["val_recon"]
    assert h.columns == ["epoch", "train_loss", "val_loss"]
