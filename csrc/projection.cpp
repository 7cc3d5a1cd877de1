// Parcel projection: the path lengths of a view's shape traces, textured, magnified along rows
// where a fan beam asks for it, and added to the Compton, photoelectric and threat maps.
//
// Each trace (xadt.synth.shapes.Trace) is one row of a float64 record table: its pixel box, the
// formula and coefficients of its path length, its material coefficients and its texture. The
// path lengths go to a scratch buffer, computed with the float32 expressions, in the order, that
// Trace.lengths evaluates with numpy; textures and magnification follow xadt.synth.render's
// reference path. So the two paths agree to float32 rounding (to the bit except for square roots
// and the bilinear plate outline) without the numpy temporaries of each step.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// Trace kinds, numbered as xadt.synth.shapes numbers them.
enum Kind : int { kBox, kEllipsoid, kDisc, kSideOnCylinder, kCylinder, kPlate, kRaster, kKinds };

// Coefficients each kind reads (the rest of its 12 are ignored).
constexpr int kCoefficients = 12;
// Texture offsets beyond this could overflow the int64 pattern index with a large image.
constexpr int64_t kTextureLimit = int64_t{1} << 40;

// Columns of the record table, as xadt.synth.render writes them.
enum Field : int {
    fKind,
    fRow0,  // pixel box [row0, row1) x [col0, col1) inside the maps
    fRow1,
    fCol0,
    fCol1,
    fU,  // shape centre in view coordinates (float32 values), mm
    fV,
    fPitch,  // mm per pixel
    fCoef,
    fArray = fCoef + kCoefficients,  // index into `arrays` (plate outline or raster), else -1
    fCompton,                        // material coefficients (float32 values; < 0 for a cavity)
    fPhoto,
    fThreat,   // the threat map's coefficient; 0 for a part that is not a threat
    fTexture,  // texture kind (index into `bank`), -1 for none
    fAmplitude,
    fTextureRow,  // texture offsets, pattern pixels
    fTextureCol,
    fMagnification,  // fan-beam row magnification about the central row; 0 for none
    kFields
};

struct Array {
    const float *data = nullptr;
    int64_t rows = 0, cols = 0;
};

struct Trace {
    int kind;
    int64_t r0, r1, c0, c1;
    const double *f;
    Array array;
};

std::string where(int64_t k) { return "project_traces: record " + std::to_string(k) + ": "; }

int64_t whole(const double *f, int field, int64_t k, const char *name) {
    const double x = f[field];
    if (!std::isfinite(x) || x != std::floor(x) || std::fabs(x) > 9.0e15)
        throw std::invalid_argument(where(k) + name + " must be a whole number, got " +
                                    std::to_string(x));
    return static_cast<int64_t>(x);
}

void require_map(const py::array &a, const char *name) {
    if (a.ndim() != 2 || !a.dtype().equal(py::dtype::of<float>()) ||
        !(a.flags() & py::array::c_style) || !a.writeable())
        throw std::invalid_argument(std::string("project_traces: ") + name +
                                    " must be a writeable C-contiguous float32 2-D array");
}

// Pixel centres minus the shape's centre along one axis, as numpy computes them in float32.
std::vector<float> offsets(int64_t start, int64_t stop, double centre, double pitch) {
    std::vector<float> out(static_cast<size_t>(stop - start));
    const auto p = static_cast<float>(pitch), c = static_cast<float>(centre);
    for (int64_t i = start; i < stop; ++i)
        out[static_cast<size_t>(i - start)] = static_cast<float>(i) * p - c;
    return out;
}

// b·dv for every column: the row-independent half of a linear form a·du + b·dv.
std::vector<float> scaled(const std::vector<float> &dv, double b) {
    std::vector<float> out(dv.size());
    const auto fb = static_cast<float>(b);
    for (size_t j = 0; j < dv.size(); ++j) out[j] = fb * dv[j];
    return out;
}

// The zero-padded bilinear sample of an outline at (y, x), as scipy's order-1 "grid-constant".
double bilinear(const Array &a, double y, double x) {
    const double fy = std::floor(y), fx = std::floor(x);
    const double wy = y - fy, wx = x - fx;
    const auto iy = static_cast<int64_t>(fy), ix = static_cast<int64_t>(fx);
    double sum = 0.0;
    for (int64_t dy = 0; dy < 2; ++dy) {
        const int64_t yy = iy + dy;
        if (yy < 0 || yy >= a.rows) continue;
        const double wr = dy ? wy : 1.0 - wy;
        for (int64_t dx = 0; dx < 2; ++dx) {
            const int64_t xx = ix + dx;
            if (xx < 0 || xx >= a.cols) continue;
            sum += wr * (dx ? wx : 1.0 - wx) * static_cast<double>(a.data[yy * a.cols + xx]);
        }
    }
    return sum;
}

// Path lengths (mm) of one trace at each pixel of its box, into `len` (row-major h x w).
void lengths(const Trace &t, float *len) {
    const int64_t h = t.r1 - t.r0, w = t.c1 - t.c0;
    const double *c = t.f + fCoef;
    if (t.kind == kRaster) {
        std::memcpy(len, t.array.data, static_cast<size_t>(h * w) * sizeof(float));
        return;
    }
    if (t.kind == kPlate) {
        // Output pixel (i, j) samples the outline at matrix @ (i, j) + offset.
        const auto depth = static_cast<float>(c[6]);
        for (int64_t i = 0; i < h; ++i)
            for (int64_t j = 0; j < w; ++j) {
                const auto di = static_cast<double>(i), dj = static_cast<double>(j);
                const double y = c[0] * di + c[1] * dj + c[4], x = c[2] * di + c[3] * dj + c[5];
                len[i * w + j] = static_cast<float>(bilinear(t.array, y, x)) * depth;
            }
        return;
    }
    const std::vector<float> du = offsets(t.r0, t.r1, t.f[fU], t.f[fPitch]);
    const std::vector<float> dv = offsets(t.c0, t.c1, t.f[fV], t.f[fPitch]);
    const auto f = [c](int k) { return static_cast<float>(c[k]); };
    switch (t.kind) {
    case kBox: {
        // Per axis, a pair of faces parallel to the rays bounds the footprint (|a·du + b·dv| <= h)
        // and any other pair the depth: the ray enters at mid - h and leaves at mid + h.
        std::vector<float> bv[3], near(static_cast<size_t>(w)), far(static_cast<size_t>(w));
        for (int k = 0; k < 3; ++k) bv[k] = scaled(dv, c[4 * k + 1]);
        for (int64_t i = 0; i < h; ++i) {
            float *row = len + i * w;
            bool deep = false;
            for (int k = 0; k < 3; ++k) {
                if (c[4 * k + 3] != 0.0) continue;
                const float base = f(4 * k) * du[static_cast<size_t>(i)], hk = f(4 * k + 2);
                const float *b = bv[k].data();
                for (int64_t j = 0; j < w; ++j) {
                    const float mid = base + b[j];
                    const auto uj = static_cast<size_t>(j);
                    near[uj] = deep ? std::max(near[uj], mid - hk) : mid - hk;
                    far[uj] = deep ? std::min(far[uj], mid + hk) : mid + hk;
                }
                deep = true;
            }
            for (int64_t j = 0; j < w; ++j) {
                const auto uj = static_cast<size_t>(j);
                row[j] = deep ? std::max(far[uj] - near[uj], 0.0f) : 0.0f;
            }
            for (int k = 0; k < 3; ++k) {
                if (c[4 * k + 3] == 0.0) continue;
                const float base = f(4 * k) * du[static_cast<size_t>(i)];
                const float *b = bv[k].data();
                for (int64_t j = 0; j < w; ++j)
                    if (!(static_cast<double>(std::fabs(base + b[j])) <= c[4 * k + 2]))
                        row[j] = 0.0f;
            }
        }
        return;
    }
    case kEllipsoid: {
        // sqrt(max(ee - (qa·du² + qb·dv² + qab·du·dv), 0)) · scale
        const float qa = f(0), qb = f(1), qab = f(2), ee = f(3), scale = f(4);
        for (int64_t i = 0; i < h; ++i) {
            const float u = du[static_cast<size_t>(i)], a = qa * (u * u);
            float *row = len + i * w;
            for (int64_t j = 0; j < w; ++j) {
                const float v = dv[static_cast<size_t>(j)];
                const float q = a + qb * (v * v) + qab * (u * v);
                row[j] = std::sqrt(std::max(ee - q, 0.0f)) * scale;
            }
        }
        return;
    }
    case kDisc: {
        // depth where x² + y² <= 1, x and y linear forms
        const std::vector<float> bx = scaled(dv, c[1]), by = scaled(dv, c[3]);
        const float depth = f(4);
        for (int64_t i = 0; i < h; ++i) {
            const float ax = f(0) * du[static_cast<size_t>(i)];
            const float ay = f(2) * du[static_cast<size_t>(i)];
            float *row = len + i * w;
            for (int64_t j = 0; j < w; ++j) {
                const float x = ax + bx[static_cast<size_t>(j)], y = ay + by[static_cast<size_t>(j)];
                row[j] = x * x + y * y <= 1.0f ? depth : 0.0f;
            }
        }
        return;
    }
    case kSideOnCylinder:
    case kCylinder: {
        // The circle's chord: t in tc ± delta, delta = sqrt(max(ee - cross², 0)) / ee. Side-on,
        // the caps cut it where |z| > h; otherwise at t in mz ± hz.
        const bool side = t.kind == kSideOnCylinder;
        const std::vector<float> bk = scaled(dv, c[1]);
        const std::vector<float> b3 = scaled(dv, c[4]), b5 = scaled(dv, c[6]);
        const float ee = f(2), inv = static_cast<float>(1.0 / c[2]), hz = f(7);
        for (int64_t i = 0; i < h; ++i) {
            const float u = du[static_cast<size_t>(i)];
            const float ak = f(0) * u, a3 = f(3) * u, a5 = f(5) * u;
            float *row = len + i * w;
            for (int64_t j = 0; j < w; ++j) {
                const auto uj = static_cast<size_t>(j);
                const float cross = ak + bk[uj];
                const float delta = std::sqrt(std::max(ee - cross * cross, 0.0f)) * inv;
                if (side) {
                    const bool inside = static_cast<double>(std::fabs(a3 + b3[uj])) <= c[5];
                    row[j] = inside ? 2.0f * delta : 0.0f;
                } else {
                    const float tc = a3 + b3[uj], mz = a5 + b5[uj];
                    const float l = std::min(tc + delta, mz + hz) - std::max(tc - delta, mz - hz);
                    row[j] = std::max(l, 0.0f);
                }
            }
        }
        return;
    }
    default:
        return;  // the kinds were checked before the loop
    }
}

// len *= max(1 + amplitude · pattern, 0.05), the pattern tiled every `side` pixels and stepped
// by the pitch: pixel (r, c) reads bank[(row + r·pitch) mod side, (col + c·pitch) mod side].
void texture(const Trace &t, const float *bank, int64_t side, float *len) {
    const int64_t h = t.r1 - t.r0, w = t.c1 - t.c0;
    const double pitch = t.f[fPitch];
    const float *pattern = bank + static_cast<int64_t>(t.f[fTexture]) * side * side;
    const auto amplitude = static_cast<float>(t.f[fAmplitude]);
    const auto wrap = [side](double x) {
        const int64_t i = static_cast<int64_t>(x) % side;  // truncated, as numpy's astype
        return i < 0 ? i + side : i;
    };
    std::vector<int64_t> cols(static_cast<size_t>(w));
    for (int64_t j = 0; j < w; ++j)
        cols[static_cast<size_t>(j)] =
            wrap(t.f[fTextureCol] + static_cast<double>(t.c0 + j) * pitch);
    for (int64_t i = 0; i < h; ++i) {
        const float *src = pattern + wrap(t.f[fTextureRow] + static_cast<double>(t.r0 + i) * pitch) * side;
        float *row = len + i * w;
        for (int64_t j = 0; j < w; ++j) {
            float factor = src[cols[static_cast<size_t>(j)]] * amplitude;
            factor += 1.0f;
            row[j] *= std::max(factor, 0.05f);
        }
    }
}

// maps[r, c] += coefficient · len over the trace's box, or over the rows its fan-beam image
// covers, each the linear interpolation of the two rows it magnifies.
void accumulate(const Trace &t, const float *len, float *const maps[3], int64_t height,
                int64_t width, std::vector<float> &stretched) {
    const int64_t n = t.r1 - t.r0, w = t.c1 - t.c0;
    const float coefficient[3] = {static_cast<float>(t.f[fCompton]), static_cast<float>(t.f[fPhoto]),
                                  static_cast<float>(t.f[fThreat])};
    const int n_maps = coefficient[2] != 0.0f ? 3 : 2;
    int64_t r0 = t.r0, r1 = t.r1;
    const double m = t.f[fMagnification];
    if (m > 0.0) {
        const double centre = static_cast<double>(height - 1) / 2;
        r0 = std::max(static_cast<int64_t>(std::floor(centre + (static_cast<double>(t.r0) - centre) * m)),
                      int64_t{0});
        r1 = std::min(static_cast<int64_t>(std::ceil(centre + (static_cast<double>(t.r1 - 1) - centre) * m)) + 1,
                      height);
        if (r1 <= r0) return;
        stretched.assign(static_cast<size_t>((r1 - r0) * w), 0.0f);
        for (int64_t r = r0; r < r1; ++r) {
            const double src = centre + (static_cast<double>(r) - centre) / m - static_cast<double>(t.r0);
            const double lo = std::floor(src);
            const auto wt = static_cast<float>(src - lo), keep = 1.0f - wt;
            const auto a = static_cast<int64_t>(lo), b = a + 1;
            float *out = stretched.data() + (r - r0) * w;
            for (int64_t j = 0; j < w; ++j) {
                const float va = a >= 0 && a < n ? len[a * w + j] : 0.0f;
                const float vb = b >= 0 && b < n ? len[b * w + j] : 0.0f;
                out[j] = va * keep + vb * wt;
            }
        }
        len = stretched.data();
    }
    for (int k = 0; k < n_maps; ++k)
        for (int64_t r = r0; r < r1; ++r) {
            float *dst = maps[k] + r * width + t.c0;
            const float *src = len + (r - r0) * w;
            for (int64_t j = 0; j < w; ++j) dst[j] += coefficient[k] * src[j];
        }
}

void project_traces(py::array compton, py::array photo, py::array threat,
                    const py::array &records, const py::list &arrays, const py::array &bank) {
    require_map(compton, "compton");
    require_map(photo, "photo");
    require_map(threat, "threat");
    const int64_t height = compton.shape(0), width = compton.shape(1);
    if (photo.shape(0) != height || photo.shape(1) != width || threat.shape(0) != height ||
        threat.shape(1) != width)
        throw std::invalid_argument("project_traces: compton, photo and threat differ in shape");
    if (records.ndim() != 2 || records.shape(1) != kFields ||
        !records.dtype().equal(py::dtype::of<double>()) || !(records.flags() & py::array::c_style))
        throw std::invalid_argument("project_traces: records must be a C-contiguous float64 array "
                                    "of shape (N, " + std::to_string(kFields) + ")");
    if (bank.ndim() != 3 || bank.shape(1) != bank.shape(2) || bank.shape(1) == 0 ||
        !bank.dtype().equal(py::dtype::of<float>()) || !(bank.flags() & py::array::c_style))
        throw std::invalid_argument(
            "project_traces: bank must be a C-contiguous float32 array of shape (K, S, S)");
    std::vector<Array> given;
    for (const py::handle item : arrays) {
        const bool ok = py::isinstance<py::array>(item);
        const auto a = ok ? py::reinterpret_borrow<py::array>(item) : py::array();
        if (!ok || a.ndim() != 2 || !a.dtype().equal(py::dtype::of<float>()) ||
            !(a.flags() & py::array::c_style))
            throw std::invalid_argument(
                "project_traces: arrays must hold C-contiguous float32 2-D arrays");
        given.push_back({static_cast<const float *>(a.data()), a.shape(0), a.shape(1)});
    }

    // Every record is checked before any map is touched.
    const int64_t n = records.shape(0);
    const auto *table = static_cast<const double *>(records.data());
    std::vector<Trace> traces;
    traces.reserve(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
        const double *f = table + k * kFields;
        Trace t{static_cast<int>(whole(f, fKind, k, "kind")), whole(f, fRow0, k, "row0"),
                whole(f, fRow1, k, "row1"), whole(f, fCol0, k, "col0"), whole(f, fCol1, k, "col1"),
                f, {}};
        if (t.kind < 0 || t.kind >= kKinds)
            throw std::invalid_argument(where(k) + "unknown kind " + std::to_string(t.kind));
        if (t.r0 < 0 || t.r1 <= t.r0 || t.r1 > height || t.c0 < 0 || t.c1 <= t.c0 || t.c1 > width)
            throw std::invalid_argument(where(k) + "pixel box outside the maps or empty");
        for (int field = fU; field <= fMagnification; ++field)
            if (!std::isfinite(f[field]))
                throw std::invalid_argument(where(k) + "field " + std::to_string(field) +
                                            " is not finite");
        if (t.kind == kPlate || t.kind == kRaster) {
            const int64_t index = whole(f, fArray, k, "array index");
            if (index < 0 || index >= static_cast<int64_t>(given.size()))
                throw std::invalid_argument(where(k) + "array index out of range");
            t.array = given[static_cast<size_t>(index)];
            if (t.kind == kRaster && (t.array.rows != t.r1 - t.r0 || t.array.cols != t.c1 - t.c0))
                throw std::invalid_argument(where(k) + "raster shape differs from its pixel box");
        }
        const int64_t kind = whole(f, fTexture, k, "texture kind");
        if (kind < -1 || kind >= bank.shape(0))
            throw std::invalid_argument(where(k) + "texture kind out of range");
        if (kind >= 0 && (whole(f, fTextureRow, k, "texture row") < -kTextureLimit ||
                          whole(f, fTextureCol, k, "texture column") < -kTextureLimit ||
                          f[fTextureRow] > kTextureLimit || f[fTextureCol] > kTextureLimit))
            throw std::invalid_argument(where(k) + "texture offsets beyond +-2**40");
        if (f[fMagnification] < 0.0)
            throw std::invalid_argument(where(k) + "magnification must be >= 0");
        traces.push_back(t);
    }

    float *const maps[3] = {static_cast<float *>(compton.mutable_data()),
                            static_cast<float *>(photo.mutable_data()),
                            static_cast<float *>(threat.mutable_data())};
    const auto *patterns = static_cast<const float *>(bank.data());
    const int64_t side = bank.shape(1);
    {
        // Safe without the GIL: only raw pointers into arrays this frame keeps referenced.
        py::gil_scoped_release release;
        std::vector<float> len, stretched;
        for (const Trace &t : traces) {
            len.resize(static_cast<size_t>((t.r1 - t.r0) * (t.c1 - t.c0)));
            lengths(t, len.data());
            if (t.f[fTexture] >= 0.0) texture(t, patterns, side, len.data());
            accumulate(t, len.data(), maps, height, width, stretched);
        }
    }
}

}  // namespace

void register_projection(py::module_ &m) {
    m.def("project_traces", &project_traces, py::arg("compton").noconvert(),
          py::arg("photo").noconvert(), py::arg("threat").noconvert(),
          py::arg("records").noconvert(), py::arg("arrays"), py::arg("bank").noconvert(),
          "Add the path lengths of shape traces (float64 records (N, 29)), textured from bank "
          "float32 (K, S, S), times their material coefficients to the float32 maps in place. "
          "Use xadt.synth.render.project.");
}
