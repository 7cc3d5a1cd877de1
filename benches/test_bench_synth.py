"""Parcel simulator throughput: full-size (764 px high) dual-view scans per second, in memory and
written as PNGs, in one process and on two cores; and ``project`` with its compiled kernel against
its numpy reference on the same parts.

Run with ``pytest benches/test_bench_synth.py --benchmark-enable``; scans/s is in ``extra_info``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xadt.synth.catalogue import draw_item
from xadt.synth.dataset import generate, write_dataset
from xadt.synth.parts import Part
from xadt.synth.render import project
from xadt.synth.shapes import View, random_rotation

BATCH = 10  # scans per round: 8 normal, 2 threat, as in a test set


def _batch(benchmark: Any) -> int:
    """Scans per round: the full batch when timing, two in a plain test run."""
    return 2 if benchmark.disabled else BATCH


def _make(index: int) -> tuple[int, int]:
    split = "test-threat" if index % 5 == 4 else "test-normal"
    scan = generate(0, split, index)
    return scan.views[0].shape[:2]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    # Started once, outside the timed rounds, as `xadt synth --workers 2` starts it once a run.
    context = multiprocessing.get_context("forkserver")  # as write_dataset's pool
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as executor:
        list(executor.map(_make, range(2)))  # warm the workers: imports and lookup tables
        yield executor


def _record(benchmark: Any, n: int) -> None:
    if benchmark.stats is not None:
        benchmark.extra_info["scans_per_s"] = round(n / benchmark.stats.stats.mean, 2)


@pytest.mark.benchmark(group="synth")
def test_bench_in_memory_one_process(benchmark: Any) -> None:
    n = _batch(benchmark)
    shapes = benchmark.pedantic(lambda: [_make(i) for i in range(n)], rounds=3, iterations=1)
    assert all(h == 764 for h, _ in shapes)
    _record(benchmark, n)


@pytest.mark.benchmark(group="synth")
def test_bench_in_memory_two_processes(benchmark: Any, pool: ProcessPoolExecutor) -> None:
    n = _batch(benchmark)
    shapes = benchmark.pedantic(lambda: list(pool.map(_make, range(n))), rounds=3, iterations=1)
    assert all(h == 764 for h, _ in shapes)
    _record(benchmark, n)


@pytest.mark.benchmark(group="synth")
@pytest.mark.parametrize("workers", [1, 2])
def test_bench_write_pngs(benchmark: Any, tmp_path: Path, workers: int) -> None:
    n = _batch(benchmark)
    normal, threat = n - n // 5, n // 5

    def write() -> dict[str, Any]:
        return write_dataset(
            tmp_path, normal=normal, test_normal=0, threat=threat, overwrite=True, workers=workers
        )

    manifest = benchmark.pedantic(write, rounds=2, iterations=1)
    assert len(list((tmp_path / "train" / "normal").glob("*.png"))) == 2 * normal
    assert len(manifest["scans"]) == n
    _record(benchmark, n)


def _goods() -> tuple[list[Part], View]:
    """40 catalogue items in random poses over a full-size view: about as many parts as a
    packed parcel."""
    rng = np.random.default_rng(0)
    parts: list[Part] = []
    for _ in range(40):
        offset = np.array([rng.uniform(100, 660), rng.uniform(100, 600), rng.uniform(-150, 150)])
        parts += draw_item(rng).centred().moved(random_rotation(rng), offset).parts
    rays_down_z = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]])
    return parts, View(rays_down_z, np.zeros(3), 1.0, (764, 700))


@pytest.mark.benchmark(group="synth-project")
@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "numpy"])
def test_bench_project(benchmark: Any, kernel: bool) -> None:
    parts, view = _goods()
    proj = benchmark(lambda: project(parts, view, kernel=kernel))
    assert proj.compton.max() > 0
