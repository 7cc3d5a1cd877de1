"""Calibration: a model's threshold and normal-score statistics, set from normal scans only.

The host applies it to every detector alike: training holds out a fraction of the normal scans
(:func:`xadt.training_data.split_ids`), scores them with the fitted detector, and sets the
threshold at a target false-alarm rate; :class:`xadt.model.Model` applies it. No anomaly is ever
used. The same statistics give localisation maps a fixed per-model colour scale.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.metrics import threshold_at_fpr

MIN_TRUSTED_HOLDOUT = 20
"""Fewer held-out normal scans than this set a threshold worth a warning."""

MAP_PERCENTILES = (50.0, 90.0, 99.0)
"""Percentiles of normal patch scores stored as the labelled ticks of a model's map colour bar."""


class CalibrationWarning(UserWarning):
    """The threshold rests on too few held-out normal scans to trust its false-alarm rate."""


@dataclass(frozen=True)
class Calibration:
    """Threshold and normal-score statistics of a model (stored in ``model.json``).

    Attributes:
        threshold: scans scoring above it are flagged (anomaly score; higher = more anomalous).
        target_fpr: the false-alarm rate on held-out normal scans the threshold was set for.
        n_holdout: how many held-out normal scans it was set from.
        normal_mean: mean anomaly score of the held-out normal scans.
        normal_std: their standard deviation.
        normal_quantiles: their 50th, 90th, 99th percentiles and maximum.
        map_low: low end of the fixed colour scale of localisation maps (normal patch median).
        map_high: high end of that scale (the 99th percentile of normal patch scores).
        normal_scores: the held-out normal scans' scores, sorted (empty in models written before
            xadt stored them); :meth:`quantile` places a new score among them.
        map_ticks: ``(percentile, patch score)`` of the held-out normal patch scores at
            :data:`MAP_PERCENTILES`, so a map reads in calibrated units (empty in older models).
        map_threshold: the normal patch score exceeded by a ``target_fpr`` fraction of normal
            patches: the threshold's false-alarm rate at the patch level (None in older models).
    """

    threshold: float
    target_fpr: float
    n_holdout: int
    normal_mean: float
    normal_std: float
    normal_quantiles: tuple[float, float, float, float]
    map_low: float
    map_high: float
    normal_scores: tuple[float, ...] = ()
    map_ticks: tuple[tuple[float, float], ...] = ()
    map_threshold: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The calibration as a JSON-ready dict."""
        return asdict(self)

    def quantile(self, score: float) -> float | None:
        """The calibrated score: the fraction of held-out normal scans scoring below ``score``.

        0.5 is a typical normal scan; 1.0 is above every held-out normal one. None when the
        model stored no normal scores.
        """
        if not self.normal_scores:
            return None
        return bisect.bisect_left(self.normal_scores, score) / len(self.normal_scores)

    def warning(self) -> str | None:
        """A warning when too few held-out scans set the threshold to trust its false-alarm rate."""
        if self.n_holdout >= MIN_TRUSTED_HOLDOUT:
            return None
        return (
            f"the threshold was set on only {self.n_holdout} held-out normal scans (fewer than "
            f"{MIN_TRUSTED_HOLDOUT}), so its {100 * self.target_fpr:g}% false-alarm rate is a "
            "rough guess; train on more scans or raise --holdout"
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_json` output, checking every value; raises ``XadtError`` on a
        malformed section (a missing key, a string threshold, NaN, a rate outside (0, 1))."""
        try:
            calibration = cls(
                threshold=_finite(data["threshold"]),
                target_fpr=_finite(data["target_fpr"]),
                n_holdout=_count(data["n_holdout"]),
                normal_mean=_finite(data["normal_mean"]),
                normal_std=_finite(data["normal_std"]),
                normal_quantiles=tuple(_finite(q) for q in _array(data["normal_quantiles"])),  # type: ignore[arg-type]
                map_low=_finite(data["map_low"]),
                map_high=_finite(data["map_high"]),
                normal_scores=tuple(
                    sorted(_finite(s) for s in _array(data.get("normal_scores", [])))
                ),
                map_ticks=tuple(
                    (_finite(p), _finite(v))
                    for p, v in map(_array, _array(data.get("map_ticks", [])))
                ),
                map_threshold=(
                    None if data.get("map_threshold") is None else _finite(data["map_threshold"])
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"malformed calibration section in model.json ({exc})"
            raise XadtError(msg) from None
        problems = []
        if not 0 < calibration.target_fpr < 1:
            problems.append(f"target_fpr {calibration.target_fpr} is not in (0, 1)")
        if len(calibration.normal_quantiles) != 4:
            problems.append("normal_quantiles must hold 4 values")
        if not calibration.map_low < calibration.map_high:
            problems.append("map_low is not below map_high")
        ticks = calibration.map_ticks
        if any(not 0 <= p <= 100 for p, _ in ticks) or ticks != tuple(sorted(ticks)):
            problems.append("map_ticks must be ascending (percentile, score) pairs")
        if not problems and calibration.normal_scores:
            problems += _disagreements(calibration)
        if problems:
            msg = f"malformed calibration section in model.json ({'; '.join(problems)})"
            raise XadtError(msg)
        return calibration


def _disagreements(calibration: Calibration) -> list[str]:
    """What in ``calibration`` disagrees with its own held-out normal scores (each statistic is
    computed from them, so an edited threshold or mean shows here)."""
    scores = np.array(calibration.normal_scores)
    problems = []
    if calibration.n_holdout != scores.size:
        problems.append(f"n_holdout {calibration.n_holdout} but {scores.size} normal_scores")
    if scores.size < 2:
        return [*problems, "normal_scores must hold at least 2 scores"]
    if calibration.threshold != threshold_at_fpr(scores, calibration.target_fpr):
        problems.append("the threshold is not the one its normal_scores and target_fpr give")
    stored = (calibration.normal_mean, calibration.normal_std, *calibration.normal_quantiles)
    expected = (
        scores.mean(),
        scores.std(ddof=1),
        *np.percentile(scores, [50, 90, 99]),
        scores.max(),
    )
    # Summation order may differ from calibrate's, so allow rounding at the scale of the scores
    # (a near-constant set has a std of rounding size).
    if not np.allclose(stored, expected, rtol=1e-9, atol=1e-12 * np.abs(scores).max()):
        problems.append("normal_mean, normal_std or normal_quantiles disagree with normal_scores")
    return problems


def _array(value: Any) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        msg = f"{value!r} is not a list"
        raise TypeError(msg)
    return value


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{value!r} is not a finite number"
        raise ValueError(msg)
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{value!r} is not a count >= 1"
        raise ValueError(msg)
    return value


def calibrate(results: Sequence[ScanResult], target_fpr: float) -> Calibration:
    """Calibration from the results of held-out normal scans at ``target_fpr`` false alarms."""
    if len(results) < 2:
        msg = (
            f"calibration needs at least 2 held-out normal scans, got {len(results)}; "
            "train on more scans or raise --holdout"
        )
        raise XadtError(msg)
    scores = np.array([r.score for r in results], dtype=np.float64)
    threshold = threshold_at_fpr(scores, target_fpr)
    # Maps are drawn from patch scores, which need not share the scan score's units (a combined
    # score weighs its parts), so the colour scale comes from normal patch scores alone.
    patch_scores = np.concatenate(
        [p.scores for r in results for p in r.patches] or [scores]
    ).astype(np.float64)
    low = float(np.median(patch_scores))
    high = float(np.percentile(patch_scores, 99))
    if not high > low:
        high = low + 1.0
    ticks = tuple((p, float(np.percentile(patch_scores, p))) for p in MAP_PERCENTILES)
    return Calibration(
        threshold=float(threshold),
        target_fpr=float(target_fpr),
        n_holdout=len(results),
        normal_mean=float(scores.mean()),
        normal_std=float(scores.std(ddof=1)),
        normal_quantiles=(
            float(np.percentile(scores, 50)),
            float(np.percentile(scores, 90)),
            float(np.percentile(scores, 99)),
            float(scores.max()),
        ),
        map_low=low,
        map_high=high,
        normal_scores=tuple(float(s) for s in np.sort(scores)),
        map_ticks=ticks,
        map_threshold=float(np.percentile(patch_scores, 100 * (1 - target_fpr))),
    )
