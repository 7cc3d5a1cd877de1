"""The built-in ``skipganomaly`` detector: Skip-GANomaly (Akcay et al., IJCNN 2019), methods.md §4.

A UNet generator with skip connections trained adversarially on patches of normal scans, its
discriminator doubling as the feature extractor; a patch's anomaly score mixes the
reconstruction error with the discriminator-feature error. Importing this package is cheap:
torch loads when the detector class is first asked for.
"""

from __future__ import annotations

import xadt

__all__ = ["xadt_detectors"]


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors of this plugin: ``skipganomaly``."""
    from xadt.plugins.skipganomaly.detector import SkipGanomalyDetector

    return [SkipGanomalyDetector]
