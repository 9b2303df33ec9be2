"""Semantic hashing end to end: train a document autoencoder, turn documents into binary
codes, store them at their memory addresses, and answer queries by text, by file or by id,
with the shortlist optionally re-ranked by TF-IDF cosine.

An index directory holds ``index.safetensors`` (codes and ids, :mod:`.hashing`),
``model.safetensors`` (the :class:`~aekit.models.document.DocumentAE`, via
:func:`aekit.train.checkpoint.save_model`), ``docs.safetensors`` (the documents' word counts
as CSR arrays, for re-ranking) and ``index.json`` (vocabulary, IDF, labels, titles). No
pickle anywhere.

References
----------
Salakhutdinov & Hinton, "Semantic hashing", IJAR 50(7), 2009, sections 4-5 (codes as
addresses, Hamming-ball shortlist, TF-IDF re-ranking of the shortlist).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import sparse

from ..io import (
    FileFormatError,
    atomic_write_json,
    load_tensor_file,
    read_json_file,
    save_tensor_file,
)
from ..models.document import DocumentAE
from ..train.callbacks import EarlyStopping
from .hashing import MAX_TABLE_BITS, HammingTable, MultiIndexHash, binarize, load_index
from .text import BagOfWords, tfidf

__all__ = ["DOC_LOSSES", "CountNLL", "Neighbour", "SelectOnValidation", "SemanticIndex",
           "encode_documents", "fit_document_ae", "pretrain_document_layers"]

DOCS_FORMAT = "aekit.index_docs"

#: Reconstruction losses of the document autoencoder: ``"distribution"`` (each document's
#: word distribution, every document weighted equally: :func:`~aekit.objectives.multinomial.
#: multinomial_nll`) and ``"counts"`` (every word of every document: :class:`CountNLL`).
DOC_LOSSES = ("distribution", "counts")


class CountNLL:
    """Multinomial negative log-likelihood of all the words of a document (the replicated
    softmax / constrained-Poisson bottom layer's data term): (n, V), (n, V) -> (n,).

    ``ℓ_i = −(1/s) Σ_j c_ij log q_ij``, ``q_i = softmax(z_i)`` over the V words, with
    ``c_i`` the word counts of document i and ``z_i`` the model's logits. Its gradient with
    respect to the logits is ``∂ℓ_i/∂z_ij = (N_i q_ij − c_ij) / s`` with ``N_i = Σ_j c_ij``.

    Compared with :func:`~aekit.objectives.multinomial.multinomial_nll`, which is
    ``−Σ_j (c_ij / N_i) log q_ij`` (each document's word *distribution*, every document
    weighted equally), a document weighs in proportion to its length ``N_i``, as in the
    likelihood of a model that generates every word (Salakhutdinov & Hinton 2009: N draws
    from one softmax; Hinton & Salakhutdinov 2006: the constrained Poisson model, whose
    rates sum to N). The constant ``scale`` s (e.g. the mean training-document length)
    only sets the loss's magnitude, so the learning rate of the per-distribution loss fits.

    Parameters
    ----------
    scale : float
        s > 0.

    References
    ----------
    R. Salakhutdinov & G. Hinton, "Replicated softmax: an undirected topic model", NIPS 2009,
    section 2 (eq. 3-5). G. Hinton & R. Salakhutdinov, Science 313, 2006, supporting online
    material (constrained Poisson model for word counts).
    """

    part = "recon"
    __name__ = "count_nll"

    def __init__(self, scale: float = 1.0):
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 \
                or not np.isfinite(scale):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.scale = float(scale)

    def __call__(self, x: torch.Tensor, out) -> torch.Tensor:
        from ..models.base import AEOutput

        logits = out.logits if isinstance(out, AEOutput) else out
        return -(x * torch.log_softmax(logits, dim=1)).sum(1) / self.scale

    def __repr__(self) -> str:
        return f"CountNLL(scale={self.scale:g})"


def _doc_loss(loss: str, X: np.ndarray):
    from ..objectives.multinomial import multinomial_nll

    if loss not in DOC_LOSSES:
        raise ValueError(f"loss must be one of {DOC_LOSSES}, got {loss!r}")
    if loss == "distribution":
        return multinomial_nll
    n = X.sum(1)
    return CountNLL(float(n[n > 0].mean()) if (n > 0).any() else 1.0)


class SelectOnValidation(EarlyStopping):
    """Callback of :func:`aekit.fit` that selects the epoch by a validation score.

    After every epoch: ``s = score(model)`` in eval mode (higher is better, e.g. a retrieval
    margin on validation documents), logged as ``val_select``; the weights of the best epoch
    are kept, training stops after ``patience`` epochs without a higher score (None: never),
    and the best weights are loaded at the end. Early stopping on the validation *loss* can
    pick an epoch that retrieves worse; this picks by what is measured. It is
    :class:`~aekit.train.callbacks.EarlyStopping` with ``monitor="val_select"``,
    ``mode="max"`` and the best weights restored even without a patience.

    Parameters
    ----------
    score : callable ``(model) -> float``
    patience : int or None

    References
    ----------
    L. Prechelt, "Early stopping — but when?", in *Neural Networks: Tricks of the Trade*,
    1998, section 2 (stop on a validation criterion, keep the best weights).
    """

    key = "select"

    def __init__(self, score, patience: int | None = None):
        if not callable(score):
            raise ValueError(f"select must be a callable (model) -> float, got {score!r}")
        super().__init__(patience, monitor="val_select", mode="max")
        self.score = score

    @property
    def keeps_weights(self) -> bool:
        return True

    def on_epoch_end(self, loop, record):
        m = loop.model
        was = m.training
        m.eval()
        s = float(self.score(m))
        m.train(was)
        if not np.isfinite(s):
            raise ValueError(f"select returned {s} at epoch {loop.epoch + 1}; it must be a "
                             "finite float")
        record["val_select"] = s
        return super().on_epoch_end(loop, record)


class _Shallow(torch.nn.Module):
    """One pretraining layer above the first: ``h = σ(W x + b)`` (or linear at a linear
    code), ``x̂ = σ(W' h + c)``, trained with Bernoulli cross-entropy on the activities of the
    layer below."""

    output = "sigmoid"

    def __init__(self, a: int, b: int, code: str = "sigmoid"):
        super().__init__()
        self.enc, self.dec, self.code = torch.nn.Linear(a, b), torch.nn.Linear(b, a), code

    def forward(self, x):
        from ..models.base import AEOutput

        pre = self.enc(x)
        h = torch.sigmoid(pre) if self.code == "sigmoid" else pre
        logits = self.dec(h)
        return AEOutput(h, torch.sigmoid(logits), logits, (pre,))

    @torch.no_grad()
    def encode(self, x):
        return self.forward(x).code


def _fit_kw(max_iter, batch_size, learning_rate, random_state, val, early_stopping, progress):
    return dict(max_iter=max_iter, batch_size=batch_size, learning_rate=learning_rate,
                random_state=random_state,
                early_stopping=early_stopping if val is not None else None,
                progress=progress, handle_signals=False)


def pretrain_document_layers(C, hidden=(500, 250, 125), *, val=None, max_iter: int = 4,
                             batch_size: int = 128, learning_rate: float = 1e-3,
                             random_state: int = 0, progress: bool = False,
                             loss: str = "distribution", input_norm: str = "none",
                             input_weights=None,
                             **old) -> list[tuple[torch.nn.Linear, torch.nn.Linear]]:
    """Greedy layer-wise pretraining of the hidden layers of a document autoencoder.

    Layer 1 is a one-hidden-layer :class:`DocumentAE` ``V → k_1`` (logistic units, softmax
    output, multinomial loss: on the word distribution, or on every word with
    ``loss="counts"``, see :data:`DOC_LOSSES`); layer l > 1 a logistic autoencoder
    ``k_{l−1} → k_l`` trained with cross-entropy on the layer-(l−1) activities. Autoencoder
    layers stand in for the paper's RBMs (constrained-Poisson / replicated-softmax bottom
    layer), trained with :func:`aekit.fit`.

    ``input_norm`` and ``input_weights`` set the bottom layer's input as in
    :class:`DocumentAE` (e.g. ``"l2"`` and IDF weights: l2-normalised log-TF-IDF rows).

    Each layer trains for ``max_iter`` epochs of Adam (``learning_rate``, ``batch_size``,
    seed ``random_state``; early stopping with patience 3 when ``val`` is given). The old
    keywords ``epochs``, ``lr``, ``seed`` still work until the next release, with a
    ``FutureWarning``.

    Returns ``[(encoder Linear, decoder Linear), ...]``, bottom layer first.

    References
    ----------
    Hinton & Salakhutdinov, Science 2006 (pretraining, then unrolling); Bengio et al.,
    "Greedy layer-wise training of deep networks", NIPS 2006 (autoencoder layers).
    """
    from ..objectives import Objective
    from ..train import fit

    if old:
        from ..schema import pop_renamed

        v = pop_renamed("aekit.retrieval.semantic.pretrain_document_layers", old,
                        {"max_iter": max_iter, "learning_rate": learning_rate,
                         "random_state": random_state},
                        {"max_iter": 4, "learning_rate": 1e-3, "random_state": 0})
        max_iter, learning_rate, random_state = (v["max_iter"], v["learning_rate"],
                                                 v["random_state"])
    X, V = _dense(C), None if val is None else _dense(val)
    recon = _doc_loss(loss, X)
    torch.manual_seed(random_state)
    first = _doc_model([X.shape[1], hidden[0]], input_norm, input_weights,
                       code_activation="sigmoid")
    fit(first, Objective(recon), X, val=V,
        **_fit_kw(max_iter, batch_size, learning_rate, random_state, V, 3, progress))
    first.eval()
    layers = [(first.encoder[0], first.decoder[0])]
    H = encode_documents(first, X)
    Hv = None if V is None else encode_documents(first, V)
    for a, b in zip(hidden[:-1], hidden[1:]):
        sh = _Shallow(a, b)
        fit(sh, Objective("bce"), H, val=Hv,
            **_fit_kw(max_iter, batch_size, learning_rate, random_state, Hv, 3, progress))
        sh.eval()
        layers.append((sh.enc, sh.dec))
        H = sh.encode(torch.from_numpy(H)).numpy()
        Hv = None if Hv is None else sh.encode(torch.from_numpy(Hv)).numpy()
    return layers


def fit_document_ae(C, k: int, *, hidden=(500, 250, 125), code_activation: str = "linear",
                    binarize: str = "none", code_noise: float = 4.0, val=None,
                    max_iter: int = 30, batch_size: int = 128, learning_rate: float = 1e-3,
                    early_stopping: int | None = 5, random_state: int = 0,
                    progress: bool = False, pretrained=None, pretrain_max_iter: int = 0,
                    loss: str = "distribution", word_dropout: float = 0.0, select=None,
                    input_norm: str = "none", input_weights=None,
                    **old) -> tuple[DocumentAE, list[dict]]:
    """Train a ``V-500-250-125-k`` :class:`DocumentAE` on word counts with the multinomial
    loss through :func:`aekit.fit` (Adam), optionally from pretrained hidden layers.

    Parameters
    ----------
    C : (n, V) counts, dense or sparse
    k : code size
    val : (n_val, V) counts, optional
        Validation documents for early stopping on the validation loss (restores the best
        epoch).
    pretrained : list of (Linear, Linear), optional
        Hidden layers from :func:`pretrain_document_layers` (shared between code sizes);
        the top layer ``k_L → k`` is then pretrained alone for ``max(pretrain_max_iter, 3)``
        epochs before fine-tuning the whole network.
    pretrain_max_iter : int
        Without ``pretrained``: > 0 runs :func:`pretrain_document_layers` first.
    max_iter, batch_size, learning_rate, random_state : fine-tuning settings of
        :func:`aekit.fit` (epochs, rows per step, Adam's step size, seed).
    early_stopping : int or None
        Patience in epochs on the validation loss (``None``: off), as in :func:`aekit.fit`;
        on the ``select`` score when one is given.
    loss : {"distribution", "counts"}
        Reconstruction loss (:data:`DOC_LOSSES`): the cross-entropy of each document's word
        distribution, ``−Σ_j (c_ij/N_i) log q_ij``, every document weighted equally
        (Hinton & Salakhutdinov 2006), or the negative log-likelihood of all its words,
        ``−Σ_j c_ij log q_ij / s`` (:class:`CountNLL`, s = the mean training-document
        length; the replicated-softmax weighting of Salakhutdinov & Hinton 2009). Used for
        pretraining the bottom layer too.
    word_dropout : float in [0, 1)
        Denoising during fine-tuning: each word type of a training document is dropped
        from the encoder's input with this probability (``x̃_ij = m_ij c_ij``,
        ``m_ij ~ Bernoulli(1 − p)``, :class:`aekit.corruption.Masking`); the loss is against
        the clean counts (Vincent et al., JMLR 2010, section 4.3).
    input_norm : {"none", "l2"}; input_weights : (V,) array, optional
        The encoder's input (:class:`DocumentAE`): ``w ⊙ log(1 + c)``, l2-normalised with
        ``"l2"``; with IDF weights w this is an l2-normalised log-TF-IDF row. Used for
        pretraining too.
    select : callable ``(model) -> float``, optional
        Validation score (higher is better) evaluated after every fine-tuning epoch; the
        best epoch's weights are returned and ``early_stopping`` counts epochs without a
        better score (:class:`SelectOnValidation`). Without it, the epoch of lowest
        validation loss is returned.

    The old keywords ``epochs``, ``lr``, ``seed``, ``pretrain_epochs`` still work until the
    next release, with a ``FutureWarning``.

    Returns
    -------
    model, history records of the fine-tuning
    """
    from ..objectives import Objective
    from ..train import fit

    if old:
        from ..schema import pop_renamed

        v = pop_renamed("aekit.retrieval.semantic.fit_document_ae", old,
                        {"max_iter": max_iter, "learning_rate": learning_rate,
                         "random_state": random_state, "pretrain_max_iter": pretrain_max_iter},
                        {"max_iter": 30, "learning_rate": 1e-3, "random_state": 0,
                         "pretrain_max_iter": 0})
        max_iter, learning_rate, random_state, pretrain_max_iter = (
            v["max_iter"], v["learning_rate"], v["random_state"], v["pretrain_max_iter"])
    X = _dense(C)
    V = None if val is None else _dense(val)
    recon = _doc_loss(loss, X)
    if isinstance(word_dropout, bool) or not isinstance(word_dropout, (int, float)) or \
            not 0 <= word_dropout < 1:
        raise ValueError(f"word_dropout must be a number in [0, 1), got {word_dropout!r}")
    sel = None if select is None else SelectOnValidation(select, early_stopping)
    if pretrained is None and pretrain_max_iter > 0:
        pretrained = pretrain_document_layers(X, hidden, val=V, max_iter=pretrain_max_iter,
                                              batch_size=batch_size,
                                              learning_rate=learning_rate,
                                              random_state=random_state, progress=progress,
                                              loss=loss, input_norm=input_norm,
                                              input_weights=input_weights)
    torch.manual_seed(random_state)
    model = _doc_model([X.shape[1], *hidden, k], input_norm, input_weights,
                       code_activation=code_activation, binarize=binarize,
                       code_noise=code_noise)
    if pretrained is not None:
        if len(pretrained) != len(hidden):
            raise ValueError(f"pretrained has {len(pretrained)} layers, hidden {len(hidden)}")
        L = len(hidden) + 1
        with torch.no_grad():
            for i, (enc, dec) in enumerate(pretrained):
                model.encoder[i].load_state_dict(enc.state_dict())
                model.decoder[L - 1 - i].load_state_dict(dec.state_dict())
            # top layer k_L -> k on the pretrained activities
            H = X
            Hv = V
            sub = _doc_model([X.shape[1], *hidden], input_norm, input_weights,
                             code_activation="sigmoid")
            for i in range(len(hidden)):
                sub.encoder[i].load_state_dict(model.encoder[i].state_dict())
            H = encode_documents(sub, X)
            Hv = None if V is None else encode_documents(sub, V)
        top = _Shallow(hidden[-1], k, code="sigmoid" if code_activation == "sigmoid"
                       else "linear")
        fit(top, Objective("bce"), H, val=Hv,
            **_fit_kw(max(pretrain_max_iter, 3), batch_size, learning_rate, random_state, Hv,
                      3, progress))
        with torch.no_grad():
            model.encoder[L - 1].load_state_dict(top.enc.state_dict())
            model.decoder[0].load_state_dict(top.dec.state_dict())
    from ..corruption import Masking

    kw = _fit_kw(max_iter, batch_size, learning_rate, random_state, V, early_stopping,
                 progress)
    if sel is not None:
        kw["early_stopping"] = None  # patience on the selection score instead
    hist = fit(model, Objective(recon), X, val=V,
               corruption=Masking(float(word_dropout)) if word_dropout > 0 else None,
               callbacks=() if sel is None else (sel,), **kw)
    model.eval()
    return model, hist.records


def _doc_model(sizes, input_norm, input_weights, **kw) -> DocumentAE:
    m = DocumentAE(sizes, input_norm=input_norm, weighted_input=input_weights is not None,
                   **kw)
    if input_weights is not None:
        m.set_input_weights(np.asarray(input_weights, np.float32))
    return m


def _dense(C) -> np.ndarray:
    return (C.toarray() if sparse.issparse(C) else np.asarray(C)).astype(np.float32)


@torch.no_grad()
def encode_documents(model: DocumentAE, C, batch_size: int = 2048, *,
                     center=None) -> np.ndarray:
    """Codes of documents (eval mode, no noise): (n, V) counts -> (n, k) float32.

    ``center`` (k,), optional: subtracted from every code, ``z_i − μ`` (e.g. μ = the mean
    code of the training documents), so that cosine similarity compares the codes'
    directions around the corpus mean rather than around the origin, where a common offset
    of linear codes makes every pair look alike (the usual centring before cosine in LSA /
    PCA retrieval: Deerwester et al. 1990; Manning, Raghavan & Schütze 2008, section 18.4).
    """
    model.eval()
    X = _dense(C)
    out = [model.encode(torch.from_numpy(X[s:s + batch_size])).numpy()
           for s in range(0, X.shape[0], batch_size)]
    Z = np.concatenate(out) if out else np.zeros((0, model.n_components), np.float32)
    if center is not None:
        mu = np.asarray(center, np.float32)
        if mu.shape != (model.n_components,):
            raise ValueError(f"center must have shape ({model.n_components},) (one value per "
                             f"code unit), got {mu.shape}")
        Z = Z - mu
    return Z


class Neighbour(NamedTuple):
    """One search result: item ``id``, Hamming ``distance`` to the query code, TF-IDF
    ``cosine`` with the query (None without re-ranking), its ``label`` and ``title``."""

    id: int
    distance: int
    cosine: float | None
    label: str
    title: str


class SemanticIndex:
    """Documents stored at the addresses given by their binary codes.

    Build with :meth:`build` (bag of words, trained model, counts, labels), save with
    :meth:`save`, reopen with :meth:`load`, query with :meth:`query_text` /
    :meth:`query_id`. Codes of ≤ ``MAX_TABLE_BITS`` bits go to a direct table
    (:class:`~aekit.retrieval.hashing.HammingTable`); longer ones to multi-index hashing.
    """

    def __init__(self, bow: BagOfWords, model: DocumentAE, index, counts, labels, titles):
        self.bow, self.model, self.index = bow, model, index
        self.counts = sparse.csr_matrix(counts, dtype=np.float32)
        self.labels, self.titles = list(labels), list(titles)

    @classmethod
    def build(cls, bow: BagOfWords, model: DocumentAE, counts, labels, titles
              ) -> SemanticIndex:
        """Encode ``counts`` (n, V), threshold the logistic codes at 0.5, and index them."""
        if model.code_activation != "sigmoid":
            raise ValueError("a semantic-hashing index needs a DocumentAE with "
                             "code_activation='sigmoid' (binary codes from logistic units)")
        B = binarize(encode_documents(model, counts), 0.5)
        b = B.shape[1]
        meta = {"n_bits": b}
        index = HammingTable(B, meta=meta) if b <= MAX_TABLE_BITS else MultiIndexHash(
            B, meta=meta)
        return cls(bow, model, index, counts, labels, titles)

    def save(self, directory: str | os.PathLike) -> None:
        """Write the four files of the index directory (see the module docstring)."""
        from ..train.checkpoint import save_model

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.index.save(d / "index.safetensors")
        save_model(self.model, d / "model.safetensors")
        c = self.counts
        save_tensor_file(d / "docs.safetensors",
                         {"indptr": torch.from_numpy(c.indptr.astype(np.int64)),
                          "indices": torch.from_numpy(c.indices.astype(np.int64)),
                          "data": torch.from_numpy(c.data.astype(np.float32))},
                         DOCS_FORMAT, {"shape": list(c.shape)})
        atomic_write_json(d / "index.json", {
            "format": "aekit.semantic_index", "vocabulary": self.bow.vocabulary_,
            "idf": self.bow.idf_.tolist(), "strip_headers": self.bow.strip_headers,
            "labels": self.labels, "titles": self.titles,
            "index_kind": self.index.kind, "n_bits": self.index.n_bits})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SemanticIndex:
        """Reopen a saved index directory; every file is checked (format tags, checksums,
        shapes) and a missing or foreign one raises naming it."""
        from ..train.checkpoint import load

        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"index directory {d} does not exist (build one with "
                                    "'aekit index build')")
        meta = read_json_file(d / "index.json")
        if not isinstance(meta, dict) or meta.get("format") != "aekit.semantic_index":
            raise FileFormatError(f"{d / 'index.json'} is not an aekit semantic index header",
                                  path=d / "index.json", field="format",
                                  expected="'aekit.semantic_index'")
        vocab, idf = meta.get("vocabulary"), meta.get("idf")
        labels, titles = meta.get("labels"), meta.get("titles")
        if (not isinstance(vocab, list) or not isinstance(idf, list) or len(vocab) != len(idf)
                or not all(isinstance(w, str) for w in vocab)
                or not isinstance(labels, list) or not isinstance(titles, list)):
            raise FileFormatError(f"{d / 'index.json'}: needs lists 'vocabulary', 'idf' (same "
                                  "length), 'labels' and 'titles'", path=d / "index.json",
                                  field="vocabulary", expected="lists")
        bow = BagOfWords(max(1, len(vocab)), strip_headers=bool(meta.get("strip_headers", True)))
        bow.vocabulary_ = vocab
        bow.idf_ = np.asarray(idf, np.float32)
        bow._v = bow._vectorizer(vocab)
        model = load(d / "model.safetensors")
        if not isinstance(model, DocumentAE) or model.n_features != len(vocab):
            raise FileFormatError(f"{d / 'model.safetensors'} is not a DocumentAE over the "
                                  f"{len(vocab)}-word vocabulary", path=d / "model.safetensors",
                                  field="model", expected="a DocumentAE")
        index = load_index(d / "index.safetensors")
        t, doc = load_tensor_file(d / "docs.safetensors", DOCS_FORMAT)
        shape = doc.get("shape")
        try:
            counts = sparse.csr_matrix((t["data"].numpy(), t["indices"].numpy(),
                                        t["indptr"].numpy()), shape=tuple(shape))
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{d / 'docs.safetensors'}: bad CSR arrays ({e})",
                                  path=d / "docs.safetensors", field="indptr",
                                  expected="a CSR count matrix") from None
        n = len(index)
        if counts.shape != (n, len(vocab)) or len(labels) != n or len(titles) != n:
            raise FileFormatError(f"{d}: the index holds {n} codes but the documents/labels/"
                                  f"titles hold {counts.shape[0]}/{len(labels)}/{len(titles)}",
                                  path=d, field="n", expected=f"{n} documents")
        if index.n_bits != model.n_components:
            raise FileFormatError(f"{d}: the index has {index.n_bits}-bit codes but the model "
                                  f"{model.n_components} code units", path=d, field="n_bits",
                                  expected=str(model.n_components))
        return cls(bow, model, index, counts, labels, titles)

    def info(self) -> dict:
        """Summary: sizes, index kind, bucket occupancy."""
        occupied = np.unique(self.index.words, axis=0).shape[0]
        return {"n_documents": len(self.index), "n_bits": self.index.n_bits,
                "index": self.index.kind, "n_substrings": getattr(self.index, "n_substrings", 1),
                "vocabulary": len(self.bow.vocabulary_), "distinct_codes": int(occupied),
                "model": self.model.config()}

    def code_of_counts(self, c) -> np.ndarray:
        """Binary code (1, b) of a count row."""
        return binarize(encode_documents(self.model, c), 0.5)

    def query_counts(self, c, *, radius: int = 2, k: int = 10, rerank: bool = True,
                     exclude: int | None = None) -> list[Neighbour]:
        """Neighbours of a count row (1, V): every item within Hamming ``radius`` of its
        code (the shortlist, no distance computation with the table), ranked by TF-IDF
        cosine with the query (``rerank``) or by Hamming distance, top ``k``."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        res = self.index.radius_search(self.code_of_counts(c), radius)
        ids, dist = res.query(0)
        if exclude is not None:
            keep = ids != exclude
            ids, dist = ids[keep], dist[keep]
        cos = None
        if rerank and ids.size:
            q = tfidf(sparse.csr_matrix(c), self.bow.idf_)
            X = tfidf(self.counts[ids], self.bow.idf_)
            cos = np.asarray((X @ q.T).todense()).ravel()
            o = np.lexsort((dist, -cos))
            ids, dist, cos = ids[o], dist[o], cos[o]
        ids, dist = ids[:k], dist[:k]
        return [Neighbour(int(i), int(d), None if cos is None else float(cos[j]),
                          str(self.labels[i]), str(self.titles[i]))
                for j, (i, d) in enumerate(zip(ids, dist))]

    def query_text(self, text: str, **kw) -> list[Neighbour]:
        """Neighbours of a new document given as text (see :meth:`query_counts`).

        Raises ``ValueError`` for an empty text or one without any vocabulary word."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("query text is empty")
        c = self.bow.transform([text], empty="keep")
        if c.nnz == 0:
            raise ValueError(f"query text has no word of the index's "
                             f"{len(self.bow.vocabulary_)}-word vocabulary")
        return self.query_counts(c, **kw)

    def query_id(self, i: int, **kw) -> list[Neighbour]:
        """Neighbours of indexed document ``i`` (itself excluded)."""
        n = len(self.index)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(f"id must be an integer in [0, {n - 1}], got {i!r}")
        return self.query_counts(self.counts[int(i)], exclude=int(i), **kw)
