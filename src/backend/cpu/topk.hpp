// Top-k routing of a batch of tokens: kernels/shared/route.hpp's route_token
// per row (group-limited, bias for selection only), parallel over tokens,
// plus the per-expert token counts (the load the balancing bias follows).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/shared/route.hpp"

namespace moelab::cpu {

// topk_idx [T, K], topk_weight [T, K] from scores [T, E] and bias [E] (or null).
template <typename T>
void topk_route(int32_t* topk_idx, T* topk_weight, const T* scores, const T* bias, int64_t tokens,
                const shared::RouteParams& params);

// Tokens routed to each expert: counts [E].
std::vector<int64_t> expert_counts(const int32_t* topk_idx, int64_t tokens, int64_t top_k, int64_t num_experts);

// Work of route_token per token: E for the bias add, E for group scores,
// top_k * E for the selection.
inline double topk_flops(int64_t tokens, int64_t experts, int64_t top_k) {
  return static_cast<double>(tokens) * experts * (2.0 + top_k);
}
inline double topk_bytes(int64_t tokens, int64_t experts, int64_t top_k, int elem_bytes) {
  return static_cast<double>(tokens) * (experts * elem_bytes + top_k * (4.0 + elem_bytes));
}

}  // namespace moelab::cpu
