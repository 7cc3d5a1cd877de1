"""Throughput of the GAN family on CPU: training steps and scoring passes at 32² and 64²,
batch 64, three channels (the configuration anomalib's GANomaly was measured at, issue 11), a
profile of one epoch, and scans/s on full-size dual-view parcels with each model's defaults.

``pytest benches/test_bench_gan.py --benchmark-enable`` times the steps; ``--run-slow`` adds the
profile and the parcels. With benchmarks disabled every case runs once as a correctness check:
a training step moves both networks and returns finite losses, scores are finite, one per patch.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xadt.detector import DetectorState
from xadt.engine import Step
from xadt.plugins.dsagan.detector import DsaganDetector
from xadt.plugins.gan_common.detector import GanDetector
from xadt.plugins.ganomaly.detector import GanomalyDetector
from xadt.plugins.skipganomaly.detector import SkipGanomalyDetector
from xadt.scans import iter_scans
from xadt.synth.dataset import write_dataset

BATCH = 64
DETECTORS: dict[str, type[GanDetector]] = {
    "ganomaly": GanomalyDetector,
    "skipganomaly": SkipGanomalyDetector,
    "dsagan": DsaganDetector,
}
CASES = [(name, size) for name in DETECTORS for size in (32, 64)]


class _Optimizers:
    """The engine's ``Step.optimize`` without clipping or scaling (neither is on by default)."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()


def _setup(name: str, size: int, batch_size: int = BATCH) -> tuple[GanDetector, Step, torch.Tensor]:
    torch.manual_seed(0)
    detector = DETECTORS[name](patch=size, batch_size=BATCH)
    nets = detector.build_networks({"channels": 3, "patch": size})
    engine = _Optimizers(detector.build_optimizers(nets))
    step = Step(nets, torch.device("cpu"), 1, 0, engine)  # type: ignore[arg-type]
    batch = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(1))
    return detector, step, batch


def _fitted(detector: GanDetector, info: dict[str, int]) -> GanDetector:
    """``detector`` with freshly initialised networks as its fitted state: the cost of scoring
    does not depend on the weights."""
    state = DetectorState(
        {
            f"net.{name}.{key}": value.detach().numpy()
            for name, net in detector.build_networks(info).items()
            for key, value in net.state_dict().items()
        },
        {"info": info, "history": [], "selected_epoch": None},
    )
    return type(detector).from_state(detector.config, state)


@pytest.mark.parametrize(("name", "size"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
@pytest.mark.benchmark(group="gan-train-step")
def test_training_step(benchmark, name: str, size: int) -> None:
    _timed_only(benchmark, size)
    detector, step, batch = _setup(name, size, _batch(benchmark))
    for net in step.nets.values():
        net.train()
    before = {k: next(iter(n.parameters())).detach().clone() for k, n in step.nets.items()}
    losses = benchmark.pedantic(
        detector.training_step, args=(step, batch), rounds=3, iterations=1, warmup_rounds=1
    )
    assert all(np.isfinite(v) for v in losses.values())
    for key, net in step.nets.items():
        assert not torch.equal(before[key], next(iter(net.parameters()))), key
    if benchmark.stats is not None:
        benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median


@pytest.mark.parametrize(("name", "size"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
@pytest.mark.benchmark(group="gan-score")
def test_scoring_pass(benchmark, name: str, size: int) -> None:
    _timed_only(benchmark, size)
    detector, _, batch = _setup(name, size, _batch(benchmark))
    detector = _fitted(detector, {"channels": 3, "patch": size})

    def score() -> tuple[torch.Tensor, torch.Tensor | None]:
        with detector.inference():
            return detector.score_patches(batch)

    scores, errors = benchmark.pedantic(score, rounds=5, iterations=1, warmup_rounds=1)
    assert scores.shape == (len(batch),)
    assert torch.isfinite(scores).all()
    assert errors is None if name == "ganomaly" else errors.shape == (len(batch), size, size)
    if benchmark.stats is not None:
        benchmark.extra_info["images_per_s"] = BATCH / benchmark.stats.stats.median


def _timed_only(benchmark: Any, size: int) -> None:
    """The 64² networks only when timing: the correctness run checks the same code at 32²."""
    if benchmark.disabled and size > 32:
        pytest.skip("64x64 cases run only with --benchmark-enable")


def _batch(benchmark: Any) -> int:
    """Batch 64 when timing; a small batch for the correctness run (benchmarks disabled)."""
    return 4 if benchmark.disabled else BATCH


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DETECTORS))
def test_profile_one_epoch(name: str) -> None:
    """Where a training epoch's time goes: torch's operator profile of 8 steps at 32², batch 64
    (an epoch of the synthetic-parcel runs is ~25 such steps), printed by self CPU time."""
    detector, step, batch = _setup(name, 32)
    for net in step.nets.values():
        net.train()
    detector.training_step(step, batch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(8):
            detector.training_step(step, batch)
    table = profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    print(f"\n{name}, 8 training steps at 32x32, batch 64:\n{table}")
    assert "aten::" in table


@pytest.fixture(scope="module")
def parcels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gan-parcels")
    write_dataset(root / "data", normal=0, test_normal=4, threat=0, seed=11)
    return root / "data" / "test" / "normal"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DETECTORS))
@pytest.mark.benchmark(group="gan-parcels")
def test_full_size_parcels(benchmark, parcels: Path, name: str) -> None:
    """Scans/s on full-size (764 px high) dual-view parcels with the default options (64² patches
    of the air-cropped view downscaled by 0.25, stride 32), reading the PNGs included."""
    detector = _fitted(DETECTORS[name](), {"channels": 3, "patch": 64})

    def score() -> list[Any]:
        return detector.score(iter_scans(parcels))

    results = benchmark.pedantic(score, rounds=2, iterations=1, warmup_rounds=0)
    assert len(results) == 4
    assert all(np.isfinite(r.score) and len(r.maps) == 2 for r in results)
    if benchmark.stats is not None:
        benchmark.extra_info["scans_per_s"] = 4 / benchmark.stats.stats.median
        benchmark.extra_info["patches_per_scan"] = np.mean(
            [sum(len(p.scores) for p in r.patches) for r in results]
        )
