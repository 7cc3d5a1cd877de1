"""The maths of Griffin et al.'s Gaussian detector (methods.md §1.4–1.6), on feature arrays.

No backbone, image I/O or plugin here: the ``gaussian`` plugin feeds these pieces with features.

Fitting is streaming. Appearance: :class:`ThresholdChooser` over raw pool activations picks t
(G-5; or use a fixed t) in a first pass (the binary moments depend on t), then a :class:`Moments`
over ``binarize(activations, t)`` of every normal patch feeds :meth:`AppearanceModel.fit`.
Semantic: :func:`image_vectors` (one per scan) into a ``Moments(D, fourth=True)`` feeds
:meth:`SemanticModel.fit`. Combined: :meth:`Combination.fit` on both models' training-scan
scores. Every accumulator merges (``merge``), and every fitted piece round-trips through
``to_state`` / ``from_state`` (arrays + JSON meta; see :func:`nest_states`). All scores are
anomaly scores: higher = more anomalous.
"""

from __future__ import annotations

from xadt.gaussian.appearance import (
    RIDGE_CANDIDATES,
    AppearanceModel,
    adjusted_variance,
    clip_probability,
    held_out_log_likelihood,
    naive_variance,
    select_ridge,
)
from xadt.gaussian.binarize import DEFAULT_GRID, ThresholdChooser, binarize, threshold_grid
from xadt.gaussian.combine import Combination
from xadt.gaussian.moments import Moments
from xadt.gaussian.semantic import SemanticModel, fit_log_sd, image_vectors
from xadt.gaussian.state import nest_states, sub_state

__all__ = [
    "DEFAULT_GRID",
    "RIDGE_CANDIDATES",
    "AppearanceModel",
    "Combination",
    "Moments",
    "SemanticModel",
    "ThresholdChooser",
    "adjusted_variance",
    "binarize",
    "clip_probability",
    "fit_log_sd",
    "held_out_log_likelihood",
    "image_vectors",
    "naive_variance",
    "nest_states",
    "select_ridge",
    "sub_state",
    "threshold_grid",
]
