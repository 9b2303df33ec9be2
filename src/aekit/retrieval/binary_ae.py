"""Binary-code autoencoder for image retrieval that starts at ITQ and leaves it only when the
validation retrieval improves.

The encoder's pre-activation is a linear path initialised at PCA + the ITQ rotation plus a
nonlinear residual path initialised at zero, so before any training the binary code *is* the
ITQ code; a decoder reconstructs the image from the binary code, and encoder and decoder are
fine-tuned through the threshold with a straight-through estimator. Reconstruction alone
raises precision@k but lowers mAP (it trades the tail of the ranking for its top), so the
fine-tuning adds an unsupervised neighbourhood term (:class:`NeighbourHashing`): on a kNN
graph built once on the training inputs (:func:`knn_graph`, PCA space), each item's code is
pulled toward a neighbour's code while random pairs are pushed toward uncorrelated codes.
Model selection keeps the epoch (the ITQ start included) with the best validation mAP among
those whose validation precision@k is not below the start's, so on the validation queries the
result is never worse than ITQ in either measure. Labels never enter training; they only
score the validation queries.

References
----------
Y. Gong & S. Lazebnik, "Iterative quantization", CVPR 2011, section 2.3 (the start).
R. Salakhutdinov & G. Hinton, "Semantic hashing", IJAR 50(7), 2009 (binary autoencoder
codes). Y. Bengio, N. Léonard & A. Courville, "Estimating or propagating gradients through
stochastic neurons", arXiv:1308.3432, 2013 (straight-through estimator). M. Carreira-Perpiñán
& R. Raziperchikolaei, "Hashing with binary autoencoders", CVPR 2015 (binary AE initialised
from ITQ). Y. Weiss, A. Torralba & R. Fergus, "Spectral hashing", NIPS 2008, section 3 and
W. Liu, J. Wang, S. Kumar & S.-F. Chang, "Hashing with graphs", ICML 2011, section 2
(neighbour-graph objective with bit decorrelation).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from ..data.batch import Batch
from ..models.base import AEOutput
from ..objectives.core import Term
from ..validation import Param, check_choice, check_float, check_int
from .baselines import ITQ, PCASign

__all__ = ["BinaryCodeAE", "NeighbourHashing", "NeighbourPairs", "fit_binary_code_ae",
           "knn_graph", "neighbour_hash_loss", "select_epoch"]


class BinaryCodeAE(nn.Module):
    """Autoencoder with a b-bit binary code: ``a(x) = (x − μ) W + r(x)``, code
    ``z = [a(x) > 0] ∈ {0, 1}^b``, reconstruction ``x̂ = σ(g(z))``.

    ``W`` (d, b) is the linear path (``init_from_itq`` sets ``W = V_b R``, the top-b principal
    directions times the ITQ rotation, and μ the data mean), ``r`` a one-hidden-layer ReLU
    network ``d → hidden → b`` whose output layer starts at zero, ``g`` a ReLU network
    ``b → hidden → d``. In training the forward pass uses the hard code and the gradient of
    ``σ(a / τ)`` (straight-through estimator; τ (b,) the per-bit standard deviation of the
    initial projections, so the surrogate is neither flat nor a step). ``encode`` returns
    ``σ(a / τ)``; threshold at 0.5 (equivalently ``a > 0``) for the code.

    Shapes: x (n, d) in [0, 1] -> code (n, b) -> reconstruction (n, d).

    References
    ----------
    Carreira-Perpiñán & Raziperchikolaei, CVPR 2015 (binary autoencoders, ITQ start);
    Bengio, Léonard & Courville 2013 (straight-through estimator).
    """

    output = "sigmoid"

    def __init__(self, n_features: int, n_bits: int, hidden: int = 512):
        super().__init__()
        for name, v in (("n_features", n_features), ("n_bits", n_bits), ("hidden", hidden)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self.n_features, self.n_components = int(n_features), int(n_bits)
        self.linear = nn.Linear(n_features, n_bits)
        self.residual = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                      nn.Linear(hidden, n_bits))
        nn.init.zeros_(self.residual[2].weight)
        nn.init.zeros_(self.residual[2].bias)
        self.decoder = nn.Sequential(nn.Linear(n_bits, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_features))
        self.register_buffer("tau", torch.ones(n_bits))

    @torch.no_grad()
    def init_from_itq(self, itq: ITQ, X) -> BinaryCodeAE:
        """Set the linear path to ITQ's ``(x − μ) V_b R`` and τ to the per-bit standard
        deviation of those projections on ``X`` (n, d)."""
        W = torch.from_numpy(np.asarray(itq.components_ @ itq.R_, np.float32))  # (d, b)
        mu = torch.from_numpy(np.asarray(itq.mean_, np.float32))
        if W.shape != (self.n_features, self.n_components):
            raise ValueError(f"the ITQ model maps {W.shape[0]} features to {W.shape[1]} bits, "
                             f"the autoencoder {self.n_features} to {self.n_components}")
        self.linear.weight.copy_(W.T)
        self.linear.bias.copy_(-(mu @ W))
        P = itq.project(X) @ itq.R_
        self.tau.copy_(torch.from_numpy(np.maximum(P.std(0), 1e-6).astype(np.float32)))
        return self

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.residual(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.preactivation(x) / self.tau)

    def forward(self, x: torch.Tensor) -> AEOutput:
        a = self.preactivation(x)
        s = torch.sigmoid(a / self.tau)
        z = s + ((a > 0).to(s.dtype) - s).detach()  # hard code, gradient of σ(a/τ)
        logits = self.decoder(z)
        return AEOutput(z, torch.sigmoid(logits), logits, (a,))

    @torch.no_grad()
    def codes(self, X, batch_size: int = 4096) -> np.ndarray:
        """Binary codes (n, b) bool of ``X`` (n, d), eval mode."""
        self.eval()
        X = np.asarray(X, np.float32)
        out = [(self.preactivation(torch.from_numpy(X[s:s + batch_size])) > 0).numpy()
               for s in range(0, len(X), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.n_components), bool)


def knn_graph(X, n_neighbors: int = 10, *, n_components: int | None = 50,
              chunk: int = 2048) -> np.ndarray:
    """Exact k-nearest-neighbour graph of the rows of ``X`` in PCA space, self excluded.

    ``P = (X − μ) V_c`` (top-c principal directions; ``n_components=None`` keeps the raw
    space), then for every row i the indices of the ``n_neighbors`` rows j ≠ i with the
    smallest ``‖p_i − p_j‖²``, by chunked matrix products
    (``‖p_i‖² − 2 p_iᵀp_j + ‖p_j‖²``, float64 accumulation in PCA space), nearest first.

    Parameters
    ----------
    X : (n, d) float
    n_neighbors : int, 1 <= n_neighbors < n
    n_components : int or None
        PCA dimension c (clipped to d); None: Euclidean distance on ``X`` itself.
    chunk : int
        Rows per distance block (memory ``chunk × n``).

    Returns
    -------
    (n, n_neighbors) int64

    References
    ----------
    Weiss, Torralba & Fergus, "Spectral hashing", NIPS 2008, section 3 (a neighbourhood
    affinity on the data); Liu et al., "Hashing with graphs", ICML 2011, section 2.
    """
    X = np.asarray(X, np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {X.shape}")
    n = X.shape[0]
    n_neighbors = check_int("n_neighbors", n_neighbors, 1)
    if n_neighbors >= n:
        raise ValueError(f"n_neighbors must be < the number of rows {n}, got {n_neighbors}")
    chunk = check_int("chunk", chunk, 1)
    if n_components is not None:
        n_components = check_int("n_components", n_components, 1)
        P = PCASign(min(n_components, X.shape[1])).fit(X).project(X)
    else:
        P = X
    P = torch.from_numpy(np.asarray(P, np.float64))
    sq = (P * P).sum(1)
    out = np.empty((n, n_neighbors), np.int64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        D = sq[s:e, None] - 2 * P[s:e] @ P.T + sq[None, :]
        D[torch.arange(e - s), torch.arange(s, e)] = float("inf")
        out[s:e] = torch.topk(D, n_neighbors, dim=1, largest=False, sorted=True).indices.numpy()
    return out


def neighbour_hash_loss(U: torch.Tensor, V: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Neighbour pull plus random-pair decorrelation on (relaxed) ±1 codes.

    With ``g(u, v) = uᵀv / b`` (the code correlation; for ±1 codes
    ``(1 − g)/2 = d_H(u, v)/b``, the normalised Hamming distance):

    ``L = (1/B) Σ_i (1 − g(u_i, v_i))/2 + β (1/(B(B−1))) Σ_{i≠k} g(u_i, u_k)²``

    The first term pulls each anchor's code toward its graph neighbour's; the second pushes
    the codes of the batch's other anchors (random pairs) toward Hamming distance b/2, which
    keeps the bits decorrelated (its population value is ``‖E[u uᵀ]‖_F²/b²`` off the
    diagonal) and stops the pull from collapsing every code onto one.

    Parameters
    ----------
    U, V : (B, b) Tensor, B >= 2
        Anchor codes and the codes of one graph neighbour of each anchor, in [−1, 1].
    beta : float >= 0
        Weight β of the decorrelation.

    Returns
    -------
    scalar Tensor

    References
    ----------
    Weiss, Torralba & Fergus, "Spectral hashing", NIPS 2008, eq. (1)-(2) (affinity-weighted
    code distances with balanced, uncorrelated bits); Liu et al., "Hashing with graphs",
    ICML 2011, section 2; Hadsell, Chopra & LeCun, "Dimensionality reduction by learning an
    invariant mapping", CVPR 2006 (pull neighbours, push the rest).
    """
    if U.ndim != 2 or U.shape != V.shape or U.shape[0] < 2:
        raise ValueError(f"U and V must be codes of the same shape (B, b) with B >= 2, got "
                         f"{tuple(U.shape)} and {tuple(V.shape)}")
    B, b = U.shape
    pull = (1 - (U * V).sum(1) / b).mean() / 2
    G = U @ U.T / b
    off = ~torch.eye(B, dtype=torch.bool, device=U.device)
    push = G[off].pow(2).mean()
    return pull + beta * push


class NeighbourPairs:
    """Data source of anchor/neighbour pairs for :class:`NeighbourHashing`.

    ``take(idx)`` returns a batch of ``2B`` rows: ``X[idx]`` followed by ``X[j_i]`` with
    ``j_i`` drawn uniformly from the ``m`` graph neighbours of each ``idx_i`` (row i of
    ``neighbors``), so the second half of the batch holds one neighbour of each anchor. Draws
    come from the source's own seeded generator.

    Parameters
    ----------
    X : (n, d) float
    neighbors : (n, m) int, e.g. from :func:`knn_graph`
    random_state : int
    """

    def __init__(self, X, neighbors, random_state: int = 0):
        self.X = torch.from_numpy(np.ascontiguousarray(np.asarray(X, np.float32)))
        nb = np.asarray(neighbors)
        if self.X.ndim != 2:
            raise ValueError(f"X must be 2-D (n, d), got shape {tuple(self.X.shape)}")
        if nb.ndim != 2 or nb.shape[0] != self.X.shape[0] or nb.shape[1] < 1 or \
                not np.issubdtype(nb.dtype, np.integer):
            raise ValueError(f"neighbors must be an integer array (n, m) with n = "
                             f"{self.X.shape[0]} rows of X and m >= 1, got {nb.dtype} "
                             f"{nb.shape}")
        if nb.size and (nb.min() < 0 or nb.max() >= len(nb)):
            raise ValueError(f"neighbors must index rows of X in [0, {len(nb)}), got values "
                             f"in [{nb.min()}, {nb.max()}]")
        self.neighbors = torch.from_numpy(nb.astype(np.int64))
        self.generator = torch.Generator().manual_seed(int(random_state))

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def take(self, idx: torch.Tensor) -> Batch:
        """``Batch(x)`` with ``x`` (2B, d): the anchors ``X[idx]``, then one random graph
        neighbour of each."""
        j = torch.randint(0, self.neighbors.shape[1], (len(idx),), generator=self.generator)
        nb = self.neighbors[idx, j]
        return Batch(torch.cat([self.X[idx], self.X[nb]]))


class NeighbourHashing(Term):
    """Unsupervised neighbourhood term on a :class:`BinaryCodeAE`'s code:
    ``R = λ · neighbour_hash_loss(u[:B], u[B:], β)`` on a batch of ``2B`` rows from
    :class:`NeighbourPairs` (anchors, then one kNN-graph neighbour of each).

    ``u`` is the relaxed code ``tanh(a / 2τ) = 2σ(a/τ) − 1`` (``code="relaxed"``, the
    straight-through surrogate of the model), or the hard code ``2z − 1`` with the
    straight-through gradient (``code="hard"``, so the term sees the Hamming distances the
    ranking uses).

    Parameters
    ----------
    lam : float >= 0
        Weight λ (the reconstruction loss is a per-image sum over pixels, ~100 nats).
    beta : float >= 0
        Weight β of the random-pair decorrelation inside :func:`neighbour_hash_loss`.
    code : {"relaxed", "hard"}

    References
    ----------
    Weiss et al., NIPS 2008; Liu et al., ICML 2011; Bengio et al. 2013 (straight-through).
    """

    name = "neighbour_hash"
    params = (Param("lam", float, 300.0, "weight λ of the neighbourhood term", lo=0),
              Param("beta", float, 1.0, "weight β of the random-pair decorrelation", lo=0),
              Param("code", str, "hard", "code the term sees",
                    choices=("relaxed", "hard")))

    def __init__(self, lam: float = 300.0, beta: float = 1.0, code: str = "hard"):
        super().__init__()
        self.lam = self.check("lam", lam)
        self.beta = self.check("beta", beta)
        self.code = self.check("code", code)

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, BinaryCodeAE):
            raise ValueError(f"the neighbour_hash term needs a BinaryCodeAE, got "
                             f"{type(model).__name__}")

    def forward(self, model: nn.Module, batch: Batch, out: AEOutput | torch.Tensor
                ) -> torch.Tensor:
        n = batch.size
        if not isinstance(out, AEOutput) or n % 2 or n < 4:
            raise ValueError(f"the neighbour_hash term needs a BinaryCodeAE output on a batch "
                             f"of 2B >= 4 rows from NeighbourPairs, got {n} rows")
        if self.code == "hard":
            u = 2 * out.code - 1
        else:
            u = torch.tanh(out.preactivations[0] / (2 * model.tau))
        return self.lam * neighbour_hash_loss(u[:n // 2], u[n // 2:], self.beta)


def select_epoch(p_at_k, mean_ap, rule: str = "map") -> int:
    """The epoch kept by the validation selection rule (epoch 0 = the ITQ start).

    ``rule="map"``: the epoch with the highest validation mAP among the epochs whose
    validation precision@k is at least epoch 0's (epoch 0 always qualifies, so the result is
    never below the start in either measure); ``rule="p_at_k"``: the highest precision@k.
    Ties keep the earliest epoch.

    Parameters
    ----------
    p_at_k, mean_ap : sequence of float, same length T >= 1
    rule : {"map", "p_at_k"}

    Returns
    -------
    int in [0, T)
    """
    p, m = np.asarray(p_at_k, np.float64), np.asarray(mean_ap, np.float64)
    check_choice("rule", rule, ("map", "p_at_k"))
    if p.ndim != 1 or p.size == 0 or m.shape != p.shape:
        raise ValueError(f"p_at_k and mean_ap must be 1-D of the same length >= 1, got "
                         f"shapes {p.shape} and {m.shape}")
    if rule == "p_at_k":
        return int(np.argmax(p))
    return int(np.argmax(np.where(p >= p[0], m, -np.inf)))


def fit_binary_code_ae(X, n_bits: int, *, X_val, y_val, y_train, hidden: int = 512,
                       k: int = 100, decoder_max_iter: int = 5, max_iter: int = 20,
                       batch_size: int = 128, learning_rate: float = 1e-4,
                       decoder_learning_rate: float = 1e-3, patience: int = 3,
                       itq_iter: int = 50, graph_weight: float = 300.0,
                       graph_beta: float = 1.0, graph_code: str = "hard",
                       n_neighbors: int = 10, graph_components: int | None = 50,
                       selection: str = "map", random_state: int = 0
                       ) -> tuple[BinaryCodeAE, dict]:
    """Fit a :class:`BinaryCodeAE`: ITQ start, decoder fit on the frozen ITQ codes, then
    end-to-end straight-through fine-tuning of reconstruction + a neighbourhood term,
    selected on validation mAP without losing validation precision@k.

    1. ``ITQ(n_bits).fit(X)`` and :meth:`BinaryCodeAE.init_from_itq` (the code is ITQ's).
    2. ``decoder_max_iter`` epochs of Adam (``decoder_learning_rate``) on the decoder alone,
       Bernoulli cross-entropy ``ℓ(x) = −Σ_j x_j log x̂_j + (1 − x_j) log(1 − x̂_j)``.
    3. With ``graph_weight`` λ > 0: the kNN graph of ``X`` (:func:`knn_graph`,
       ``n_neighbors`` in PCA-``graph_components`` space, built once, no labels) and up to
       ``max_iter`` epochs of Adam (``learning_rate``) on every parameter, through
       :func:`aekit.fit`, of ``(1/2B) Σ ℓ + λ · neighbour_hash_loss(u_anchor, u_neighbour, β)``
       on batches of ``batch_size`` anchors plus one random graph neighbour each
       (:class:`NeighbourPairs`, :class:`NeighbourHashing`). With λ = 0: reconstruction
       alone on plain batches (the earlier method).
    4. At the start and after each epoch, the validation precision@k and mAP of ``X_val``'s
       codes as queries against ``X``'s codes, ranked by Hamming distance (relevant = same
       label, ``y_val`` vs ``y_train``). The kept epoch is :func:`select_epoch` with
       ``selection``: ``"map"`` (default) the highest validation mAP among the epochs whose
       validation precision@k is not below the ITQ start's; ``"p_at_k"`` the highest
       precision@k. Ties keep the earlier epoch; training stops after ``patience`` epochs
       without a new selected epoch.

    Parameters
    ----------
    X : (n, d) float, pixels in [0, 1]
        Training images (also the validation database).
    n_bits : int
    X_val, y_val : (m, d), (m,)
        Validation queries, disjoint from ``X``; never trained on.
    y_train : (n,)
        Labels of ``X``, used only to score the validation queries (never in training).
    graph_weight, graph_beta, graph_code
        λ, β and ``code`` of :class:`NeighbourHashing`.
    n_neighbors, graph_components
        The kNN graph (:func:`knn_graph`).
    selection : {"map", "p_at_k"}

    Returns
    -------
    model : BinaryCodeAE (eval mode)
    info : dict
        ``val_p_at_k`` and ``val_map`` per epoch (index 0: the ITQ start; before and after
        the decoder fit the code is the same), ``best_epoch`` (0 = the ITQ codes were kept),
        ``selection``, ``graph_s`` (seconds to build the graph), ``time_s``, ``itq``.
    """
    from ..objectives import Objective
    from ..train import fit
    from .metrics import evaluate_retrieval

    X = np.asarray(X, np.float32)
    X_val = np.asarray(X_val, np.float32)
    y_val, y_train = np.asarray(y_val), np.asarray(y_train)
    if X.ndim != 2 or X_val.ndim != 2 or X_val.shape[1] != X.shape[1]:
        raise ValueError(f"X and X_val must be 2-D with the same width, got {X.shape} and "
                         f"{X_val.shape}")
    if len(y_train) != len(X) or len(y_val) != len(X_val):
        raise ValueError(f"y_train has {len(y_train)} labels for {len(X)} rows of X, y_val "
                         f"{len(y_val)} for {len(X_val)} rows of X_val")
    graph_weight = check_float("graph_weight", graph_weight, 0)
    check_choice("selection", selection, ("map", "p_at_k"))
    patience = check_int("patience", patience, 1)
    term = NeighbourHashing(graph_weight, graph_beta, graph_code) if graph_weight > 0 else None
    t0 = time.time()
    itq = ITQ(n_bits, n_iter=itq_iter, random_state=random_state).fit(X)
    torch.manual_seed(random_state)
    model = BinaryCodeAE(X.shape[1], n_bits, hidden).init_from_itq(itq, X)

    p_k: list[float] = []
    maps: list[float] = []

    def score(m) -> None:
        s = evaluate_retrieval(m.codes(X_val), m.codes(X), y_val, y_train, metric="hamming",
                               ks=(k,), recall_levels=(0.5,))
        p_k.append(float(s.precision_at_k[k]))
        maps.append(float(s.mean_average_precision))

    common = dict(batch_size=batch_size, random_state=random_state, progress=False,
                  handle_signals=False)
    fit(model, Objective("bce"), X, val=X_val, max_iter=decoder_max_iter,
        learning_rate=decoder_learning_rate, params=list(model.decoder.parameters()),
        **common)
    score(model)
    best = {"epoch": 0, "state": copy.deepcopy(model.state_dict())}

    def monitor(epoch, record, m):
        score(m)
        record[f"val_p_at_{k}"], record["val_map"] = p_k[-1], maps[-1]
        m.train()
        e = select_epoch(p_k, maps, selection)
        if e != best["epoch"]:
            best.update(epoch=e, state=copy.deepcopy(m.state_dict()))
        return epoch - best["epoch"] >= patience

    graph_s = 0.0
    if max_iter > 0:
        if term is None:
            data, objective = X, Objective("bce")
        else:
            tg = time.time()
            nb = knn_graph(X, n_neighbors, n_components=graph_components)
            graph_s = time.time() - tg
            data = NeighbourPairs(X, nb, random_state=random_state)
            objective = Objective("bce", [term])
        fit(model, objective, data, max_iter=max_iter, learning_rate=learning_rate,
            callbacks=[monitor], **common)
    model.load_state_dict(best["state"])
    model.eval()
    return model, {"val_p_at_k": p_k, "val_map": maps, "k": k, "best_epoch": best["epoch"],
                   "selection": selection, "graph_s": graph_s, "time_s": time.time() - t0,
                   "itq": itq}
