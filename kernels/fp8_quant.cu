// FP8 conversion and fine-grained quantization on the GPU, over the
// single-source arithmetic of kernels/shared/fp8.hpp and fp8_quant.hpp (the
// CPU quantizer in src/numerics/quantize.cpp calls the same functions), so
// the GPU's codes and scales equal the CPU's bit for bit: amax is a maximum,
// exact in any order, and every other step is the shared code.
#include <algorithm>

#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/fp8_quant.hpp"

namespace moelab::cuda {

namespace {

constexpr int kWarp = 32;

MOE_HOST_DEVICE shared::Fp8Format format_of(bool e5m2) {
  return e5m2 ? shared::e5m2_format() : shared::e4m3_format();
}

__global__ void fp8_convert_kernel(uint8_t* codes, const float* x, int64_t n, bool e5m2) {
  const shared::Fp8Format f = format_of(e5m2);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    codes[i] = shared::float_to_fp8(x[i], f);
}

// One warp per tile: the lanes stride over the tile for amax, a warp
// max-reduction, then the shared scale and per-element conversion.
__global__ void fp8_quantize_kernel(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols,
                                    int tile_rows, int tile_cols, int64_t scale_cols, bool e5m2, bool ue8m0) {
  const shared::Fp8Format f = format_of(e5m2);
  const int64_t tile = blockIdx.x;  // [scale_rows, scale_cols] row-major
  const int64_t r0 = tile / scale_cols * tile_rows, c0 = tile % scale_cols * tile_cols;
  const int rows_here = static_cast<int>(rows - r0 < tile_rows ? rows - r0 : tile_rows);
  const int cols_here = static_cast<int>(cols - c0 < tile_cols ? cols - c0 : tile_cols);
  const int count = rows_here * cols_here;
  float amax = 0.0f;
  for (int i = threadIdx.x; i < count; i += kWarp)
    amax = fmaxf(amax, fabsf(x[(r0 + i / cols_here) * cols + c0 + i % cols_here]));
  for (int offset = kWarp / 2; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  const float scale = shared::fp8_tile_scale(amax, f, ue8m0);
  for (int i = threadIdx.x; i < count; i += kWarp) {
    const int64_t idx = (r0 + i / cols_here) * cols + c0 + i % cols_here;
    codes[idx] = shared::fp8_quantize_value(x[idx], scale, f);
  }
  if (threadIdx.x == 0) scales[tile] = scale;
}

}  // namespace

void fp8_convert(uint8_t* codes, const float* x, int64_t n, bool e5m2, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  fp8_convert_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(codes, x, n, e5m2);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void fp8_quantize(uint8_t* codes, float* scales, const float* x, int64_t rows, int64_t cols, int tile_rows,
                  int tile_cols, bool e5m2, bool ue8m0, cudaStream_t stream) {
  MOE_CHECK(tile_rows > 0 && tile_cols > 0) << "fp8_quantize: tile " << tile_rows << "x" << tile_cols;
  if (rows == 0 || cols == 0) return;
  const int64_t scale_rows = (rows + tile_rows - 1) / tile_rows, scale_cols = (cols + tile_cols - 1) / tile_cols;
  MOE_CHECK(scale_rows * scale_cols <= int64_t{1} << 31) << "fp8_quantize: too many tiles";
  fp8_quantize_kernel<<<static_cast<unsigned>(scale_rows * scale_cols), kWarp, 0, stream>>>(
      codes, scales, x, rows, cols, tile_rows, tile_cols, scale_cols, e5m2, ue8m0);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
