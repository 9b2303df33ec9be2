"""Analyses of trained models: unit activity, encoder Jacobians and the learned manifold."""

from .activity import unit_activity
from .manifold import encoder_jacobian, jacobian_spectrum, tangent_directions

__all__ = ["encoder_jacobian", "jacobian_spectrum", "tangent_directions", "unit_activity"]
