"""Restricted Boltzmann machine: architecture, free energy and Gibbs sampling.

An RBM is an :class:`~aekit.models.base.Autoencoder` here: ``encode`` is the hidden mean
``E[h | v]`` and ``decode`` the visible mean ``E[v | h]`` (the "unrolled", deterministic view
Hinton & Salakhutdinov 2006 use to turn a stack of RBMs into a deep autoencoder). Training is
not here: CD-k is an objective term (:class:`aekit.train.pretrain.ContrastiveDivergence`)
whose gradient is exactly the CD-k update, so the RBM trains in the one loop, :func:`aekit.fit`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .base import Autoencoder

__all__ = ["RBM", "UNITS"]

#: Unit types: binary (logistic mean) or unit-variance Gaussian (linear mean).
UNITS = ("bernoulli", "gaussian")


class RBM(Autoencoder):
    """Restricted Boltzmann machine with binary or unit-variance Gaussian units on each side.

    Energy, with ``W`` (k, d), hidden bias ``b`` (k,), visible bias ``c`` (d,) and
    ``a = W v + b``::

        E(v, h) = −cᵀv − bᵀh − hᵀW v                       (Bernoulli v, Bernoulli h)
        Gaussian visible units replace −cᵀv by ½‖v − c‖²; Gaussian hidden units add ½‖h‖².

    So ``E[h | v] = σ(a)`` (Bernoulli) or ``a`` (Gaussian, unit variance), and
    ``E[v | h] = σ(Wᵀh + c)`` or ``Wᵀh + c``. The free energy ``F(v) = −log Σ_h e^{−E(v, h)}``
    is, up to an additive constant, ``V(v) − Σ_j softplus(a_j)`` for Bernoulli hidden units and
    ``V(v) − ½‖a‖²`` for Gaussian ones, with ``V(v) = −cᵀv`` or ``½‖v − c‖²``.

    Parameters
    ----------
    n_visible : int
        d.
    n_hidden : int
        k.
    visible, hidden : {"bernoulli", "gaussian"}
        Unit types. Hinton & Salakhutdinov use Bernoulli units everywhere except the linear
        (Gaussian) code layer of the top RBM.
    init_std : float
        Weights start as ``N(0, init_std²)``, biases at 0.

    Attributes
    ----------
    linear : nn.Linear
        ``W`` (k, d) and ``b`` (k,); the encoder layer a stacked deep AE copies.
    visible_bias : nn.Parameter
        ``c`` (d,).
    code_activation : str
        ``"sigmoid"`` or ``"linear"``, the activation of the equivalent AE encoder.
    output : str
        ``"sigmoid"`` or ``"linear"``, the equivalent AE output.

    Shapes: v (n, d) -> h (n, k) -> v̂ (n, d).

    References
    ----------
    Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
    Science 2006 (and its supporting online material). Hinton, "Training products of experts by
    minimizing contrastive divergence", Neural Computation 2002. Hinton, "A practical guide to
    training restricted Boltzmann machines", UTML TR 2010-003, sections 3 and 13 (Gaussian
    units).

    Examples
    --------
    >>> rbm = RBM(6, 3)
    >>> rbm.free_energy(torch.rand(4, 6)).shape
    torch.Size([4])
    """

    name = "rbm"

    def __init__(self, n_visible: int, n_hidden: int, visible: str = "bernoulli",
                 hidden: str = "bernoulli", init_std: float = 0.01):
        super().__init__()
        d, k = int(n_visible), int(n_hidden)
        if d < 1 or k < 1:
            raise ValueError(f"n_visible and n_hidden must be >= 1, got {n_visible}, {n_hidden}")
        if visible not in UNITS:
            raise ValueError(f"visible must be one of {UNITS}, got {visible!r}")
        if hidden not in UNITS:
            raise ValueError(f"hidden must be one of {UNITS}, got {hidden!r}")
        if not float(init_std) >= 0:
            raise ValueError(f"init_std must be >= 0, got {init_std}")
        self.n_features, self.n_components = d, k
        self.visible, self.hidden, self.init_std = visible, hidden, float(init_std)
        self.code_activation = "sigmoid" if hidden == "bernoulli" else "linear"
        self.output = "sigmoid" if visible == "bernoulli" else "linear"
        self.linear = nn.Linear(d, k)
        nn.init.normal_(self.linear.weight, std=self.init_std)
        nn.init.zeros_(self.linear.bias)
        self.visible_bias = nn.Parameter(torch.zeros(d))

    # --- the autoencoder view -------------------------------------------------------------
    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        a = self.linear(x)
        return (torch.sigmoid(a) if self.hidden == "bernoulli" else a), (a,)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.linear.weight.t(), self.visible_bias)

    def encoder_layers(self) -> list[nn.Linear]:
        return [self.linear]

    def config(self) -> dict[str, Any]:
        return {"n_visible": self.n_features, "n_hidden": self.n_components,
                "visible": self.visible, "hidden": self.hidden, "init_std": self.init_std}

    # --- the probabilistic view ------------------------------------------------------------
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """``F(v) = −log Σ_h exp(−E(v, h))`` up to a constant: (n, d) -> (n,)."""
        a = self.linear(v)
        if self.visible == "bernoulli":
            vis = -(v @ self.visible_bias)
        else:
            vis = 0.5 * (v - self.visible_bias).pow(2).sum(1)
        hid = F.softplus(a).sum(1) if self.hidden == "bernoulli" else 0.5 * a.pow(2).sum(1)
        return vis - hid

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
        """Draw ``h ~ p(h | v)``: (n, d) -> (n, k)."""
        return _sample(self.encode(v), self.hidden, generator)

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
        """Draw ``v ~ p(v | h)``: (n, k) -> (n, d)."""
        return _sample(self.decode(h), self.visible, generator)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, k: int = 1, generator: torch.Generator | None = None
              ) -> torch.Tensor:
        """k steps of block Gibbs sampling from ``v``; the last visible state is the mean
        ``E[v | h_k]`` (Hinton's CD recipe: sample hidden states, use visible probabilities).
        (n, d) -> (n, d), without gradient."""
        for _ in range(int(k)):
            v = self.decode(self.sample_hidden(v, generator))
        return v


def _sample(mean: torch.Tensor, units: str, generator: torch.Generator | None) -> torch.Tensor:
    dev = generator.device if generator is not None else mean.device
    if units == "bernoulli":
        u = torch.rand(mean.shape, generator=generator, device=dev, dtype=mean.dtype)
        return (u.to(mean.device) < mean).to(mean.dtype)
    eps = torch.randn(mean.shape, generator=generator, device=dev, dtype=mean.dtype)
    return mean + eps.to(mean.device)
