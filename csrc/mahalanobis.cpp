// Squared Mahalanobis distances of the rows of X: a direct blocked OpenMP kernel, and the three
// O(N·D + D²) helpers (centring, block-symmetrised precision, fused row dots) around the BLAS
// GEMM path that xadt.kernels.scoring chooses for large inputs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "checks.hpp"

namespace py = pybind11;

namespace {

using namespace xadt;  // View2, view2, PARALLEL_MIN and the checks in checks.hpp

[[noreturn]] void throw_not_finite(const char *fn, const char *name, py::ssize_t i, py::ssize_t j,
                                   double value, bool two_d) {
    std::ostringstream msg;
    msg << fn << ": " << name << "[" << i;
    if (two_d) msg << ", " << j;
    msg << "] = " << value << " is not finite";
    throw std::invalid_argument(msg.str());
}

template <typename T> void require_finite_vector(const char *fn, const char *name, const T *v,
                                                 py::ssize_t d) {
    for (py::ssize_t j = 0; j < d; ++j)
        if (!std::isfinite(v[j]))
            throw_not_finite(fn, name, j, 0, static_cast<double>(v[j]), false);
}

// Checks shared by the direct kernel and the GEMM helpers; returns D.
template <typename T> py::ssize_t check_x_mean(const char *fn, const py::array &x,
                                               const py::array &mean) {
    require_ndim(fn, "x", x, 2);
    require_ndim(fn, "mean", mean, 1);
    require_layout<T>(fn, "x", x);
    require_layout<T>(fn, "mean", mean);
    const py::ssize_t d = x.shape(1);
    if (d < 1) throw std::invalid_argument(std::string(fn) + ": x has no columns");
    if (mean.shape(0) != d) {
        std::ostringstream msg;
        msg << fn << ": x has " << d << " columns but mean has " << mean.shape(0);
        throw std::invalid_argument(msg.str());
    }
    // (numpy gives size-1 axes arbitrary strides and still calls them contiguous)
    if (d > 1 && mean.strides(0) != static_cast<py::ssize_t>(sizeof(T)))
        throw std::invalid_argument(std::string(fn) + ": mean must be contiguous");
    return d;
}

template <typename T> void check_precision(const char *fn, const py::array &p, py::ssize_t d) {
    require_ndim(fn, "precision", p, 2);
    require_layout<T>(fn, "precision", p);
    if (p.shape(0) != p.shape(1)) {
        std::ostringstream msg;
        msg << fn << ": precision must be square, got shape " << shape_text(p);
        throw std::invalid_argument(msg.str());
    }
    if (p.shape(0) != d) {
        std::ostringstream msg;
        msg << fn << ": x has " << d << " columns but precision is " << p.shape(0) << "x"
            << p.shape(1);
        throw std::invalid_argument(msg.str());
    }
}

// Finiteness of a matrix, scanned in parallel; throws naming the first bad entry.
template <typename T> void require_finite_matrix(const char *fn, const char *name,
                                                 const View2<T> &m) {
    constexpr py::ssize_t none = std::numeric_limits<py::ssize_t>::max();
    py::ssize_t bad = none;
    {
        // Pure reads of numpy memory that the caller keeps alive: safe without the GIL.
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static) reduction(min : bad) if (m.rows * m.cols > PARALLEL_MIN)
        for (py::ssize_t i = 0; i < m.rows; ++i) {
            T poison = 0;  // v·0 is 0 for finite v and NaN otherwise: a vectorisable check
            if (m.s1 == 1) {
                const T *row = m.data + i * m.s0;
#pragma omp simd reduction(+ : poison)
                for (py::ssize_t j = 0; j < m.cols; ++j) poison += row[j] * T(0);
            } else {
                for (py::ssize_t j = 0; j < m.cols; ++j) poison += m(i, j) * T(0);
            }
            if (poison != T(0))
                for (py::ssize_t j = 0; j < m.cols; ++j)
                    if (!std::isfinite(m(i, j))) {
                        bad = std::min(bad, i * m.cols + j);
                        break;
                    }
        }
    }
    if (bad != none) {
        const py::ssize_t i = bad / m.cols, j = bad % m.cols;
        throw_not_finite(fn, name, i, j, static_cast<double>(m(i, j)), true);
    }
}

// The direct kernel. Tiles of up to ROWS centred rows share each precision row while it is in
// cache; with few tiles the precision rows are also split into chunks so every thread has work.
// Inner dots run in T (vectorised through `omp simd`), the sums over precision rows in double.
constexpr py::ssize_t ROWS = 4;

template <typename T, int R>
inline __attribute__((always_inline)) void quadform_rows(const T *pd, py::ssize_t d, const T *y,
                                                         py::ssize_t i0, py::ssize_t i1,
                                                         double *s) {
    static_assert(R >= 1 && R <= 4, "tiles hold 1 to 4 rows");
    // Named accumulators (not an array) so that `omp simd` vectorises over j, not over rows.
    const T *y0 = y, *y1 = y + (R > 1 ? d : 0), *y2 = y + (R > 2 ? 2 * d : 0);
    const T *y3 = y + (R > 3 ? 3 * d : 0);
    double sum[R] = {};
    for (py::ssize_t i = i0; i < i1; ++i) {
        const T *pi = pd + i * d;
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (py::ssize_t j = 0; j < d; ++j) {
            const T pij = pi[j];
            a0 += pij * y0[j];
            if (R > 1) a1 += pij * y1[j];
            if (R > 2) a2 += pij * y2[j];
            if (R > 3) a3 += pij * y3[j];
        }
        const T a[4] = {a0, a1, a2, a3};
        for (int r = 0; r < R; ++r)
            sum[r] += static_cast<double>(y[r * d + i]) * static_cast<double>(a[r]);
    }
    for (int r = 0; r < R; ++r) s[r] = sum[r];
}

// s[r] = Σ_{i0 <= i < i1} y_r[i] (P[i, :] · y_r) for the `rows` contiguous rows y_r of y. Built for
// AVX-512, AVX2+FMA and baseline x86-64 and picked at load time: the build passes no -march.
template <typename T>
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void
tile_quadform(const T *pd, py::ssize_t d, const T *y, py::ssize_t rows, py::ssize_t i0,
              py::ssize_t i1, double *s) {
    switch (rows) {
    case 4: quadform_rows<T, 4>(pd, d, y, i0, i1, s); break;
    case 3: quadform_rows<T, 3>(pd, d, y, i0, i1, s); break;
    case 2: quadform_rows<T, 2>(pd, d, y, i0, i1, s); break;
    default: quadform_rows<T, 1>(pd, d, y, i0, i1, s); break;
    }
}

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

template <typename T> py::array_t<T> mahalanobis_direct(const py::array &x_in,
                                                        const py::array &mean_in,
                                                        const py::array &prec_in) {
    const char *fn = "mahalanobis";
    const py::ssize_t d = check_x_mean<T>(fn, x_in, mean_in);
    check_precision<T>(fn, prec_in, d);
    const View2<T> x = view2<T>(x_in);
    const View2<T> p = view2<T>(prec_in);
    const T *mean = static_cast<const T *>(mean_in.data());
    require_finite_vector(fn, "mean", mean, d);
    require_finite_matrix(fn, "precision", p);
    const py::ssize_t n = x.rows;
    py::array_t<T> out_arr(n);
    T *out = out_arr.mutable_data();
    // A contiguous precision lets the inner loop vectorise; copy only when it is strided.
    std::vector<T> p_copy;
    const T *pd = p.data;
    if (p.s1 != 1 || p.s0 != d) {
        p_copy.resize(static_cast<size_t>(d * d));
        for (py::ssize_t i = 0; i < d; ++i)
            for (py::ssize_t j = 0; j < d; ++j) p_copy[static_cast<size_t>(i * d + j)] = p(i, j);
        pd = p_copy.data();
    }
    constexpr py::ssize_t none = std::numeric_limits<py::ssize_t>::max();
    py::ssize_t bad = none;     // flat index of the first non-finite x entry
    py::ssize_t overflow = -1;  // a row whose distance is not finite in T
    {
        // Only raw pointers into arrays held by the caller are touched: safe without the GIL.
        py::gil_scoped_release release;
        const py::ssize_t tiles = (n + ROWS - 1) / ROWS;
        const py::ssize_t want = 2 * max_threads();
        // Few tiles (N = 0 included): split the precision rows too, at least 32 per chunk.
        const py::ssize_t chunks =
            tiles >= want
                ? 1
                : std::clamp<py::ssize_t>((want + tiles - 1) / std::max<py::ssize_t>(tiles, 1), 1,
                                          std::max<py::ssize_t>(d / 32, 1));
        const py::ssize_t items = tiles * chunks;
        // Per-chunk partial sums, added in a fixed order afterwards: results do not depend on
        // which thread ran which chunk.
        std::vector<double> part(static_cast<size_t>(n * chunks), 0.0);
        double *partp = part.data();
#pragma omp parallel reduction(min : bad) if (items > 1 && n * d * d > PARALLEL_MIN)
        {
            std::vector<T> ybuf(static_cast<size_t>(ROWS * d));
#pragma omp for schedule(dynamic, 1)
            for (py::ssize_t item = 0; item < items; ++item) {
                const py::ssize_t t = item / chunks, c = item % chunks;
                const py::ssize_t r0 = t * ROWS, rn = std::min(ROWS, n - r0);
                for (py::ssize_t r = 0; r < rn; ++r) {
                    T *y = ybuf.data() + r * d;
                    for (py::ssize_t j = 0; j < d; ++j) {
                        const T v = x(r0 + r, j);
                        if (!std::isfinite(v)) bad = std::min(bad, (r0 + r) * d + j);
                        y[j] = v - mean[j];
                    }
                }
                double s[ROWS];
                tile_quadform(pd, d, ybuf.data(), rn, c * d / chunks, (c + 1) * d / chunks, s);
                for (py::ssize_t r = 0; r < rn; ++r) partp[(r0 + r) * chunks + c] = s[r];
            }
        }
        for (py::ssize_t i = 0; i < n; ++i) {
            double total = 0;
            for (py::ssize_t c = 0; c < chunks; ++c) total += partp[i * chunks + c];
            out[i] = static_cast<T>(total);
            if (overflow < 0 && !std::isfinite(out[i])) overflow = i;
        }
    }
    if (bad != none)
        throw_not_finite(fn, "x", bad / d, bad % d, static_cast<double>(x(bad / d, bad % d)),
                         true);
    if (overflow >= 0) {
        std::ostringstream msg;
        msg << fn << ": the score of row " << overflow << " overflows "
            << std::string(py::str(py::dtype::of<T>())) << "; rescale the inputs";
        throw std::invalid_argument(msg.str());
    }
    return out_arr;
}

// out = x − mean into a C-contiguous (N, D) array of x's dtype (the caller allocates it, so BLAS
// gets torch's 64-byte alignment), rejecting non-finite x or mean.
template <typename T> void centre(const py::array &x_in, const py::array &mean_in, py::array &out) {
    const char *fn = "mahalanobis";
    const py::ssize_t d = check_x_mean<T>(fn, x_in, mean_in);
    const View2<T> x = view2<T>(x_in);
    const T *mean = static_cast<const T *>(mean_in.data());
    require_finite_vector(fn, "mean", mean, d);
    const py::ssize_t n = x.rows;
    require_layout<T>(fn, "centre out", out);
    if (out.ndim() != 2 || out.shape(0) != n || out.shape(1) != d ||
        !(out.flags() & py::array::c_style) || !out.writeable())
        throw std::invalid_argument("mahalanobis: centre out must be a writeable C-contiguous "
                                    "array shaped like x");
    T *y = static_cast<T *>(out.mutable_data());
    constexpr py::ssize_t none = std::numeric_limits<py::ssize_t>::max();
    py::ssize_t bad = none;  // flat index of the first non-finite x entry
    {
        // Raw pointers into arrays the caller keeps alive: safe without the GIL.
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static) reduction(min : bad) if (n > 1 && n * d > PARALLEL_MIN)
        for (py::ssize_t i = 0; i < n; ++i) {
            T *yi = y + i * d;
            T poison = 0;  // v·0 is 0 for finite v and NaN otherwise: a vectorisable check
            if (x.s1 == 1) {
                const T *xi = x.data + i * x.s0;
#pragma omp simd reduction(+ : poison)
                for (py::ssize_t j = 0; j < d; ++j) {
                    yi[j] = xi[j] - mean[j];
                    poison += xi[j] * T(0);
                }
            } else {
                for (py::ssize_t j = 0; j < d; ++j) {
                    const T v = x(i, j);
                    yi[j] = v - mean[j];
                    poison += v * T(0);
                }
            }
            if (poison != T(0))
                for (py::ssize_t j = 0; j < d; ++j)
                    if (!std::isfinite(x(i, j))) {
                        bad = std::min(bad, i * d + j);
                        break;
                    }
        }
    }
    if (bad != none)
        throw_not_finite(fn, "x", bad / d, bad % d, static_cast<double>(x(bad / d, bad % d)),
                         true);
}

// The block-symmetrised precision S for column blocks of width b: for block J = [j0, j1),
// rows [0, j0) of S[:, J] hold P[:j0, J] + P[J, :j0]ᵀ and rows J hold P[J, J]; rows below j1
// are zero. Then yᵀPy = Σ_J rowdot(y[:, :j1] S[:j1, J], y[:, J]), roughly half the flops of
// (yP)·y, for any P (symmetric or not). Rejects non-finite entries.
template <typename T>
py::array_t<T> sym_blocks(const py::array &p_in, py::ssize_t b, const std::string &fn_s,
                          const std::string &name_s) {
    const char *fn = fn_s.c_str(), *name = name_s.c_str();
    require_ndim(fn, name, p_in, 2);
    require_layout<T>(fn, name, p_in);
    if (p_in.shape(0) != p_in.shape(1)) {
        std::ostringstream msg;
        msg << fn << ": " << name << " must be square, got shape " << shape_text(p_in);
        throw std::invalid_argument(msg.str());
    }
    if (b < 1) throw std::invalid_argument(fn_s + ": block width must be >= 1");
    const View2<T> p = view2<T>(p_in);
    if (p.rows > 1 && (p.s1 != 1 || p.s0 != p.cols))
        throw std::invalid_argument(fn_s + ": " + name_s + " must be C-contiguous here");
    const py::ssize_t d = p.rows;
    py::array_t<T> s_arr({d, d});
    T *s = s_arr.mutable_data();
    T poison = 0;
    {
        // Raw pointers into arrays the caller keeps alive: safe without the GIL.
        py::gil_scoped_release release;
        // Square tiles: the transposed reads p(j, i) of one tile reuse the same TILE cache lines.
        constexpr py::ssize_t TILE = 32;
        const T *pd = p.data;  // C-contiguous (checked above)
        // Every entry of P enters exactly one written value (diagonal blocks copied, the others
        // in a sum), so v·0 summed over what is written detects a non-finite P in the same pass.
#pragma omp parallel for schedule(static) reduction(+ : poison) if (d * d > PARALLEL_MIN)
        for (py::ssize_t ti = 0; ti < d; ti += TILE) {
            const py::ssize_t ti1 = std::min(d, ti + TILE);
            for (py::ssize_t i = ti; i < ti1; ++i) {
                const py::ssize_t lo = i / b * b, hi = std::min(d, lo + b);
                T *si = s + i * d;
                const T *pi = pd + i * d;
                std::fill(si, si + lo, T(0));
                for (py::ssize_t j = lo; j < hi; ++j) {
                    si[j] = pi[j];
                    poison += pi[j] * T(0);
                }
            }
            T tile[TILE][TILE];  // P[tj:tj1, ti:ti1], read row by row (a power-of-two pitch
                                 // makes direct column reads thrash the cache)
            for (py::ssize_t tj = (std::min(d, (ti / b + 1) * b) / TILE) * TILE; tj < d;
                 tj += TILE) {
                const py::ssize_t tj1 = std::min(d, tj + TILE);
                for (py::ssize_t j = tj; j < tj1; ++j)
                    for (py::ssize_t i = ti; i < ti1; ++i) tile[j - tj][i - ti] = pd[j * d + i];
                for (py::ssize_t i = ti; i < ti1; ++i) {
                    const py::ssize_t hi = std::min(d, (i / b + 1) * b);
                    T *si = s + i * d;
                    const T *pi = pd + i * d;
                    for (py::ssize_t j = std::max(tj, hi); j < tj1; ++j) {
                        si[j] = pi[j] + tile[j - tj][i - ti];
                        poison += si[j] * T(0);
                    }
                }
            }
        }
    }
    if (poison != T(0)) require_finite_matrix(fn, name, p);  // throws, naming the first entry
    return s_arr;
}

// out[i] += Σ_k a[i, k]·b[i, k] in double: the fused row dot after the plain GEMM.
template <typename T>
void row_dot_add(py::array_t<double, py::array::c_style> &out, const py::array &a_in,
                 const py::array &b_in) {
    const char *fn = "mahalanobis";
    require_ndim(fn, "row_dot_add a", a_in, 2);
    require_ndim(fn, "row_dot_add b", b_in, 2);
    require_layout<T>(fn, "row_dot_add a", a_in);
    require_layout<T>(fn, "row_dot_add b", b_in);
    if (out.ndim() != 1 || a_in.shape(0) != out.shape(0) || b_in.shape(0) != out.shape(0) ||
        a_in.shape(1) != b_in.shape(1))
        throw std::invalid_argument("mahalanobis: row_dot_add shapes do not match");
    const View2<T> a = view2<T>(a_in), b = view2<T>(b_in);
    double *o = out.mutable_data();
    const py::ssize_t n = a.rows, k = a.cols;
    const bool unit = a.s1 == 1 && b.s1 == 1;
    {
        // Raw pointers into arrays the caller keeps alive: safe without the GIL.
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static) if (n > 1 && n * k > PARALLEL_MIN)
        for (py::ssize_t i = 0; i < n; ++i) {
            double acc = 0;
            if (unit) {
                const T *ai = a.data + i * a.s0, *bi = b.data + i * b.s0;
#pragma omp simd reduction(+ : acc)
                for (py::ssize_t j = 0; j < k; ++j)
                    acc += static_cast<double>(ai[j]) * static_cast<double>(bi[j]);
            } else {
                for (py::ssize_t j = 0; j < k; ++j)
                    acc += static_cast<double>(a(i, j)) * static_cast<double>(b(i, j));
            }
            o[i] += acc;
        }
    }
}

// acc[i] = Σ_J Σ_k T_J[i, k]·y[i, j0(J) + k] in double, where t holds the column-block products
// T_J (N × width of block J, C-contiguous) one after another: the row dots of every block of the
// symmetrised GEMM in one parallel region (each region end is a barrier, and barriers are what a
// busy machine makes slow).
template <typename T> void block_row_dots(py::array_t<double, py::array::c_style> &acc,
                                          const py::array &t_in, const py::array &y_in,
                                          py::ssize_t b) {
    const char *fn = "mahalanobis";
    require_layout<T>(fn, "block_row_dots t", t_in);
    require_layout<T>(fn, "block_row_dots y", y_in);
    require_ndim(fn, "block_row_dots y", y_in, 2);
    const View2<T> y = view2<T>(y_in);
    const py::ssize_t n = y.rows, d = y.cols;
    if (b < 1 || acc.ndim() != 1 || acc.shape(0) != n || t_in.ndim() != 1 ||
        t_in.shape(0) != n * d ||
        (t_in.strides(0) != static_cast<py::ssize_t>(sizeof(T)) && n * d > 1) ||
        (y.s1 != 1 && d > 1))
        throw std::invalid_argument("mahalanobis: block_row_dots arguments do not match");
    const T *t = static_cast<const T *>(t_in.data());
    double *o = acc.mutable_data();
    {
        // Raw pointers into arrays the caller keeps alive: safe without the GIL.
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static) if (n > 1 && n * d > PARALLEL_MIN)
        for (py::ssize_t i = 0; i < n; ++i) {
            const T *yi = y.data + i * y.s0;
            double total = 0;
            for (py::ssize_t j0 = 0; j0 < d; j0 += b) {
                const py::ssize_t w = std::min(b, d - j0);
                const T *ti = t + n * j0 + i * w;  // block J starts after n·j0 elements
                double part = 0;
#pragma omp simd reduction(+ : part)
                for (py::ssize_t k = 0; k < w; ++k)
                    part += static_cast<double>(ti[k]) * static_cast<double>(yi[j0 + k]);
                total += part;
            }
            o[i] = total;
        }
    }
}

bool is_f32(const py::array &x) { return x.dtype().is(py::dtype::of<float>()); }
bool is_f64(const py::array &x) { return x.dtype().is(py::dtype::of<double>()); }

[[noreturn]] void throw_dtype(const py::array &x) {
    throw std::invalid_argument("mahalanobis: x must be float32 or float64, got " +
                                std::string(py::str(x.dtype())));
}

}  // namespace

void register_mahalanobis(py::module_ &m) {
    m.def(
        "mahalanobis",
        [](const py::array &x, const py::array &mean, const py::array &precision) -> py::array {
            if (is_f32(x)) return mahalanobis_direct<float>(x, mean, precision);
            if (is_f64(x)) return mahalanobis_direct<double>(x, mean, precision);
            throw_dtype(x);
        },
        py::arg("x"), py::arg("mean"), py::arg("precision"),
        "Squared Mahalanobis distance of each row of x (N, D): direct blocked OpenMP kernel.");
    m.def(
        "mahalanobis_centre",
        [](const py::array &x, const py::array &mean, py::array &out) {
            if (is_f32(x)) return centre<float>(x, mean, out);
            if (is_f64(x)) return centre<double>(x, mean, out);
            throw_dtype(x);
        },
        py::arg("x"), py::arg("mean"), py::arg("out"),
        "out = x - mean (out C-contiguous, shaped like x); rejects non-finite input.");
    m.def(
        "mahalanobis_sym_blocks",
        [](const py::array &precision, py::ssize_t block, const std::string &fn,
           const std::string &name) -> py::array {
            if (is_f32(precision)) return sym_blocks<float>(precision, block, fn, name);
            if (is_f64(precision)) return sym_blocks<double>(precision, block, fn, name);
            throw std::invalid_argument(fn + ": " + name + " must be float32 or float64, got " +
                                        std::string(py::str(precision.dtype())));
        },
        py::arg("precision"), py::arg("block"), py::arg("fn") = "mahalanobis",
        py::arg("name") = "precision",
        "Block-upper-triangular symmetrised precision for the GEMM path.");
    m.def(
        "mahalanobis_block_row_dots",
        [](py::array_t<double, py::array::c_style> &acc, const py::array &t, const py::array &y,
           py::ssize_t block) {
            if (is_f32(y)) return block_row_dots<float>(acc, t, y, block);
            if (is_f64(y)) return block_row_dots<double>(acc, t, y, block);
            throw_dtype(y);
        },
        py::arg("acc").noconvert(), py::arg("t"), py::arg("y"), py::arg("block"),
        "acc[i] = sum over column blocks J of T_J[i, :] . y[i, J], T_J stored one after another.");
    m.def(
        "mahalanobis_require_finite",
        [](const py::array &a, const std::string &fn, const std::string &name) {
            require_ndim(fn.c_str(), name.c_str(), a, 2);
            if (is_f32(a)) return require_finite_matrix(fn.c_str(), name.c_str(), view2<float>(a));
            if (is_f64(a))
                return require_finite_matrix(fn.c_str(), name.c_str(), view2<double>(a));
            throw std::invalid_argument(fn + ": " + name + " must be float32 or float64, got " +
                                        std::string(py::str(a.dtype())));
        },
        py::arg("a"), py::arg("fn"), py::arg("name"),
        "Raise ValueError naming the first non-finite entry of the 2-D array a.");
    m.def(
        "mahalanobis_row_dot_add",
        [](py::array_t<double, py::array::c_style> &out, const py::array &a, const py::array &b) {
            if (is_f32(a)) return row_dot_add<float>(out, a, b);
            if (is_f64(a)) return row_dot_add<double>(out, a, b);
            throw_dtype(a);
        },
        py::arg("out").noconvert(), py::arg("a"), py::arg("b"),
        "out[i] += sum_k a[i, k] * b[i, k], accumulated in float64.");
}
