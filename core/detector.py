"""The detector contract: the one public promise xadt makes to plugin authors.

A detector is a class with a ``name``, a ``Config`` dataclass, ``fit``, ``score`` and a
``state`` / ``from_state`` pair that round-trips through a model file without pickling.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from xadt.config import validate_config
from xadt.errors import NotFittedError
from xadt.scans import Scan

if TYPE_CHECKING:
    from xadt.calibration import Calibration

JSONValue = Any
"""A value that survives ``json.dumps``: numbers, strings, booleans, None, lists and dicts."""


@dataclass(frozen=True)
class PatchScores:
    """Patch-level anomaly scores of one view; higher = more anomalous.

    Attributes:
        view: index of the view in its scan.
        boxes: (N, 4) int64 windows ``(y0, x0, y1, x1)`` in the view's pixel coordinates.
        scores: (N,) float64 anomaly score of each window.
    """

    view: int
    boxes: np.ndarray
    scores: np.ndarray


@dataclass
class ScanResult:
    """What a detector says about one scan.

    Attributes:
        scan_id: the ``Scan.id`` it scored.
        score: the scan's anomaly score; higher = more anomalous.
        partial: named partial anomaly scores (e.g. ``appearance``, ``semantic``).
        patches: patch scores per view, when the detector scores patches.
        maps: per-view (H, W) float32 anomaly maps, NaN where nothing was scored; empty if none.
        flag: whether the score is over the model's threshold; None when the model has none.
    """

    scan_id: str
    score: float
    partial: dict[str, float] = field(default_factory=dict)
    patches: list[PatchScores] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    flag: bool | None = None


@dataclass
class DetectorState:
    """A fitted detector's state: named arrays plus JSON metadata, nothing executable.

    Attributes:
        tensors: named numeric arrays (stored in ``tensors.safetensors``).
        meta: JSON-ready fitted values that are not arrays (counts, thresholds, names).
    """

    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, JSONValue] = field(default_factory=dict)


class Detector(abc.ABC):
    """Base class of every detector, built-in or third-party.

    Subclasses set ``name`` (short, lower-case, stable: it is the CLI's public name), a one-line
    ``description`` and a ``Config`` dataclass whose fields all have defaults. Constructing a
    detector stores its config and does nothing else; ``fit`` validates and learns.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type]

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        base = self.Config() if config is None else config
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.calibration: Calibration | None = None
        """Threshold and normal-score statistics, set by the host from held-out normal scans."""

    def validate(self) -> None:
        """Check the config against its field types and constraints; raise ``XadtError``."""
        validate_config(self.name, self.config)

    @abc.abstractmethod
    def fit(self, scans: Iterable[Scan]) -> Self:
        """Learn what normal looks like from an iterable of normal scans.

        The iterable may be far larger than memory and may be a one-shot generator: iterate it
        once and never materialise it. Returns ``self``.
        """

    @abc.abstractmethod
    def score(self, scans: Iterable[Scan]) -> list[ScanResult]:
        """Score scans; one ``ScanResult`` per scan, in order, higher = more anomalous."""

    @property
    @abc.abstractmethod
    def is_fitted(self) -> bool:
        """Whether ``score`` can run (after ``fit`` or ``from_state``)."""

    @abc.abstractmethod
    def state(self) -> DetectorState:
        """The fitted state as arrays and JSON metadata, for ``xadt.artifacts.save_model``."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls, config: Any, state: DetectorState) -> Self:
        """Rebuild a fitted detector from its config and a ``state()`` result."""

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` with what to do when the detector has no fitted state."""
        if not self.is_fitted:
            msg = (
                f"{self.name}: no fitted state; run 'xadt train --plugin {self.name}' first "
                "or pass --model DIR"
            )
            raise NotFittedError(msg)


def require_tensors(detector: str, state: DetectorState, names: Iterable[str]) -> None:
    """Raise a clear error when a model's state lacks arrays a detector needs."""
    missing = sorted(set(names) - set(state.tensors))
    if missing:
        msg = f"{detector}: model file lacks tensors {missing}; it was not written by this plugin"
        raise NotFittedError(msg)


def meta_value(detector: str, meta: Mapping[str, JSONValue], key: str) -> JSONValue:
    """Fetch a required metadata value from a model's state, with a clear error if absent."""
    if key not in meta:
        msg = f"{detector}: model metadata lacks {key!r}; it was not written by this plugin"
        raise NotFittedError(msg)
    return meta[key]
