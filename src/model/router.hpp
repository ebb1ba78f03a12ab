// The MoE gate (mlp.gate.weight [E, H], mlp.gate.e_score_correction_bias [E]),
// reference/deepseek-v3.md §2.3:
//   logits = x · W^T (FP32 GEMM, as HF; the gate stays out of FP8, §3.3.1)
//   scores = sigmoid(logits)   (softmax for V2-style configs)
//   choice: kernels/shared/route.hpp (bias for selection only, group-limited top-k)
//   topk_weight = scores[topk_idx] (unbiased), / sum when norm_topk_prob, * routed_scaling_factor
// Backward flows through the gating weights only (selection has no
// gradient; the bias has none): d scores from d_topk_weight, plus an optional
// extra d_scores [T, E] (balance-loss gradients from train/), then through
// sigmoid/softmax and the GEMM. Gradients: dx +=, W.grad +=.
// Dimension letters: T tokens, H hidden, E routed experts, K experts per token.
#pragma once

#include <vector>

#include "kernels/shared/route.hpp"
#include "model/config.hpp"
#include "model/linear.hpp"

namespace moelab {

template <typename T>
struct RouterParams {
  Param<T>* weight = nullptr;  // [E, H]
  Param<T>* bias = nullptr;    // [E] e_score_correction_bias (noaux_tc only), no gradient
};

template <typename T>
struct RouterSaved {
  Tensor<T> scores;                  // [T, E] affinities (post-sigmoid/softmax, pre-bias)
  Tensor<int32_t> topk_idx;          // [T, K]
  Tensor<T> topk_weight;             // [T, K]
  std::vector<int64_t> expert_load;  // [E] tokens routed to each expert in this call
};

shared::RouteParams route_params(const ModelConfig& config);

template <typename T>
void router_forward(RouterSaved<T>& saved, const RouterParams<T>& p, const Tensor<T>& x, const ModelConfig& config);

// dx [T, H] +=, W.grad +=, from d_topk_weight [T, K] and optional d_scores [T, E].
template <typename T>
void router_backward(Tensor<T>& dx, const RouterSaved<T>& saved, const RouterParams<T>& p, const Tensor<T>& x,
                     const Tensor<T>& d_topk_weight, const Tensor<T>* d_scores, const ModelConfig& config);

}  // namespace moelab
