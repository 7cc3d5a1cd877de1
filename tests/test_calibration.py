"""Calibration: thresholds and map scales from held-out normal scans, applied by the Model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xadt.calibration import Calibration, calibrate
from xadt.detector import PatchScores, ScanResult
from xadt.errors import XadtError
from xadt.model import Model
from xadt.plugins.baseline import BaselineDetector


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
    model = Model(BaselineDetector(), calibration)
    assert [r.flag for r in model.flag(_results([0.5, 100.0]))] == [False, True]
    assert [r.flag for r in Model(BaselineDetector()).flag(_results([0.5]))] == [None]


def test_too_few_holdout_scans_is_a_user_error() -> None:
    with pytest.raises(XadtError, match="at least 2 held-out normal scans"):
        calibrate(_results([1.0]), target_fpr=0.05)


def test_json_round_trip_and_malformed_section() -> None:
    calibration = calibrate(_results([1.0, 2.0, 5.0]), target_fpr=0.3)
    assert Calibration.from_json(calibration.to_json()) == calibration
    with pytest.raises(XadtError, match="malformed calibration"):
        Calibration.from_json({"threshold": 1.0})


def test_map_scale_comes_from_patch_scores_alone() -> None:
    # A combined scan score is a weighted sum, far smaller than the raw patch scores mapped.
    results = _results([1000.0, 2000.0, 3000.0])
    for r in results:
        r.score = r.score * 1e-4
    calibration = calibrate(results, target_fpr=0.3)
    patch = np.array([500.0, 1000.0, 1000.0, 2000.0, 1500.0, 3000.0])
    assert calibration.map_low == pytest.approx(np.median(patch))
    assert calibration.map_high == pytest.approx(np.percentile(patch, 99))


def test_quantile_places_a_score_among_the_held_out_normal_scores() -> None:
    calibration = calibrate(_results([1.0, 2.0, 3.0, 4.0]), target_fpr=0.25)
    assert calibration.normal_scores == (1.0, 2.0, 3.0, 4.0)
    assert [calibration.quantile(s) for s in (0.5, 2.5, 4.0, 9.0)] == [0.0, 0.5, 0.75, 1.0]
    assert Calibration.from_json(calibration.to_json()) == calibration
    old = {k: v for k, v in calibration.to_json().items() if k != "normal_scores"}
    assert Calibration.from_json(old).quantile(2.5) is None  # a model from before
    model = Model(BaselineDetector(), calibration)
    assert [r.normal_quantile for r in model.flag(_results([2.5]))] == [0.5]


def test_a_threshold_on_few_held_out_scans_comes_with_a_warning() -> None:
    few = calibrate(_results([1.0, 2.0, 3.0]), target_fpr=0.3)
    assert "only 3 held-out normal scans" in (few.warning() or "")
    assert calibrate(_results(list(np.arange(25.0))), target_fpr=0.1).warning() is None


def test_map_ticks_give_maps_calibrated_units_and_survive_json() -> None:
    calibration = calibrate(_results(list(np.linspace(1.0, 100.0, 50))), target_fpr=0.05)
    patch = np.concatenate([[s / 2, s] for s in np.linspace(1.0, 100.0, 50)])
    assert [p for p, _ in calibration.map_ticks] == [50.0, 90.0, 99.0]
    for p, value in calibration.map_ticks:
        assert value == pytest.approx(np.percentile(patch, p))
    assert calibration.map_threshold == pytest.approx(np.percentile(patch, 95))
    assert np.mean(patch > calibration.map_threshold) <= 0.05
    text = json.dumps(calibration.to_json())
    assert Calibration.from_json(json.loads(text)) == calibration


def test_models_written_before_map_ticks_still_load() -> None:
    data = calibrate(_results([1.0, 2.0, 5.0]), target_fpr=0.3).to_json()
    del data["map_ticks"], data["map_threshold"]
    old = Calibration.from_json(data)
    assert old.map_ticks == ()
    assert old.map_threshold is None


@pytest.mark.parametrize(
    "ticks", [[[90.0, 1.0], [50.0, 0.5]], [[150.0, 1.0]], [[50.0, "x"]], [[50.0]]]
)
def test_malformed_map_ticks_are_refused(ticks: list[list[object]]) -> None:
    data = calibrate(_results([1.0, 2.0, 5.0]), target_fpr=0.3).to_json()
    data["map_ticks"] = ticks
    with pytest.raises(XadtError, match="malformed calibration"):
        Calibration.from_json(data)


def test_a_near_constant_calibration_round_trips() -> None:
    # Scores a few ulps apart: the mean and std of the sorted stored scores differ from
    # calibrate's by rounding far beyond a relative 1e-9 of the std itself.
    steps = np.random.default_rng(0).integers(0, 4, 48)
    scores = [1e6 + int(k) * float(np.spacing(1e6)) for k in steps]
    calibration = calibrate(_results(scores), target_fpr=0.2)
    assert Calibration.from_json(json.loads(json.dumps(calibration.to_json()))) == calibration
