"""The plugin contract of xadt: every hook a plugin package may implement.

A plugin is a module (or object) registered under the ``xadt`` entry-point group whose functions
are marked with ``@xadt.hookimpl``. Hooks may gain arguments over time; none is ever removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from xadt.detector import Detector

hookspec = pluggy.HookspecMarker("xadt")


@hookspec
def xadt_detectors() -> list[type[Detector]]:
    """Return the detector classes this plugin provides.

    Each class subclasses ``xadt.Detector`` and has a unique lower-case ``name`` and a ``Config``
    dataclass whose fields all have defaults.
    """


@hookspec
def xadt_backbones() -> dict[str, Callable[..., Any]]:
    """Return backbone factories by name.

    A factory takes keyword options (e.g. ``weights=PATH``) and returns a ``torch.nn.Module``
    that maps a float32 (N, 3, H, W) batch to per-patch features.
    """
