"""The end-to-end demo: synthesise parcels, train a detector, score and localise the test set,
and evaluate it, all in one folder.

The test set is scored once: every result feeds the scores file, the overlays and the evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xadt.context import RunContext
from xadt.errors import XadtError

if TYPE_CHECKING:  # the workflows load numpy, torch and the plugins: not for `xadt --help`
    from xadt.detector import ScanResult
    from xadt.model import Model
    from xadt.scans import Scan
    from xadt.workflows.evaluate import EvalReport
    from xadt.workflows.score import ScoreRow
    from xadt.workflows.train import TrainResult

__all__ = [
    "DEFAULT_PLUGIN",
    "DEFAULT_SCALE",
    "DemoResult",
    "DemoSize",
    "check_demo_folder",
    "run_demo",
]

PathLike = str | os.PathLike[str]

DEFAULT_PLUGIN = "ganomaly"
"""The detector the demo trains unless told otherwise: on the simulator's parcels it detects
(AUROC about 0.7) where `gaussian`'s ImageNet features are still at chance (docs/results.md)."""

DEFAULT_SCALE = 1.0
"""Image size of the demo's parcels relative to full size (764 px high)."""

DEMO_OPTIONS: dict[str, tuple[str, ...]] = {
    "ganomaly": ("patch=32", "downscale=0.125", "stride=32", "epochs=15"),
}
"""Options the demo gives a detector before the user's ``--set``: ganomaly at the parcel runs'
setting of docs/results.md (32-px patches of the view at 1/8 scale), few epochs, so that the demo
ends in about two minutes on two cores."""

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

    train: int = 80
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
        gallery: the ranked HTML gallery of the overlays, or None without overlays.
        most_anomalous: the overlay of the most anomalous test parcel's first view, or None.
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
    gallery: Path | None
    most_anomalous: Path | None
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
    context: RunContext | None = None,
) -> DemoResult:
    """Synthesise a small parcel set, train ``plugin`` on it, then score, localise and evaluate.

    Layout of ``out``: ``data/`` (the synthetic set), ``model/``, ``scores.csv``,
    ``overlays/`` with its ranked gallery ``index.html`` (when the plugin gives maps) and
    ``report.json``.

    Args:
        out: the demo folder; it must be absent or empty unless ``overwrite``.
        plugin: the detector to train.
        scale: image size relative to full size (764 px high).
        size: how many scans to synthesise.
        overrides: ``"key=value"`` options of the detector, as ``xadt train --set``.
        seed: seed of the data set (the held-out split's is ``context.seed``).
        overwrite: replace a previous demo in ``out``.
        workers: processes synthesising scans (default: every CPU core).
        context: device, progress and the registry to look ``plugin`` up in.

    Raises:
        XadtError: the plugin is not installed, ``out`` is not empty, or a step fails.
    """
    from xadt.synth.dataset import write_dataset
    from xadt.workflows.evaluate import evaluate, write_report
    from xadt.workflows.gallery import DEFAULT_GALLERY_SIZE, write_gallery
    from xadt.workflows.score import ranked, write_results
    from xadt.workflows.train import build_detector, train

    size = size or DemoSize()
    context = context or RunContext(seed=seed)
    progress = context.progress
    try:
        cls = context.plugins().get_detector(plugin)
    except XadtError as exc:
        msg = f"{exc}; pass --plugin NAME to run the demo with an installed detector"
        raise XadtError(msg) from None
    overrides = (*DEMO_OPTIONS.get(plugin, ()), *overrides)  # the user's --set wins
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

    progress.stage("synthesising parcels", size.train + size.test_normal + size.threat)
    write_dataset(
        data,
        normal=size.train,
        test_normal=size.test_normal,
        threat=size.threat,
        seed=seed,
        overwrite=overwrite,
        scale=scale,
        workers=workers or os.cpu_count() or 1,
        progress=lambda done, _total: progress.update(done),
    )
    training = train(
        cls,
        data / "train" / "normal",
        context=context,
        output=model,
        overrides=overrides,
        holdout=DEMO_HOLDOUT,
        overwrite=overwrite,
    )
    sink = _Sink(training.model, overlays, overwrite=overwrite)
    progress.stage("scoring the test set", size.test_normal + size.threat)
    evaluation = evaluate(
        training.model,
        data / "test",
        context=context,
        progress=lambda done, _total: progress.update(done),
        on_chunk=sink,
    )
    notes = list(sink.notes)
    write_results(sink.rows, scores, overwrite=overwrite, model=training.model)
    write_report(evaluation, report_path, overwrite=overwrite)
    gallery = most_anomalous = None
    if sink.images:
        gallery = write_gallery(
            overlays,
            sink.rows,
            sink.images,
            model_name=training.model.name,
            calibration=training.model.calibration,
            top=DEFAULT_GALLERY_SIZE,
            overwrite=overwrite,
        )
        most_anomalous = overlays / sink.images[ranked(sink.rows, 1)[0].id][0]
    return DemoResult(
        out=folder,
        data=data,
        model=model,
        scores=scores,
        overlays=overlays if sink.images else None,
        gallery=gallery,
        most_anomalous=most_anomalous,
        report=evaluation,
        report_path=report_path,
        training=training,
        notes=notes,
    )


class _Sink:
    """Keeps a row per scored test scan and writes its overlays while the results pass by."""

    def __init__(self, model: Model, overlays: Path, *, overwrite: bool) -> None:
        self.model, self.folder, self.overwrite = model, overlays, overwrite
        self.rows: list[ScoreRow] = []
        self.notes: list[str] = []
        self.images: dict[str, list[str]] = {}
        self.maps = True

    def __call__(self, batch: list[Scan], results: list[ScanResult]) -> None:
        from xadt.workflows.localize import map_scale, write_overlays
        from xadt.workflows.score import ScoreRow

        rows = [ScoreRow.from_result(r, s) for s, r in zip(batch, results, strict=True)]
        self.rows.extend(rows)
        for scan, result, row in zip(batch, results, rows, strict=True):
            if self.maps and not result.maps:
                self.maps = False
                self.notes.append(
                    f"{self.model.name} has no localisation (its results carry no maps); "
                    "no overlays were written"
                )
            if self.maps:
                scale = map_scale(self.model)
                name = self.model.name
                written = write_overlays(
                    scan,
                    result,
                    self.folder,
                    scale,
                    detector=name,
                    overwrite=self.overwrite,
                    row=row,
                )
                self.images[scan.id] = [p.name for p in written if p.suffix == ".png"]


def _clear_outputs(overlays: Path) -> None:
    from xadt.workflows.gallery import GALLERY_NAME

    # Overlays of a previous, larger demo would otherwise sit beside the new ones.
    if overlays.is_dir():
        for file in [*overlays.glob("*_v*.png"), *overlays.glob("*_v*.npy")]:
            file.unlink()
        (overlays / GALLERY_NAME).unlink(missing_ok=True)
