"""Calibration: thresholds and map scales from held-out normal scans, a stable hash split."""

from __future__ import annotations

import numpy as np
import pytest

from xadt.calibration import Calibration, calibrate, is_held_out, split_holdout
from xadt.detector import PatchScores, ScanResult
from xadt.errors import XadtError
from xadt.scans import Scan


def _results(scores: list[float]) -> list[ScanResult]:
    return [
        ScanResult(
            scan_id=f"s{i}",
            score=s,
            patches=[PatchScores(0, np.zeros((2, 4), np.int64), np.array([s / 2, s]))],
        )
        for i, s in enumerate(scores)
    ]


def test_threshold_keeps_false_alarms_at_or_below_target() -> None:
    scores = list(np.linspace(0.0, 99.0, 100))
    calibration = calibrate(_results(scores), target_fpr=0.05)
    assert np.mean(np.array(scores) > calibration.threshold) <= 0.05
    assert calibration.n_holdout == 100
    assert calibration.normal_quantiles[-1] == 99.0
    assert calibration.map_low < calibration.map_high


def test_flags_follow_the_threshold() -> None:
    calibration = calibrate(_results([1.0, 2.0, 3.0, 4.0]), target_fpr=0.25)
    flagged = calibration.flag(_results([0.5, 100.0]))
    assert [r.flag for r in flagged] == [False, True]


def test_too_few_holdout_scans_is_a_user_error() -> None:
    with pytest.raises(XadtError, match="at least 2 held-out normal scans"):
        calibrate(_results([1.0]), target_fpr=0.05)


def test_json_round_trip_and_malformed_section() -> None:
    calibration = calibrate(_results([1.0, 2.0, 5.0]), target_fpr=0.3)
    assert Calibration.from_json(calibration.to_json()) == calibration
    with pytest.raises(XadtError, match="malformed calibration"):
        Calibration.from_json({"threshold": 1.0})


def test_holdout_split_is_stable_and_near_the_fraction() -> None:
    ids = [f"scan-{i}" for i in range(4000)]
    chosen = [i for i in ids if is_held_out(i, 0.1, seed=3)]
    assert chosen == [i for i in ids if is_held_out(i, 0.1, seed=3)]
    assert 0.08 < len(chosen) / len(ids) < 0.12
    assert chosen != [i for i in ids if is_held_out(i, 0.1, seed=4)]


def test_split_holdout_streams_and_partitions() -> None:
    view = np.zeros((4, 4, 3), np.uint8)
    scans = (Scan(id=f"s{i}", views=[view]) for i in range(200))
    held_out: list[Scan] = []
    fitted = [s.id for s in split_holdout(scans, 0.2, 0, held_out)]
    assert set(fitted).isdisjoint(s.id for s in held_out)
    assert len(fitted) + len(held_out) == 200
    assert held_out


def test_map_scale_comes_from_patch_scores_alone() -> None:
    # A combined scan score is a weighted sum, far smaller than the raw patch scores mapped.
    results = _results([1000.0, 2000.0, 3000.0])
    for r in results:
        r.score = r.score * 1e-4
    calibration = calibrate(results, target_fpr=0.3)
    patch = np.array([500.0, 1000.0, 1000.0, 2000.0, 1500.0, 3000.0])
    assert calibration.map_low == pytest.approx(np.median(patch))
    assert calibration.map_high == pytest.approx(np.percentile(patch, 99))
