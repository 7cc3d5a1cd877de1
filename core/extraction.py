"""From scans to per-patch backbone features: crop air, tile, extract, run the backbone, cache.

The backbone is the cost of every patch-feature detector, so each scan's features can be cached
on disk (float16, keyed by the scan's pixels, the backbone's weights and the tiling), and every
later pass (threshold search, ablations, scoring the training set) reads the cache in seconds.
Features are rounded through float16 whether or not a cache is used, so cached and fresh runs
score identically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_save

from xadt.backbones.base import Backbone
from xadt.backbones.execution import BackboneRunner, Execution
from xadt.crop import CropBox, EmptyScanError, crop_air
from xadt.scans import Scan, to_rgb
from xadt.tiling import patches_of, tile_view

__all__ = ["STAGES", "FeatureExtractor", "ScanFeatures", "Tiling", "ViewFeatures"]

STAGES = ("read", "crop", "extract", "backbone", "cache")
"""The stages :attr:`FeatureExtractor.timings` reports, in seconds."""

CACHE_FORMAT = "1"
"""Version of the cache file layout; files of another version are recomputed."""

_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class ViewFeatures:
    """Backbone features of the windows of one view.

    Attributes:
        shape: (H, W) of the full view.
        crop: where the parcel is in the view (air cropped off); None when the view holds no
            parcel (all air), in which case it has no windows.
        boxes: (N, 4) int64 windows ``(y0, x0, y1, x1)`` in full-view coordinates. A window is
            ``Tiling.window`` pixels square; where the crop is narrower than a window, the window
            is centred on the crop and overhangs it (the backbone saw white air there).
        pooled: (N, D) float32 appearance features (the backbone's pooled vector).
        logits: (N, C) float32 class logits (semantics).
    """

    shape: tuple[int, int]
    crop: CropBox | None
    boxes: np.ndarray
    pooled: np.ndarray
    logits: np.ndarray

    @property
    def empty(self) -> bool:
        """Whether the view holds no parcel (and so no windows)."""
        return self.crop is None


@dataclass(frozen=True)
class ScanFeatures:
    """Backbone features of every view of one scan.

    Attributes:
        scan_id: the ``Scan.id`` they belong to.
        views: one :class:`ViewFeatures` per view, in the scan's order.
        cache_file: the cache file they were read from or written to; None without a cache.
    """

    scan_id: str
    views: tuple[ViewFeatures, ...]
    cache_file: Path | None = field(default=None, compare=False)

    @property
    def pooled(self) -> np.ndarray:
        """(N, D) pooled features of all windows of all views, view after view."""
        return np.concatenate([v.pooled for v in self.views])

    @property
    def logits(self) -> np.ndarray:
        """(N, C) logits of all windows of all views, view after view."""
        return np.concatenate([v.logits for v in self.views])

    @property
    def counts(self) -> list[int]:
        """Number of windows of each view."""
        return [len(v.boxes) for v in self.views]

    @property
    def empty(self) -> bool:
        """Whether no view holds a parcel (the scan has no windows at all)."""
        return all(v.empty for v in self.views)


@dataclass(frozen=True)
class Tiling:
    """How views are cropped and tiled before the backbone (methods.md §1.2).

    Attributes:
        window: side of the square windows, in pixels.
        max_stride: largest step between neighbouring windows, in pixels (1..window).
        air_level: fraction of white at and above which a pixel is air (``crop_air``).
        opening: side of the opening that removes speckle before cropping, in pixels.
        min_area: smallest object kept when cropping, as a fraction of the view's area.
    """

    window: int = 224
    max_stride: int = 112
    air_level: float = 240 / 255
    opening: int = 5
    min_area: float = 0.01


@dataclass
class FeatureExtractor:
    """Turns scans into :class:`ScanFeatures`, batch by batch, optionally through a disk cache.

    Backbone batches are filled across scans (several small scans share one call), and scans come
    out in the order they went in. A scan's windows are cut into patches one batch at a time, so
    memory grows with ``batch_size``, not with the number of windows of a large scan. Each view
    is cropped (grey, or the high-energy channel of a dual-energy view), converted to RGB
    (``xadt.scans.to_rgb``), tiled, normalised for the backbone and, when the window differs
    from the backbone's input size, resized to it.

    Attributes:
        backbone: a frozen backbone (``xadt.backbones.create_backbone``); batches go to the device
            of its parameters.
        tiling: crop and window settings.
        batch_size: patches per backbone call.
        cache_dir: folder for cached features, or None for no cache. Files live under
            ``cache_dir / key``; an unreadable or inconsistent file is recomputed and replaced.
        empty_views: what a view in which cropping finds no parcel does. ``"raise"``: an
            ``EmptyScanError`` naming the scan, view and file. ``"keep"``: when the view has
            non-air pixels, but only in objects below ``min_area`` or thinner than the opening,
            those are its contents and it is cropped to all of them (no opening, no minimum
            area); when every pixel is air, it is kept as a view with no windows
            (``ViewFeatures.crop`` is None).
        timings: seconds spent per stage (:data:`STAGES`), accumulated over calls.
        cache_hits: scans whose features came from the cache.
        on_windows: called as ``on_windows(scan_id, done, total)`` after each backbone batch
            that holds windows of a scan too large for one batch, so a person sees a large scan
            move.
        execution: how the backbone runs (precision, channels-last, compilation, torch or ONNX
            Runtime); the default is the plain float32 forward.
    """

    backbone: Backbone
    tiling: Tiling = field(default_factory=Tiling)
    batch_size: int = 32
    cache_dir: Path | None = None
    empty_views: Literal["raise", "keep"] = "raise"
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cache_hits: int = 0
    on_windows: Callable[[str, int, int], None] | None = None
    execution: Execution = field(default_factory=Execution)

    def __post_init__(self) -> None:
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            msg = f"FeatureExtractor: batch_size must be an integer >= 1, got {self.batch_size!r}"
            raise ValueError(msg)
        if self.batch_size < 1:
            msg = f"FeatureExtractor: batch_size must be an integer >= 1, got {self.batch_size}"
            raise ValueError(msg)
        if self.empty_views not in ("raise", "keep"):
            msg = (
                f"FeatureExtractor: empty_views must be 'raise' or 'keep', got {self.empty_views!r}"
            )
            raise ValueError(msg)

    @property
    def key(self) -> str:
        """What the features depend on besides the pixels: backbone, weights, tiling, the
        handling of views without a parcel and a half precision (float32 adds nothing, so
        caches written before precisions existed stay valid)."""
        settings = {
            "backbone": self.backbone.name,
            "weights": self.backbone.weights_id,
            "empty_views": self.empty_views,
        }
        if self.execution.precision != "float32":
            settings["precision"] = self.execution.precision
        settings.update(vars(self.tiling))
        text = json.dumps(settings, sort_keys=True)
        return f"{self.backbone.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def cache_path(self, scan: Scan) -> Path | None:
        """The cache file of ``scan`` (whether or not it exists yet); None without a cache."""
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(scan.id.encode())
        digest.update(scan.encoding.encode())
        for view in scan.views:
            digest.update(f"{view.shape}{view.dtype}".encode())
            digest.update(np.ascontiguousarray(view).data)
        return self.cache_dir / self.key / f"{digest.hexdigest()[:32]}.safetensors"

    def __call__(self, scans: Iterable[Scan]) -> Iterator[ScanFeatures]:
        """Features of each scan in turn, in order; each scan is read once and not kept.

        Reading the scans (advancing ``scans``) is timed as the ``read`` stage. On a GPU a
        batch's outputs are collected after the next batch is launched, so the next batch is
        cut and copied while the previous one runs (scans then come out one batch later).
        """
        runner = BackboneRunner(self.backbone, self.execution, rows=self.batch_size)
        waiting: deque[_Job] = deque()  # every scan not yet yielded, in order
        pending: deque[_Job] = deque()  # scans with patches not yet sent to the backbone
        queued = 0
        running: _Batch | None = None  # launched, outputs not yet collected
        for scan in self._read(scans):
            job = self._start(scan)
            waiting.append(job)
            if job.features is None:
                pending.append(job)
                queued += job.n
            while queued >= self.batch_size:
                queued -= (running := self._step(runner, pending, running)).rows
            while waiting and waiting[0].features is not None:
                yield waiting.popleft().done()
        while pending:
            running = self._step(runner, pending, running)
        self._collect(runner, running)
        while waiting:
            yield waiting.popleft().done()

    def extract(self, scan: Scan) -> ScanFeatures:
        """Features of one scan, from the cache when it holds them."""
        return next(iter(self([scan])))

    def load(self, file: str | os.PathLike[str]) -> ScanFeatures | None:
        """The features in a cache file written by this extractor, or None when it is absent,
        unreadable, of another layout, or does not fit this backbone."""
        start = time.perf_counter()
        try:
            return _read_cache(Path(file), self.backbone.feature_dims)
        finally:
            self.timings["cache"] += time.perf_counter() - start

    # -- the stages ------------------------------------------------------------------------------

    def _read(self, scans: Iterable[Scan]) -> Iterator[Scan]:
        it = iter(scans)
        while True:
            start = time.perf_counter()
            try:
                scan = next(it)
            except StopIteration:
                return
            self.timings["read"] += time.perf_counter() - start
            yield scan

    def _start(self, scan: Scan) -> _Job:
        """A job for one scan: finished at once on a cache hit, else holding its patches."""
        cache_file = self.cache_path(scan)
        if cache_file is not None:
            cached = self.load(cache_file)
            if cached is not None and cached.scan_id == scan.id:
                self.cache_hits += 1
                return _Job(scan.id, [], [], None, features=cached)
        t = self.tiling
        start = time.perf_counter()
        crops = [self._crop(scan, k) for k in range(len(scan.views))]
        rgb = to_rgb(scan)
        self.timings["crop"] += time.perf_counter() - start
        start = time.perf_counter()
        plans, tiles = [], []
        for view, crop in zip(rgb.views, crops, strict=True):
            shape = (int(view.shape[0]), int(view.shape[1]))
            if crop is None:
                plans.append((shape, None, np.zeros((0, 4), dtype=np.int64)))
                continue
            cropped = crop.apply(view)
            boxes = tile_view(cropped, size=t.window, max_stride=t.max_stride)
            tiles.append((cropped, boxes))
            plans.append((shape, crop, crop.shift(boxes)))
        self.timings["extract"] += time.perf_counter() - start
        job = _Job(scan.id, plans, tiles, cache_file)
        if job.n == 0:
            self._finish(job)
        return job

    def _crop(self, scan: Scan, k: int) -> CropBox | None:
        """The parcel of view ``k`` (see ``empty_views``); None when every pixel is air."""
        t = self.tiling
        channel = 0 if scan.encoding == "dual-energy" else None
        view = scan.views[k]
        try:
            return crop_air(
                view,
                air_level=t.air_level,
                opening=t.opening,
                min_area=t.min_area,
                channel=channel,
            )
        except EmptyScanError as exc:
            if self.empty_views == "raise":
                raise _empty_error(scan, k, str(exc)) from None
        try:
            return crop_air(view, air_level=t.air_level, opening=1, min_area=0.0, channel=channel)
        except EmptyScanError:
            return None

    def _step(self, runner: BackboneRunner, pending: deque[_Job], running: _Batch | None) -> _Batch:
        """Launch the next batch, then collect the running one; return what now runs. On a CPU
        the forward is done when it returns, so the new batch is collected at once too (and
        the batch returned has no outputs left to hand out)."""
        launched = self._launch(runner, pending)
        self._collect(runner, running)
        if not runner.cuda:
            self._collect(runner, launched)
            return _Batch(launched.owners, None)
        return launched

    def _launch(self, runner: BackboneRunner, pending: deque[_Job]) -> _Batch:
        """Cut up to ``batch_size`` queued patches and launch the backbone on them."""
        parts: list[np.ndarray] = []
        owners: list[tuple[_Job, int]] = []
        room = self.batch_size
        start = time.perf_counter()
        while pending and room:
            job = pending[0]
            take = min(room, job.n - job.sent)
            parts.extend(self._patches(job, job.sent, take))
            owners.append((job, take))
            job.sent += take
            room -= take
            if job.sent == job.n:
                pending.popleft()
                job.tiles = []  # every patch is cut: the views can go
        batch = runner.stage(parts)
        del parts
        self.timings["extract"] += time.perf_counter() - start
        start = time.perf_counter()
        outputs = runner.launch(batch)
        self.timings["backbone"] += time.perf_counter() - start
        return _Batch(owners, outputs)

    def _collect(self, runner: BackboneRunner, batch: _Batch | None) -> None:
        """Hand a launched batch's outputs to the scans they belong to; nothing for None or a
        batch whose outputs are handed out."""
        if batch is None or batch.outputs is None:
            return
        start = time.perf_counter()
        pooled, logits = runner.collect(batch.outputs)
        self.timings["backbone"] += time.perf_counter() - start
        offset = 0
        for job, take in batch.owners:
            job.outputs.append((pooled[offset : offset + take], logits[offset : offset + take]))
            offset += take
            job.received += take
            if self.on_windows is not None and job.n > self.batch_size:
                self.on_windows(job.scan_id, job.received, job.n)
            if job.received == job.n:
                self._finish(job)

    def _patches(self, job: _Job, first: int, count: int) -> list[np.ndarray]:
        """Patches ``first .. first + count - 1`` of a job, cut from its views now."""
        t = self.tiling
        parts, offset = [], 0
        for view, boxes in job.tiles:
            lo, hi = max(first - offset, 0), min(first + count - offset, len(boxes))
            if lo < hi:
                parts.append(
                    patches_of(
                        view,
                        boxes[lo:hi],
                        size=t.window,
                        mean=self.backbone.mean,
                        std=self.backbone.std,
                    )
                )
            offset += len(boxes)
        return parts

    def _finish(self, job: _Job) -> None:
        d, c = self.backbone.feature_dims
        if job.outputs:
            pooled = _half(np.concatenate([o[0] for o in job.outputs]))
            logits = _half(np.concatenate([o[1] for o in job.outputs]))
        else:
            pooled, logits = np.zeros((0, d), np.float32), np.zeros((0, c), np.float32)
        views, offset = [], 0
        for shape, crop, boxes in job.plans:
            n = len(boxes)
            views.append(
                ViewFeatures(
                    shape=shape,
                    crop=crop,
                    boxes=boxes,
                    pooled=pooled[offset : offset + n],
                    logits=logits[offset : offset + n],
                )
            )
            offset += n
        job.features = ScanFeatures(
            scan_id=job.scan_id, views=tuple(views), cache_file=job.cache_file
        )
        job.outputs.clear()
        if job.cache_file is not None:
            start = time.perf_counter()
            _write_cache(job.cache_file, job.features)
            self.timings["cache"] += time.perf_counter() - start


@dataclass(frozen=True, eq=False)
class _Batch:
    """A launched backbone batch: which scans its rows belong to, and its outputs (None once
    they are handed out)."""

    owners: list[tuple[_Job, int]]
    outputs: tuple[torch.Tensor, torch.Tensor] | None

    @property
    def rows(self) -> int:
        return sum(take for _, take in self.owners)


@dataclass(eq=False)
class _Job:
    """One scan on its way through the backbone: its cropped views and their windows (in view
    coordinates) until every patch is cut, then the backbone's outputs."""

    scan_id: str
    plans: list[tuple[tuple[int, int], CropBox | None, np.ndarray]]
    tiles: list[tuple[np.ndarray, np.ndarray]]
    cache_file: Path | None
    sent: int = 0
    received: int = 0
    outputs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    features: ScanFeatures | None = None

    @property
    def n(self) -> int:
        return sum(len(boxes) for _, _, boxes in self.plans)

    def done(self) -> ScanFeatures:
        assert self.features is not None
        return self.features


def _empty_error(scan: Scan, view: int, why: str) -> EmptyScanError:
    where = f" ({scan.sources[min(view, len(scan.sources) - 1)]})" if scan.sources else ""
    return EmptyScanError(f"scan {scan.id!r} view {view}{where}: {why}")


def _half(x: np.ndarray) -> np.ndarray:
    # Saturate rather than overflow to inf: float16 tops out at 65504.
    clipped = np.clip(x, -_FLOAT16_MAX, _FLOAT16_MAX)
    return clipped.astype(np.float16).astype(np.float32)


def _write_cache(file: Path, features: ScanFeatures) -> None:
    tensors: dict[str, np.ndarray] = {}
    for k, v in enumerate(features.views):
        tensors[f"{k}.pooled"] = v.pooled.astype(np.float16)
        tensors[f"{k}.logits"] = v.logits.astype(np.float16)
        tensors[f"{k}.boxes"] = np.ascontiguousarray(v.boxes, dtype=np.int64)
        crop = (-1, -1, -1, -1) if v.crop is None else (v.crop.y0, v.crop.x0, v.crop.y1, v.crop.x1)
        tensors[f"{k}.geometry"] = np.array([*v.shape, *crop], dtype=np.int64)
    n_views = str(len(features.views))
    metadata = {"scan_id": features.scan_id, "format": CACHE_FORMAT, "views": n_views}
    blob = safetensors_save(tensors, metadata=metadata)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
        Path(tmp).replace(file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(file: Path, dims: tuple[int, int]) -> ScanFeatures | None:
    """The cached features, or None when absent, unreadable or inconsistent (then recomputed)."""
    try:
        with safe_open(file, framework="np") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except (OSError, SafetensorError, ValueError):
        return None
    if metadata.get("format") != CACHE_FORMAT or "scan_id" not in metadata:
        return None
    try:
        n_views = int(metadata["views"])
        views = [_cached_view(tensors, k, dims) for k in range(n_views)]
    except (KeyError, ValueError, TypeError):
        return None
    if not views or len(tensors) != 4 * n_views:
        return None
    return ScanFeatures(scan_id=metadata["scan_id"], views=tuple(views), cache_file=file)


def _cached_view(tensors: dict[str, np.ndarray], k: int, dims: tuple[int, int]) -> ViewFeatures:
    """One view from a cache file; ``ValueError`` when its arrays do not fit together."""
    geometry = tensors[f"{k}.geometry"]
    boxes, pooled, logits = (tensors[f"{k}.{name}"] for name in ("boxes", "pooled", "logits"))
    n = boxes.shape[0] if boxes.ndim == 2 else -1
    ok = (
        geometry.shape == (6,)
        and boxes.shape == (n, 4)
        and boxes.dtype == np.int64
        and pooled.shape == (n, dims[0])
        and logits.shape == (n, dims[1])
        and pooled.dtype == logits.dtype == np.float16
    )
    if not ok:
        msg = f"cached view {k} has inconsistent arrays"
        raise ValueError(msg)
    h, w, y0, x0, y1, x1 = (int(v) for v in geometry)
    if h < 1 or w < 1:
        msg = f"cached view {k} has an empty shape"
        raise ValueError(msg)
    if y0 == -1:
        if n != 0:
            msg = f"cached view {k} has windows but no parcel"
            raise ValueError(msg)
        crop = None
    else:
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w) or n < 1:
            msg = f"cached view {k} has a crop outside its view"
            raise ValueError(msg)
        crop = CropBox(y0, x0, y1, x1)
    return ViewFeatures(
        shape=(h, w),
        crop=crop,
        boxes=boxes,
        pooled=pooled.astype(np.float32),
        logits=logits.astype(np.float32),
    )
