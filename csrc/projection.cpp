// Parcel projection: the path lengths of a view's shape traces, textured, magnified along rows
// where a fan beam asks for it, and added to the Compton, photoelectric and threat maps.
//
// Each trace (xadt.synth.shapes.Trace) is one row of a float64 record table: its pixel box, the
// formula and coefficients of its path length, its material coefficients and its texture. Path
// lengths are computed a row at a time with the expressions, in the order, that the numpy
// reference evaluates (Trace.lengths, float32 where it is float32, float64 where it is float64),
// textured and added to the maps while the row is in cache. So the two paths agree to float32
// rounding (to the bit except for bilinear outline samples and the edge-on profile's sums)
// without the numpy temporaries of each step. A fan beam's rows are stretched from a full
// scratch copy of the trace instead.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

// Trace kinds, numbered as xadt.synth.shapes numbers them.
enum Kind : int {
    kBox,
    kEllipsoid,
    kDisc,
    kSideOnCylinder,
    kCylinder,
    kPlate,
    kEdgeOnPlate,
    kTube,
    kKinds
};

constexpr int kCoefficients = 16;  // per record; each kind reads the first few
// Texture offsets beyond this could overflow the int64 pattern index with a large image.
constexpr double kTextureLimit = 1099511627776.0;  // 2**40
// An edge-on plate's profile samples an n x n grid; no outline is near this wide.
constexpr double kProfileLimit = 65536.0;

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
    fArray = fCoef + kCoefficients,  // index into `arrays` (outline or tube samples), else -1
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

// A tube sample's columns: its pixel in the box, its view position (mm), the unit in-plane
// direction of the centre line and the sine of its angle to the ray.
enum Sample : int { sRow, sCol, sU, sV, sDirU, sDirV, sSine, kSampleFields };

struct Array {
    const float *f32 = nullptr;
    const double *f64 = nullptr;
    int64_t rows = 0, cols = 0;
};

struct Trace {
    int kind;
    int64_t r0, r1, c0, c1;
    const double *f;
    Array array;
};

// floor(x) as an integer, for |x| well inside the int64 range (callers bound x first).
int64_t floor_int(double x) {
    const auto i = static_cast<int64_t>(x);
    return static_cast<double>(i) > x ? i - 1 : i;
}

// The zero-padded bilinear sample of an outline at (y, x), as scipy's order-1 "grid-constant".
double bilinear(const Array &a, double y, double x) {
    if (!(y > -1.0 && y < static_cast<double>(a.rows) && x > -1.0 &&
          x < static_cast<double>(a.cols)))
        return 0.0;  // every neighbour is padding (and NaN reads nothing)
    const int64_t iy = floor_int(y), ix = floor_int(x);
    const double wy = y - static_cast<double>(iy), wx = x - static_cast<double>(ix);
    double sum = 0.0;
    for (int64_t dy = 0; dy < 2; ++dy) {
        const int64_t yy = iy + dy;
        if (yy < 0 || yy >= a.rows) continue;
        const double wr = dy ? wy : 1.0 - wy;
        for (int64_t dx = 0; dx < 2; ++dx) {
            const int64_t xx = ix + dx;
            if (xx < 0 || xx >= a.cols) continue;
            sum += wr * (dx ? wx : 1.0 - wx) * static_cast<double>(a.f32[yy * a.cols + xx]);
        }
    }
    return sum;
}

// One line of Maurer, Qi and Raghavan's exact Euclidean feature transform (PAMI 2003), with the
// tie rules of scipy.ndimage.distance_transform_edt, which the numpy reference calls: the
// feature at position k has coordinate along[k] on the line and across[k] off it (the line lies
// at `coor` off it); each position gets the nearest valid feature, the earlier one on a tie.
// Returns false, writing nothing, where the line has no feature. Arithmetic in double as scipy's
// (exact: every term is an integer far below 2**53).
bool voronoi_line(int64_t len, double coor, const std::vector<double> &along,
                  const std::vector<double> &across, const std::vector<char> &valid,
                  std::vector<int64_t> &g, std::vector<double> &out_along,
                  std::vector<double> &out_across) {
    int64_t l = -1;
    for (int64_t k = 0; k < len; ++k) {
        const auto uk = static_cast<size_t>(k);
        if (!valid[uk]) continue;
        const double fd = along[uk], tw = across[uk] - coor, wr = tw * tw;
        while (l >= 1) {
            const auto i1 = static_cast<size_t>(g[static_cast<size_t>(l)]);
            const auto i2 = static_cast<size_t>(g[static_cast<size_t>(l - 1)]);
            const double a = along[i1] - along[i2], b = fd - along[i1], c = a + b;
            const double tu = across[i2] - coor, tv = across[i1] - coor;
            if (c * (tv * tv) - b * (tu * tu) - a * wr - a * b * c <= 0.0) break;
            --l;
        }
        g[static_cast<size_t>(++l)] = k;
    }
    if (l < 0) return false;
    const int64_t last = l;
    l = 0;
    const auto dist2 = [&](int64_t m, int64_t k) {
        const auto um = static_cast<size_t>(g[static_cast<size_t>(m)]);
        const double t = along[um] - static_cast<double>(k), s = across[um] - coor;
        return t * t + s * s;
    };
    for (int64_t k = 0; k < len; ++k) {
        double d1 = dist2(l, k);
        while (l < last) {
            const double d2 = dist2(l + 1, k);
            if (d1 <= d2) break;
            d1 = d2;
            ++l;
        }
        const auto um = static_cast<size_t>(g[static_cast<size_t>(l)]);
        out_along[static_cast<size_t>(k)] = along[um];
        out_across[static_cast<size_t>(k)] = across[um];
    }
    return true;
}

// The path lengths of one trace, a row at a time: what a row needs of the whole box (offsets,
// the column half of linear forms, a profile, the tube's nearest samples) is prepared once.
class Lengths {
  public:
    explicit Lengths(const Trace &t)
        : t_(t), c_(t.f + fCoef), h_(t.r1 - t.r0), w_(t.c1 - t.c0) {
        du_ = offsets(t.r0, t.r1, t.f[fU]);
        dv_ = offsets(t.c0, t.c1, t.f[fV]);
        switch (t.kind) {
        case kBox:
            for (int k = 0; k < 3; ++k) {
                scale(k, c_[4 * k + 1]);
                bounds_[k] = float_bound(c_[4 * k + 2]);
            }
            break;
        case kDisc:
            scale(0, c_[1]);
            scale(1, c_[3]);
            break;
        case kSideOnCylinder:
        case kCylinder:
            bounds_[0] = float_bound(c_[5]);
            scale(0, c_[1]);
            scale(1, c_[4]);
            scale(2, c_[6]);
            break;
        case kEdgeOnPlate:
            scale(0, c_[9]);
            scale(1, c_[12]);
            profile();
            break;
        case kTube:
            nearest();
            break;
        default:
            break;
        }
    }

    void row(int64_t i, float *out) const {
        const float u = du_[static_cast<size_t>(i)];
        switch (t_.kind) {
        case kBox:
            return box(u, out);
        case kEllipsoid:
            return ellipsoid(u, out);
        case kDisc:
            return disc(u, out);
        case kSideOnCylinder:
        case kCylinder:
            return cylinder(u, out);
        case kPlate:
            return plate(i, out);
        case kEdgeOnPlate:
            return edge_on_plate(u, out);
        case kTube:
            return tube(i, out);
        default:
            return;  // the kinds were checked before the loop
        }
    }

  private:
    // Pixel centres minus the shape's centre along one axis, as numpy computes them in float32.
    std::vector<float> offsets(int64_t start, int64_t stop, double centre) const {
        std::vector<float> out(static_cast<size_t>(stop - start));
        const auto p = static_cast<float>(t_.f[fPitch]), c = static_cast<float>(centre);
        for (int64_t i = start; i < stop; ++i)
            out[static_cast<size_t>(i - start)] = static_cast<float>(i) * p - c;
        return out;
    }

    float f(int k) const { return static_cast<float>(c_[k]); }

    // The largest float <= h: for a float x, x <= h exactly when x <= float_bound(h), so the
    // numpy reference's float64 comparison can run in float32.
    static float float_bound(double h) {
        const auto b = static_cast<float>(h);
        return static_cast<double>(b) > h ? std::nextafter(b, -HUGE_VALF) : b;
    }

    // b·dv for every column: the row-independent half of a linear form a·du + b·dv.
    void scale(int slot, double b) {
        auto &out = bv_[slot];
        out.resize(dv_.size());
        const auto fb = static_cast<float>(b);
        for (size_t j = 0; j < dv_.size(); ++j) out[j] = fb * dv_[j];
    }

    void box(float u, float *out) const {
        // Per axis, a pair of faces parallel to the rays bounds the footprint (|a·du + b·dv| <=
        // h) and any other pair the depth: the ray enters at mid - h and leaves at mid + h.
        float base[3], h[3];
        const float *b[3];
        int deep = 0;
        for (int k = 0; k < 3; ++k) {
            if (c_[4 * k + 3] != 0.0) continue;
            base[deep] = f(4 * k) * u;
            h[deep] = f(4 * k + 2);
            b[deep++] = bv_[k].data();
        }
        switch (deep) {
        case 1:
            depth<1>(base, h, b, out);
            break;
        case 2:
            depth<2>(base, h, b, out);
            break;
        case 3:
            return depth<3>(base, h, b, out);
        default:  // cannot happen for an orthonormal rotation
            std::fill(out, out + w_, 0.0f);
            return;
        }
        for (int k = 0; k < 3; ++k) {
            if (c_[4 * k + 3] == 0.0) continue;
            const float base_k = f(4 * k) * u, bound = bounds_[k];
            const float *bk = bv_[k].data();
            for (int64_t j = 0; j < w_; ++j)
                out[j] = std::fabs(base_k + bk[j]) <= bound ? out[j] : 0.0f;
        }
    }

    // max(min over the N depth axes of (mid + h) - max of (mid - h), 0), in one pass.
    template <int N>
    void depth(const float *base, const float *h, const float *const *b, float *out) const {
        for (int64_t j = 0; j < w_; ++j) {
            float mid = base[0] + b[0][j];
            float near = mid - h[0], far = mid + h[0];
            for (int k = 1; k < N; ++k) {
                mid = base[k] + b[k][j];
                near = std::max(near, mid - h[k]);
                far = std::min(far, mid + h[k]);
            }
            out[j] = std::max(far - near, 0.0f);
        }
    }

    void ellipsoid(float u, float *out) const {
        // sqrt(max(ee - (qa·du² + qb·dv² + qab·du·dv), 0)) · scale
        const float qb = f(1), qab = f(2), ee = f(3), scale = f(4), a = f(0) * (u * u);
        for (int64_t j = 0; j < w_; ++j) {
            const float v = dv_[static_cast<size_t>(j)];
            const float q = a + qb * (v * v) + qab * (u * v);
            out[j] = std::sqrt(std::max(ee - q, 0.0f)) * scale;
        }
    }

    void disc(float u, float *out) const {
        // depth where x² + y² <= 1, x and y linear forms
        const float ax = f(0) * u, ay = f(2) * u, depth = f(4);
        for (int64_t j = 0; j < w_; ++j) {
            const auto uj = static_cast<size_t>(j);
            const float x = ax + bv_[0][uj], y = ay + bv_[1][uj];
            out[j] = x * x + y * y <= 1.0f ? depth : 0.0f;
        }
    }

    void cylinder(float u, float *out) const {
        // The circle's chord: t in tc ± delta, delta = sqrt(max(ee - cross², 0)) / ee. Side-on,
        // the caps cut it where |z| > h; otherwise at t in mz ± hz.
        const float ee = f(2), inv = static_cast<float>(1.0 / c_[2]), hz = f(7);
        const float ak = f(0) * u, a1 = f(3) * u, a2 = f(5) * u;
        const bool side = t_.kind == kSideOnCylinder;
        for (int64_t j = 0; j < w_; ++j) {
            const auto uj = static_cast<size_t>(j);
            const float cross = ak + bv_[0][uj];
            const float delta = std::sqrt(std::max(ee - cross * cross, 0.0f)) * inv;
            if (side) {
                const bool inside = std::fabs(a1 + bv_[1][uj]) <= bounds_[0];
                out[j] = inside ? 2.0f * delta : 0.0f;
            } else {
                const float tc = a1 + bv_[1][uj], mz = a2 + bv_[2][uj];
                out[j] = std::max(std::min(tc + delta, mz + hz) - std::max(tc - delta, mz - hz),
                                  0.0f);
            }
        }
    }

    void plate(int64_t i, float *out) const {
        // The outline sampled at matrix @ (i, j) + offset, times the depth across the plate.
        const auto di = static_cast<double>(i);
        const float depth = f(6);
        for (int64_t j = 0; j < w_; ++j) {
            const auto dj = static_cast<double>(j);
            const double y = c_[0] * di + c_[1] * dj + c_[4], x = c_[2] * di + c_[3] * dj + c_[5];
            out[j] = static_cast<float>(bilinear(t_.array, y, x)) * depth;
        }
    }

    void profile() {
        // The outline's chord along the ray at each across-ray step: the outline sampled on an
        // n x n grid turned to the ray, summed along the ray (float32, row after row as numpy).
        const auto n = static_cast<int64_t>(c_[6]);
        profile_.assign(static_cast<size_t>(n), 0.0f);
        for (int64_t a = 0; a < n; ++a)
            for (int64_t b = 0; b < n; ++b) {
                const auto da = static_cast<double>(a), db = static_cast<double>(b);
                const double y = c_[0] * da + c_[1] * db + c_[4];
                const double x = c_[2] * da + c_[3] * db + c_[5];
                profile_[static_cast<size_t>(b)] += static_cast<float>(bilinear(t_.array, y, x));
            }
        for (float &p : profile_) p *= f(7);
    }

    // np.interp(x, 0 … n-1, profile, left=0, right=0)
    double chord(double x) const {
        const auto n = static_cast<int64_t>(profile_.size());
        const auto top = static_cast<double>(n - 1);
        if (!(x >= 0.0 && x <= top)) return 0.0;
        if (x == top) return profile_.back();
        const auto j = static_cast<size_t>(x);
        const auto dj = static_cast<double>(j), fj = static_cast<double>(profile_[j]);
        if (dj == x) return fj;
        return (static_cast<double>(profile_[j + 1]) - fj) * (x - dj) + fj;
    }

    void edge_on_plate(float u, float *out) const {
        // The chord at the pixel's across-ray coordinate s, times the share of the ray's height
        // range c ± spread inside the plate, over the in-plane share of the ray.
        const float as = f(8) * u, shift = f(10), ac = f(11) * u, spread_scale = f(13);
        const float half = f(14), inv = f(15);
        const auto least = static_cast<float>(t_.f[fPitch] / 2);
        for (int64_t j = 0; j < w_; ++j) {
            const auto uj = static_cast<size_t>(j);
            const float s = (as + bv_[0][uj]) + shift;
            const auto ch = static_cast<float>(chord(static_cast<double>(s)));
            const float c = ac + bv_[1][uj];
            const float spread = std::max(ch * spread_scale, least);
            const float overlap = std::min(c + spread, half) - std::max(c - spread, -half);
            const float frac = std::min(std::max(overlap / (2.0f * spread), 0.0f), 1.0f);
            out[j] = ch * inv * frac;
        }
    }

    void nearest() {
        // Each pixel's nearest sample cell, as the reference's distance transform finds it: the
        // last sample written to a cell owns it, and the transform runs down the columns, then
        // along the rows.
        const double *table = t_.array.f64;
        const int64_t n = t_.array.rows;
        const auto size = static_cast<size_t>(h_ * w_);
        owner_.assign(size, -1);
        for (int64_t k = 0; k < n; ++k) {
            const double *s = table + k * kSampleFields;
            owner_[static_cast<size_t>(static_cast<int64_t>(s[sRow]) * w_ +
                                       static_cast<int64_t>(s[sCol]))] = static_cast<int32_t>(k);
        }
        // Down a column every feature lies on the line: the transform's first pass picks the
        // nearer of the sample cells above and below, the upper one on a tie. -1: none.
        std::vector<double> feature_row(size, -1.0);
        std::vector<int64_t> below(static_cast<size_t>(w_), -1);
        for (int64_t i = h_ - 1; i >= 0; --i)
            for (int64_t j = 0; j < w_; ++j) {
                const auto at = static_cast<size_t>(i * w_ + j);
                if (owner_[at] >= 0) below[static_cast<size_t>(j)] = i;
                feature_row[at] = static_cast<double>(below[static_cast<size_t>(j)]);
            }
        std::vector<int64_t> above(static_cast<size_t>(w_), -1);
        for (int64_t i = 0; i < h_; ++i)
            for (int64_t j = 0; j < w_; ++j) {
                const auto at = static_cast<size_t>(i * w_ + j), uj = static_cast<size_t>(j);
                if (owner_[at] >= 0) above[uj] = i;
                const auto down = static_cast<int64_t>(feature_row[at]);
                if (above[uj] >= 0 && (down < 0 || i - above[uj] <= down - i))
                    feature_row[at] = static_cast<double>(above[uj]);
            }
        const auto len = static_cast<size_t>(w_);
        std::vector<double> along(len), across(len), out_along(len), out_across(len);
        std::vector<char> valid(len);
        std::vector<int64_t> g(len);
        near_sample_.assign(size, 0);
        dist_.assign(size, 0.0);
        for (int64_t i = 0; i < h_; ++i) {
            for (int64_t j = 0; j < w_; ++j) {
                const auto at = static_cast<size_t>(i * w_ + j), uj = static_cast<size_t>(j);
                valid[uj] = feature_row[at] >= 0.0;
                along[uj] = static_cast<double>(j);
                across[uj] = feature_row[at];
            }
            // Every row has a feature: each column that holds a sample passed it to all rows.
            voronoi_line(w_, static_cast<double>(i), along, across, valid, g, out_along,
                         out_across);
            for (int64_t j = 0; j < w_; ++j) {
                const auto uj = static_cast<size_t>(j), at = static_cast<size_t>(i * w_ + j);
                const double dr = out_across[uj] - static_cast<double>(i);
                const double dc = out_along[uj] - static_cast<double>(j);
                dist_[at] = std::sqrt(dr * dr + dc * dc);
                near_sample_[at] = owner_[static_cast<size_t>(
                    static_cast<int64_t>(out_across[uj]) * w_ + static_cast<int64_t>(out_along[uj]))];
            }
        }
    }

    void tube(int64_t i, float *out) const {
        // The chord of a circle of radius r at the pixel's distance from its nearest sample's
        // centre line, over the sine to the ray; nothing beyond r + a pixel, nor past the ends.
        const double p = t_.f[fPitch], r = c_[0];
        const double *table = t_.array.f64;
        const int64_t last = t_.array.rows - 1;
        const double y = static_cast<double>(t_.r0 + i) * p;
        for (int64_t j = 0; j < w_; ++j) {
            const auto at = static_cast<size_t>(i * w_ + j);
            out[j] = 0.0f;
            if (dist_[at] * p > r + p) continue;
            const int64_t k = near_sample_[at];
            const double *s = table + k * kSampleFields;
            const double du = y - s[sU], dv = static_cast<double>(t_.c0 + j) * p - s[sV];
            const double along = du * s[sDirU] + dv * s[sDirV];
            if ((k == 0 && along < 0) || (k == last && along > 0)) continue;
            const double perp = du * s[sDirV] - dv * s[sDirU];
            const double disc = std::max(r * r - perp * perp, 0.0);
            out[j] = static_cast<float>(2 * std::sqrt(disc) / std::max(s[sSine], 0.15));
        }
    }

    const Trace &t_;
    const double *c_;
    int64_t h_, w_;
    std::vector<float> du_, dv_, bv_[3], profile_;
    float bounds_[3] = {0.0f, 0.0f, 0.0f};
    std::vector<int32_t> owner_, near_sample_;
    std::vector<double> dist_;
};

// len *= max(1 + amplitude · pattern, 0.05), the pattern tiled every `side` pixels and stepped
// by the pitch: pixel (r, c) reads bank[(row + r·pitch) mod side, (col + c·pitch) mod side].
class Texture {
  public:
    Texture(const Trace &t, const float *bank, int64_t side)
        : t_(t), side_(side), amplitude_(static_cast<float>(t.f[fAmplitude])) {
        pattern_ = bank + static_cast<int64_t>(t.f[fTexture]) * side * side;
        cols_.resize(static_cast<size_t>(t.c1 - t.c0));
        for (int64_t j = t.c0; j < t.c1; ++j)
            cols_[static_cast<size_t>(j - t.c0)] =
                wrap(t.f[fTextureCol] + static_cast<double>(j) * t.f[fPitch]);
        // At one pattern pixel per image pixel the columns run on by one, wrapping at `side`:
        // a few contiguous runs, which vectorise where a gather does not.
        contiguous_ = t.f[fPitch] == 1.0;
    }

    // Row i of the trace, columns [j0, j1).
    void apply(int64_t i, float *len, int64_t j0, int64_t j1) const {
        const float *src =
            pattern_ + wrap(t_.f[fTextureRow] + static_cast<double>(t_.r0 + i) * t_.f[fPitch]) * side_;
        if (!contiguous_) {
            for (int64_t j = j0; j < j1; ++j) len[j] *= factor(src[cols_[static_cast<size_t>(j)]]);
            return;
        }
        for (int64_t j = j0; j < j1;) {
            const int64_t start = cols_[static_cast<size_t>(j)];
            const int64_t run = std::min(j1 - j, side_ - start);
            const float *p = src + start;
            float *out = len + j;
            for (int64_t k = 0; k < run; ++k) out[k] *= factor(p[k]);
            j += run;
        }
    }

  private:
    float factor(float pattern) const {
        float f = pattern * amplitude_;
        f += 1.0f;
        return std::max(f, 0.05f);
    }

    int64_t wrap(double x) const {
        const int64_t i = static_cast<int64_t>(x) % side_;  // truncated, as numpy's astype
        return i < 0 ? i + side_ : i;
    }

    const Trace &t_;
    int64_t side_;
    float amplitude_;
    const float *pattern_;
    std::vector<int64_t> cols_;
    bool contiguous_;
};

struct Maps {
    float *data[3];
    int64_t height, width;
};

// maps[r, c0:c1] += coefficient · len for the trace's maps (the threat map only for a threat).
// Columns [j0, j1) of the trace's row; the rest of the row must be zero (adds nothing).
void add_row(const Trace &t, const Maps &maps, int64_t r, const float *len, int64_t j0,
             int64_t j1) {
    const float coefficient[3] = {static_cast<float>(t.f[fCompton]),
                                  static_cast<float>(t.f[fPhoto]),
                                  static_cast<float>(t.f[fThreat])};
    for (int k = 0; k < (coefficient[2] != 0.0f ? 3 : 2); ++k) {
        float *dst = maps.data[k] + r * maps.width + t.c0;
        for (int64_t j = j0; j < j1; ++j) dst[j] += coefficient[k] * len[j];
    }
}

// The trace stretched along rows by its magnification about the image's central row: each row
// it covers interpolates linearly between the two trace rows it comes from.
void add_magnified(const Trace &t, const Maps &maps, const std::vector<float> &len,
                   std::vector<float> &row) {
    const int64_t n = t.r1 - t.r0, w = t.c1 - t.c0;
    const double m = t.f[fMagnification], centre = static_cast<double>(maps.height - 1) / 2;
    const int64_t r0 = std::max(
        static_cast<int64_t>(std::floor(centre + (static_cast<double>(t.r0) - centre) * m)),
        int64_t{0});
    const int64_t r1 = std::min(
        static_cast<int64_t>(std::ceil(centre + (static_cast<double>(t.r1 - 1) - centre) * m)) +
            1,
        maps.height);
    for (int64_t r = r0; r < r1; ++r) {
        const double src =
            centre + (static_cast<double>(r) - centre) / m - static_cast<double>(t.r0);
        const double lo = std::floor(src);
        const auto wt = static_cast<float>(src - lo), keep = 1.0f - wt;
        const auto a = static_cast<int64_t>(lo), b = a + 1;
        for (int64_t j = 0; j < w; ++j) {
            const float va = a >= 0 && a < n ? len[static_cast<size_t>(a * w + j)] : 0.0f;
            const float vb = b >= 0 && b < n ? len[static_cast<size_t>(b * w + j)] : 0.0f;
            row[static_cast<size_t>(j)] = va * keep + vb * wt;
        }
        add_row(t, maps, r, row.data(), 0, w);
    }
}

// Each trace in turn, a row at a time (a fan beam stretches its rows from a copy of the whole).
void add_traces(const std::vector<Trace> &traces, const Maps &maps, const float *patterns,
                    int64_t side) {
    std::vector<float> len, row;
    for (const Trace &t : traces) {
        Lengths lengths(t);
        std::optional<Texture> texture;
        if (t.f[fTexture] >= 0.0) texture.emplace(t, patterns, side);
        const int64_t h = t.r1 - t.r0, w = t.c1 - t.c0;
        row.resize(static_cast<size_t>(w));
        if (t.f[fMagnification] > 0.0) {
            len.resize(static_cast<size_t>(h * w));
            for (int64_t i = 0; i < h; ++i) {
                float *out = len.data() + i * w;
                lengths.row(i, out);
                if (texture) texture->apply(i, out, 0, w);
            }
            add_magnified(t, maps, len, row);
            continue;
        }
        for (int64_t i = 0; i < h; ++i) {
            lengths.row(i, row.data());
            // Shapes rarely fill their box: texture and add only from the first to the last
            // pixel with a path length.
            const float *begin = row.data(), *end = begin + w;
            while (begin < end && *begin == 0.0f) ++begin;
            while (end > begin && end[-1] == 0.0f) --end;
            const int64_t j0 = begin - row.data(), j1 = end - row.data();
            if (texture) texture->apply(i, row.data(), j0, j1);
            add_row(t, maps, t.r0 + i, row.data(), j0, j1);
        }
    }
}

std::string where(int64_t k) { return "project_traces: record " + std::to_string(k) + ": "; }

int64_t whole(double x, int64_t k, const std::string &name) {
    if (!std::isfinite(x) || x != std::floor(x) || std::fabs(x) > 9.0e15)
        throw std::invalid_argument(where(k) + name + " must be a whole number, got " +
                                    std::to_string(x));
    return static_cast<int64_t>(x);
}

void require_map(const py::array &a, const char *name) {
    if (!xadt::is_c_array<float>(a, 2) || !a.writeable())
        throw std::invalid_argument(std::string("project_traces: ") + name +
                                    " must be a writeable C-contiguous float32 2-D array");
}

// A tube's samples must lie in its box: their cells index the scratch maps.
void check_tube(const Trace &t, int64_t k) {
    if (!t.array.f64 || t.array.cols != kSampleFields || t.array.rows < 1)
        throw std::invalid_argument(where(k) + "a tube's array must be float64 (N >= 1, 7)");
    if (t.r1 - t.r0 > (int64_t{1} << 24) || t.c1 - t.c0 > (int64_t{1} << 24))
        throw std::invalid_argument(where(k) + "a tube's pixel box is too large");
    for (int64_t s = 0; s < t.array.rows; ++s) {
        const double *row = t.array.f64 + s * kSampleFields;
        const int64_t i = whole(row[sRow], k, "sample row"), j = whole(row[sCol], k, "sample col");
        if (i < 0 || i >= t.r1 - t.r0 || j < 0 || j >= t.c1 - t.c0)
            throw std::invalid_argument(where(k) + "tube sample " + std::to_string(s) +
                                        " lies outside the pixel box");
        for (int c = sU; c < kSampleFields; ++c)
            if (!std::isfinite(row[c]))
                throw std::invalid_argument(where(k) + "tube sample " + std::to_string(s) +
                                            " is not finite");
    }
}

Trace check_record(const double *f, int64_t k, int64_t height, int64_t width,
                   const std::vector<Array> &given, int64_t textures) {
    Trace t{static_cast<int>(whole(f[fKind], k, "kind")),
            whole(f[fRow0], k, "row0"),
            whole(f[fRow1], k, "row1"),
            whole(f[fCol0], k, "col0"),
            whole(f[fCol1], k, "col1"),
            f,
            {}};
    if (t.kind < 0 || t.kind >= kKinds)
        throw std::invalid_argument(where(k) + "unknown kind " + std::to_string(t.kind));
    if (t.r0 < 0 || t.r1 <= t.r0 || t.r1 > height || t.c0 < 0 || t.c1 <= t.c0 || t.c1 > width)
        throw std::invalid_argument(where(k) + "pixel box outside the maps or empty");
    for (int field = fU; field < kFields; ++field)
        if (!std::isfinite(f[field]))
            throw std::invalid_argument(where(k) + "field " + std::to_string(field) +
                                        " is not finite");
    if (t.kind == kPlate || t.kind == kEdgeOnPlate || t.kind == kTube) {
        const int64_t index = whole(f[fArray], k, "array index");
        if (index < 0 || index >= static_cast<int64_t>(given.size()))
            throw std::invalid_argument(where(k) + "array index out of range");
        t.array = given[static_cast<size_t>(index)];
        if (t.kind == kTube)
            check_tube(t, k);
        else if (!t.array.f32)
            throw std::invalid_argument(where(k) + "a plate's outline must be float32");
    }
    if (t.kind == kEdgeOnPlate) {
        const double n = f[fCoef + 6];
        if (whole(n, k, "profile size") < 2 || n > kProfileLimit)
            throw std::invalid_argument(where(k) + "profile size must be in [2, 65536]");
    }
    const int64_t texture = whole(f[fTexture], k, "texture kind");
    if (texture < -1 || texture >= textures)
        throw std::invalid_argument(where(k) + "texture kind out of range");
    if (texture >= 0 &&
        (std::fabs(f[fTextureRow]) > kTextureLimit || std::fabs(f[fTextureCol]) > kTextureLimit))
        throw std::invalid_argument(where(k) + "texture offsets beyond +-2**40");
    if (f[fMagnification] < 0.0)
        throw std::invalid_argument(where(k) + "magnification must be >= 0");
    return t;
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
    if (!xadt::is_c_array<double>(records, 2) || records.shape(1) != kFields)
        throw std::invalid_argument("project_traces: records must be a C-contiguous float64 array "
                                    "of shape (N, " +
                                    std::to_string(kFields) + ")");
    if (!xadt::is_c_array<float>(bank, 3) || bank.shape(1) != bank.shape(2) || bank.shape(1) == 0)
        throw std::invalid_argument(
            "project_traces: bank must be a C-contiguous float32 array of shape (K, S, S)");
    std::vector<Array> given;
    for (const py::handle item : arrays) {
        const bool is_array = py::isinstance<py::array>(item);
        const auto a = is_array ? py::reinterpret_borrow<py::array>(item) : py::array();
        const bool f32 = is_array && xadt::is_c_array<float>(a, 2);
        const bool f64 = is_array && xadt::is_c_array<double>(a, 2);
        if (!(f32 || f64))
            throw std::invalid_argument(
                "project_traces: arrays must hold C-contiguous float32 or float64 2-D arrays");
        Array entry;
        if (f32)
            entry.f32 = static_cast<const float *>(a.data());
        else
            entry.f64 = static_cast<const double *>(a.data());
        entry.rows = a.shape(0);
        entry.cols = a.shape(1);
        given.push_back(entry);
    }

    // Every record is checked before any map is touched.
    const int64_t n = records.shape(0);
    const auto *table = static_cast<const double *>(records.data());
    std::vector<Trace> traces;
    traces.reserve(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
        traces.push_back(check_record(table + k * kFields, k, height, width, given, bank.shape(0)));

    const Maps maps{{static_cast<float *>(compton.mutable_data()),
                     static_cast<float *>(photo.mutable_data()),
                     static_cast<float *>(threat.mutable_data())},
                    height,
                    width};
    const auto *patterns = static_cast<const float *>(bank.data());
    const int64_t side = bank.shape(1);
    {
        // Safe without the GIL: only raw pointers into arrays this frame keeps referenced.
        py::gil_scoped_release release;
        add_traces(traces, maps, patterns, side);
    }
}

}  // namespace

void register_projection(py::module_ &m) {
    m.def("project_traces", &project_traces, py::arg("compton").noconvert(),
          py::arg("photo").noconvert(), py::arg("threat").noconvert(),
          py::arg("records").noconvert(), py::arg("arrays"), py::arg("bank").noconvert(),
          "Add the path lengths of shape traces (float64 records (N, 33)), textured from bank "
          "float32 (K, S, S), times their material coefficients to the float32 maps in place. "
          "Use xadt.synth.render.project.");
}
