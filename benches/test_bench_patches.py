"""Patch kernels against numpy baselines on one 764×700×3 uint8 view tiled into 36 windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tests.reference.patches import extract_patches_ref, tile_boxes_ref, window_map_ref
from xadt.bench import (
    MEAN,
    PAD,
    STD,
    KernelSizes,
    extract_numpy,
    pad_for,
    patch_inputs,
    window_map_add_at,
)
from xadt.kernels import extract_patches, tile_boxes, window_map

SIZES = KernelSizes()  # the sizes `xadt bench` times, from methods.md §1.2
HEIGHT, WIDTH, CHANNELS = SIZES.height, SIZES.width, 3
SIZE, MAX_STRIDE = SIZES.window, SIZES.stride
TOL = {"rtol": 1e-5, "atol": 1e-5}


# ---------------------------------------------------------------------------------------------
# numpy baselines: the best vectorised numpy we know for each kernel


def extract_numpy_lut(
    view: np.ndarray, boxes: np.ndarray, size: int, mean: Any, std: Any, pad_value: float
) -> np.ndarray:
    """uint8 only: as extract_numpy, but normalising by one gather from a per-channel table."""
    padded, top, left = pad_for(view, boxes, pad_value)
    windows = sliding_window_view(padded, (size, size), axis=(0, 1))
    patches = windows[boxes[:, 0] + top, boxes[:, 1] + left]
    mean, std = np.asarray(mean), np.asarray(std)
    lut = ((np.arange(256) / 255.0 - mean[:, None]) / std[:, None]).astype(np.float32)
    return lut[np.arange(lut.shape[0])[None, :, None, None], patches]


def window_map_cumsum(boxes: np.ndarray, scores: np.ndarray, height: int, width: int) -> np.ndarray:
    """The compiled kernel's idea in numpy: 2-D difference arrays, then two cumulative sums."""
    y0, x0, y1, x1 = np.clip(boxes, 0, [height, width, height, width]).T
    total = np.zeros((height + 1, width + 1))
    count = np.zeros((height + 1, width + 1), dtype=np.int64)
    ones = np.ones(len(boxes), dtype=np.int64)
    for ys, xs, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
        np.add.at(total, (ys, xs), sign * scores)
        np.add.at(count, (ys, xs), sign * ones)
    total = total.cumsum(0).cumsum(1)[:height, :width]
    count = count.cumsum(0).cumsum(1)[:height, :width]
    return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# fixtures: one scan view, its tiling, one score per window, and the reference results


@pytest.fixture(scope="module")
def inputs() -> dict[str, Any]:
    result = patch_inputs(SIZES)
    assert len(result["boxes"]) == 36
    return result


@pytest.fixture(scope="module")
def view(inputs: dict[str, Any]) -> np.ndarray:
    return inputs["view"]


@pytest.fixture(scope="module")
def boxes(inputs: dict[str, Any]) -> np.ndarray:
    return inputs["boxes"]


@pytest.fixture(scope="module")
def scores(inputs: dict[str, Any]) -> np.ndarray:
    return inputs["scores"]


@pytest.fixture(scope="module")
def extract_expected(view: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return extract_patches_ref(view, boxes, SIZE, MEAN, STD, PAD)


@pytest.fixture(scope="module")
def map_expected(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return window_map_ref(boxes, scores, HEIGHT, WIDTH)


# ---------------------------------------------------------------------------------------------
# benchmarks

EXTRACT_IMPLS: dict[str, Callable[..., np.ndarray]] = {
    "numpy": extract_numpy,
    "numpy_lut": extract_numpy_lut,
    "cpp": extract_patches,
}
MAP_IMPLS: dict[str, Callable[..., np.ndarray]] = {
    "numpy_add_at": window_map_add_at,
    "numpy_slices": window_map_ref,
    "numpy_cumsum": window_map_cumsum,
    "cpp": window_map,
}
TILE_IMPLS: dict[str, Callable[..., np.ndarray]] = {
    "reference": tile_boxes_ref,
    "numpy": tile_boxes,
}


@pytest.mark.benchmark(group="extract_patches")
@pytest.mark.parametrize("impl", list(EXTRACT_IMPLS))
def test_bench_extract_patches(
    benchmark: Any,
    impl: str,
    view: np.ndarray,
    boxes: np.ndarray,
    extract_expected: np.ndarray,
) -> None:
    out = benchmark(EXTRACT_IMPLS[impl], view, boxes, SIZE, MEAN, STD, PAD)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, extract_expected, **TOL)


@pytest.mark.benchmark(group="window_map")
@pytest.mark.parametrize("impl", list(MAP_IMPLS))
def test_bench_window_map(
    benchmark: Any,
    impl: str,
    boxes: np.ndarray,
    scores: np.ndarray,
    map_expected: np.ndarray,
) -> None:
    out = benchmark(MAP_IMPLS[impl], boxes, scores, HEIGHT, WIDTH)
    assert out.shape == (HEIGHT, WIDTH)
    assert not np.isnan(out).any()  # a tiling covers every pixel
    np.testing.assert_allclose(out, map_expected, **TOL)


@pytest.mark.benchmark(group="tile_boxes")
@pytest.mark.parametrize("impl", list(TILE_IMPLS))
def test_bench_tile_boxes(benchmark: Any, impl: str, boxes: np.ndarray) -> None:
    out = benchmark(TILE_IMPLS[impl], HEIGHT, WIDTH, SIZE, MAX_STRIDE)
    np.testing.assert_array_equal(out, boxes)


def test_numpy_baselines_pad_like_the_reference() -> None:
    # the bench view needs no padding; check the baselines' np.pad branch on overhanging windows
    view = np.random.default_rng(2).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    overhang = np.array([[-3, -2, 5, 6], [6, 4, 14, 12], [-8, 3, 0, 11]])
    expected = extract_patches_ref(view, overhang, 8, MEAN, STD, PAD)
    for baseline in (extract_numpy, extract_numpy_lut):
        np.testing.assert_allclose(baseline(view, overhang, 8, MEAN, STD, PAD), expected, **TOL)
    map_expected = window_map_ref(overhang, np.array([1.0, -2.0, 3.0]), 9, 7)
    for baseline in (window_map_add_at, window_map_cumsum):
        result = baseline(overhang, np.array([1.0, -2.0, 3.0]), 9, 7)
        np.testing.assert_allclose(result, map_expected, equal_nan=True, **TOL)
