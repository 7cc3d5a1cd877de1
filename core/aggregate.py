"""What every patch detector shares: patch scores into a scan score and into per-view maps.

A patch detector scores windows of a view's air-cropped parcel. :func:`scan_score` reduces the
patch scores of a scan to one number (the worst patch, as the papers do, or the mean of the k
worst); :func:`window_map` spreads window scores over the pixels they cover, and
:func:`errors_map` places per-pixel patch errors (a reconstruction error) back into the view
through the crop. Maps are float32, NaN where nothing was scored.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from xadt.crop import CropBox
from xadt.errors import XadtError

__all__ = ["EMPTY_SCAN_SCORE", "REDUCTIONS", "Reduction", "errors_map", "scan_score", "window_map"]

Reduction = Literal["max", "top-k mean"]
REDUCTIONS: tuple[Reduction, ...] = ("max", "top-k mean")

EMPTY_SCAN_SCORE = 1e30
"""Score (and partial scores) of a scan that is all air in every view: far above any real score,
so the scan is always flagged for a person to look at, yet finite (JSON, sums, squares)."""


def scan_score(scores: np.ndarray, reduction: Reduction = "max", k: int = 1) -> float:
    """A scan's anomaly score from its patch scores: the maximum, or the mean of the ``k`` largest.

    With fewer than ``k`` patches the top-k mean is the mean of all of them.

    Raises:
        XadtError: no patch scores, an unknown reduction or ``k`` < 1.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        msg = "scan_score: a scan score needs at least one patch score"
        raise XadtError(msg)
    if reduction == "max":
        return float(values.max())
    if reduction != "top-k mean":
        msg = f"scan_score: reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}"
        raise XadtError(msg)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"scan_score: k must be an integer >= 1; got {k!r}"
        raise XadtError(msg)
    take = min(k, values.size)
    return float(np.partition(values, values.size - take)[values.size - take :].mean())


def window_map(
    boxes: np.ndarray, scores: np.ndarray, crop: CropBox | None, shape: tuple[int, int]
) -> np.ndarray:
    """A view's map: the mean score of the windows covering each pixel of the crop.

    Args:
        boxes: (N, 4) windows ``(y0, x0, y1, x1)`` in full-view coordinates; parts outside the
            crop (a window may overhang a parcel narrower than itself) are ignored.
        scores: (N,) window scores.
        crop: the view's crop box; None for a view with no parcel (an all-NaN map).
        shape: the view's (H, W).

    Returns:
        float32 (H, W), NaN outside the crop and wherever no window covers a pixel.
    """
    from xadt.kernels import window_map as kernel

    if crop is None:
        return np.full(shape, np.nan, dtype=np.float32)
    offset = np.array([crop.y0, crop.x0, crop.y0, crop.x0], dtype=np.int64)
    inside = kernel(np.asarray(boxes, dtype=np.int64) - offset, scores, crop.height, crop.width)
    return np.asarray(crop.paste(inside, shape), dtype=np.float32)


def errors_map(
    boxes: np.ndarray, errors: np.ndarray, crop: CropBox | None, shape: tuple[int, int]
) -> np.ndarray:
    """A view's per-pixel map from per-pixel patch errors (e.g. reconstruction errors).

    Each patch's (p, p) error map is resized to its window in the view (windows of a detector
    that downscales are larger than the patch) and the errors of overlapping windows are
    averaged.

    Args:
        boxes: (N, 4) windows in full-view coordinates; parts outside the crop are ignored.
        errors: (N, p, p) per-pixel errors of each patch.
        crop: the view's crop box; None for a view with no parcel (an all-NaN map).
        shape: the view's (H, W).

    Returns:
        float32 (H, W), NaN outside the crop and wherever no window covers a pixel.
    """
    if crop is None or len(boxes) == 0:
        return np.full(shape, np.nan, dtype=np.float32)
    import torch

    total = np.zeros((crop.height, crop.width), dtype=np.float64)
    count = np.zeros((crop.height, crop.width), dtype=np.int32)
    values = torch.from_numpy(np.ascontiguousarray(errors, dtype=np.float32))[:, None]
    for (y0, x0, y1, x1), error in zip(np.asarray(boxes, dtype=np.int64), values, strict=True):
        size = (int(y1 - y0), int(x1 - x0))
        if error.shape[-2:] != size:
            error = torch.nn.functional.interpolate(
                error[None], size=size, mode="bilinear", align_corners=False
            )[0]
        window = error[0].numpy()
        top, left = max(y0 - crop.y0, 0), max(x0 - crop.x0, 0)
        bottom, right = min(y1 - crop.y0, crop.height), min(x1 - crop.x0, crop.width)
        if bottom <= top or right <= left:
            continue
        dy, dx = top - (y0 - crop.y0), left - (x0 - crop.x0)
        total[top:bottom, left:right] += window[dy : dy + bottom - top, dx : dx + right - left]
        count[top:bottom, left:right] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.where(count > 0, total / count, np.nan).astype(np.float32)
    return np.asarray(crop.paste(inside, shape), dtype=np.float32)
