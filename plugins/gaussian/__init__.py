"""The built-in ``gaussian`` detector: Griffin et al. (2019), CNN patch features under Gaussians.

``detector`` streams scans through the backbone; the maths works on feature arrays alone:
``binarize`` (the threshold chooser picks t on raw pool activations, G-5), ``appearance`` (binary
patch vectors under a Gaussian with adjusted variances), ``semantic`` (per-scan maximum logits,
top-n excursions) and ``combine`` (inverse-variance weights), each fitted from the mergeable
:class:`xadt.moments.Moments` and round-tripping through ``to_state`` / ``from_state``. All scores
are anomaly scores: higher = more anomalous. Importing this package is cheap: torch and the
backbone load only when a detector fits or scores.
"""

from __future__ import annotations

import xadt
from xadt.plugins.gaussian.config import (
    PRESETS,
    GaussianConfig,
    griffin2019,
    griffin2019_resnet152,
)
from xadt.plugins.gaussian.detector import EMPTY_SCAN_SCORE, GaussianDetector

__all__ = [
    "EMPTY_SCAN_SCORE",
    "PRESETS",
    "GaussianConfig",
    "GaussianDetector",
    "griffin2019",
    "griffin2019_resnet152",
    "xadt_detectors",
]


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors of this plugin: ``gaussian``."""
    return [GaussianDetector]
