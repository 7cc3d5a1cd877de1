// Patch extraction: square windows of an (H, W, C) view -> normalised float32 (N, C, size, size).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace py = pybind11;

namespace {

// Box coordinates beyond this bound are refused, so that y1 - y0, y0 + i, H - y0 and -x0 never
// overflow.
constexpr int64_t kCoordLimit = int64_t{1} << 61;

struct ViewInfo {
    const char *base;
    int64_t height, width, channels;
    int64_t sy, sx, sc;  // strides in bytes; any sign (numpy allows negative steps)
};

struct Norm {
    std::vector<double> mul;  // per channel: 1 / (scale * std)
    std::vector<double> add;  // per channel: -mean / std
    std::vector<float> pad;   // per channel: the normalised pad value
};

template <typename T>
T load(const char *p) {
    T v;
    std::memcpy(&v, p, sizeof(T));  // numpy views may be unaligned; memcpy is a plain load on x86
    return v;
}

// One output row (box n, channel c, window row i) from a source row; `conv` maps a raw T to float.
template <typename T, typename Conv>
void copy_row(const char *src_row, int64_t sx, int64_t x0, int64_t width, int64_t size, float pad,
              Conv conv, float *dst) {
    const int64_t jlo = std::clamp<int64_t>(-x0, 0, size);
    const int64_t jhi = std::clamp<int64_t>(width - x0, jlo, size);
    std::fill(dst, dst + jlo, pad);
    if (jlo < jhi) {  // only then is x0 + jlo a column of the view (no wild pointer is formed)
        const char *p = src_row + (x0 + jlo) * sx;
        for (int64_t j = jlo; j < jhi; ++j, p += sx) dst[j] = conv(load<T>(p));
    }
    std::fill(dst + jhi, dst + size, pad);
}

template <typename T>
void extract_impl(const ViewInfo &v, const int64_t *boxes, int64_t n_boxes, int64_t size,
                  const Norm &norm, float *out) {
    const int64_t C = v.channels;
    const int64_t plane = size * size;
    // uint8: a 256-entry table per channel, each entry computed in double and rounded once.
    std::vector<float> lut;
    if constexpr (std::is_same_v<T, uint8_t>) {
        lut.resize(static_cast<size_t>(256 * C));
        for (int64_t c = 0; c < C; ++c)
            for (int k = 0; k < 256; ++k)
                lut[static_cast<size_t>(c * 256 + k)] =
                    static_cast<float>(static_cast<double>(k) * norm.mul[c] + norm.add[c]);
    }
    // Serial on purpose: with OpenMP the 36-window bench took 16 ms against 2.6 ms serial on a
    // busy 2-core machine (benches/README.md), and beside torch's own thread pool every
    // machine is busy. Callers parallelise across views instead: the GIL is released.
    const int64_t rows = n_boxes * size;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t n = r / size, i = r % size;
        const int64_t y = boxes[4 * n] + i, x0 = boxes[4 * n + 1];
        for (int64_t c = 0; c < C; ++c) {
            float *dst = out + (n * C + c) * plane + i * size;
            const float pad = norm.pad[static_cast<size_t>(c)];
            if (y < 0 || y >= v.height) {
                std::fill(dst, dst + size, pad);
                continue;
            }
            const char *src_row = v.base + y * v.sy + c * v.sc;
            if constexpr (std::is_same_v<T, uint8_t>) {
                const float *table = lut.data() + c * 256;
                copy_row<T>(
                    src_row, v.sx, x0, v.width, size, pad,
                    [table](T raw) { return table[raw]; }, dst);
            } else {
                const double mul = norm.mul[c], add = norm.add[c];
                copy_row<T>(
                    src_row, v.sx, x0, v.width, size, pad,
                    [mul, add](T raw) {
                        // double, not std::fma: without -mfma that is a libm call per pixel
                        return static_cast<float>(static_cast<double>(raw) * mul + add);
                    },
                    dst);
            }
        }
    }
}

std::vector<double> per_channel(const py::array &arr, int64_t channels, const char *name) {
    if (arr.ndim() != 1 || arr.shape(0) != channels || !arr.dtype().equal(py::dtype::of<double>()))
        throw std::invalid_argument(std::string("extract_patches: ") + name +
                                    " must be a float64 array of length " +
                                    std::to_string(channels) + " (one per channel of view)");
    auto a = py::array_t<double, py::array::forcecast>::ensure(arr);
    std::vector<double> v(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) v[static_cast<size_t>(c)] = a.at(c);
    return v;
}

py::array_t<float> extract_patches(const py::array &view, const py::array &boxes, int64_t size,
                                   const py::array &mean, const py::array &std_,
                                   double pad_value) {
    if (view.ndim() != 3)
        throw std::invalid_argument("extract_patches: view must be a 3-D array (H, W, C), got " +
                                    std::to_string(view.ndim()) + "-D");
    if (size <= 0)
        throw std::invalid_argument("extract_patches: size must be > 0, got " +
                                    std::to_string(size));
    if (boxes.ndim() != 2 || boxes.shape(1) != 4 || !boxes.dtype().equal(py::dtype::of<int64_t>()) ||
        !(boxes.flags() & py::array::c_style))
        throw std::invalid_argument(
            "extract_patches: boxes must be a C-contiguous int64 array of shape (N, 4)");
    enum class Pixel { u8, u16, f32 };
    const auto dt = view.dtype();
    Pixel pixel;
    double scale;
    if (dt.equal(py::dtype::of<uint8_t>())) {
        pixel = Pixel::u8;
        scale = 255.0;
    } else if (dt.equal(py::dtype::of<uint16_t>())) {
        pixel = Pixel::u16;
        scale = 65535.0;
    } else if (dt.equal(py::dtype::of<float>())) {
        pixel = Pixel::f32;
        scale = 1.0;
    } else {
        throw std::invalid_argument(
            "extract_patches: view must have dtype uint8, uint16 or float32, got " +
            std::string(py::str(dt)));
    }

    ViewInfo v{static_cast<const char *>(view.data()),
               static_cast<int64_t>(view.shape(0)),
               static_cast<int64_t>(view.shape(1)),
               static_cast<int64_t>(view.shape(2)),
               static_cast<int64_t>(view.strides(0)),
               static_cast<int64_t>(view.strides(1)),
               static_cast<int64_t>(view.strides(2))};
    const int64_t C = v.channels;
    const auto mean_v = per_channel(mean, C, "mean");
    const auto std_v = per_channel(std_, C, "std");
    Norm norm;
    for (int64_t c = 0; c < C; ++c) {
        const double m = mean_v[static_cast<size_t>(c)], s = std_v[static_cast<size_t>(c)];
        if (!(s > 0.0) || !std::isfinite(s) || !std::isfinite(m))
            throw std::invalid_argument(
                "extract_patches: std must be finite and > 0 and mean finite, per channel");
        norm.mul.push_back(1.0 / (scale * s));
        norm.add.push_back(-m / s);
        norm.pad.push_back(static_cast<float>((pad_value / scale - m) / s));
    }

    const int64_t n_boxes = boxes.shape(0);
    const auto *b = static_cast<const int64_t *>(boxes.data());
    for (int64_t n = 0; n < n_boxes; ++n) {
        const int64_t *r = b + 4 * n;
        for (int k = 0; k < 4; ++k)
            if (r[k] < -kCoordLimit || r[k] > kCoordLimit)
                throw std::invalid_argument("extract_patches: boxes row " + std::to_string(n) +
                                            " has a coordinate beyond +-2**61");
        if (r[2] - r[0] != size || r[3] - r[1] != size)
            throw std::invalid_argument("extract_patches: boxes row " + std::to_string(n) +
                                        " is not " + std::to_string(size) + "x" +
                                        std::to_string(size));
    }

    py::array_t<float> out({n_boxes, C, size, size});
    float *dst = out.mutable_data();
    {
        // Safe without the GIL: only raw pointers into `view`, `boxes` and `out` are used, all kept
        // alive by this frame's references, and no Python API is called.
        py::gil_scoped_release release;
        switch (pixel) {
            case Pixel::u8: extract_impl<uint8_t>(v, b, n_boxes, size, norm, dst); break;
            case Pixel::u16: extract_impl<uint16_t>(v, b, n_boxes, size, norm, dst); break;
            case Pixel::f32: extract_impl<float>(v, b, n_boxes, size, norm, dst); break;
        }
    }
    return out;
}

}  // namespace

void register_patches(py::module_ &m) {
    m.def("extract_patches", &extract_patches, py::arg("view").noconvert(),
          py::arg("boxes").noconvert(), py::arg("size"), py::arg("mean").noconvert(),
          py::arg("std").noconvert(), py::arg("pad_value"),
          "Normalised float32 (N, C, size, size) patches of an (H, W, C) uint8/uint16/float32 "
          "view; boxes int64 (N, 4); mean/std float64 (C,). Use xadt.kernels.extract_patches.");
}
