// Permute and unpermute of token rows by expert on the GPU: gathers with the
// permutation index the CPU backend builds (cpu::make_permute_index, expert-
// major, stable in token order). Unpermute sums each token's top-k rows in
// slot order, the CPU's fixed order, so only FMA contraction can differ.
#include "kernels/block_reduce.cuh"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

__global__ void permute_rows_kernel(float* xp, const float* x, const int32_t* token_of, int64_t rows, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * n) return;
  xp[i] = x[static_cast<int64_t>(token_of[i / n]) * n + i % n];
}

__global__ void unpermute_rows_kernel(float* y, const float* yp, const float* weight, const int32_t* row_of,
                                      int64_t tokens, int64_t top_k, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * n) return;
  const int64_t t = i / n, c = i % n;
  float sum = 0.0f;
  for (int64_t k = 0; k < top_k; ++k) {
    const float w = weight != nullptr ? weight[t * top_k + k] : 1.0f;
    sum += w * yp[static_cast<int64_t>(row_of[t * top_k + k]) * n + c];
  }
  y[i] = sum;
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + 255) / 256); }

}  // namespace

void permute_rows(float* xp, const float* x, const int32_t* token_of, int64_t rows, int64_t n, cudaStream_t stream) {
  if (rows * n == 0) return;
  permute_rows_kernel<<<blocks_for(rows * n), 256, 0, stream>>>(xp, x, token_of, rows, n);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void unpermute_rows(float* y, const float* yp, const float* weight, const int32_t* row_of, int64_t tokens,
                    int64_t top_k, int64_t n, cudaStream_t stream) {
  if (tokens * n == 0) return;
  unpermute_rows_kernel<<<blocks_for(tokens * n), 256, 0, stream>>>(y, yp, weight, row_of, tokens, top_k, n);
  MOE_CUDA_CHECK(cudaGetLastError());
}

namespace {
__global__ void unpermute_backward_kernel(float* dyp, float* d_weight, const float* dy, const float* yp,
                                          const float* weight, const int32_t* row_of, int64_t top_k, int64_t n) {
  const int64_t slot = blockIdx.x;  // t * top_k + k
  const int64_t t = slot / top_k, row = row_of[slot];
  const float w = weight[slot];
  const float* g = dy + t * n;
  const float* src = yp + row * n;
  float* dst = dyp + row * n;
  float dot = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    dot += g[i] * src[i];
    dst[i] = w * g[i];
  }
  dot = block_sum(dot);
  if (threadIdx.x == 0) d_weight[slot] = dot;
}
}  // namespace

void unpermute_backward(float* dyp, float* d_weight, const float* dy, const float* yp, const float* weight,
                        const int32_t* row_of, int64_t tokens, int64_t top_k, int64_t n, cudaStream_t stream) {
  if (tokens * top_k == 0) return;
  unpermute_backward_kernel<<<static_cast<unsigned>(tokens * top_k), 128, 0, stream>>>(dyp, d_weight, dy, yp, weight,
                                                                                      row_of, top_k, n);
  MOE_CUDA_CHECK(cudaGetLastError());
}

namespace {
__global__ void segment_sum_rows_kernel(float* y, const float* rows, const int32_t* slots, const int64_t* offsets,
                                        int64_t segments, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= segments * n) return;
  const int64_t s = i / n, c = i % n;
  float sum = 0.0f;
  for (int64_t j = offsets[s]; j < offsets[s + 1]; ++j) sum = __fadd_rn(sum, rows[static_cast<int64_t>(slots[j]) * n + c]);
  y[i] = sum;
}
}  // namespace

void segment_sum_rows(float* y, const float* rows, const int32_t* slots, const int64_t* offsets, int64_t segments,
                      int64_t n, cudaStream_t stream) {
  if (segments * n == 0) return;
  segment_sum_rows_kernel<<<blocks_for(segments * n), 256, 0, stream>>>(y, rows, slots, offsets, segments, n);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
