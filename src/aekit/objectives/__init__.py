"""Objectives: per-sample losses (:mod:`.core`) plus weighted terms (:mod:`.terms`, all of
them, registered in :data:`TERMS`)."""

from .auxk import AuxK
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
    batch_stats_frozen,
    fgsm_loss,
    kl_bernoulli,
    make_objective,
    make_term,
    rbm_objective,
    vat_direction,
    vat_loss,
)
from .variational import (
    GaussianKL,
    IWAEBound,
    gaussian_kl,
    iwae_log_weights,
    kl_weight,
    log_mean_exp,
    log_normal,
    variational_objective,
)

__all__ = ["CONTRACTIVE_METHODS", "FGSM", "LOSSES", "TERMS", "VAT", "AuxK", "Contractive",
           "ContrastiveDivergence", "DeadUnitEntropy", "GaussianKL", "GaussianNLL", "IWAEBound",
           "KLSparsity", "L1Activity", "Objective", "PSDPrediction", "Term", "WeightDecay",
           "batch_stats_frozen", "bce", "cross_entropy", "fgsm_loss", "gaussian_kl",
           "iwae_log_weights", "kl_bernoulli", "kl_weight", "log_mean_exp", "log_normal",
           "make_objective", "make_term", "mse",
           "output_float", "prediction", "rbm_objective", "variational_objective",
           "vat_direction", "vat_loss"]

TERMS[AuxK.name] = AuxK  # top-k SAE term (aekit.sae)
