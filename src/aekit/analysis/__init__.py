"""Analyses of trained models (arrays and numbers; plots live in :mod:`aekit.plots`).

Unit activity and dead units, encoder Jacobians and the learned manifold, reconstructions and
their errors, code maps, latent traversals and interpolation, rate–distortion curves.
"""

from ..models.jacobian import batch_jacobian
from . import latent, rate_distortion, reconstruction
from .activity import ActivityMonitor, ActivityStats, activity_stats, unit_activity
from .latent import code_map, interpolate, latent_traversal
from .manifold import encoder_jacobian, jacobian_spectrum, tangent_directions
from .rate_distortion import pca_error_curve
from .reconstruction import reconstruction_grid, sample_errors, worst_reconstructions

__all__ = ["ActivityMonitor", "ActivityStats", "activity_stats", "batch_jacobian", "code_map",
           "encoder_jacobian", "interpolate", "jacobian_spectrum", "latent", "latent_traversal",
           "pca_error_curve", "rate_distortion", "reconstruction", "reconstruction_grid",
           "sample_errors", "tangent_directions", "unit_activity", "worst_reconstructions"]
