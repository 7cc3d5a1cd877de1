"""Scans from whatever a Python user holds: a Scan, paths, a folder, numpy images, or lists.

:func:`as_scans` is how ``Model.score``, ``predict`` and ``decision_function`` and ``xadt.fit``
accept input, so a user never has to build :class:`xadt.Scan` objects by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xadt.errors import XadtError
from xadt.scans import Scan, iter_scans, read_scan

__all__ = ["Scans", "as_scans"]

Scans = Any
"""What the API takes as scans: a Scan, a path, a folder, an array, or a sequence of these."""

_ENCODING = {1: "grey", 2: "dual-energy", 3: "rgb"}


def as_scans(x: Scans) -> Iterable[Scan]:
    """Scans from whatever the user holds; a folder stays lazy (read one scan at a time).

    Args:
        x: a :class:`Scan`; a path to an image file (read with :func:`xadt.scans.read_scan`) or
            to a folder of scans (:func:`xadt.scans.iter_scans`); a numpy array, (H, W) grey or
            (H, W, C) with C = 1 (grey), 2 (dual-energy high/low) or 3 (RGB), in uint8, uint16
            or float32 (other dtypes are refused); or a list of any of these — where a list
            holds arrays, each array is one scan, and a list of lists of arrays gives each scan
            several views.

    Raises:
        XadtError: something that is none of these, naming what it is.
    """
    if isinstance(x, Scan):
        return [x]
    if isinstance(x, str | os.PathLike):
        path = Path(x)
        if path.is_dir():
            return iter_scans(path)
        return [read_scan(path)]
    if isinstance(x, np.ndarray):
        return [_array_scan(x, "array")]
    if isinstance(x, Sequence) or _is_iterable(x):
        return list(_many(list(x)))
    msg = (
        f"cannot score a {type(x).__name__}: pass an xadt.Scan, a file or folder path, a numpy "
        "image, or a list of these"
    )
    raise XadtError(msg)


def _many(items: list[Any]) -> Iterator[Scan]:
    for k, item in enumerate(items):
        if isinstance(item, np.ndarray):
            yield _array_scan(item, f"array-{k:04d}")
        elif (
            isinstance(item, list | tuple) and item and all(isinstance(v, np.ndarray) for v in item)
        ):
            yield _views_scan(list(item), f"array-{k:04d}")
        else:
            yield from as_scans(item)


def _array_scan(array: np.ndarray, scan_id: str) -> Scan:
    return _views_scan([array], scan_id)


def _views_scan(arrays: list[np.ndarray], scan_id: str) -> Scan:
    views = []
    for k, array in enumerate(arrays):
        view = array[..., None] if array.ndim == 2 else array
        if view.ndim != 3 or view.shape[2] not in _ENCODING:
            msg = (
                f"{scan_id} view {k}: an image must be (H, W) or (H, W, C) with C = 1, 2 or 3; "
                f"got shape {array.shape}"
            )
            raise XadtError(msg)
        if view.dtype not in (np.uint8, np.uint16, np.float32):
            msg = (
                f"{scan_id} view {k}: pixels must be uint8, uint16 or float32 (got {view.dtype}); "
                "convert with .astype(...) and the scale you mean"
            )
            raise XadtError(msg)
        views.append(np.ascontiguousarray(view))
    channels = {v.shape[2] for v in views}
    if len(channels) != 1:
        msg = f"{scan_id}: its views have different channel counts {sorted(channels)}"
        raise XadtError(msg)
    return Scan(scan_id, views, encoding=_ENCODING[channels.pop()])  # type: ignore[arg-type]


def _is_iterable(x: Any) -> bool:
    if isinstance(x, str | bytes | dict):
        return False
    try:
        iter(x)
    except TypeError:
        return False
    return True
