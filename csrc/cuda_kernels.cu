// CUDA versions of extract_patches, window_map, mahalanobis and topn_excursion: the same results
// as the CPU kernels (within rounding), on device memory, queued on the caller's stream.
#include "cuda_kernels.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace xadt::cuda {

namespace {

constexpr int THREADS = 256;  // every kernel's block size; the reductions rely on it
constexpr int WARPS = THREADS / 32;
constexpr int64_t MAX_BLOCKS = 65535;  // grid-stride loops cover the rest

void check(const char *fn, cudaError_t err) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string(fn) + ": CUDA error: " + cudaGetErrorString(err));
}

unsigned grid_for(int64_t work) {
    return static_cast<unsigned>(std::clamp<int64_t>((work + THREADS - 1) / THREADS, 1, MAX_BLOCKS));
}

// std::min is host-only in device code without --expt-relaxed-constexpr.
__host__ __device__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

cudaStream_t as_stream(std::uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

template <typename T> const T *as_ptr(std::uintptr_t p) { return reinterpret_cast<const T *>(p); }

// Block-wide sum of one double per thread; every thread gets the total.
__device__ double block_sum(double v) {
    __shared__ double part[WARPS];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < WARPS; ++w) total += part[w];
    return total;
}

// ---- extract_patches -------------------------------------------------------------------------

// One thread per output value. __dmul_rn/__dadd_rn keep nvcc from fusing into an FMA, so each
// value is rounded as the CPU kernel rounds it: raw * mul + add in double, then to float.
template <typename T>
__global__ void extract_kernel(const T *view, int64_t height, int64_t width, int64_t channels,
                               int64_t sy, int64_t sx, int64_t sc, const int64_t *boxes,
                               int64_t total, int64_t size, const double *norm, float *out) {
    const double *mul = norm, *add = norm + channels, *pad = norm + 2 * channels;
    for (int64_t idx = blockIdx.x * int64_t{THREADS} + threadIdx.x; idx < total;
         idx += int64_t{gridDim.x} * THREADS) {
        const int64_t j = idx % size, i = (idx / size) % size;
        const int64_t c = (idx / (size * size)) % channels, n = idx / (size * size * channels);
        const int64_t y = boxes[4 * n] + i, x = boxes[4 * n + 1] + j;
        float value;
        if (y < 0 || y >= height || x < 0 || x >= width) {
            value = static_cast<float>(pad[c]);
        } else {
            const double raw = static_cast<double>(view[y * sy + x * sx + c * sc]);
            value = static_cast<float>(__dadd_rn(__dmul_rn(raw, mul[c]), add[c]));
        }
        out[idx] = value;
    }
}

// ---- window_map ------------------------------------------------------------------------------

constexpr int MAP_CHUNK = THREADS;  // boxes staged in shared memory per round

// One thread per pixel, each testing every box (staged through shared memory): O(H·W·N), which
// a GPU does faster than the CPU's sweep for the few hundred windows of a scan.
__global__ void window_map_kernel(const int64_t *boxes, const double *scores, int64_t n,
                                  int64_t height, int64_t width, int exponent, float *out) {
    __shared__ int64_t box[MAP_CHUNK][4];
    __shared__ double score[MAP_CHUNK];
    const int64_t pixels = height * width;
    // Every thread of a block runs the same number of rounds, so the barriers are uniform.
    for (int64_t base = blockIdx.x * int64_t{THREADS}; base < pixels;
         base += int64_t{gridDim.x} * THREADS) {
        const int64_t p = base + threadIdx.x;
        const int64_t y = p / width, x = p % width;
        double sum = 0;
        int32_t count = 0, nan = 0, pos = 0, neg = 0;
        for (int64_t k0 = 0; k0 < n; k0 += MAP_CHUNK) {
            const int64_t k = k0 + threadIdx.x;
            __syncthreads();
            if (k < n) {
                for (int e = 0; e < 4; ++e) box[threadIdx.x][e] = boxes[4 * k + e];
                score[threadIdx.x] = scores[k];
            }
            __syncthreads();
            const int64_t m = min64(MAP_CHUNK, n - k0);
            if (p >= pixels) continue;
            for (int64_t b = 0; b < m; ++b) {
                if (y < box[b][0] || y >= box[b][2] || x < box[b][1] || x >= box[b][3]) continue;
                const double s = score[b];
                ++count;
                if (isnan(s))
                    ++nan;
                else if (isinf(s))
                    ++(s > 0 ? pos : neg);
                else
                    sum += ldexp(s, -exponent);
            }
        }
        if (p >= pixels) continue;
        float value = count > 0 ? static_cast<float>(ldexp(sum / count, exponent)) : NAN;
        if (nan > 0 || (pos > 0 && neg > 0))
            value = NAN;
        else if (pos > 0)
            value = INFINITY;
        else if (neg > 0)
            value = -INFINITY;
        out[p] = value;
    }
}

// ---- mahalanobis -----------------------------------------------------------------------------

constexpr int MAHA_ROWS = 8;  // rows of x sharing each read of a precision row

// A block scores up to MAHA_ROWS rows; each warp takes precision rows k in turn: the dot
// P[k, :]·y_r in T (as the CPU kernel), then y_r[k] times it summed in double.
template <typename T>
__global__ void mahalanobis_kernel(const T *x, const T *mean, const T *precision, T *out,
                                   int64_t rows, int64_t dim) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int64_t i0 = blockIdx.x * int64_t{MAHA_ROWS}; i0 < rows;
         i0 += int64_t{gridDim.x} * MAHA_ROWS) {
        const int r_count = static_cast<int>(min64(MAHA_ROWS, rows - i0));
        double acc[MAHA_ROWS] = {};
        for (int64_t k = warp; k < dim; k += WARPS) {
            const T *pk = precision + k * dim;
            T dot[MAHA_ROWS] = {};
            for (int64_t j = lane; j < dim; j += 32) {
                const T pkj = pk[j], mj = mean[j];
#pragma unroll
                for (int r = 0; r < MAHA_ROWS; ++r)
                    if (r < r_count) dot[r] += pkj * (x[(i0 + r) * dim + j] - mj);
            }
#pragma unroll
            for (int r = 0; r < MAHA_ROWS; ++r) {
                for (int off = 16; off > 0; off >>= 1)
                    dot[r] += __shfl_down_sync(0xffffffffu, dot[r], off);
                if (lane == 0 && r < r_count)
                    acc[r] += static_cast<double>(x[(i0 + r) * dim + k] - mean[k]) *
                              static_cast<double>(dot[r]);
            }
        }
        for (int r = 0; r < MAHA_ROWS; ++r) {
            const double total = block_sum(lane == 0 ? acc[r] : 0.0);
            if (threadIdx.x == 0 && r < r_count) out[i0 + r] = static_cast<T>(total);
        }
    }
}

// ---- topn_excursion --------------------------------------------------------------------------

// The order of the selection: larger z first, then the lower index (as the CPU kernel).
__device__ bool better(double va, int64_t ia, double vb, int64_t ib) {
    return va > vb || (va == vb && ia < ib);
}

// One block per row (grid-stride). z goes to this block's slice of a scratch buffer; n rounds of
// a block-wide arg-max pick the kept entries (each taken one set to -inf: every z is finite, so
// it is never picked again); then the n×n form over the gathered rows of inv_corr, in double.
template <typename T>
__global__ void topn_kernel(const T *x, const T *mean, const T *std_, const T *inv_corr, T *out,
                            int64_t rows, int64_t dim, int64_t keep, double *scratch) {
    __shared__ double best_v[WARPS];
    __shared__ int64_t best_i[WARPS];
    __shared__ int finite;
    double *z = scratch + blockIdx.x * (dim + 2 * keep);
    double *zk = z + dim;
    int64_t *kept = reinterpret_cast<int64_t *>(zk + keep);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
        __syncthreads();
        if (threadIdx.x == 0) finite = 1;
        __syncthreads();
        for (int64_t j = threadIdx.x; j < dim; j += THREADS) {
            z[j] = (static_cast<double>(x[i * dim + j]) - static_cast<double>(mean[j])) /
                   static_cast<double>(std_[j]);
            if (!isfinite(z[j])) finite = 0;
        }
        __syncthreads();
        if (!finite) {
            if (threadIdx.x == 0) out[i] = static_cast<T>(NAN);
            continue;
        }
        for (int64_t a = 0; a < keep; ++a) {
            double v = -INFINITY;
            int64_t at = INT64_MAX;
            for (int64_t j = threadIdx.x; j < dim; j += THREADS)
                if (better(z[j], j, v, at)) {
                    v = z[j];
                    at = j;
                }
            for (int off = 16; off > 0; off >>= 1) {
                const double ov = __shfl_down_sync(0xffffffffu, v, off);
                const int64_t oi = __shfl_down_sync(0xffffffffu, at, off);
                if (better(ov, oi, v, at)) {
                    v = ov;
                    at = oi;
                }
            }
            if (lane == 0) {
                best_v[warp] = v;
                best_i[warp] = at;
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                for (int w = 1; w < WARPS; ++w)
                    if (better(best_v[w], best_i[w], v, at)) {
                        v = best_v[w];
                        at = best_i[w];
                    }
                zk[a] = v;
                kept[a] = at;
                z[at] = -INFINITY;
            }
            __syncthreads();
        }
        double part = 0;
        for (int64_t a = threadIdx.x; a < keep; a += THREADS) {
            const T *ra = inv_corr + kept[a] * dim;
            double row = 0;
            for (int64_t b = 0; b < keep; ++b) row += static_cast<double>(ra[kept[b]]) * zk[b];
            part += zk[a] * row;
        }
        const double score = block_sum(part);
        if (threadIdx.x == 0) out[i] = static_cast<T>(score);
    }
}

}  // namespace

void extract_patches(std::uintptr_t view, int dtype, int64_t height, int64_t width,
                     int64_t channels, int64_t sy, int64_t sx, int64_t sc, std::uintptr_t boxes,
                     int64_t n_boxes, int64_t size, std::uintptr_t norm, std::uintptr_t out,
                     std::uintptr_t stream) {
    const int64_t total = n_boxes * channels * size * size;
    if (total == 0) return;
    const auto *b = as_ptr<int64_t>(boxes);
    const auto *nm = as_ptr<double>(norm);
    auto *o = reinterpret_cast<float *>(out);
    const unsigned grid = grid_for(total);
    const cudaStream_t s = as_stream(stream);
    switch (dtype) {
        case 0:
            extract_kernel<<<grid, THREADS, 0, s>>>(as_ptr<uint8_t>(view), height, width, channels,
                                                    sy, sx, sc, b, total, size, nm, o);
            break;
        case 1:
            extract_kernel<<<grid, THREADS, 0, s>>>(as_ptr<uint16_t>(view), height, width,
                                                    channels, sy, sx, sc, b, total, size, nm, o);
            break;
        case 2:
            extract_kernel<<<grid, THREADS, 0, s>>>(as_ptr<float>(view), height, width, channels,
                                                    sy, sx, sc, b, total, size, nm, o);
            break;
        default: throw std::invalid_argument("extract_patches: unknown view dtype code");
    }
    check("extract_patches", cudaGetLastError());
}

void window_map(std::uintptr_t boxes, std::uintptr_t scores, int64_t n, int64_t height,
                int64_t width, int exponent, std::uintptr_t out, std::uintptr_t stream) {
    const int64_t pixels = height * width;
    if (pixels == 0) return;
    window_map_kernel<<<grid_for(pixels), THREADS, 0, as_stream(stream)>>>(
        as_ptr<int64_t>(boxes), as_ptr<double>(scores), n, height, width, exponent,
        reinterpret_cast<float *>(out));
    check("window_map", cudaGetLastError());
}

void mahalanobis(std::uintptr_t x, std::uintptr_t mean, std::uintptr_t precision,
                 std::uintptr_t out, int64_t rows, int64_t dim, bool is_double,
                 std::uintptr_t stream) {
    if (rows == 0) return;
    const auto grid = static_cast<unsigned>(
        std::min<int64_t>((rows + MAHA_ROWS - 1) / MAHA_ROWS, MAX_BLOCKS));
    const cudaStream_t s = as_stream(stream);
    if (is_double)
        mahalanobis_kernel<<<grid, THREADS, 0, s>>>(as_ptr<double>(x), as_ptr<double>(mean),
                                                    as_ptr<double>(precision),
                                                    reinterpret_cast<double *>(out), rows, dim);
    else
        mahalanobis_kernel<<<grid, THREADS, 0, s>>>(as_ptr<float>(x), as_ptr<float>(mean),
                                                    as_ptr<float>(precision),
                                                    reinterpret_cast<float *>(out), rows, dim);
    check("mahalanobis", cudaGetLastError());
}

void topn_excursion(std::uintptr_t x, std::uintptr_t mean, std::uintptr_t std_,
                    std::uintptr_t inv_corr, std::uintptr_t out, int64_t rows, int64_t dim,
                    int64_t keep, bool is_double, std::uintptr_t stream) {
    if (rows == 0) return;
    const auto grid = static_cast<unsigned>(std::min<int64_t>(rows, 4096));
    const cudaStream_t s = as_stream(stream);
    // Stream-ordered scratch (z, the kept z and their indices per block), freed on the stream.
    double *scratch = nullptr;
    const auto bytes = static_cast<size_t>(grid) * static_cast<size_t>(dim + 2 * keep) * 8;
    check("topn_excursion", cudaMallocAsync(reinterpret_cast<void **>(&scratch), bytes, s));
    if (is_double)
        topn_kernel<<<grid, THREADS, 0, s>>>(as_ptr<double>(x), as_ptr<double>(mean),
                                             as_ptr<double>(std_), as_ptr<double>(inv_corr),
                                             reinterpret_cast<double *>(out), rows, dim, keep,
                                             scratch);
    else
        topn_kernel<<<grid, THREADS, 0, s>>>(as_ptr<float>(x), as_ptr<float>(mean),
                                             as_ptr<float>(std_), as_ptr<float>(inv_corr),
                                             reinterpret_cast<float *>(out), rows, dim, keep,
                                             scratch);
    const cudaError_t launched = cudaGetLastError();
    check("topn_excursion", cudaFreeAsync(scratch, s));
    check("topn_excursion", launched);
}

}  // namespace xadt::cuda
