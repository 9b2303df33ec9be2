"""Corruptions: the fraction they touch, what they leave alone, determinism, validation."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from aekit.corruption import CORRUPTIONS, Gaussian, Masking, SaltPepper, make_corruption


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def binomial_bound(N: int, p: float, n_sd: float = 4.0) -> float:
    """n_sd standard deviations of the fraction of successes in N Bernoulli(p) trials."""
    return n_sd * math.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("nu", [0.1, 0.25, 0.5, 0.9])
def test_masking_zeroes_fraction_nu_and_keeps_the_rest(nu):
    x = torch.rand(400, 50) + 0.5  # strictly positive, so a zero means "masked"
    x0 = x.clone()
    xt = Masking(nu)(x, gen())
    assert torch.equal(x, x0), "masking modified the clean input in place"
    masked = xt == 0
    frac = masked.double().mean().item()
    assert abs(frac - nu) <= binomial_bound(x.numel(), nu), f"masked fraction {frac} vs {nu}"
    assert torch.equal(xt[~masked], x[~masked]), "kept entries must be unchanged (no rescaling)"


def test_masking_zero_level_is_identity_and_keeps_dtype():
    for dtype in (torch.float32, torch.float64, torch.float16, torch.uint8):
        x = (torch.rand(8, 5) * 10 + 1).to(dtype)
        xt = Masking(0.0)(x, gen())
        assert xt.dtype == dtype and torch.equal(xt, x)
        assert Masking(0.5)(x, gen()).dtype == dtype


@pytest.mark.parametrize("cls,level", [(Masking, 0.3), (Gaussian, 0.2), (SaltPepper, 0.3)])
def test_same_seed_same_corruption(cls, level):
    x = torch.rand(64, 20)
    c = cls(level)
    a, b = c(x, gen(7)), c(x, gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, c(x, gen(8)))
    # The generator advances: two draws from one generator differ.
    g = gen(7)
    assert not torch.equal(c(x, g), c(x, g))


def test_gaussian_noise_has_std_sigma_and_does_not_touch_x():
    x = torch.rand(500, 40, dtype=torch.float64)
    x0 = x.clone()
    sigma = 0.3
    xt = Gaussian(sigma)(x, gen())
    assert torch.equal(x, x0)
    assert xt.dtype == torch.float64
    eps = (xt - x) / sigma
    N = eps.numel()
    assert abs(eps.mean().item()) < 4 / math.sqrt(N)
    # Var of the sample variance of N(0,1) is 2/N.
    assert abs(eps.var().item() - 1) < 4 * math.sqrt(2 / N)
    assert torch.equal(Gaussian(0.0)(x, gen()), x)


def test_gaussian_rejects_integer_input():
    with pytest.raises(ValueError, match="floating"):
        Gaussian(0.1)(torch.zeros(2, 3, dtype=torch.int64), gen())


@pytest.mark.parametrize("p", [0.1, 0.4])
def test_salt_pepper_fraction_and_fair_coin(p):
    x = torch.full((400, 50), 0.5)
    xt = SaltPepper(p)(x, gen())
    assert torch.equal(x, torch.full((400, 50), 0.5))
    changed = xt != 0.5
    frac = changed.double().mean().item()
    assert abs(frac - p) <= binomial_bound(x.numel(), p), f"corrupted fraction {frac} vs {p}"
    vals = xt[changed]
    assert set(vals.unique().tolist()) <= {0.0, 1.0}
    n_c = vals.numel()
    salt = (vals == 1).double().mean().item()
    assert abs(salt - 0.5) <= binomial_bound(n_c, 0.5), f"salt share {salt}"


def test_salt_pepper_custom_range_and_dtype():
    x = torch.zeros(100, 10, dtype=torch.float64)
    xt = SaltPepper(0.5, low=-2.0, high=3.0)(x, gen())
    assert xt.dtype == torch.float64
    assert set(xt.unique().tolist()) <= {-2.0, 0.0, 3.0}
    with pytest.raises(ValueError, match="low"):
        SaltPepper(0.1, low=1.0, high=0.0)


def test_registry_and_factory():
    assert set(CORRUPTIONS) == {"masking", "gaussian", "salt_pepper"}
    c = make_corruption("masking", 0.25)
    assert isinstance(c, Masking) and c.nu == 0.25
    assert isinstance(make_corruption("gaussian", 0.1), Gaussian)
    assert isinstance(make_corruption("salt_pepper", 0.1), SaltPepper)
    with pytest.raises(ValueError, match="unknown corruption"):
        make_corruption("dropout", 0.1)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_fraction_validation_names_the_parameter(bad):
    with pytest.raises(ValueError, match=r"nu must be a finite number in \[0, 1\)"):
        Masking(bad)
    with pytest.raises(ValueError, match=r"p must be a finite number in \[0, 1\)"):
        SaltPepper(bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_sigma_validation(bad):
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        Gaussian(bad)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_every_corruption_declares_its_parameters_once(name):
    cls = CORRUPTIONS[name]
    assert cls.name == name
    args = {k: v for k, v in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    declared = {p.name: p for p in cls.params}
    assert list(args) == list(declared)  # the level first, as make_corruption passes it
    for k, p in declared.items():
        assert args[k].default == p.default, (k, args[k].default, p.default)
        assert p.doc and p.describe().startswith(k)
    c = cls()  # the declared defaults build a valid corruption
    assert c.level == cls.params[0].default
    for p in cls.params:  # each bound is enforced with the parameter's name
        for bad in ([p.lo - 1.0] if p.lo is not None else []) + ["0.1", True]:
            with pytest.raises(ValueError, match=f"^{p.name} must be"):
                cls(**{p.name: bad})


def test_works_without_generator():
    x = torch.rand(4, 6)
    assert Masking(0.5)(x).shape == x.shape
    assert Gaussian(0.1)(x).shape == x.shape
    assert SaltPepper(0.1)(x).shape == x.shape


def test_a_noise_type_without_a_level_is_never_a_silent_no_op():
    """``noise="masking"`` with level 0 used to train a plain AE; now level None takes the
    documented default and level 0 is an error naming noise_level."""
    from aekit.corruption import make_corruption

    assert make_corruption("masking").nu == 0.25
    assert make_corruption("gaussian").sigma == 0.1
    assert make_corruption("salt_pepper").p == 0.1
    with pytest.raises(ValueError, match="noise_level is 0 with noise 'masking'"):
        make_corruption("masking", 0.0)
    x = torch.ones(200, 50)
    frac = float((make_corruption("masking")(x, generator=torch.Generator().manual_seed(0)) == 0)
                 .float().mean())
    assert abs(frac - 0.25) < 0.02, frac
