"""Scans: one parcel or bag, with one or more views kept in their native dtype."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Encoding = Literal["rgb", "grey", "dual-energy"]
"""How a view's channels were encoded: false-colour RGB, grey, or dual-energy (high, low)."""

_VIEW_DTYPES = (np.uint8, np.uint16, np.float32)
_CHANNELS = {"rgb": 3, "grey": 1, "dual-energy": 2}


@dataclass(frozen=True)
class Scan:
    """One scan: an id, its views and where they came from.

    Attributes:
        id: unique name of the scan (the file stem without view suffixes).
        views: one (H, W, C) array per view, uint8, uint16 or float32, never converted on read.
        encoding: how the channels were encoded; C is 3 for rgb, 1 for grey, 2 for dual-energy.
        sources: the files the views were read from (empty for scans made in memory).
        masks: optional ground truth, one (H, W) bool array per view (None where a view has none).
    """

    id: str
    views: Sequence[np.ndarray]
    encoding: Encoding = "rgb"
    sources: Sequence[Path] = ()
    masks: Sequence[np.ndarray | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.views:
            msg = f"scan {self.id!r} has no views"
            raise ValueError(msg)
        if self.encoding not in _CHANNELS:
            msg = f"scan {self.id!r}: unknown encoding {self.encoding!r}"
            raise ValueError(msg)
        for k, view in enumerate(self.views):
            if view.ndim != 3 or view.dtype.type not in _VIEW_DTYPES:
                msg = (
                    f"scan {self.id!r} view {k}: expected an (H, W, C) uint8, uint16 or float32 "
                    f"array, got shape {view.shape} dtype {view.dtype}"
                )
                raise ValueError(msg)
            if view.shape[2] != _CHANNELS[self.encoding]:
                msg = (
                    f"scan {self.id!r} view {k}: {self.encoding} views have "
                    f"{_CHANNELS[self.encoding]} channels, got {view.shape[2]}"
                )
                raise ValueError(msg)
        if self.masks is not None:
            if len(self.masks) != len(self.views):
                msg = f"scan {self.id!r}: {len(self.masks)} masks for {len(self.views)} views"
                raise ValueError(msg)
            for k, (mask, view) in enumerate(zip(self.masks, self.views, strict=True)):
                if mask is not None and mask.shape != view.shape[:2]:
                    msg = (
                        f"scan {self.id!r} view {k}: mask shape {mask.shape} does not match "
                        f"the view's {view.shape[:2]}"
                    )
                    raise ValueError(msg)
