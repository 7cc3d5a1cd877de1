"""The detector contract (version 2): the one public promise xadt makes to plugin authors.

A detector is a class with a ``name``, a ``Config`` dataclass, ``fit(data, context)``,
``score(scans, context)`` and a ``state`` / ``from_state`` pair that round-trips through a model
file without pickling. ``data`` is a re-iterable :class:`xadt.training_data.TrainingData` (one
pass for a closed-form fit, many epochs for a network) and ``context`` a
:class:`xadt.context.RunContext`. Thresholds are not the detector's business: the host wraps a
fitted detector in a :class:`xadt.model.Model` with its calibration.
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
    from xadt.context import RunContext
    from xadt.training_data import TrainingData

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
        flag: whether the score is over the model's threshold; set by :class:`xadt.model.Model`,
            None from a bare detector or a model without a threshold.
        normal_quantile: the calibrated score, the fraction of held-out normal scans scoring
            lower (0.5 typical, 1.0 above them all); set by the model like ``flag``.
    """

    scan_id: str
    score: float
    partial: dict[str, float] = field(default_factory=dict)
    patches: list[PatchScores] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    flag: bool | None = None
    normal_quantile: float | None = None


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
    presets: ClassVar[Mapping[str, Any]] = {}
    """Named configurations (``Config`` instances), listed by ``xadt plugins NAME``."""

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        base = self.Config() if config is None else config
        self.config = dataclasses.replace(base, **overrides) if overrides else base

    def validate(self) -> None:
        """Check the config against its field types and constraints; raise ``XadtError``."""
        validate_config(self.name, self.config)

    def default_validation(self) -> float:
        """Fraction of the training scans to hold out for model selection when the user names
        none: 0 for a detector that selects nothing (the default)."""
        return 0.0

    @abc.abstractmethod
    def fit(self, data: TrainingData, context: RunContext) -> Self:
        """Learn what normal looks like from normal scans; returns ``self``.

        ``data`` may be far larger than memory: iterate it (each ``iter(data)`` is a fresh pass,
        ``data.epoch(k)`` a seeded shuffled one) and never hold all its scans at once.
        ``data.validation`` holds other normal scans for model selection. ``context`` says on
        which device to run, the seed, where to report progress and where to keep checkpoints
        and caches.
        """

    @abc.abstractmethod
    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        """Score scans; one ``ScanResult`` per scan, in order, higher = more anomalous.

        ``context`` (device, progress, registry) defaults to ``RunContext()``. Networks score in
        evaluation mode: a scan's score never depends on the other scans in the call.
        """

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


class ShardedFit(abc.ABC):
    """A detector whose fit is rounds of sums over shards of the training scans (a mixin).

    ``xadt train --engine ray`` fits such a detector without knowing its maths. Each round, the
    detector (carrying what the rounds before decided) is sent to workers; each calls
    :meth:`fit_shard` on its shard of the fit scans and returns that round's statistics, and
    the host hands the shards' statistics to :meth:`merge_shards`, which merges them exactly (a
    sum, up to floating-point reassociation) and either prepares the next round or finishes
    the fit. The fitted detector equals one fitted by ``fit`` on all the scans.
    """

    @abc.abstractmethod
    def fit_shard(self, scans: Iterable[Scan], context: RunContext) -> Any:
        """This round's statistics of one shard of the fit scans (picklable, mergeable)."""

    @abc.abstractmethod
    def merge_shards(self, parts: list[Any], context: RunContext) -> bool:
        """Merge the shards' statistics of this round (in shard order) and move on; True when
        the fit is complete.

        Raises:
            XadtError: the merged data cannot give a model (as ``fit`` would raise).
        """


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
