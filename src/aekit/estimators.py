"""scikit-learn façade: :class:`Autoencoder`, a ``TransformerMixin`` over ``DenseAE`` + ``fit``.

Thin and config-free: hyperparameters are ``__init__`` keyword arguments stored as given,
validated in ``fit``; learned attributes end in ``_``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .corruption import make_corruption
from .data import train_val_split
from .models import DenseAE
from .objectives import make_objective
from .train import fit as _fit
from .validation import check_choice, check_float, check_int

__all__ = ["Autoencoder"]


class Autoencoder(TransformerMixin, BaseEstimator):
    """Dense autoencoder with the scikit-learn transformer API.

    Learns ``f: R^d -> R^k`` and ``g: R^k -> R^d`` minimising the mean per-sample loss
    ``(1/n) Σ_i ℓ(x_i, g(f(x_i))) + η Σ_l ‖W_l‖²_F``; ``transform`` returns codes
    ``f(X)`` (n, k), ``inverse_transform`` returns ``g(Z)`` (n, d), ``score_samples`` returns
    ``−Σ_j (x_ij − x̂_ij)²`` per sample (higher is more typical; an anomaly score when
    negated).

    Parameters
    ----------
    n_components : int, default=8
        Code size k; must not exceed the number of features.
    hidden_layer_sizes : tuple of int, default=(128,)
        Encoder hidden sizes (the decoder mirrors them). ``()`` gives a single-layer AE.
    activation : str, default="elu"
        Hidden activation (see :data:`aekit.layers.ACTIVATIONS`).
    code_activation : str, default="linear"
        Code activation (``"sigmoid"``, ``"relu"``, ``"topk:K"``, ...).
    loss : {"auto", "mse", "bce", "gaussian_nll"}, default="auto"
        ``"auto"`` picks cross-entropy (with a sigmoid output) when all of X lies in [0, 1],
        else squared error. Chosen loss in ``loss_``.
    tied : bool, default=False
        Tie decoder weights to the encoder's.
    weight_decay : float, default=0.0
        η of the logged weight-decay term (biases excluded).
    optimizer : {"adam", "adamw", "sgd", "lbfgs"}, default="adam"
    learning_rate : float, default=3e-3
    batch_size : int, default=64
    max_iter : int, default=300
        Maximum number of epochs.
    schedule : str, default="cosine"
        Learning-rate schedule over ``max_iter`` epochs.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of X and stop after ``n_iter_no_change`` epochs
        without improvement, restoring the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=20
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
    model_ : aekit.DenseAE
    history_ : aekit.History
    loss_ : str
    n_features_in_ : int
    n_iter_ : int
        Epochs run.

    References
    ----------
    Hinton & Salakhutdinov, Science 2006; Goodfellow, Bengio & Courville, *Deep Learning*,
    ch. 14.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data / 16
    >>> Z = Autoencoder(n_components=8, max_iter=5, random_state=0).fit_transform(X)
    >>> Z.shape
    (1797, 8)
    """

    def __init__(self, n_components=8, *, hidden_layer_sizes=(128,), activation="elu",
                 code_activation="linear", loss="auto", tied=False, weight_decay=0.0,
                 optimizer="adam", learning_rate=3e-3, batch_size=64, max_iter=300,
                 schedule="cosine", early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=20, noise=None, noise_level=0.0, l1=0.0,
                 sparsity_target=None, sparsity_weight=1.0, contractive=0.0, dead_unit=0.0,
                 random_state=None, verbose=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.tied = tied
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
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
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _validate_params(self, n_features: int) -> None:
        k = check_int("n_components", self.n_components, 1)
        if k > n_features:
            raise ValueError(f"n_components={k} is larger than the number of features "
                             f"({n_features}); an autoencoder code cannot exceed its input here")
        check_choice("loss", self.loss, ("auto", "mse", "bce", "gaussian_nll"))
        check_int("max_iter", self.max_iter, 1)
        check_float("validation_fraction", self.validation_fraction, 0, 1, hi_open=True)

    def fit(self, X, y=None):
        """Train on X (n, d); ``y`` is ignored. Returns self."""
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=1)
        X = X.astype(np.float32, copy=False)
        self._validate_params(X.shape[1])
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        loss = self.loss
        if loss == "auto":
            loss = "bce" if X.min() >= 0.0 and X.max() <= 1.0 else "mse"
        self.loss_ = loss
        hidden = tuple(int(h) for h in (self.hidden_layer_sizes or ()))
        torch.manual_seed(seed)
        self.model_ = DenseAE([X.shape[1], *hidden, int(self.n_components)],
                              activation=self.activation, code_activation=self.code_activation,
                              output="sigmoid" if loss == "bce" else "linear", tied=self.tied)
        objective = make_objective(loss, n_features=X.shape[1], weight_decay=self.weight_decay,
                                   l1=self.l1, kl_rho=self.sparsity_target,
                                   kl_beta=self.sparsity_weight, dead_unit=self.dead_unit,
                                   contractive=self.contractive)
        corruption = make_corruption(self.noise, self.noise_level) if self.noise else None
        Xtr, Xval = X, None
        if self.early_stopping and len(X) >= 10 and self.validation_fraction > 0:
            Xtr, Xval, _, _ = train_val_split(X, val_fraction=self.validation_fraction,
                                              seed=seed)
        try:
            self.history_ = _fit(
                self.model_, objective, Xtr, val=Xval, corruption=corruption,
                epochs=int(self.max_iter),
                batch_size=int(self.batch_size), optimizer=self.optimizer,
                lr=self.learning_rate, schedule=self.schedule, seed=seed,
                early_stopping=self.n_iter_no_change if self.early_stopping else None,
                progress=None if self.verbose else False,  # verbose: a bar on a terminal only
                desc="Autoencoder.fit")
        except FloatingPointError as e:
            # Bad input for this estimator (e.g. values whose squares overflow float32), so a
            # ValueError as scikit-learn users expect; the loop's message says what happened.
            amax = float(np.abs(X).max())
            raise ValueError(f"X: training diverged (largest |x| is {amax:.3g}; standardise or "
                             f"rescale X, or lower learning_rate): {e}") from e
        self.objective_ = objective
        self.n_iter_ = len(self.history_)
        return self

    def _tensor(self, X, reset=False) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=reset)
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Codes ``f(X)``: (n, d) -> (n, k), in eval mode without corruption."""
        x = self._tensor(X)  # first: raises NotFittedError before model_ is touched
        return self.model_.eval().encode(x).numpy()

    @torch.no_grad()
    def inverse_transform(self, X) -> np.ndarray:
        """Decode codes: (n, k) -> (n, d)."""
        check_is_fitted(self, "model_")
        Z = np.asarray(X, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.model_.n_components:
            raise ValueError(f"codes must have shape (n, {self.model_.n_components}), "
                             f"got {Z.shape}")
        if not np.isfinite(Z).all():
            raise ValueError("codes contain NaN or infinite values")
        return self.model_.eval().decode(torch.from_numpy(np.ascontiguousarray(Z))).numpy()

    @torch.no_grad()
    def reconstruct(self, X) -> np.ndarray:
        """``g(f(X))``: (n, d) -> (n, d)."""
        x = self._tensor(X)  # first: raises NotFittedError before model_ is touched
        return self.model_.eval()(x).reconstruction.numpy()

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """Negative squared reconstruction error per sample, ``−Σ_j (x_ij − x̂_ij)²``, (n,)."""
        x = self._tensor(X)
        r = self.model_.eval()(x).reconstruction
        return (-(r - x).pow(2).sum(1)).numpy()

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples` (negative mean squared error per sample)."""
        return float(self.score_samples(X).mean())
