"""Building blocks shared by the models: activations by name, a tied-weight decoder layer.

Only architecture lives here; nothing in this module knows about losses or training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ACTIVATIONS", "TiedLinear", "TopK", "activation"]


class TopK(nn.Module):
    """Keep the ``k`` largest entries of each row and zero the rest (k-sparse code).

    ``h_i = z_i`` if ``z_i`` is among the k largest of the row, else 0.

    Parameters
    ----------
    k : int
        Number of units kept per sample; must be >= 1.

    References
    ----------
    Makhzani & Frey, "k-Sparse Autoencoders", ICLR 2014, section 2.
    """

    def __init__(self, k: int):
        super().__init__()
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.k > z.shape[-1]:
            raise ValueError(f"k={self.k} is larger than the code size {z.shape[-1]}")
        vals, idx = z.topk(self.k, dim=-1)
        return torch.zeros_like(z).scatter(-1, idx, vals)

    def extra_repr(self) -> str:
        return f"k={self.k}"


#: Element-wise activations by name. ``"linear"`` is the identity.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "linear": nn.Identity,
}


def activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (one of :data:`ACTIVATIONS`).

    ``"topk:K"`` returns :class:`TopK` with ``k=K`` (only meaningful as a code activation).
    """
    if not isinstance(name, str):
        raise ValueError(f"activation must be a string, got {name!r}")
    if name.startswith("topk:"):
        try:
            k = int(name.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"activation {name!r}: expected 'topk:<int>'") from None
        return TopK(k)
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS)) + ", topk:<k>"
        raise ValueError(f"unknown activation {name!r}; expected one of: {known}") from None


class TiedLinear(nn.Module):
    """Linear layer reusing the transpose of another layer's weight: ``y = h W + c``.

    If the encoder layer computes ``h = x Wᵀ + b`` with ``W`` of shape (k, d), the tied decoder
    computes ``x̂ = h W + c`` with its own bias ``c`` of shape (d,). The weight is shared, so
    its gradient is the sum of the encoder's and the decoder's contributions.

    Parameters
    ----------
    tied_to : nn.Linear
        The encoder layer whose weight (k, d) is shared.

    Shapes: input (n, k) -> output (n, d).

    References
    ----------
    Vincent et al., "Stacked Denoising Autoencoders", JMLR 2010, section 2.3 (tied weights).
    """

    def __init__(self, tied_to: nn.Linear):
        super().__init__()
        # Stored outside ``_modules`` so the shared weight is registered (and saved) once.
        object.__setattr__(self, "_tied", tied_to)
        self.bias = nn.Parameter(torch.zeros(tied_to.in_features))

    @property
    def weight(self) -> torch.Tensor:
        """The transposed shared weight, shape (d, k)."""
        return self._tied.weight.t()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self._tied.weight.t(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self._tied.out_features}, out_features={self._tied.in_features}, tied"


def init_linear(layer: nn.Linear, act: str) -> None:
    """Initialise a linear layer for the activation that follows it.

    Kaiming-uniform for ReLU-like units, Xavier/Glorot-uniform for saturating and linear ones.
    Biases start at zero.
    """
    if act in ("relu", "leaky_relu", "elu", "gelu", "silu") or act.startswith("topk"):
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    else:
        nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
