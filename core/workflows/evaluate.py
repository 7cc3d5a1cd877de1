"""Evaluate a fitted detector on a labelled folder: detection and localisation metrics with CIs.

Nothing here chooses a threshold, epoch or option from the anomalies: flags come from the model's
own threshold, and the one anomaly-derived figure (false alarms at 90% detection) is labelled
post hoc.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xadt import metrics, outputs
from xadt.context import RunContext
from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.model import Model
from xadt.scans import Scan, ScanFolder, iter_scans
from xadt.version import __version__
from xadt.workflows.score import OnChunk, score_in_chunks

__all__ = [
    "Estimate",
    "EvalData",
    "EvalReport",
    "EvalSettings",
    "ScanRecord",
    "check_report_path",
    "evaluate",
    "evaluate_scans",
    "open_eval_data",
    "write_report",
]

NORMAL = "normal"
ANOMALOUS = "anomalous"
MASKS = "masks"

Progress = Callable[[int, int | None], None]
"""Called as ``progress(done, total)`` after each batch of scans is scored; total may be None."""

# Scans go to ``detector.score`` this many at a time: large enough for a detector to batch on a
# GPU, small enough that the results of one call (maps included) stay modest in memory.
_CHUNK = 32


@dataclass(frozen=True)
class Estimate:
    """A metric value with its bootstrap confidence interval, when one was computed.

    Attributes:
        value: the metric on the evaluated scans.
        low: lower bound of the interval, or None.
        high: upper bound of the interval, or None.
    """

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class EvalSettings:
    """How the metrics are computed; recorded in every report.

    Attributes:
        fpr: false-alarm rate of the detection-rate operating point (threshold from normals).
        tpr: detection rate of the post-hoc false-alarm operating point (Griffin et al.: 0.9).
        level: confidence level of the bootstrap intervals.
        n_resamples: bootstrap resamples per interval.
        seed: bootstrap seed; every interval uses the same resamples of the scans.
        fpr_limit: pixel FPR up to which the PRO curve is integrated.
    """

    fpr: float = 0.05
    tpr: float = 0.9
    level: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    fpr_limit: float = 0.3

    def __post_init__(self) -> None:
        # Checked before any scan is scored, not by the metrics at the end of a long run.
        checks = (
            ("fpr", 0 < self.fpr < 1, "in (0, 1)"),
            ("tpr", 0 < self.tpr <= 1, "in (0, 1]"),
            ("level", 0 < self.level < 1, "in (0, 1)"),
            ("fpr_limit", 0 < self.fpr_limit <= 1, "in (0, 1]"),
            (
                "n_resamples",
                isinstance(self.n_resamples, int) and self.n_resamples >= 1,
                "an integer >= 1",
            ),
        )
        for name, ok, wanted in checks:
            if not ok:
                msg = (
                    f"The {name!r} evaluation setting must be {wanted}. "
                    f"Got {getattr(self, name)!r} instead."
                )
                raise ValueError(msg)


@dataclass(frozen=True)
class ScanRecord:
    """What the detector said about one evaluated scan.

    Attributes:
        id: the scan id.
        anomalous: the scan's label (True when it came from the anomalous folder).
        score: its anomaly score; higher = more anomalous.
        partial: its named partial anomaly scores; higher = more anomalous.
        flag: whether the model's own threshold flagged it; None when the model has none.
    """

    id: str
    anomalous: bool
    score: float
    partial: dict[str, float] = field(default_factory=dict)
    flag: bool | None = None


@dataclass(frozen=True)
class EvalReport:
    """The metrics of one evaluation, and the scores they were computed from.

    Attributes:
        detector: the detector's name.
        n_normal: normal scans scored.
        n_anomalous: anomalous scans scored.
        auroc: AUROC with CI of the scan score (key ``"score"``) and of each partial score the
            results carry on every scan (e.g. ``"appearance"``, ``"semantic"``).
        tpr_at_fpr: detection rate at a false-alarm rate of at most ``settings.fpr``, with CI.
        fpr_at_tpr: false-alarm rate at ``settings.tpr`` detection, with CI; post hoc, because
            its threshold comes from the anomalies (Griffin et al.'s operating point).
        flag_rate_normal: fraction of normal scans the model's own threshold flags, or None.
        flag_rate_anomalous: fraction of anomalous scans it flags, or None.
        pixel_auroc: AUROC over scored pixels (see :func:`evaluate_scans`), or None.
        aupro: normalised area under the PRO curve up to ``settings.fpr_limit``, or None.
        pointing: how often a masked anomalous view's most anomalous pixel lies on its anomaly
            (:func:`xadt.metrics.pointing`), or None; ``pointing_chance``: how often a random
            scored pixel would.
        pixel_views: views whose pixels entered the pixel metrics.
        settings: how the metrics were computed.
        notes: what was left out of the evaluation and why, one sentence each.
        skipped: ``(file, reason)`` of each unreadable scan that was skipped.
        scans: one record per scored scan, normals first.
        data: the evaluated folder, when the scans came from one.
        model: the model directory, when the caller names it.
    """

    detector: str
    n_normal: int
    n_anomalous: int
    auroc: dict[str, Estimate]
    tpr_at_fpr: Estimate
    fpr_at_tpr: Estimate
    flag_rate_normal: float | None
    flag_rate_anomalous: float | None
    pixel_auroc: float | None
    aupro: float | None
    pointing: float | None
    pointing_chance: float | None
    pixel_views: int
    settings: EvalSettings
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    scans: list[ScanRecord] = field(default_factory=list)
    data: str | None = None
    model: str | None = None

    def rows(self) -> list[tuple[str, Estimate]]:
        """The metrics that were computed, as ``(label, estimate)`` in reading order."""
        s = self.settings
        rows = [
            (f"AUROC ({'scan score' if name == 'score' else name})", value)
            for name, value in self.auroc.items()
        ]
        rows.append((f"detection rate at {_percent(s.fpr)} false alarms", self.tpr_at_fpr))
        rows.append((f"false alarms at {_percent(s.tpr)} detection (post hoc)", self.fpr_at_tpr))
        if self.flag_rate_normal is not None and self.flag_rate_anomalous is not None:
            rows.append(("flagged by model threshold: normal", Estimate(self.flag_rate_normal)))
            rows.append(
                ("flagged by model threshold: anomalous", Estimate(self.flag_rate_anomalous))
            )
        if self.pixel_auroc is not None:
            rows.append(("pixel AUROC", Estimate(self.pixel_auroc)))
        if self.aupro is not None:
            rows.append((f"AUPRO (FPR <= {s.fpr_limit:g})", Estimate(self.aupro)))
        if self.pointing is not None and self.pointing_chance is not None:
            rows.append(("top pixel on the anomaly (pointing)", Estimate(self.pointing)))
            rows.append(("  a random pixel on it (chance)", Estimate(self.pointing_chance)))
        return rows

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (numbers, strings, lists, dicts and None)."""
        return {
            "xadt_version": __version__,
            "detector": self.detector,
            "model": self.model,
            "data": self.data,
            "n_normal": self.n_normal,
            "n_anomalous": self.n_anomalous,
            "settings": dataclasses.asdict(self.settings),
            "metrics": {
                "auroc": {name: dataclasses.asdict(e) for name, e in self.auroc.items()},
                "tpr_at_fpr": dataclasses.asdict(self.tpr_at_fpr),
                "fpr_at_tpr_post_hoc": dataclasses.asdict(self.fpr_at_tpr),
                "flag_rate_normal": self.flag_rate_normal,
                "flag_rate_anomalous": self.flag_rate_anomalous,
                "pixel_auroc": self.pixel_auroc,
                "aupro": self.aupro,
                "pointing": self.pointing,
                "pointing_chance": self.pointing_chance,
            },
            "pixel_views": self.pixel_views,
            "notes": list(self.notes),
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "scans": [
                {
                    "id": r.id,
                    "label": ANOMALOUS if r.anomalous else NORMAL,
                    "score": r.score,
                    "partial": dict(r.partial),
                    "flag": r.flag,
                }
                for r in self.scans
            ],
        }


@dataclass(frozen=True)
class EvalData:
    """The two labelled scan folders of an evaluation folder, opened but not yet read.

    Attributes:
        root: the evaluation folder.
        normal: the scans of ``root/normal``.
        anomalous: the scans of ``root/anomalous``, with masks from ``root/masks`` if it exists.
    """

    root: Path
    normal: ScanFolder
    anomalous: ScanFolder


def open_eval_data(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    normal: str | os.PathLike[str] | None = None,
    anomalous: str | os.PathLike[str] | None = None,
    masks: str | os.PathLike[str] | None = None,
) -> EvalData:
    """Open a labelled folder laid out as ``normal/``, ``anomalous/`` and optionally ``masks/``
    (the layout ``xadt synth`` writes under ``OUT/test``), or the three folders named one by one.

    Only file names are read here.

    Raises:
        XadtError: both or neither ways are used, or a folder is missing or holds no images.
    """
    if data_dir is None:
        if normal is None or anomalous is None:
            msg = (
                "name the labelled scans: DATA (with normal/ and anomalous/) or --normal and "
                "--anomalous"
            )
            raise XadtError(msg)
        root = Path(os.path.commonpath([Path(normal).absolute(), Path(anomalous).absolute()]))
        return EvalData(root, iter_scans(normal), iter_scans(anomalous, masks=masks))
    if normal is not None or anomalous is not None or masks is not None:
        msg = "pass either DATA or --normal/--anomalous/--masks, not both"
        raise XadtError(msg)
    root = Path(data_dir)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "no such folder"
        msg = f"{root}: {what}; expected a labelled folder with normal/ and anomalous/"
        raise XadtError(msg)
    for sub in (NORMAL, ANOMALOUS):
        if not (root / sub).is_dir():
            msg = (
                f"{root / sub}: no such folder; an evaluation folder holds normal/ and "
                "anomalous/ scans (and optionally masks/)"
            )
            raise XadtError(msg)
    masks = root / MASKS if (root / MASKS).is_dir() else None
    return EvalData(root, iter_scans(root / NORMAL), iter_scans(root / ANOMALOUS, masks=masks))


def evaluate(
    model: Model,
    data_dir: str | os.PathLike[str] | EvalData,
    *,
    context: RunContext | None = None,
    progress: Progress | None = None,
    on_chunk: OnChunk | None = None,
    **settings: Any,
) -> EvalReport:
    """Score a labelled folder with ``model`` and compute the metrics of :func:`evaluate_scans`.

    Args:
        model: a fitted model; scores are anomaly scores, higher = more anomalous.
        data_dir: a folder with ``normal/``, ``anomalous/`` and optionally ``masks/`` (the
            ground truth of anomalous scans, named like them; see :func:`xadt.scans.iter_scans`),
            or the :class:`EvalData` of :func:`open_eval_data`.
        context: device, progress and registry for the detector.
        progress: called as ``progress(done, total)`` as scans are scored.
        on_chunk: also called with each chunk of scans and results (e.g. to write overlays).
        **settings: fields of :class:`EvalSettings` (``n_resamples=200``, ``fpr=0.01``, ...).

    Returns:
        The report; unreadable scans are skipped and listed in ``skipped``.

    Raises:
        XadtError: a folder is missing or empty, no scan of a class could be read, the detector
            is not fitted, or it returned non-finite scores.
    """
    data = data_dir if isinstance(data_dir, EvalData) else open_eval_data(data_dir)
    report = evaluate_scans(
        model,
        data.normal,
        data.anomalous,
        context=context,
        progress=progress,
        on_chunk=on_chunk,
        **settings,
    )
    return dataclasses.replace(report, data=str(data.root))


def evaluate_scans(
    model: Model,
    normal: Iterable[Scan],
    anomalous: Iterable[Scan],
    *,
    context: RunContext | None = None,
    progress: Progress | None = None,
    on_chunk: OnChunk | None = None,
    **settings: Any,
) -> EvalReport:
    """Score normal and anomalous scans with ``model`` and compute every metric they allow.

    Always: AUROC with a stratified bootstrap CI for the scan score and for each partial score
    every result carries; the detection rate at ``fpr`` false alarms (threshold from the normals);
    and the post-hoc false-alarm rate at ``tpr`` detection. When every result carries a flag: the
    flag rate of each class. When results carry maps (per view, in view coordinates) and some
    anomalous view has a mask: pixel AUROC and AUPRO over the masked views of anomalous scans and
    every view of normal scans, whose pixels are all normal. Anomalous views without a mask are
    left out of the pixel metrics (their anomaly may lie anywhere), and so are NaN map pixels.

    Args:
        model: a fitted model; scores are anomaly scores, higher = more anomalous.
        normal: the normal scans (a :class:`xadt.scans.ScanFolder` has its skips reported).
        anomalous: the anomalous scans, with ``masks`` where ground truth exists.
        context: device, progress and registry for the detector.
        progress: called as ``progress(done, total)`` as scans are scored; ``total`` is None
            unless both iterables have a length.
        on_chunk: also called with each chunk of scans and results.
        **settings: fields of :class:`EvalSettings`.

    Returns:
        The report.

    Raises:
        XadtError: the detector is not fitted, no scan of a class could be read, or the detector
            returned a non-finite score.
    """
    config = EvalSettings(**settings)
    model.detector.check_fitted()
    total = None
    if isinstance(normal, Sized) and isinstance(anomalous, Sized):
        total = len(normal) + len(anomalous)
    run = _Run(model, context, progress, on_chunk, total)
    # Anomalies first: by the time normals are scored it is known whether any mask exists, so
    # normal maps are kept only when pixel metrics will be computed.
    run.score(anomalous, anomalous=True)
    run.score(normal, anomalous=False)
    n_anomalous = sum(r.anomalous for r in run.records)
    if n_anomalous == 0:
        raise _none_read(anomalous, ANOMALOUS)
    if n_anomalous == len(run.records):
        raise _none_read(normal, NORMAL)
    skipped = [
        (str(path), reason)
        for scans in (normal, anomalous)
        if isinstance(scans, ScanFolder)
        for path, reason in scans.skipped
    ]
    return _report(model.name, run, config, skipped)


class _Run:
    """Scores scans chunk by chunk, keeping each scan's record and the maps the metrics need."""

    def __init__(
        self,
        model: Model,
        context: RunContext | None,
        progress: Progress | None,
        on_chunk: OnChunk | None,
        total: int | None,
    ) -> None:
        self.model, self.context, self.progress, self.total = model, context, progress, total
        self.on_chunk = on_chunk
        self.records: list[ScanRecord] = []
        self.pixels: list[tuple[np.ndarray | None, np.ndarray]] = []  # (mask, map); None = normal
        self.without_mask = 0
        self.have_maps = True

    def score(self, scans: Iterable[Scan], *, anomalous: bool) -> None:
        def keep(chunk: list[Scan], results: list[ScanResult]) -> None:
            self._check_maps(chunk, results)
            for scan, result in zip(chunk, results, strict=True):
                self.records.append(
                    ScanRecord(scan.id, anomalous, result.score, dict(result.partial), result.flag)
                )
                self._keep_maps(scan, result, anomalous=anomalous)
            if self.on_chunk is not None:
                self.on_chunk(chunk, results)
            if self.progress is not None:
                self.progress(len(self.records), self.total)

        for _ in score_in_chunks(
            self.model,
            scans,
            context=self.context,
            on_chunk=keep,
            chunk=_CHUNK,
            hint="; metrics need finite anomaly scores",
        ):
            pass

    def _keep_maps(self, scan: Scan, result: ScanResult, *, anomalous: bool) -> None:
        if not result.maps:
            self.have_maps = False
        if not self.have_maps:
            self.pixels.clear()
            return
        if anomalous:
            masks = scan.masks if scan.masks is not None else [None] * len(scan.views)
            for mask, amap in zip(masks, result.maps, strict=True):
                if mask is None:
                    self.without_mask += 1
                else:
                    self.pixels.append((np.asarray(mask, dtype=bool), _as_map(amap)))
        elif self.pixels:
            self.pixels.extend((None, _as_map(amap)) for amap in result.maps)

    def _check_maps(self, chunk: list[Scan], results: list[ScanResult]) -> None:
        for scan, result in zip(chunk, results, strict=True):
            if result.maps and (
                len(result.maps) != len(scan.views)
                or any(
                    m.shape != v.shape[:2] for m, v in zip(result.maps, scan.views, strict=False)
                )
            ):
                msg = (
                    f"{self.model.name}: maps of scan {scan.id!r} have shapes "
                    f"{[m.shape for m in result.maps]}, not its views' "
                    f"{[v.shape[:2] for v in scan.views]}"
                )
                raise RuntimeError(msg)


def _report(
    detector: str, run: _Run, config: EvalSettings, skipped: list[tuple[str, str]]
) -> EvalReport:
    records = sorted(run.records, key=lambda r: r.anomalous)  # stable: normals first, in order
    labels = np.array([r.anomalous for r in records], dtype=np.int64)
    scores = np.array([r.score for r in records])
    ci = functools.partial(
        metrics.bootstrap_ci,
        n_resamples=config.n_resamples,
        level=config.level,
        seed=config.seed,
    )
    notes = []
    auroc = {"score": Estimate(*ci(labels, scores))}
    for name in dict.fromkeys(k for r in records for k in r.partial):
        if all(name in r.partial for r in records):
            auroc[name] = Estimate(*ci(labels, np.array([r.partial[name] for r in records])))
        else:
            notes.append(f"partial score {name!r} is missing on some scans; it was not evaluated")
    tpr = Estimate(*ci(labels, scores, functools.partial(metrics.tpr_at_fpr, fpr=config.fpr)))
    far = Estimate(*ci(labels, scores, functools.partial(metrics.fpr_at_tpr, tpr=config.tpr)))

    flags = [r.flag for r in records]
    rate_normal = rate_anomalous = None
    if all(f is not None for f in flags):
        flagged = np.array(flags, dtype=bool)
        rate_normal = float(flagged[labels == 0].mean())
        rate_anomalous = float(flagged[labels == 1].mean())
    else:
        notes.append("the model has no threshold (results carry no flags); no flag rates")

    pixel_auroc = aupro = pointing = chance = None
    pixel_views = 0
    if not run.have_maps:
        notes.append("results carry no anomaly maps (for some scans or all); no pixel metrics")
    elif not run.pixels:
        notes.append("no anomalous scan has a mask; no pixel metrics")
    else:
        masks = [np.zeros(m.shape, bool) if t is None else t for t, m in run.pixels]
        maps = [m for _, m in run.pixels]
        try:
            pixel_auroc = metrics.pixel_auroc(masks, maps)
            aupro = metrics.aupro(masks, maps, fpr_limit=config.fpr_limit)
            pointing, chance, _ = metrics.pointing(masks, maps)
            pixel_views = len(maps)
        except ValueError as exc:
            notes.append(f"no pixel metrics: {exc}")
    if run.without_mask:
        notes.append(
            f"{run.without_mask} anomalous view(s) have no mask file and are left out of the "
            "pixel metrics"
        )
    return EvalReport(
        detector=detector,
        n_normal=int((labels == 0).sum()),
        n_anomalous=int(labels.sum()),
        auroc=auroc,
        tpr_at_fpr=tpr,
        fpr_at_tpr=far,
        flag_rate_normal=rate_normal,
        flag_rate_anomalous=rate_anomalous,
        pixel_auroc=pixel_auroc,
        aupro=aupro,
        pointing=pointing,
        pointing_chance=chance,
        pixel_views=pixel_views,
        settings=config,
        notes=notes,
        skipped=skipped,
        scans=records,
    )


def check_report_path(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Check that a report may be written to ``path``; call before long work to fail early.

    Raises:
        XadtError: ``path`` is a folder, or a file and ``overwrite`` is false.
    """
    target = Path(path)
    if not overwrite and target.exists() and not target.is_dir():
        msg = f"{target}: a report already exists; pass --overwrite to replace it"
        raise XadtError(msg)
    return outputs.check_output_file(target, overwrite=overwrite, what="report")


def write_report(
    report: EvalReport, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the report as JSON to ``path`` atomically (temporary file, then ``os.replace``).

    A crash leaves the previous file or none, never half a report.

    Raises:
        XadtError: ``path`` exists and ``overwrite`` is false, is a folder, or cannot be written.
    """
    target = check_report_path(path, overwrite=overwrite)
    text = json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n"
    return outputs.write_bytes_atomic(
        target, text.encode("utf-8"), overwrite=overwrite, what="report"
    )


def _as_map(amap: np.ndarray) -> np.ndarray:
    return np.asarray(amap, dtype=np.float32)


def _none_read(scans: Iterable[Scan], kind: str) -> XadtError:
    if isinstance(scans, ScanFolder):
        return XadtError(f"{scans.folder}: no {kind} scan could be read ({scans.summary()})")
    return XadtError(f"no {kind} scans to evaluate")


def _percent(rate: float) -> str:
    return f"{100 * rate:g}%"
