"""Semantic model (methods.md §1.5): top-n positive z-excursions of per-scan maximum logits.

Image vectors (one per scan) stream into :class:`~xadt.moments.Moments`
(``fourth=True`` for Ledoit–Wolf shrinkage); the fit takes variances from a mean→log-SD line and
the correlation from the sample, shrunk towards the identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xadt.detector import DetectorState
from xadt.errors import XadtError
from xadt.moments import Moments
from xadt.plugins.gaussian._common import check_columns, cholesky_inverse, require

__all__ = ["SemanticModel", "fit_log_sd", "image_vectors"]

VarianceKind = Literal["fitted", "sample"]
CovarianceKind = Literal["full", "diagonal"]
Shrinkage = float | Literal["ledoit-wolf"]


def image_vectors(
    patch_logits: np.ndarray, counts: Iterable[int], dims: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Per-scan image vectors: the per-dimension maximum of the logits over each scan's patches.

    Parameters
    ----------
    patch_logits : array, shape (n, K)
        Logits (pre-softmax) of the patches of several scans, scan after scan (all views).
    counts : sequence of int
        Number of patches of each scan (each >= 1), summing to n.
    dims : sequence of int, optional
        Logit indices to keep (the parcel-plausible classes), in the order given; all K if None.

    Returns
    -------
    np.ndarray, shape (n_scans, len(dims)), float64
        Maximum logit per scan and kept dimension, in logit units.
    """
    x = np.asarray(patch_logits)
    if x.ndim != 2:
        msg = f"image_vectors: expected an (n, K) array of logits, got shape {x.shape}"
        raise ValueError(msg)
    if dims is not None:
        idx = _check_dims(dims, x.shape[1])
        x = x[:, idx]
    c = np.asarray(list(counts) if not isinstance(counts, np.ndarray) else counts, dtype=np.int64)
    if c.ndim != 1 or (c < 1).any() or int(c.sum()) != x.shape[0]:
        msg = (
            f"image_vectors: counts must be >= 1 per scan and sum to the {x.shape[0]} rows "
            f"given; got {c.tolist()}"
        )
        raise ValueError(msg)
    x = x.astype(np.float64, copy=False)
    if c.size == 0:
        return np.zeros((0, x.shape[1]))
    starts = np.concatenate([[0], np.cumsum(c)[:-1]])
    return np.maximum.reduceat(x, starts, axis=0)


def _check_dims(dims: Sequence[int] | np.ndarray, k: int | None) -> np.ndarray:
    idx = np.asarray(dims)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        msg = "semantic model: dims must be a non-empty 1-D sequence of integer logit indices"
        raise ValueError(msg)
    if np.unique(idx).size != idx.size or idx.min() < 0 or (k is not None and idx.max() >= k):
        msg = f"semantic model: dims must be distinct indices in [0, {k}); got {idx.tolist()}"
        raise ValueError(msg)
    return idx.astype(np.int64)


def fit_log_sd(mean: np.ndarray, sd: np.ndarray) -> tuple[float, float]:
    """Least-squares line log s_d = a + b·μ_d over the dimensions with s_d > 0 (G-9).

    Returns ``(a, b)``: intercept in log(logit units), slope per logit unit. With fewer than two
    distinct means among those dimensions the slope is 0 and ``a`` the mean of log s.
    """
    mu = np.asarray(mean, dtype=np.float64)
    s = np.asarray(sd, dtype=np.float64)
    live = s > 0
    if not live.any():
        msg = "semantic model: every dimension has zero spread over the training scans"
        raise XadtError(msg)
    x, y = mu[live], np.log(s[live])
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean()) / sxx) if sxx > 0 else 0.0
    return float(y.mean() - b * x.mean()), b


def _topn(
    x: np.ndarray, mean: np.ndarray, std: np.ndarray, inv_corr: np.ndarray, n: int
) -> np.ndarray:
    # Imported on first use so fitting works without the compiled kernels.
    from xadt.kernels import topn_excursion

    return np.asarray(topn_excursion(x, mean, std, inv_corr, n), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class SemanticModel:
    """Fitted semantic Gaussian over image vectors; scores top-n positive z-excursions.

    Build it with :meth:`fit` or :meth:`from_state`. The score z̃ᵀ R⁻¹ z̃ (z = (r - μ)/σ with all
    but the n largest signed entries zeroed) is a squared Mahalanobis distance of the kept
    excursions (dimensionless, >= 0); higher = more anomalous.

    Attributes
    ----------
    dims : np.ndarray, shape (D,), int64
        Logit indices of the kept dimensions.
    mean : np.ndarray, shape (D,)
        Sample mean μ of the image vectors, in logit units.
    std : np.ndarray, shape (D,)
        σ used for z: exp(a + b·μ) (fitted, default) or the sample SD, in logit units.
    sample_std : np.ndarray, shape (D,)
        Sample SD s (ddof = 1), in logit units.
    inv_corr : np.ndarray, shape (D, D)
        Inverse of the shrunk correlation (the identity for the diagonal model).
    intercept, slope : float
        a and b of log s = a + b·μ.
    shrinkage : float
        Weight λ of the identity in (1 - λ) R + λ I.
    shrinkage_rule : {"ledoit-wolf", "fixed"}
    n_scans : int
    n_excursions : int or None
        n of the top-n rule; None keeps every excursion (ablation).
    variance_kind : {"fitted", "sample"}
    covariance_kind : {"full", "diagonal"}
    """

    dims: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sample_std: np.ndarray
    inv_corr: np.ndarray
    intercept: float
    slope: float
    shrinkage: float
    shrinkage_rule: Literal["ledoit-wolf", "fixed"]
    n_scans: int
    n_excursions: int | None = 12
    variance_kind: VarianceKind = "fitted"
    covariance_kind: CovarianceKind = "full"

    @property
    def dim(self) -> int:
        """Number of kept dimensions D."""
        return self.mean.shape[0]

    @classmethod
    def fit(
        cls,
        moments: Moments,
        dims: Sequence[int] | np.ndarray | None = None,
        *,
        n_excursions: int | None = 12,
        variance: VarianceKind = "fitted",
        covariance: CovarianceKind = "full",
        shrinkage: Shrinkage = "ledoit-wolf",
    ) -> SemanticModel:
        """Fit from the moments of the training image vectors (one row per normal scan).

        Parameters
        ----------
        moments : Moments
            Accumulated over :func:`image_vectors` of the training scans, restricted to ``dims``;
            with ``fourth=True`` when ``shrinkage`` is "ledoit-wolf".
        dims : sequence of int, optional
            The logit indices the vectors were restricted to (recorded for scoring); None means
            all logits (ablation), i.e. ``range(moments.dim)``.
        n_excursions : int or None
            n of the top-n rule (default 12; the paper's AUC is flat for 3–15); None keeps all.
        variance : {"fitted", "sample"}
            σ from the mean→log-SD line (default) or the sample SD (ablation; a dimension with
            zero sample SD falls back to the fitted σ).
        covariance : {"full", "diagonal"}
            Full shrunk correlation (default) or the identity (ablation).
        shrinkage : "ledoit-wolf" or float in [0, 1]
            Ledoit–Wolf intensity computed from the moments on the standardised data
            (:meth:`Moments.ledoit_wolf_shrinkage`, our formula, equal to sklearn's), or a fixed
            weight λ of the identity.

        Raises
        ------
        XadtError
            Fewer than 2 scans, every dimension constant, or a correlation that is not positive
            definite (possible with a fixed shrinkage of 0 and fewer scans than dimensions).
        """
        if variance not in ("fitted", "sample") or covariance not in ("full", "diagonal"):
            msg = f"SemanticModel.fit: unknown variance {variance!r} or covariance {covariance!r}"
            raise ValueError(msg)
        if n_excursions is not None and (isinstance(n_excursions, bool) or n_excursions < 1):
            msg = (
                "SemanticModel.fit: n_excursions must be an integer >= 1 or None, "
                f"got {n_excursions!r}"
            )
            raise ValueError(msg)
        idx = np.arange(moments.dim) if dims is None else _check_dims(dims, None)
        if idx.size != moments.dim:
            msg = f"SemanticModel.fit: {idx.size} dims given for {moments.dim}-D image vectors"
            raise ValueError(msg)
        if moments.count < 2:
            msg = f"semantic model: need at least 2 training scans, got {moments.count}"
            raise XadtError(msg)
        mu = moments.mean
        s = np.sqrt(moments.variance(ddof=1))
        a, b = fit_log_sd(mu, s)
        fitted = np.exp(a + b * mu)
        sigma = fitted if variance == "fitted" else np.where(s > 0, s, fitted)
        d = mu.shape[0]
        if covariance == "diagonal":
            lam, rule, inv_corr = 0.0, "fixed", np.eye(d)
        else:
            if shrinkage == "ledoit-wolf":
                if not moments.fourth:
                    msg = "semantic model: Ledoit–Wolf needs Moments(dim, fourth=True)"
                    raise ValueError(msg)
                lam, rule = moments.ledoit_wolf_shrinkage(), "ledoit-wolf"
            elif isinstance(shrinkage, int | float) and 0 <= shrinkage <= 1:
                lam, rule = float(shrinkage), "fixed"
            else:
                msg = (
                    "SemanticModel.fit: shrinkage must be 'ledoit-wolf' or a float in [0, 1], "
                    f"got {shrinkage!r}"
                )
                raise ValueError(msg)
            r = (1.0 - lam) * moments.correlation()
            r[np.diag_indices_from(r)] += lam
            inv_corr = cholesky_inverse(
                r,
                "semantic correlation",
                f"use Ledoit–Wolf or a larger shrinkage ({moments.count} scans for {d} dimensions)",
            )
        return cls(
            dims=idx,
            mean=mu,
            std=sigma,
            sample_std=s,
            inv_corr=inv_corr,
            intercept=a,
            slope=b,
            shrinkage=float(lam),
            shrinkage_rule=rule,
            n_scans=moments.count,
            n_excursions=None if n_excursions is None else int(n_excursions),
            variance_kind=variance,
            covariance_kind=covariance,
        )

    def image_vectors(self, patch_logits: np.ndarray, counts: Iterable[int]) -> np.ndarray:
        """:func:`image_vectors` restricted to this model's ``dims``: shape (n_scans, D)."""
        return image_vectors(patch_logits, counts, self.dims)

    def vector_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Anomaly score of each image vector; higher = more anomalous.

        Parameters
        ----------
        vectors : array, shape (n_scans, D)
            Image vectors restricted to ``dims`` (see :meth:`image_vectors`), in logit units.

        Returns
        -------
        np.ndarray, shape (n_scans,), float64
            z̃ᵀ R⁻¹ z̃ over the top-n signed z-excursions (squared standard deviations, >= 0).
        """
        v = check_columns(vectors, self.dim, "SemanticModel.vector_scores")
        if v.shape[0] == 0:
            return np.zeros(0)
        n = self.dim if self.n_excursions is None else min(self.n_excursions, self.dim)
        return _topn(v, self.mean, self.std, self.inv_corr, n)

    def scan_scores(self, patch_logits: np.ndarray, counts: Iterable[int]) -> np.ndarray:
        """Anomaly score of each scan from its patches' logits (all K); higher = more anomalous.

        ``patch_logits`` (n, K) holds the patches of several scans in order, ``counts`` the
        number of patches per scan. Returns shape (n_scans,): see :meth:`vector_scores`.
        """
        return self.vector_scores(self.image_vectors(patch_logits, counts))

    def to_state(self) -> DetectorState:
        """Arrays ``dims``, ``mean``, ``std``, ``sample_std``, ``inv_corr`` and JSON-ready meta."""
        return DetectorState(
            tensors={
                "dims": self.dims.copy(),
                "mean": self.mean.copy(),
                "std": self.std.copy(),
                "sample_std": self.sample_std.copy(),
                "inv_corr": self.inv_corr.copy(),
            },
            meta={
                "intercept": self.intercept,
                "slope": self.slope,
                "shrinkage": self.shrinkage,
                "shrinkage_rule": self.shrinkage_rule,
                "n_scans": self.n_scans,
                "n_excursions": self.n_excursions,
                "variance": self.variance_kind,
                "covariance": self.covariance_kind,
                "dim": self.dim,
            },
        )

    @classmethod
    def from_state(cls, state: DetectorState) -> SemanticModel:
        """Rebuild the model from :meth:`to_state` output; it scores identically."""
        keys = ("intercept", "slope", "shrinkage", "shrinkage_rule", "n_scans", "n_excursions")
        names = ("dims", "mean", "std", "sample_std", "inv_corr")
        require(state, "semantic model", names, (*keys, "variance", "covariance"))
        t, m = state.tensors, state.meta
        mean = np.asarray(t["mean"], dtype=np.float64)
        inv_corr = np.asarray(t["inv_corr"], dtype=np.float64)
        if inv_corr.shape != (mean.shape[0], mean.shape[0]):
            msg = "semantic model: the stored inverse correlation does not match the stored mean"
            raise XadtError(msg)
        n_exc = m["n_excursions"]
        return cls(
            dims=np.asarray(t["dims"], dtype=np.int64),
            mean=mean,
            std=np.asarray(t["std"], dtype=np.float64),
            sample_std=np.asarray(t["sample_std"], dtype=np.float64),
            inv_corr=inv_corr,
            intercept=float(m["intercept"]),
            slope=float(m["slope"]),
            shrinkage=float(m["shrinkage"]),
            shrinkage_rule=m["shrinkage_rule"],
            n_scans=int(m["n_scans"]),
            n_excursions=None if n_exc is None else int(n_exc),
            variance_kind=m["variance"],
            covariance_kind=m["covariance"],
        )
