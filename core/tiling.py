"""Tiling: square windows over a view and the normalised patches under them.

Thin wrappers over the kernels ``xadt.kernels.tile_boxes`` and ``xadt.kernels.extract_patches``
that take a view array and fill in the view's defaults (its size, white air as padding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xadt.config import is_int
from xadt.errors import XadtError
from xadt.scans import full_scale


def tile_view(view: np.ndarray, *, size: int = 224, max_stride: int = 112) -> np.ndarray:
    """The windows that tile one (H, W, C) view.

    Per axis of length L: one window if L <= ``size`` (centred, so its start is negative when
    L < ``size``), else n = ceil((L - size) / max_stride) + 1 windows starting at
    round(k (L - size) / (n - 1)): evenly spaced, the first at 0, the last flush with the edge,
    stride <= ``max_stride``. Rows and columns are combined as a Cartesian product, so every pixel
    is covered. A 764 x 700 view gives 6 x 6 = 36 windows at 224 / 112.

    Args:
        view: the (H, W, C) view (only its shape is used).
        size: window side in pixels.
        max_stride: largest step between neighbouring windows, in 1..``size``.

    Returns:
        int64 (N, 4) boxes ``(y0, x0, y1, x1)`` with ``y1 - y0 == x1 - x0 == size``.

    Raises:
        XadtError: ``size`` or ``max_stride`` is out of range.
        ValueError: ``view`` has fewer than two dimensions.
    """
    _check_tiling(size, max_stride)
    if view.ndim < 2:
        msg = f"tile_view: expected an (H, W, C) view, got shape {view.shape}"
        raise ValueError(msg)
    from xadt.kernels import tile_boxes  # lazy: keeps `import xadt.tiling` free of the extension

    return tile_boxes(int(view.shape[0]), int(view.shape[1]), int(size), int(max_stride))


def patches_of(
    view: np.ndarray,
    boxes: np.ndarray,
    *,
    size: int,
    mean: float | Sequence[float] | np.ndarray,
    std: float | Sequence[float] | np.ndarray,
    pad_value: float | None = None,
) -> np.ndarray:
    """The normalised patches of ``view`` under ``boxes``, ready for a backbone.

    Each value becomes ``(raw / white - mean) / std`` per channel, where white is the view's full
    scale (255, 65535 or 1.0). Parts of a window outside the view read ``pad_value``.

    Args:
        view: (H, W, C) uint8, uint16 or float32 view, read in place (any strides).
        boxes: int64 (N, 4) windows ``(y0, x0, y1, x1)``, each ``size`` x ``size``
            (as from :func:`tile_view`).
        size: window side in pixels.
        mean: per-channel mean in [0, 1] units: a scalar or C values.
        std: per-channel standard deviation in [0, 1] units: a scalar or C values, each > 0.
        pad_value: value outside the view, in the view's raw units; default white air
            (255 for uint8, 65535 for uint16, 1.0 for float32).

    Returns:
        float32 (N, C, size, size) patches.

    Raises:
        ValueError: from the kernel, for a bad view, boxes of the wrong size, or bad mean/std.
    """
    from xadt.kernels import extract_patches  # lazy, as in tile_view

    if pad_value is None:
        pad_value = full_scale(view.dtype)
    return extract_patches(view, boxes, size, mean, std, pad_value)


def _check_tiling(size: object, max_stride: object) -> None:
    if not is_int(size) or size < 1:  # type: ignore[operator]
        msg = f"The 'size' option of tiling must be an integer >= 1. Got {size!r} instead."
        raise XadtError(msg)
    if not is_int(max_stride) or not 1 <= max_stride <= size:  # type: ignore[operator]
        msg = (
            f"The 'max_stride' option of tiling must be an integer in 1..size ({size}), so that "
            f"windows leave no gaps. Got {max_stride!r} instead."
        )
        raise XadtError(msg)
