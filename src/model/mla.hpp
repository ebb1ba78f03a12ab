// Multi-head Latent Attention, training form (full K and V per head);
// paper §2.1.1 Eq. 1-11, Hugging Face DeepseekV3Attention:
//
//   q  = q_b_proj(q_a_layernorm(q_a_proj(x)))   (or q_proj(x) when q_lora_rank is null)
//        -> per head [q_nope (dn) ; q_pe (dr)],  q_pe = RoPE(q_pe)
//   kv_a = kv_a_proj_with_mqa(x) -> [c (Dc) ; k_pe (dr)],  k_pe = RoPE(k_pe), shared by all heads
//   kv = kv_b_proj(kv_a_layernorm(c)) -> per head [k_nope (dn) ; v (dv)]
//   k  = [k_nope ; k_pe] per head
//   o  = causal softmax(q k^T * softmax_scale) v    (softmax_scale with YaRN's mscale^2)
//   y  = o_proj(o)
// Dimension letters: T tokens (B sequences of S), H hidden, nh heads,
// dn qk_nope_head_dim, dr qk_rope_head_dim, dqk = dn + dr, dv v_head_dim,
// Dq q_lora_rank, Dc kv_lora_rank. Gradients: dx =, weight grads +=.
#pragma once

#include "model/config.hpp"
#include "model/context.hpp"
#include "model/linear.hpp"
#include "model/rope.hpp"

namespace moelab {

template <typename T>
struct MlaParams {
  Param<T>* q_a_proj = nullptr;       // [Dq, H]   (q_lora_rank set)
  Param<T>* q_a_layernorm = nullptr;  // [Dq]
  Param<T>* q_b_proj = nullptr;       // [nh*dqk, Dq]
  Param<T>* q_proj = nullptr;         // [nh*dqk, H] (q_lora_rank null)
  Param<T>* kv_a_proj_with_mqa = nullptr;  // [Dc + dr, H]
  Param<T>* kv_a_layernorm = nullptr;      // [Dc]
  Param<T>* kv_b_proj = nullptr;           // [nh*(dn + dv), Dc]
  Param<T>* o_proj = nullptr;              // [H, nh*dv]
};

template <typename T>
struct MlaSaved {
  Tensor<T> x;                               // [T, H]
  Tensor<T> q_a, q_a_norm, q_a_inv_rms;      // [T, Dq], [T, Dq], [T]
  Tensor<T> q;                               // [T, nh, dqk] after RoPE
  Tensor<T> c, c_norm, c_inv_rms;            // [T, Dc], [T, Dc], [T]
  Tensor<T> kv;                              // [T, nh, dn + dv]
  Tensor<T> k, v;                            // [T, nh, dqk], [T, nh, dv]
  Tensor<T> probs;                           // [B, nh, S, S]
  Tensor<T> o;                               // [T, nh * dv]
  std::vector<int32_t> positions;            // [T]
  // forward / backward scratch, kept so steady-state steps do not allocate
  Tensor<T> kv_a;                            // [T, Dc + dr]
  Tensor<T> d_o, dq, dk, dv, dkv, dkv_a, dc_norm, dc, dqa_norm, dqa;
};

template <typename T>
void mla_forward(Tensor<T>& y, MlaSaved<T>& saved, const MlaParams<T>& p, const Tensor<T>& x,
                 const ModelConfig& config, SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx);

template <typename T>
void mla_backward(Tensor<T>& dx, MlaSaved<T>& saved, const MlaParams<T>& p, const Tensor<T>& dy,
                  const ModelConfig& config, SeqShape shape, const MlaRope<T>& rope, const ModelContext<T>& ctx);

// ---- decoding form: compressed-latent KV cache --------------------------------
// The official inference code's "absorb" mode (reference/deepseek-v3.md §2.2):
// only kv_a_layernorm(c) [Dc] and the rotated k_pe [dr] are cached per token
// (576 values per token and layer for DeepSeek-V3); W_UK is absorbed into
// the query (q_lat = q_nope · W_UK^h) and W_UV applied after the weighted
// sum of latents. Forward only; equal to the training form up to rounding.
template <typename T>
struct MlaKvCache {
  int64_t length = 0;  // tokens cached (the next token's position)
  Tensor<T> latent;    // [P, Dc]
  Tensor<T> k_pe;      // [P, dr]
};

template <typename T>
void mla_cache_init(MlaKvCache<T>& cache, const ModelConfig& config, int64_t max_positions);

// x [n, H]: the next n tokens of one sequence (positions cache.length ..);
// appends them to the cache; y [n, H] (causal over cached and new tokens).
template <typename T>
void mla_decode(Tensor<T>& y, MlaKvCache<T>& cache, const MlaParams<T>& p, const Tensor<T>& x,
                const ModelConfig& config, const MlaRope<T>& rope, GemmPrecision precision);

// FLOPs of one MLA forward over `shape` (GEMMs as executed, attention full S x S).
double mla_flops(const ModelConfig& config, SeqShape shape);

}  // namespace moelab
