"""The Python API a PyOD or anomalib user expects: ``xadt.fit`` and ``xadt.load_model``.

``xadt.fit("gaussian", "normal/")`` trains and calibrates a :class:`xadt.model.Model` in memory;
``xadt.load_model("model-dir")`` loads a saved one. Wherever scans are asked for, any input of
:func:`xadt.inputs.as_scans` will do: a Scan, files, a folder, numpy images, or lists of them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xadt.calibration import CalibrationWarning
from xadt.context import RunContext
from xadt.errors import XadtError
from xadt.inputs import Scans, as_scans
from xadt.model import Model
from xadt.scans import iter_scans
from xadt.training_data import TrainingData, split_ids

__all__ = ["fit", "load_model", "save_model"]


def load_model(path: str | os.PathLike[str], *, context: RunContext | None = None) -> Model:
    """Load a saved model; ``model.score(x)``, ``predict(x)`` and ``decision_function(x)`` then
    take any input :func:`as_scans` does. Plugins are loaded once, here (or from ``context``)."""
    from xadt.artifacts import load_model as load

    return load(path, registry=(context or RunContext()).plugins())


def save_model(path: str | os.PathLike[str], model: Model, *, overwrite: bool = False) -> Path:
    """Save a model to the directory ``path`` atomically (see :mod:`xadt.artifacts`)."""
    from xadt.artifacts import save_model as save

    return save(path, model, overwrite=overwrite)


def fit(
    plugin: str,
    data: Scans,
    *,
    holdout: float = 0.1,
    target_fpr: float = 0.05,
    validation: float | None = None,
    context: RunContext | None = None,
    **options: Any,
) -> Model:
    """Train and calibrate a detector on normal scans in one call; returns the model (unsaved).

    As ``xadt train``: a hash-chosen ``holdout`` of the scans is never fitted on and sets the
    threshold at ``target_fpr`` false alarms; ``options`` are the detector's (see
    ``xadt plugins NAME``). Save the result with :func:`xadt.artifacts.save_model`.

    Warns:
        CalibrationWarning: fewer than 20 scans were held out to set the threshold.

    Raises:
        XadtError: an unknown plugin or option, too few scans to hold out two, or a failed fit.
    """
    from xadt.workflows.train import build_detector, fit_calibrated

    context = context or RunContext()
    cls = context.plugins().get_detector(plugin)
    detector = build_detector(cls, [f"{k}={v}" for k, v in options.items()])
    fraction = detector.default_validation() if validation is None else validation
    if isinstance(data, str | os.PathLike) and Path(data).is_dir():
        folder = iter_scans(data)
        split = split_ids(folder.ids, holdout=holdout, validation=fraction, seed=context.seed)
        _check_holdout(split.calibration, holdout, len(folder))
        fit_data, held_out = TrainingData.from_folder(folder, split, seed=context.seed)
    else:
        scans = {s.id: s for s in as_scans(data)}
        split = split_ids(scans, holdout=holdout, validation=fraction, seed=context.seed)
        _check_holdout(split.calibration, holdout, len(scans))
        fit_data = TrainingData.from_scans(
            [scans[i] for i in split.fit],
            validation=[scans[i] for i in split.validation],
            seed=context.seed,
        )
        held_out = TrainingData.from_scans([scans[i] for i in split.calibration])
    model, _ = fit_calibrated(
        detector, fit_data, held_out, split, context=context, target_fpr=target_fpr
    )
    assert model.calibration is not None
    if model.calibration.warning():
        warnings.warn(model.calibration.warning(), CalibrationWarning, stacklevel=2)
    return model


def _check_holdout(held: Sequence[str], holdout: float, total: int) -> None:
    if len(held) < 2:
        msg = (
            f"holdout={holdout:g} holds out {len(held)} of {total} scans, but calibration needs "
            "at least 2 held-out normal scans; pass more scans or a larger holdout"
        )
        raise XadtError(msg)
