"""The interface every model follows: ``encode``, ``decode``, ``forward -> AEOutput``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

__all__ = ["OUTPUTS", "AEOutput", "Autoencoder"]

#: Output nonlinearities: ``"linear"`` (real-valued data, MSE / Gaussian NLL) or ``"sigmoid"``
#: (data in [0, 1], cross-entropy on the logits).
OUTPUTS = ("linear", "sigmoid")


class AEOutput(NamedTuple):
    """What ``Autoencoder.forward`` returns.

    Attributes
    ----------
    code : Tensor, shape (n, k)
        The code ``h = f(x)`` (after the code activation).
    reconstruction : Tensor, shape (n, d)
        ``x̂ = g(h)`` in data space (after the output nonlinearity).
    logits : Tensor, shape (n, d)
        The decoder's last pre-activation; equal to ``reconstruction`` for a linear output.
        Cross-entropy is computed from these for numerical stability.
    preactivations : tuple of Tensor
        Encoder pre-activations ``a_l = W_l h_{l-1} + b_l``, one (n, k_l) tensor per encoder
        layer, the last being the code's pre-activation. Regularisers (e.g. the contractive
        closed form) use them.
    """

    code: torch.Tensor
    reconstruction: torch.Tensor
    logits: torch.Tensor
    preactivations: tuple[torch.Tensor, ...]


class Autoencoder(nn.Module):
    """Base class: architecture only, no loss and no training logic.

    Subclasses implement :meth:`encode`, :meth:`decode_logits` and :meth:`config` (the
    JSON-serialisable constructor arguments, so ``type(m)(**m.config())`` rebuilds the
    architecture; the weights come from a safetensors file, see :func:`aekit.load`).

    Attributes
    ----------
    n_features : int
        Input dimension d.
    n_components : int
        Code dimension k.
    output : str
        Output nonlinearity, one of :data:`OUTPUTS`.
    """

    #: Registry name, set by subclasses (``MODELS[name] is cls``).
    name: str = ""
    n_features: int
    n_components: int
    output: str = "linear"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code ``h = f(x)``: (n, d) -> (n, k)."""
        return self.encode_full(x)[0]

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Code and the encoder pre-activations: (n, d) -> ((n, k), (a_1, ..., a_L))."""
        raise NotImplementedError

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder pre-activation (logits): (n, k) -> (n, d)."""
        raise NotImplementedError

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``x̂ = g(h)`` in data space: (n, k) -> (n, d)."""
        return self._squash(self.decode_logits(h))

    def _squash(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.output == "sigmoid" else logits

    def forward(self, x: torch.Tensor) -> AEOutput:
        """Encode and decode: (n, d) -> :class:`AEOutput`."""
        code, pre = self.encode_full(x)
        logits = self.decode_logits(code)
        return AEOutput(code, self._squash(logits), logits, pre)

    @classmethod
    def from_spec(cls, *, n_features: int, code_size: int, hidden: Sequence[int] = (),
                  image_shape: Sequence[int] | None = None, **options: Any) -> Autoencoder:
        """Build from the run-level description every model shares (``aekit train`` / TOML).

        ``n_features`` d, ``code_size`` k, ``hidden`` sizes (channels for convolutional
        models), the data's ``image_shape``, and ``options`` (``activation``,
        ``code_activation``, ``output``, ``tied``, ``batch_norm``, ``dropout``), of which each
        model takes those it has. Models that cannot be described this way raise.
        """
        raise ValueError(f"model {cls.name!r} cannot be built from a run configuration")

    @staticmethod
    def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
        return {k: options[k] for k in names if k in options}

    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict."""
        raise NotImplementedError

    def encoder_layers(self) -> list[nn.Linear]:
        """The encoder's linear layers in order (used by analyses and regularisers)."""
        return []
