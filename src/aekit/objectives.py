"""Training objectives: a reconstruction loss plus a list of weighted terms.

``Objective(recon, terms)(model, x, x_tilde, out)`` returns ``(total, parts)`` where ``parts``
maps every component's name to its (weighted) value, so the breakdown is logged every step.

Reconstruction losses are per-sample sums over features, averaged over the batch:
``L = (1/n) Σ_i ℓ(x_i, x̂_i)``, matching the usual "error per image" unit (e.g. Hinton &
Salakhutdinov 2006 report Σ_pixels (x − x̂)² per image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .models.base import AEOutput, Autoencoder

__all__ = [
    "LOSSES",
    "GaussianNLL",
    "Objective",
    "Term",
    "WeightDecay",
    "bce",
    "make_objective",
    "mse",
]


def mse(x: torch.Tensor, out: AEOutput) -> torch.Tensor:
    """Squared error per sample: ``ℓ_i = Σ_j (x_ij − x̂_ij)²``. Shapes (n, d) -> (n,)."""
    return (out.reconstruction - x).pow(2).flatten(1).sum(1)


def bce(x: torch.Tensor, out: AEOutput) -> torch.Tensor:
    """Bernoulli cross-entropy per sample from the logits ``s``, computed stably.

    ``ℓ_i = −Σ_j [x_ij log σ(s_ij) + (1 − x_ij) log(1 − σ(s_ij))]
          = Σ_j [max(s, 0) − s x + log(1 + e^{−|s|})]``; needs targets in [0, 1] and a model
    with ``output="sigmoid"``. Shapes (n, d) -> (n,).

    References: Vincent et al. 2010, JMLR, section 2.4 (cross-entropy reconstruction loss).
    """
    return F.binary_cross_entropy_with_logits(out.logits, x, reduction="none").flatten(1).sum(1)


class GaussianNLL(nn.Module):
    """Gaussian negative log-likelihood per sample with a per-feature variance.

    ``ℓ_i = ½ Σ_j [ log(2π σ_j²) + (x_ij − x̂_ij)² / σ_j² ]``. With ``sigma=None`` the
    log-variances ``log σ_j²`` (shape (d,)) are learned with the model (initialised at 0);
    with a float they are fixed. At the optimum σ_j² is the per-feature mean squared error.

    Parameters
    ----------
    n_features : int
        d, the number of features.
    sigma : float or None
        Fixed standard deviation, or None to learn one per feature.

    References: Bishop, *Pattern Recognition and Machine Learning*, section 1.2.4.
    """

    def __init__(self, n_features: int, sigma: float | None = None):
        super().__init__()
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = sigma
        init = torch.zeros(n_features) if sigma is None else torch.full(
            (n_features,), 2 * math.log(sigma))
        if sigma is None:
            self.log_var = nn.Parameter(init)
        else:
            self.register_buffer("log_var", init)

    def forward(self, x: torch.Tensor, out: AEOutput) -> torch.Tensor:
        lv = self.log_var.to(x.dtype)
        r2 = (out.reconstruction - x).pow(2).flatten(1)
        return 0.5 * (math.log(2 * math.pi) + lv + r2 * torch.exp(-lv)).sum(1)


def _gaussian_nll_factory(n_features: int) -> GaussianNLL:
    return GaussianNLL(n_features)


#: Reconstruction losses by name. Plain functions ``(x, out) -> (n,)``; ``gaussian_nll`` is a
#: module built per feature count (it has learnable variances).
LOSSES: dict[str, Callable] = {"mse": mse, "bce": bce, "gaussian_nll": _gaussian_nll_factory}


class Term(nn.Module):
    """A regulariser added to the reconstruction loss.

    Subclasses set ``name`` and implement ``forward(model, x, x_tilde, out) -> scalar``, where
    ``x`` is the clean batch (n, d), ``x_tilde`` the (possibly corrupted) encoder input and
    ``out`` the model's :class:`AEOutput` on ``x_tilde``. The returned value already includes
    the term's weight.
    """

    name: str = "term"

    def forward(self, model: Autoencoder, x: torch.Tensor, x_tilde: torch.Tensor,
                out: AEOutput) -> torch.Tensor:
        raise NotImplementedError

    def check_model(self, model: Autoencoder) -> None:
        """Raise ``ValueError`` early if the term cannot apply to ``model`` (default: any)."""

    def metrics(self) -> dict[str, float]:
        """Extra numbers to log once per epoch (e.g. dead units); default none."""
        return {}


def _nonneg(name: str, v: float) -> float:
    v = float(v)
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


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

    def __init__(self, eta: float):
        super().__init__()
        self.eta = _nonneg("eta", eta)

    def forward(self, model, x, x_tilde, out):
        total = x.new_zeros(())
        for n, p in model.named_parameters():
            if p.ndim >= 2 and n.endswith("weight"):
                total = total + p.pow(2).sum()
        return self.eta * total

    def extra_repr(self) -> str:
        return f"eta={self.eta}"


class Objective(nn.Module):
    """Reconstruction loss plus weighted regularisation terms.

    ``J(θ) = (1/n) Σ_i ℓ(x_i, g(f(x̃_i))) + Σ_t R_t(θ, x, x̃)``.

    Parameters
    ----------
    recon : callable or str
        ``(x, out) -> (n,)`` per-sample loss, or a name in :data:`LOSSES`.
    terms : sequence of Term
        Regularisers, each with a unique ``name``.
    n_features : int, optional
        Needed only to build ``"gaussian_nll"`` by name.

    Returns (from ``forward``)
    -------
    total : scalar Tensor
    parts : dict[str, Tensor]
        ``{"recon": ..., <term.name>: ..., ...}``, each a scalar.
    """

    def __init__(self, recon: Callable | str = "mse", terms: Sequence[Term] = (),
                 n_features: int | None = None):
        super().__init__()
        if isinstance(recon, str):
            if recon not in LOSSES:
                raise ValueError(
                    f"unknown loss {recon!r}; expected one of: {', '.join(LOSSES)}")
            self.recon_name = recon
            if recon == "gaussian_nll":
                if n_features is None:
                    raise ValueError("loss 'gaussian_nll' needs n_features")
                recon = GaussianNLL(n_features)
            else:
                recon = LOSSES[recon]
        else:
            self.recon_name = getattr(recon, "__name__", type(recon).__name__)
        self.recon = recon
        names = [t.name for t in terms]
        if len(set(names)) != len(names) or "recon" in names:
            raise ValueError(f"term names must be unique and not 'recon', got {names}")
        self.terms = nn.ModuleList(terms)

    def per_sample(self, x: torch.Tensor, out: AEOutput) -> torch.Tensor:
        """Per-sample reconstruction loss, shape (n,)."""
        return self.recon(x, out)

    def forward(self, model: Autoencoder, x: torch.Tensor, x_tilde: torch.Tensor | None = None,
                out: AEOutput | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if x_tilde is None:
            x_tilde = x
        if out is None:
            out = model(x_tilde)
        rec = self.recon(x, out).mean()
        parts = {"recon": rec}
        total = rec
        for t in self.terms:
            v = t(model, x, x_tilde, out)
            parts[t.name] = v
            total = total + v
        return total, parts

    def check_model(self, model: Autoencoder) -> None:
        """Raise if the loss does not fit the model (e.g. cross-entropy without a sigmoid)."""
        if self.recon is bce and getattr(model, "output", "linear") != "sigmoid":
            raise ValueError("loss 'bce' needs a model with output='sigmoid' "
                             f"(got output={model.output!r})")
        for t in self.terms:
            t.check_model(model)


def make_objective(loss: str = "mse", *, n_features: int | None = None,
                   weight_decay: float = 0.0, l1: float = 0.0, kl_rho: float | None = None,
                   kl_beta: float = 1.0, dead_unit: float = 0.0, contractive: float = 0.0,
                   terms: Sequence[Term] = ()) -> Objective:
    """Objective from names and weights, the terms added only when their weight is non-zero.

    ``make_objective("bce", weight_decay=1e-4, l1=1e-3)`` gives
    ``bce + WeightDecay(1e-4) + L1Activity(1e-3)``; ``kl_rho`` adds ``KLSparsity(kl_rho,
    kl_beta)``, ``dead_unit`` adds ``DeadUnitEntropy``, ``contractive`` adds
    ``Contractive``. Extra ``terms`` are appended as given.
    """
    from .regularizers import Contractive, DeadUnitEntropy, KLSparsity, L1Activity

    for name, v in (("weight_decay", weight_decay), ("l1", l1), ("kl_beta", kl_beta),
                    ("dead_unit", dead_unit), ("contractive", contractive)):
        _nonneg(name, v)  # named after the caller's argument, not the term's
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
