"""``xadt train --engine ray``: fit a :class:`xadt.detector.ShardedFit` detector on Ray.

The scans are listed and split as ``xadt train`` splits them (a hash of each id). The fit scans
are cut into one contiguous shard per actor; each round the driver sends the detector to every
actor, which reads its shard and returns the round's statistics, and the detector merges them
(:meth:`~xadt.detector.ShardedFit.merge_shards`). Actors keep their shard's features in a cache
between rounds; one that dies is restarted by Ray and redoes its call. The held-out scans are
then scored on Ray as ``xadt score --engine ray`` scores, and the model is calibrated and saved.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from xadt.artifacts import save_model, store_path
from xadt.calibration import calibrate
from xadt.context import RunContext
from xadt.defaults import DEFAULT_HOLDOUT, DEFAULT_TARGET_FPR
from xadt.detector import Detector, ShardedFit
from xadt.distributed import ray_session, user_error
from xadt.distributed.listing import ScanSource, list_scans, read_source
from xadt.distributed.scoring import (
    LOCAL,
    RayOptions,
    model_files,
    results_from_rows,
    score_sources,
)
from xadt.errors import XadtError
from xadt.host import Registry
from xadt.outputs import remove_dead_leftovers
from xadt.scans import Scan, ScanReadError
from xadt.training_data import check_fraction
from xadt.workflows.train import (
    TrainResult,
    build_detector,
    check_model_path,
    fitted_model,
    skipped_line,
    split_training_ids,
)

__all__ = ["fit_shards", "train_ray"]


def train_ray(
    plugin: str | type[Detector],
    data: str,
    *,
    context: RunContext,
    ray_options: RayOptions = LOCAL,
    output: str | Path | None = None,
    overrides: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    options_file: str = "options",
    holdout: float = DEFAULT_HOLDOUT,
    validation: float | None = None,
    target_fpr: float = DEFAULT_TARGET_FPR,
    overwrite: bool = False,
) -> TrainResult:
    """Fit, calibrate and save a detector on Ray, as :func:`xadt.workflows.train.train` does in
    one process; the model equals that one up to floating-point reassociation of its sums.

    ``data`` is a folder, a glob or a manifest of scans (see
    :func:`xadt.distributed.listing.list_scans`); the other arguments are ``train``'s.

    Raises:
        XadtError: the detector cannot fit in shards, or any error ``train`` raises.
    """
    context.torch_device()  # a bad --device fails before any scan is read
    registry = context.plugins()
    cls = registry.get_detector(plugin) if isinstance(plugin, str) else plugin
    detector = build_detector(cls, overrides, options=options, where=options_file)
    if not isinstance(detector, ShardedFit):
        msg = (
            f"--engine ray fits only detectors whose fit is sums over shards (such as gaussian "
            f"and baseline); train {cls.name} in one process, or with --engine ddp if it trains "
            "a network"
        )
        raise XadtError(msg)
    fraction = detector.default_validation() if validation is None else validation
    check_fraction("--target-fpr", target_fpr)
    sources = list_scans(str(data))
    target = check_model_path(
        store_path(cls.name) if output is None else output, overwrite=overwrite
    )
    split = split_training_ids(data, [s.id for s in sources], holdout, fraction, context.seed)
    by_id = {s.id: s for s in sources}
    with ray_session(ray_options.address, num_cpus=ray_options.num_cpus) as ray:
        skipped = fit_shards(
            ray, detector, [by_id[i] for i in split.fit], context=context, options=ray_options
        )
        n_unread = len(skipped)
        model = fitted_model(detector, split, context=context, data=str(data))
        held = [{"id": i, "files": list(by_id[i].files)} for i in split.calibration]
        context.progress.stage("calibrating", len(held))
        with tempfile.TemporaryDirectory(prefix="xadt-uncalibrated-") as tmp:
            save_model(Path(tmp) / "model", model)
            files = model_files(model)
            rows = [
                row
                for batch in score_sources(
                    ray, held, files, context=context, options=ray_options, patches=True
                )
                for row in batch
            ]
    skipped += [(Path(r["file"]), r["error"]) for r in rows if r["error"] is not None]
    model.calibration = calibrate(results_from_rows(rows), target_fpr)
    n_fitted = len(split.fit) - n_unread
    assert model.provenance is not None
    model.provenance.training.update(n_fitted=n_fitted, n_skipped=len(skipped))
    context.progress.stage("saving")
    path = save_model(target, model, overwrite=overwrite)
    n_holdout = model.calibration.n_holdout
    return TrainResult(
        path=path,
        model=model,
        n_fitted=n_fitted,
        n_validation=len(split.validation),
        n_holdout=n_holdout,
        skipped=skipped,
        summary=f"{skipped_line(skipped, len(sources))}; fitted on {n_fitted}, calibrated on "
        f"{n_holdout} held out",
    )


def fit_shards(
    ray: ModuleType,
    detector: ShardedFit,
    sources: Sequence[ScanSource],
    *,
    context: RunContext,
    options: RayOptions = LOCAL,
) -> list[tuple[Path, str]]:
    """Fit ``detector`` round by round on one shard of ``sources`` per Ray actor.

    Returns:
        ``(file, reason)`` of each scan that could not be read (and was left out of the fit).
    """
    n = min(options.pool_size(ray), max(1, len(sources)))
    bounds = [round(k * len(sources) / n) for k in range(n + 1)]
    shards = [list(sources[bounds[k] : bounds[k + 1]]) for k in range(n)]
    worker = ray.remote(
        num_cpus=1,
        num_gpus=options.gpus(ray),
        max_restarts=-1,
        max_task_retries=-1,
    )(_ShardWorker)
    registry = context.plugins()
    cache = None if context.cache_dir is None else str(context.cache_dir)
    actors = [worker.remote(shard, registry, context.device, cache) for shard in shards]
    skipped: dict[tuple[str, str], None] = {}
    rounds, done = 0, False
    while not done:
        rounds += 1
        context.progress.stage(f"fitting on Ray, round {rounds}", len(shards))
        sent = ray.put(detector)
        calls = [actor.fit.remote([sent]) for actor in actors]
        parts = []
        for k, call in enumerate(calls):
            try:
                part, unread = ray.get(call)
            except Exception as exc:
                cause = user_error(exc)
                if cause is None:
                    raise
                raise cause from None
            parts.append(part)
            skipped.update(dict.fromkeys(unread))
            context.progress.update(k + 1)
        done = detector.merge_shards(parts, context)
    ray.get([actor.close.remote() for actor in actors])
    for actor in actors:
        ray.kill(actor)
    return [(Path(file), reason) for file, reason in skipped]


class _ShardWorker:
    """Ray actor: one shard of the fit scans, and a feature cache that outlives the rounds."""

    def __init__(
        self, sources: list[ScanSource], registry: Registry, device: str, cache: str | None
    ) -> None:
        self.sources = sources
        # The pid in the name lets a later worker remove the cache of one that was killed.
        remove_dead_leftovers(Path(tempfile.gettempdir()), "xadt-shard-")
        self._tmp = tempfile.TemporaryDirectory(prefix=f"xadt-shard-{os.getpid()}-")
        self.context = RunContext(
            device=device, registry=registry, cache_dir=Path(cache or self._tmp.name)
        )

    def fit(self, detector: list[Any]) -> tuple[Any, list[tuple[str, str]]]:
        """One round on this shard: the statistics, and ``(file, reason)`` of unread scans."""
        import ray

        unread: list[tuple[str, str]] = []
        part = ray.get(detector[0]).fit_shard(self._scans(unread), self.context)
        return part, unread

    def close(self) -> None:
        """Remove the shard's feature cache (the actor is killed next)."""
        self._tmp.cleanup()

    def _scans(self, unread: list[tuple[str, str]]) -> Iterator[Scan]:
        for source in self.sources:
            try:
                yield read_source(source)
            except ScanReadError as exc:
                unread.append((source.listed(exc.path), exc.reason))
