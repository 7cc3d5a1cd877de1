// Photon noise of a detector exposure in one pass: counts = t * photons, plus normal noise of SD
// sqrt(counts) read from a quantile table at 16 random bits per pixel, back to transmission and
// clipped to [0.5 / photons, 1]. The float32 operations are those of xadt.synth.render.expose's
// numpy path, in its order, so both give the same bits; the few pixels under 30 counts, which
// get exact Poisson draws from the caller's generator, are only flagged here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace {

constexpr float kFewCounts = 30.0f;  // below this the normal approximation is not used

py::tuple photon_noise(const py::array &t, double photons, const py::array &bits,
                       const py::array &quantiles) {
    if (t.ndim() != 2 || !t.dtype().equal(py::dtype::of<float>()) ||
        !(t.flags() & py::array::c_style))
        throw std::invalid_argument("photon_noise: t must be a C-contiguous float32 2-D array");
    if (bits.ndim() != 1 || !bits.dtype().equal(py::dtype::of<uint16_t>()) ||
        !(bits.flags() & py::array::c_style) || bits.shape(0) != t.size())
        throw std::invalid_argument("photon_noise: bits must be a contiguous uint16 array of " +
                                    std::to_string(t.size()) + " values (one per pixel)");
    if (quantiles.ndim() != 1 || !quantiles.dtype().equal(py::dtype::of<float>()) ||
        !(quantiles.flags() & py::array::c_style) || quantiles.shape(0) != 65536)
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
    m.def("photon_noise", &photon_noise, py::arg("t").noconvert(), py::arg("photons"),
          py::arg("bits").noconvert(), py::arg("quantiles").noconvert(),
          "(noisy float32 transmission, whether any pixel has < 30 counts) of float32 t with "
          "photons per air pixel, normal noise from uint16 bits indexing 65536 quantiles. Use "
          "xadt.synth.render.expose.");
}
