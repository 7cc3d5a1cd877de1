"""Tiling: window counts, full coverage, edges flush, and white padding in the view's units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xadt.errors import XadtError
from xadt.tiling import patches_of, tile_view


def _kernels() -> None:
    pytest.importorskip("xadt.kernels", reason="the xadt.kernels wrappers are not built yet")


def _per_side(length: int, size: int, max_stride: int) -> int:
    return 1 if length <= size else math.ceil((length - size) / max_stride) + 1


def test_paper_sized_view_gives_6_by_6_windows() -> None:
    _kernels()
    boxes = tile_view(np.zeros((764, 700, 3), np.uint8))
    assert boxes.shape == (36, 4)
    assert boxes.dtype == np.int64


@pytest.mark.parametrize(
    ("height", "width", "size", "max_stride"),
    [
        (764, 700, 224, 112),
        (764, 1161, 224, 112),
        (224, 225, 224, 112),
        (300, 100, 224, 112),
        (1, 1, 224, 112),
        (500, 333, 64, 64),
        (97, 1000, 32, 7),
    ],
)
def test_windows_cover_every_pixel_flush_with_the_edges(
    height: int, width: int, size: int, max_stride: int
) -> None:
    _kernels()
    boxes = tile_view(np.zeros((height, width, 1), np.float32), size=size, max_stride=max_stride)
    assert len(boxes) == _per_side(height, size, max_stride) * _per_side(width, size, max_stride)
    assert (boxes[:, 2] - boxes[:, 0] == size).all()
    assert (boxes[:, 3] - boxes[:, 1] == size).all()
    covered = np.zeros((height, width), bool)
    for y0, x0, y1, x1 in boxes:
        covered[max(y0, 0) : y1, max(x0, 0) : x1] = True
    assert covered.all()
    for axis, length in ((0, height), (1, width)):
        starts = np.unique(boxes[:, axis])
        if length >= size:
            assert starts[0] == 0
            assert starts[-1] + size == length
            assert (np.diff(starts) <= max_stride).all()
        else:  # one window, centred, overhanging both ends
            assert starts.tolist() == [(length - size) // 2]
            assert starts[0] < 0
            assert starts[0] + size >= length


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("size", 0, r"'size' option of tiling must be an integer >= 1\. Got 0 instead\."),
        ("size", 22.5, r"'size' .* Got 22\.5 instead\."),
        ("max_stride", 0, r"'max_stride' option of tiling must be an integer in 1\.\.size"),
        ("max_stride", 225, r"in 1\.\.size \(224\), so that windows leave no gaps\. Got 225"),
    ],
)
def test_bad_options_are_named(option: str, value: object, match: str) -> None:
    with pytest.raises(XadtError, match=match):
        tile_view(np.zeros((10, 10, 3), np.uint8), **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "white"), [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)]
)
def test_patches_are_normalised_and_padded_with_white_air(dtype: type, white: float) -> None:
    _kernels()
    rng = np.random.default_rng(2)
    view = (rng.random((40, 60, 3)) * white).astype(dtype)
    mean, std = np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.5])
    boxes = tile_view(view, size=64, max_stride=32)
    assert boxes.tolist() == [[-12, -2, 52, 62]]
    (patch,) = patches_of(view, boxes, size=64, mean=mean, std=std)
    assert patch.shape == (3, 64, 64)
    assert patch.dtype == np.float32
    expected = (view.astype(np.float64) / white - mean) / std
    np.testing.assert_allclose(
        np.moveaxis(patch[:, 12:52, 2:62], 0, -1), expected, rtol=1e-5, atol=1e-6
    )
    air = (1.0 - mean) / std
    np.testing.assert_allclose(patch[:, :12, :], np.broadcast_to(air[:, None, None], (3, 12, 64)))
    np.testing.assert_allclose(patch[:, 12:52, :2], np.broadcast_to(air[:, None, None], (3, 40, 2)))
    (black,) = patches_of(view, boxes, size=64, mean=mean, std=std, pad_value=0)
    np.testing.assert_allclose(black[:, 0, 0], -mean / std)
