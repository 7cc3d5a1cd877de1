"""A tutorial xadt plugin: the ``example`` detector compares a scan's intensity histograms with
the mean histograms of normal scans."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

import xadt
from xadt.config import option
from xadt.context import RunContext
from xadt.detector import DetectorState, ScanResult, meta_value, require_tensors
from xadt.errors import XadtError
from xadt.training_data import TrainingData

_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


@dataclass
class ExampleConfig:
    """Options of the ``example`` detector."""

    bins: int = option(
        16,
        help="histogram bins per channel over the full intensity range",
        check=(lambda v: 2 <= v <= 256, "an integer from 2 to 256"),
    )


def histograms(scan: xadt.Scan, bins: int) -> np.ndarray:
    """Per-channel intensity histograms of all the scan's views, each summing to 1: (C, bins)."""
    channels = scan.views[0].shape[2]
    counts = np.zeros((channels, bins))
    for view in scan.views:
        scaled = np.clip(view.reshape(-1, channels) / _FULL_SCALE[view.dtype], 0.0, 1.0)
        index = np.minimum((scaled * bins).astype(np.int64), bins - 1)
        for c in range(channels):
            counts[c] += np.bincount(index[:, c], minlength=bins)
    return counts / counts.sum(axis=1, keepdims=True)


class HistogramDetector(xadt.Detector):
    """Chi-square distance of a scan's channel histograms from the normal mean histograms.

    The anomaly score is the sum over channels of ``0.5 * sum((h - m)**2 / (h + m))``, where
    ``h`` is the scan's histogram and ``m`` the mean normal one; higher = more anomalous. Each
    channel's term is a partial score (``channel_0``, ...). Fitted attributes: ``mean_``,
    ``n_train_scans_``.
    """

    name: ClassVar[str] = "example"
    description: ClassVar[str] = "chi-square distance of intensity histograms (tutorial plugin)"
    Config: ClassVar[type] = ExampleConfig
    config: ExampleConfig

    def __init__(self, config: ExampleConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.mean_: np.ndarray | None = None
        self.n_train_scans_ = 0

    @property
    def is_fitted(self) -> bool:
        """Whether ``score`` can run."""
        return self.mean_ is not None

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        """Average the normal scans' histograms in one pass, a scan at a time; returns ``self``."""
        self.validate()
        total, count = None, 0
        for scan in data:
            h = histograms(scan, self.config.bins)
            if total is not None and h.shape != total.shape:
                msg = f"{self.name}: scan {scan.id!r} has {h.shape[0]} channels, not {len(total)}"
                raise XadtError(msg)
            total = h if total is None else total + h
            count += 1
        if total is None:
            msg = f"{self.name}: fit needs at least one normal scan"
            raise XadtError(msg)
        self.mean_, self.n_train_scans_ = total / count, count
        return self

    def score(
        self, scans: Iterable[xadt.Scan], context: RunContext | None = None
    ) -> list[ScanResult]:
        """Chi-square distance of each scan's histograms from the mean; higher = more anomalous."""
        self.check_fitted()
        mean = self.mean_
        assert mean is not None
        results = []
        for scan in scans:
            h = histograms(scan, self.config.bins)
            if h.shape != mean.shape:
                msg = f"{self.name}: scan {scan.id!r} has {h.shape[0]} channels, not {len(mean)}"
                raise XadtError(msg)
            both = h + mean
            terms = np.divide((h - mean) ** 2, both, out=np.zeros_like(both), where=both > 0)
            per_channel = 0.5 * terms.sum(axis=1)
            partial = {f"channel_{c}": float(v) for c, v in enumerate(per_channel)}
            results.append(ScanResult(scan.id, float(per_channel.sum()), partial))
        return results

    def state(self) -> DetectorState:
        """The mean histograms as an array and the training count as metadata."""
        self.check_fitted()
        assert self.mean_ is not None
        return DetectorState({"mean": self.mean_.copy()}, {"n_train_scans": self.n_train_scans_})

    @classmethod
    def from_state(cls, config: ExampleConfig, state: DetectorState) -> Self:
        """Rebuild a fitted detector from ``config`` and a :meth:`state` result."""
        detector = cls(config)
        detector.validate()
        require_tensors(cls.name, state, ["mean"])
        mean = np.asarray(state.tensors["mean"], dtype=np.float64)
        if mean.ndim != 2 or mean.shape[1] != config.bins:
            msg = f"{cls.name}: model histograms have shape {mean.shape}, not (C, {config.bins})"
            raise XadtError(msg)
        detector.mean_ = mean
        detector.n_train_scans_ = int(meta_value(cls.name, state.meta, "n_train_scans"))
        return detector


@xadt.hookimpl
def xadt_detectors() -> list[type[xadt.Detector]]:
    """The detectors this plugin provides."""
    return [HistogramDetector]
