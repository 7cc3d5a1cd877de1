"""End-to-end throughput of ``gaussian`` scoring on full-size dual-view parcels, split by stage,
and its CPU per window against the backbone's forward alone (issue 15 §3: within 1.3×).

Stages: read (PNG decoding), crop (air cropping and RGB conversion), extract (tiling and the
patch kernel), backbone (EfficientNet-Lite0 on CPU), scoring (everything else: the Gaussian
scores, top-n excursions and window maps). Slow: run with
``pytest benches/test_bench_end_to_end.py --run-slow --benchmark-enable -s``.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xadt.backbones.execution import BackboneRunner
from xadt.bench import DETECTOR_OPTIONS
from xadt.model import Model
from xadt.plugins.gaussian import GaussianDetector
from xadt.scans import iter_scans
from xadt.synth.dataset import write_dataset
from xadt.training_data import TrainingData
from xadt.workflows.score import score_folder

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


def _cpu() -> tuple[float, float]:
    """User and system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


@pytest.mark.slow
@pytest.mark.benchmark(group="end-to-end")
def test_scoring_cpu_per_window_against_the_forward_alone(benchmark, fitted) -> None:
    """``xadt score``'s work (``score_folder``: decode, crop, tile, backbone, scores, maps, the
    plausibility check) against the same number of windows through the backbone alone, in
    batches of the detector's ``batch_size``, alternating in one run."""
    detector, folder = fitted
    model = Model(detector)
    runner = BackboneRunner(detector.backbone_)
    batch = detector.config.batch_size
    windows = sum(row.patches for row in score_folder(model, folder).rows)  # and warm-up
    x = np.random.default_rng(0).random((batch, 3, 224, 224), dtype=np.float32)
    figures: dict[str, list[tuple[float, float, float]]] = {"score": [], "forward": []}

    def timed(what: str, work: Callable[[], object]) -> None:
        (user0, sys0), wall0 = _cpu(), time.perf_counter()
        work()
        (user1, sys1), wall1 = _cpu(), time.perf_counter()
        figures[what].append((wall1 - wall0, user1 - user0, sys1 - sys0))

    def forward_alone() -> None:
        for start in range(0, windows, batch):
            runner(x[: min(batch, windows - start)])

    def one_round() -> None:
        timed("score", lambda: score_folder(model, folder))
        timed("forward", forward_alone)

    benchmark.pedantic(one_round, rounds=2, iterations=1, warmup_rounds=0)
    per_window = {
        what: np.median(np.array(rows), axis=0) / windows for what, rows in figures.items()
    }
    score, forward = per_window["score"], per_window["forward"]
    ratio_cpu = (score[1] + score[2]) / (forward[1] + forward[2])
    benchmark.extra_info.update(
        windows=windows,
        score_ms_per_window=dict(zip(("wall", "user", "sys"), score * 1e3, strict=True)),
        forward_ms_per_window=dict(zip(("wall", "user", "sys"), forward * 1e3, strict=True)),
        cpu_ratio=ratio_cpu,
        wall_ratio=score[0] / forward[0],
    )
    print(
        f"\n{windows} windows of {N_SCORE} scans; ms per window, wall / user / sys: "
        f"xadt score {score[0] * 1e3:.1f} / {score[1] * 1e3:.1f} / {score[2] * 1e3:.1f}, "
        f"forward alone {forward[0] * 1e3:.1f} / {forward[1] * 1e3:.1f} / "
        f"{forward[2] * 1e3:.1f}; CPU ratio {ratio_cpu:.2f}x, wall ratio "
        f"{score[0] / forward[0]:.2f}x"
    )
    assert windows > 0
