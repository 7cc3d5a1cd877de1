"""Streaming, mergeable first and second moments (optionally fourth-order cross moments).

Rows are accumulated about a fixed shift (the first row seen) so that the sums stay small and the
covariance ``(S2 - S1 S1ᵀ / n) / (n - ddof)`` loses little to cancellation; memory is O(D²)
whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np

from xadt.errors import XadtError

__all__ = ["Moments"]


class Moments:
    """Count, sum and sum of outer products of D-dimensional rows, in float64, batch by batch.

    Sums are taken about ``shift`` (the first row ever seen): ``S1 = Σ (x - shift)`` and
    ``S2 = Σ (x - shift)(x - shift)ᵀ``. A constant column therefore has exactly zero variance.
    Two accumulators over disjoint rows :meth:`merge` into the accumulator of their union, so a fit
    can be split across workers; the result equals one pass up to float rounding.

    With ``fourth=True`` it also keeps ``Σ y_i² y_j²`` and ``Σ y_i² y_j`` (y = x - shift), the
    extra moments the Ledoit–Wolf shrinkage intensity needs (:meth:`ledoit_wolf_shrinkage`).

    Parameters
    ----------
    dim : int
        Number of columns D, >= 1.
    fourth : bool
        Also accumulate the fourth-order cross moments (two more D×D float64 arrays).
    """

    def __init__(self, dim: int, *, fourth: bool = False) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
            msg = f"Moments: dim must be an integer >= 1. Got {dim!r} instead."
            raise ValueError(msg)
        d = int(dim)
        self._count = 0
        self._shift = np.zeros(d)
        self._sum = np.zeros(d)
        self._outer = np.zeros((d, d))
        self._sq_sq: np.ndarray | None = np.zeros((d, d)) if fourth else None
        self._sq_lin: np.ndarray | None = np.zeros((d, d)) if fourth else None

    # -- accumulation ----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of columns D."""
        return self._shift.shape[0]

    @property
    def count(self) -> int:
        """Number of rows accumulated."""
        return self._count

    @property
    def fourth(self) -> bool:
        """Whether fourth-order cross moments are kept."""
        return self._sq_sq is not None

    def update(self, batch: np.ndarray) -> Self:
        """Add the rows of ``batch`` (shape (n, D), any real dtype; n may be 0); return self.

        Raises ``ValueError`` for a wrong shape and ``XadtError`` for non-finite values.
        """
        x = np.asarray(batch)
        if x.ndim != 2 or x.shape[1] != self.dim:
            msg = f"Moments.update: expected an (n, {self.dim}) array, got shape {x.shape}"
            raise ValueError(msg)
        if x.shape[0] == 0:
            return self
        x = x.astype(np.float64, copy=False)
        if not np.isfinite(x).all():
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            msg = f"Moments.update: row {row} of the batch has a non-finite value"
            raise XadtError(msg)
        if self._count == 0:
            self._shift = x[0].copy()
        y = x - self._shift
        self._count += x.shape[0]
        self._sum += y.sum(axis=0)
        self._outer += y.T @ y
        if self._sq_sq is not None and self._sq_lin is not None:
            y2 = y * y
            self._sq_sq += y2.T @ y2
            self._sq_lin += y2.T @ y
        return self

    def merge(self, other: Moments) -> Self:
        """Add the rows accumulated in ``other`` (same D and ``fourth``) to self; return self."""
        if other is self:
            other = Moments.from_arrays(self.to_arrays())
        if other.dim != self.dim or other.fourth != self.fourth:
            msg = (
                f"Moments.merge: cannot merge D={other.dim} (fourth={other.fourth}) into "
                f"D={self.dim} (fourth={self.fourth})"
            )
            raise ValueError(msg)
        if other._count == 0:
            return self
        if self._count == 0:
            self._shift = other._shift.copy()
        # Re-express other's sums about self's shift: y_self = y_other + delta.
        n, s1, s2 = other._count, other._sum, other._outer
        delta = other._shift - self._shift
        lin = s1 + n * delta
        self._outer += s2 + np.outer(s1, delta) + np.outer(delta, s1) + n * np.outer(delta, delta)
        if self._sq_sq is not None and self._sq_lin is not None:
            q, b, sq = other._sq_sq, other._sq_lin, np.diag(s2)
            assert q is not None
            assert b is not None
            # Σ (y_i + δ_i)² (y_j + δ_j) and Σ (y_i + δ_i)² (y_j + δ_j)², expanded.
            self._sq_lin += (
                b
                + sq[:, None] * delta[None, :]
                + 2 * delta[:, None] * s2
                + 2 * np.outer(delta, delta) * s1[:, None]
                + (delta * delta)[:, None] * s1[None, :]
                + n * np.outer(delta * delta, delta)
            )
            self._sq_sq += (
                q
                + 2 * b * delta[None, :]
                + 2 * b.T * delta[:, None]
                + sq[:, None] * (delta * delta)[None, :]
                + (delta * delta)[:, None] * sq[None, :]
                + 4 * np.outer(delta, delta) * s2
                + 2 * np.outer(delta, delta * delta) * s1[:, None]
                + 2 * np.outer(delta * delta, delta) * s1[None, :]
                + n * np.outer(delta * delta, delta * delta)
            )
        self._sum += lin
        self._count += n
        return self

    # -- statistics ------------------------------------------------------------------------------

    def _require(self, rows: int, what: str) -> None:
        if self._count < rows:
            msg = f"Moments: {what} needs at least {rows} rows; {self._count} were accumulated"
            raise XadtError(msg)

    @property
    def mean(self) -> np.ndarray:
        """Sample mean, shape (D,), in the units of the rows."""
        self._require(1, "the mean")
        return self._shift + self._sum / self._count

    def _centred_outer(self) -> np.ndarray:
        """Σ (x - mean)(x - mean)ᵀ, symmetric, with a non-negative diagonal."""
        m = self._sum / self._count
        c = self._outer - self._count * np.outer(m, m)
        c = 0.5 * (c + c.T)
        diag = np.einsum("ii->i", c)
        diag[diag < 0] = 0.0  # rounding in a (near) constant column
        return c

    def covariance(self, ddof: int = 1) -> np.ndarray:
        """Sample covariance, shape (D, D), in units²; ``ddof`` = 1 divides by n - 1 (np.cov)."""
        self._require(ddof + 1, f"a covariance with ddof={ddof}")
        return self._centred_outer() / (self._count - ddof)

    def variance(self, ddof: int = 1) -> np.ndarray:
        """Per-column sample variance, shape (D,), in units²."""
        return np.diag(self.covariance(ddof)).copy()

    def correlation(self) -> np.ndarray:
        """Pearson correlation, shape (D, D), entries in [-1, 1] and a unit diagonal.

        A column with zero sample variance gets a unit row/column (uncorrelated with the others),
        methods.md §1.4 step 4. For binary rows this is the phi coefficient.
        """
        self._require(2, "a correlation")
        c = self._centred_outer()
        sd = np.sqrt(np.diag(c))
        live = sd > 0
        inv = np.zeros_like(sd)
        inv[live] = 1.0 / sd[live]
        r = c * inv[:, None] * inv[None, :]
        np.clip(r, -1.0, 1.0, out=r)
        np.fill_diagonal(r, 1.0)
        return r

    def ledoit_wolf_shrinkage(self) -> float:
        """Ledoit–Wolf shrinkage intensity λ ∈ [0, 1] for the correlation matrix.

        Our implementation of the formula of ``sklearn.covariance.ledoit_wolf_shrinkage`` applied
        to the *standardised* rows ``z = (x - mean) / sd`` (sd with ddof = 0), whose empirical
        covariance is the correlation R; the shrunk estimate is ``(1 - λ) R + λ I``. Columns with
        zero variance are left out of λ (their R row is already the identity's). Needs
        ``fourth=True``.
        """
        if self._sq_sq is None or self._sq_lin is None:
            msg = "Moments.ledoit_wolf_shrinkage: accumulate with Moments(dim, fourth=True)"
            raise ValueError(msg)
        self._require(2, "Ledoit–Wolf shrinkage")
        n = self._count
        s1, s2, b, q = self._sum, self._outer, self._sq_lin, self._sq_sq
        d = s1 / n  # mean of y = x - shift
        sq = np.diag(s2)
        # Q_ij = Σ (y_i - d_i)² (y_j - d_j)², expanded in the raw moments about the shift.
        quad = (
            q
            - 2 * b * d[None, :]
            - 2 * b.T * d[:, None]
            + sq[:, None] * (d * d)[None, :]
            + (d * d)[:, None] * sq[None, :]
            + 4 * np.outer(d, d) * s2
            - 2 * np.outer(d, d * d) * s1[:, None]
            - 2 * np.outer(d * d, d) * s1[None, :]
            + n * np.outer(d * d, d * d)
        )
        var0 = np.diag(self._centred_outer()) / n
        live = var0 > 0
        p = int(live.sum())
        if p == 0:
            return 0.0
        r = self.correlation()[np.ix_(live, live)]
        inv_var = 1.0 / var0[live]
        beta_sum = float((quad[np.ix_(live, live)] * inv_var[:, None] * inv_var[None, :]).sum())
        delta_sum = float((r * r).sum())  # Σ_ij R_ij² = ‖ZᵀZ‖² / n²
        beta = (beta_sum / n - delta_sum) / (p * n)
        delta = (delta_sum - p) / p  # ‖R - I‖²_F / p, as mu = 1 for standardised data
        beta = min(beta, delta)
        if beta <= 0 or delta <= 0:
            return 0.0
        return float(beta / delta)

    # -- model files -----------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The accumulator as plain numpy arrays (``count`` is a (1,) int64 array)."""
        out = {
            "count": np.array([self._count], dtype=np.int64),
            "shift": self._shift.copy(),
            "sum": self._sum.copy(),
            "outer": self._outer.copy(),
        }
        if self._sq_sq is not None and self._sq_lin is not None:
            out["sq_sq"] = self._sq_sq.copy()
            out["sq_lin"] = self._sq_lin.copy()
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Moments:
        """Rebuild an accumulator from :meth:`to_arrays` output."""
        try:
            shift = np.asarray(arrays["shift"], dtype=np.float64)
            count = int(np.asarray(arrays["count"]).reshape(-1)[0])
            total = np.asarray(arrays["sum"], dtype=np.float64)
            outer = np.asarray(arrays["outer"], dtype=np.float64)
        except KeyError as exc:
            msg = f"Moments.from_arrays: missing array {exc.args[0]!r}"
            raise XadtError(msg) from None
        fourth = "sq_sq" in arrays
        out = cls(shift.shape[0], fourth=fourth)
        d = out.dim
        if total.shape != (d,) or outer.shape != (d, d) or count < 0:
            msg = f"Moments.from_arrays: inconsistent shapes for D={d} or a negative count"
            raise XadtError(msg)
        out._count, out._shift, out._sum, out._outer = (
            count,
            shift.copy(),
            total.copy(),
            outer.copy(),
        )
        if fourth:
            out._sq_sq = np.array(arrays["sq_sq"], dtype=np.float64)
            out._sq_lin = np.array(arrays["sq_lin"], dtype=np.float64)
        return out
