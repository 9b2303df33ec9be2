"""scikit-learn façade: :class:`Autoencoder`, a ``TransformerMixin`` over a PCA-started
``ResidualAE`` (or a randomly initialised ``DenseAE``, a ``LinearAE`` or a ``ConvAE``) +
``fit``; :meth:`Autoencoder.save` and :func:`load_estimator` (safetensors + JSON).

Thin and config-free: hyperparameters are ``__init__`` keyword arguments stored as given,
validated in ``fit``; learned attributes end in ``_``.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .corruption import make_corruption
from .data.arrays import split_indices
from .io import FileFormatError, expect, load_tensor_file, pack_tree, save_tensor_file, unpack_tree
from .models import MODELS, ConvAE, DenseAE, LinearAE, ResidualAE, init_linear_ae_from_pca
from .objectives import make_objective
from .train import evaluate as _evaluate
from .train import fit as _fit
from .validation import check_choice, check_float, check_int

__all__ = ["DEFAULT_WEIGHT_DECAY_GRID", "ESTIMATOR_CLASSES", "ESTIMATOR_FORMAT",
           "ESTIMATOR_MODELS", "Autoencoder", "load_estimator"]

#: The ``format`` tag of files written by :meth:`Autoencoder.save`.
ESTIMATOR_FORMAT = "aekit-estimator"

#: Architectures :class:`Autoencoder` builds (``model=``), and the settings only some use:
#: a setting a model does not use must stay at its default (else ``fit`` raises).
ESTIMATOR_MODELS = ("dense", "conv", "linear")
_USED_BY = {
    "hidden_layer_sizes": ("dense",),
    "activation": ("dense", "conv"),
    "code_activation": ("dense", "conv"),
    "tied": ("dense", "linear"),
    "batch_norm": ("dense", "conv"),
    "dropout": ("dense",),
    "channels": ("conv",),
    "kernel_size": ("conv",),
    "strides": ("conv",),
    "image_shape": ("conv",),
}

#: Weight decays tried by ``weight_decay="auto"``, in per-feature units (see
#: :class:`Autoencoder`): from negligible to strong enough to keep the residual branch at 0.
DEFAULT_WEIGHT_DECAY_GRID = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)

#: Fewest validation and training rows early stopping accepts.
MIN_VAL_SAMPLES = 2
MIN_TRAIN_SAMPLES = 2

class Autoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Autoencoder (dense, convolutional or linear) with the scikit-learn transformer API,
    started at PCA by default.

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
    only moves away from PCA as far as held-out data rewards it. Because the best epoch is
    the minimum of a noisy validation curve, its score flatters it on a small validation
    set; so the trained model is kept only when its validation gain over PCA exceeds one
    standard error of the per-row paired differences (the one-standard-error rule;
    ``start_gate_`` records it), else the result is PCA-k. Squared error is the loss
    (the metric PCA minimises) and the output is linear. ``max_iter="auto"`` bounds the
    number of optimiser steps rather than epochs, so fit time on 60,000 rows stays in
    minutes, and early stopping (``n_iter_no_change``) usually ends it sooner. Weight decay
    is measured per unit of the data's total variance, so one value means the same on every
    dataset, and ``weight_decay="auto"`` picks it on the validation split.

    **Models and images.** ``model="dense"`` (the default: the PCA-started ``ResidualAE``,
    or a :class:`aekit.DenseAE` for a random start), ``"linear"`` (:class:`aekit.LinearAE`,
    ``x̂ = W_d(W_e x + b_e) + b_d``, started at its closed-form optimum PCA-k) or ``"conv"``
    (:class:`aekit.ConvAE`, always a random start). X may be rows (n, d) or images
    (n, H, W) / (n, C, H, W): dense and linear models see the flattened rows
    (``d = C·H·W``), the conv model the images; ``transform`` and friends accept the layout
    X was fitted with (and flat rows). A setting the chosen model does not use (e.g.
    ``channels`` with ``model="dense"``, ``dropout`` with ``model="linear"``) must stay at
    its default: a changed one raises instead of being ignored.

    Parameters
    ----------
    n_components : int, default=8
        Code size k; must not exceed the number of features.
    model : {"dense", "conv", "linear"}, default="dense"
        The architecture (above).
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
        Tie decoder weights to the encoder's (implies a random start for ``"dense"``; a tied
        linear AE still starts at PCA, whose optimal decoder is the encoder's transpose).
    batch_norm : bool, default=False
        Batch normalisation after every hidden layer (``"dense"``: implies a random start;
        ``"conv"``: after every hidden convolution).
    dropout : float, default=0.0
        Dropout probability after every hidden activation (``"dense"``; with a PCA start in
        the residual branches).
    channels : tuple of int, default=(16, 32)
        ``"conv"``: channels of the encoder's convolution blocks.
    kernel_size : int or tuple of int, default=3
        ``"conv"``: odd kernel size of every block, or one per block.
    strides : int or tuple of int, default=2
        ``"conv"``: stride of every block (1 or 2), or one per block.
    image_shape : tuple of int or None, default=None
        ``"conv"`` with flat rows X (n, d): the image ``(H, W)`` or ``(C, H, W)`` of a row;
        None: taken from X's shape when X is (n, H, W) / (n, C, H, W), else a square
        one-channel image when d is a square number.
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
    noise_level : float or None, default=None
        ν for masking, σ for Gaussian noise, p for salt-and-pepper. ``None``: the corruption's
        documented default (ν = 0.25 masking, σ = 0.1 Gaussian, p = 0.1 salt-and-pepper;
        :func:`aekit.corruption.make_corruption`); 0 with a ``noise`` is an error (it would
        train a plain autoencoder). Ignored without ``noise``.
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
    model_ : aekit.models.ResidualAE, aekit.DenseAE, aekit.LinearAE or aekit.ConvAE
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
    start_gate_ : dict or None
        With a PCA start and a trained epoch better than it: ``{"improvement": m,
        "standard_error": se, "n_val": n, "kept": m > se}``, the one-standard-error rule
        that decided whether to keep the trained model or return PCA (see above).
    validation_indices_ : ndarray of int or None
        Rows of X held out for early stopping (sorted).
    n_features_in_ : int
        d, the flattened size of one sample.
    sample_shape_ : tuple of int
        The shape of one sample of the fitted X: ``(d,)``, ``(H, W)`` or ``(C, H, W)``.
    image_shape_ : tuple of int or None
        ``(C, H, W)`` the conv model sees (None for dense and linear models on rows).
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

    def __init__(self, n_components=8, *, model="dense", hidden_layer_sizes=(256,),
                 activation="elu", code_activation="linear", loss="auto", init="pca",
                 tied=False, batch_norm=False, dropout=0.0, channels=(16, 32), kernel_size=3,
                 strides=2, image_shape=None, weight_decay=0.0, weight_decay_grid=None,
                 optimizer="adam",
                 learning_rate=3e-3, batch_size=256, max_iter="auto", max_steps=5000,
                 schedule="cosine", early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=20, monitor="val_recon", noise=None, noise_level=None,
                 l1=0.0, sparsity_target=None, sparsity_weight=1.0, contractive=0.0,
                 dead_unit=0.0, random_state=None, verbose=False):
        self.n_components = n_components
        self.model = model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.init = init
        self.tied = tied
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.channels = channels
        self.kernel_size = kernel_size
        self.strides = strides
        self.image_shape = image_shape
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
        check_choice("model", self.model, ESTIMATOR_MODELS)
        defaults = {n: p.default for n, p in
                    inspect.signature(type(self).__init__).parameters.items()}
        for name, models in _USED_BY.items():
            value = getattr(self, name)
            default = defaults[name]
            same = (value == default if not isinstance(value, list | tuple)
                    else isinstance(default, tuple) and tuple(value) == default)
            if self.model not in models and not same:
                raise ValueError(f"{name}={value!r} is not used by model={self.model!r} (it "
                                 f"applies to model={' or '.join(map(repr, models))}); leave "
                                 f"it at its default {default!r}")
        check_float("dropout", self.dropout, 0, 1, hi_open=True)
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
        """``(init, loss)`` actually used: a PCA start needs a dense or linear model, a linear
        code, squared error, and (dense) untied weights without batch norm."""
        pca_ok = (self.code_activation == "linear" and self.loss in ("auto", "mse")
                  and self.sparsity_target is None and not self.contractive)
        if self.model == "dense":
            pca_ok = pca_ok and not self.tied and not self.batch_norm
        elif self.model == "conv":
            pca_ok = False
        init = "pca" if self.init == "pca" and pca_ok else "random"
        loss = self.loss
        if loss == "auto":
            if init == "pca" or self.model == "linear":
                loss = "mse"
            else:
                loss = "bce" if X.min() >= 0.0 and X.max() <= 1.0 else "mse"
        return init, loss

    def _epochs(self, n_train: int) -> int:
        if isinstance(self.max_iter, str):
            n_batches = math.ceil(n_train / min(int(self.batch_size), n_train))
            return int(min(300, max(5, math.ceil(int(self.max_steps) / n_batches))))
        return int(self.max_iter)

    def _new_model(self, init: str, loss: str, d: int):
        """The architecture, randomly initialised (see :meth:`_build` for the PCA start)."""
        k = int(self.n_components)
        if self.model == "linear":
            return LinearAE(d, k, tied=bool(self.tied))
        if self.model == "conv":
            return ConvAE(list(self.image_shape_), channels=tuple(self.channels), code_size=k,
                          kernel_size=self.kernel_size, activation=self.activation,
                          code_activation=self.code_activation,
                          output="sigmoid" if loss == "bce" else "linear",
                          batch_norm=bool(self.batch_norm), strides=self.strides)
        hidden = tuple(int(h) for h in (self.hidden_layer_sizes or ()))
        if init == "pca":
            return ResidualAE(d, k, hidden, activation=self.activation,
                              dropout=float(self.dropout))
        return DenseAE([d, *hidden, k], activation=self.activation,
                       code_activation=self.code_activation,
                       output="sigmoid" if loss == "bce" else "linear", tied=bool(self.tied),
                       batch_norm=bool(self.batch_norm), dropout=float(self.dropout))

    @staticmethod
    @torch.no_grad()
    def _set_pca(model, X: np.ndarray) -> None:
        """Write PCA-k of X (computed in float64) into a ResidualAE or LinearAE, in place."""
        m64 = copy.deepcopy(model).double()
        X64 = torch.from_numpy(np.asarray(X, dtype=np.float64))
        if isinstance(m64, LinearAE):
            init_linear_ae_from_pca(m64, X64)
        else:
            m64.init_pca(X64)
        for p, q in zip(model.parameters(), m64.parameters()):
            p.copy_(q.to(p.dtype))

    def _build(self, init: str, loss: str, Xtr: np.ndarray, seed: int):
        d, k = Xtr.shape[1], int(self.n_components)
        torch.manual_seed(seed)
        model = self._new_model(init, loss, d)
        if init == "pca":
            if len(Xtr) <= k:
                raise ValueError(f"init='pca' needs more training rows than n_components={k}, "
                                 f"got {len(Xtr)} (n_samples = {len(Xtr)}); pass more samples "
                                 "or init='random'")
            self._set_pca(model, Xtr)  # PCA in float64 for accuracy, then the float32 model
        return model

    # --- input layouts ------------------------------------------------------------------------
    def _image_layout(self, sample_shape: tuple[int, ...], d: int) -> tuple[int, ...] | None:
        """``(C, H, W)`` of one sample for the conv model (None for dense/linear)."""
        if self.model != "conv":
            return None
        if self.image_shape is not None:
            try:
                shape = tuple(int(s) for s in self.image_shape)
            except (TypeError, ValueError):
                raise ValueError(f"image_shape must be (H, W) or (C, H, W), got "
                                 f"{self.image_shape!r}") from None
            if len(shape) == 2:
                shape = (1, *shape)
            if len(shape) != 3 or min(shape) < 1 or math.prod(shape) != d:
                raise ValueError(f"image_shape={self.image_shape!r} does not describe samples "
                                 f"of {d} values (shape {sample_shape})")
            return shape
        if len(sample_shape) == 2:
            return (1, *sample_shape)
        if len(sample_shape) == 3:
            return tuple(sample_shape)
        s = math.isqrt(d)
        if s * s != d:
            raise ValueError(f"model='conv' needs images: pass X as (n, H, W) or (n, C, H, W), "
                             f"or image_shape=(H, W) for rows of {d} values (not a square)")
        return (1, s, s)

    def _flatten(self, X, *, reset: bool):
        """X as validated float rows (n, d) and the shape of one sample as given."""
        shape = getattr(X, "shape", None)
        if shape is None and isinstance(X, list | tuple):
            X = np.asarray(X)
            shape = X.shape
        if shape is not None and len(shape) > 2:
            if len(shape) > 4:
                raise ValueError(f"X must be (n, d), (n, H, W) or (n, C, H, W), got shape "
                                 f"{tuple(shape)}")
            A = check_array(X, allow_nd=True, dtype=[np.float64, np.float32],
                            ensure_min_samples=1, input_name="X")
            sample = tuple(int(s) for s in A.shape[1:])
            if not reset:
                allowed = {tuple(self.sample_shape_)}
                if self.image_shape_ is not None:
                    allowed.add(tuple(self.image_shape_))
                    if self.image_shape_[0] == 1:
                        allowed.add(tuple(self.image_shape_[1:]))
                if sample not in allowed:
                    raise ValueError(f"X has samples of shape {sample}; this estimator was "
                                     f"fitted on samples of shape {tuple(self.sample_shape_)}: "
                                     f"pass that layout or flat rows (n, {self.n_features_in_})")
            X = A.reshape(len(A), -1)
        else:
            sample = None
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1,
                          reset=reset)
        return X, (sample if sample is not None else (X.shape[1],))

    @property
    def _n_features_out(self) -> int:
        """k: the number of output features of :meth:`transform` (for
        ``get_feature_names_out``, which names them ``autoencoder0 .. autoencoder{k-1}``)."""
        return int(self.model_.n_components)

    def fit(self, X, y=None, groups=None):
        """Train on X; ``y`` is ignored. Returns self.

        Parameters
        ----------
        X : array-like (n, d), (n, H, W) or (n, C, H, W)
            Rows, or images (flattened for dense and linear models).
        y : ignored
        groups : array-like (n,), optional
            Group label of each row (a person, a source document, a session): the early-
            stopping validation split then holds out ``validation_fraction`` of the groups
            whole (like scikit-learn's ``GroupShuffleSplit``, seeded by ``random_state``), so
            no group is on both sides.
        """
        X, sample = self._flatten(X, reset=True)
        self._validate_params(X.shape[1])
        self.sample_shape_ = sample
        self.image_shape_ = self._image_layout(sample, X.shape[1])
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
            tr, va = split_indices(len(X),
                                   validation_fraction=float(self.validation_fraction),
                                   groups=groups, random_state=seed, min_val=MIN_VAL_SAMPLES,
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
        (self.model_, self.history_, self.objective_, self.best_score_, self.start_score_,
         self.start_gate_) = fits[i]
        self.weight_decay_ = grid[i]
        self.n_iter_ = len(self.history_)
        return self

    def _objective(self, loss: str, wd: float, n_features: int):
        return make_objective(loss, n_features=n_features,
                              weight_decay=wd * self.variance_scale_, l1=self.l1,
                              sparsity_target=self.sparsity_target,
                              sparsity_weight=self.sparsity_weight,
                              dead_unit=self.dead_unit, contractive=self.contractive)

    def _fit_one(self, X, Xtr, Xval, init, loss, wd, corruption, epochs, seed):
        model = self._build(init, loss, Xtr, seed)
        objective = self._objective(loss, wd, X.shape[1])
        objective.check_model(model)
        start = best = start_rows = None
        if Xval is not None:
            start = _evaluate(model, objective, Xval, prefix="val_")[self.monitor]
            if init == "pca":
                start_rows = self._val_rows(model, objective, Xval)
        if epochs == 0:
            from .train import History

            return model.eval(), History(), objective, start, start, None
        try:
            history = _fit(
                model, objective, Xtr, val=Xval, corruption=corruption, max_iter=epochs,
                batch_size=int(self.batch_size), optimizer=self.optimizer,
                learning_rate=self.learning_rate, schedule=self.schedule, random_state=seed,
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
        gate = None
        keep = True
        if init == "pca" and Xval is not None and history.best_epoch != 0:
            trained = _evaluate(model, objective, Xval, prefix="val_")[self.monitor]
            gate = self._start_gate(start_rows, model, objective, Xval, start, trained)
            keep = gate["kept"]
        if init == "pca" and Xval is not None and (history.best_epoch == 0 or not keep):
            # The trained model did not beat the start by more than the noise of the
            # validation estimate: the result is PCA, fitted on every row (training and
            # validation), as PCA itself would be, instead of 90 % of them.
            self._set_pca(model, X)
        if Xval is not None:
            best = _evaluate(model, objective, Xval, prefix="val_")[self.monitor]
        return model.eval(), history, objective, best, start, gate

    @staticmethod
    @torch.no_grad()
    def _val_rows(model, objective, Xval: np.ndarray) -> np.ndarray:
        """Per-row validation reconstruction loss (n_val,), float64, in eval mode."""
        model.eval()
        x = torch.from_numpy(np.ascontiguousarray(Xval))
        out = [objective.per_sample(x[i:i + 1024], model(x[i:i + 1024]))
               for i in range(0, len(x), 1024)]
        return torch.cat(out).double().numpy()

    def _start_gate(self, start_rows, model, objective, Xval, start, trained) -> dict:
        """One-standard-error rule for leaving the PCA start.

        The trained model is kept only if its validation improvement over the start,
        ``m = monitor(start) - monitor(trained)``, exceeds the standard error of the paired
        per-row differences ``d_i = e_start(x_i) - e_trained(x_i)``:
        ``SE = std(d, ddof=1) / sqrt(n_val)``. The best epoch is picked as the minimum of a
        noisy validation curve, so its score is optimistically biased, most on small
        validation sets (a few rows); requiring the gain to clear one SE is the
        "one-standard-error rule" of Breiman et al. (*Classification and Regression Trees*,
        1984, sect. 3.4.3; Hastie, Tibshirani & Friedman, *ESL*, 2nd ed., sect. 7.10).
        """
        rows = self._val_rows(model, objective, Xval)
        d = start_rows - rows
        n = len(d)
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
        m = float(start - trained)
        return {"improvement": m, "standard_error": se, "n_val": int(n), "kept": bool(m > se)}

    def _prepare(self, X) -> tuple[torch.nn.Module, torch.Tensor, tuple[int, ...]]:
        """The model in X's dtype (a float64 copy for float64 X), X as rows (n, d) in a
        tensor, and X's own shape (to give reconstructions the input's layout)."""
        check_is_fitted(self, "model_")
        X, _ = self._flatten(X, reset=False)
        shape = getattr(X, "shape", None)
        model = self.model_.eval()
        if X.dtype == np.float64:
            model = copy.deepcopy(model).double()
        if not X.flags.writeable:  # torch wants writable memory (e.g. a read-only memmap)
            X = X.copy()
        return model, torch.from_numpy(np.ascontiguousarray(X)), shape

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Codes ``f(X)``: (n, d) or images in the fitted layout -> (n, k), in eval mode
        without corruption; float64 in, float64 out."""
        model, x, _ = self._prepare(X)  # first: raises NotFittedError before model_ is touched
        return model.encode(x).numpy()

    @torch.no_grad()
    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes: (n, k) -> (n, d), or (n, *sample_shape_) when fitted on images; in
        the codes' dtype (float32 or float64)."""
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
        R = model.decode(torch.from_numpy(np.ascontiguousarray(Z))).numpy()
        return R.reshape(len(R), *self.sample_shape_)

    @torch.no_grad()
    def reconstruct(self, X) -> np.ndarray:
        """``g(f(X))`` in X's layout: (n, d) -> (n, d), images -> images."""
        shape = np.shape(X) if hasattr(X, "shape") or isinstance(X, list | tuple) else None
        model, x, _ = self._prepare(X)
        R = model(x).reconstruction.numpy()
        return R.reshape(shape) if shape is not None and len(shape) > 2 else R

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """Negative squared reconstruction error per sample, ``−Σ_j (x_ij − x̂_ij)²``, (n,)."""
        model, x, _ = self._prepare(X)
        r = model(x).reconstruction
        return (-(r - x).pow(2).sum(1)).numpy()

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples` (negative mean squared error per sample)."""
        return float(self.score_samples(X).mean())

    # --- saving and loading -------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator to ``path`` (one ``.safetensors`` file), atomically.

        The tensors are the model's ``state_dict`` (and the validation row indices); the JSON
        header holds the hyper-parameters (``get_params()``), the model's registry name and
        constructor arguments, the fitted attributes and the training history. No pickle:
        :func:`load_estimator` rebuilds everything from these, and ``transform`` of the
        loaded estimator equals the saved one's bit for bit. A ``random_state`` given as a
        ``RandomState`` instance is stored as None (it only seeds ``fit``).
        """
        check_is_fitted(self, "model_")
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        if self.validation_indices_ is not None:
            tensors["validation_indices"] = torch.from_numpy(
                np.asarray(self.validation_indices_, dtype=np.int64))
        h = self.history_
        fitted = {a: to_plain(getattr(self, a)) for a in _FITTED}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        fitted["history"] = {"records": to_plain(h.records), "best_epoch": h.best_epoch,
                             "stopped_early": bool(h.stopped_early)}
        meta = {"estimator": type(self).__name__, "params": params_to_header(self),
                "model": self.model_.name, "model_config": self.model_.config(),
                "fitted": pack_tree(fitted, "fitted", {})}
        path = Path(path)
        save_tensor_file(path, tensors, ESTIMATOR_FORMAT, meta)
        return path

    @classmethod
    def _from_file(cls, path: Path, tensors: dict, doc: dict) -> Autoencoder:
        from .train import History

        est = cls(**params_from_header(cls, doc, path))
        fitted = unpack_tree(doc.get("fitted"), {}, where="fitted", path=path)
        expect(fitted, dict, path, "fitted")
        missing = [a for a in (*_FITTED, "history") if a not in fitted]
        if missing:
            raise FileFormatError(f"{path}: fitted attributes {missing} are missing", path=path,
                                  field="fitted", expected=f"{[*_FITTED, 'history']}")
        for a in _FITTED:
            setattr(est, a, fitted[a])
        est.sample_shape_ = tuple(int(s) for s in fitted["sample_shape_"])
        est.image_shape_ = (None if fitted["image_shape_"] is None
                            else tuple(int(s) for s in fitted["image_shape_"]))
        expect(est.n_features_in_, int, path, "fitted.n_features_in_")
        if "feature_names_in_" in fitted:
            est.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        est.model_ = rebuild_model(path, doc, tensors)
        if est.model_.n_features != est.n_features_in_:
            raise FileFormatError(f"{path}: the model takes {est.model_.n_features} features, "
                                  f"n_features_in_ is {est.n_features_in_}", path=path,
                                  field="fitted.n_features_in_")
        vi = tensors.get("validation_indices")
        est.validation_indices_ = None if vi is None else vi.numpy().copy()
        hist = fitted["history"]
        expect(hist, dict, path, "fitted.history")
        est.history_ = History()
        try:
            est.history_.load_state_dict(hist)
        except (KeyError, TypeError) as e:
            raise FileFormatError(f"{path}: fitted.history is malformed: {e}", path=path,
                                  field="fitted.history") from None
        try:
            est.objective_ = est._objective(est.loss_, float(est.weight_decay_),
                                            est.n_features_in_)
        except (ValueError, TypeError) as e:
            raise FileFormatError(f"{path}: stored settings do not describe an objective: {e}",
                                  path=path, field="params") from None
        return est


#: Fitted attributes :meth:`Autoencoder.save` stores in the JSON header.
_FITTED = ("loss_", "init_", "weight_decay_", "validation_curve_", "start_score_",
           "best_score_", "n_iter_", "n_features_in_", "variance_scale_", "sample_shape_",
           "image_shape_")


def to_plain(v: Any) -> Any:
    """NumPy scalars/arrays and tuples as plain Python values and lists (JSON-ready)."""
    if isinstance(v, dict):
        return {k: to_plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [to_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return to_plain(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    return v


def params_to_header(est: BaseEstimator) -> dict[str, Any]:
    """``est.get_params(deep=False)`` as a JSON tree for a saved file (:func:`aekit.io.pack_tree`
    form): tuples as lists, a ``RandomState`` instance and a given ``encoder`` model as None
    (they only act in ``fit``); any other non-plain value raises ``ValueError``."""
    params = {}
    for k, v in est.get_params(deep=False).items():
        if k == "random_state" and not (v is None or isinstance(v, int | np.integer)):
            v = None  # a RandomState instance only seeds fit; it is not a setting
        if k == "encoder":
            v = None  # a given encoder's trained weights are stored with the fitted model
        v = to_plain(v)
        if not (v is None or isinstance(v, bool | int | float | str | list | dict)):
            raise ValueError(f"cannot save {type(est).__name__}: parameter {k}={v!r} is not "
                             "a plain value (an int, float, str, bool, None or a list)")
        params[k] = v
    return pack_tree(params, "params", {})


def params_from_header(cls: type, doc: dict, path: Path) -> dict[str, Any]:
    """Constructor arguments from a saved header (lists back to tuples), checked against
    ``cls``'s signature."""
    params = unpack_tree(doc.get("params"), {}, where="params", path=path)
    expect(params, dict, path, "params")
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise FileFormatError(f"{path}: unknown {cls.__name__} parameters {unknown}", path=path,
                              field="params", expected=f"parameters of {cls.__name__}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def rebuild_model(path: Path, doc: dict, tensors: dict, prefix: str = "model.",
                   registry: dict | None = None, wrap=None):
    """The model named in the header, built from its stored constructor arguments, with the
    stored weights (shapes compared on the meta device first, so a header claiming a huge
    model allocates nothing)."""
    registry = MODELS if registry is None else registry
    name, config = doc.get("model"), doc.get("model_config")
    if not isinstance(name, str) or name not in registry:
        raise FileFormatError(f"{path} holds unknown model {name!r}; known: "
                              f"{', '.join(registry)}", path=path, field="model",
                              expected=", ".join(registry))
    expect(config, dict, path, "model_config")
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    def build():
        m = registry[name](**config)
        return m if wrap is None else wrap(m)

    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
        stored = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != stored:
            diff = sorted(set(shapes.items()) ^ set(stored.items()))[:4]
            raise ValueError(f"tensor names/shapes differ: {diff}")
        model = build()
        model.load_state_dict(state, strict=True)
    except (TypeError, RuntimeError, ValueError, AttributeError, KeyError, IndexError,
            OverflowError, NotImplementedError) as e:
        raise FileFormatError(f"{path}: weights do not match the {name!r} model described in "
                              f"its header: {e}", path=path, field="model_config",
                              expected=f"the {name!r} model of the stored weights") from None
    return model.eval()


def load_estimator(path: str | os.PathLike):
    """Load an estimator written by :meth:`Autoencoder.save` (or
    :meth:`aekit.AutoencoderClassifier.save`), fitted and ready to ``transform``/``predict``.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file of format ``"aekit-estimator"``.

    Returns
    -------
    Autoencoder or AutoencoderClassifier

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    aekit.io.FileFormatError
        A foreign file (another aekit format, a safetensors file without aekit's header, a
        pickle, which is never unpickled), a truncated or corrupt one (checksum), or a header
        whose settings, fitted attributes or model do not match its tensors.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> X = np.random.default_rng(0).random((60, 6))
    >>> ae = Autoencoder(n_components=2, max_iter=2, random_state=0).fit(X)
    >>> p = os.path.join(tempfile.mkdtemp(), "ae.safetensors")
    >>> _ = ae.save(p)
    >>> bool((load_estimator(p).transform(X) == ae.transform(X)).all())
    True
    """
    path = Path(path)
    tensors, doc = load_tensor_file(path, ESTIMATOR_FORMAT)
    kind = doc.get("estimator")
    cls = ESTIMATOR_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = " or ".join(map(repr, ESTIMATOR_CLASSES))
        raise FileFormatError(f"{path} holds estimator {kind!r}; expected {known}", path=path,
                              field="estimator", expected=known)
    return cls._from_file(path, tensors, doc)


#: Estimator classes :func:`load_estimator` rebuilds, by the name stored in the file;
#: :mod:`aekit.classifier` adds ``AutoencoderClassifier`` (imported with :mod:`aekit`).
ESTIMATOR_CLASSES: dict[str, type] = {"Autoencoder": Autoencoder}
