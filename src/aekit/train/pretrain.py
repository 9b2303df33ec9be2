"""Greedy layer-wise pretraining, as functions around the one loop :func:`aekit.fit`.

Each layer ``l`` is trained alone as a shallow model on the codes of the layers below it
(a one-layer autoencoder, plain, sparse, denoising or contractive; or an RBM trained by CD-1),
then :func:`stack_into_deep_ae` copies the encoders, and the decoders mirrored, into a
:class:`~aekit.models.dense.DenseAE` that is fine-tuned as a whole with :func:`aekit.fit`::

    pre = pretrain_layers([784, 1000, 500, 250, 30], X, activation="sigmoid",
                          output="sigmoid", max_iter=10,
                          layer_kwargs=[{"corruption": Masking(0.25)}, {}, {}, {}])
    deep = stack_into_deep_ae(pre.layers)
    fit(deep, make_objective("bce"), X, max_iter=50)

References
----------
Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks", Science
2006. Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise training of deep networks",
NIPS 2006. Vincent et al., "Stacked denoising autoencoders", JMLR 2010, section 3.5.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..layers import activation as make_activation
from ..models.base import OUTPUTS, Autoencoder
from ..models.dense import DenseAE, LinearAE, check_sizes
from ..models.rbm import RBM
from ..objectives import (
    LOSSES,
    make_objective,
    rbm_objective,
)
from .callbacks import History
from .fit import fit
from .optim import check_fit_args

__all__ = ["DECODER_INIT", "LAYER_KINDS", "RBM_DEFAULTS", "Pretrained", "encode_batched",
           "pretrain_layers", "stack_into_deep_ae"]

#: Per-layer model kinds of :func:`pretrain_layers`.
LAYER_KINDS = ("ae", "rbm")
#: How :func:`stack_into_deep_ae` initialises the deep decoder.
DECODER_INIT = ("shallow", "transpose")
#: fit() options an RBM layer uses unless its layer dict says otherwise (Hinton &
#: Salakhutdinov 2006: mini-batches of 100, learning rate 0.1 (0.001 for the linear top layer),
#: momentum 0.9, weight cost 2e-4, i.e. η = 1e-4).
RBM_DEFAULTS: dict[str, Any] = {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                                "batch_size": 100, "eta": 1e-4}
_RBM_GAUSSIAN_LR = 1e-3

# Keys of a layer dict that configure the shallow model and its objective; every other key
# is passed to fit() as is.
_MODEL_KEYS = {"kind", "loss", "terms", "tied", "eta", "cd_k"}
_FIT_KEYS = set(inspect.signature(fit).parameters) - {"model", "objective", "data", "val",
                                                      "params", "renamed"}


def _upgrade_fit_keys(opts: dict[str, Any], where: str) -> dict[str, Any]:
    """fit() options with the old names (epochs, lr, seed, weight_decay) replaced by the new
    ones, a FutureWarning each."""
    from ..schema import RENAMED_KWARGS, warn_renamed

    out = {}
    for k, v in opts.items():
        new = RENAMED_KWARGS["aekit.fit"].get(k)
        if new is not None:
            warn_renamed(k, new, where, stacklevel=4)
            k = new
        out[k] = v
    return out


class Pretrained(NamedTuple):
    """What :func:`pretrain_layers` returns.

    Attributes
    ----------
    layers : list of Autoencoder
        One shallow model per layer: a one-layer :class:`DenseAE` (``sizes=[k_{l-1}, k_l]``)
        or an :class:`RBM`, in order from the input.
    histories : list of History
        Each layer's training history.
    train_time_s : float
        Wall time of the whole pretraining, code computation included.
    """

    layers: list[Autoencoder]
    histories: list[History]
    train_time_s: float


def _to_tensor(X: Any, name: str, n_features: int) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        T = X.detach()
    else:
        try:
            A = np.asarray(X)
        except Exception as e:  # ragged lists and the like
            raise ValueError(f"{name} must be a numeric 2-D array: {e}") from None
        if A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {A.dtype}")
        T = torch.from_numpy(np.ascontiguousarray(A))
    if T.dtype != torch.float64:
        T = T.to(torch.float32)
    if T.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape "
                         f"{tuple(T.shape)}")
    if T.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if T.shape[1] != n_features:
        raise ValueError(f"{name} has {T.shape[1]} features, sizes[0] is {n_features}")
    if not torch.isfinite(T).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return T


@torch.no_grad()
def encode_batched(model: Autoencoder, X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Codes ``H = f(X)`` in eval mode (no dropout, batch norm on running statistics), batch by
    batch, without gradient: (n, d) -> (n, k).

    Parameters
    ----------
    model : Autoencoder
    X : Tensor, shape (n, d)
        In the model's dtype.
    batch_size : int
        Rows per forward pass (bounds memory).

    Returns
    -------
    Tensor, shape (n, k)

    References
    ----------
    Hinton & Salakhutdinov, Science 2006 (each layer's codes are the next layer's data).
    """
    was = model.training
    model.eval()
    try:
        return torch.cat([model.encode(X[i:i + batch_size])
                          for i in range(0, X.shape[0], batch_size)])
    finally:
        model.train(was)


def _layer_specs(n_layers: int, layer_kwargs: Any) -> list[dict[str, Any]]:
    if layer_kwargs is None:
        specs: list[Any] = [{} for _ in range(n_layers)]
    elif isinstance(layer_kwargs, Mapping):
        specs = [dict(layer_kwargs) for _ in range(n_layers)]
    elif isinstance(layer_kwargs, Sequence) and not isinstance(layer_kwargs, str):
        specs = list(layer_kwargs)
        if len(specs) != n_layers:
            raise ValueError(f"layer_kwargs has {len(specs)} entries, sizes describe "
                             f"{n_layers} layers")
        for i, s in enumerate(specs):
            if not isinstance(s, Mapping):
                raise ValueError(f"layer_kwargs[{i}] must be a dict, got {type(s).__name__}")
        specs = [dict(s) for s in specs]
    else:
        raise ValueError("layer_kwargs must be None, a dict (all layers) or a list of dicts "
                         f"(one per layer), got {type(layer_kwargs).__name__}")
    for i, s in enumerate(specs):
        s = specs[i] = _upgrade_fit_keys(s, f"layer_kwargs[{i}]")
        bad = sorted(set(s) - _MODEL_KEYS - _FIT_KEYS)
        if bad:
            raise ValueError(f"layer_kwargs[{i}]: unknown keys {bad}; expected fit() options "
                             f"or {sorted(_MODEL_KEYS)}")
    return specs


def pretrain_layers(
    sizes: Sequence[int],
    X: Any,
    *,
    activation: str = "relu",
    code_activation: str = "linear",
    output: str = "linear",
    layer_kwargs: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    val: Any = None,
    max_iter: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    random_state: int = 0,
    **fit_kwargs: Any,
) -> Pretrained:
    """Greedy layer-wise pretraining of the encoder ``[d, k_1, ..., k_L]``.

    Layer l (1-based) is a shallow model trained with :func:`fit` on ``h_{l−1}``, the codes of
    the already trained layers below (``h_0 = x``)::

        h_l = σ_l(W_l h_{l−1} + b_l),   ĥ_{l−1} = s_l(W'_l h_l + c_l),
        min  (1/n) Σ_i ℓ(h_{l−1,i}, ĥ_{l−1,i}) + Σ_t R_t        (AE layer)
        or   CD-1 on the RBM with visible h_{l−1}, hidden h_l     (RBM layer)

    ``σ_l`` is ``activation`` below the top and ``code_activation`` at the top. The output
    ``s_l`` is ``output`` for the first layer (reconstructing the data) and, above it, a sigmoid
    when ``activation="sigmoid"`` (codes in [0, 1]) else linear, matching the decoder of the
    deep AE that :func:`stack_into_deep_ae` builds. Codes are computed in eval mode, without
    corruption.

    Parameters
    ----------
    sizes : sequence of int
        ``[d, k_1, ..., k_L]`` as for :class:`DenseAE`.
    X : array-like or Tensor, shape (n, d)
        Training data (float64 stays float64, the rest becomes float32).
    activation, code_activation : str
        Hidden and code activations of the deep AE (see :class:`DenseAE`).
    output : {"linear", "sigmoid"}
        The deep AE's output nonlinearity; the first layer's reconstruction uses it.
    layer_kwargs : dict or list of dict, optional
        Per-layer options: one dict for every layer, or a list with one dict per layer. Keys:

        * ``kind``: ``"ae"`` (default) or ``"rbm"``.
        * ``loss``: ``"auto"`` (default: ``"bce"`` with a sigmoid reconstruction, else
          ``"mse"``), ``"mse"``, ``"bce"`` (AE layers).
        * ``terms``: list of :class:`~aekit.objectives.Term` (e.g. ``KLSparsity``,
          ``L1Activity``, ``Contractive``) added to the layer's objective.
        * ``tied``: tie the shallow decoder to the encoder (AE layers).
        * ``eta``: η of a logged :class:`~aekit.objectives.WeightDecay` term (RBM default
          1e-4, AE default 0).
        * ``cd_k``: Gibbs steps for an RBM layer (default 1).
        * any :func:`fit` keyword (``corruption``, ``max_iter``, ``learning_rate``,
          ``optimizer``, ``optimizer_weight_decay``, ``callbacks``, ``random_state``, ...),
          overriding the arguments below.
          RBM layers default to :data:`RBM_DEFAULTS` (SGD, lr 0.1, or 1e-3 when either
          side has Gaussian (linear) units, momentum 0.9, batch 100) instead of the arguments below.
    val : array-like, shape (n_val, d), optional
        Validation data, encoded layer by layer like X and passed to each :func:`fit`.
    max_iter, batch_size, optimizer, learning_rate : fit() options for every AE layer (old
        names ``epochs``, ``lr``: accepted with a FutureWarning until the next release).
    random_state : int
        Layer l uses ``random_state + l − 1`` for its initialisation and its :func:`fit` call
        (old name ``seed``).
    **fit_kwargs
        Further :func:`fit` options for every layer (``schedule``, ``progress``, ...).

    Returns
    -------
    Pretrained
        ``(layers, histories, train_time_s)``; feed ``layers`` to :func:`stack_into_deep_ae`.

    Raises
    ------
    ValueError
        Before any training, on bad sizes, data, keys, kinds or fit options, or an RBM layer
        whose units cannot match the activations (RBM hidden units are Bernoulli for
        ``"sigmoid"`` and Gaussian for ``"linear"``; visible units follow the layer below or
        ``output``).

    References
    ----------
    Hinton & Salakhutdinov, Science 2006 (stacked RBMs, CD-1). Bengio et al., "Greedy
    layer-wise training of deep networks", NIPS 2006 (stacked autoencoders). Vincent et al.,
    JMLR 2010, section 3.5 (stacked denoising autoencoders).

    Examples
    --------
    >>> X = torch.rand(64, 12)
    >>> pre = pretrain_layers([12, 8, 4], X, max_iter=1)
    >>> [m.n_components for m in pre.layers]
    [8, 4]
    """
    sizes = check_sizes(sizes)
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    n_layers = len(sizes) - 1
    # Build every shallow model up front: bad activations fail before any training.
    for act in (activation, code_activation):
        make_activation(act)
    T = _to_tensor(X, "X", sizes[0])
    V = _to_tensor(val, "val", sizes[0]) if val is not None else None
    old = {k: fit_kwargs.pop(k) for k in ("epochs", "lr", "seed") if k in fit_kwargs}
    if old:
        from ..schema import pop_renamed

        new = pop_renamed("aekit.train.pretrain.pretrain_layers", old,
                          {"max_iter": max_iter, "learning_rate": learning_rate,
                           "random_state": random_state},
                          {"max_iter": 10, "learning_rate": 1e-3, "random_state": 0})
        max_iter, learning_rate = new["max_iter"], new["learning_rate"]
        random_state = new["random_state"]
    fit_kwargs = _upgrade_fit_keys(fit_kwargs, "pretrain_layers")
    seed = random_state
    base = {"max_iter": max_iter, "batch_size": batch_size, "optimizer": optimizer,
            "learning_rate": learning_rate, **fit_kwargs}
    bad = sorted(set(fit_kwargs) - _FIT_KEYS)
    if bad:
        raise ValueError(f"unknown fit() options {bad}")
    specs = _layer_specs(n_layers, layer_kwargs)

    plans = []
    for i, spec in enumerate(specs):
        kind = spec.get("kind", "ae")
        if kind not in LAYER_KINDS:
            raise ValueError(f"layer_kwargs[{i}]['kind'] must be one of {LAYER_KINDS}, "
                             f"got {kind!r}")
        act = activation if i < n_layers - 1 else code_activation
        out = output if i == 0 else ("sigmoid" if activation == "sigmoid" else "linear")
        if kind == "rbm":
            if act not in ("sigmoid", "linear"):
                raise ValueError(f"layer {i + 1} is an RBM, whose hidden units give a 'sigmoid' "
                                 f"(Bernoulli) or 'linear' (Gaussian) code; the activation "
                                 f"there is {act!r}")
            hidden = "bernoulli" if act == "sigmoid" else "gaussian"
            visible = "bernoulli" if out == "sigmoid" else "gaussian"
            opts = {**base, **RBM_DEFAULTS}
            if hidden == "gaussian" or visible == "gaussian":
                # Linear (Gaussian) units have unbounded activities: Hinton & Salakhutdinov
                # use a 100x smaller rate for them (the top layer there; a real-valued input
                # layer is the same case, where lr 0.1 diverged within a few dozen epochs).
                opts["learning_rate"] = _RBM_GAUSSIAN_LR
        else:
            opts = dict(base)
        opts.update({k: v for k, v in spec.items() if k not in _MODEL_KEYS})
        eta = spec.get("eta", opts.pop("eta", 0.0))  # an objective term, not a fit() option
        opts.setdefault("random_state", seed + i)
        opts.setdefault("desc", f"pretrain {i + 1}/{n_layers}")
        check_fit_args(max_iter=opts["max_iter"], batch_size=opts["batch_size"],
                       learning_rate=opts["learning_rate"],
                       optimizer=opts["optimizer"], schedule=opts.get("schedule", "constant"),
                       early_stopping=opts.get("early_stopping"))
        torch.manual_seed(int(opts["random_state"]))
        if kind == "rbm":
            for key in ("loss", "terms", "tied"):
                if key in spec:
                    raise ValueError(f"layer_kwargs[{i}]: {key!r} does not apply to an RBM layer")
            model: Autoencoder = RBM(sizes[i], sizes[i + 1], visible=visible, hidden=hidden)
            objective = rbm_objective(spec.get("cd_k", 1), eta=eta, seed=int(opts["random_state"]))
        else:
            if "cd_k" in spec:
                raise ValueError(f"layer_kwargs[{i}]: 'cd_k' applies only to kind='rbm'")
            loss = spec.get("loss", "auto")
            if loss == "auto":
                loss = "bce" if out == "sigmoid" else "mse"
            if loss not in LOSSES or loss == "gaussian_nll":
                raise ValueError(f"layer_kwargs[{i}]['loss'] must be 'auto', 'mse' or 'bce', "
                                 f"got {loss!r}")
            model = DenseAE([sizes[i], sizes[i + 1]], activation=activation,
                            code_activation=act, output=out, tied=bool(spec.get("tied", False)))
            objective = make_objective(loss, weight_decay=eta, terms=spec.get("terms", ()))
            objective.check_model(model)
        plans.append((model.to(T.dtype), objective, opts))

    t0 = time.perf_counter()
    layers, histories = [], []
    H, Hv = T, V
    for i, (model, objective, opts) in enumerate(plans):
        try:
            histories.append(fit(model, objective, H, val=Hv, **opts))
        except FloatingPointError as e:  # say which layer, with which settings
            raise FloatingPointError(
                f"pretraining layer {i + 1} of {n_layers} ({type(model).__name__} "
                f"{sizes[i]}->{sizes[i + 1]}, optimizer {opts['optimizer']}, "
                f"learning_rate {opts['learning_rate']}): "
                f"{e}") from None
        model.eval()
        layers.append(model)
        if len(layers) < n_layers:  # codes for the next layer
            H = encode_batched(model, H)
            Hv = encode_batched(model, Hv) if Hv is not None else None
    return Pretrained(layers, histories, time.perf_counter() - t0)


def _layer_activation(layer: Autoencoder) -> str:
    return getattr(layer, "code_activation", "linear")


def _shallow_decoder(layer: Autoencoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder weight (d, k) and bias (d,) of a one-layer model."""
    if isinstance(layer, RBM):
        return layer.linear.weight.t(), layer.visible_bias
    if isinstance(layer, LinearAE):
        return layer.decoder.weight, layer.decoder.bias
    return layer.dec[0].weight, layer.dec[0].bias


@torch.no_grad()
def _calibrate_batch_norm(model: DenseAE, X: torch.Tensor) -> None:
    """Make every batch norm of ``model`` the identity on X's statistics (in eval mode).

    For pre-activations ``a`` with mean m and unbiased variance v over X, setting
    ``running_mean = m``, ``running_var = v``, ``γ = √(v + ε)``, ``β = m`` gives
    ``BN(a) = (a − m)/√(v + ε) · γ + β = a`` exactly in eval mode (and approximately in
    training mode), so inserting batch norm does not undo the pretraining.
    """
    def set_identity(bn: nn.Module, a: torch.Tensor) -> None:
        if not isinstance(bn, nn.BatchNorm1d):
            return
        m, v = a.mean(0), a.var(0) if a.shape[0] > 1 else torch.ones_like(a[0])
        bn.running_mean.copy_(m)
        bn.running_var.copy_(v)
        bn.weight.copy_((v + bn.eps).sqrt())
        bn.bias.copy_(m)

    model.eval()
    h = X
    L = len(model.enc)
    for i, lin in enumerate(model.enc):
        a = lin(h)
        if i < L - 1:
            set_identity(model.enc_bn[i], a)
            h = model.enc_act[i](model.enc_bn[i](a))
        else:
            h = model.enc_act[i](a)
    for j, lin in enumerate(model.dec):
        a = lin(h)
        if j < L - 1:
            set_identity(model.dec_bn[j], a)
            h = model.dec_act[j](model.dec_bn[j](a))


@torch.no_grad()
def stack_into_deep_ae(
    layers: Sequence[Autoencoder],
    *,
    decoder: str = "shallow",
    tied: bool = False,
    batch_norm: bool = False,
    dropout: float = 0.0,
    X: Any = None,
) -> DenseAE:
    """Copy pretrained one-layer models into a deep :class:`DenseAE` with a mirrored decoder.

    With shallow encoders ``(W_l, b_l)`` and decoders ``(W'_l, c_l)``, l = 1..L, the deep AE is
    ``h_l = σ_l(W_l h_{l−1} + b_l)`` and, going down, ``ĥ_{l−1} = s_l(D_l ĥ_l + c_l)``,
    with ``D_l = W'_l`` (``decoder="shallow"``) or ``D_l = W_lᵀ`` (``"transpose"``, the
    unrolled RBM stack of Hinton & Salakhutdinov); ``tied=True`` shares ``W_lᵀ`` for good.
    Its code equals the composition of the shallow encoders, ``f = f_L ∘ ... ∘ f_1``, exactly.
    Activations, code activation and output are read from the layers.

    Parameters
    ----------
    layers : sequence of Autoencoder
        One-layer models from :func:`pretrain_layers` (:class:`DenseAE` with one encoder
        layer, :class:`LinearAE` or :class:`RBM`), input side first; ``layers[l].n_features``
        must equal ``layers[l−1].n_components``. They are copied, not shared.
    decoder : {"shallow", "transpose"}
        Decoder weights from the shallow decoders or the encoders' transposes; the decoder
        biases come from the shallow decoders either way.
    tied : bool
        Build a tied deep AE (decoder weight ``W_lᵀ``, so ``decoder`` is ignored).
    batch_norm : bool
        Insert batch norm after every hidden linear layer. With ``X`` it is initialised to the
        identity on X's statistics, so the stacked network computes what the layers computed.
    dropout : float
        Dropout of the deep AE.
    X : array-like, shape (n, d), optional
        Data for the batch-norm initialisation (unused without ``batch_norm``).

    Returns
    -------
    DenseAE
        ``sizes = [d, k_1, ..., k_L]``, in eval mode, ready for fine-tuning with :func:`fit`.

    References
    ----------
    Hinton & Salakhutdinov, Science 2006, Fig. 1 ("unrolling"); Vincent et al., JMLR 2010,
    section 3.5.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty")
    if decoder not in DECODER_INIT:
        raise ValueError(f"decoder must be one of {DECODER_INIT}, got {decoder!r}")
    for i, m in enumerate(layers):
        if not isinstance(m, DenseAE | LinearAE | RBM) or len(m.encoder_layers()) != 1:
            raise ValueError(f"layers[{i}] must be a one-layer DenseAE, a LinearAE or an RBM, "
                             f"got {type(m).__name__} with {len(m.encoder_layers())} "
                             "encoder layer(s)")
        if isinstance(m, DenseAE) and m.batch_norm:
            raise ValueError(f"layers[{i}] uses batch norm; stack plain shallow models")
        if i and m.n_features != layers[i - 1].n_components:
            raise ValueError(f"layers[{i}] takes {m.n_features} inputs but layers[{i - 1}] "
                             f"gives {layers[i - 1].n_components} codes")
    acts = [_layer_activation(m) for m in layers]
    if len(set(acts[:-1])) > 1:
        raise ValueError(f"the hidden layers must share one activation, got {acts[:-1]}")
    activation = acts[0] if len(layers) > 1 else "relu"
    sizes = [layers[0].n_features] + [m.n_components for m in layers]
    for i, m in enumerate(layers[1:], 1):
        want = "sigmoid" if activation == "sigmoid" else "linear"
        if m.output != want:
            raise ValueError(f"layers[{i}] has output={m.output!r}; the deep decoder applies "
                             f"{activation!r} there, so build it with output={want!r}")
    p0 = layers[0].encoder_layers()[0].weight
    deep = DenseAE(sizes, activation=activation, code_activation=acts[-1],
                   output=layers[0].output, tied=tied, batch_norm=batch_norm,
                   dropout=dropout).to(dtype=p0.dtype, device=p0.device)
    L = len(layers)
    for i, m in enumerate(layers):
        lin = m.encoder_layers()[0]
        deep.enc[i].weight.copy_(lin.weight)
        deep.enc[i].bias.copy_(lin.bias)
        Wd, bd = _shallow_decoder(m)
        dec = deep.dec[L - 1 - i]
        if not tied:
            dec.weight.copy_(lin.weight.t() if decoder == "transpose" else Wd)
        dec.bias.copy_(bd)
    if batch_norm and X is not None:
        _calibrate_batch_norm(deep, _to_tensor(X, "X", sizes[0]).to(p0.dtype))
    return deep.eval()

