// Causal attention backward on the GPU, the twin of cpu::attention_backward
// (the training form with the saved softmax probabilities P):
//   dS_ij = P_ij (dO_i . V_j - dO_i . O_i)       j <= i, 0 above the diagonal
//   dQ_i  = scale sum_{j<=i} dS_ij K_j
//   dK_j  = scale sum_{i>=j} dS_ij Q_i,   dV_j = sum_{i>=j} P_ij dO_i
// Three plain kernels over (row, head, batch) blocks, dS in a caller-given
// workspace [B, heads, S, S]. Correct and deterministic (fixed loop orders),
// not fast: FlashAttention-class speed is not the goal.
#include "kernels/block_reduce.cuh"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void attention_ds_kernel(float* ds, const float* d_o, const float* v, const float* o, const float* probs,
                                    int64_t seq_len, int64_t heads, int64_t dv) {
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const float* doi = d_o + ((b * seq_len + i) * heads + h) * dv;
  const float* oi = o + ((b * seq_len + i) * heads + h) * dv;
  float partial = 0.0f;
  for (int64_t c = threadIdx.x; c < dv; c += blockDim.x) partial += doi[c] * oi[c];
  const float delta = block_sum(partial);
  const int64_t row = ((b * heads + h) * seq_len + i) * seq_len;
  for (int64_t j = threadIdx.x; j < seq_len; j += blockDim.x) {
    if (j > i) {
      ds[row + j] = 0.0f;
      continue;
    }
    const float* vj = v + ((b * seq_len + j) * heads + h) * dv;
    float dp = 0.0f;
    for (int64_t c = 0; c < dv; ++c) dp += doi[c] * vj[c];
    ds[row + j] = probs[row + j] * (dp - delta);
  }
}

__global__ void attention_dq_kernel(float* dq, const float* ds, const float* k, int64_t seq_len, int64_t heads,
                                    int64_t dqk, float scale) {
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const float* dsr = ds + ((b * heads + h) * seq_len + i) * seq_len;
  for (int64_t d = threadIdx.x; d < dqk; d += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j <= i; ++j) acc += dsr[j] * k[((b * seq_len + j) * heads + h) * dqk + d];
    dq[((b * seq_len + i) * heads + h) * dqk + d] = scale * acc;
  }
}

__global__ void attention_dkv_kernel(float* dk, float* dv_out, const float* ds, const float* probs, const float* q,
                                     const float* d_o, int64_t seq_len, int64_t heads, int64_t dqk, int64_t dv,
                                     float scale) {
  const int64_t j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t plane = (b * heads + h) * seq_len * seq_len;
  for (int64_t d = threadIdx.x; d < dqk; d += blockDim.x) {
    float acc = 0.0f;
    for (int64_t i = j; i < seq_len; ++i) acc += ds[plane + i * seq_len + j] * q[((b * seq_len + i) * heads + h) * dqk + d];
    dk[((b * seq_len + j) * heads + h) * dqk + d] = scale * acc;
  }
  for (int64_t d = threadIdx.x; d < dv; d += blockDim.x) {
    float acc = 0.0f;
    for (int64_t i = j; i < seq_len; ++i) acc += probs[plane + i * seq_len + j] * d_o[((b * seq_len + i) * heads + h) * dv + d];
    dv_out[((b * seq_len + j) * heads + h) * dv + d] = acc;
  }
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, float* ds_workspace, const float* d_o, const float* q,
                        const float* k, const float* v, const float* o, const float* probs, int64_t batch,
                        int64_t seq_len, int64_t heads, int64_t dqk, int64_t dv_dim, float scale,
                        cudaStream_t stream) {
  if (batch * seq_len * heads == 0) return;
  const dim3 grid(static_cast<unsigned>(seq_len), static_cast<unsigned>(heads), static_cast<unsigned>(batch));
  attention_ds_kernel<<<grid, kThreads, 0, stream>>>(ds_workspace, d_o, v, o, probs, seq_len, heads, dv_dim);
  MOE_CUDA_CHECK(cudaGetLastError());
  attention_dq_kernel<<<grid, kThreads, 0, stream>>>(dq, ds_workspace, k, seq_len, heads, dqk, scale);
  MOE_CUDA_CHECK(cudaGetLastError());
  attention_dkv_kernel<<<grid, kThreads, 0, stream>>>(dk, dv, ds_workspace, probs, q, d_o, seq_len, heads, dqk, dv_dim,
                                                      scale);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
