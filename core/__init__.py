"""xadt: anomaly detection in X-ray security images.

Learns what normal stream-of-commerce scans look like and flags scans, and regions inside them,
that are unlike anything normal.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("xadt")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

hookimpl = pluggy.HookimplMarker("xadt")
"""Marker for plugin hook implementations: decorate ``xadt_detectors`` with ``@xadt.hookimpl``."""

from xadt.detector import Detector, DetectorState, PatchScores, ScanResult  # noqa: E402
from xadt.errors import XadtError  # noqa: E402
from xadt.scans import Scan  # noqa: E402

__all__ = [
    "Detector",
    "DetectorState",
    "PatchScores",
    "Scan",
    "ScanResult",
    "XadtError",
    "__version__",
    "hookimpl",
]
