"""The end-to-end demo: synthesise parcels, train a detector, score and localise the test set,
and evaluate it, all in one folder.

The test set is scored once: every result feeds the scores file, the overlays and the evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from xadt import host
from xadt.detector import Detector, DetectorState, ScanResult
from xadt.errors import XadtError
from xadt.evaluate import EvalReport, evaluate, write_report
from xadt.host import Registry
from xadt.overlay import map_scale, write_overlays
from xadt.scans import Scan
from xadt.scoring import ScoreRow, score_in_chunks, write_results
from xadt.training import TrainResult, build_detector, train

__all__ = [
    "DEFAULT_PLUGIN",
    "DEFAULT_SCALE",
    "DemoResult",
    "DemoSize",
    "check_demo_folder",
    "run_demo",
]

PathLike = str | os.PathLike[str]

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(stage, done, total)``."""

DEFAULT_PLUGIN = "gaussian"
"""The detector the demo trains unless told otherwise."""

DEFAULT_SCALE = 0.5
"""Image size of the demo's parcels relative to full size (764 px high); keeps it under 10 min."""

DEMO_HOLDOUT = 0.2
"""Held-out fraction of the demo's small training set: enough scans to set a threshold from."""


@dataclass(frozen=True)
class DemoSize:
    """How many scans the demo synthesises.

    Attributes:
        train: normal training scans (a fraction of them is held out for calibration).
        test_normal: normal test scans.
        threat: test scans with a threat (and a mask).
    """

    train: int = 40
    test_normal: int = 20
    threat: int = 20


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things and what the evaluation found.

    Attributes:
        out: the demo folder.
        data: the synthetic data set (``train/normal``, ``test/...``, ``manifest.json``).
        model: the trained model directory.
        scores: the test set's scores (CSV).
        overlays: the folder of overlays and maps, or None when the plugin has no maps.
        report: the evaluation.
        report_path: the evaluation as JSON.
        training: what the training run did.
        notes: anything left out, one sentence each.
    """

    out: Path
    data: Path
    model: Path
    scores: Path
    overlays: Path | None
    report: EvalReport
    report_path: Path
    training: TrainResult
    notes: list[str] = field(default_factory=list)


def check_demo_folder(out: PathLike, *, overwrite: bool) -> Path:
    """Check that the demo may write into ``out``: absent, empty, or ``overwrite`` given.

    Raises:
        XadtError: ``out`` is a file, or a non-empty folder and ``overwrite`` is false.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        msg = f"{folder}: is a file; name a folder for the demo"
        raise XadtError(msg)
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        msg = f"{folder}: is not empty; pass --overwrite to replace the demo in it"
        raise XadtError(msg)
    return folder


def run_demo(
    out: PathLike,
    *,
    plugin: str = DEFAULT_PLUGIN,
    scale: float = DEFAULT_SCALE,
    size: DemoSize | None = None,
    overrides: Sequence[str] = (),
    seed: int = 0,
    overwrite: bool = False,
    workers: int | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Synthesise a small parcel set, train ``plugin`` on it, then score, localise and evaluate.

    Layout of ``out``: ``data/`` (the synthetic set), ``model/``, ``scores.csv``,
    ``overlays/`` (when the plugin gives maps) and ``report.json``.

    Args:
        out: the demo folder; it must be absent or empty unless ``overwrite``.
        plugin: the detector to train.
        scale: image size relative to full size (764 px high).
        size: how many scans to synthesise.
        overrides: ``"key=value"`` options of the detector, as ``xadt train --set``.
        seed: seed of the data set and of the held-out split.
        overwrite: replace a previous demo in ``out``.
        workers: processes synthesising scans (default: every CPU core).
        registry: where to look ``plugin`` up; by default :func:`xadt.host.load_registry`.
        progress: called as ``progress(stage, done, total)``.

    Raises:
        XadtError: the plugin is not installed, ``out`` is not empty, or a step fails.
    """
    from xadt.synth.dataset import write_dataset  # lazy: the synthesiser is only for the demo

    size = size or DemoSize()
    report = progress or (lambda _stage, _done, _total: None)
    registry = registry or host.load_registry()
    try:
        cls = registry.get_detector(plugin)
    except XadtError as exc:
        msg = f"{exc}; pass --plugin NAME to run the demo with an installed detector"
        raise XadtError(msg) from None
    build_detector(cls, overrides)  # a bad option fails before any parcel is made
    folder = check_demo_folder(out, overwrite=overwrite)
    data, model = folder / "data", folder / "model"
    scores, overlays, report_path = (
        folder / "scores.csv",
        folder / "overlays",
        folder / "report.json",
    )
    if overwrite:
        _clear_outputs(overlays)

    total = size.train + size.test_normal + size.threat
    write_dataset(
        data,
        normal=size.train,
        test_normal=size.test_normal,
        threat=size.threat,
        seed=seed,
        overwrite=overwrite,
        scale=scale,
        workers=workers or os.cpu_count() or 1,
        progress=lambda done, _total: report("synthesising parcels", done, total),
    )
    training = train(
        cls,
        data / "train" / "normal",
        output=model,
        overrides=overrides,
        holdout=DEMO_HOLDOUT,
        seed=seed,
        overwrite=overwrite,
        registry=registry,
        progress=progress,
    )
    detector = training.detector
    sink = _Sink(detector, overlays, overwrite=overwrite)
    n_test = size.test_normal + size.threat
    evaluation = evaluate(
        _teed(detector, sink),
        data / "test",
        progress=lambda done, _total: report("scoring the test set", done, n_test),
    )
    notes = list(sink.notes)
    write_results(sink.rows, scores, overwrite=overwrite, detector=detector, model=model)
    write_report(evaluation, report_path, overwrite=overwrite)
    return DemoResult(
        out=folder,
        data=data,
        model=model,
        scores=scores,
        overlays=overlays if sink.n_overlays else None,
        report=evaluation,
        report_path=report_path,
        training=training,
        notes=notes,
    )


class _Sink:
    """Keeps a row per scored test scan and writes its overlays while the results pass by."""

    def __init__(self, detector: Detector, overlays: Path, *, overwrite: bool) -> None:
        self.detector, self.folder, self.overwrite = detector, overlays, overwrite
        self.rows: list[ScoreRow] = []
        self.notes: list[str] = []
        self.n_overlays = 0
        self.maps = True

    def __call__(self, batch: list[Scan], results: list[ScanResult]) -> None:
        self.rows.extend(ScoreRow.from_result(r) for r in results)
        for scan, result in zip(batch, results, strict=True):
            if self.maps and not result.maps:
                self.maps = False
                self.notes.append(
                    f"{self.detector.name} has no localisation (its results carry no maps); "
                    "no overlays were written"
                )
            if self.maps:
                scale = map_scale(self.detector)
                name = self.detector.name
                write_overlays(
                    scan, result, self.folder, scale, detector=name, overwrite=self.overwrite
                )
                self.n_overlays += len(scan.views)


def _teed(inner: Detector, sink: _Sink) -> Detector:
    """``inner`` as seen by ``evaluate``: its results checked, flagged by its calibration and
    passed to ``sink`` on the way, so the test set is scored only once."""

    class Teed(Detector):
        name = inner.name
        description = inner.description
        Config = inner.Config

        def fit(self, scans: Iterable[Scan]) -> Self:
            raise NotImplementedError

        def score(self, scans: Iterable[Scan]) -> list[ScanResult]:
            return list(score_in_chunks(inner, scans, on_chunk=sink))

        @property
        def is_fitted(self) -> bool:
            return inner.is_fitted

        def state(self) -> DetectorState:
            return inner.state()

        @classmethod
        def from_state(cls, config: Any, state: DetectorState) -> Self:
            raise NotImplementedError

    teed = Teed(inner.config)
    teed.calibration = inner.calibration
    return teed


def _clear_outputs(overlays: Path) -> None:
    # Overlays of a previous, larger demo would otherwise sit beside the new ones.
    if overlays.is_dir():
        for file in [*overlays.glob("*_v*.png"), *overlays.glob("*_v*.npy")]:
            file.unlink()
