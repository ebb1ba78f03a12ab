// SwiGLU feed-forward: the dense MLP of layers below first_k_dense_replace,
// the shared experts and (per expert) the routed experts:
//   y = down( silu(gate(x)) * up(x) )        (reference/deepseek-v3.md §2.4)
// Dimension letters: T tokens, H hidden, I inner (intermediate) size.
// Gradients: dx = (or += with accumulate_dx), weight grads +=.
#pragma once

#include "model/linear.hpp"

namespace moelab {

template <typename T>
struct MlpParams {
  Param<T>* gate_proj = nullptr;  // [I, H]
  Param<T>* up_proj = nullptr;    // [I, H]
  Param<T>* down_proj = nullptr;  // [H, I]
  int64_t inner() const { return gate_proj->value.dim(0); }
  int64_t hidden() const { return gate_proj->value.dim(1); }
};

template <typename T>
struct MlpSaved {
  Tensor<T> x;   // [T, H] input
  Tensor<T> gu;  // [T, 2I] gate(x) | up(x); overwritten by their gradients in backward
  Tensor<T> h;   // [T, I] silu(gate) * up
  Tensor<T> dh;  // [T, I] backward scratch
};

template <typename T>
void mlp_forward(Tensor<T>& y, MlpSaved<T>& saved, const MlpParams<T>& p, const Tensor<T>& x,
                 GemmPrecision precision);

template <typename T>
void mlp_backward(Tensor<T>& dx, MlpSaved<T>& saved, const MlpParams<T>& p, const Tensor<T>& dy,
                  GemmPrecision precision, bool accumulate_dx = false);

}  // namespace moelab
