"""Scans: one parcel or bag, with one or more views kept in their native dtype.

Reads PNG, JPEG, BMP and TIFF files (and ground-truth masks) into :class:`Scan` objects, one scan
or a whole folder at a time; the file-naming rules are in ``docs/data.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File extensions (any case) that :func:`iter_scans` treats as images; others are ignored."""

PathLike = str | os.PathLike[str]

_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Errors the decoders raise on damaged or unexpected data; anything else is a bug and propagates.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    NotImplementedError,
    struct.error,
    zlib.error,
)
_STEM = re.compile(r"^(?P<id>.+?)(?:_v(?P<view>\d+))?(?:_(?P<energy>high|low))?$", re.IGNORECASE)
_MASK_STEM = re.compile(r"^(?P<id>.+?)(?:_v(?P<view>\d+))?$", re.IGNORECASE)


class ScanReadError(XadtError):
    """A scan or mask file that cannot be used; the message is ``"<file>: <what is wrong>"``.

    Attributes:
        path: the file at fault.
        reason: what is wrong with it, without the file name.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
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
        max_pixels: refuse any image larger than this many pixels (height x width) before
            decoding it.

    Returns:
        The scan, with ``sources`` the files read.

    Raises:
        ScanReadError: (an ``XadtError``) a file is missing, unreadable, damaged, empty, too
            large, in an unsupported layout, or does not fit the naming rules; or a mask does
            not match its view. The message names the file.
    """
    max_pixels = _check_max_pixels(max_pixels)
    items = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    if not items:
        msg = "read_scan: no files given"
        raise XadtError(msg)
    for path in items:
        if not path.exists():
            raise ScanReadError(path, "no such file")
    groups = _group(items)
    if len(groups) > 1:
        first, second = (g.files()[0] for g in list(groups.values())[:2])
        raise ScanReadError(
            first, f"belongs to a different scan than {second.name}; pass one scan's files"
        )
    group = next(iter(groups.values()))
    mask_files: dict[int | None, list[Path]] = {}
    if masks_dir is not None:
        mask_files = _index_masks(_require_folder(masks_dir, "mask")).get(group.id, {})
    return _read_group(group, mask_files, energies=energies, max_pixels=max_pixels)


def iter_scans(
    folder: PathLike,
    *,
    masks: PathLike | None = None,
    energies: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ScanFolder:
    """The scans of a folder, read lazily one at a time; see :class:`ScanFolder`."""
    return ScanFolder(folder, masks=masks, energies=energies, max_pixels=max_pixels)


class ScanFolder:
    """The scans in one folder (not its subfolders), grouped by scan id and read lazily.

    Iterating yields one :class:`Scan` at a time, in sorted id order. A scan that cannot be read
    is skipped with a :class:`ScanSkippedWarning` naming the file and the reason, and recorded in
    ``skipped``, so the caller can finish the folder and then fail with :meth:`raise_if_skipped`.

    Args:
        folder: the folder of scan files (``IMAGE_EXTENSIONS``; hidden files are ignored).
        masks: optional folder of ground-truth masks, named like the scans.
        energies: read ``_high``/``_low`` pairs instead of an image of the same view.
        max_pixels: largest image read, in pixels.

    Attributes:
        folder: the scan folder.
        masks: the mask folder, or None.
        skipped: ``(file, reason)`` for each scan skipped during the latest iteration.
        n_read: scans yielded during the latest iteration.

    Raises:
        XadtError: the folder (or mask folder) is missing or not a folder, or holds no images.
    """

    def __init__(
        self,
        folder: PathLike,
        *,
        masks: PathLike | None = None,
        energies: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.folder = _require_folder(folder, "scan")
        self.masks = None if masks is None else _require_folder(masks, "mask")
        self.energies = energies
        self.max_pixels = _check_max_pixels(max_pixels)
        files = _image_files(self.folder)
        if not files:
            msg = f"{self.folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder"
            raise XadtError(msg)
        self._groups = _group(files)
        self._masks = {} if self.masks is None else _index_masks(self.masks)
        self.skipped: list[tuple[Path, str]] = []
        self.n_read = 0

    @property
    def ids(self) -> list[str]:
        """The scan ids found, sorted; known from the file names alone."""
        return list(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def __repr__(self) -> str:
        return f"ScanFolder({str(self.folder)!r}, {len(self)} scans)"

    def __iter__(self) -> Iterator[Scan]:
        self.skipped = []
        self.n_read = 0
        return self.read(self.ids)

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
                    max_pixels=self.max_pixels,
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
        shown = "; ".join(f"{path.name}: {reason}" for path, reason in self.skipped[:3])
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


def _check_max_pixels(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        msg = f"The 'max_pixels' option must be an integer >= 1. Got {value!r} instead."
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


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


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


def _group(files: Iterable[Path]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for path in files:
        m = _STEM.match(path.stem)
        if m is None:  # only an empty stem fails to match
            continue
        view = None if m["view"] is None else int(m["view"])
        role = (m["energy"] or "image").lower()
        group = groups.setdefault(m["id"], _Group(m["id"]))
        group.slots.setdefault((view, role), []).append(path)
    return dict(sorted(groups.items()))


def _index_masks(folder: Path) -> dict[str, dict[int | None, list[Path]]]:
    index: dict[str, dict[int | None, list[Path]]] = {}
    for path in _image_files(folder):
        m = _MASK_STEM.match(path.stem)
        if m is None:
            continue
        view = None if m["view"] is None else int(m["view"])
        index.setdefault(m["id"], {}).setdefault(view, []).append(path)
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
    max_pixels: int,
) -> Scan:
    plan = _plan(group, energies)
    views: list[np.ndarray] = []
    view_files: list[Path] = []
    encodings: list[Encoding] = []
    for entry in plan:
        if len(entry) == 1:
            pages = _read_image(entry[0], max_pixels)
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
            views.append(_read_energies(*entry, max_pixels=max_pixels))
            view_files.append(entry[0])
            encodings.append("dual-energy")
    for k, encoding in enumerate(encodings):
        if encoding != encodings[0]:
            raise ScanReadError(
                view_files[k],
                f"view {k} of scan {group.id!r} is {encoding} but view 0 "
                f"({view_files[0].name}) is {encodings[0]}; all views of a scan share one encoding",
            )
    masks = _read_masks(group.id, mask_files, views, view_files, max_pixels)
    sources = tuple(dict.fromkeys(p for entry in plan for p in entry))
    return Scan(id=group.id, views=views, encoding=encodings[0], sources=sources, masks=masks)


def _read_energies(high: Path, low: Path, *, max_pixels: int) -> np.ndarray:
    arrays = []
    for path in (high, low):
        pages = _read_image(path, max_pixels)
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
    max_pixels: int,
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
        pages = _read_image(path, max_pixels)
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


def _read_image(path: Path, max_pixels: int) -> list[np.ndarray]:
    """The pages of one image file as (H, W, C) arrays, C = 1 (grey) or 3 (RGB)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(32)
    except IsADirectoryError:
        raise ScanReadError(path, "is a folder, not an image file") from None
    except OSError as exc:
        raise ScanReadError(path, f"cannot open file ({exc.strerror or exc})") from None
    if not head:
        raise ScanReadError(path, "file is empty (0 bytes)")
    if head[:4] in _TIFF_MAGIC:
        return _read_tiff(path, max_pixels)
    if _is_16bit_colour_png(head):
        # Pillow decodes 16-bit colour PNG to 8 bits; refuse rather than lose precision silently.
        raise ScanReadError(
            path, "16-bit colour PNG is not supported (it would lose precision); save it as TIFF"
        )
    return _read_pillow(path, max_pixels, pages=(0,), claimed=_claimed_format(head))


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
    path: Path, max_pixels: int, *, pages: Sequence[int], claimed: str | None = "TIFF"
) -> list[np.ndarray]:
    out = []
    with warnings.catch_warnings():
        # Our own max_pixels check is the limit; Pillow's other warnings (EXIF, palette
        # transparency) concern metadata and must not leak to the user.
        warnings.simplefilter("ignore")
        try:
            with Image.open(path, formats=("PNG", "JPEG", "BMP", "TIFF")) as im:
                for index in pages:
                    im.seek(index)
                    _check_size(path, im.height, im.width, max_pixels)
                    im.load()
                    out.append(_as_view(_pillow_array(im), path))
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
        except _DECODE_ERRORS as exc:
            raise ScanReadError(path, f"damaged or truncated image ({_why(exc)})") from None
    return out


def _pillow_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "I", "F", "RGB") or mode.startswith("I;16"):
        return np.array(im)
    if mode == "1":
        return np.array(im.convert("L"))
    if mode in ("LA", "La"):
        return np.array(im.getchannel(0))
    return np.array(im.convert("RGB"))  # palette, RGBA, CMYK, YCbCr, ...


def _read_tiff(path: Path, max_pixels: int) -> list[np.ndarray]:
    with _captured_tifffile_log() as log:
        try:
            with tifffile.TiffFile(path) as tif:
                pages = [(i, p) for i, p in enumerate(tif.pages) if not _is_reduced(p)]
                if not pages:
                    raise ScanReadError(path, "TIFF file has no image pages")
                for _, page in pages:
                    _check_size(path, page.imagelength, page.imagewidth, max_pixels)
                try:
                    return [_tiff_page_array(page, path) for _, page in pages]
                except ValueError as exc:
                    if "imagecodecs" not in str(exc):
                        raise
                    return _read_tiff_with_pillow(path, pages, max_pixels)
        except ScanReadError:
            raise
        except _DECODE_ERRORS as exc:
            detail = "; ".join([*log, _why(exc)])
            raise ScanReadError(path, f"damaged or truncated TIFF ({detail})") from None


def _read_tiff_with_pillow(
    path: Path, pages: list[tuple[int, tifffile.TiffPage]], max_pixels: int
) -> list[np.ndarray]:
    # tifffile needs the optional imagecodecs package for LZW and JPEG; Pillow decodes both, but
    # only to 8 bits per channel in colour.
    for _, page in pages:
        colours = page.samplesperpixel - len(page.extrasamples)
        if colours > 1 and page.bitspersample > 8:
            raise ScanReadError(
                path,
                f"{page.bitspersample}-bit colour TIFF with {page.compression.name} compression "
                "needs the imagecodecs package (pip install imagecodecs)",
            )
    return _read_pillow(path, max_pixels, pages=[i for i, _ in pages])


def _is_reduced(page: tifffile.TiffPage | tifffile.TiffFrame) -> bool:
    return bool(getattr(page, "subfiletype", 0) & 1)  # a thumbnail or pyramid level


def _tiff_page_array(page: tifffile.TiffPage, path: Path) -> np.ndarray:
    photometric = page.photometric
    supported = (
        tifffile.PHOTOMETRIC.MINISWHITE,
        tifffile.PHOTOMETRIC.MINISBLACK,
        tifffile.PHOTOMETRIC.RGB,
        tifffile.PHOTOMETRIC.PALETTE,
    )
    if photometric not in supported:
        raise ScanReadError(path, f"unsupported TIFF colour space {photometric.name}")
    arr = page.asarray()
    if page.axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif page.axes not in ("YX", "YXS"):
        raise ScanReadError(path, f"unsupported TIFF page layout {page.axes!r}")
    if photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
        index = arr[..., 0] if arr.ndim == 3 else arr
        arr = np.moveaxis((page.colormap >> 8).astype(np.uint8)[:, index], 0, -1)
    elif photometric == tifffile.PHOTOMETRIC.MINISWHITE and arr.dtype.kind in "bu":
        arr = ~arr if arr.dtype == bool else np.iinfo(arr.dtype).max - arr
    return _as_view(arr, path)


@contextlib.contextmanager
def _captured_tifffile_log() -> Iterator[list[str]]:
    """Keep tifffile's logged warnings off stderr and collect them for our error message."""
    messages: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        messages.append(record.getMessage())
        return False

    logger = logging.getLogger("tifffile")
    logger.addFilter(keep)
    try:
        yield messages
    finally:
        logger.removeFilter(keep)


def _check_size(path: Path, height: int, width: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ScanReadError(path, f"image has zero size ({height}x{width} pixels)")
    if height * width > max_pixels:
        raise ScanReadError(
            path,
            f"image is {height}x{width} = {height * width:,} pixels, over the limit of "
            f"{max_pixels:,} (max_pixels); raise it if the file is trusted",
        )


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
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
