// Causal multi-head attention forward on the GPU (the training form of MLA
// after its projections: full K and V per head), the twin of
// src/backend/cpu/attention.cpp. One block per (sequence, head, query row):
// scores scale * q_i . k_j for j <= i into the saved probs row, a block-wide
// softmax, then o_i = sum_j p_ij v_j. Straightforward rather than
// FlashAttention-class: correctness and a CPU oracle first.
//   q, k [B*S, heads, dqk]  v, o [B*S, heads, dv]  probs [B, heads, S, S]
#include "kernels/block_reduce.cuh"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

__global__ void attention_forward_kernel(float* o, float* probs, const float* q, const float* k, const float* v,
                                         int64_t seq_len, int64_t heads, int64_t dqk, int64_t dv, float scale) {
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t token_i = b * seq_len + i;
  const float* qi = q + (token_i * heads + h) * dqk;
  float* p = probs + ((b * heads + h) * seq_len + i) * seq_len;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < seq_len; j += blockDim.x) {
    if (j > i) {
      p[j] = 0.0f;
      continue;
    }
    const float* kj = k + ((b * seq_len + j) * heads + h) * dqk;
    float s = 0.0f;
    for (int64_t d = 0; d < dqk; ++d) s += qi[d] * kj[d];
    p[j] = s * scale;
    m = fmaxf(m, p[j]);
  }
  m = block_max(m);
  float partial = 0.0f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) partial += (p[j] = expf(p[j] - m));
  const float inv = 1.0f / block_sum(partial);
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) p[j] *= inv;
  __syncthreads();
  float* oi = o + (token_i * heads + h) * dv;
  for (int64_t d = threadIdx.x; d < dv; d += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j <= i; ++j) acc += p[j] * v[((b * seq_len + j) * heads + h) * dv + d];
    oi[d] = acc;
  }
}

}  // namespace

void attention_forward(float* o, float* probs, const float* q, const float* k, const float* v, int64_t batch,
                       int64_t seq_len, int64_t heads, int64_t dqk, int64_t dv, float scale, cudaStream_t stream) {
  if (batch * seq_len * heads == 0) return;
  const dim3 grid(static_cast<unsigned>(seq_len), static_cast<unsigned>(heads), static_cast<unsigned>(batch));
  attention_forward_kernel<<<grid, 128, 0, stream>>>(o, probs, q, k, v, seq_len, heads, dqk, dv, scale);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
