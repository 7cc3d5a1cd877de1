// Top-n excursion scores (methods.md §1.5): per row, z = (x − mean)/std, keep the n largest signed
// z (ties to the lower index), and take the quadratic form with inv_corr restricted to those n —
// O(D + n²) per row instead of O(D²).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "checks.hpp"

namespace py = pybind11;

namespace {

using namespace xadt;  // View2, view2, PARALLEL_MIN and the checks in checks.hpp

constexpr const char *FN = "topn_excursion";

[[noreturn]] void fail(const std::string &what) {
    throw std::invalid_argument(std::string(FN) + ": " + what);
}

// The validated inputs of one call; mean and std are 1-D, possibly strided.
template <typename T> struct Inputs {
    View2<T> x;
    const T *mean, *std;
    py::ssize_t mean_s, std_s, d, n;
};

template <typename T> Inputs<T> check_inputs(const py::array &x, const py::array &mean,
                                             const py::array &std_, py::ssize_t n) {
    require_ndim(FN, "x", x, 2);
    require_ndim(FN, "mean", mean, 1);
    require_ndim(FN, "std", std_, 1);
    require_layout<T>(FN, "x", x);
    require_layout<T>(FN, "mean", mean);
    require_layout<T>(FN, "std", std_);
    const py::ssize_t d = x.shape(1);
    if (d < 1) fail("x has no columns");
    if (mean.shape(0) != d)
        fail("x has " + std::to_string(d) + " columns but mean has " +
             std::to_string(mean.shape(0)));
    if (std_.shape(0) != d)
        fail("x has " + std::to_string(d) + " columns but std has " +
             std::to_string(std_.shape(0)));
    if (n < 1) fail("n must be >= 1, got " + std::to_string(n));
    constexpr auto item = static_cast<py::ssize_t>(sizeof(T));
    Inputs<T> in{view2<T>(x),
                 static_cast<const T *>(mean.data()),
                 static_cast<const T *>(std_.data()),
                 mean.strides(0) / item,
                 std_.strides(0) / item,
                 d,
                 std::min(n, d)};
    for (py::ssize_t j = 0; j < d; ++j) {
        const T m = in.mean[j * in.mean_s], s = in.std[j * in.std_s];
        if (!std::isfinite(m)) {
            std::ostringstream msg;
            msg << "mean[" << j << "] = " << m << " is not finite";
            fail(msg.str());
        }
        if (!(std::isfinite(s) && s > 0)) {
            std::ostringstream msg;
            msg << "std[" << j << "] = " << s << " must be positive and finite";
            fail(msg.str());
        }
    }
    return in;
}

// z[j] = (x[j] − mean[j]) / std[j] in double over contiguous rows; false when one is not finite.
// Built for AVX-512, AVX2 and baseline x86-64 (the build passes no -march); subtraction and
// division are correctly rounded at every vector width, so all three give the same bits.
template <typename T>
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) bool
zscores_contiguous(const T *x, const T *mean, const T *std_, py::ssize_t d, double *z) {
    double poison = 0;  // v·0 is 0 for finite v and NaN for ±inf or NaN: a vectorisable check
#pragma omp simd reduction(+ : poison)
    for (py::ssize_t j = 0; j < d; ++j) {
        const double v = (static_cast<double>(x[j]) - static_cast<double>(mean[j])) /
                         static_cast<double>(std_[j]);
        z[j] = v;
        poison += v * 0.0;
    }
    return poison == 0.0;
}

// Row i's z-scores in double, computed exactly as (x − mean)/std (no reciprocal: the selection
// must see the same values, and so the same ties, as a float64 reference). Returns false when a
// z-score is not finite.
template <typename T> bool zscores(const Inputs<T> &in, py::ssize_t i, double *z) {
    const py::ssize_t d = in.d;
    const T *xi = in.x.data + i * in.x.s0;
    if (in.x.s1 == 1 && in.mean_s == 1 && in.std_s == 1)
        return zscores_contiguous(xi, in.mean, in.std, d, z);
    bool finite = true;
    for (py::ssize_t j = 0; j < d; ++j) {
        z[j] = (static_cast<double>(xi[j * in.x.s1]) -
                static_cast<double>(in.mean[j * in.mean_s])) /
               static_cast<double>(in.std[j * in.std_s]);
        finite = finite && std::isfinite(z[j]);
    }
    return finite;
}

constexpr py::ssize_t ZBLOCK = 16;  // selection works on blocks of this many z-scores

// bmax[k] = max(z[k·ZBLOCK .. (k+1)·ZBLOCK)), vectorised (built per instruction set, as above).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void
block_maxima(const double *z, py::ssize_t d, double *bmax) {
    const py::ssize_t full = d / ZBLOCK;
    for (py::ssize_t k = 0; k < full; ++k) {
        const double *zb = z + k * ZBLOCK;
        double top = zb[0];
#pragma omp simd reduction(max : top)
        for (py::ssize_t j = 0; j < ZBLOCK; ++j) top = std::max(top, zb[j]);
        bmax[k] = top;
    }
    if (full * ZBLOCK < d) {
        double top = z[full * ZBLOCK];
        for (py::ssize_t j = full * ZBLOCK; j < d; ++j) top = std::max(top, z[j]);
        bmax[full] = top;
    }
}

// Per-thread buffers of the selection.
struct Scratch {
    std::vector<double> bmax;
    std::vector<py::ssize_t> cand;
};

// The n best indices of z (larger z first, ties to the lower index), sorted ascending, into keep.
// Expected O(D) whatever n: the n-th largest block maximum t is a lower bound on the n-th largest
// z (the n top blocks hold n distinct entries >= t), so only entries >= t — a few blocks' worth
// when n ≪ D — are candidates, and introselect under the strict total order picks the n best of
// them, exactly as a stable sort of all D would.
void select_top(const double *z, py::ssize_t d, py::ssize_t n, std::vector<py::ssize_t> &keep,
                Scratch &sc) {
    keep.resize(static_cast<size_t>(n));
    if (n >= d) {
        std::iota(keep.begin(), keep.end(), py::ssize_t(0));
        return;
    }
    auto better = [z](py::ssize_t a, py::ssize_t b) {
        return z[a] > z[b] || (z[a] == z[b] && a < b);
    };
    const py::ssize_t blocks = (d + ZBLOCK - 1) / ZBLOCK;
    auto &cand = sc.cand;
    cand.clear();
    if (n <= blocks) {
        sc.bmax.resize(static_cast<size_t>(2 * blocks));
        double *bmax = sc.bmax.data(), *sorted = bmax + blocks;
        block_maxima(z, d, bmax);
        std::copy(bmax, bmax + blocks, sorted);
        std::nth_element(sorted, sorted + (n - 1), sorted + blocks, std::greater<double>());
        const double t = sorted[n - 1];
        for (py::ssize_t k = 0; k < blocks; ++k) {
            if (bmax[k] < t) continue;
            const py::ssize_t j1 = std::min(d, (k + 1) * ZBLOCK);
            for (py::ssize_t j = k * ZBLOCK; j < j1; ++j)
                if (z[j] >= t) cand.push_back(j);
        }
    } else {
        cand.resize(static_cast<size_t>(d));
        std::iota(cand.begin(), cand.end(), py::ssize_t(0));
    }
    std::nth_element(cand.begin(), cand.begin() + (n - 1), cand.end(), better);
    std::copy(cand.begin(), cand.begin() + n, keep.begin());
    std::sort(keep.begin(), keep.end());
}

// Σ_a Σ_b zk[a]·R[keep[a], keep[b]]·zk[b] in double, with the rows of R gathered; four partial
// sums keep the adds from waiting on each other (the loads are gathers, so no SIMD).
template <typename T> double gathered_form(const View2<T> &r, const py::ssize_t *keep,
                                           const double *zk, py::ssize_t n) {
    double score = 0;
    for (py::ssize_t a = 0; a < n; ++a) {
        const T *ra = r.data + keep[a] * r.s0;
        auto term = [&](py::ssize_t b) { return static_cast<double>(ra[keep[b] * r.s1]) * zk[b]; };
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        py::ssize_t b = 0;
        for (; b + 4 <= n; b += 4) {
            a0 += term(b);
            a1 += term(b + 1);
            a2 += term(b + 2);
            a3 += term(b + 3);
        }
        for (; b < n; ++b) a0 += term(b);
        score += zk[a] * ((a0 + a1) + (a2 + a3));
    }
    return score;
}

// The problem met in the lowest row; reported after the parallel region (exceptions may not cross
// it). kind: 1 = a z-score is not finite (x is not, or z overflows), 3 = an inv_corr entry used by
// the row is not finite, 4 = the score overflows the output dtype.
struct Problem {
    py::ssize_t row = -1, a = 0, b = 0;
    int kind = 0;
    double value = 0;
};

template <typename T> [[noreturn]] void report(const Problem &p, const Inputs<T> &in) {
    std::ostringstream msg;
    if (p.kind == 1) {
        py::ssize_t j = 0;
        std::vector<double> z(static_cast<size_t>(in.d));
        zscores(in, p.row, z.data());
        while (j < in.d && std::isfinite(z[static_cast<size_t>(j)])) ++j;
        const double v = static_cast<double>(in.x(p.row, j));
        msg << "x[" << p.row << ", " << j << "] = " << v;
        if (std::isfinite(v))
            msg << " gives a z-score that overflows float64";
        else
            msg << " is not finite";
    } else if (p.kind == 3) {
        msg << "inv_corr[" << p.a << ", " << p.b << "] = " << static_cast<double>(p.value)
            << " is not finite (used by row " << p.row << ")";
    } else {
        msg << "the score of row " << p.row << " overflows "
            << std::string(py::str(py::dtype::of<T>())) << "; rescale the inputs";
    }
    fail(msg.str());
}

template <typename T> py::array_t<T> topn_scores(const py::array &x_in, const py::array &mean_in,
                                                 const py::array &std_in,
                                                 const py::array &corr_in, py::ssize_t n_in) {
    const Inputs<T> in = check_inputs<T>(x_in, mean_in, std_in, n_in);
    require_ndim(FN, "inv_corr", corr_in, 2);
    require_layout<T>(FN, "inv_corr", corr_in);
    if (corr_in.shape(0) != corr_in.shape(1))
        fail("inv_corr must be square, got shape " + shape_text(corr_in));
    if (corr_in.shape(0) != in.d)
        fail("x has " + std::to_string(in.d) + " columns but inv_corr is " +
             std::to_string(corr_in.shape(0)) + "x" + std::to_string(corr_in.shape(1)));
    const View2<T> r = view2<T>(corr_in);
    const py::ssize_t rows = in.x.rows, d = in.d, n = in.n;
    py::array_t<T> out_arr(rows);
    T *out = out_arr.mutable_data();
    Problem problem;
    {
        // Only raw pointers into arrays the caller keeps alive are used: safe without the GIL.
        py::gil_scoped_release release;
#pragma omp parallel if (rows > 1 && rows * (d + n * n) > PARALLEL_MIN)
        {
            std::vector<double> z(static_cast<size_t>(d)), zk(static_cast<size_t>(n));
            std::vector<py::ssize_t> keep;
            Scratch scratch;
            Problem mine;
#pragma omp for schedule(dynamic, 16)  // dynamic: a descheduled thread delays one chunk only
            for (py::ssize_t i = 0; i < rows; ++i) {
                if (mine.kind) continue;
                if (!zscores(in, i, z.data())) {
                    mine = {i, 0, 0, 1, 0};
                    continue;
                }
                select_top(z.data(), d, n, keep, scratch);
                for (py::ssize_t a = 0; a < n; ++a) zk[a] = z[keep[a]];
                out[i] = static_cast<T>(gathered_form(r, keep.data(), zk.data(), n));
                if (!std::isfinite(out[i])) {
                    mine = {i, 0, 0, 4, 0};
                    for (py::ssize_t a = 0; a < n && mine.kind == 4; ++a)
                        for (py::ssize_t b = 0; b < n; ++b)
                            if (!std::isfinite(r(keep[a], keep[b]))) {
                                mine = {i, keep[a], keep[b], 3,
                                        static_cast<double>(r(keep[a], keep[b]))};
                                break;
                            }
                }
            }
#pragma omp critical
            if (mine.kind && (problem.kind == 0 || mine.row < problem.row)) problem = mine;
        }
    }
    if (problem.kind) report(problem, in);
    return out_arr;
}

// The dense z̃ (N, D) in x's dtype: the kept z-scores in place, zeros elsewhere. Feeds the GEMM
// path that xadt.kernels.scoring takes when n is a large fraction of D.
template <typename T> py::array_t<T> topn_dense(const py::array &x_in, const py::array &mean_in,
                                                const py::array &std_in, py::ssize_t n_in) {
    const Inputs<T> in = check_inputs<T>(x_in, mean_in, std_in, n_in);
    const py::ssize_t rows = in.x.rows, d = in.d, n = in.n;
    py::array_t<T> out_arr({rows, d});
    T *out = out_arr.mutable_data();
    Problem problem;
    {
        // Only raw pointers into arrays the caller keeps alive are used: safe without the GIL.
        py::gil_scoped_release release;
#pragma omp parallel if (rows > 1 && rows * d > PARALLEL_MIN)
        {
            std::vector<double> z(static_cast<size_t>(d));
            std::vector<py::ssize_t> keep;
            Scratch scratch;
            Problem mine;
#pragma omp for schedule(dynamic, 16)  // dynamic: a descheduled thread delays one chunk only
            for (py::ssize_t i = 0; i < rows; ++i) {
                if (mine.kind) continue;
                if (!zscores(in, i, z.data())) {
                    mine = {i, 0, 0, 1, 0};
                    continue;
                }
                select_top(z.data(), d, n, keep, scratch);
                T *oi = out + i * d;
                std::fill(oi, oi + d, T(0));
                for (const py::ssize_t j : keep) oi[j] = static_cast<T>(z[j]);
            }
#pragma omp critical
            if (mine.kind && (problem.kind == 0 || mine.row < problem.row)) problem = mine;
        }
    }
    if (problem.kind) report(problem, in);
    return out_arr;
}

bool is_f32(const py::array &x) { return x.dtype().is(py::dtype::of<float>()); }
bool is_f64(const py::array &x) { return x.dtype().is(py::dtype::of<double>()); }

[[noreturn]] void throw_dtype(const py::array &x) {
    fail("x must be float32 or float64, got " + std::string(py::str(x.dtype())));
}

}  // namespace

void register_topn(py::module_ &m) {
    m.def(
        "topn_excursion",
        [](const py::array &x, const py::array &mean, const py::array &std_,
           const py::array &inv_corr, py::ssize_t n) -> py::array {
            if (is_f32(x)) return topn_scores<float>(x, mean, std_, inv_corr, n);
            if (is_f64(x)) return topn_scores<double>(x, mean, std_, inv_corr, n);
            throw_dtype(x);
        },
        py::arg("x"), py::arg("mean"), py::arg("std"), py::arg("inv_corr"), py::arg("n"),
        "Top-n excursion score of each row of x (N, D): O(D + n^2) per row.");
    m.def(
        "topn_dense",
        [](const py::array &x, const py::array &mean, const py::array &std_,
           py::ssize_t n) -> py::array {
            if (is_f32(x)) return topn_dense<float>(x, mean, std_, n);
            if (is_f64(x)) return topn_dense<double>(x, mean, std_, n);
            throw_dtype(x);
        },
        py::arg("x"), py::arg("mean"), py::arg("std"), py::arg("n"),
        "The zeroed z-scores z~ (N, D): the n largest signed z of each row kept, the rest 0.");
}
