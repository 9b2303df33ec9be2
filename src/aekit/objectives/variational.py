"""Variational objectives: the ELBO's KL term (β-VAE, KL warm-up, free bits) and the IWAE
bound, as :class:`~aekit.objectives.core.Term` objects trained by :func:`aekit.fit`.

The negative ELBO of a :mod:`aekit.models.vae` model is ``Objective(model.reconstruction_nll,
[GaussianKL(beta)])`` (parts ``recon`` = E_q[−log p(x|z)] estimated with one sample and
``kl``), built by :func:`variational_objective`; for binary data and a Bernoulli decoder
``Objective("bce", [GaussianKL()])`` is the same function. The IWAE objective is
``Objective(None, [IWAEBound(k)])`` (part ``iwae``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..data.batch import Batch
from ..models.base import AEOutput
from ..validation import Param, check_float, check_int
from .core import Objective, Term

__all__ = ["IW_GRADIENTS", "GaussianKL", "IWAEBound", "gaussian_kl", "iwae_log_weights",
           "kl_weight", "log_mean_exp", "log_normal", "variational_objective"]

_LOG_2PI = math.log(2 * math.pi)

#: Encoder gradient estimators of the IWAE bound: the plain reparameterised gradient, and the
#: doubly reparameterised one (Tucker et al. 2019).
IW_GRADIENTS = ("iwae", "dreg")


def _up(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def log_mean_exp(a: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log (1/k) Σ_s exp(a_s)`` along ``dim``, computed stably as
    ``m + log (1/k) Σ_s exp(a_s − m)`` with ``m = max_s a_s``.

    Exact for huge (1e4) or very negative (−1e4) inputs where ``exp`` overflows or
    underflows; an all ``−inf`` slice gives ``−inf``. Shape: ``a`` with ``dim`` removed.

    References: Burda, Grosse & Salakhutdinov, "Importance weighted autoencoders", ICLR 2016,
    eq. (8) (the bound is a log-mean-exp of log weights).
    """
    m = a.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    k = a.shape[dim]
    return (m + torch.log(torch.exp(a - m).sum(dim=dim, keepdim=True)) - math.log(k)
            ).squeeze(dim)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(μ, diag σ²) ‖ N(0, I))`` per latent unit:
    ``½ (μ² + σ² − 1 − log σ²)``. (n, k) -> (n, k); sum over the last axis for the KL.

    References: Kingma & Welling, "Auto-encoding variational Bayes", ICLR 2014, appendix B.
    """
    return 0.5 * (mu.pow(2) + torch.exp(log_var) - 1.0 - log_var)


def log_normal(z: torch.Tensor, mu: torch.Tensor | None = None,
               log_var: torch.Tensor | None = None) -> torch.Tensor:
    """``log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ_j² + (z_j − μ_j)²/σ_j²]``, summed over
    the last axis (μ = 0, σ = 1 when omitted). (..., k) -> (...)."""
    if mu is None:
        return -0.5 * (_LOG_2PI + z.pow(2)).sum(-1)
    return -0.5 * (_LOG_2PI + log_var + (z - mu).pow(2) * torch.exp(-log_var)).sum(-1)


def iwae_log_weights(model: nn.Module, x: torch.Tensor, k: int, *,
                     posterior: tuple[torch.Tensor, torch.Tensor] | None = None,
                     first: AEOutput | None = None,
                     generator: torch.Generator | None = None,
                     dreg: bool = False) -> torch.Tensor:
    """Log importance weights ``log w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x)``,
    ``z_s ~ q(z|x)`` by reparameterisation, s = 1..k. Returns (k, n).

    ``posterior`` reuses (μ, log σ²) already computed; ``first`` a training-mode output of a
    variational model (``preactivations[2]`` a sample z of q, ``logits`` decoded from it),
    used as sample 1.

    ``dreg=True`` (only without ``first``) prepares the doubly reparameterised gradient of
    Tucker et al. (2019): ``log q(z_s|x)`` is evaluated with (μ, log σ²) detached, so the
    encoder's parameters φ reach ``log w_s`` only through ``z_s``, and once grad is enabled
    the gradient arriving at every ``z_s`` is multiplied by the normalised weight
    ``w̃_s = w_s / Σ_t w_t`` (a hook). Backpropagating ``−log (1/k) Σ_s w_s`` then gives
    the decoder the IWAE gradient ``−Σ_s w̃_s ∇_θ log w_s`` and the encoder
    ``−Σ_s w̃_s² (∂ log w_s / ∂z_s)(∂z_s / ∂φ)``, an unbiased estimate of the same gradient
    with lower variance (their eq. 5). The values are unchanged.

    References: Burda, Grosse & Salakhutdinov, ICLR 2016, section 3, eq. (8); Tucker, Lawson,
    Gu & Maddison, "Doubly reparameterized gradient estimators for Monte Carlo objectives",
    ICLR 2019, section 3.
    """
    if dreg and first is not None:
        raise ValueError("iwae_log_weights: dreg=True draws every sample itself; do not "
                         "pass first=")
    mu, log_var = model.posterior(x) if posterior is None else posterior
    need = k - (first is not None)
    zs, log_px = [], []
    if first is not None:
        # sample 1 from the model's own forward pass: its log p(x|z) is computed on its (n, d)
        # logits and only the (k, n) results are concatenated, never the (k, n, d) logits
        zs.append(first.preactivations[2].unsqueeze(0))
        log_px.append(model.log_px(x, first.logits.reshape(x.shape[0], -1)).unsqueeze(0))
    if need > 0:
        z = model.reparameterize(mu, log_var, need, generator=generator)  # (s, n, k)
        zs.append(z)
        log_px.append(model.log_px(x, model.decode_logits(z)))
    z = torch.cat(zs) if len(zs) > 1 else zs[0]
    lp = torch.cat(log_px) if len(log_px) > 1 else log_px[0]
    mu, log_var, z_up = _up(mu), _up(log_var), _up(z)  # bf16 autocast: sums in float32
    if dreg:
        mu, log_var = mu.detach(), log_var.detach()
    log_w = lp + log_normal(z_up) - log_normal(z_up, mu, log_var)
    if dreg and z.requires_grad and torch.is_grad_enabled():
        w = torch.softmax(log_w.detach().float(), dim=0).unsqueeze(-1)  # (k, n, 1)
        z.register_hook(lambda g: g * w.to(g.dtype))
    return log_w


def kl_weight(step: int, beta: float, warmup_steps: int) -> float:
    """The KL weight after ``step`` optimiser steps: ``β min(1, (step + 1) / T)`` with a
    linear warm-up over T = ``warmup_steps`` (β when T = 0).

    References: Bowman et al., "Generating sentences from a continuous space", CoNLL 2016,
    section 3.1 (KL annealing); Sønderby et al., "Ladder variational autoencoders", NIPS 2016,
    section 2.3 (warm-up).
    """
    if warmup_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, (int(step) + 1) / int(warmup_steps))


def _check_variational(model: nn.Module, who: str) -> None:
    if not getattr(model, "variational", False):
        raise ValueError(f"{who} needs a variational model (models 'vae' or 'conv_vae', whose "
                         f"output carries the posterior); got {type(model).__name__}")


class GaussianKL(Term):
    """The ELBO's KL term, weighted: ``R = w_t Σ_j max(λ, KL_j)`` with
    ``KL_j = (1/n) Σ_i ½ (μ_ij² + σ_ij² − 1 − log σ_ij²)`` the batch-mean KL of latent unit j
    (closed form, :func:`gaussian_kl`), ``λ`` the free bits per unit (0: plain KL) and
    ``w_t = β min(1, (t + 1)/T)`` the weight after t training steps (:func:`kl_weight`).

    β = 1 and λ = 0 give the negative ELBO with the reconstruction loss; β > 1 is the β-VAE.
    The step counter is a buffer, so a checkpoint resumes the warm-up exactly; it advances
    only in training mode, and evaluation uses the current weight.

    Parameters
    ----------
    beta : float
        β >= 0 (β < 0 is refused: the objective would reward a large KL).
    warmup_steps : int
        T, steps of linear KL warm-up from ~0 to β (0: none).
    free_bits : float
        λ >= 0, nats per latent unit below which the KL is not penalised.

    References
    ----------
    Kingma & Welling, ICLR 2014, eq. (10); Higgins et al., "β-VAE", ICLR 2017, eq. (4);
    Kingma et al., "Improved variational inference with inverse autoregressive flow",
    NIPS 2016, appendix C.8 (free bits); Sønderby et al., NIPS 2016 (warm-up).
    """

    name = "kl"
    params = (Param("beta", float, 1.0, "weight β of the KL term (β-VAE)", lo=0),
              Param("warmup_steps", int, 0, "steps of linear KL warm-up (0: none)", lo=0),
              Param("free_bits", float, 0.0, "free bits λ per latent unit, in nats", lo=0))

    def __init__(self, beta: float = 1.0, warmup_steps: int = 0, free_bits: float = 0.0):
        super().__init__()
        self.beta = self.check("beta", beta)
        self.warmup_steps = self.check("warmup_steps", warmup_steps)
        self.free_bits = self.check("free_bits", free_bits)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self._kl_sum = 0.0
        self._n = 0

    def check_model(self, model: nn.Module) -> None:
        _check_variational(model, "GaussianKL")

    def weight(self) -> float:
        """The current weight ``w_t``."""
        return kl_weight(int(self.step), self.beta, self.warmup_steps)

    def forward(self, model: nn.Module, batch: Batch, out: AEOutput) -> torch.Tensor:
        mu, log_var = out.preactivations[:2]
        per_unit = gaussian_kl(mu, log_var).mean(0)  # (n, k) -> (k,)
        kl = per_unit.clamp(min=self.free_bits).sum() if self.free_bits > 0 else per_unit.sum()
        w = self.weight()
        if self.training:
            self.step += 1
            self._kl_sum += float(per_unit.detach().sum()) * mu.shape[0]
            self._n += mu.shape[0]
        return w * kl

    def metrics(self) -> dict[str, float]:
        """``weight`` (the current w_t) and ``nats`` (the unweighted KL, mean over the epoch's
        training samples, without free bits); resets the epoch sums."""
        out = {"weight": self.weight()}
        if self._n:
            out["nats"] = self._kl_sum / self._n
        self._kl_sum, self._n = 0.0, 0
        return out


class IWAEBound(Term):
    """The negative importance-weighted bound with k samples:
    ``R = −(1/n) Σ_i log (1/k) Σ_s w_is``, ``w_is = p(x_i, z_is) / q(z_is|x_i)``,
    ``z_is ~ q(z|x_i)`` (reparameterised). ``L_1`` is the ELBO; ``L_k ≤ L_{k+1} ≤ log p(x)``
    (Burda et al., theorem 1). Use as the whole objective: ``Objective(None, [IWAEBound(k)])``.

    In training mode the model's own forward pass supplies sample 1 (its z and logits), so
    only k − 1 further decoder passes are made; in eval mode all k are drawn.

    ``gradient="dreg"`` keeps the bound and the decoder's gradient and gives the encoder the
    doubly reparameterised estimator of Tucker et al. (2019), ``−Σ_s w̃_s² (∂ log w_s/∂z_s)
    (∂z_s/∂φ)`` with ``w̃_s = w_s / Σ_t w_t`` and ``log q`` differentiated through z_s only
    (:func:`iwae_log_weights`): unbiased for the same gradient, with a signal-to-noise ratio
    that does not decay as k grows (Rainforth et al. 2018 show it does for the plain IWAE
    encoder gradient). All k samples are then drawn here (the forward pass's own z is not
    reused: one extra decoder pass of n rows).

    Parameters
    ----------
    k : int
        Number of importance samples, >= 1.
    gradient : {"iwae", "dreg"}
        The encoder's gradient estimator.

    References
    ----------
    Burda, Grosse & Salakhutdinov, "Importance weighted autoencoders", ICLR 2016, eq. (8);
    Tucker, Lawson, Gu & Maddison, "Doubly reparameterized gradient estimators for Monte
    Carlo objectives", ICLR 2019, eq. (5); Rainforth et al., "Tighter variational bounds are
    not necessarily better", ICML 2018.
    """

    name = "iwae"
    params = (Param("k", int, 5, "importance samples per input", lo=1),
              Param("gradient", str, "iwae", "encoder gradient estimator",
                    choices=IW_GRADIENTS))

    def __init__(self, k: int = 5, gradient: str = "iwae"):
        super().__init__()
        self.k = self.check("k", k)
        self.gradient = self.check("gradient", gradient)

    def check_model(self, model: nn.Module) -> None:
        _check_variational(model, "IWAEBound")

    def forward(self, model: nn.Module, batch: Batch, out: AEOutput) -> torch.Tensor:
        x = batch.target
        dreg = self.gradient == "dreg" and model.training
        log_w = iwae_log_weights(model, x, self.k, posterior=tuple(out.preactivations[:2]),
                                 first=out if model.training and not dreg else None,
                                 dreg=dreg)
        return -log_mean_exp(log_w, 0).mean()


def variational_objective(model: nn.Module, *, beta: float = 1.0, iw_samples: int = 1,
                          kl_warmup_steps: int = 0, free_bits: float = 0.0,
                          iw_gradient: str = "iwae",
                          terms: Sequence[Term] = ()) -> Objective:
    """The training objective of a variational model.

    ``iw_samples == 1``: the negative (β-)ELBO ``E_q[−log p(x|z)] + w_t Σ_j max(λ, KL_j)``,
    ``Objective(model.reconstruction_nll, [GaussianKL(beta, kl_warmup_steps, free_bits)])``,
    parts ``recon`` and ``kl``. ``iw_samples = k > 1``: the negative IWAE bound
    ``Objective(None, [IWAEBound(k)])``, part ``iwae`` (β must then be 1 and there is no
    warm-up or free bits: the IWAE bound has no separate KL). ``iw_gradient="dreg"`` (IWAE
    only) trains the encoder with the doubly reparameterised gradient (:class:`IWAEBound`).
    Extra ``terms`` are appended.

    References: Kingma & Welling, ICLR 2014; Burda et al., ICLR 2016; Higgins et al., ICLR 2017;
    Tucker et al., ICLR 2019 (DReG).
    """
    _check_variational(model, "variational_objective")
    beta = check_float("beta", beta, 0)
    iw_samples = check_int("iw_samples", iw_samples, 1)
    kl_warmup_steps = check_int("kl_warmup_steps", kl_warmup_steps, 0)
    free_bits = check_float("free_bits", free_bits, 0)
    if iw_gradient not in IW_GRADIENTS:
        raise ValueError(f"iw_gradient must be one of {IW_GRADIENTS}, got {iw_gradient!r}")
    if iw_gradient != "iwae" and iw_samples == 1:
        raise ValueError(f"iw_gradient={iw_gradient!r} applies to the IWAE bound: it needs "
                         "iw_samples > 1 (iw_samples=1 trains the ELBO with its closed-form "
                         "KL)")
    if iw_samples > 1:
        if beta != 1.0 or kl_warmup_steps or free_bits:
            raise ValueError(f"iw_samples={iw_samples} (IWAE) takes no beta/kl_warmup_steps/"
                             f"free_bits (the bound has no separate KL term); got beta={beta}, "
                             f"kl_warmup_steps={kl_warmup_steps}, free_bits={free_bits}")
        return Objective(None, [IWAEBound(iw_samples, iw_gradient), *terms])
    return Objective(model.reconstruction_nll,
                     [GaussianKL(beta, kl_warmup_steps, free_bits), *terms])
