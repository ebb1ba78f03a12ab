// RMSNorm layer (input_layernorm, post_attention_layernorm, q_a_layernorm,
// kv_a_layernorm, model.norm, MTP enorm/hnorm/shared_head.norm):
//   y = x / sqrt(mean(x^2) + eps) * w      over the last dimension
// Gradients: dx =, w.grad +=. The math is src/backend/cpu/rmsnorm.hpp.
#pragma once

#include "core/tensor.hpp"
#include "model/param.hpp"

namespace moelab {

// x [rows, D] -> y [rows, D], inv_rms [rows] (saved for backward); both resized.
template <typename T>
void rmsnorm_forward(Tensor<T>& y, Tensor<T>& inv_rms, const Tensor<T>& x, const Param<T>& w, double eps);

template <typename T>
void rmsnorm_backward(Tensor<T>& dx, Param<T>& w, const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& inv_rms);

}  // namespace moelab
