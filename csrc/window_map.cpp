// Window map: the mean score of the windows covering each pixel, NaN where none does.
//
// Each clipped window adds +score/+1 at its top row and -score/-1 just below its bottom row, as a
// 1-D difference array over columns. Sweeping the rows top-down keeps that difference array; its
// prefix sum over x is the row's (sum, count). Only rows where a window starts or ends change, so
// those "key rows" are computed (O(W) each) and every other row is a copy of the key row above it:
// O(N log N + H*W) with almost all of the H*W being memcpy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

enum Kind : int8_t { kFinite = 0, kNaN = 1, kPosInf = 2, kNegInf = 3 };

struct Event {
    int64_t x0, x1;  // clipped column range [x0, x1)
    double dsum;     // +score or -score (scaled; 0 for a non-finite score)
    int32_t dcnt;    // +1 or -1
    Kind kind;
};

py::array_t<float> window_map(const py::array &boxes, const py::array &scores, int64_t height,
                              int64_t width) {
    if (boxes.ndim() != 2 || boxes.shape(1) != 4 ||
        !boxes.dtype().equal(py::dtype::of<int64_t>()) || !(boxes.flags() & py::array::c_style))
        throw std::invalid_argument(
            "window_map: boxes must be a C-contiguous int64 array of shape (N, 4)");
    if (scores.ndim() != 1 || !scores.dtype().equal(py::dtype::of<double>()) ||
        !(scores.flags() & py::array::c_style))
        throw std::invalid_argument("window_map: scores must be a contiguous float64 array (N,)");
    const int64_t n = boxes.shape(0);
    if (scores.shape(0) != n)
        throw std::invalid_argument("window_map: boxes has " + std::to_string(n) +
                                    " rows but scores has " + std::to_string(scores.shape(0)));
    if (height < 0 || width < 0)
        throw std::invalid_argument("window_map: height and width must be >= 0");
    if (n >= std::numeric_limits<int32_t>::max())
        throw std::invalid_argument("window_map: too many boxes for 32-bit coverage counts");
    const auto *b = static_cast<const int64_t *>(boxes.data());
    const auto *s = static_cast<const double *>(scores.data());
    for (int64_t k = 0; k < n; ++k)
        if (b[4 * k + 2] < b[4 * k] || b[4 * k + 3] < b[4 * k + 1])
            throw std::invalid_argument("window_map: boxes row " + std::to_string(k) +
                                        " has y1 < y0 or x1 < x0");

    py::array_t<float> out({height, width});
    float *dst = out.mutable_data();
    if (height == 0 || width == 0) return out;

    {
        // Safe without the GIL: only raw pointers into `boxes`, `scores` and `out` are used, all
        // kept alive by this frame's references, and no Python API is called.
        py::gil_scoped_release release;

        // Scale finite scores by a power of two (exact) so that sums of up to N of them can't
        // overflow, whatever their magnitude.
        double max_abs = 0.0;
        bool nonfinite = false;
        for (int64_t k = 0; k < n; ++k) {
            if (std::isfinite(s[k]))
                max_abs = std::max(max_abs, std::fabs(s[k]));
            else
                nonfinite = true;
        }
        int exponent = 0;
        if (max_abs > 0.0) std::frexp(max_abs, &exponent);

        // Bucket the events by row (counting sort); events on row `height` never matter.
        std::vector<int64_t> start(static_cast<size_t>(height) + 2, 0);
        std::vector<Event> events;
        events.reserve(static_cast<size_t>(2 * n));
        std::vector<int64_t> event_row;
        event_row.reserve(static_cast<size_t>(2 * n));
        for (int64_t k = 0; k < n; ++k) {
            const int64_t *r = b + 4 * k;
            const int64_t y0 = std::clamp<int64_t>(r[0], 0, height);
            const int64_t y1 = std::clamp<int64_t>(r[2], 0, height);
            const int64_t x0 = std::clamp<int64_t>(r[1], 0, width);
            const int64_t x1 = std::clamp<int64_t>(r[3], 0, width);
            if (y0 >= y1 || x0 >= x1) continue;  // covers no pixel of the map
            const double v = s[k];
            Kind kind = kFinite;
            if (std::isnan(v))
                kind = kNaN;
            else if (std::isinf(v))
                kind = v > 0 ? kPosInf : kNegInf;
            const double scaled = kind == kFinite ? std::ldexp(v, -exponent) : 0.0;
            events.push_back({x0, x1, scaled, 1, kind});
            event_row.push_back(y0);
            if (y1 < height) {
                events.push_back({x0, x1, -scaled, -1, kind});
                event_row.push_back(y1);
            }
        }
        for (const int64_t y : event_row) ++start[static_cast<size_t>(y) + 1];
        for (int64_t y = 0; y <= height; ++y)
            start[static_cast<size_t>(y) + 1] += start[static_cast<size_t>(y)];
        std::vector<Event> sorted(events.size());
        {
            std::vector<int64_t> fill(start.begin(), start.end() - 1);
            for (size_t e = 0; e < events.size(); ++e)
                sorted[static_cast<size_t>(fill[static_cast<size_t>(event_row[e])]++)] = events[e];
        }

        const size_t w1 = static_cast<size_t>(width) + 1;
        std::vector<double> dsum(w1, 0.0);
        std::vector<int32_t> dcnt(w1, 0);
        std::vector<int32_t> dnan, dpos, dneg;
        if (nonfinite) {
            dnan.assign(w1, 0);
            dpos.assign(w1, 0);
            dneg.assign(w1, 0);
        }
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const float inf = std::numeric_limits<float>::infinity();

        // source[y]: the key row whose values row y repeats.
        std::vector<int64_t> source(static_cast<size_t>(height));
        int64_t key = 0;
        for (int64_t y = 0; y < height; ++y) {
            const int64_t e0 = start[static_cast<size_t>(y)], e1 = start[static_cast<size_t>(y) + 1];
            if (y > 0 && e0 == e1) {
                source[static_cast<size_t>(y)] = key;
                continue;
            }
            key = y;
            source[static_cast<size_t>(y)] = y;
            for (int64_t e = e0; e < e1; ++e) {
                const Event &ev = sorted[static_cast<size_t>(e)];
                const auto a = static_cast<size_t>(ev.x0), z = static_cast<size_t>(ev.x1);
                dsum[a] += ev.dsum;
                dsum[z] -= ev.dsum;
                dcnt[a] += ev.dcnt;
                dcnt[z] -= ev.dcnt;
                if (ev.kind != kFinite) {
                    auto &d = ev.kind == kNaN ? dnan : ev.kind == kPosInf ? dpos : dneg;
                    d[a] += ev.dcnt;
                    d[z] -= ev.dcnt;
                }
            }
            float *row = dst + y * width;
            double sum = 0.0;
            int32_t cnt = 0, c_nan = 0, c_pos = 0, c_neg = 0;
            for (int64_t x = 0; x < width; ++x) {
                const auto ux = static_cast<size_t>(x);
                sum += dsum[ux];
                cnt += dcnt[ux];
                float value = cnt > 0 ? static_cast<float>(std::ldexp(sum / cnt, exponent)) : nan;
                if (nonfinite) {
                    c_nan += dnan[ux];
                    c_pos += dpos[ux];
                    c_neg += dneg[ux];
                    if (c_nan > 0 || (c_pos > 0 && c_neg > 0))
                        value = nan;
                    else if (c_pos > 0)
                        value = inf;
                    else if (c_neg > 0)
                        value = -inf;
                }
                row[x] = value;
            }
        }

        // No OpenMP: one memcpy per row is bound by memory bandwidth, and threads only added
        // stalls on a busy machine (benches/README.md).
        for (int64_t y = 0; y < height; ++y) {
            const int64_t from = source[static_cast<size_t>(y)];
            if (from != y)
                std::memcpy(dst + y * width, dst + from * width,
                            static_cast<size_t>(width) * sizeof(float));
        }
    }
    return out;
}

}  // namespace

void register_window_map(py::module_ &m) {
    m.def("window_map", &window_map, py::arg("boxes").noconvert(), py::arg("scores").noconvert(),
          py::arg("height"), py::arg("width"),
          "float32 (height, width) map of the mean score of the covering windows (NaN where "
          "none); boxes int64 (N, 4), scores float64 (N,). Use xadt.kernels.window_map.");
}
