"""Text corpora as bags of words: 20 Newsgroups and Reuters-21578 (ModApte), a fixed
vocabulary of the most frequent non-stop words, and the four document representations the
retrieval experiments use (counts, log(1 + counts), TF-IDF, word distributions).

References
----------
G. Hinton & R. Salakhutdinov, "Reducing the dimensionality of data with neural networks",
Science 313, 2006 (supporting material: 2000-word vocabularies, log(1 + count) for LSA).
D. Lewis, Reuters-21578 Distribution 1.0 README, section VIII.B (the ModApte split).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from ..data.archives import iter_members
from ..data.datasets import archive_path, load_20newsgroups

__all__ = ["REUTERS_FILE", "BagOfWords", "load_corpus", "load_reuters", "log_counts",
           "nonempty", "tfidf", "word_distribution"]

REUTERS_FILE = "reuters21578.tar.gz"
_DOC = re.compile(r"<REUTERS([^>]*)>(.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)


def load_reuters(subset: str = "train", path: str | os.PathLike | None = None, *,
                 min_topics: int = 1) -> tuple[list[str], np.ndarray, list[str]]:
    """Reuters-21578 with the ModApte split, read from ``reuters21578.tar.gz`` in memory.

    ModApte: ``LEWISSPLIT="TRAIN"`` (train) or ``"TEST"`` (test) and ``TOPICS="YES"``:
    9,603 / 3,299 documents, of which 7,775 / 3,019 have at least one topic. The text is the
    title and body (SGML entities unescaped).

    Parameters
    ----------
    subset : {"train", "test"}
    path : str or PathLike, optional
        The archive or its folder; default ``data_dir() / "reuters21578.tar.gz"``.
    min_topics : int
        Keep documents with at least this many topics (0 keeps all ModApte documents).

    Returns
    -------
    texts : list of str, length n
    topics : ndarray of bool, shape (n, T)
        Multi-label indicator; ``topics[i, t]`` is true when document i has topic t.
        Two documents are relevant to each other when they share a topic.
    topic_names : list of str
        The T topics occurring in ModApte (train and test), sorted; the same for both
        subsets, so train and test indicator columns agree.

    References
    ----------
    D. Lewis, Reuters-21578 Distribution 1.0 README, section VIII.B.
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if isinstance(min_topics, bool) or not isinstance(min_topics, int) or min_topics < 0:
        raise ValueError(f"min_topics must be an integer >= 0, got {min_topics!r}")
    p = archive_path(path, REUTERS_FILE)
    want = subset.upper()
    texts, tops, every = [], [], set()
    n_files = 0
    for _name, data in iter_members(p, include=lambda n: n.endswith(".sgm")):
        n_files += 1
        for attrs, body in _DOC.findall(data.decode("latin-1")):
            a = dict(_ATTR.findall(attrs))
            if a.get("LEWISSPLIT") not in ("TRAIN", "TEST") or a.get("TOPICS") != "YES":
                continue
            tm = _TOPICS.search(body)
            t = _D.findall(tm.group(1)) if tm else []
            every.update(t)
            if a["LEWISSPLIT"] != want or len(t) < min_topics:
                continue
            title = _TITLE.search(body)
            text = _BODY.search(body)
            texts.append(html.unescape(" ".join(m.group(1) for m in (title, text) if m)))
            tops.append(t)
    if n_files == 0:
        raise ValueError(f"{p} holds no .sgm files (is it the Reuters-21578 archive?)")
    names = sorted(every)  # both splits: train and test share the columns
    index = {t: i for i, t in enumerate(names)}
    Y = np.zeros((len(texts), len(names)), bool)
    for i, ts in enumerate(tops):
        Y[i, [index[t] for t in ts]] = True
    return texts, Y, names


def load_corpus(name: str, subset: str, path: str | os.PathLike | None = None
                ) -> tuple[list[str], np.ndarray, list[str]]:
    """``load_20newsgroups`` (``name="20news"``, labels (n,) int) or :func:`load_reuters`
    (``name="reuters"``, labels (n, T) bool) by name."""
    if name == "20news":
        return load_20newsgroups(subset, path)
    if name == "reuters":
        return load_reuters(subset, path)
    raise ValueError(f"corpus must be '20news' or 'reuters', got {name!r}")


def _strip_headers(text: str) -> str:
    # 20 Newsgroups posts start with mail headers; keep Subject, drop the rest
    head, sep, body = text.partition("\n\n")
    if not sep:
        return text
    subj = [ln[8:] for ln in head.splitlines() if ln.lower().startswith("subject:")]
    return " ".join(subj) + "\n" + body


class BagOfWords:
    """A fixed vocabulary of the ``n_words`` most frequent words and the count matrix.

    Tokens are runs of 2+ letters, lower-cased; English stop words (scikit-learn's list) are
    removed; the vocabulary is the ``n_words`` most frequent remaining words in the fitting
    corpus (``CountVectorizer(max_features=n_words)``). Mail headers other than the subject
    are dropped (``strip_headers``) so addresses and routing do not dominate.

    Parameters
    ----------
    n_words : int
        Vocabulary size V (2000 in Hinton & Salakhutdinov 2006).
    strip_headers : bool

    Attributes
    ----------
    vocabulary_ : list of str, length V
    idf_ : ndarray, shape (V,)
        Smoothed inverse document frequency ``log((1 + n) / (1 + df)) + 1`` on the fitting
        corpus (scikit-learn's ``TfidfTransformer``).
    """

    def __init__(self, n_words: int = 2000, *, strip_headers: bool = True):
        if isinstance(n_words, bool) or not isinstance(n_words, int) or n_words < 1:
            raise ValueError(f"n_words must be an integer >= 1, got {n_words!r}")
        self.n_words = n_words
        self.strip_headers = strip_headers

    def _vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z]{2,}\b",
                               max_features=None if vocabulary else self.n_words,
                               vocabulary=vocabulary, dtype=np.float32)

    def _prep(self, texts: Sequence[str], name: str) -> list[str]:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise ValueError(f"{name} must be a sequence of strings, got {type(texts).__name__}")
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"{name}[{i}] must be a str, got {type(t).__name__}")
            out.append(_strip_headers(t) if self.strip_headers else t)
        return out

    def fit(self, texts: Sequence[str]) -> BagOfWords:
        """Choose the vocabulary and the IDF weights from ``texts``."""
        docs = self._prep(texts, "texts")
        if not docs:
            raise ValueError("texts is empty: need at least one document to build a vocabulary")
        v = self._vectorizer()
        try:
            C = v.fit_transform(docs)
        except ValueError as e:  # every document empty / stop words only
            raise ValueError(f"texts hold no words to build a vocabulary from ({e})") from None
        self.vocabulary_ = v.get_feature_names_out().tolist()
        df = np.asarray((C > 0).sum(0)).ravel()
        n = C.shape[0]
        self.idf_ = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
        self._v = self._vectorizer(self.vocabulary_)
        return self

    def transform(self, texts: Sequence[str], *, empty: str = "raise") -> sparse.csr_matrix:
        """Word counts over the vocabulary: (n,) texts -> (n, V) sparse float32.

        ``empty="raise"`` refuses a document that is empty or has no vocabulary word (its
        word distribution is undefined), naming it; ``"keep"`` returns its zero row (use
        :func:`nonempty` to drop such rows).
        """
        if not hasattr(self, "vocabulary_"):
            raise ValueError("BagOfWords is not fitted: call fit(texts) first")
        if empty not in ("raise", "keep"):
            raise ValueError(f"empty must be 'raise' or 'keep', got {empty!r}")
        docs = self._prep(texts, "texts")
        C = self._v.transform(docs).astype(np.float32).tocsr()
        if empty == "raise":
            zero = np.flatnonzero(np.diff(C.indptr) == 0)
            if zero.size:
                i = int(zero[0])
                why = "is empty" if not docs[i].strip() else \
                    f"has no word of the {len(self.vocabulary_)}-word vocabulary"
                raise ValueError(f"document {i} {why} ({zero.size} such document(s)); pass "
                                 "empty='keep' to keep them as zero rows")
        return C

    def fit_transform(self, texts: Sequence[str], *, empty: str = "raise") -> sparse.csr_matrix:
        return self.fit(texts).transform(texts, empty=empty)


def nonempty(C) -> np.ndarray:
    """Indices of the rows of a count matrix with at least one word."""
    C = sparse.csr_matrix(C)
    return np.flatnonzero(np.asarray(C.sum(1)).ravel() > 0)


def log_counts(C) -> np.ndarray:
    """``log(1 + c_ij)``: (n, V) counts -> (n, V) dense float32 (LSA's input in Hinton &
    Salakhutdinov 2006)."""
    C = sparse.csr_matrix(C, dtype=np.float32)
    return np.log1p(C.toarray())


def word_distribution(C) -> np.ndarray:
    """Per-document word distribution ``p_ij = c_ij / Σ_j c_ij``: (n, V) -> (n, V) float32.

    The multinomial target of the document autoencoder. Raises for an empty row.
    """
    C = sparse.csr_matrix(C, dtype=np.float32)
    n = np.asarray(C.sum(1)).ravel()
    if (n <= 0).any():
        raise ValueError(f"{int((n <= 0).sum())} document(s) have no words (row "
                         f"{int(np.flatnonzero(n <= 0)[0])}); their word distribution is "
                         "undefined")
    return (C.toarray() / n[:, None]).astype(np.float32)


def tfidf(C, idf) -> sparse.csr_matrix:
    """TF-IDF rows ``x_ij = c_ij idf_j / ‖c_i ⊙ idf‖₂`` (scikit-learn's ``TfidfTransformer``
    with ``norm="l2"``): (n, V) counts, (V,) idf -> (n, V) sparse float32."""
    C = sparse.csr_matrix(C, dtype=np.float32)
    idf = np.asarray(idf, np.float32)
    if idf.shape != (C.shape[1],):
        raise ValueError(f"idf must have shape ({C.shape[1]},), got {idf.shape}")
    X = C @ sparse.diags(idf)
    norm = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    norm[norm == 0] = 1
    return sparse.csr_matrix(sparse.diags(1 / norm) @ X, dtype=np.float32)
