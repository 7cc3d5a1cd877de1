"""Air cropping: the same box on every dtype, speckle and small blobs ignored, all-air refused."""

from __future__ import annotations

import numpy as np
import pytest

from xadt.crop import CropBox, EmptyScanError, crop_air, crop_scan
from xadt.errors import XadtError
from xadt.scans import Scan

H, W = 200, 300
PARCEL = CropBox(40, 60, 150, 230)
PARCEL_SHAPE = (PARCEL.height, PARCEL.width)


def _parcel(dtype: type = np.float32, channels: int = 3) -> np.ndarray:
    """White air with a textured grey parcel at PARCEL, as fractions of white in ``dtype``."""
    rng = np.random.default_rng(1)
    grey = np.ones((H, W), dtype=np.float64)
    grey += rng.normal(0, 0.01, (H, W))  # sensor noise on the air stays well above 240/255
    grey[PARCEL.y0 : PARCEL.y1, PARCEL.x0 : PARCEL.x1] = rng.uniform(0.2, 0.8, PARCEL_SHAPE)
    return _as(np.clip(grey, 0, 1), dtype, channels)


def _as(grey: np.ndarray, dtype: type, channels: int = 3) -> np.ndarray:
    if dtype is np.float32:
        out = grey.astype(np.float32)
    else:
        white = np.iinfo(dtype).max
        out = np.round(grey * white).astype(dtype)
    return np.repeat(out[:, :, None], channels, axis=2)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_same_box_on_every_dtype(dtype: type) -> None:
    assert crop_air(_parcel(dtype)) == PARCEL


def test_threshold_is_a_fraction_of_white_on_every_dtype() -> None:
    grey = np.ones((H, W))
    grey[50:90, 70:120] = 239 / 255  # just below the default air level: parcel
    grey[100:180, 20:280] = 240 / 255  # exactly at it: air
    for dtype in (np.uint8, np.uint16, np.float32):
        assert crop_air(_as(grey, dtype)) == CropBox(50, 70, 90, 120)


def test_grey_is_the_mean_over_channels() -> None:
    view = np.full((H, W, 3), 255, np.uint8)
    view[10:60, 10:60, 0] = 0  # mean 170 < 240: parcel
    view[100:150, 100:150, 0] = 230  # mean 247: air; channel 0 alone: parcel
    assert crop_air(view) == CropBox(10, 10, 60, 60)
    assert crop_air(view, channel=0) == CropBox(10, 10, 150, 150)


def test_all_air_raises_empty_scan_error() -> None:
    with pytest.raises(EmptyScanError, match=r"no parcel found: every pixel is air"):
        crop_air(_as(np.full((H, W), 0.99), np.uint16))
    assert issubclass(EmptyScanError, XadtError)


def test_opening_removes_speckle() -> None:
    view = _parcel(np.uint8)
    view[5, 5] = 0
    view[190, 290] = 0
    view[100:103, 280] = 0  # a thin line, 1 px wide
    assert crop_air(view, min_area=0) == PARCEL
    assert crop_air(view, min_area=0, opening=1) == CropBox(5, 5, 191, 291)


def test_min_area_drops_small_blobs() -> None:
    view = _parcel(np.uint8)
    view[170:180, 250:260] = 0  # 100 px: under 1% of 60,000 px
    assert crop_air(view) == PARCEL
    assert crop_air(view, min_area=0) == CropBox(PARCEL.y0, PARCEL.x0, 180, 260)
    with pytest.raises(EmptyScanError, match=r"all 2 objects are under min_area"):
        crop_air(view, min_area=0.5)


def test_parcel_touching_the_border_reaches_it() -> None:
    grey = np.ones((H, W))
    grey[0:120, 150:W] = 0.3
    assert crop_air(_as(grey, np.uint8)) == CropBox(0, 150, 120, W)


def test_dual_energy_views_use_the_high_energy_channel() -> None:
    high, low = np.ones((H, W)), np.ones((H, W))
    high[20:80, 30:90] = 0.4
    low[120:190, 200:280] = 0.4
    view = np.stack([_as(high, np.uint16, 1)[..., 0], _as(low, np.uint16, 1)[..., 0]], axis=-1)
    assert crop_air(view) == CropBox(20, 30, 80, 90)
    assert crop_air(view, channel=1) == CropBox(120, 200, 190, 280)


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("air_level", 0.0, r"'air_level' option of crop_air must be a float in \(0, 1\]"),
        ("air_level", 240, r"'air_level' .* Got 240 instead\."),
        ("opening", 0, r"'opening' option of crop_air must be an integer >= 1"),
        ("opening", 2.5, r"'opening' .* Got 2\.5 instead\."),
        ("min_area", 1.0, r"'min_area' option of crop_air must be a float in \[0, 1\)"),
        ("min_area", True, r"'min_area' .* Got True instead\."),
        ("channel", 3, r"'channel' option of crop_air must be None or an integer in 0\.\.2"),
    ],
)
def test_bad_options_are_named(option: str, value: object, match: str) -> None:
    with pytest.raises(XadtError, match=match):
        crop_air(_parcel(np.uint8), **{option: value})  # type: ignore[arg-type]


def test_crop_scan_crops_views_and_masks_and_keeps_boxes() -> None:
    second = np.full((H, W, 3), 255, np.uint8)
    second[30:70, 10:290] = 50
    mask = np.zeros((H, W), bool)
    mask[100:110, 100:120] = True
    scan = Scan("p", [_parcel(np.uint8), second], masks=[mask, None])
    cropped, boxes = crop_scan(scan)
    assert boxes == [PARCEL, CropBox(30, 10, 70, 290)]
    assert [v.shape for v in cropped.views] == [(*PARCEL_SHAPE, 3), (40, 280, 3)]
    assert cropped.masks is not None
    assert cropped.masks[1] is None
    assert cropped.masks[0].sum() == mask.sum()
    assert np.shares_memory(cropped.views[0], scan.views[0])  # a view, not a copy
    assert cropped.id == "p"
    assert cropped.encoding == "rgb"


def test_crop_scan_names_the_scan_view_and_file_of_an_empty_view() -> None:
    scan = Scan("bag7", [_parcel(np.uint8), np.full((H, W, 3), 255, np.uint8)], sources=["a.png"])
    with pytest.raises(EmptyScanError, match=r"scan 'bag7' view 1 \(a\.png\): no parcel found"):
        crop_scan(scan)


def test_crop_scan_dual_energy_thresholds_high_energy() -> None:
    high, low = np.ones((H, W)), np.full((H, W), 0.5)  # low is dark everywhere
    high[20:80, 30:90] = 0.4
    view = np.stack([high, low], axis=-1).astype(np.float32)
    _, boxes = crop_scan(Scan("d", [view], encoding="dual-energy"))
    assert boxes == [CropBox(20, 30, 80, 90)]


def test_boxes_and_maps_go_back_to_full_view_coordinates() -> None:
    box = CropBox(10, 20, 40, 70)
    view = np.arange(H * W).reshape(H, W)
    cropped = box.apply(view)
    assert cropped.shape == (box.height, box.width) == (30, 50)
    assert cropped[0, 0] == view[10, 20]
    np.testing.assert_array_equal(box.shift(np.array([[0, 0, 5, 5]])), [[10, 20, 15, 25]])
    full = box.paste(np.ones((30, 50), np.float32), (H, W))
    assert full.shape == (H, W)
    assert full.dtype == np.float32
    assert np.isnan(full[:10]).all()
    assert (full[10:40, 20:70] == 1).all()
    assert np.isnan(full).sum() == H * W - 30 * 50
    with pytest.raises(ValueError, match="crop box is 30x50"):
        box.paste(np.ones((3, 5)), (H, W))
