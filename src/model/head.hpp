// Output head (lm_head.weight [V, H]), shared by the main model and the MTP
// modules: logits [T, V] = x [T, H] · W^T, x being the final RMSNorm's
// output. DeepSeek-V3 keeps the head out of FP8 (§3.3.1), so an fp8 run
// computes it with BF16 inputs.
#pragma once

#include "model/linear.hpp"

namespace moelab {

inline GemmPrecision head_precision(GemmPrecision p) { return p == GemmPrecision::fp8 ? GemmPrecision::bf16 : p; }

template <typename T>
void head_forward(Tensor<T>& logits, const Tensor<T>& x, const Param<T>& w, GemmPrecision precision) {
  linear_forward(logits, x, w, head_precision(precision));
}

// dx (=), w.grad (+=).
template <typename T>
void head_backward(Tensor<T>& dx, Param<T>& w, const Tensor<T>& dlogits, const Tensor<T>& x, GemmPrecision precision) {
  linear_backward(&dx, w, dlogits, x, head_precision(precision));
}

}  // namespace moelab
