"""Scans: one parcel or bag, with one or more views kept in their native dtype.

Reads PNG, JPEG, BMP and TIFF files (and ground-truth masks) into :class:`Scan` objects, one scan
or a whole folder at a time; the file-naming rules are in ``docs/data.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import logging
import os
import re
import stat
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Literal

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from xadt.colour import false_colour
from xadt.errors import XadtError

Encoding = Literal["rgb", "grey", "dual-energy"]
"""How a view's channels were encoded: false-colour RGB, grey, or dual-energy (high, low)."""

_VIEW_DTYPES = (np.uint8, np.uint16, np.float32)
_CHANNELS = {"rgb": 3, "grey": 1, "dual-energy": 2}


@dataclass(frozen=True)
class Scan:
    """One scan: an id, its views and where they came from.

    Attributes:
        id: unique name of the scan (the file stem without view suffixes).
        views: one (H, W, C) array per view, uint8, uint16 or float32, never converted on read.
        encoding: how the channels were encoded; C is 3 for rgb, 1 for grey, 2 for dual-energy.
        sources: the files the views were read from (empty for scans made in memory).
        masks: optional ground truth, one (H, W) bool array per view (None where a view has none).
    """

    id: str
    views: Sequence[np.ndarray]
    encoding: Encoding = "rgb"
    sources: Sequence[Path] = ()
    masks: Sequence[np.ndarray | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.views:
            msg = f"scan {self.id!r} has no views"
            raise ValueError(msg)
        if self.encoding not in _CHANNELS:
            msg = f"scan {self.id!r}: unknown encoding {self.encoding!r}"
            raise ValueError(msg)
        for k, view in enumerate(self.views):
            if view.ndim != 3 or view.dtype.type not in _VIEW_DTYPES:
                msg = (
                    f"scan {self.id!r} view {k}: expected an (H, W, C) uint8, uint16 or float32 "
                    f"array, got shape {view.shape} dtype {view.dtype}"
                )
                raise ValueError(msg)
            if view.shape[2] != _CHANNELS[self.encoding]:
                msg = (
                    f"scan {self.id!r} view {k}: {self.encoding} views have "
                    f"{_CHANNELS[self.encoding]} channels, got {view.shape[2]}"
                )
                raise ValueError(msg)
        if self.masks is not None:
            if len(self.masks) != len(self.views):
                msg = f"scan {self.id!r}: {len(self.masks)} masks for {len(self.views)} views"
                raise ValueError(msg)
            for k, (mask, view) in enumerate(zip(self.masks, self.views, strict=True)):
                if mask is not None and mask.shape != view.shape[:2]:
                    msg = (
                        f"scan {self.id!r} view {k}: mask shape {mask.shape} does not match "
                        f"the view's {view.shape[:2]}"
                    )
                    raise ValueError(msg)


# ---------------------------------------------------------------------------------------------
# Reading

DEFAULT_MAX_PIXELS = 100_000_000
"""Largest image (height x width, per view or page) read by default; bigger files are refused."""

DEFAULT_MAX_BYTES = 512 * 2**20
"""Largest decoded size of one scan by default, in bytes: height x width x samples x bytes per
sample, summed over its pages and files (masks included), checked from the headers before any
pixel is decoded."""

MAX_TIFF_PAGES = 1024
"""Most pages (IFDs) a TIFF file may have; the chain of IFDs is walked before any is parsed."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File extensions (any case) that :func:`iter_scans` treats as images; others are ignored."""

PathLike = str | os.PathLike[str]

_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_STEM = re.compile(r"^(?P<id>.+?)(?:_v(?P<view>\d+))?(?:_(?P<energy>high|low))?$", re.IGNORECASE)
_MASK_STEM = re.compile(r"^(?P<id>.+?)(?:_v(?P<view>\d+))?$", re.IGNORECASE)


class ScanReadError(XadtError):
    """A scan or mask file that cannot be used; the message is ``"<file>: <what is wrong>"``.

    The file is shown with :func:`printable`, so the message is one line whatever its name.

    Attributes:
        path: the file at fault.
        reason: what is wrong with it, without the file name.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{printable(path)}: {reason}")
        self.path = path
        self.reason = reason


class ScanSkippedWarning(UserWarning):
    """A scan in a folder could not be read and was skipped; the message names the file."""


def full_scale(dtype: np.dtype | type) -> float:
    """The value of white (full transmission) for a view dtype: 255, 65535 or 1.0 for floats.

    Raises:
        ValueError: for a dtype that is not uint8, uint16 or floating point.
    """
    dt = np.dtype(dtype)
    if dt in _FULL_SCALE:
        return _FULL_SCALE[dt]
    if dt.kind == "f":
        return 1.0
    msg = f"expected a uint8, uint16 or float view dtype, got {dt}"
    raise ValueError(msg)


def read_scan(
    paths: PathLike | Sequence[PathLike],
    *,
    masks_dir: PathLike | None = None,
    energies: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Scan:
    """Read the file or files of one scan.

    The file names say how the files form a scan (``docs/data.md``): ``<id>.<ext>`` is a one-view
    scan (a multi-page TIFF gives one view per page), ``<id>_v<k>.<ext>`` is view ``k``, and
    ``<id>_high.<ext>`` / ``<id>_low.<ext>`` (or ``<id>_v<k>_high`` / ``_low``) are the two grey
    energy images of a dual-energy view. Pixels keep their dtype (uint8, uint16 or float32).

    Args:
        paths: the scan's files, all with the same scan id.
        masks_dir: a folder of ground-truth masks named ``<id>.<ext>`` or ``<id>_v<k>.<ext>``
            (non-zero = anomalous); views without a mask file get ``None``.
        energies: where a view has both an image and a ``_high``/``_low`` pair, read the pair
            (encoding ``"dual-energy"``) instead of the image.
        max_pixels: refuse any image or page larger than this many pixels (height x width)
            before decoding it.
        max_bytes: refuse a scan whose files would decode to more than this many bytes in all
            (height x width x samples x bytes per sample, over every page, view and mask),
            before decoding them.

    Returns:
        The scan, with ``sources`` the files read.

    Raises:
        ScanReadError: (an ``XadtError``) a file is missing, not a regular file (a FIFO, a
            device, a link loop), badly named, unreadable, damaged, empty, too large for the
            limits, in an unsupported layout, or does not fit the naming rules; or a mask does
            not match its view. Whatever a decoder raises becomes this one-line error; the
            message names the file (see ``docs/data.md``, "Bad input").
    """
    max_pixels = _check_limit("max_pixels", max_pixels)
    max_bytes = _check_limit("max_bytes", max_bytes)
    items = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not items:
        msg = "read_scan: no files given"
        raise XadtError(msg)
    for path in items:
        if not os.path.lexists(path):
            raise ScanReadError(path, "no such file")
        problem = _name_problem(path.name)
        if problem is not None:
            raise ScanReadError(path, problem)
    groups = _group((item, "") for item in items)
    if len(groups) > 1:
        first, second = (g.files()[0] for g in list(groups.values())[:2])
        raise ScanReadError(
            first, f"belongs to a different scan than {second.name}; pass one scan's files"
        )
    group = next(iter(groups.values()))
    mask_files: dict[int | None, list[Path]] = {}
    if masks_dir is not None:
        mask_files = _index_masks(_require_folder(masks_dir, "mask")).get(group.id, {})
    return _read_group(group, mask_files, energies=energies, budget=_Budget(max_pixels, max_bytes))


def group_files(files: Iterable[PathLike]) -> dict[str, list[Path]]:
    """Files grouped into scans by the ids their names give (``docs/data.md``), sorted by id."""
    groups = _group((Path(f), "") for f in files)
    return {scan_id: group.files() for scan_id, group in groups.items()}


def iter_scans(
    folder: PathLike | Sequence[PathLike],
    *,
    recursive: bool = False,
    masks: PathLike | None = None,
    energies: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ScanFolder:
    """The scans of a folder (or of files, folders and glob patterns), read lazily one at a
    time; see :class:`ScanFolder`."""
    return ScanFolder(
        folder,
        recursive=recursive,
        masks=masks,
        energies=energies,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
    )


def as_scan_folder(scans: PathLike | Sequence[PathLike] | ScanFolder) -> ScanFolder:
    """``scans`` itself when it is a :class:`ScanFolder`, else the scans of that folder (or of
    those files, folders and patterns) with the default settings."""
    return scans if isinstance(scans, ScanFolder) else ScanFolder(scans)


class ScanFolder:
    """The scans in one folder (or in several files, folders and glob patterns), grouped by scan
    id and read lazily.

    Iterating yields one :class:`Scan` at a time, in sorted id order. A scan that cannot be read
    is skipped with a :class:`ScanSkippedWarning` naming the file and the reason, and recorded in
    ``skipped``, so the caller can finish the folder and then fail with :meth:`raise_if_skipped`.
    Every folder entry with an image extension is either read or skipped, never dropped: a
    name that cannot be a scan id (invalid UTF-8, a newline) is skipped first, and a symbolic
    link loop, a dangling link, a FIFO, a device or a folder skips the scan it belongs to.

    Args:
        folder: the folder of scan files (``IMAGE_EXTENSIONS``; hidden files are ignored), or a
            list of image files, folders and glob patterns (``scans/*.png``, ``**`` with
            ``recursive``).
        recursive: also read the subfolders of each folder; a scan's id is then its path
            relative to that folder (``day1/bag17``), so equal names in two subfolders stay
            two scans.
        masks: optional folder of ground-truth masks, named like the scans (with ``recursive``,
            in the same subfolders).
        energies: read ``_high``/``_low`` pairs instead of an image of the same view.
        max_pixels: largest image or page read, in pixels.
        max_bytes: largest scan read, in bytes of decoded data (see :func:`read_scan`).

    Attributes:
        folder: the scan folder (with several inputs: the folder that holds them all).
        masks: the mask folder, or None.
        skipped: ``(file, reason)`` for each scan or file skipped during the latest iteration;
            show a file with :func:`printable`, its name may hold any byte but ``/``.
        n_read: scans yielded during the latest iteration.

    Raises:
        XadtError: the folder (or mask folder) is missing, not a folder or cannot be listed,
            or holds no images; a named file is missing or not an image; a pattern matches
            nothing.
    """

    def __init__(
        self,
        folder: PathLike | Sequence[PathLike],
        *,
        recursive: bool = False,
        masks: PathLike | None = None,
        energies: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        sources = [folder] if isinstance(folder, str | os.PathLike) else list(folder)
        if not sources:
            msg = "no scans given: name a folder, files or a glob pattern"
            raise XadtError(msg)
        self.masks = None if masks is None else _require_folder(masks, "mask")
        self.energies = energies
        self.max_pixels = _check_limit("max_pixels", max_pixels)
        self.max_bytes = _check_limit("max_bytes", max_bytes)
        files: list[tuple[Path, str]] = []
        self._misnamed: list[tuple[Path, str]] = []
        roots = []
        for source in sources:
            found, misnamed, root = _collect(Path(source), recursive=recursive)
            files += found
            self._misnamed += misnamed
            roots.append(root)
        self.folder = roots[0] if len(roots) == 1 else Path(os.path.commonpath(roots))
        if not files and not self._misnamed:
            where = "this folder" if len(sources) == 1 else "these inputs"
            msg = f"{self.folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {where}"
            nested = None if recursive else _subfolder_with_images(self.folder)
            if nested is not None:
                msg += (
                    f"; its subfolder {printable(nested.relative_to(self.folder))}/ holds some: "
                    "name the subfolder, or pass --recursive to read every subfolder"
                )
            raise XadtError(msg)
        self._groups = _group(files)
        self._masks = {} if self.masks is None else _index_masks(self.masks, recursive)
        self.skipped: list[tuple[Path, str]] = []
        self.n_read = 0

    @property
    def ids(self) -> list[str]:
        """The scan ids found, sorted; known from the file names alone."""
        return list(self._groups)

    def __len__(self) -> int:
        """Scans to visit: one per scan id, plus one per file whose name cannot be an id."""
        return len(self._groups) + len(self._misnamed)

    def __repr__(self) -> str:
        return f"ScanFolder({str(self.folder)!r}, {len(self)} scans)"

    def __iter__(self) -> Iterator[Scan]:
        self.skipped = []
        self.n_read = 0
        for path, reason in self._misnamed:
            self.skipped.append((path, reason))
            warnings.warn(
                f"skipped a file: {ScanReadError(path, reason)}", ScanSkippedWarning, stacklevel=2
            )
        yield from self.read(self.ids)

    def read(self, ids: Iterable[str]) -> Iterator[Scan]:
        """Read the scans with ``ids``, in that order, one at a time.

        An unreadable scan is skipped as in iteration and added to ``skipped`` unless it is
        already there (a training run reads its folder once per epoch).

        Raises:
            KeyError: an id that is not in this folder.
        """
        for scan_id in ids:
            group = self._groups[scan_id]
            try:
                scan = _read_group(
                    group,
                    self._masks.get(scan_id, {}),
                    energies=self.energies,
                    budget=_Budget(self.max_pixels, self.max_bytes),
                )
            except ScanReadError as exc:
                if (exc.path, exc.reason) not in self.skipped:
                    self.skipped.append((exc.path, exc.reason))
                warnings.warn(f"skipped scan {scan_id!r}: {exc}", ScanSkippedWarning, stacklevel=2)
                continue
            self.n_read += 1
            yield scan

    def summary(self) -> str:
        """One line on the latest iteration: how many scans were read or skipped, and why."""
        total = len(self)
        if not self.skipped:
            return f"{self.n_read} of {total} scans read, none skipped"
        shown = "; ".join(f"{printable(path.name)}: {reason}" for path, reason in self.skipped[:3])
        more = len(self.skipped) - 3
        tail = f"; and {more} more" if more > 0 else ""
        return f"{len(self.skipped)} of {total} scans skipped: {shown}{tail}"

    def raise_if_skipped(self) -> None:
        """Raise ``XadtError`` with :meth:`summary` if the latest iteration skipped any scan."""
        if self.skipped:
            msg = f"{self.folder}: {self.summary()}"
            raise XadtError(msg)


def to_rgb(scan: Scan) -> Scan:
    """The scan with RGB views, for backbones that need three channels.

    RGB scans are returned as they are. Grey views are repeated into three channels (dtype kept).
    Dual-energy views are scaled to transmissions in (0, 1] (uint16 by 65535, uint8 by 255) and
    rendered by ``xadt.colour.false_colour(high, low)``, giving uint8 views. Masks and
    sources are kept.
    """
    if scan.encoding == "rgb":
        return scan
    if scan.encoding == "grey":
        views = [np.repeat(view, 3, axis=2) for view in scan.views]
    else:
        views = [
            false_colour(_transmission(view[..., 0]), _transmission(view[..., 1]))
            for view in scan.views
        ]
    return dataclasses.replace(scan, views=views, encoding="rgb")


def _transmission(channel: np.ndarray) -> np.ndarray:
    scaled = channel.astype(np.float32) / np.float32(full_scale(channel.dtype))
    return np.clip(scaled, np.float32(1 / 65535), np.float32(1.0))


# ---------------------------------------------------------------------------------------------
# Folders and file names


def _check_limit(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        msg = f"The '{name}' option must be an integer >= 1. Got {value!r} instead."
        raise XadtError(msg)
    return int(value)


def _require_folder(folder: PathLike, what: str) -> Path:
    path = Path(folder)
    if not path.exists():
        msg = f"{path}: {what} folder does not exist"
        raise XadtError(msg)
    if not path.is_dir():
        msg = f"{path}: expected a {what} folder, got a file"
        raise XadtError(msg)
    return path


_GLOB_CHARS = frozenset("*?[")


def _collect(
    source: Path, *, recursive: bool
) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]], Path]:
    """The image files of one input, each with the id prefix of its subfolder, the
    ``(path, reason)`` of those whose names cannot be scan ids, and the folder that holds them.

    A folder gives its images (and, with ``recursive``, its subfolders' images, with the
    subfolder path as id prefix); a file gives itself; a pattern gives the files it matches.
    """
    if source.is_dir():
        files, misnamed = _image_files(source, recursive=recursive)
        return files, misnamed, source
    if os.path.lexists(source):
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            msg = f"{printable(source)}: not an image file ({', '.join(IMAGE_EXTENSIONS)})"
            raise XadtError(msg)
        return _named([source]), _misnamed([source]), source.parent
    if not _GLOB_CHARS & set(str(source)):
        msg = f"{printable(source)}: no such file or folder"
        raise XadtError(msg)
    # glob.glob, not Path.glob: the pattern may be absolute and hold wildcards in any part.
    matches = sorted(Path(m) for m in glob.glob(str(source), recursive=recursive))  # noqa: PTH207
    images = [m for m in matches if m.suffix.lower() in IMAGE_EXTENSIONS and not m.is_dir()]
    if not images:
        msg = f"{printable(source)}: no image file matches this pattern"
        raise XadtError(msg)
    root = Path(os.path.commonpath([m.parent for m in images]))
    return _named(images), _misnamed(images), root


def _named(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """``(path, "")`` for each path whose name can be a scan id (no id prefix)."""
    return [(p, "") for p in paths if _name_problem(p.name) is None]


def _misnamed(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """``(path, reason)`` for each path whose name cannot be a scan id."""
    return [(p, r) for p in paths if (r := _name_problem(p.name)) is not None]


def _subfolder_with_images(folder: Path) -> Path | None:
    """The first subfolder of ``folder`` (at any depth) that holds image files, or None."""
    with contextlib.suppress(XadtError):
        for path, _prefix in _image_files(folder, recursive=True)[0]:
            return path.parent
    return None


def _image_files(
    folder: Path, *, recursive: bool = False
) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """The entries with an image extension (of any type: reading tells what is wrong) with
    their id prefix (``sub/dir/`` under ``folder`` with ``recursive``, else ``""``), and
    ``(path, reason)`` for those whose names cannot be scan ids. Hidden files and folders are
    ignored; links to folders are not followed (no loops)."""
    files: list[tuple[Path, str]] = []
    misnamed: list[tuple[Path, str]] = []
    pending = [(folder, "")]
    while pending:
        current, prefix = pending.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError as exc:
            msg = f"{printable(current)}: cannot list the folder ({exc.strerror or exc})"
            raise XadtError(msg) from None
        for path in entries:
            if path.name.startswith("."):
                continue
            problem = _name_problem(path.name)
            if recursive and path.is_dir() and not path.is_symlink():
                if problem is None:
                    pending.append((path, f"{prefix}{path.name}/"))
                else:
                    misnamed.append((path, f"folder name: {problem}"))
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if problem is None:
                files.append((path, prefix))
            else:
                misnamed.append((path, problem))
    return files, misnamed


@dataclass
class _Group:
    """The files of one scan id, by (view key, role); view key None = no ``_v<k>`` suffix."""

    id: str
    slots: dict[tuple[int | None, str], list[Path]] = field(default_factory=dict)

    def files(self) -> list[Path]:
        return [p for paths in self.slots.values() for p in paths]

    def slot(self, key: int | None, role: str) -> Path | None:
        paths = self.slots.get((key, role))
        return paths[0] if paths else None


def _group(files: Iterable[tuple[Path, str]]) -> dict[str, _Group]:
    """Files grouped into scans by id: the id prefix (a subfolder path, or "") and the stem
    without its ``_v<k>`` and ``_high``/``_low`` suffixes."""
    groups: dict[str, _Group] = {}
    for path, prefix in files:
        m = _STEM.match(path.stem)
        if m is None:  # only an empty stem fails to match
            continue
        view = None if m["view"] is None else int(m["view"])
        role = (m["energy"] or "image").lower()
        scan_id = prefix + m["id"]
        group = groups.setdefault(scan_id, _Group(scan_id))
        group.slots.setdefault((view, role), []).append(path)
    return dict(sorted(groups.items()))


def _index_masks(folder: Path, recursive: bool = False) -> dict[str, dict[int | None, list[Path]]]:
    index: dict[str, dict[int | None, list[Path]]] = {}
    for path, prefix in _image_files(folder, recursive=recursive)[0]:
        m = _MASK_STEM.match(path.stem)
        if m is None:
            continue
        view = None if m["view"] is None else int(m["view"])
        index.setdefault(prefix + m["id"], {}).setdefault(view, []).append(path)
    return index


def _plan(group: _Group, energies: bool) -> list[tuple[Path, ...]]:
    """Which files make each view: ``(image,)`` or ``(high, low)``, in view order."""
    for paths in group.slots.values():
        if len(paths) > 1:
            raise ScanReadError(
                paths[1], f"same scan view as {paths[0].name}; keep one file per view"
            )
    keys = {key for key, _ in group.slots}
    if None in keys and len(keys) > 1:
        plain = next(p for (k, _), ps in group.slots.items() if k is None for p in ps)
        other = next(p for (k, _), ps in group.slots.items() if k is not None for p in ps)
        raise ScanReadError(
            plain,
            f"scan {group.id!r} also has per-view files such as {other.name}; "
            f"name every view {group.id}_v<k>",
        )
    order: list[int | None] = [None]
    if keys != {None}:
        numbered = sorted(k for k in keys if k is not None)
        # numbered is sorted and unique: the first gap is where the k-th number is not k
        missing = next((k for k, n in enumerate(numbered) if n != k), None)
        if missing is not None:
            raise ScanReadError(
                group.files()[0],
                f"scan {group.id!r} has no view {missing} (views are numbered _v0, _v1, ...)",
            )
        order = list(numbered)
    plan: list[tuple[Path, ...]] = []
    for key in order:
        image, high, low = (group.slot(key, role) for role in ("image", "high", "low"))
        if high is not None and low is not None and (energies or image is None):
            plan.append((high, low))
        elif image is not None and not energies:
            plan.append((image,))
        elif high is not None or low is not None:
            present, wanted = (high, "low") if high is not None else (low, "high")
            assert present is not None
            stem = present.stem[: -len("_high" if wanted == "low" else "_low")]
            raise ScanReadError(present, f"has no matching {stem}_{wanted} energy image")
        else:
            assert image is not None
            raise ScanReadError(
                image, "energies were requested but this view has no _high/_low energy pair"
            )
    return plan


# ---------------------------------------------------------------------------------------------
# Scans from files


def _read_group(
    group: _Group,
    mask_files: dict[int | None, list[Path]],
    *,
    energies: bool,
    budget: _Budget,
) -> Scan:
    plan = _plan(group, energies)
    views: list[np.ndarray] = []
    view_files: list[Path] = []
    encodings: list[Encoding] = []
    for entry in plan:
        if len(entry) == 1:
            pages = _read_image(entry[0], budget)
            if len(pages) > 1 and len(plan) > 1:
                raise ScanReadError(
                    entry[0],
                    f"has {len(pages)} pages but is one view of a multi-view scan; "
                    "a multi-page TIFF must be its scan's only file",
                )
            for page in pages:
                views.append(page)
                view_files.append(entry[0])
                encodings.append("grey" if page.shape[2] == 1 else "rgb")
        else:
            views.append(_read_energies(*entry, budget=budget))
            view_files.append(entry[0])
            encodings.append("dual-energy")
    for k, encoding in enumerate(encodings):
        if encoding != encodings[0]:
            raise ScanReadError(
                view_files[k],
                f"view {k} of scan {group.id!r} is {encoding} but view 0 "
                f"({view_files[0].name}) is {encodings[0]}; all views of a scan share one encoding",
            )
    masks = _read_masks(group.id, mask_files, views, view_files, budget)
    sources = tuple(dict.fromkeys(p for entry in plan for p in entry))
    return Scan(id=group.id, views=views, encoding=encodings[0], sources=sources, masks=masks)


def _read_energies(high: Path, low: Path, *, budget: _Budget) -> np.ndarray:
    arrays = []
    for path in (high, low):
        pages = _read_image(path, budget)
        if len(pages) > 1:
            raise ScanReadError(path, f"energy image has {len(pages)} pages; expected one")
        if pages[0].shape[2] != 1:
            raise ScanReadError(path, "energy image is in colour; expected a grey image")
        arrays.append(pages[0])
    if arrays[0].shape != arrays[1].shape or arrays[0].dtype != arrays[1].dtype:
        raise ScanReadError(
            low,
            f"is {_describe(arrays[1])} but its high-energy image {high.name} is "
            f"{_describe(arrays[0])}; the pair must match",
        )
    return np.concatenate(arrays, axis=2)


def _read_masks(
    scan_id: str,
    mask_files: dict[int | None, list[Path]],
    views: list[np.ndarray],
    view_files: list[Path],
    budget: _Budget,
) -> list[np.ndarray | None] | None:
    if not mask_files:
        return None
    masks: list[np.ndarray | None] = [None] * len(views)
    taken: dict[int, Path] = {}
    for key, paths in sorted(mask_files.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
        path = paths[0]
        if len(paths) > 1:
            raise ScanReadError(paths[1], f"same mask as {path.name}; keep one mask per view")
        if key is None and len(views) > 1:
            raise ScanReadError(
                path,
                f"one mask for scan {scan_id!r}, which has {len(views)} views; "
                f"name the masks {scan_id}_v<k>",
            )
        k = 0 if key is None else key
        if k >= len(views):
            raise ScanReadError(
                path, f"mask for view {k}, but scan {scan_id!r} has {len(views)} view(s)"
            )
        if k in taken:
            raise ScanReadError(path, f"same mask as {taken[k].name}; keep one mask per view")
        taken[k] = path
        pages = _read_image(path, budget)
        if len(pages) > 1:
            raise ScanReadError(path, f"mask has {len(pages)} pages; expected one")
        mask, view = pages[0], views[k]
        if mask.shape[:2] != view.shape[:2]:
            raise ScanReadError(
                path,
                f"mask is {_hw(mask)} pixels but its view ({view_files[k].name}) is {_hw(view)}",
            )
        masks[k] = np.any(mask != 0, axis=2)
    return masks


def _hw(arr: np.ndarray) -> str:
    return f"{arr.shape[0]}x{arr.shape[1]}"


def _describe(arr: np.ndarray) -> str:
    return f"{_hw(arr)} {arr.dtype}"


# ---------------------------------------------------------------------------------------------
# Images from files


@dataclass
class _Budget:
    """The limits of one scan as its files are read: pixels per page, decoded bytes in all."""

    max_pixels: int
    max_bytes: int
    used: int = 0

    def check_page(self, path: Path, height: int, width: int) -> None:
        if height <= 0 or width <= 0:
            raise ScanReadError(path, f"image has zero size ({height}x{width} pixels)")
        if height * width > self.max_pixels:
            raise ScanReadError(
                path,
                f"image is {height}x{width} = {height * width:,} pixels, over the limit of "
                f"{self.max_pixels:,} (--max-pixels); raise it if the file is trusted",
            )

    def charge(self, path: Path, nbytes: int, detail: str) -> None:
        """Count ``nbytes`` of decoded data against the scan's limit, before decoding them."""
        if self.used + nbytes > self.max_bytes:
            others = f"; the scan's other files already take {self.used:,}" if self.used else ""
            raise ScanReadError(
                path,
                f"decoded, it would take {nbytes:,} bytes ({detail}), over the limit of "
                f"{self.max_bytes:,} bytes per scan (--max-scan-bytes){others}; raise it if "
                "the file is trusted",
            )
        self.used += nbytes


def _layout(height: int, width: int, samples: int, itemsize: int, pages: int = 1) -> str:
    text = f"{height}x{width} pixels x {samples} samples x {itemsize} bytes"
    return f"{text} x {pages} pages" if pages > 1 else text


def _read_image(path: Path, budget: _Budget) -> list[np.ndarray]:
    """The pages of one image file as (H, W, C) arrays, C = 1 (grey) or 3 (RGB)."""
    with _open(path) as fh, _Quiet() as quiet:
        try:
            return _decode(fh, path, budget, quiet)
        except ScanReadError:
            raise
        except MemoryError:
            failure = None
        except Exception as exc:  # decoders fail on hostile data in ways no list foresees
            failure = exc
    if failure is None:
        raise ScanReadError(path, "not enough memory to decode it (lower max_bytes to refuse it)")
    # Outside the quiet block, so that what the C libraries printed is known.
    detail = "; ".join([*quiet.log[:1], *quiet.printed[:1], _why(failure)])
    kind = "TIFF" if quiet.tiff else "image"
    raise ScanReadError(path, f"damaged or truncated {kind} ({detail})")


def _open(path: Path) -> BinaryIO:
    """A regular file opened for reading; anything else is refused without blocking on it."""
    problem = _not_a_file(path)
    if problem is not None:
        raise ScanReadError(path, problem)
    try:
        # O_NONBLOCK: a FIFO swapped in since the check must not block the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ScanReadError(path, f"cannot open file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ScanReadError(path, "was replaced by something that is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file (following links), or None when it is one."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if not path.is_symlink():
            return "no such file"
        try:
            target = printable(path.readlink())
        except OSError:
            target = "?"
        return f"is a dangling symbolic link (to {target})"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (it never reaches a file)"
        return f"cannot open file ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    return f"is {kind}, not a regular file"


def _name_problem(name: str) -> str | None:
    """Why a file name cannot give a scan id, or None when it can."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8; rename the file"
    if any(not ch.isprintable() and ch != " " for ch in name):
        return "file name contains a control character (such as a newline); rename the file"
    return None


def printable(path: PathLike | str | bytes) -> str:
    """A file name shown on one line: invalid UTF-8 bytes as ``\\xff``, controls as ``\\n``.

    Use it wherever a path goes into a message or a results file; ``ScanReadError`` does.
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


class _Quiet:
    """Keep decoder chatter off the user's terminal while one file is decoded.

    Python warnings and numpy floating-point warnings are ignored; tifffile's log lines are
    kept in ``log`` (the reader treats them as errors); what C libraries (libtiff, libjpeg)
    print on file descriptor 2 goes to a temporary file and ends in ``printed``. The
    redirection is process-wide for the duration, so decode in one thread at a time.
    """

    def __init__(self) -> None:
        self.log: list[str] = []
        self.printed: list[str] = []
        self.tiff = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Quiet:
        stack = self._stack
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(np.errstate(all="ignore"))
        logger = logging.getLogger("tifffile")
        logger.addFilter(self._keep)
        stack.callback(logger.removeFilter, self._keep)
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        try:
            sink = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no descriptor 2 (nothing reaches the user) or no temporary folder
            return self
        os.dup2(sink.fileno(), 2)
        stack.callback(self._restore, saved, sink)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _keep(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.log.append(_first_line(record.getMessage()))
        return False

    def _restore(self, saved: int, sink: IO[bytes]) -> None:
        os.dup2(saved, 2)
        os.close(saved)
        sink.seek(0)
        text = sink.read(4096).decode("utf-8", "replace")
        self.printed.extend(line.strip() for line in text.splitlines() if line.strip())


def _decode(fh: BinaryIO, path: Path, budget: _Budget, quiet: _Quiet) -> list[np.ndarray]:
    head = fh.read(32)
    if not head:
        raise ScanReadError(path, "file is empty (0 bytes)")
    size = os.fstat(fh.fileno()).st_size
    if head[:4] in _TIFF_MAGIC:
        quiet.tiff = True
        return _read_tiff(fh, path, size, budget, quiet.log)
    if _is_16bit_colour_png(head):
        # Pillow decodes 16-bit colour PNG to 8 bits; refuse rather than lose precision silently.
        raise ScanReadError(
            path, "16-bit colour PNG is not supported (it would lose precision); save it as TIFF"
        )
    return _read_pillow(fh, path, budget, pages=(0,), claimed=_claimed_format(head), size=size)


def _claimed_format(head: bytes) -> str | None:
    """The format a file's first bytes announce, for messages about files Pillow cannot open."""
    magics = {_PNG_MAGIC: "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP", b"GIF8": "GIF"}
    for magic, name in magics.items():
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def _is_16bit_colour_png(head: bytes) -> bool:
    # IHDR starts at byte 8: length, type, width, height, then bit depth (24) and colour type (25).
    return (
        len(head) >= 26
        and head.startswith(_PNG_MAGIC)
        and head[12:16] == b"IHDR"
        and head[24] == 16
        and head[25] in (2, 4, 6)  # RGB, grey + alpha, RGBA
    )


def _read_pillow(
    fh: BinaryIO,
    path: Path,
    budget: _Budget | None,
    *,
    pages: Sequence[int],
    claimed: str | None,
    size: int,
) -> list[np.ndarray]:
    """Decode with Pillow; ``budget`` None means the pages were already counted against it."""
    fh.seek(0)
    try:
        im = Image.open(fh, formats=("PNG", "JPEG", "BMP", "TIFF"))
    except UnidentifiedImageError:
        if claimed in ("PNG", "JPEG", "BMP", "TIFF"):
            reason = f"damaged {claimed} file (its header cannot be decoded)"
        elif claimed is not None:
            reason = f"{claimed} image, not a PNG, JPEG, BMP or TIFF image"
        else:
            reason = "not a PNG, JPEG, BMP or TIFF image"
        raise ScanReadError(path, reason) from None
    except Image.DecompressionBombError as exc:
        raise ScanReadError(path, f"image too large ({exc})") from None
    with im:
        if budget is not None:
            _charge_pillow(im, path, budget, pages)
        if im.format == "PNG":
            _check_png(fh, path, size)
        elif im.format == "JPEG":
            _check_jpeg_length(fh, path, im.height, im.width, size)
        elif im.format == "BMP":
            _check_bmp_palette(fh, path)
        out = []
        for index in pages:
            im.seek(index)
            im.load()
            arr = _pillow_array(im, path)
            if im.format == "JPEG":
                _check_jpeg_fill(arr, path)
            out.append(_as_view(arr, path))
    return out


def _charge_pillow(im: Image.Image, path: Path, budget: _Budget, pages: Sequence[int]) -> None:
    total = 0
    for index in pages:
        im.seek(index)
        budget.check_page(path, im.height, im.width)
        # Palette images are expanded to RGB; other modes keep their bands.
        samples = 3 if im.mode in ("P", "PA") else len(im.getbands())
        itemsize = 2 if im.mode.startswith("I;16") else 4 if im.mode in ("I", "F") else 1
        total += im.height * im.width * samples * itemsize
    budget.charge(path, total, _layout(im.height, im.width, samples, itemsize, len(pages)))


def _pillow_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "I", "F", "RGB") or mode.startswith("I;16"):
        return np.array(im)
    if mode == "1":
        return np.array(im.convert("L"))
    if mode in ("LA", "La"):
        return np.array(im.getchannel(0))
    if mode in ("P", "PA"):
        index = np.asarray(im.getchannel(0) if mode == "PA" else im)
        colours = len(im.getpalette() or ()) // 3
        if index.size and int(index.max()) >= colours:
            raise ScanReadError(
                path,
                f"palette has {colours} colours but pixels use colour {int(index.max())}; "
                "the palette is damaged or cut short",
            )
    return np.array(im.convert("RGB"))  # palette, RGBA, CMYK, YCbCr, ...


def _check_bmp_palette(fh: BinaryIO, path: Path) -> None:
    """Refuse a 4- or 8-bit BMP whose pixels use colours beyond its palette.

    Pillow reads a palette that is a grey ramp as grey levels, so the index check on palette
    images does not see such files; the indices are checked in the file instead.
    """
    fh.seek(0)
    head = fh.read(50)
    if len(head) < 50 or struct.unpack_from("<I", head, 14)[0] < 40:
        return  # an OS/2 header: no colour count
    (offset,) = struct.unpack_from("<I", head, 10)
    width, height = struct.unpack_from("<ii", head, 18)
    bits, compression = struct.unpack_from("<HI", head, 28)
    colours = struct.unpack_from("<I", head, 46)[0] or 1 << bits
    if bits not in (4, 8) or compression != 0 or colours >= 1 << bits or width <= 0:
        return
    stride = (width * bits + 31) // 32 * 4
    fh.seek(offset)
    data = np.frombuffer(fh.read(stride * abs(height)), np.uint8)
    if data.size < stride * abs(height):
        return  # truncated: Pillow says so
    rows = data.reshape(abs(height), stride)[:, : (width * bits + 7) // 8]
    if bits == 4:
        high = int((rows >> 4).max(initial=0))
        low = rows & 15 if width % 2 == 0 else rows[:, :-1] & 15
        used = max(high, int(low.max(initial=0)))
    else:
        used = int(rows.max(initial=0))
    if used >= colours:
        raise ScanReadError(
            path,
            f"palette has {colours} colours but pixels use colour {used}; "
            "the palette is damaged or cut short",
        )


def _check_png(fh: BinaryIO, path: Path, size: int) -> None:
    """Walk a PNG's chunks: every CRC must match, IEND must come, and the image data must hold
    exactly the rows IHDR announces (Pillow fills missing rows with black and says nothing)."""
    fh.seek(len(_PNG_MAGIC))
    pos = len(_PNG_MAGIC)
    expected: int | None = None
    inflater = zlib.decompressobj()
    produced = 0
    broken: zlib.error | None = None
    while True:
        header = fh.read(8)
        if len(header) < 8:
            raise ScanReadError(path, "damaged or truncated image (PNG file ends before IEND)")
        length, kind = struct.unpack(">I4s", header)
        name = kind.decode("latin-1")
        if length > size - pos - 12:
            raise ScanReadError(
                path, f"damaged or truncated image (PNG {name!r} chunk runs past the end)"
            )
        crc = zlib.crc32(kind)
        left = length
        while left:
            piece = fh.read(min(left, 1 << 20))
            left -= len(piece)
            crc = zlib.crc32(piece, crc)
            if kind == b"IHDR" and length == 13:
                expected = _png_data_size(piece)
            elif kind == b"IDAT" and not inflater.eof and broken is None:
                try:
                    while piece and not inflater.eof:
                        produced += len(inflater.decompress(piece, 1 << 20))
                        piece = inflater.unconsumed_tail
                except zlib.error as exc:
                    broken = exc  # reported after the CRC, which says more
        if fh.read(4) != struct.pack(">I", crc):
            raise ScanReadError(
                path, f"damaged or truncated image (PNG {name!r} chunk at byte {pos}: bad CRC)"
            )
        if broken is not None:
            raise ScanReadError(path, f"damaged or truncated image (PNG data: {_why(broken)})")
        pos += 12 + length
        if kind == b"IEND":
            break
    if expected is not None and (produced != expected or not inflater.eof):
        raise ScanReadError(
            path,
            f"damaged or truncated image (PNG image data holds {produced:,} of the "
            f"{expected:,} bytes its size needs)",
        )


def _png_data_size(ihdr: bytes) -> int | None:
    """Bytes of filtered rows a PNG of this IHDR has, or None for a header Pillow will refuse."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None
    bits = depth * channels
    if not interlace:
        return height * (1 + (width * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        cols = max(0, (width - x0 + dx - 1) // dx)
        rows = max(0, (height - y0 + dy - 1) // dy)
        if cols and rows:
            total += rows * (1 + (cols * bits + 7) // 8)
    return total


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
_ADAM7 += ((0, 1, 1, 2),)


def _check_jpeg_length(fh: BinaryIO, path: Path, height: int, width: int, size: int) -> None:
    """Refuse a JPEG too short for the size it claims, before decoding it.

    With Huffman coding every 8x8 block of the first component costs at least one bit, so a
    3 KB file cannot hold 10000x10000 pixels; libjpeg would fill the rest with grey.
    """
    if _jpeg_frame_marker(fh) in _JPEG_ARITHMETIC:
        return
    blocks = ((height + 7) // 8) * ((width + 7) // 8)
    needed = (blocks + 7) // 8
    if size < needed:
        raise ScanReadError(
            path,
            f"JPEG header claims {height}x{width} pixels, but its {size:,} bytes cannot hold "
            f"them (at least {needed:,} are needed); the file is cut short or forged",
        )


_JPEG_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_frame_marker(fh: BinaryIO) -> int | None:
    """The SOF marker of a JPEG (0xC0 baseline, 0xC2 progressive, ...), or None if not found."""
    fh.seek(2)
    while True:
        byte = fh.read(1)
        while byte == b"\xff":
            byte = fh.read(1)
        if not byte:
            return None
        marker = byte[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        if marker == 0xDA:  # start of scan before any frame header
            return None
        length = fh.read(2)
        if len(length) < 2:
            return None
        fh.seek(struct.unpack(">H", length)[0] - 2, os.SEEK_CUR)
        if fh.read(1) != b"\xff":
            return None


def _check_jpeg_fill(arr: np.ndarray, path: Path) -> None:
    """Refuse a JPEG whose data stopped early: libjpeg fills the missing blocks with grey 128.

    An end marker appended to a cut file hides the cut from the decoder's error path; the
    grey fill always reaches the last block, so a bottom-right 8x8 block of exactly 128 in
    every channel is the sign. (A real image whose corner is exactly 128 is refused too.)
    """
    corner = arr[-8:, -8:]
    if corner.size and bool(np.all(corner == 128)):
        raise ScanReadError(
            path,
            "damaged or truncated image (JPEG data ends early: the decoder filled the rest "
            "with grey)",
        )


def _read_tiff(
    fh: BinaryIO, path: Path, size: int, budget: _Budget, log: list[str]
) -> list[np.ndarray]:
    _walk_ifds(fh, path, size)
    fh.seek(0)
    with tifffile.TiffFile(fh, name=path.name) as tif:
        pages = [(i, p) for i, p in enumerate(tif.pages) if not _is_reduced(p)]
        if not pages:
            raise ScanReadError(path, "TIFF file has no image pages")
        total = sum(_check_tiff_page(page, path, budget) for _, page in pages)
        first = pages[0][1]
        samples = 3 if _is_palette(first) else first.samplesperpixel
        detail = _layout(first.imagelength, first.imagewidth, samples, _itemsize(first), len(pages))
        budget.charge(path, total, detail)
        _refuse_tifffile_log(path, log)
        for _, page in pages:
            _check_tiff_data(page, path, size)
        try:
            arrays = [_tiff_page_array(page, path) for _, page in pages]
        except ValueError as exc:
            if "imagecodecs" not in str(exc):
                raise
            return _read_tiff_with_pillow(fh, path, pages, size)
        _refuse_tifffile_log(path, log)
        return arrays


def _walk_ifds(fh: BinaryIO, path: Path, size: int) -> None:
    """Follow the chain of IFDs (one per page) before tifffile does: refuse loops, IFDs past
    the end of the file (a truncated multi-page TIFF) and more than ``MAX_TIFF_PAGES`` pages."""
    fh.seek(0)
    head = fh.read(16)
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    if big:
        if len(head) < 16:
            raise ScanReadError(path, "damaged or truncated TIFF (header cut short)")
        offset = struct.unpack(order + "Q", head[8:16])[0]
        count_fmt, entry, next_fmt = "Q", 20, "Q"
    else:
        if len(head) < 8:
            raise ScanReadError(path, "damaged or truncated TIFF (header cut short)")
        offset = struct.unpack(order + "I", head[4:8])[0]
        count_fmt, entry, next_fmt = "H", 12, "I"
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    seen: dict[int, int] = {}
    while offset:
        page = len(seen)
        if offset in seen:
            raise ScanReadError(
                path,
                f"damaged TIFF (its IFD chain loops: page {page - 1} points back to "
                f"page {seen[offset]})",
            )
        if page >= MAX_TIFF_PAGES:
            raise ScanReadError(
                path, f"TIFF has more than {MAX_TIFF_PAGES:,} pages (IFDs); xadt reads at most that"
            )
        if offset + count_size > size:
            raise ScanReadError(
                path,
                f"damaged or truncated TIFF (IFD of page {page} at byte {offset:,} lies past "
                f"the end of the {size:,}-byte file)",
            )
        seen[offset] = page
        fh.seek(offset)
        (n,) = struct.unpack(order + count_fmt, fh.read(count_size))
        end = offset + count_size + n * entry
        if end + next_size > size:
            raise ScanReadError(
                path,
                f"damaged or truncated TIFF (IFD of page {page} runs past the end of the file)",
            )
        fh.seek(end)
        (offset,) = struct.unpack(order + next_fmt, fh.read(next_size))
    if not seen:
        raise ScanReadError(path, "TIFF file has no image pages")


def _refuse_tifffile_log(path: Path, log: list[str]) -> None:
    # tifffile logs damage it works around (a page it stops at, a tag it drops); the result
    # may be fewer pages or wrong pixels, so a warning is an error here.
    if log:
        raise ScanReadError(path, f"damaged or truncated TIFF ({log[0]})")


def _check_tiff_page(page: tifffile.TiffPage, path: Path, budget: _Budget) -> int:
    """Check a page's layout from its tags alone; return the bytes it decodes to."""
    if int(page.photometric) not in _TIFF_PHOTOMETRICS:
        raise ScanReadError(
            path, f"unsupported TIFF colour space {_enum_name(page.photometric, 'Photometric')}"
        )
    if page.imagedepth != 1:
        raise ScanReadError(path, f"volumetric TIFF pages (depth {page.imagedepth}) are not read")
    budget.check_page(path, page.imagelength, page.imagewidth)
    # Palette pages are expanded to RGB.
    samples = 3 if _is_palette(page) else page.samplesperpixel
    return page.imagelength * page.imagewidth * samples * _itemsize(page)


def _check_tiff_data(page: tifffile.TiffPage, path: Path, size: int) -> None:
    """Refuse strips or tiles that the file is too short to hold."""
    for k, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts, strict=False)):
        if offset + count > size:
            raise ScanReadError(
                path,
                f"damaged or truncated TIFF (strip or tile {k} ends at byte {offset + count:,}, "
                f"past the end of the {size:,}-byte file)",
            )
    stored = page.imagelength * page.imagewidth * page.samplesperpixel
    stored *= max(1, (int(page.bitspersample) + 7) // 8)
    raw = page.compression == tifffile.COMPRESSION.NONE and not page.is_tiled
    if raw and page.bitspersample % 8 == 0 and sum(page.databytecounts) < stored:
        raise ScanReadError(
            path,
            f"damaged or truncated TIFF (its strips hold {sum(page.databytecounts):,} of the "
            f"{stored:,} bytes of pixels)",
        )


def _itemsize(page: tifffile.TiffPage) -> int:
    return 1 if _is_palette(page) else max(1, (int(page.bitspersample) + 7) // 8)


def _is_palette(page: tifffile.TiffPage) -> bool:
    return int(page.photometric) == tifffile.PHOTOMETRIC.PALETTE


def _enum_name(value: object, what: str) -> str:
    """An enum member's name, or ``<what> <number>`` for a value the enum does not know."""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else f"{what} {int(value)}"  # type: ignore[call-overload]


_TIFF_PHOTOMETRICS = frozenset(
    int(p)
    for p in (
        tifffile.PHOTOMETRIC.MINISWHITE,
        tifffile.PHOTOMETRIC.MINISBLACK,
        tifffile.PHOTOMETRIC.RGB,
        tifffile.PHOTOMETRIC.PALETTE,
    )
)


def _read_tiff_with_pillow(
    fh: BinaryIO, path: Path, pages: list[tuple[int, tifffile.TiffPage]], size: int
) -> list[np.ndarray]:
    # tifffile needs the optional imagecodecs package for LZW and JPEG; Pillow decodes both, but
    # only to 8 bits per channel in colour.
    for _, page in pages:
        colours = page.samplesperpixel - len(page.extrasamples)
        if colours > 1 and page.bitspersample > 8:
            raise ScanReadError(
                path,
                f"{page.bitspersample}-bit colour TIFF with "
                f"{_enum_name(page.compression, 'Compression')} compression needs the "
                "imagecodecs package (pip install imagecodecs)",
            )
    return _read_pillow(fh, path, None, pages=[i for i, _ in pages], claimed="TIFF", size=size)


def _is_reduced(page: tifffile.TiffPage | tifffile.TiffFrame) -> bool:
    return bool(getattr(page, "subfiletype", 0) & 1)  # a thumbnail or pyramid level


def _tiff_page_array(page: tifffile.TiffPage, path: Path) -> np.ndarray:
    photometric = int(page.photometric)
    arr = page.asarray()
    if page.axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif page.axes not in ("YX", "YXS"):
        raise ScanReadError(path, f"unsupported TIFF page layout {page.axes!r}")
    if photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
        index = arr[..., 0] if arr.ndim == 3 else arr
        colours = page.colormap.shape[-1]
        if index.size and int(index.max()) >= colours:
            raise ScanReadError(
                path,
                f"palette has {colours} colours but pixels use colour {int(index.max())}; "
                "the palette is damaged or cut short",
            )
        arr = np.moveaxis((page.colormap >> 8).astype(np.uint8)[:, index], 0, -1)
    elif photometric == tifffile.PHOTOMETRIC.MINISWHITE and arr.dtype.kind in "bu":
        arr = ~arr if arr.dtype == bool else np.iinfo(arr.dtype).max - arr
    return _as_view(arr, path)


def _as_view(arr: np.ndarray, path: Path) -> np.ndarray:
    """An image array as an (H, W, C) view array: C 1 or 3, dtype uint8, uint16 or float32."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ScanReadError(path, f"unsupported image shape {arr.shape}")
    if arr.shape[2] in (2, 4):  # drop alpha
        arr = arr[:, :, : arr.shape[2] - 1]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu" and arr.dtype not in (np.uint8, np.uint16):
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ScanReadError(
                path, f"{arr.dtype} pixel values outside 0..65535; expected uint8 or uint16 data"
            )
        arr = arr.astype(np.uint16)
    elif arr.dtype.kind not in "uf":
        raise ScanReadError(path, f"unsupported pixel type {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ScanReadError(
                path,
                f"{bad:,} pixel value(s) are NaN or infinite (or too large for float32); "
                "expected finite transmissions",
            )
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _why(exc: BaseException) -> str:
    return _first_line(str(exc)) or type(exc).__name__
