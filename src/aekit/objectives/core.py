"""Training objectives: a per-sample loss plus a list of weighted terms.

``Objective(loss, terms)(model, batch)`` runs the model on ``batch.input`` and returns
``(total, parts)`` where ``parts`` maps every component's name to its (weighted) value, so the
breakdown is logged every step. ``batch`` is a :class:`~aekit.data.batch.Batch`
``(x, x_tilde, y)``; the loss compares the model's output with ``batch.target`` (``y``, or the
clean ``x`` for reconstruction).

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

from ..data.batch import Batch
from ..models.base import AEOutput
from ..validation import Param

__all__ = ["LOSSES", "GaussianNLL", "Objective", "Term", "bce", "cross_entropy", "mse",
           "output_float", "prediction"]


def prediction(out: AEOutput | torch.Tensor) -> torch.Tensor:
    """The model's prediction in data space: ``out.reconstruction``, or ``out`` itself for
    models that return a plain tensor (a classifier's logits, a U-Net's image)."""
    return out.reconstruction if isinstance(out, AEOutput) else out


def output_float(out: AEOutput | torch.Tensor) -> AEOutput | torch.Tensor:
    """A model output with every tensor in float32 (after a bf16 autocast forward pass)."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype == torch.bfloat16 else out
    if isinstance(out, AEOutput):
        return AEOutput(*(output_float(t) for t in out[:3]),
                        tuple(output_float(a) for a in out.preactivations))
    return out


def mse(x: torch.Tensor, out: AEOutput | torch.Tensor) -> torch.Tensor:
    """Squared error per sample: ``ℓ_i = Σ_j (x_ij − x̂_ij)²``. Shapes (n, ...) -> (n,).

    ``x`` is the target (the clean input, or ``batch.y``); ``x̂`` is :func:`prediction`.
    """
    return (prediction(out) - x).pow(2).flatten(1).sum(1)


def bce(x: torch.Tensor, out: AEOutput | torch.Tensor) -> torch.Tensor:
    """Bernoulli cross-entropy per sample from the logits ``s``, computed stably.

    ``ℓ_i = −Σ_j [x_ij log σ(s_ij) + (1 − x_ij) log(1 − σ(s_ij))]
          = Σ_j [max(s, 0) − s x + log(1 + e^{−|s|})]``; needs targets in [0, 1] and a model
    with ``output="sigmoid"``. Shapes (n, d) -> (n,).

    References: Vincent et al. 2010, JMLR, section 2.4 (cross-entropy reconstruction loss).
    """
    logits = out.logits if isinstance(out, AEOutput) else out
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def cross_entropy(y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy per sample: ``ℓ_i = −log softmax(s_i)_{y_i}``. (n, C), (n,) -> (n,).

    ``logits`` are the model's output (a plain tensor, e.g. from
    :class:`~aekit.classifier.EncoderClassifier`); ``y`` holds int64 class indices (or, as
    float (n, C), class probabilities). Its part in the breakdown is named ``"ce"``.

    References: Bishop, *Pattern Recognition and Machine Learning*, section 4.3.4.
    """
    if isinstance(logits, AEOutput):
        raise ValueError("loss 'cross_entropy' needs a model whose output is class logits "
                         "(n, C), e.g. EncoderClassifier; got an autoencoder's AEOutput")
    return F.cross_entropy(logits, y, reduction="none")


cross_entropy.part = "ce"  # type: ignore[attr-defined]


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

    def forward(self, x: torch.Tensor, out: AEOutput | torch.Tensor) -> torch.Tensor:
        lv = self.log_var.to(x.dtype)
        r2 = (prediction(out) - x).pow(2).flatten(1)
        return 0.5 * (math.log(2 * math.pi) + lv + r2 * torch.exp(-lv)).sum(1)


def _gaussian_nll_factory(n_features: int) -> GaussianNLL:
    return GaussianNLL(n_features)


#: Per-sample losses by name. Plain functions ``(target, out) -> (n,)``; ``gaussian_nll`` is a
#: module built per feature count (it has learnable variances).
LOSSES: dict[str, Callable] = {"mse": mse, "bce": bce, "cross_entropy": cross_entropy,
                               "gaussian_nll": _gaussian_nll_factory}


class Term(nn.Module):
    """A weighted term added to the loss: a regulariser, a penalty or a second loss.

    Subclasses set ``name``, declare their hyperparameters once in ``params`` (a tuple of
    :class:`~aekit.validation.Param`; the constructor's keyword defaults must equal the
    declared ones, which a registry-wide test checks) and implement
    ``forward(model, batch, out) -> scalar``, where ``batch`` is the
    :class:`~aekit.data.batch.Batch` (``batch.x`` clean, ``batch.input`` what the model saw,
    ``batch.target`` the loss target) and ``out`` the model's output on ``batch.input``. The
    returned value already includes the term's weight.

    A term that differentiates with respect to the input (adversarial training) sets
    ``needs_input_grad = True``: the objective then feeds the model an input that requires
    grad, passes it as ``batch.x_tilde`` and records the RNG state before the pass in
    ``batch.rng_state``. A term with a random state of its own returns it from
    ``get_extra_state`` so checkpoints resume it exactly.
    """

    name: str = "term"
    params: tuple[Param, ...] = ()
    needs_input_grad: bool = False

    def forward(self, model: nn.Module, batch: Batch, out: AEOutput | torch.Tensor
                ) -> torch.Tensor:
        raise NotImplementedError

    def check(self, name: str, value):
        """``value`` validated against the declaration of parameter ``name``."""
        for p in self.params:
            if p.name == name:
                return p.check(value)
        raise KeyError(f"{type(self).__name__} declares no parameter {name!r}")

    def check_model(self, model: nn.Module) -> None:
        """Raise ``ValueError`` early if the term cannot apply to ``model`` (default: any)."""

    def metrics(self) -> dict[str, float]:
        """Extra numbers to log once per epoch (e.g. dead units); default none."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{p.name}={getattr(self, p.name)!r}" for p in self.params
                         if hasattr(self, p.name))


class Objective(nn.Module):
    """A per-sample loss plus weighted terms, evaluated on a batch.

    ``J(θ) = (1/n) Σ_i ℓ(t_i, m(x̃_i)) + Σ_t R_t(θ, batch)`` with ``x̃`` the model's input
    (``batch.input``) and ``t`` the target (``batch.target``: ``y``, or the clean ``x``).

    Parameters
    ----------
    recon : callable, str or None
        ``(target, out) -> (n,)`` per-sample loss, or a name in :data:`LOSSES` (``"mse"``,
        ``"bce"``, ``"cross_entropy"``, ``"gaussian_nll"``); None for an objective made of
        terms alone (PSD).
    terms : sequence of Term
        Each with a unique ``name``.
    n_features : int, optional
        Needed only to build ``"gaussian_nll"`` by name.

    Returns (from ``forward``)
    -------
    total : scalar Tensor
    parts : dict[str, Tensor]
        ``{"recon": ..., <term.name>: ..., ...}`` (``"ce"`` instead of ``"recon"`` for
        cross-entropy), each a scalar.

    Examples
    --------
    >>> from aekit import DenseAE
    >>> m = DenseAE([4, 2])
    >>> total, parts = Objective("mse")(m, torch.zeros(3, 4))
    >>> sorted(parts)
    ['recon']
    """

    def __init__(self, recon: Callable | str | None = "mse", terms: Sequence[Term] = (),
                 n_features: int | None = None):
        super().__init__()
        if recon is None:
            if not terms:
                raise ValueError("an objective without a loss needs at least one term")
            self.recon_name = "none"
        elif isinstance(recon, str):
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
        self.part = getattr(recon, "part", "recon")
        for t in terms:
            if not isinstance(t, Term):
                raise ValueError(f"terms must be Term instances, got {type(t).__name__}")
        names = [t.name for t in terms]
        if len(set(names)) != len(names) or self.part in names or "loss" in names:
            raise ValueError(f"term names must be unique and not {self.part!r} or 'loss', "
                             f"got {names}")
        self.terms = nn.ModuleList(terms)
        # Plain copies for the per-step path (ModuleList access goes through
        # nn.Module.__getattr__); the terms are fixed once the objective is built.
        self._term_list = tuple(terms)
        self._input_grad = any(t.needs_input_grad for t in terms)

    def per_sample(self, target: torch.Tensor, out: AEOutput | torch.Tensor) -> torch.Tensor:
        """Per-sample loss against ``target``, shape (n,)."""
        if self.recon is None:
            raise ValueError("this objective has no per-sample loss (terms only)")
        return self.recon(target, out)

    def forward(self, model: nn.Module, batch: Batch | torch.Tensor,
                forward: Callable | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(total, parts)`` on ``batch`` (a :class:`Batch`, or a tensor ``x``).

        ``forward`` replaces ``model(·)`` for the main pass (the training loop passes its
        distributed wrapper); terms always see the bare ``model``. Under a bf16 autocast
        region the model's outputs are cast to float32 before the loss and terms.
        """
        if isinstance(batch, torch.Tensor):
            batch = Batch(batch)
        xt = batch.input
        if self._input_grad:
            xt = xt.detach().requires_grad_(True)
            batch = batch._replace(x_tilde=xt, rng_state=torch.get_rng_state())
        out = (model if forward is None else forward)(xt)
        if torch.is_autocast_enabled("cpu"):
            out = output_float(out)
        parts: dict[str, torch.Tensor] = {}
        total = None
        if self.recon is not None:
            total = parts[self.part] = self.recon(batch.target, out).mean()
        for t in self._term_list:
            v = t(model, batch, out)
            parts[t.name] = v
            total = v if total is None else total + v
        return total, parts

    def metrics(self) -> dict[str, float]:
        """Every term's per-epoch metrics, as ``{"<term>_<metric>": value}``."""
        return {f"{t.name}_{k}": v for t in self.terms for k, v in t.metrics().items()}

    def check_model(self, model: nn.Module) -> None:
        """Raise if the loss does not fit the model (e.g. cross-entropy without a sigmoid)."""
        if self.recon is bce and getattr(model, "output", "sigmoid") != "sigmoid":
            raise ValueError("loss 'bce' needs a model with output='sigmoid' "
                             f"(got output={model.output!r})")
        for t in self.terms:
            t.check_model(model)
