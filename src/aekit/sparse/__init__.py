"""Sparse coding: proximal operators, batched solvers, dictionary learning, PSD, patches.

A leaf subpackage: it imports torch, numpy and scipy/scikit-learn only, never aekit's models,
training loop or estimators, so those can build on it.
"""

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
from .prox import (
    group_soft_threshold,
    hard_threshold,
    project_nonneg,
    project_unit_norm,
    soft_threshold,
)
from .solvers import (
    ALGORITHMS,
    SolveInfo,
    coordinate_descent,
    feature_sign,
    fista,
    ista,
    lasso_objective,
    lipschitz_constant,
    omp,
    sparse_encode,
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
    "coordinate_descent",
    "dict_learning",
    "dict_learning_online",
    "feature_sign",
    "fista",
    "group_soft_threshold",
    "hard_threshold",
    "init_dictionary",
    "init_online_state",
    "ista",
    "lasso_objective",
    "lipschitz_constant",
    "omp",
    "online_step",
    "project_nonneg",
    "project_unit_norm",
    "soft_threshold",
    "sparse_encode",
    "update_dictionary",
]
