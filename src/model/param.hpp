// A trainable tensor under its Hugging Face name, with its gradient.
//
// Gradient rule everywhere in src/model: backward functions ADD into
// Param::grad (+=) and SET activation gradients (=), so parameters used
// twice (the shared embedding and head under MTP) accumulate naturally and
// train/ zeroes grads once per step.
//
// The whole model's parameters (ModelParams) live in model/model.hpp.
#pragma once

#include <string>

#include "core/tensor.hpp"

namespace moelab {

template <typename T>
struct Param {
  std::string name;  // "model.layers.3.self_attn.q_a_proj.weight"
  Tensor<T> value;
  Tensor<T> grad;    // same shape; stays zero when !trainable
  bool trainable = true;  // false for e_score_correction_bias (updated by train/balance, no gradient)

  Param() = default;
  Param(std::string n, Shape shape, bool is_trainable = true)
      : name(std::move(n)), value(shape), grad(shape), trainable(is_trainable) {}
};

// Shapes a tensor for a full overwrite, keeping its buffer when it is large
// enough: no allocation and no zero fill in steady state (buffers that live
// in the layers' saved state are reused step after step). The contents are
// unspecified; prepare_zero for buffers that are accumulated into.
template <typename T>
void prepare(Tensor<T>& t, Shape shape) {
  t.data.resize(shape_numel(shape));
  t.shape = std::move(shape);
}

template <typename T>
void prepare_zero(Tensor<T>& t, Shape shape) {
  prepare(t, std::move(shape));
  t.zero();
}

}  // namespace moelab
