"""The scoring kernels against their numpy references, on every dispatch path, and their errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.scoring import mahalanobis_ref, topn_excursion_ref, zscores_ref
from xadt import _kernels
from xadt.kernels import mahalanobis, topn_excursion
from xadt.kernels import scoring as scoring_module

RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
LAYOUTS = ["C", "F", "strided", "reversed", "torch", "torch-transposed"]

# Thresholds that force each path of the wrappers on small inputs; "sym" also uses a narrow block so
# that several column blocks (and a ragged last one) occur.
PATHS = {
    "direct": {"_DIRECT_MAX_WORK": 1 << 62, "_DIRECT_MAX_DIM": 1 << 62},
    "gemm": {"_DIRECT_MAX_DIM": 0, "_SYM_MIN_ROWS": 1 << 62},
    "sym": {"_DIRECT_MAX_DIM": 0, "_SYM_MIN_ROWS": 0, "_BLOCK": 3},
}
TOPN_PATHS = {
    "gathered": {"_GATHER_NS": 0.0},
    "dense": {"_GATHER_NS": 1e30, "_SYM_MIN_ROWS": 1 << 62},
    "dense-sym": {"_GATHER_NS": 1e30, "_SYM_MIN_ROWS": 0, "_BLOCK": 3},
}


@contextmanager
def path(settings_: dict[str, Any]) -> Iterator[None]:
    with mock.patch.multiple(scoring_module, **settings_):
        yield


def well_conditioned(rng: np.random.Generator, d: int, dtype: np.dtype) -> np.ndarray:
    """A symmetric positive definite matrix with eigenvalues in [1, 1e3] (condition <= 1e3)."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eig = 10.0 ** rng.uniform(0, 3, size=d)
    return ((q * eig) @ q.T).astype(dtype)


def inv_correlation(rng: np.random.Generator, d: int, dtype: np.dtype) -> np.ndarray:
    """An inverse correlation matrix with condition number <= 1e3: unit-diagonal-scaled SPD."""
    p = well_conditioned(rng, d, np.dtype(np.float64))
    s = 1 / np.sqrt(np.diag(p))
    # D P D keeps positive definiteness; the condition number grows by at most max/min of s².
    return (p * s[:, None] * s[None, :]).astype(dtype)


def layout(a: np.ndarray, how: str) -> Any:
    """The same values as ``a`` in another memory layout or container."""
    if how == "C":
        return np.ascontiguousarray(a)
    if how == "F":
        return np.asfortranarray(a)
    if how == "strided":
        big = np.zeros((2 * a.shape[0] + 1, 3 * a.shape[1] + 2), dtype=a.dtype)
        big[1::2, 2::3] = a
        return big[1::2, 2::3]
    if how == "reversed":
        return np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    if how == "torch":
        return torch.from_numpy(np.ascontiguousarray(a))
    if how == "torch-transposed":
        return torch.from_numpy(np.ascontiguousarray(a.T)).T
    raise AssertionError(how)


def check_close(got: Any, want: np.ndarray, template: Any, dtype: np.dtype) -> None:
    """Same container and dtype as the input, and values within the dtype's tolerance."""
    if isinstance(template, torch.Tensor):
        assert isinstance(got, torch.Tensor)
        got = got.numpy()
    else:
        assert isinstance(got, np.ndarray)
    assert got.dtype == dtype
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)


dtypes = st.sampled_from([np.dtype(np.float64), np.dtype(np.float32)])
seeds = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("route", list(PATHS))
@settings(max_examples=40)
@given(
    n=st.integers(0, 12),
    d=st.integers(1, 10),
    dtype=dtypes,
    how=st.sampled_from(LAYOUTS),
    skew=st.booleans(),
    seed=seeds,
)
def test_mahalanobis_matches_reference(
    route: str, n: int, d: int, dtype: np.dtype, how: str, skew: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * 3 + 1).astype(dtype)
    mean = rng.normal(size=d).astype(dtype)
    precision = well_conditioned(rng, d, dtype)
    if skew:  # an antisymmetric part leaves the quadratic form unchanged
        k = rng.uniform(-0.5, 0.5, size=(d, d))
        precision = (precision + (k - k.T)).astype(dtype)
    xin = layout(x, how)
    with path(PATHS[route]):
        got = mahalanobis(xin, mean, precision)
    check_close(got, mahalanobis_ref(x, mean, precision), xin, dtype)


@pytest.mark.parametrize("route", list(TOPN_PATHS))
@settings(max_examples=40)
@given(
    n_rows=st.integers(0, 12),
    d=st.integers(1, 12),
    keep=st.integers(1, 15),
    dtype=dtypes,
    how=st.sampled_from(LAYOUTS),
    integral=st.booleans(),
    seed=seeds,
)
def test_topn_matches_reference(
    route: str,
    n_rows: int,
    d: int,
    keep: int,
    dtype: np.dtype,
    how: str,
    integral: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    if integral:  # small integers and power-of-two std: many exact ties in z
        x = rng.integers(-3, 4, size=(n_rows, d)).astype(dtype)
        mean = rng.integers(-1, 2, size=d).astype(dtype)
        std = (2.0 ** rng.integers(-1, 2, size=d)).astype(dtype)
    else:
        x = rng.normal(size=(n_rows, d)).astype(dtype)
        mean = rng.normal(size=d).astype(dtype)
        std = rng.uniform(0.5, 2.0, size=d).astype(dtype)
    inv_corr = inv_correlation(rng, d, dtype)
    xin = layout(x, how)
    with path(TOPN_PATHS[route]):
        got = topn_excursion(xin, mean, std, inv_corr, keep)
    check_close(got, topn_excursion_ref(x, mean, std, inv_corr, keep), xin, dtype)


@settings(max_examples=30)
@given(n_rows=st.integers(1, 8), d=st.integers(1, 9), extra=st.integers(0, 3), seed=seeds)
def test_topn_keeping_everything_is_the_full_quadratic_form(
    n_rows: int, d: int, extra: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x, mean = rng.normal(size=(n_rows, d)), rng.normal(size=d)
    std = rng.uniform(0.5, 2.0, size=d)
    inv_corr = inv_correlation(rng, d, np.dtype(np.float64))
    z = zscores_ref(x, mean, std)
    want = mahalanobis_ref(z, np.zeros(d), inv_corr)
    got = topn_excursion(x, mean, std, inv_corr, d + extra)
    np.testing.assert_allclose(got, want, rtol=1e-9)


@settings(max_examples=30)
@given(n_rows=st.integers(1, 8), d=st.integers(1, 9), seed=seeds)
def test_topn_with_n_1_scores_the_largest_z_alone(n_rows: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, mean = rng.normal(size=(n_rows, d)), rng.normal(size=d)
    std = rng.uniform(0.5, 2.0, size=d)
    inv_corr = inv_correlation(rng, d, np.dtype(np.float64))
    z = zscores_ref(x, mean, std)
    top = z.argmax(axis=1)
    want = np.diag(inv_corr)[top] * z[np.arange(n_rows), top] ** 2
    np.testing.assert_allclose(topn_excursion(x, mean, std, inv_corr, 1), want, rtol=1e-12)


@pytest.mark.parametrize("route", list(TOPN_PATHS))
def test_topn_ties_go_to_the_lower_index(route: str) -> None:
    # Three equal maxima; n = 2 must keep indices 0 and 1: 1·1 + 2·1, not 2 + 3 or 1 + 3.
    x = np.array([[1.0, 1.0, 1.0, 0.0]])
    r = np.diag([1.0, 2.0, 3.0, 4.0])
    with path(TOPN_PATHS[route]):
        got = topn_excursion(x, np.zeros(4), np.ones(4), r, 2)
    assert got.tolist() == [3.0]


@pytest.mark.parametrize("route", list(TOPN_PATHS))
def test_topn_keeps_the_least_negative_excursions_of_a_negative_row(route: str) -> None:
    # All z < 0: the two largest signed values are -1 (index 2) and -2 (index 0).
    x = np.array([[-2.0, -5.0, -1.0, -3.0]])
    r = np.diag([1.0, 10.0, 100.0, 1000.0])
    with path(TOPN_PATHS[route]):
        got = topn_excursion(x, np.zeros(4), np.ones(4), r, 2)
    assert got.tolist() == [1.0 * 4 + 100.0 * 1]


def test_topn_positive_excursions_beat_larger_negative_ones() -> None:
    # Signed, not absolute: z = -9 is dropped for z = +0.5.
    x = np.array([[-9.0, 0.5, 2.0]])
    got = topn_excursion(x, np.zeros(3), np.ones(3), np.eye(3), 2)
    assert got.tolist() == [0.25 + 4.0]


@pytest.mark.parametrize("func", ["mahalanobis", "topn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch_gives_an_empty_result_of_the_input_kind(func: str, dtype: type) -> None:
    d = 3
    for x in (np.zeros((0, d), dtype=dtype), torch.from_numpy(np.zeros((0, d), dtype=dtype))):
        if func == "mahalanobis":
            got = mahalanobis(x, np.zeros(d), np.eye(d))
        else:
            got = topn_excursion(x, np.zeros(d), np.ones(d), np.eye(d), 2)
        assert type(got) is type(x)
        assert tuple(got.shape) == (0,)
        assert got.dtype == x.dtype


def test_parameters_are_cast_to_the_dtype_of_x() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    mean, precision = rng.normal(size=6), well_conditioned(rng, 6, np.dtype(np.float64))
    got = mahalanobis(x, mean, precision)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, mahalanobis_ref(x, mean, precision), rtol=1e-4)
    got_t = topn_excursion(
        torch.from_numpy(x), torch.zeros(6, dtype=torch.float64), np.ones(6), np.eye(6), 3
    )
    assert got_t.dtype == torch.float32


def test_large_inputs_take_the_blas_path_and_agree() -> None:
    # Big enough that the default thresholds choose the block-symmetrised GEMM.
    rng = np.random.default_rng(3)
    n, d = scoring_module._SYM_MIN_ROWS, 2 * scoring_module._BLOCK + 5
    assert n * d * d >= scoring_module._DIRECT_MAX_WORK
    x = rng.normal(size=(n, d)).astype(np.float32)
    mean, precision = rng.normal(size=d).astype(np.float32), well_conditioned(rng, d, np.float32)
    np.testing.assert_allclose(
        mahalanobis(x, mean, precision), mahalanobis_ref(x, mean, precision), rtol=1e-4
    )


# ---- errors: each bad argument is named ----

GOOD = {
    "x": np.zeros((4, 3)),
    "mean": np.zeros(3),
    "precision": np.eye(3),
    "std": np.ones(3),
    "inv_corr": np.eye(3),
}


def call_mahalanobis(**changes: Any) -> Any:
    args = {k: GOOD[k] for k in ("x", "mean", "precision")} | changes
    return mahalanobis(**args)


def call_topn(n: Any = 2, **changes: Any) -> Any:
    args = {k: GOOD[k] for k in ("x", "mean", "std", "inv_corr")} | changes
    return topn_excursion(**args, n=n)


def with_value(a: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out[index] = value
    return out


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"x": np.zeros(3)}, r"mahalanobis: x: expected a 2-D array"),
        ({"x": np.zeros((4, 3), dtype=np.int64)}, r"mahalanobis: x: expected float32 or float64"),
        ({"x": np.array([["a"] * 3])}, r"mahalanobis: x: expected a numeric array"),
        (
            {"x": np.zeros((4, 0)), "mean": np.zeros(0), "precision": np.zeros((0, 0))},
            r"mahalanobis: x has no columns",
        ),
        ({"mean": np.zeros(4)}, r"mahalanobis: x has 3 columns but mean has 4"),
        ({"mean": np.zeros((1, 3))}, r"mahalanobis: mean: expected a 1-D array"),
        ({"mean": np.zeros(3, dtype=np.int32)}, r"mahalanobis: mean: expected float32"),
        ({"precision": np.eye(3)[:2]}, r"mahalanobis: precision must be square"),
        ({"precision": np.eye(4)}, r"mahalanobis: x has 3 columns but precision is 4x4"),
        ({"precision": np.ones(3)}, r"mahalanobis: precision: expected a 2-D array"),
        ({"x": with_value(GOOD["x"], (2, 1), np.nan)}, r"mahalanobis: x\[2, 1\] = nan is not"),
        ({"x": with_value(GOOD["x"], (3, 0), -np.inf)}, r"mahalanobis: x\[3, 0\] = -inf is not"),
        ({"mean": with_value(GOOD["mean"], (1,), np.inf)}, r"mahalanobis: mean\[1\] = inf is not"),
        (
            {"precision": with_value(GOOD["precision"], (0, 2), np.nan)},
            r"mahalanobis: precision\[0, 2\] = nan is not finite",
        ),
        (
            {"x": np.full((4, 3), 1e30, dtype=np.float32)},
            r"mahalanobis: the score of row 0 overflows float32",
        ),
    ],
)
@pytest.mark.parametrize("route", list(PATHS))
def test_mahalanobis_rejects_bad_arguments(route: str, changes: dict, match: str) -> None:
    with path(PATHS[route]), pytest.raises(ValueError, match=match):
        call_mahalanobis(**changes)


@pytest.mark.parametrize(
    ("n", "changes", "match"),
    [
        (0, {}, r"topn_excursion: n must be >= 1, got 0"),
        (-3, {}, r"topn_excursion: n must be >= 1, got -3"),
        (1.5, {}, r"topn_excursion: n must be an integer, got 1.5"),
        (True, {}, r"topn_excursion: n must be an integer, got True"),
        (2, {"x": np.zeros((2, 2, 3))}, r"topn_excursion: x: expected a 2-D array"),
        (2, {"x": np.zeros((4, 3), dtype=np.uint8)}, r"topn_excursion: x: expected float32"),
        (2, {"mean": np.zeros(2)}, r"topn_excursion: x has 3 columns but mean has 2"),
        (2, {"std": np.ones(5)}, r"topn_excursion: x has 3 columns but std has 5"),
        (2, {"std": np.array([1.0, 0.0, 1.0])}, r"topn_excursion: std\[1\] = 0 must be positive"),
        (2, {"std": np.array([1.0, 1.0, -2.0])}, r"topn_excursion: std\[2\] = -2 must be positive"),
        (2, {"std": np.array([np.nan, 1.0, 1.0])}, r"topn_excursion: std\[0\] = nan must be"),
        (2, {"mean": np.array([0.0, np.inf, 0.0])}, r"topn_excursion: mean\[1\] = inf is not"),
        (2, {"inv_corr": np.eye(3)[:, :2]}, r"topn_excursion: inv_corr must be square"),
        (2, {"inv_corr": np.eye(2)}, r"topn_excursion: x has 3 columns but inv_corr is 2x2"),
        (2, {"x": with_value(GOOD["x"], (1, 2), np.nan)}, r"topn_excursion: x\[1, 2\] = nan is"),
        (
            2,
            {"x": with_value(GOOD["x"], (0, 0), 1e308), "std": np.array([1e-300, 1.0, 1.0])},
            r"topn_excursion: x\[0, 0\] = 1e\+308 gives a z-score that overflows",
        ),
        (
            2,
            {"x": np.full((4, 3), 1e20, dtype=np.float32)},
            r"topn_excursion: the score of row 0 overflows float32",
        ),
        # Row 0 keeps columns 0 and 1 (ties to the lower index), so inv_corr[0, 1] enters its score.
        (
            2,
            {"inv_corr": with_value(GOOD["inv_corr"], (0, 1), np.nan)},
            r"topn_excursion: inv_corr\[0, 1\] = nan is not finite",
        ),
    ],
)
@pytest.mark.parametrize("route", list(TOPN_PATHS))
def test_topn_rejects_bad_arguments(route: str, n: Any, changes: dict, match: str) -> None:
    with path(TOPN_PATHS[route]), pytest.raises(ValueError, match=match):
        call_topn(n, **changes)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: _kernels.mahalanobis(np.zeros((2, 3)), np.zeros(4), np.eye(3)),
            "x has 3 columns but mean has 4",
        ),
        (
            lambda: _kernels.mahalanobis(np.zeros((2, 3)), np.zeros(3, np.float32), np.eye(3)),
            "mean has dtype float32 but x has float64",
        ),
        (
            lambda: _kernels.mahalanobis(np.zeros((2, 3), np.int32), np.zeros(3), np.eye(3)),
            "x must be float32 or float64",
        ),
        (
            lambda: _kernels.mahalanobis(np.zeros((2, 3)), np.zeros(3), np.eye(3)[:, :2]),
            "precision must be square",
        ),
        (lambda: _kernels.mahalanobis(np.zeros(3), np.zeros(3), np.eye(3)), "x must be 2-D"),
        (
            lambda: _kernels.topn_excursion(
                np.zeros((2, 3)), np.zeros(3), np.ones(3), np.eye(3), 0
            ),
            "n must be >= 1",
        ),
        (
            lambda: _kernels.topn_excursion(
                np.zeros((2, 3)), np.zeros(3), np.ones(2), np.eye(3), 1
            ),
            "x has 3 columns but std has 2",
        ),
        (
            lambda: _kernels.topn_dense(np.zeros((2, 3)), np.zeros(3), np.zeros(3), 1),
            r"std\[0\] = 0 must be positive",
        ),
    ],
)
def test_compiled_boundary_checks_its_arguments(call: Any, match: str) -> None:
    # The wrappers validate first; the compiled functions must still refuse bad input themselves.
    with pytest.raises(ValueError, match=match):
        call()


@settings(max_examples=40)
@given(
    d=st.integers(17, 150),
    data=st.data(),
    integral=st.booleans(),
    seed=seeds,
)
def test_topn_selection_on_wide_rows_matches_reference(
    d: int, data: st.DataObject, integral: bool, seed: int
) -> None:
    # Wide rows exercise both selections: n up to D/16 prunes by block maxima (ties at the
    # threshold included), larger n runs introselect over all D; both must rank like a stable sort.
    keep = data.draw(st.one_of(st.integers(1, max(1, d // 16)), st.integers(1, d - 1)), label="n")
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(6, d)) if integral else rng.normal(size=(6, d))
    mean, std = np.zeros(d), np.ones(d)
    inv_corr = inv_correlation(rng, d, np.dtype(np.float64))
    with path(TOPN_PATHS["gathered"]):
        got = topn_excursion(x.astype(np.float64), mean, std, inv_corr, keep)
    np.testing.assert_allclose(got, topn_excursion_ref(x, mean, std, inv_corr, keep), rtol=1e-9)


@pytest.mark.parametrize("n", [1, 3, 5, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_kernel_splits_precision_rows_across_threads(n: int, dtype: type) -> None:
    # Few rows and D >= 64: the direct kernel also splits the precision rows into chunks.
    rng = np.random.default_rng(n)
    d = 200
    x = rng.normal(size=(n, d)).astype(dtype)
    mean, precision = rng.normal(size=d).astype(dtype), well_conditioned(rng, d, np.dtype(dtype))
    got = _kernels.mahalanobis(x, mean, precision)
    np.testing.assert_allclose(got, mahalanobis_ref(x, mean, precision), rtol=RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("route", list(PATHS))
def test_size_one_axes_with_odd_strides_are_accepted(route: str) -> None:
    # numpy calls these contiguous although their strides are not the item size.
    big = np.arange(1.0, 61.0).reshape(6, 10)
    x, mean, precision = big[::2, 3:4], big[0, ::7][:1], big[1::9, 2::11]
    assert (x.shape, mean.shape, precision.shape) == ((3, 1), (1,), (1, 1))
    assert mean.flags.c_contiguous
    assert mean.strides != (8,)
    with path(PATHS[route]):
        got = mahalanobis(x, mean, precision)
        got_topn = topn_excursion(x, mean, np.ones(1)[::3], precision, 1)
    np.testing.assert_allclose(got, mahalanobis_ref(x, mean, precision), rtol=1e-12)
    np.testing.assert_allclose(got_topn, got, rtol=1e-12)


@pytest.mark.parametrize("where", [(0, 1), (6, 0), (1, 5), (4, 4), (6, 6)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_symmetrised_path_names_a_non_finite_precision_entry(
    where: tuple[int, int], bad: float
) -> None:
    # Diagonal, upper and lower blocks of the symmetrised precision (D = 7 in blocks of 3).
    precision = with_value(np.eye(7), where, bad)
    with (
        path(PATHS["sym"]),
        pytest.raises(ValueError, match=rf"precision\[{where[0]}, {where[1]}\]"),
    ):
        mahalanobis(np.ones((5, 7)), np.zeros(7), precision)
