"""Autoencoder architectures and the plain-dict registry ``MODELS``."""

from __future__ import annotations

from typing import Any

from .base import OUTPUTS, AEOutput, Autoencoder
from .conv import ConvAE
from .dense import DenseAE, LinearAE
from .document import DocumentAE
from .linear import PCASolution, init_linear_ae_from_pca, linear_ae_from_pca, pca_solution
from .rbm import RBM
from .residual import ResidualAE
from .sae import TopKSAE
from .unet import DnCNN, UNetAE
from .vae import VAE, ConvVAE

__all__ = [
    "MODELS",
    "OUTPUTS",
    "RBM",
    "VAE",
    "AEOutput",
    "Autoencoder",
    "ConvAE",
    "ConvVAE",
    "DenseAE",
    "DnCNN",
    "DocumentAE",
    "LinearAE",
    "PCASolution",
    "ResidualAE",
    "TopKSAE",
    "UNetAE",
    "init_linear_ae_from_pca",
    "linear_ae_from_pca",
    "make_model",
    "pca_solution",
]

#: Model classes by registry name; :func:`aekit.load` rebuilds a saved model through it.
MODELS: dict[str, type[Autoencoder]] = {
    "dense": DenseAE,
    "linear": LinearAE,
    "rbm": RBM,
    "conv": ConvAE,
    "residual": ResidualAE,
    "unet": UNetAE,
    "dncnn": DnCNN,
    "document": DocumentAE,
    "vae": VAE,
    "conv_vae": ConvVAE,
    "topk_sae": TopKSAE,
}


def make_model(name: str, **kwargs: Any) -> Autoencoder:
    """Build a model by registry name, e.g. ``make_model("dense", sizes=[784, 32])``."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}") from None
    try:
        return cls(**kwargs)
    except TypeError as e:  # unknown or missing keyword
        raise ValueError(f"model {name!r}: {e}") from None
