// A DeepSeek-V3 decoder block, pre-norm residual (§2.4 of the sheet):
//   h = x + MLA(input_layernorm(x))
//   y = h + FFN(post_attention_layernorm(h))    FFN = dense SwiGLU MLP, or MoE
// Gradients: dx =, weight grads +=. A MoE block's backward adds the router
// gradient saved.moe.d_scores when train/ has set it.
#pragma once

#include "model/mla.hpp"
#include "model/moe.hpp"

namespace moelab {

template <typename T>
struct BlockParams {
  int64_t layer = 0;  // real index (MTP module k: num_hidden_layers + k - 1)
  bool is_moe = false;
  Param<T>* input_layernorm = nullptr;
  Param<T>* post_attention_layernorm = nullptr;
  MlaParams<T> attn;
  MlpParams<T> mlp;  // dense layers
  MoeParams<T> moe;  // MoE layers
};

template <typename T>
struct BlockSaved {
  Tensor<T> x, n1, inv1;  // input, input_layernorm(x), its inv rms
  Tensor<T> h, n2, inv2;  // after attention residual, post_attention_layernorm(h), inv rms
  MlaSaved<T> attn;
  MlpSaved<T> mlp;
  MoeSaved<T> moe;
  Tensor<T> attn_out, d_n2, d_h, d_n1;  // scratch
};

template <typename T>
void block_forward(Tensor<T>& y, BlockSaved<T>& saved, const BlockParams<T>& p, const Tensor<T>& x,
                   const ModelConfig& config, SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx);

template <typename T>
void block_backward(Tensor<T>& dx, BlockSaved<T>& saved, const BlockParams<T>& p, const Tensor<T>& dy,
                    const ModelConfig& config, SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx);

}  // namespace moelab
