"""Patch store against decoding PNGs every epoch: patches/s of one training epoch.

Both sides read the same folder of full-size (764 px high) dual-view synthetic parcels from
``write_dataset`` and give float32 batches of 64 patches of 64 px in [0, 1]. The store side is one
epoch through ``PatchStore.loader`` (shuffled), with workers started before timing; the PNG side
reads, air-crops, downscales and tiles every scan (``read`` + :func:`scan_patches`) in every epoch,
in file order. Store building and reuse are timed too. Run with
``pytest benches/test_bench_patchstore.py --benchmark-enable``; patches/s is in ``extra_info``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xadt.patchstore import PatchSettings, PatchStore, scan_patches, unit_patches
from xadt.scans import iter_scans
from xadt.synth.dataset import write_dataset

SCANS = 20  # full-size dual-view normal scans when timing; 2 in a plain test run
BATCH = 64
DOWNSCALES = [0.5, 0.25]


def _settings(downscale: float) -> PatchSettings:
    return PatchSettings(patch=64, stride=32, downscale=downscale)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    timing = pytestconfig.getoption("benchmark_enable") or not pytestconfig.getoption(
        "benchmark_disable"
    )
    root = tmp_path_factory.mktemp("patchstore")
    write_dataset(root / "data", normal=SCANS if timing else 2, test_normal=0, threat=0, seed=0)
    return root / "data" / "train" / "normal"


@pytest.fixture(scope="module")
def stores(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[float, PatchStore]:
    cache = tmp_path_factory.mktemp("cache")
    return {d: PatchStore.build(iter_scans(folder), cache, _settings(d)) for d in DOWNSCALES}


def _record(benchmark: Any, patches: int) -> None:
    benchmark.extra_info["patches"] = patches
    if benchmark.stats is not None:
        rate = patches / benchmark.stats.stats.median
        benchmark.extra_info["patches_per_s"] = round(rate)
        print(f"\n{benchmark.name}: {patches} patches, {rate:,.0f} patches/s (median)")


def _batches_from_pngs(folder: Path, settings: PatchSettings) -> Iterator[torch.Tensor]:
    """Read, crop, downscale and tile every scan, then cut the patches into batches."""
    pending: list[np.ndarray] = []
    waiting = 0
    for scan in iter_scans(folder):
        pending.append(scan_patches(scan, settings).patches)
        waiting += len(pending[-1])
        while waiting >= BATCH:
            joined = np.concatenate(pending)
            yield torch.from_numpy(unit_patches(joined[:BATCH]))
            pending, waiting = [joined[BATCH:]], waiting - BATCH
    if waiting:
        yield torch.from_numpy(unit_patches(np.concatenate(pending)))


def _drain(batches: Any) -> int:
    """Patches in an epoch's batches, each already a float32 tensor in [0, 1]; only delivery is
    timed, no training step (a torch reduction per batch would time torch's thread pool)."""
    seen = 0
    for batch in batches:
        patches = batch[0] if isinstance(batch, list | tuple) else batch
        assert patches.dtype == torch.float32
        seen += int(patches.shape[0])
    return seen


@pytest.mark.benchmark(group="patchstore-epoch")
@pytest.mark.parametrize("downscale", DOWNSCALES)
def test_bench_epoch_decoding_pngs(benchmark: Any, folder: Path, downscale: float) -> None:
    settings = _settings(downscale)
    seen = benchmark.pedantic(
        lambda: _drain(_batches_from_pngs(folder, settings)), rounds=3, iterations=1
    )
    assert seen > 0
    _record(benchmark, seen)


@pytest.mark.benchmark(group="patchstore-epoch")
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("downscale", DOWNSCALES)
def test_bench_epoch_from_store(
    benchmark: Any, stores: dict[float, PatchStore], downscale: float, workers: int
) -> None:
    store = stores[downscale]
    loader = store.loader(BATCH, seed=0, epoch=0, workers=workers)
    start = time.perf_counter()
    assert _drain(loader) == len(store)  # starts the workers and warms the page cache
    benchmark.extra_info["first_epoch_s"] = round(time.perf_counter() - start, 3)
    epochs = iter(range(1, 1000))

    def epoch() -> int:
        loader.sampler.set_epoch(next(epochs))
        return _drain(loader)

    assert benchmark.pedantic(epoch, rounds=5, iterations=1) == len(store)
    _record(benchmark, len(store))


@pytest.mark.benchmark(group="patchstore-build")
def test_bench_build_store(benchmark: Any, folder: Path, tmp_path: Path) -> None:
    rounds = iter(range(1000))
    store = benchmark.pedantic(
        lambda: PatchStore.build(iter_scans(folder), tmp_path / str(next(rounds)), _settings(0.5)),
        rounds=2,
        iterations=1,
    )
    _record(benchmark, len(store))


@pytest.mark.benchmark(group="patchstore-build")
def test_bench_reuse_store(benchmark: Any, folder: Path, stores: dict[float, PatchStore]) -> None:
    built = stores[0.5]
    store = benchmark.pedantic(
        lambda: PatchStore.build(iter_scans(folder), built.path.parent, _settings(0.5)),
        rounds=3,
        iterations=1,
    )
    assert store.path == built.path
    _record(benchmark, len(store))
