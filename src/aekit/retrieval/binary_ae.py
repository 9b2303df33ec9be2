"""Binary-code autoencoder for image retrieval that starts at ITQ and leaves it only when the
validation retrieval improves.

The encoder's pre-activation is a linear path initialised at PCA + the ITQ rotation plus a
nonlinear residual path initialised at zero, so before any training the binary code *is* the
ITQ code; a decoder reconstructs the image from the binary code, and encoder and decoder are
fine-tuned through the threshold with a straight-through estimator. Model selection keeps the
epoch (the ITQ start included) with the best validation precision@k, so on the validation
queries the result is never worse than ITQ.

References
----------
Y. Gong & S. Lazebnik, "Iterative quantization", CVPR 2011, section 2.3 (the start).
R. Salakhutdinov & G. Hinton, "Semantic hashing", IJAR 50(7), 2009 (binary autoencoder
codes). Y. Bengio, N. Léonard & A. Courville, "Estimating or propagating gradients through
stochastic neurons", arXiv:1308.3432, 2013 (straight-through estimator). M. Carreira-Perpiñán
& R. Raziperchikolaei, "Hashing with binary autoencoders", CVPR 2015 (binary AE initialised
from ITQ).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from ..models.base import AEOutput
from .baselines import ITQ

__all__ = ["BinaryCodeAE", "fit_binary_code_ae"]


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


def fit_binary_code_ae(X, n_bits: int, *, X_val, y_val, y_train, hidden: int = 512,
                       k: int = 100, decoder_max_iter: int = 5, max_iter: int = 20,
                       batch_size: int = 128, learning_rate: float = 1e-4,
                       decoder_learning_rate: float = 1e-3, patience: int = 3,
                       itq_iter: int = 50, random_state: int = 0
                       ) -> tuple[BinaryCodeAE, dict]:
    """Fit a :class:`BinaryCodeAE`: ITQ start, decoder fit on the frozen ITQ codes, then
    end-to-end straight-through fine-tuning selected on validation precision@k.

    1. ``ITQ(n_bits).fit(X)`` and :meth:`BinaryCodeAE.init_from_itq` (the code is ITQ's).
    2. ``decoder_max_iter`` epochs of Adam (``decoder_learning_rate``) on the decoder alone,
       Bernoulli cross-entropy ``−Σ_j x_j log x̂_j + (1 − x_j) log(1 − x̂_j)``.
    3. Up to ``max_iter`` epochs of Adam (``learning_rate``) on every parameter with the same
       loss, through :func:`aekit.fit`. After each epoch (and at the start), the validation
       score is the precision@k of ``X_val``'s codes as queries against ``X``'s codes ranked
       by Hamming distance (relevant = same label, ``y_val`` vs ``y_train``); the model of
       the best epoch is kept (ties keep the earlier, so the ITQ start wins ties) and
       training stops after ``patience`` epochs without improvement.

    Parameters
    ----------
    X : (n, d) float, pixels in [0, 1]
        Training images (also the validation database).
    n_bits : int
    X_val, y_val : (m, d), (m,)
        Validation queries, disjoint from ``X``; never trained on.
    y_train : (n,)
        Labels of ``X``, used only to score the validation queries.

    Returns
    -------
    model : BinaryCodeAE (eval mode)
    info : dict
        ``val_p_at_k`` per epoch (index 0: ITQ start, before/after the decoder fit the code
        is the same), ``val_map`` the validation mAP of the same rankings (recorded, not
        used for the choice), ``best_epoch`` (0 = the ITQ codes were kept), ``time_s``.
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
    t0 = time.time()
    itq = ITQ(n_bits, n_iter=itq_iter, random_state=random_state).fit(X)
    torch.manual_seed(random_state)
    model = BinaryCodeAE(X.shape[1], n_bits, hidden).init_from_itq(itq, X)

    val_map: list[float] = []

    def score(m) -> float:
        s = evaluate_retrieval(m.codes(X_val), m.codes(X), y_val, y_train, metric="hamming",
                               ks=(k,), recall_levels=(0.5,))
        val_map.append(float(s.mean_average_precision))
        return s.precision_at_k[k]

    common = dict(batch_size=batch_size, random_state=random_state, progress=False,
                  handle_signals=False)
    fit(model, Objective("bce"), X, val=X_val, max_iter=decoder_max_iter,
        learning_rate=decoder_learning_rate, params=list(model.decoder.parameters()),
        **common)
    scores = [score(model)]
    best = {"score": scores[0], "epoch": 0, "state": copy.deepcopy(model.state_dict())}

    def monitor(epoch, record, m):
        s = score(m)
        scores.append(s)
        record[f"val_p_at_{k}"] = s
        m.train()
        if s > best["score"]:
            best.update(score=s, epoch=epoch, state=copy.deepcopy(m.state_dict()))
        return epoch - best["epoch"] >= patience

    if max_iter > 0:
        fit(model, Objective("bce"), X, val=X_val, max_iter=max_iter,
            learning_rate=learning_rate, callbacks=[monitor], **common)
    model.load_state_dict(best["state"])
    model.eval()
    return model, {"val_p_at_k": scores, "val_map": val_map, "k": k, "best_epoch": best["epoch"],
                   "time_s": time.time() - t0, "itq": itq}
