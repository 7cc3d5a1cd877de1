"""Throughput of the scoring kernels against torch and numpy at the Gaussian detector's sizes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.reference.scoring import mahalanobis_dense
from xadt.bench import (
    KernelSizes,
    mahalanobis_inputs,
    mahalanobis_torch,
    topn_excursion_numpy,
    topn_inputs,
)
from xadt.kernels import mahalanobis, topn_excursion

SIZES = KernelSizes()  # the sizes `xadt bench` times
MAHA_N, MAHA_D = SIZES.maha_rows, SIZES.maha_dim  # patches × EfficientNet-Lite0 pooled features
LOOP_ROWS = 256  # the per-row Python loop scores this many rows; README scales it to MAHA_N
TOPN_N, TOPN_D, TOPN_KEEP = SIZES.topn_rows, SIZES.topn_dim, SIZES.topn_keep  # images × logits


@pytest.fixture(scope="module")
def maha() -> dict[str, Any]:
    inputs = mahalanobis_inputs(MAHA_N, MAHA_D)
    return {**inputs, "want": mahalanobis_dense(inputs["x"], inputs["mean"], inputs["precision"])}


@pytest.fixture(scope="module")
def topn() -> dict[str, Any]:
    inputs = topn_inputs(TOPN_N, TOPN_D)
    args = (inputs["x"], inputs["mean"], inputs["std"], inputs["inv_corr"], TOPN_KEEP)
    return {**inputs, "want": topn_excursion_numpy(*args)}


def _mahalanobis_impl(impl: str, d: dict[str, Any]) -> tuple[Callable[[], Any], int]:
    """The callable timed for ``impl`` and the number of rows it scores."""
    x, mean, precision = d["x"], d["mean"], d["precision"]
    if impl == "kernel":
        return (lambda: mahalanobis(x, mean, precision)), MAHA_N
    if impl == "torch":
        return (lambda: mahalanobis_torch(x, mean, precision)), MAHA_N

    def loop() -> np.ndarray:
        return np.array([(row - mean) @ precision @ (row - mean) for row in x[:LOOP_ROWS]])

    return loop, LOOP_ROWS


@pytest.mark.benchmark(group=f"mahalanobis N={MAHA_N} D={MAHA_D} float32")
@pytest.mark.parametrize("impl", ["kernel", "torch", "loop"])
def test_bench_mahalanobis(benchmark: Any, maha: dict[str, Any], impl: str) -> None:
    func, rows = _mahalanobis_impl(impl, maha)
    benchmark.extra_info["rows_scored"] = rows
    got = benchmark(func)
    np.testing.assert_allclose(got, maha["want"][:rows], rtol=1e-4)


@pytest.mark.benchmark(group=f"topn_excursion N={TOPN_N} D={TOPN_D} n={TOPN_KEEP} float32")
@pytest.mark.parametrize("impl", ["kernel", "numpy-dense"])
def test_bench_topn_excursion(benchmark: Any, topn: dict[str, Any], impl: str) -> None:
    args = (topn["x"], topn["mean"], topn["std"], topn["inv_corr"], TOPN_KEEP)
    func = topn_excursion if impl == "kernel" else topn_excursion_numpy
    got = benchmark(func, *args)
    np.testing.assert_allclose(got, topn["want"], rtol=1e-4)
