"""aekit: autoencoders and sparse coding, trained fast on a CPU.

The public API is what this module re-exports.
"""

from .analysis.activity import activity_stats
from .anomaly import AnomalyDetector
from .classifier import AutoencoderClassifier
from .corruption import CORRUPTIONS, Gaussian, Masking, SaltPepper, make_corruption
from .data import NpyReader, load_dataset, load_digits, load_mnist
from .data.batch import Batch
from .decomposition import LinearAEPCA
from .estimators import Autoencoder, load_estimator
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
from .objectives import (
    FGSM,
    TERMS,
    VAT,
    Contractive,
    ContrastiveDivergence,
    DeadUnitEntropy,
    GaussianNLL,
    KLSparsity,
    L1Activity,
    Objective,
    Term,
    WeightDecay,
    make_objective,
    make_term,
)
from .sae import SparseAutoencoder, TopKSAE
from .train import (
    Callback,
    History,
    evaluate,
    fit,
    load,
    pretrain_layers,
    save_model,
    stack_into_deep_ae,
)
from .variational import VariationalAutoencoder
from .version import __version__

__all__ = [
    "CORRUPTIONS",
    "FGSM",
    "MODELS",
    "RBM",
    "TERMS",
    "VAT",
    "AEOutput",
    "AnomalyDetector",
    "Autoencoder",
    "AutoencoderClassifier",
    "AutoencoderModel",
    "Batch",
    "Callback",
    "Contractive",
    "ContrastiveDivergence",
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
    "LinearAEPCA",
    "Masking",
    "NpyReader",
    "Objective",
    "SaltPepper",
    "SparseAutoencoder",
    "Term",
    "TiedLinear",
    "TopK",
    "TopKSAE",
    "VariationalAutoencoder",
    "WeightDecay",
    "__version__",
    "activity_stats",
    "evaluate",
    "fit",
    "linear_ae_from_pca",
    "load",
    "load_dataset",
    "load_digits",
    "load_estimator",
    "load_mnist",
    "make_corruption",
    "make_model",
    "make_objective",
    "make_term",
    "pca_solution",
    "pretrain_layers",
    "save_model",
    "stack_into_deep_ae",
]
