"""Training data: normal scans split into fit, validation and calibration parts, read lazily.

A :class:`TrainingData` is re-iterable: each ``iter()`` is a fresh pass that reads the scans one at
a time in id order, and :meth:`TrainingData.epoch` gives a pass in an order shuffled from the seed
and the epoch number alone, so a resumed run sees exactly the batches it would have seen. Its
``validation`` part holds normal scans for model selection and early stopping; the calibration
scans that set the threshold are a third part that a detector never sees. The three are disjoint
and chosen by a hash of each scan id, so the split is stable and needs no pass over the pixels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xadt.errors import XadtError
from xadt.scans import Scan, ScanFolder

__all__ = ["Split", "TrainingData", "check_fraction", "split_ids"]

Loader = Callable[[Sequence[str]], Iterator[Scan]]
"""Reads the scans with the given ids, in that order, one at a time (unreadable ones skipped)."""


def check_fraction(option: str, value: float, *, zero: bool = False) -> None:
    """Raise ``XadtError`` unless ``value`` is a fraction below 1 and above 0 (or 0 if ``zero``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and (value >= 0 if zero else value > 0) and value < 1):
        low = "[0, 1)" if zero else "between 0 and 1 (exclusive)"
        msg = f"{option} must be a fraction {low}; got {value!r}"
        raise XadtError(msg)


def _unit(scan_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from the scan id and seed: the scan's place in the split."""
    digest = hashlib.sha256(f"{seed}:{scan_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Split:
    """Scan ids split three ways, each in the order given.

    Attributes:
        fit: what the detector learns from.
        validation: held-out normal scans the detector may use to select a model.
        calibration: held-out normal scans that set the threshold; never shown to the detector.
    """

    fit: tuple[str, ...]
    validation: tuple[str, ...]
    calibration: tuple[str, ...]


def split_ids(ids: Iterable[str], *, holdout: float, validation: float, seed: int) -> Split:
    """Split scan ids into fit, validation and calibration parts by a hash of id and seed.

    A scan whose hash falls below ``holdout`` calibrates, the next ``validation`` of the unit
    interval validates, the rest fit; so with ``validation=0`` the fit part is the same whatever
    the detector, and the parts stay the same when scans are added.
    """
    check_fraction("--holdout", holdout)
    check_fraction("--validation", validation, zero=True)
    if holdout + validation >= 1:
        msg = f"--holdout {holdout:g} and --validation {validation:g} leave no scans to fit on"
        raise XadtError(msg)
    parts: tuple[list[str], list[str], list[str]] = ([], [], [])
    for scan_id in ids:
        u = _unit(scan_id, seed)
        parts[0 if u < holdout else 1 if u < holdout + validation else 2].append(scan_id)
    calibration, valid, fit = parts
    return Split(fit=tuple(fit), validation=tuple(valid), calibration=tuple(calibration))


class TrainingData:
    """Normal scans to fit on, re-iterable and read lazily; see the module docstring.

    Args:
        ids: the scan ids to fit on, in their pass order.
        loader: reads scans by id, one at a time (see :data:`Loader`).
        validation: ids of the validation scans (read by the same loader).
        seed: seeds the shuffled order of :meth:`epoch`.
        description: where the scans come from, for messages (a folder, ``"in memory"``).
        skipped: a list the loader appends ``(file, reason)`` of unreadable scans to.
        unread: a set the loader adds the ids of unreadable scans to.

    Attributes:
        ids: the fit ids.
        validation: the validation part, a :class:`TrainingData` itself (maybe empty).
        skipped: ``(file, reason)`` of every scan that could not be read, over all passes.
        unread: the ids of those scans.
    """

    def __init__(
        self,
        ids: Sequence[str],
        loader: Loader,
        *,
        validation: Sequence[str] = (),
        seed: int = 0,
        description: str = "",
        skipped: list[tuple[Path, str]] | None = None,
        unread: set[str] | None = None,
    ) -> None:
        self.ids = tuple(ids)
        self.seed = seed
        self.description = description
        self.skipped = [] if skipped is None else skipped
        self.unread = set() if unread is None else unread
        self._loader = loader
        self._validation_ids = tuple(validation)

    @classmethod
    def from_scans(
        cls, scans: Iterable[Scan], *, validation: Iterable[Scan] = (), seed: int = 0
    ) -> TrainingData:
        """Training data over scans already in memory (tests, notebooks, small sets).

        Raises:
            XadtError: two scans share an id.
        """
        fit, valid = list(scans), list(validation)
        by_id: dict[str, Scan] = {}
        for scan in [*fit, *valid]:
            if scan.id in by_id:
                msg = f"two training scans have the id {scan.id!r}; scan ids must be unique"
                raise XadtError(msg)
            by_id[scan.id] = scan

        def load(ids: Sequence[str]) -> Iterator[Scan]:
            return (by_id[i] for i in ids)

        return cls(
            [s.id for s in fit],
            load,
            validation=[s.id for s in valid],
            seed=seed,
            description="in memory",
        )

    @classmethod
    def from_folder(
        cls, folder: ScanFolder, split: Split, *, seed: int = 0
    ) -> tuple[TrainingData, TrainingData]:
        """The fit (with its validation part) and calibration data of a folder split by ids.

        Scans are read from ``folder`` at each pass; an unreadable one is skipped with a
        ``ScanSkippedWarning`` and listed once in ``skipped`` (shared by both results).
        """
        skipped: list[tuple[Path, str]] = []
        unread: set[str] = set()

        def load(ids: Sequence[str]) -> Iterator[Scan]:
            missing = set(ids)
            for scan in folder.read(ids):
                missing.discard(scan.id)
                yield scan
            unread.update(missing)
            skipped.extend(item for item in folder.skipped if item not in skipped)

        where = str(folder.folder)
        data = cls(
            split.fit,
            load,
            validation=split.validation,
            seed=seed,
            description=where,
            skipped=skipped,
            unread=unread,
        )
        calibration = cls(
            split.calibration, load, seed=seed, description=where, skipped=skipped, unread=unread
        )
        return data, calibration

    @property
    def validation(self) -> TrainingData:
        """The held-out normal scans for model selection (empty when none were held out)."""
        return TrainingData(
            self._validation_ids,
            self._loader,
            seed=self.seed,
            description=self.description,
            skipped=self.skipped,
            unread=self.unread,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"TrainingData({len(self)} scans, {len(self._validation_ids)} for validation, "
            f"{self.description or 'unnamed'})"
        )

    def __iter__(self) -> Iterator[Scan]:
        """A fresh pass over the scans in id order, read one at a time."""
        return self._loader(self.ids)

    def order(self, epoch: int) -> list[str]:
        """The ids in the shuffled order of ``epoch``: a function of the seed and epoch alone."""
        rng = np.random.default_rng([self.seed, epoch])
        return [self.ids[i] for i in rng.permutation(len(self.ids))]

    def epoch(self, epoch: int) -> Iterator[Scan]:
        """A fresh pass over the scans in the shuffled order of ``epoch`` (see :meth:`order`)."""
        return self._loader(self.order(epoch))
