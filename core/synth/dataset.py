"""Synthetic data sets on disk: the folder layout, the per-scan seeds and the manifest.

Layout under ``OUT``: ``train/normal/``, ``test/normal/``, ``test/anomalous/`` and
``test/masks/`` hold ``<id>_v<k>.png`` files (8-bit false colour; masks 0/255), optionally
``<id>_v<k>_high.png`` / ``<id>_v<k>_low.png`` (16-bit grey transmission), and
``manifest.json`` is written last, so it never lists a file that is not there.

While a data set is being written, ``.synth-journal.jsonl`` records its options and each scan
finished; an interrupted run is finished with ``resume=True`` (``xadt synth ... --resume``),
which makes only the scans the journal does not list. The journal goes when the manifest comes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import xadt
from xadt.errors import XadtError
from xadt.outputs import process_alive
from xadt.synth.parcel import DIFFICULTY_P, SynthScan, make_parcel
from xadt.synth.threats import THREATS

SPLITS = {"train-normal": 0, "test-normal": 1, "test-threat": 2}
"""Split name → the spawn-key component that keeps each split's scans independent."""

MANIFEST = "manifest.json"
JOURNAL = ".synth-journal.jsonl"
"""Options and finished scans of a data set being written (first line: the options)."""
_FOLDERS = {
    "train-normal": Path("train", "normal"),
    "test-normal": Path("test", "normal"),
    "test-threat": Path("test", "anomalous"),
}
_MASKS = Path("test", "masks")
_PNG_LEVEL = 1  # zlib level 1: noisy scans compress barely better at 9, and 5x slower


def scan_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of scan ``index`` of ``split``: independent of every other scan, so scans
    can be made in any order, in parallel, and one at a time for debugging."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SPLITS[split], index)))


def threat_kind(seed: int, index: int) -> str:
    """The threat kind of threat scan ``index``: the kinds take turns, from a seeded start."""
    start = int(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(99,))).integers(5))
    return THREATS[(start + index) % len(THREATS)]


def scan_id(split: str, index: int) -> str:
    """File-name stem of scan ``index`` of ``split``, e.g. ``test-threat-00007``."""
    return f"{split}-{index:05d}"


def generate(
    seed: int,
    split: str,
    index: int,
    *,
    scale: float = 1.0,
    energies: bool = False,
    line_scan: bool = False,
    lossless: bool = False,
) -> SynthScan:
    """Scan ``index`` of ``split`` (a key of :data:`SPLITS`) of the data set with ``seed``."""
    threat = threat_kind(seed, index) if split == "test-threat" else None
    rng = scan_rng(seed, split, index)
    return make_parcel(
        rng,
        threat=threat,
        scale=scale,
        energies=energies,
        line_scan=line_scan,
        lossless=lossless,
    )


def iter_split(
    seed: int, split: str, count: int, *, scale: float = 1.0
) -> Iterator[tuple[str, SynthScan]]:
    """``(id, scan)`` for the first ``count`` scans of ``split``, generated in memory."""
    for i in range(count):
        yield scan_id(split, i), generate(seed, split, i, scale=scale)


@dataclass(frozen=True)
class _Job:
    out: Path
    seed: int
    split: str
    index: int
    scale: float
    energies: bool
    line_scan: bool
    lossless: bool


def _save_png(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(array).save(tmp, format="PNG", compress_level=_PNG_LEVEL)
    tmp.replace(path)


def _write_one(job: _Job) -> dict[str, Any]:
    scan = generate(
        job.seed,
        job.split,
        job.index,
        scale=job.scale,
        energies=job.energies,
        line_scan=job.line_scan,
        lossless=job.lossless,
    )
    sid = scan_id(job.split, job.index)
    folder = job.out / _FOLDERS[job.split]
    files = []
    for k, view in enumerate(scan.views):
        name = f"{sid}_v{k}.png"
        _save_png(folder / name, view)
        files.append(str(_FOLDERS[job.split] / name))
        if scan.high is not None and scan.low is not None:
            for energy, image in (("high", scan.high[k]), ("low", scan.low[k])):
                ename = f"{sid}_v{k}_{energy}.png"
                _save_png(folder / ename, image)
                files.append(str(_FOLDERS[job.split] / ename))
    if scan.masks is not None:
        for k, mask in enumerate(scan.masks):
            name = f"{sid}_v{k}.png"
            _save_png(job.out / _MASKS / name, (mask * np.uint8(255)).astype(np.uint8))
            files.append(str(_MASKS / name))
    return {
        "id": sid,
        "split": job.split,
        "label": "anomalous" if scan.threat else "normal",
        "files": files,
        "shape": [list(v.shape[:2]) for v in scan.views],
        **scan.contents,
    }


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        msg = f"{out} exists and is not a folder; choose another OUT"
        raise XadtError(msg)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            partial = interrupted_progress(out)
            if partial is not None:
                msg = (
                    f"{out} holds an interrupted data set ({partial[0]} of {partial[1]} scans); "
                    "pass --resume to finish it, or --overwrite to replace it"
                )
                raise XadtError(msg)
            msg = f"{out} is not empty; pass --overwrite to replace the data set in it"
            raise XadtError(msg)
        # The manifest goes first: until the new one is written, the folder describes nothing.
        (out / MANIFEST).unlink(missing_ok=True)
        (out / (MANIFEST + ".part")).unlink(missing_ok=True)
        (out / JOURNAL).unlink(missing_ok=True)
        for folder in (*_FOLDERS.values(), _MASKS):
            if (out / folder).is_dir():
                for png in (*(out / folder).glob("*.png"), *(out / folder).glob("*.png.part")):
                    png.unlink()
    for folder in (*_FOLDERS.values(), _MASKS):
        (out / folder).mkdir(parents=True, exist_ok=True)


def write_dataset(
    out: Path | str,
    *,
    normal: int,
    test_normal: int,
    threat: int,
    seed: int = 0,
    energies: bool = False,
    overwrite: bool = False,
    scale: float = 1.0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    line_scan: bool = False,
    resume: bool = False,
    lossless: bool = False,
) -> dict[str, Any]:
    """Generate a data set of normal training scans and a labelled test set into ``out``.

    Args:
        out: folder to write; it must be empty or absent unless ``overwrite`` is set, in which
            case the previous manifest and the PNGs of the data-set folders are removed first.
        normal: number of normal scans in ``train/normal``.
        test_normal: number of normal scans in ``test/normal``.
        threat: number of threat scans in ``test/anomalous`` (masks in ``test/masks``).
        seed: the data set's seed; scan i of a split depends only on (seed, split, i).
        energies: also write 16-bit high/low transmission PNGs of every view.
        overwrite: allow a non-empty ``out``.
        scale: image size relative to full size (764 px high).
        workers: processes generating scans in parallel (1: in this process).
        progress: called as ``progress(done, total)`` after every scan.
        line_scan: fan-beam (line-scan) geometry instead of parallel rays.
        lossless: views as the detector gives them, without the console's sharpening and JPEG.
        resume: finish an interrupted run in ``out`` with the same options: scans its journal
            lists are kept, the others are made.

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        XadtError: ``out`` is not empty and neither ``overwrite`` nor (for an interrupted run)
            ``resume`` is set; ``resume`` with nothing to resume or other options; or a count is
            negative.
    """
    for name, count in (("--normal", normal), ("--test-normal", test_normal), ("--threat", threat)):
        if count < 0:
            msg = f"{name} must be a count ≥ 0, got {count}"
            raise XadtError(msg)
    out = Path(out)
    counts = {"train/normal": normal, "test/normal": test_normal, "test/anomalous": threat}
    options = {
        "seed": seed,
        "scale": scale,
        "energies": energies,
        "line_scan": line_scan,
        "lossless": lossless,
        "counts": counts,
    }
    done = _resumed(out, options) if resume else {}
    if not resume:
        _prepare(out, overwrite)
    jobs = [
        _Job(out, seed, split, i, scale, energies, line_scan, lossless)
        for split, count in (
            ("train-normal", normal),
            ("test-normal", test_normal),
            ("test-threat", threat),
        )
        for i in range(count)
        if scan_id(split, i) not in done
    ]
    entries: list[dict[str, Any]] = list(done.values())
    total = len(entries) + len(jobs)

    def report(entry: dict[str, Any] | None) -> None:
        if entry is not None:
            entries.append(entry)
        if progress is not None:
            progress(len(entries), total)

    if entries:
        report(None)
    with _Journal(out / JOURNAL, options, fresh=not resume) as journal:
        _run(jobs, workers, journal, report)
    order = {scan_id(split, i): k for k, (split, i) in enumerate(_all_ids(counts))}
    entries.sort(key=lambda e: order[e["id"]])
    difficulty = {k: 0 for k in DIFFICULTY_P}
    for e in entries:
        if e["threat"] is not None:
            difficulty[e["threat"]["difficulty"]] += 1
    manifest = {
        "generator": f"xadt.synth {xadt.__version__}",
        **options,
        "difficulty": difficulty,
        "scans": entries,
    }
    tmp = out / (MANIFEST + ".part")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(out / MANIFEST)
    (out / JOURNAL).unlink(missing_ok=True)
    return manifest


def _all_ids(counts: dict[str, int]) -> list[tuple[str, int]]:
    splits = zip(_FOLDERS, counts.values(), strict=True)
    return [(split, i) for split, count in splits for i in range(count)]


def _run(
    jobs: list[_Job],
    workers: int,
    journal: _Journal,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """Make the scans of ``jobs``, in order, journalling and reporting each one finished."""
    if workers > 1 and len(jobs) > 1:
        # forkserver: workers fork from a clean server process, never from a caller that may
        # hold threads (torch, BLAS) whose locks a plain fork would copy mid-use.
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(
            min(workers, len(jobs)),
            mp_context=context,
            initializer=_die_with,
            initargs=(os.getpid(),),
        ) as pool:
            for entry in pool.map(_write_one, jobs, chunksize=1):
                journal.add(entry)
                report(entry)
    else:
        for job in jobs:
            entry = _write_one(job)
            journal.add(entry)
            report(entry)


class _Journal:
    """``out/.synth-journal.jsonl``: the run's options, then one line per finished scan, each
    flushed to disk, so a killed run can be finished later."""

    def __init__(self, path: Path, options: dict[str, Any], *, fresh: bool) -> None:
        self.path, self.options, self.fresh = path, options, fresh

    def __enter__(self) -> _Journal:
        self.handle = self.path.open("w" if self.fresh else "a", encoding="utf-8")
        if self.fresh:
            self._write(self.options)
        return self

    def add(self, entry: dict[str, Any]) -> None:
        """Record a finished scan."""
        self._write(entry)

    def _write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def interrupted_progress(out: Path) -> tuple[int, int] | None:
    """``(scans finished, scans in all)`` of an interrupted run in ``out``, or None."""
    try:
        lines = (out / JOURNAL).read_text(encoding="utf-8").splitlines()
        options = json.loads(lines[0])
        return len(lines) - 1, sum(options["counts"].values())
    except (OSError, IndexError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _resumed(out: Path, options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The journal's finished scans by id, after checking that ``out`` holds an interrupted run
    with these ``options`` whose files are all there."""
    journal = out / JOURNAL
    if (out / MANIFEST).is_file() and not journal.exists():
        msg = f"{out}: the data set is complete (it has {MANIFEST}); nothing to resume"
        raise XadtError(msg)
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
        first, *rest = (json.loads(line) for line in lines if line.strip())
    except (OSError, ValueError) as exc:
        msg = f"{out}: no interrupted 'xadt synth' to resume here ({JOURNAL}: {exc})"
        raise XadtError(msg) from None
    for key, value in options.items():
        if first.get(key) != value:
            option = {"counts": "--normal/--test-normal/--threat"}.get(key, f"--{key}")
            msg = (
                f"--resume: the interrupted run in {out} used {option} {first.get(key)}, not "
                f"{value}; resume with the same options, or pass --overwrite to start again"
            )
            raise XadtError(msg)
    # A scan counts as done only if the journal lists it and its files are all there.
    return {e["id"]: e for e in rest if all((out / file).is_file() for file in e.get("files", ()))}


def _die_with(owner: int) -> None:
    """Make a pool worker end when the process that started the pool is gone.

    A ``kill -9`` of ``xadt synth`` runs no clean-up, and the workers are children of the
    forkserver, not of it, so nothing would stop them: a daemon thread checks the owner twice a
    second and ends the worker when it has died.
    """

    def watch() -> None:
        while process_alive(owner):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="xadt-die-with-owner", daemon=True).start()
