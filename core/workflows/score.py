"""Scoring: find the model to use, score scans in chunks with any detector, and write the results
as CSV or JSON.

Flags come from the model's own calibration (a threshold set on held-out normal scans).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xadt import artifacts
from xadt.aggregate import EMPTY_SCAN_SCORE
from xadt.artifacts import MODEL_JSON, default_store, read_model_info, store_path
from xadt.context import RunContext
from xadt.detector import ScanResult
from xadt.errors import XadtError
from xadt.host import Registry
from xadt.model import Model
from xadt.outputs import check_output_file, write_bytes_atomic
from xadt.plausibility import implausibility
from xadt.scans import Scan, ScanFolder, as_scan_folder, printable
from xadt.version import __version__

__all__ = [
    "CHUNK",
    "LARGE_SCAN_PIXELS",
    "LargeScanWarning",
    "ScoreRow",
    "ScoreRun",
    "check_results_path",
    "load_scoring_model",
    "ranked",
    "resolve_model",
    "results_format",
    "score_folder",
    "score_in_chunks",
    "write_results",
]

PathLike = str | os.PathLike[str]

CHUNK = 32
"""Scans per ``detector.score`` call: room for a detector to batch, small enough for memory."""

LARGE_SCAN_PIXELS = 25_000_000
"""A scan with more pixels than this (over all views) gets a :class:`LargeScanWarning` and is
scored alone; a full-size dual-view parcel has about 1 MP."""


class LargeScanWarning(UserWarning):
    """A scan is far larger than a parcel scan: slow to score and heavy on memory."""


OnChunk = Callable[[list[Scan], list[ScanResult]], None]
"""Called with each chunk of scans and their checked results."""


@dataclass(frozen=True)
class ScoreRow:
    """One scored scan, without its maps (a results table holds many of these).

    Attributes:
        id: the scan id.
        score: its anomaly score; higher = more anomalous.
        partial: its named partial anomaly scores; higher = more anomalous.
        flag: whether the model's threshold flags it; None when the model has no calibration.
        patches: how many patches (windows) were scored, over all views.
        normal_quantile: the calibrated score: the fraction of held-out normal scans scoring
            lower; None when the model stored no normal scores.
        warning: why the image looks unlike an X-ray scan (:mod:`xadt.plausibility`), or "".
    """

    id: str
    score: float
    partial: dict[str, float] = field(default_factory=dict)
    flag: bool | None = None
    patches: int = 0
    normal_quantile: float | None = None
    warning: str = ""

    @property
    def note(self) -> str:
        """What a reader of the results must know about this row ("" when nothing)."""
        if self.score >= EMPTY_SCAN_SCORE:
            return "all air: no parcel found, so nothing was judged; look at it"
        return ""

    @property
    def caption(self) -> str:
        """The row in one line for a person: score, calibrated score and flag."""
        if self.score >= EMPTY_SCAN_SCORE:
            return "all air: nothing judged"
        parts = [f"score {self.score:.4g}"]
        if self.normal_quantile is not None:
            parts.append(f"above {100 * self.normal_quantile:.1f}% of normal scans")
        if self.flag is not None:
            parts.append("FLAGGED" if self.flag else "not flagged")
        if self.warning:
            parts.append("WARNING: " + self.warning)
        return " · ".join(parts)

    @classmethod
    def from_result(cls, result: ScanResult, scan: Scan | None = None) -> ScoreRow:
        """The row of a detector's result; with its ``scan``, the row also warns when the image
        looks unlike an X-ray scan."""
        return cls(
            id=result.scan_id,
            score=float(result.score),
            partial={k: float(v) for k, v in result.partial.items()},
            flag=result.flag,
            patches=sum(len(p.scores) for p in result.patches),
            normal_quantile=result.normal_quantile,
            warning="" if scan is None else implausibility(scan),
        )


@dataclass(frozen=True)
class ScoreRun:
    """The rows of a scored folder and the scans that could not be read.

    Attributes:
        rows: one row per scored scan, in id order.
        skipped: ``(file, reason)`` of each unreadable scan.
        summary: one line on the scans read and skipped.
    """

    rows: list[ScoreRow]
    skipped: list[tuple[Path, str]]
    summary: str

    def partial_names(self) -> list[str]:
        """Every partial-score name in the rows, in order of first appearance."""
        return _partial_names(self.rows)


def resolve_model(plugin: str | None, model: PathLike | None, *, registry: Registry) -> Path:
    """The model directory named by ``--plugin`` (the model store) and/or ``--model``.

    Args:
        plugin: a detector name; alone, its model is read from the model store.
        model: a model directory; with ``plugin`` too, it must have been written by that plugin.
        registry: where to check that ``plugin`` is installed.

    Raises:
        XadtError: neither is given, ``plugin`` is not installed, the store holds no model for
            it, or ``model`` was written by another plugin.
    """
    if plugin is None and model is None:
        msg = "name a model: pass --plugin P (its model in the store) or --model DIR"
        raise XadtError(msg)
    if plugin is not None:
        registry.get_detector(plugin)
    if model is not None:
        info = read_model_info(model)
        if plugin is not None and info.plugin != plugin:
            msg = (
                f"{model}: this model was written by plugin {info.plugin!r}, not {plugin!r}; "
                f"drop --plugin or pass a model trained with --plugin {plugin}"
            )
            raise XadtError(msg)
        return Path(model)
    assert plugin is not None
    path = store_path(plugin)
    if not (path / MODEL_JSON).is_file():
        msg = (
            f"no model for plugin {plugin!r} in {default_store() / 'models'}; "
            f"run 'xadt train --plugin {plugin} DATA' first or pass --model DIR"
        )
        raise XadtError(msg)
    return path


def load_scoring_model(
    plugin: str | None,
    model: PathLike | None,
    *,
    registry: Registry,
    overrides: Sequence[str] = (),
) -> Model:
    """Resolve the model as :func:`resolve_model` does and load it, with runtime ``--set``
    ``overrides`` (e.g. ``batch_size=64``) applied."""
    path = resolve_model(plugin, model, registry=registry)
    return artifacts.load_model(path, registry=registry, overrides=overrides)


def score_in_chunks(
    model: Model,
    scans: Iterable[Scan],
    *,
    context: RunContext | None = None,
    on_chunk: OnChunk | None = None,
    chunk: int = CHUNK,
    hint: str = "",
) -> Iterator[ScanResult]:
    """Score ``scans`` ``chunk`` at a time with ``model`` and yield the results, checked, in order.

    Each result is checked to belong to its scan and to carry finite anomaly scores; the
    model's calibration, when it has one, sets each result's ``flag``.

    Args:
        model: a model with a fitted detector.
        scans: the scans, read lazily.
        context: device, progress and registry for the detector.
        on_chunk: called with each chunk of scans and their results before they are yielded.
        chunk: scans per ``detector.score`` call.
        hint: appended to the message about a non-finite score.

    Raises:
        XadtError: the detector is not fitted, or gave a non-finite score.
        RuntimeError: the detector broke the contract (wrong number or order of results).
    """
    model.detector.check_fitted()
    batch: list[Scan] = []
    for scan in scans:
        large = _warn_if_large(scan)
        if large and batch:  # a huge scan is scored alone, not with a chunk of others
            yield from _score_batch(model, batch, context, on_chunk, hint)
            batch = []
        batch.append(scan)
        if large or len(batch) == chunk:
            yield from _score_batch(model, batch, context, on_chunk, hint)
            batch = []
    if batch:
        yield from _score_batch(model, batch, context, on_chunk, hint)


def _warn_if_large(scan: Scan) -> bool:
    """Warn (:class:`LargeScanWarning`) when ``scan`` is far larger than a parcel scan."""
    pixels = sum(view.shape[0] * view.shape[1] for view in scan.views)
    if pixels <= LARGE_SCAN_PIXELS:
        return False
    sizes = ", ".join(f"{v.shape[1]}x{v.shape[0]}" for v in scan.views)
    warnings.warn(
        f"scan {scan.id!r} is {pixels / 1e6:.0f} MP ({sizes} px), far larger than a parcel "
        "scan (about 1 MP a view), so scoring it takes long and much memory; downscale it, or "
        "skip such files with --max-pixels",
        LargeScanWarning,
        stacklevel=3,
    )
    return True


def check_results(
    name: str,
    scans: Sequence[Scan],
    results: Sequence[ScanResult],
    *,
    hint: str = "",
) -> None:
    """Check that ``results`` answer ``scans`` one for one, in order, with finite scores.

    Raises:
        RuntimeError: the detector broke the contract (wrong number or order of results).
        XadtError: a score or partial score is not finite; the message is
            ``"<name> gave scan '<id>' non-finite anomaly scores {...}<hint>"``.
    """
    if len(results) != len(scans):
        msg = f"{name}: score() returned {len(results)} results for {len(scans)} scans"
        raise RuntimeError(msg)
    for scan, result in zip(scans, results, strict=True):
        if result.scan_id != scan.id:
            msg = f"{name}: result {result.scan_id!r} came back for scan {scan.id!r}"
            raise RuntimeError(msg)
        values = {"score": result.score, **result.partial}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            msg = f"{name} gave scan {scan.id!r} non-finite anomaly scores {bad}{hint}"
            raise XadtError(msg)


def _score_batch(
    model: Model,
    batch: list[Scan],
    context: RunContext | None,
    on_chunk: OnChunk | None,
    hint: str,
) -> list[ScanResult]:
    results = list(model.detector.score(batch, context))
    check_results(model.name, batch, results, hint=hint)
    model.flag(results)
    if on_chunk is not None:
        on_chunk(batch, results)
    return results


def score_folder(
    model: Model,
    scans_dir: PathLike | Sequence[PathLike] | ScanFolder,
    *,
    context: RunContext | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> ScoreRun:
    """Score every scan of a folder; unreadable scans are skipped and listed.

    Args:
        model: the model; flags come from its calibration.
        scans_dir: the folder of scans (read lazily, one at a time), a list of scan files,
            folders and glob patterns, or a :class:`xadt.scans.ScanFolder` of them (to read
            subfolders or set read limits).
        context: device, progress and registry for the detector.
        progress: called as ``progress(done, total)`` after each chunk.

    Raises:
        XadtError: the folder is missing or empty, or no scan in it could be read.
    """
    folder = as_scan_folder(scans_dir)
    rows: list[ScoreRow] = []

    def keep(batch: list[Scan], results: list[ScanResult]) -> None:
        rows.extend(ScoreRow.from_result(r, s) for s, r in zip(batch, results, strict=True))
        if progress is not None:
            progress(len(rows) + len(folder.skipped), len(folder))

    for _ in score_in_chunks(model, folder, context=context, on_chunk=keep):
        pass
    if not rows:
        msg = f"{folder.folder}: no scan could be read ({folder.summary()})"
        raise XadtError(msg)
    return ScoreRun(rows=rows, skipped=list(folder.skipped), summary=folder.summary())


def ranked(rows: Sequence[ScoreRow], top: int | None = None) -> list[ScoreRow]:
    """The rows by score, highest first (ties by id), cut to the ``top`` most anomalous.

    All-air scans (nothing judged) come after every judged scan: their score means "look at
    it", not "most anomalous".
    """
    judged = sorted(rows, key=lambda r: (r.note != "", -r.score if r.note == "" else 0.0, r.id))
    return judged if top is None else judged[:top]


def results_format(path: PathLike) -> Literal["csv", "json", "parquet"]:
    """``"csv"``, ``"json"`` or ``"parquet"`` from the suffix of a results file.

    Raises:
        XadtError: any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    if suffix == ".parquet":
        return "parquet"
    msg = (
        f"{path}: unknown results format {suffix or '(no suffix)'!r}; "
        "name a .csv, .json or .parquet file"
    )
    raise XadtError(msg)


def check_results_path(path: PathLike, *, overwrite: bool) -> Path:
    """Check, before scoring, that results may be written to ``path`` (suffix and overwrite)."""
    results_format(path)
    return check_output_file(path, overwrite=overwrite, what="results file")


def write_results(
    rows: Sequence[ScoreRow],
    path: PathLike,
    *,
    overwrite: bool = False,
    model: Model | None = None,
    skipped: Sequence[tuple[Path, str]] = (),
) -> Path:
    """Write scored rows and every skipped file to a ``.csv`` or ``.json`` file, atomically.

    CSV has one line per scan: ``id, score, normal_quantile, <each partial score>, flag,
    patches, note, warning`` (flag is ``true``, ``false`` or empty when the model has no
    threshold; the note says when a score means "all air, nothing judged"; the warning when the
    image looks unlike an X-ray scan), then one line per skipped file with its name as the id,
    no score and ``skipped: <reason>`` as the note. Ids that a spreadsheet
    would run as a formula (starting ``=``, ``+``, ``-`` or ``@``) are prefixed with ``'``. JSON
    holds the rows under ``scans`` and the skipped files under ``skipped`` with the plugin,
    model, threshold and a one-line ``summary`` beside them. Parquet (needs pyarrow, part of
    ``xadt[ray]``) has the CSV's columns, typed, with nulls for missing values and an ``error``
    column that holds the reason a file was skipped. File names are written on one line
    (:func:`xadt.scans.printable`).

    Raises:
        XadtError: an unknown suffix, an existing file without ``overwrite``, or a write error.
    """
    kind = results_format(path)
    if kind == "csv":
        data = _csv(rows, skipped).encode()
    elif kind == "parquet":
        data = _parquet(rows, skipped)
    else:
        document = _json(rows, model, skipped)
        data = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
    return write_bytes_atomic(path, data, overwrite=overwrite, what="results file")


def _csv(rows: Sequence[ScoreRow], skipped: Sequence[tuple[Path, str]]) -> str:
    names = _partial_names(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["id", "score", "normal_quantile", *names, "flag", "patches", "note", "warning"]
    writer.writerow(header)
    for row in rows:
        partial = [row.partial.get(name, "") for name in names]
        flag = "" if row.flag is None else str(row.flag).lower()
        quantile = "" if row.normal_quantile is None else row.normal_quantile
        cells = [_cell(row.id), row.score, quantile, *partial, flag, row.patches]
        writer.writerow([*cells, row.note, row.warning])
    blanks = [""] * (len(names) + 4)
    for file, reason in skipped:
        writer.writerow([_cell(printable(file.name)), *blanks, f"skipped: {reason}", ""])
    return buffer.getvalue()


def _parquet(rows: Sequence[ScoreRow], skipped: Sequence[tuple[Path, str]]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        msg = "writing .parquet results needs pyarrow: pip install 'xadt[ray]'"
        raise XadtError(msg) from None
    names = _partial_names(rows)
    records: list[dict[str, Any]] = [
        {
            "id": r.id,
            "score": r.score,
            "normal_quantile": r.normal_quantile,
            **{name: r.partial.get(name) for name in names},
            "flag": r.flag,
            "patches": r.patches,
            "note": r.note,
            "error": None,
        }
        for r in rows
    ]
    records += [
        {"id": printable(file.name), "note": f"skipped: {reason}", "error": reason}
        for file, reason in skipped
    ]
    text = {"id", "note", "error"}
    columns = ["id", "score", "normal_quantile", *names, "flag", "patches", "note", "error"]
    kinds = {"flag": pa.bool_(), "patches": pa.int64()}
    schema = pa.schema(
        [(c, pa.string() if c in text else kinds.get(c, pa.float64())) for c in columns]
    )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), buffer)
    return buffer.getvalue()


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return f"'{text}" if text[:1] in {"=", "+", "-", "@"} else text


def _json(
    rows: Sequence[ScoreRow], model: Model | None, skipped: Sequence[tuple[Path, str]]
) -> dict[str, Any]:
    calibration = model.calibration if model is not None else None
    return {
        "summary": f"{len(rows)} scans scored, {len(skipped)} files skipped",
        "xadt_version": __version__,
        "plugin": model.name if model is not None else None,
        "model": None if model is None or model.path is None else str(model.path),
        "threshold": calibration.threshold if calibration is not None else None,
        "target_fpr": calibration.target_fpr if calibration is not None else None,
        "scans": [
            {
                "id": r.id,
                "score": r.score,
                "normal_quantile": r.normal_quantile,
                "partial": dict(r.partial),
                "flag": r.flag,
                "patches": r.patches,
                "note": r.note,
                "warning": r.warning,
            }
            for r in rows
        ],
        "skipped": [{"file": printable(file), "reason": reason} for file, reason in skipped],
    }


def _partial_names(rows: Iterable[ScoreRow]) -> list[str]:
    return list(dict.fromkeys(name for row in rows for name in row.partial))
