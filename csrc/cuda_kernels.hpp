// Launchers of the CUDA kernels (cuda_kernels.cu), for the bindings in cuda_bindings.cpp.
//
// Pointers are device addresses (torch's data_ptr()) and `stream` is a cudaStream_t as an integer
// (torch.cuda.current_stream().cuda_stream), so neither side needs the other's headers and the
// extension never links libtorch. Arguments are validated by xadt.kernels before these run; each
// launcher only queues work on the stream and throws std::runtime_error on a CUDA error.
#pragma once

#include <cstdint>

namespace xadt::cuda {

// view: (H, W, C) of dtype 0 = uint8, 1 = uint16, 2 = float32, strides in elements; boxes: int64
// (N, 4); norm: float64 (3, C) = per channel 1 / (scale * std), -mean / std and the normalised
// pad value; out: float32 (N, C, size, size).
void extract_patches(std::uintptr_t view, int dtype, int64_t height, int64_t width,
                     int64_t channels, int64_t sy, int64_t sx, int64_t sc, std::uintptr_t boxes,
                     int64_t n_boxes, int64_t size, std::uintptr_t norm, std::uintptr_t out,
                     std::uintptr_t stream);

// boxes: int64 (N, 4); scores: float64 (N,); finite scores are summed scaled by 2**-exponent;
// out: float32 (height, width).
void window_map(std::uintptr_t boxes, std::uintptr_t scores, int64_t n, int64_t height,
                int64_t width, int exponent, std::uintptr_t out, std::uintptr_t stream);

// C-contiguous x (N, D), mean (D,), precision (D, D) and out (N,), all float32 or all float64.
void mahalanobis(std::uintptr_t x, std::uintptr_t mean, std::uintptr_t precision,
                 std::uintptr_t out, int64_t rows, int64_t dim, bool is_double,
                 std::uintptr_t stream);

// C-contiguous x (N, D), mean, std (D,), inv_corr (D, D) and out (N,), all float32 or all
// float64; a row whose z-scores are not all finite scores NaN.
void topn_excursion(std::uintptr_t x, std::uintptr_t mean, std::uintptr_t std_,
                    std::uintptr_t inv_corr, std::uintptr_t out, int64_t rows, int64_t dim,
                    int64_t keep, bool is_double, std::uintptr_t stream);

}  // namespace xadt::cuda
