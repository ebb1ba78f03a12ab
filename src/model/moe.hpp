// The MoE feed-forward of DeepSeek-V3 (paper Eq. 12-16, §2.4 of the sheet):
//   y = sum_k g_k Expert_{i_k}(x) + sum_s Shared_s(x)
// routed experts through RoutedExperts (no capacity limit, no dropping),
// the n_shared_experts shared experts as one SwiGLU of inner
// n_shared * moe_intermediate_size. Gradients: dx =, weight grads +=.
#pragma once

#include "model/context.hpp"
#include "model/router.hpp"

namespace moelab {

template <typename T>
struct MoeParams {
  RouterParams<T> gate;
  std::vector<MlpParams<T>> experts;  // [E] routed
  MlpParams<T> shared;                // valid when has_shared
  bool has_shared = false;
};

template <typename T>
struct MoeSaved {
  Tensor<T> x;  // [T, H]
  RouterSaved<T> router;
  std::unique_ptr<RoutedExperts<T>> experts;
  MlpSaved<T> shared;
  // Optional extra gradient of the router scores [T, E] (balance losses,
  // computed by train/ from router.scores); used by backward when non-empty.
  Tensor<T> d_scores;
  Tensor<T> shared_y, d_topk_weight;  // scratch

  const std::vector<int64_t>& expert_load() const { return router.expert_load; }  // [E]
};

template <typename T>
void moe_forward(Tensor<T>& y, MoeSaved<T>& saved, const MoeParams<T>& p, const Tensor<T>& x,
                 const ModelConfig& config, int64_t layer, const ModelContext<T>& ctx);

// d_scores: optional [T, E] (null: none; the model passes saved.d_scores when set).
template <typename T>
void moe_backward(Tensor<T>& dx, MoeSaved<T>& saved, const MoeParams<T>& p, const Tensor<T>& dy,
                  const Tensor<T>* d_scores, const ModelConfig& config, const ModelContext<T>& ctx);

}  // namespace moelab
