// Token embedding (model.embed_tokens.weight [V, H]):
//   forward   y[t] = E[ids[t]]
//   backward  E.grad[ids[t]] += dy[t]   (in token order: deterministic)
#pragma once

#include <cstdint>

#include "core/tensor.hpp"
#include "model/param.hpp"

namespace moelab {

// y [tokens, H] (resized).
template <typename T>
void embedding_forward(Tensor<T>& y, const Param<T>& table, const int32_t* ids, int64_t tokens);

template <typename T>
void embedding_backward(Param<T>& table, const Tensor<T>& dy, const int32_t* ids, int64_t tokens);

}  // namespace moelab
