"""An autoencoder that starts as PCA: a linear path plus a nonlinear residual that begins at 0.

    h  = (x − μ) V + f(x),          f: d → hidden → k  (last layer zero at the start)
    x̂  = μ + h Vᵀ + g(h),           g: k → hidden → d  (last layer zero at the start)

With ``V`` the top-k principal directions and ``μ`` the mean (:meth:`ResidualAE.init_pca`),
the untrained model *is* PCA-k: its reconstructions equal PCA's. Training moves away from that
point only as far as the objective rewards, and with early stopping on the validation
reconstruction (the starting point included, see
:class:`aekit.train.callbacks.EarlyStopping`'s ``include_start``) the fitted model cannot end
worse than PCA on the validation data.

Zero-initialising the last layer of each residual branch is the "start at the identity"
trick of residual networks (Goyal et al. 2017, zero-γ; Zhang, Dauphin & Ma, "Fixup", ICLR
2019); the gradient reaches the inner layers once the last one has moved off zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import activation as make_activation
from ..layers import init_linear
from .base import Autoencoder
from .linear import pca_solution

__all__ = ["ResidualAE"]


def _mlp(sizes: list[int], act: str, dropout: float) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        last = i == len(sizes) - 2
        init_linear(lin, "linear" if last else act)
        mods.append(lin)
        if not last:
            mods.append(make_activation(act))
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
    return nn.Sequential(*mods)


class ResidualAE(Autoencoder):
    """PCA plus nonlinear residual branches in the encoder and the decoder.

    Parameters
    ----------
    n_features : int
        d.
    n_components : int
        k, the code size.
    hidden : sequence of int
        Hidden sizes of the encoder's residual branch (the decoder's is mirrored); empty for
        a purely linear model (= a linear autoencoder parameterised from PCA).
    activation : str
        Hidden activation of the branches.
    dropout : float
        Dropout after each hidden layer of the branches.

    A new model is randomly initialised (orthonormal ``V``, Glorot branches);
    :meth:`init_pca` turns it into PCA of the training data.

    Attributes
    ----------
    mean : Parameter (d,); V : Parameter (d, k)
        The linear path (trainable; :meth:`init_pca` sets them to PCA's).

    Examples
    --------
    >>> X = torch.randn(200, 6)
    >>> m = ResidualAE(6, 2, hidden=[8]).init_pca(X)
    >>> sol = pca_solution(X, 2)
    >>> pca = (X - sol.mean) @ sol.components @ sol.components.T + sol.mean
    >>> torch.allclose(m(X).reconstruction, pca, atol=1e-5)
    True
    """

    name = "residual"

    def __init__(self, n_features: int, n_components: int, hidden: Sequence[int] = (256,),
                 activation: str = "elu", dropout: float = 0.0):
        super().__init__()
        from .dense import check_sizes

        sizes = check_sizes([n_features, *hidden, n_components])
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        make_activation(activation)
        self.n_features, self.n_components = sizes[0], sizes[-1]
        self.hidden, self.activation, self.dropout = list(sizes[1:-1]), activation, float(dropout)
        self.output = "linear"
        self.mean = nn.Parameter(torch.zeros(self.n_features))
        V = torch.empty(self.n_features, self.n_components)
        nn.init.orthogonal_(V)
        self.V = nn.Parameter(V)
        self.f = _mlp(sizes, activation, self.dropout)
        self.g = _mlp(sizes[::-1], activation, self.dropout)

    @torch.no_grad()
    def init_pca(self, X: Any) -> ResidualAE:
        """Set the linear path to PCA-k of ``X`` (n, d) and zero both residual branches'
        last layers, so the model reproduces PCA's reconstructions. Returns self."""
        p = self.V
        T = torch.as_tensor(X, dtype=p.dtype)
        if T.ndim != 2 or T.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), got {tuple(T.shape)}")
        if T.shape[0] <= self.n_components:
            raise ValueError(f"X needs more than n_components={self.n_components} rows for "
                             f"PCA, got {T.shape[0]}")
        sol = pca_solution(T, self.n_components)
        self.mean.copy_(sol.mean)
        self.V.copy_(sol.components)
        for branch in (self.f, self.g):
            nn.init.zeros_(branch[-1].weight)
            nn.init.zeros_(branch[-1].bias)
        return self

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h = (x - self.mean) @ self.V + self.f(x)  # (n, d) -> (n, k)
        return h, (h,)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.mean + h @ self.V.T + self.g(h)  # (n, k) -> (n, d)

    def encoder_layers(self) -> list[nn.Linear]:
        return [m for m in self.f if isinstance(m, nn.Linear)]

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``ResidualAE(d, k, hidden, activation, dropout)`` (see
        :meth:`Autoencoder.from_spec`); call :meth:`init_pca` on the training data."""
        return cls(n_features, code_size, hidden, **cls._pick(options, "activation",
                                                               "dropout"))

    def config(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "n_components": self.n_components,
                "hidden": list(self.hidden), "activation": self.activation,
                "dropout": self.dropout}
