"""``aekit.SparseAutoencoder``: the top-k sparse autoencoder with scikit-learn's API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..models.sae import TopKSAE
from ..validation import check_choice, check_float, check_int
from .data import ActivationSource, as_activations
from .examples import TopExamples, top_activating_examples
from .metrics import SAEMetrics, evaluate_sae
from .train import train_sae

__all__ = ["SparseAutoencoder"]


class SparseAutoencoder(TransformerMixin, BaseEstimator):
    """Top-k sparse autoencoder (dictionary of unit-norm atoms) for activation matrices.

    ``z = ReLU(TopK_k(W_enc (x − b_pre) + b_enc))``, ``x̂ = W_decᵀ z + b_pre``, trained on
    ``(1/n) Σ‖x − x̂‖² + α L_aux`` (AuxK) with Adam through :func:`aekit.fit`; see
    :class:`aekit.models.TopKSAE` and :func:`aekit.sae.train_sae`.

    Parameters
    ----------
    n_components : int
        Dictionary size L (number of latents), e.g. 4·d or 16·d.
    k : int
        Active latents per sample (1 <= k <= n_components).
    batch_topk : bool
        BatchTopK selection (k per sample on average over a batch).
    auxk_alpha : float
        α of the AuxK term (0 disables it; Gao et al.: 1/32).
    k_aux : int
        Dead latents decoded per sample by AuxK.
    dead_tokens : int
        Training tokens without firing after which a latent counts as dead for AuxK. The
        paper's 10⁷ is for billions of tokens; the default 10⁵ suits CPU-sized runs.
    max_iter : int
        Epochs.
    batch_size : int
        Rows per step (1024: on a CPU the budget is steps, not Gao et al.'s huge batches).
    learning_rate : float or None
        Adam's rate; None: ``2·10⁻⁴ / sqrt(L / 2¹⁴)`` (Gao et al.).
    b_pre_init : {"geometric_median", "mean", "zeros"}
    atom_init : {"random", "data"}
        Initial atoms: unit-norm Gaussian, or centred normalised training rows (see
        :func:`aekit.sae.train_sae`).
    encoder_scale : {"none", "unit_inputs", "least_squares"}
        One-scalar rescaling of the encoder at initialisation (see :func:`aekit.sae.train_sae`).
    random_state : int

    Attributes
    ----------
    model_ : TopKSAE
    components_ : ndarray (n_components, n_features)
        The unit-norm atoms (``W_dec``), the dictionary transposed.
    history_ : list of dict
        Per-epoch records of :func:`aekit.fit` (``train_recon``, ``train_auxk``,
        ``auxk_dead_fraction``, ...).
    n_features_in_ : int

    References
    ----------
    Gao et al., "Scaling and evaluating sparse autoencoders", 2024. Makhzani & Frey,
    "k-Sparse Autoencoders", ICLR 2014.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(512, 8)).astype(np.float32)
    >>> sae = SparseAutoencoder(n_components=32, k=4, max_iter=2, batch_size=128).fit(X)
    >>> sae.transform(X[:3]).shape
    (3, 32)
    """

    def __init__(self, n_components: int = 256, k: int = 32, *, batch_topk: bool = False,
                 auxk_alpha: float = 1 / 32, k_aux: int = 512, dead_tokens: int = 100_000,
                 max_iter: int = 10, batch_size: int = 1024,
                 learning_rate: float | None = None, b_pre_init: str = "geometric_median",
                 atom_init: str = "random", encoder_scale: str = "none",
                 random_state: int = 0):
        self.n_components = n_components
        self.k = k
        self.batch_topk = batch_topk
        self.auxk_alpha = auxk_alpha
        self.k_aux = k_aux
        self.dead_tokens = dead_tokens
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.b_pre_init = b_pre_init
        self.atom_init = atom_init
        self.encoder_scale = encoder_scale
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None, *, val: Any = None, **fit_kwargs: Any
            ) -> SparseAutoencoder:
        """Train on activations ``X`` (n, d): an array, a ``.npy`` path (streamed), an
        :class:`~aekit.data.NpyReader` or an :class:`~aekit.sae.ActivationSource`."""
        L = check_int("n_components", self.n_components, 1)
        k = check_int("k", self.k, 1)
        if k > L:
            raise ValueError(f"k={k} is larger than the dictionary (n_components={L})")
        check_float("auxk_alpha", self.auxk_alpha, 0)
        check_int("k_aux", self.k_aux, 1)
        check_int("dead_tokens", self.dead_tokens, 1)
        check_int("max_iter", self.max_iter, 1)
        check_int("batch_size", self.batch_size, 1)
        if self.learning_rate is not None:
            check_float("learning_rate", self.learning_rate, 0, lo_open=True)
        check_choice("b_pre_init", self.b_pre_init, ("geometric_median", "mean", "zeros"))
        src = as_activations(X)
        torch.manual_seed(int(self.random_state))
        model = TopKSAE(src.n_features, L, k, batch_topk=bool(self.batch_topk))
        h = train_sae(model, src, val=val, auxk_alpha=self.auxk_alpha, k_aux=self.k_aux,
                      dead_tokens=self.dead_tokens, max_iter=self.max_iter,
                      batch_size=self.batch_size, learning_rate=self.learning_rate,
                      b_pre_init=self.b_pre_init, atom_init=self.atom_init,
                      encoder_scale=self.encoder_scale, random_state=int(self.random_state),
                      **{"progress": False, **fit_kwargs})
        self.model_ = model.eval()
        self.history_ = list(h.records)
        self.n_features_in_ = src.n_features
        return self

    @property
    def components_(self) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.W_dec.detach().numpy().copy()

    def _src(self, X: Any) -> ActivationSource:
        check_is_fitted(self, "model_")
        return as_activations(X, n_features=self.n_features_in_)

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Codes z (n, L), at most k non-zeros per row."""
        src = self._src(X)
        m = self.model_.eval()
        return np.concatenate([m.encode(x).numpy() for _, x in src.chunks(self.batch_size)])

    @torch.no_grad()
    def inverse_transform(self, Z: Any) -> np.ndarray:
        """``x̂ = W_decᵀ z + b_pre``: (n, L) -> (n, d)."""
        check_is_fitted(self, "model_")
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.model_.n_latents:
            raise ValueError(f"Z must have shape (n, {self.model_.n_latents}), got {Z.shape}")
        return self.model_.decode(torch.from_numpy(Z)).numpy()

    @torch.no_grad()
    def reconstruct(self, X: Any) -> np.ndarray:
        """``x̂`` for every row of X: (n, d) -> (n, d)."""
        src = self._src(X)
        m = self.model_.eval()
        return np.concatenate([m(x).reconstruction.numpy()
                               for _, x in src.chunks(self.batch_size)])

    def evaluate(self, X: Any, *, window: int | None = None) -> SAEMetrics:
        """FVU, L0, dead fraction over the first ``window`` rows (:func:`evaluate_sae`)."""
        return evaluate_sae(self.model_, self._src(X), window=window,
                            batch_size=self.batch_size)

    def score(self, X: Any, y: Any = None) -> float:
        """Explained variance ``1 − FVU`` on X (higher is better)."""
        return 1.0 - self.evaluate(X).fvu

    def top_examples(self, X: Any, *, n_top: int = 10, latents: Any = None) -> TopExamples:
        """Top-activating rows of X per latent (:func:`top_activating_examples`)."""
        return top_activating_examples(self.model_, self._src(X), n_top=n_top,
                                       latents=latents, batch_size=self.batch_size)

    # --- saving and loading -----------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator to one ``.safetensors`` file (weights + JSON header
        with the parameters and the history), atomically; no pickle."""
        from ..train.checkpoint import save_model

        check_is_fitted(self, "model_")
        return save_model(self.model_, path, extra={
            "estimator": type(self).__name__, "params": self.get_params(),
            "history": self.history_})

    @classmethod
    def load(cls, path: str | os.PathLike) -> SparseAutoencoder:
        """Rebuild an estimator written by :meth:`save` (or any saved ``TopKSAE``)."""
        from ..io import FileFormatError
        from ..train.checkpoint import load

        model, meta = load(path, with_meta=True)
        if not isinstance(model, TopKSAE):
            raise FileFormatError(f"{path} holds a {type(model).__name__}, not a TopKSAE",
                                  path=Path(path), field="model", expected="topk_sae")
        extra = meta.get("extra") or {}
        params = extra.get("params") if isinstance(extra.get("params"), dict) else {}
        known = set(cls().get_params())
        est = cls(**{k: v for k, v in params.items() if k in known})
        est.n_components, est.k = model.n_latents, model.k
        est.model_, est.n_features_in_ = model, model.n_features
        est.history_ = list(extra.get("history") or [])
        return est
