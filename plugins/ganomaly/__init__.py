"""The built-in ``ganomaly`` detector: GANomaly (Akcay et al., ACCV 2018), methods.md §3.

An encoder–decoder–encoder generator trained adversarially on patches of normal scans; a patch's
anomaly score is the distance between the code of the patch and the code of its reconstruction.
Importing this package is cheap: torch loads when the detector class is first asked for.
"""

from __future__ import annotations

import xadt

__all__ = ["xadt_detectors"]


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors of this plugin: ``ganomaly``."""
    from xadt.plugins.ganomaly.detector import GanomalyDetector

    return [GanomalyDetector]
