"""scikit-learn classifier on an autoencoder's encoder: :class:`AutoencoderClassifier`.

Unsupervised pretraining, then supervised fine-tuning: train an autoencoder on X (or take one
already trained, e.g. on another dataset), drop its decoder, put a softmax layer on the code and
train the whole network (or only the softmax layer, ``freeze_encoder=True``) with cross-entropy.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

from .corruption import Masking
from .models import Autoencoder as AEModel
from .models import DenseAE, LinearAE
from .objectives import make_objective
from .train import fit as _fit
from .train.pretrain import pretrain_layers, stack_into_deep_ae

__all__ = ["PRETRAIN", "AutoencoderClassifier", "EncoderClassifier", "fgsm_loss", "vat_direction",
           "vat_loss"]

#: How :class:`AutoencoderClassifier` initialises its encoder when none is given.
PRETRAIN = ("ae", "layerwise", "none")


class EncoderClassifier(nn.Module):
    """An autoencoder's encoder followed by a linear softmax layer.

    ``p(y = c | x) = softmax(V f(x) + a)_c`` with the code ``f(x)`` (n, k), ``V`` (C, k).
    ``forward`` returns the logits (n, C).

    Parameters
    ----------
    encoder : Autoencoder
        Only its ``encode`` is used; :class:`DenseAE` and :class:`LinearAE` decoders are
        removed, those of other models receive no gradient.
    n_classes : int
        C.

    References
    ----------
    Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise training of deep networks",
    NIPS 2006; Erhan et al., "Why does unsupervised pre-training help deep learning?",
    JMLR 2010.
    """

    def __init__(self, encoder: AEModel, n_classes: int):
        super().__init__()
        _drop_decoder(encoder)
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.n_components), int(n_classes))
        p = next(encoder.parameters(), None)
        if p is not None:
            self.head.to(dtype=p.dtype, device=p.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.encode(x))


def fgsm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
              alpha: float = 0.5, clip: tuple[float, float] | None = (0.0, 1.0),
              autocast_bf16: bool = False) -> torch.Tensor:
    """Adversarial-training objective with the fast gradient sign method (FGSM).

    ``J̃(x, y) = α J(x, y) + (1 − α) J(x̃, y)``, ``x̃ = clip(x + ε sign ∇ₓJ(x, y))``, where
    ``J`` is the mean cross-entropy of ``model``'s logits. The perturbation is a constant for
    the weight gradient (no gradient flows through ``sign``); each sample's step follows the
    sign of its own gradient, since ``∂J/∂x_i = (1/n) ∂J_i/∂x_i``. In train mode dropout draws
    separate masks for the two passes. Only the input as a vector is used, so the method is
    permutation invariant.

    Parameters
    ----------
    model : nn.Module
        Maps x (n, d) to logits (n, C).
    x : Tensor, shape (n, d)
    y : Tensor of int64, shape (n,)
    eps : float
        ε ≥ 0, the max-norm size of the perturbation (in the units of x).
    alpha : float in [0, 1]
        Weight of the clean loss.
    clip : (low, high) or None
        Range x̃ is clipped to (pixels in [0, 1] by default); None leaves it unclipped.
    autocast_bf16 : bool
        Run both forward passes under CPU bf16 autocast.

    Returns
    -------
    Tensor
        The scalar J̃, differentiable in the model's parameters.

    References
    ----------
    Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015,
    eq. (6) (ε = 0.25, α = 0.5 on permutation-invariant MNIST).
    """
    if not (math.isfinite(float(eps)) and float(eps) >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    x = x.detach().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
        clean = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(clean, x, retain_graph=True)
    x_adv = x.detach() + float(eps) * grad.sign()
    if clip is not None:
        x_adv = x_adv.clamp(float(clip[0]), float(clip[1]))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
        adv = F.cross_entropy(model(x_adv), y)
    return float(alpha) * clean + (1.0 - float(alpha)) * adv


def _unit_rows(d: torch.Tensor) -> torch.Tensor:
    """Each row of ``d`` scaled to unit L2 norm (rows of zeros stay zero).

    Rows are first divided by their largest magnitude, so rows of tiny entries (a gradient of
    1e-20 from a confident softmax) do not underflow in the sum of squares.
    """
    flat = _unit_max_rows(d.reshape(len(d), -1))
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1.0)).reshape(d.shape)


def _unit_max_rows(flat: torch.Tensor) -> torch.Tensor:
    """Each row of the 2-D ``flat`` divided by its largest magnitude (zero rows stay zero)."""
    m = flat.abs().amax(dim=1, keepdim=True)
    return flat / torch.where(m > 0, m, torch.ones_like(m))


def _power_steps(model: nn.Module, x: torch.Tensor, x_req: torch.Tensor, logits: torch.Tensor,
                 rng: torch.Tensor, d: torch.Tensor, n_power: int) -> torch.Tensor:
    """``n_power`` steps ``d ← H d / ‖H d‖`` with ``H = Jᵀ (diag p − p pᵀ) J`` per sample.

    ``J d`` is a forward-mode Jacobian-vector product (the dropout masks of the pass that made
    ``logits`` replayed from ``rng``), the middle factor is applied in float64, and ``Jᵀ v`` is a
    backward pass through ``logits``'s graph (``x_req`` is its input, requiring grad). Each
    row of ``v`` is rescaled before the backward pass, which assumes the model treats the
    samples of a batch independently (true for dropout, not for batch norm in train mode).
    """
    p = F.softmax(logits.detach().double(), dim=1)
    for _ in range(n_power):
        torch.set_rng_state(rng)
        _, ju = torch.func.jvp(model, (x,), (_unit_rows(d).to(x.dtype),))
        u = ju.detach().double()
        v = p * (u - (p * u).sum(dim=1, keepdim=True))  # (diag p − p pᵀ) u, row by row
        # A per-row scale is free (samples are independent); it keeps Jᵀ v of a confident
        # sample (v ~ 1e-20) clear of float32 underflow.
        v = _unit_max_rows(v)
        (d,) = torch.autograd.grad(logits, x_req, grad_outputs=v.to(logits.dtype),
                                   retain_graph=True)
    return _unit_rows(d.detach())


def vat_direction(model: nn.Module, x: torch.Tensor, *, n_power: int = 1,
                  d0: torch.Tensor | None = None) -> torch.Tensor:
    """Unit virtual-adversarial directions: the power method on each sample's KL Hessian.

    ``H_i = ∇²_r KL(p(·|x_i) ‖ p(·|x_i + r)) |_{r=0} = J_iᵀ (diag p_i − p_i p_iᵀ) J_i``, with
    ``J_i`` (C, d) the Jacobian of the logits at ``x_i``; returns ``H_i^k d0_i / ‖H_i^k d0_i‖``
    for ``k = n_power`` (``d0`` standard normal by default), which tends to the top eigenvector
    of ``H_i``: the input direction that changes the prediction fastest. This is what
    :func:`vat_loss` perturbs along.

    The paper estimates ``H_i d`` by a finite difference of ``∇_r KL`` at ``r = ξ d``
    (ξ = 1e-6). In float32 that step is below the resolution of pixels near 1 and of confident
    softmax outputs (on an MNIST network the estimate has cosine ≈ 0 with the float64 value),
    so here ``H_i d`` is computed exactly: ``J d`` by forward-mode differentiation, the middle
    factor in float64, ``Jᵀ v`` by a backward pass. For a ReLU network this is the ξ → 0 limit
    of the paper's estimate.

    Parameters
    ----------
    model : nn.Module
        Maps x (n, d) to logits (n, C), each sample on its own (batch norm in train mode mixes
        samples and makes the directions approximate). In train mode every pass reuses one set
        of dropout masks.
    x : Tensor, shape (n, d)
    n_power : int
        Power iterations, ≥ 1.
    d0 : Tensor, shape (n, d), optional
        Starting directions (default: drawn from the global torch RNG).

    Returns
    -------
    Tensor, shape (n, d)
        Rows of unit L2 norm.

    References
    ----------
    Miyato, Maeda, Koyama & Ishii, "Virtual adversarial training", IEEE TPAMI 41(8), 2019,
    section 3 (the power-iteration approximation of the virtual adversarial direction).
    """
    _check_power(n_power)
    x = x.detach()
    rng = torch.get_rng_state()
    x_req = x.clone().requires_grad_(True)
    logits = model(x_req)
    d = torch.randn(x.shape, dtype=x.dtype) if d0 is None else d0.detach().to(x.dtype)
    if d.shape != x.shape:
        raise ValueError(f"d0 must have the shape of x {tuple(x.shape)}, got {tuple(d.shape)}")
    after = torch.get_rng_state()
    out = _power_steps(model, x, x_req, logits, rng, d, n_power)
    torch.set_rng_state(after)
    return out


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or in its own dtype where that is wider (float64 stays float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _check_power(n_power) -> None:
    if isinstance(n_power, bool) or not isinstance(n_power, int) or n_power < 1:
        raise ValueError(f"n_power must be an int >= 1, got {n_power!r}")


def vat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
             n_power: int = 1, alpha: float = 1.0,
             autocast_bf16: bool = False) -> torch.Tensor:
    """Cross-entropy plus the virtual adversarial training (VAT) smoothness penalty.

    ``J̃(x, y) = CE(p(·|x), y) + α · mean_i KL(p(·|x_i) ‖ p(·|x_i + r_i))``,
    ``r_i = ε · vat_direction(x)_i`` (see :func:`vat_direction`: ``n_power`` power iterations
    on ``H_i = J_iᵀ (diag p_i − p_i p_iᵀ) J_i`` from a random start), so ``r_i`` is the
    perturbation of L2 norm ε that, to second order, changes the prediction most. The label is
    not used to find ``r`` ("virtual"); ``p(·|x)`` and ``r`` are constants in the penalty.

    In train mode every pass reuses the clean pass's dropout masks (the RNG state is replayed),
    so the penalty measures the smoothness of one sampled sub-network; different masks would
    make the KL non-zero at r = 0. The global RNG advances by one forward pass plus the draw of
    the start direction, so training stays seeded. Only the input as a vector is used, so the
    method is permutation invariant.

    Parameters
    ----------
    model : nn.Module
        Maps x (n, d) to logits (n, C).
    x : Tensor, shape (n, d)
    y : Tensor of int64, shape (n,)
    eps : float
        ε ≥ 0, the L2 norm of each sample's perturbation (in the units of x).
    n_power : int
        Power iterations (≥ 1; the paper finds one enough).
    alpha : float
        α ≥ 0, weight of the penalty.
    autocast_bf16 : bool
        Run the forward passes under CPU bf16 autocast (the KL terms are formed in float32).

    Returns
    -------
    Tensor
        The scalar J̃, differentiable in the model's parameters.

    References
    ----------
    Miyato, Maeda, Koyama & Ishii, "Virtual adversarial training: a regularization method for
    supervised and semi-supervised learning", IEEE TPAMI 41(8), 2019 (the local
    distributional smoothness penalty and its one-power-iteration algorithm; ε = 2.0 is the
    setting used here for supervised permutation-invariant MNIST, taken from the paper).
    """
    eps, alpha = float(eps), float(alpha)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    _check_power(n_power)
    x = x.detach()
    active = eps > 0 and alpha > 0
    rng = torch.get_rng_state()
    x_req = x.clone().requires_grad_(active)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
        logits = model(x_req)
    ce = F.cross_entropy(logits, y)
    if not active:
        return ce
    d = torch.randn(x.shape, dtype=x.dtype)
    after = torch.get_rng_state()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
        r_adv = eps * _power_steps(model, x, x_req, logits, rng, d, n_power)
        torch.set_rng_state(rng)
        logq = F.log_softmax(_wide(model(x + r_adv)), dim=1)
    torch.set_rng_state(after)
    logp = F.log_softmax(_wide(logits.detach()), dim=1)
    penalty = (logp.exp() * (logp - logq)).sum(dim=1).mean()
    return ce + alpha * penalty.to(ce.dtype)


def _drop_decoder(model: AEModel) -> None:
    """Remove the decoder where the model's layout is known (it is never used here)."""
    if isinstance(model, DenseAE):
        model.dec, model.dec_act, model.dec_bn = nn.ModuleList(), nn.ModuleList(), \
            nn.ModuleList()
    elif isinstance(model, LinearAE):
        model.decoder = nn.Identity()


def _check_int(name: str, v, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


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
    weight_decay : float, default=0.0
        AdamW's decoupled weight decay during fine-tuning.
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
                 learning_rate=1e-3, batch_size=64, weight_decay=0.0, adversarial_eps=0.0,
                 vat_eps=0.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, random_state=None,
                 verbose=False):
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
        self.weight_decay = weight_decay
        self.adversarial_eps = adversarial_eps
        self.vat_eps = vat_eps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

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
        _check_int("n_components", self.n_components, 1)
        _check_int("max_iter", self.max_iter, 0)
        _check_int("pretrain_max_iter", self.pretrain_max_iter, 0)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        try:
            hidden = tuple(int(h) for h in (self.hidden_layer_sizes or ()))
        except (TypeError, ValueError):
            raise ValueError("hidden_layer_sizes must be a tuple of ints, got "
                             f"{self.hidden_layer_sizes!r}") from None
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be >= 1, got {self.hidden_layer_sizes}")
        if self.pretrain not in PRETRAIN:
            raise ValueError(f"pretrain must be one of {PRETRAIN}, got {self.pretrain!r}")
        if not 0.0 <= float(self.pretrain_noise) < 1.0:
            raise ValueError(f"pretrain_noise must be in [0, 1), got {self.pretrain_noise}")
        if not (float(self.learning_rate) > 0 and math.isfinite(float(self.learning_rate))):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not float(self.weight_decay) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("adversarial_eps", "vat_eps"):
            value = getattr(self, name)
            try:
                eps = float(value)
            except (TypeError, ValueError):
                eps = math.nan
            if not (math.isfinite(eps) and eps >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
            if eps > 0 and self.freeze_encoder:
                raise ValueError(f"{name} > 0 perturbs the input and needs "
                                 "freeze_encoder=False")
        if float(self.adversarial_eps) > 0 and float(self.vat_eps) > 0:
            raise ValueError("adversarial_eps and vat_eps are alternatives; set one of them "
                             f"to 0 (got {self.adversarial_eps} and {self.vat_eps})")
        if not 0.0 < float(self.validation_fraction) < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), "
                             f"got {self.validation_fraction}")

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
        kw = {"batch_size": int(self.batch_size), "lr": float(self.learning_rate),
              "seed": seed, "progress": bool(self.verbose) and None}
        if self.pretrain == "layerwise" and self.pretrain_max_iter > 0:
            pre = pretrain_layers(sizes, X, activation=self.activation,
                                  code_activation=self.code_activation, output=output,
                                  epochs=int(self.pretrain_max_iter),
                                  layer_kwargs={"corruption": corruption}, **kw)
            return stack_into_deep_ae(pre.layers, dropout=float(self.dropout))
        ae = DenseAE(sizes, activation=self.activation, code_activation=self.code_activation,
                     output=output, dropout=float(self.dropout))
        if self.pretrain == "none":
            return ae
        if self.pretrain_max_iter > 0:
            _fit(ae, make_objective(loss), X, corruption=corruption,
                 epochs=int(self.pretrain_max_iter), desc="pretrain", **kw)
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
        if frozen:
            for p in net.encoder.parameters():
                p.requires_grad_(False)
            with torch.no_grad():
                Z = net.encoder.eval().encode(Xt)  # codes computed once: (n, k)
            feats, head = Z, net.head
        else:
            feats, head = Xt, net
        params = [p for p in (net.head if frozen else net).parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=float(self.learning_rate),
                                weight_decay=float(self.weight_decay))
        g = torch.Generator().manual_seed(seed)
        bs = int(self.batch_size)
        eps, vat_eps = float(self.adversarial_eps), float(self.vat_eps)
        clip = (0.0, 1.0) if unit else None
        Ftr, ytr = feats[tr], yt[tr]
        n = len(tr)
        self.loss_curve_, self.validation_scores_ = [], []
        best, bad, best_state = math.inf, 0, None
        self.n_iter_ = 0
        for _ in range(int(self.max_iter)):
            net.train()
            if frozen:
                net.encoder.eval()
            perm = torch.randperm(n, generator=g)
            total = 0.0
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                if eps > 0:
                    loss = fgsm_loss(head, Ftr[idx], ytr[idx], eps, clip=clip)
                elif vat_eps > 0:
                    loss = vat_loss(head, Ftr[idx], ytr[idx], vat_eps)
                else:
                    loss = F.cross_entropy(head(Ftr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.n_iter_ += 1
            self.loss_curve_.append(total / n)
            if not math.isfinite(self.loss_curve_[-1]):
                raise FloatingPointError(f"cross-entropy became {self.loss_curve_[-1]}; "
                                         "lower learning_rate or scale X")
            if va is not None:
                net.eval()
                with torch.no_grad():
                    logits = head(feats[va])
                    vloss = float(F.cross_entropy(logits, yt[va]))
                    self.validation_scores_.append(
                        float((logits.argmax(1) == yt[va]).float().mean()))
                if vloss < best:
                    best, bad = vloss, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    bad += 1
                    if bad >= int(self.n_iter_no_change):
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
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
