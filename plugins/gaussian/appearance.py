"""Appearance model (methods.md §1.4): a Gaussian over binarised pool vectors, adjusted variance.

Fit from the :class:`~xadt.moments.Moments` of binary patch vectors; a patch scores its
squared Mahalanobis distance and a scan its most anomalous patch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xadt.detector import DetectorState
from xadt.errors import XadtError
from xadt.moments import Moments
from xadt.plugins.gaussian._common import check_columns, cholesky_inverse, require, segment_max
from xadt.plugins.gaussian.binarize import binarize

__all__ = [
    "RIDGE_CANDIDATES",
    "AppearanceModel",
    "adjusted_variance",
    "clip_probability",
    "held_out_log_likelihood",
    "naive_variance",
    "select_ridge",
]

RIDGE_CANDIDATES = (1e-4, 1e-3, 1e-2, 1e-1)
"""The relative ridges δ that :func:`select_ridge` tries by default (G-7)."""

VarianceKind = Literal["adjusted", "naive"]
CovarianceKind = Literal["full", "diagonal"]

_TAYLOR_BAND = 1e-6


def clip_probability(p: np.ndarray, n: int) -> np.ndarray:
    """Clip fractions of ones to [1/(2n), 1 - 1/(2n)] (G-6), n = number of training patches."""
    if n < 1:
        msg = f"clip_probability: n must be >= 1, got {n}"
        raise ValueError(msg)
    eps = 1.0 / (2.0 * n)
    return np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)


def naive_variance(p: np.ndarray) -> np.ndarray:
    """Bernoulli variance p(1 - p) of a binary dimension with fraction of ones p (ablation)."""
    q = np.asarray(p, dtype=np.float64)
    return q * (1.0 - q)


def adjusted_variance(p: np.ndarray) -> np.ndarray:
    """Adjusted variance v' = (p - ½) / ln(p / (1 - p)) of a binary dimension (methods.md §1.4).

    The variance for which a Gaussian with mean p gives a 1 and a 0 the likelihood ratio
    p / (1 - p) of the data. Within 1e-6 of p = ½ (a 0/0) the Taylor branch ¼ - (p - ½)²/3 is used,
    whose limit is ¼. Requires 0 < p < 1 (clip with :func:`clip_probability` first).
    """
    q = np.asarray(p, dtype=np.float64)
    if not ((q > 0) & (q < 1)).all():
        msg = "adjusted_variance: every p must lie strictly between 0 and 1; clip it first"
        raise ValueError(msg)
    d = q - 0.5
    near = np.abs(d) < _TAYLOR_BAND
    out = np.empty_like(q)
    out[near] = 0.25 - d[near] ** 2 / 3.0
    # ln(p/(1-p)) = 2·artanh(2(p - ½)): the artanh form avoids cancellation near ½ (p - ½ is
    # exact there), the log form keeps precision near 0 and 1.
    mid = ~near & (np.abs(d) < 0.25)
    out[mid] = d[mid] / (2.0 * np.arctanh(2.0 * d[mid]))
    tail = np.abs(d) >= 0.25
    out[tail] = d[tail] / (np.log(q[tail]) - np.log1p(-q[tail]))
    return out


def _mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    # Imported on first use so fitting works without the compiled kernels.
    from xadt.kernels import mahalanobis

    return np.asarray(mahalanobis(x, mean, precision), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class AppearanceModel:
    """Fitted appearance Gaussian: mean p, covariance diag(√v) C diag(√v) + ridge, its precision.

    Build it with :meth:`fit` or :meth:`from_state`. Scores are squared Mahalanobis distances of
    binarised patch vectors (dimensionless, >= 0); higher = more anomalous.

    Attributes
    ----------
    threshold : float
        Binarisation threshold t in activation units (activation > t → 1).
    mean : np.ndarray, shape (D,)
        Clipped fraction of ones p_d per dimension (the Gaussian's mean).
    variance : np.ndarray, shape (D,)
        Modelling variance per dimension (adjusted or naive), before the ridge.
    precision : np.ndarray, shape (D, D)
        Inverse of the (ridged) covariance, symmetric.
    n_patches : int
        Number of training patches N.
    variance_kind : {"adjusted", "naive"}
    covariance_kind : {"full", "diagonal"}
    ridge : float
        Relative ridge δ; ``ridge_added`` = δ · mean(diag Σ) was added to the diagonal (full only).
    ridge_added : float
    """

    threshold: float
    mean: np.ndarray
    variance: np.ndarray
    precision: np.ndarray
    n_patches: int
    variance_kind: VarianceKind = "adjusted"
    covariance_kind: CovarianceKind = "full"
    ridge: float = 1e-3
    ridge_added: float = 0.0

    @property
    def dim(self) -> int:
        """Number of appearance dimensions D."""
        return self.mean.shape[0]

    @classmethod
    def fit(
        cls,
        moments: Moments,
        threshold: float,
        *,
        variance: VarianceKind = "adjusted",
        covariance: CovarianceKind = "full",
        ridge: float = 1e-3,
    ) -> AppearanceModel:
        """Fit from the moments of binary patch vectors (all normal training patches, pooled).

        Parameters
        ----------
        moments : Moments
            Accumulated over ``binarize(activations, threshold)`` of every training patch.
        threshold : float
            The threshold those vectors were binarised with (stored for scoring).
        variance : {"adjusted", "naive"}
            Adjusted variance v' (default) or the naive p(1 - p) (ablation).
        covariance : {"full", "diagonal"}
            Full covariance from the phi-coefficient correlation (default) or diagonal (ablation).
            The diagonal model gets no ridge, so adjusted + diagonal is exactly Bernoulli naive
            Bayes.
        ridge : float
            δ >= 0 of G-7: Σ + δ·mean(diag Σ)·I for the full covariance.

        Raises
        ------
        XadtError
            Fewer than 2 patches, means outside [0, 1] (the rows were not binary), or a full
            covariance that is not positive definite (only possible with ``ridge`` = 0).
        """
        if variance not in ("adjusted", "naive") or covariance not in ("full", "diagonal"):
            msg = f"AppearanceModel.fit: unknown variance {variance!r} or covariance {covariance!r}"
            raise ValueError(msg)
        if not ridge >= 0:
            msg = f"AppearanceModel.fit: ridge must be >= 0, got {ridge}"
            raise ValueError(msg)
        n = moments.count
        if n < 2:
            msg = f"appearance model: need at least 2 training patches, got {n}"
            raise XadtError(msg)
        raw = moments.mean
        if ((raw < 0) | (raw > 1)).any():
            msg = "appearance model: patch vectors must be binary (0/1); binarize them first"
            raise XadtError(msg)
        p = clip_probability(raw, n)
        v = adjusted_variance(p) if variance == "adjusted" else naive_variance(p)
        added = 0.0
        if covariance == "diagonal":
            precision = np.diag(1.0 / v)
        else:
            sd = np.sqrt(v)
            sigma = moments.correlation() * sd[:, None] * sd[None, :]
            added = float(ridge * v.mean())
            sigma[np.diag_indices_from(sigma)] += added
            precision = cholesky_inverse(
                sigma, "appearance covariance", "set the ridge option > 0 (default 1e-3)"
            )
        return cls(
            threshold=float(threshold),
            mean=p,
            variance=v,
            precision=precision,
            n_patches=int(n),
            variance_kind=variance,
            covariance_kind=covariance,
            ridge=float(ridge),
            ridge_added=added,
        )

    def patch_scores(self, activations: np.ndarray) -> np.ndarray:
        """Anomaly score of each patch; higher = more anomalous.

        Parameters
        ----------
        activations : array, shape (n, D)
            Raw pool activations of n patches; binarised here with ``threshold``.

        Returns
        -------
        np.ndarray, shape (n,), float64
            Squared Mahalanobis distance (b - p)ᵀ Σ⁻¹ (b - p) of each binary vector b.
        """
        b = binarize(
            check_columns(activations, self.dim, "AppearanceModel.patch_scores"), self.threshold
        )
        if b.shape[0] == 0:
            return np.zeros(0)
        return _mahalanobis(b, self.mean, self.precision)

    def scan_scores(self, activations: np.ndarray, counts: Iterable[int]) -> np.ndarray:
        """Anomaly score of each scan: the maximum patch score over all its patches (all views).

        Parameters
        ----------
        activations : array, shape (n, D)
            Pool activations of the patches of several scans, scan after scan.
        counts : sequence of int
            Number of patches of each scan (each >= 1), summing to n.

        Returns
        -------
        np.ndarray, shape (n_scans,), float64
            Squared Mahalanobis distance of each scan's most anomalous patch; higher = more
            anomalous.
        """
        return segment_max(self.patch_scores(activations), counts, "AppearanceModel.scan_scores")

    def to_state(self) -> DetectorState:
        """Arrays (``mean``, ``variance``, ``precision``) and JSON-ready meta of the model."""
        return DetectorState(
            tensors={
                "mean": self.mean.copy(),
                "variance": self.variance.copy(),
                "precision": self.precision.copy(),
            },
            meta={
                "threshold": self.threshold,
                "n_patches": self.n_patches,
                "variance": self.variance_kind,
                "covariance": self.covariance_kind,
                "ridge": self.ridge,
                "ridge_added": self.ridge_added,
                "dim": self.dim,
            },
        )

    @classmethod
    def from_state(cls, state: DetectorState) -> AppearanceModel:
        """Rebuild the model from :meth:`to_state` output; it scores identically."""
        keys = ("threshold", "n_patches", "variance", "covariance", "ridge", "ridge_added")
        require(state, "appearance model", ("mean", "variance", "precision"), keys)
        m = state.meta
        mean = np.asarray(state.tensors["mean"], dtype=np.float64)
        precision = np.asarray(state.tensors["precision"], dtype=np.float64)
        if precision.shape != (mean.shape[0], mean.shape[0]):
            msg = "appearance model: the stored precision does not match the stored mean"
            raise XadtError(msg)
        return cls(
            threshold=float(m["threshold"]),
            mean=mean,
            variance=np.asarray(state.tensors["variance"], dtype=np.float64),
            precision=precision,
            n_patches=int(m["n_patches"]),
            variance_kind=m["variance"],
            covariance_kind=m["covariance"],
            ridge=float(m["ridge"]),
            ridge_added=float(m["ridge_added"]),
        )


def held_out_log_likelihood(model: AppearanceModel, held_out: Moments) -> float:
    """Mean Gaussian log-likelihood (nats per patch) of held-out binary patch vectors.

    Computed from the held-out moments alone:
    ``-½ [tr(P S) + (m - μ)ᵀ P (m - μ) + D ln 2π - ln det P]`` with P the model's precision,
    S the held-out covariance (ddof = 0) and m the held-out mean. Higher = better fit.
    """
    if held_out.dim != model.dim:
        msg = (
            f"held_out_log_likelihood: {held_out.dim}-D held-out moments for a {model.dim}-D model"
        )
        raise ValueError(msg)
    p = model.precision
    sign, logdet = np.linalg.slogdet(p)
    if sign <= 0:
        msg = "held_out_log_likelihood: the model's precision is not positive definite"
        raise XadtError(msg)
    y = held_out.mean - model.mean
    quad = float(np.sum(p * held_out.covariance(ddof=0)) + y @ p @ y)
    return -0.5 * (quad + model.dim * np.log(2 * np.pi) - logdet)


def select_ridge(
    train: Moments,
    held_out: Moments,
    threshold: float,
    candidates: Iterable[float] = RIDGE_CANDIDATES,
    *,
    variance: VarianceKind = "adjusted",
) -> tuple[float, dict[float, float]]:
    """Pick δ by the held-out Gaussian log-likelihood of *normal* patches (G-7, optional).

    ``train`` and ``held_out`` are the binary-vector moments of disjoint normal scans (e.g. a
    90% / 10% split of the training scans). Returns the best δ (ties → the smaller) and the mean
    held-out log-likelihood of every candidate; refit on all scans with the chosen δ afterwards.
    """
    results = {
        float(d): held_out_log_likelihood(
            AppearanceModel.fit(train, threshold, variance=variance, ridge=float(d)), held_out
        )
        for d in sorted(candidates)
    }
    if not results:
        msg = "select_ridge: no candidate ridges given"
        raise ValueError(msg)
    best = max(results, key=lambda d: (results[d], -d))
    return best, results
