"""Tiling of views into square windows, normalised patch extraction and window-averaged maps."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import xadt.kernels.cuda as cuda
from xadt import _kernels
from xadt.kernels._arrays import is_torch, like, require_float, require_ndim, to_numpy

if TYPE_CHECKING:
    import torch

__all__ = ["extract_patches", "tile_boxes", "window_map"]

ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")

# Raw pixel value that maps to 1.0 before normalisation, per accepted view dtype.
_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}
# Coordinates beyond this are refused so that no box arithmetic (y1 - y0, y0 + i) overflows int64.
_COORD_LIMIT = 2**61
# Sizes and sides beyond this are refused: no image is that large, and int64 products stay exact.
_SIDE_LIMIT = 2**31 - 1


def _integer(value: Any, name: str, minimum: int) -> int:
    """``value`` as a Python int in [``minimum``, 2**31 - 1], or ``ValueError`` naming ``name``."""
    if isinstance(value, bool):
        msg = f"{name}: expected an integer, got {value!r}"
        raise ValueError(msg)
    try:
        result = operator.index(value)
    except TypeError:
        msg = f"{name}: expected an integer, got {value!r}"
        raise ValueError(msg) from None
    if result < minimum:
        msg = f"{name}: must be >= {minimum}, got {result}"
        raise ValueError(msg)
    if result > _SIDE_LIMIT:
        msg = f"{name}: must be <= {_SIDE_LIMIT}, got {result}"
        raise ValueError(msg)
    return result


def _boxes(boxes: Any) -> np.ndarray:
    """``boxes`` as a C-contiguous int64 (N, 4) array, validated (on the host, from a CUDA
    tensor too: they are few)."""
    arr = to_numpy(boxes.cpu() if cuda.is_cuda(boxes) else boxes, "boxes")
    require_ndim(arr, 2, "boxes", "(N, 4)")
    if arr.shape[1] != 4:
        msg = f"boxes: expected shape (N, 4) of (y0, x0, y1, x1), got {arr.shape}"
        raise ValueError(msg)
    if arr.dtype.kind not in "iu":
        msg = f"boxes: expected an integer dtype, got {arr.dtype}"
        raise ValueError(msg)
    if arr.size and (arr.min() < -_COORD_LIMIT or arr.max() > _COORD_LIMIT):
        msg = "boxes: coordinates must lie within ±2**61"
        raise ValueError(msg)
    return np.ascontiguousarray(arr, dtype=np.int64)


def _axis_offsets(length: int, size: int, max_stride: int) -> list[int]:
    """Window starts along one side (methods.md §1.2), in exact integer arithmetic."""
    if length <= size:
        return [(length - size) // 2]  # one window, centred; negative when the side is short
    span = length - size
    gaps = -(-span // max_stride)  # ceil(span / max_stride): the number of strides
    # round(k * span / gaps), half up: floor((2 * k * span + gaps) / (2 * gaps))
    return [(2 * k * span + gaps) // (2 * gaps) for k in range(gaps + 1)]


def tile_boxes(height: int, width: int, size: int, max_stride: int) -> np.ndarray:
    """Square windows tiling a ``height`` × ``width`` view, flush with its edges.

    Along each side of length ``L`` (methods.md §1.2): if ``L > size``, there are
    ``n = ceil((L - size) / max_stride) + 1`` windows, starting at
    ``round(k * (L - size) / (n - 1))`` for ``k = 0 … n - 1`` (rounding half up), so the first
    starts at 0, the last ends at ``L`` and neighbours are at most ``max_stride`` apart; if
    ``L == size``, one window at 0; if ``L < size``, one window centred on the side, starting at
    ``(L - size) // 2`` (negative), whose overhang :func:`extract_patches` pads.

    Parameters
    ----------
    height, width : int
        Size of the view in pixels, >= 1.
    size : int
        Side of the square windows in pixels, >= 1.
    max_stride : int
        Largest allowed distance between the starts of neighbouring windows, >= 1. A stride larger
        than ``size`` leaves gaps between windows.

    Returns
    -------
    numpy.ndarray
        int64 array of shape (N, 4): rows ``(y0, x0, y1, x1)`` with ``y1 - y0 == x1 - x0 == size``,
        in row-major order (every window of the first row of windows, then the second, ...).

    Raises
    ------
    ValueError
        If an argument is not an integer or is below its minimum; the message names it.
    """
    height = _integer(height, "height", 1)
    width = _integer(width, "width", 1)
    size = _integer(size, "size", 1)
    max_stride = _integer(max_stride, "max_stride", 1)
    ys = np.asarray(_axis_offsets(height, size, max_stride), dtype=np.int64)
    xs = np.asarray(_axis_offsets(width, size, max_stride), dtype=np.int64)
    y0 = np.repeat(ys, xs.size)
    x0 = np.tile(xs, ys.size)
    return np.stack([y0, x0, y0 + size, x0 + size], axis=1)


def _per_channel(value: Any, channels: int, name: str) -> np.ndarray:
    """``value`` (a scalar or one value per channel) as float64 (channels,)."""
    arr = to_numpy(value, name)
    if arr.ndim == 0:
        arr = np.full(channels, float(arr))
    elif arr.ndim != 1 or arr.shape[0] != channels:
        msg = (
            f"{name}: expected a scalar or {channels} values (one per channel of view), "
            f"got shape {arr.shape}"
        )
        raise ValueError(msg)
    return np.ascontiguousarray(arr, dtype=np.float64)


def extract_patches(
    view: ArrayT,
    boxes: Any,
    size: int,
    mean: Any = 0.0,
    std: Any = 1.0,
    pad_value: float = 0.0,
) -> ArrayT:
    """Cut square windows out of a view and normalise them, in one pass.

    Each output value is ``(pixel / scale - mean[c]) / std[c]`` for channel ``c``, with ``scale``
    255 for uint8 views, 65535 for uint16 and 1 for float32. Pixels of a window that fall outside
    the view take ``pad_value`` and are normalised like any other pixel.

    Parameters
    ----------
    view : numpy.ndarray or torch.Tensor
        (H, W, C) image of dtype uint8, uint16 or float32, any strides. It is read in place, never
        converted or copied. A CUDA tensor runs the CUDA kernel and gives a CUDA tensor.
    boxes : array-like of int
        (N, 4) windows ``(y0, x0, y1, x1)``, each ``size`` × ``size``; they may overhang the view
        or lie outside it. :func:`tile_boxes` makes them.
    size : int
        Side of the windows in pixels, >= 1.
    mean, std : float or sequence of float
        Normalisation, a scalar for all channels or C values; ``std`` must be > 0.
    pad_value : float
        Value of pixels outside the view, in the view's raw units (e.g. 255 for white air in a
        uint8 view, 65535 in a uint16 one).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 patches of shape (N, C, size, size), the same kind of object as ``view``.

    Raises
    ------
    ValueError
        If an argument has the wrong shape, dtype or value; the message names the argument.
    """
    on_gpu = cuda.is_cuda(view)
    if on_gpu:
        channels = cuda.check_view(view)
    else:
        arr = to_numpy(view, "view")
        require_ndim(arr, 3, "view", "(H, W, C)")
        if arr.dtype not in _SCALES:
            msg = (
                "view: expected dtype uint8, uint16 or float32 (native byte order), "
                f"got {arr.dtype}"
            )
            raise ValueError(msg)
        channels = arr.shape[2]
    size = _integer(size, "size", 1)
    box_arr = _boxes(boxes)
    wrong = np.flatnonzero(
        (box_arr[:, 2] - box_arr[:, 0] != size) | (box_arr[:, 3] - box_arr[:, 1] != size)
    )
    if wrong.size:
        row = wrong[0]
        msg = (
            f"boxes: row {row} is {tuple(int(v) for v in box_arr[row])}, not a {size}x{size} window"
        )
        raise ValueError(msg)
    mean_arr = _per_channel(mean, channels, "mean")
    std_arr = _per_channel(std, channels, "std")
    if not np.isfinite(mean_arr).all():
        msg = f"mean: must be finite, got {mean_arr.tolist()}"
        raise ValueError(msg)
    if not (np.isfinite(std_arr).all() and (std_arr > 0).all()):
        msg = f"std: must be finite and > 0, got {std_arr.tolist()}"
        raise ValueError(msg)
    try:
        pad = float(pad_value)
    except (TypeError, ValueError):
        msg = f"pad_value: expected a number, got {pad_value!r}"
        raise ValueError(msg) from None
    if on_gpu:
        return cuda.extract_patches(view, box_arr, size, mean_arr, std_arr, pad)
    out = _kernels.extract_patches(arr, box_arr, size, mean_arr, std_arr, pad)
    return like(out, view)


def window_map(boxes: Any, scores: ArrayT, height: int, width: int) -> ArrayT:
    """Per-pixel mean of the scores of the windows covering each pixel (methods.md §1.4).

    Computed from per-pixel sums and counts of the windows, in O(N + height × width): no loop over
    the pixels of each window. Sums are kept in float64, so a mean is exact to about
    ``N * 1e-16 * max(abs(scores))``: a score many orders of magnitude below the largest one loses
    precision. Non-finite scores follow IEEE arithmetic: a pixel covered by a NaN window, or by
    both a +inf and a -inf one, is NaN.

    Parameters
    ----------
    boxes : array-like of int
        (N, 4) windows ``(y0, x0, y1, x1)`` with ``y1 >= y0`` and ``x1 >= x0``, any size; parts
        outside the map are ignored.
    scores : numpy.ndarray or torch.Tensor
        (N,) float32 or float64 score of each window (anomaly score; higher = more anomalous). A
        CUDA tensor runs the CUDA kernel and gives a CUDA map.
    height, width : int
        Size of the map, >= 0.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 (height, width) map, NaN where no window covers the pixel; a torch tensor if
        ``scores`` or ``boxes`` is one.

    Raises
    ------
    ValueError
        If an argument has the wrong shape, dtype or value; the message names the argument.
    """
    box_arr = _boxes(boxes)
    on_gpu = cuda.is_cuda(scores)
    score_arr = cuda.check_scores(scores) if on_gpu else to_numpy(scores, "scores")
    require_ndim(score_arr, 1, "scores", "(N,)")
    if not on_gpu:
        require_float(score_arr, "scores")
    if score_arr.shape[0] != box_arr.shape[0]:
        msg = (
            f"scores: expected {box_arr.shape[0]} values (one per row of boxes), "
            f"got {score_arr.shape[0]}"
        )
        raise ValueError(msg)
    reversed_rows = np.flatnonzero(
        (box_arr[:, 2] < box_arr[:, 0]) | (box_arr[:, 3] < box_arr[:, 1])
    )
    if reversed_rows.size:
        row = reversed_rows[0]
        msg = f"boxes: row {row} is {tuple(int(v) for v in box_arr[row])}, with y1 < y0 or x1 < x0"
        raise ValueError(msg)
    height = _integer(height, "height", 0)
    width = _integer(width, "width", 0)
    if on_gpu:
        return cuda.window_map(box_arr, scores, height, width)
    score_arr = np.ascontiguousarray(score_arr, dtype=np.float64)
    out = _kernels.window_map(box_arr, score_arr, height, width)
    return like(out, scores if is_torch(scores) else boxes)
