"""Top-k sparse autoencoders (aekit.sae, TopKSAE, AuxK): definitions against brute force,
the decoder constraint after every step, AuxK reviving dead latents, metrics on hand-made
cases, streaming = in-memory, save/load, CLI, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.models import MODELS, make_model
from aekit.models.sae import TopKSAE, geometric_median
from aekit.objectives import TERMS, AuxK, make_term
from aekit.sae import (
    ActivationSource,
    SparseAutoencoder,
    UnitNormDecoder,
    dead_fraction,
    evaluate_sae,
    fvu,
    l0,
    sae_objective,
    top_activating_examples,
    train_sae,
)
from aekit.train.callbacks import Callback


def _toy(n=4096, d=16, n_true=256, kt=3, seed=0):
    """Rows that are sums of kt random unit atoms (of n_true) with weights in [0.5, 1.5)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n_true, d, generator=g)
    A /= A.norm(dim=1, keepdim=True)
    idx = torch.randint(0, n_true, (n, kt), generator=g)
    c = torch.rand(n, kt, generator=g) + 0.5
    return (c[:, :, None] * A[idx]).sum(1).numpy()


def test_registered():
    assert MODELS["topk_sae"] is TopKSAE and TERMS["auxk"] is AuxK
    assert aekit.SparseAutoencoder is SparseAutoencoder and aekit.TopKSAE is TopKSAE
    assert isinstance(make_term("auxk", alpha=0.5), AuxK)


# --- top-k exactness ---------------------------------------------------------------------------

def test_topk_keeps_exactly_the_k_largest_preactivations():
    torch.manual_seed(0)
    m = TopKSAE(12, 40, 5, relu=False).double()
    x = torch.randn(64, 12, dtype=torch.float64)
    out = m(x)
    z, a = out.code, out.preactivations[0]
    nnz = (z != 0).sum(1)
    assert (nnz == 5).all(), f"non-zeros per row: {nnz.tolist()}"
    a_ref = (x - m.b_pre) @ m.W_enc.T + m.b_enc
    torch.testing.assert_close(a, a_ref.detach())
    top = a_ref.detach().topk(5, dim=1)
    kept = z.gather(1, top.indices)
    torch.testing.assert_close(kept, top.values)  # the k largest, with their values
    # with the ReLU (default): same support, values clamped at 0
    m.relu = True
    z2 = m(x).code
    torch.testing.assert_close(z2.gather(1, top.indices), top.values.clamp_min(0))
    assert int((z2 != 0).sum()) == int((top.values > 0).sum())


def test_batch_topk_keeps_k_times_batch_over_the_batch_and_thresholds_at_eval():
    torch.manual_seed(1)
    m = TopKSAE(10, 30, 4, batch_topk=True, relu=False).double()
    x = torch.randn(25, 10, dtype=torch.float64)
    out = m.train()(x)
    z, a = out.code, out.preactivations[0]
    assert int((z != 0).sum()) == 4 * 25
    thr = a.flatten().topk(4 * 25).values.min()
    assert torch.equal(z != 0, a >= thr), "kept entries are not the k·B largest of the batch"
    assert (z.sum(1) != z.sum(1).mean()).any()  # rows differ in their counts
    assert float(m.threshold) == pytest.approx(float(thr))  # θ: first batch's smallest kept
    m.eval()
    out = m(x)
    assert torch.equal(out.code != 0, out.preactivations[0] > m.threshold)


def test_sparse_backward_equals_dense_autograd():
    torch.manual_seed(2)
    m = TopKSAE(9, 33, 4, project_decoder_grad=False).double()
    x = torch.randn(20, 9, dtype=torch.float64)
    out = m(x)
    loss = (out.reconstruction - x).pow(2).sum() + out.code.pow(2).sum()
    g = dict(zip([n for n, _ in m.named_parameters()],
                 torch.autograd.grad(loss, list(m.parameters()))))
    P = {n: p.detach().clone().requires_grad_() for n, p in m.named_parameters()}
    a = (x - P["b_pre"]) @ P["W_enc"].T + P["b_enc"]
    mask = torch.zeros_like(a, dtype=torch.bool).scatter(1, a.topk(4, dim=1).indices, True)
    z = torch.where(mask, a, torch.zeros_like(a)).relu()
    r = z @ P["W_dec"] + P["b_pre"]
    ref = torch.autograd.grad((r - x).pow(2).sum() + z.pow(2).sum(), list(P.values()))
    torch.testing.assert_close(r, out.reconstruction.detach())
    for (name, _), gr in zip(P.items(), ref):
        err = float((g[name] - gr).abs().max())
        assert err < 1e-10, f"gradient of {name} differs from the dense reference by {err}"
    assert torch.allclose(m.decode(out.code), out.reconstruction)


def test_decoder_gradient_is_orthogonal_to_each_atom():
    torch.manual_seed(3)
    m = TopKSAE(8, 24, 3).double()
    x = torch.randn(30, 8, dtype=torch.float64)
    (g,) = torch.autograd.grad((m(x).reconstruction - x).pow(2).sum(), [m.W_dec])
    par = (g * m.W_dec.detach()).sum(1).abs().max()
    assert float(par) < 1e-12, f"largest component along an atom: {float(par)}"
    assert float(g.abs().max()) > 1e-3


def test_geometric_median_minimises_the_sum_of_distances():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=g, dtype=torch.float64)
    X[:20] += 30  # outliers pull the mean, not the median
    m = geometric_median(X, tol=1e-12, max_iter=1000)

    def f(p):
        return float((X - p).norm(dim=1).sum())

    for _ in range(50):
        d = torch.randn(3, generator=g, dtype=torch.float64) * 1e-3
        assert f(m) <= f(m + d) + 1e-9
    assert f(m) < f(X.mean(0)) - 1.0


# --- training: the decoder constraint and AuxK ---------------------------------------------

class _Norms(Callback):
    def __init__(self):
        self.devs = []

    def on_batch_end(self, loop):
        self.devs.append(float((loop.model.W_dec.detach().norm(dim=1) - 1).abs().max()))


def test_decoder_columns_have_unit_norm_after_every_step():
    X = _toy(n=1024)
    torch.manual_seed(0)
    m = TopKSAE(16, 64, 4)
    rec = _Norms()
    train_sae(m, X, max_iter=2, batch_size=128, learning_rate=1e-2, callbacks=[rec],
              progress=False)
    assert len(rec.devs) == 16
    assert max(rec.devs) < 1e-6, f"max |‖w‖ − 1| after a step: {max(rec.devs)}"
    # without the callback, one Adam step of this size leaves the sphere (the test can fail)
    torch.manual_seed(0)
    m2 = TopKSAE(16, 64, 4)
    rec2 = _Norms()
    aekit.fit(m2, sae_objective(), X, max_iter=1, batch_size=128, learning_rate=1e-2,
              callbacks=[rec2], progress=False)
    assert max(rec2.devs) > 1e-5, f"drift without normalisation: {max(rec2.devs)}"


def test_auxk_revives_dead_latents():
    X = _toy(n=4096)
    res = {}
    for alpha in (0.0, 1 / 32):
        torch.manual_seed(0)
        m = TopKSAE(16, 64, 4)
        with torch.no_grad():  # half of the latents start far below the others: dead
            m.b_enc[:32] = -1.5
        h = train_sae(m, X, auxk_alpha=alpha, k_aux=16, dead_tokens=512, max_iter=4,
                      batch_size=256, learning_rate=3e-3, b_pre_init="zeros", progress=False)
        res[alpha] = evaluate_sae(m, X).dead_fraction
        if alpha:
            assert h.records[0]["auxk_dead_fraction"] > 0.3, h.records[0]
    assert res[0.0] >= 0.1, f"the toy problem has too few dead latents without AuxK: {res}"
    assert res[1 / 32] <= 0.5 * res[0.0], f"dead fraction without / with AuxK: {res}"


def test_auxk_equals_its_formula():
    torch.manual_seed(4)
    m = TopKSAE(6, 20, 2).double()
    with torch.no_grad():
        m.tokens_since_fired[:] = 0
        m.tokens_since_fired[[1, 4, 7, 9]] = 100  # four dead latents
    term = AuxK(alpha=0.5, k_aux=3, dead_tokens=50)
    x = torch.randn(7, 6, dtype=torch.float64)
    m.eval()
    term.eval()
    out = m(x)
    v = term(m, aekit.Batch(x), out)
    a = out.preactivations[0].clone()
    dead = torch.tensor([1, 4, 7, 9])
    ad = a[:, dead]
    top = ad.topk(3, dim=1)
    zaux = torch.zeros_like(a)
    zaux.scatter_(1, dead[top.indices], top.values.relu())
    e = x - out.reconstruction
    sse = (e - zaux @ m.W_dec).pow(2).sum(1).mean()
    # Gao et al.'s normalised MSE of the residual, times the batch's variance of x
    var_e = (e - e.mean(0)).pow(2).sum(1).mean()
    var_x = (x - x.mean(0)).pow(2).sum(1).mean()
    ref = 0.5 * sse * var_x / var_e
    assert float(v.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
    raw = AuxK(alpha=0.5, k_aux=3, dead_tokens=50, normalize=False)
    assert float(raw(m, aekit.Batch(x), out).detach()) == pytest.approx(float(0.5 * sse.detach()),
                                                                   rel=1e-12)
    assert term.dead_fraction == -1.0  # eval mode does not record
    m.tokens_since_fired[:] = 0
    assert float(term(m, aekit.Batch(x), out)) == 0.0  # nothing dead: no term


def test_auxk_gradient_reaches_only_dead_latents_and_equals_dense_autograd():
    """The term's sparse backward against a dense reference, and its support: dead rows only
    (plus b_pre), none of the live latents' encoder rows, biases or atoms."""
    torch.manual_seed(5)
    m = TopKSAE(6, 20, 2).double()
    dead = torch.tensor([1, 4, 7, 9, 13])
    with torch.no_grad():
        m.tokens_since_fired[:] = 0
        m.tokens_since_fired[dead] = 100
    x = torch.randn(9, 6, dtype=torch.float64)
    m.eval()
    out = m(x)
    term = AuxK(alpha=0.5, k_aux=3, dead_tokens=50)
    term(m, aekit.Batch(x), out).backward()
    got = {n: p.grad.clone() for n, p in m.named_parameters()}
    # dense reference: the same selection, values from the dense pre-activation with autograd
    ref = {n: p.detach().clone().requires_grad_(True) for n, p in m.named_parameters()}
    a = (x - ref["b_pre"]) @ ref["W_enc"].T + ref["b_enc"]
    idx = a.detach()[:, dead].topk(3, dim=1).indices
    cols = dead[idx]
    z = torch.zeros_like(a).scatter(1, cols, a.gather(1, cols).relu())
    e = (x - out.reconstruction).detach()
    w = ref["W_dec"].detach()  # the model projects the atoms' gradient: project it here too
    sse = (e - z @ ref["W_dec"]).pow(2).sum(1).mean()
    var_e = (e - e.mean(0)).pow(2).sum(1).mean()
    var_x = (x - x.mean(0)).pow(2).sum(1).mean()
    (0.5 * sse * var_x / var_e).backward()
    g_dec = ref["W_dec"].grad
    g_dec = g_dec - (g_dec * w).sum(1, keepdim=True) / (w * w).sum(1, keepdim=True) * w
    torch.testing.assert_close(got["W_enc"], ref["W_enc"].grad)
    torch.testing.assert_close(got["b_enc"], ref["b_enc"].grad)
    torch.testing.assert_close(got["W_dec"], g_dec)
    torch.testing.assert_close(got["b_pre"], ref["b_pre"].grad)
    live = torch.ones(20, dtype=torch.bool)
    live[dead] = False
    for name in ("W_enc", "b_enc", "W_dec"):
        assert float(got[name][live].abs().max()) == 0.0, f"{name}: live latents got gradient"
        assert float(got[name][dead].abs().max()) > 0, f"{name}: no gradient on dead latents"


def test_train_sae_uses_a_sparse_code_and_restores_the_dense_one():
    torch.manual_seed(0)
    m = TopKSAE(16, 64, 4)
    x = torch.from_numpy(_toy(n=32))
    m.dense_code = False
    out = m(x)  # training mode: sparse COO code, same values as the dense one
    assert out.code.is_sparse and out.code.shape == (32, 64)
    m.dense_code = True
    torch.testing.assert_close(out.code.to_dense(), m(x).code)
    seen = []

    class Peek(Callback):
        def on_batch_end(self, loop):
            seen.append(loop.model.dense_code)

    train_sae(m, _toy(n=256), max_iter=1, batch_size=128, callbacks=[Peek()], progress=False)
    assert seen == [False, False] and m.dense_code is True, seen


# --- metrics -----------------------------------------------------------------------------------

def test_metrics_on_hand_made_cases():
    X = np.array([[0.0, 0.0], [2.0, 0.0]])
    assert fvu(X, [[0.0, 0.0], [1.0, 0.0]]) == pytest.approx(0.5)  # 1 / Σ‖x − x̄‖² = 1/2
    assert fvu(X, X) == 0.0
    assert fvu(X, [[1.0, 0.0], [1.0, 0.0]]) == pytest.approx(1.0)  # the mean: FVU 1
    Z = np.array([[1.0, 0, 2, 0], [0, 0, 0, 0], [0, 0, 3, 0]])
    assert l0(Z) == pytest.approx(1.0)
    assert dead_fraction(Z) == pytest.approx(0.5)  # latents 1 and 3
    assert dead_fraction(Z, window=1) == pytest.approx(0.5)
    assert dead_fraction(Z[1:], window=1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero variance"):
        fvu(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="window"):
        dead_fraction(Z, window=0)


def test_evaluate_sae_streams_to_the_dense_values(tmp_path):
    X = _toy(n=700)
    torch.manual_seed(0)
    m = TopKSAE(16, 48, 3).eval()
    with torch.no_grad():
        out = m(torch.from_numpy(X))
    Z, R = out.code.numpy(), out.reconstruction.numpy()
    np.save(tmp_path / "x.npy", X)
    for data in (X, str(tmp_path / "x.npy")):
        r = evaluate_sae(m, data, batch_size=128)
        assert r.fvu == pytest.approx(fvu(X, R), rel=1e-6)
        assert r.l0 == pytest.approx(l0(Z))
        assert r.dead_fraction == pytest.approx(dead_fraction(Z))
        np.testing.assert_array_equal(r.fire_counts, (Z != 0).sum(0))
    w = evaluate_sae(m, X, window=100, batch_size=64)
    assert w.n_tokens == 100 and w.dead_fraction == pytest.approx(dead_fraction(Z, 100))


def test_top_activating_examples_match_brute_force():
    X = _toy(n=900)
    torch.manual_seed(0)
    m = TopKSAE(16, 40, 3).eval()
    with torch.no_grad():
        Z = m.encode(torch.from_numpy(X)).numpy()
    ex = top_activating_examples(m, X, n_top=5, latents=[0, 7, 39], batch_size=100)
    for j, lat in enumerate([0, 7, 39]):
        col = Z[:, lat]
        order = np.argsort(-col, kind="stable")[:5]
        order = order[col[order] > 0]
        np.testing.assert_array_equal(ex.rows[j, :len(order)], order)
        np.testing.assert_allclose(ex.values[j, :len(order)], col[order], rtol=1e-6)
        assert (ex.rows[j, len(order):] == -1).all()
        assert ex.frequency[j] == pytest.approx((col > 0).mean())


# --- streaming, save/load ------------------------------------------------------------------

def test_streaming_from_a_file_equals_training_in_memory(tmp_path):
    X = _toy(n=600)
    np.save(tmp_path / "acts.npy", X)
    ws = []
    for data in (X, str(tmp_path / "acts.npy")):
        torch.manual_seed(0)
        m = TopKSAE(16, 32, 3)
        train_sae(m, data, max_iter=2, batch_size=64, dead_tokens=100, k_aux=8,
                  progress=False)
        ws.append({k: v.clone() for k, v in m.state_dict().items()})
    for k in ws[0]:
        assert torch.equal(ws[0][k], ws[1][k]), f"{k} differs between file and memory"
    src = ActivationSource(tmp_path / "acts.npy")
    assert src.lazy and len(src) == 600
    sub = src.subset([5, 3, 599])  # a token budget out of a file: rows in the order given
    assert len(sub) == 3 and sub.n_features == 16
    np.testing.assert_array_equal(sub.rows(0, 3).numpy(), X[[5, 3, 599]])
    np.testing.assert_array_equal(sub.subset([2, 0]).take(torch.tensor([1])).x.numpy(),
                                  X[[5]])
    with pytest.raises(ValueError, match=r"rows must be in \[0, 600\)"):
        src.subset([600])


def test_save_load_round_trip(tmp_path):
    X = _toy(n=512)
    sae = SparseAutoencoder(n_components=32, k=3, max_iter=2, batch_size=128,
                            dead_tokens=200).fit(X)
    assert sae.components_.shape == (32, 16)
    np.testing.assert_allclose(np.linalg.norm(sae.components_, axis=1), 1, atol=1e-6)
    p = sae.save(tmp_path / "sae.safetensors")
    sae2 = SparseAutoencoder.load(p)
    np.testing.assert_array_equal(sae.transform(X), sae2.transform(X))
    assert sae2.get_params() == sae.get_params()
    assert len(sae2.history_) == 2
    m = aekit.load(p)
    assert isinstance(m, TopKSAE) and m.config() == sae.model_.config()
    assert torch.equal(m.tokens_since_fired, sae.model_.tokens_since_fired)
    Z = sae.transform(X)
    assert ((Z != 0).sum(1) <= 3).all()
    np.testing.assert_allclose(sae.inverse_transform(Z), sae.reconstruct(X), atol=1e-5)
    assert 0 < sae.score(X) < 1


def test_registry_contract_for_topk_sae(tmp_path):
    m = make_model("topk_sae", n_features=12, n_latents=16, k=4).double()
    x = torch.rand(7, 12, dtype=torch.float64)
    out = m(x)
    assert out.code.shape == (7, 16) and out.reconstruction.shape == x.shape
    out.reconstruction.pow(2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"
    path = aekit.save_model(m.float(), tmp_path / "m.safetensors")
    m2 = aekit.load(path)
    with torch.no_grad():
        assert torch.equal(m.eval()(x.float()).reconstruction, m2(x.float()).reconstruction)


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path, capsys):
    X = _toy(n=800)
    np.save(tmp_path / "tr.npy", X[:600])
    np.save(tmp_path / "va.npy", X[600:])
    run = tmp_path / "run"
    rc = main(["sae", "train", str(tmp_path / "tr.npy"), "--expansion", "2", "-k", "3",
               "--max-iter", "2", "--batch-size", "100", "--dead-tokens", "200",
               "--val", str(tmp_path / "va.npy"), "-o", str(run), "--no-progress"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and info["n_latents"] == 32 and 0 < info["val"]["fvu"] < 1
    assert (run / "model.safetensors").exists() and (run / "history.jsonl").exists()
    assert main(["sae", "evaluate", str(run), str(tmp_path / "va.npy")]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["fvu"] == pytest.approx(info["val"]["fvu"]) and ev["l0"] <= 3
    assert main(["sae", "top-examples", str(run), str(tmp_path / "va.npy"), "--latents", "0",
                 "1", "--n-top", "4", "-o", str(tmp_path / "top.json")]) == 0
    capsys.readouterr()
    top = json.loads((tmp_path / "top.json").read_text())
    assert [e["latent"] for e in top["latents"]] == [0, 1]
    assert all(len(e["rows"]) <= 4 for e in top["latents"])
    rc = main(["sae", "report", str(run), str(tmp_path / "va.npy"), "-o",
               str(tmp_path / "r.html"), "--n-latents", "3", "--n-top", "3"])
    assert rc == 0 and "FVU" in (tmp_path / "r.html").read_text()
    capsys.readouterr()
    # an existing model is not overwritten without --force; errors exit 2 and name the flag
    assert main(["sae", "train", str(tmp_path / "tr.npy"), "--n-latents", "8", "-k", "9",
                 "-o", str(tmp_path / "r2")]) == 2
    assert "larger than the dictionary" in capsys.readouterr().err
    assert main(["sae", "train", str(tmp_path / "tr.npy"), "--n-latents", "8", "-o",
                 str(run), "-k", "2"]) == 2
    assert "--force" in capsys.readouterr().err


# --- errors ------------------------------------------------------------------------------------

def test_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"k=9 is larger than the dictionary \(n_latents=8\)"):
        TopKSAE(4, 8, 9)
    with pytest.raises(ValueError, match="k=9 is larger than the dictionary"):
        SparseAutoencoder(n_components=8, k=9).fit(np.zeros((10, 4), np.float32))
    with pytest.raises(ValueError, match="n_latents must be"):
        TopKSAE(4, 0, 1)
    X = _toy(n=300)
    X[137, 5] = np.nan
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(ValueError, match=r"bad\.npy has a non-finite value .* in row 137"):
        train_sae(TopKSAE(16, 32, 2), str(tmp_path / "bad.npy"), progress=False)
    with pytest.raises(ValueError, match=r"in row 137"):
        SparseAutoencoder(n_components=32, k=2).fit(X)
    np.save(tmp_path / "narrow.npy", _toy(n=50)[:, :5])
    with pytest.raises(ValueError, match="width 5, the model expects 16 features"):
        train_sae(TopKSAE(16, 32, 2), str(tmp_path / "narrow.npy"))
    with pytest.raises(ValueError, match="the model expects 16"):
        evaluate_sae(TopKSAE(16, 32, 2), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="term 'auxk' needs a TopKSAE"):
        aekit.fit(aekit.DenseAE([4, 2]), aekit.Objective("mse", [AuxK()]),
                  np.zeros((8, 4), np.float32), progress=False)
    with pytest.raises(ValueError, match="alpha"):
        AuxK(alpha=-1.0)
    with pytest.raises(ValueError, match="latents must be indices"):
        top_activating_examples(TopKSAE(16, 32, 2), _toy(n=20), latents=[32])
    with pytest.raises(ValueError, match="b_pre_init"):
        SparseAutoencoder(n_components=8, k=2, b_pre_init="median").fit(_toy(n=20))
    with pytest.raises(FileNotFoundError):
        ActivationSource(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match=r"\.npy file"):
        ActivationSource(tmp_path / "acts.csv")


def test_unit_norm_callback_is_stateless():
    assert UnitNormDecoder().state_dict() == {}


# --- initialisation and resampling (issue 23, dead latents) ------------------------------------

def test_init_atoms_from_data_are_centred_normalised_rows():
    X = torch.from_numpy(_toy(n=200))
    torch.manual_seed(0)
    m = TopKSAE(16, 64, 4)
    m.init_from_data(X, method="mean")
    m.init_atoms_from_data_(X, generator=torch.Generator().manual_seed(3))
    V = (X - m.b_pre.detach()) / (X - m.b_pre.detach()).norm(dim=1, keepdim=True)
    cos = m.W_dec.detach() @ V.T  # (64, 200): each atom equals one normalised row
    best, which = cos.max(1)
    assert float((best - 1).abs().max()) < 1e-5, f"atom vs its row: {float(best.min())}"
    assert len(set(which.tolist())) == 64, "rows drawn without replacement when n >= L"
    assert torch.equal(m.W_enc, m.W_dec), "encoder = decoderᵀ after the data init"
    with pytest.raises(ValueError, match=r"shape \(n >= 1, 16\)"):
        m.init_atoms_from_data_(X[:, :3])


def test_rescale_encoder_least_squares_is_the_best_scale_and_scales_the_code_exactly():
    X = torch.from_numpy(_toy(n=512))
    torch.manual_seed(1)
    m = TopKSAE(16, 64, 4).double()
    X = X.double()
    m.init_from_data(X)
    with torch.no_grad():
        m.b_enc.uniform_(-0.1, 0.1)
    m.eval()
    z1 = m(X).code
    m.train()
    W0, b0 = m.W_enc.detach().clone(), m.b_enc.detach().clone()
    s = m.rescale_encoder_(X)
    assert torch.allclose(m.W_enc, s * W0) and torch.allclose(m.b_enc, s * b0)
    m.eval()
    out = m(X)
    assert torch.allclose(out.code, s * z1, atol=1e-12), "z(s) = s z(1): same selection"

    def sse(t):
        with torch.no_grad():
            return float((X - (t / s) * (out.reconstruction - m.b_pre) - m.b_pre).pow(2).sum())
    grid = [s * f for f in np.linspace(0.5, 1.5, 101)]
    errs = [sse(t) for t in grid]
    assert abs(grid[int(np.argmin(errs))] - s) <= 0.006 * s, \
        f"closed-form s = {s:.5f}, brute-force argmin {grid[int(np.argmin(errs))]:.5f}"
    assert m.tokens_since_fired.sum() == 0, "fitting the scale counted no firings"


def test_rescale_encoder_unit_inputs_gives_unit_norm_reconstructions():
    torch.manual_seed(2)
    m = TopKSAE(16, 64, 4)
    with torch.no_grad():
        m.b_pre.normal_()
    s = m.rescale_encoder_(generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same probes
    u = torch.randn(256, 16, generator=g)
    u = u / u.norm(dim=1, keepdim=True)
    m.eval()
    with torch.no_grad():
        rn = float((m(u + m.b_pre).reconstruction - m.b_pre).norm(dim=1).mean())
    assert abs(rn - 1) < 1e-5, f"mean reconstruction norm of unit inputs {rn} (s = {s})"


def _loss_known_model():
    """d = 8; data in dims 0-3. 4 alive latents read dims 4-7 only (norm 2, bias −10): every
    code is 0, so x̂ = b_pre = 0 and the loss of a row is ‖x‖². Latents 4-63 are dead."""
    m = TopKSAE(8, 64, 2)
    with torch.no_grad():
        m.b_pre.zero_()
        m.W_enc.zero_()
        m.W_enc[:4, 4:] = 2 * torch.eye(4)
        m.b_enc.fill_(-10.0)
        m.tokens_since_fired[4:] = 10_000
    return m


def test_resample_dead_latents_definition():
    from aekit.sae.train import ResampleDeadLatents

    g = torch.Generator().manual_seed(0)
    small = torch.zeros(2000, 8)
    small[:, :4] = torch.randn(2000, 4, generator=g)
    small[:, :4] /= small[:, :4].norm(dim=1, keepdim=True)           # loss 1
    big = 3 * small.clone()                                            # loss 9
    big[:, 1] *= -1
    X = torch.cat([small, big])
    m = _loss_known_model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.train()
    out = m(X[:64])
    out.reconstruction.sum().backward()  # give Adam a state to reset
    with torch.no_grad():
        m.W_enc.grad = torch.ones_like(m.W_enc)
        m.W_dec.grad = torch.ones_like(m.W_dec)
        m.b_enc.grad = torch.ones_like(m.b_enc)
    opt.step()
    m.tokens_since_fired[4:] = 10_000
    before = {k: v.detach().clone() for k, v in m.state_dict().items()}
    rs = ResampleDeadLatents([1], window=5000, n_candidates=4000, encoder_scale=0.2,
                             random_state=0)
    n = rs.resample(m, ActivationSource(X.numpy()), opt)
    assert n == 60
    dead = torch.arange(4, 64)
    for key in ("W_dec", "W_enc", "b_enc"):
        assert torch.equal(m.state_dict()[key][:4], before[key][:4]), f"alive {key} moved"
    V = m.W_dec.detach()[dead]
    assert float((V.norm(dim=1) - 1).abs().max()) < 1e-6
    cos = V @ (X / X.norm(dim=1, keepdim=True)).T
    assert float((cos.max(1).values - 1).abs().max()) < 1e-5, "each atom is a normalised row"
    alive_norm = float(before["W_enc"][:4].norm(dim=1).mean())  # 2
    assert torch.allclose(m.W_enc.detach()[dead], 0.2 * alive_norm * V, atol=1e-6)
    assert float(m.b_enc.detach()[dead].abs().max()) == 0
    assert int(m.tokens_since_fired[dead].max()) == 0
    for p in (m.W_dec, m.W_enc, m.b_enc):
        st = opt.state[p]
        assert float(st["exp_avg"][dead].abs().max()) == 0
        assert float(st["exp_avg_sq"][dead].abs().max()) == 0
        assert float(st["exp_avg_sq"][:4].abs().min()) > 0, "alive rows keep Adam's state"
    # p ∝ loss²: big rows (loss 9) are drawn with probability 81/82 = 0.988 (0.9 if ∝ loss)
    picked_big = 0
    for v in V:
        j = int((X / X.norm(dim=1, keepdim=True) @ v).argmax())
        picked_big += j >= 2000
    assert picked_big >= 57, f"{picked_big}/60 resampled latents at loss-9 rows (expected ~59)"
    st = rs.state_dict()
    rs2 = ResampleDeadLatents([1], window=5000, random_state=9)
    rs2.load_state_dict(st)
    assert torch.equal(rs2.generator.get_state(), rs.generator.get_state())


def test_resampling_in_train_sae_leaves_fewer_dead_latents_and_errors_name_the_argument():
    X = _toy(n=2048)
    res = {}
    for steps in ((), (8, 16)):
        torch.manual_seed(0)
        m = TopKSAE(16, 64, 4)
        with torch.no_grad():
            m.b_enc[:32] = -1.5
        train_sae(m, X, auxk_alpha=0.0, dead_tokens=512, max_iter=3, batch_size=256,
                  learning_rate=3e-3, b_pre_init="zeros", resample_steps=steps,
                  resample_encoder_scale=1.0, progress=False)
        res[steps] = evaluate_sae(m, X).dead_fraction
    assert res[()] >= 0.2, f"too few dead latents without resampling: {res}"
    assert res[(8, 16)] <= 0.5 * res[()], f"dead fraction without / with resampling: {res}"
    for kw, msg in ((dict(resample_steps=[0]), "resample_steps"),
                    (dict(resample_steps=[4], resample_encoder_scale=0.0),
                     "resample_encoder_scale"),
                    (dict(atom_init="pca"), "atom_init"),
                    (dict(encoder_scale="big"), "encoder_scale")):
        with pytest.raises(ValueError, match=msg):
            train_sae(TopKSAE(16, 32, 2), X[:64], progress=False, **kw)


def test_cli_and_estimator_pass_the_init_and_resampling_options(tmp_path, capsys):
    from aekit import load

    X = _toy(n=600)
    np.save(tmp_path / "tr.npy", X)
    kw = dict(auxk_alpha=1 / 32, k_aux=512, dead_tokens=200, max_iter=1, batch_size=100,
              atom_init="data", encoder_scale="unit_inputs", random_state=0, progress=False)
    torch.manual_seed(0)
    ref = TopKSAE(16, 32, 3)
    train_sae(ref, X, resample_steps=[3], **kw)
    assert main(["sae", "train", str(tmp_path / "tr.npy"), "--n-latents", "32", "-k", "3",
                 "--max-iter", "1", "--batch-size", "100", "--dead-tokens", "200",
                 "--atom-init", "data", "--encoder-scale", "unit_inputs",
                 "--resample-steps", "3", "-o", str(tmp_path / "run"), "--no-progress"]) == 0
    capsys.readouterr()
    cli = load(tmp_path / "run" / "model.safetensors")
    for key, v in ref.state_dict().items():
        assert torch.equal(cli.state_dict()[key], v), f"CLI model differs in {key}"
    est = SparseAutoencoder(n_components=32, k=3, dead_tokens=200, max_iter=1,
                            batch_size=100, atom_init="data",
                            encoder_scale="unit_inputs").fit(X)
    torch.manual_seed(0)
    ref2 = TopKSAE(16, 32, 3)
    train_sae(ref2, X, **kw)
    assert np.array_equal(est.components_, ref2.W_dec.detach().numpy())
