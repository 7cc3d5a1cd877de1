"""Throughput of the scoring kernels against torch and numpy at the Gaussian detector's sizes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from tests.reference.scoring import mahalanobis_dense, topn_excursion_dense
from xadt.kernels import mahalanobis, topn_excursion

MAHA_N, MAHA_D = 4096, 1280  # patches × EfficientNet-Lite0 pooled features
LOOP_ROWS = 256  # the per-row Python loop scores this many rows; README scales it to MAHA_N
TOPN_N, TOPN_D, TOPN_KEEP = 1024, 1000, 12  # images × ImageNet logits, n = 12 (methods.md §1.5)


def spd(rng: np.random.Generator, d: int) -> np.ndarray:
    """Dense symmetric positive definite, eigenvalues log-uniform in [1, 1e3] (condition <= 1e3).

    Three Householder reflections rotate a diagonal matrix: exact spectrum, O(D²) set-up (a QR of
    a random D×D matrix takes seconds on a busy machine).
    """
    p = np.diag(10.0 ** rng.uniform(0, 3, size=d))
    for _ in range(3):
        v = rng.normal(size=d)
        v /= np.linalg.norm(v)
        p = p - 2 * np.outer(v, v @ p)  # H p with H = I - 2 v vᵀ
        p = p - 2 * np.outer(p @ v, v)  # (H p) H
    return p


@pytest.fixture(scope="module")
def maha() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(MAHA_N, MAHA_D)).astype(np.float32)
    mean = rng.normal(size=MAHA_D).astype(np.float32)
    precision = spd(rng, MAHA_D).astype(np.float32)
    return {
        "x": x,
        "mean": mean,
        "precision": precision,
        "want": mahalanobis_dense(x, mean, precision),
    }


@pytest.fixture(scope="module")
def topn() -> dict[str, Any]:
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(TOPN_N, TOPN_D)) * 2).astype(np.float32)
    mean = rng.normal(size=TOPN_D).astype(np.float32)
    std = rng.uniform(0.5, 2.0, size=TOPN_D).astype(np.float32)
    p = spd(rng, TOPN_D)
    s = 1 / np.sqrt(np.diag(p))
    inv_corr = (p * s[:, None] * s[None, :]).astype(np.float32)
    return {
        "x": x,
        "mean": mean,
        "std": std,
        "inv_corr": inv_corr,
        "want": topn_excursion_dense(x, mean, std, inv_corr, TOPN_KEEP),
    }


def _mahalanobis_impl(impl: str, d: dict[str, Any]) -> tuple[Callable[[], Any], int]:
    """The callable timed for ``impl`` and the number of rows it scores."""
    x, mean, precision = d["x"], d["mean"], d["precision"]
    if impl == "kernel":
        return (lambda: mahalanobis(x, mean, precision)), MAHA_N
    if impl == "torch":
        xt, mt, pt = (torch.from_numpy(a) for a in (x, mean, precision))
        return (lambda: ((xt - mt) @ pt * (xt - mt)).sum(1).numpy()), MAHA_N

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
    func = topn_excursion if impl == "kernel" else topn_excursion_dense
    got = benchmark(func, *args)
    np.testing.assert_allclose(got, topn["want"], rtol=1e-4)
