"""Self-contained HTML reports (images embedded as base64 PNG, no script, no network).

``write_report(run_dir)`` describes one run directory: configuration, data, metrics, training
curves, the comparison with PCA of the same code size, and every analysis of
:mod:`aekit.analysis` that applies to the model and data. ``write_comparison(run_dirs, out)``
puts several runs side by side.
"""

from .compare import rate_distortion_from_runs, write_comparison
from .run import IMAGE_SECTIONS, write_report

__all__ = ["IMAGE_SECTIONS", "rate_distortion_from_runs", "write_comparison", "write_report"]
