"""``xadt score --engine ray``: a Ray Data pipeline that scores listed scans on a pool of actors.

Scans are listed (:mod:`xadt.distributed.listing`), sorted by id and cut into fixed-size
partitions. Ray tasks read and decode each scan; stateful actors load the model once and call
the detector through :func:`xadt.workflows.score.score_in_chunks` (so any detector works and no
plugin writes Ray code); the driver writes each partition as a Parquet file once all its scans
are back (temporary file and rename). A partition's name holds its index and a hash of the model,
the runtime options and the partition's own scans, so a re-run skips exactly the partitions that
are done and a run with another model or list never takes a stale one. Actors that die are
restarted and their batches retried by Ray; the driver keeps one row per scan, so a retried
batch can neither lose nor double a scan. An unreadable scan is a row with an ``error``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from xadt.context import RunContext
from xadt.detector import PatchScores, ScanResult
from xadt.distributed import ray_session, user_error
from xadt.distributed.listing import ScanSource, list_scans, read_source
from xadt.errors import XadtError
from xadt.host import Registry
from xadt.model import Model
from xadt.outputs import write_bytes_atomic
from xadt.scans import Scan, ScanReadError
from xadt.workflows.score import CHUNK, ScoreRow, ScoreRun, score_in_chunks

__all__ = [
    "LOCAL",
    "PARTITION",
    "RayOptions",
    "model_files",
    "results_from_rows",
    "score_ray",
    "score_sources",
]

PARTITION = 256
"""Scans per results partition by default: the unit a re-run skips."""


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray.

    Attributes:
        address: the cluster (``auto``, ``ray://head:10001``); None starts a local Ray.
        workers: scoring actors (fit shards when training); None: as many as the cluster's
            GPUs allow when the actors take GPUs, else one per CPU.
        num_gpus_per_worker: GPUs each actor asks for; 0: CPU actors; None: 1 where the
            cluster has GPUs, else 0.
        batch_scans: scans per ``detector.score`` call on an actor.
        partition_scans: scans per results partition.
        num_cpus: CPUs of a local Ray (None: all of this machine's).
    """

    address: str | None = None
    workers: int | None = None
    num_gpus_per_worker: float | None = None
    batch_scans: int = CHUNK
    partition_scans: int = PARTITION
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch_scans", "partition_scans", "workers", "num_cpus"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                msg = f"--{name.replace('_', '-')} must be an integer >= 1; got {value!r}"
                raise XadtError(msg)
        if self.num_gpus_per_worker is not None and not self.num_gpus_per_worker >= 0:
            msg = f"--num-gpus-per-worker must be >= 0; got {self.num_gpus_per_worker!r}"
            raise XadtError(msg)

    def gpus(self, ray: ModuleType) -> float:
        """GPUs per actor on the connected cluster."""
        if self.num_gpus_per_worker is not None:
            return self.num_gpus_per_worker
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def pool_size(self, ray: ModuleType) -> int:
        """How many actors to start on the connected cluster."""
        if self.workers is not None:
            return self.workers
        resources = ray.cluster_resources()
        gpus = self.gpus(ray)
        if gpus > 0:
            return max(1, int(resources.get("GPU", 0) // gpus))
        return max(1, int(resources.get("CPU", 1)))


LOCAL = RayOptions()
"""The default: a local Ray on this machine, one actor per CPU."""


def model_files(model: Model) -> dict[str, bytes]:
    """The files of a saved model's directory, to ship to actors on any node.

    Raises:
        XadtError: the model was not loaded from or saved to a directory.
    """
    if model.path is None:
        msg = f"{model.name}: --engine ray scores a saved model; save it first"
        raise XadtError(msg)
    return {f.name: f.read_bytes() for f in sorted(Path(model.path).iterdir()) if f.is_file()}


def score_ray(
    model: Model,
    scans: str | Sequence[str],
    *,
    context: RunContext,
    overrides: Sequence[str] = (),
    options: RayOptions = LOCAL,
    parts: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreRun:
    """Score the scans at ``scans`` (folder, glob or manifest, local or remote) on Ray.

    Args:
        model: the loaded model (its directory is shipped to the actors, which load it again
            with ``overrides``); its calibration flags the results.
        scans: where the scans are (one input or several); see
            :func:`xadt.distributed.listing.list_scans`.
        context: the actors' device (``auto``: the GPU Ray gave an actor, if any), cache
            folder and plugin registry (sent to them, so they find the same detector).
        overrides: runtime ``--set`` options, as applied to ``model``.
        options: cluster, pool and batch sizes.
        parts: folder of the results partitions; done ones are skipped. None: a temporary one.
        progress: called as ``progress(done, total)`` in scans as partitions complete.

    Returns:
        The rows of the readable scans in id order and the unreadable ones as skipped.

    Raises:
        XadtError: nothing to score, Ray missing or unreachable, or a detector's own error.
    """
    sources = list_scans(scans)
    files = model_files(model)
    key = _model_key(files, overrides)
    size = options.partition_scans
    chunks = [sources[i : i + size] for i in range(0, len(sources), size)]
    with _parts_folder(parts) as folder:
        names = [folder / f"part-{k:06d}-{_part_key(key, c)}.parquet" for k, c in enumerate(chunks)]
        todo = [k for k, name in enumerate(names) if not name.is_file()]
        done = len(sources) - sum(len(chunks[k]) for k in todo)
        if progress is not None:
            progress(done, len(sources))
        if todo:
            items = [
                {"partition": k, "index": i, "id": s.id, "files": list(s.files)}
                for k in todo
                for i, s in enumerate(chunks[k])
            ]
            writer = _PartitionWriter({k: (names[k], len(chunks[k])) for k in todo})
            with ray_session(options.address, num_cpus=options.num_cpus) as ray:
                for batch in score_sources(
                    ray, items, files, context=context, overrides=overrides, options=options
                ):
                    done += writer.add(batch)
                    if progress is not None:
                        progress(done, len(sources))
            writer.check_complete()
        rows = [row for name in names for row in _read_partition(name)]
    return _score_run(rows, scans if isinstance(scans, str) else ", ".join(scans))


def score_sources(
    ray: ModuleType,
    items: list[dict[str, Any]],
    files: dict[str, bytes],
    *,
    context: RunContext,
    overrides: Sequence[str] = (),
    options: RayOptions = LOCAL,
    patches: bool = False,
) -> Iterator[list[dict[str, Any]]]:
    """Run the pipeline over ``items`` (dicts with ``id`` and ``files``, plus any keys to carry
    through, such as a partition and index) and yield the result rows as batches complete.

    Each row carries the item's keys and ``score``, ``normal_quantile``, ``partial`` (a JSON
    object), ``flag``, ``patches`` (how many), ``warning``, ``file`` and ``error`` (for an
    unreadable scan, its file and what is wrong with it); with ``patches=True`` also
    ``patch_scores``. Rows come
    back in no fixed order.

    Raises:
        XadtError: a detector's own error (for example weights that do not match the model).
    """
    from ray.data import ActorPoolStrategy

    batch = options.batch_scans
    size = min(options.pool_size(ray), len(items))
    blocks = min(len(items), max(size, math.ceil(len(items) / batch)))
    data = ray.data.from_items(items, override_num_blocks=blocks)
    data = data.map_batches(_read_batch, batch_size=batch, batch_format="numpy")
    data = data.map_batches(
        _Scorer,
        batch_size=batch,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=size),
        num_gpus=options.gpus(ray) or None,
        fn_constructor_kwargs={
            "files": [ray.put(files)],  # in a list, so the actor fetches it by reference
            "registry": context.plugins(),
            "overrides": list(overrides),
            "device": context.device,
            "cache": context.cache_dir,
            "patches": patches,
        },
    )
    try:
        for table in data.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield table.to_pylist()
    except Exception as exc:
        cause = user_error(exc)
        if cause is None:
            raise
        raise cause from None


@contextlib.contextmanager
def _parts_folder(parts: Path | None) -> Iterator[Path]:
    if parts is not None:
        parts.mkdir(parents=True, exist_ok=True)
        yield parts
        return
    with tempfile.TemporaryDirectory(prefix="xadt-parts-") as tmp:
        yield Path(tmp)


def _read_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray task: read and decode a batch of listed scans; unreadable ones get an ``error``."""
    n = len(batch["id"])
    # Strings, never None: Ray turns a column of nothing but None into floats.
    scans = np.empty(n, dtype=object)
    file = np.full(n, "", dtype=object)
    error = np.full(n, "", dtype=object)
    for i in range(n):
        source = ScanSource(str(batch["id"][i]), tuple(str(f) for f in batch["files"][i]))
        try:
            scans[i] = read_source(source)
        except ScanReadError as exc:
            file[i], error[i] = source.listed(exc.path), exc.reason
    carried = {k: v for k, v in batch.items() if k != "files"}
    return {**carried, "scan": scans, "file": file, "error": error}


class _Scorer:
    """Ray actor: loads the model once, then scores batches of read scans."""

    def __init__(
        self,
        files: list[Any],
        registry: Registry,
        overrides: list[str],
        device: str,
        cache: Path | None,
        patches: bool,
    ) -> None:
        import ray

        from xadt.artifacts import load_model

        with tempfile.TemporaryDirectory(prefix="xadt-model-") as folder:
            for name, data in ray.get(files[0]).items():
                (Path(folder) / name).write_bytes(data)
            self.model = load_model(folder, registry=registry, overrides=overrides)
        self.context = RunContext(device=device, registry=registry, cache_dir=cache)
        self.patches = patches

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        keep = [i for i, error in enumerate(batch["error"]) if not error]
        scans = [batch["scan"][i] for i in keep]
        scored = score_in_chunks(self.model, scans, context=self.context, chunk=len(scans) or 1)
        results = dict(zip(keep, zip(scans, scored, strict=True), strict=True))
        carried = [k for k in batch if k not in ("scan", "file", "error")]
        rows = []
        for i in range(len(batch["id"])):
            row = {k: _plain(batch[k][i]) for k in carried}
            if i in results:
                row |= _scored_columns(*results[i], patches=self.patches)
            else:
                row |= _unread_columns(str(batch["file"][i]), str(batch["error"][i]), self.patches)
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=_schema(carried, self.patches))


def _scored_columns(scan: Scan, result: ScanResult, *, patches: bool) -> dict[str, Any]:
    row = ScoreRow.from_result(result, scan)
    out: dict[str, Any] = {
        "score": row.score,
        "normal_quantile": row.normal_quantile,
        "partial": json.dumps(row.partial),
        "flag": row.flag,
        "patches": row.patches,
        "warning": row.warning,
        "file": None,
        "error": None,
    }
    if patches:
        out["patch_scores"] = [float(v) for p in result.patches for v in p.scores]
    return out


def _unread_columns(file: str, error: str, patches: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "score": None,
        "normal_quantile": None,
        "partial": "{}",
        "flag": None,
        "patches": 0,
        "warning": "",
        "file": file,
        "error": error,
    }
    if patches:
        out["patch_scores"] = []
    return out


def _schema(carried: list[str], patches: bool) -> Any:
    import pyarrow as pa

    kinds = {"partition": pa.int64(), "index": pa.int64()}
    fields = [(k, kinds.get(k, pa.string())) for k in carried]
    fields += [
        ("score", pa.float64()),
        ("normal_quantile", pa.float64()),
        ("partial", pa.string()),
        ("flag", pa.bool_()),
        ("patches", pa.int64()),
        ("warning", pa.string()),
        ("file", pa.string()),
        ("error", pa.string()),
    ]
    if patches:
        fields.append(("patch_scores", pa.list_(pa.float64())))
    return pa.schema(fields)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class _PartitionWriter:
    """Gathers result rows by partition and writes each partition once all its scans are in."""

    def __init__(self, expected: dict[int, tuple[Path, int]]) -> None:
        self.expected = expected
        self.rows: dict[int, dict[int, dict[str, Any]]] = {k: {} for k in expected}

    def add(self, batch: list[dict[str, Any]]) -> int:
        """Add rows; return how many scans the partitions written now hold."""
        touched = set()
        for row in batch:
            k = row.pop("partition")
            # A batch Ray retried after a worker died may come back twice: one row per scan.
            self.rows[k][row["index"]] = row
            touched.add(k)
        written = 0
        for k in sorted(touched):
            path, n = self.expected[k]
            if len(self.rows[k]) == n:
                _write_partition(path, [self.rows[k][i] for i in range(n)])
                del self.rows[k]
                written += n
        return written

    def check_complete(self) -> None:
        """Raise ``RuntimeError`` if a partition did not get all its scans (a Ray bug)."""
        if self.rows:
            k = min(self.rows)
            msg = f"partition {k} got {len(self.rows[k])} of {self.expected[k][1]} scans"
            raise RuntimeError(msg)


def _write_partition(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=True, what="results partition")


def _read_partition(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _score_run(rows: list[dict[str, Any]], where: str) -> ScoreRun:
    scored = [
        ScoreRow(
            id=r["id"],
            score=r["score"],
            partial=json.loads(r["partial"]),
            flag=r["flag"],
            patches=r["patches"],
            normal_quantile=r["normal_quantile"],
            warning=r["warning"],
        )
        for r in rows
        if r["error"] is None
    ]
    skipped = [(Path(r["file"]), r["error"]) for r in rows if r["error"] is not None]
    if skipped:
        shown = "; ".join(f"{file.name}: {reason}" for file, reason in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        summary = f"{len(skipped)} of {len(rows)} scans skipped: {shown}{more}"
    else:
        summary = f"{len(scored)} of {len(rows)} scans read, none skipped"
    if not scored:
        msg = f"{where}: no scan could be read ({summary})"
        raise XadtError(msg)
    return ScoreRun(rows=scored, skipped=skipped, summary=summary)


def results_from_rows(rows: Sequence[dict[str, Any]]) -> list[ScanResult]:
    """Scan results (scores, partial scores and patch scores) of rows scored with
    ``patches=True``, for calibration; unreadable scans are left out."""
    results = []
    for r in rows:
        if r["error"] is None:
            scores = np.array(r["patch_scores"], dtype=np.float64)
            boxes = np.zeros((len(scores), 4), np.int64)  # calibration needs only the scores
            patches = [PatchScores(0, boxes, scores)] if len(scores) else []
            results.append(ScanResult(r["id"], r["score"], json.loads(r["partial"]), patches))
    return results


def _model_key(files: dict[str, bytes], overrides: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + hashlib.sha256(data).digest())
    digest.update(json.dumps(sorted(overrides)).encode())
    return digest.hexdigest()


def _part_key(model_key: str, chunk: Sequence[ScanSource]) -> str:
    digest = hashlib.sha256(model_key.encode())
    for source in chunk:
        digest.update(repr((source.id, source.files)).encode())
    return digest.hexdigest()[:16]
