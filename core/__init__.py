"""xadt: anomaly detection in X-ray security images.

Learns what normal stream-of-commerce scans look like and flags scans, and regions inside them,
that are unlike anything normal. ``xadt.fit(plugin, data)`` trains and calibrates a model;
``xadt.load_model(path)`` loads a saved one; ``model.score``, ``predict`` and
``decision_function`` take scans, files, folders or numpy images.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pluggy

from xadt.version import __version__

hookimpl = pluggy.HookimplMarker("xadt")
"""Marker for plugin hook implementations: decorate ``xadt_detectors`` with ``@xadt.hookimpl``."""

_LAZY = {
    "Detector": "xadt.detector",
    "DetectorState": "xadt.detector",
    "PatchScores": "xadt.detector",
    "ScanResult": "xadt.detector",
    "XadtError": "xadt.errors",
    "Model": "xadt.model",
    "Scan": "xadt.scans",
    "fit": "xadt.api",
    "load_model": "xadt.api",
    "save_model": "xadt.api",
}


def __getattr__(name: str) -> object:
    # The API is imported on first use, so `xadt --version` and plugin listings start fast.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'xadt' has no attribute {name!r}"
    raise AttributeError(msg)


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

if TYPE_CHECKING:
    from xadt.api import fit, load_model, save_model
    from xadt.detector import Detector, DetectorState, PatchScores, ScanResult
    from xadt.errors import XadtError
    from xadt.model import Model
    from xadt.scans import Scan
