"""A model: a fitted detector with the host's calibration and provenance, as saved and loaded.

The detector knows how to score; the :class:`Model` adds what the host decided around it — the
threshold and normal-score statistics set on held-out normal scans (:mod:`xadt.calibration`) and
where the model came from — and applies the threshold to every result it scores.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xadt.calibration import Calibration
from xadt.context import RunContext
from xadt.detector import Detector, ScanResult
from xadt.errors import XadtError
from xadt.host import PluginRecord
from xadt.inputs import Scans, as_scans
from xadt.version import __version__

__all__ = ["Model", "Provenance"]


@dataclass(frozen=True)
class Provenance:
    """Where a model came from (stored in ``model.json``).

    Attributes:
        plugin: the detector's name.
        distribution: the distribution that provided the plugin (``"unregistered"`` when the
            detector class was used directly).
        version: that distribution's version.
        xadt_version: the xadt that trained the model.
        created: when training finished, ISO 8601 in UTC.
        training: what it was trained on: counts of fitted, validation and calibration scans,
            the data's location, the seed, the number of skipped files.
    """

    plugin: str
    distribution: str = "unregistered"
    version: str = "unknown"
    xadt_version: str = __version__
    created: str = ""
    training: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, detector: Detector, record: PluginRecord | None, **training: Any) -> Provenance:
        """The provenance of ``detector``, provided by plugin ``record``, trained now."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(
            plugin=detector.name,
            distribution=(record.distribution if record else None) or "unregistered",
            version=(record.version if record else None) or "unknown",
            created=now,
            training=training,
        )

    def to_json(self) -> dict[str, Any]:
        """The provenance as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> Provenance:
        """Rebuild from :meth:`to_json` output; ``XadtError`` naming ``where`` when malformed."""
        try:
            return cls(
                plugin=str(data["plugin"]),
                distribution=str(data.get("distribution", "unknown")),
                version=str(data.get("version", "unknown")),
                xadt_version=str(data.get("xadt_version", "unknown")),
                created=str(data.get("created", "")),
                training=dict(data.get("training") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"{where}: malformed provenance in model.json ({exc})"
            raise XadtError(msg) from None


@dataclass
class Model:
    """A fitted detector, its calibration and its provenance.

    Attributes:
        detector: the fitted detector.
        calibration: threshold and normal-score statistics; None for a model without one.
        provenance: where it came from; None for a model built in memory.
        path: the model directory it was loaded from or saved to, if any.
    """

    detector: Detector
    calibration: Calibration | None = None
    provenance: Provenance | None = None
    path: Path | None = None

    @property
    def name(self) -> str:
        """The detector's name."""
        return self.detector.name

    @property
    def threshold_(self) -> float:
        """The anomaly-score threshold set on held-out normal scans (PyOD's name).

        Raises:
            XadtError: the model has no calibration.
        """
        if self.calibration is None:
            msg = f"{self.name}: this model has no threshold; train it with xadt.fit or xadt train"
            raise XadtError(msg)
        return self.calibration.threshold

    def score(self, scans: Scans, context: RunContext | None = None) -> list[ScanResult]:
        """Score scans (anything :func:`xadt.inputs.as_scans` takes) and flag those above the
        threshold; higher = more anomalous."""
        return self.flag(self.detector.score(as_scans(scans), context))

    def decision_function(self, scans: Scans, context: RunContext | None = None) -> np.ndarray:
        """The anomaly scores of ``scans`` as a float64 array (PyOD's name)."""
        return np.array([r.score for r in self.score(scans, context)], dtype=np.float64)

    def predict(self, scans: Scans, context: RunContext | None = None) -> np.ndarray:
        """1 for each scan over the threshold, else 0 (PyOD's convention); needs a threshold."""
        return (self.decision_function(scans, context) > self.threshold_).astype(np.int64)

    def flag(self, results: list[ScanResult]) -> list[ScanResult]:
        """Set each result's ``flag`` and ``normal_quantile`` from the calibration (left None
        without one)."""
        if self.calibration is not None:
            for result in results:
                result.flag = bool(result.score > self.calibration.threshold)
                result.normal_quantile = self.calibration.quantile(result.score)
        return results
