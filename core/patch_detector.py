"""Trainable detectors that work on patches of X-ray scans: the GAN family, ``geom``, the tutorial
autoencoder.

A :class:`PatchDetector` trains from a :class:`xadt.patchstore.PatchStore` (air-cropped normal
scans, downscaled, tiled once per run and reused across epochs) and scores every patch of a scan,
cut by the same :func:`xadt.patchstore.scan_patches`, in batches. The scan score is the worst
patch (or the mean of the ``top_k`` worst); maps are window scores (:func:`xadt.aggregate.
window_map`) or per-pixel errors pasted back through the crop (:func:`xadt.aggregate.pixel_map`).
A subclass supplies its networks, its training step and :meth:`PatchDetector.score_patches`.
"""

from __future__ import annotations

import abc
import functools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from xadt.aggregate import EMPTY_SCAN_SCORE, errors_map, scan_score, window_map
from xadt.config import option
from xadt.context import RunContext, report_within
from xadt.detector import PatchScores, ScanResult
from xadt.engine import TrainableDetector, TrainingOptions
from xadt.errors import XadtError
from xadt.outputs import remove_dead_leftovers
from xadt.patchstore import PatchSettings, PatchStore, ScanPatches, scan_patches, unit_patches
from xadt.scans import Scan
from xadt.training_data import TrainingData

__all__ = ["PatchDetector", "PatchOptions", "StoreBatches"]


@dataclass
class PatchOptions(TrainingOptions):
    """Options of every patch detector, besides the training ones."""

    patch: int = option(
        64,
        help="side of the square patches, in pixels after downscaling (a power of two for the "
        "GAN family)",
        check=(lambda v: v >= 8, "an integer >= 8"),
    )
    stride: int = option(
        32,
        help="largest step between neighbouring patches, in pixels after downscaling (<= patch)",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    downscale: float = option(
        0.25,
        help="factor applied to the air-cropped scan before tiling, so that a patch holds a "
        "meaningful part of a parcel (1 = full resolution)",
        check=(lambda v: 0 < v <= 1, "a float in (0, 1]"),
    )
    crop: bool = option(
        True,
        help="cut the air off each scan before tiling; False keeps the whole image (natural "
        "images, benchmarks: with patch = the image side, stride = patch and downscale = 1, one "
        "patch per image)",
    )
    reduction: Literal["max", "top-k mean"] = option(
        "max", help="scan score from patch scores: the worst patch, or the mean of the top_k worst"
    )
    top_k: int = option(
        5,
        help="patches averaged by reduction='top-k mean'",
        check=(lambda v: v >= 1, "an integer >= 1"),
    )
    score_batch: int = option(
        256,
        help="patches per forward pass when scoring",
        check=(lambda v: v >= 1, "an integer >= 1"),
        runtime=True,
    )


class StoreBatches:
    """Training batches drawn from a patch store in a seeded order (see :class:`Batches`)."""

    def __init__(
        self,
        store: PatchStore,
        batch_size: int,
        *,
        seed: int,
        workers: int = 0,
        validation: StoreBatches | None = None,
    ) -> None:
        self.store, self.batch_size, self.seed, self.workers = store, batch_size, seed, workers
        self.validation = validation
        self.info = {"channels": store.channels, "patch": store.patch}

    def __len__(self) -> int:
        return -(-len(self.store) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        """The store's patches in the order of (seed, ``epoch``), ``batch_size`` at a time."""
        loader = self.store.loader(
            self.batch_size, shuffle=True, seed=self.seed, epoch=epoch, workers=self.workers
        )
        for patches, _indices in loader:
            yield patches


class PatchDetector(TrainableDetector):
    """A trainable detector on patches of air-cropped, downscaled scans (module docstring).

    Subclasses set ``Config`` (a :class:`PatchOptions` subclass), ``map_kind`` (``"window"``:
    each patch's score spread over its window; ``"pixel"``: per-pixel errors) and implement the
    engine's hooks plus :meth:`score_patches`.
    """

    Config: ClassVar[type] = PatchOptions
    config: PatchOptions
    map_kind: ClassVar[Literal["window", "pixel"]] = "window"

    def validate(self) -> None:
        """Check every option and that ``stride`` <= ``patch``; raise ``XadtError``."""
        super().validate()
        if self.config.stride > self.config.patch:
            msg = (
                f"The 'stride' option of {self.name} must be an integer in 1..patch "
                f"({self.config.patch}), so that patches leave no gaps. Got {self.config.stride!r} "
                "instead."
            )
            raise XadtError(msg)

    @abc.abstractmethod
    def score_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Anomaly scores of a batch of [0, 1] patches (B, C, p, p), higher = more anomalous.

        Called in evaluation mode without gradients. Returns the (B,) patch scores and, for
        ``map_kind = "pixel"``, the (B, p, p) per-pixel errors (else None).
        """

    def settings(self) -> PatchSettings:
        """How scans are cut into patches, for training and scoring alike."""
        c = self.config
        return PatchSettings(patch=c.patch, stride=c.stride, downscale=c.downscale, crop=c.crop)

    def batches(self, data: TrainingData, context: RunContext) -> StoreBatches:
        """Batches from patch stores of ``data`` and ``data.validation``, built once per run.

        The stores live under ``context.cache_dir / "patches"`` (reused by later runs on the same
        scans and settings), or in a temporary folder removed when the detector is.
        """
        folder = self._store_folder(context)
        context.progress.stage("tiling scans into patches", len(data) + len(data.validation))
        store = PatchStore.build(data, folder, self.settings(), progress=_stage(context, 0))
        if len(store) == 0:
            msg = f"{self.name}: the training scans gave no patches (are they all air?)"
            raise XadtError(msg)
        validation = None
        if len(data.validation):
            valid = PatchStore.build(
                data.validation, folder, self.settings(), progress=_stage(context, len(data))
            )
            validation = StoreBatches(valid, self.config.batch_size, seed=context.seed)
        return StoreBatches(
            store,
            self.config.batch_size,
            seed=context.seed,
            workers=context.workers,
            validation=validation,
        )

    def score(self, scans: Iterable[Scan], context: RunContext | None = None) -> list[ScanResult]:
        """Score every patch of each scan; the scan score reduces them (``reduction``).

        ``patches`` holds each view's windows (clipped to the view) and scores; ``maps`` a
        float32 map per view, NaN outside the parcel. A scan that is all air in every view scores
        :data:`xadt.aggregate.EMPTY_SCAN_SCORE`, so that a person looks at it. Patches of
        consecutive small scans share forward passes of up to ``score_batch`` patches (many
        one-patch images score at batch speed); a scan's scores do not depend on its neighbours.
        """
        self.check_fitted()
        progress = (context or RunContext()).progress
        results = []
        with self.inference(context) as device:
            for group in self._groups(scans):
                patches = np.concatenate([cut.patches for _, cut in group])
                # A group of more than one batch is one large scan (and maybe a few small ones).
                item = group[-1][0].id if len(group) == 1 else f"{len(group)} scans"
                report = functools.partial(report_within, progress, item)
                scores, errors = self._forward(patches, device, report)
                offset = 0
                for scan, cut in group:
                    end = offset + len(cut.patches)
                    part = None if errors is None else errors[offset:end]
                    results.append(self._result(scan, cut, scores[offset:end], part))
                    offset = end
        return results

    def _groups(self, scans: Iterable[Scan]) -> Iterator[list[tuple[Scan, ScanPatches]]]:
        """Consecutive scans with their cut patches, each group holding at least
        ``score_batch`` patches (or the last scans), so memory stays one batch plus one scan."""
        settings = self.settings()
        group: list[tuple[Scan, ScanPatches]] = []
        count = 0
        for scan in scans:
            cut = scan_patches(scan, settings)
            group.append((scan, cut))
            count += len(cut.patches)
            if count >= self.config.score_batch:
                yield group
                group, count = [], 0
        if group:
            yield group

    def _forward(
        self, patches: np.ndarray, device: torch.device, report: Callable[[int, int], None]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        scores, errors = [], []
        step = self.config.score_batch
        for start in range(0, len(patches), step):
            if start:  # a scan of more than one batch: show it move
                report(start, len(patches))
            batch = torch.from_numpy(unit_patches(patches[start : start + step])).to(device)
            s, e = self.score_patches(batch)
            scores.append(s.float().cpu().numpy().astype(np.float64))
            if e is not None:
                errors.append(e.float().cpu().numpy())
        if not scores:
            return np.zeros(0), None
        return np.concatenate(scores), (np.concatenate(errors) if errors else None)

    def _result(
        self, scan: Scan, cut: Any, scores: np.ndarray, errors: np.ndarray | None
    ) -> ScanResult:
        patches, maps, offset = [], [], 0
        for k, view in enumerate(cut.views):
            n = len(view.boxes)
            s = scores[offset : offset + n]
            h, w = view.shape
            clipped = np.clip(view.boxes, 0, [h, w, h, w]).astype(np.int64)
            patches.append(PatchScores(view=k, boxes=clipped, scores=s))
            if self.map_kind == "pixel" and errors is not None:
                maps.append(
                    errors_map(view.boxes, errors[offset : offset + n], view.crop, view.shape)
                )
            else:
                maps.append(window_map(view.boxes, s, view.crop, view.shape))
            offset += n
        if not len(scores):
            return ScanResult(scan.id, EMPTY_SCAN_SCORE, {}, patches, maps)
        total = scan_score(scores, self.config.reduction, self.config.top_k)
        return ScanResult(scan.id, total, {}, patches, maps)

    def _store_folder(self, context: RunContext) -> Path:
        if context.cache_dir is not None:
            return context.cache_dir / "patches"
        parent, prefix = Path(tempfile.gettempdir()), f"xadt-{self.name}-patches-"
        remove_dead_leftovers(parent, prefix)  # stores of killed runs
        folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        return folder


def _stage(context: RunContext, offset: int) -> Any:
    """A store-building progress callback that reports to the run's current stage."""

    def report(done: int, _total: int | None) -> None:
        context.progress.update(offset + done)

    return report
