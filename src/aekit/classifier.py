"""scikit-learn classifier on an autoencoder's encoder: :class:`AutoencoderClassifier`.

Unsupervised pretraining, then supervised fine-tuning: train an autoencoder on X (or take one
already trained, e.g. on another dataset), drop its decoder, put a softmax layer on the code and
train the whole network (or only the softmax layer, ``freeze_encoder=True``) with cross-entropy.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .corruption import Masking
from .estimators import (
    ESTIMATOR_CLASSES,
    params_from_header,
    params_to_header,
    rebuild_model,
    to_plain,
)
from .io import FileFormatError, expect, pack_tree, save_tensor_file, unpack_tree
from .models import Autoencoder as AEModel
from .models import ConvAE, DenseAE, LinearAE
from .objectives import FGSM, VAT, Objective, make_objective
from .train import fit as _fit
from .train.pretrain import pretrain_layers, stack_into_deep_ae
from .validation import check_choice, check_float, check_int

__all__ = ["PRETRAIN", "AutoencoderClassifier", "EncoderClassifier", "classifier_objective"]

#: Fitted attributes :meth:`AutoencoderClassifier.save` stores in the JSON header.
_FITTED = ("loss_curve_", "validation_scores_", "n_iter_", "n_features_in_")

#: How :class:`AutoencoderClassifier` initialises its encoder when none is given.
PRETRAIN = ("ae", "layerwise", "none")


class EncoderClassifier(nn.Module):
    """An autoencoder's encoder followed by a linear softmax layer.

    ``p(y = c | x) = softmax(V D_p(f(D_q(x))) + a)_c`` with the code ``f(x)`` (n, k),
    ``V`` (C, k), and ``D_q``, ``D_p`` dropout on the input and on the code (identities in
    eval mode, and by default). ``forward`` returns the logits (n, C).

    Parameters
    ----------
    encoder : Autoencoder
        Only its ``encode`` is used; :class:`DenseAE`, :class:`LinearAE` and :class:`ConvAE`
        decoders are removed, those of other models receive no gradient.
    n_classes : int
        C.
    dropout : float
        p, the dropout rate on the code (Srivastava et al. 2014), in [0, 1).
    input_dropout : float
        q, the dropout rate on the input, in [0, 1).

    References
    ----------
    Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise training of deep networks",
    NIPS 2006; Erhan et al., "Why does unsupervised pre-training help deep learning?",
    JMLR 2010.
    """

    def __init__(self, encoder: AEModel, n_classes: int, *, dropout: float = 0.0,
                 input_dropout: float = 0.0):
        super().__init__()
        p_code = check_float("dropout", dropout, 0.0, 1.0, hi_open=True)
        p_in = check_float("input_dropout", input_dropout, 0.0, 1.0, hi_open=True)
        _drop_decoder(encoder)
        self.encoder = encoder
        self.input_dropout, self.dropout = nn.Dropout(p_in), nn.Dropout(p_code)
        self.head = nn.Linear(int(encoder.n_components), int(n_classes))
        p = next(encoder.parameters(), None)
        if p is not None:
            self.head.to(dtype=p.dtype, device=p.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encoder.encode(self.input_dropout(x))))


def _drop_decoder(model: AEModel) -> None:
    """Remove the decoder where the model's layout is known (it is never used here)."""
    if isinstance(model, DenseAE):
        model.dec, model.dec_act, model.dec_bn = nn.ModuleList(), nn.ModuleList(), \
            nn.ModuleList()
    elif isinstance(model, LinearAE):
        model.decoder = nn.Identity()
    elif isinstance(model, ConvAE):
        model.dec, model.dec_act, model.dec_bn = nn.ModuleList(), nn.ModuleList(), \
            nn.ModuleList()
        model.from_code = nn.Identity()


def classifier_objective(adversarial_eps: float = 0.0, vat_eps: float = 0.0,
                         clip: tuple[float, float] | None = (0.0, 1.0)) -> Objective:
    """Cross-entropy, plus :class:`~aekit.objectives.FGSM` (α = 0.5) when ``adversarial_eps``
    > 0 or :class:`~aekit.objectives.VAT` (α = 1, one power iteration) when ``vat_eps`` > 0.

    The one place the fine-tuning objective is chosen (the estimator, the CLI and the
    classification benchmark use it).
    """
    eps = check_float("adversarial_eps", adversarial_eps, 0)
    v = check_float("vat_eps", vat_eps, 0)
    if eps > 0 and v > 0:
        raise ValueError("adversarial_eps and vat_eps are alternatives; set one of them "
                         f"to 0 (got {adversarial_eps} and {vat_eps})")
    lo, hi = (None, None) if clip is None else clip
    terms = [FGSM(eps, 0.5, lo, hi)] if eps > 0 else [VAT(v)] if v > 0 else []
    return Objective("cross_entropy", terms)


class AutoencoderClassifier(ClassifierMixin, BaseEstimator):
    """Classifier built from a pretrained autoencoder: encoder + softmax, fine-tuned.

    1. Encoder: ``encoder`` if given (an aekit autoencoder model or a fitted
       :class:`aekit.Autoencoder`, deep-copied), else a :class:`DenseAE`
       ``[d, *hidden_layer_sizes, n_components]`` pretrained on X without labels
       (``pretrain="ae"``: the whole AE with :func:`aekit.fit`; ``"layerwise"``: greedy
       layer-wise, :func:`aekit.train.pretrain.pretrain_layers`; ``"none"``: random init,
       i.e. a plain MLP). The reconstruction loss is cross-entropy when X lies in [0, 1], else
       squared error; ``pretrain_noise`` > 0 makes it a denoising AE (masking noise ν).
    2. The decoder is dropped and a linear layer with a softmax added:
       ``p(y | x) = softmax(V f(x) + a)``.
    3. Fine-tuning minimises ``−(1/n) Σ_i log p(y_i | x_i)`` with AdamW (mini-batches,
       seeded shuffling) over all weights, or over ``V, a`` only with ``freeze_encoder=True``
       (the codes are then computed once, in eval mode).

    Parameters
    ----------
    n_components : int, default=32
        Code size k of the autoencoder built here (ignored when ``encoder`` is given).
    hidden_layer_sizes : tuple of int, default=(128,)
        Encoder hidden sizes of the autoencoder built here.
    activation : str, default="elu"
    code_activation : str, default="linear"
    encoder : aekit model or fitted aekit.Autoencoder, optional
        A trained autoencoder whose encoder is reused (transfer learning). Its input size
        must equal X's number of features. It is copied, never modified. Pass the model
        (``est.model_``) rather than the estimator if the classifier will be cloned (sklearn's
        ``clone`` returns unfitted copies of estimator parameters).
    pretrain : {"ae", "layerwise", "none"}, default="ae"
    pretrain_max_iter : int, default=20
        Epochs of unsupervised pretraining (per layer for ``"layerwise"``).
    pretrain_noise : float, default=0.0
        Masking-noise level ν in [0, 1) for denoising pretraining.
    freeze_encoder : bool, default=False
        Train only the softmax layer.
    dropout : float, default=0.0
        Dropout in the hidden layers of the autoencoder built here.
    max_iter : int, default=50
        Fine-tuning epochs.
    learning_rate : float, default=1e-3
        Adam(W) step size for pretraining and fine-tuning.
    batch_size : int, default=64
    optimizer_weight_decay : float, default=0.0
        AdamW's decoupled weight decay during fine-tuning (Loshchilov & Hutter, ICLR 2019):
        the optimiser's decay, ``optimizer_weight_decay`` everywhere in aekit (``weight_decay``
        is the logged objective term of :class:`aekit.Autoencoder` and
        :func:`aekit.make_objective`). Formerly ``weight_decay``; the old keyword still works
        until the next release, with a ``FutureWarning``.
    adversarial_eps : float, default=0.0
        > 0: fine-tune with FGSM adversarial training (:func:`fgsm_loss`, α = 0.5), steps of
        this size in X's units, clipped to [0, 1] when X lies there. Needs
        ``freeze_encoder=False``.
    vat_eps : float, default=0.0
        > 0: fine-tune with virtual adversarial training (:func:`vat_loss`, α = 1, one power
        iteration), perturbations of this L2 norm in X's units. Needs ``freeze_encoder=False``;
        exclusive with ``adversarial_eps``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified by nothing: a seeded random
        split) and stop fine-tuning after ``n_iter_no_change`` epochs without a lower
        validation loss, restoring the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    random_state : int, RandomState or None
        Seeds initialisation, pretraining, shuffling and the validation split.
    verbose : bool, default=False
        Progress bars during pretraining.

    Attributes
    ----------
    classes_ : ndarray, shape (C,)
    n_features_in_ : int
    autoencoder_ : Autoencoder or None
        The (pre)trained autoencoder before fine-tuning, decoder included (None with
        ``pretrain="none"`` and no ``encoder``).
    model_ : EncoderClassifier
        The fine-tuned network.
    loss_curve_ : list of float
        Mean training cross-entropy per epoch (the FGSM objective J̃ when
        ``adversarial_eps`` > 0, cross-entropy plus the VAT penalty when ``vat_eps`` > 0).
    validation_scores_ : list of float
        Validation accuracy per epoch (early stopping only).
    n_iter_ : int
        Fine-tuning epochs run.
    history_ : aekit.train.History or None
        The fine-tuning history: every objective part per epoch (``train_ce``, and
        ``train_fgsm`` / ``train_vat`` with adversarial training; ``val_*`` and
        ``val_accuracy`` with early stopping).

    References
    ----------
    Hinton & Salakhutdinov, Science 2006; Bengio et al., NIPS 2006; Erhan, Bengio, Courville,
    Manzagol, Vincent & Bengio, "Why does unsupervised pre-training help deep learning?",
    JMLR 11, 2010.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> d = load_digits()
    >>> clf = AutoencoderClassifier(max_iter=2, pretrain_max_iter=1, random_state=0)
    >>> clf.fit(d.data / 16, d.target).predict(d.data[:3] / 16).shape
    (3,)
    """

    def __init__(self, n_components=32, *, hidden_layer_sizes=(128,), activation="elu",
                 code_activation="linear", encoder=None, pretrain="ae", pretrain_max_iter=20,
                 pretrain_noise=0.0, freeze_encoder=False, dropout=0.0, max_iter=50,
                 learning_rate=1e-3, batch_size=64, optimizer_weight_decay=0.0,
                 adversarial_eps=0.0, vat_eps=0.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, random_state=None,
                 verbose=False, **old):
        if old:
            from .schema import pop_renamed

            optimizer_weight_decay = pop_renamed(
                "aekit.AutoencoderClassifier", old,
                {"optimizer_weight_decay": optimizer_weight_decay},
                {"optimizer_weight_decay": 0.0})["optimizer_weight_decay"]
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.encoder = encoder
        self.pretrain = pretrain
        self.pretrain_max_iter = pretrain_max_iter
        self.pretrain_noise = pretrain_noise
        self.freeze_encoder = freeze_encoder
        self.dropout = dropout
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.optimizer_weight_decay = optimizer_weight_decay
        self.adversarial_eps = adversarial_eps
        self.vat_eps = vat_eps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    # scikit-learn reads the parameters from the signature: the old name (``**old``) is
    # accepted by __init__ but is not a parameter
    __init__.__signature__ = inspect.signature(__init__).replace(parameters=[
        p for p in inspect.signature(__init__).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD])

    # --- validation -------------------------------------------------------------------------
    def _given_encoder(self, n_features: int) -> AEModel | None:
        enc = self.encoder
        if enc is None:
            return None
        if not isinstance(enc, AEModel):
            model = getattr(enc, "model_", None)
            if not isinstance(model, AEModel):
                raise ValueError("encoder must be an aekit autoencoder model or a fitted "
                                 f"aekit.Autoencoder, got {type(enc).__name__}")
            enc = model
        if enc.n_features != n_features:
            raise ValueError(f"encoder takes {enc.n_features} features, X has {n_features}")
        return copy.deepcopy(enc).float()

    def _check_params(self) -> None:
        check_int("n_components", self.n_components, 1)
        check_int("max_iter", self.max_iter, 0)
        check_int("pretrain_max_iter", self.pretrain_max_iter, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        try:
            hidden = tuple(int(h) for h in (self.hidden_layer_sizes or ()))
        except (TypeError, ValueError):
            raise ValueError("hidden_layer_sizes must be a tuple of ints, got "
                             f"{self.hidden_layer_sizes!r}") from None
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be >= 1, got {self.hidden_layer_sizes}")
        check_choice("pretrain", self.pretrain, PRETRAIN)
        check_float("pretrain_noise", self.pretrain_noise, 0, 1, hi_open=True)
        check_float("learning_rate", self.learning_rate, 0, lo_open=True)
        check_float("optimizer_weight_decay", self.optimizer_weight_decay, 0)
        for name in ("adversarial_eps", "vat_eps"):
            eps = check_float(name, getattr(self, name), 0)
            if eps > 0 and self.freeze_encoder:
                raise ValueError(f"{name} > 0 perturbs the input and needs "
                                 "freeze_encoder=False")
        if float(self.adversarial_eps) > 0 and float(self.vat_eps) > 0:
            raise ValueError("adversarial_eps and vat_eps are alternatives; set one of them "
                             f"to 0 (got {self.adversarial_eps} and {self.vat_eps})")
        check_float("validation_fraction", self.validation_fraction, 0, 1, lo_open=True,
                    hi_open=True)

    # --- pretraining ------------------------------------------------------------------------
    def _pretrained_autoencoder(self, X: np.ndarray, seed: int, unit: bool) -> AEModel | None:
        """The encoder to fine-tune; ``unit``: X lies in [0, 1] (sigmoid output + bce)."""
        given = self._given_encoder(X.shape[1])
        if given is not None:
            return given
        hidden = [int(h) for h in (self.hidden_layer_sizes or ())]
        sizes = [X.shape[1], *hidden, int(self.n_components)]
        output, loss = ("sigmoid", "bce") if unit else ("linear", "mse")
        corruption = Masking(self.pretrain_noise) if self.pretrain_noise > 0 else None
        torch.manual_seed(seed)
        kw = {"batch_size": int(self.batch_size), "learning_rate": float(self.learning_rate),
              "random_state": seed, "progress": bool(self.verbose) and None}
        if self.pretrain == "layerwise" and self.pretrain_max_iter > 0:
            pre = pretrain_layers(sizes, X, activation=self.activation,
                                  code_activation=self.code_activation, output=output,
                                  max_iter=int(self.pretrain_max_iter),
                                  layer_kwargs={"corruption": corruption}, **kw)
            return stack_into_deep_ae(pre.layers, dropout=float(self.dropout))
        ae = DenseAE(sizes, activation=self.activation, code_activation=self.code_activation,
                     output=output, dropout=float(self.dropout))
        if self.pretrain == "none":
            return ae
        if self.pretrain_max_iter > 0:
            _fit(ae, make_objective(loss), X, corruption=corruption,
                 max_iter=int(self.pretrain_max_iter), desc="pretrain", **kw)
        return ae

    # --- scikit-learn API -------------------------------------------------------------------
    def fit(self, X, y):
        """Pretrain (unless an encoder is given) and fine-tune on X (n, d), y (n,). Returns
        self."""
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self._check_params()
        X = np.ascontiguousarray(X, dtype=np.float32)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))

        unit = bool(X.min() >= 0.0 and X.max() <= 1.0)  # pretraining loss and FGSM clip
        ae = self._pretrained_autoencoder(X, seed, unit)
        self.autoencoder_ = copy.deepcopy(ae).eval() if (
            self.encoder is not None or self.pretrain != "none") else None
        torch.manual_seed(seed)
        net = EncoderClassifier(ae, len(self.classes_))
        self.model_ = net

        Xt = torch.from_numpy(X)
        yt = torch.from_numpy(y_idx.astype(np.int64))
        tr, va = np.arange(len(X)), None
        if self.early_stopping and len(X) >= 10:
            perm = np.random.default_rng(seed).permutation(len(X))
            n_val = max(1, int(round(len(X) * float(self.validation_fraction))))
            tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])

        frozen = bool(self.freeze_encoder)
        model = net
        feats = Xt
        if frozen:  # codes computed once, in eval mode: (n, k); only the head trains
            for p in net.encoder.parameters():
                p.requires_grad_(False)
            with torch.no_grad():
                feats = net.encoder.eval().encode(Xt)
                # A linear probe on standardised codes: codes of a briefly trained encoder
                # can have a spread of ~0.1, where a head on raw codes barely moves in a few
                # epochs. The scaling is folded back into the head after training.
                mu, sd = feats[tr].mean(0), feats[tr].std(0).clamp_min(1e-6)
                feats = (feats - mu) / sd
            model = net.head
        objective = classifier_objective(self.adversarial_eps, self.vat_eps,
                                         (0.0, 1.0) if unit else None)
        val = None if va is None else (feats[va], yt[va])

        def accuracy(epoch, record, m):  # validation accuracy, logged with the history
            if val is not None:
                with torch.no_grad():
                    pred = m.eval()(val[0]).argmax(1)
                record["val_accuracy"] = float((pred == val[1]).float().mean())

        if int(self.max_iter) > 0:
            hist = _fit(model, objective, (feats[tr], yt[tr]), val=val,
                        max_iter=int(self.max_iter), batch_size=int(self.batch_size),
                        optimizer="adamw", learning_rate=float(self.learning_rate),
                        optimizer_weight_decay=float(self.optimizer_weight_decay),
                        random_state=seed,
                        early_stopping=int(self.n_iter_no_change) if val is not None else None,
                        monitor="val_ce" if val is not None else None,
                        callbacks=[accuracy], progress=bool(self.verbose) and None,
                        desc="fine-tune")
        else:
            hist = []
        self.loss_curve_ = [float(v) for v in (hist["train_loss"] if len(hist) else [])]
        self.validation_scores_ = [float(v) for v in hist["val_accuracy"]] \
            if len(hist) and val is not None else []
        self.n_iter_ = len(hist)
        self.history_ = hist if len(hist) else None
        if frozen:  # fold the standardisation in: V (z − μ)/σ + a = (V/σ) z + (a − (V/σ) μ)
            with torch.no_grad():
                net.head.weight.div_(sd)
                net.head.bias.sub_(net.head.weight @ mu)
        for p in net.parameters():
            p.requires_grad_(False)
        net.eval()
        return self

    def _logits(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        with torch.no_grad():
            return torch.cat([self.model_.eval()(x[i:i + 4096])
                              for i in range(0, len(x), 4096)])

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``softmax(V f(x) + a)``: (n, d) -> (n, C), columns in
        ``classes_`` order."""
        return torch.softmax(self._logits(X).double(), 1).numpy()

    def predict_log_proba(self, X) -> np.ndarray:
        """Log-probabilities, (n, C)."""
        return torch.log_softmax(self._logits(X).double(), 1).numpy()

    def predict(self, X) -> np.ndarray:
        """Most probable class per sample, (n,)."""
        check_is_fitted(self, "model_")
        return self.classes_[self._logits(X).argmax(1).numpy()]

    @torch.no_grad()
    def encode(self, X) -> np.ndarray:
        """Codes of the fine-tuned encoder, (n, d) -> (n, k) (named so, not ``transform``, to
        keep this a pure classifier for scikit-learn)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        return self.model_.eval().encoder.encode(x).numpy()

    # --- saving and loading -------------------------------------------------------------------
    def save(self, path):
        """Write the fitted classifier to ``path`` (one ``.safetensors`` file, no pickle),
        atomically; :func:`aekit.load_estimator` reads it back and predicts identically.

        Tensors: the fine-tuned encoder and the softmax head (``model.*``) and the pretrained
        autoencoder (``autoencoder.*``, when kept); JSON header: ``get_params()`` (a given
        ``encoder`` is stored as None: its trained weights are in the file), the encoder's
        registry name and constructor arguments, ``classes_`` and the other fitted
        attributes.
        """
        from pathlib import Path

        check_is_fitted(self, "model_")
        enc = self.model_.encoder
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        auto = None
        if self.autoencoder_ is not None:
            tensors.update({f"autoencoder.{k}": v
                            for k, v in self.autoencoder_.state_dict().items()})
            auto = {"model": self.autoencoder_.name, "model_config": self.autoencoder_.config()}
        classes = self.classes_
        fitted = {a: to_plain(getattr(self, a)) for a in _FITTED}
        fitted["classes_"] = {"values": to_plain(classes), "dtype": str(classes.dtype)}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        h = self.history_
        fitted["history"] = None if h is None else {
            "records": to_plain(h.records), "best_epoch": h.best_epoch,
            "stopped_early": bool(h.stopped_early)}
        meta = {"estimator": type(self).__name__, "params": params_to_header(self),
                "model": enc.name, "model_config": enc.config(), "autoencoder": auto,
                "fitted": pack_tree(fitted, "fitted", {})}
        path = Path(path)
        save_tensor_file(path, tensors, "aekit-estimator", meta)
        return path

    @classmethod
    def _from_file(cls, path, tensors, doc):
        from .train import History

        p = doc.get("params")
        if isinstance(p, dict) and "weight_decay" in p:  # a file written before issue 16
            from .schema import warn_renamed

            warn_renamed("weight_decay", "optimizer_weight_decay",
                         f"{path}: AutoencoderClassifier")
            doc = {**doc, "params": {("optimizer_weight_decay" if k == "weight_decay" else k): v
                                     for k, v in p.items()}}
        est = cls(**params_from_header(cls, doc, path))
        fitted = unpack_tree(doc.get("fitted"), {}, where="fitted", path=path)
        expect(fitted, dict, path, "fitted")
        missing = [a for a in (*_FITTED, "classes_", "history") if a not in fitted]
        if missing:
            raise FileFormatError(f"{path}: fitted attributes {missing} are missing", path=path,
                                  field="fitted")
        for a in _FITTED:
            setattr(est, a, fitted[a])
        c = fitted["classes_"]
        expect(c, dict, path, "fitted.classes_")
        try:
            est.classes_ = np.asarray(c["values"], dtype=np.dtype(c["dtype"]))
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{path}: fitted.classes_ is malformed: {e}", path=path,
                                  field="fitted.classes_") from None
        if est.classes_.ndim != 1 or len(est.classes_) < 1:
            raise FileFormatError(f"{path}: fitted.classes_ must be a non-empty list",
                                  path=path, field="fitted.classes_")
        if "feature_names_in_" in fitted:
            est.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        n_classes = len(est.classes_)
        net = rebuild_model(path, doc, tensors,
                             wrap=lambda m: EncoderClassifier(m, n_classes))
        for p in net.parameters():
            p.requires_grad_(False)
        est.model_ = net.eval()
        auto = doc.get("autoencoder")
        est.autoencoder_ = None if auto is None else rebuild_model(
            path, auto if isinstance(auto, dict) else {}, tensors, prefix="autoencoder.")
        hist = fitted["history"]
        est.history_ = None
        if hist is not None:
            expect(hist, dict, path, "fitted.history")
            est.history_ = History()
            try:
                est.history_.load_state_dict(hist)
            except (KeyError, TypeError) as e:
                raise FileFormatError(f"{path}: fitted.history is malformed: {e}", path=path,
                                      field="fitted.history") from None
        return est


ESTIMATOR_CLASSES["AutoencoderClassifier"] = AutoencoderClassifier
