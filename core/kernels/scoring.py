"""Squared Mahalanobis distances and top-n excursion scores of feature rows (methods.md §1.4-1.5).

Dispatch (figures: benches/README.md): tiny inputs run direct OpenMP C++ kernels; larger
ones run sgemm/dgemm through torch, from 512 rows against a block-symmetrised precision (0.6× the
flops at D = 1280; N = 4096: 61 ms against 87 ms for ``((x - m) @ P * (x - m)).sum(1)``), with
centring, finiteness checks and the float64 row dots fused in C++.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import xadt.kernels.cuda as cuda
from xadt import _kernels
from xadt.kernels._arrays import like, require_float, require_ndim, to_numpy

if TYPE_CHECKING:
    import torch

__all__ = ["mahalanobis", "topn_excursion"]

ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")

# Column-block width of the GEMM path: wide enough for BLAS to run near peak, narrow enough that the
# skipped lower blocks save most of the lower triangle (5 blocks at D = 1280: 0.6× the flops).
_BLOCK = 256
# The direct C++ kernel runs while D <= _DIRECT_MAX_DIM and N·D² < _DIRECT_MAX_WORK: there it beats
# torch's per-call overhead; beyond, BLAS wins (benches/README.md has the crossover table).
_DIRECT_MAX_DIM = 128
_DIRECT_MAX_WORK = 1 << 18
# The block-symmetrised GEMM pays O(D²) per call to build; from about this many rows it saves more.
_SYM_MIN_ROWS = 512
# topn_excursion cost model (ns, one thread, measured at D = 200 and 1000): the gathered n×n form
# costs _GATHER_NS·n² per row; the dense GEMM over z̃ costs _GEMM_NS·D² per row plus _SETUP_NS·D²
# per call. The cheaper one runs, so the dense path only takes over when n² is within a constant
# of D² (n >~ 0.2 D for many rows, 0.4 D for one): the cost stays O(D + n²) per row.
_GATHER_NS = 1.2
_GEMM_NS = 0.04
_SETUP_NS = 0.17


def _matrix(value: Any, fn: str, name: str) -> np.ndarray:
    """``value`` as a float32/float64 (N, D) numpy view, validated."""
    arr = require_float(to_numpy(value, f"{fn}: {name}"), f"{fn}: {name}")
    require_ndim(arr, 2, f"{fn}: {name}", "(N, D)")
    return _native(arr)


def _native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in native byte order and aligned (the C++ side reads raw elements)."""
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.require(arr, requirements="A")


def _param(value: Any, fn: str, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A model parameter (mean, std, precision, inv_corr) checked against ``shape``, in ``dtype``.

    Parameters are cast to x's dtype (one copy per call when they differ) and made contiguous.
    """
    arr = require_float(to_numpy(value, f"{fn}: {name}"), f"{fn}: {name}")
    d = shape[0]
    if len(shape) == 1:
        require_ndim(arr, 1, f"{fn}: {name}", "(D,)")
        if arr.shape[0] != d:
            msg = f"{fn}: x has {d} columns but {name} has {arr.shape[0]}"
            raise ValueError(msg)
    else:
        require_ndim(arr, 2, f"{fn}: {name}", "(D, D)")
        if arr.shape[0] != arr.shape[1]:
            msg = f"{fn}: {name} must be square, got shape {arr.shape}"
            raise ValueError(msg)
        if arr.shape[0] != d:
            msg = f"{fn}: x has {d} columns but {name} is {arr.shape[0]}x{arr.shape[1]}"
            raise ValueError(msg)
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_columns(x: np.ndarray, fn: str) -> None:
    if x.shape[1] < 1:
        msg = f"{fn}: x has no columns; expected shape (N, D) with D >= 1"
        raise ValueError(msg)


def _quadratic_gemm(y: np.ndarray, matrix: np.ndarray, fn: str, name: str) -> np.ndarray:
    """Row-wise yᵀMy in float64 for C-contiguous y (N, D) via BLAS GEMMs through torch.

    Many rows: one GEMM per column block against the block-symmetrised M (0.6× the flops at
    D = 1280, for an O(D²) set-up). Fewer rows: one full GEMM ``y @ M``. Either way the row dot
    with y is fused in C++.
    """
    import torch

    n, d = y.shape
    yt = torch.from_numpy(y)
    acc = np.zeros(n, dtype=np.float64)
    if n < _SYM_MIN_ROWS or d <= _BLOCK:
        _kernels.mahalanobis_require_finite(matrix, fn, name)
        t = torch.matmul(yt, torch.from_numpy(matrix))
        _kernels.mahalanobis_row_dot_add(acc, t.numpy(), y)
        return acc
    sym = torch.from_numpy(_kernels.mahalanobis_sym_blocks(matrix, _BLOCK, fn, name))
    # Block J's product goes to its own contiguous slab of one buffer, and a single C++ call then
    # takes every row dot: one parallel region instead of one per block.
    buf = torch.empty(n * d, dtype=yt.dtype)
    for j0 in range(0, d, _BLOCK):
        j1 = min(d, j0 + _BLOCK)
        slab = buf[n * j0 : n * j1].view(n, j1 - j0)
        torch.matmul(yt[:, :j1], sym[:j1, j0:j1], out=slab)
    _kernels.mahalanobis_block_row_dots(acc, buf.numpy(), y, _BLOCK)
    return acc


def _torch_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised numpy view of torch memory: 64-byte aligned, as MKL's GEMM prefers."""
    import torch

    return torch.empty(shape, dtype=torch.float32 if dtype == np.float32 else torch.float64).numpy()


def _finite_result(acc: np.ndarray, dtype: np.dtype, fn: str) -> np.ndarray:
    """``acc`` cast to ``dtype``; ``ValueError`` when a score overflows it."""
    with np.errstate(over="ignore"):
        out = acc.astype(dtype)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        msg = f"{fn}: the score of row {bad[0]} overflows {dtype}; rescale the inputs"
        raise ValueError(msg)
    return out


def mahalanobis(x: ArrayT, mean: ArrayT, precision: ArrayT) -> ArrayT:
    """Squared Mahalanobis distance of each row of ``x`` from a Gaussian (methods.md §1.4).

    ``d²[i] = (x[i] - mean)ᵀ precision (x[i] - mean)``. Anomaly score; higher = more anomalous.

    Parameters
    ----------
    x : numpy array or torch tensor, shape (N, D), float32 or float64
        Feature rows, in the units of ``mean``; any strides. ``N`` may be 0. A CUDA tensor runs
        the CUDA kernel (the parameters are moved to its device) and gives a CUDA tensor.
    mean : array or tensor, shape (D,), float32 or float64
        Mean of the Gaussian, in the units of ``x``.
    precision : array or tensor, shape (D, D), float32 or float64
        Inverse covariance, in 1/units². It is not required to be symmetric: the quadratic form
        equals that of its symmetric part, which is what is computed.

    Returns
    -------
    numpy array or torch tensor (the kind of ``x``), shape (N,), dtype of ``x``
        Squared Mahalanobis distances: dimensionless (squared standard deviations), >= 0 for a
        positive semi-definite ``precision``. Always finite.

    Raises
    ------
    ValueError
        Naming the argument at fault: wrong number of dimensions, D = 0, column counts that
        disagree, a non-square ``precision``, a dtype other than float32/float64, a tensor on a
        device other than CPU or CUDA (or on CUDA where xadt was built without it), non-finite
        entries in any argument, or a distance that overflows the dtype of ``x``.

    Notes
    -----
    ``mean`` and ``precision`` are cast to the dtype of ``x`` (a copy per call if they differ).
    float32 inputs are centred and multiplied in float32 and summed in float64; they agree with a
    float64 computation to about 1e-4 relative when ``precision`` has condition number <= 1e3.
    """
    fn = "mahalanobis"
    if cuda.is_cuda(x):
        return cuda.mahalanobis(x, mean, precision)
    xa = _matrix(x, fn, "x")
    _check_columns(xa, fn)
    n, d = xa.shape
    mean_a = _param(mean, fn, "mean", xa.dtype, (d,))
    prec_a = _param(precision, fn, "precision", xa.dtype, (d, d))
    if n == 0 or (d <= _DIRECT_MAX_DIM and n * d * d < _DIRECT_MAX_WORK):
        out = _kernels.mahalanobis(xa, mean_a, prec_a)
    else:
        y = _torch_empty(xa.shape, xa.dtype)
        _kernels.mahalanobis_centre(xa, mean_a, y)
        out = _finite_result(_quadratic_gemm(y, prec_a, fn, "precision"), xa.dtype, fn)
    return like(out, x)


def topn_excursion(x: ArrayT, mean: ArrayT, std: ArrayT, inv_corr: ArrayT, n: int) -> ArrayT:
    """Top-n excursion score of each row of ``x`` (methods.md §1.5).

    Per row, ``z = (x - mean) / std``; the ``n`` largest *signed* z-scores are kept (negative ones
    too when fewer than ``n`` are positive; among equal z the lower index is kept first) and the
    others set to 0, giving ``z̃``; the score is ``z̃ᵀ inv_corr z̃``. Anomaly score; higher = more
    anomalous. Cost O(D + n²) per row: selection, then the n×n quadratic form on the gathered block
    (when n² nears D², a dense GEMM over z̃ is cheaper and is used instead).

    Parameters
    ----------
    x : numpy array or torch tensor, shape (N, D), float32 or float64
        Feature rows (e.g. per-image maximum logits); any strides. ``N`` may be 0. A CUDA tensor
        runs the CUDA kernel (the parameters are moved to its device) and gives a CUDA tensor.
    mean : array or tensor, shape (D,)
        Per-dimension mean, in the units of ``x``.
    std : array or tensor, shape (D,)
        Per-dimension standard deviation, in the units of ``x``; every entry > 0.
    inv_corr : array or tensor, shape (D, D)
        Inverse correlation matrix (dimensionless). Only the n×n block of the kept dimensions
        enters a row's score; a non-finite entry raises when a row uses it (the dense path, taken
        for large n, reads and checks the whole matrix).
    n : int
        Number of excursions kept per row, >= 1; ``n >= D`` keeps every dimension.

    Returns
    -------
    numpy array or torch tensor (the kind of ``x``), shape (N,), dtype of ``x``
        Scores in squared standard deviations (dimensionless), >= 0 for a positive semi-definite
        ``inv_corr``. Always finite.

    Raises
    ------
    ValueError
        Naming the argument at fault: wrong number of dimensions, D = 0, column counts that
        disagree, a non-square ``inv_corr``, a dtype other than float32/float64, ``n`` < 1 or not
        an integer, a ``std`` entry <= 0, non-finite ``x``, ``mean`` or ``std`` (or a z-score
        that overflows float64), a non-finite ``inv_corr`` entry used by a row, or a score that
        overflows the dtype of ``x``.

    Notes
    -----
    z-scores are computed and ranked in float64 whatever the dtype of ``x`` (so float32 input
    selects exactly what a float64 reference would); parameters are cast to the dtype of ``x``.
    """
    fn = "topn_excursion"
    if cuda.is_cuda(x):
        return cuda.topn_excursion(x, mean, std, inv_corr, _count(n, fn))
    xa = _matrix(x, fn, "x")
    _check_columns(xa, fn)
    rows, d = xa.shape
    keep = _count(n, fn)
    mean_a = _param(mean, fn, "mean", xa.dtype, (d,))
    std_a = _param(std, fn, "std", xa.dtype, (d,))
    corr_a = _param(inv_corr, fn, "inv_corr", xa.dtype, (d, d))
    keep = min(keep, d)
    dense = rows > 0 and _GATHER_NS * keep * keep * rows > d * d * (_GEMM_NS * rows + _SETUP_NS)
    if dense:
        zt = _kernels.topn_dense(xa, mean_a, std_a, keep)
        out = _finite_result(_quadratic_gemm(zt, corr_a, fn, "inv_corr"), xa.dtype, fn)
    else:
        out = _kernels.topn_excursion(xa, mean_a, std_a, corr_a, keep)
    return like(out, x)


def _count(n: Any, fn: str) -> int:
    """``n`` as a Python int >= 1, or ``ValueError`` naming it."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        msg = f"{fn}: n must be an integer, got {n!r}"
        raise ValueError(msg)
    if n < 1:
        msg = f"{fn}: n must be >= 1, got {n}"
        raise ValueError(msg)
    return int(n)
