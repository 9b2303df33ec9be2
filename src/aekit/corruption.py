"""Input corruptions for denoising autoencoders: ``x̃ = q(x̃ | x)``, drawn with an explicit generator.

A corruption is a small callable ``corruption(x, generator) -> x̃``. :func:`aekit.fit` applies
it to training batches only and computes the loss against the clean ``x``, so a denoising AE is
a plain model trained with a corruption (Vincent et al. 2008, 2010). Every corruption returns a
new tensor with the dtype and device of ``x``; the clean input is never modified.

References
----------
Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with
denoising autoencoders", ICML 2008. Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked
denoising autoencoders", JMLR 11, 2010, section 4.3 (masking, Gaussian and salt-and-pepper
noise).
"""

from __future__ import annotations

import torch

from .validation import Param

__all__ = ["CORRUPTIONS", "Corruption", "Gaussian", "Masking", "SaltPepper", "make_corruption"]


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U(0, 1) noise shaped like ``x``, drawn on the generator's device, then moved to x's.

    Drawing on the generator's device keeps a CPU generator usable for GPU batches and makes
    the draw depend only on the generator state, not on where ``x`` lives.
    """
    dev = generator.device if generator is not None else x.device
    dt = x.dtype if x.is_floating_point() else torch.float32
    return torch.rand(x.shape, generator=generator, device=dev, dtype=dt).to(x.device)


class Corruption:
    """Base class: ``__call__(x, generator=None) -> x̃`` with ``x̃`` shaped, typed like ``x``.

    Subclasses declare their hyperparameters once in ``params`` (a tuple of
    :class:`~aekit.validation.Param`, the level first), validate them in ``__init__`` with
    :meth:`check`, store the level as ``self.level`` and implement :meth:`__call__`.
    """

    name: str = "corruption"
    params: tuple[Param, ...] = ()
    level: float

    def check(self, name: str, value):
        """``value`` validated against the declaration of parameter ``name``."""
        for p in self.params:
            if p.name == name:
                return p.check(value)
        raise KeyError(f"{type(self).__name__} declares no parameter {name!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.level})"


class Masking(Corruption):
    """Masking noise: each input component is set to 0 independently with probability ν.

    ``x̃_ij = m_ij x_ij`` with ``m_ij ~ Bernoulli(1 − ν)`` i.i.d., so the number of zeroed
    components of an (n, d) batch is Binomial(n d, ν). (Vincent et al. 2010 zero a fixed
    fraction ν per example; the independent version has the same mean and is what "dropout on
    the input layer" means.) The surviving components are *not* rescaled by 1/(1 − ν).

    Parameters
    ----------
    nu : float
        Corruption probability ν in [0, 1). Typical values 0.1–0.5.

    Shapes: any; ``x`` (n, d) -> ``x̃`` (n, d), same dtype and device.

    References
    ----------
    Vincent et al., "Stacked denoising autoencoders", JMLR 2010, section 4.3 ("masking noise").

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> Masking(0.5)(torch.ones(2, 4), g).shape
    torch.Size([2, 4])
    """

    name = "masking"
    params = (Param("nu", float, 0.25, "probability ν that an input component is set to 0",
                    lo=0, hi=1, hi_open=True),)

    def __init__(self, nu: float = 0.25):
        self.nu = self.level = self.check("nu", nu)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        keep = _uniform(x, generator) >= self.nu
        return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


class Gaussian(Corruption):
    """Additive isotropic Gaussian noise: ``x̃ = x + σ ε``, ``ε ~ N(0, I)``.

    Parameters
    ----------
    sigma : float
        Noise standard deviation σ >= 0, in the units of the data.

    Shapes: any floating tensor; ``x`` (n, d) -> ``x̃`` (n, d), same dtype and device.

    References
    ----------
    Vincent et al., "Stacked denoising autoencoders", JMLR 2010, section 4.3 ("additive
    isotropic Gaussian noise"); Bishop, "Training with noise is equivalent to Tikhonov
    regularization", Neural Computation 1995.
    """

    name = "gaussian"
    params = (Param("sigma", float, 0.1, "standard deviation σ of the additive noise", lo=0),)

    def __init__(self, sigma: float = 0.1):
        self.sigma = self.level = self.check("sigma", sigma)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        if not x.is_floating_point():
            raise ValueError(f"Gaussian noise needs a floating-point input, got {x.dtype}")
        dev = generator.device if generator is not None else x.device
        eps = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype)
        return x + self.sigma * eps.to(x.device)


class SaltPepper(Corruption):
    """Salt-and-pepper noise: each component is, with probability p, set to ``low`` or ``high``
    (a fair coin decides which); otherwise it is kept.

    ``x̃_ij = x_ij`` with probability 1 − p, ``low`` with probability p/2 and ``high`` with
    probability p/2, independently for every component.

    Parameters
    ----------
    p : float
        Corruption probability in [0, 1).
    low, high : float
        The minimum and maximum values of the data (0 and 1 for data scaled to [0, 1]).

    Shapes: any; ``x`` (n, d) -> ``x̃`` (n, d), same dtype and device.

    References
    ----------
    Vincent et al., "Stacked denoising autoencoders", JMLR 2010, section 4.3
    ("salt-and-pepper noise").
    """

    name = "salt_pepper"
    params = (Param("p", float, 0.1, "probability p that a component is set to low or high",
                    lo=0, hi=1, hi_open=True),
              Param("low", float, 0.0, "value of a pepper (minimum) component"),
              Param("high", float, 1.0, "value of a salt (maximum) component"))

    def __init__(self, p: float = 0.1, low: float = 0.0, high: float = 1.0):
        self.p = self.level = self.check("p", p)
        self.low, self.high = self.check("low", low), self.check("high", high)
        if not self.low <= self.high:
            raise ValueError(f"low must be <= high, got low={low}, high={high}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        u = _uniform(x, generator)
        coin = _uniform(x, generator) < 0.5
        lo = torch.tensor(self.low, dtype=x.dtype, device=x.device)
        hi = torch.tensor(self.high, dtype=x.dtype, device=x.device)
        return torch.where(u < self.p, torch.where(coin, hi, lo), x)

    def __repr__(self) -> str:
        return f"SaltPepper({self.p}, low={self.low}, high={self.high})"


#: Corruptions by name; each class takes its level (ν, σ or p) as the first argument.
CORRUPTIONS: dict[str, type[Corruption]] = {
    "masking": Masking,
    "gaussian": Gaussian,
    "salt_pepper": SaltPepper,
}


def make_corruption(name: str, level: float | None = None) -> Corruption:
    """Corruption by name and level: ``make_corruption("masking", 0.25)`` is ``Masking(0.25)``.

    Parameters
    ----------
    name : str
        One of :data:`CORRUPTIONS` (``"masking"``, ``"gaussian"``, ``"salt_pepper"``).
    level : float or None
        ν for masking, σ for Gaussian, p for salt-and-pepper. ``None`` takes the class's
        documented default (masking ν = 0.25, Gaussian σ = 0.1, salt-and-pepper p = 0.1).
        0 is refused: a corruption at level 0 leaves the input unchanged, so asking for a
        noise type with it would silently train a plain autoencoder.
    """
    try:
        cls = CORRUPTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown corruption {name!r}; expected one of: "
                         f"{', '.join(CORRUPTIONS)}") from None
    if level is None:
        level = cls.params[0].default
    elif float(level) == 0.0:
        raise ValueError(f"noise_level is 0 with noise {name!r}: that corrupts nothing; give a "
                         f"level > 0 (default for {name}: {cls.params[0].default}), or no noise")
    return cls(level)
