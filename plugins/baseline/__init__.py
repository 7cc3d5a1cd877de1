"""The built-in ``baseline`` detector: a Gaussian over three global features of a scan."""

from __future__ import annotations

import xadt
from xadt.plugins.baseline.detector import BaselineConfig, BaselineDetector

__all__ = ["BaselineConfig", "BaselineDetector", "xadt_detectors"]


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors of this plugin: ``baseline``."""
    return [BaselineDetector]
