"""Plain numpy references for the scoring kernels, in float64, written to be obviously right."""

from __future__ import annotations

import numpy as np


def mahalanobis_ref(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row, one row at a time, in float64."""
    x = np.asarray(x, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    out = np.empty(x.shape[0], dtype=np.float64)
    for i, row in enumerate(x):
        y = row - mean
        out[i] = y @ precision @ y
    return out


def mahalanobis_dense(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """The same, vectorised (for references at benchmark sizes)."""
    y = np.asarray(x, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
    return ((y @ np.asarray(precision, dtype=np.float64)) * y).sum(axis=1)


def zscores_ref(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """z = (x - mean) / std in float64."""
    return (np.asarray(x, dtype=np.float64) - np.asarray(mean, dtype=np.float64)) / np.asarray(
        std, dtype=np.float64
    )


def topn_zeroed_ref(z: np.ndarray, n: int) -> np.ndarray:
    """z̃: each row keeps its n largest signed z (ties to the lower index); the rest are 0."""
    out = np.zeros_like(z)
    for i, row in enumerate(z):
        # A stable sort of -z puts larger z first and, among equal z, the lower index first.
        kept = np.argsort(-row, kind="stable")[:n]
        out[i, kept] = row[kept]
    return out


def topn_excursion_ref(
    x: np.ndarray, mean: np.ndarray, std: np.ndarray, inv_corr: np.ndarray, n: int
) -> np.ndarray:
    """Top-n excursion score z̃ᵀ R z̃ per row, dense over all D dimensions (methods.md §1.5)."""
    zt = topn_zeroed_ref(zscores_ref(x, mean, std), n)
    r = np.asarray(inv_corr, dtype=np.float64)
    return np.array([row @ r @ row for row in zt], dtype=np.float64)
