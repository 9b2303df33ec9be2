"""Issue 24: defaults a user can trust. The estimator starts at PCA, early-stops on the
validation reconstruction (any logged part), takes grouped splits, picks its weight decay on
the validation split, returns float64 for float64 input, and failure messages only mention
checkpoints that exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from aekit import Autoencoder, fit, make_objective
from aekit.data.arrays import split_indices
from aekit.models import DenseAE, LinearAE, init_linear_ae_from_pca
from aekit.train import Callback, evaluate


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is faster than two and does not thrash a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _lowrank(seed, n, d=12, r=4, noise=0.3):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, r)) @ g.normal(size=(r, d)) + noise * g.normal(size=(n, d))


def test_untrained_default_model_is_pca():
    """max_iter=0: the default architecture before any step reproduces scikit-learn's PCA."""
    X = _lowrank(0, 200)
    ae = Autoencoder(n_components=3, max_iter=0, early_stopping=False, random_state=0).fit(X)
    pca = PCA(3).fit(X)
    want = pca.inverse_transform(pca.transform(X))
    got = ae.reconstruct(X)
    err = float(np.abs(got - want).max() / np.abs(want).max())
    assert ae.init_ == "pca" and ae.loss_ == "mse" and ae.n_iter_ == 0
    assert err < 1e-5, f"relative max |AE(untrained) - PCA| = {err:.3g}"
    # the codes span PCA's subspace: reconstruct PCA's components from the AE's codes
    Z = ae.transform(X)
    P = pca.transform(X)
    coef, *_ = np.linalg.lstsq(Z, P, rcond=None)
    assert np.abs(Z @ coef - P).max() < 1e-4 * np.abs(P).max()


def test_default_fit_never_loses_to_pca_on_validation():
    """40 noisy linear rows and a 256-unit branch: training can only overfit, no epoch beats
    the PCA start, so the estimator returns PCA-k refitted on all rows, exactly."""
    X = _lowrank(1, 40, d=20, noise=1.0)
    ae = Autoencoder(n_components=4, random_state=0, max_iter=30, learning_rate=1e-2).fit(X)
    ran = ae.history_["val_recon"]
    assert ae.history_.best_epoch == 0 and min(ran) >= ae.start_score_, (ran, ae.start_score_)
    pca = PCA(4).fit(X)
    err = np.abs(ae.reconstruct(X) - pca.inverse_transform(pca.transform(X))).max()
    assert err < 1e-5 * np.abs(X).max(), f"max |AE - PCA(all rows)| = {err:.3g}"


def _curved(seed, n=80):
    g = np.random.default_rng(seed)
    Z = g.normal(size=(n, 2))
    return np.c_[Z, np.tanh(Z[:, :1] * Z[:, 1:]) * 0.3, 0.5 * g.normal(size=(n, 5))]


def _row_errors(X, Xhat):
    return ((X - Xhat) ** 2).sum(1)


@pytest.mark.parametrize("seed, kept", [(0, False), (7, True)])
def test_one_standard_error_rule_for_leaving_pca(seed, kept):
    """The trained model is kept only if its validation gain over the PCA start exceeds one
    standard error of the paired per-row differences; recomputed here from its definition
    (PCA on the training rows vs the returned model, per validation row), and when the gain
    is within the noise the result is PCA refitted on all rows."""
    X = _curved(seed)
    ae = Autoencoder(n_components=2, random_state=0, max_iter=40, learning_rate=3e-3).fit(X)
    gate = ae.start_gate_
    assert ae.history_.best_epoch > 0 and gate is not None, (ae.history_.best_epoch, gate)
    va = ae.validation_indices_
    tr = np.setdiff1d(np.arange(len(X)), va)
    pca_tr = PCA(2).fit(X[tr])
    e_start = _row_errors(X[va], pca_tr.inverse_transform(pca_tr.transform(X[va])))
    assert abs(e_start.mean() - ae.start_score_) < 1e-4 * e_start.mean(), \
        (e_start.mean(), ae.start_score_)
    pca_all = PCA(2).fit(X)
    want_all = pca_all.inverse_transform(pca_all.transform(X))
    if kept:
        e_model = _row_errors(X[va], ae.reconstruct(X[va]))
        d = e_start - e_model
        se = d.std(ddof=1) / np.sqrt(len(d))
        assert abs(d.mean() - gate["improvement"]) < 1e-4 * abs(e_start.mean()), (d.mean(), gate)
        assert abs(se - gate["standard_error"]) < 1e-3 * se, (se, gate)
        assert gate["kept"] and d.mean() > se, (d.mean(), se)
        assert np.abs(ae.reconstruct(X) - want_all).max() > 1e-3  # not PCA
    else:
        assert not gate["kept"] and gate["improvement"] <= gate["standard_error"], gate
        err = np.abs(ae.reconstruct(X) - want_all).max()
        assert err < 1e-5 * np.abs(X).max(), f"max |AE - PCA(all rows)| = {err:.3g}"


def test_random_init_and_pca_start_resolution():
    X = np.random.default_rng(0).random((50, 6))
    assert Autoencoder(n_components=2, init="random", max_iter=1).fit(X).init_ == "random"
    # a sigmoid code cannot be PCA: the start is random and the rule is recorded
    ae = Autoencoder(n_components=2, code_activation="sigmoid", max_iter=1).fit(X)
    assert ae.init_ == "random" and ae.loss_ == "bce"
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        Autoencoder(n_components=2, init="zeros").fit(X)
    with pytest.raises(ValueError, match="unknown monitor 'train_loss'"):
        Autoencoder(n_components=2, monitor="train_loss").fit(X)


def test_monitor_part_picks_its_own_epoch():
    """A linear AE started at PCA under a strong weight decay: every epoch shrinks the weights,
    so the reconstruction only gets worse (best: the start) while the total, recon + decay,
    keeps falling (best: the last epoch). Each monitor keeps its own epoch and weights."""
    g = np.random.default_rng(0)
    X = (g.normal(size=(400, 3)) @ g.normal(size=(3, 16))).astype(np.float32)
    Xtr, Xva = X[:300], X[300:]

    def run(monitor):
        m = init_linear_ae_from_pca(LinearAE(16, 3), Xtr)
        obj = make_objective("mse", weight_decay=1.0)
        h = fit(m, obj, Xtr, val=Xva, max_iter=8, batch_size=100, learning_rate=1e-2,
                monitor=monitor,
                early_stopping=8, include_start=True, progress=False)
        return h, evaluate(m, obj, Xva)

    (hr, er), (hl, el) = run("val_recon"), run("val_loss")
    assert hr.best_epoch == 0, f"val_recon: best epoch {hr.best_epoch}, {hr['val_recon']}"
    assert hl.best_epoch == int(np.argmin(hl["val_loss"])) + 1 == 8, hl["val_loss"]
    assert er["recon"] < el["recon"], (er, el)
    # the estimator passes its monitor through: each keeps the argmin of its own column
    X2 = (g.normal(size=(300, 3)) @ g.normal(size=(3, 16))).astype(np.float32)
    kw = dict(n_components=3, init="random", hidden_layer_sizes=(32,), weight_decay=0.05,
              max_iter=20, n_iter_no_change=20, learning_rate=1e-2, batch_size=64,
              random_state=0)
    for mon in ("val_recon", "val_loss"):
        a = Autoencoder(monitor=mon, **kw).fit(X2)
        col = a.history_[mon]
        assert a.history_.best_epoch == int(np.argmin(col)) + 1, (mon, col)
        assert a.best_score_ == pytest.approx(min(col), rel=1e-5), (a.best_score_, min(col))


def test_grouped_split_keeps_groups_whole():
    groups = np.repeat(np.arange(23), np.arange(1, 24))  # 23 groups of sizes 1..23
    tr, va = split_indices(len(groups), validation_fraction=0.2, groups=groups,
                           random_state=3)
    assert set(groups[tr]).isdisjoint(groups[va])
    assert len(set(groups[va])) == int(np.ceil(0.2 * 23))
    assert np.array_equal(np.sort(np.r_[tr, va]), np.arange(len(groups)))
    _, va2 = split_indices(len(groups), validation_fraction=0.2, groups=groups,
                           random_state=3)
    assert np.array_equal(va, va2)
    _, va3 = split_indices(len(groups), validation_fraction=0.2, groups=groups,
                           random_state=4)
    assert not np.array_equal(va, va3)
    with pytest.raises(ValueError, match="at least 2"):
        split_indices(10, groups=np.zeros(10), random_state=0)
    with pytest.raises(ValueError, match=r"groups must have shape \(10,\)"):
        split_indices(10, groups=np.zeros(9), random_state=0)


def test_estimator_groups_reach_the_split():
    g = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 10)
    X = g.normal(size=(30, 8))[groups] + 0.01 * g.normal(size=(300, 8))
    kw = dict(n_components=2, max_iter=2, random_state=0)
    ae = Autoencoder(**kw).fit(X, groups=groups)
    va = ae.validation_indices_
    tr = np.setdiff1d(np.arange(300), va)
    assert set(groups[va]).isdisjoint(groups[tr]) and len(set(groups[va])) == 3
    leaky = Autoencoder(**kw).fit(X).validation_indices_
    assert len(leaky) == 30 and not set(groups[leaky]).isdisjoint(groups[np.setdiff1d(
        np.arange(300), leaky)])
    with pytest.raises(ValueError, match="groups must have one label per sample"):
        Autoencoder(**kw).fit(X, groups=groups[:-1])


def test_validation_fraction_on_tiny_data():
    X = _lowrank(2, 5, d=4)
    ae = Autoencoder(n_components=1, max_iter=3, random_state=0).fit(X)  # 2 val + 3 train
    assert ae.start_score_ is not None
    with pytest.raises(ValueError, match=r"n_samples = 3 is too few.*validation_fraction=0.1"):
        Autoencoder(n_components=1, max_iter=3).fit(X[:3])
    with pytest.raises(ValueError, match=r"validation_fraction must be"):
        Autoencoder(n_components=1, validation_fraction=0.0).fit(X)
    Autoencoder(n_components=1, max_iter=2, early_stopping=False, init="random").fit(X[:3])


def _arc(seed, n, d=10):
    g = np.random.default_rng(seed)
    t = g.uniform(-1, 1, n)
    A = np.random.default_rng(100).normal(size=(2, d))
    return np.stack([t, 2 * t**2], 1) @ A + 0.02 * g.normal(size=(n, d))


def test_auto_weight_decay_known_answers():
    """A parabola in 10-D with a 1-D code (nonlinear, plenty of rows): no decay wins, and the
    largest keeps the branch shut (validation error at most PCA's, not far below). Noisy
    linear data with few rows: nothing beats PCA, so every value ends at or below the start
    and the largest decay is chosen unless a smaller one is strictly better."""
    X = _arc(0, 600)
    ae = Autoencoder(n_components=1, weight_decay="auto", weight_decay_grid=[0.0, 1.0],
                     hidden_layer_sizes=(32,), max_iter=20, learning_rate=1e-2, batch_size=32,
                     random_state=0).fit(X)
    curve = ae.validation_curve_["val_recon"]
    assert ae.weight_decay_ == 0.0, f"chose {ae.weight_decay_}, curve {curve}"
    assert curve[0] < 0.85 * curve[1], curve
    assert 0.8 * ae.start_score_ < curve[1] <= ae.start_score_ * (1 + 1e-6), \
        (curve, ae.start_score_)
    assert ae.best_score_ == curve[0]
    Xn = _lowrank(3, 30, d=20, noise=2.0)
    an = Autoencoder(n_components=2, weight_decay="auto", weight_decay_grid=[0.0, 1e-3, 1.0],
                     max_iter=15, learning_rate=1e-2, random_state=0).fit(Xn)
    cn = an.validation_curve_["val_recon"]
    assert max(cn) <= an.start_score_ * (1 + 1e-6), (cn, an.start_score_)
    assert an.weight_decay_ == 1.0 or cn[-1] > min(cn), (an.weight_decay_, cn)
    with pytest.raises(ValueError, match="needs early_stopping=True"):
        Autoencoder(weight_decay="auto", early_stopping=False).fit(Xn)
    with pytest.raises(ValueError, match="unknown weight_decay 'big'"):
        Autoencoder(weight_decay="big").fit(Xn)


def test_weight_decay_is_per_unit_of_variance():
    """The same weight_decay on X and on 100·X gives the same fit (up to the scale)."""
    X = _lowrank(4, 200).astype(np.float32)
    kw = dict(n_components=2, weight_decay=1e-3, init="random", max_iter=5, random_state=0,
              batch_size=32)
    a = Autoencoder(**kw).fit(X)
    b = Autoencoder(**kw).fit(100 * X)
    ra = a.history_["val_recon"][-1]
    rb = b.history_["val_recon"][-1] / 100**2
    assert b.objective_.terms[0].eta == pytest.approx(1e4 * a.objective_.terms[0].eta)
    assert rb == pytest.approx(ra, rel=0.5), (ra, rb)


def test_float64_in_float64_out_and_order_invariant():
    X = _lowrank(5, 60)
    ae = Autoencoder(n_components=2, max_iter=3, random_state=0).fit(X)
    for method in (ae.transform, ae.reconstruct, ae.score_samples):
        out = method(X)
        assert out.dtype == np.float64
        assert method(X.astype(np.float32)).dtype == np.float32
        for seed in range(5):  # the estimator check shuffles without a seed
            idx = np.random.default_rng(seed).permutation(len(X))
            np.testing.assert_allclose(method(X)[idx], method(X[idx]), rtol=0, atol=1e-12)
    assert ae.inverse_transform(ae.transform(X)).dtype == np.float64


class _PoisonAt(Callback):
    """Set the weights to NaN at the end of epoch ``epoch`` (0: before training)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def _poison(self, loop):
        with torch.no_grad():
            for p in loop.model.parameters():
                p.fill_(float("nan"))

    def on_fit_start(self, loop):
        if self.epoch == 0:
            self._poison(loop)

    def on_epoch_end(self, loop, record):
        if loop.epoch + 1 == self.epoch:
            self._poison(loop)


def test_failure_message_mentions_only_checkpoints_that_exist(tmp_path):
    X = np.random.default_rng(0).random((64, 5)).astype(np.float32)

    def run(poison_epoch, ckpt):
        torch.manual_seed(0)
        with pytest.raises(FloatingPointError) as e:
            fit(DenseAE([5, 2]), make_objective("mse"), X, max_iter=5, batch_size=16,
                callbacks=[_PoisonAt(poison_epoch)], checkpoint_dir=ckpt, progress=False)
        return str(e.value)

    msg = run(0, None)
    assert "checkpoint" not in msg, msg
    msg = run(0, tmp_path / "a")
    assert "no checkpoint was written" in msg and "is kept" not in msg, msg
    assert not list((tmp_path / "a").glob("ckpt-*"))
    msg = run(2, tmp_path / "b")
    files = sorted((tmp_path / "b").glob("ckpt-*.safetensors"))
    assert files and str(files[-1]) in msg and "is kept" in msg, (msg, files)


def test_cli_val_groups_and_train_monitor(tmp_path):
    """`aekit train --val-groups person` on a CSV: whole groups in validation, the column is
    no feature; `train.monitor` reaches early stopping."""
    from aekit.cli import main
    from aekit.config import load_config
    from aekit.runs import load_run_data

    g = np.random.default_rng(0)
    rows = ["a,person,b,c"]
    for i in range(60):
        rows.append(f"{g.normal():.4f},p{i // 6},{g.normal():.4f},{i * 0.01:.4f}")
    csv = tmp_path / "x.csv"
    csv.write_text("\n".join(rows) + "\n")
    cfg = load_config(None, [f"data.dataset={str(csv)!r}", "data.val_groups='person'",
                             "data.validation_fraction=0.2"])
    data = load_run_data(cfg)
    assert data.train.X.shape[1] == 3 and len(data.val.X) == 12  # 2 of 10 groups of 6 rows
    col_c = np.round(data.val.X[:, 2] * 100).astype(int) // 6  # row index -> person
    assert len(set(col_c)) == 2, sorted(set(col_c))
    tr_c = set(np.round(data.train.X[:, 2] * 100).astype(int) // 6)
    assert tr_c.isdisjoint(col_c)
    out = tmp_path / "run"
    rc = main(["train", "--data", str(csv), "--val-groups", "person", "--n-components", "2",
               "--max-iter", "2", "--set", "train.monitor='val_recon'", "--output", str(out),
               "--no-report"])
    assert rc == 0
    with pytest.raises(ValueError, match="no such column"):
        load_run_data(load_config(None, [f"data.dataset={str(csv)!r}",
                                         "data.val_groups='nobody'"]))
