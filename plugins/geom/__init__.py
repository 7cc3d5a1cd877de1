"""The built-in ``geom`` detector: GeoTrans (Golan & El-Yaniv, 2018), anomaly detection by
classifying geometric transformations of patches (methods.md §5).

``transforms`` holds the 72 transformations as gather tables, ``network`` the Wide ResNet behind
them, ``dirichlet`` the maximum-likelihood fit and the normality scores, ``detector`` the patch
detector on the training engine. Importing this package is cheap: torch loads only when the
detector class is asked for.
"""

from __future__ import annotations

import xadt

__all__ = ["xadt_detectors"]


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors of this plugin: ``geom``."""
    from xadt.plugins.geom.detector import GeomDetector

    return [GeomDetector]
