"""Calibration: a model's threshold and normal-score statistics, set from normal scans only.

The host applies it to every detector alike: training holds out a fraction of the normal scans
(:func:`xadt.training_data.split_ids`), scores them with the fitted detector, and sets the
threshold at a target false-alarm rate; :class:`xadt.model.Model` applies it. No anomaly is ever
used. The same statistics give localisation maps a fixed per-model colour scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.metrics import threshold_at_fpr


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
    """

    threshold: float
    target_fpr: float
    n_holdout: int
    normal_mean: float
    normal_std: float
    normal_quantiles: tuple[float, float, float, float]
    map_low: float
    map_high: float

    def to_json(self) -> dict[str, Any]:
        """The calibration as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_json` output; raises ``XadtError`` on a malformed section."""
        try:
            quantiles = tuple(float(q) for q in data["normal_quantiles"])
            values = {k: data[k] for k in cls.__dataclass_fields__ if k != "normal_quantiles"}
            return cls(normal_quantiles=quantiles, **values)  # type: ignore[arg-type]
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
    )
