// Detector steps of the parcel simulator (xadt.synth.render), each in one pass with the float32
// operations of its numpy path, in their order, so that both give the same bits:
// - add_veil: the scatter veil, filtered on a grid subsampled every `step` pixels, interpolated
//   linearly back to full size (columns, then rows) and added to the transmission, capped at 1;
// - photon_noise: counts = t * photons, plus normal noise of SD sqrt(counts) read from a quantile
//   table at 16 random bits per pixel, back to transmission and clipped to [0.5 / photons, 1];
//   the few pixels under 30 counts, which get exact Poisson draws from the caller's generator,
//   are only flagged here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

constexpr float kFewCounts = 30.0f;  // below this the normal approximation is not used

// Where output pixel i reads the subsampled grid: samples lo and hi, weight w of hi, as numpy's
// linear interpolation weights (float64 positions, float32 weights).
struct Taps {
    std::vector<int64_t> lo, hi;
    std::vector<float> w;
};

Taps taps(int64_t n, int64_t m, int64_t step) {
    Taps t{std::vector<int64_t>(static_cast<size_t>(n)), std::vector<int64_t>(static_cast<size_t>(n)),
           std::vector<float>(static_cast<size_t>(n))};
    const auto last = static_cast<double>(m - 1);
    for (int64_t i = 0; i < n; ++i) {
        const double pos = std::min(static_cast<double>(i) / static_cast<double>(step), last);
        const int64_t lo = std::min(static_cast<int64_t>(pos), m - 1);
        t.lo[static_cast<size_t>(i)] = lo;
        t.hi[static_cast<size_t>(i)] = std::min(lo + 1, m - 1);
        t.w[static_cast<size_t>(i)] = static_cast<float>(pos - static_cast<double>(lo));
    }
    return t;
}

py::array_t<float> add_veil(const py::array &t, const py::array &veil, int64_t step) {
    if (!xadt::is_c_array<float>(t, 2))
        throw std::invalid_argument("add_veil: t must be a C-contiguous float32 2-D array");
    if (!xadt::is_c_array<float>(veil, 2))
        throw std::invalid_argument("add_veil: veil must be a C-contiguous float32 2-D array");
    const int64_t height = t.shape(0), width = t.shape(1), rows = veil.shape(0),
                  cols = veil.shape(1);
    if (step < 1 || rows != (height + step - 1) / step || cols != (width + step - 1) / step)
        throw std::invalid_argument("add_veil: veil must be t subsampled every step >= 1 pixels");
    py::array_t<float> out({height, width});
    const auto *src = static_cast<const float *>(t.data());
    const auto *v = static_cast<const float *>(veil.data());
    float *dst = out.mutable_data();
    {
        // Safe without the GIL: only raw pointers into arrays this frame keeps referenced.
        py::gil_scoped_release release;
        const Taps across = taps(width, cols, step), down = taps(height, rows, step);
        std::vector<float> wide(static_cast<size_t>(rows * width));  // columns interpolated
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < width; ++j) {
                const auto uj = static_cast<size_t>(j);
                const float w = across.w[uj];
                wide[static_cast<size_t>(r * width + j)] =
                    v[r * cols + across.lo[uj]] * (1.0f - w) + v[r * cols + across.hi[uj]] * w;
            }
        for (int64_t i = 0; i < height; ++i) {
            const auto ui = static_cast<size_t>(i);
            const float w = down.w[ui], keep = 1.0f - w;
            const float *a = wide.data() + down.lo[ui] * width;
            const float *b = wide.data() + down.hi[ui] * width;
            for (int64_t j = 0; j < width; ++j) {
                const float value = (a[j] * keep + b[j] * w) + src[i * width + j];
                dst[i * width + j] = std::min(value, 1.0f);
            }
        }
    }
    return out;
}

py::tuple photon_noise(const py::array &t, double photons, const py::array &bits,
                       const py::array &quantiles) {
    if (!xadt::is_c_array<float>(t, 2))
        throw std::invalid_argument("photon_noise: t must be a C-contiguous float32 2-D array");
    if (!xadt::is_c_array<uint16_t>(bits, 1) || bits.shape(0) != t.size())
        throw std::invalid_argument("photon_noise: bits must be a contiguous uint16 array of " +
                                    std::to_string(t.size()) + " values (one per pixel)");
    if (!xadt::is_c_array<float>(quantiles, 1) || quantiles.shape(0) != 65536)
        throw std::invalid_argument(
            "photon_noise: quantiles must be a contiguous float32 array of 65536 values");
    if (!(photons > 0.0) || !std::isfinite(photons))
        throw std::invalid_argument("photon_noise: photons must be finite and > 0");

    py::array_t<float> out({t.shape(0), t.shape(1)});
    const auto *src = static_cast<const float *>(t.data());
    const auto *draw = static_cast<const uint16_t *>(bits.data());
    const auto *table = static_cast<const float *>(quantiles.data());
    float *dst = out.mutable_data();
    const py::ssize_t n = t.size();
    const auto scale = static_cast<float>(photons), inv = static_cast<float>(1.0 / photons);
    const auto low = static_cast<float>(0.5 / photons);
    bool few = false;
    {
        // Safe without the GIL: only raw pointers into arrays this frame keeps referenced.
        py::gil_scoped_release release;
        for (py::ssize_t k = 0; k < n; ++k) {
            const float counts = src[k] * scale;
            const float noise = table[draw[k]] * std::sqrt(counts);
            dst[k] = std::min(std::max((counts + noise) * inv, low), 1.0f);
            few = few || counts < kFewCounts;
        }
    }
    return py::make_tuple(out, few);
}

}  // namespace

void register_exposure(py::module_ &m) {
    m.def("add_veil", &add_veil, py::arg("t").noconvert(), py::arg("veil").noconvert(),
          py::arg("step"),
          "min(t + veil interpolated linearly to t's size, 1), float32; veil sampled every step "
          "pixels of t. Use xadt.synth.render.scatter_veil.");
    m.def("photon_noise", &photon_noise, py::arg("t").noconvert(), py::arg("photons"),
          py::arg("bits").noconvert(), py::arg("quantiles").noconvert(),
          "(noisy float32 transmission, whether any pixel has < 30 counts) of float32 t with "
          "photons per air pixel, normal noise from uint16 bits indexing 65536 quantiles. Use "
          "xadt.synth.render.expose.");
}
