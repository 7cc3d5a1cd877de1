"""Detection and localisation metrics, computed the way a screening authority would.

Label 1 is anomalous, 0 normal; every score is an anomaly score, higher = more anomalous. A
threshold ``t`` flags a score ``s`` when ``s > t``. ROC quantities come from scikit-learn; only
what no library has (operating points with stated tie rules, stratified bootstrap, AUPRO) is here.
SciPy and scikit-learn are imported inside the functions that use them: they take seconds to
import, and every command imports this module through the calibration.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "aupro",
    "auroc",
    "bootstrap_ci",
    "fpr_at_tpr",
    "pixel_auroc",
    "pointing",
    "threshold_at_fpr",
    "tpr_at_fpr",
]

Metric = Callable[[np.ndarray, np.ndarray], float]
"""A metric of (labels, scores): 0/1 int labels and float64 scores, higher = more anomalous."""

# Rates times counts are rounded this close to an integer before floor/ceil, so that
# 0.29 * 100 = 28.999999999999996 allows 29 exceedances, not 28.
_REL_TOL = 1e-9

# 8-connectivity: two anomalous pixels touching at a corner are one region, as in MVTec AD.
_REGION_STRUCTURE = np.ones((3, 3), dtype=bool)

_BOOTSTRAP_BLOCK = 1 << 20


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve: the probability that an anomaly outscores a normal.

    Ties between an anomaly and a normal count one half (the Mann–Whitney U statistic divided by
    the number of pairs), as ``sklearn.metrics.roc_auc_score`` computes it.

    Args:
        labels: 1 for anomalous, 0 for normal; both classes must occur.
        scores: anomaly scores, higher = more anomalous; finite.

    Returns:
        The AUROC in [0, 1]; 0.5 is chance.

    Raises:
        ValueError: on one class only, a length mismatch or non-finite scores.
    """
    y, s = _labels_scores(labels, scores)
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def bootstrap_ci(
    labels: ArrayLike,
    scores: ArrayLike,
    metric: Metric = auroc,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """A metric and its percentile bootstrap confidence interval, resampling scans.

    Each resample draws, with replacement, as many normals from the normals and as many anomalies
    from the anomalies as the data has (stratified by class, so every resample has both classes).
    The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the resampled
    metric (numpy's default linear interpolation).

    Args:
        labels: 1 for anomalous, 0 for normal; both classes must occur.
        scores: anomaly scores, higher = more anomalous; finite.
        metric: called as ``metric(labels, scores)`` with int 0/1 labels and float64 scores; use
            ``functools.partial`` to fix its other arguments.
        n_resamples: number of bootstrap resamples (at least 1).
        level: confidence level in (0, 1).
        seed: seed of the resampling; equal seeds give equal intervals.

    Returns:
        ``(estimate, low, high)``: the metric on the data itself and the interval bounds.

    Raises:
        ValueError: on bad labels or scores, ``n_resamples < 1`` or ``level`` outside (0, 1).
    """
    y, s = _labels_scores(labels, scores)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        msg = f"n_resamples must be an integer >= 1; got {n_resamples!r}"
        raise ValueError(msg)
    _check_open_unit("level", level)
    normals = np.flatnonzero(y == 0)
    anomalies = np.flatnonzero(y == 1)
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    # Resamples are drawn in blocks of about a million indices to bound memory on large sets.
    block = max(1, _BOOTSTRAP_BLOCK // y.size)
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        index = np.concatenate(
            [
                rng.choice(normals, (rows, normals.size)),
                rng.choice(anomalies, (rows, anomalies.size)),
            ],
            axis=1,
        )
        if metric is auroc:  # all rows at once by rank sums: roc_auc_score's numbers, 10x faster
            values[start : start + rows] = _auroc_rows(s[index], normals.size)
        else:
            for k in range(rows):
                values[start + k] = metric(y[index[k]], s[index[k]])
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(metric(y, s)), float(low), float(high)


def threshold_at_fpr(normal_scores: ArrayLike, fpr: float) -> float:
    """The lowest threshold that at most a fraction ``fpr`` of the normal scores exceed.

    With ``n`` normal scores sorted ascending, ``m = floor(fpr * n)`` of them may raise an alarm,
    and the threshold is the ``(n - m)``-th smallest: the ``(1 - fpr)`` quantile by the inverted
    empirical CDF (``numpy.quantile(..., method="inverted_cdf")``), computed with integer
    arithmetic. Scores tied with the threshold are not over it, so ties never push the false-alarm
    rate on these normals above ``fpr``; it may fall below ``fpr`` when scores tie or ``fpr * n``
    is not an integer. When ``fpr * n < 1`` the threshold is the largest normal score.

    Args:
        normal_scores: anomaly scores of normal scans only (higher = more anomalous); finite.
        fpr: the false-alarm rate allowed, in (0, 1).

    Returns:
        The threshold ``t``; a scan is flagged when its score is ``> t``.

    Raises:
        ValueError: on empty or non-finite scores, or ``fpr`` outside (0, 1).
    """
    _check_open_unit("fpr", fpr)
    s = np.sort(_scores("normal_scores", normal_scores))
    if s.size == 0:
        msg = "normal_scores is empty; a threshold needs at least one normal score"
        raise ValueError(msg)
    allowed = math.floor(fpr * s.size * (1 + _REL_TOL))
    return float(s[s.size - allowed - 1])


def tpr_at_fpr(labels: ArrayLike, scores: ArrayLike, fpr: float) -> float:
    """Detection rate (true-positive rate) at a false-alarm rate of at most ``fpr``.

    The threshold is :func:`threshold_at_fpr` of the normal scores, so it comes from the normals
    only; the result is the fraction of anomalies whose score is over it. This is the highest
    detection rate of any threshold whose false-alarm rate on these normals is ``<= fpr``.

    Args:
        labels: 1 for anomalous, 0 for normal; both classes must occur.
        scores: anomaly scores, higher = more anomalous; finite.
        fpr: the false-alarm rate allowed, in (0, 1).

    Returns:
        The fraction of anomalies detected, in [0, 1].

    Raises:
        ValueError: on bad labels or scores, or ``fpr`` outside (0, 1).
    """
    _check_open_unit("fpr", fpr)
    y, s = _labels_scores(labels, scores)
    threshold = threshold_at_fpr(s[y == 0], fpr)
    return float(np.mean(s[y == 1] > threshold))


def fpr_at_tpr(labels: ArrayLike, scores: ArrayLike, tpr: float = 0.9) -> float:
    """False-alarm rate at a detection rate of at least ``tpr`` (Griffin et al.'s operating point).

    The threshold is the score that at least a fraction ``tpr`` of the anomalies reach: with
    ``n`` anomalies, the ``ceil(tpr * n)``-th largest anomaly score. The result is the fraction
    of normals scoring at or above it, the lowest false-alarm rate of any threshold that detects
    at least ``tpr`` of the anomalies. The threshold is chosen from the anomalies, so this is a
    post-hoc figure for comparison with the paper, not an operating point one could deploy.

    Args:
        labels: 1 for anomalous, 0 for normal; both classes must occur.
        scores: anomaly scores, higher = more anomalous; finite.
        tpr: the detection rate required, in (0, 1]; 0.9 is the paper's.

    Returns:
        The fraction of normals flagged, in [0, 1].

    Raises:
        ValueError: on bad labels or scores, or ``tpr`` outside (0, 1].
    """
    if not (isinstance(tpr, numbers.Real) and 0 < tpr <= 1):
        msg = f"tpr must be in (0, 1]; got {tpr!r}"
        raise ValueError(msg)
    y, s = _labels_scores(labels, scores)
    anomalies = np.sort(s[y == 1])[::-1]
    needed = max(1, math.ceil(tpr * anomalies.size * (1 - _REL_TOL)))
    threshold = anomalies[needed - 1]
    return float(np.mean(s[y == 0] >= threshold))


def pixel_auroc(masks: Sequence[ArrayLike], maps: Sequence[ArrayLike]) -> float:
    """AUROC over every pixel of every view: anomalous pixels against normal pixels.

    Pixels where the map is NaN (nothing was scored there, e.g. air cropped away) are left out of
    both classes; all other map values must be finite.

    Args:
        masks: one (H, W) ground-truth array per view, true / non-zero where anomalous.
        maps: one (H, W) anomaly map per view, same shapes; higher = more anomalous.

    Returns:
        The pixel-level AUROC, ties counted half.

    Raises:
        ValueError: on mismatched lists or shapes, infinite map values, or when the scored pixels
            are all anomalous or all normal.
    """
    normals, anomalies = _pixel_classes(_masks_maps(masks, maps))
    # Mann–Whitney against the sorted normal pixels: memory for one copy of them, where a ROC
    # curve over all pixels needs several (gigabytes for a few hundred full-size scans).
    normals.sort()
    below = np.searchsorted(normals, anomalies, side="left")
    tied = np.searchsorted(normals, anomalies, side="right") - below
    wins = below.sum(dtype=np.float64) + 0.5 * tied.sum(dtype=np.float64)
    return float(wins / (normals.size * anomalies.size))


def pointing(masks: Sequence[ArrayLike], maps: Sequence[ArrayLike]) -> tuple[float, float, int]:
    """How often a view's most anomalous pixel lies on its anomaly (the pointing game), and how
    often a pixel drawn at random would.

    Each view whose mask has a scored anomalous pixel counts once: its hit is the share of the
    pixels where its map reaches its maximum that lie in the mask (1 or 0 for a single maximum;
    a plateau, as window-averaged maps have, counts as a random pick among its pixels). Chance is
    the mean share of the view's scored pixels that are anomalous. Unlike the pixel AUROC, this
    compares pixels only within a view, so it shows whether a detector finds the anomaly in a
    view even when its maps are not comparable from one view to the next.

    Args:
        masks: one (H, W) ground-truth array per view, true / non-zero where anomalous; views
            without an anomalous pixel (normal views) are left out.
        maps: one (H, W) anomaly map per view, same shapes; NaN where nothing was scored.

    Returns:
        ``(rate, chance, views)``: the mean hit, the mean chance, and the views counted.

    Raises:
        ValueError: on mismatched lists or shapes, infinite map values, or when no view has a
            scored anomalous pixel.
    """
    hits, shares = [], []
    for truth, values in _masks_maps(masks, maps):
        scored = ~np.isnan(values)
        if not (truth & scored).any():
            continue
        top = scored & (values == np.nanmax(values))
        hits.append(np.count_nonzero(top & truth) / np.count_nonzero(top))
        shares.append(np.count_nonzero(truth & scored) / np.count_nonzero(scored))
    if not hits:
        msg = "masks contain no scored anomalous pixel; pointing needs at least one"
        raise ValueError(msg)
    return float(np.mean(hits)), float(np.mean(shares)), len(hits)


def aupro(masks: Sequence[ArrayLike], maps: Sequence[ArrayLike], fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region-overlap (PRO) curve up to a pixel FPR of ``fpr_limit``.

    The MVTec AD definition (Bergmann et al.): the ground truth of each view is split into
    8-connected regions (``scipy.ndimage.label``). At a threshold ``t`` a pixel is detected when
    its map value is ``>= t``; PRO is the mean over all regions of all views of the fraction of
    the region's pixels detected, and FPR is the fraction of normal pixels detected. The curve
    runs through every distinct map value from (0, 0) to (1, 1); it is integrated with the
    trapezoidal rule up to ``fpr_limit``, interpolating linearly at the limit, and divided by
    ``fpr_limit``. A perfect map gives 1.0; a constant map gives the diagonal, ``fpr_limit / 2``
    (0.15 at the default limit).

    NaN pixels of a map (nothing scored there) are dropped after the regions are found: a region's
    size counts its scored pixels only, and a region with none is left out.

    Args:
        masks: one (H, W) ground-truth array per view, true / non-zero where anomalous.
        maps: one (H, W) anomaly map per view, same shapes; higher = more anomalous.
        fpr_limit: the FPR up to which the curve is integrated, in (0, 1].

    Returns:
        The normalised AUPRO in [0, 1].

    Raises:
        ValueError: on mismatched lists or shapes, infinite map values, ``fpr_limit`` outside
            (0, 1], or when there is no scored anomalous region or no scored normal pixel.
    """
    if not (isinstance(fpr_limit, numbers.Real) and 0 < fpr_limit <= 1):
        msg = f"fpr_limit must be in (0, 1]; got {fpr_limit!r}"
        raise ValueError(msg)
    normal_values = []
    region_values = []
    region_weights = []
    n_regions = 0
    from scipy import ndimage

    for truth, values in _masks_maps(masks, maps):
        labelled, _ = ndimage.label(truth, structure=_REGION_STRUCTURE)
        scored = ~np.isnan(values)
        normal_values.append(values[scored & (labelled == 0)])
        inside = scored & (labelled > 0)
        region_of = labelled[inside]
        # Renumber the regions that kept a scored pixel as 0..k-1 and weight each pixel 1/size.
        present, region_of, sizes = np.unique(region_of, return_inverse=True, return_counts=True)
        n_regions += present.size
        region_values.append(values[inside])
        region_weights.append(1.0 / sizes[region_of])
    normals = np.concatenate(normal_values)
    del normal_values
    _check_pixel_classes(n_regions, normals.size)
    normals.sort()
    # Region pixels, descending, with the PRO each adds: pro_ge[i] is the PRO of the threshold
    # values[i] once every pixel tied with it is counted.
    values = np.concatenate(region_values)
    order = np.argsort(values, kind="stable")[::-1]
    values = values[order]
    pro = np.concatenate([[0.0], np.cumsum(np.concatenate(region_weights)[order]) / n_regions])
    # The curve moves right only at normal values: between the distinct normal values u (from the
    # top) FPR steps by their count and PRO runs from P(> u) to P(>= u), so each step is one
    # trapezoid. Walk down the sorted normals a chunk at a time until FPR passes the limit.
    n = normals.size
    neg = -values  # ascending, for searchsorted
    area, fpr_prev, stop = 0.0, 0.0, n
    while stop > 0:
        chunk = normals[max(stop - _CHUNK, 0) : stop][::-1]
        u = chunk[np.append(chunk[1:] != chunk[:-1], True)]  # its distinct values, descending
        fpr = (n - np.searchsorted(normals, u, side="left")) / n
        p_gt = pro[np.searchsorted(neg, -u, side="left")]
        p_ge = pro[np.searchsorted(neg, -u, side="right")]
        x0 = np.concatenate([[fpr_prev], fpr[:-1]])
        over = np.flatnonzero(fpr > fpr_limit)
        k = int(over[0]) if over.size else fpr.size
        area += float(np.sum((fpr[:k] - x0[:k]) * (p_gt[:k] + p_ge[:k]) / 2))
        if over.size:
            t = (fpr_limit - x0[k]) / (fpr[k] - x0[k])
            y_limit = p_gt[k] + t * (p_ge[k] - p_gt[k])
            area += float((fpr_limit - x0[k]) * (p_gt[k] + y_limit) / 2)
            break
        fpr_prev = float(fpr[-1])
        # The next chunk starts below the smallest value done (its whole run is counted).
        stop = int(np.searchsorted(normals, u[-1], side="left"))
    return area / fpr_limit


_CHUNK = 1 << 20


def _pixel_classes(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The scored normal and anomalous pixel values of all views, each in one array."""
    normals = np.concatenate([a[~m & ~np.isnan(a)] for m, a in pairs])
    anomalies = np.concatenate([a[m & ~np.isnan(a)] for m, a in pairs])
    _check_pixel_classes(anomalies.size, normals.size)
    return normals, anomalies


def _auroc_rows(scores: np.ndarray, n_normal: int) -> np.ndarray:
    """AUROC of each row, normals first, by the Mann–Whitney rank sum (ties get average ranks)."""
    from scipy import stats

    n_anomalous = int(scores.shape[1]) - n_normal
    rank_sum: np.ndarray = stats.rankdata(scores, axis=1)[:, n_normal:].sum(axis=1)
    return (rank_sum - n_anomalous * (n_anomalous + 1) / 2) / (n_normal * n_anomalous)


def _labels_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = _scores("scores", scores)
    if y.ndim != 1:
        msg = f"labels must be one-dimensional; got shape {y.shape}"
        raise ValueError(msg)
    if y.shape != s.shape:
        msg = f"labels and scores differ in length: {y.size} labels, {s.size} scores"
        raise ValueError(msg)
    if y.dtype.kind not in "biuf":
        msg = f"labels must be 0 (normal) or 1 (anomalous); got dtype {y.dtype}"
        raise ValueError(msg)
    outside = ~np.isin(y, (0, 1))
    if outside.any():
        msg = f"labels must be 0 (normal) or 1 (anomalous); got values {np.unique(y[outside])[:5]}"
        raise ValueError(msg)
    y = y.astype(np.int64)
    n_anomalous = int(y.sum())
    if n_anomalous in (0, y.size):
        only = "normal (0)" if n_anomalous == 0 else "anomalous (1)"
        msg = (
            f"labels contain only one class ({y.size} {only}); "
            "the metric needs both normal (0) and anomalous (1) scans"
        )
        raise ValueError(msg)
    return y, s


def _scores(name: str, scores: ArrayLike) -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim != 1:
        msg = f"{name} must be one-dimensional; got shape {s.shape}"
        raise ValueError(msg)
    if s.dtype.kind not in "biuf":
        msg = f"{name} must be numbers; got dtype {s.dtype}"
        raise ValueError(msg)
    s = s.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        msg = (
            f"{name} contain {bad.size} non-finite value(s) (NaN or infinity), first at index "
            f"{bad[0]}; metrics need finite anomaly scores"
        )
        raise ValueError(msg)
    return s


def _masks_maps(
    masks: Sequence[ArrayLike], maps: Sequence[ArrayLike]
) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(masks) != len(maps):
        msg = f"masks and maps differ in length: {len(masks)} masks, {len(maps)} maps"
        raise ValueError(msg)
    if not masks:
        msg = "masks is empty; pixel metrics need at least one view"
        raise ValueError(msg)
    pairs = []
    for k, (mask, amap) in enumerate(zip(masks, maps, strict=True)):
        truth = np.asarray(mask).astype(bool)
        values = np.asarray(amap)
        if values.dtype.kind != "f":  # float32 maps stay float32: the order is all that counts
            values = values.astype(np.float64)
        if truth.ndim != 2 or truth.shape != values.shape:
            msg = (
                f"masks[{k}] and maps[{k}] must be 2-D arrays of one shape; "
                f"got {truth.shape} and {values.shape}"
            )
            raise ValueError(msg)
        if np.isinf(values).any():
            msg = f"maps[{k}] contains infinite values; use NaN for pixels that were not scored"
            raise ValueError(msg)
        pairs.append((truth, values))
    return pairs


def _check_pixel_classes(n_anomalous: int, n_normal: int) -> None:
    if n_anomalous == 0:
        msg = "masks contain no scored anomalous pixel; pixel metrics need at least one"
        raise ValueError(msg)
    if n_normal == 0:
        msg = "masks contain no scored normal pixel; pixel metrics need at least one"
        raise ValueError(msg)


def _check_open_unit(name: str, value: float) -> None:
    if not (isinstance(value, numbers.Real) and 0 < value < 1):
        msg = f"{name} must be in (0, 1); got {value!r}"
        raise ValueError(msg)
