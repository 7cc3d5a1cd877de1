"""Model files: a directory with ``model.json`` and ``tensors.safetensors``, written atomically.

Nothing in a model file is ever unpickled: arrays go through safetensors, everything else is JSON.
A write goes into a temporary sibling directory that is fsynced and renamed into place, so a crash
leaves the previous model or nothing at the path, never a mix of the two.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

import xadt
from xadt.calibration import Calibration
from xadt.config import config_from_json, config_to_json
from xadt.detector import Detector, DetectorState
from xadt.errors import XadtError

FORMAT_VERSION = 1
"""Version of the model directory layout; a loader refuses files with a newer one."""

MODEL_JSON = "model.json"
TENSORS = "tensors.safetensors"


@dataclass(frozen=True)
class ModelInfo:
    """What ``model.json`` says about a model, read without loading its tensors."""

    path: Path
    plugin: str
    plugin_distribution: str
    plugin_version: str
    xadt_version: str
    config: dict[str, Any]
    meta: dict[str, Any]
    calibration: Calibration | None


def default_store() -> Path:
    """The model store: ``$XADT_HOME`` or the platform data directory (``~/.local/share/xadt``)."""
    home = os.environ.get("XADT_HOME")
    if home:
        return Path(home)
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "xadt"


def store_path(plugin: str) -> Path:
    """Where ``xadt train --plugin P`` writes, and ``xadt score --plugin P`` reads, by default."""
    return default_store() / "models" / plugin


def save_model(
    path: str | os.PathLike[str], detector: Detector, *, overwrite: bool = False
) -> Path:
    """Write a fitted detector to the model directory ``path`` atomically; return the path.

    Raises ``XadtError`` when ``path`` exists and ``overwrite`` is false, or when it exists and is
    not a model directory (a model never replaces an unrelated folder).
    """
    from xadt.host import load_registry

    target = Path(path)
    detector.check_fitted()
    if target.exists():
        if not overwrite:
            msg = f"{target}: a model already exists there; pass --overwrite to replace it"
            raise XadtError(msg)
        if not (target / MODEL_JSON).is_file():
            msg = f"{target}: exists and is not an xadt model directory; refusing to replace it"
            raise XadtError(msg)
    record = load_registry().detectors.get(detector.name)
    state = detector.state()
    blob = safetensors.numpy.save(_contiguous(detector.name, state))
    document = {
        "format_version": FORMAT_VERSION,
        "xadt_version": xadt.__version__,
        "plugin": {
            "name": detector.name,
            "distribution": record.plugin.distribution if record else "unregistered",
            "version": record.plugin.version if record else "unknown",
        },
        "config": config_to_json(detector.config),
        "meta": state.meta,
        "calibration": detector.calibration.to_json() if detector.calibration else None,
        "tensors": {
            "file": TENSORS,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "shapes": {k: [str(v.dtype), list(v.shape)] for k, v in state.tensors.items()},
        },
    }
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _staging_dir(target) as staging:
        _write_synced(staging / TENSORS, blob)
        _write_synced(staging / MODEL_JSON, text.encode())
        _fsync_dir(staging)
        _replace_dir(staging, target)
    return target


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read and check ``model.json`` of the model directory ``path`` (tensors are not read)."""
    root = Path(path)
    document = _read_document(root)
    plugin = document["plugin"]
    return ModelInfo(
        path=root,
        plugin=plugin["name"],
        plugin_distribution=plugin.get("distribution", "unknown"),
        plugin_version=plugin.get("version", "unknown"),
        xadt_version=document.get("xadt_version", "unknown"),
        config=document["config"],
        meta=document.get("meta", {}),
        calibration=(
            Calibration.from_json(document["calibration"]) if document.get("calibration") else None
        ),
    )


def load_model(path: str | os.PathLike[str]) -> Detector:
    """Load a detector from the model directory ``path``.

    Checks the format version, that the plugin that wrote it is installed, and that the tensor
    file is complete and unchanged; any failure is an ``XadtError`` naming the file.
    """
    from xadt.host import load_registry

    root = Path(path)
    document = _read_document(root)
    name = document["plugin"]["name"]
    cls = load_registry().get_detector(name)
    config = config_from_json(name, cls.Config, document["config"])
    tensors = _read_tensors(root, document)
    detector = cls.from_state(config, DetectorState(tensors=tensors, meta=document.get("meta", {})))
    calibration = document.get("calibration")
    if calibration is not None:
        detector.calibration = Calibration.from_json(calibration)
    return detector


def _read_document(root: Path) -> dict[str, Any]:
    file = root / MODEL_JSON
    if not root.is_dir():
        msg = f"{root}: no such model directory"
        raise XadtError(msg)
    if not file.is_file():
        msg = f"{root}: not an xadt model directory (no {MODEL_JSON})"
        raise XadtError(msg)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{file}: corrupt model file ({exc})"
        raise XadtError(msg) from None
    if not isinstance(document, dict) or not isinstance(document.get("format_version"), int):
        msg = f"{file}: corrupt model file (no format_version)"
        raise XadtError(msg)
    version = document["format_version"]
    if version > FORMAT_VERSION:
        msg = (
            f"{file}: model format {version} is newer than this xadt ({xadt.__version__}) reads "
            f"(format {FORMAT_VERSION}); upgrade xadt"
        )
        raise XadtError(msg)
    for key in ("plugin", "config", "tensors"):
        if not isinstance(document.get(key), dict):
            msg = f"{file}: corrupt model file (no {key!r} section)"
            raise XadtError(msg)
    if not isinstance(document["plugin"].get("name"), str):
        msg = f"{file}: corrupt model file (no plugin name)"
        raise XadtError(msg)
    return document


def _read_tensors(root: Path, document: dict[str, Any]) -> dict[str, np.ndarray]:
    file = root / TENSORS
    try:
        blob = file.read_bytes()
    except OSError as exc:
        msg = f"{file}: cannot read the model's tensors ({exc.strerror})"
        raise XadtError(msg) from None
    if hashlib.sha256(blob).hexdigest() != document["tensors"].get("sha256"):
        msg = f"{file}: corrupt or truncated (checksum does not match model.json)"
        raise XadtError(msg)
    try:
        return dict(safetensors.numpy.load(blob))
    except SafetensorError as exc:
        msg = f"{file}: corrupt tensor file ({exc})"
        raise XadtError(msg) from None


def _contiguous(detector: str, state: DetectorState) -> dict[str, np.ndarray]:
    tensors = {}
    for key, value in state.tensors.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            msg = f"{detector}: state tensor {key!r} has dtype {arr.dtype}; only numbers are stored"
            raise TypeError(msg)
        tensors[key] = np.ascontiguousarray(arr)
    return tensors


@contextlib.contextmanager
def _staging_dir(target: Path) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_dir(staging: Path, target: Path) -> None:
    # A directory cannot be swapped for another in one rename, so the old model is moved aside
    # first: a crash in between leaves no model at `target`, never a mix of old and new files.
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.rename(old / target.name)
    staging.rename(target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_synced(file: Path, data: bytes) -> None:
    with file.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
