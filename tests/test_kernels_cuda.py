"""The CUDA kernels against the CPU kernels on the same seeded random inputs.

They run where torch sees a GPU and xadt was built with its CUDA kernels, and skip elsewhere;
``benches/gpu_check.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from xadt import _kernels
from xadt.kernels import cuda, extract_patches, mahalanobis, topn_excursion, window_map

if not torch.cuda.is_available():
    _SKIP = "no CUDA GPU visible to torch"
elif not _kernels.cuda_compiled:
    _SKIP = "xadt was built without its CUDA kernels (no nvcc, or XADT_CUDA=OFF)"
else:
    _SKIP = ""
gpu = pytest.mark.skipif(bool(_SKIP), reason=_SKIP)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _boxes(rng: np.random.Generator, n: int, size: int, height: int, width: int) -> np.ndarray:
    """``n`` size×size windows, some overhanging the view or outside it."""
    y0 = rng.integers(-size - 3, height + 3, n)
    x0 = rng.integers(-size - 3, width + 3, n)
    return np.stack([y0, x0, y0 + size, x0 + size], axis=1).astype(np.int64)


@gpu
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_extract_patches_matches_the_cpu_kernel(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = rng.integers(5, 90, 2).tolist()
    size = int(rng.integers(1, 40))
    if dtype is np.float32:
        view = rng.random((height, width, 3), dtype=np.float32)
    else:
        view = rng.integers(0, np.iinfo(dtype).max, (height, width, 3), dtype=dtype)
    boxes = _boxes(rng, 50, size, height, width)
    want = extract_patches(view, boxes, size, MEAN, STD, pad_value=7)
    device_view = torch.from_numpy(view).cuda()
    got = extract_patches(device_view, boxes, size, MEAN, STD, pad_value=7)
    assert got.device == device_view.device
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-6)
    # a strided view (every other column; no flip: torch has few uint16 CUDA ops) is read in place
    strided = device_view[:, ::2]
    assert not strided.is_contiguous()
    want = extract_patches(view[:, ::2], boxes, size, MEAN, STD)
    got = extract_patches(strided, torch.from_numpy(boxes).cuda(), size, MEAN, STD)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=1e-6)


@gpu
@pytest.mark.parametrize("seed", range(4))
def test_window_map_matches_the_cpu_kernel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 120, 2).tolist()
    n = int(rng.integers(0, 600))  # more boxes than one shared-memory chunk
    y0, x0 = rng.integers(-20, height, n), rng.integers(-20, width, n)
    boxes = np.stack([y0, x0, y0 + rng.integers(0, 40, n), x0 + rng.integers(0, 40, n)], 1)
    scores = rng.normal(size=n) * 10.0 ** rng.integers(-3, 300)
    if n > 3 and seed % 2:
        scores[:3] = [np.nan, np.inf, -np.inf]
    with np.errstate(over="ignore"):  # the largest scores overflow float32: inf, as on the GPU
        scores32 = scores.astype(np.float32)
    for cpu_scores, dtype in ((scores, torch.float64), (scores32, torch.float32)):
        want = window_map(boxes, cpu_scores, height, width)
        got = window_map(boxes, torch.from_numpy(scores).to("cuda", dtype), height, width)
        # Sums are rounded in another order than the CPU's sweep: exact to ~N·1e-16·max|score|.
        finite = np.abs(cpu_scores[np.isfinite(cpu_scores)])
        atol = 1e-13 * n * float(finite.max(initial=0.0))
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-6, atol=atol, equal_nan=True)


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "d"), [(0, 3), (1, 1), (13, 7), (300, 64), (97, 700)])
def test_mahalanobis_matches_the_cpu_kernel(dtype: type, n: int, d: int) -> None:
    rng = np.random.default_rng(n * 1000 + d)
    x = rng.normal(size=(n, d)).astype(dtype)
    mean = rng.normal(size=d).astype(dtype)
    a = rng.normal(size=(d, d))
    precision = (a @ a.T / d + np.eye(d)).astype(dtype)
    want = mahalanobis(x, mean, precision)
    got = mahalanobis(torch.from_numpy(x).cuda(), mean, torch.from_numpy(precision).cuda())
    assert got.dtype == torch.from_numpy(x).dtype
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=rtol)


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("rows", "d", "keep"),
    [(0, 4, 2), (1, 1, 1), (40, 50, 5), (300, 1000, 12), (20, 30, 30), (9, 10, 99)],
)
def test_topn_excursion_matches_the_cpu_kernel(dtype: type, rows: int, d: int, keep: int) -> None:
    rng = np.random.default_rng(rows * 7 + d)
    x = rng.integers(-3, 4, (rows, d)).astype(dtype)  # small integers: many ties to break
    mean = rng.integers(-1, 2, d).astype(dtype)
    std = rng.choice([0.5, 1.0, 2.0], d).astype(dtype)
    a = rng.normal(size=(d, d))
    p = a @ a.T / d + np.eye(d)
    s = 1 / np.sqrt(np.diag(p))
    inv_corr = (p * s[:, None] * s[None, :]).astype(dtype)
    want = topn_excursion(x, mean, std, inv_corr, keep)
    got = topn_excursion(torch.from_numpy(x).cuda(), mean, std, inv_corr, keep)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=rtol, atol=1e-12)


@gpu
def test_cuda_kernels_run_on_torchs_current_stream() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(512, 256)).astype(np.float32)
    mean = np.zeros(256, dtype=np.float32)
    precision = np.eye(256, dtype=np.float32)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        xd = torch.from_numpy(x).cuda()
        got = mahalanobis(xd, mean, precision)
    stream.synchronize()
    np.testing.assert_allclose(got.cpu().numpy(), (x.astype(np.float64) ** 2).sum(1), rtol=1e-4)


@gpu
def test_cuda_kernels_refuse_non_finite_inputs() -> None:
    x = torch.ones(4, 3, device="cuda")
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"mahalanobis: x has a non-finite entry"):
        mahalanobis(x, torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match=r"topn_excursion: x has a non-finite entry"):
        topn_excursion(x, torch.zeros(3), torch.ones(3), torch.eye(3), 2)
    with pytest.raises(ValueError, match=r"topn_excursion: the score of row 0 is not finite"):
        topn_excursion(
            torch.full((1, 3), 1e300, dtype=torch.float64, device="cuda"),
            torch.zeros(3),
            torch.full((3,), 1e-300, dtype=torch.float64),
            torch.eye(3),
            2,
        )


def test_a_build_without_cuda_refuses_cuda_inputs_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No GPU is needed: the check comes before anything touches the tensor (meta stands in).
    monkeypatch.setattr(_kernels, "cuda_compiled", False)
    message = (
        "mahalanobis: x is on meta but xadt was built without its CUDA kernels (no nvcc, or "
        "XADT_CUDA=OFF); move it to the CPU or reinstall xadt where nvcc is found"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cuda.mahalanobis(torch.empty(2, 2, device="meta"), np.zeros(2), np.eye(2))
