"""tile_boxes, extract_patches and window_map against their plain references, and their errors."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.patches import (
    axis_offsets_ref,
    extract_patches_ref,
    tile_boxes_ref,
    window_map_ref,
)
from xadt import _kernels
from xadt.kernels import extract_patches, tile_boxes, window_map

TOL = {"rtol": 1e-5, "atol": 1e-5}
DTYPES = [np.uint8, np.uint16, np.float32]
VIEW_LAYOUTS = [
    "c",
    "fortran",
    "step",
    "transposed",
    "reversed",
    "channels_first",
    "readonly",
    "torch",
    "torch_transposed",
]


# ---------------------------------------------------------------------------------------------
# tile_boxes


def _axis_starts(boxes: np.ndarray, column: int) -> np.ndarray:
    return np.unique(boxes[:, column])


def _check_axis(starts: np.ndarray, length: int, size: int, max_stride: int) -> None:
    """The window starts along one side satisfy methods.md §1.2."""
    if length > size:
        assert starts.size == -(-(length - size) // max_stride) + 1
        assert starts[0] == 0
        assert starts[-1] + size == length
        gaps = np.diff(starts)
        assert (gaps >= 1).all()
        assert (gaps <= max_stride).all()
    elif length == size:
        np.testing.assert_array_equal(starts, [0])
    else:
        np.testing.assert_array_equal(starts, [(length - size) // 2])
        assert starts[0] < 0 < starts[0] + size
        # centred: the overhang before is the one after, or one pixel more (floor division)
        before, after = -starts[0], starts[0] + size - length
        assert 0 <= before - after <= 1


@settings(max_examples=150)
@given(length=st.integers(1, 5000), size=st.integers(1, 400), max_stride=st.integers(1, 500))
def test_tile_boxes_axis_invariants(length: int, size: int, max_stride: int) -> None:
    # one side of `length` against one of exactly `size`: a single column (or row) of windows
    tall = tile_boxes(length, size, size, max_stride)
    wide = tile_boxes(size, length, size, max_stride)
    np.testing.assert_array_equal(tall[:, 1], 0)
    np.testing.assert_array_equal(tall[:, [1, 0, 3, 2]], wide)
    np.testing.assert_array_equal(tall[:, 0], axis_offsets_ref(length, size, max_stride))
    _check_axis(tall[:, 0], length, size, max_stride)


@settings(max_examples=100)
@given(
    height=st.integers(1, 80),
    width=st.integers(1, 80),
    size=st.integers(1, 40),
    max_stride=st.integers(1, 50),
)
def test_tile_boxes_matches_reference_and_invariants(
    height: int, width: int, size: int, max_stride: int
) -> None:
    boxes = tile_boxes(height, width, size, max_stride)
    np.testing.assert_array_equal(boxes, tile_boxes_ref(height, width, size, max_stride))
    assert boxes.dtype == np.int64
    assert (boxes[:, 2] - boxes[:, 0] == size).all()
    assert (boxes[:, 3] - boxes[:, 1] == size).all()
    # row-major: sorted by y start, then x start
    order = np.lexsort((boxes[:, 1], boxes[:, 0]))
    np.testing.assert_array_equal(order, np.arange(len(boxes)))
    ys, xs = _axis_starts(boxes, 0), _axis_starts(boxes, 1)
    _check_axis(ys, height, size, max_stride)
    _check_axis(xs, width, size, max_stride)
    assert len(boxes) == ys.size * xs.size


def test_tile_boxes_paper_grid() -> None:
    boxes = tile_boxes(764, 700, 224, 112)
    assert boxes.shape == (36, 4)
    np.testing.assert_array_equal(_axis_starts(boxes, 0), [0, 108, 216, 324, 432, 540])
    # 476 / 5 = 95.2 per step: 0, 95.2, 190.4, 285.6, 380.8, 476 rounded
    np.testing.assert_array_equal(_axis_starts(boxes, 1), [0, 95, 190, 286, 381, 476])
    np.testing.assert_array_equal(boxes[:2], [[0, 0, 224, 224], [0, 95, 224, 319]])


def test_tile_boxes_rounds_half_up() -> None:
    # span 5 in 2 steps: 0, 2.5, 5 -> 0, 3, 5 (Python's round would give 2)
    assert axis_offsets_ref(13, 8, 3) == [0, 3, 5]
    np.testing.assert_array_equal(_axis_starts(tile_boxes(8, 13, 8, 3), 1), [0, 3, 5])


def test_tile_boxes_short_side_is_centred_and_negative() -> None:
    boxes = tile_boxes(100, 300, 224, 112)
    np.testing.assert_array_equal(boxes, [[-62, 0, 162, 224], [-62, 76, 162, 300]])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 10, 4, 2), r"height: must be >= 1, got 0"),
        ((10, -1, 4, 2), r"width: must be >= 1, got -1"),
        ((10, 10, 0, 2), r"size: must be >= 1, got 0"),
        ((10, 10, -4, 2), r"size: must be >= 1, got -4"),
        ((10, 10, 4, 0), r"max_stride: must be >= 1, got 0"),
        ((10, 10, 4.0, 2), r"size: expected an integer, got 4.0"),
        ((10.5, 10, 4, 2), r"height: expected an integer, got 10.5"),
        ((10, 10, 4, True), r"max_stride: expected an integer, got True"),
        ((2**40, 10, 4, 2), r"height: must be <= 2147483647"),
    ],
)
def test_tile_boxes_rejects_bad_arguments(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tile_boxes(*args)


# ---------------------------------------------------------------------------------------------
# extract_patches


def _raw(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if dtype is np.float32:
        return rng.uniform(-2.0, 2.0, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def _make_view(
    rng: np.random.Generator, shape: tuple[int, int, int], dtype: type, layout: str
) -> np.ndarray | torch.Tensor:
    """An (H, W, C) view with the given memory layout; the values are random."""
    h, w, c = shape
    if layout == "c":
        return _raw(rng, (h, w, c), dtype)
    if layout == "fortran":
        return np.asfortranarray(_raw(rng, (h, w, c), dtype))
    if layout == "step":
        return _raw(rng, (2 * h, 3 * w, c + 1), dtype)[::2, ::3, :c]
    if layout == "transposed":
        return _raw(rng, (w, h, c), dtype).transpose(1, 0, 2)
    if layout == "reversed":
        return _raw(rng, (h, w, c), dtype)[::-1, ::-1, ::-1]
    if layout == "channels_first":
        return _raw(rng, (c, h, w), dtype).transpose(1, 2, 0)
    if layout == "readonly":
        arr = _raw(rng, (h, w, c), dtype)
        arr.setflags(write=False)
        return arr
    if layout == "torch":
        return torch.from_numpy(_raw(rng, (h, w, c), dtype))
    if layout == "torch_transposed":
        return torch.from_numpy(_raw(rng, (w, h, c), dtype)).transpose(0, 1)
    raise AssertionError(layout)


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@st.composite
def _extract_cases(draw: st.DrawFn) -> dict[str, Any]:
    h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(VIEW_LAYOUTS))
    size = draw(st.integers(1, 10))
    if draw(st.booleans()):
        boxes = tile_boxes(h, w, size, draw(st.integers(1, 12)))
    else:
        starts = draw(
            st.lists(
                st.tuples(st.integers(-size - 2, h + 2), st.integers(-size - 2, w + 2)),
                max_size=6,
            )
        )
        boxes = np.array([(y, x, y + size, x + size) for y, x in starts], dtype=np.int64)
        boxes = boxes.reshape(-1, 4)
    stat = st.floats(-1.0, 1.0)
    spread = st.floats(0.05, 2.0)
    mean = draw(stat | st.lists(stat, min_size=c, max_size=c))
    std = draw(spread | st.lists(spread, min_size=c, max_size=c))
    scale = 1.0 if dtype is np.float32 else float(np.iinfo(dtype).max)
    pad_value = draw(st.floats(-2.0, 2.0)) if dtype is np.float32 else draw(st.floats(0, 1)) * scale
    view = _make_view(
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))), (h, w, c), dtype, layout
    )
    return {"view": view, "boxes": boxes, "size": size, "mean": mean, "std": std, "pad": pad_value}


@settings(max_examples=150)
@given(case=_extract_cases())
def test_extract_patches_matches_reference(case: dict[str, Any]) -> None:
    view = case["view"]
    out = extract_patches(view, case["boxes"], case["size"], case["mean"], case["std"], case["pad"])
    n, c = len(case["boxes"]), view.shape[2]
    assert type(out) is type(view)
    assert out.dtype == (torch.float32 if isinstance(view, torch.Tensor) else np.float32)
    assert tuple(out.shape) == (n, c, case["size"], case["size"])
    expected = extract_patches_ref(
        _numpy(view), case["boxes"], case["size"], case["mean"], case["std"], case["pad"]
    )
    np.testing.assert_allclose(_numpy(out), expected, **TOL)


def test_extract_patches_view_smaller_than_window() -> None:
    view = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    boxes = tile_boxes(5, 3, 8, 4)
    np.testing.assert_array_equal(boxes, [[-2, -3, 6, 5]])
    out = extract_patches(view, boxes, 8, mean=0.5, std=0.25, pad_value=255)
    assert out.shape == (1, 2, 8, 8)
    inside = out[0, :, 2:7, 3:6]
    np.testing.assert_allclose(inside, (view.transpose(2, 0, 1) / 255 - 0.5) / 0.25, **TOL)
    border = np.ones((8, 8), dtype=bool)
    border[2:7, 3:6] = False
    np.testing.assert_allclose(out[0][:, border], (1.0 - 0.5) / 0.25, **TOL)


def test_extract_patches_windows_overhanging_every_edge() -> None:
    rng = np.random.default_rng(1)
    view = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    corners = [(-2, -2), (-2, 6), (4, -2), (4, 6), (-4, 2), (6, 2), (2, -4), (2, 8), (-5, -5)]
    boxes = np.array([(y, x, y + 5, x + 5) for y, x in corners])
    out = extract_patches(view, boxes, 5, mean=[0.1, 0.2, 0.3], std=[0.5, 1.0, 2.0], pad_value=7)
    expected = extract_patches_ref(view, boxes, 5, [0.1, 0.2, 0.3], [0.5, 1.0, 2.0], 7)
    np.testing.assert_allclose(out, expected, **TOL)
    # the window entirely outside the view is all padding
    np.testing.assert_allclose(out[-1], expected[-1][:, :1, :1] * np.ones((1, 5, 5)), **TOL)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_extract_patches_no_boxes(kind: str) -> None:
    view = np.zeros((6, 5, 3), dtype=np.uint16)
    boxes = np.zeros((0, 4), dtype=np.int64)
    if kind == "torch":
        view, boxes = torch.from_numpy(view), torch.from_numpy(boxes)
    out = extract_patches(view, boxes, 4)
    assert tuple(out.shape) == (0, 3, 4, 4)
    assert isinstance(out, torch.Tensor if kind == "torch" else np.ndarray)


def test_extract_patches_uint16_uses_its_full_range() -> None:
    # a uint16 view must be read as uint16 (scale 65535), never cast through another dtype
    view = np.array([[[0, 257, 65535]]], dtype=np.uint16)
    out = extract_patches(view, np.array([[0, 0, 1, 1]]), 1)
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 257 / 65535, 1.0], rtol=1e-7)


def test_extract_patches_accepts_any_integer_boxes() -> None:
    view = np.arange(4 * 4 * 1, dtype=np.float32).reshape(4, 4, 1)
    expected = extract_patches(view, np.array([[1, 1, 3, 3]]), 2)
    for dtype in (np.int8, np.uint16, np.int32, np.uint64):
        boxes = np.array([[1, 1, 3, 3]], dtype=dtype)
        np.testing.assert_array_equal(extract_patches(view, boxes, 2), expected)


def test_extract_patches_accepts_torch_boxes_and_tensor_statistics() -> None:
    view = torch.arange(4 * 4 * 3, dtype=torch.float32).reshape(4, 4, 3)
    boxes = torch.tensor([[1, 1, 3, 3]])
    out = extract_patches(view, boxes, 2, mean=torch.tensor([1.0, 2.0, 3.0]), std=2.0)
    expected = extract_patches_ref(view.numpy(), boxes.numpy(), 2, [1.0, 2.0, 3.0], 2.0, 0.0)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), expected, **TOL)


_VIEW = np.zeros((6, 5, 3), dtype=np.uint8)
_BOX = np.array([[0, 0, 4, 4]])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"view": np.zeros((6, 5), np.uint8)}, r"view: expected a 3-D array \(H, W, C\)"),
        ({"view": np.zeros((6, 5, 3), np.int32)}, r"view: expected dtype uint8, .* got int32"),
        ({"view": np.zeros((6, 5, 3), np.float64)}, r"view: expected dtype .* got float64"),
        ({"view": np.zeros((6, 5, 3), ">u2")}, r"view: expected dtype .*native byte order"),
        ({"view": [["a"]]}, r"view: expected a numeric array"),
        ({"boxes": np.zeros(4, np.int64)}, r"boxes: expected a 2-D array \(N, 4\)"),
        ({"boxes": np.zeros((2, 3), np.int64)}, r"boxes: expected shape \(N, 4\)"),
        ({"boxes": np.array([[0.0, 0.0, 4.0, 4.0]])}, r"boxes: expected an integer dtype"),
        (
            {"boxes": np.array([[0, 0, 4, 4], [1, 0, 5, 3]])},
            r"boxes: row 1 is \(1, 0, 5, 3\), not a 4x4 window",
        ),
        ({"boxes": np.array([[2**61 + 1, 0, 2**61 + 5, 4]])}, r"boxes: coordinates must lie"),
        ({"boxes": np.array([[2**63, 0, 2**63 + 4, 4]], np.uint64)}, r"boxes: coordinates must"),
        ({"size": 0}, r"size: must be >= 1, got 0"),
        ({"size": -4}, r"size: must be >= 1, got -4"),
        ({"size": 4.0}, r"size: expected an integer"),
        ({"size": 2**31}, r"size: must be <= 2147483647, got 2147483648"),
        ({"mean": [0.1, 0.2]}, r"mean: expected a scalar or 3 values .*got shape \(2,\)"),
        ({"mean": [[0.1, 0.2, 0.3]]}, r"mean: expected a scalar or 3 values"),
        ({"mean": float("nan")}, r"mean: must be finite"),
        ({"std": [1.0, 1.0, 1.0, 1.0]}, r"std: expected a scalar or 3 values"),
        ({"std": 0.0}, r"std: must be finite and > 0"),
        ({"std": [1.0, -1.0, 1.0]}, r"std: must be finite and > 0"),
        ({"std": float("inf")}, r"std: must be finite and > 0"),
        ({"pad_value": "white"}, r"pad_value: expected a number"),
    ],
)
def test_extract_patches_rejects_bad_arguments(change: dict[str, Any], match: str) -> None:
    kwargs: dict[str, Any] = {"view": _VIEW, "boxes": _BOX, "size": 4, "mean": 0.0, "std": 1.0}
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        extract_patches(**kwargs)


def test_extract_patches_rejects_tensors_off_the_cpu() -> None:
    # the meta device stands in for a GPU: any non-CPU tensor must be refused, not read
    with pytest.raises(ValueError, match=r"view: expected a CPU tensor, got one on meta"):
        extract_patches(torch.empty((6, 5, 3), device="meta"), _BOX, 4)


def test_kernels_run_concurrently_from_threads() -> None:
    # the kernels release the GIL; callers parallelise across views with threads
    rng = np.random.default_rng(3)
    views = [rng.integers(0, 2**16, (90, 70, 2), dtype=np.uint16) for _ in range(8)]
    boxes = tile_boxes(90, 70, 32, 16)
    scores = rng.normal(size=len(boxes))

    def work(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return extract_patches(view, boxes, 32, 0.5, 0.2, 0), window_map(boxes, scores, 90, 70)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, views))
    for view, (patches, heat) in zip(views, results, strict=True):
        np.testing.assert_array_equal(patches, extract_patches(view, boxes, 32, 0.5, 0.2, 0))
        np.testing.assert_array_equal(heat, window_map(boxes, scores, 90, 70))


# The compiled boundary checks again, so a caller that skips the wrapper gets a ValueError too.
_F64 = np.zeros(3)
_ONES = np.ones(3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: _kernels.extract_patches(
                np.zeros((4, 4, 3), np.int32), _BOX, 4, _F64, _ONES, 0.0
            ),
            r"view must have dtype uint8, uint16 or float32",
        ),
        (
            lambda: _kernels.extract_patches(np.zeros((4, 4, 3), ">u2"), _BOX, 4, _F64, _ONES, 0.0),
            r"view must have dtype",
        ),
        (
            lambda: _kernels.extract_patches(np.zeros((4, 4), np.uint8), _BOX, 4, _F64, _ONES, 0.0),
            r"view must be a 3-D array",
        ),
        (
            lambda: _kernels.extract_patches(_VIEW, _BOX.astype(np.int32), 4, _F64, _ONES, 0.0),
            r"boxes must be a C-contiguous int64 array",
        ),
        (
            lambda: _kernels.extract_patches(_VIEW, _BOX, 0, _F64, _ONES, 0.0),
            r"size must be > 0",
        ),
        (
            lambda: _kernels.extract_patches(_VIEW, _BOX, 3, _F64, _ONES, 0.0),
            r"boxes row 0 is not 3x3",
        ),
        (
            lambda: _kernels.extract_patches(_VIEW, _BOX, 4, np.zeros(2), _ONES, 0.0),
            r"mean must be a float64 array of length 3",
        ),
        (
            lambda: _kernels.extract_patches(_VIEW, _BOX, 4, _F64, np.zeros(3), 0.0),
            r"std must be finite and > 0",
        ),
        (
            lambda: _kernels.extract_patches(
                _VIEW, np.array([[2**61 + 1, 0, 2**61 + 5, 4]]), 4, _F64, _ONES, 0.0
            ),
            r"boxes row 0 has a coordinate beyond \+-2\*\*61",
        ),
        (
            lambda: _kernels.window_map(_BOX, np.zeros(1, np.float32), 4, 4),
            r"scores must be a contiguous float64 array",
        ),
        (
            lambda: _kernels.window_map(_BOX, np.zeros(2), 4, 4),
            r"boxes has 1 rows but scores has 2",
        ),
        (
            lambda: _kernels.window_map(np.array([[3, 0, 2, 4]]), np.zeros(1), 4, 4),
            r"boxes row 0 has y1 < y0 or x1 < x0",
        ),
        (
            lambda: _kernels.window_map(_BOX, np.zeros(1), -1, 4),
            r"height and width must be >= 0",
        ),
    ],
)
def test_compiled_kernels_check_their_arguments(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# window_map


@st.composite
def _window_cases(draw: st.DrawFn, scores: st.SearchStrategy[float]) -> dict[str, Any]:
    h, w = draw(st.integers(0, 25)), draw(st.integers(0, 25))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(-6, h + 3),
                st.integers(-6, w + 3),
                st.integers(0, h + 8),
                st.integers(0, w + 8),
            ),
            max_size=10,
        )
    )
    boxes = np.array([(y, x, y + dy, x + dx) for y, x, dy, dx in rows], dtype=np.int64)
    boxes = boxes.reshape(-1, 4)
    values = np.array(draw(st.lists(scores, min_size=len(rows), max_size=len(rows))))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    values = values.astype(dtype)
    layout = draw(st.sampled_from(["c", "fortran_boxes", "step_scores", "torch", "torch_scores"]))
    expected = window_map_ref(boxes, values, h, w)
    if layout == "fortran_boxes":
        boxes = np.asfortranarray(boxes)
    elif layout == "step_scores":
        values = np.repeat(values, 3)[::3]
    elif layout == "torch":
        boxes, values = torch.from_numpy(boxes), torch.from_numpy(values)
    elif layout == "torch_scores":
        values = torch.from_numpy(values)
    return {"boxes": boxes, "scores": values, "h": h, "w": w, "expected": expected}


def _check_window_map(case: dict[str, Any]) -> np.ndarray:
    out = window_map(case["boxes"], case["scores"], case["h"], case["w"])
    is_tensor = isinstance(case["scores"], torch.Tensor)
    assert isinstance(out, torch.Tensor if is_tensor else np.ndarray)
    result = _numpy(out)
    assert result.dtype == np.float32
    assert result.shape == (case["h"], case["w"])
    np.testing.assert_array_equal(np.isnan(result), np.isnan(case["expected"]))
    np.testing.assert_allclose(result, case["expected"], equal_nan=True, **TOL)
    return result


@settings(max_examples=150)
@given(case=_window_cases(st.floats(-1e3, 1e3)))
def test_window_map_matches_reference(case: dict[str, Any]) -> None:
    _check_window_map(case)


@settings(max_examples=60)
@given(
    case=_window_cases(
        st.sampled_from([float("nan"), float("inf"), float("-inf")]) | st.floats(-10, 10)
    )
)
def test_window_map_non_finite_scores_follow_ieee(case: dict[str, Any]) -> None:
    _check_window_map(case)


@settings(max_examples=40)
@given(
    height=st.integers(1, 60),
    width=st.integers(1, 60),
    size=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_window_map_of_a_tiling_covers_every_pixel(
    height: int, width: int, size: int, seed: int
) -> None:
    boxes = tile_boxes(height, width, size, max(1, size // 2))
    scores = np.random.default_rng(seed).normal(size=len(boxes))
    result = window_map(boxes, scores, height, width)
    assert not np.isnan(result).any()
    # a mean of scores lies within their range
    assert scores.min() - 1e-5 <= result.min() <= result.max() <= scores.max() + 1e-5
    np.testing.assert_allclose(result, window_map_ref(boxes, scores, height, width), **TOL)


def test_window_map_single_cover_is_the_patch_score() -> None:
    # methods.md §6.4: a pixel covered by one patch only gets that patch's score
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 6]])
    result = window_map(boxes, np.array([1.0, 3.0]), 6, 6)
    assert result[0, 0] == 1.0
    assert result[5, 5] == 3.0
    assert result[3, 3] == 2.0
    assert np.isnan(result[0, 5])


def test_window_map_no_boxes_is_all_nan() -> None:
    result = window_map(np.zeros((0, 4), np.int64), np.zeros(0), 3, 4)
    assert result.shape == (3, 4)
    assert np.isnan(result).all()


def test_window_map_huge_scores_do_not_leak_nan() -> None:
    # summed unscaled, 1.5e308 + 1.5e308 is inf, and inf - inf would make the right half NaN
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 2, 2, 4]])
    result = window_map(boxes, np.array([1.5e308, 1.5e308, -1e308]), 2, 4)
    assert np.isposinf(result[:, :2]).all()  # the means saturate float32, but keep their sign
    assert np.isneginf(result[:, 2:]).all()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"boxes": np.zeros((1, 3), np.int64)}, r"boxes: expected shape \(N, 4\)"),
        ({"boxes": np.zeros((1, 4))}, r"boxes: expected an integer dtype, got float64"),
        ({"boxes": np.array([[3, 0, 2, 4]])}, r"boxes: row 0 is \(3, 0, 2, 4\), with y1 < y0"),
        ({"scores": np.zeros((1, 1))}, r"scores: expected a 1-D array \(N,\)"),
        ({"scores": np.zeros(1, np.int64)}, r"scores: expected float32 or float64, got int64"),
        ({"scores": np.zeros(2)}, r"scores: expected 1 values \(one per row of boxes\), got 2"),
        ({"height": -1}, r"height: must be >= 0, got -1"),
        ({"width": 1.5}, r"width: expected an integer, got 1.5"),
    ],
)
def test_window_map_rejects_bad_arguments(change: dict[str, Any], match: str) -> None:
    kwargs: dict[str, Any] = {"boxes": _BOX, "scores": np.zeros(1), "height": 4, "width": 4}
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        window_map(**kwargs)
