"""aekit: autoencoders and sparse coding, trained fast on a CPU.

The public API is what this module re-exports.
"""

__version__ = "0.1.0"

from .classifier import AutoencoderClassifier
from .corruption import CORRUPTIONS, Gaussian, Masking, SaltPepper, make_corruption
from .data import NpyReader, load_dataset, load_digits, load_mnist
from .estimators import Autoencoder
from .io import FileFormatError
from .layers import TiedLinear, TopK
from .models import (
    MODELS,
    RBM,
    AEOutput,
    ConvAE,
    DenseAE,
    LinearAE,
    linear_ae_from_pca,
    make_model,
    pca_solution,
)
from .models import Autoencoder as AutoencoderModel
from .objectives import GaussianNLL, Objective, Term, WeightDecay, make_objective
from .regularizers import Contractive, DeadUnitEntropy, KLSparsity, L1Activity, activity_stats
from .train import (
    History,
    evaluate,
    fit,
    load,
    pretrain_layers,
    save_model,
    stack_into_deep_ae,
)

__all__ = [
    "CORRUPTIONS",
    "MODELS",
    "RBM",
    "AEOutput",
    "Autoencoder",
    "AutoencoderClassifier",
    "AutoencoderModel",
    "Contractive",
    "ConvAE",
    "DeadUnitEntropy",
    "DenseAE",
    "FileFormatError",
    "Gaussian",
    "GaussianNLL",
    "History",
    "KLSparsity",
    "L1Activity",
    "LinearAE",
    "Masking",
    "NpyReader",
    "Objective",
    "SaltPepper",
    "Term",
    "TiedLinear",
    "TopK",
    "WeightDecay",
    "__version__",
    "activity_stats",
    "evaluate",
    "fit",
    "linear_ae_from_pca",
    "load",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "make_corruption",
    "make_model",
    "make_objective",
    "pca_solution",
    "pretrain_layers",
    "save_model",
    "stack_into_deep_ae",
]
