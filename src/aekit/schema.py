"""One declarative description of every user-facing setting, and the names it replaced.

Every setting of a run (``aekit train`` flags, the TOML tables ``[data] [model] [objective]
[train]``, ``--set section.key=value`` and a run's ``config.json``) is one :class:`Setting`
in :data:`RUN_SETTINGS`: its canonical name, type, default, allowed range or choices, a
one-line doc, the table it lives in and its flag. From it come

* the ``aekit train`` flags (:func:`add_train_flags`, :func:`overrides_from_args`),
* the TOML keys, checked against the dataclasses of :mod:`aekit.config`
  (``tests/test_schema.py``), and every value's range check (:func:`check_run_config`),
* the names and defaults the estimators (:class:`aekit.Autoencoder`,
  :class:`aekit.AutoencoderClassifier`, :class:`aekit.AnomalyDetector`) and :func:`aekit.fit`
  must use for the same concept (checked by ``tests/test_schema.py``; the surfaces that
  legitimately differ are listed in :data:`SURFACE_EXCEPTIONS` with the reason).

The hyperparameters of the registries (``MODELS``, ``TERMS``, ``CORRUPTIONS``) are declared
next to their classes as :class:`aekit.validation.Param` and gathered by
:func:`aekit.runs.registry_params`; a run setting that sets one of them names it in ``param``.

Canonical names are scikit-learn's where scikit-learn has the concept (``n_components``,
``max_iter``, ``learning_rate``, ``batch_size``, ``random_state``, ``validation_fraction``,
``early_stopping``, ``n_iter_no_change``, ``hidden_layer_sizes``, ``alpha`` as the ℓ1 weight of
sparse coding). The names they replaced (:data:`RENAMED_KEYS`, :data:`RENAMED_FLAGS`,
:data:`RENAMED_KWARGS`) keep working for one release with a :class:`FutureWarning` naming the
new one (:func:`warn_renamed`).
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .validation import Param

__all__ = ["AUTO", "MODEL_OPTIONS", "RENAMED_FLAGS", "RENAMED_KEYS", "RENAMED_KWARGS",
           "RUN_SETTINGS", "SURFACE_EXCEPTIONS", "Setting", "add_train_flags",
           "check_model_options", "check_run_config", "flag_of", "overrides_from_args",
           "pop_renamed", "resolve_max_iter", "setting", "warn_renamed"]

#: The value of ``max_iter`` that means "from the step budget ``max_steps``".
AUTO = "auto"


@dataclass(frozen=True)
class Setting:
    """One user-facing setting of a run, declared once.

    Attributes
    ----------
    key : str
        ``"table.name"``, e.g. ``"train.learning_rate"``: the TOML table and key.
    type : type
        ``int``, ``float``, ``str``, ``bool`` or ``list`` (a list of int).
    default : Any
        The default on every surface (exceptions: :data:`SURFACE_EXCEPTIONS`).
    doc : str
        One line: what it means.
    lo, hi, lo_open, hi_open, choices, optional
        The allowed values, as :class:`aekit.validation.Param`; ``optional``: ``None``
        (TOML: absent, CLI: ``none``) is allowed.
    auto : bool
        The string ``"auto"`` is allowed besides numbers (``max_iter``).
    flag : str
        The ``aekit train`` flag (default ``--`` + name with ``-``).
    old_keys, old_flags : tuple of str
        Names it had before (same table), accepted with a FutureWarning for one release.
    param : str
        ``"registry:entry.param"`` of the registry hyperparameter it sets, if any (e.g.
        ``"terms:kl_sparsity.rho"``); its range must equal that declaration's.
    """

    key: str
    type: type
    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    optional: bool = False
    auto: bool = False
    flag: str = ""
    old_keys: tuple[str, ...] = ()
    old_flags: tuple[str, ...] = ()
    param: str = ""

    @property
    def table(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def as_param(self) -> Param:
        """The :class:`Param` that checks a value of this setting (lists: each element)."""
        tp = int if self.type is list else self.type
        return Param(self.key, tp, self.default, self.doc, lo=self.lo, hi=self.hi,
                     lo_open=self.lo_open, hi_open=self.hi_open, choices=self.choices,
                     optional=self.optional)

    def check(self, value: Any) -> Any:
        """The validated value; errors name the key (``train.learning_rate must be ...``)."""
        if self.auto and value == AUTO:
            return value
        if self.type is list:
            if value is None and self.optional:
                return None
            if not isinstance(value, list) or not value:
                raise ValueError(f"{self.key} must be a non-empty list of integers, got "
                                 f"{value!r}")
            p = self.as_param()
            return [p.check(v) for v in value]
        return self.as_param().check(value)

    def describe(self) -> str:
        """``"--learning-rate (train.learning_rate): float > 0, default 0.003: ..."``."""
        return f"{self.cli_flag} ({self.key}): {self.as_param().describe().split(': ', 1)[1]}"


_S = Setting
_MODELS = ("dense", "linear", "conv", "residual", "unet", "vae", "conv_vae")
_LOSSES = ("auto", "mse", "bce", "gaussian_nll")
_NOISES = ("none", "masking", "gaussian", "salt_pepper")
_OPTIMIZERS = ("adam", "adamw", "sgd", "lbfgs")
_SCHEDULES = ("constant", "cosine", "step", "exponential")

#: Every setting of a run, by table; the order is the order of ``aekit train --help``.
RUN_SETTINGS: tuple[Setting, ...] = (
    # [data]
    _S("data.dataset", str, "digits", "digits (built in), mnist, fashion-mnist, or a "
       ".npy/.npz/.csv file", flag="--data"),
    _S("data.path", str, None, "file or folder for mnist/fashion-mnist (default "
       "$AEKIT_DATA/mnist.npz)", optional=True, flag="--data-path"),
    _S("data.header", bool, None, "a CSV's first row is a header (unset: a header when none "
       "of its cells is a number, data when all are, an error when mixed)", optional=True),
    _S("data.validation_fraction", float, 0.1, "fraction of the training rows held out for "
       "validation and early stopping", lo=0, hi=1, hi_open=True,
       old_keys=("val_fraction",)),
    _S("data.val_groups", str, None, "CSV only: a column (header name or 1-based number) of "
       "group labels; validation holds out whole groups", optional=True),
    _S("data.limit", int, None, "use only the first N training rows", lo=1, optional=True),
    _S("data.image_size", list, None, "image files/folders: resize every image to H W "
       "(mixed sizes are refused without it)", lo=1, optional=True),
    _S("data.patch_size", int, None, "image files/folders: cut each image into square "
       "patches of this side", lo=1, optional=True),
    _S("data.patch_stride", int, None, "image files/folders: step between patches (default: "
       "the patch size)", lo=1, optional=True),
    _S("data.color", str, "auto", "image files/folders: channels (auto keeps the files')",
       choices=("auto", "gray", "rgb")),
    _S("data.max_patches", int, None, "image files/folders: at most this many patches "
       "(seeded sample)", lo=1, optional=True),
    _S("data.random_state", int, 0, "seed of the training/validation split", lo=0,
       flag="--split-random-state", old_keys=("seed",)),
    # [model]
    _S("model.name", str, "dense", "architecture", choices=_MODELS, flag="--model"),
    _S("model.n_components", int, 8, "code size k", lo=1, old_keys=("code_size",),
       old_flags=("--code-size",)),
    _S("model.hidden_layer_sizes", list, [256], "hidden layer sizes of dense/residual models "
       "(the decoder mirrors them)", lo=1, old_keys=("hidden",), old_flags=("--hidden",)),
    _S("model.channels", list, [16, 32], "conv/unet only: channels of the stride-2 "
       "convolution blocks", lo=1),
    _S("model.kernel_size", int, 3, "conv only: convolution kernel size", lo=1),
    _S("model.strides", int, 2, "conv only: stride of each convolution block", lo=1),
    _S("model.activation", str, "elu", "hidden activation (aekit.layers.ACTIVATIONS)"),
    _S("model.code_activation", str, "linear", "code activation: linear, sigmoid, relu, "
       "topk:K, ..."),
    _S("model.output", str, "auto", "output nonlinearity; auto: sigmoid with bce, else linear",
       choices=("auto", "linear", "sigmoid"), flag="--output-activation"),
    _S("model.tied", bool, False, "dense/linear only: decoder weights tied to the encoder's"),
    _S("model.batch_norm", bool, False, "dense/conv/unet only: batch normalisation after "
       "hidden layers"),
    _S("model.dropout", float, 0.0, "dense/residual only: dropout probability on hidden "
       "layers", lo=0, hi=1, hi_open=True),
    # [objective]
    _S("objective.loss", str, "auto", "reconstruction loss; auto: cross-entropy for data in "
       "[0, 1], else squared error", choices=_LOSSES),
    _S("objective.weight_decay", float, 0.0, "η of the logged weight-decay term "
       "η S Σ‖W‖², biases excluded, per unit S = Σ_j Var(x_j) of the training data's total "
       "variance as in aekit.Autoencoder (0: off)", lo=0, param="terms:weight_decay.eta"),
    _S("objective.l1", float, 0.0, "λ of the L1 activity penalty λ Σ|h_j| (0: off)", lo=0,
       param="terms:l1_activity.lam"),
    _S("objective.sparsity_target", float, None, "ρ of the KL sparsity penalty (unset: off); "
       "needs a sigmoid code", lo=0, hi=1, lo_open=True, hi_open=True, optional=True,
       old_keys=("kl_rho",), param="terms:kl_sparsity.rho"),
    _S("objective.sparsity_weight", float, 1.0, "β of the KL sparsity penalty", lo=0,
       old_keys=("kl_beta",), param="terms:kl_sparsity.beta"),
    _S("objective.dead_unit", float, 0.0, "λ of the dead-unit entropy term (0: off)", lo=0,
       param="terms:dead_unit_entropy.lam"),
    _S("objective.contractive", float, 0.0, "λ of the contractive penalty λ‖J_f(x)‖² "
       "(0: off)", lo=0, param="terms:contractive.lam"),
    _S("objective.beta", float, 1.0, "vae only: weight β of the KL term of the ELBO "
       "(1: VAE, > 1: β-VAE)", lo=0, param="terms:kl.beta"),
    _S("objective.iw_samples", int, 1, "vae only: importance samples k of the training bound "
       "(1: ELBO, > 1: IWAE)", lo=1, param="terms:iwae.k"),
    _S("objective.iw_gradient", str, "iwae", "vae only, IWAE (iw_samples > 1): the encoder's "
       "gradient estimator, iwae (plain) or dreg (doubly reparameterised, Tucker et al. 2019)",
       choices=("iwae", "dreg"), param="terms:iwae.gradient"),
    _S("objective.noise", str, "none", "denoising: corrupt training inputs",
       choices=_NOISES),
    _S("objective.noise_level", float, None, "ν, σ or p of the noise (unset: 0.25 masking, "
       "0.1 gaussian / salt_pepper; 0 is refused)", lo=0, lo_open=True, optional=True),
    # [train]
    _S("train.max_iter", int, AUTO, "maximum epochs; auto: clip(ceil(max_steps / batches "
       "per epoch), 5, 300)", lo=1, auto=True, old_keys=("epochs",),
       old_flags=("--epochs",)),
    _S("train.max_steps", int, 5000, "optimiser-step budget behind max_iter=auto", lo=1),
    _S("train.batch_size", int, 256, "mini-batch size (the global batch under torchrun)",
       lo=1),
    _S("train.optimizer", str, "adam", "optimiser", choices=_OPTIMIZERS),
    _S("train.learning_rate", float, 3e-3, "learning rate", lo=0, lo_open=True,
       old_keys=("lr",), old_flags=("--lr",)),
    _S("train.momentum", float, 0.9, "SGD momentum", lo=0, hi=1),
    _S("train.optimizer_weight_decay", float, 0.0, "the optimiser's own weight decay "
       "(decoupled for adamw); not the logged objective term", lo=0),
    _S("train.schedule", str, "cosine", "learning-rate schedule", choices=_SCHEDULES),
    _S("train.warmup_steps", int, 0, "linear learning-rate warm-up steps", lo=0),
    _S("train.early_stopping", bool, True, "stop when the validation monitor has not "
       "improved for n_iter_no_change epochs, and restore the best weights"),
    _S("train.n_iter_no_change", int, 20, "patience of early stopping, in epochs", lo=1),
    _S("train.monitor", str, "val_recon", "what early stopping watches: any logged part, "
       "e.g. val_recon (reconstruction alone) or val_loss (whole objective)"),
    _S("train.max_grad_norm", float, None, "clip the global gradient norm", lo=0,
       lo_open=True, optional=True),
    _S("train.random_state", int, 0, "seed of initialisation, shuffling and noise", lo=0,
       old_keys=("seed",), old_flags=("--seed",)),
    _S("train.checkpoint_every", int, 1, "checkpoint every N epochs", lo=1),
    _S("train.checkpoint_steps", int, None, "also checkpoint every N steps", lo=1,
       optional=True),
    _S("train.precision", str, "fp32", "bf16 autocast where the CPU has native bf16",
       choices=("fp32", "bf16")),
)

_BY_KEY = {s.key: s for s in RUN_SETTINGS}


def setting(key: str) -> Setting:
    """The :class:`Setting` of ``"table.name"``; ``KeyError`` naming the known keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no setting {key!r}; known: {', '.join(_BY_KEY)}") from None


def flag_of(key: str) -> str:
    """The ``aekit train`` flag of a config key (``"train.learning_rate"`` ->
    ``"--learning-rate"``); ``--set KEY`` for a key without a flag."""
    s = _BY_KEY.get(key)
    return s.cli_flag if s is not None else f"--set {key}"


#: Old config keys -> canonical keys (TOML tables, ``--set``, ``config.json`` of old runs).
#: ``model.hidden`` becomes ``model.channels`` for conv/unet models and
#: ``model.hidden_layer_sizes`` otherwise; ``train.early_stopping = N`` (an integer patience)
#: becomes ``early_stopping = true`` + ``n_iter_no_change = N`` (and ``None``: ``false``).
RENAMED_KEYS: dict[str, str] = {f"{s.table}.{old}": s.key for s in RUN_SETTINGS
                                for old in s.old_keys}

#: Old ``aekit train`` flags -> canonical flags (also ``--out`` -> ``--output``).
RENAMED_FLAGS: dict[str, str] = {old: s.cli_flag for s in RUN_SETTINGS for old in s.old_flags}
RENAMED_FLAGS["--out"] = "--output"

#: Old Python keyword arguments -> canonical ones, per function.
RENAMED_KWARGS: dict[str, dict[str, str]] = {
    "aekit.fit": {"epochs": "max_iter", "lr": "learning_rate", "seed": "random_state",
                  "weight_decay": "optimizer_weight_decay"},
    "aekit.train.psd.fit_psd": {"lam": "alpha", "epochs": "max_iter",
                                "lr_dict": "dict_learning_rate", "lr_encoder": "learning_rate"},
    "aekit.make_objective": {"kl_rho": "sparsity_target", "kl_beta": "sparsity_weight"},
    "aekit.train.pretrain.pretrain_layers": {"epochs": "max_iter", "lr": "learning_rate",
                                             "seed": "random_state"},
    # early_stopping=N (an int patience) is handled by the estimator itself
    "aekit.anomaly.AnomalyDetector": {"hidden": "hidden_layer_sizes", "epochs": "max_iter",
                                      "lr": "learning_rate"},
    "aekit.retrieval.semantic.pretrain_document_layers": {
        "epochs": "max_iter", "lr": "learning_rate", "seed": "random_state"},
    "aekit.retrieval.semantic.fit_document_ae": {
        "epochs": "max_iter", "lr": "learning_rate", "seed": "random_state",
        "pretrain_epochs": "pretrain_max_iter"},
    # also train_denoiser, train_inpainter, train_compressor (they pass it their keywords)
    "aekit.images.train_image_model": {"epochs": "max_iter", "lr": "learning_rate",
                                       "seed": "random_state"},
    # its weight_decay was AdamW's decay (the optimiser's), not the objective term
    "aekit.AutoencoderClassifier": {"weight_decay": "optimizer_weight_decay"},
    "aekit.data.train_val_split": {"val_fraction": "validation_fraction",
                                   "seed": "random_state"},
    "aekit.data.arrays.split_indices": {"val_fraction": "validation_fraction",
                                        "seed": "random_state"},
    **{f"aekit.images.{f}": {"epochs": "max_iter", "lr": "learning_rate", "seed": "random_state"}
       for f in ("colour.fit_patches", "train_colouriser", "train_segmenter",
                 "train_document_cleaner")},
}

#: Which model options apply to which model (``aekit train --model``); a setting outside its
#: model's set that differs from its default is an error naming the flag (it would be
#: ignored). ``n_components`` is ignored by unet (its bottleneck sets the code).
MODEL_OPTIONS: dict[str, frozenset[str]] = {
    "dense": frozenset({"n_components", "hidden_layer_sizes", "activation", "code_activation",
                        "output", "tied", "batch_norm", "dropout"}),
    "linear": frozenset({"n_components", "tied"}),
    "conv": frozenset({"n_components", "channels", "kernel_size", "strides", "activation",
                       "code_activation", "output", "batch_norm"}),
    "residual": frozenset({"n_components", "hidden_layer_sizes", "activation", "dropout"}),
    "unet": frozenset({"channels", "activation", "output", "batch_norm"}),
    "vae": frozenset({"n_components", "hidden_layer_sizes", "activation", "output"}),
    "conv_vae": frozenset({"n_components", "channels", "activation", "output"}),
}

#: Where a surface legitimately has another name, default or no such setting, and why.
#: Keys are ``(surface, name)``; the surfaces are ``"run"`` (CLI/TOML), ``"aekit.fit"``,
#: ``"Autoencoder"``, ``"AutoencoderClassifier"``, ``"AnomalyDetector"``.
SURFACE_EXCEPTIONS: dict[tuple[str, str], str] = {
    # --- aekit.fit: the low-level loop every trainer builds on
    ("aekit.fit", "max_iter"): "fit() is the low-level loop under every trainer (pretraining, "
    "PSD, classifiers, anomaly, image and retrieval models, benchmarks), each passing its "
    "own budget; its default (10 epochs) is kept so that none of them changes silently. "
    "The step budget max_iter='auto' needs a validation split and early stopping, which "
    "fit() does not create.",
    ("aekit.fit", "learning_rate"): "low-level loop default (Adam's 1e-3, Kingma & Ba 2015) "
    "kept: every trainer on fit() relies on it; the tuned 3e-3 belongs to the estimator and "
    "run defaults, chosen on validation splits with their cosine schedule and batch 256.",
    ("aekit.fit", "batch_size"): "low-level loop default (128) kept for its callers, see "
    "learning_rate.",
    ("aekit.fit", "schedule"): "low-level loop default ('constant') kept: a cosine schedule "
    "needs the planned number of steps, which callers of fit() that stop on their own "
    "(callbacks, time budgets) do not have.",
    ("aekit.fit", "early_stopping"): "fit() takes the patience as an integer (None: off) and "
    "never holds out data itself: early stopping needs val=.",
    ("aekit.fit", "monitor"): "fit() has no validation data unless given val=, so its "
    "default (None) watches val_loss with val= and train_loss without.",
    ("aekit.fit", "random_state"): "an integer seed (torch generators), not a "
    "numpy RandomState.",
    # --- model classes: architecture building blocks with their own (published) defaults
    ("DenseAE", "activation"): "the model class keeps relu: it is the building block of "
    "pretraining, classifiers, benchmarks and tests that rely on it (43 call sites without "
    "activation=); every run and estimator passes activation explicitly (elu by default).",
    ("DenseAE", "output"): "a model has no loss to derive 'auto' from; runs and estimators "
    "resolve it (sigmoid with bce) and pass it.",
    ("ConvAE", "code_size"): "not n_components: with code='map' it is the code map's "
    "channels and n_components = code_size·h·w; runs pass model.n_components to it for "
    "code='flat'.",
    ("ConvAE", "activation"): "image-model default relu, owned with the image models; runs "
    "and estimators pass activation explicitly.",
    ("ConvAE", "output"): "a model has no loss to derive 'auto' from (sigmoid for images in "
    "[0, 1]); runs and estimators resolve and pass it.",
    # --- run (CLI/TOML) vs Autoencoder
    ("run", "random_state"): "a run must be reproducible and resumable bit for bit, so its "
    "seed defaults to 0; the estimator follows scikit-learn (None: fresh randomness).",
    ("run", "output"): "run-only: the estimator derives the output from the loss.",
    ("run", "noise"): "TOML has no null: 'none' in a run is None in Python.",
    ("Autoencoder", "init"): "estimator-only: a run trains the model it names; "
    "model.name = residual is the PCA-started model there.",
    ("Autoencoder", "weight_decay_grid"): "estimator-only: weight_decay='auto' model "
    "selection.",
    ("Autoencoder", "image_shape"): "estimator-only: a run takes the image shape from its "
    "data (built-in image sets, (n, H, W) arrays, image files).",
    ("Autoencoder", "verbose"): "estimator-only (scikit-learn convention); runs take "
    "--progress.",
}


def warn_renamed(old: str, new: str, where: str = "", stacklevel: int = 3) -> None:
    """``FutureWarning: <where>: 'old' is renamed 'new'; the old name is accepted until the
    next release``."""
    pre = f"{where}: " if where else ""
    warnings.warn(f"{pre}{old!r} is renamed {new!r}; the old name is accepted until the next "
                  f"release", FutureWarning, stacklevel=stacklevel)


def pop_renamed(where: str, old_kwargs: dict[str, Any], values: dict[str, Any],
                defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve a function's deprecated keyword arguments.

    ``old_kwargs`` are the extra keywords the function received (``**old``); each must be an
    old name in ``RENAMED_KWARGS[where]`` (else ``TypeError``, like any unknown keyword). Its
    value replaces the new name's in ``values`` with a FutureWarning naming the new one;
    passing both (the new one not at its default) is a ``TypeError``.
    """
    renames = RENAMED_KWARGS[where]
    out = dict(values)
    for old, v in old_kwargs.items():
        if old not in renames:
            raise TypeError(f"{where}() got an unexpected keyword argument {old!r}")
        new = renames[old]
        if out[new] is not defaults[new] and out[new] != defaults[new]:
            raise TypeError(f"{where}(): pass {new!r} only ({old!r} is its old name)")
        warn_renamed(old, new, where, stacklevel=4)
        out[new] = v
    return out


def resolve_max_iter(max_iter: int | str, max_steps: int, n_train: int, batch_size: int) -> int:
    """Epochs for ``max_iter``: itself, or for ``"auto"``
    ``clip(ceil(max_steps / ceil(n_train / min(batch_size, n_train))), 5, 300)``, so a large
    data set gets fewer epochs of more steps each (the rule of :class:`aekit.Autoencoder`)."""
    if max_iter != AUTO:
        return int(max_iter)
    n_batches = math.ceil(n_train / min(int(batch_size), n_train))
    return int(min(300, max(5, math.ceil(int(max_steps) / n_batches))))


def check_run_config(d: dict[str, dict[str, Any]]) -> None:
    """Check every value of a run config dict (``RunConfig.to_dict()``) against its
    :class:`Setting`, and the model options against :data:`MODEL_OPTIONS`; errors name the
    key and its flag."""
    for s in RUN_SETTINGS:
        v = d.get(s.table, {}).get(s.name, s.default)
        try:
            s.check(v)
        except ValueError as e:
            raise ValueError(f"{e} ({s.cli_flag})") from None
    check_model_options(d["model"])


def check_model_options(model: dict[str, Any]) -> None:
    """A model option that the chosen model does not have would be silently ignored: an
    error naming the flag when it is not at its default."""
    name = model.get("name", "dense")
    applies = MODEL_OPTIONS.get(name)
    if applies is None:
        return  # unknown model: build() names the known ones
    for s in RUN_SETTINGS:
        if s.table != "model" or s.name == "name" or s.name in applies:
            continue
        if model.get(s.name, s.default) != s.default:
            users = [m for m, opts in MODEL_OPTIONS.items() if s.name in opts]
            raise ValueError(f"{s.cli_flag} (model.{s.name} = {json.dumps(model[s.name])}) "
                             f"does not apply to model {name!r}; it applies to "
                             f"{', '.join(users)}. Drop it"
                             + (" (conv/unet/conv_vae take --channels)"
                                if s.name == "hidden_layer_sizes" else "")
                             + (" (dense/residual take --hidden-layer-sizes)"
                                if s.name == "channels" else ""))


# ----------------------------------------------------------------------- CLI generation
class _NoneValue(str):
    """A flag's value ``none``: the setting is unset (``--set key=none``)."""


def _cli_type(s: Setting):
    base = int if s.type is list else s.type

    def parse(text: str):
        if s.optional and text.lower() in ("none", "null"):
            return _NoneValue("none")
        if s.auto and text == AUTO:
            return AUTO
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {base.__name__}{' or auto' if s.auto else ''}"
                f"{' or none' if s.optional else ''}, got {text!r}") from None

    parse.__name__ = base.__name__
    return parse


class RenamedFlag(argparse.Action):
    """An old flag: stores into the new one's destination with a FutureWarning."""

    def __init__(self, option_strings, dest, new_flag: str = "", **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warn_renamed(option_string, self.new_flag, "aekit", stacklevel=2)
        setattr(namespace, self.dest, values)


def _dest(s: Setting) -> str:
    return "cfg__" + s.key.replace(".", "__")


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :data:`RUN_SETTINGS` entry (and the old flags, hidden, with a
    FutureWarning), each storing into its own destination (unset: None)."""
    groups = {t: parser.add_argument_group(f"[{t}] settings") for t in
              ("data", "model", "objective", "train")}
    for s in RUN_SETTINGS:
        g = groups[s.table]
        default_txt = "unset" if s.default is None else json.dumps(s.default)
        help_ = f"{s.doc} ({s.key}, default {default_txt})".replace("%", "%%")
        if s.choices:
            help_ = help_.replace(f" ({s.key},", f"; one of {', '.join(s.choices)} ({s.key},")
        if s.type is bool:
            g.add_argument(s.cli_flag, dest=_dest(s), action=argparse.BooleanOptionalAction,
                           default=None, help=help_)
            continue
        metavar = {int: "INT", float: "FLOAT", str: "TEXT", list: "INT"}[s.type]
        if s.choices:
            metavar = "{" + ",".join(s.choices) + "}"
        metavar += "|auto" if s.auto else ""
        metavar += "|none" if s.optional else ""
        kw: dict[str, Any] = {"dest": _dest(s), "default": None, "type": _cli_type(s),
                              "help": help_, "metavar": metavar}
        if s.type is list:
            kw["nargs"] = "+"
        g.add_argument(s.cli_flag, **kw)
        for old in s.old_flags:
            g.add_argument(old, dest=_dest(s) if s.name != "hidden_layer_sizes"
                           else "cfg__model__hidden", action=RenamedFlag,
                           new_flag=s.cli_flag if s.name != "hidden_layer_sizes"
                           else "--hidden-layer-sizes (dense) / --channels (conv)",
                           type=kw["type"], nargs=kw.get("nargs"), default=None,
                           help=argparse.SUPPRESS)


def overrides_from_args(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``[(flag, "table.key=<TOML value>"), ...]`` for every run-setting flag given."""
    out = []
    for s in RUN_SETTINGS:
        v = getattr(args, _dest(s), None)
        if v is None:
            continue
        text = "none" if isinstance(v, _NoneValue) else json.dumps(v)
        out.append((s.cli_flag, f"{s.key}={text}"))
    legacy = getattr(args, "cfg__model__hidden", None)
    if legacy is not None:
        out.append(("--hidden", f"model.hidden={json.dumps(legacy)}"))
    return out
