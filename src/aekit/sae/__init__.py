"""Top-k sparse autoencoders on activation matrices (Gao et al. 2024).

* :class:`aekit.models.TopKSAE` (the model) and :class:`aekit.objectives.AuxK` (the term);
* :func:`train_sae` / :class:`UnitNormDecoder` / :class:`ResampleDeadLatents`: training
  through :func:`aekit.fit`;
* :class:`ActivationSource`: activations in memory or streamed from a ``.npy`` file;
* :func:`evaluate_sae`, :func:`fvu`, :func:`l0`, :func:`dead_fraction`: metrics;
* :func:`top_activating_examples`: each latent's top rows;
* :class:`SparseAutoencoder`: the scikit-learn estimator;
* ``aekit sae train|evaluate|top-examples|report`` (:mod:`aekit.sae.cli`).
"""

from ..models.sae import TopKSAE, geometric_median
from ..objectives.auxk import AuxK
from .data import ActivationSource, as_activations
from .estimator import SparseAutoencoder
from .examples import TopExamples, top_activating_examples
from .metrics import SAEMetrics, dead_fraction, evaluate_sae, fvu, l0
from .train import (
    ResampleDeadLatents,
    UnitNormDecoder,
    default_learning_rate,
    sae_objective,
    train_sae,
)

__all__ = ["ActivationSource", "AuxK", "ResampleDeadLatents", "SAEMetrics",
           "SparseAutoencoder", "TopExamples",
           "TopKSAE", "UnitNormDecoder", "as_activations", "dead_fraction",
           "default_learning_rate", "evaluate_sae", "fvu", "geometric_median", "l0",
           "sae_objective", "top_activating_examples", "train_sae"]
