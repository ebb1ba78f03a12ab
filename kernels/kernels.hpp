// Launchers of moelab's CUDA kernels, one line per op; outputs first, then
// inputs, then sizes, then the stream. All pointers are device pointers.
// Every op has a CPU twin (the CPU backend, sharing kernels/shared/) and a
// test comparing the two wherever a GPU is present.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/shared/fp8.hpp"

namespace moelab::cuda {

// y [rows, n] = RMSNorm(x [rows, n]) * weight [n]; one block per row.
void rmsnorm_forward(float* y, const float* x, const float* weight, int64_t rows, int n, float eps,
                     cudaStream_t stream);

// codes [rows, cols] and scales [ceil(rows/tile_rows), ceil(cols/tile_cols)]
// = FP8 quantization of x [rows, cols] in tiles of tile_rows x tile_cols
// (1x128, 128x1, 128x128; partial at the edges). One block per tile.
void fp8_quantize(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols, int tile_rows,
                  int tile_cols, const shared::Fp8Format& format, bool ue8m0, cudaStream_t stream);

// y [m, n] = x [m, k] * w [n, k]^T through cuBLAS: FP32 (no TF32), or inputs
// rounded to BF16 with FP32 accumulation (the CPU backend's bf16 mode).
void gemm_xwt_f32(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k, cudaStream_t stream);
void gemm_xwt_bf16(float* y, const float* x, const float* w, int64_t m, int64_t n, int64_t k, cudaStream_t stream);

// y [m, n] = emulated FP8 A [m, k] · W [n, k]^T (codes) with the tensor-core
// accumulator of fraction_bits F, promoted to FP32 every `interval` K
// elements (a multiple of 32; k rounded up for "never"): a_scale [m,
// intervals] and w_scale [n, intervals] are each operand's scale over each
// interval. Bit-identical to numerics::fp8_gemm.
void fp8_gemm_emulated(float* y, const uint8_t* a_codes, const float* a_scale, const uint8_t* w_codes,
                       const float* w_scale, int64_t m, int64_t n, int64_t k, const shared::Fp8Format& a_format,
                       const shared::Fp8Format& w_format, int fraction_bits, int64_t interval, cudaStream_t stream);
// codes [n] = fp8(x [n]), RNE satfinite: E4M3, or E5M2 when e5m2.
void fp8_convert(uint8_t* codes, const float* x, int64_t n, bool e5m2, cudaStream_t stream);

}  // namespace moelab::cuda
