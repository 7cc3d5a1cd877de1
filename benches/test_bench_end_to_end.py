"""End-to-end throughput of ``gaussian`` scoring on full-size dual-view parcels, split by stage.

Stages: read (PNG decoding), crop (air cropping and RGB conversion), extract (tiling and the
patch kernel), backbone (EfficientNet-Lite0 on CPU), scoring (everything else: the Gaussian
scores, top-n excursions and window maps). Slow: run with
``pytest benches/test_bench_end_to_end.py --run-slow --benchmark-enable``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from xadt.bench import DETECTOR_OPTIONS
from xadt.plugins.gaussian import GaussianDetector
from xadt.scans import iter_scans
from xadt.synth.dataset import write_dataset
from xadt.training_data import TrainingData

N_FIT = 8
N_SCORE = 6
STAGES = ("read", "crop", "extract", "backbone")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[GaussianDetector, Path]:
    root = tmp_path_factory.mktemp("e2e")
    write_dataset(root / "data", normal=N_FIT, test_normal=N_SCORE, threat=0, seed=11)
    # The options `xadt bench` fits with: one backbone pass.
    detector = GaussianDetector(**DETECTOR_OPTIONS["gaussian"])
    folder = iter_scans(root / "data" / "train" / "normal")
    detector.fit(TrainingData(folder.ids, folder.read, description=str(folder.folder)))
    return detector, root / "data" / "test" / "normal"


@pytest.mark.slow
@pytest.mark.benchmark(group="end-to-end")
def test_gaussian_scoring_throughput(benchmark, fitted) -> None:
    detector, folder = fitted
    stages: dict[str, float] = dict.fromkeys((*STAGES, "scoring"), 0.0)
    runs = 0

    def score() -> list:
        nonlocal runs
        start = time.perf_counter()
        results = detector.score(iter_scans(folder))
        wall = time.perf_counter() - start
        for stage in STAGES:
            stages[stage] += detector.timings_.get(stage, 0.0)
        stages["scoring"] += wall - sum(detector.timings_.get(s, 0.0) for s in (*STAGES, "cache"))
        runs += 1
        return results

    results = benchmark.pedantic(score, rounds=2, iterations=1, warmup_rounds=0)
    assert len(results) == N_SCORE
    assert all(np.isfinite(r.score) for r in results)
    assert all(len(r.maps) == 2 for r in results)
    total = sum(stages.values())
    per_scan = {k: v / (runs * N_SCORE) for k, v in stages.items()}
    benchmark.extra_info["scans_per_s"] = runs * N_SCORE / total
    benchmark.extra_info["seconds_per_scan"] = per_scan
    benchmark.extra_info["share"] = {k: v / total for k, v in stages.items()}
    mean_scan = total / (runs * N_SCORE)
    parts = ", ".join(f"{k} {v:.3f} s ({v / mean_scan:.0%})" for k, v in per_scan.items())
    print(f"\n{1 / mean_scan:.3f} dual-view scans/s; per scan: {parts}")
