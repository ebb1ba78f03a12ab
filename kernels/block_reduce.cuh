// Block-wide max and sum of one float per thread (blockDim.x a multiple of
// 32, at most 1024), the building block of the row-wise kernels (softmax,
// cross-entropy). Every thread receives the result.
#pragma once

namespace moelab::cuda {

template <typename Op>
__device__ float block_reduce(float value, Op op) {
  __shared__ float warp_values[32];
  __shared__ float result;
  for (int offset = 16; offset > 0; offset /= 2) value = op(value, __shfl_down_sync(0xffffffffu, value, offset));
  if (threadIdx.x % 32 == 0) warp_values[threadIdx.x / 32] = value;
  __syncthreads();
  if (threadIdx.x == 0) {
    float r = warp_values[0];
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r = op(r, warp_values[w]);
    result = r;
  }
  __syncthreads();
  const float r = result;
  __syncthreads();  // result may be reused by the next reduction
  return r;
}

__device__ inline float block_max(float value) {
  return block_reduce(value, [](float a, float b) { return fmaxf(a, b); });
}

__device__ inline float block_sum(float value) {
  return block_reduce(value, [](float a, float b) { return a + b; });
}

}  // namespace moelab::cuda
