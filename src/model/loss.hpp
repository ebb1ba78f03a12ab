// Cross-entropy loss of next-token prediction:
//   L = mean over counted tokens t of -log softmax(logits[t])[target[t]]
// Tokens whose target is negative (kIgnoreTarget) are not counted.
// Backward: dlogits[t] = scale * (softmax(logits[t]) - onehot(target[t])) / counted (= ; 0 for ignored rows).
#pragma once

#include <cstdint>

#include "core/tensor.hpp"

namespace moelab {

constexpr int32_t kIgnoreTarget = -1;

// logits [T, V] are replaced by their softmax (saved for backward). Returns
// the mean loss (0 when no token counts); *counted receives the count.
template <typename T>
double cross_entropy_forward(Tensor<T>& logits_to_probs, const int32_t* targets, int64_t tokens,
                             int64_t* counted = nullptr);

// probs [T, V] (from forward) become dlogits, times `scale`.
template <typename T>
void cross_entropy_backward(Tensor<T>& probs_to_dlogits, const int32_t* targets, int64_t tokens, double scale);

}  // namespace moelab
