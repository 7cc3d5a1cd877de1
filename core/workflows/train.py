"""Training: fit any detector on a folder of normal scans, calibrate it on held-out normal scans,
and save the model.

The scans are split by a hash of their ids (:func:`xadt.training_data.split_ids`): a calibration
part the detector never sees, an optional validation part it may use to select a model, and the
rest to fit on. The fitted detector scores the calibration scans and the threshold is set at a
target false-alarm rate from those scores. Nothing here ever looks at an anomaly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xadt import ddp
from xadt.artifacts import MODEL_JSON, save_model, store_path
from xadt.calibration import calibrate
from xadt.config import check_option_names, parse_overrides
from xadt.context import RunContext
from xadt.defaults import DEFAULT_HOLDOUT, DEFAULT_TARGET_FPR
from xadt.detector import Detector, ScanResult
from xadt.errors import XadtError
from xadt.model import Model, Provenance
from xadt.scans import Scan, iter_scans
from xadt.training_data import Split, TrainingData, check_fraction, split_ids
from xadt.workflows.score import score_in_chunks

__all__ = [
    "DEFAULT_HOLDOUT",
    "DEFAULT_TARGET_FPR",
    "TrainResult",
    "build_detector",
    "calibrate_model",
    "check_model_path",
    "fit_calibrated",
    "fitted_model",
    "skipped_line",
    "split_training_ids",
    "train",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TrainResult:
    """What a training run did.

    Attributes:
        path: the model directory written.
        model: the fitted, calibrated model.
        n_fitted: normal scans the detector was fitted on (readable ones).
        n_validation: normal scans it could use for model selection.
        n_holdout: normal scans held out of the fit and scored to calibrate it.
        skipped: ``(file, reason)`` of each unreadable scan that was skipped.
        summary: one line on the scans read and skipped.
    """

    path: Path
    model: Model
    n_fitted: int
    n_validation: int
    n_holdout: int
    skipped: list[tuple[Path, str]]
    summary: str


def build_detector(
    cls: type[Detector],
    overrides: Sequence[str] = (),
    *,
    options: Mapping[str, Any] | None = None,
    where: str = "options",
) -> Detector:
    """A detector of class ``cls`` with ``options`` (from an option file) and then
    ``--set key=value`` overrides applied.

    The config is validated here, so a bad option fails before any scan is read.

    Raises:
        XadtError: an unknown key (the message names ``where`` and lists the valid keys) or a
            bad value.
    """
    values = dict(options or {})
    check_option_names(cls.name, cls.Config, values, where)
    values.update(parse_overrides(cls.name, cls.Config, overrides))
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


def fit_calibrated(
    detector: Detector,
    fit_data: TrainingData,
    held_out: TrainingData,
    split: Split,
    *,
    context: RunContext,
    target_fpr: float,
    **training: Any,
) -> tuple[Model, int]:
    """Fit ``detector``, wrap it in a model with its provenance and calibrate it on ``held_out``.

    ``training`` adds to the provenance's training record (the data's location, say).

    Returns:
        The calibrated model and how many held-out scans set its threshold.
    """
    detector.fit(fit_data, context)
    model = fitted_model(detector, split, context=context, **training)
    return model, calibrate_model(model, held_out, target_fpr=target_fpr, context=context)


def fitted_model(
    detector: Detector, split: Split, *, context: RunContext, **training: Any
) -> Model:
    """A fitted ``detector`` as an uncalibrated model, with its provenance: the plugin that
    provides it, the seed, the sizes of the ``split`` and ``training`` (the data's location)."""
    entry = context.plugins().detectors.get(detector.name)
    record = entry.plugin if entry is not None and entry.obj is type(detector) else None
    return Model(
        detector,
        provenance=Provenance.of(
            detector,
            record,
            seed=context.seed,
            n_fitted=len(split.fit),
            n_validation=len(split.validation),
            n_calibration=len(split.calibration),
            **training,
        ),
    )


def calibrate_model(
    model: Model, scans: TrainingData, *, target_fpr: float, context: RunContext
) -> int:
    """Score held-out normal scans with ``model`` and set its calibration at ``target_fpr``.

    Returns:
        How many held-out scans were scored.

    Raises:
        XadtError: fewer than two held-out scans could be scored, or a score was not finite.
    """
    check_fraction("--target-fpr", target_fpr)
    results: list[ScanResult] = []
    context.progress.stage("calibrating", len(scans))

    def keep(_batch: list[Scan], chunk: list[ScanResult]) -> None:
        results.extend(chunk)
        context.progress.update(len(results))

    for _ in score_in_chunks(model, scans, context=context, on_chunk=keep):
        pass
    model.calibration = calibrate(results, target_fpr)
    return len(results)


def train(
    plugin: str | type[Detector],
    data: PathLike,
    *,
    context: RunContext,
    output: PathLike | None = None,
    overrides: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    options_file: str = "options",
    holdout: float = DEFAULT_HOLDOUT,
    validation: float | None = None,
    target_fpr: float = DEFAULT_TARGET_FPR,
    overwrite: bool = False,
    recursive: bool = False,
) -> TrainResult:
    """Fit a detector on the normal scans of ``data``, calibrate it, and save the model.

    Every check that can fail before the fit does: the plugin, its options, the output path, the
    data folder and the size of the held-out split (known from the scan ids). The model is
    saved (atomically) only after the fit and the calibration succeed, so a failed run never
    replaces an existing model. Unreadable scans are skipped (with a ``ScanSkippedWarning``
    each) and listed in the result: the caller decides whether a model trained on the rest is a
    failure.

    Args:
        plugin: the detector's name (looked up in ``context``'s registry), or its class.
        data: a folder of normal scans (read lazily, one at a time, once per pass), or a list
            of scan files, folders and glob patterns.
        context: device, seed (also of the split), progress, checkpoints, caches, registry.
        output: the model directory; by default the model store, ``store_path(plugin)``.
        overrides: ``"key=value"`` strings for the detector's ``Config``; they win over
            ``options``.
        options: typed option values, e.g. read from an option file named ``options_file``.
        options_file: how ``options`` are named in messages.
        holdout: fraction of the scans held out of the fit to calibrate the threshold.
        validation: fraction held out for model selection; None = the detector's
            ``default_validation``.
        target_fpr: false-alarm rate on the held-out scans that the threshold is set for.
        overwrite: replace an existing model at the output path.
        recursive: also read the subfolders of ``data``.

    Returns:
        What was fitted and written.

    Raises:
        XadtError: an unknown plugin or option, an existing model without ``overwrite``, a
            missing or empty data folder, a failed fit or too few held-out scans.
    """
    context.torch_device()  # a bad --device fails before any scan is read
    registry = context.plugins()
    cls = registry.get_detector(plugin) if isinstance(plugin, str) else plugin
    detector = build_detector(cls, overrides, options=options, where=options_file)
    fraction = detector.default_validation() if validation is None else validation
    check_fraction("--target-fpr", target_fpr)
    folder = iter_scans(data, recursive=recursive)
    target = check_model_path(
        store_path(cls.name) if output is None else output, overwrite=overwrite
    )
    split = split_training_ids(folder.folder, folder.ids, holdout, fraction, context.seed)
    fit_data, held_out = TrainingData.from_folder(folder, split, seed=context.seed)
    try:
        model, n_holdout = fit_calibrated(
            detector,
            fit_data,
            held_out,
            split,
            context=context,
            target_fpr=target_fpr,
            data=str(folder.folder),
        )
    except XadtError as exc:
        if fit_data.skipped:
            msg = f"{exc} ({skipped_line(fit_data.skipped, len(folder))})"
            raise XadtError(msg) from None
        raise
    n_fitted = len(set(split.fit) - fit_data.unread)
    model.provenance.training.update(n_fitted=n_fitted, n_skipped=len(fit_data.skipped))
    context.progress.stage("saving")
    # Under DDP every rank holds the same fitted model; rank 0 alone writes it.
    path = save_model(target, model, overwrite=overwrite) if ddp.is_main() else target
    return TrainResult(
        path=path,
        model=model,
        n_fitted=n_fitted,
        n_validation=len(split.validation),
        n_holdout=n_holdout,
        skipped=list(fit_data.skipped),
        summary=(
            f"{skipped_line(fit_data.skipped, len(folder))}; fitted on {n_fitted}, "
            f"calibrated on {n_holdout} held out"
        ),
    )


def split_training_ids(
    where: PathLike, ids: Sequence[str], holdout: float, validation: float, seed: int
) -> Split:
    """:func:`split_ids` for training: an error naming ``where`` unless at least two scans are
    held out to calibrate."""
    split = split_ids(ids, holdout=holdout, validation=validation, seed=seed)
    if len(split.calibration) < 2:
        msg = (
            f"{where}: --holdout {holdout:g} holds out {len(split.calibration)} of its "
            f"{len(ids)} scans, but calibration needs at least 2 held-out normal scans; train "
            "on more scans or raise --holdout"
        )
        raise XadtError(msg)
    return split


def skipped_line(skipped: Sequence[tuple[Path, str]], total: int) -> str:
    """One line on the scans a training run skipped, naming the first three."""
    if not skipped:
        return f"{total} scans, none skipped"
    shown = "; ".join(f"{path.name}: {reason}" for path, reason in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{len(skipped)} of {total} scans skipped: {shown}{more}"
