// Fine-grained FP8 quantization on the GPU: one block per tile (1x128,
// 128x1 or 128x128, partial at the edges). The block reduces the tile's amax,
// then every thread converts its elements with the single-source scale and
// element functions of kernels/shared/fp8_quant.hpp, the same ones the CPU
// quantizer (src/numerics/quantize.cpp) calls. amax is a max, so the
// reduction order cannot change it: codes and scales match the CPU bit for bit.
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/fp8_quant.hpp"

namespace moelab::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void fp8_quantize_kernel(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols,
                                    int tile_rows, int tile_cols, shared::Fp8Format format, bool ue8m0) {
  const int64_t tile_r = blockIdx.y, tile_c = blockIdx.x;
  const int64_t r0 = tile_r * tile_rows, c0 = tile_c * tile_cols;
  const int rows_here = static_cast<int>(rows - r0 < tile_rows ? rows - r0 : tile_rows);
  const int cols_here = static_cast<int>(cols - c0 < tile_cols ? cols - c0 : tile_cols);
  const int n = rows_here * cols_here;

  float amax = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    amax = fmaxf(amax, fabsf(x[(r0 + i / cols_here) * cols + c0 + i % cols_here]));
  for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_down_sync(0xffffffffu, amax, offset));
  __shared__ float warp_max[kThreads / 32];
  __shared__ float scale;
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) m = fmaxf(m, warp_max[w]);
    scale = shared::fp8_tile_scale(m, format, ue8m0);
    scales[tile_r * gridDim.x + tile_c] = scale;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t at = (r0 + i / cols_here) * cols + c0 + i % cols_here;
    codes[at] = shared::fp8_quantize_value(x[at], scale, format);
  }
}

}  // namespace

void fp8_quantize(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols, int tile_rows,
                  int tile_cols, const shared::Fp8Format& format, bool ue8m0, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  const dim3 grid(static_cast<unsigned>((cols + tile_cols - 1) / tile_cols),
                  static_cast<unsigned>((rows + tile_rows - 1) / tile_rows));
  fp8_quantize_kernel<<<grid, kThreads, 0, stream>>>(codes, scales, x, rows, cols, tile_rows, tile_cols, format,
                                                     ue8m0);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
