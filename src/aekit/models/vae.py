"""Variational autoencoders: a Gaussian encoder q(z|x) and a Bernoulli or Gaussian decoder
p(x|z), dense (:class:`VAE`) and convolutional (:class:`ConvVAE`).

The model is architecture only, as every aekit model: the ELBO, the KL weight (β-VAE), KL
warm-up, free bits and the IWAE bound are objective terms (:mod:`aekit.objectives.variational`)
trained by the one loop :func:`aekit.fit`. The model provides what those terms need: the
posterior parameters, the reparameterised sample, and the decoder's log-likelihood.

Conventions of :meth:`forward` (an :class:`~aekit.models.base.AEOutput` like every model):
``code`` is the posterior mean μ (the deterministic code, ``== encode(x)``);
``preactivations == (μ, log σ², z)`` with z a reparameterised sample of q(z|x) in training
mode and z = μ in eval mode (so ``reconstruct`` is deterministic), each (n, k); ``logits`` and
``reconstruction`` are the decoder's output at that z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..layers import activation as make_activation
from ..layers import init_linear
from .base import AEOutput, Autoencoder
from .conv import ConvAE
from .dense import check_sizes

__all__ = ["LIKELIHOODS", "VAE", "ConvVAE", "VariationalModel", "bernoulli_log_prob",
           "compiled_bernoulli_log_prob"]

#: Decoder likelihoods: ``"bernoulli"`` (binary data, logits s, p(x|z) = Π σ(s)^x (1−σ(s))^(1−x))
#: or ``"gaussian"`` (real data, mean s, a learned per-feature variance σ_x²).
LIKELIHOODS = ("bernoulli", "gaussian")

_LOG_2PI = math.log(2 * math.pi)


class _BernoulliLogProb(torch.autograd.Function):
    """``ℓ = Σ_j [x_j s_j − softplus(s_j)]`` over the last axis with the backward
    ``∂ℓ/∂s_j = x_j − σ(s_j)``, ``∂ℓ/∂x_j = s_j`` written out: the forward pass is a batched
    dot product ``x·s`` (bmm) and one ``softplus`` + sum, the backward one sigmoid and two
    in-place passes, instead of the composed formula's five passes over the (..., n, d)
    logits and its autograd graph."""

    @staticmethod
    def forward(ctx, x, logits):
        ctx.save_for_backward(x, logits)
        n, d = x.shape
        s = logits.reshape(-1, n, d)  # (m, n, d), a view for contiguous logits
        with torch.autocast(logits.device.type, enabled=False):  # bmm stays float32
            if s.shape[0] < 4:  # few samples: a broadcast product is cheaper than n tiny bmms
                xs = (s * x).sum(-1)
            else:  # (n, m, d) @ (n, d, 1): no (m, n, d) temporary
                xs = torch.bmm(s.transpose(0, 1), x.unsqueeze(-1)).squeeze(-1).T  # (m, n)
            return (xs - F.softplus(s).sum(-1)).reshape(logits.shape[:-1])

    @staticmethod
    def backward(ctx, g):
        x, logits = ctx.saved_tensors
        g = g.unsqueeze(-1)
        gx = gs = None
        if ctx.needs_input_grad[1]:
            if torch.is_grad_enabled():  # create_graph: keep it differentiable
                gs = (x - torch.sigmoid(logits)) * g
            else:
                gs = torch.sigmoid(logits).sub_(x).mul_(-g)
        if ctx.needs_input_grad[0]:
            gx = logits * g
            gx = gx.reshape(-1, *x.shape).sum(0) if gx.dim() > x.dim() else gx
        return gx, gs


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Bernoulli log-likelihood with logits, summed over the last axis:
    ``log p(x|s) = Σ_j [x_j s_j − softplus(s_j)] = Σ_j [x_j log σ(s_j) + (1−x_j) log(1−σ(s_j))]``.

    Fused: the forward pass is a batched dot product ``x·s`` plus one stable ``softplus`` and
    sum (no broadcast copy of x), the backward pass the closed form ``∂/∂s_j = x_j − σ(s_j)``,
    ``∂/∂x_j = s_j`` computed in place; the value and both gradients equal the composed
    formula's (to rounding), and it is twice differentiable.
    Computed in float32 at least: bf16 logits (autocast) are cast up first, so the sum over d
    terms is never accumulated in bf16.

    Parameters
    ----------
    x : Tensor, shape (n, d)
        Data in [0, 1] (0/1 for a probability), broadcast over the leading axes of ``logits``.
    logits : Tensor, shape (..., n, d)

    Returns
    -------
    Tensor, shape (..., n)

    References
    ----------
    Kingma & Welling, "Auto-encoding variational Bayes", ICLR 2014, appendix C.1 (Bernoulli
    MLP decoder).
    """
    if logits.dtype in (torch.bfloat16, torch.float16):
        logits = logits.float()
    x = x.to(logits.dtype)
    return _BernoulliLogProb.apply(x, logits)


def _composed_bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    s = logits.float()
    return (x * s - F.softplus(s)).sum(-1)


_COMPILED: dict[str, Any] = {}


def compiled_bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """:func:`bernoulli_log_prob` through ``torch.compile``: the same
    ``Σ_j [x_j s_j − softplus(s_j)]`` (float32, bf16 logits cast up inside the kernel), fused
    by TorchInductor into one pass over the (..., n, d) logits forward and one backward (the
    closed form ``x − σ(s)``), with x broadcast and never copied.

    Opt-in (``VariationalModel.compile_likelihood``), for training steps dominated by the
    likelihood, such as IWAE with many samples: the first call per input shape compiles for
    tens of seconds and needs the C++ toolchain TorchInductor uses (a compiler on the
    machine); every later call of that shape is reused. Shapes are static (``dynamic=False``),
    so call it with the training batch shapes only; :meth:`VariationalModel.log_px` uses it
    only where gradients are taken. Value and gradients equal :func:`bernoulli_log_prob` up to
    float32 summation order.

    ``x`` (n, d), ``logits`` (..., n, d) -> (..., n).

    References
    ----------
    Ansel et al., "PyTorch 2: faster machine learning through dynamic Python bytecode
    transformation and graph compilation", ASPLOS 2024 (TorchDynamo / TorchInductor).
    """
    fn = _COMPILED.get("bernoulli")
    if fn is None:
        fn = _COMPILED["bernoulli"] = torch.compile(_composed_bernoulli_log_prob,
                                                    dynamic=False)
    try:
        return fn(x.to(torch.float32), logits)
    except Exception as e:  # the toolchain is missing or the backend failed: say what to do
        if type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise RuntimeError("compile_likelihood=True: torch.compile failed (it needs a C++ "
                               "compiler for TorchInductor's CPU kernels); set "
                               f"compile_likelihood=False. Cause: {type(e).__name__}: "
                               f"{str(e)[:300]}") from e
        raise


class VariationalModel(Autoencoder):
    """Base of the variational models: reparameterisation, decoder likelihood, sampling.

    Subclasses implement :meth:`posterior` (x -> μ, log σ²) and :meth:`decode_logits`
    (z of shape (..., k) -> (..., d), any leading dimensions).

    Attributes
    ----------
    likelihood : {"bernoulli", "gaussian"}
    x_log_var : Parameter, shape (d,)
        ``log σ_x²`` of the Gaussian decoder (learned, initialised at 0); absent for Bernoulli.
    compile_likelihood : bool
        Run-time switch (default False, not saved): training steps compute the Bernoulli
        likelihood with :func:`compiled_bernoulli_log_prob`.
    """

    variational = True
    likelihood: str = "bernoulli"
    #: Use :func:`compiled_bernoulli_log_prob` for the Bernoulli likelihood where gradients
    #: are taken (training steps); a run-time switch, not part of the saved config.
    compile_likelihood: bool = False

    def _init_likelihood(self, likelihood: str, n_features: int) -> None:
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        self.output = "sigmoid" if likelihood == "bernoulli" else "linear"
        if likelihood == "gaussian":
            self.x_log_var = nn.Parameter(torch.zeros(n_features))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of ``q(z|x) = N(μ(x), diag σ²(x))``: (n, d) -> ((n, k), (n, k))."""
        raise NotImplementedError

    def encode_full(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        mu, log_var = self.posterior(x)
        return mu, (mu, log_var)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean μ(x), the deterministic code: (n, d) -> (n, k)."""
        return self.posterior(x)[0]

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, n_samples: int | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """``z = μ + σ ⊙ ε``, ``ε ~ N(0, I)`` (Kingma & Welling 2014, section 2.4).

        (n, k) -> (n, k), or (s, n, k) with ``n_samples=s``. Differentiable in μ and log σ².
        """
        shape = mu.shape if n_samples is None else (int(n_samples), *mu.shape)
        eps = torch.randn(shape, dtype=mu.dtype, device=mu.device, generator=generator)
        return mu + torch.exp(0.5 * log_var) * eps

    @property
    def decodes_from_code(self) -> bool:
        """Whether ``decode(out.code) == out.reconstruction``: in eval mode only (in training
        mode the reconstruction is decoded from a sample z, not from the code μ)."""
        return not self.training

    def forward(self, x: torch.Tensor) -> AEOutput:
        """Code μ; z ~ q(z|x) in training mode (μ in eval mode), decoded: see the module
        docstring. (n, d) -> AEOutput(code (n, k), reconstruction (n, d), logits (n, d),
        (μ, log σ², z))."""
        mu, log_var = self.posterior(x)
        z = self.reparameterize(mu, log_var) if self.training else mu
        logits = self.decode_logits(z)
        return AEOutput(mu, self._squash(logits), logits, (mu, log_var, z))

    def log_px(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Decoder log-likelihood ``log p(x|z) = Σ_j log p(x_j | s_j(z))`` per sample.

        Bernoulli: ``Σ_j [x_j s_j − softplus(s_j)]`` (= −BCE with logits; x in [0, 1]).
        Gaussian: ``−½ Σ_j [log 2π + log σ_j² + (x_j − s_j)² / σ_j²]``.
        The Bernoulli case is the fused :func:`bernoulli_log_prob`; both are summed in
        float32 at least (bf16 logits from an autocast region are cast up first).

        ``x`` (n, d) (images are flattened), ``logits`` (..., n, d) -> (..., n).
        """
        x = x.reshape(x.shape[0], -1)
        if self.likelihood == "bernoulli":
            if self.compile_likelihood and torch.is_grad_enabled() and logits.requires_grad:
                return compiled_bernoulli_log_prob(x, logits)
            return bernoulli_log_prob(x, logits)
        if logits.dtype in (torch.bfloat16, torch.float16):
            logits = logits.float()
        lv = self.x_log_var.to(logits.dtype)
        return -0.5 * (_LOG_2PI + lv + (x - logits).pow(2) * torch.exp(-lv)).sum(-1)

    def reconstruction_nll(self, target: torch.Tensor, out: AEOutput) -> torch.Tensor:
        """``−log p(x|z)`` per sample at the output's z: the ELBO's reconstruction part, (n,).

        Used as the per-sample loss of :func:`aekit.objectives.variational_objective`.
        """
        return -self.log_px(target, out.logits)

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               mean: bool = True) -> torch.Tensor:
        """Draw ``n`` samples of the generative model: ``z ~ N(0, I)``, then the decoder's
        mean E[x|z] (``mean=True``) or a draw ``x ~ p(x|z)``. Returns (n, d)."""
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        p = next(self.parameters())
        with torch.no_grad():
            z = torch.randn((n, self.n_components), dtype=p.dtype, generator=generator)
            logits = self.decode_logits(z)
            if self.likelihood == "bernoulli":
                probs = torch.sigmoid(logits)
                return probs if mean else torch.bernoulli(probs, generator=generator)
            if mean:
                return logits
            std = torch.exp(0.5 * self.x_log_var).to(logits.dtype)
            return logits + std * torch.randn(logits.shape, dtype=logits.dtype,
                                              generator=generator)


class VAE(VariationalModel):
    """Dense variational autoencoder (Kingma & Welling 2014, appendix C).

    Encoder: an MLP ``h = f(x)`` with hidden sizes ``sizes[1:-1]``, then two linear heads
    ``μ = W_μ h + b_μ`` and ``log σ² = W_σ h + b_σ`` (k each). Decoder: the mirrored MLP from
    z to the logits (Bernoulli) or mean (Gaussian) of ``p(x|z)``. With ``sizes=[d, k]`` both
    maps are linear: with a Gaussian decoder this is the linear-Gaussian model whose marginal
    ``p(x) = N(b, W Wᵀ + diag σ_x²)`` is known in closed form (probabilistic PCA).

    Parameters
    ----------
    sizes : sequence of int
        ``[d, h_1, ..., h_L, k]``, e.g. ``[784, 200, 200, 50]`` (Burda et al. 2016, section 5).
    activation : str
        Hidden activation (:data:`aekit.layers.ACTIVATIONS`), ``"tanh"`` as in the IWAE paper.
    likelihood : {"bernoulli", "gaussian"}
        Decoder distribution; sets ``output`` to ``"sigmoid"`` / ``"linear"``.

    Shapes: x (n, d) -> μ, log σ², z (n, k) -> logits (n, d).

    References
    ----------
    Kingma & Welling, "Auto-encoding variational Bayes", ICLR 2014, sections 2.3-2.4 and
    appendix C; Burda, Grosse & Salakhutdinov, "Importance weighted autoencoders", ICLR 2016.

    Examples
    --------
    >>> m = VAE([784, 200, 200, 50])
    >>> m(torch.zeros(3, 784)).preactivations[0].shape
    torch.Size([3, 50])
    """

    name = "vae"

    def __init__(self, sizes: Sequence[int], activation: str = "tanh",
                 likelihood: str = "bernoulli"):
        super().__init__()
        sizes = check_sizes(sizes)
        make_activation(activation)
        self.sizes, self.activation = sizes, activation
        self.n_features, self.n_components = sizes[0], sizes[-1]
        self._init_likelihood(likelihood, sizes[0])
        hidden = sizes[1:-1]
        chain = [sizes[0], *hidden]
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(chain[:-1], chain[1:]))
        self.enc_act = nn.ModuleList(make_activation(activation) for _ in hidden)
        self.to_mu = nn.Linear(chain[-1], sizes[-1])
        self.to_log_var = nn.Linear(chain[-1], sizes[-1])
        rev = sizes[::-1]
        self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:]))
        self.dec_act = nn.ModuleList(make_activation(activation) for _ in hidden)
        for lin in self.enc:
            init_linear(lin, activation)
        for i, lin in enumerate(self.dec):
            init_linear(lin, activation if i < len(hidden) else "linear")
        init_linear(self.to_mu, "linear")
        # start with small posterior variances' spread: log σ² = 0 ± small
        nn.init.zeros_(self.to_log_var.bias)
        nn.init.normal_(self.to_log_var.weight, std=1e-3)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for lin, act in zip(self.enc, self.enc_act):
            h = act(lin(h))
        return self.to_mu(h), self.to_log_var(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        last = len(self.dec) - 1
        for i, lin in enumerate(self.dec):
            z = lin(z)
            if i < last:
                z = self.dec_act[i](z)
        return z

    def encoder_layers(self) -> list[nn.Linear]:
        return [*self.enc, self.to_mu]

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``VAE([d, *hidden, k], activation, likelihood)``: ``output="sigmoid"`` gives the
        Bernoulli decoder, ``"linear"`` the Gaussian one (see :meth:`Autoencoder.from_spec`)."""
        kw = cls._pick(options, "activation")
        if "output" in options:
            kw["likelihood"] = "bernoulli" if options["output"] == "sigmoid" else "gaussian"
        return cls([n_features, *hidden, code_size], **kw)

    def config(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "activation": self.activation,
                "likelihood": self.likelihood}


class ConvVAE(VariationalModel):
    """Convolutional VAE: the strided-convolution encoder and transposed-convolution decoder of
    :class:`~aekit.models.ConvAE` (flat code), with two linear heads μ and log σ² on the
    flattened feature maps.

    Parameters
    ----------
    image_shape : sequence of int
        ``(C, H, W)`` or ``(H, W)``.
    channels : sequence of int
        Channels of the stride-2 encoder blocks.
    code_size : int
        k, the latent dimension.
    kernel_size : int
    activation : str
    likelihood : {"bernoulli", "gaussian"}

    Shapes: x (n, C·H·W) or (n, C, H, W) -> μ, log σ² (n, k) -> logits (n, C·H·W) (flat).

    References
    ----------
    Kingma & Welling, ICLR 2014 (the model); Masci et al., ICANN 2011 (convolutional AEs).
    """

    name = "conv_vae"

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = (32, 64),
                 code_size: int = 16, kernel_size: int = 3, activation: str = "relu",
                 likelihood: str = "bernoulli"):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.net = ConvAE(image_shape, channels=channels, code_size=code_size,
                          kernel_size=kernel_size, activation=activation,
                          output="sigmoid" if likelihood == "bernoulli" else "linear")
        self.image_shape, self.channels = self.net.image_shape, self.net.channels
        self.code_size, self.kernel_size = self.net.code_size, self.net.kernel_size
        self.activation = activation
        self.n_features, self.n_components = self.net.n_features, self.code_size
        self._init_likelihood(likelihood, self.n_features)
        self.to_log_var = nn.Linear(self.net.to_code.in_features, self.code_size)
        nn.init.zeros_(self.to_log_var.bias)
        nn.init.normal_(self.to_log_var.weight, std=1e-3)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net._images(x)
        for conv, bn, act in zip(self.net.enc, self.net.enc_bn, self.net.enc_act):
            h = act(bn(conv(h)))
        h = h.flatten(1)  # (n, c, h, w) -> (n, c*h*w)
        return self.net.to_code(h), self.to_log_var(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        out = self.net.decode_logits(z.reshape(-1, z.shape[-1]))  # (..., k) -> (m, d)
        return out.reshape(*lead, out.shape[-1])

    @classmethod
    def from_spec(cls, *, n_features, code_size, hidden=(), image_shape=None, **options):
        """``ConvVAE(image_shape, channels=hidden, code_size=k, ...)``; needs image data."""
        if image_shape is None:
            raise ValueError("model.name='conv_vae' needs image data (digits, mnist, or a .npy "
                             "of shape (n, H, W)); this dataset has flat features")
        kw = cls._pick(options, "activation")
        if "output" in options:
            kw["likelihood"] = "bernoulli" if options["output"] == "sigmoid" else "gaussian"
        return cls(list(image_shape), channels=list(hidden) or (32, 64), code_size=code_size,
                   **kw)

    def config(self) -> dict[str, Any]:
        return {"image_shape": list(self.image_shape), "channels": list(self.channels),
                "code_size": self.code_size, "kernel_size": self.kernel_size,
                "activation": self.activation, "likelihood": self.likelihood}
