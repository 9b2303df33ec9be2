"""Fully connected autoencoders of any depth, optionally with tied weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import TiedLinear, TopK, init_linear
from ..layers import activation as make_activation
from .base import OUTPUTS, Autoencoder

__all__ = ["DenseAE", "LinearAE"]


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """``sizes`` as a list of at least two ints >= 1 (``[n_features, ..., code_size]``)."""
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise ValueError(f"sizes must be a sequence of ints, got {sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least [n_features, code_size], got {sizes}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"sizes must all be >= 1, got {sizes}")
    return sizes




class DenseAE(Autoencoder):
    """Multi-layer perceptron autoencoder ``x̂ = g(f(x))`` with a mirrored decoder.

    Encoder: ``h_0 = x``, ``a_l = W_l h_{l-1} + b_l``, ``h_l = σ(a_l)`` for hidden layers and
    ``h_L = σ_code(a_L)`` for the code. Decoder: the mirror image, ending in the output
    nonlinearity (identity or sigmoid). With ``tied=True`` each decoder layer uses the
    transpose of its mirror encoder weight, ``W'_l = W_lᵀ``, and only its own bias.

    Parameters
    ----------
    sizes : sequence of int
        ``[d, k_1, ..., k_L]``: input size, hidden sizes and the code size last, e.g.
        ``[784, 1000, 500, 250, 30]`` (Hinton & Salakhutdinov 2006).
    activation : str
        Hidden-layer activation (see :data:`aekit.layers.ACTIVATIONS`).
    code_activation : str
        Code-layer activation; ``"linear"`` for a deep AE's code, ``"sigmoid"`` for a
        contractive/KL-sparse AE, ``"relu"`` or ``"topk:K"`` for sparse codes.
    output : {"linear", "sigmoid"}
        Output nonlinearity. Use ``"sigmoid"`` with the cross-entropy loss.
    tied : bool
        Tie decoder weights to the transposed encoder weights.
    batch_norm : bool
        Batch normalisation after every hidden (non-code, non-output) linear layer.
    dropout : float
        Dropout probability after every hidden activation (0 disables).

    Shapes: ``x`` (n, d) -> code (n, k_L) -> reconstruction (n, d).

    References
    ----------
    Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
    Science 2006. Goodfellow, Bengio & Courville, *Deep Learning*, ch. 14.

    Examples
    --------
    >>> m = DenseAE([64, 32, 8])
    >>> m(torch.zeros(5, 64)).code.shape
    torch.Size([5, 8])
    """

    name = "dense"

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        code_activation: str = "linear",
        output: str = "linear",
        tied: bool = False,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        sizes = check_sizes(sizes)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        make_activation(activation)  # validate even when there is no hidden layer
        self.sizes = sizes
        self.activation = activation
        self.code_activation = code_activation
        self.output = output
        self.tied = bool(tied)
        self.batch_norm = bool(batch_norm)
        self.dropout = float(dropout)
        self.n_features, self.n_components = sizes[0], sizes[-1]

        n = len(sizes) - 1
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.enc_act = nn.ModuleList(
            make_activation(activation if i < n - 1 else code_activation) for i in range(n)
        )
        code_act = self.enc_act[-1]
        if isinstance(code_act, TopK) and code_act.k > sizes[-1]:
            raise ValueError(f"code_activation {code_activation!r}: k={code_act.k} is larger "
                             f"than the code size {sizes[-1]}")
        for i, lin in enumerate(self.enc):
            init_linear(lin, activation if i < n - 1 else code_activation)
        rev = sizes[::-1]
        if self.tied:
            self.dec = nn.ModuleList(TiedLinear(self.enc[n - 1 - i]) for i in range(n))
        else:
            self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:]))
            for i, lin in enumerate(self.dec):
                init_linear(lin, activation if i < n - 1 else "linear")
        # Hidden decoder activations; the last decoder layer is followed by the output squash.
        self.dec_act = nn.ModuleList(make_activation(activation) for _ in range(n - 1))
        self.enc_bn = nn.ModuleList(
            nn.BatchNorm1d(s) if batch_norm else nn.Identity() for s in sizes[1:-1]
        )
        self.dec_bn = nn.ModuleList(
            nn.BatchNorm1d(s) if batch_norm else nn.Identity() for s in rev[1:-1]
        )
        self.drop = nn.Dropout(self.dropout) if self.dropout > 0 else nn.Identity()

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        pre = []
        h = x
        last = len(self.enc) - 1
        for i, (lin, act) in enumerate(zip(self.enc, self.enc_act)):
            a = lin(h)
            pre.append(a)
            if i < last:
                h = self.drop(act(self.enc_bn[i](a)))
            else:
                h = act(a)
        return h, tuple(pre)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.enc) - 1
        for i, (lin, act) in enumerate(zip(self.enc, self.enc_act)):
            h = lin(h)
            h = self.drop(act(self.enc_bn[i](h))) if i < last else act(h)
        return h

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        last = len(self.dec) - 1
        for i, lin in enumerate(self.dec):
            h = lin(h)
            if i < last:
                h = self.drop(self.dec_act[i](self.dec_bn[i](h)))
        return h

    def encoder_layers(self) -> list[nn.Linear]:
        return list(self.enc)

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``DenseAE([d, *hidden, k], ...)`` (see :meth:`Autoencoder.from_spec`)."""
        return cls([n_features, *hidden, code_size], **cls._pick(
            options, "activation", "code_activation", "output", "tied", "batch_norm",
            "dropout"))

    def config(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "code_activation": self.code_activation,
            "output": self.output,
            "tied": self.tied,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
        }


class LinearAE(Autoencoder):
    """Linear autoencoder ``x̂ = W_d (W_e x + b_e) + b_d``.

    Trained with squared error, its optimum spans the top-k principal subspace of the
    (centred) data (Baldi & Hornik 1989; Eckart–Young), though the learned code units are in
    general a rotated, non-orthogonal basis of that subspace rather than the components
    themselves.

    Parameters
    ----------
    n_features : int
        Input size d.
    n_components : int
        Code size k (1 <= k <= d).
    tied : bool
        Use ``W_d = W_eᵀ``.

    Shapes: (n, d) -> (n, k) -> (n, d).

    References
    ----------
    Baldi & Hornik, "Neural networks and principal component analysis", Neural Networks 1989.
    """

    name = "linear"
    output = "linear"

    def __init__(self, n_features: int, n_components: int, tied: bool = False):
        super().__init__()
        d, k = int(n_features), int(n_components)
        if d < 1 or k < 1:
            raise ValueError(f"n_features and n_components must be >= 1, got {d}, {k}")
        if k > d:
            raise ValueError(f"n_components={k} is larger than n_features={d}")
        self.n_features, self.n_components, self.tied = d, k, bool(tied)
        self.encoder = nn.Linear(d, k)
        nn.init.xavier_uniform_(self.encoder.weight)
        nn.init.zeros_(self.encoder.bias)
        if self.tied:
            self.decoder = TiedLinear(self.encoder)
        else:
            self.decoder = nn.Linear(k, d)
            nn.init.xavier_uniform_(self.decoder.weight)
            nn.init.zeros_(self.decoder.bias)

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        a = self.encoder(x)
        return a, (a,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def encoder_layers(self) -> list[nn.Linear]:
        return [self.encoder]

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``LinearAE(d, k, tied)`` (see :meth:`Autoencoder.from_spec`)."""
        return cls(n_features, code_size, **cls._pick(options, "tied"))

    def config(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "n_components": self.n_components,
                "tied": self.tied}
