"""Griffin et al.'s simple global features (size, attenuation, busyness) under a fitted Gaussian."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np

from xadt.config import is_int, option
from xadt.context import ProgressReporter, RunContext
from xadt.detector import (
    Detector,
    DetectorState,
    ScanResult,
    ShardedFit,
    meta_value,
    require_tensors,
)
from xadt.errors import XadtError
from xadt.features import FEATURES, global_features
from xadt.moments import Moments
from xadt.scans import Scan
from xadt.training_data import TrainingData


@dataclass
class BaselineConfig:
    """Options of the ``baseline`` detector."""

    feature: Literal["size", "attenuation", "busyness", "all"] = option(
        "all", help="the global feature to model; 'all' models the three jointly"
    )
    ridge: float = option(
        1e-6,
        help="added to the diagonal of the log-feature covariance, so one scan size still fits",
        check=(lambda v: v > 0, "a float > 0"),
    )


class BaselineDetector(ShardedFit, Detector):
    """Global-feature baseline (Griffin et al. 2019, Table III).

    Each scan becomes the log of its size, attenuation and busyness (``xadt.features``);
    ``fit`` streams their mean and covariance, and the anomaly score is the squared Mahalanobis
    distance of a scan's log features from that Gaussian; higher = more anomalous. The partial
    scores are each feature's absolute z-score. No patches, no maps.

    Fitted attributes: ``mean_``, ``covariance_`` (ridge included), ``features_``,
    ``n_train_scans_``.
    """

    name: ClassVar[str] = "baseline"
    description: ClassVar[str] = "Gaussian over a scan's size, attenuation and busyness"
    Config: ClassVar[type] = BaselineConfig
    config: BaselineConfig

    def __init__(self, config: BaselineConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.mean_: np.ndarray | None = None
        self.covariance_: np.ndarray | None = None
        self.features_: tuple[str, ...] = ()
        self.n_train_scans_ = 0

    @property
    def is_fitted(self) -> bool:
        """Whether ``score`` can run (after ``fit`` or ``from_state``)."""
        return self.mean_ is not None

    def fit(self, data: TrainingData, context: RunContext | None = None) -> Self:
        """Stream the mean and covariance of the normal scans' log features; returns ``self``.

        One pass over ``data``; ``context`` only reports progress.

        Raises:
            XadtError: for an invalid config, or fewer than two scans.
        """
        self.validate()
        progress = (context or RunContext()).progress
        progress.stage("reading scans", len(data))
        moments = self.fit_shard(_reported(data, progress), RunContext())
        self.merge_shards([moments], RunContext())
        return self

    def fit_shard(self, scans: Iterable[Scan], context: RunContext) -> Moments:
        """The moments of one shard's log features (:class:`xadt.detector.ShardedFit`)."""
        features = self._features()
        moments = Moments(len(features))
        for scan in scans:
            moments.update(_log_features(scan, features)[None, :])
        return moments

    def merge_shards(self, parts: list[Moments], context: RunContext) -> bool:
        """Merge the shards' moments into the fitted Gaussian; one round is all it takes."""
        features = self._features()
        moments = Moments(len(features))
        for part in parts:
            moments.merge(part)
        if moments.count < 2:
            msg = f"{self.name}: fit needs at least 2 normal scans; got {moments.count}"
            raise XadtError(msg)
        self.mean_ = moments.mean
        self.covariance_ = moments.covariance() + self.config.ridge * np.eye(len(features))
        self.features_ = features
        self.n_train_scans_ = moments.count
        return True

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        """Squared Mahalanobis distance of each scan's log features; higher = more anomalous."""
        mean, covariance = self._fitted()
        sd = np.sqrt(np.diag(covariance))
        results = []
        for scan in scans:
            d = _log_features(scan, self.features_) - mean
            # A fitted value far out of range overflows to inf, which the host refuses as a
            # non-finite score naming the scan; numpy's warning would only add noise on stderr.
            with np.errstate(over="ignore", invalid="ignore"):
                distance = float(d @ np.linalg.solve(covariance, d))
                z = d / sd
            partial = {f: float(abs(v)) for f, v in zip(self.features_, z, strict=True)}
            results.append(ScanResult(scan_id=scan.id, score=distance, partial=partial))
        return results

    def state(self) -> DetectorState:
        """The mean and covariance as arrays; the features and training count as metadata."""
        mean, covariance = self._fitted()
        return DetectorState(
            tensors={"mean": mean.copy(), "covariance": covariance.copy()},
            meta={"features": list(self.features_), "n_train_scans": self.n_train_scans_},
        )

    @classmethod
    def from_state(cls, config: BaselineConfig, state: DetectorState) -> Self:
        """Rebuild a fitted detector from ``config`` and a :meth:`state` result."""
        detector = cls(config)
        detector.validate()
        require_tensors(cls.name, state, ["mean", "covariance"])
        features = meta_value(cls.name, state.meta, "features")
        n_train = meta_value(cls.name, state.meta, "n_train_scans")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            msg = f"{cls.name}: model metadata 'features' must be a list of names, not {features!r}"
            raise XadtError(msg)
        if not is_int(n_train) or n_train < 2:  # type: ignore[operator]
            msg = (
                f"{cls.name}: model metadata 'n_train_scans' must be a count >= 2, not {n_train!r}"
            )
            raise XadtError(msg)
        features = tuple(features)
        if features != detector._features():
            msg = (
                f"{cls.name}: the model was fitted on features {list(features)} but the config "
                f"asks for feature={config.feature!r}"
            )
            raise XadtError(msg)
        mean = np.asarray(state.tensors["mean"])
        covariance = np.asarray(state.tensors["covariance"])
        if mean.shape != (len(features),) or covariance.shape != (len(features),) * 2:
            msg = (
                f"{cls.name}: model tensors have shapes {mean.shape} and {covariance.shape}; "
                f"expected ({len(features)},) and {(len(features),) * 2}"
            )
            raise XadtError(msg)
        _check_gaussian(mean, covariance)
        detector.mean_, detector.covariance_ = mean, covariance
        detector.features_ = features
        detector.n_train_scans_ = int(n_train)  # type: ignore[arg-type]
        return detector

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        self.check_fitted()
        assert self.mean_ is not None
        assert self.covariance_ is not None
        return self.mean_, self.covariance_

    def _features(self) -> tuple[str, ...]:
        return FEATURES if self.config.feature == "all" else (self.config.feature,)


def _check_gaussian(mean: np.ndarray, covariance: np.ndarray) -> None:
    """Refuse fitted arrays that no fit writes: not float64, not finite, or a covariance that is
    not symmetric positive definite (scoring would fail or give meaningless distances)."""
    problem = ""
    if mean.dtype != np.float64 or covariance.dtype != np.float64:
        problem = f"dtypes {mean.dtype} and {covariance.dtype}, not float64"
    elif not (np.isfinite(mean).all() and np.isfinite(covariance).all()):
        problem = "values that are NaN or infinite"
    elif not np.array_equal(covariance, covariance.T):
        problem = "a covariance that is not symmetric"
    else:
        try:
            np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            problem = "a covariance that is not positive definite"
    if problem:
        msg = f"{BaselineDetector.name}: the model's tensors hold {problem}; retrain the model"
        raise XadtError(msg)


def _log_features(scan: Scan, features: tuple[str, ...]) -> np.ndarray:
    values = global_features(scan.views)
    return np.log1p(np.array([values[f] for f in features], dtype=np.float64))


def _reported(scans: Iterable[Scan], progress: ProgressReporter) -> Iterator[Scan]:
    for done, scan in enumerate(scans, start=1):
        yield scan
        progress.update(done)
