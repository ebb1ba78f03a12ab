// Cross-entropy of next-token prediction on the GPU, the twin of
// src/model/loss.cpp: one block per token row; logits become softmax
// probabilities in place (saved for backward) and nll[t] = log(sum) -
// (logit[target] - max) for counted rows (target >= 0), 0 otherwise.
// The mean over counted rows is taken on the host in double, as the CPU does.
#include "kernels/block_reduce.cuh"
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

__global__ void cross_entropy_forward_kernel(float* logits, double* nll, const int32_t* targets, int64_t vocab) {
  float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const int32_t target = targets[blockIdx.x];
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) m = fmaxf(m, row[v]);
  m = block_max(m);
  const float target_logit = target >= 0 ? row[target] : m;
  __syncthreads();  // every thread has read the target logit before it is overwritten
  float partial = 0.0f;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) partial += (row[v] = expf(row[v] - m));
  const float sum = block_sum(partial);
  if (threadIdx.x == 0) nll[blockIdx.x] = target >= 0 ? log(static_cast<double>(sum)) - (target_logit - m) : 0.0;
  const float inv = 1.0f / sum;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) row[v] *= inv;
}

__global__ void cross_entropy_backward_kernel(float* probs, const int32_t* targets, int64_t tokens, int64_t vocab,
                                              float scale) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * vocab) return;
  const int64_t t = i / vocab, v = i % vocab;
  const int32_t target = targets[t];
  probs[i] = target < 0 ? 0.0f : scale * (probs[i] - (v == target ? 1.0f : 0.0f));
}

}  // namespace

void cross_entropy_forward(float* logits_to_probs, double* nll, const int32_t* targets, int64_t tokens, int64_t vocab,
                           cudaStream_t stream) {
  if (tokens == 0) return;
  cross_entropy_forward_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(logits_to_probs, nll, targets, vocab);
  MOE_CUDA_CHECK(cudaGetLastError());
}

void cross_entropy_backward(float* probs_to_dlogits, const int32_t* targets, int64_t tokens, int64_t vocab,
                            float scale, cudaStream_t stream) {
  if (tokens * vocab == 0) return;
  cross_entropy_backward_kernel<<<static_cast<unsigned>((tokens * vocab + 255) / 256), 256, 0, stream>>>(
      probs_to_dlogits, targets, tokens, vocab, scale);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
