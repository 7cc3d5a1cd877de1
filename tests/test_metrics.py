"""Metrics against independent brute-force computations, and their input errors."""

from __future__ import annotations

import functools
import itertools
import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xadt import metrics

# Small integer scores make ties common, which is where the rules differ.
scores_st = st.lists(st.integers(0, 6), min_size=1, max_size=25)


@st.composite
def labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    normals = draw(scores_st)
    anomalies = draw(scores_st)
    labels = np.array([0] * len(normals) + [1] * len(anomalies))
    scores = np.array(normals + anomalies, dtype=float)
    order = np.random.default_rng(len(normals)).permutation(labels.size)
    return labels[order], scores[order]


def mann_whitney_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (pos.size * neg.size)


def brute_rates(labels: np.ndarray, scores: np.ndarray) -> list[tuple[float, float]]:
    """(FPR, TPR) of every rule 'flag score >= c', c over the scores and +inf."""
    rates = []
    for c in [*np.unique(scores), np.inf]:
        flagged = scores >= c
        rates.append((flagged[labels == 0].mean(), flagged[labels == 1].mean()))
    return rates


# --- AUROC -------------------------------------------------------------------------------------


@given(labelled())
def test_auroc_equals_mann_whitney_count_with_ties_half(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, scores = data
    assert metrics.auroc(labels, scores) == pytest.approx(mann_whitney_auc(labels, scores))


def test_auroc_known_values() -> None:
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert metrics.auroc([0, 1], [5.0, 5.0]) == 0.5
    assert metrics.auroc([False, True, True], [1, 2, 1]) == 0.75


def test_auroc_accepts_bool_and_float_labels() -> None:
    assert metrics.auroc(np.array([0.0, 1.0]), [0, 1]) == metrics.auroc([False, True], [0, 1])


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0, 0, 0], [1, 2, 3], r"only one class \(3 normal \(0\)\)"),
        ([1, 1], [1, 2], r"only one class \(2 anomalous \(1\)\)"),
        ([0, 1, 1], [1, 2], "differ in length: 3 labels, 2 scores"),
        ([0, 1, 1], [1, np.nan, 2], "scores contain 1 non-finite value.*index 1"),
        ([0, 1], [1, np.inf], "scores contain 1 non-finite"),
        ([0, 2], [1, 2], r"labels must be 0 \(normal\) or 1 \(anomalous\); got values \[2\]"),
        (["a", "b"], [1, 2], "labels must be .* got dtype"),
        ([[0, 1]], [[1, 2]], "must be one-dimensional"),
    ],
)
def test_auroc_rejects_bad_input(labels: object, scores: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metrics.auroc(labels, scores)  # type: ignore[arg-type]


# --- operating points ----------------------------------------------------------------------------


@given(labelled(), st.sampled_from([0.01, 0.05, 0.1, 0.18, 0.25, 0.5, 0.9]))
def test_tpr_at_fpr_is_best_detection_within_the_false_alarm_budget(
    data: tuple[np.ndarray, np.ndarray], fpr: float
) -> None:
    labels, scores = data
    best = max(tpr for far, tpr in brute_rates(labels, scores) if far <= fpr + 1e-12)
    assert metrics.tpr_at_fpr(labels, scores, fpr) == pytest.approx(best)


@given(labelled(), st.sampled_from([0.1, 0.5, 0.75, 0.9, 1.0]))
def test_fpr_at_tpr_is_fewest_false_alarms_reaching_the_detection_rate(
    data: tuple[np.ndarray, np.ndarray], tpr: float
) -> None:
    labels, scores = data
    best = min(far for far, det in brute_rates(labels, scores) if det >= tpr - 1e-12)
    assert metrics.fpr_at_tpr(labels, scores, tpr) == pytest.approx(best)


def test_fpr_at_tpr_paper_rule_on_known_scores() -> None:
    # Ten anomalies 1..10: 90% of them reach 2, so the threshold is 2; normals at or above 2 alarm.
    labels = [1] * 10 + [0] * 5
    scores = [*range(1, 11), 0, 1, 2, 3, 0.5]
    assert metrics.fpr_at_tpr(labels, scores) == pytest.approx(2 / 5)
    assert metrics.fpr_at_tpr(labels, scores, tpr=1.0) == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    ("normals", "fpr", "expected"),
    [
        (np.arange(1.0, 11.0), 0.1, 9.0),  # one of ten may exceed: the 9th smallest
        (np.arange(1.0, 11.0), 0.05, 10.0),  # fpr * n < 1: the largest, none exceed
        (np.arange(1.0, 11.0), 0.2, 8.0),
        (np.arange(1.0, 101.0), 0.29, 71.0),  # 0.29 * 100 is 28.999...: still 29 may exceed
        (np.array([1.0, 2, 2, 2, 3]), 0.4, 2.0),  # ties at 2: only the 3 exceeds (20% <= 40%)
        (np.array([1.0, 2, 2, 2, 3]), 0.6, 2.0),  # 3 of 5 may exceed, yet 1 < t <= 2 flags 4
        (np.array([5.0]), 0.5, 5.0),
    ],
)
def test_threshold_at_fpr_known_arrays(normals: np.ndarray, fpr: float, expected: float) -> None:
    threshold = metrics.threshold_at_fpr(normals, fpr)
    assert threshold == expected
    assert np.mean(normals > threshold) <= fpr


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=40), st.floats(0.01, 0.99))
def test_threshold_at_fpr_is_lowest_threshold_within_budget(values: list[int], fpr: float) -> None:
    normals = np.array(values, dtype=float)
    threshold = metrics.threshold_at_fpr(normals, fpr)
    assert np.mean(normals > threshold) <= fpr
    lower = normals[normals < threshold]
    if lower.size:  # any lower threshold would flag too many
        assert np.mean(normals > lower.max()) > fpr
    if not math.isclose(fpr * normals.size, round(fpr * normals.size)):
        expected = np.quantile(normals, 1 - fpr, method="inverted_cdf")
        assert threshold == expected


@pytest.mark.parametrize("fpr", [0, 1, -0.1, 1.5])
def test_fpr_outside_open_unit_interval_is_rejected(fpr: float) -> None:
    with pytest.raises(ValueError, match=r"fpr must be in \(0, 1\); got"):
        metrics.threshold_at_fpr([1, 2, 3], fpr)
    with pytest.raises(ValueError, match=r"fpr must be in \(0, 1\); got"):
        metrics.tpr_at_fpr([0, 1], [1, 2], fpr)


@pytest.mark.parametrize("tpr", [0, 1.01, -1])
def test_tpr_outside_range_is_rejected(tpr: float) -> None:
    with pytest.raises(ValueError, match=r"tpr must be in \(0, 1\]; got"):
        metrics.fpr_at_tpr([0, 1], [1, 2], tpr)


def test_threshold_at_fpr_rejects_empty_and_nan() -> None:
    with pytest.raises(ValueError, match="normal_scores is empty"):
        metrics.threshold_at_fpr([], 0.1)
    with pytest.raises(ValueError, match="normal_scores contain 1 non-finite"):
        metrics.threshold_at_fpr([1.0, np.nan], 0.1)


# --- bootstrap -----------------------------------------------------------------------------------


def _separable(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n), np.ones(n)].astype(int)
    return labels, rng.normal(size=2 * n) + labels


def test_bootstrap_ci_contains_estimate_and_is_deterministic_by_seed() -> None:
    labels, scores = _separable(60)
    estimate, low, high = metrics.bootstrap_ci(labels, scores, n_resamples=300)
    assert estimate == metrics.auroc(labels, scores)
    assert low < estimate < high
    assert metrics.bootstrap_ci(labels, scores, n_resamples=300) == (estimate, low, high)
    assert metrics.bootstrap_ci(labels, scores, n_resamples=300, seed=1) != (estimate, low, high)


def test_bootstrap_ci_narrows_with_more_scans() -> None:
    widths = []
    for n in (20, 80, 320):
        _, low, high = metrics.bootstrap_ci(*_separable(n), n_resamples=300)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_ci_fast_auroc_matches_generic_path() -> None:
    labels, scores = _separable(40)
    scores = np.round(scores, 1)  # ties
    fast = metrics.bootstrap_ci(labels, scores, n_resamples=200, seed=3)
    generic = metrics.bootstrap_ci(
        labels, scores, lambda y, s: metrics.auroc(y, s), n_resamples=200, seed=3
    )
    assert fast == pytest.approx(generic)


def test_bootstrap_ci_resamples_keep_both_classes_and_class_sizes() -> None:
    labels = np.array([0] * 7 + [1] * 2)
    seen = []

    def record(y: np.ndarray, s: np.ndarray) -> float:
        seen.append((int((y == 0).sum()), int((y == 1).sum())))
        return metrics.auroc(y, s)

    metrics.bootstrap_ci(labels, np.arange(9.0), record, n_resamples=50)
    assert set(seen) == {(7, 2)}


def test_bootstrap_ci_other_metrics_and_levels() -> None:
    labels, scores = _separable(50)
    at_5 = functools.partial(metrics.tpr_at_fpr, fpr=0.05)
    value, low, high = metrics.bootstrap_ci(labels, scores, at_5, n_resamples=100)
    assert low <= value <= high
    _, low90, high90 = metrics.bootstrap_ci(labels, scores, n_resamples=300, level=0.9)
    _, low99, high99 = metrics.bootstrap_ci(labels, scores, n_resamples=300, level=0.99)
    assert low99 <= low90 < high90 <= high99


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_resamples": 0}, "n_resamples must be an integer >= 1; got 0"),
        ({"n_resamples": 2.5}, "n_resamples must be an integer"),
        ({"level": 1.0}, r"level must be in \(0, 1\); got 1.0"),
    ],
)
def test_bootstrap_ci_rejects_bad_settings(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metrics.bootstrap_ci([0, 1], [1, 2], **kwargs)  # type: ignore[arg-type]


# --- pixel metrics -------------------------------------------------------------------------------


def test_pixel_auroc_pools_all_views_and_drops_nan_pixels() -> None:
    masks = [np.array([[0, 1], [0, 0]]), np.array([[1, 0, 0]])]
    maps = [np.array([[0.1, 0.9], [0.2, np.nan]]), np.array([[0.3, 0.5, np.nan]])]
    # Scored: anomalies 0.9, 0.3; normals 0.1, 0.2, 0.5.
    expected = mann_whitney_auc(np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.3, 0.1, 0.2, 0.5]))
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("masks", "maps", "match"),
    [
        ([np.zeros((2, 2))], [np.ones((2, 2))], "no scored anomalous pixel"),
        ([np.ones((2, 2))], [np.ones((2, 2))], "no scored normal pixel"),
        ([np.eye(2)], [np.array([[np.nan, 1], [2, np.nan]])], "no scored anomalous pixel"),
        ([np.eye(2)], [np.ones((2, 3))], r"masks\[0\] and maps\[0\] must be 2-D arrays of one"),
        ([np.eye(2)], [], "masks and maps differ in length: 1 masks, 0 maps"),
        ([], [], "masks is empty"),
        ([np.eye(2)], [np.array([[np.inf, 1], [2, 3]])], r"maps\[0\] contains infinite"),
    ],
)
def test_pixel_metrics_reject_bad_input(masks: list, maps: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metrics.pixel_auroc(masks, maps)
    with pytest.raises(ValueError, match=match):
        metrics.aupro(masks, maps)


def test_pointing_scores_each_masked_view_by_where_its_maximum_lies() -> None:
    masks = [
        np.array([[0, 1], [0, 0]]),  # maximum on the anomaly: hit 1, chance 1/3 (one NaN)
        np.array([[1, 0, 0]]),  # a plateau of three, one of them on the anomaly: hit 1/3
        np.zeros((2, 2)),  # a normal view: left out
        np.array([[0, 1], [0, 0]]),  # maximum elsewhere: hit 0, chance 1/4
    ]
    maps = [
        np.array([[0.1, 0.9], [0.2, np.nan]]),
        np.array([[0.5, 0.5, 0.5]]),
        np.array([[9.0, 9.0], [9.0, 9.0]]),
        np.array([[0.1, 0.2], [0.8, 0.3]]),
    ]
    rate, chance, views = metrics.pointing(masks, maps)
    assert views == 3
    assert rate == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert chance == pytest.approx((1 / 3 + 1 / 3 + 1 / 4) / 3)


def test_pointing_needs_a_scored_anomalous_pixel() -> None:
    with pytest.raises(ValueError, match="no scored anomalous pixel; pointing needs"):
        metrics.pointing([np.eye(2)], [np.array([[np.nan, 1], [2, np.nan]])])
    with pytest.raises(ValueError, match=r"maps\[0\] contains infinite"):
        metrics.pointing([np.eye(2)], [np.array([[np.inf, 1], [2, 3]])])


def regions(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """8-connected regions by breadth-first flood fill (independent of scipy)."""
    seen = np.zeros(mask.shape, bool)
    found = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, region = deque([start]), []
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                    if inside and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        found.append(region)
    return found


def slow_aupro(masks: list[np.ndarray], maps: list[np.ndarray], limit: float) -> float:
    """PRO curve evaluated threshold by threshold, integrated segment by segment."""
    region_scores = []
    normal_scores = []
    for mask, amap in zip(masks, maps, strict=True):
        for region in regions(mask.astype(bool)):
            scored = [amap[p] for p in region if not np.isnan(amap[p])]
            if scored:
                region_scores.append(np.array(scored))
        normal_scores.extend(amap[(mask == 0) & ~np.isnan(amap)])
    normal = np.array(normal_scores)
    everything = np.concatenate([normal, *region_scores])
    points = [(0.0, 0.0)]
    for t in np.unique(everything)[::-1]:
        pro = np.mean([np.mean(r >= t) for r in region_scores])
        points.append((np.mean(normal >= t), pro))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= limit:
            break
        if x1 <= limit:
            area += 0.5 * (y0 + y1) * (x1 - x0)
        else:
            y_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += 0.5 * (y0 + y_limit) * (limit - x0)
    return area / limit


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limit", [0.05, 0.3, 1.0])
def test_aupro_matches_slow_direct_implementation(seed: int, limit: float) -> None:
    rng = np.random.default_rng(seed)
    views = int(rng.integers(1, 4))
    masks = [rng.random((9, 11)) > rng.uniform(0.6, 0.95) for _ in range(views)]
    masks[0][0, 0] = True  # at least one region
    masks[0][-1, -1] = False  # at least one normal pixel
    maps = [np.round(m * rng.uniform(0, 1) + rng.random(m.shape), 1) for m in masks]
    if seed % 3 == 0:  # some unscored pixels
        maps[0][rng.random(maps[0].shape) > 0.8] = np.nan
        maps[0][0, 0] = 1.0
        maps[0][-1, -1] = 0.0
    assert metrics.aupro(masks, maps, limit) == pytest.approx(slow_aupro(masks, maps, limit))


@pytest.mark.parametrize("seed", range(6))
def test_aupro_walks_the_normals_in_chunks_without_losing_ties(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 3 pixels: runs of tied values (maps rounded to 0.1) span chunk boundaries.
    monkeypatch.setattr(metrics, "_CHUNK", 3)
    rng = np.random.default_rng(100 + seed)
    masks = [rng.random((8, 9)) > 0.8 for _ in range(2)]
    masks[0][0, 0], masks[0][-1, -1] = True, False
    maps = [np.round(m * 0.4 + rng.random(m.shape), 1).astype(np.float32) for m in masks]
    for limit in (0.05, 0.3, 1.0):
        assert metrics.aupro(masks, maps, limit) == pytest.approx(slow_aupro(masks, maps, limit))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
    st.sampled_from([2, 10, 1000]),
    st.booleans(),
)
def test_pixel_auroc_is_roc_auc_score_over_the_scored_pixels(
    seed: int, views: int, levels: int, float32: bool
) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    masks = [rng.random((6, 7)) > 0.7 for _ in range(views)]
    masks[0][0, 0], masks[0][-1, -1] = True, False
    maps = [
        (rng.integers(0, levels, m.shape) + m * rng.integers(0, 3)).astype(float) for m in masks
    ]
    maps[0][rng.random(maps[0].shape) > 0.85] = np.nan
    maps[0][0, 0], maps[0][-1, -1] = 1.0, 0.0
    if float32:
        maps = [m.astype(np.float32) for m in maps]
    scored = [~np.isnan(m) for m in maps]
    truth = np.concatenate([t[k] for t, k in zip(masks, scored, strict=True)])
    values = np.concatenate([m[k] for m, k in zip(maps, scored, strict=True)])
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(truth, values))


def test_aupro_perfect_and_constant_maps() -> None:
    rng = np.random.default_rng(0)
    masks = [rng.random((16, 16)) > 0.85 for _ in range(3)]
    assert metrics.aupro(masks, [m.astype(float) for m in masks]) == pytest.approx(1.0)
    constant = [np.full(m.shape, 0.5) for m in masks]
    assert metrics.aupro(masks, constant) == pytest.approx(0.15)  # the diagonal: limit / 2
    assert metrics.aupro(masks, constant, fpr_limit=1.0) == pytest.approx(0.5)
    assert metrics.pixel_auroc(masks, constant) == 0.5


def test_aupro_weighs_regions_equally_not_pixels() -> None:
    # A large region found and a one-pixel region missed: PRO is 1/2, although 15/16 of the
    # anomalous pixels are found; pixel-weighted recall would hide the missed small object.
    mask = np.zeros((10, 10), bool)
    mask[:4, :4] = True
    mask[8, 8] = True
    amap = np.zeros((10, 10))
    amap[:4, :4] = 1.0
    assert metrics.aupro([mask], [amap], fpr_limit=0.5) == pytest.approx(
        slow_aupro([mask], [amap], 0.5)
    )
    # Up to FPR 0.5: PRO 1/2 from FPR 0 on, rising linearly to 1 at FPR 1, so 0.5 + 0.5 * 0.5 / 2.
    assert metrics.aupro([mask], [amap], fpr_limit=0.5) == pytest.approx((0.25 + 0.0625) / 0.5)


def test_aupro_corner_touching_pixels_are_one_region() -> None:
    # (0, 0) touches (1, 1) at a corner: one 8-connected region of three pixels (it would be two
    # 4-connected regions, giving PRO 1/2 instead of 1/3 when only (0, 0) is found).
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = mask[1, 1] = mask[1, 2] = True
    amap = np.zeros((3, 3))
    amap[0, 0] = 1.0
    assert metrics.aupro([mask], [amap], fpr_limit=0.01) == pytest.approx(1 / 3, abs=0.01)


@pytest.mark.parametrize("limit", [0, 1.5])
def test_aupro_rejects_bad_limit(limit: float) -> None:
    with pytest.raises(ValueError, match=r"fpr_limit must be in \(0, 1\]"):
        metrics.aupro([np.eye(2)], [np.eye(2)], fpr_limit=limit)


@settings(max_examples=50)
@given(st.integers(0, 2**32 - 1))
def test_aupro_in_unit_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((6, 6)) > 0.7
    mask[0, 0], mask[5, 5] = True, False
    value = metrics.aupro([mask], [rng.random((6, 6))])
    assert 0.0 <= value <= 1.0
