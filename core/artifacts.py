"""Model files: a directory with ``model.json`` and ``tensors.safetensors``, written atomically.

Nothing in a model file is ever unpickled: arrays go through safetensors, everything else is JSON.
A write goes into a temporary sibling directory that is fsynced and swapped into place in one step
(Linux ``renameat2``), so a crash leaves the old model or the new one at the path, never a mix
(elsewhere, a crash between the two renames of the fallback can leave the new one aside).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from xadt.calibration import Calibration
from xadt.config import (
    check_runtime_overrides,
    config_from_json,
    config_to_json,
    parse_overrides,
    validate_config,
)
from xadt.detector import DetectorState
from xadt.errors import XadtError
from xadt.host import Registry
from xadt.model import Model, Provenance
from xadt.outputs import fsync_dir, remove_dead_leftovers, write_synced
from xadt.version import __version__

FORMAT_VERSION = 2
"""Version of the model directory layout; a loader refuses files with a newer one. Version 2
adds ``content_sha256`` (required from 2 on); version 1 files still load."""

MODEL_JSON = "model.json"
TENSORS = "tensors.safetensors"


@dataclass(frozen=True)
class ModelInfo:
    """What ``model.json`` says about a model, read without loading its tensors."""

    path: Path
    provenance: Provenance
    config: dict[str, Any]
    meta: dict[str, Any]
    calibration: Calibration | None

    @property
    def plugin(self) -> str:
        """The name of the detector that wrote the model."""
        return self.provenance.plugin


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


def save_model(path: str | os.PathLike[str], model: Model, *, overwrite: bool = False) -> Path:
    """Write a model (fitted detector, calibration, provenance) to the directory ``path``
    atomically; return the path.

    Raises ``XadtError`` when ``path`` exists and ``overwrite`` is false, or when it exists and is
    not a model directory (a model never replaces an unrelated folder).
    """
    target = Path(path)
    detector = model.detector
    detector.check_fitted()
    if target.exists():
        if not overwrite:
            msg = f"{target}: a model already exists there; pass --overwrite to replace it"
            raise XadtError(msg)
        if not (target / MODEL_JSON).is_file():
            msg = f"{target}: exists and is not an xadt model directory; refusing to replace it"
            raise XadtError(msg)
    provenance = model.provenance or Provenance(plugin=detector.name)
    state = detector.state()
    arrays = _contiguous(detector.name, state)
    blob = safetensors.numpy.save(arrays)
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "xadt_version": provenance.xadt_version,
        "plugin": {
            "name": detector.name,
            "distribution": provenance.distribution,
            "version": provenance.version,
        },
        "created": provenance.created,
        "training": provenance.training,
        "config": config_to_json(detector.config),
        "meta": state.meta,
        "calibration": model.calibration.to_json() if model.calibration else None,
        "tensors": {
            "file": TENSORS,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "shapes": _shapes(arrays),
        },
    }
    document["content_sha256"] = _content_digest(document)
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _staging_dir(target) as staging:
        write_synced(staging / TENSORS, blob)
        write_synced(staging / MODEL_JSON, text.encode())
        fsync_dir(staging)
        _replace_dir(staging, target)
    model.path = target
    return target


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read and check ``model.json`` of the model directory ``path`` (tensors are not read)."""
    root = Path(path)
    document = _read_document(root)
    return ModelInfo(
        path=root,
        provenance=_provenance(root, document),
        config=document["config"],
        meta=document.get("meta", {}),
        calibration=_calibration(document),
    )


def load_model(
    path: str | os.PathLike[str], *, registry: Registry, overrides: Sequence[str] = ()
) -> Model:
    """Load the model in directory ``path``, its detector class looked up in ``registry``.

    ``overrides`` are ``key=value`` settings of runtime options (a batch size, a cache folder),
    the only ones that may differ from training. Checks the format version, that the plugin that
    wrote it is installed, and that the tensor file is complete and unchanged; any failure is an
    ``XadtError`` naming the file or option.
    """
    root = Path(path)
    document = _read_document(root)
    name = document["plugin"]["name"]
    cls = registry.get_detector(name)
    config = config_from_json(name, cls.Config, document["config"])
    if overrides:
        check_runtime_overrides(name, cls.Config, overrides)
        config = dataclasses.replace(config, **parse_overrides(name, cls.Config, overrides))
        validate_config(name, config)
    tensors = _read_tensors(root, document)
    detector = cls.from_state(config, DetectorState(tensors=tensors, meta=document.get("meta", {})))
    return Model(detector, _calibration(document), _provenance(root, document), root)


def _provenance(root: Path, document: dict[str, Any]) -> Provenance:
    plugin = document["plugin"]
    return Provenance.from_json(
        {
            "plugin": plugin["name"],
            "distribution": plugin.get("distribution", "unknown"),
            "version": plugin.get("version", "unknown"),
            "xadt_version": document.get("xadt_version", "unknown"),
            "created": document.get("created", ""),
            "training": document.get("training") or {},
        },
        where=str(root / MODEL_JSON),
    )


def _calibration(document: dict[str, Any]) -> Calibration | None:
    section = document.get("calibration")
    return None if section is None else Calibration.from_json(section)


def _read_document(root: Path) -> dict[str, Any]:
    file = root / MODEL_JSON
    try:
        if not root.is_dir():
            msg = f"{root}: no such model directory"
            raise XadtError(msg)
        if not os.path.lexists(file):
            msg = f"{root}: not an xadt model directory (no {MODEL_JSON})"
            raise XadtError(msg)
        text = _read_regular(file)  # a FIFO, folder or device there is named as such
    except OSError as exc:  # a folder or file the user may not read
        msg = f"{file}: cannot read the model file ({exc.strerror or exc})"
        raise XadtError(msg) from None
    try:
        document = json.loads(
            text.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers malformed JSON, NaN or infinities (never written: allow_nan=False)
        # and integers too long to convert
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        msg = f"{file}: corrupt model file ({reason})"
        raise XadtError(msg) from None
    version = document.get("format_version") if isinstance(document, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        msg = f"{file}: corrupt model file (format_version {version!r} is not a version >= 1)"
        raise XadtError(msg)
    if version > FORMAT_VERSION:
        msg = (
            f"{file}: model format {version} is newer than this xadt ({__version__}) reads "
            f"(format {FORMAT_VERSION}); upgrade xadt"
        )
        raise XadtError(msg)
    for key in ("plugin", "config", "tensors"):
        if not isinstance(document.get(key), dict):
            msg = f"{file}: corrupt model file (no {key!r} section)"
            raise XadtError(msg)
    if not isinstance(document.get("meta", {}), dict):
        msg = f"{file}: corrupt model file (its 'meta' section is not an object)"
        raise XadtError(msg)
    if not isinstance(document["plugin"].get("name"), str):
        msg = f"{file}: corrupt model file (no plugin name)"
        raise XadtError(msg)
    stored = document.get("content_sha256")
    if stored is None and version >= 2:
        msg = f"{file}: corrupt model file (no content checksum)"
        raise XadtError(msg)
    if stored is not None and stored != _content_digest(document):
        msg = (
            f"{file}: was changed after the model was written (its content checksum does not "
            "match); retrain, or restore the file"
        )
        raise XadtError(msg)
    return document


def _read_tensors(root: Path, document: dict[str, Any]) -> dict[str, np.ndarray]:
    file = root / TENSORS
    try:
        blob = _read_regular(file)
    except OSError as exc:
        msg = f"{file}: cannot read the model's tensors ({exc.strerror})"
        raise XadtError(msg) from None
    if hashlib.sha256(blob).hexdigest() != document["tensors"].get("sha256"):
        msg = f"{file}: corrupt or truncated (checksum does not match model.json)"
        raise XadtError(msg)
    try:
        tensors = dict(safetensors.numpy.load(blob))
    except SafetensorError as exc:
        msg = f"{file}: corrupt tensor file ({exc})"
        raise XadtError(msg) from None
    recorded = document["tensors"].get("shapes")
    if recorded is not None:
        found = _shapes(tensors)
        if not isinstance(recorded, dict):
            recorded = {}
        # Files written before shapes were recorded from the stored arrays list a 0-d array as
        # [], though np.ascontiguousarray stored it with shape [1].
        recorded = {k: [v[0], v[1] or [1]] if _is_shape(v) else v for k, v in recorded.items()}
        differ = sorted(
            k for k in found.keys() | recorded.keys() if found.get(k) != recorded.get(k)
        )
        if differ:
            shown = "; ".join(
                f"{k}: {found.get(k, 'absent')} but model.json records {recorded.get(k, 'none')}"
                for k in differ[:3]
            )
            more = f"; and {len(differ) - 3} more" if len(differ) > 3 else ""
            msg = f"{file}: holds other arrays than model.json records ({shown}{more})"
            raise XadtError(msg)
    return tensors


def _shapes(tensors: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """``{name: [dtype, shape]}`` of the arrays in a tensor file, as ``model.json`` records them."""
    return {k: [str(v.dtype), list(v.shape)] for k, v in tensors.items()}


def _is_shape(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)


def _no_constant(name: str) -> float:
    msg = f"{name} is not a valid JSON number"
    raise ValueError(msg)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        msg = f"{text} is out of the range of a float"
        raise ValueError(msg)
    return value


def _content_digest(document: dict[str, Any]) -> str:
    """sha256 of everything in ``model.json`` that decides what the model computes.

    Covers the plugin, config, fitted metadata, calibration and the tensor file's own checksum,
    so an edit to any of them (a threshold, a weight, a cache path) is refused on load.
    """
    content = {k: document.get(k) for k in ("plugin", "config", "meta", "calibration", "tensors")}
    text = json.dumps(content, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_regular(file: Path) -> bytes:
    """The bytes of ``file``, refusing anything but a regular file (a FIFO would block)."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = f"{file}: not a regular file; a model file must be one"
            raise XadtError(msg)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


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
    _remove_leftovers(target)
    prefix = f".{target.name}.tmp-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_dir(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; an existing model there is swapped out in one step.

    Where the kernel can exchange two paths atomically (Linux ``renameat2``), ``target`` holds
    the old model or the new one at every instant, so a ``kill -9`` never leaves it without a
    model; the old one then sits at ``staging`` and is removed. Elsewhere the old model is moved
    aside first, and a crash in between leaves the new one in a ``.NAME.tmp-PID-*`` sibling.
    """
    if not target.exists():
        staging.rename(target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
        target.rename(old / target.name)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(target.parent)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # no such call or not on this fs
        return False
    raise OSError(error, os.strerror(error), str(b))


def _remove_leftovers(target: Path) -> None:
    """Remove staging and moved-aside folders of earlier saves whose process is gone."""
    for kind in ("tmp", "old"):
        remove_dead_leftovers(target.parent, f".{target.name}.{kind}-")
