"""The scans of a folder, a glob or a manifest file, local or remote (``s3://``, ``gs://``, ...),
listed through fsspec and read one scan at a time wherever a Ray task runs.

A manifest is a text file of paths or URIs, one per line (blank lines and ``#`` comments are
ignored; relative paths are relative to the manifest). Files are grouped into scans by the naming
rules of ``docs/data.md``, exactly as :func:`xadt.scans.iter_scans` groups a folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from xadt.errors import XadtError
from xadt.scans import IMAGE_EXTENSIONS, Scan, ScanReadError, group_files, read_scan

__all__ = ["ScanSource", "list_scans", "read_source"]

_GLOB = set("*?[")


@dataclass(frozen=True)
class ScanSource:
    """Where one scan's files are.

    Attributes:
        id: the scan id its file names give.
        files: its files, local paths or fsspec URIs.
    """

    id: str
    files: tuple[str, ...]

    def listed(self, file: Path) -> str:
        """The listed path or URI of ``file``, one of this scan's files as read (remote files
        are read from a temporary copy with the same name)."""
        return next((f for f in self.files if PurePosixPath(f).name == file.name), file.name)


def list_scans(where: str | Sequence[str]) -> list[ScanSource]:
    """The scans at ``where``, sorted by id: folders (their image files, not their subfolders),
    image files, globs of files, or manifest files of paths or URIs (any other file); any of
    them local or a URL fsspec knows.

    Raises:
        XadtError: an input matches nothing, there are no image files, or one cannot be listed.
    """
    inputs = [where] if isinstance(where, str) else list(where)
    uris = {path: uri for one in inputs for path, uri in _image_files(one).items()}
    if not uris:
        msg = f"{', '.join(inputs)}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found"
        raise XadtError(msg)
    return [
        ScanSource(scan_id, tuple(uris[p] for p in paths))
        for scan_id, paths in group_files(uris).items()
    ]


def _image_files(where: str) -> dict[Path, str]:
    """The image files at one input, each as a path to group by and the path or URI to read."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    try:
        fs, path = fsspec.core.url_to_fs(where)
        if _GLOB & set(path):
            files = sorted(fs.glob(path))
        elif fs.isdir(path):
            files = sorted(fs.ls(path, detail=False))
        elif fs.isfile(path):
            image = PurePosixPath(path).suffix.lower() in IMAGE_EXTENSIONS
            files = [path] if image else _manifest(fs, path)
        else:
            msg = f"{where}: no such folder, glob or manifest file"
            raise XadtError(msg)
    except (OSError, ValueError, ImportError) as exc:
        msg = f"{where}: cannot list the scans ({exc})"
        raise XadtError(msg) from None
    local = isinstance(fs, LocalFileSystem)
    return {
        Path(f): f if local else fs.unstrip_protocol(f)
        for f in files
        if PurePosixPath(f).suffix.lower() in IMAGE_EXTENSIONS
        and not PurePosixPath(f).name.startswith(".")
    }


def _manifest(fs: object, path: str) -> list[str]:
    with fs.open(path, "rt", encoding="utf-8") as handle:  # type: ignore[attr-defined]
        lines = [line.strip() for line in handle]
    base = PurePosixPath(path).parent
    entries = [line for line in lines if line and not line.startswith("#")]
    return [e if "://" in e or e.startswith("/") else str(base / e) for e in entries]


def read_source(source: ScanSource) -> Scan:
    """Read one listed scan; remote files are copied to a temporary folder first.

    Raises:
        ScanReadError: a file is missing, unreadable or damaged (as :func:`read_scan` says).
    """
    if all("://" not in f or f.startswith("file://") for f in source.files):
        return read_scan([f.removeprefix("file://") for f in source.files])
    import fsspec

    with tempfile.TemporaryDirectory(prefix="xadt-fetch-") as tmp:
        local = []
        for uri in source.files:
            target = Path(tmp) / PurePosixPath(uri).name
            try:
                with fsspec.open(uri, "rb") as remote:
                    target.write_bytes(remote.read())
            except OSError as exc:
                name = Path(PurePosixPath(uri).name)
                raise ScanReadError(name, f"cannot fetch the file ({exc})") from None
            local.append(target)
        return read_scan(local)
