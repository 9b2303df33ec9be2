"""Document retrieval on 20 Newsgroups with a deep document autoencoder, next to LSA, and a
semantic-hashing index queried by text.

    AEKIT_DATA=/path/to/data python examples/retrieval_text.py [--n-train 3000] [--n-test 1000]

Reads ``20news-bydate.tar.gz`` from ``$AEKIT_DATA`` (prints a skip message and exits 0 when
it is absent). Builds a bag of words over the 2000 most frequent non-stop words of a random
``--n-train`` training posts (seed 0), trains a 2000-500-250-125-10 :class:`DocumentAE`
(softmax reconstruction of the word distribution, Hinton & Salakhutdinov 2006) for a few
epochs, and compares its 10-D codes with LSA-10 (truncated SVD of log counts) by precision at
recall 0.01 / 0.1 / 0.5 and mAP, every one of ``--n-test`` test posts a query against the
others (cosine in code space). Then trains 20-bit logistic codes with the straight-through
estimator, stores the training posts at their code addresses (:class:`SemanticIndex`) and
answers a text query from the Hamming ball of radius 2, re-ranked by TF-IDF cosine.

This is a small, fast demonstration (a few epochs on a subsample, well under a minute on one
core); the benchmark (benchmarks/retrieval_text.py) trains on the whole corpus.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from aekit.data import data_dir


def _subject(text: str) -> str:
    for line in text.splitlines():
        if line.lower().startswith("subject:"):
            return line[8:].strip()[:60]
    return text.strip().split("\n")[0][:60]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--max-iter", type=int, default=4)
    a = ap.parse_args(argv)
    if not (data_dir() / "20news-bydate.tar.gz").exists():
        print(f"skipped: 20news-bydate.tar.gz not found in {data_dir()} "
              "(set AEKIT_DATA to the folder holding it)")
        return 0
    import torch

    from aekit.retrieval.baselines import LSA
    from aekit.retrieval.metrics import evaluate_retrieval
    from aekit.retrieval.semantic import SemanticIndex, encode_documents, fit_document_ae
    from aekit.retrieval.text import BagOfWords, load_corpus, log_counts, nonempty

    torch.set_num_threads(1)
    texts, y, names = load_corpus("20news", "train")
    tt, yt, _ = load_corpus("20news", "test")
    r = np.random.default_rng(0)
    i, j = r.permutation(len(texts))[:a.n_train], r.permutation(len(tt))[:a.n_test]
    texts, y, tt, yt = [texts[k] for k in i], y[i], [tt[k] for k in j], yt[j]
    bow = BagOfWords(2000).fit(texts)                  # 2000 most frequent non-stop words
    C, Ct = bow.transform(texts, empty="keep"), bow.transform(tt, empty="keep")
    keep, keep_t = nonempty(C), nonempty(Ct)           # drop posts with no vocabulary word
    C, y, texts = C[keep], y[keep], [texts[k] for k in np.flatnonzero(keep)]
    Ct, yt = Ct[keep_t], yt[keep_t]
    nv = len(y) // 10                                  # validation posts for early stopping

    model, _ = fit_document_ae(C[nv:], 10, val=C[:nv], pretrain_max_iter=1,
                               max_iter=a.max_iter)
    Z = encode_documents(model, Ct)
    lsa = LSA(10).fit(log_counts(C))
    print(f"{len(y)} training / {len(yt)} test posts, every test post a query:")
    for name, Q in (("AE-10 ", Z), ("LSA-10", lsa.transform(log_counts(Ct)))):
        s = evaluate_retrieval(Q, Q, yt, yt, exclude_self=True)
        pr = "  ".join(f"P@R={k:g}: {v:.3f}" for k, v in s.precision_at_recall.items()
                       if k >= 0.01)
        print(f"  {name}  {pr}  mAP {s.mean_average_precision:.3f}")

    hasher, _ = fit_document_ae(C[nv:], 20, val=C[:nv], code_activation="sigmoid",
                                binarize="ste", pretrain_max_iter=1, max_iter=a.max_iter)
    index = SemanticIndex.build(bow, hasher, C, [names[k] for k in y],
                                [_subject(t) for t in texts])
    print("index:", {k: v for k, v in index.info().items() if k != "model"})
    query = "nasa delayed the space shuttle launch because of the weather at the cape"
    print(f"query: {query!r}")
    for n in index.query_text(query, k=5, radius=2):
        print(f"  id {n.id:5d}  d={n.distance}  cos={n.cosine:.3f}  {n.label:24s} {n.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
