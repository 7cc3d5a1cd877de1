"""Helpers shared by the gaussian models: Cholesky inverses, per-scan maxima, state checks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from xadt.detector import DetectorState
from xadt.errors import NotFittedError, XadtError


def cholesky_inverse(matrix: np.ndarray, what: str, hint: str) -> np.ndarray:
    """Inverse of a symmetric positive-definite matrix through its Cholesky factor, symmetrised.

    ``XadtError`` (``what``: ..., ``hint``) when the matrix is not numerically positive definite.
    """
    a = 0.5 * (matrix + matrix.T)
    try:
        factor = cho_factor(a, lower=True, check_finite=True)
    except LinAlgError:
        msg = f"{what} is not positive definite; {hint}"
        raise XadtError(msg) from None
    inv = cho_solve(factor, np.eye(a.shape[0]))
    return 0.5 * (inv + inv.T)


def segment_max(values: np.ndarray, counts: Iterable[int], fn: str) -> np.ndarray:
    """Maximum of consecutive runs of ``values``: run i has ``counts[i]`` >= 1 entries."""
    c = np.asarray(list(counts) if not isinstance(counts, np.ndarray) else counts, dtype=np.int64)
    if c.ndim != 1 or (c < 1).any() or int(c.sum()) != values.shape[0]:
        msg = (
            f"{fn}: counts must be >= 1 per scan and sum to the {values.shape[0]} rows given; "
            f"got {c.tolist()}"
        )
        raise ValueError(msg)
    if c.size == 0:
        return np.zeros(0, dtype=values.dtype)
    starts = np.concatenate([[0], np.cumsum(c)[:-1]])
    return np.maximum.reduceat(values, starts)


def require(state: DetectorState, owner: str, tensors: Iterable[str], meta: Iterable[str]) -> None:
    """``NotFittedError`` naming what a state lacks for ``owner``."""
    missing = [f"tensor {k!r}" for k in tensors if k not in state.tensors]
    missing += [f"meta {k!r}" for k in meta if k not in state.meta]
    if missing:
        msg = f"{owner}: the model state lacks {', '.join(missing)}; it was not written by it"
        raise NotFittedError(msg)


def check_columns(x: np.ndarray, dim: int, fn: str) -> np.ndarray:
    """``x`` as a float64 (n, dim) array, or ``ValueError``."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != dim:
        msg = f"{fn}: expected an (n, {dim}) array, got shape {a.shape}"
        raise ValueError(msg)
    return a.astype(np.float64, copy=False)
