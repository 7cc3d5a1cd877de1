"""xadt: anomaly detection in X-ray security images.

Learns what normal stream-of-commerce scans look like and flags scans, and regions inside them,
that are unlike anything normal. ``xadt.fit(plugin, data)`` trains and calibrates a model;
``xadt.load_model(path)`` loads a saved one; ``model.score``, ``predict`` and
``decision_function`` take scans, files, folders or numpy images.
"""

from __future__ import annotations

import pluggy

from xadt.version import __version__

hookimpl = pluggy.HookimplMarker("xadt")
"""Marker for plugin hook implementations: decorate ``xadt_detectors`` with ``@xadt.hookimpl``."""

from xadt.api import fit, load_model, save_model  # noqa: E402
from xadt.detector import Detector, DetectorState, PatchScores, ScanResult  # noqa: E402
from xadt.errors import XadtError  # noqa: E402
from xadt.model import Model  # noqa: E402
from xadt.scans import Scan  # noqa: E402

__all__ = [
    "Detector",
    "DetectorState",
    "Model",
    "PatchScores",
    "Scan",
    "ScanResult",
    "XadtError",
    "__version__",
    "fit",
    "hookimpl",
    "load_model",
    "save_model",
]
