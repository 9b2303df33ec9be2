"""Document autoencoder: a deep encoder of word counts with a softmax (multinomial)
reconstruction of the document's word distribution, and codes that can be pushed to binary
for semantic hashing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .base import Autoencoder

__all__ = ["BINARIZE", "INPUT_NORMS", "DocumentAE"]

#: How the code is pushed towards binary values during training: ``"none"``; ``"noise"``
#: (Gaussian noise before the logistic code units); ``"ste"`` (threshold in the forward
#: pass, identity gradient through the logistic: straight-through estimator).
BINARIZE = ("none", "noise", "ste")

#: Normalisation of the encoder's input ``u = w ⊙ log(1 + c)``: ``"none"`` (``h_0 = u``) or
#: ``"l2"`` (``h_0 = s u / ‖u‖₂``, document length and verbosity removed).
INPUT_NORMS = ("none", "l2")


class DocumentAE(Autoencoder):
    """Deep autoencoder for bags of words (Hinton & Salakhutdinov 2006, document experiments).

    Encoder: ``h_0 = u = w ⊙ log(1 + c)`` of the word counts c (n, V), or
    ``h_0 = s u / ‖u‖₂`` with ``input_norm="l2"`` (w: per-word input weights, 1 by default,
    e.g. inverse document frequencies, which makes ``h_0`` an l2-normalised log-TF-IDF row;
    s = ``input_scale``); ``h_l = σ(W_l h_{l−1} + b_l)``
    (logistic hidden units); code ``z = a_L`` (linear) or ``σ(a_L)`` (logistic) with
    ``a_L = W_L h_{L−1} + b_L``. Decoder: the mirror image with logistic hidden units and a
    softmax output ``q = softmax(s)`` over the V words, trained with
    :func:`aekit.objectives.multinomial.multinomial_nll` against the document's word
    distribution ``p = c / Σ_j c_j``.

    Semantic hashing (Salakhutdinov & Hinton 2009, section 4): with logistic code units and
    ``binarize="noise"``, ``z = σ(a_L + ε)``, ε ~ N(0, code_noise²), in training mode, which
    drives ``a_L`` far from 0 so ``[z > 0.5]`` loses little; with ``binarize="ste"`` the
    forward pass uses ``[σ(a_L) > 0.5]`` and the gradient is that of ``σ(a_L)``
    (straight-through, Bengio, Léonard & Courville 2013). In eval mode the code is always
    ``σ(a_L)``; threshold it at 0.5 for a binary code.

    Parameters
    ----------
    sizes : sequence of int
        ``[V, k_1, ..., k]``, e.g. ``[2000, 500, 250, 125, 10]``.
    code_activation : {"linear", "sigmoid"}
    binarize : {"none", "noise", "ste"}
        Needs ``code_activation="sigmoid"`` unless "none".
    code_noise : float
        σ of the noise for ``binarize="noise"`` (the paper used deterministic noise of
        variance 16, σ = 4).
    input_norm : {"none", "l2"}
        See :data:`INPUT_NORMS`.
    input_scale : float
        s > 0 of ``input_norm="l2"`` (10: about the norm of ``log(1 + c)`` of a document with
        a few dozen vocabulary words, so the pretrained scale of the first layer fits).
    weighted_input : bool
        Keep a (V,) buffer ``input_weights`` w (ones until set with
        :meth:`set_input_weights`; saved with the weights).

    References
    ----------
    G. Hinton & R. Salakhutdinov, "Reducing the dimensionality of data with neural networks",
    Science 313, 2006 (document retrieval, Fig. 4). R. Salakhutdinov & G. Hinton, "Semantic
    hashing", IJAR 50(7), 2009, sections 2-4. TF-IDF weighting and length normalisation:
    C. Manning, P. Raghavan & H. Schütze, *Introduction to Information Retrieval*, 2008,
    sections 6.2-6.4.
    """

    name = "document"
    output = "softmax"

    def __init__(self, sizes: Sequence[int], code_activation: str = "linear",
                 binarize: str = "none", code_noise: float = 4.0, input_norm: str = "none",
                 input_scale: float = 10.0, weighted_input: bool = False):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least 2 positive ints [V, ..., k], got {sizes}")
        if code_activation not in ("linear", "sigmoid"):
            raise ValueError(f"code_activation must be 'linear' or 'sigmoid', got "
                             f"{code_activation!r}")
        if binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {BINARIZE}, got {binarize!r}")
        if binarize != "none" and code_activation != "sigmoid":
            raise ValueError(f"binarize={binarize!r} needs code_activation='sigmoid'")
        if not code_noise >= 0:
            raise ValueError(f"code_noise must be >= 0, got {code_noise}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {input_norm!r}")
        if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) or \
                not 0 < input_scale < float("inf"):
            raise ValueError(f"input_scale must be a finite number > 0, got {input_scale!r}")
        if not isinstance(weighted_input, bool):
            raise ValueError(f"weighted_input must be True or False, got {weighted_input!r}")
        self.input_norm, self.input_scale = input_norm, float(input_scale)
        self.weighted_input = weighted_input
        if weighted_input:
            self.register_buffer("input_weights", torch.ones(sizes[0]))
        self.sizes, self.code_activation = sizes, code_activation
        self.binarize, self.code_noise = binarize, float(code_noise)
        self.n_features, self.n_components = sizes[0], sizes[-1]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        rev = sizes[::-1]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:]))

    def set_input_weights(self, w) -> None:
        """Set the per-word input weights w (V,), finite and >= 0 (e.g. IDF)."""
        if not self.weighted_input:
            raise ValueError("set_input_weights needs a DocumentAE built with "
                             "weighted_input=True")
        w = torch.as_tensor(w, dtype=self.input_weights.dtype).flatten()
        if w.shape != self.input_weights.shape or not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"input weights must be {self.n_features} finite values >= 0, got "
                             f"shape {tuple(w.shape)}")
        with torch.no_grad():
            self.input_weights.copy_(w)

    def input_features(self, x: torch.Tensor) -> torch.Tensor:
        """``h_0`` of counts x (n, V): ``w ⊙ log(1 + x)``, l2-normalised to ``input_scale``
        with ``input_norm="l2"`` (an all-zero row stays 0)."""
        h = torch.log1p(x.clamp_min(0))
        if self.weighted_input:
            h = h * self.input_weights
        if self.input_norm == "l2":
            h = self.input_scale * h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return h

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h = self.input_features(x)
        pre = []
        for i, layer in enumerate(self.encoder):
            a = layer(h)
            pre.append(a)
            if i < len(self.encoder) - 1:
                h = torch.sigmoid(a)
        if self.code_activation == "linear":
            return a, tuple(pre)
        if self.training and self.binarize == "noise" and self.code_noise > 0:
            a = a + self.code_noise * torch.randn_like(a)
        z = torch.sigmoid(a)
        if self.training and self.binarize == "ste":
            z = z + ((z > 0.5).to(z.dtype) - z).detach()
        return z, tuple(pre)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = torch.sigmoid(h)
        return h

    def _squash(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)

    def config(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "code_activation": self.code_activation,
                "binarize": self.binarize, "code_noise": self.code_noise,
                "input_norm": self.input_norm, "input_scale": self.input_scale,
                "weighted_input": self.weighted_input}

    def encoder_layers(self) -> list[nn.Linear]:
        return list(self.encoder)
