// Routing of one token, single source for the CPU backend and the CUDA
// kernels: DeepSeek-V3's gate (reference/deepseek-v3.md §2.3, Hugging Face
// MoEGate with topk_method noaux_tc, official inference/model.py Gate):
//
//   choice = scores + bias                (bias = e_score_correction_bias; noaux_tc only)
//   group score = sum of the top-2 choice values in the group      (noaux_tc)
//               = max choice value in the group                    (group_limited_greedy)
//   keep the topk_group best groups; the others' choices become -inf (official
//   code since 2025-02-14; several HF copies use 0, which differs when s+b < 0)
//   topk_idx = the top_k best choices (descending; ties to the lower index)
//   topk_weight = scores[topk_idx] (UNBIASED), / (sum + 1e-20) when
//                 norm_topk_prob and top_k > 1, times routed_scaling_factor
//
// The scores are the post-sigmoid (or post-softmax) affinities; the bias
// only chooses experts, it never enters a weight.
#pragma once

#include <math.h>

#include "kernels/shared/host_device.hpp"

namespace moelab::shared {

enum RouteMethod : int { kRouteGreedy = 0, kRouteGroupLimitedGreedy = 1, kRouteNoauxTc = 2 };

struct RouteParams {
  int num_experts;
  int n_group;      // expert groups (DeepSeek-V3: 8 of 32 experts)
  int topk_group;   // groups kept per token (V3: 4)
  int top_k;        // experts per token (V3: 8)
  int method;       // RouteMethod
  bool norm_topk_prob;
  double routed_scaling_factor;
};

// Index of the largest value among values[0..n) (first on ties).
template <typename T>
MOE_HOST_DEVICE int argmax_first(const T* values, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (values[i] > values[best]) best = i;
  return best;
}

// Chooses the experts of one token.
//   topk_idx [top_k], topk_weight [top_k]: outputs
//   choice [num_experts], group_score [n_group]: scratch
//   scores [num_experts]: affinities; bias [num_experts] or nullptr
template <typename T>
MOE_HOST_DEVICE void route_token(int* topk_idx, T* topk_weight, T* choice, T* group_score, const T* scores,
                                 const T* bias, const RouteParams& p) {
  const int E = p.num_experts;
  for (int e = 0; e < E; ++e) choice[e] = scores[e] + (bias != nullptr && p.method == kRouteNoauxTc ? bias[e] : T(0));

  // Group-limited selection: mask the experts of all but the topk_group best groups.
  if (p.n_group > 1 && p.method != kRouteGreedy && p.topk_group < p.n_group) {
    const int group_size = E / p.n_group;
    for (int g = 0; g < p.n_group; ++g) {
      const T* c = choice + g * group_size;
      T first = -INFINITY, second = -INFINITY;
      for (int i = 0; i < group_size; ++i) {
        if (c[i] > first) {
          second = first;
          first = c[i];
        } else if (c[i] > second) {
          second = c[i];
        }
      }
      group_score[g] = p.method == kRouteNoauxTc ? first + second : first;
    }
    // Keep the topk_group best groups: pick them, marking each with +inf...
    for (int j = 0; j < p.topk_group; ++j) {
      int best = -1;
      for (int g = 0; g < p.n_group; ++g)
        if (group_score[g] != INFINITY && (best < 0 || group_score[g] > group_score[best])) best = g;
      group_score[best] = INFINITY;
    }
    // ...then mask every group not marked.
    for (int g = 0; g < p.n_group; ++g)
      if (group_score[g] != INFINITY)
        for (int i = 0; i < group_size; ++i) choice[g * group_size + i] = -INFINITY;
  }

  // Top-k experts by choice, descending, ties to the lower index.
  T weight_sum = 0;
  for (int j = 0; j < p.top_k; ++j) {
    const int best = argmax_first(choice, E);
    topk_idx[j] = best;
    topk_weight[j] = scores[best];
    weight_sum += scores[best];
    choice[best] = -INFINITY;
  }
  const T scale = static_cast<T>(p.routed_scaling_factor);
  const T denominator = p.norm_topk_prob && p.top_k > 1 ? weight_sum + T(1e-20) : T(1);
  for (int j = 0; j < p.top_k; ++j) topk_weight[j] = topk_weight[j] / denominator * scale;
}

}  // namespace moelab::shared
