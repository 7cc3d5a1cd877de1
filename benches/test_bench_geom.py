"""Throughput of ``geom``: transformed images/s in training, patches/s and scans/s in scoring, for
72 and 8 transformations, and the transformations' own share of the time.

Two network sizes: the default (64-px patches, WRN-10-4) and the one of the parcel figures in
docs/results.md (32-px patches, WRN-10-2). The weights are freshly initialised: throughput does
not depend on them. Slow: ``pytest benches/test_bench_geom.py --run-slow --benchmark-enable -s``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xadt.engine import Step
from xadt.plugins.geom.config import GeomConfig
from xadt.plugins.geom.detector import GeomDetector
from xadt.scans import iter_scans
from xadt.synth.dataset import write_dataset

SIZES = {"p64-wrn10-4": (64, 4), "p32-wrn10-2": (32, 2)}
SETS = {"72": "full72", "8": "flip_rot8"}
IMAGES = 288  # transformed images per timed training step: 4 patches × 72, 36 × 8


class _Optimizers:
    """What ``Step`` needs of the engine: plain backward and step, no mixed precision."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers[name].step()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()


def _detector(size: str, transforms: str) -> GeomDetector:
    patch, widen = SIZES[size]
    # Stride 32 and downscale 0.25: the default for 64-px patches, the parcel runs' for 32.
    config = GeomConfig(patch=patch, stride=32, widen=widen, transforms=transforms, score_batch=4)
    detector = GeomDetector(config)
    info = {"channels": 3, "patch": patch, "transforms": list(config.indices)}
    detector.nets_ = {k: v.eval() for k, v in detector.build_networks(info).items()}
    k = len(config.indices)
    detector.alpha_ = np.full((k, k), 2.0)
    detector.info_ = info
    return detector


def _run(benchmark: Any, func: Callable[[], Any], *, warmup: int = 1) -> tuple[Any, float]:
    """``func`` under the benchmark (one timed round) and its duration in seconds; timed here
    too, because ``--benchmark-disable`` (the default) keeps no statistics."""
    seconds: list[float] = []

    def timed() -> Any:
        start = time.perf_counter()
        result = func()
        seconds.append(time.perf_counter() - start)
        return result

    result = benchmark.pedantic(timed, rounds=1, iterations=1, warmup_rounds=warmup)
    return result, seconds[-1]


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", SETS)
@pytest.mark.benchmark(group="geom-train")
def test_training_throughput(benchmark, size: str, k: str) -> None:
    detector = _detector(size, SETS[k])
    net = detector.nets_["classifier"].train()
    optimizers = detector.build_optimizers(detector.nets_)
    patch = SIZES[size][0]
    patches = torch.rand(IMAGES // int(k), 3, patch, patch)
    step = Step(detector.nets_, torch.device("cpu"), 1, 0, _Optimizers(optimizers))  # type: ignore[arg-type]
    losses, seconds = _run(benchmark, lambda: detector.training_step(step, patches))
    assert np.isfinite(losses["loss"])
    # The transformations alone: the same gathers the step made, without the network.
    order = torch.randperm(IMAGES)
    start = time.perf_counter()
    for chunk in order.split(detector.config.images_per_step):
        net.copies(patches, torch.stack([chunk // int(k), chunk % int(k)], dim=1))
    gather = time.perf_counter() - start
    benchmark.extra_info["images_per_s"] = IMAGES / seconds
    benchmark.extra_info["transform_share"] = gather / seconds
    print(
        f"\n{size} {k} transforms: {IMAGES / seconds:.1f} transformed images/s in training; "
        f"transforms {gather * 1e3:.2f} ms of {seconds * 1e3:.0f} ms ({gather / seconds:.2%})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", SETS)
@pytest.mark.benchmark(group="geom-score-patches")
def test_patch_scoring_throughput(benchmark, size: str, k: str) -> None:
    detector = _detector(size, SETS[k])
    net = detector.nets_["classifier"]
    patch = SIZES[size][0]
    patches = torch.rand(max(1, IMAGES // int(k)), 3, patch, patch)
    with detector.inference() as _device:
        (scores, errors), seconds = _run(benchmark, lambda: detector.score_patches(patches))
        start = time.perf_counter()
        net.transform(patches)
        gather = time.perf_counter() - start
    assert scores.shape == (len(patches),)
    assert errors is None
    assert torch.isfinite(scores).all()
    benchmark.extra_info["patches_per_s"] = len(patches) / seconds
    benchmark.extra_info["transform_share"] = gather / seconds
    print(
        f"\n{size} {k} transforms: {len(patches) / seconds:.2f} patches/s "
        f"({len(patches) * int(k) / seconds:.0f} images/s) in scoring; transforms "
        f"{gather * 1e3:.2f} ms of {seconds * 1e3:.0f} ms ({gather / seconds:.2%})"
    )


@pytest.fixture(scope="module")
def parcels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("geom-parcels")
    write_dataset(root, normal=0, test_normal=2, threat=0, seed=5)
    return root / "test" / "normal"


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", SETS)
@pytest.mark.benchmark(group="geom-score-scans")
def test_scan_scoring_throughput(benchmark, parcels: Path, size: str, k: str) -> None:
    detector = _detector(size, SETS[k])
    results, seconds = _run(benchmark, lambda: detector.score(iter_scans(parcels)), warmup=0)
    assert len(results) == 2
    assert all(np.isfinite(r.score) and len(r.maps) == 2 for r in results)
    patches = sum(len(p.scores) for r in results for p in r.patches)
    benchmark.extra_info["scans_per_s"] = len(results) / seconds
    print(
        f"\n{size} {k} transforms, downscale 0.25, stride 32: "
        f"{len(results) / seconds:.3f} dual-view parcels/s ({patches / len(results):.1f} "
        f"patches a parcel)"
    )
