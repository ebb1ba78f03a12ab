// Launchers of moelab's CUDA kernels, one line per op; outputs first, then
// inputs, then sizes, then the stream. All pointers are device pointers.
// Every op has a CPU twin (the CPU backend, sharing kernels/shared/) and a
// test comparing the two wherever a GPU is present.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moelab::cuda {

// y [rows, n] = RMSNorm(x [rows, n]) * weight [n]; one block per row.
void rmsnorm_forward(float* y, const float* x, const float* weight, int64_t rows, int n, float eps,
                     cudaStream_t stream);

// codes [n] = fp8(x [n]), RNE satfinite (E4M3, or E5M2 when e5m2).
void fp8_convert(uint8_t* codes, const float* x, int64_t n, bool e5m2, cudaStream_t stream);

// x [rows, cols] -> codes [rows, cols], scales [ceil(rows/tile_rows),
// ceil(cols/tile_cols)]: one scale per tile (1x128, 128x1, 128x128, or the
// whole tensor), scale = max(amax, 1e-4) / max_finite (UE8M0: rounded up to a
// power of two). Equals numerics::quantize bit for bit; one warp per tile.
void fp8_quantize(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols, int tile_rows,
                  int tile_cols, bool e5m2, bool ue8m0, cudaStream_t stream);

}  // namespace moelab::cuda
