"""Dirichlet maximum likelihood and the GeoTrans normality scores (methods.md §5.4).

The fit needs only the mean of the observations and the mean of their logarithms, so the
softmax outputs of many patches are accumulated as two sums and never held at once.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, polygamma

__all__ = ["CLIP", "fit_dirichlet", "inverse_digamma", "normality", "simple_normality"]

CLIP = 1e-12
"""Softmax outputs are clipped to [CLIP, 1] before any logarithm, in fitting and scoring (T-2)."""

_EULER = -float(digamma(1.0))


def inverse_digamma(y: np.ndarray, steps: int = 5) -> np.ndarray:
    """ψ⁻¹(y) by Minka's Newton scheme: start at exp(y) + 1/2 for y >= -2.22, else
    -1 / (y - ψ(1)), then ``steps`` Newton steps."""
    y = np.asarray(y, dtype=np.float64)
    x = np.where(y >= -2.22, np.exp(np.minimum(y, 700.0)) + 0.5, -1.0 / (y + _EULER))
    for _ in range(steps):
        x = x - (digamma(x) - y) / polygamma(1, x)
    return x


def fit_dirichlet(
    mean: np.ndarray, mean_log: np.ndarray, *, iterations: int = 1000, tol: float = 1e-9
) -> np.ndarray:
    """Maximum-likelihood Dirichlet concentrations from the sufficient statistics.

    Minka's fixed point α ← ψ⁻¹(ψ(Σα) + mean log y), started at Wicker et al.'s
    s₀·mean with s₀ = (k - 1)·γ / Σ_j mean_j (ln mean_j - mean_log_j), until every row moves by
    less than ``tol`` (Euclidean) or after ``iterations`` steps.

    Args:
        mean: (..., k) mean of the observations (each a point of the simplex).
        mean_log: (..., k) mean of their logarithms.

    Returns:
        (..., k) concentrations α, one Dirichlet per leading index.
    """
    mean = np.asarray(mean, dtype=np.float64)
    mean_log = np.asarray(mean_log, dtype=np.float64)
    k = mean.shape[-1]
    spread = np.sum(mean * (np.log(mean) - mean_log), axis=-1, keepdims=True)
    # Identical observations make the spread 0 and the likelihood unbounded: a large finite s₀.
    alpha = (k - 1) * _EULER / np.maximum(spread, 1e-12) * mean
    for _ in range(iterations):
        new = inverse_digamma(digamma(alpha.sum(axis=-1, keepdims=True)) + mean_log)
        moved = np.sqrt(np.sum((new - alpha) ** 2, axis=-1))
        alpha = new
        if np.all(moved < tol):
            break
    return alpha


def normality(log_probs: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The Dirichlet normality score Σ_i (α_i - 1)·log y_i / K, higher = more normal.

    Args:
        log_probs: (B, K, K) clipped log softmax outputs, ``[b, i]`` under transformation i.
        alpha: (K, K) concentrations, row i fitted on transformation i.

    Returns:
        (B,) scores; the terms that do not depend on the patch are dropped (same ranking as the
        full log-likelihood).
    """
    return np.einsum("bij,ij->b", log_probs, alpha - 1.0) / alpha.shape[0]


def simple_normality(log_probs: np.ndarray) -> np.ndarray:
    """The mean probability given to the right transformation, (1/K) Σ_i y(T_i x)_i."""
    return np.exp(np.diagonal(log_probs, axis1=1, axis2=2)).mean(axis=1)
