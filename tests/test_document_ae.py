"""Document autoencoder options (issue 22): the count (replicated-softmax) loss against its
definition and its gradient, word dropout, validation-score epoch selection, code centring,
and every error naming its argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aekit.retrieval.semantic import (
    DOC_LOSSES,
    CountNLL,
    SelectOnValidation,
    encode_documents,
    fit_document_ae,
    pretrain_document_layers,
)


def _counts(n=40, v=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.poisson(1.0, (n, v)) + (rng.random((n, v)) < 0.1) * 5).astype(np.float32)


def test_count_nll_equals_its_definition_and_weights_by_length():
    c = torch.tensor([[2.0, 0.0, 1.0], [0.0, 4.0, 2.0]])
    s = torch.tensor([[0.1, 0.5, -0.3], [1.0, 2.0, 3.0]])
    q = torch.softmax(s, 1)
    got = CountNLL(scale=2.0)(c, s)
    want = [-(2 * math.log(q[0, 0]) + 1 * math.log(q[0, 2])) / 2,
            -(4 * math.log(q[1, 1]) + 2 * math.log(q[1, 2])) / 2]
    assert got.tolist() == pytest.approx(want, rel=1e-6), (got.tolist(), want)
    # = (N_i / s) x the per-distribution loss
    from aekit.objectives.multinomial import multinomial_nll

    ratio = (got / multinomial_nll(c, s)).tolist()
    assert ratio == pytest.approx([3 / 2, 6 / 2], rel=1e-6), ratio


def test_count_nll_gradient_closed_form_and_finite_differences():
    g = torch.Generator().manual_seed(0)
    c = torch.poisson(torch.full((3, 5), 1.5), generator=g).double()
    s = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    loss = CountNLL(scale=3.0)
    loss(c, s).sum().backward()
    closed = (c.sum(1, keepdim=True) * torch.softmax(s.detach(), 1) - c) / 3.0
    assert torch.allclose(s.grad, closed, atol=1e-12), (s.grad - closed).abs().max()
    ok = torch.autograd.gradcheck(lambda z: loss(c, z), (s.detach().requires_grad_(True),))
    assert ok


def test_fit_document_ae_counts_loss_uses_mean_length_scale():
    C = _counts()
    m, h = fit_document_ae(C, 3, hidden=(6,), max_iter=2, loss="counts", val=C[:8],
                           early_stopping=None)
    # the logged val loss is the count NLL / mean training length, recomputed here
    s = float(C.sum(1).mean())
    with torch.no_grad():
        out = m(torch.from_numpy(C[:8]))
        want = float(CountNLL(s)(torch.from_numpy(C[:8]), out).mean())
    assert h[-1]["val_loss"] == pytest.approx(want, rel=1e-5), (h[-1]["val_loss"], want)


def test_word_dropout_changes_training_and_zero_equals_off():
    C = _counts()
    a, _ = fit_document_ae(C, 3, hidden=(6,), max_iter=2, random_state=1)
    b, _ = fit_document_ae(C, 3, hidden=(6,), max_iter=2, random_state=1, word_dropout=0.0)
    d, _ = fit_document_ae(C, 3, hidden=(6,), max_iter=2, random_state=1, word_dropout=0.5)
    pa, pb, pd = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, d))
    assert torch.equal(pa, pb)
    assert (pa - pd).abs().max() > 1e-4, float((pa - pd).abs().max())


def test_select_on_validation_returns_the_best_scored_epoch():
    C = _counts()
    scores = iter([1.0, 3.0, 2.0, 0.5])
    seen = []

    def score(model):
        assert not model.training
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    m, h = fit_document_ae(C, 3, hidden=(6,), max_iter=4, val=C[:8], select=score,
                           early_stopping=None)
    assert [r["val_select"] for r in h] == [1.0, 3.0, 2.0, 0.5], h
    got = m.state_dict()
    assert all(torch.equal(got[k], seen[1][k]) for k in got), "not the epoch-2 weights"
    assert not all(torch.equal(got[k], seen[3][k]) for k in got)


def test_select_patience_stops_training():
    C = _counts()
    scores = iter([2.0, 1.0, 1.5, 9.0, 9.0])
    _m, h = fit_document_ae(C, 3, hidden=(6,), max_iter=5, val=C[:8],
                           select=lambda model: next(scores), early_stopping=2)
    assert len(h) == 3, [r["val_select"] for r in h]


def test_pretrain_with_counts_loss_differs_from_distribution():
    C = _counts()
    a = pretrain_document_layers(C, (6, 4), max_iter=1, learning_rate=1e-2)
    b = pretrain_document_layers(C, (6, 4), max_iter=1, learning_rate=1e-2, loss="counts")
    diff = float((a[0][0].weight - b[0][0].weight).detach().abs().max())
    assert diff > 1e-5, diff


def test_document_option_errors_name_their_argument():
    C = _counts()
    assert DOC_LOSSES == ("distribution", "counts")
    with pytest.raises(ValueError, match="loss must be one of"):
        fit_document_ae(C, 3, hidden=(6,), max_iter=1, loss="poisson")
    with pytest.raises(ValueError, match="loss must be one of"):
        pretrain_document_layers(C, (6,), max_iter=1, loss="mse")
    for bad in (-0.1, 1.0, True, "0.2"):
        with pytest.raises(ValueError, match="word_dropout must be"):
            fit_document_ae(C, 3, hidden=(6,), max_iter=1, word_dropout=bad)
    with pytest.raises(ValueError, match="select must be a callable"):
        fit_document_ae(C, 3, hidden=(6,), max_iter=1, select=0.5)
    with pytest.raises(ValueError, match="early_stopping"):
        SelectOnValidation(lambda m: 0.0, patience=0)
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="scale must be"):
            CountNLL(bad)
    with pytest.raises(ValueError, match="select returned nan"):
        fit_document_ae(C, 3, hidden=(6,), max_iter=1, val=C[:8],
                        select=lambda m: float("nan"))


def test_encode_documents_centred():
    C = _counts()
    m, _ = fit_document_ae(C, 3, hidden=(6,), max_iter=1)
    Z = encode_documents(m, C)
    mu = Z.mean(0)
    Zc = encode_documents(m, C, center=mu)
    assert np.allclose(Zc, Z - mu, atol=1e-6), np.abs(Zc - (Z - mu)).max()
    with pytest.raises(ValueError, match="center must have shape"):
        encode_documents(m, C, center=np.zeros(4))


def test_document_ae_input_features_definition_and_save_load(tmp_path):
    from aekit.models import DocumentAE
    from aekit.train import load, save_model

    c = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    w = torch.tensor([1.0, 2.0, 3.0, 0.5])
    m = DocumentAE([4, 3, 2], input_norm="l2", input_scale=5.0, weighted_input=True)
    m.set_input_weights(w)
    h = m.input_features(c)
    u = w * torch.log1p(c[0])
    want = 5.0 * u / u.norm()
    assert torch.allclose(h[0], want, atol=1e-6), (h[0], want)
    assert float(h[0].norm()) == pytest.approx(5.0, rel=1e-6)
    assert torch.equal(h[1], torch.zeros(4))  # empty document stays 0
    plain = DocumentAE([4, 3, 2])
    assert torch.equal(plain.input_features(c), torch.log1p(c))
    save_model(m, tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    assert torch.equal(back.input_weights, w) and back.config() == m.config()
    x = torch.rand(3, 4) * 3
    m.eval()
    assert torch.allclose(back(x).logits, m(x).logits)


def test_fit_document_ae_tfidf_input_end_to_end():
    C = _counts()
    idf = np.log((1 + len(C)) / (1 + (C > 0).sum(0))) + 1
    m, _h = fit_document_ae(C, 3, hidden=(6,), max_iter=1, pretrain_max_iter=1,
                           input_norm="l2", input_weights=idf)
    assert m.input_norm == "l2" and np.allclose(m.input_weights.numpy(), idf, atol=1e-6)
    assert np.isfinite(encode_documents(m, C)).all()


def test_document_ae_input_errors():
    from aekit.models import DocumentAE

    with pytest.raises(ValueError, match="input_norm must be one of"):
        DocumentAE([4, 2], input_norm="l1")
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="input_scale must be"):
            DocumentAE([4, 2], input_scale=bad)
    with pytest.raises(ValueError, match="weighted_input must be"):
        DocumentAE([4, 2], weighted_input=1)
    with pytest.raises(ValueError, match="needs a DocumentAE built with weighted_input=True"):
        DocumentAE([4, 2]).set_input_weights(np.ones(4))
    m = DocumentAE([4, 2], weighted_input=True)
    for bad in (np.ones(3), np.array([1, 2, -1, 0]), np.array([1, np.nan, 1, 1])):
        with pytest.raises(ValueError, match="input weights must be 4 finite values >= 0"):
            m.set_input_weights(bad)
