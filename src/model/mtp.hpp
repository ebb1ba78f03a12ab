// Multi-Token Prediction module k (paper §2.2, Eq. 21-25; depth D =
// num_nextn_predict_layers), stored as layer num_hidden_layers + k - 1:
//   h'_i = eh_proj( [enorm(Emb(t_{i+k})) ; hnorm(h^{k-1}_i)] )
//   h^k  = Block_k(h')         over positions i = 0 .. S-1-k of each sequence
//   P^k  = head(shared_head.norm(h^k))   predicts t_{i+k+1} (= targets[i+k])
// with the main model's embedding and head (shared). h^0 is the main model's
// last block output before model.norm (as Megatron-LM's MTP). NOTE: the
// concatenation order [embedding ; hidden] is that of the released weights
// (vLLM/SGLang deepseek_mtp: eh_proj(cat(enorm(emb), hnorm(h)))); the paper
// writes the two the other way round.
// Gradients: dh_prev +=, weight grads (embedding and head included) +=.
#pragma once

#include "model/block.hpp"

namespace moelab {

template <typename T>
struct MtpParams {
  Param<T>* enorm = nullptr;             // [H]
  Param<T>* hnorm = nullptr;             // [H]
  Param<T>* eh_proj = nullptr;           // [H, 2H]
  Param<T>* shared_head_norm = nullptr;  // [H]
  BlockParams<T> block;
};

template <typename T>
struct MtpSaved {
  int64_t depth = 0;                 // k, 1-based
  SeqShape shape;                    // batch x (S - k)
  std::vector<int32_t> prev_rows;    // [B*L] row of h^{k-1} feeding each position
  std::vector<int32_t> ids, targets; // [B*L] t_{i+k} and t_{i+k+1}
  Tensor<T> h_prev, emb;             // [B*L, H]
  Tensor<T> en, en_inv, hn, hn_inv;  // normed, inv rms
  Tensor<T> cat;                     // [B*L, 2H]
  Tensor<T> proj;                    // [B*L, H] block input
  BlockSaved<T> block;
  Tensor<T> out;                     // [B*L, H] h^k
  Tensor<T> fn, fn_inv;              // shared_head.norm(h^k)
  Tensor<T> probs;                   // [B*L, V] softmax
  double loss = 0;
};

// h_prev [B*prev_len, H] (h^{k-1}); token_ids and targets [B*S]. Returns L^k.
template <typename T>
double mtp_forward(MtpSaved<T>& saved, const MtpParams<T>& p, const Param<T>& embed, const Param<T>& head,
                   const Tensor<T>& h_prev, int64_t prev_len, const std::vector<int32_t>& token_ids,
                   const std::vector<int32_t>& targets, int64_t batch, int64_t seq_len, int64_t depth,
                   const ModelConfig& config, const MlaRope<T>& rope, const ModelContext<T>& ctx);

// dh_prev [B*prev_len, H] +=; d_out: gradient into h^k from module k+1 (or null);
// loss_scale: d total / d L^k (lambda / D).
template <typename T>
void mtp_backward(Tensor<T>& dh_prev, MtpSaved<T>& saved, const MtpParams<T>& p, Param<T>& embed, Param<T>& head,
                  const Tensor<T>* d_out, double loss_scale, const ModelConfig& config, const MlaRope<T>& rope,
                  const ModelContext<T>& ctx);

}  // namespace moelab
