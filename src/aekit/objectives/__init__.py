"""Objectives: per-sample losses (:mod:`.core`) plus weighted terms (:mod:`.terms`, all of
them, registered in :data:`TERMS`)."""

from .core import (
    LOSSES,
    GaussianNLL,
    Objective,
    Term,
    bce,
    cross_entropy,
    mse,
    output_float,
    prediction,
)
from .terms import (
    CONTRACTIVE_METHODS,
    FGSM,
    TERMS,
    VAT,
    Contractive,
    ContrastiveDivergence,
    DeadUnitEntropy,
    KLSparsity,
    L1Activity,
    PSDPrediction,
    WeightDecay,
    fgsm_loss,
    kl_bernoulli,
    make_objective,
    make_term,
    rbm_objective,
    vat_direction,
    vat_loss,
)

__all__ = ["CONTRACTIVE_METHODS", "FGSM", "LOSSES", "TERMS", "VAT", "Contractive",
           "ContrastiveDivergence", "DeadUnitEntropy", "GaussianNLL", "KLSparsity", "L1Activity",
           "Objective", "PSDPrediction", "Term", "WeightDecay", "bce", "cross_entropy",
           "fgsm_loss", "kl_bernoulli", "make_objective", "make_term", "mse", "output_float",
           "prediction", "rbm_objective", "vat_direction", "vat_loss"]
