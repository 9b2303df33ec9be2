"""Training a top-k sparse autoencoder through :func:`aekit.fit`.

:func:`train_sae` builds the objective ``mse + AuxK``, initialises ``b_pre`` from a sample of
the data and calls the one loop with :class:`UnitNormDecoder`, the callback that puts every
decoder atom back on the unit sphere after each optimiser step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..models.sae import TopKSAE
from ..objectives import Objective
from ..objectives.auxk import AuxK
from ..train.callbacks import Callback, History
from ..train.fit import fit
from ..validation import check_choice, check_float, check_int
from .data import as_activations

__all__ = ["ResampleDeadLatents", "UnitNormDecoder", "default_learning_rate", "sae_objective",
           "train_sae"]


class UnitNormDecoder(Callback):
    """After every optimiser step, ``W_dec[l] ← W_dec[l] / ‖W_dec[l]‖`` for every atom l.

    Together with the model's gradient projection this is the decoder constraint of Gao et
    al. (2024, appendix A.4); it also normalises once before the first step. Stateless.

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, appendix A.4.
    """

    key = "unit_norm_decoder"

    def on_fit_start(self, loop) -> None:
        loop.model.normalize_decoder_()

    def on_batch_end(self, loop) -> None:
        loop.model.normalize_decoder_()


class ResampleDeadLatents(Callback):
    """Re-initialise the dead latents at high-loss inputs at given steps (opt-in).

    At each step t in ``steps`` (counted after the optimiser step), with D the latents idle
    for ``window`` training tokens (:meth:`~aekit.models.TopKSAE.dead_mask`): draw
    ``n_candidates`` rows x_i of the training data, score each by its loss
    ``ℓ_i = ‖x_i − x̂_i‖²`` under the current model, draw D rows with probability
    ``p_i ∝ ℓ_i²`` (with replacement only when D > n_candidates), and for each dead latent l
    and its row i set

        W_dec[l] = v,   W_enc[l] = c · mean_{alive j} ‖W_enc[j]‖ · v,   b_enc[l] = 0,
        v = (x_i − b_pre) / ‖x_i − b_pre‖,

    reset Adam's moments (``exp_avg``, ``exp_avg_sq``) of those rows to zero and their
    ``tokens_since_fired`` to 0. Shapes: data (n, d); the model's rows (L, d).

    Parameters
    ----------
    steps : sequence of int
        Optimiser steps after which to resample (each >= 1).
    window : int
        Dead = idle for this many training tokens.
    n_candidates : int
        Rows scored per resampling.
    encoder_scale : float
        c > 0 (Anthropic 2023: 0.2).
    random_state : int
        Seed of the rows drawn (the draws are part of the callback's state).

    Attributes
    ----------
    log : list of [step, n_resampled]

    References
    ----------
    Bricken et al. (Anthropic), "Towards Monosemanticity: Decomposing Language Models With
    Dictionary Learning", 2023, section "Neuron Resampling" (loss² sampling, encoder norm
    0.2 × the alive mean, Adam state reset).
    """

    key = "resample_dead_latents"

    def __init__(self, steps: Sequence[int], window: int, *, n_candidates: int = 16384,
                 encoder_scale: float = 0.2, random_state: int = 0):
        steps = list(steps) if not isinstance(steps, int | str) else [steps]
        self.steps = sorted({check_int("resample_steps", s, 1) for s in steps})
        if not self.steps:
            raise ValueError("resample_steps must list at least one optimiser step (>= 1)")
        self.window = check_int("resample_window", window, 1)
        self.n_candidates = check_int("n_candidates", n_candidates, 1)
        self.encoder_scale = check_float("resample_encoder_scale", encoder_scale, 0,
                                         lo_open=True)
        self.generator = torch.Generator().manual_seed(int(random_state))
        self.log: list[list[int]] = []

    def on_fit_start(self, loop) -> None:
        if not isinstance(loop.model, TopKSAE):
            raise ValueError(f"ResampleDeadLatents needs a TopKSAE model, got "
                             f"{type(loop.model).__name__}")

    @torch.no_grad()
    def on_batch_end(self, loop) -> None:
        if loop.step in self.steps:
            self.log.append([int(loop.step), self.resample(loop.model, loop.data,
                                                           loop.optimizer)])

    @torch.no_grad()
    def resample(self, model: TopKSAE, data, optimizer=None) -> int:
        """Resample the dead latents of ``model`` from rows of ``data`` (a DataSource);
        returns how many were resampled."""
        dead = model.dead_mask(self.window).nonzero().squeeze(1)
        D = len(dead)
        if D == 0:
            return 0
        idx = torch.randint(0, len(data), (self.n_candidates,), generator=self.generator)
        x = data.take(idx).x.to(model.W_dec.dtype)
        loss = (x - model.b_pre - model._training_selection_recon(x)).pow(2).sum(1)
        p = loss.to(torch.float64).pow(2)
        if not float(p.sum()) > 0:
            p = torch.ones_like(p)
        pick = torch.multinomial(p, D, replacement=D > len(p), generator=self.generator)
        v = x[pick] - model.b_pre
        norm = v.norm(dim=1, keepdim=True)
        v = torch.where(norm > 1e-12, v / norm.clamp_min(1e-12), model.W_dec[dead])
        alive = ~model.dead_mask(self.window)
        enc_norm = float(model.W_enc[alive].norm(dim=1).mean()) if bool(alive.any()) else 1.0
        model.W_dec[dead] = v
        model.W_enc[dead] = (self.encoder_scale * enc_norm) * v
        model.b_enc[dead] = 0.0
        model.tokens_since_fired[dead] = 0
        if optimizer is not None:
            for prm in (model.W_dec, model.W_enc, model.b_enc):
                st = optimizer.state.get(prm, {})
                for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    if name in st:
                        st[name][dead] = 0
        return D

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "log": [list(r) for r in self.log]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.log = [list(r) for r in state["log"]]


def default_learning_rate(n_latents: int) -> float:
    """Gao et al.'s Adam learning rate for L latents: ``2·10⁻⁴ / sqrt(L / 2¹⁴)``.

    References
    ----------
    Gao et al. 2024, section 3.1 / appendix A (lr scaling ∝ 1/sqrt(n_latents)).
    """
    return 2e-4 / math.sqrt(int(n_latents) / 2 ** 14)


def sae_objective(*, auxk_alpha: float = 1 / 32, k_aux: int = 512,
                  dead_tokens: int = 10_000_000, auxk_normalize: bool = True) -> Objective:
    """``mse + AuxK(α, k_aux, dead_tokens, normalize)`` (AuxK is left out when α = 0).

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, appendix A.2.
    """
    alpha = check_float("auxk_alpha", auxk_alpha, 0)
    terms = [AuxK(alpha, k_aux, dead_tokens, auxk_normalize)] if alpha > 0 else []
    return Objective("mse", terms)


def train_sae(model: TopKSAE, X: Any, *, val: Any = None, auxk_alpha: float = 1 / 32,
              k_aux: int = 512, dead_tokens: int = 10_000_000, auxk_normalize: bool = True,
              max_iter: int = 1,
              batch_size: int = 1024, learning_rate: float | None = None,
              b_pre_init: str = "geometric_median", init_rows: int = 4096,
              atom_init: str = "random", encoder_scale: str = "none",
              resample_steps: Sequence[int] = (), resample_encoder_scale: float = 0.2,
              random_state: int = 0, callbacks: Sequence[Callback] = (),
              **fit_kwargs: Any) -> History:
    """Train ``model`` on activations ``X`` with :func:`aekit.fit`; returns the history.

    Minimises ``(1/n) Σ_i ‖x_i − x̂_i‖² + α L_aux`` with Adam, keeping every decoder atom at
    unit norm (:class:`UnitNormDecoder`). ``b_pre`` is first set from ``init_rows`` rows drawn
    with ``random_state`` (its geometric median by default).

    Parameters
    ----------
    model : TopKSAE
    X : array, ``.npy`` path, NpyReader or ActivationSource, shape (n, d)
        A file is streamed batch by batch (same weights as the matrix in memory).
    val : same kinds, optional
        Validation activations, scored every epoch (``val_loss``, ``val_recon``).
    auxk_alpha, k_aux, dead_tokens, auxk_normalize
        The :class:`~aekit.objectives.auxk.AuxK` term (α = 0 drops it).
    max_iter : int
        Epochs (passes over X).
    batch_size : int
        Rows per step.
    learning_rate : float, optional
        Adam's rate; default :func:`default_learning_rate` of the dictionary size.
    b_pre_init : {"geometric_median", "mean", "zeros"}
    atom_init : {"random", "data"}
        "random": the model's own unit-norm Gaussian atoms (encoder = decoderᵀ); "data":
        :meth:`~aekit.models.TopKSAE.init_atoms_from_data_`, atoms at ``max(init_rows, L)``
        centred data rows drawn with ``random_state``.
    encoder_scale : {"none", "unit_inputs", "least_squares"}
        Rescale ``W_enc`` once after the atoms are set
        (:meth:`~aekit.models.TopKSAE.rescale_encoder_`): "unit_inputs" is Gao et al.'s
        released rule (random unit inputs reconstruct at norm ~1), "least_squares" the scale
        minimising the squared error on the init sample.
    resample_steps : sequence of int
        Optimiser steps after which dead latents (idle for ``dead_tokens``) are re-initialised
        at high-loss rows (:class:`ResampleDeadLatents`, Anthropic 2023); empty: never.
    resample_encoder_scale : float
        Its encoder-norm factor c (Anthropic: 0.2).
    **fit_kwargs
        Passed to :func:`aekit.fit` (``checkpoint_dir``, ``history_path``, ``progress``,
        ``schedule``, ...).

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, section 2 and appendix A.
    Bricken et al., "Towards Monosemanticity", 2023 (resampling).
    """
    if not isinstance(model, TopKSAE):
        raise ValueError(f"model must be a TopKSAE, got {type(model).__name__}")
    src = as_activations(X, n_features=model.n_features)
    vsrc = None if val is None else as_activations(val, n_features=model.n_features,
                                                   name="val")
    check_int("init_rows", init_rows, 1)
    check_choice("atom_init", atom_init, ("random", "data"))
    check_choice("encoder_scale", encoder_scale, ("none", "unit_inputs", "least_squares"))
    resampler = (ResampleDeadLatents(resample_steps, dead_tokens,
                                     encoder_scale=resample_encoder_scale,
                                     random_state=random_state)
                 if len(resample_steps) else None)
    objective = sae_objective(auxk_alpha=auxk_alpha, k_aux=k_aux, dead_tokens=dead_tokens,
                              auxk_normalize=auxk_normalize)
    lr = default_learning_rate(model.n_latents) if learning_rate is None else learning_rate
    rng = np.random.default_rng(int(random_state))
    m = min(int(init_rows), len(src))
    rows = np.sort(rng.choice(len(src), size=m, replace=False))
    sample = None
    if b_pre_init != "zeros" or encoder_scale == "least_squares":
        sample = src.take(torch.from_numpy(rows)).x
    if b_pre_init != "zeros":
        model.init_from_data(sample, method=b_pre_init)
    else:
        model.init_from_data(None, method="zeros")
    g = torch.Generator().manual_seed(int(random_state))
    if atom_init == "data":
        ma = min(max(int(init_rows), model.n_latents), len(src))
        arows = np.sort(rng.choice(len(src), size=ma, replace=False))
        model.init_atoms_from_data_(src.take(torch.from_numpy(arows)).x, generator=g)
    if encoder_scale == "unit_inputs":
        model.rescale_encoder_(generator=g)
    elif encoder_scale == "least_squares":
        model.rescale_encoder_(sample)
    dense = model.dense_code
    model.dense_code = False  # neither term reads the code: no dense (n, L) code per step
    try:
        return fit(model, objective, src, val=vsrc, max_iter=max_iter, batch_size=batch_size,
                   learning_rate=lr, random_state=random_state,
                   callbacks=[UnitNormDecoder(), *([resampler] if resampler else []),
                              *callbacks], **fit_kwargs)
    finally:
        model.dense_code = dense


