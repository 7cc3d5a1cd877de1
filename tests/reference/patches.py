"""Plain references of tile_boxes, extract_patches and window_map: loops and float64, no tricks."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

_SCALES = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535, np.dtype(np.float32): 1}


def axis_offsets_ref(length: int, size: int, max_stride: int) -> list[int]:
    """Window starts along one side, as methods.md §1.2 words them (round half up)."""
    if length < size:
        return [(length - size) // 2]
    if length == size:
        return [0]
    n = math.ceil(Fraction(length - size, max_stride)) + 1
    return [math.floor(Fraction(k * (length - size), n - 1) + Fraction(1, 2)) for k in range(n)]


def tile_boxes_ref(height: int, width: int, size: int, max_stride: int) -> np.ndarray:
    """(N, 4) int64 boxes, row-major: every x start for the first y start, then the next y."""
    rows = [
        (y, x, y + size, x + size)
        for y in axis_offsets_ref(height, size, max_stride)
        for x in axis_offsets_ref(width, size, max_stride)
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def extract_patches_ref(
    view: np.ndarray,
    boxes: np.ndarray,
    size: int,
    mean: float | list[float],
    std: float | list[float],
    pad_value: float,
) -> np.ndarray:
    """float64 (N, C, size, size): each window copied onto a pad-filled canvas, then normalised."""
    view = np.asarray(view)
    height, width, channels = view.shape
    scale = _SCALES[view.dtype]
    mean64 = np.broadcast_to(np.asarray(mean, dtype=np.float64), (channels,))
    std64 = np.broadcast_to(np.asarray(std, dtype=np.float64), (channels,))
    out = np.empty((len(boxes), channels, size, size))
    for n, (y0, x0, y1, x1) in enumerate(np.asarray(boxes, dtype=np.int64).tolist()):
        assert y1 - y0 == size
        assert x1 - x0 == size
        canvas = np.full((size, size, channels), float(pad_value))
        ya, yb = max(y0, 0), min(y1, height)
        xa, xb = max(x0, 0), min(x1, width)
        if ya < yb and xa < xb:
            canvas[ya - y0 : yb - y0, xa - x0 : xb - x0] = view[ya:yb, xa:xb]
        out[n] = ((canvas / scale - mean64) / std64).transpose(2, 0, 1)
    return out


def window_map_ref(boxes: np.ndarray, scores: np.ndarray, height: int, width: int) -> np.ndarray:
    """float64 (height, width): sum and count of the covering windows, one window at a time."""
    total = np.zeros((height, width))
    count = np.zeros((height, width), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf and 0 / 0 are meant: NaN
        for (y0, x0, y1, x1), score in zip(
            np.asarray(boxes, dtype=np.int64).tolist(),
            np.asarray(scores, dtype=np.float64).tolist(),
            strict=True,
        ):
            ya, yb = max(y0, 0), min(y1, height)
            xa, xb = max(x0, 0), min(x1, width)
            if ya < yb and xa < xb:
                total[ya:yb, xa:xb] += score
                count[ya:yb, xa:xb] += 1
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
