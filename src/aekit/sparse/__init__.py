"""Sparse coding: proximal operators, batched solvers, dictionary learning, PSD, patches.

A leaf subpackage: it imports torch, numpy and scipy/scikit-learn only, never aekit's models,
training loop or estimators, so those can build on it.
"""

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

__all__ = [
    "ALGORITHMS",
    "SolveInfo",
    "coordinate_descent",
    "feature_sign",
    "fista",
    "group_soft_threshold",
    "hard_threshold",
    "ista",
    "lasso_objective",
    "lipschitz_constant",
    "omp",
    "project_nonneg",
    "project_unit_norm",
    "soft_threshold",
    "sparse_encode",
]
