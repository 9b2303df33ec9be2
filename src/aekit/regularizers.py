"""Regularisation terms for sparse and contractive autoencoders, and code-activity statistics.

Every term is an :class:`aekit.objectives.Term`: ``term(model, x, x_tilde, out) -> scalar``,
already weighted, where ``x`` is the clean batch (n, d), ``x_tilde`` the encoder input and
``out = model(x_tilde)``. Add them to an :class:`~aekit.objectives.Objective`::

    Objective("bce", [KLSparsity(rho=0.05, beta=0.1), Contractive(lam=0.1)])

Batch means are over the n samples of the batch, sums over the k code units.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
from torch.func import jacfwd, jacrev, vmap
from torch.nn import functional as F

from .models.base import AEOutput, Autoencoder
from .models.dense import DenseAE, LinearAE
from .objectives import Term, _nonneg

__all__ = [
    "CONTRACTIVE_METHODS",
    "ActivityStats",
    "Contractive",
    "DeadUnitEntropy",
    "KLSparsity",
    "L1Activity",
    "activity_stats",
    "batch_jacobian",
    "kl_bernoulli",
]


def _code_activation(model: Autoencoder) -> str:
    # Models without the attribute (LinearAE) have a linear code.
    return getattr(model, "code_activation", "linear")


class L1Activity(Term):
    """L1 penalty on the code: ``R = λ (1/n) Σ_i Σ_j |h_ij|``.

    Pushes code units to exactly zero with ReLU codes (and towards zero otherwise), giving an
    overcomplete AE a sparse code.

    Parameters
    ----------
    lam : float
        λ >= 0.

    Uses ``out.code``, shape (n, k).

    References
    ----------
    Goodfellow, Bengio & Courville, *Deep Learning*, section 14.2.1 (sparse autoencoders);
    Lee, Battle, Raina & Ng, "Efficient sparse coding algorithms", NIPS 2006 (the L1 penalty).
    """

    name = "l1_activity"

    def __init__(self, lam: float):
        super().__init__()
        self.lam = _nonneg("lam", lam)

    def forward(self, model: Autoencoder, x: torch.Tensor, x_tilde: torch.Tensor,
                out: AEOutput) -> torch.Tensor:
        return self.lam * out.code.abs().flatten(1).sum(1).mean()

    def extra_repr(self) -> str:
        return f"lam={self.lam}"


def kl_bernoulli(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """Element-wise KL divergence between Bernoulli(ρ) and Bernoulli(ρ̂).

    ``KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂))``; ρ̂ is clipped to
    [ε, 1 − ε] (ε the dtype's machine epsilon) so a saturated unit gives a large finite value.

    Parameters
    ----------
    rho : float
        Target ρ in (0, 1).
    rho_hat : Tensor, shape (k,)
        Mean activations in [0, 1].

    Returns
    -------
    Tensor, shape (k,)

    Examples
    --------
    >>> kl_bernoulli(0.05, torch.tensor([0.05, 0.5])).tolist()  # doctest: +ELLIPSIS
    [0.0, 0.4946...]
    """
    eps = torch.finfo(rho_hat.dtype).eps
    q = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))


class KLSparsity(Term):
    """KL sparsity penalty on the mean activity of sigmoid code units.

    ``R = β Σ_j KL(ρ ‖ ρ̂_j)`` with ``ρ̂_j = (1/n) Σ_i h_ij`` the batch mean of unit j (see
    :func:`kl_bernoulli`). Zero exactly when every unit's mean activity equals ρ. Needs code
    values in [0, 1]: the model's ``code_activation`` must be ``"sigmoid"`` (checked at every
    call, so the error names the model, not a NaN).

    Parameters
    ----------
    rho : float
        Target mean activation ρ in (0, 1), e.g. 0.05.
    beta : float
        Weight β >= 0.

    References
    ----------
    Ng, "Sparse autoencoder", CS294A lecture notes, Stanford 2011, section 3; Lee, Ekanadham &
    Ng, "Sparse deep belief net model for visual area V2", NIPS 2008.
    """

    name = "kl_sparsity"

    def __init__(self, rho: float, beta: float = 1.0):
        super().__init__()
        rho = float(rho)
        if not 0.0 < rho < 1.0:
            raise ValueError(f"rho must be in (0, 1), got {rho}")
        self.rho = rho
        self.beta = _nonneg("beta", beta)

    def check_model(self, model: Autoencoder) -> None:
        act = _code_activation(model)
        if act != "sigmoid":
            raise ValueError("KLSparsity needs a model with code_activation='sigmoid' (code "
                             f"values in [0, 1]); got code_activation={act!r}")

    def forward(self, model: Autoencoder, x: torch.Tensor, x_tilde: torch.Tensor,
                out: AEOutput) -> torch.Tensor:
        act = _code_activation(model)
        if act != "sigmoid":
            raise ValueError("KLSparsity needs a model with code_activation='sigmoid' (code "
                             f"values in [0, 1]); got code_activation={act!r}")
        rho_hat = out.code.flatten(1).mean(0)  # (n, k) -> (k,)
        return self.beta * kl_bernoulli(self.rho, rho_hat).sum()

    def extra_repr(self) -> str:
        return f"rho={self.rho}, beta={self.beta}"


class DeadUnitEntropy(Term):
    """Keeps code units alive: penalises a concentrated mean-activity distribution.

    With ``a`` the code pre-activations (n, k) and the smooth surrogate ``s = softplus(a)``
    (positive, with a non-zero gradient even where a ReLU unit is off)::

        m_j = (1/n) Σ_i s_ij,   p_j = m_j / Σ_l m_l,   H(p) = −Σ_j p_j log p_j,
        R = λ (log k − H(p))  >= 0,

    zero when all units carry the same mean activity and log k when one unit carries all of
    it. Its gradient raises the pre-activations of units whose share p_j is below average
    (∂R/∂p_j = λ (log p_j + 1)), so a ReLU unit drifting towards "never on" is pulled back
    before its gradient vanishes. Combine with :class:`L1Activity`, which alone tends to kill
    units.

    The number of dead units in the last batch (units with ``h_ij <= threshold`` for every
    sample) is kept in :attr:`n_dead` for logging (see also :func:`activity_stats`).

    Parameters
    ----------
    lam : float
        λ >= 0.
    threshold : float
        Activity threshold for the dead-unit count (0 for ReLU codes).

    Attributes
    ----------
    n_dead : int
        Dead units in the most recent batch (-1 before the first call).

    References
    ----------
    Load-balancing penalties on mean unit usage: Shazeer et al., "Outrageously large neural
    networks: the sparsely-gated mixture-of-experts layer", ICLR 2017, section 4. Dead units in
    sparse autoencoders: Bricken et al., "Towards monosemanticity", 2023 (resampling); Gao et
    al., "Scaling and evaluating sparse autoencoders", 2024, section 2.4.
    """

    name = "dead_unit_entropy"

    def __init__(self, lam: float, threshold: float = 0.0):
        super().__init__()
        self.lam = _nonneg("lam", lam)
        threshold = float(threshold)
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        self.threshold = threshold
        self.n_dead = -1

    def forward(self, model: Autoencoder, x: torch.Tensor, x_tilde: torch.Tensor,
                out: AEOutput) -> torch.Tensor:
        with torch.no_grad():
            self.n_dead = int((out.code.flatten(1) <= self.threshold).all(0).sum())
        a = out.preactivations[-1].flatten(1)  # (n, k)
        m = F.softplus(a).mean(0)  # (k,)
        p = m / m.sum()
        # p > 0 always (softplus > 0), so the log is finite; xlogy guards underflow to 0.
        H = -torch.special.xlogy(p, p).sum()
        return self.lam * (math.log(p.shape[0]) - H)

    def metrics(self) -> dict[str, float]:
        return {"dead_units": float(self.n_dead)} if self.n_dead >= 0 else {}

    def extra_repr(self) -> str:
        return f"lam={self.lam}, threshold={self.threshold}"


def batch_jacobian(model: Autoencoder, x: torch.Tensor, *,
                   chunk_size: int | None = None) -> torch.Tensor:
    """Exact per-sample encoder Jacobians ``J_i = ∂f(x_i)/∂x_i``: (n, d) -> (n, k, d).

    Computed with ``torch.func`` (``vmap`` of ``jacrev`` when k <= d, else ``jacfwd``) on the
    deterministic encoder: the model is put in eval mode for the call (batch norm uses its
    running statistics, dropout is off) and restored afterwards. The result stays
    differentiable with respect to the model's parameters, so it can be used in a loss.

    Parameters
    ----------
    model : Autoencoder
    x : Tensor, shape (n, d)
        Points at which to evaluate the Jacobian; same dtype as the model.
    chunk_size : int, optional
        Samples per vectorised chunk (bounds memory at chunk_size·k·d per chunk).

    Returns
    -------
    Tensor, shape (n, k, d)

    References
    ----------
    Rifai et al., "Contractive auto-encoders", ICML 2011, section 3 (the Jacobian J_f(x)).
    """
    def f(xi: torch.Tensor) -> torch.Tensor:  # (d,) -> (k,)
        return model.encode(xi.unsqueeze(0)).squeeze(0)

    k, d = int(model.n_components), int(x.shape[1])
    jac = jacrev(f) if k <= d else jacfwd(f)
    # A fresh copy (still differentiable): on a slice of a larger tensor, torch 2.13's
    # vmap(jacfwd) works on the whole underlying storage and ran out of memory (a 128-row
    # slice of a 10000 x 784 batch took > 20 GB for a 784-1000 encoder).
    x = x.clone(memory_format=torch.contiguous_format)
    was = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            # torch's forward-mode AD emits a one-off internal DeprecationWarning
            # (torch.jit.script) on first use; it is not actionable for aekit users.
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*",
                                    category=DeprecationWarning)
            return vmap(jac, chunk_size=chunk_size)(x)
    finally:
        model.train(was)


#: d h/d a for element-wise code activations, from the code h and pre-activation a.
_ACT_DERIVATIVES = {
    "sigmoid": lambda h, a: h * (1 - h),
    "tanh": lambda h, a: 1 - h * h,
    "relu": lambda h, a: (a > 0).to(h.dtype),
    "linear": lambda h, a: torch.ones_like(h),
}

CONTRACTIVE_METHODS = ("auto", "closed_form", "autograd")


class Contractive(Term):
    """Contractive penalty: ``R = λ (1/n) Σ_i ‖J_f(x̃_i)‖²_F``, ``J_f = ∂h/∂x`` (k × d).

    Evaluated at the encoder input ``x̃`` (the clean x when there is no corruption).

    * ``closed_form``: for a one-layer encoder ``h = σ(W x + b)`` with an element-wise σ,
      ``J = diag(σ'(a)) W`` and ``‖J‖²_F = Σ_j σ'(a_j)² Σ_i W_ji²``; for the sigmoid,
      ``σ'(a_j) = h_j (1 − h_j)``, giving Rifai et al.'s ``Σ_j (h_j (1 − h_j))² Σ_i W_ji²``.
      Costs O(n k + k d) on top of the forward pass. Available for :class:`DenseAE` with one
      encoder layer and a sigmoid, tanh, relu or linear code, and for :class:`LinearAE`.
    * ``autograd``: the exact Jacobian of any encoder via :func:`batch_jacobian`
      (``torch.func``), in O(n k d) memory; differentiable, so the term's gradient is exact.
    * ``auto``: the closed form where available, else autograd.

    Parameters
    ----------
    lam : float
        λ >= 0.
    method : {"auto", "closed_form", "autograd"}
    chunk_size : int, optional
        Passed to :func:`batch_jacobian` for the autograd path.

    References
    ----------
    Rifai, Vincent, Muller, Glorot & Bengio, "Contractive auto-encoders: explicit invariance
    during feature extraction", ICML 2011, section 3 and eq. 4 (the sigmoid closed form).

    Examples
    --------
    >>> m = DenseAE([2, 1], code_activation="sigmoid")
    >>> with torch.no_grad():
    ...     _ = m.enc[0].weight.copy_(torch.tensor([[1.0, 2.0]])), m.enc[0].bias.zero_()
    >>> x = torch.zeros(1, 2)  # h = 0.5: (0.5 · 0.5)² · (1² + 2²)
    >>> round(Contractive(1.0)(m, x, x, m(x)).item(), 4)
    0.3125
    """

    name = "contractive"

    def __init__(self, lam: float, method: str = "auto", chunk_size: int | None = None):
        super().__init__()
        self.lam = _nonneg("lam", lam)
        if method not in CONTRACTIVE_METHODS:
            raise ValueError(f"method must be one of {CONTRACTIVE_METHODS}, got {method!r}")
        if chunk_size is not None and int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.method = method
        self.chunk_size = chunk_size

    @staticmethod
    def has_closed_form(model: Autoencoder) -> bool:
        """Whether ``model``'s encoder is one linear layer and an element-wise activation."""
        if isinstance(model, LinearAE):
            return True
        return (isinstance(model, DenseAE) and len(model.encoder_layers()) == 1
                and model.code_activation in _ACT_DERIVATIVES)

    def resolve_method(self, model: Autoencoder) -> str:
        """The method used for ``model``: ``"closed_form"`` or ``"autograd"``."""
        closed = self.has_closed_form(model)
        if self.method == "closed_form" and not closed:
            raise ValueError(
                "Contractive(method='closed_form') needs a one-layer encoder with a sigmoid, "
                f"tanh, relu or linear code; got {type(model).__name__} with "
                f"{len(model.encoder_layers())} encoder layer(s) and code_activation="
                f"{_code_activation(model)!r}; use method='autograd' or 'auto'")
        if self.method == "auto":
            return "closed_form" if closed else "autograd"
        return self.method

    def forward(self, model: Autoencoder, x: torch.Tensor, x_tilde: torch.Tensor,
                out: AEOutput) -> torch.Tensor:
        if self.resolve_method(model) == "closed_form":
            W = model.encoder_layers()[0].weight  # (k, d)
            deriv = _ACT_DERIVATIVES[_code_activation(model)]
            s = deriv(out.code, out.preactivations[-1]).pow(2)  # (n, k)
            return self.lam * (s @ W.pow(2).sum(1)).mean()
        J = batch_jacobian(model, x_tilde, chunk_size=self.chunk_size)  # (n, k, d)
        return self.lam * J.pow(2).flatten(1).sum(1).mean()

    def extra_repr(self) -> str:
        return f"lam={self.lam}, method={self.method!r}"


class ActivityStats(NamedTuple):
    """Code-unit activity over a set of samples.

    Attributes
    ----------
    mean_activation : float
        Mean of h over samples and units (the average ρ̂_j for a sigmoid code).
    fraction_active : float
        Fraction of (sample, unit) entries with ``h > threshold``.
    dead_units : int
        Units never above the threshold on any sample.
    unit_mean : Tensor, shape (k,)
        Mean activation ρ̂_j of each unit.
    unit_frequency : Tensor, shape (k,)
        Fraction of samples on which each unit is above the threshold.
    """

    mean_activation: float
    fraction_active: float
    dead_units: int
    unit_mean: torch.Tensor
    unit_frequency: torch.Tensor


def activity_stats(codes: torch.Tensor, threshold: float = 0.0) -> ActivityStats:
    """Mean activation, fraction of active entries and dead units of a code matrix.

    ``ρ̂_j = (1/n) Σ_i h_ij``, ``f_j = (1/n) Σ_i 1[h_ij > t]``, dead units = #{j : f_j = 0}.

    Parameters
    ----------
    codes : Tensor or array, shape (n, k)
    threshold : float
        t; 0 for ReLU codes, e.g. 0.05 for sigmoid codes (which are never exactly 0).

    Returns
    -------
    ActivityStats

    References
    ----------
    Ng, "Sparse autoencoder", CS294A lecture notes 2011, section 3 (average activation ρ̂_j).
    """
    H = torch.as_tensor(codes).detach()
    if H.ndim != 2 or H.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty (n, k) matrix, got shape {tuple(H.shape)}")
    H = H if H.is_floating_point() else H.float()
    unit_mean = H.mean(0)
    unit_freq = (H > threshold).to(H.dtype).mean(0)
    return ActivityStats(float(unit_mean.mean()), float(unit_freq.mean()),
                         int((unit_freq == 0).sum()), unit_mean, unit_freq)
