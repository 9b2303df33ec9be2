"""The binary-code AE's unsupervised neighbourhood term (issue 22, image retrieval): the kNN
graph against brute force, the loss against its definition and its gradients, the pair
source, the term on the model, the validation selection rule and every error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.retrieval.binary_ae import (
    BinaryCodeAE,
    NeighbourHashing,
    NeighbourPairs,
    fit_binary_code_ae,
    knn_graph,
    neighbour_hash_loss,
    select_epoch,
)


def _brute_knn(P, m):
    P = np.asarray(P, np.float64)
    D = ((P[:, None, :] - P[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :m]


# ----------------------------------------------------------------------------- kNN graph
def test_knn_graph_equals_brute_force_raw_and_pca():
    r = np.random.default_rng(0)
    X = r.random((130, 7)).astype(np.float32)
    want = _brute_knn(X, 5)
    got = knn_graph(X, 5, n_components=None, chunk=17)
    assert np.array_equal(got, want), np.argwhere(got != want)[:5]
    # PCA to the full dimension is a rotation: the same graph
    got_full = knn_graph(X, 5, n_components=7, chunk=40)
    assert np.array_equal(got_full, want), np.argwhere(got_full != want)[:5]
    # PCA to 3 dimensions: brute force on the top-3 principal projections
    Xc = X.astype(np.float64) - X.mean(0)
    _, V = np.linalg.eigh(np.cov(Xc.T))
    P3 = Xc @ V[:, ::-1][:, :3]
    got3 = knn_graph(X, 4, n_components=3)
    want3 = _brute_knn(P3, 4)
    assert np.array_equal(got3, want3), np.argwhere(got3 != want3)[:5]
    assert not (got3 == np.arange(130)[:, None]).any(), "a row is its own neighbour"


# ------------------------------------------------------------------------------- the loss
def _naive_loss(U, V, beta):
    B, b = U.shape
    pull = sum((1 - float(U[i] @ V[i]) / b) / 2 for i in range(B)) / B
    push = sum((float(U[i] @ U[k]) / b) ** 2 for i in range(B) for k in range(B) if i != k)
    return pull + beta * push / (B * (B - 1))


def test_neighbour_hash_loss_equals_its_definition():
    g = torch.Generator().manual_seed(0)
    U = torch.rand(5, 6, generator=g, dtype=torch.float64) * 2 - 1
    V = torch.rand(5, 6, generator=g, dtype=torch.float64) * 2 - 1
    for beta in (0.0, 0.7):
        got = float(neighbour_hash_loss(U, V, beta))
        want = _naive_loss(U.numpy(), V.numpy(), beta)
        assert got == pytest.approx(want, abs=1e-12), (beta, got, want)
    # ±1 codes: the pull is the mean normalised Hamming distance of the pairs
    Ub = torch.tensor([[1., 1, -1, -1], [1, -1, 1, -1]])
    Vb = torch.tensor([[1., 1, 1, -1], [-1, 1, -1, 1]])
    pull = float(neighbour_hash_loss(Ub, Vb, 0.0))
    assert pull == pytest.approx((1 / 4 + 4 / 4) / 2), pull
    # codes two bits apart out of four are uncorrelated: zero push
    assert float(neighbour_hash_loss(Ub, Ub, 1.0)) == pytest.approx(0.0), "push of g=0 pairs"


def test_neighbour_hash_loss_gradcheck():
    g = torch.Generator().manual_seed(1)
    U = (torch.rand(4, 5, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    V = (torch.rand(4, 5, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: neighbour_hash_loss(a, b, 0.8), (U, V))


# --------------------------------------------------------------------- source and term
def test_neighbour_pairs_second_half_are_graph_neighbours(blobs):
    X, _ = blobs(50)
    nb = knn_graph(X, 3, n_components=None)
    src = NeighbourPairs(X, nb, random_state=0)
    idx = torch.tensor([4, 0, 17, 33])
    batch = src.take(idx)
    assert batch.x.shape == (8, 20), batch.x.shape
    assert torch.equal(batch.x[:4], torch.from_numpy(X[idx.numpy()]))
    for i, row in zip(idx.tolist(), batch.x[4:]):
        hits = [j for j in nb[i] if torch.equal(row, torch.from_numpy(X[j]))]
        assert hits, f"row for anchor {i} is none of its neighbours {nb[i]}"
    again = NeighbourPairs(X, nb, random_state=0).take(idx)
    assert torch.equal(again.x, batch.x), "same seed, different neighbour draws"
    assert len(src) == 50


def test_neighbour_hashing_term_value_and_straight_through_gradient():
    torch.manual_seed(0)
    m = BinaryCodeAE(6, 4, hidden=5)
    with torch.no_grad():
        m.tau.copy_(torch.tensor([0.5, 1.0, 2.0, 1.5]))
    from aekit.data.batch import Batch

    x = torch.rand(6, 6)
    out = m(x)
    a = out.preactivations[0]
    hard = NeighbourHashing(lam=3.0, beta=0.5, code="hard")(m, Batch(x), out)
    u = 2 * (a > 0).double() - 1
    want = 3.0 * _naive_loss(u[:3].detach().numpy(), u[3:].detach().numpy(), 0.5)
    assert float(hard.detach()) == pytest.approx(want, rel=1e-6), (float(hard.detach()), want)
    rel = NeighbourHashing(lam=2.0, beta=0.5, code="relaxed")(m, Batch(x), out)
    ur = torch.tanh(a / (2 * m.tau)).double()
    want_r = 2.0 * _naive_loss(ur[:3].detach().numpy(), ur[3:].detach().numpy(), 0.5)
    assert float(rel.detach()) == pytest.approx(want_r, rel=1e-5), (float(rel.detach()), want_r)
    # hard code: d/da goes through the surrogate σ(a/τ): dz/da = σ'(a/τ)/τ
    ad = a.detach().requires_grad_(True)
    s = torch.sigmoid(ad / m.tau)
    z = s + ((ad > 0).float() - s).detach()
    u = 2 * z - 1
    L = neighbour_hash_loss(u[:3], u[3:], 0.5)
    ga, = torch.autograd.grad(L, ad)
    uu = u.detach().requires_grad_(True)
    gu, = torch.autograd.grad(neighbour_hash_loss(uu[:3], uu[3:], 0.5), uu)
    want_g = gu * 2 * s.detach() * (1 - s.detach()) / m.tau
    assert torch.allclose(ga, want_g, atol=1e-7), (ga - want_g).abs().max()


def test_neighbour_term_trains_neighbour_codes_together():
    """Through aekit.fit, the term alone lowers the neighbour Hamming distance while the
    random-pair push keeps the codes spread (no collapse onto one code)."""
    from aekit.objectives import Objective
    from aekit.train import fit

    X = np.random.default_rng(3).random((300, 10)).astype(np.float32)
    nb = knn_graph(X, 5, n_components=None)
    torch.manual_seed(0)
    m = BinaryCodeAE(10, 8, hidden=16)
    with torch.no_grad():  # random hyperplanes through the data mean
        m.linear.bias.copy_(-(torch.from_numpy(X.mean(0)) @ m.linear.weight.T))

    def nb_dist(model):
        B = model.codes(X)
        return float((B[:, None, :] != B[nb]).sum(-1).mean())

    d0 = nb_dist(m)
    fit(m, Objective(None, [NeighbourHashing(lam=1.0)]), NeighbourPairs(X, nb),
        max_iter=5, batch_size=64, learning_rate=3e-2, progress=False, handle_signals=False)
    d1 = nb_dist(m)
    assert d1 < 0.8 * d0, f"neighbour Hamming distance {d0:.3f} -> {d1:.3f}"
    n_codes = len(np.unique(np.packbits(m.codes(X), axis=1), axis=0))
    assert n_codes >= 4, f"codes collapsed to {n_codes} distinct values"


# --------------------------------------------------------------------- selection rule
def test_select_epoch_rule_on_a_synthetic_curve():
    p = [0.50, 0.60, 0.49, 0.55, 0.55]
    m = [0.30, 0.31, 0.50, 0.40, 0.40]
    # epoch 2 has the best mAP but its precision is below the start's: not allowed
    assert select_epoch(p, m, "map") == 3  # ties (3, 4) keep the earlier
    assert select_epoch(p, m, "p_at_k") == 1
    # nothing qualifies but the start: keep it
    assert select_epoch([0.5, 0.4, 0.45], [0.3, 0.9, 0.8], "map") == 0
    # equal precision to the start qualifies
    assert select_epoch([0.5, 0.5], [0.3, 0.31]) == 1


def test_fit_binary_code_ae_with_the_graph_term_follows_the_rule(blobs):
    from aekit.retrieval.metrics import evaluate_retrieval

    X, y = blobs(600, seed=1)
    Xv, yv = blobs(100, seed=2)
    m, info = fit_binary_code_ae(X, 8, X_val=Xv, y_val=yv, y_train=y, hidden=16, k=20,
                                 decoder_max_iter=1, max_iter=3, patience=3, batch_size=64,
                                 learning_rate=1e-2, graph_weight=30.0, n_neighbors=5,
                                 graph_components=None)
    p, mp, e = info["val_p_at_k"], info["val_map"], info["best_epoch"]
    assert len(p) == len(mp) == 4, info
    assert e == select_epoch(p, mp, "map"), info
    assert p[e] >= p[0] and mp[e] >= mp[0], (p, mp, e)
    s = evaluate_retrieval(m.codes(Xv), m.codes(X), yv, y, metric="hamming", ks=(20,))
    assert s.precision_at_k[20] == pytest.approx(p[e]), (s.precision_at_k, p, e)
    assert s.mean_average_precision == pytest.approx(mp[e]), (s.mean_average_precision, mp)
    assert info["selection"] == "map" and info["graph_s"] > 0, info


# ------------------------------------------------------------------------------ errors
def test_errors_name_their_argument(blobs):
    X, y = blobs(30)
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_graph(X, 30)
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_graph(X, 0)
    with pytest.raises(ValueError, match="X must be 2-D"):
        knn_graph(X[0], 2)
    with pytest.raises(ValueError, match="n_components"):
        knn_graph(X, 2, n_components=0)
    with pytest.raises(ValueError, match="chunk"):
        knn_graph(X, 2, chunk=0)
    with pytest.raises(ValueError, match="U and V"):
        neighbour_hash_loss(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="U and V"):
        neighbour_hash_loss(torch.zeros(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="neighbors"):
        NeighbourPairs(X, np.zeros((29, 2), np.int64))
    with pytest.raises(ValueError, match="neighbors"):
        NeighbourPairs(X, np.full((30, 2), 30))
    with pytest.raises(ValueError, match="neighbors"):
        NeighbourPairs(X, np.zeros((30, 2), np.float32))
    with pytest.raises(ValueError, match="X must be 2-D"):
        NeighbourPairs(X[0], np.zeros((30, 2), np.int64))
    with pytest.raises(ValueError, match="lam"):
        NeighbourHashing(lam=-1.0)
    with pytest.raises(ValueError, match="beta"):
        NeighbourHashing(beta=float("nan"))
    with pytest.raises(ValueError, match="code"):
        NeighbourHashing(code="soft")
    from aekit.data.batch import Batch

    m = BinaryCodeAE(20, 4, hidden=3)
    x = torch.from_numpy(X[:5])
    with pytest.raises(ValueError, match="2B >= 4 rows"):
        NeighbourHashing()(m, Batch(x), m(x))
    with pytest.raises(ValueError, match="BinaryCodeAE"):
        NeighbourHashing().check_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="rule"):
        select_epoch([0.1], [0.1], "mean")
    with pytest.raises(ValueError, match="p_at_k and mean_ap"):
        select_epoch([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="p_at_k and mean_ap"):
        select_epoch([], [])
    kw = dict(X_val=X[:10], y_val=y[:10], y_train=y)
    with pytest.raises(ValueError, match="graph_weight"):
        fit_binary_code_ae(X, 4, graph_weight=-1.0, **kw)
    with pytest.raises(ValueError, match="selection"):
        fit_binary_code_ae(X, 4, selection="best", **kw)
    with pytest.raises(ValueError, match="patience"):
        fit_binary_code_ae(X, 4, patience=0, **kw)
    with pytest.raises(ValueError, match="code"):
        fit_binary_code_ae(X, 4, graph_code="soft", **kw)
