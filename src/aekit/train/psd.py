"""Training Predictive Sparse Decomposition through :func:`aekit.fit`.

Each step: the term :class:`~aekit.objectives.PSDPrediction` infers ``z*`` by FISTA and gives
the encoder's loss (an Adam step on ``(W, b, g)``); the callback :class:`DictionaryStep` then
takes a projected gradient step on the dictionary ``D`` with the same batch and codes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..models.psd import PSD
from ..objectives import Objective, PSDPrediction
from ..sparse.common import check_problem, lipschitz_constant
from ..sparse.dictionary import init_dictionary
from ..sparse.prox import project_unit_norm
from ..validation import check_float, check_int
from .callbacks import Callback
from .fit import fit

__all__ = ["DictionaryStep", "PSDHistory", "fit_psd"]


class PSDHistory(NamedTuple):
    """Per-epoch means: ``energy`` (PSD energy at the inferred codes), ``prediction``
    (``(β/2)‖z* − F(x)‖²``, β the prediction weight), ``solver_iters`` (mean FISTA
    iterations per batch)."""

    energy: list[float]
    prediction: list[float]
    solver_iters: list[float]


class DictionaryStep(Callback):
    """After every step, ``D ← Π(D + η (x − Dz*)ᵀ z* / (m·L_z))`` on the term's last batch.

    ``L_z`` is the largest eigenvalue of ``z*ᵀz*/m`` (so η is a fraction of the batch's 1/L
    step) and Π the projection on unit-norm columns; the term's Lipschitz constant is then
    refreshed for the next inference.

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun 2008, §2.1.
    """

    def __init__(self, term: PSDPrediction, lr: float):
        self.term, self.lr = term, check_float("dict_learning_rate", lr, 0)

    @torch.no_grad()
    def on_batch_end(self, loop):
        x, z = self.term.last
        D = loop.model.D
        m = x.shape[0]
        Lz = float(torch.linalg.eigvalsh((z.T @ z / m).double())[-1])
        if Lz > 1e-12:
            D.add_((x - z @ D.T).T @ z, alpha=self.lr / (m * Lz))
            D.copy_(project_unit_norm(D))
            self.term.L = lipschitz_constant(D)


def fit_psd(X: torch.Tensor, n_components: int, *, alpha: float = 0.5,
            prediction_weight: float = 1.0, encoder: str = "tanh", max_iter: int = 10,
            batch_size: int = 128, dict_learning_rate: float = 0.1,
            learning_rate: float = 3e-3, solver_max_iter: int = 100,
            solver_tol: float = 1e-3, dict_init: torch.Tensor | None = None,
            model: PSD | None = None, generator: torch.Generator | None = None,
            progress: bool | None = None, **renamed) -> tuple[PSD, PSDHistory]:
    """Train a :class:`~aekit.models.psd.PSD` model on X (n, d) with :func:`aekit.fit`.

    Energy ``E(z) = ½‖x − Dz‖² + α‖z‖₁ + (β/2)‖z − F(x)‖²`` with ``α`` the ℓ1 weight (as
    everywhere in :mod:`aekit.sparse` and scikit-learn's ``DictionaryLearning``) and
    ``β = prediction_weight``. Each mini-batch: ``z* = argmin_z E`` by FISTA from
    ``z = F(x)``; one Adam step on ``(W, b, g)`` for ``(β/2)‖z* − F(x)‖²``
    (:class:`~aekit.objectives.PSDPrediction`, whose ``lam`` is α and ``alpha`` is β);
    ``D ← Π(D + η (x − Dz*)ᵀ z* / (m·L_z))`` (:class:`DictionaryStep`).

    Parameters
    ----------
    X : Tensor (n, d)
    n_components : int
    alpha : float, default=0.5
        ℓ1 weight of the code (called ``lam`` before this release).
    prediction_weight : float, default=1.0
        β > 0, weight of the prediction term (called ``alpha`` before this release).
    encoder : {"tanh", "sigmoid", "shrink"}, default="tanh"
        ``"shrink"`` starts at the thresholding code ``S_α(Dᵀx)`` (b = α).
    max_iter : int, default=10
        Epochs (old name ``epochs``).
    batch_size : int, default=128
    dict_learning_rate : float, default=0.1
        Dictionary step η as a fraction of the batch's 1/L step (old name ``lr_dict``).
    learning_rate : float, default=3e-3
        Adam learning rate of the encoder (old name ``lr_encoder``).
    solver_max_iter, solver_tol : FISTA settings for code inference.
    dict_init : Tensor (d, k), optional
    model : PSD, optional
        Continue training this model.
    generator : torch.Generator, optional
        Draws the initial dictionary and every epoch's shuffling (default: seeded from
        torch's global RNG).
    progress : bool, optional
    **renamed
        Old names, accepted with a FutureWarning until the next release: ``lam`` (now
        ``alpha``), ``epochs``, ``lr_dict``, ``lr_encoder``. In a call that still passes
        ``lam``, ``alpha`` keeps its old meaning (the prediction weight) and is read as
        ``prediction_weight``, with a warning.

    Returns
    -------
    model : PSD; history : PSDHistory

    References
    ----------
    Kavukcuoglu, Ranzato & LeCun 2008, §2.1 (learning algorithm).
    """
    if renamed:
        import warnings

        from ..schema import warn_renamed

        table = {"lam": "alpha", "epochs": "max_iter", "lr_dict": "dict_learning_rate",
                 "lr_encoder": "learning_rate"}
        unknown = sorted(set(renamed) - set(table))
        if unknown:
            raise TypeError(f"fit_psd() got an unexpected keyword argument {unknown[0]!r}")
        if "lam" in renamed:
            # an old-style call: its ``alpha`` was the prediction weight
            if alpha != 0.5:
                warnings.warn("fit_psd: a call with the old 'lam' passes 'alpha' in its old "
                              "meaning, the prediction weight; write prediction_weight="
                              f"{alpha!r} and alpha={renamed['lam']!r} (the ℓ1 weight)",
                              FutureWarning, stacklevel=2)
                prediction_weight = alpha
        for old, v in renamed.items():
            warn_renamed(old, table[old], "fit_psd", stacklevel=3)
            if old == "lam":
                alpha = v
            elif old == "epochs":
                max_iter = v
            elif old == "lr_dict":
                dict_learning_rate = v
            else:
                learning_rate = v
    lam, epochs, lr_dict, lr_encoder = alpha, max_iter, dict_learning_rate, learning_rate
    check_problem(X, torch.ones(X.shape[1] if X.ndim == 2 else 1, 1, dtype=X.dtype), lam)
    if X.shape[0] == 0:
        raise ValueError(f"X must have at least one sample, got shape {tuple(X.shape)}")
    check_float("prediction_weight", prediction_weight, 0, lo_open=True)
    lr_encoder = check_float("learning_rate", lr_encoder, 0)
    epochs = check_int("max_iter", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if model is None:
        model = PSD(X.shape[1], n_components, encoder=encoder, dtype=X.dtype)
        with torch.no_grad():
            D = init_dictionary(X, n_components, generator=generator) if dict_init is None \
                else project_unit_norm(dict_init.detach().to(X.dtype).clone())
            model.D.copy_(D)
            model.W.copy_(D.T)  # start the encoder at the transposed dictionary
            if encoder == "shrink":
                model.b.fill_(lam)
    term = PSDPrediction(lam, prediction_weight, solver_max_iter, solver_tol)
    if generator is None:
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
    # lr_encoder = 0 keeps the encoder as initialised: no parameters for the optimiser.
    history = fit(model, Objective(None, [term]), X, max_iter=epochs, batch_size=batch_size,
                  optimizer="adam", learning_rate=lr_encoder or 1.0, generator=generator,
                  params=None if lr_encoder else [],
                  callbacks=[DictionaryStep(term, lr_dict)], progress=progress, desc="fit_psd")
    return model, PSDHistory(history["psd_energy"], history["train_psd"],
                             history["psd_solver_iters"])
