"""The AuxK term of top-k sparse autoencoders: dead latents model the main model's residual.

Gao et al. (2024, section 2.4 and appendix A.2): with ``e = x − x̂`` the reconstruction error of
the main model and the k_aux largest pre-activations of the *dead* latents (those that have
not fired for ``dead_tokens`` training tokens) decoded without bias into ``ê``, the term is
their normalised MSE

    L_aux = α · Σ_i ‖e_i − ê_i‖² / Σ_i ‖e_i − ē‖²,

added to the main loss ``Σ_i ‖x_i − x̂_i‖² / Σ_i ‖x_i − x̄‖²`` (both normalised as in the
authors' released training code). aekit's main loss is the plain ``(1/n) Σ_i ‖x_i − x̂_i‖²``, so
the term is returned multiplied by the batch's ``(1/n) Σ_i ‖x_i − x̄‖²`` (a constant): the
objective is then Gao et al.'s, times that constant. ``e`` is detached, so the term moves only
the dead latents' encoder rows, biases and atoms (and ``b_pre``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..data.batch import Batch
from ..models.base import AEOutput
from ..models.sae import SparseSelection, TopKSAE
from ..validation import Param
from .core import Term

__all__ = ["AuxK"]


class AuxK(Term):
    """Auxiliary top-k loss reviving dead latents of a :class:`~aekit.models.TopKSAE`.

    ``L_aux = α · s_x · Σ_i ‖e_i − ê_i‖² / Σ_i ‖e_i − ē‖²`` over a batch of n rows, with
    ``e = x − x̂`` (detached), ``ē`` its mean row, ``s_x = (1/n) Σ_i ‖x_i − x̄‖²`` (detached)
    and ``ê_i = Σ_{l ∈ S_i} ReLU(a_il) W_dec[l]``, where ``S_i`` holds the ``min(k_aux,
    #dead)`` largest pre-activations ``a_il`` among the dead latents (``tokens_since_fired >=
    dead_tokens``, counted by the model in training). ``normalize=False`` gives the
    unnormalised ``α (1/n) Σ_i ‖e_i − ê_i‖²``. Zero when no latent is dead. Shapes: x, e, ê
    (n, d); pre-activations (n, L); returns a scalar.

    Parameters
    ----------
    alpha : float
        α >= 0 (Gao et al. use 1/32).
    k_aux : int
        Dead latents used per sample (Gao et al.: 512, a power of two near d/2).
    dead_tokens : int
        A latent is dead after this many training tokens without firing (Gao et al.: 10⁷;
        scale it to the length of the run).
    normalize : bool
        Divide by the residual's variance and multiply by the data's (Gao et al.'s released
        code normalises both MSEs this way); False: the plain MSE of the residual.

    Attributes
    ----------
    dead_fraction : float
        Fraction of dead latents at the last training step (-1 before the first), logged
        per epoch as ``auxk_dead_fraction``.

    Notes
    -----
    Under Adam the weight α barely matters for the dead latents themselves (their
    parameters get gradient from this term only, and Adam's step is scale-free); it sets the
    term's pull on the shared ``b_pre``. The term shares the encoder with the main top-k: when
    the dead latents' atoms are not aligned with the residual (cosine of ê with e ≈ 0.5 in
    ``benchmarks/sae_topk.py``'s runs), the least-squares fit first *shrinks* their values
    (``⟨ê, e⟩ / ‖ê‖² ≈ 0.8 < 1``), which lowers the same pre-activations the main top-k
    compares, so latents that were merely rare (just below the threshold) are pushed
    further below it. With many rare latents (16×, k = 16) this makes more latents dead than
    no AuxK at all; see docs/sae.md ("Dead latents").

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, section 2.4 and
    appendix A.2 (AuxK; k_aux = 512, α = 1/32, dead after 10M tokens), and the authors'
    released code (openai/sparse_autoencoder, ``train.py``: normalised MSE of the residual).
    """

    name = "auxk"
    params = (Param("alpha", float, 1 / 32, "weight α of the auxiliary loss", lo=0),
              Param("k_aux", int, 512, "dead latents decoded per sample", lo=1),
              Param("dead_tokens", int, 10_000_000,
                    "training tokens without firing after which a latent is dead", lo=1),
              Param("normalize", bool, True,
                    "divide by the residual's variance (Gao et al.'s normalised MSE)"))

    def __init__(self, alpha: float = 1 / 32, k_aux: int = 512, dead_tokens: int = 10_000_000,
                 normalize: bool = True):
        super().__init__()
        self.alpha = self.check("alpha", alpha)
        self.k_aux = self.check("k_aux", k_aux)
        self.dead_tokens = self.check("dead_tokens", dead_tokens)
        self.normalize = self.check("normalize", normalize)
        self.dead_fraction = -1.0

    def check_model(self, model) -> None:
        if not isinstance(model, TopKSAE):
            raise ValueError(f"term 'auxk' needs a TopKSAE model (it reads its dead latents), "
                             f"got {type(model).__name__}")

    def forward(self, model: TopKSAE, batch: Batch, out: AEOutput) -> torch.Tensor:
        dead = model.dead_mask(self.dead_tokens)  # (L,)
        n_dead = int(dead.sum())
        if self.training:
            self.dead_fraction = n_dead / dead.numel()
        x = batch.input
        if n_dead == 0 or self.alpha == 0:
            return x.new_zeros(())
        a = out.preactivations[-1]  # (n, L), detached
        ka = min(self.k_aux, n_dead)
        masked = a.masked_fill(~dead, float("-inf"))
        idx = masked.topk(ka, dim=1, sorted=False).indices  # (n, ka), all dead latents
        sel = SparseSelection.from_topk(idx)
        vals = F.relu(model.select(x, sel, a))
        e_hat = model.decode_sparse(sel, vals, bias=False)  # (n, d)
        e = (batch.target - out.reconstruction).detach()
        sse = (e - e_hat).pow(2).sum(1).mean()
        if not self.normalize:
            return self.alpha * sse
        with torch.no_grad():  # Gao et al.'s normalised MSE, times the batch's variance
            t = batch.target
            var_e = (e - e.mean(0)).pow(2).sum(1).mean().clamp_min(1e-30)
            var_x = (t - t.mean(0)).pow(2).sum(1).mean()
        return self.alpha * (var_x / var_e) * sse

    def metrics(self) -> dict[str, float]:
        return {"dead_fraction": self.dead_fraction} if self.dead_fraction >= 0 else {}
