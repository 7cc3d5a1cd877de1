"""Combined score (methods.md §1.6): inverse-variance weighted sum of appearance and semantic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xadt.detector import DetectorState
from xadt.errors import XadtError
from xadt.plugins.gaussian._common import require

__all__ = ["Combination"]


def _scores(values: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size < 2 or not np.isfinite(a).all():
        msg = f"combination: need >= 2 finite {name} training scores in a 1-D array"
        raise XadtError(msg)
    return a


@dataclass(frozen=True)
class Combination:
    """Weights of S = w_A·S_A + w_S·S_S with w = 1 / Var(score over normal training scans).

    Attributes
    ----------
    weight_appearance, weight_semantic : float
        w_A and w_S, in 1/score² (inverse sample variances, ddof = 1).
    n_scans : int
        Number of training scans the variances were taken over.
    """

    weight_appearance: float
    weight_semantic: float
    n_scans: int

    @property
    def ratio(self) -> float:
        """w_S / w_A, the realised weight ratio to log (G-11: the paper reports about 11.5)."""
        return self.weight_semantic / self.weight_appearance

    @classmethod
    def fit(cls, appearance: np.ndarray, semantic: np.ndarray) -> Combination:
        """Inverse-variance weights from the scores of the same normal training scans.

        Parameters
        ----------
        appearance, semantic : array, shape (n_scans,)
            Appearance and semantic anomaly scores of the training scans, in the same order;
            in-sample (the paper's choice) or out-of-fold, as the caller computed them.

        Raises
        ------
        XadtError
            Fewer than 2 scans, mismatched lengths, non-finite scores or a zero variance.
        """
        a, s = _scores(appearance, "appearance"), _scores(semantic, "semantic")
        if a.size != s.size:
            msg = f"combination: {a.size} appearance but {s.size} semantic training scores"
            raise XadtError(msg)
        va, vs = float(a.var(ddof=1)), float(s.var(ddof=1))
        if not (va > 0 and vs > 0):
            msg = (
                f"combination: a training score has zero variance (appearance {va}, semantic {vs})"
            )
            raise XadtError(msg)
        return cls(weight_appearance=1.0 / va, weight_semantic=1.0 / vs, n_scans=int(a.size))

    def combine(self, appearance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
        """Combined anomaly score w_A·S_A + w_S·S_S per scan; higher = more anomalous."""
        a = np.asarray(appearance, dtype=np.float64)
        s = np.asarray(semantic, dtype=np.float64)
        if a.shape != s.shape:
            msg = f"Combination.combine: shapes {a.shape} and {s.shape} differ"
            raise ValueError(msg)
        return self.weight_appearance * a + self.weight_semantic * s

    def to_state(self) -> DetectorState:
        """JSON-ready meta (no arrays): the two weights, their ratio and the scan count."""
        return DetectorState(
            tensors={},
            meta={
                "weight_appearance": self.weight_appearance,
                "weight_semantic": self.weight_semantic,
                "ratio_semantic_to_appearance": self.ratio,
                "n_scans": self.n_scans,
            },
        )

    @classmethod
    def from_state(cls, state: DetectorState) -> Combination:
        """Rebuild from :meth:`to_state` output."""
        require(state, "combination", (), ("weight_appearance", "weight_semantic", "n_scans"))
        m = state.meta
        return cls(
            weight_appearance=float(m["weight_appearance"]),
            weight_semantic=float(m["weight_semantic"]),
            n_scans=int(m["n_scans"]),
        )
