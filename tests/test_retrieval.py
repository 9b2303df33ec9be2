"""Retrieval: metrics on hand-made rankings, text loading from the archives, the document
AE and multinomial loss, NCA against its definition, baselines, the semantic index and the
``aekit index`` CLI, and every error."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from aekit.data import data_dir
from aekit.retrieval.baselines import ITQ, LSA, LSH, PCASign
from aekit.retrieval.knn import knn_classify, knn_error, top_k
from aekit.retrieval.metrics import (
    average_precision,
    evaluate_retrieval,
    precision_at_k,
    precision_at_recall,
    relevance,
    similarities,
)
from aekit.retrieval.text import BagOfWords, log_counts, tfidf, word_distribution


# ------------------------------------------------------------------------------ metrics
def test_metrics_on_a_hand_made_ranking():
    # relevant at ranks 1, 3, 6 out of 6; R = 3
    rel = np.array([[1, 0, 1, 0, 0, 1]], bool)
    ap = average_precision(rel)[0]
    assert ap == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3), ap
    pk = precision_at_k(rel, ks=(1, 2, 3, 6))[0]
    assert pk.tolist() == pytest.approx([1, 0.5, 2 / 3, 0.5]), pk
    # recall 0.001 -> t = 1 -> rank 1; 0.5 -> t = 2 -> rank 3; 1.0 -> t = 3 -> rank 6
    pr = precision_at_recall(rel, (0.001, 0.5, 1.0))[0]
    assert pr.tolist() == pytest.approx([1.0, 2 / 3, 0.5]), pr


def test_metrics_skip_queries_without_relevant_items():
    rel = np.array([[0, 0, 0], [0, 1, 0]], bool)
    assert np.isnan(average_precision(rel)[0]) and average_precision(rel)[1] == 0.5
    assert np.isnan(precision_at_recall(rel, (0.5,))[0, 0])


def test_evaluate_retrieval_excludes_self_and_matches_manual():
    # four items in 1-D; classes 0 0 1 1; cosine on 2-D vectors
    X = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.2, 0.8]], np.float32)
    y = np.array([0, 0, 1, 1])
    s = evaluate_retrieval(X, X, y, y, exclude_self=True, recall_levels=(1.0,), ks=(1,))
    # every item's nearest other item is its class mate: perfect ranking
    assert s.mean_average_precision == pytest.approx(1.0), s
    assert s.precision_at_k[1] == 1.0 and s.precision_at_recall[1.0] == 1.0
    assert s.n_queries_used == 4


def test_hamming_ranking_ties_keep_database_order():
    B = np.array([[0, 0], [0, 1], [0, 1], [1, 1]], bool)
    y = np.array([0, 1, 0, 1])
    s = evaluate_retrieval(B[:1], B, y[:1], y, metric="hamming", ks=(2,))
    # query 0 ranks [0 (d0), 1 (d1), 2 (d1), 3 (d2)] -> relevant at ranks 1 and 3
    assert s.mean_average_precision == pytest.approx((1 + 2 / 3) / 2)


def test_multilabel_relevance_shares_a_label():
    Yq = np.array([[1, 0, 0], [0, 1, 1]], bool)
    Yd = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]], bool)
    assert relevance(Yq, Yd).tolist() == [[True, False, False], [True, True, False]]


def test_similarities_definitions():
    Q = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    D = np.array([[6.0, 8.0], [1.0, 0.0]], np.float32)
    assert similarities(Q, D, "cosine")[0].tolist() == pytest.approx([1.0, 0.6])
    assert similarities(Q, D, "cosine")[1].tolist() == [0.0, 0.0]
    assert similarities(Q, D, "euclidean")[0].tolist() == pytest.approx([-25.0, -20.0])


def test_metric_errors_name_their_argument():
    with pytest.raises(ValueError, match="recall levels"):
        precision_at_recall(np.ones((1, 3), bool), (0.0,))
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(np.ones((1, 3), bool), (4,))
    with pytest.raises(ValueError, match="labels must both be"):
        relevance(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="metric must be"):
        similarities(np.zeros((1, 2)), np.zeros((1, 2)), "manhattan")
    with pytest.raises(ValueError, match="no query has a relevant item"):
        evaluate_retrieval(np.eye(2), np.eye(2), np.array([0, 1]), np.array([2, 3]), ks=(1,))


def test_top_k_and_knn_against_brute_force():
    rng = np.random.default_rng(0)
    D, Q = rng.standard_normal((200, 5)), rng.standard_normal((7, 5))
    ids, _ = top_k(Q, D, 4, "euclidean")
    ref = np.argsort(((Q[:, None] - D[None]) ** 2).sum(-1), axis=1)[:, :4]
    assert (ids == ref).all()
    y = (D[:, 0] > 0).astype(int)
    pred = knn_classify(D, y, Q, k=1)
    assert (pred == y[ref[:, 0]]).all()
    assert knn_error(D, y, D, y, k=1) == 0.0


# -------------------------------------------------------------------------------- text
def test_bag_of_words_and_representations():
    docs = ["the cat sat on the mat cat", "dogs chase cats", "a mat a mat"]
    bow = BagOfWords(4, strip_headers=False).fit(docs)
    C = bow.transform(docs)
    assert C.shape == (3, 4) and "the" not in bow.vocabulary_  # stop words removed
    assert C[0, bow.vocabulary_.index("cat")] == 2
    P = word_distribution(C)
    assert np.allclose(P.sum(1), 1)
    assert np.allclose(log_counts(C), np.log1p(C.toarray()))
    T = tfidf(C, bow.idf_)
    from sklearn.feature_extraction.text import TfidfTransformer

    ref = TfidfTransformer().fit(C).transform(C).toarray()
    assert np.allclose(T.toarray(), ref, atol=1e-6), np.abs(T.toarray() - ref).max()


def test_empty_and_unknown_documents_are_refused_clearly():
    bow = BagOfWords(10, strip_headers=False).fit(["alpha beta gamma", "beta delta"])
    with pytest.raises(ValueError, match="document 1 is empty"):
        bow.transform(["alpha", "   "])
    with pytest.raises(ValueError, match="document 0 has no word of the 4-word vocabulary"):
        bow.transform(["zzz qqq"])
    assert bow.transform(["zzz"], empty="keep").nnz == 0
    with pytest.raises(ValueError, match="texts hold no words"):
        BagOfWords(5).fit(["the a of", ""])
    with pytest.raises(ValueError, match="texts must be a sequence"):
        bow.transform("alpha")
    with pytest.raises(ValueError, match="no words"):
        word_distribution(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="n_words"):
        BagOfWords(0)


@pytest.fixture(scope="module")
def reuters_path():
    p = data_dir() / "reuters21578.tar.gz"
    if not p.exists():
        pytest.skip(f"Reuters-21578 not found at {p} (set AEKIT_DATA to its folder)")
    return p


def test_reuters_modapte_counts_from_the_archive(reuters_path):
    from aekit.retrieval.text import load_reuters

    texts, Y, names = load_reuters("test", reuters_path)
    # ModApte test documents with at least one topic (Lewis's README: 3,019)
    assert len(texts) == 3019 and Y.shape == (3019, len(names)), (len(texts), Y.shape)
    assert Y.any(1).all() and "earn" in names
    _, Yall, _ = load_reuters("test", reuters_path, min_topics=0)
    assert Yall.shape[0] == 3299, Yall.shape


def test_reuters_errors(tmp_path):
    from aekit.retrieval.text import load_reuters

    with pytest.raises(ValueError, match="subset"):
        load_reuters("dev", tmp_path)
    with pytest.raises(FileNotFoundError, match="AEKIT_DATA"):
        load_reuters("train", tmp_path)
    import tarfile

    bad = tmp_path / "reuters21578.tar.gz"
    with tarfile.open(bad, "w:gz") as t:
        f = tmp_path / "x.txt"
        f.write_text("hi")
        t.add(f, arcname="x.txt")
    with pytest.raises(ValueError, match="no .sgm files"):
        load_reuters("train", bad)


# ------------------------------------------------------------------ model, loss, NCA
def test_multinomial_loss_equals_its_definition():
    from aekit.objectives.multinomial import multinomial_nll

    c = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    s = torch.tensor([[0.1, 0.5, -0.3], [1.0, 2.0, 3.0]])
    q = torch.softmax(s, 1)
    want0 = -(2 / 3 * math.log(q[0, 0]) + 1 / 3 * math.log(q[0, 2]))
    got = multinomial_nll(c, s)
    assert got[0].item() == pytest.approx(want0, rel=1e-6) and got[1].item() == 0.0


def test_document_ae_contract_and_binarisation():
    from aekit.models import MODELS

    m = MODELS["document"]([30, 12, 6], code_activation="sigmoid", binarize="ste")
    x = torch.poisson(torch.full((5, 30), 0.5))
    m.train()
    out = m(x)
    assert out.code.shape == (5, 6) and set(out.code.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(out.reconstruction.sum(1), torch.ones(5))
    from aekit.objectives.multinomial import multinomial_nll

    multinomial_nll(x, out).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    m.eval()
    assert ((m(x).code > 0) & (m(x).code < 1)).all()  # eval: σ(a), no threshold


def test_document_ae_save_load(tmp_path):
    from aekit.models import DocumentAE
    from aekit.train import load, save_model

    m = DocumentAE([20, 8, 3], code_activation="sigmoid", binarize="noise", code_noise=2.0)
    save_model(m, tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    x = torch.rand(4, 20)
    m.eval()
    back.eval()
    assert torch.equal(m(x).logits, back(x).logits) and back.config() == m.config()


def test_document_ae_errors():
    from aekit.models import DocumentAE

    with pytest.raises(ValueError, match="binarize='noise' needs code_activation='sigmoid'"):
        DocumentAE([10, 3], binarize="noise")
    with pytest.raises(ValueError, match="binarize must be"):
        DocumentAE([10, 3], code_activation="sigmoid", binarize="round")
    with pytest.raises(ValueError, match="sizes"):
        DocumentAE([10])


def test_nca_loss_equals_the_definition():
    from aekit.objectives.nca import nca_loss

    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    want = 0.0
    for i in range(7):
        w = torch.tensor([math.exp(-float(((z[i] - z[j]) ** 2).sum())) if j != i else 0.0
                          for j in range(7)], dtype=torch.float64)
        p = w / w.sum()
        want += float(sum(p[j] for j in range(7) if y[j] == y[i] and j != i))
    assert nca_loss(z, y).item() == pytest.approx(-want / 7, rel=1e-10)


def test_nca_term_trains_through_fit_and_needs_labels():
    from aekit import DenseAE
    from aekit.objectives import TERMS, Objective
    from aekit.train import fit

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = (rng.standard_normal((300, 10)) + 2 * np.eye(10)[y]).astype(np.float32)
    m = DenseAE([10, 2])
    term = TERMS["nca"](lam=1.0)
    obj = Objective(None, [term])
    before = obj(m, __import__("aekit").data.Batch(torch.from_numpy(X), None,
                                                     torch.from_numpy(y)))[0].item()
    h = fit(m, obj, (X, y.astype(np.int64)), max_iter=15, batch_size=100, learning_rate=1e-2,
            progress=False, handle_signals=False)
    after = h.records[-1]["train_loss"]
    assert after < before - 0.1, (before, after)
    with pytest.raises(ValueError, match="needs class labels"):
        obj(m, torch.from_numpy(X))


# ----------------------------------------------------------------------------- baselines
def test_baselines_shapes_and_itq_loss_decreases():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)).astype(np.float32) @ rng.standard_normal((12, 12))
    for est in (LSH(8), PCASign(8), ITQ(8, n_iter=20)):
        B = est.fit(X).transform(X)
        assert B.shape == (300, 8) and B.dtype == bool
    itq = ITQ(8, n_iter=20).fit(X)
    assert itq.loss_[-1] <= itq.loss_[0], itq.loss_
    assert np.allclose(itq.R_ @ itq.R_.T, np.eye(8), atol=1e-5)
    Z = LSA(3).fit(np.abs(X)).transform(np.abs(X))
    assert Z.shape == (300, 3)
    with pytest.raises(ValueError, match="n_bits=20 exceeds"):
        PCASign(20).fit(X)


# ------------------------------------------------------------------ semantic index + CLI
@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    """A semantic index of 60 two-topic documents, trained once for the module."""
    return _tiny_index(tmp_path_factory.mktemp("idx"))


def _tiny_index(tmp_path):
    from aekit.retrieval.semantic import SemanticIndex, fit_document_ae

    rng = np.random.default_rng(0)
    topics = [["oil", "opec", "crude", "barrel"], ["wheat", "grain", "corn", "harvest"]]
    texts, labels = [], []
    for i in range(60):
        t = topics[i % 2]
        texts.append(" ".join(rng.choice(t, 8)) + " market")
        labels.append(["energy", "farm"][i % 2])
    bow = BagOfWords(20, strip_headers=False).fit(texts)
    C = bow.transform(texts)
    model, _ = fit_document_ae(C, 8, hidden=(16,), code_activation="sigmoid",
                               binarize="noise", max_iter=3, early_stopping=None)
    idx = SemanticIndex.build(bow, model, C, labels, [t[:20] for t in texts])
    idx.save(tmp_path / "idx")
    return idx, tmp_path / "idx"


def test_semantic_index_roundtrip_and_queries(tiny_index):
    from aekit.retrieval.semantic import SemanticIndex

    idx, where = tiny_index
    back = SemanticIndex.load(where)
    q = back.query_text("opec crude oil barrel", radius=8, k=5)
    assert q and q == idx.query_text("opec crude oil barrel", radius=8, k=5)
    assert all(n.cosine is not None for n in q)
    assert [n.cosine for n in q] == sorted((n.cosine for n in q), reverse=True)
    ids = [n.id for n in back.query_id(3, radius=8, k=60)]
    assert 3 not in ids
    with pytest.raises(ValueError, match="query text is empty"):
        back.query_text("  ")
    with pytest.raises(ValueError, match="no word of the index's"):
        back.query_text("zebra xylophone")
    with pytest.raises(ValueError, match="id must be"):
        back.query_id(60)


def test_semantic_index_refuses_corrupt_or_foreign_files(tiny_index, tmp_path):
    import shutil

    from aekit.io import FileFormatError
    from aekit.retrieval.semantic import SemanticIndex

    d = tmp_path / "copy"
    shutil.copytree(tiny_index[1], d)
    data = bytearray((d / "index.safetensors").read_bytes())
    data[-2] ^= 0xFF
    (d / "index.safetensors").write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="corrupt"):
        SemanticIndex.load(d)
    (d / "index.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(FileFormatError, match="not an aekit semantic index"):
        SemanticIndex.load(d)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SemanticIndex.load(tmp_path / "nope")


def test_cli_index_errors(tiny_index, tmp_path, capsys):
    from aekit.cli import main

    d = str(tiny_index[1])
    assert main(["index", "query", d, "--text", "wheat grain corn", "-k", "3",
                 "--radius", "8", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and json.loads(lines[0])["label"] in ("energy", "farm")
    assert main(["index", "info", d]) == 0
    assert json.loads(capsys.readouterr().out)["n_documents"] == 60
    assert main(["index", "query", d, "--text", "qqq zzz"]) == 2
    assert "--text: query text has no word" in capsys.readouterr().err
    assert main(["index", "query", d, "--file", str(tmp_path / "missing.txt")]) == 2
    assert "--file" in capsys.readouterr().err
    assert main(["index", "query", d, "--id", "1", "--radius", "-1"]) == 2
    assert "--radius" in capsys.readouterr().err
    assert main(["index", "info", str(tmp_path / "nope")]) == 2
    assert main(["index", "build", d, "--corpus", "reuters"]) == 2
    assert "not empty" in capsys.readouterr().err
    for bad in ("0", "-1e-3", "nan"):
        assert main(["index", "build", str(tmp_path / "new"), "--corpus", "reuters",
                     f"--learning-rate={bad}"]) == 2
        err = capsys.readouterr().err
        assert "--learning-rate must be > 0" in err, (bad, err)


def test_document_ae_old_keywords_warn_and_train_the_same():
    """issue 16: epochs/lr/seed/pretrain_epochs -> max_iter/learning_rate/random_state/
    pretrain_max_iter, with a FutureWarning naming the new name; the same weights."""
    import warnings

    from aekit.retrieval.semantic import fit_document_ae, pretrain_document_layers

    rng = np.random.default_rng(0)
    C = rng.poisson(1.0, (40, 12)).astype(np.float32) + 1
    a = pretrain_document_layers(C, (6, 4), max_iter=1, learning_rate=1e-2, random_state=2)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        b = pretrain_document_layers(C, (6, 4), epochs=1, lr=1e-2, seed=2)
    msgs = " | ".join(str(w.message) for w in rec if issubclass(w.category, FutureWarning))
    for old, new in (("epochs", "max_iter"), ("lr", "learning_rate"), ("seed", "random_state")):
        assert f"'{old}' is renamed '{new}'" in msgs, (old, msgs)
    for (ea, _), (eb, _) in zip(a, b):
        assert torch.equal(ea.weight, eb.weight)
    m1, _ = fit_document_ae(C, 3, hidden=(6,), max_iter=1, pretrain_max_iter=1, random_state=1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m2, _ = fit_document_ae(C, 3, hidden=(6,), epochs=1, pretrain_epochs=1, seed=1)
    msgs = " | ".join(str(w.message) for w in rec if issubclass(w.category, FutureWarning))
    assert "'pretrain_epochs' is renamed 'pretrain_max_iter'" in msgs, msgs
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="pass 'max_iter' only"):
        fit_document_ae(C, 3, epochs=1, max_iter=2)


def test_index_build_old_flags_warn():
    from aekit.cli import _parser

    for old, dest in (("--epochs", "max_iter"), ("--pretrain-epochs", "pretrain_max_iter"),
                      ("--seed", "random_state")):
        with pytest.warns(FutureWarning, match=f"'{old}' is renamed"):
            ns = _parser().parse_args(["index", "build", "d", "--corpus", "20news", old, "5"])
        assert getattr(ns, dest) == 5, (old, vars(ns))


# ------------------------------------------------------------------ binary-code AE (ITQ start)
def test_binary_code_ae_starts_at_the_itq_codes(blobs):
    from aekit.retrieval.binary_ae import BinaryCodeAE

    X, _ = blobs(400)
    itq = ITQ(8).fit(X)
    m = BinaryCodeAE(20, 8, hidden=16).init_from_itq(itq, X)
    B = m.codes(X)
    mism = int((B != itq.transform(X)).sum())
    assert mism == 0, f"{mism} bits differ from ITQ's codes at the start"
    # encode is σ(a/τ): thresholding at 0.5 gives the same code
    with torch.no_grad():
        soft = m.encode(torch.from_numpy(X)).numpy()
    assert np.array_equal(soft > 0.5, B)
    P = itq.project(X) @ itq.R_
    assert np.allclose(m.tau.numpy(), P.std(0), rtol=1e-5), (m.tau, P.std(0))


def test_binary_code_ae_straight_through_gradient():
    from aekit.retrieval.binary_ae import BinaryCodeAE

    m = BinaryCodeAE(5, 3, hidden=4)
    with torch.no_grad():
        m.tau.copy_(torch.tensor([0.5, 1.0, 2.0]))
    x = torch.rand(6, 5)
    a = m.preactivation(x).detach().requires_grad_(True)
    # forward: hard 0/1 code
    out = m(x)
    assert set(torch.unique(out.code).tolist()) <= {0.0, 1.0}, out.code
    assert torch.equal(out.code, (out.preactivations[0] > 0).float())
    # backward: d code / d a = σ'(a/τ)/τ (straight-through surrogate)
    s = torch.sigmoid(a / m.tau)
    z = s + ((a > 0).float() - s).detach()
    g, = torch.autograd.grad(z.sum(), a)
    want = (s * (1 - s) / m.tau).detach()
    assert torch.allclose(g, want), (g, want)


def test_fit_binary_code_ae_never_worse_than_itq_on_validation(blobs):
    """The reconstruction-only path (graph_weight=0) selected on precision@k; the
    neighbourhood term and the mAP rule are in test_binary_ae_similarity.py."""
    from aekit.retrieval.binary_ae import fit_binary_code_ae
    from aekit.retrieval.metrics import evaluate_retrieval

    X, y = blobs(600, seed=1)
    Xv, yv = blobs(100, seed=2)
    m, info = fit_binary_code_ae(X, 8, X_val=Xv, y_val=yv, y_train=y, hidden=16, k=20,
                                 decoder_max_iter=1, max_iter=3, patience=2, batch_size=64,
                                 learning_rate=1e-2, graph_weight=0.0, selection="p_at_k")
    sc = info["val_p_at_k"]
    assert len(sc) >= 2 and info["best_epoch"] == int(np.argmax(sc)), info
    assert sc[info["best_epoch"]] >= sc[0], sc
    # the returned model is the best epoch's: recomputed score equals the recorded one
    s = evaluate_retrieval(m.codes(Xv), m.codes(X), yv, y, metric="hamming", ks=(20,))
    assert s.precision_at_k[20] == pytest.approx(sc[info["best_epoch"]]), (s, sc)
    assert len(info["val_map"]) == len(sc), info
    assert s.mean_average_precision == pytest.approx(info["val_map"][info["best_epoch"]])
    # epoch 0 is the ITQ code itself
    itq = info["itq"]
    s0 = evaluate_retrieval(itq.transform(Xv), itq.transform(X), yv, y, metric="hamming",
                            ks=(20,))
    assert s0.precision_at_k[20] == pytest.approx(sc[0]), (s0, sc)


def test_binary_code_ae_errors(blobs):
    from aekit.retrieval.binary_ae import BinaryCodeAE, fit_binary_code_ae

    with pytest.raises(ValueError, match="n_bits"):
        BinaryCodeAE(10, 0)
    with pytest.raises(ValueError, match="hidden"):
        BinaryCodeAE(10, 4, hidden=True)
    X, y = blobs(50)
    with pytest.raises(ValueError, match="ITQ model maps"):
        BinaryCodeAE(20, 6).init_from_itq(ITQ(4).fit(X), X)
    with pytest.raises(ValueError, match="X_val"):
        fit_binary_code_ae(X, 4, X_val=X[:, :5], y_val=y, y_train=y)
    with pytest.raises(ValueError, match="y_train"):
        fit_binary_code_ae(X, 4, X_val=X[:10], y_val=y[:10], y_train=y[:5])


# ----------------------------------------------------------------------------- examples
def _example(name):
    import importlib.util
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_retrieval_hashing_runs(tmp_path, capsys):
    out = tmp_path / "codes64.safetensors"
    assert _example("retrieval_hashing").main(
        ["--n", "20000", "--queries", "100", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "identical result sets: True" in text, text
    assert "equal brute force: True" in text, text
    assert "MultiIndexHash" in text and out.exists(), text


def test_example_retrieval_text_skips_without_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path))
    assert _example("retrieval_text").main([]) == 0
    text = capsys.readouterr().out
    assert text.startswith("skipped:") and str(tmp_path) in text, text


@pytest.mark.slow
def test_example_retrieval_text_runs(capsys):
    if not (data_dir() / "20news-bydate.tar.gz").exists():
        pytest.skip(f"20news-bydate.tar.gz not in {data_dir()} (set AEKIT_DATA)")
    assert _example("retrieval_text").main(["--n-train", "1500", "--n-test", "500",
                                            "--max-iter", "2"]) == 0
    text = capsys.readouterr().out
    assert "AE-10" in text and "LSA-10" in text and "query:" in text, text
