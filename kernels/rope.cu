// RoPE (adjacent pairs, YaRN folded into the cos/sin table) on the GPU: one
// thread per (token, head, pair), rotating through the single-source
// kernels/shared/rope.hpp function the CPU backend calls. The table is the
// CPU backend's (cpu::make_rope_table, YaRN frequencies from
// shared::rope_inv_freq), copied to the device: [max_positions, pairs].
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"
#include "kernels/shared/rope.hpp"

namespace moelab::cuda {

namespace {

__global__ void rope_apply_kernel(float* x, int64_t tokens, int64_t token_stride, int64_t heads, int64_t head_stride,
                                  const int32_t* positions, const float* cos_table, const float* sin_table,
                                  int64_t pairs, float sign) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * heads * pairs) return;
  const int64_t pair = i % pairs, h = (i / pairs) % heads, t = i / (pairs * heads);
  const int64_t at = static_cast<int64_t>(positions[t]) * pairs + pair;
  float* v = x + t * token_stride + h * head_stride + 2 * pair;
  shared::rope_rotate_pair(&v[0], &v[1], cos_table[at], sign * sin_table[at]);
}

}  // namespace

void rope_apply(float* x, int64_t tokens, int64_t token_stride, int64_t heads, int64_t head_stride,
                const int32_t* positions, const float* cos_table, const float* sin_table, int64_t pairs, bool inverse,
                cudaStream_t stream) {
  const int64_t n = tokens * heads * pairs;
  if (n == 0) return;
  rope_apply_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(
      x, tokens, token_stride, heads, head_stride, positions, cos_table, sin_table, pairs, inverse ? -1.0f : 1.0f);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
