"""``AnomalyDetector``: an autoencoder as an unsupervised anomaly detector, with PyOD's
``BaseDetector`` names and semantics and a scikit-learn estimator's contract.

Fit on (mostly) normal data. A fraction ``validation_fraction`` of it is held out: the model
never trains on it, so its scores are those of fresh normal data. They serve three purposes:
early stopping on the held-out reconstruction (a PCA-initialised model keeps its PCA start
when training does not improve it), the reference that rank-normalises each score before they
are combined, and the conformal threshold for a target false-positive rate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .scores import (
    RECON_SCORES,
    RankNormalizer,
    check_energy_exponent,
    error_maps,
    knn_distance,
    top_features,
)
from .thresholds import (
    best_f1_threshold,
    check_contamination,
    contamination_threshold,
    fpr_threshold,
)

__all__ = ["SCORES", "THRESHOLDS", "AnomalyDetector"]

#: Score compositions: reconstruction error, kNN distance in code space, both rank-averaged,
#: or kNN distance in the joint space of the code and the reconstruction error
#: (``score="auto"`` picks one of them by the input: see :class:`AnomalyDetector`).
SCORES = ("recon", "knn", "recon+knn", "joint")
#: Threshold rules (or a float: a fixed threshold).
THRESHOLDS = ("contamination", "fpr")
DETECTOR_FORMAT = "aekit-anomaly-detector"


def _signature_without_var_keyword(f):
    import inspect

    sig = inspect.signature(f)
    return sig.replace(parameters=[p for p in sig.parameters.values()
                                   if p.kind is not inspect.Parameter.VAR_KEYWORD])


def _as_2d_float(X: Any, name: str = "X") -> np.ndarray:
    """Rows (n, d) through scikit-learn's ``check_array`` (its messages for sparse, complex,
    1-D, empty and non-numeric input); image batches (n, H, W) / (n, c, H, W) as they are.
    Non-finite values are left for the caller, which names the columns."""
    from sklearn.utils.validation import check_array

    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    nd = getattr(X, "ndim", None)
    if nd is None and isinstance(X, (list, tuple)):
        try:
            nd = np.asarray(X).ndim
        except ValueError:  # ragged nesting: images of different sizes
            raise ValueError(f"{name} mixes samples of different shapes (images of different "
                             "sizes?); resize them to one size first") from None
    if nd in (3, 4):
        A = np.asarray(X)
        if A.dtype == object or A.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be a numeric array, got dtype {A.dtype} (images of "
                             "different sizes? resize them to one size first)")
        return A.astype(np.float64, copy=False)
    return check_array(X, dtype=np.float64, ensure_all_finite=False, input_name=name)


class AnomalyDetector(BaseEstimator):
    """An autoencoder anomaly detector (PyOD / scikit-learn interface).

    The anomaly score of a sample ``x`` (higher = more anomalous) is, by ``score``:

    * ``"recon"``: the reconstruction error ``e(x) = ℓ(x, g(f(x)))`` with ℓ ``recon``
      (``"mse"`` ``‖x − x̂‖²/d``, ``"bce"``, or ``"ssim"`` for images);
    * ``"knn"``: the mean distance from the code ``f(x)`` to its ``k`` nearest codes of the
      training data, ``κ(x) = (1/k) Σ_{i≤k} ‖f(x) − f(x_(i))‖`` (Angiulli & Pizzuti's
      mean-of-k distance), with by default ``k = ⌈contamination · m⌉`` for m training
      codes: anomalies that form a group of up to the training contamination cannot
      hide among their own kind, as they do for small k (masking);
    * ``"recon+knn"``: ``½ (F_e(e(x)) + F_κ(κ(x)))``, each term rank-normalised by the
      empirical CDF ``F`` of its values on the held-out normal data
      (:class:`~aekit.anomaly.scores.RankNormalizer`);
    * ``"joint"``: the kNN distance (same k) in the joint space of the code and the
      reconstruction error, ``φ(x) = [f(x), √(d · e(x))]`` (for ``"mse"`` the last
      coordinate is ``‖x − x̂‖``, in the units of the codes), as DAGMM's ``[z_c, z_r]``:
      a row is far from the training rows if its code is unusual *or* the autoencoder
      cannot reconstruct it (off the normal manifold, where the code alone cannot see it);
    * ``"auto"`` (default): ``"joint"`` for tabular rows, ``"recon"`` for images. Both were
      chosen on development data, never on test scores: on tabular data, the 22 ADBench
      sets of odd position in ADBench-number order (mean test AUROC over 3 splits, one AE
      fit per split: ``"joint"`` with ``k = ⌈0.1 m⌉`` 79.6, ``"knn"`` with it 79.3,
      ``"recon+knn"`` with it 77.4, ``"recon"`` 71.5, the former default ``"recon+knn"``
      with k = 5 71.9; IsolationForest 77.5); on images, one-class MNIST's validation
      split (``"recon"`` above ``"recon+knn"`` for every low-pass σ,
      ``benchmarks/anomaly_oneclass.py``).

    Parameters
    ----------
    model : str or aekit.models.Autoencoder
        An unfitted model instance (copied, then trained; e.g. ``UNetAE(..., skips=False)``),
        or a name in :data:`aekit.MODELS` built with its ``from_spec`` (``"residual"``: PCA plus
        nonlinear residual branches, initialised at PCA; ``"dense"``; ``"conv"`` for
        images; ``"linear"``), or ``"pca"`` (the residual model without branches and without
        training: exactly PCA-k's reconstruction).
    n_components : int, float or None
        Code size k. A float in (0, 1) picks the smallest k whose PCA explains that
        fraction of the (standardised) training variance; ``None``: ``min(32, ⌈d/2⌉)``.
        Capped at ``min(d, n_train) − 1`` (at least 1).
    hidden_layer_sizes : sequence of int
        Hidden sizes of the model (residual branches; channels for ``"conv"``). Formerly
        ``hidden`` (still accepted until the next release, with a ``FutureWarning``).
    score : {"auto", "recon", "knn", "recon+knn", "joint"}
        The resolved choice is ``score_``.
    recon : {"mse", "bce", "ssim"}
        Reconstruction error used by the score (``"ssim"`` needs ``image_shape`` or image
        input, ``"bce"`` data in [0, 1]).
    residual_sigma : float, None or "auto"
        For images with ``recon="mse"``: Gaussian low-pass (σ in pixels) of the residual
        before it is squared, ``e(x) = ‖G_σ ∗ (x − x̂)‖²/d``
        (:func:`~aekit.anomaly.scores.reconstruction_error`). ``"auto"``: 1.0 for images
        with ``"mse"``, else None.
    energy_exponent : float in [0, 1]
        α: with ``recon="mse"``, the reconstruction error is divided by the sample's own
        energy to the power α, ``e_α(x) = e(x) / E(x)^α``, ``E(x) = ‖G_σ ∗ x‖² / d`` (the
        input low-passed like the residual; standardised units for rows). 0 (default): the
        plain error; 1: the relative error, the share of the sample's energy the model
        does not explain (Scharf & Friedlander's matched-subspace statistic for an unknown
        scale). The plain error grows with the input's energy, so a faint or thin anomaly
        scores low whatever its shape. ``benchmarks/anomaly_oneclass.py`` chooses σ and α
        on its validation split; see :func:`~aekit.anomaly.scores.reconstruction_error`.
    n_neighbors : int or "auto"
        k of the kNN code distance; ``"auto"``: ``max(1, ⌈contamination · m⌉)`` with m the
        number of training codes (``n_neighbors_`` after fitting).
    contamination : float in (0, 0.5]
        Expected fraction of anomalies in the training data (used by
        ``threshold="contamination"`` and ``predict_confidence``).
    threshold : {"contamination", "fpr"} or float
        ``"contamination"``: the ``1 − contamination`` quantile of ``decision_scores_``
        (PyOD's rule); ``"fpr"``: the conformal threshold whose false-positive rate on new
        normal data is at most ``target_fpr``, from the held-out normal scores; a float: that
        fixed value. :meth:`fit_threshold` re-sets it later (e.g. best F1 on labelled data).
    target_fpr : float in (0, 1)
    validation_fraction : float in [0, 0.5]
        Held-out share of the training rows (0: none; then ``threshold="fpr"`` is refused).
    standardize : bool or "auto"
        z-score every feature with the training mean and standard deviation (``"auto"``: yes
        for tabular input, no for images).
    constant_columns : {"error", "ignore"}
        A feature constant in the training data cannot be standardised: raise naming it, or
        leave it unscaled.
    image_shape : sequence of int, optional
        (c, H, W) or (H, W) of flattened image rows; inferred from (n, H, W) or (n, c, H, W)
        input.
    loss : {"mse", "bce"}
        Training loss.
    max_iter, batch_size, learning_rate : training settings of :func:`aekit.fit` (Adam):
        epochs, rows per step, step size. Formerly ``epochs`` and ``lr``.
    early_stopping : bool
        Stop when the held-out reconstruction has not improved for ``n_iter_no_change``
        epochs (best epoch restored, the untrained start included; needs
        ``validation_fraction > 0``). An int (the old patience) still works until the next
        release, with a ``FutureWarning``: ``early_stopping=N`` is ``True`` +
        ``n_iter_no_change=N``, ``None`` is ``False``.
    n_iter_no_change : int
        Patience of early stopping, in epochs.
    model_params : dict, optional
        Extra keyword options of the model's ``from_spec`` (e.g. ``activation``).
    random_state : int or None
        Seeds the split, the initialisation and the shuffling.

    Attributes
    ----------
    score_ : str
        The score used (``score`` with ``"auto"`` resolved).
    n_neighbors_ : int
        The k of the kNN distance (``n_neighbors`` with ``"auto"`` resolved).
    train_codes_, train_errors_ : ndarray (m, k), (m,)
        Codes and reconstruction errors of the m training rows (not the held-out ones): the
        reference set of the kNN scores.
    decision_scores_ : ndarray (n,), float64
        Scores of the training rows (kNN distances leave each row itself out).
    threshold_ : float
    labels_ : ndarray (n,) of {0, 1}
        ``decision_scores_ > threshold_``.
    model_ : aekit.models.Autoencoder
    n_components_ : int
    val_scores_ : ndarray (m,), float64
        Scores of the held-out normal rows (empty without a held-out split).
    history_ : list of dict
    n_features_in_ : int

    References
    ----------
    Y. Zhao, Z. Nasrullah, Z. Li, "PyOD", JMLR 20 (2019) (interface); M. Sakurada, T. Yairi,
    "Anomaly detection using autoencoders with nonlinear dimensionality reduction", MLSDA
    2014 (reconstruction error); F. Angiulli, C. Pizzuti, "Fast outlier detection in high
    dimensional spaces", PKDD 2002 (mean distance to k neighbours); C. C. Aggarwal,
    *Outlier Analysis*, 2nd ed. (2017), ch. 4 (k and masking by clustered outliers);
    B. Zong et al., "Deep autoencoding Gaussian mixture model for unsupervised anomaly
    detection", ICLR 2018, §3.1 (code and reconstruction error as joint features);
    L. Bergman, N. Cohen, Y. Hoshen, "Deep nearest neighbor
    anomaly detection", arXiv:2002.10445 (kNN in feature space); S. Bates et al., "Testing
    for outliers with conformal p-values", Ann. Statist. 51 (2023) (FPR threshold).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 8))
    >>> det = AnomalyDetector(n_components=3, max_iter=2, random_state=0).fit(X)
    >>> det.predict(X).mean()  # contamination=0.1 flags 10 % of the training data
    0.1
    """

    def __init__(self, model: str = "residual", *, n_components: int | float | None = None,
                 hidden_layer_sizes: Sequence[int] = (256,), score: str = "auto",
                 recon: str = "mse", residual_sigma: float | str | None = "auto",
                 energy_exponent: float = 0.0, n_neighbors: int | str = "auto",
                 contamination: float = 0.1,
                 threshold: str | float = "contamination", target_fpr: float = 0.05,
                 validation_fraction: float = 0.1, standardize: bool | str = "auto",
                 constant_columns: str = "error", image_shape: Sequence[int] | None = None,
                 loss: str = "mse", max_iter: int = 30, batch_size: int = 128,
                 learning_rate: float = 1e-3, early_stopping: bool = True,
                 n_iter_no_change: int = 5, model_params: dict | None = None,
                 random_state: int | None = None, **old: Any):
        if old:  # names before issue 16 (not in the signature scikit-learn sees)
            from ..schema import pop_renamed

            v = pop_renamed("aekit.anomaly.AnomalyDetector", old,
                            {"hidden_layer_sizes": hidden_layer_sizes, "max_iter": max_iter,
                             "learning_rate": learning_rate},
                            {"hidden_layer_sizes": (256,), "max_iter": 30,
                             "learning_rate": 1e-3})
            hidden_layer_sizes, max_iter, learning_rate = (
                v["hidden_layer_sizes"], v["max_iter"], v["learning_rate"])
        self.model = model
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.score = score
        self.recon = recon
        self.residual_sigma = residual_sigma
        self.energy_exponent = energy_exponent
        self.n_neighbors = n_neighbors
        self.contamination = contamination
        self.threshold = threshold
        self.target_fpr = target_fpr
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.constant_columns = constant_columns
        self.image_shape = image_shape
        self.loss = loss
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.model_params = model_params
        self.random_state = random_state

    # scikit-learn reads the parameters from the signature: the old names (``**old``) are
    # accepted by __init__ but are not parameters
    __init__.__signature__ = _signature_without_var_keyword(__init__)

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        from ..models import MODELS, Autoencoder

        if isinstance(self.model, Autoencoder):
            return self._check_rest()
        if not isinstance(self.model, str) or (self.model != "pca" and
                                               self.model not in MODELS):
            raise ValueError(f"model must be 'pca', one of {sorted(MODELS)} or an "
                             f"aekit.models.Autoencoder instance, got {self.model!r}")
        self._check_rest()

    def _check_rest(self) -> None:
        if self.score != "auto" and self.score not in SCORES:
            raise ValueError(f"score must be 'auto' or one of {SCORES}, got {self.score!r}")
        if self.recon not in RECON_SCORES:
            raise ValueError(f"recon must be one of {RECON_SCORES}, got {self.recon!r}")
        check_contamination(self.contamination)
        rs = self.residual_sigma
        if not (rs is None or rs == "auto" or (isinstance(rs, (int, float, np.number))
                                               and not isinstance(rs, bool) and rs > 0)):
            raise ValueError(f"residual_sigma must be > 0, None or 'auto', got {rs!r}")
        check_energy_exponent(self.energy_exponent)
        th = self.threshold
        if isinstance(th, str):
            if th not in THRESHOLDS:
                raise ValueError(f"threshold must be one of {THRESHOLDS} or a number, got {th!r}")
        elif isinstance(th, bool) or not isinstance(th, (int, float, np.number)) \
                or not math.isfinite(float(th)):
            raise ValueError(f"threshold must be one of {THRESHOLDS} or a finite number, got "
                             f"{th!r}")
        if not 0.0 < float(self.target_fpr) < 1.0:
            raise ValueError(f"target_fpr must be in (0, 1), got {self.target_fpr}")
        if not 0.0 <= float(self.validation_fraction) <= 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5], got "
                             f"{self.validation_fraction}")
        if th == "fpr" and float(self.validation_fraction) == 0.0:
            raise ValueError("threshold='fpr' needs held-out normal data: validation_fraction "
                             "must be > 0")
        nn_ = self.n_neighbors
        if not (isinstance(nn_, str) and nn_ == "auto") and (
                isinstance(nn_, bool) or not isinstance(nn_, (int, np.integer)) or nn_ < 1):
            raise ValueError(f"n_neighbors must be an int >= 1 or 'auto', got "
                             f"{self.n_neighbors!r}")
        nc = self.n_components
        if nc is not None and (isinstance(nc, bool) or not isinstance(nc, (int, float, np.number))
                               or (isinstance(nc, (float, np.floating)) and not 0 < nc < 1)
                               or (isinstance(nc, (int, np.integer)) and nc < 1)):
            raise ValueError(f"n_components must be an int >= 1, a float in (0, 1) or None, "
                             f"got {nc!r}")
        if self.standardize not in (True, False, "auto"):
            raise ValueError(f"standardize must be True, False or 'auto', got "
                             f"{self.standardize!r}")
        if self.constant_columns not in ("error", "ignore"):
            raise ValueError(f"constant_columns must be 'error' or 'ignore', got "
                             f"{self.constant_columns!r}")
        if self.loss not in ("mse", "bce"):
            raise ValueError(f"loss must be 'mse' or 'bce', got {self.loss!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) \
                or self.max_iter < 0:
            raise ValueError(f"max_iter must be an int >= 0, got {self.max_iter!r}")
        self._patience()
        if isinstance(self.n_iter_no_change, bool) or not isinstance(
                self.n_iter_no_change, (int, np.integer)) or self.n_iter_no_change < 1:
            raise ValueError(f"n_iter_no_change must be an int >= 1, got "
                             f"{self.n_iter_no_change!r}")

    def _patience(self) -> int | None:
        """Early-stopping patience in epochs (None: off). ``early_stopping`` given as an int
        (the patience, before issue 16) or None still works, with a FutureWarning."""
        es = self.early_stopping
        if isinstance(es, (bool, np.bool_)):
            return int(self.n_iter_no_change) if es else None
        if es is None or isinstance(es, (int, np.integer)):
            from ..schema import warn_renamed

            new = "early_stopping=False" if es is None else \
                f"early_stopping=True, n_iter_no_change={int(es)}"
            warn_renamed(f"early_stopping={es!r}", new, "AnomalyDetector", stacklevel=4)
            if es is None:
                return None
            if es < 1:
                raise ValueError(f"early_stopping (the old patience) must be >= 1, got {es!r}")
            return int(es)
        raise ValueError(f"early_stopping must be True or False, got {es!r}")

    def _images_in(self, A: np.ndarray, name: str) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """Rows (n, d) and the image shape (c, H, W) or None."""
        if A.ndim == 3:
            shape = (1, A.shape[1], A.shape[2])
        elif A.ndim == 4:
            shape = tuple(int(s) for s in A.shape[1:])
        elif A.ndim == 2:
            shape = None
        else:
            raise ValueError(f"{name} must be 2-D rows (n, d) or images (n, H, W) / "
                             f"(n, c, H, W), got shape {A.shape}")
        if self.image_shape is not None:
            s = tuple(int(v) for v in self.image_shape)
            s = (1, *s) if len(s) == 2 else s
            if len(s) != 3 or min(s) < 1:
                raise ValueError(f"image_shape must be (c, H, W) or (H, W), got "
                                 f"{self.image_shape}")
            if shape is not None and shape != s:
                raise ValueError(f"{name} has images of shape {shape}, but image_shape is {s}")
            shape = s
        rows = A.reshape(len(A), -1)  # (n, c, H, W) -> (n, c*H*W)
        if shape is not None and int(np.prod(shape)) != rows.shape[1]:
            raise ValueError(f"{name} rows have {rows.shape[1]} values, image_shape {shape} "
                             f"needs {int(np.prod(shape))}")
        return rows, shape

    def _check_X(self, X: Any, *, fitting: bool) -> np.ndarray:
        name = "X"
        A = _as_2d_float(X, name)
        rows, shape = self._images_in(A, name)
        if len(rows) == 0:
            raise ValueError(f"{name} has 0 samples (shape {A.shape}); at least one is "
                             "required")
        if rows.shape[1] == 0:
            raise ValueError(f"{name} has 0 features (shape {A.shape}); at least one is "
                             "required")
        bad = ~np.isfinite(rows)
        if bad.any():
            cols = np.flatnonzero(bad.any(0))
            all_nan = np.flatnonzero(bad.all(0))
            if len(all_nan):
                raise ValueError(f"{name} columns {all_nan[:10].tolist()} are all NaN/inf; "
                                 "drop them")
            raise ValueError(f"{name} contains NaN or infinity in columns "
                             f"{cols[:10].tolist()} ({int(bad.sum())} values); impute or "
                             "drop them")
        if not fitting:
            if shape is not None and self.image_shape_ is not None \
                    and tuple(shape) != tuple(self.image_shape_):
                raise ValueError(f"X has images of shape {shape}, the detector was fitted on "
                                 f"{tuple(self.image_shape_)}")
            if rows.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {rows.shape[1]} features, but AnomalyDetector is "
                                 f"expecting {self.n_features_in_} features as input")
            if shape is not None and self.image_shape_ is not None \
                    and tuple(shape) != tuple(self.image_shape_):
                raise ValueError(f"X has images of shape {shape}, the detector was fitted on "
                                 f"{tuple(self.image_shape_)}")
        else:
            self._fit_shape = shape
        return rows

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> AnomalyDetector:
        """Fit on ``X`` (n, d) rows or (n, [c,] H, W) images; ``y`` is ignored
        (unsupervised). Returns self."""
        self._check_params()
        rows = self._check_X(X, fitting=True)
        shape = self._fit_shape
        n, d = rows.shape
        self.n_features_in_ = d
        self.image_shape_ = list(shape) if shape is not None else None
        if self.recon == "ssim" and shape is None:
            raise ValueError("recon='ssim' needs images: pass image_shape (c, H, W) or image "
                             "input (n, H, W) / (n, c, H, W)")
        self._residual_sigma()  # refused for rows before any training
        if float(self.energy_exponent) and self.recon != "mse":
            raise ValueError(f"energy_exponent applies to recon='mse' only, got recon="
                             f"{self.recon!r} (or energy_exponent=0)")
        if self.recon == "bce" and (rows.min() < 0 or rows.max() > 1):
            raise ValueError("recon='bce' needs data in [0, 1]; got values in "
                             f"[{rows.min():.3g}, {rows.max():.3g}] (use recon='mse')")
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        n_val = int(round(float(self.validation_fraction) * n))
        if self.validation_fraction > 0 and n - n_val < 2:
            raise ValueError(f"n_samples={n} is too few to hold out validation_fraction="
                             f"{self.validation_fraction}; need at least 2 training rows")
        if n < 2:
            raise ValueError(f"n_samples={n}: at least 2 samples are required to fit")
        perm = rng.permutation(n) if n_val else np.arange(n)
        val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        std = self.standardize if self.standardize != "auto" else shape is None
        tr = rows[tr_idx]
        self.mean_ = tr.mean(0) if std else np.zeros(d)
        scale = tr.std(0) if std else np.ones(d)
        const = scale <= 1e-12 * np.maximum(1.0, np.abs(self.mean_))
        if std and const.any():
            if self.constant_columns == "error":
                raise ValueError(
                    f"X columns {np.flatnonzero(const)[:10].tolist()} are constant in the "
                    "training rows and cannot be standardised; drop them, or pass "
                    "constant_columns='ignore' (or standardize=False; for flattened images "
                    "pass image_shape, which turns standardisation off)")
            scale = np.where(const, 1.0, scale)
        self.scale_ = scale
        Xs = ((rows - self.mean_) / self.scale_).astype(np.float32)
        Xtr, Xval = Xs[tr_idx], Xs[val_idx]
        self.score_ = self._resolve_score(shape)
        self.n_components_ = self._resolve_k(Xtr)
        self.model_ = self._build(Xtr)
        self.history_ = self._train(Xtr, Xval)
        # references: training codes (kNN), held-out scores (rank normalisation, FPR)
        Z_tr, e_tr = self._parts(Xtr)
        self.train_codes_ = Z_tr
        self.train_errors_ = e_tr
        self.n_neighbors_ = self._resolve_neighbors(len(Z_tr))
        need_knn = self.score_ != "recon"
        Q_tr = self._knn_space(Z_tr, e_tr)
        k_tr = knn_distance(Q_tr, Q_tr, self._n_neighbors(len(Z_tr), True),
                            exclude_self=True) if need_knn else None
        if n_val:
            Z_v, e_v = self._parts(Xval)
            k_v = knn_distance(self._knn_space(Z_v, e_v), Q_tr,
                               self._n_neighbors(len(Z_tr), False)) if need_knn else None
        else:
            e_v, k_v = e_tr, k_tr
        self.recon_ref_ = np.sort(e_v)
        self.knn_ref_ = np.sort(k_v) if need_knn else np.zeros(0)
        s = np.empty(n)
        s[tr_idx] = self._combine(e_tr, k_tr)
        self.val_scores_ = self._combine(e_v, k_v) if n_val else np.zeros(0)
        if n_val:
            s[val_idx] = self.val_scores_
        self.decision_scores_ = s
        self.val_index_ = val_idx
        self._set_threshold_from_params()
        return self

    def _resolve_score(self, image_shape: Any) -> str:
        if self.score != "auto":
            return str(self.score)
        return "recon" if image_shape is not None else "joint"

    def _knn_space(self, Z: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Rows of the kNN score's space: the codes (n, k), or for ``"joint"`` the codes
        and ``√(d · e)`` (n, k + 1)."""
        if self.score_ != "joint":
            return Z
        r = np.sqrt(np.maximum(np.asarray(e, dtype=np.float64), 0.0) * self.n_features_in_)
        return np.hstack([Z, r[:, None]])

    def _resolve_neighbors(self, m: int) -> int:
        """k of the kNN distance for m reference codes: the parameter, or for "auto"
        ``max(1, ⌈contamination · m⌉)``."""
        if isinstance(self.n_neighbors, str):
            return max(1, math.ceil(float(self.contamination) * m - 1e-9))
        return int(self.n_neighbors)

    def _n_neighbors(self, m: int, loo: bool) -> int:
        return max(1, min(int(self.n_neighbors_), m - int(loo)))

    def _resolve_k(self, Xtr: np.ndarray) -> int:
        n, d = Xtr.shape
        cap = max(1, min(d, n) - 1)
        nc = self.n_components
        if nc is None:
            k = min(32, math.ceil(d / 2))
        elif isinstance(nc, (float, np.floating)):
            # smallest k with explained variance >= nc (PCA of the training rows)
            Xc = Xtr.astype(np.float64) - Xtr.mean(0)
            s2 = np.linalg.svd(Xc, compute_uv=False) ** 2
            frac = np.cumsum(s2) / max(s2.sum(), 1e-300)
            k = int(np.searchsorted(frac, float(nc)) + 1)
        else:
            k = int(nc)
        return int(max(1, min(k, cap)))

    def _build(self, Xtr: np.ndarray):
        from ..models import MODELS

        torch.manual_seed(0 if self.random_state is None else int(self.random_state))
        k, d = self.n_components_, self.n_features_in_
        if not isinstance(self.model, str):  # an unfitted model given as a template
            import copy

            m = copy.deepcopy(self.model).float()
            if getattr(m, "n_features", d) != d:
                raise ValueError(f"model has n_features={m.n_features}, X has {d} features")
            if hasattr(m, "init_pca"):
                m.init_pca(torch.as_tensor(Xtr))
            return m
        name, hidden = self.model, list(self.hidden_layer_sizes)
        if name == "pca":
            name, hidden = "residual", []
        opts = dict(self.model_params or {})
        try:
            m = MODELS[name].from_spec(n_features=d, code_size=k, hidden=hidden,
                                       image_shape=self.image_shape_, **opts)
        except TypeError as e:
            raise ValueError(f"model {self.model!r}: {e}") from None
        m = m.float()
        if hasattr(m, "init_pca"):
            m.init_pca(torch.as_tensor(Xtr))
        return m

    def _train(self, Xtr: np.ndarray, Xval: np.ndarray) -> list[dict]:
        from ..objectives import make_objective
        from ..train import fit as fit_model

        if (isinstance(self.model, str) and self.model == "pca") or int(self.max_iter) == 0:
            self.model_.eval()
            return []
        if self.loss == "bce" and (Xtr.min() < 0 or Xtr.max() > 1):
            raise ValueError("loss='bce' needs data in [0, 1] after standardisation; use "
                             "loss='mse' or standardize=False")
        val = Xval if len(Xval) else None
        has_start = hasattr(self.model_, "init_pca") and val is not None
        kw = {"max_iter": int(self.max_iter), "learning_rate": float(self.learning_rate),
              "random_state": 0 if self.random_state is None else int(self.random_state)}
        hist = fit_model(self.model_, make_objective(self.loss), Xtr, val=val,
                         batch_size=int(self.batch_size),
                         early_stopping=self._patience() if val is not None else None,
                         monitor="val_loss" if val is not None else "train_loss",
                         include_start=has_start, restore_best=True,
                         progress=False, handle_signals=False, **kw)
        self.model_.eval()
        return [dict(r) for r in hist.records] if hasattr(hist, "records") else list(hist)

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def _forward(self, Xs: np.ndarray, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Codes (n, k) and reconstructions (n, d) of standardised rows, float64."""
        Z, R = [], []
        self.model_.eval()
        for i in range(0, len(Xs), batch):
            out = self.model_(torch.as_tensor(Xs[i:i + batch], dtype=torch.float32))
            z = out.code
            Z.append(z.reshape(len(z), -1).double().numpy())
            R.append(out.reconstruction.reshape(len(z), -1).double().numpy())
        return np.concatenate(Z), np.concatenate(R)

    def _parts(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes and per-sample reconstruction errors of standardised rows."""
        Z, R = self._forward(Xs)
        rs = self._residual_sigma()
        e = error_maps(Xs.astype(np.float64), R, self.recon,
                       image_shape=self.image_shape_ if (self.recon == "ssim" or rs)
                       else None, per_feature=True, residual_sigma=rs,
                       energy_exponent=float(self.energy_exponent)
                       if self.recon == "mse" else 0.0)
        return Z, e.reshape(len(e), -1).mean(1)

    def _residual_sigma(self) -> float | None:
        rs = self.residual_sigma
        if rs == "auto":
            return 1.0 if (self.image_shape_ is not None and self.recon == "mse") else None
        if rs is not None and self.image_shape_ is None:
            raise ValueError("residual_sigma needs images: pass image_shape or image input "
                             "(or residual_sigma=None)")
        return None if rs is None else float(rs)

    def _combine(self, e: np.ndarray, k: np.ndarray | None) -> np.ndarray:
        if self.score_ == "recon":
            return np.asarray(e, dtype=np.float64)
        if self.score_ in ("knn", "joint"):
            return np.asarray(k, dtype=np.float64)
        return 0.5 * (RankNormalizer(self.recon_ref_)(e) + RankNormalizer(self.knn_ref_)(k))

    def _check_fitted(self) -> None:
        from sklearn.exceptions import NotFittedError

        if not hasattr(self, "model_"):
            raise NotFittedError("This AnomalyDetector instance is not fitted yet. Call 'fit' "
                                 "with appropriate arguments before using this estimator.")

    def _standardised(self, X: Any) -> np.ndarray:
        self._check_fitted()
        rows = self._check_X(X, fitting=False)
        return ((rows - self.mean_) / self.scale_).astype(np.float32)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X`` (n,), float64; higher = more anomalous."""
        Xs = self._standardised(X)
        Z, e = self._parts(Xs)
        k = knn_distance(self._knn_space(Z, e),
                         self._knn_space(self.train_codes_, self.train_errors_),
                         self._n_neighbors(len(self.train_codes_), False)) \
            if self.score_ != "recon" else None
        return self._combine(e, k)

    def codes(self, X: Any) -> np.ndarray:
        """Codes ``f(x)`` of ``X`` (n, k), float64: the space of the kNN score."""
        Z, _ = self._forward(self._standardised(X))
        return Z

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's sign convention: ``−decision_function(X)`` (higher = more normal)."""
        return -self.decision_function(X)

    def predict(self, X: Any, return_confidence: bool = False):
        """1 = anomaly (score > ``threshold_``), 0 = normal; int64 (n,). With
        ``return_confidence`` also :meth:`predict_confidence`."""
        s = self.decision_function(X)
        labels = (s > self.threshold_).astype(np.int64)
        if return_confidence:
            return labels, self._confidence(s, labels)
        return labels

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X, y).labels_

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """``[P(normal), P(anomaly)]`` (n, 2), PyOD's conversions of the score.

        ``"linear"``: ``p = clip((s − min s_train) / (max s_train − min s_train), 0, 1)``;
        ``"unify"``: ``p = max(0, erf((s − μ_train) / (σ_train √2)))`` (Kriegel et al.,
        "Interpreting and unifying outlier scores", SDM 2011, §4).
        """
        self._check_fitted()
        s = self.decision_function(X)
        ref = self.decision_scores_
        if method == "linear":
            lo, hi = float(ref.min()), float(ref.max())
            p = np.clip((s - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
        elif method == "unify":
            from scipy.special import erf

            sd = float(ref.std()) or 1.0
            p = np.clip(erf((s - ref.mean()) / (sd * np.sqrt(2.0))), 0.0, 1.0)
        else:
            raise ValueError(f"method must be 'linear' or 'unify', got {method!r}")
        return np.column_stack([1.0 - p, p])

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence in each prediction, in [0, 1] (ExCeeD).

        With ``n`` training scores, ``c`` the contamination and ``k(s)`` the number of
        training scores ≤ s, the posterior outlier probability is ``p = (1 + k)/(2 + n)`` and
        the confidence of an "anomaly" call ``1 − BinomCDF(n − ⌊nc⌋; n, p)`` (one minus that
        for a "normal" call).

        References
        ----------
        L. Perini, V. Vercruyssen, J. Davis, "Quantifying the confidence of anomaly
        detectors in their example-wise predictions", ECML-PKDD 2020, §3.
        """
        s = self.decision_function(X)
        return self._confidence(s, (s > self.threshold_).astype(np.int64))

    def _confidence(self, s: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from scipy.stats import binom

        ref = np.sort(self.decision_scores_)
        n = len(ref)
        k = np.searchsorted(ref, s, side="right")
        p = (1.0 + k) / (2.0 + n)
        conf = 1.0 - binom.cdf(n - int(n * float(self.contamination)), n, p)
        return np.where(labels == 1, conf, 1.0 - conf)

    # ------------------------------------------------------------------ thresholds
    def _set_threshold_from_params(self) -> None:
        th = self.threshold
        if th == "contamination":
            t = contamination_threshold(self.decision_scores_, self.contamination)
        elif th == "fpr":
            t = fpr_threshold(self.val_scores_, self.target_fpr)
        else:
            t = float(th)
        self._apply_threshold(t)

    def _apply_threshold(self, t: float) -> None:
        self.threshold_ = float(t)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    def fit_threshold(self, X: Any, y: Any = None, *, method: str = "best_f1",
                      target_fpr: float | None = None) -> AnomalyDetector:
        """Re-set ``threshold_`` from new data without refitting the model.

        ``"best_f1"``: the threshold of best F1 on labelled ``(X, y)``
        (:func:`~aekit.anomaly.thresholds.best_f1_threshold`); ``"fpr"``: ``X`` is fresh
        normal data, conformal threshold for ``target_fpr`` (default the parameter's);
        ``"contamination"``: the ``1 − contamination`` quantile of ``X``'s scores.
        ``labels_`` is updated. Returns self.
        """
        self._check_fitted()
        s = self.decision_function(X)
        if method == "best_f1":
            if y is None:
                raise ValueError("method='best_f1' needs labels y (1 = anomaly)")
            t, _ = best_f1_threshold(y, s)
        elif method == "fpr":
            t = fpr_threshold(s, self.target_fpr if target_fpr is None else target_fpr)
        elif method == "contamination":
            t = contamination_threshold(s, self.contamination)
        else:
            raise ValueError(f"method must be 'best_f1', 'fpr' or 'contamination', got "
                             f"{method!r}")
        self._apply_threshold(t)
        return self

    # ------------------------------------------------------------------ explanations
    def reconstruct(self, X: Any) -> np.ndarray:
        """Reconstructions of ``X`` in the input's units, (n, d) float64."""
        Xs = self._standardised(X)
        _, R = self._forward(Xs)
        return R * self.scale_ + self.mean_

    def error_maps(self, X: Any, *, sigma: float | None = None, kind: str | None = None
                   ) -> np.ndarray:
        """Where each sample is wrong: per-pixel maps (n, H, W) for images, per-feature maps
        (n, d) for rows (in standardised units), with optional Gaussian smoothing ``sigma``
        (pixels) of the map. ``kind`` defaults to ``recon``; an ``"mse"`` map uses the
        detector's ``residual_sigma`` and ``energy_exponent`` as the score does, so the
        map's mean is the score. See :func:`aekit.anomaly.error_maps`."""
        Xs = self._standardised(X)
        _, R = self._forward(Xs)
        kind = kind or self.recon
        mse = kind == "mse"
        return error_maps(Xs.astype(np.float64), R, kind, image_shape=self.image_shape_,
                          sigma=sigma, residual_sigma=self._residual_sigma() if mse else None,
                          energy_exponent=float(self.energy_exponent) if mse else 0.0)

    def top_features(self, X: Any, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` features with the largest standardised squared error per row:
        ``(index, contribution)``, both (n, k)."""
        Xs = self._standardised(X)
        _, R = self._forward(Xs)
        return top_features(Xs.astype(np.float64), R, k)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted detector to ``path`` (a ``.safetensors`` file, atomically): the
        model's weights, the reference arrays and a JSON header with the parameters. No
        pickle."""
        from ..io import save_tensor_file

        self._check_fitted()
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        for name in ("mean_", "scale_", "train_codes_", "train_errors_", "recon_ref_",
                     "knn_ref_", "decision_scores_", "val_scores_"):
            tensors[name] = torch.as_tensor(np.ascontiguousarray(getattr(self, name)))
        params = self.get_params()
        params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
        if not isinstance(params["model"], str):  # a template instance: stored by its name
            params["model"] = self.model_.name
        meta = {"params": params, "model_name": self.model_.name,
                "model_config": self.model_.config(), "n_components_": self.n_components_,
                "n_features_in_": self.n_features_in_, "image_shape_": self.image_shape_,
                "threshold_": self.threshold_, "score_": self.score_,
                "n_neighbors_": self.n_neighbors_}
        p = Path(path)
        save_tensor_file(p, tensors, DETECTOR_FORMAT, json.loads(json.dumps(meta)))
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnomalyDetector:
        """Read a detector written by :meth:`save` (``FileFormatError`` for a foreign,
        corrupt or pickled file)."""
        from ..io import FileFormatError, load_tensor_file
        from ..models import MODELS

        tensors, doc = load_tensor_file(path, DETECTOR_FORMAT)
        try:
            det = cls(**doc["params"])
            det.model_ = MODELS[doc["model_name"]](**doc["model_config"])
            det.model_.load_state_dict({k[6:]: v for k, v in tensors.items()
                                        if k.startswith("model.")})
            det.model_.eval()
            for name in ("mean_", "scale_", "train_codes_", "recon_ref_", "knn_ref_",
                         "decision_scores_", "val_scores_"):
                setattr(det, name, tensors[name].numpy().astype(np.float64))
            # files written before the "joint" score have no training errors (unused there)
            det.train_errors_ = tensors["train_errors_"].numpy().astype(np.float64) \
                if "train_errors_" in tensors else np.zeros(len(det.train_codes_))
            det.n_components_ = int(doc["n_components_"])
            det.n_features_in_ = int(doc["n_features_in_"])
            det.image_shape_ = doc["image_shape_"]
            # files written before "auto" scores: the parameters were the resolved values
            det.score_ = str(doc.get("score_", doc["params"]["score"]))
            det.n_neighbors_ = int(doc.get("n_neighbors_", doc["params"]["n_neighbors"]))
            det._apply_threshold(float(doc["threshold_"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise FileFormatError(f"{path}: not a valid detector file ({type(e).__name__}: "
                                  f"{e})", path=path, expected="a file written by "
                                  "AnomalyDetector.save") from None
        return det
