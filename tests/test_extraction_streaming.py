"""A large scan's windows stream through the backbone a batch at a time (issue 9): memory does not
grow with the number of windows, and the features are those of any other batch size."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import xadt.extraction
from tests.test_extraction import TinyBackbone, parcel_view
from xadt.extraction import FeatureExtractor, Tiling
from xadt.scans import Scan


def _big_scan() -> Scan:
    # 1200 x 1300 of parcel: 10 x 11 = 110 windows of 224 px, 66 MB of float32 patches at once.
    return Scan("big", [parcel_view(1250, 1350, (20, 30, 1220, 1330))], encoding="rgb")


def test_patches_are_cut_one_batch_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    cut: list[int] = []
    original = xadt.extraction.patches_of

    def counting(view: np.ndarray, boxes: np.ndarray, **kwargs: object) -> np.ndarray:
        cut.append(len(boxes))
        return original(view, boxes, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(xadt.extraction, "patches_of", counting)
    scan = _big_scan()
    streamed = FeatureExtractor(TinyBackbone(), batch_size=8).extract(scan)
    assert sum(cut) == len(streamed.views[0].boxes) == 110
    assert max(cut) <= 8
    whole = FeatureExtractor(TinyBackbone(), batch_size=512).extract(scan)
    np.testing.assert_array_equal(streamed.pooled, whole.pooled)
    np.testing.assert_array_equal(streamed.views[0].boxes, whole.views[0].boxes)


def test_memory_does_not_grow_with_the_number_of_windows() -> None:
    scan = _big_scan()
    # A stride of 56 px gives 19 x 21 = 399 windows: 240 MB of patches if cut all at once.
    extractor = FeatureExtractor(TinyBackbone(), tiling=Tiling(max_stride=56), batch_size=8)
    tracemalloc.start()
    try:
        features = extractor.extract(scan)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    all_at_once = len(features.views[0].boxes) * 3 * 224 * 224 * 4
    assert all_at_once > 200e6
    assert peak < all_at_once / 5  # the view, cropping temporaries and a few batches
