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
from ..validation import check_float, check_int
from .data import as_activations

__all__ = ["UnitNormDecoder", "default_learning_rate", "sae_objective", "train_sae"]


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
    **fit_kwargs
        Passed to :func:`aekit.fit` (``checkpoint_dir``, ``history_path``, ``progress``,
        ``schedule``, ...).

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024, section 2 and appendix A.
    """
    if not isinstance(model, TopKSAE):
        raise ValueError(f"model must be a TopKSAE, got {type(model).__name__}")
    src = as_activations(X, n_features=model.n_features)
    vsrc = None if val is None else as_activations(val, n_features=model.n_features,
                                                   name="val")
    check_int("init_rows", init_rows, 1)
    objective = sae_objective(auxk_alpha=auxk_alpha, k_aux=k_aux, dead_tokens=dead_tokens,
                              auxk_normalize=auxk_normalize)
    lr = default_learning_rate(model.n_latents) if learning_rate is None else learning_rate
    rng = np.random.default_rng(int(random_state))
    m = min(int(init_rows), len(src))
    rows = np.sort(rng.choice(len(src), size=m, replace=False))
    if b_pre_init != "zeros":
        sample = src.take(torch.from_numpy(rows)).x
        model.init_from_data(sample, method=b_pre_init)
    else:
        model.init_from_data(None, method="zeros")
    dense = model.dense_code
    model.dense_code = False  # neither term reads the code: no dense (n, L) code per step
    try:
        return fit(model, objective, src, val=vsrc, max_iter=max_iter, batch_size=batch_size,
                   learning_rate=lr, random_state=random_state,
                   callbacks=[UnitNormDecoder(), *callbacks], **fit_kwargs)
    finally:
        model.dense_code = dense


