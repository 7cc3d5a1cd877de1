"""Training checkpoints on disk: weights and optimiser state in safetensors, the rest in JSON.

A checkpoint folder holds one subfolder per kept epoch (``epoch-0003/``: ``tensors.safetensors``
and ``state.json``) and a pointer file ``latest.json`` naming the newest complete one. An epoch is
written into a temporary folder, fsynced and renamed; only then is the pointer replaced (one
atomic rename of a small file) and older epochs removed. So a ``kill -9`` at any instant leaves a
pointer to a complete, loadable checkpoint, or no pointer at all. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from xadt.errors import XadtError
from xadt.outputs import fsync_dir, write_synced

__all__ = ["LATEST", "Checkpoint", "load_latest", "save_checkpoint"]

LATEST = "latest.json"
_TENSORS = "tensors.safetensors"
_STATE = "state.json"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a training run needs to continue exactly where it stopped.

    Attributes:
        epoch: the last completed epoch (1-based).
        tensors: named arrays: network weights, optimiser tensors, RNG states.
        state: JSON-ready values: history, optimiser settings, RNG states, fingerprint.
        best_epoch: the epoch whose weights model selection keeps, if one is kept besides.
    """

    epoch: int
    tensors: dict[str, np.ndarray]
    state: dict[str, Any]
    best_epoch: int | None = None


def save_checkpoint(folder: Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` into ``folder`` atomically and point ``latest.json`` at it.

    Epoch folders other than the new one and ``best_epoch``'s are removed afterwards.

    Returns:
        The epoch folder written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{checkpoint.epoch:04d}"
    blob = safetensors.numpy.save(
        {k: np.ascontiguousarray(v) for k, v in checkpoint.tensors.items()}
    )
    document = {
        "format_version": FORMAT_VERSION,
        "epoch": checkpoint.epoch,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "state": checkpoint.state,
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=folder))
    try:
        write_synced(staging / _TENSORS, blob)
        write_synced(staging / _STATE, json.dumps(document, allow_nan=False).encode())
        fsync_dir(staging)
        target = folder / name
        if target.exists():  # a rerun of this epoch after an interrupt: replace it
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(folder)
    pointer = {"epoch": checkpoint.epoch, "folder": name}
    if checkpoint.best_epoch is not None:
        pointer["best"] = f"epoch-{checkpoint.best_epoch:04d}"
    tmp = folder / f".{LATEST}.tmp"
    write_synced(tmp, json.dumps(pointer).encode())
    tmp.replace(folder / LATEST)
    fsync_dir(folder)
    keep = {name, pointer.get("best")}
    for old in folder.glob("epoch-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".epoch-*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return folder / name


def load_latest(folder: Path, *, best: bool = False) -> Checkpoint | None:
    """The checkpoint ``latest.json`` points at (or its ``best`` one); None when there is none.

    Raises:
        XadtError: the pointer or the checkpoint it names is damaged; the message names the file.
    """
    pointer_file = folder / LATEST
    if not pointer_file.is_file():
        return None
    try:
        pointer = json.loads(pointer_file.read_text(encoding="utf-8"))
        name = pointer["best" if best else "folder"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{pointer_file}: damaged checkpoint pointer ({exc}); remove the folder to start over"
        raise XadtError(msg) from None
    if not isinstance(name, str) or "/" in name or not name.startswith("epoch-"):
        msg = f"{pointer_file}: damaged checkpoint pointer (folder {name!r})"
        raise XadtError(msg)
    return _read(folder / name, pointer.get("best"))


def _read(directory: Path, best: str | None) -> Checkpoint:
    state_file, tensor_file = directory / _STATE, directory / _TENSORS
    try:
        document = json.loads(state_file.read_text(encoding="utf-8"))
        blob = tensor_file.read_bytes()
    except (OSError, ValueError) as exc:
        msg = f"{directory}: unreadable checkpoint ({exc})"
        raise XadtError(msg) from None
    if not isinstance(document, dict) or document.get("format_version") != FORMAT_VERSION:
        version = document.get("format_version") if isinstance(document, dict) else None
        msg = f"{state_file}: not a checkpoint of this xadt (format {version!r})"
        raise XadtError(msg)
    if hashlib.sha256(blob).hexdigest() != document.get("sha256"):
        msg = f"{tensor_file}: corrupt or truncated (checksum does not match {_STATE})"
        raise XadtError(msg)
    try:
        tensors = dict(safetensors.numpy.load(blob))
    except SafetensorError as exc:
        msg = f"{tensor_file}: corrupt tensor file ({exc})"
        raise XadtError(msg) from None
    best_epoch = int(best.removeprefix("epoch-")) if isinstance(best, str) else None
    return Checkpoint(int(document["epoch"]), tensors, document["state"], best_epoch)
