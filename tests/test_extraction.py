"""FeatureExtractor: crop and tile geometry, cross-scan batching, float16 rounding, the disk cache,
all-air views and the RGB conversion of grey and dual-energy scans (methods.md §1.2)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xadt.backbones.base import Backbone
from xadt.crop import CropBox, EmptyScanError
from xadt.extraction import STAGES, FeatureExtractor, ScanFeatures, Tiling
from xadt.kernels import tile_boxes
from xadt.scans import Scan, to_rgb


class TinyBackbone(Backbone):
    """A seeded random two-layer CNN on 32 px inputs: the Backbone contract in milliseconds.

    Its 224 px windows are resized to 32 px by the extractor, as for any backbone whose input
    size differs from the window. ``calls`` counts forward passes.
    """

    name: ClassVar[str] = "tiny"
    mean: ClassVar[tuple[float, float, float]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, float, float]] = (0.25, 0.25, 0.25)
    input_size: ClassVar[int] = 32

    def __init__(self, *, pooled: int = 48, classes: int = 1000, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, pooled, 3, stride=2, padding=1)
        self.classifier = nn.Linear(pooled, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        self.weights_id = f"tiny-seed{seed}"
        self.calls = 0
        self.freeze()

    @property
    def layer_names(self) -> tuple[str, ...]:
        return ("conv1",)

    def _trunk(
        self, x: torch.Tensor, layers: frozenset[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.calls += 1
        h = F.relu(self.conv1(x))
        return F.relu6(self.conv2(h)), ({"conv1": h} if "conv1" in layers else {})


def parcel_view(
    height: int, width: int, box: tuple[int, int, int, int], *, seed: int = 0
) -> np.ndarray:
    """A white (air) uint8 RGB view with a textured parcel filling ``box`` = (y0, x0, y1, x1)."""
    rng = np.random.default_rng(seed)
    view = np.full((height, width, 3), 255, dtype=np.uint8)
    y0, x0, y1, x1 = box
    view[y0:y1, x0:x1] = rng.integers(40, 200, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    return view


def small_scans(n: int, *, seed: int = 0) -> list[Scan]:
    """``n`` one-view scans whose parcel is smaller than one window: one window each."""
    return [
        Scan(f"small-{k}", [parcel_view(90, 80, (5, 6, 85, 74), seed=seed + k)]) for k in range(n)
    ]


@pytest.fixture
def tiny() -> TinyBackbone:
    return TinyBackbone()


def _same(a: ScanFeatures, b: ScanFeatures) -> None:
    assert a.scan_id == b.scan_id
    assert len(a.views) == len(b.views)
    for va, vb in zip(a.views, b.views, strict=True):
        assert va.shape == vb.shape
        assert va.crop == vb.crop
        np.testing.assert_array_equal(va.boxes, vb.boxes)
        np.testing.assert_array_equal(va.pooled, vb.pooled)
        np.testing.assert_array_equal(va.logits, vb.logits)


# --- geometry ----------------------------------------------------------------------------------


def test_boxes_are_the_tiling_of_the_crop_in_full_view_coordinates(tiny: TinyBackbone) -> None:
    box = (20, 30, 290, 280)  # a 270 x 250 parcel: 2 x 2 windows of 224 at stride <= 112
    scan = Scan("big", [parcel_view(320, 300, box)])
    (features,) = FeatureExtractor(tiny)([scan])
    (view,) = features.views
    assert view.shape == (320, 300)
    assert view.crop == CropBox(*box)
    expected = tile_boxes(270, 250, 224, 112) + np.array([20, 30, 20, 30])
    np.testing.assert_array_equal(view.boxes, expected)
    assert view.boxes.dtype == np.int64
    assert view.pooled.shape == (4, 48)
    assert view.logits.shape == (4, 1000)
    # Every window lies inside the crop, and together they cover it up to its edges.
    assert (view.boxes[:, :2] >= [20, 30]).all()
    assert (view.boxes[:, 2:] <= [290, 280]).all()
    assert view.boxes[:, 2].max() == 290
    assert view.boxes[:, 3].max() == 280
    assert features.counts == [4]


def test_a_crop_narrower_than_a_window_gets_one_centred_window_overhanging_it(
    tiny: TinyBackbone,
) -> None:
    scan = Scan("small", [parcel_view(300, 400, (100, 150, 180, 250))])  # an 80 x 100 parcel
    (features,) = FeatureExtractor(tiny)([scan])
    (view,) = features.views
    assert view.crop == CropBox(100, 150, 180, 250)
    # Centred on the crop: (80 - 224) // 2 = -72 rows and (100 - 224) // 2 = -62 columns before it.
    np.testing.assert_array_equal(view.boxes, [[28, 88, 252, 312]])


def test_views_are_tiled_separately_and_pooled_into_one_scan(tiny: TinyBackbone) -> None:
    scan = Scan(
        "dual-view",
        [parcel_view(320, 300, (20, 30, 290, 280)), parcel_view(100, 90, (10, 10, 90, 80))],
    )
    (features,) = FeatureExtractor(tiny)([scan])
    assert features.counts == [4, 1]
    assert features.pooled.shape == (5, 48)
    np.testing.assert_array_equal(features.logits[4:], features.views[1].logits)


def test_the_window_and_stride_come_from_the_tiling(tiny: TinyBackbone) -> None:
    scan = Scan("big", [parcel_view(320, 300, (20, 30, 290, 280))])
    extractor = FeatureExtractor(tiny, tiling=Tiling(window=128, max_stride=64))
    (features,) = extractor([scan])
    expected = tile_boxes(270, 250, 128, 64) + np.array([20, 30, 20, 30])
    np.testing.assert_array_equal(features.views[0].boxes, expected)


# --- batching and streaming --------------------------------------------------------------------


def test_batches_are_filled_across_scans_and_scans_come_out_in_order(tiny: TinyBackbone) -> None:
    scans = small_scans(5)
    one = list(FeatureExtractor(TinyBackbone(), batch_size=1)(scans))
    tiny.calls = 0
    three = list(FeatureExtractor(tiny, batch_size=3)(scans))
    assert tiny.calls == 2  # 5 one-window scans in batches of 3 + 2
    assert [f.scan_id for f in three] == [s.id for s in scans]
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(a.pooled, b.pooled, rtol=2e-3, atol=2e-3)


def test_scans_are_pulled_lazily_one_batch_ahead_at_most(tiny: TinyBackbone) -> None:
    pulled: list[str] = []

    def stream() -> Iterator[Scan]:
        for scan in small_scans(6):
            pulled.append(scan.id)
            yield scan

    features = FeatureExtractor(tiny, batch_size=2)(stream())
    first = next(features)
    assert first.scan_id == "small-0"
    assert len(pulled) == 2  # the batch of two that held the first scan, no more
    assert len(list(features)) == 5


# --- float16 rounding and the cache ------------------------------------------------------------


def test_features_are_rounded_through_float16_and_cached_features_are_identical(
    tiny: TinyBackbone, tmp_path: Path
) -> None:
    scans = small_scans(3)
    fresh = list(FeatureExtractor(tiny)(scans))
    for f in fresh:
        assert f.pooled.dtype == np.float32
        np.testing.assert_array_equal(f.pooled, f.pooled.astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(f.logits, f.logits.astype(np.float16).astype(np.float32))
        assert f.cache_file is None
    cached = FeatureExtractor(tiny, cache_dir=tmp_path)
    first = list(cached(scans))
    assert cached.cache_hits == 0
    second = list(cached(scans))
    assert cached.cache_hits == 3
    for a, b, c in zip(fresh, first, second, strict=True):
        _same(a, b)
        _same(a, c)
        assert b.cache_file == c.cache_file == cached.cache_path(scans[fresh.index(a)])
    assert set(cached.timings) <= set(STAGES)
    assert cached.timings["cache"] > 0


def test_the_cache_key_changes_with_the_tiling_and_the_weights(tiny: TinyBackbone) -> None:
    base = FeatureExtractor(tiny).key
    assert FeatureExtractor(tiny, tiling=Tiling(max_stride=100)).key != base
    assert FeatureExtractor(TinyBackbone(seed=1)).key != base
    assert FeatureExtractor(TinyBackbone()).key == base


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "wrong-dims", "other-scan"],
)
def test_a_damaged_cache_file_is_recomputed_not_a_crash(
    tiny: TinyBackbone, tmp_path: Path, damage: str
) -> None:
    scan = small_scans(1)[0]
    extractor = FeatureExtractor(tiny, cache_dir=tmp_path)
    (good,) = extractor([scan])
    file = extractor.cache_path(scan)
    assert file is not None
    blob = file.read_bytes()
    if damage == "garbage":
        file.write_bytes(b"not a safetensors file at all")
    elif damage == "truncated":
        file.write_bytes(blob[: len(blob) // 2])
    elif damage == "empty":
        file.write_bytes(b"")
    elif damage == "wrong-dims":
        other = FeatureExtractor(TinyBackbone(pooled=8), cache_dir=tmp_path)
        (wrong,) = other([scan])
        assert wrong.cache_file is not None
        file.write_bytes(wrong.cache_file.read_bytes())
    else:
        (renamed,) = FeatureExtractor(tiny, cache_dir=tmp_path / "x")(
            [Scan("someone-else", scan.views)]
        )
        assert renamed.cache_file is not None
        file.write_bytes(renamed.cache_file.read_bytes())
    assert extractor.load(file) is None or damage == "other-scan"
    (again,) = extractor([scan])
    assert extractor.cache_hits == 0
    _same(good, again)
    (third,) = extractor([scan])  # the recomputed features were written back
    assert extractor.cache_hits == 1
    _same(good, third)


def test_load_returns_none_for_a_missing_file(tiny: TinyBackbone, tmp_path: Path) -> None:
    assert FeatureExtractor(tiny, cache_dir=tmp_path).load(tmp_path / "absent.safetensors") is None


# --- all-air views -----------------------------------------------------------------------------


def _air(height: int = 90, width: int = 80) -> np.ndarray:
    return np.full((height, width, 3), 255, dtype=np.uint8)


def test_an_all_air_view_raises_by_default_naming_the_scan_and_view(tiny: TinyBackbone) -> None:
    scan = Scan("tray", [parcel_view(90, 80, (5, 5, 85, 75)), _air()])
    with pytest.raises(EmptyScanError, match=re.escape("scan 'tray' view 1: no parcel found")):
        list(FeatureExtractor(tiny)([scan]))


def test_kept_all_air_views_have_no_windows_and_survive_the_cache(
    tiny: TinyBackbone, tmp_path: Path
) -> None:
    half = Scan("half", [parcel_view(90, 80, (5, 5, 85, 75)), _air()])
    empty = Scan("empty", [_air(), _air(50, 60)])
    extractor = FeatureExtractor(tiny, cache_dir=tmp_path, empty_views="keep")
    first = list(extractor([half, empty]))
    assert first[0].counts == [1, 0]
    assert not first[0].empty
    assert first[0].views[1].empty
    assert first[0].views[1].crop is None
    assert first[0].views[1].pooled.shape == (0, 48)
    assert first[1].empty
    assert first[1].pooled.shape == (0, 48)
    assert first[1].logits.shape == (0, 1000)
    assert [v.shape for v in first[1].views] == [(90, 80), (50, 60)]
    second = list(extractor([half, empty]))
    assert extractor.cache_hits == 2
    for a, b in zip(first, second, strict=True):
        _same(a, b)
    # A cached all-air view still raises for an extractor that does not keep them.
    with pytest.raises(EmptyScanError, match="scan 'half' view 1"):
        list(FeatureExtractor(tiny, cache_dir=tmp_path)([half]))


def test_kept_views_with_only_small_or_thin_objects_are_cropped_to_them(
    tiny: TinyBackbone,
) -> None:
    view = _air(200, 200)
    view[50:60, 70:80] = 30  # 100 px: under 1% of the view
    view[150, 20:180] = 30  # a one-pixel line: removed by the opening
    scan = Scan("envelope", [view])
    with pytest.raises(EmptyScanError, match="all 1 objects are under min_area"):
        list(FeatureExtractor(tiny)([scan]))
    (features,) = FeatureExtractor(tiny, empty_views="keep")([scan])
    assert features.views[0].crop == CropBox(50, 20, 151, 180)
    assert features.counts == [1]


# --- colour conversion -------------------------------------------------------------------------


def test_grey_scans_are_repeated_into_rgb(tiny: TinyBackbone) -> None:
    rgb = parcel_view(90, 80, (5, 5, 85, 75))
    grey = rgb[..., :1].copy()
    as_rgb = Scan("g", [np.repeat(grey, 3, axis=2)])
    (a,) = FeatureExtractor(tiny)([Scan("g", [grey], encoding="grey")])
    (b,) = FeatureExtractor(tiny)([as_rgb])
    _same(a, b)


def test_dual_energy_scans_are_false_coloured_and_cropped_on_the_high_energy_channel(
    tiny: TinyBackbone,
) -> None:
    rng = np.random.default_rng(0)
    view = np.full((120, 110, 2), 65535, dtype=np.uint16)
    view[10:100, 20:90, 0] = rng.integers(5_000, 40_000, (90, 70))
    view[10:100, 20:90, 1] = rng.integers(2_000, 30_000, (90, 70))
    # A strip that is air at the high energy (242/255) but renders darker than 240/255 in false
    # colour (thin metal-like hue) must not widen the crop: the high channel decides, as in
    # crop_scan, not the rendering.
    view[110:118, 0:100] = (round(0.95 * 65535), round(0.05 * 65535))
    assert to_rgb(Scan("d", [view[110:118]], encoding="dual-energy")).views[0].mean() < 240
    dual = Scan("d", [view], encoding="dual-energy")
    (a,) = FeatureExtractor(tiny)([dual])
    assert a.views[0].crop == CropBox(10, 20, 100, 90)
    rgb = to_rgb(dual).views[0].copy()
    rgb[110:118] = 255  # the same crop, and the same false-colour pixels inside it
    (b,) = FeatureExtractor(tiny)([Scan("d", [rgb])])
    assert b.views[0].crop == a.views[0].crop
    np.testing.assert_array_equal(a.pooled, b.pooled)
    np.testing.assert_array_equal(a.logits, b.logits)


def test_uint16_and_float32_views_give_the_features_of_the_same_picture(
    tiny: TinyBackbone,
) -> None:
    u8 = parcel_view(90, 80, (5, 5, 85, 75))
    as_float = (u8.astype(np.float32) / 255).astype(np.float32)
    as_u16 = u8.astype(np.uint16) * 257
    feats = [next(FeatureExtractor(tiny)([Scan("s", [v])])) for v in (u8, as_float, as_u16)]
    for other in feats[1:]:
        np.testing.assert_allclose(feats[0].pooled, other.pooled, rtol=2e-3, atol=1e-3)


def test_bad_extractor_settings_are_rejected(tiny: TinyBackbone) -> None:
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        FeatureExtractor(tiny, batch_size=0)
    with pytest.raises(ValueError, match="empty_views must be 'raise' or 'keep'"):
        FeatureExtractor(tiny, empty_views="skip")  # type: ignore[arg-type]


def test_a_scan_larger_than_a_batch_reports_its_windows(tiny: TinyBackbone) -> None:
    calls: list[tuple[str, int, int]] = []
    big = Scan("big", [parcel_view(300, 500, (10, 10, 290, 490))])
    (small,) = small_scans(1)
    n = sum(len(v.boxes) for v in FeatureExtractor(tiny).extract(big).views)
    list(FeatureExtractor(tiny, batch_size=2, on_windows=lambda *a: calls.append(a))([big]))
    assert n > 2
    assert [c[0] for c in calls] == ["big"] * len(calls)
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)
    assert calls[-1] == ("big", n, n)
    assert {c[2] for c in calls} == {n}
    calls.clear()
    list(FeatureExtractor(tiny, batch_size=10_000, on_windows=lambda *a: calls.append(a))([small]))
    assert calls == []  # one batch is over too fast to need it
