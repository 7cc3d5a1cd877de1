"""Patch store: a training set's patches, tiled once and served from a memory-mapped file.

Patch-based networks (GANomaly-style, GeoTrans) train on many small patches for many epochs;
decoding, air-cropping and tiling the scans every epoch would dominate training. A
:class:`PatchStore` tiles the scans once, in their native channels and dtype, into a raw array on
disk and serves seeded, shuffled minibatches from it through a torch ``DataLoader``.
:func:`scan_patches` is the one function that turns a scan into its patches, for the store and
for scoring on the fly, and :func:`unit_patches` the one that scales them to [0, 1].

A store is a folder ``<cache>/<key>/`` holding ``patches.bin`` (the raw (N, C, p, p) array, C
order), ``boxes.bin`` (raw int64 (N, 4) boxes in full-view coordinates) and ``store.json`` (format
version, settings, dtype, shape and the scan table), written last. The key is a sha256 over the
format version, the settings and every scan's pixel digest (:func:`scan_digest`), so a cache
folder holds one store per set of scans and settings. Stores are built in a hidden sibling
folder, fsynced and renamed into place: a folder without ``store.json``, or whose files do not
match it, is never opened as a store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from xadt.config import is_int, is_real, require
from xadt.crop import CropBox, EmptyScanError, crop_air
from xadt.errors import XadtError
from xadt.kernels import tile_boxes
from xadt.outputs import fsync_dir, process_alive
from xadt.scans import Scan, full_scale

__all__ = [
    "FORMAT",
    "PatchSampler",
    "PatchSettings",
    "PatchStore",
    "ScanPatches",
    "ViewPatches",
    "scan_digest",
    "scan_patches",
    "unit_patches",
]

FORMAT = 1
"""Version of the store layout; a store of another version is not opened (it is rebuilt)."""

_META = "store.json"
_PATCHES = "patches.bin"
_BOXES = "boxes.bin"
_BUILDING = ".building-"
_DTYPES = ("uint8", "uint16", "float32")
_COPY_CHUNK = 16 << 20  # bytes per read when copying patches out of an existing store


@dataclass(frozen=True)
class PatchSettings:
    """How scans are cut into patches.

    Each view is air-cropped at full resolution (``xadt.crop.crop_air``; dual-energy views on the
    high-energy channel; with ``crop`` off the whole view is kept), the crop is downscaled by
    ``downscale`` (area averaging, dtype kept), and the result is tiled with
    ``xadt.kernels.tile_boxes(h, w, patch, stride)``: evenly spaced windows, the first at 0, the
    last flush with the edge; a side shorter than ``patch`` gets one centred window whose
    overhang reads white air.

    Attributes:
        patch: side of the square patches, in pixels of the downscaled view.
        stride: largest step between neighbouring patches, in 1..``patch`` (no gaps).
        downscale: factor in (0, 1] applied to the cropped view before tiling.
        air_level: fraction of white at and above which a pixel is air.
        opening: side of the opening that removes speckle before cropping, in pixels.
        min_area: smallest object kept when cropping, as a fraction of the view's area.
        crop: cut the air off each view first; off for images that are all content (natural
            images such as CIFAR-10 or MNIST, where "air" means nothing).
    """

    patch: int = 64
    stride: int = 32
    downscale: float = 1.0
    air_level: float = 240 / 255
    opening: int = 5
    min_area: float = 0.01
    crop: bool = True

    def __post_init__(self) -> None:
        require(isinstance(self.crop, bool), "the patch store", "crop", "a boolean", self.crop)
        require(
            is_int(self.patch) and self.patch >= 1,
            "the patch store",
            "patch",
            "an integer >= 1",
            self.patch,
        )
        ok = is_int(self.stride) and 1 <= self.stride <= self.patch
        require(
            ok, "the patch store", "stride", f"an integer in 1..patch ({self.patch})", self.stride
        )
        ok = is_real(self.downscale) and 0 < self.downscale <= 1
        require(ok, "the patch store", "downscale", "a number in (0, 1]", self.downscale)
        ok = is_real(self.air_level) and 0 < self.air_level <= 1
        require(
            ok,
            "the patch store",
            "air_level",
            "a number in (0, 1] (a fraction of white)",
            self.air_level,
        )
        ok = is_int(self.opening) and self.opening >= 1
        require(
            ok,
            "the patch store",
            "opening",
            "an integer >= 1 (1 turns the opening off)",
            self.opening,
        )
        ok = is_real(self.min_area) and 0 <= self.min_area < 1
        require(
            ok,
            "the patch store",
            "min_area",
            "a number in [0, 1) (a fraction of the view)",
            self.min_area,
        )
        # Plain int and float, so that equal settings give equal JSON and equal store keys.
        for name in ("patch", "stride", "opening"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("downscale", "air_level", "min_area"):
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class ViewPatches:
    """The patches of one view.

    Attributes:
        shape: (H, W) of the full view.
        crop: the parcel's box in the view; None when the view is all air (then it has no
            patches).
        boxes: int64 (N, 4) ``(y0, x0, y1, x1)`` of each patch in full-view pixel coordinates,
            mapped back through the downscale (rounded to the nearest pixel) and the crop. They
            are ``patch / downscale`` pixels square up to rounding, and overhang the view where a
            patch overhangs a crop narrower than a patch.
        patches: (N, C, patch, patch) patches in the view's dtype and channels.
    """

    shape: tuple[int, int]
    crop: CropBox | None
    boxes: np.ndarray
    patches: np.ndarray

    @property
    def empty(self) -> bool:
        """Whether the view is all air (and so has no patches)."""
        return self.crop is None


@dataclass(frozen=True)
class ScanPatches:
    """The patches of every view of one scan, from :func:`scan_patches`.

    Attributes:
        scan_id: the ``Scan.id`` they belong to.
        views: one :class:`ViewPatches` per view, in the scan's order.
    """

    scan_id: str
    views: tuple[ViewPatches, ...]

    @property
    def patches(self) -> np.ndarray:
        """(N, C, p, p) patches of all views, view after view."""
        return np.concatenate([v.patches for v in self.views])

    @property
    def boxes(self) -> np.ndarray:
        """int64 (N, 4) full-view boxes of all views, view after view."""
        return np.concatenate([v.boxes for v in self.views])

    @property
    def view_index(self) -> np.ndarray:
        """int64 (N,) view of each patch."""
        return np.repeat(np.arange(len(self.views)), [len(v.boxes) for v in self.views])


def scan_patches(scan: Scan, settings: PatchSettings) -> ScanPatches:
    """Crop, downscale and tile every view of ``scan`` (see :class:`PatchSettings`).

    The patch store is built with this function, and scoring on the fly should call it too, so
    training and scoring see the same patches. A view that is all air (``crop_air`` finds no
    parcel, also when every object is below ``min_area``) gives no patches: its
    :attr:`ViewPatches.crop` is None.

    Args:
        scan: the scan, in any encoding and view dtype.
        settings: how to cut it.

    Returns:
        The patches, boxes and crop of each view.
    """
    channel = 0 if scan.encoding == "dual-energy" else None
    return ScanPatches(
        scan_id=scan.id,
        views=tuple(_view_patches(view, channel, settings) for view in scan.views),
    )


def unit_patches(patches: np.ndarray) -> np.ndarray:
    """Patches as float32 scaled to [0, 1] by their dtype's full scale (255, 65535 or 1.0).

    The store's loader uses this function, so patches scored on the fly from
    :func:`scan_patches` and patches read from a store are bit for bit the same.
    """
    return np.divide(patches, np.float32(full_scale(patches.dtype)), dtype=np.float32)


def scan_digest(scan: Scan) -> str:
    """sha256 (hex) of a scan's id, encoding, and every view's shape, dtype and pixel bytes."""
    digest = hashlib.sha256(scan.id.encode())
    digest.update(b"\0" + scan.encoding.encode())
    for view in scan.views:
        digest.update(f"{view.shape}{view.dtype}".encode())
        digest.update(np.ascontiguousarray(view).data)
    return digest.hexdigest()


def _view_patches(view: np.ndarray, channel: int | None, s: PatchSettings) -> ViewPatches:
    shape = (int(view.shape[0]), int(view.shape[1]))
    try:
        crop = (
            crop_air(
                view, air_level=s.air_level, opening=s.opening, min_area=s.min_area, channel=channel
            )
            if s.crop
            else CropBox(0, 0, *shape)
        )
    except EmptyScanError:
        none = np.zeros((0, view.shape[2], s.patch, s.patch), dtype=view.dtype)
        return ViewPatches(shape, None, np.zeros((0, 4), dtype=np.int64), none)
    cropped = crop.apply(view)
    small = _downscale(cropped, s.downscale)
    local = tile_boxes(small.shape[0], small.shape[1], s.patch, s.stride)
    scale = np.array([crop.height / small.shape[0], crop.width / small.shape[1]] * 2)
    offset = np.array([crop.y0, crop.x0] * 2, dtype=np.int64)
    boxes = np.floor(local * scale + 0.5).astype(np.int64) + offset
    return ViewPatches(shape, crop, boxes, _cut(small, local, s.patch))


def _downscale(view: np.ndarray, factor: float) -> np.ndarray:
    """``view`` resized by ``factor`` with area averaging (PIL's box filter), dtype kept."""
    height, width = view.shape[:2]
    size = (max(1, math.floor(width * factor + 0.5)), max(1, math.floor(height * factor + 0.5)))
    if size == (width, height):
        return view
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(view[:, :, c], dtype=np.float32)).resize(
                size, Image.Resampling.BOX
            )
        )
        for c in range(view.shape[2])
    ]
    out = np.stack(channels, axis=2)
    if view.dtype.kind == "f":
        return out.astype(view.dtype)
    return np.clip(np.rint(out), 0, full_scale(view.dtype)).astype(view.dtype)


def _cut(view: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """The (N, C, size, size) windows of ``view`` under ``boxes``, native dtype, white padding.

    ``xadt.kernels.extract_patches`` returns normalised float32; the store keeps raw pixels.
    """
    height, width = view.shape[:2]
    top = max(0, -int(boxes[:, 0].min()))
    left = max(0, -int(boxes[:, 1].min()))
    bottom = max(0, int(boxes[:, 2].max()) - height)
    right = max(0, int(boxes[:, 3].max()) - width)
    if top or left or bottom or right:
        white = full_scale(view.dtype)
        view = np.pad(view, ((top, bottom), (left, right), (0, 0)), constant_values=white)
    windows = sliding_window_view(view, (size, size), axis=(0, 1))  # (H', W', C, size, size)
    return windows[boxes[:, 0] + top, boxes[:, 1] + left]


# ---------------------------------------------------------------------------------------------
# The store


class PatchStore:
    """Patches of a set of scans in a memory-mapped (N, C, p, p) array, with their provenance.

    Make one with :meth:`build` or :meth:`open`. Patch ``i`` comes from scan
    ``scan_ids[scan_index[i]]``, view ``view_index[i]``, box ``boxes[i]`` (full-view
    coordinates). A store from :meth:`subset` is a view of the same files holding only some
    scans; its indices count its own patches and scans.

    Attributes:
        path: the store's folder.
        settings: how the patches were cut.
        dtype: the patches' dtype (the scans' native view dtype).
        channels: C, the scans' native channel count.
    """

    def __init__(self, path: Path, meta: dict[str, Any], scans: np.ndarray | None = None) -> None:
        """Use :meth:`open`, :meth:`build` or :meth:`subset`; ``meta`` must be validated."""
        self.path = path
        self._meta = meta
        self.settings = PatchSettings(**meta["settings"])
        self.dtype = np.dtype(meta["dtype"])
        self.channels = int(meta["channels"])
        entries = meta["scans"]
        counts = np.array([sum(v["count"] for v in e["views"]) for e in entries], dtype=np.int64)
        self._first = np.concatenate([[0], np.cumsum(counts)])
        self._all = scans is None
        self._scans = np.arange(len(entries)) if scans is None else scans
        self._counts = counts[self._scans]
        self._rows: np.ndarray | None = None
        self._patches: np.memmap | None = None
        self._boxes: np.memmap | None = None

    # -- making one ------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PatchStore:
        """Open a complete store folder (one holding ``store.json``).

        Raises:
            XadtError: the folder is not a complete store, its ``store.json`` is unreadable, of
                another format version or inconsistent, or a data file has the wrong size; the
                message names the file.
        """
        folder = Path(path)
        meta_file = folder / _META
        if not meta_file.is_file():
            msg = f"{meta_file}: missing, so {folder} is not a complete patch store"
            raise XadtError(msg)
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = f"{meta_file}: not readable as patch store metadata ({exc})"
            raise XadtError(msg) from None
        _check_meta(meta, meta_file)
        item = meta["channels"] * meta["settings"]["patch"] ** 2 * np.dtype(meta["dtype"]).itemsize
        for name, expected in ((_PATCHES, meta["count"] * item), (_BOXES, meta["count"] * 32)):
            file = folder / name
            try:
                size = file.stat().st_size
            except OSError as exc:
                msg = f"{file}: cannot be read ({exc.strerror or exc})"
                raise XadtError(msg) from None
            if size != expected:
                msg = f"{file}: holds {size} bytes, but {meta_file.name} promises {expected}"
                raise XadtError(msg)
        return cls(folder, meta)

    @classmethod
    def build(
        cls,
        scans: Iterable[Scan],
        folder: str | os.PathLike[str],
        settings: PatchSettings,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> PatchStore:
        """Tile ``scans`` into a store under the cache folder ``folder``, or reuse one there.

        ``scans`` is iterated once, one scan at a time, and every scan is hashed
        (:func:`scan_digest`). While the scans so far are, in order, the first scans of a
        complete store under ``folder`` with the same settings, nothing is cropped or written;
        if all of them are, that store is returned. Otherwise a new store is written beside the
        others, copying the patches of scans already in a store and tiling the rest. Memory holds
        one scan's patches at a time, never the store. Unfinished builds of dead processes on
        this host (hidden ``.building-*`` folders) are removed first.

        Args:
            scans: the scans, all with the same dtype and channel count, ids unique.
            folder: the cache folder (created if missing).
            settings: how to cut the patches.
            progress: called as ``progress(done, total)`` after each scan; ``total`` is
                ``len(scans)``, or None when ``scans`` has no length.

        Returns:
            The opened store.

        Raises:
            XadtError: ``folder`` cannot be used; the scans are none, yield no patch at all, mix
                dtypes or channel counts, or repeat an id; or the store cannot be written.
        """
        root = Path(folder)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"{root}: cannot be used as the patch store folder ({exc.strerror or exc})"
            raise XadtError(msg) from None
        _remove_dead_builds(root)
        builder = _Builder(root, settings, _stores_like(root, settings))
        total = len(scans) if isinstance(scans, Sized) else None
        try:
            for done, scan in enumerate(scans, start=1):
                builder.add(scan)
                if progress is not None:
                    progress(done, total)
            return builder.finish()
        finally:
            builder.discard()

    def subset(self, scan_ids: Iterable[str]) -> PatchStore:
        """A store of the same files holding only the patches of ``scan_ids``, in store order.

        Meant for the validation split: build one store of all training scans and take
        ``subset(validation_ids)`` and ``subset(other_ids)``.

        Raises:
            XadtError: an id is not a scan of this store.
        """
        position = {sid: k for k, sid in enumerate(self.scan_ids)}
        wanted = set()
        for sid in scan_ids:
            if sid not in position:
                msg = f"{self.path}: scan {sid!r} is not in this patch store"
                raise XadtError(msg)
            wanted.add(position[sid])
        chosen = self._scans[np.array(sorted(wanted), dtype=np.int64)]
        return PatchStore(self.path, self._meta, chosen)

    # -- contents --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._counts.sum())

    def __repr__(self) -> str:
        return (
            f"PatchStore({str(self.path)!r}, {len(self)} patches of {len(self.scan_ids)} scans, "
            f"{self.channels}x{self.patch}x{self.patch} {self.dtype})"
        )

    def __getitem__(self, index: int) -> np.ndarray:
        """Patch ``index`` as a (C, p, p) array in the store's dtype."""
        n = len(self)
        if not -n <= index < n:
            msg = f"patch index {index} out of range for a store of {n} patches"
            raise IndexError(msg)
        return np.array(self._memmap()[self.rows[index % n]])

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Patches ``indices`` as a (B, C, p, p) array in the store's dtype."""
        return np.asarray(self._memmap()[self.rows[np.asarray(indices, dtype=np.int64)]])

    @property
    def patch(self) -> int:
        """Side of the patches in pixels."""
        return self.settings.patch

    @property
    def nbytes(self) -> int:
        """Bytes of the patches in this store (or subset)."""
        return len(self) * self.channels * self.patch**2 * self.dtype.itemsize

    @property
    def key(self) -> str:
        """The store's key: a sha256 over the format, settings and scan digests."""
        return str(self._meta["key"])

    @property
    def scan_ids(self) -> tuple[str, ...]:
        """Ids of the scans in the store, in build order (scans without patches included)."""
        entries = self._meta["scans"]
        return tuple(entries[k]["id"] for k in self._scans)

    @property
    def empty_views(self) -> list[tuple[str, int]]:
        """``(scan id, view)`` of every view that was all air and so gave no patches."""
        entries = self._meta["scans"]
        return [
            (entries[k]["id"], v)
            for k in self._scans
            for v, view in enumerate(entries[k]["views"])
            if view["crop"] is None
        ]

    @property
    def rows(self) -> np.ndarray:
        """int64 (N,) row of each patch in the store's files (``arange(N)`` for a full store)."""
        if self._rows is None:
            if self._all:
                self._rows = np.arange(self._first[-1], dtype=np.int64)
            else:
                parts = [np.arange(self._first[k], self._first[k + 1]) for k in self._scans]
                self._rows = np.concatenate([np.zeros(0, np.int64), *parts]).astype(np.int64)
        return self._rows

    @property
    def scan_index(self) -> np.ndarray:
        """int64 (N,) index into :attr:`scan_ids` of each patch."""
        return np.repeat(np.arange(len(self._scans)), self._counts)

    @property
    def view_index(self) -> np.ndarray:
        """int64 (N,) view of its scan of each patch."""
        entries = self._meta["scans"]
        counts = [v["count"] for k in self._scans for v in entries[k]["views"]]
        views = [v for k in self._scans for v in range(len(entries[k]["views"]))]
        return np.repeat(np.array(views, dtype=np.int64), counts)

    @property
    def boxes(self) -> np.ndarray:
        """int64 (N, 4) ``(y0, x0, y1, x1)`` of each patch in its full view's coordinates."""
        if self._boxes is None:
            self._boxes = np.memmap(
                self.path / _BOXES, dtype=np.int64, mode="r", shape=(int(self._first[-1]), 4)
            )
        return np.asarray(self._boxes[self.rows])

    def view_info(self, scan_id: str) -> list[tuple[tuple[int, int], CropBox | None]]:
        """``(shape, crop)`` of each view of scan ``scan_id``, as :class:`ViewPatches` has them.

        Raises:
            XadtError: the scan is not in the store.
        """
        for k in self._scans:
            entry = self._meta["scans"][k]
            if entry["id"] == scan_id:
                return [
                    (tuple(v["shape"]), None if v["crop"] is None else CropBox(*v["crop"]))
                    for v in entry["views"]
                ]
        msg = f"{self.path}: scan {scan_id!r} is not in this patch store"
        raise XadtError(msg)

    # -- minibatches -----------------------------------------------------------------------------

    def loader(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        workers: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ) -> torch.utils.data.DataLoader:
        """A ``DataLoader`` of ``(patches, indices)`` batches for one epoch.

        ``patches`` is a float32 (B, C, p, p) tensor scaled to [0, 1] (:func:`unit_patches`),
        ``indices`` an int64 (B,) tensor of the patches' indices in this store. The order is
        fixed by (``seed``, ``epoch``) alone (see :class:`PatchSampler`), so it is the same in
        every run and for any ``workers``. To keep worker processes across epochs, create the
        loader once and call ``loader.sampler.set_epoch(epoch)`` before each epoch, as with
        torch's ``DistributedSampler``.

        Args:
            batch_size: patches per batch.
            shuffle: shuffle (else store order).
            seed: seed of the shuffle.
            epoch: epoch number; each epoch has its own order.
            workers: worker processes reading batches (0: in this process). Workers start from
                a forkserver, reopen the store's file and are kept for the loader's life.
            drop_last: drop the last, incomplete batch (and, for several ranks, the patches
                beyond a multiple of ``world_size``, rather than repeating some).
            rank: this process's shard, in 0..``world_size`` - 1.
            world_size: number of shards (DDP processes); all shards have the same length.
            pin_memory: pin batches in page-locked memory for faster copies to CUDA.

        Raises:
            XadtError: an option is out of range; the message names it.
        """
        require(
            is_int(workers) and workers >= 0,
            "the patch loader",
            "workers",
            "an integer >= 0",
            workers,
        )
        sampler = PatchSampler(
            len(self),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            epoch=epoch,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
            rows=self.rows,
        )
        return torch.utils.data.DataLoader(
            _Reader(str(self.path / _PATCHES), self.dtype.str, self._shape()),
            batch_size=None,
            sampler=sampler,
            num_workers=workers,
            multiprocessing_context="forkserver" if workers else None,
            persistent_workers=workers > 0,
            pin_memory=pin_memory,
        )

    def _shape(self) -> tuple[int, int, int, int]:
        return (int(self._first[-1]), self.channels, self.patch, self.patch)

    def _memmap(self) -> np.memmap:
        if self._patches is None:
            self._patches = np.memmap(
                self.path / _PATCHES, dtype=self.dtype, mode="r", shape=self._shape()
            )
        return self._patches


class PatchSampler(torch.utils.data.Sampler):
    """Batches of patch indices for one epoch of one shard, in an order fixed by (seed, epoch).

    The epoch's order is ``numpy.random.default_rng([seed, epoch]).permutation(n)`` (or
    ``arange(n)`` without shuffling). For ``world_size`` shards it is first made a multiple of
    ``world_size`` long, by repeating its first patches (or, with ``drop_last``, dropping its
    last ones), and shard ``rank`` takes every ``world_size``-th patch from position ``rank``, so
    shards are disjoint apart from the repeated patches, and equally long. Each item is a pair
    of int64 arrays: the batch's store indices and their rows in the store's file.

    Args:
        n: patches in the store.
        batch_size: patches per batch, >= 1.
        shuffle, seed, epoch, drop_last, rank, world_size: as in :meth:`PatchStore.loader`.
        rows: file row of each store index; default the index itself.

    Raises:
        XadtError: an option is out of range; the message names it.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        rows: np.ndarray | None = None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("world_size", world_size)):
            require(
                is_int(value) and value >= 1, "the patch loader", name, "an integer >= 1", value
            )
        for name, value in (("seed", seed), ("epoch", epoch)):
            require(
                is_int(value) and value >= 0, "the patch loader", name, "an integer >= 0", value
            )
        ok = is_int(rank) and 0 <= rank < world_size
        require(
            ok,
            "the patch loader",
            "rank",
            f"an integer in 0..{world_size - 1} (world_size - 1)",
            rank,
        )
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.epoch = epoch
        self._rows = np.arange(n, dtype=np.int64) if rows is None else rows

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        require(is_int(epoch) and epoch >= 0, "the patch loader", "epoch", "an integer >= 0", epoch)
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        """int64 store indices of this shard for the current epoch, in order."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n, dtype=np.int64)
        if self.world_size > 1:
            order = np.resize(order, self._shard_size() * self.world_size)
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _shard_size(self) -> int:
        if self.drop_last:
            return self.n // self.world_size
        return -(-self.n // self.world_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.indices()
        for batch in range(len(self)):
            chosen = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield chosen, self._rows[chosen]


class _Reader(torch.utils.data.Dataset):
    """Reads batches of rows from a store's patch file; only the file's name is pickled into a
    worker process, which maps the file itself."""

    def __init__(self, file: str, dtype: str, shape: tuple[int, int, int, int]) -> None:
        self.file, self.dtype, self.shape = file, dtype, shape
        self._array: np.memmap | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __getitem__(self, item: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        indices, rows = item
        if self._array is None:
            self._array = np.memmap(
                self.file, dtype=np.dtype(self.dtype), mode="r", shape=self.shape
            )
        patches = unit_patches(np.asarray(self._array[rows]))
        return torch.from_numpy(patches), torch.from_numpy(np.asarray(indices, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Building


class _Builder:
    """Streams scans into a new store, or follows an existing one while the scans match it."""

    def __init__(self, root: Path, settings: PatchSettings, stores: list[PatchStore]) -> None:
        self.root, self.settings = root, settings
        self.following = stores  # stores whose first scans are the scans so far, in order
        self.known = {
            entry["digest"]: (store, k)
            for store in stores
            for k, entry in enumerate(store._meta["scans"])
        }
        self.entries: list[dict[str, Any]] = []
        self.ids: set[str] = set()
        self.kind: tuple[np.dtype, int, str] | None = None
        self.temp: Path | None = None
        self.out: tuple[BinaryIO, BinaryIO] | None = None  # the patch and box files
        self.count = 0

    def add(self, scan: Scan) -> None:
        self._check(scan)
        digest = scan_digest(scan)
        k = len(self.entries)
        if self.temp is None:
            still = [
                s for s in self.following if _entries(s)[k : k + 1] and _digest(s, k) == digest
            ]
            if still:
                self.following = still
                self.entries.append(_entries(still[0])[k])
                return
            self._start()
        if digest in self.known:
            store, j = self.known[digest]
            self._copy(store, j, j + 1)
            self.entries.append(_entries(store)[j])
            return
        result = scan_patches(scan, self.settings)
        views = []
        for view in result.views:
            patches, boxes = self._files()
            patches.write(np.ascontiguousarray(view.patches).data)
            boxes.write(np.ascontiguousarray(view.boxes, dtype=np.int64).data)
            crop = None if view.crop is None else dataclasses.astuple(view.crop)
            views.append({"shape": list(view.shape), "crop": crop, "count": len(view.boxes)})
            self.count += len(view.boxes)
        self.entries.append({"id": scan.id, "digest": digest, "views": views})

    def finish(self) -> PatchStore:
        if not self.entries:
            msg = f"{self.root}: no scans to build a patch store from"
            raise XadtError(msg)
        if self.temp is None:
            if len(_entries(self.following[0])) == len(self.entries):
                return self.following[0]
            self._start()
        if self.count == 0:
            msg = (
                f"{self.root}: no patches: every view of the {len(self.entries)} scans is all air "
                f"(air_level={self.settings.air_level:.3g}, min_area={self.settings.min_area:.3g})"
            )
            raise XadtError(msg)
        assert self.temp is not None
        dtype, channels, _ = self.kind  # type: ignore[misc]
        key = _key(self.settings, [e["digest"] for e in self.entries])
        meta = {
            "format": FORMAT,
            "key": key,
            "settings": dataclasses.asdict(self.settings),
            "dtype": dtype.name,
            "channels": channels,
            "count": self.count,
            "scans": self.entries,
        }
        for handle in self._files():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        with (self.temp / _META).open("x", encoding="utf-8") as handle:
            json.dump(meta, handle)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(self.temp)
        target = self.root / key
        if target.exists():
            with contextlib.suppress(XadtError):
                return PatchStore.open(target)  # built meanwhile by another process
            _remove(target)  # an unusable store with this key: replace it
        try:
            self.temp.rename(target)
        except OSError:
            if not target.exists():
                raise
            return PatchStore.open(target)  # another process renamed its build first
        self.temp = None
        fsync_dir(self.root)
        return PatchStore.open(target)

    def discard(self) -> None:
        """Remove the unfinished build, if any (after an error, or after a reuse)."""
        for handle in self.out or ():
            handle.close()
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None

    def _check(self, scan: Scan) -> None:
        if scan.id in self.ids:
            msg = f"scan id {scan.id!r} appears twice; a patch store needs unique scan ids"
            raise XadtError(msg)
        self.ids.add(scan.id)
        for k, view in enumerate(scan.views):
            kind = (view.dtype, int(view.shape[2]))
            if self.kind is None:
                self.kind = (*kind, scan.id)
            elif kind != self.kind[:2]:
                where = f" ({scan.sources[min(k, len(scan.sources) - 1)]})" if scan.sources else ""
                msg = (
                    f"scan {scan.id!r} view {k}{where} is {kind[0]} with {kind[1]} channel(s), but "
                    f"the patch store holds {self.kind[0]} with {self.kind[1]} (from scan "
                    f"{self.kind[2]!r}); build one store per kind of scan"
                )
                raise XadtError(msg)

    def _start(self) -> None:
        """Open the temporary build folder and copy the scans followed so far into it."""
        name = f"{_BUILDING}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.temp = self.root / name
        try:
            self.temp.mkdir()
            self.out = ((self.temp / _PATCHES).open("xb"), (self.temp / _BOXES).open("xb"))
        except OSError as exc:
            msg = f"{self.root}: cannot write a patch store here ({exc.strerror or exc})"
            raise XadtError(msg) from None
        if self.entries:
            self._copy(self.following[0], 0, len(self.entries))

    def _copy(self, store: PatchStore, first: int, last: int) -> None:
        """Append the patches and boxes of scans ``first:last`` of ``store``."""
        patches, boxes = self._files()
        start, stop = int(store._first[first]), int(store._first[last])
        item = store.channels * store.patch**2 * store.dtype.itemsize
        _copy_bytes(store.path / _PATCHES, start * item, (stop - start) * item, patches)
        _copy_bytes(store.path / _BOXES, start * 32, (stop - start) * 32, boxes)
        self.count += stop - start

    def _files(self) -> tuple[BinaryIO, BinaryIO]:
        assert self.out is not None, "the build has not started"
        return self.out


def _entries(store: PatchStore) -> list[dict[str, Any]]:
    return store._meta["scans"]


def _digest(store: PatchStore, k: int) -> str:
    return str(store._meta["scans"][k]["digest"])


def _key(settings: PatchSettings, digests: list[str]) -> str:
    text = json.dumps(
        {"format": FORMAT, "settings": dataclasses.asdict(settings), "scans": digests},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _stores_like(root: Path, settings: PatchSettings) -> list[PatchStore]:
    """The complete stores under ``root`` cut with ``settings``; unusable ones are skipped."""
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / _META).is_file():
            continue
        try:
            store = PatchStore.open(folder)
        except XadtError:
            continue
        if store.settings == settings:
            found.append(store)
    return found


def _remove_dead_builds(root: Path) -> None:
    """Remove ``.building-<host>-<pid>-*`` folders of this host whose process has ended."""
    prefix = f"{_BUILDING}{socket.gethostname()}-"
    for folder in root.glob(f"{prefix}*"):
        pid = folder.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            _remove(folder)


def _remove(folder: Path) -> None:
    """Delete ``folder``, renaming it to a hidden name first so it never looks complete."""
    hidden = folder.with_name(f".removing-{uuid.uuid4().hex[:8]}")
    try:
        folder.rename(hidden)
    except OSError:
        hidden = folder
    shutil.rmtree(hidden, ignore_errors=True)


def _copy_bytes(source: Path, offset: int, length: int, out: BinaryIO) -> None:
    with source.open("rb") as handle:
        handle.seek(offset)
        while length > 0:
            chunk = handle.read(min(length, _COPY_CHUNK))
            if not chunk:
                msg = f"{source}: ends before the patches its store.json lists"
                raise XadtError(msg)
            out.write(chunk)
            length -= len(chunk)


# ---------------------------------------------------------------------------------------------
# Metadata checks


def _check_meta(meta: Any, file: Path) -> None:
    """Raise a one-line ``XadtError`` naming ``file`` when ``meta`` is not a valid store.json."""

    def fail(what: str) -> NoReturn:
        msg = f"{file}: {what}"
        raise XadtError(msg)

    if not isinstance(meta, dict):
        fail("expected a JSON object")
    if meta.get("format") != FORMAT:
        fail(f"patch store format {meta.get('format')!r}, but this xadt reads format {FORMAT}")
    for name, kind in (("key", str), ("settings", dict), ("dtype", str), ("scans", list)):
        if not isinstance(meta.get(name), kind):
            fail(f"'{name}' is missing or not a {kind.__name__}")
    try:
        PatchSettings(**meta["settings"])
    except (TypeError, XadtError) as exc:
        fail(f"'settings' are not valid patch settings ({exc})")
    if meta["dtype"] not in _DTYPES:
        fail(f"'dtype' is {meta['dtype']!r}, not one of {', '.join(_DTYPES)}")
    for name in ("channels", "count"):
        if not is_int(meta.get(name)) or meta[name] < 1:
            fail(f"'{name}' is missing or not an integer >= 1")
    total = 0
    for k, entry in enumerate(meta["scans"]):
        problem = _entry_problem(entry)
        if problem is not None:
            fail(f"scan {k} of 'scans' {problem}")
        total += sum(v["count"] for v in entry["views"])
    if total != meta["count"]:
        fail(f"the scans list {total} patches, but 'count' is {meta['count']}")


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        return "has no string 'id'"
    if not isinstance(entry.get("digest"), str):
        return "has no string 'digest'"
    views = entry.get("views")
    if not isinstance(views, list) or not views:
        return "has no list of 'views'"
    for view in views:
        shape, crop, count = (view.get(n) if isinstance(view, dict) else None for n in _VIEW_KEYS)
        if not (_ints(shape, 2) and min(shape) >= 1 and is_int(count) and count >= 0):
            return "has a view without a valid 'shape' and 'count'"
        if crop is None:
            if count:
                return "has an all-air view (crop null) with patches"
            continue
        inside = _ints(crop, 4) and crop[0] < crop[2] <= shape[0] and crop[1] < crop[3] <= shape[1]
        if not (inside and min(crop) >= 0):
            return "has a view whose 'crop' is not inside its shape"
    return None


_VIEW_KEYS = ("shape", "crop", "count")


def _ints(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(is_int(v) for v in value)
