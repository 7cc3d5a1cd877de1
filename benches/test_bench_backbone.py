"""EfficientNet-Lite0's forward on 224 px windows under each execution lever, against the plain
eager float32 forward in the same run (issue 15 §3).

Levers (``xadt.backbones.execution``): inference mode (xadt's forward; the reference runs the
same layers under ``torch.no_grad``), channels-last, ``torch.compile`` (inductor with freezing),
batch size, bfloat16 autocast (CPU bfloat16 here; AMX/AVX-512 BF16 where the CPU has it), and
ONNX Runtime where ``xadt[onnx]`` is installed.
Each lever's pooled features and logits are checked against the reference (1e-4 relative for the
float32 levers). Slow; run with ``pytest benches/test_bench_backbone.py --run-slow
--benchmark-enable -s`` and pin the threads (``OMP_NUM_THREADS=2``): it prints windows/s of wall
and of CPU time.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from tests.test_backbone_execution import _rel
from xadt.backbones import EfficientNetLite0, efficientnet_lite0
from xadt.backbones.execution import BackboneRunner, Execution

# (name, setting, batch size); None is the reference: plain eager float32 under no_grad.
LEVERS: list[tuple[str, Execution | None, int]] = [
    *((f"eager fp32, batch {n}", None, n) for n in (8, 32, 64)),
    *((f"+ inference_mode, batch {n}", Execution(), n) for n in (8, 32, 64)),
    *((f"+ channels_last, batch {n}", Execution(channels_last=True), n) for n in (8, 32, 64)),
    ("+ torch.compile, batch 32", Execution(compile=True), 32),
    *(
        (f"+ channels_last + torch.compile, batch {n}", Execution("float32", True, True), n)
        for n in (32, 64)
    ),
    ("bf16 autocast, batch 32", Execution("bfloat16"), 32),
    ("bf16 + channels_last, batch 32", Execution("bfloat16", True), 32),
    *(
        (f"bf16 + channels_last + torch.compile, batch {n}", Execution("bfloat16", True, True), n)
        for n in (32, 64)
    ),
]
if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
    LEVERS += [(f"onnxruntime, batch {n}", Execution(backend="onnxruntime"), n) for n in (32, 64)]
ROUNDS = 3


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    """The reference's backbone; a runner changes its backbone's weight layout, so each lever
    gets a fresh one."""
    return efficientnet_lite0()


def _windows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 3, 224, 224)).astype(np.float32)


def _eager(backbone: EfficientNetLite0) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The layers of ``backbone.forward`` under ``torch.no_grad``: what plain torch code does."""

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            last, _ = backbone._trunk(torch.from_numpy(x), frozenset())
            pooled = last.mean(dim=(2, 3))
            return pooled.numpy(), backbone.classifier(pooled).numpy()

    return forward


@pytest.mark.slow
@pytest.mark.benchmark(group="backbone")
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_lite0_forward_levers_against_eager_fp32(benchmark, lite0: EfficientNetLite0) -> None:
    # The machine is shared: every lever runs once per round, round after round, so a change in
    # load hits all of them alike, and CPU time is reported beside wall time.
    inputs = {n: _windows(n) for n in {batch for _, _, batch in LEVERS}}
    reference = {n: _eager(lite0)(x) for n, x in inputs.items()}
    runs, first, diffs = {}, {}, {}
    for name, execution, batch in LEVERS:
        fresh = efficientnet_lite0()
        run = _eager(lite0) if execution is None else BackboneRunner(fresh, execution)
        start = time.perf_counter()
        pooled, logits = run(inputs[batch])  # warm-up; compiles when asked
        first[name] = time.perf_counter() - start
        want_pooled, want_logits = reference[batch]
        diffs[name] = max(_rel(pooled, want_pooled), _rel(logits, want_logits))
        float32 = execution is None or execution.precision == "float32"
        assert diffs[name] < (1e-4 if float32 else 0.2), name
        runs[name] = run
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}

    def one_round() -> None:
        for name, _, batch in LEVERS:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            runs[name](inputs[batch])
            walls[name].append(time.perf_counter() - wall0)
            cpus[name].append(time.process_time() - cpu0)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    rows = {}
    for name, _, batch in LEVERS:
        wall, cpu = float(np.median(walls[name])), float(np.median(cpus[name]))
        rows[name] = {
            "windows_per_s": batch / wall,
            "windows_per_cpu_s": batch / cpu,
            "first_call_s": first[name],
            "max_rel_diff": diffs[name],
        }
    benchmark.extra_info["levers"] = rows
    base = rows["eager fp32, batch 32"]
    print("\nlever | windows/s wall | per CPU-s | vs eager b32 (wall, CPU) | first call | rel diff")
    for name, r in rows.items():
        print(
            f"{name} | {r['windows_per_s']:.1f} | {r['windows_per_cpu_s']:.1f} | "
            f"{r['windows_per_s'] / base['windows_per_s']:.2f}x, "
            f"{r['windows_per_cpu_s'] / base['windows_per_cpu_s']:.2f}x | "
            f"{r['first_call_s']:.1f} s | {r['max_rel_diff']:.1e}"
        )
