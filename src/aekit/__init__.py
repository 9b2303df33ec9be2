"""aekit: autoencoders and sparse coding, trained fast on a CPU.

The public API is what this module re-exports.
"""

from .data import load_dataset, load_digits, load_mnist
from .estimators import Autoencoder
from .io import FileFormatError
from .layers import TiedLinear, TopK
from .models import MODELS, AEOutput, DenseAE, LinearAE, make_model
from .models import Autoencoder as AutoencoderModel
from .objectives import GaussianNLL, Objective, Term, WeightDecay, make_objective
from .train import History, evaluate, fit, load, save_model

__version__ = "0.1.0"

__all__ = [
    "MODELS",
    "AEOutput",
    "Autoencoder",
    "AutoencoderModel",
    "DenseAE",
    "FileFormatError",
    "GaussianNLL",
    "History",
    "LinearAE",
    "Objective",
    "Term",
    "TiedLinear",
    "TopK",
    "WeightDecay",
    "__version__",
    "evaluate",
    "fit",
    "load",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "make_model",
    "make_objective",
    "save_model",
]
