"""The maths of the gaussian detector (methods.md §1.4–1.6, §6.4) against independent references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import multivariate_normal, norm
from sklearn.covariance import ledoit_wolf

from xadt.detector import DetectorState
from xadt.errors import XadtError
from xadt.moments import Moments
from xadt.plugins.gaussian.appearance import (
    AppearanceModel,
    adjusted_variance,
    clip_probability,
    naive_variance,
    select_ridge,
)
from xadt.plugins.gaussian.binarize import DEFAULT_GRID, ThresholdChooser, binarize
from xadt.plugins.gaussian.combine import Combination
from xadt.plugins.gaussian.semantic import SemanticModel, fit_log_sd, image_vectors
from xadt.plugins.gaussian.state import nest_states, sub_state

# -- references (plain numpy, written from methods.md, not from the code under test) -------------


def mahalanobis_ref(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row through a dense solve with the covariance."""
    y = x - mean
    return np.einsum("ij,ij->i", y, np.linalg.solve(cov, y.T).T)


def topn_ref(r: np.ndarray, mean: np.ndarray, sigma: np.ndarray, corr: np.ndarray, n: int):
    """methods.md §1.5 step 3: (r̃ - μ)ᵀ Σ⁻¹ (r̃ - μ), r̃ = r on the top-n z, μ elsewhere."""
    cov = sigma[:, None] * corr * sigma[None, :]
    out = []
    for row in r:
        z = (row - mean) / sigma
        keep = np.argsort(-z, kind="stable")[:n]
        r_tilde = mean.copy()
        r_tilde[keep] = row[keep]
        out.append(mahalanobis_ref(r_tilde[None, :], mean, cov)[0])
    return np.array(out)


def gaussian_ratio_0_to_1(p: float, v: float) -> float:
    """Density ratio P(0)/P(1) of a Gaussian with mean p and variance v."""
    sd = np.sqrt(v)
    return float(norm.pdf(0.0, p, sd) / norm.pdf(1.0, p, sd))


def standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def split_rows(x: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    return np.split(x, sorted(c % (x.shape[0] + 1) for c in cuts))


# -- §6.4: binary dimensions under naive and adjusted Gaussians -----------------------------------


@pytest.mark.parametrize(("p", "printed", "unit"), [(0.2, 6.52, 0.01), (0.1, 85.1, 0.1)])
def test_naive_gaussian_misstates_the_bernoulli_ratio(
    p: float, printed: float, unit: float
) -> None:
    got = gaussian_ratio_0_to_1(p, float(naive_variance(p)))
    assert printed <= got < printed + unit  # the paper truncates: exp(1.875), exp(40/9)
    assert got > (1 - p) / p  # the paper's point: far more extreme than 4.0 or 9.0


@given(st.floats(0.001, 0.999))
def test_adjusted_variance_gives_the_empirical_ratio(p: float) -> None:
    got = gaussian_ratio_0_to_1(p, float(adjusted_variance(p)))
    assert got == pytest.approx((1 - p) / p, rel=1e-9)


def test_adjusted_variance_paper_value_and_limit() -> None:
    assert float(adjusted_variance(0.75)) == pytest.approx(0.2276, abs=5e-5)
    assert float(naive_variance(0.75)) == pytest.approx(0.1875)
    assert float(adjusted_variance(0.5)) == 0.25
    # Continuous across the Taylor branch (|p - ½| < 1e-6) and tending to ¼.
    d = np.array([1e-4, 2e-6, 1.0001e-6, 0.9999e-6, 5e-7, 1e-9])  # the series' error is O(d⁴)
    for sign in (1.0, -1.0):
        v = adjusted_variance(0.5 + sign * d)
        np.testing.assert_allclose(v, 0.25 - d**2 / 3, rtol=1e-9)
        assert np.all(np.diff(v) > 0)  # increasing towards p = ½ from either side
    # Larger than the naive variance away from ½ (methods.md §1.4 step 3).
    p = np.array([0.01, 0.1, 0.3, 0.7, 0.9, 0.99])
    assert np.all(adjusted_variance(p) > naive_variance(p))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        adjusted_variance(np.array([0.0, 0.5]))


def test_adjusted_diagonal_gaussian_is_bernoulli_naive_bayes() -> None:
    rng = np.random.default_rng(0)
    d = 24
    rates = rng.uniform(0.03, 0.97, d)
    rates[:2] = [0.0, 1.0]  # clipped to 1/(2N) and 1 - 1/(2N)
    train = (rng.random((400, d)) < rates).astype(float)
    test = (rng.random((300, d)) < rng.uniform(0, 1, d)).astype(float)
    m = Moments(d).update(train)
    p = clip_probability(train.mean(0), len(train))
    nb = -(test * np.log(p) + (1 - test) * np.log(1 - p)).sum(axis=1)

    adjusted = AppearanceModel.fit(m, 0.5, covariance="diagonal").patch_scores(test)
    # Exactly 2 × the Bernoulli negative log-likelihood plus a constant, hence the same ranking.
    offset = adjusted - 2 * nb
    np.testing.assert_allclose(offset, offset[0], atol=1e-9)
    ranked = adjusted[np.argsort(nb, kind="stable")]
    assert np.all(np.diff(ranked) > -1e-9)

    naive = AppearanceModel.fit(m, 0.5, variance="naive", covariance="diagonal")
    assert np.ptp(naive.patch_scores(test) - 2 * nb) > 1.0  # the naive variance is not NB


# -- Moments: mergeable, equal to one pass and to numpy ------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 40),
    d=st.integers(1, 6),
    offset=st.sampled_from([0.0, 1e3, -1e5]),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    constant=st.booleans(),
)
def test_moments_merged_from_splits_equal_one_pass(
    seed: int, n: int, d: int, offset: float, cuts: list[int], constant: bool
) -> None:
    rng = np.random.default_rng(seed)
    x = offset + rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d)
    if constant:
        x[:, 0] = offset + 0.1  # exactly zero variance
    whole = Moments(d, fourth=True).update(x)
    parts = [Moments(d, fourth=True).update(chunk) for chunk in split_rows(x, cuts)]
    merged = Moments(d, fourth=True)
    for part in reversed(parts):  # order must not matter
        merged.merge(part)
    scale = max(1.0, abs(offset))
    for m in (whole, merged):
        assert m.count == n
        np.testing.assert_allclose(m.mean, x.mean(0), rtol=1e-12, atol=1e-12 * scale)
        np.testing.assert_allclose(
            m.covariance(), np.cov(x, rowvar=False).reshape(d, d), rtol=1e-8, atol=1e-10
        )
        np.testing.assert_allclose(
            m.covariance(ddof=0), np.cov(x, rowvar=False, ddof=0).reshape(d, d), atol=1e-8 * 100
        )
    live = np.flatnonzero(np.ptp(x, axis=0) > 0)
    corr = merged.correlation()
    np.testing.assert_allclose(
        corr[np.ix_(live, live)],
        np.corrcoef(x[:, live], rowvar=False).reshape(live.size, live.size),
        atol=1e-9,
    )
    assert np.all(np.diag(corr) == 1.0)
    if constant:
        assert merged.variance()[0] == 0.0
        np.testing.assert_array_equal(corr[0, 1:], 0.0)
    np.testing.assert_allclose(
        merged.ledoit_wolf_shrinkage(), whole.ledoit_wolf_shrinkage(), rtol=1e-6, atol=1e-9
    )


def test_moments_round_trip_and_keep_streaming() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 5)) + 7
    m = Moments(5, fourth=True).update(x[:30])
    again = Moments.from_arrays(m.to_arrays()).update(x[30:])
    np.testing.assert_allclose(again.covariance(), np.cov(x, rowvar=False), rtol=1e-12)
    assert again.fourth
    assert all(isinstance(v, np.ndarray) for v in m.to_arrays().values())
    m.update(x[30:])
    np.testing.assert_array_equal(again.to_arrays()["outer"], m.to_arrays()["outer"])


def test_moments_reject_bad_input() -> None:
    m = Moments(3)
    with pytest.raises(ValueError, match=r"expected an \(n, 3\) array"):
        m.update(np.zeros((4, 2)))
    with pytest.raises(XadtError, match="row 1 of the batch has a non-finite value"):
        m.update(np.array([[0.0, 0, 0], [np.nan, 0, 0]]))
    with pytest.raises(XadtError, match="needs at least 2 rows; 1 were accumulated"):
        m.update(np.ones((1, 3))).covariance()
    with pytest.raises(ValueError, match="fourth=True"):
        m.ledoit_wolf_shrinkage()


# -- Ledoit–Wolf shrinkage of the semantic correlation -------------------------------------------


def test_ledoit_wolf_matches_sklearn_and_is_positive_definite_with_few_scans() -> None:
    rng = np.random.default_rng(2)
    n, d = 12, 40  # fewer scans than dimensions: the sample correlation is singular
    latent = rng.normal(size=(n, 3))
    x = 5 + latent @ rng.normal(size=(3, d)) + 0.5 * rng.normal(size=(n, d))
    m = Moments(d, fourth=True)
    for chunk in np.array_split(x, 4):
        m.update(chunk)
    sk_cov, sk_lambda = ledoit_wolf(standardised(x))
    lam = m.ledoit_wolf_shrinkage()
    assert 0 < lam < 1
    assert lam == pytest.approx(sk_lambda, rel=1e-9)
    r = m.correlation()
    assert np.linalg.eigvalsh(r).min() < 1e-8  # singular before shrinkage
    shrunk = (1 - lam) * r + lam * np.eye(d)
    np.testing.assert_allclose(shrunk, sk_cov, atol=1e-10)
    assert np.linalg.eigvalsh(shrunk).min() >= lam - 1e-9

    model = SemanticModel.fit(m)
    assert model.shrinkage == pytest.approx(sk_lambda, rel=1e-9)
    np.testing.assert_allclose(model.inv_corr @ shrunk, np.eye(d), atol=1e-8)
    np.testing.assert_array_equal(model.inv_corr, model.inv_corr.T)


def test_unshrunk_singular_correlation_is_a_clear_error() -> None:
    x = np.random.default_rng(3).normal(size=(5, 10))
    m = Moments(10).update(x)
    with pytest.raises(XadtError, match="semantic correlation is not positive definite"):
        SemanticModel.fit(m, shrinkage=0.0)
    with pytest.raises(ValueError, match="Ledoit–Wolf needs Moments"):
        SemanticModel.fit(m)
    fixed = SemanticModel.fit(m, shrinkage=0.3)
    assert fixed.shrinkage == 0.3
    assert fixed.shrinkage_rule == "fixed"
    assert np.linalg.eigvalsh(fixed.inv_corr).min() > 0


# -- streaming binarisation threshold (G-5) ------------------------------------------------------


def activations(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Pool-like activations: exact zeros plus an exponential tail, rates varying by dimension."""
    zero = rng.random((n, d)) < rng.uniform(0.2, 0.8, d)
    tail = rng.exponential(rng.uniform(0.05, 2.0, d), size=(n, d))
    return np.where(zero, 0.0, tail).astype(np.float32)


def choose_threshold_ref(a: np.ndarray, grid: np.ndarray, n_cand: int = 50) -> tuple[float, int]:
    """The G-5 rule in one batch: direct comparisons, no histograms."""
    a = a.astype(np.float64)
    positive = a[a > 0]
    cdf = np.array([np.mean(positive <= t) for t in grid])
    inside = np.flatnonzero((cdf >= 0.05) & (cdf <= 0.95))
    if inside.size > n_cand:
        inside = np.unique(np.round(np.linspace(inside[0], inside[-1], n_cand)).astype(int))
    n = a.shape[0]
    best, best_value = -1, np.inf
    for j in inside:
        p = np.clip((a > grid[j]).mean(axis=0), 1 / n, 1 - 1 / n)
        value = np.mean(np.abs(np.log(p / (1 - p))))
        if value < best_value:
            best, best_value = j, value
    return float(grid[best]), inside.size


def test_streaming_threshold_equals_batch_rule() -> None:
    rng = np.random.default_rng(4)
    a = activations(rng, 3000, 16)
    ref, n_candidates = choose_threshold_ref(a, DEFAULT_GRID)
    assert n_candidates == 50

    left, right = ThresholdChooser(16), ThresholdChooser(16)
    for chunk in np.array_split(a[:1700], 7):
        left.update(chunk)
    for chunk in np.array_split(a[1700:], 3):
        right.update(chunk)
    chooser = ThresholdChooser.from_arrays(left.to_arrays()).merge(right)
    assert chooser.count == 3000
    assert chooser.choose() == ref
    np.testing.assert_array_equal(
        chooser.fraction_above()[np.searchsorted(DEFAULT_GRID, ref)],
        (a.astype(np.float64) > ref).mean(axis=0),
    )
    b = binarize(a, ref)
    assert set(np.unique(b)) <= {0.0, 1.0}
    np.testing.assert_array_equal(b, (a.astype(np.float64) > ref).astype(float))


def test_threshold_gives_balanced_splits() -> None:
    # Every dimension: 30% zeros, else Exp(scale 0.2); p(t) = 0.7·exp(-t/0.2) = ½ at t = 0.2 ln 1.4.
    rng = np.random.default_rng(5)
    n, d = 40000, 6
    a = np.where(rng.random((n, d)) < 0.3, 0.0, rng.exponential(0.2, (n, d)))
    chooser = ThresholdChooser(d).update(a)
    t = chooser.choose()
    assert t == pytest.approx(0.2 * np.log(1.4), rel=0.08)
    thresholds, values = chooser.objective()
    assert values.min() == values[thresholds == t][0]
    assert values.min() < 0.05  # near-even splits reached


def test_threshold_chooser_errors() -> None:
    with pytest.raises(XadtError, match="no positive activations"):
        ThresholdChooser(3).update(np.zeros((10, 3))).choose()
    with pytest.raises(ValueError, match="expected 3 columns, got 2"):
        ThresholdChooser(3).update(np.ones((4, 2)))


# -- appearance model -----------------------------------------------------------------------------


def binary_patches(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Correlated binary vectors: thresholded correlated Gaussians."""
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    g = rng.normal(size=(n, d)) @ (np.eye(d) + mix)
    return (g > rng.normal(0.3, 0.6, d)).astype(float)


def test_appearance_full_model_equals_dense_reference() -> None:
    rng = np.random.default_rng(6)
    d = 20
    train = binary_patches(rng, 500, d)
    train[:, 3] = 0.0  # never on: clipped p, unit correlation row
    m = Moments(d)
    for chunk in np.array_split(train, 5):
        m.update(chunk)
    model = AppearanceModel.fit(m, 0.5)

    n = len(train)
    p = np.clip(train.mean(0), 1 / (2 * n), 1 - 1 / (2 * n))
    v = (p - 0.5) / np.log(p / (1 - p))
    c = np.eye(d)
    live = np.flatnonzero(train.std(0) > 0)
    c[np.ix_(live, live)] = np.corrcoef(train[:, live], rowvar=False)
    cov = np.sqrt(v)[:, None] * c * np.sqrt(v)[None, :] + 1e-3 * v.mean() * np.eye(d)

    test = binary_patches(rng, 60, d)
    np.testing.assert_allclose(model.mean, p)
    np.testing.assert_allclose(model.ridge_added, 1e-3 * v.mean())
    np.testing.assert_allclose(model.patch_scores(test), mahalanobis_ref(test, p, cov), rtol=1e-8)

    counts = [7, 1, 30, 22]
    expected = [s.max() for s in np.split(mahalanobis_ref(test, p, cov), np.cumsum(counts)[:-1])]
    np.testing.assert_allclose(model.scan_scores(test, counts), expected, rtol=1e-8)
    assert model.patch_scores(train).mean() < model.patch_scores(1 - train).mean()


def test_appearance_ridge_zero_on_singular_covariance_is_a_clear_error() -> None:
    x = np.tile([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], (10, 1))  # columns 0 and 1 identical
    with pytest.raises(XadtError, match="appearance covariance is not positive definite"):
        AppearanceModel.fit(Moments(3).update(x), 0.5, ridge=0.0)
    model = AppearanceModel.fit(Moments(3).update(x), 0.5)
    assert np.isfinite(model.patch_scores(x)).all()
    with pytest.raises(XadtError, match="must be binary"):
        AppearanceModel.fit(Moments(3).update(x * 3), 0.5)


def test_held_out_likelihood_and_ridge_selection() -> None:
    rng = np.random.default_rng(12)
    d = 15
    train, held = binary_patches(rng, 300, d), binary_patches(rng, 80, d)
    m_train, m_held = Moments(d).update(train), Moments(d)
    for chunk in np.array_split(held, 3):
        m_held.update(chunk)
    best, table = select_ridge(m_train, m_held, 0.5)
    assert sorted(table) == [1e-4, 1e-3, 1e-2, 1e-1]
    for ridge, value in table.items():
        model = AppearanceModel.fit(m_train, 0.5, ridge=ridge)
        cov = np.linalg.inv(model.precision)
        direct = multivariate_normal(model.mean, cov).logpdf(held).mean()
        assert value == pytest.approx(direct, rel=1e-9)
    assert table[best] == max(table.values())


# -- semantic model -------------------------------------------------------------------------------


def image_rows(rng: np.random.Generator, n: int, a: float, b: float, d: int) -> np.ndarray:
    """Correlated image vectors whose SD follows log s = a + b·μ exactly in distribution."""
    mu = rng.uniform(-2, 6, d)
    sd = np.exp(a + b * mu)
    latent = rng.normal(size=(n, 4)) @ rng.normal(size=(4, d)) * 0.5
    noise = (latent + rng.normal(size=(n, d))) / np.sqrt(1 + (0.5**2) * 4)
    return mu + sd * standardised(noise)


def test_log_sd_fit_recovers_the_line() -> None:
    rng = np.random.default_rng(7)
    mu = rng.uniform(-3, 8, 200)
    a, b = fit_log_sd(mu, np.exp(-0.7 + 0.12 * mu))
    assert (a, b) == (pytest.approx(-0.7), pytest.approx(0.12))
    x = image_rows(rng, 3000, -0.7, 0.12, 200)
    m = Moments(200, fourth=True)
    for chunk in np.array_split(x, 6):
        m.update(chunk)
    model = SemanticModel.fit(m)
    assert model.intercept == pytest.approx(-0.7, abs=1e-3)
    assert model.slope == pytest.approx(0.12, abs=1e-3)
    a0, b0 = np.polyfit(x.mean(0), np.log(x.std(0, ddof=1)), 1)[::-1]
    assert (model.intercept, model.slope) == (pytest.approx(a0), pytest.approx(b0))
    np.testing.assert_allclose(model.std, np.exp(a0 + b0 * x.mean(0)), rtol=1e-10)
    # Constant dimensions are left out of the line; the sample-SD ablation falls back to it.
    s = np.array([0.0, 1.0, np.e])
    assert fit_log_sd(np.array([5.0, 0.0, 1.0]), s) == (pytest.approx(0.0), pytest.approx(1.0))


@pytest.mark.parametrize(
    ("n_excursions", "covariance", "variance"),
    [
        (12, "full", "fitted"),
        (None, "full", "fitted"),
        (12, "diagonal", "fitted"),
        (3, "full", "sample"),
    ],
)
def test_semantic_score_equals_dense_reference(
    n_excursions: int | None, covariance: str, variance: str
) -> None:
    rng = np.random.default_rng(8)
    d, k = 30, 45
    dims = np.sort(rng.choice(k, d, replace=False))
    logits = rng.normal(size=(400, k)) * rng.uniform(0.5, 2, k) + rng.uniform(-1, 4, k)
    counts = rng.integers(1, 9, 60)
    counts[-1] += 400 - counts.sum()
    assert counts.min() >= 1
    x = image_vectors(logits, counts, dims)
    loop = np.array([s.max(axis=0) for s in np.split(logits, np.cumsum(counts)[:-1])])
    np.testing.assert_array_equal(x, loop[:, dims])

    m = Moments(d, fourth=True).update(x)
    model = SemanticModel.fit(
        m, dims, n_excursions=n_excursions, covariance=covariance, variance=variance
    )
    mu, s = x.mean(0), x.std(0, ddof=1)
    b, a = np.polyfit(mu, np.log(s), 1)
    sigma = np.exp(a + b * mu) if variance == "fitted" else s
    corr, lam = ledoit_wolf(standardised(x))
    if covariance == "diagonal":
        corr = np.eye(d)
    test_logits = rng.normal(size=(40, k)) * 2 + 2
    test_counts = [10, 10, 20]
    test = image_vectors(test_logits, test_counts, dims)
    ref = topn_ref(test, mu, sigma, corr, d if n_excursions is None else n_excursions)
    np.testing.assert_allclose(model.vector_scores(test), ref, rtol=1e-8)
    np.testing.assert_allclose(model.scan_scores(test_logits, test_counts), ref, rtol=1e-8)
    if covariance == "full":
        assert model.shrinkage == pytest.approx(lam, rel=1e-9)


def test_topn_keeps_only_positive_rises() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 20))
    model = SemanticModel.fit(Moments(20, fourth=True).update(x), n_excursions=2)
    base = model.mean.copy()
    drop = base.copy()
    drop[5] -= 10 * model.std[5]  # a fall in one category is not among the top-2 rises
    rise = base.copy()
    rise[5] += 10 * model.std[5]
    scores = model.vector_scores(np.stack([base, drop, rise]))
    assert scores[0] == pytest.approx(0.0, abs=1e-20)
    assert scores[1] == pytest.approx(0.0, abs=1e-20)
    assert scores[2] == pytest.approx(100 * model.inv_corr[5, 5])


# -- combination ----------------------------------------------------------------------------------


def test_combination_weights_are_inverse_variances() -> None:
    rng = np.random.default_rng(10)
    s_app, s_sem = rng.gamma(5, 20, 300), rng.gamma(3, 2, 300)
    comb = Combination.fit(s_app, s_sem)
    assert comb.weight_appearance == pytest.approx(1 / np.var(s_app, ddof=1))
    assert comb.weight_semantic == pytest.approx(1 / np.var(s_sem, ddof=1))
    assert comb.ratio == pytest.approx(np.var(s_app, ddof=1) / np.var(s_sem, ddof=1))
    combined = comb.combine(s_app, s_sem)
    np.testing.assert_allclose(combined, s_app / s_app.var(ddof=1) + s_sem / s_sem.var(ddof=1))
    # Each weighted part has unit variance on the training scans.
    assert np.var(comb.weight_appearance * s_app, ddof=1) == pytest.approx(comb.weight_appearance)
    with pytest.raises(XadtError, match="zero variance"):
        Combination.fit(np.ones(5), s_sem[:5])


# -- model files ----------------------------------------------------------------------------------


def test_state_round_trip_through_files_scores_identically(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    d_app, k, n_scans = 24, 30, 40
    counts = rng.integers(2, 6, n_scans)
    act = activations(rng, int(counts.sum()), d_app)
    logits = rng.normal(size=(int(counts.sum()), k)) + rng.uniform(0, 3, k)
    dims = np.arange(0, k, 2)

    chooser = ThresholdChooser(d_app).update(act)
    t = chooser.choose()
    appearance = AppearanceModel.fit(Moments(d_app).update(binarize(act, t)), t)
    sem_moments = Moments(dims.size, fourth=True).update(image_vectors(logits, counts, dims))
    semantic = SemanticModel.fit(sem_moments, dims)
    s_app = appearance.scan_scores(act, counts)
    s_sem = semantic.scan_scores(logits, counts)
    combination = Combination.fit(s_app, s_sem)

    state = nest_states(
        {
            "appearance": appearance.to_state(),
            "semantic": semantic.to_state(),
            "combination": combination.to_state(),
        }
    )
    safetensors.numpy.save_file(state.tensors, tmp_path / "tensors.safetensors")
    (tmp_path / "meta.json").write_text(json.dumps(state.meta, allow_nan=False))
    loaded = DetectorState(
        tensors=safetensors.numpy.load_file(tmp_path / "tensors.safetensors"),
        meta=json.loads((tmp_path / "meta.json").read_text()),
    )
    app2 = AppearanceModel.from_state(sub_state(loaded, "appearance"))
    sem2 = SemanticModel.from_state(sub_state(loaded, "semantic"))
    comb2 = Combination.from_state(sub_state(loaded, "combination"))

    test_act = activations(rng, 15, d_app)
    test_logits = rng.normal(size=(15, k))
    np.testing.assert_array_equal(
        app2.scan_scores(test_act, [5, 10]), appearance.scan_scores(test_act, [5, 10])
    )
    np.testing.assert_array_equal(
        sem2.scan_scores(test_logits, [5, 10]), semantic.scan_scores(test_logits, [5, 10])
    )
    np.testing.assert_array_equal(comb2.combine(s_app, s_sem), combination.combine(s_app, s_sem))
    assert app2.threshold == t
    assert sem2.n_excursions == 12
    with pytest.raises(XadtError, match="lacks tensor 'mean', tensor 'variance'"):
        AppearanceModel.from_state(DetectorState(meta=loaded.meta["appearance"]))
