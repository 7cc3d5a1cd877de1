"""The built-in ``dsagan`` detector: a dense-skip generator and a self-attention discriminator
with spectral normalisation (Zawar et al., arXiv 2211.13808), methods.md §2.

Skip-GANomaly's losses and score on a UNet++ generator; almost every layer-level choice is ours
(Z-2 to Z-7), configurable and listed in the README. Importing this package is cheap: torch
loads when the detector class is first asked for.
"""

from __future__ import annotations

import xadt

__all__ = ["xadt_detectors"]


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors of this plugin: ``dsagan``."""
    from xadt.plugins.dsagan.detector import DsaganDetector

    return [DsaganDetector]
