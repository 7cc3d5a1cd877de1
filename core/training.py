"""Training: fit any detector on a folder of normal scans, calibrate it on held-out normal scans,
and save it atomically.

A fraction of the training scans (chosen by a hash of their ids) is held out of the fit; the
fitted detector scores them and its threshold is set at a target false-alarm rate from those
scores. Nothing here ever looks at an anomaly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xadt import host
from xadt.artifacts import MODEL_JSON, save_model, store_path
from xadt.calibration import Calibration, calibrate, is_held_out, split_holdout
from xadt.config import parse_overrides
from xadt.detector import Detector, ScanResult
from xadt.errors import XadtError
from xadt.host import Registry
from xadt.scans import Scan, ScanFolder, iter_scans
from xadt.scoring import score_in_chunks

__all__ = [
    "DEFAULT_HOLDOUT",
    "DEFAULT_TARGET_FPR",
    "Progress",
    "TrainResult",
    "build_detector",
    "check_fraction",
    "check_model_path",
    "fit_and_calibrate",
    "train",
]

PathLike = str | os.PathLike[str]

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(stage, done, total)``: what is happening, scans done, total or None."""

DEFAULT_HOLDOUT = 0.1
"""Fraction of the normal training scans held out of the fit to calibrate the threshold."""

DEFAULT_TARGET_FPR = 0.05
"""False-alarm rate on held-out normal scans that the threshold is set for."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run did.

    Attributes:
        path: the model directory written.
        detector: the fitted, calibrated detector.
        calibration: its calibration (also ``detector.calibration``).
        n_fitted: normal scans the detector was fitted on.
        n_holdout: normal scans held out of the fit and scored to calibrate it.
        skipped: ``(file, reason)`` of each unreadable scan that was skipped.
        summary: one line on the scans read and skipped.
    """

    path: Path
    detector: Detector
    calibration: Calibration
    n_fitted: int
    n_holdout: int
    skipped: list[tuple[Path, str]]
    summary: str


def build_detector(
    cls: type[Detector], overrides: Sequence[str] = (), *, cache: PathLike | None = None
) -> Detector:
    """A detector of class ``cls`` with ``--set key=value`` overrides and ``--cache`` applied.

    The config is validated here, so a bad option fails before any scan is read.

    Args:
        cls: the detector class.
        overrides: ``"key=value"`` strings for fields of ``cls.Config``.
        cache: a folder for the detector's ``cache`` option (stored as an absolute path).

    Raises:
        XadtError: an unknown key (the message lists the valid ones), a bad value, ``--cache``
            for a detector without a ``cache`` option, or ``cache`` given both ways.
    """
    values = parse_overrides(cls.name, cls.Config, overrides)
    if cache is not None:
        names = [f.name for f in dataclasses.fields(cls.Config)]
        if "cache" not in names:
            msg = (
                f"--cache: {cls.name} has no 'cache' option, so it cannot use a feature cache; "
                f"options: {', '.join(names)}"
            )
            raise XadtError(msg)
        if "cache" in values:
            msg = "--cache and --set cache=... both name a cache folder; pass only one"
            raise XadtError(msg)
        values["cache"] = str(Path(cache).absolute())
    detector = cls(cls.Config(**values))
    detector.validate()
    return detector


def check_model_path(path: PathLike, *, overwrite: bool) -> Path:
    """Check, before a long fit, that a model may be saved at ``path`` (as ``save_model`` will).

    Raises:
        XadtError: ``path`` holds a model and ``overwrite`` is false, or exists and is not a
            model directory.
    """
    target = Path(path)
    if target.exists():
        if not (target / MODEL_JSON).is_file():
            msg = f"{target}: exists and is not an xadt model directory; refusing to replace it"
            raise XadtError(msg)
        if not overwrite:
            msg = f"{target}: a model already exists there; pass --overwrite to replace it"
            raise XadtError(msg)
    return target


def fit_and_calibrate(
    detector: Detector,
    scans: Iterable[Scan],
    *,
    holdout: float = DEFAULT_HOLDOUT,
    target_fpr: float = DEFAULT_TARGET_FPR,
    seed: int = 0,
    total: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Fit ``detector`` on normal scans minus a held-out fraction, then calibrate it on those.

    The scans stream once through the fit; the held-out ones (``holdout`` of them, chosen by a
    hash of id and ``seed``) are kept aside in memory, never fitted on, and scored afterwards.
    ``detector.calibration`` is set at ``target_fpr`` false alarms on their scores.

    Args:
        detector: an unfitted detector.
        scans: normal training scans, possibly a one-shot generator.
        holdout: fraction of the scans held out, in (0, 1).
        target_fpr: false-alarm rate the threshold is set for, in (0, 1).
        seed: seed of the held-out split.
        total: the number of scans, when known, for progress.
        progress: called as ``progress(stage, done, total)``.

    Returns:
        ``(n_fitted, n_holdout)``.

    Raises:
        XadtError: a bad ``holdout`` or ``target_fpr``, a failed fit, fewer than two held-out
            scans, or a non-finite held-out score.
    """
    check_fraction("--holdout", holdout)
    check_fraction("--target-fpr", target_fpr)
    report = progress or (lambda _stage, _done, _total: None)
    held_out: list[Scan] = []
    counts = {"read": 0, "fitted": 0}

    def read(source: Iterable[Scan]) -> Iterator[Scan]:
        for scan in source:
            counts["read"] += 1
            yield scan

    def fitted(source: Iterable[Scan]) -> Iterator[Scan]:
        for scan in source:
            counts["fitted"] += 1
            report(
                f"fitting ({counts['fitted']} fitted, {len(held_out)} held out)",
                counts["read"],
                total,
            )
            yield scan

    report("fitting", 0, total)
    stream = split_holdout(read(scans), holdout, seed, held_out)
    detector.fit(fitted(stream))
    for _ in stream:  # a fit that stopped early must not shrink the held-out set
        pass
    report("calibrating", 0, len(held_out))
    results: list[ScanResult] = []

    def calibrating(_batch: list[Scan], chunk: list[ScanResult]) -> None:
        results.extend(chunk)
        report("calibrating", len(results), len(held_out))

    for _ in score_in_chunks(detector, held_out, on_chunk=calibrating):
        pass
    detector.calibration = calibrate(results, target_fpr)
    return counts["fitted"], len(held_out)


def check_fraction(option: str, value: float) -> None:
    """Raise ``XadtError`` unless ``value`` is a fraction strictly between 0 and 1."""
    if not (isinstance(value, int | float) and 0 < value < 1):
        msg = f"{option} must be a fraction between 0 and 1 (exclusive); got {value!r}"
        raise XadtError(msg)


def train(
    plugin: str | type[Detector],
    data: PathLike,
    *,
    output: PathLike | None = None,
    overrides: Sequence[str] = (),
    cache: PathLike | None = None,
    holdout: float = DEFAULT_HOLDOUT,
    target_fpr: float = DEFAULT_TARGET_FPR,
    seed: int = 0,
    overwrite: bool = False,
    registry: Registry | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Fit a detector on the normal scans of ``data``, calibrate it, and save the model.

    Every check that can fail before the fit does: the plugin, its options, the output path, the
    data folder and the size of the held-out split (known from the scan ids). The model is
    saved (atomically) only after the fit and the calibration succeed, so a failed run never
    replaces an existing model. Unreadable scans are skipped (with a ``ScanSkippedWarning``
    each) and listed in the result: the caller decides whether a model trained on the rest is a
    failure.

    Args:
        plugin: the detector's name, or its class.
        data: a folder of normal scans (read lazily, one at a time).
        output: the model directory; by default the model store, ``store_path(plugin)``.
        overrides: ``"key=value"`` strings for the detector's ``Config``.
        cache: a folder for the detector's ``cache`` option.
        holdout: fraction of the scans held out of the fit to calibrate the threshold.
        target_fpr: false-alarm rate on the held-out scans that the threshold is set for.
        seed: seed of the held-out split.
        overwrite: replace an existing model at the output path.
        registry: where to look ``plugin`` up; by default :func:`xadt.host.load_registry`.
        progress: called as ``progress(stage, done, total)``.

    Returns:
        What was fitted and written.

    Raises:
        XadtError: an unknown plugin or option, an existing model without ``overwrite``, a
            missing or empty data folder, a failed fit or too few held-out scans.
    """
    cls = _detector_class(plugin, registry)
    detector = build_detector(cls, overrides, cache=cache)
    check_fraction("--holdout", holdout)
    check_fraction("--target-fpr", target_fpr)
    target = check_model_path(
        store_path(cls.name) if output is None else output, overwrite=overwrite
    )
    folder = iter_scans(data)
    expected = sum(is_held_out(scan_id, holdout, seed) for scan_id in folder.ids)
    if expected < 2:
        msg = (
            f"{folder.folder}: --holdout {holdout:g} holds out {expected} of its {len(folder)} "
            "scans, but calibration needs at least 2 held-out normal scans; train on more scans "
            "or raise --holdout"
        )
        raise XadtError(msg)
    try:
        n_fitted, n_holdout = fit_and_calibrate(
            detector,
            folder,
            holdout=holdout,
            target_fpr=target_fpr,
            seed=seed,
            total=len(folder),
            progress=progress,
        )
    except XadtError as exc:
        if folder.skipped:
            msg = f"{exc} ({folder.summary()})"
            raise XadtError(msg) from None
        raise
    if progress is not None:
        progress("saving", 0, None)
    path = save_model(target, detector, overwrite=overwrite)
    assert detector.calibration is not None
    return TrainResult(
        path=path,
        detector=detector,
        calibration=detector.calibration,
        n_fitted=n_fitted,
        n_holdout=n_holdout,
        skipped=list(folder.skipped),
        summary=_summary(folder, n_fitted, n_holdout),
    )


def _detector_class(plugin: str | type[Detector], registry: Registry | None) -> type[Detector]:
    if isinstance(plugin, str):
        return (registry or host.load_registry()).get_detector(plugin)
    return plugin


def _summary(folder: ScanFolder, n_fitted: int, n_holdout: int) -> str:
    return f"{folder.summary()}; fitted on {n_fitted}, calibrated on {n_holdout} held out"
