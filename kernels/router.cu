// Routing on the GPU: one thread per token runs the single-source
// shared::route_token (kernels/shared/route.hpp: bias for selection only,
// group-limited top-k, unbiased normalised weights times the scaling factor),
// the function the CPU backend's topk_route calls, so expert choices are
// identical and weights equal bit for bit.
#include "kernels/device.hpp"
#include "kernels/kernels.hpp"

namespace moelab::cuda {

namespace {

__global__ void route_tokens_kernel(int32_t* topk_idx, float* topk_weight, const float* scores, const float* bias,
                                    int64_t tokens, shared::RouteParams params) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  float choice[kMaxRoutedExperts], group_score[kMaxRoutedExperts];
  int idx[kMaxRoutedExperts];
  shared::route_token(idx, topk_weight + t * params.top_k, choice, group_score, scores + t * params.num_experts,
                      bias, params);
  for (int j = 0; j < params.top_k; ++j) topk_idx[t * params.top_k + j] = idx[j];
}

}  // namespace

void route_tokens(int32_t* topk_idx, float* topk_weight, const float* scores, const float* bias, int64_t tokens,
                  const shared::RouteParams& params, cudaStream_t stream) {
  MOE_CHECK(params.num_experts <= kMaxRoutedExperts && params.top_k <= params.num_experts)
      << "route_tokens: " << params.num_experts << " experts (at most " << kMaxRoutedExperts << " on the GPU)";
  if (tokens == 0) return;
  route_tokens_kernel<<<static_cast<unsigned>((tokens + 127) / 128), 128, 0, stream>>>(topk_idx, topk_weight, scores,
                                                                                     bias, tokens, params);
  MOE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moelab::cuda
