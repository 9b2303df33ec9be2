"""Plotting, in one place: matplotlib figures for the analyses and the HTML report
(:mod:`~aekit.plots.figures`) and filter / atom / reconstruction grids written as PNG files
(:mod:`~aekit.plots.grids`, one filter-grid renderer :func:`filter_tiles` for all of them).

matplotlib is imported inside the functions; figures use the Agg canvas without pyplot's
global state.
"""

from .figures import (
    ERROR_UNIT,
    LOSS_UNITS,
    activation_plot,
    error_histograms,
    figure_png,
    image_rows,
    new_figure,
    rate_distortion_plot,
    scatter_maps,
    singular_value_plot,
    tangent_plot,
    training_curves,
    traversal_plot,
)
from .grids import (
    atom_grid_png,
    filter_grids,
    filter_tiles,
    save_atom_grid,
    save_filter_grid,
    save_png,
    save_reconstruction_grid,
)

__all__ = [
    "ERROR_UNIT",
    "LOSS_UNITS",
    "activation_plot",
    "atom_grid_png",
    "error_histograms",
    "figure_png",
    "filter_grids",
    "filter_tiles",
    "image_rows",
    "new_figure",
    "rate_distortion_plot",
    "save_atom_grid",
    "save_filter_grid",
    "save_png",
    "save_reconstruction_grid",
    "scatter_maps",
    "singular_value_plot",
    "tangent_plot",
    "training_curves",
    "traversal_plot",
]
