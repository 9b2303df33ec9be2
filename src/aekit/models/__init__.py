"""Autoencoder architectures and the plain-dict registry ``MODELS``."""

from __future__ import annotations

from typing import Any

from .base import OUTPUTS, AEOutput, Autoencoder
from .dense import DenseAE, LinearAE

__all__ = ["MODELS", "OUTPUTS", "AEOutput", "Autoencoder", "DenseAE", "LinearAE", "make_model"]

#: Model classes by registry name; :func:`aekit.load` rebuilds a saved model through it.
MODELS: dict[str, type[Autoencoder]] = {
    "dense": DenseAE,
    "linear": LinearAE,
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
