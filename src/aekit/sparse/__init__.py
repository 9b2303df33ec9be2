"""Sparse coding: prox operators, batched solvers, dictionary learning, PSD, patches,
convolutional and topographic sparse coding.

A leaf subpackage: it imports torch, numpy and scipy/scikit-learn only, never aekit's models,
training loop or estimators, so those can build on it.
"""

from .cd import coordinate_descent
from .common import SolveInfo, lasso_objective, lipschitz_constant
from .conv import (
    conv_spectrum,
    csc_adjoint,
    csc_encode,
    csc_learn,
    csc_lipschitz,
    csc_objective,
    csc_reconstruct,
    init_filters,
)
from .dictionary import (
    DictInfo,
    OnlineState,
    dict_learning,
    dict_learning_online,
    init_dictionary,
    init_online_state,
    online_step,
    update_dictionary,
)
from .encode import ALGORITHMS, sparse_encode
from .feature_sign import feature_sign
from .homotopy import homotopy
from .ista import fista, ista
from .omp import omp
from .patches import natural_image_patches
from .prox import (
    group_soft_threshold,
    hard_threshold,
    project_nonneg,
    project_unit_norm,
    soft_threshold,
)
from .topographic import (
    TopographyScore,
    topographic_encode,
    topographic_learn,
    topographic_objective,
    topographic_penalty,
    topographic_pooling,
    topography_score,
)

_LAZY = {"SparseCoder", "DictionaryLearning", "MiniBatchDictionaryLearning"}


def __getattr__(name: str):
    # The scikit-learn estimators are imported on first use: the solvers need no sklearn.
    if name in _LAZY:
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALGORITHMS",
    "DictInfo",
    "DictionaryLearning",
    "MiniBatchDictionaryLearning",
    "OnlineState",
    "SolveInfo",
    "SparseCoder",
    "TopographyScore",
    "conv_spectrum",
    "coordinate_descent",
    "csc_adjoint",
    "csc_encode",
    "csc_learn",
    "csc_lipschitz",
    "csc_objective",
    "csc_reconstruct",
    "dict_learning",
    "dict_learning_online",
    "feature_sign",
    "fista",
    "group_soft_threshold",
    "hard_threshold",
    "homotopy",
    "init_dictionary",
    "init_filters",
    "init_online_state",
    "ista",
    "lasso_objective",
    "lipschitz_constant",
    "natural_image_patches",
    "omp",
    "online_step",
    "project_nonneg",
    "project_unit_norm",
    "soft_threshold",
    "sparse_encode",
    "topographic_encode",
    "topographic_learn",
    "topographic_objective",
    "topographic_penalty",
    "topographic_pooling",
    "topography_score",
    "update_dictionary",
]
