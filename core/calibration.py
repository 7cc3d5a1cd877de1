"""Calibration: a model's threshold and normal-score statistics, set from normal scans only.

The host applies it to every detector alike: training holds out a fraction of the normal scans
(:func:`xadt.training_data.split_ids`), scores them with the fitted detector, and sets the
threshold at a target false-alarm rate; :class:`xadt.model.Model` applies it. No anomaly is ever
used. The same statistics give localisation maps a fixed per-model colour scale.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.metrics import threshold_at_fpr

MIN_TRUSTED_HOLDOUT = 20
"""Fewer held-out normal scans than this set a threshold worth a warning."""


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
        """Rebuild from :meth:`to_json` output; raises ``XadtError`` on a malformed section."""
        try:
            quantiles = tuple(float(q) for q in data["normal_quantiles"])
            scores = tuple(sorted(float(s) for s in data.get("normal_scores", ())))
            arrays = {"normal_quantiles", "normal_scores"}
            values = {k: data[k] for k in cls.__dataclass_fields__ if k not in arrays}
            return cls(normal_quantiles=quantiles, normal_scores=scores, **values)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"malformed calibration section in model.json ({exc})"
            raise XadtError(msg) from None


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
    )
