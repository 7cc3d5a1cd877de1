"""Output files of the commands: written atomically, and never over an existing file by accident.

Each write goes to a hidden temporary file beside the target, is fsynced and then renamed over it
with ``os.replace``, so a crash leaves the previous file or none, never half a file.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from xadt.errors import XadtError


def check_output_file(path: str | os.PathLike[str], *, overwrite: bool, what: str = "file") -> Path:
    """Check that ``path`` may be written; call before long work so a run fails early.

    Args:
        path: the file to be written.
        overwrite: whether an existing file may be replaced.
        what: what the file is, for the message (``"results file"``, ``"overlay"``).

    Raises:
        XadtError: ``path`` is a folder, or an existing file and ``overwrite`` is false.
    """
    target = Path(path)
    if target.is_dir():
        msg = f"{target}: is a folder; name a file for the {what}"
        raise XadtError(msg)
    if target.exists() and not overwrite:
        msg = f"{target}: already exists; pass --overwrite to replace it"
        raise XadtError(msg)
    return target


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool, what: str = "file"
) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Creates missing parent folders. Returns the path written.

    Raises:
        XadtError: ``path`` exists and ``overwrite`` is false, is a folder, or cannot be written.
    """
    target = check_output_file(path, overwrite=overwrite, what=what)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        msg = f"{target}: cannot write the {what} ({exc.strerror or exc})"
        raise XadtError(msg) from None
    return target


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in ``.npy`` format, without pickle (so ``np.load`` needs no ``allow_pickle``)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_synced(file: Path, data: bytes) -> None:
    """Write ``data`` to ``file`` and fsync it, so a rename that follows publishes whole bytes."""
    with file.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Fsync a folder, so the entries created or renamed in it survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_dead_leftovers(parent: Path, prefix: str) -> None:
    """Remove the folders ``parent/<prefix><pid>-*`` whose process ``pid`` is no longer alive.

    Temporary folders that a killed process could not clean (a model's staging folder, a fit's
    feature cache) carry their owner's pid after ``prefix``; the next run removes them.
    """
    if not parent.is_dir():
        return
    for leftover in parent.glob(f"{glob.escape(prefix)}*-*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True
