"""scikit-learn façade: :class:`Autoencoder`, a ``TransformerMixin`` over a PCA-started
``ResidualAE`` (or a randomly initialised ``DenseAE``) + ``fit``.

Thin and config-free: hyperparameters are ``__init__`` keyword arguments stored as given,
validated in ``fit``; learned attributes end in ``_``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .corruption import make_corruption
from .data.arrays import split_indices
from .models import DenseAE, ResidualAE
from .objectives import make_objective
from .train import evaluate as _evaluate
from .train import fit as _fit
from .validation import check_choice, check_float, check_int

__all__ = ["DEFAULT_WEIGHT_DECAY_GRID", "Autoencoder"]

#: Weight decays tried by ``weight_decay="auto"``, in per-feature units (see
#: :class:`Autoencoder`): from negligible to strong enough to keep the residual branch at 0.
DEFAULT_WEIGHT_DECAY_GRID = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)

#: Fewest validation and training rows early stopping accepts.
MIN_VAL_SAMPLES = 2
MIN_TRAIN_SAMPLES = 2

class Autoencoder(TransformerMixin, BaseEstimator):
    """Dense autoencoder with the scikit-learn transformer API, started at PCA by default.

    Learns ``f: R^d -> R^k`` and ``g: R^k -> R^d`` minimising the mean per-sample loss
    ``(1/n) Σ_i ℓ(x_i, g(f(x_i))) + η S Σ_l ‖W_l‖²_F`` (``S = Σ_j Var(x_j)``, see
    ``weight_decay``); ``transform`` returns codes ``f(X)`` (n, k), ``inverse_transform``
    returns ``g(Z)`` (n, d), ``score_samples`` returns ``−Σ_j (x_ij − x̂_ij)²`` per sample
    (higher is more typical; an anomaly score when negated).

    **Why the defaults are safe.** With ``init="pca"`` the model is
    :class:`aekit.models.ResidualAE`: a linear path ``h = (x − μ)V``, ``x̂ = μ + hVᵀ`` set to
    PCA-k of the training rows, plus nonlinear residual branches whose last layers start at
    zero, so the *untrained* model is exactly PCA-k. Training then monitors the validation
    reconstruction error (``monitor="val_recon"``, penalties excluded: what a user compares
    with PCA), scores the starting point too, and restores the best epoch, so on the
    validation rows the fitted model is never worse than PCA of the same code size; training
    only moves away from PCA as far as held-out data rewards it. Squared error is the loss
    (the metric PCA minimises) and the output is linear. ``max_iter="auto"`` bounds the
    number of optimiser steps rather than epochs, so fit time on 60,000 rows stays in
    minutes, and early stopping (``n_iter_no_change``) usually ends it sooner. Weight decay
    is measured per unit of the data's total variance, so one value means the same on every
    dataset, and ``weight_decay="auto"`` picks it on the validation split.

    Parameters
    ----------
    n_components : int, default=8
        Code size k; must not exceed the number of features.
    hidden_layer_sizes : tuple of int, default=(256,)
        Encoder hidden sizes (the decoder mirrors them); with ``init="pca"`` the hidden sizes
        of the nonlinear residual branches. ``()`` gives a linear AE (PCA-started) or a
        single-layer AE (random).
    activation : str, default="elu"
        Hidden activation (see :data:`aekit.layers.ACTIVATIONS`).
    code_activation : str, default="linear"
        Code activation (``"sigmoid"``, ``"relu"``, ``"topk:K"``, ...). A nonlinear code
        cannot start at PCA: the model then starts at random (``init_ == "random"``).
    loss : {"auto", "mse", "bce", "gaussian_nll"}, default="auto"
        ``"auto"`` is squared error for a PCA start; for a random start it picks
        cross-entropy (with a sigmoid output) when all of X lies in [0, 1], else squared
        error. ``"bce"`` and ``"gaussian_nll"`` imply a random start. Chosen loss in
        ``loss_``.
    init : {"pca", "random"}, default="pca"
        ``"pca"``: start at PCA-k (above); applies when the code is linear, the weights are
        untied and the loss is squared error, else the start is random. ``"random"``: a
        :class:`aekit.DenseAE` with Glorot/He initialisation (the pre-issue-24 default).
    tied : bool, default=False
        Tie decoder weights to the encoder's (implies a random start).
    weight_decay : float or "auto", default=0.0
        η of the logged weight-decay term, in units of the data's total variance
        ``S = Σ_j Var(x_j)`` (the objective's term is ``η S Σ_l ‖W_l‖²``), so the penalty is
        relative to the error of predicting the mean and one value means the same for a
        standardised 8-feature table and for 784-pixel images. With a PCA start it acts on
        the residual branches only (never on PCA's directions). ``"auto"``: fit once per
        value of ``weight_decay_grid`` with the same seed and split and keep the fit with the
        lowest validation ``monitor`` (ties go to the larger decay); the chosen value is
        ``weight_decay_`` and the curve ``validation_curve_``. Needs ``early_stopping``.
    weight_decay_grid : sequence of float or None, default=None
        Values for ``weight_decay="auto"``; None: :data:`DEFAULT_WEIGHT_DECAY_GRID`.
    optimizer : {"adam", "adamw", "sgd", "lbfgs"}, default="adam"
    learning_rate : float, default=3e-3
    batch_size : int, default=256
    max_iter : int or "auto", default="auto"
        Maximum number of epochs; ``"auto"``: ``clip(ceil(max_steps / batches per epoch),
        5, 300)`` epochs, so a large data set gets fewer epochs of more steps each. ``0``
        returns the initial model untrained (PCA-k with ``init="pca"``).
    max_steps : int, default=5000
        Optimiser-step budget behind ``max_iter="auto"``.
    schedule : str, default="cosine"
        Learning-rate schedule over ``max_iter`` epochs.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of X (or of the ``groups`` passed to :meth:`fit`),
        stop after ``n_iter_no_change`` epochs without improvement of ``monitor``, and
        restore the best weights (the start included with ``init="pca"``).
    validation_fraction : float, default=0.1
        Fraction of rows (of groups with ``groups``) held out: ``max(ceil(f n), 2)`` rows,
        so tiny data still gets a validation set; fewer than 4 samples (2 validation + 2
        training) is refused with a ValueError.
    n_iter_no_change : int, default=20
    monitor : {"val_recon", "val_loss"}, default="val_recon"
        What early stopping watches: the validation reconstruction error alone, or the whole
        objective with its penalties (``"val_loss"``), which can keep a worse-reconstructing
        epoch when a penalty is strong.
    noise : {None, "masking", "gaussian", "salt_pepper"}, default=None
        Corrupt training inputs (denoising AE); the loss is against the clean input and
        ``transform`` never corrupts.
    noise_level : float, default=0.0
        ν for masking, σ for Gaussian noise, p for salt-and-pepper.
    l1 : float, default=0.0
        λ of the L1 activity penalty ``λ Σ_j |h_j|`` (sparse AE).
    sparsity_target : float or None, default=None
        ρ of the KL sparsity penalty ``β Σ_j KL(ρ ‖ ρ̂_j)``; needs
        ``code_activation="sigmoid"``.
    sparsity_weight : float, default=1.0
        β of the KL sparsity penalty.
    contractive : float, default=0.0
        λ of the contractive penalty ``λ ‖J_f(x)‖²_F``.
    dead_unit : float, default=0.0
        λ of the dead-unit entropy term that keeps ReLU code units alive.
    random_state : int, RandomState or None
        Seeds weight initialisation, shuffling and the validation split.
    verbose : bool, default=False
        Show a progress bar (only on a terminal and not under ``CI=true``).

    Attributes
    ----------
    model_ : aekit.models.ResidualAE or aekit.DenseAE
        Trained in float32; float64 input is transformed in float64 (a float64 copy of the
        weights), so the output dtype follows the input's.
    history_ : aekit.History
    loss_ : str
    init_ : {"pca", "random"}
    weight_decay_ : float
        The weight decay used (chosen on the validation split with ``"auto"``).
    validation_curve_ : dict or None
        With ``weight_decay="auto"``: ``{"weight_decay": [...], "<monitor>": [...],
        "n_iter": [...]}``, the best validation value of each fit.
    start_score_ : float or None
        Validation ``monitor`` of the untrained model (PCA-k's with ``init="pca"``).
    best_score_ : float or None
        Validation ``monitor`` of the returned model.
    validation_indices_ : ndarray of int or None
        Rows of X held out for early stopping (sorted).
    n_features_in_ : int
    n_iter_ : int
        Epochs run (of the kept fit).

    References
    ----------
    Hinton & Salakhutdinov, Science 2006; Goodfellow, Bengio & Courville, *Deep Learning*,
    ch. 14 and sect. 7.8 (early stopping); He et al., "Deep residual learning", CVPR 2016 and
    Zhang, Dauphin & Ma, "Fixup initialization", ICLR 2019 (residual branches that start at
    zero); Baldi & Hornik, Neural Networks 1989 (a linear AE's optimum is PCA).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data / 16
    >>> Z = Autoencoder(n_components=8, max_iter=5, random_state=0).fit_transform(X)
    >>> Z.shape
    (1797, 8)
    """

    def __init__(self, n_components=8, *, hidden_layer_sizes=(256,), activation="elu",
                 code_activation="linear", loss="auto", init="pca", tied=False,
                 weight_decay=0.0, weight_decay_grid=None, optimizer="adam",
                 learning_rate=3e-3, batch_size=256, max_iter="auto", max_steps=5000,
                 schedule="cosine", early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=20, monitor="val_recon", noise=None, noise_level=0.0,
                 l1=0.0, sparsity_target=None, sparsity_weight=1.0, contractive=0.0,
                 dead_unit=0.0, random_state=None, verbose=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.init = init
        self.tied = tied
        self.weight_decay = weight_decay
        self.weight_decay_grid = weight_decay_grid
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.max_steps = max_steps
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.monitor = monitor
        self.noise = noise
        self.noise_level = noise_level
        self.l1 = l1
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        self.contractive = contractive
        self.dead_unit = dead_unit
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate_params(self, n_features: int) -> None:
        k = check_int("n_components", self.n_components, 1)
        if k > n_features:
            raise ValueError(f"n_components={k} is larger than the number of features "
                             f"({n_features}); an autoencoder code cannot exceed its input here")
        check_choice("loss", self.loss, ("auto", "mse", "bce", "gaussian_nll"))
        check_choice("init", self.init, ("pca", "random"))
        check_choice("monitor", self.monitor, ("val_recon", "val_loss"))
        if not (isinstance(self.max_iter, str) and self.max_iter == "auto"):
            check_int("max_iter", self.max_iter, 0)
        check_int("max_steps", self.max_steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("validation_fraction", self.validation_fraction, 0, 1, lo_open=True,
                    hi_open=True)
        if isinstance(self.weight_decay, str):
            check_choice("weight_decay", self.weight_decay, ("auto",))
            if not self.early_stopping:
                raise ValueError("weight_decay='auto' chooses on the validation split: it "
                                 "needs early_stopping=True")
            grid = self._grid()
            if not grid:
                raise ValueError("weight_decay_grid must hold at least one value")
            for v in grid:
                check_float("weight_decay_grid", v, 0)
        else:
            check_float("weight_decay", self.weight_decay, 0)

    def _grid(self) -> list[float]:
        g = DEFAULT_WEIGHT_DECAY_GRID if self.weight_decay_grid is None else \
            self.weight_decay_grid
        return [float(v) for v in g]

    def _resolve(self, X: np.ndarray) -> tuple[str, str]:
        """``(init, loss)`` actually used: a PCA start needs a linear code, untied weights
        and squared error."""
        pca_ok = (self.code_activation == "linear" and not self.tied
                  and self.loss in ("auto", "mse") and self.sparsity_target is None
                  and not self.contractive)
        init = "pca" if self.init == "pca" and pca_ok else "random"
        loss = self.loss
        if loss == "auto":
            if init == "pca":
                loss = "mse"
            else:
                loss = "bce" if X.min() >= 0.0 and X.max() <= 1.0 else "mse"
        return init, loss

    def _epochs(self, n_train: int) -> int:
        if isinstance(self.max_iter, str):
            n_batches = math.ceil(n_train / min(int(self.batch_size), n_train))
            return int(min(300, max(5, math.ceil(int(self.max_steps) / n_batches))))
        return int(self.max_iter)

    def _build(self, init: str, loss: str, Xtr: np.ndarray, seed: int):
        hidden = tuple(int(h) for h in (self.hidden_layer_sizes or ()))
        d, k = Xtr.shape[1], int(self.n_components)
        torch.manual_seed(seed)
        if init == "pca":
            if len(Xtr) <= k:
                raise ValueError(f"init='pca' needs more training rows than n_components={k}, "
                                 f"got {len(Xtr)} (n_samples = {len(Xtr)}); pass more samples "
                                 "or init='random'")
            m = ResidualAE(d, k, hidden, activation=self.activation)
            # PCA in float64 for accuracy, then the float32 model
            return m.double().init_pca(torch.from_numpy(Xtr.astype(np.float64))).float()
        return DenseAE([d, *hidden, k], activation=self.activation,
                       code_activation=self.code_activation,
                       output="sigmoid" if loss == "bce" else "linear", tied=self.tied)

    def fit(self, X, y=None, groups=None):
        """Train on X (n, d); ``y`` is ignored. Returns self.

        Parameters
        ----------
        X : array-like (n, d)
        y : ignored
        groups : array-like (n,), optional
            Group label of each row (a person, a source document, a session): the early-
            stopping validation split then holds out ``validation_fraction`` of the groups
            whole (like scikit-learn's ``GroupShuffleSplit``, seeded by ``random_state``), so
            no group is on both sides.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        self._validate_params(X.shape[1])
        X32 = X.astype(np.float32, copy=False)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        init, loss = self._resolve(X32)
        self.init_, self.loss_ = init, loss
        if groups is not None and len(np.asarray(groups)) != len(X):
            raise ValueError(f"groups must have one label per sample ({len(X)}), got "
                             f"{len(np.asarray(groups))}")
        Xtr, Xval = X32, None
        self.validation_indices_ = None
        if self.early_stopping:
            tr, va = split_indices(len(X), val_fraction=float(self.validation_fraction),
                                   groups=groups, seed=seed, min_val=MIN_VAL_SAMPLES,
                                   min_train=MIN_TRAIN_SAMPLES)
            Xtr, Xval = X32[tr], X32[va]
            self.validation_indices_ = va
        # Penalties per unit of total variance: one weight_decay means the same everywhere.
        scale = float(Xtr.astype(np.float64).var(0).sum()) if len(Xtr) > 1 else 1.0
        self.variance_scale_ = scale if scale > 0 else 1.0
        corruption = make_corruption(self.noise, self.noise_level) if self.noise else None
        epochs = self._epochs(len(Xtr))
        grid = self._grid() if isinstance(self.weight_decay, str) else [float(self.weight_decay)]
        fits = []
        for wd in grid:
            fits.append(self._fit_one(X32, Xtr, Xval, init, loss, wd, corruption, epochs, seed))
        if len(fits) > 1:
            scores = [f[3] for f in fits]
            best = min(scores)
            # ties (within 1e-9 relative) go to the larger decay: the smoother model
            i = max(j for j, s in enumerate(scores) if s <= best + 1e-9 * abs(best))
            self.validation_curve_ = {"weight_decay": grid, self.monitor: scores,
                                      "n_iter": [len(f[1]) for f in fits]}
        else:
            i = 0
            self.validation_curve_ = None
        self.model_, self.history_, self.objective_, self.best_score_, self.start_score_ = \
            fits[i]
        self.weight_decay_ = grid[i]
        self.n_iter_ = len(self.history_)
        return self

    def _fit_one(self, X, Xtr, Xval, init, loss, wd, corruption, epochs, seed):
        model = self._build(init, loss, Xtr, seed)
        objective = make_objective(loss, n_features=X.shape[1],
                                   weight_decay=wd * self.variance_scale_, l1=self.l1,
                                   kl_rho=self.sparsity_target, kl_beta=self.sparsity_weight,
                                   dead_unit=self.dead_unit, contractive=self.contractive)
        objective.check_model(model)
        start = best = None
        if Xval is not None:
            start = _evaluate(model, objective, Xval, prefix="val_")[self.monitor]
        if epochs == 0:
            from .train import History

            return model.eval(), History(), objective, start, start
        try:
            history = _fit(
                model, objective, Xtr, val=Xval, corruption=corruption, epochs=epochs,
                batch_size=int(self.batch_size), optimizer=self.optimizer,
                lr=self.learning_rate, schedule=self.schedule, seed=seed,
                early_stopping=self.n_iter_no_change if Xval is not None else None,
                monitor=self.monitor if Xval is not None else None,
                include_start=Xval is not None and init == "pca",
                progress=None if self.verbose else False,  # verbose: a bar on a terminal only
                desc="Autoencoder.fit")
        except FloatingPointError as e:
            # Bad input for this estimator (e.g. values whose squares overflow float32), so a
            # ValueError as scikit-learn users expect; the loop's message says what happened.
            amax = float(np.abs(X).max())
            raise ValueError(f"X: training diverged (largest |x| is {amax:.3g}; standardise or "
                             f"rescale X, or lower learning_rate): {e}") from e
        if init == "pca" and Xval is not None and history.best_epoch == 0:
            # No epoch beat the start: the result is PCA, so fit that PCA on every row
            # (training and validation), as PCA itself would be, instead of 90 % of them.
            with torch.no_grad():
                m64 = copy.deepcopy(model).double().init_pca(
                    torch.from_numpy(X.astype(np.float64)))
                for p, q in zip(model.parameters(), m64.parameters()):
                    p.copy_(q.float())
        if Xval is not None:
            best = _evaluate(model, objective, Xval, prefix="val_")[self.monitor]
        return model.eval(), history, objective, best, start

    def _prepare(self, X) -> tuple[torch.nn.Module, torch.Tensor]:
        """The model in X's dtype (a float64 copy for float64 X) and X as a tensor."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        model = self.model_.eval()
        if X.dtype == np.float64:
            model = copy.deepcopy(model).double()
        if not X.flags.writeable:  # torch wants writable memory (e.g. a read-only memmap)
            X = X.copy()
        return model, torch.from_numpy(np.ascontiguousarray(X))

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Codes ``f(X)``: (n, d) -> (n, k), in eval mode without corruption; float64 in,
        float64 out."""
        model, x = self._prepare(X)  # first: raises NotFittedError before model_ is touched
        return model.encode(x).numpy()

    @torch.no_grad()
    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes: (n, k) -> (n, d), in the codes' dtype (float32 or float64)."""
        check_is_fitted(self, "model_")
        Z = np.asarray(X)
        if Z.dtype != np.float32:
            Z = Z.astype(np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.model_.n_components:
            raise ValueError(f"codes must have shape (n, {self.model_.n_components}), "
                             f"got {Z.shape}")
        if not np.isfinite(Z).all():
            raise ValueError("codes contain NaN or infinite values")
        model = self.model_.eval()
        if Z.dtype == np.float64:
            model = copy.deepcopy(model).double()
        return model.decode(torch.from_numpy(np.ascontiguousarray(Z))).numpy()

    @torch.no_grad()
    def reconstruct(self, X) -> np.ndarray:
        """``g(f(X))``: (n, d) -> (n, d)."""
        model, x = self._prepare(X)
        return model(x).reconstruction.numpy()

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """Negative squared reconstruction error per sample, ``−Σ_j (x_ij − x̂_ij)²``, (n,)."""
        model, x = self._prepare(X)
        r = model(x).reconstruction
        return (-(r - x).pow(2).sum(1)).numpy()

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples` (negative mean squared error per sample)."""
        return float(self.score_samples(X).mean())
