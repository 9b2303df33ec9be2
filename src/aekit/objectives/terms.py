"""Every objective term in one place: regularisers, penalties and adversarial losses.

Each term is a :class:`~aekit.objectives.core.Term`: ``term(model, batch, out) -> scalar``,
already weighted, where ``batch`` is the :class:`~aekit.data.batch.Batch` and ``out`` the
model's output on ``batch.input``. Terms are registered by name in :data:`TERMS` with their
hyperparameters declared once in ``params``::

    Objective("bce", [KLSparsity(rho=0.05, beta=0.1), Contractive(lam=0.1)])
    Objective("cross_entropy", [VAT(eps=2.0)])          # a classifier's objective
    make_term("kl_sparsity", rho=0.05)                    # by name, validated

Batch means are over the n samples of the batch, sums over the k code units.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..data.batch import Batch
from ..models.base import AEOutput, Autoencoder
from ..models.dense import DenseAE, LinearAE
from ..models.jacobian import batch_jacobian
from ..models.psd import psd_energy
from ..models.rbm import RBM
from ..sparse.common import lipschitz_constant
from ..sparse.ista import fista
from ..validation import Param, check_int
from .core import Objective, Term, mse, output_float
from .nca import NCA
from .variational import GaussianKL, IWAEBound

__all__ = [
    "CONTRACTIVE_METHODS",
    "FGSM",
    "TERMS",
    "VAT",
    "Contractive",
    "ContrastiveDivergence",
    "DeadUnitEntropy",
    "KLSparsity",
    "L1Activity",
    "PSDPrediction",
    "WeightDecay",
    "batch_stats_frozen",
    "fgsm_loss",
    "kl_bernoulli",
    "make_objective",
    "make_term",
    "rbm_objective",
    "vat_direction",
    "vat_loss",
]

CONTRACTIVE_METHODS = ("auto", "closed_form", "autograd")


class WeightDecay(Term):
    """L2 weight decay on weight matrices only: ``η Σ_l ‖W_l‖²_F`` (biases and norms excluded).

    A tied weight is counted once. Unlike the optimiser's ``weight_decay`` this is part of the
    objective, so it is logged and shows in the loss breakdown.

    Parameters
    ----------
    eta : float
        η >= 0.

    References: Goodfellow, Bengio & Courville, *Deep Learning*, section 7.1.1.
    """

    name = "weight_decay"
    params = (Param("eta", float, 1e-4, "weight η of the squared Frobenius norms", lo=0),)

    def __init__(self, eta: float = 1e-4):
        super().__init__()
        self.eta = self.check("eta", eta)

    def forward(self, model, batch, out):
        total = batch.x.new_zeros(())
        for n, p in model.named_parameters():
            if p.ndim >= 2 and n.endswith("weight"):
                total = total + p.pow(2).sum()
        return self.eta * total


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
    params = (Param("lam", float, 1e-3, "weight λ of the L1 penalty on the code", lo=0),)

    def __init__(self, lam: float = 1e-3):
        super().__init__()
        self.lam = self.check("lam", lam)

    def forward(self, model: Autoencoder, batch: Batch, out: AEOutput) -> torch.Tensor:
        return self.lam * out.code.abs().flatten(1).sum(1).mean()


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
    params = (Param("rho", float, 0.05, "target mean activation ρ of each code unit", lo=0,
                    hi=1, lo_open=True, hi_open=True),
              Param("beta", float, 1.0, "weight β of the KL penalty", lo=0))

    def __init__(self, rho: float = 0.05, beta: float = 1.0):
        super().__init__()
        self.rho = self.check("rho", rho)
        self.beta = self.check("beta", beta)

    def check_model(self, model: Autoencoder) -> None:
        act = _code_activation(model)
        if act != "sigmoid":
            raise ValueError("KLSparsity needs a model with code_activation='sigmoid' (code "
                             f"values in [0, 1]); got code_activation={act!r}")

    def forward(self, model: Autoencoder, batch: Batch, out: AEOutput) -> torch.Tensor:
        act = _code_activation(model)
        if act != "sigmoid":
            raise ValueError("KLSparsity needs a model with code_activation='sigmoid' (code "
                             f"values in [0, 1]); got code_activation={act!r}")
        rho_hat = out.code.flatten(1).mean(0)  # (n, k) -> (k,)
        return self.beta * kl_bernoulli(self.rho, rho_hat).sum()


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
    params = (Param("lam", float, 1e-2, "weight λ of the usage-entropy penalty", lo=0),
              Param("threshold", float, 0.0, "activity threshold of the dead-unit count"))

    def __init__(self, lam: float = 1e-2, threshold: float = 0.0):
        super().__init__()
        self.lam = self.check("lam", lam)
        self.threshold = self.check("threshold", threshold)
        self.n_dead = -1

    def forward(self, model: Autoencoder, batch: Batch, out: AEOutput) -> torch.Tensor:
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


#: d h/d a for element-wise code activations, from the code h and pre-activation a.
_ACT_DERIVATIVES = {
    "sigmoid": lambda h, a: h * (1 - h),
    "tanh": lambda h, a: 1 - h * h,
    "relu": lambda h, a: (a > 0).to(h.dtype),
    "linear": lambda h, a: torch.ones_like(h),
}



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
    >>> round(Contractive(1.0)(m, Batch(x), m(x)).item(), 4)
    0.3125
    """

    name = "contractive"
    params = (Param("lam", float, 0.1, "weight λ of the Jacobian penalty", lo=0),
              Param("method", str, "auto", "closed form where available, or autograd",
                    choices=CONTRACTIVE_METHODS),
              Param("chunk_size", int, None, "samples per vectorised Jacobian chunk", lo=1,
                    optional=True))

    def __init__(self, lam: float = 0.1, method: str = "auto", chunk_size: int | None = None):
        super().__init__()
        self.lam = self.check("lam", lam)
        self.method = self.check("method", method)
        self.chunk_size = self.check("chunk_size", chunk_size)

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

    def forward(self, model: Autoencoder, batch: Batch, out: AEOutput) -> torch.Tensor:
        if self.resolve_method(model) == "closed_form":
            W = model.encoder_layers()[0].weight  # (k, d)
            deriv = _ACT_DERIVATIVES[_code_activation(model)]
            s = deriv(out.code, out.preactivations[-1]).pow(2)  # (n, k)
            return self.lam * (s @ W.pow(2).sum(1)).mean()
        J = batch_jacobian(model, batch.input, chunk_size=self.chunk_size)  # (n, k, d)
        return self.lam * J.pow(2).flatten(1).sum(1).mean()





class ContrastiveDivergence(Term):
    """CD-k as an objective term: ``R = (1/n) Σ_i [F(v_i) − F(ṽ_i)]`` with ṽ held constant.

    ``ṽ`` is the end of a k-step Gibbs chain started at the data (:meth:`RBM.gibbs`, no gradient
    through it), so ``∇_θ R`` is the CD-k estimate of the negative log-likelihood gradient,
    e.g. ``∂R/∂W = −(1/n) Σ_i (h(v_i) v_iᵀ − h(ṽ_i) ṽ_iᵀ)`` with ``h(v) = E[h | v]``. Its value
    is the free-energy gap, not a loss that should reach 0; the reconstruction error is the
    usual monitor. The chain's generator state is part of the term's ``state_dict`` (extra
    state), so a resumed run draws the same chain.

    Parameters
    ----------
    k : int
        Gibbs steps (1 in Hinton & Salakhutdinov 2006).
    seed : int
        Seeds the term's own generator for the Gibbs chain.

    References
    ----------
    Hinton, "Training products of experts by minimizing contrastive divergence", Neural
    Computation 14, 2002, section 3; Hinton, "A practical guide to training restricted
    Boltzmann machines", UTML TR 2010-003, section 3.
    """

    name = "cd"
    params = (Param("k", int, 1, "Gibbs steps of the negative chain", lo=1),
              Param("seed", int, 0, "seed of the chain's generator", lo=0))

    def __init__(self, k: int = 1, seed: int = 0):
        super().__init__()
        self.k = self.check("k", k)
        self.seed = self.check("seed", seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, RBM):
            raise ValueError(f"ContrastiveDivergence needs an RBM, got {type(model).__name__}")

    def forward(self, model: Autoencoder, batch: Batch, out: AEOutput) -> torch.Tensor:
        self.check_model(model)
        v = batch.input
        v_neg = model.gibbs(v, self.k, self.generator)
        return (model.free_energy(v) - model.free_energy(v_neg)).mean()

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def _mse_monitor(x: torch.Tensor, out: AEOutput) -> torch.Tensor:
    """Squared error of the mean-field reconstruction, logged but carrying no gradient."""
    with torch.no_grad():
        return mse(x, out)


def rbm_objective(k: int = 1, *, eta: float = 0.0, seed: int = 0) -> Objective:
    """Objective that trains an :class:`~aekit.models.rbm.RBM` by CD-k inside :func:`fit`.

    ``J = R_CD + η Σ ‖W‖²_F`` (biases excluded), plus the mean-field reconstruction error
    ``(1/n) Σ_i ‖v_i − E[v | E[h | v_i]]‖²`` as the ``recon`` part, logged every epoch but
    with no gradient. ``train_loss`` is therefore a monitor plus the CD surrogate: read
    ``train_recon``.

    Parameters
    ----------
    k : int
        Gibbs steps of :class:`ContrastiveDivergence`.
    eta : float
        η of :class:`WeightDecay`; Hinton & Salakhutdinov's weight cost 2e-4 is η = 1e-4 (the
        gradient of η‖W‖² is 2ηW).
    seed : int
        Seed of the Gibbs chain's generator.

    References
    ----------
    Hinton & Salakhutdinov, Science 2006, supporting online material.
    """
    terms: list[Term] = [ContrastiveDivergence(k, seed=seed)]
    if eta:
        terms.append(WeightDecay(eta))
    return Objective(_mse_monitor, terms)


class PSDPrediction(Term):
    """PSD's encoder objective: ``(α/2)(1/n) Σ_i ‖z*_i − F(x_i)‖²`` at the inferred codes.

    ``z*_i = argmin_z ½‖x_i − D z‖² + λ‖z‖₁ + (α/2)‖z − F(x_i)‖²`` by FISTA warm-started at
    the prediction ``F(x_i)`` (the prediction term makes it strongly convex, so few
    iterations are needed); ``z*`` is a constant for the gradient, so only the encoder
    ``(W, b, g)`` learns from this term. In training mode it keeps the batch and its codes in
    :attr:`last` for the dictionary step (:class:`aekit.train.psd.DictionaryStep`) and sums the
    PSD energy and solver iterations, logged per epoch as ``psd_energy`` and
    ``psd_solver_iters``.

    Parameters
    ----------
    lam : float
        λ of the ℓ1 term.
    alpha : float
        α > 0, weight of the prediction term.
    solver_max_iter, solver_tol
        FISTA settings for code inference.

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun, "Fast inference in sparse coding algorithms with
    applications to object recognition", CBLL-TR-2008-12-01 (arXiv:1010.3467), §2.1.
    """

    name = "psd"
    params = (Param("lam", float, 0.5, "weight λ of the code's ℓ1 norm", lo=0),
              Param("alpha", float, 1.0, "weight α of the prediction term", lo=0,
                    lo_open=True),
              Param("solver_max_iter", int, 100, "FISTA iterations per batch", lo=1),
              Param("solver_tol", float, 1e-3, "FISTA relative tolerance", lo=0))

    def __init__(self, lam: float = 0.5, alpha: float = 1.0, solver_max_iter: int = 100,
                 solver_tol: float = 1e-3):
        super().__init__()
        self.lam = self.check("lam", lam)
        self.alpha = self.check("alpha", alpha)
        self.solver_max_iter = self.check("solver_max_iter", solver_max_iter)
        self.solver_tol = self.check("solver_tol", solver_tol)
        self.L: float | None = None  # Lipschitz constant of the current dictionary
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        self._sums = [0.0, 0.0, 0, 0]  # energy, solver iterations, samples, batches

    def forward(self, model: nn.Module, batch: Batch, out) -> torch.Tensor:
        x = batch.input
        zp = model.encode(x)
        with torch.no_grad():
            if self.L is None:
                self.L = lipschitz_constant(model.D)
            z0 = zp.detach()
            z, info = fista(x, model.D, self.lam, init=z0, prior=z0, prior_weight=self.alpha,
                            positive=model.positive, max_iter=self.solver_max_iter,
                            tol=self.solver_tol, L=self.L)
            if self.training:
                e = float(psd_energy(x, z, model.D, z0, lam=self.lam, alpha=self.alpha).sum())
                self._sums = [self._sums[0] + e, self._sums[1] + info.n_iter,
                              self._sums[2] + x.shape[0], self._sums[3] + 1]
                self.last = (x, z)
        return 0.5 * self.alpha * (z - zp).pow(2).sum(1).mean()

    def metrics(self) -> dict[str, float]:
        e, it, n, nb = self._sums
        self._sums = [0.0, 0.0, 0, 0]
        return {"energy": e / n, "solver_iters": it / nb} if n else {}


# --- adversarial terms for classifiers -----------------------------------------------------

def _logits(out) -> torch.Tensor:
    if isinstance(out, AEOutput):
        raise ValueError("adversarial terms need a model whose output is class logits (n, C), "
                         "e.g. EncoderClassifier; got an autoencoder's AEOutput")
    return out


class FGSM(Term):
    """Adversarial training with the fast gradient sign method, as a term.

    With the objective's cross-entropy ``J(x, y)`` the total becomes
    ``J + (1 − α)(J(x̃, y) − J(x, y)) = α J(x, y) + (1 − α) J(x̃, y)``,
    ``x̃ = clip(x + ε sign ∇ₓJ(x, y))``. The perturbation is a constant for the weight gradient
    (no gradient flows through ``sign``); each sample's step follows the sign of its own
    gradient, since ``∂J/∂x_i = (1/n) ∂J_i/∂x_i``. In train mode dropout draws separate masks
    for the two passes. The logged value is the weighted excess loss under attack.

    Parameters
    ----------
    eps : float
        ε ≥ 0, the max-norm size of the perturbation (in the units of x).
    alpha : float in [0, 1]
        Weight of the clean loss.
    clip_low, clip_high : float or None
        Range x̃ is clipped to (pixels in [0, 1] by default); None leaves that side open.

    References
    ----------
    Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015,
    eq. (6) (ε = 0.25, α = 0.5 on permutation-invariant MNIST).
    """

    name = "fgsm"
    needs_input_grad = True
    params = (Param("eps", float, 0.25, "max-norm size ε of the perturbation", lo=0),
              Param("alpha", float, 0.5, "weight α of the clean loss", lo=0, hi=1),
              Param("clip_low", float, 0.0, "lower clip of the perturbed input", optional=True),
              Param("clip_high", float, 1.0, "upper clip of the perturbed input",
                    optional=True))

    def __init__(self, eps: float = 0.25, alpha: float = 0.5, clip_low: float | None = 0.0,
                 clip_high: float | None = 1.0):
        super().__init__()
        self.eps = self.check("eps", eps)
        self.alpha = self.check("alpha", alpha)
        self.clip_low = self.check("clip_low", clip_low)
        self.clip_high = self.check("clip_high", clip_high)

    def forward(self, model: nn.Module, batch: Batch, out) -> torch.Tensor:
        logits, y = _logits(out), batch.target
        clean = F.cross_entropy(logits, y)
        (grad,) = torch.autograd.grad(clean, batch.x_tilde, retain_graph=True)
        x_adv = batch.x_tilde.detach() + self.eps * grad.sign()
        if self.clip_low is not None or self.clip_high is not None:
            x_adv = x_adv.clamp(self.clip_low, self.clip_high)
        adv = F.cross_entropy(_logits(output_float(model(x_adv))), y)
        return (1.0 - self.alpha) * (adv - clean)


def _unit_rows(d: torch.Tensor) -> torch.Tensor:
    """Each row of ``d`` scaled to unit L2 norm (rows of zeros stay zero).

    Rows are first divided by their largest magnitude, so rows of tiny entries (a gradient of
    1e-20 from a confident softmax) do not underflow in the sum of squares.
    """
    flat = _unit_max_rows(d.reshape(len(d), -1))
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1.0)).reshape(d.shape)


def _unit_max_rows(flat: torch.Tensor) -> torch.Tensor:
    """Each row of the 2-D ``flat`` divided by its largest magnitude (zero rows stay zero)."""
    m = flat.abs().amax(dim=1, keepdim=True)
    return flat / torch.where(m > 0, m, torch.ones_like(m))


@contextlib.contextmanager
def batch_stats_frozen(model: nn.Module, x: torch.Tensor,
                       rng: torch.Tensor | None = None) -> Iterator[bool]:
    """Within the block, every batch-norm layer of ``model`` that is in train mode normalises
    with the statistics of the clean batch ``x``, held fixed, and updates no running
    statistics.

    One extra no-grad pass ``model(x)`` (the dropout masks replayed from ``rng`` when given)
    records each layer's batch mean ``μ_B`` and biased variance ``σ²_B``. Inside the block
    the layer computes ``γ (h − μ_B) / √(σ²_B + ε) + β``: an affine map of each sample on its
    own. At the clean batch it is the train-mode function exactly; for a perturbed batch
    ``x + r`` the statistics do not move with ``r``. The per-sample Hessian of
    :func:`vat_direction` is then well defined, and VAT's extra passes leave the running
    statistics as the main pass set them. (Miyato et al.'s code also keeps the extra passes
    out of the running averages, but lets the statistics of the perturbed batch follow ``r``.)
    A model without batch norm in train mode is untouched (no extra pass). The block's value
    (``with ... as frozen``) says whether any layer was frozen.

    Parameters
    ----------
    model : nn.Module
    x : Tensor
        The clean batch whose statistics are frozen.
    rng : Tensor, optional
        A torch RNG state to replay for the recording pass; the RNG state is restored after.
    """
    bns = [m for m in model.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if not bns:
        yield False
        return
    saved = [(m.running_mean, m.running_var, m.num_batches_tracked) for m in bns]
    for m in bns:  # the recording pass must not count as a step of the running averages
        if m.running_mean is not None:
            m.running_mean = m.running_mean.clone()
            m.running_var = m.running_var.clone()
            m.num_batches_tracked = m.num_batches_tracked.clone()
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(mod, inputs):
        h = inputs[0].detach()
        h = h.to(torch.promote_types(h.dtype, torch.float32))
        dims = [d for d in range(h.ndim) if d != 1]
        ref = mod.running_mean if mod.running_mean is not None else mod.weight
        dtype = ref.dtype if ref is not None else h.dtype
        stats[mod] = (h.mean(dims).to(dtype), h.var(dims, unbiased=False).to(dtype))

    hooks = [m.register_forward_pre_hook(record) for m in bns]
    state = torch.get_rng_state()
    try:
        if rng is not None:
            torch.set_rng_state(rng)
        with torch.no_grad():
            model(x.detach())
    finally:
        torch.set_rng_state(state)
        for hk in hooks:
            hk.remove()
    try:
        for m in bns:
            m.running_mean, m.running_var = stats[m]
            m.eval()
        yield True
    finally:
        for m, (rm, rv, nb) in zip(bns, saved):
            m.running_mean, m.running_var, m.num_batches_tracked = rm, rv, nb
            m.train()


def _power_steps(model: nn.Module, x: torch.Tensor, x_req: torch.Tensor, logits: torch.Tensor,
                 rng: torch.Tensor, d: torch.Tensor, n_power: int) -> torch.Tensor:
    """``n_power`` steps ``d ← H d / ‖H d‖`` with ``H = Jᵀ (diag p − p pᵀ) J`` per sample.

    ``J d`` is a forward-mode Jacobian-vector product (the dropout masks of the pass that made
    ``logits`` replayed from ``rng``), the middle factor is applied in float64, and ``Jᵀ v`` is a
    backward pass through ``logits``'s graph (``x_req`` is its input, requiring grad). Each
    row of ``v`` is rescaled before the backward pass, which assumes the model treats the
    samples of a batch independently: true for dropout, and for batch norm inside
    :func:`batch_stats_frozen` (the callers run it there); ``logits`` must then come from a
    pass with the same frozen statistics.
    """
    p = F.softmax(logits.detach().double(), dim=1)
    for _ in range(n_power):
        torch.set_rng_state(rng)
        _, ju = torch.func.jvp(model, (x,), (_unit_rows(d).to(x.dtype),))
        u = ju.detach().double()
        v = p * (u - (p * u).sum(dim=1, keepdim=True))  # (diag p − p pᵀ) u, row by row
        # A per-row scale is free (samples are independent); it keeps Jᵀ v of a confident
        # sample (v ~ 1e-20) clear of float32 underflow.
        v = _unit_max_rows(v)
        (d,) = torch.autograd.grad(logits, x_req, grad_outputs=v.to(logits.dtype),
                                   retain_graph=True)
    return _unit_rows(d.detach())


def vat_direction(model: nn.Module, x: torch.Tensor, *, n_power: int = 1,
                  d0: torch.Tensor | None = None) -> torch.Tensor:
    """Unit virtual-adversarial directions: the power method on each sample's KL Hessian.

    ``H_i = ∇²_r KL(p(·|x_i) ‖ p(·|x_i + r)) |_{r=0} = J_iᵀ (diag p_i − p_i p_iᵀ) J_i``, with
    ``J_i`` (C, d) the Jacobian of the logits at ``x_i``; returns ``H_i^k d0_i / ‖H_i^k d0_i‖``
    for ``k = n_power`` (``d0`` standard normal by default), which tends to the top eigenvector
    of ``H_i``: the input direction that changes the prediction fastest. This is what
    :class:`VAT` perturbs along.

    The paper estimates ``H_i d`` by a finite difference of ``∇_r KL`` at ``r = ξ d``
    (ξ = 1e-6). In float32 that step is below the resolution of pixels near 1 and of confident
    softmax outputs (on an MNIST network the estimate has cosine ≈ 0 with the float64 value),
    so here ``H_i d`` is computed exactly: ``J d`` by forward-mode differentiation, the middle
    factor in float64, ``Jᵀ v`` by a backward pass. For a ReLU network this is the ξ → 0 limit
    of the paper's estimate.

    Parameters
    ----------
    model : nn.Module
        Maps x (n, d) to logits (n, C). In train mode every pass reuses one set of dropout
        masks, and batch-norm layers use the batch statistics of ``x``, frozen
        (:func:`batch_stats_frozen`), so each sample passes on its own.
    x : Tensor, shape (n, d)
    n_power : int
        Power iterations, ≥ 1.
    d0 : Tensor, shape (n, d), optional
        Starting directions (default: drawn from the global torch RNG).

    Returns
    -------
    Tensor, shape (n, d)
        Rows of unit L2 norm.

    References
    ----------
    Miyato, Maeda, Koyama & Ishii, "Virtual adversarial training", IEEE TPAMI 41(8), 2019,
    section 3 (the power-iteration approximation of the virtual adversarial direction).
    """
    n_power = check_int("n_power", n_power, 1)
    x = x.detach()
    rng = torch.get_rng_state()
    with batch_stats_frozen(model, x, rng):
        torch.set_rng_state(rng)
        x_req = x.clone().requires_grad_(True)
        logits = model(x_req)
        d = torch.randn(x.shape, dtype=x.dtype) if d0 is None else d0.detach().to(x.dtype)
        if d.shape != x.shape:
            raise ValueError(f"d0 must have the shape of x {tuple(x.shape)}, got "
                             f"{tuple(d.shape)}")
        after = torch.get_rng_state()
        out = _power_steps(model, x, x_req, logits, rng, d, n_power)
    torch.set_rng_state(after)
    return out


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or in its own dtype where that is wider (float64 stays float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class VAT(Term):
    """Virtual adversarial training: ``α · mean_i KL(p(·|x_i) ‖ p(·|x_i + r_i))``, ‖r_i‖₂ = ε.

    ``r_i = ε · vat_direction(x)_i`` (:func:`vat_direction`: ``n_power`` power iterations on
    ``H_i = J_iᵀ (diag p_i − p_i p_iᵀ) J_i`` from a random start), the perturbation of L2 norm
    ε that, to second order, changes the prediction most. The label is not used to find ``r``
    ("virtual"); ``p(·|x)`` and ``r`` are constants in the penalty. Added to the objective's
    cross-entropy it gives the paper's supervised objective.

    In train mode every pass reuses the main pass's dropout masks (its RNG state, recorded in
    ``batch.rng_state``, is replayed), so the penalty measures the smoothness of one sampled
    sub-network. The global RNG advances by the main pass plus the draw of the start
    direction, so training stays seeded. Batch-norm layers in train mode normalise the extra
    passes with the clean batch's statistics, frozen (:func:`batch_stats_frozen`, one extra
    no-grad pass per step): each sample is perturbed on its own, and the running statistics
    are those of the main pass only.

    Parameters
    ----------
    eps : float
        ε ≥ 0, the L2 norm of each sample's perturbation (in the units of x).
    alpha : float
        α ≥ 0, weight of the penalty.
    n_power : int
        Power iterations (≥ 1; the paper finds one enough).

    References
    ----------
    Miyato, Maeda, Koyama & Ishii, "Virtual adversarial training: a regularization method for
    supervised and semi-supervised learning", IEEE TPAMI 41(8), 2019 (ε = 2.0 for supervised
    permutation-invariant MNIST).
    """

    name = "vat"
    needs_input_grad = True
    params = (Param("eps", float, 2.0, "L2 norm ε of the perturbation", lo=0),
              Param("alpha", float, 1.0, "weight α of the KL penalty", lo=0),
              Param("n_power", int, 1, "power iterations for the direction", lo=1))

    def __init__(self, eps: float = 2.0, alpha: float = 1.0, n_power: int = 1):
        super().__init__()
        self.eps = self.check("eps", eps)
        self.alpha = self.check("alpha", alpha)
        self.n_power = self.check("n_power", n_power)

    def forward(self, model: nn.Module, batch: Batch, out) -> torch.Tensor:
        logits = _logits(out)
        if self.eps == 0 or self.alpha == 0:
            return logits.new_zeros(()).float()
        x_req, rng = batch.x_tilde, batch.rng_state
        x = x_req.detach()
        d = torch.randn(x.shape, dtype=x.dtype)
        after = torch.get_rng_state()
        with batch_stats_frozen(model, x, rng) as frozen:
            if frozen:  # batch norm: redo the clean pass on a per-sample graph (same logits)
                torch.set_rng_state(rng)
                x_req = x.clone().requires_grad_(True)
                logits = model(x_req)
            r_adv = self.eps * _power_steps(model, x, x_req, logits, rng, d, self.n_power)
            torch.set_rng_state(rng)
            logq = F.log_softmax(_wide(model(x + r_adv)), dim=1)
        torch.set_rng_state(after)
        logp = F.log_softmax(_wide(_logits(out).detach()), dim=1)  # p from the main pass
        return self.alpha * (logp.exp() * (logp - logq)).sum(dim=1).mean()


def _adversarial_objective(term: Term, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           autocast_bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
        total, _ = Objective("cross_entropy", [term])(model, Batch(x, y=y))
    return total


def fgsm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
              alpha: float = 0.5, clip: tuple[float, float] | None = (0.0, 1.0),
              autocast_bf16: bool = False) -> torch.Tensor:
    """``α CE(x, y) + (1 − α) CE(x̃, y)``: :class:`FGSM` with cross-entropy, as a function.

    Parameters
    ----------
    model : nn.Module mapping x (n, d) to logits (n, C); x : (n, d); y : int64 (n,)
    eps, alpha : see :class:`FGSM`
    clip : (low, high) or None
        Range the perturbed input is clipped to.
    autocast_bf16 : bool
        Run the forward passes under CPU bf16 autocast.

    Returns
    -------
    Tensor, the scalar objective, differentiable in the model's parameters.

    References
    ----------
    Goodfellow, Shlens & Szegedy, ICLR 2015, eq. (6).
    """
    lo, hi = (None, None) if clip is None else clip
    return _adversarial_objective(FGSM(eps, alpha, lo, hi), model, x, y, autocast_bf16)


def vat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
             n_power: int = 1, alpha: float = 1.0,
             autocast_bf16: bool = False) -> torch.Tensor:
    """``CE(x, y) + α · mean_i KL(p(·|x_i) ‖ p(·|x_i + r_i))``: :class:`VAT` with cross-entropy.

    Parameters
    ----------
    model : nn.Module mapping x (n, d) to logits (n, C); x : (n, d); y : int64 (n,)
    eps, n_power, alpha : see :class:`VAT`
    autocast_bf16 : bool
        Run the forward passes under CPU bf16 autocast (the KL terms are formed in float32).

    Returns
    -------
    Tensor, the scalar objective, differentiable in the model's parameters.

    References
    ----------
    Miyato, Maeda, Koyama & Ishii, IEEE TPAMI 41(8), 2019.
    """
    return _adversarial_objective(VAT(eps, alpha, n_power), model, x, y, autocast_bf16)


#: Terms by name. Each class declares its hyperparameters in ``params``.
TERMS: dict[str, type[Term]] = {cls.name: cls for cls in (
    WeightDecay, L1Activity, KLSparsity, DeadUnitEntropy, Contractive, ContrastiveDivergence,
    PSDPrediction, FGSM, VAT, NCA, GaussianKL, IWAEBound)}


def make_term(name: str, **params) -> Term:
    """A term by registry name, its parameters validated against the declarations.

    Examples
    --------
    >>> make_term("kl_sparsity", rho=0.1)
    KLSparsity(rho=0.1, beta=1.0)
    """
    if name not in TERMS:
        raise ValueError(f"unknown term {name!r}; expected one of: {', '.join(TERMS)}")
    cls = TERMS[name]
    known = {p.name for p in cls.params}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"term {name!r} has no parameter(s) {unknown}; it takes "
                         f"{sorted(known)}")
    return cls(**params)


def make_objective(loss: str = "mse", *, n_features: int | None = None,
                   weight_decay: float = 0.0, l1: float = 0.0,
                   sparsity_target: float | None = None, sparsity_weight: float = 1.0,
                   dead_unit: float = 0.0, contractive: float = 0.0,
                   terms: Sequence[Term] = (), **renamed) -> Objective:
    """Objective from names and weights, the terms added only when their weight is non-zero.

    ``make_objective("bce", weight_decay=1e-4, l1=1e-3)`` gives
    ``bce + WeightDecay(1e-4) + L1Activity(1e-3)``; ``sparsity_target`` ρ adds
    ``KLSparsity(ρ, sparsity_weight)``, ``dead_unit`` adds ``DeadUnitEntropy``,
    ``contractive`` adds ``Contractive``. Extra ``terms`` are appended as given. The names
    are those of :class:`aekit.Autoencoder` and the run config (:mod:`aekit.schema`); the old
    ``kl_rho`` / ``kl_beta`` are accepted with a FutureWarning until the next release.
    """
    from ..validation import check_float

    if renamed:
        from ..schema import pop_renamed

        new = pop_renamed("aekit.make_objective", renamed,
                          {"sparsity_target": sparsity_target,
                           "sparsity_weight": sparsity_weight},
                          {"sparsity_target": None, "sparsity_weight": 1.0})
        sparsity_target, sparsity_weight = new["sparsity_target"], new["sparsity_weight"]
    kl_rho, kl_beta = sparsity_target, sparsity_weight
    for name, v in (("weight_decay", weight_decay), ("l1", l1), ("sparsity_weight", kl_beta),
                    ("dead_unit", dead_unit), ("contractive", contractive)):
        check_float(name, v, 0)  # named after the caller's argument, not the term's
    ts: list[Term] = []
    if weight_decay:
        ts.append(WeightDecay(weight_decay))
    if l1:
        ts.append(L1Activity(l1))
    if kl_rho is not None:
        ts.append(KLSparsity(kl_rho, kl_beta))
    if dead_unit:
        ts.append(DeadUnitEntropy(dead_unit))
    if contractive:
        ts.append(Contractive(contractive))
    return Objective(loss, [*ts, *terms], n_features=n_features)
