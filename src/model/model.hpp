// The DeepSeek-V3 model: parameters under their Hugging Face names, and the
// forward/backward of embedding -> blocks -> model.norm -> lm_head -> loss,
// plus the MTP modules and their loss (paper §2.2):
//   total = L_main + lambda / D * sum_k L_MTP^k
//
// Usage (train/):
//   ModelParams<float> params(cfg, /*with_mtp=*/true);  params.init(seed, 0.006);
//   ModelSaved<float> saved;  ModelContext<float> ctx;
//   ModelLosses l = model_forward(saved, params, cfg, ids, targets, batch, seq_len, lambda, ctx);
//   (optional: saved.layers[i].moe.d_scores = balance-loss gradient [T, E])
//   model_backward(params, saved, cfg, ctx);        // grads +=
//   saved.layers[i].moe.expert_load()               // [E] tokens per expert
#pragma once

#include <string>
#include <vector>

#include "model/mtp.hpp"

namespace moelab {

template <typename T>
class ModelParams {
 public:
  ModelParams(const ModelConfig& config, bool with_mtp);
  ModelParams(const ModelParams& other);
  ModelParams& operator=(const ModelParams& other);
  ModelParams(ModelParams&&) noexcept = default;
  ModelParams& operator=(ModelParams&&) noexcept = default;

  // Every parameter in checkpoint order (weights.hpp: model_weights).
  std::vector<Param<T>>& all() { return params_; }
  const std::vector<Param<T>>& all() const { return params_; }
  Param<T>* find(const std::string& name);  // null when absent
  const Param<T>* find(const std::string& name) const;
  Param<T>& at(const std::string& name);    // throws naming the parameter

  // Weights ~ N(0, std) (each from its own stream seeded by seed and its name,
  // so any subset initialises identically on every rank); RMSNorm weights 1;
  // e_score_correction_bias 0. Grads zeroed.
  void init(uint64_t seed, double std);
  void zero_grad();
  int64_t numel() const;

  ModelConfig config;
  bool with_mtp = false;
  Param<T>* embed_tokens = nullptr;  // [V, H]
  Param<T>* norm = nullptr;          // [H]
  Param<T>* lm_head = nullptr;       // [V, H]
  std::vector<BlockParams<T>> layers;
  std::vector<MtpParams<T>> mtp;

 private:
  void bind();
  std::vector<Param<T>> params_;
};

struct ModelLosses {
  double loss = 0;                  // main next-token cross entropy
  std::vector<double> mtp_losses;   // L_MTP^k, k = 1..D
  double mtp_loss = 0;              // lambda / D * sum_k L_MTP^k
  double total = 0;                 // loss + mtp_loss
};

template <typename T>
struct ModelSaved {
  SeqShape shape;
  double mtp_lambda = 0;
  std::vector<int32_t> token_ids, targets;  // [B*S]
  MlaRope<T> rope;
  Tensor<T> h;                     // [T, H] last block output
  Tensor<T> fn, fn_inv;            // model.norm(h)
  Tensor<T> probs;                 // [T, V]
  std::vector<BlockSaved<T>> layers;
  std::vector<MtpSaved<T>> mtp;
};

// token_ids, targets [batch * seq_len] (targets[t] < 0: not counted).
template <typename T>
ModelLosses model_forward(ModelSaved<T>& saved, const ModelParams<T>& params, const ModelConfig& config,
                          const std::vector<int32_t>& token_ids, const std::vector<int32_t>& targets, int64_t batch,
                          int64_t seq_len, double mtp_lambda, const ModelContext<T>& ctx);

// Gradients of `total` accumulate (+=) into params' grads.
template <typename T>
void model_backward(ModelParams<T>& params, ModelSaved<T>& saved, const ModelConfig& config,
                    const ModelContext<T>& ctx);

// The part of the model after the last decoder layer, alone (the pipeline's
// last stage runs it; model_forward/model_backward call it): model.norm ->
// lm_head -> cross entropy, then the MTP modules on the last block output.
// Before the forward, s.h [T, H], s.shape, s.token_ids, s.targets and
// s.mtp_lambda must be set (s.layers is not used); rope covers seq_len.
template <typename T>
ModelLosses model_head_forward(ModelSaved<T>& s, const ModelParams<T>& params, const ModelConfig& config,
                               const MlaRope<T>& rope, const ModelContext<T>& ctx);

// Its backward for loss_scale · total: norm, head, MTP (embedding and head
// shared) weight grads +=; dh [T, H] = d(loss_scale · total) / d s.h.
template <typename T>
void model_head_backward(Tensor<T>& dh, ModelParams<T>& params, ModelSaved<T>& s, const ModelConfig& config,
                         const MlaRope<T>& rope, double loss_scale, const ModelContext<T>& ctx);

// Every MoE layer of a forward into s, main layers then the MTP modules':
// fn(BlockParams<T>& layer, MoeSaved<T>& saved, SeqShape shape of its input).
// Only the main layers that s.layers holds are visited.
template <typename T, typename Fn>
void for_each_moe_layer(ModelParams<T>& params, ModelSaved<T>& s, Fn&& fn) {
  for (size_t i = 0; i < params.layers.size() && i < s.layers.size(); ++i)
    if (params.layers[i].is_moe) fn(params.layers[i], s.layers[i].moe, s.shape);
  for (size_t k = 0; k < params.mtp.size() && k < s.mtp.size(); ++k)
    if (params.mtp[k].block.is_moe) fn(params.mtp[k].block, s.mtp[k].block.moe, s.mtp[k].shape);
}

// Binds one decoder layer's parameters by name (layer = real index; MTP
// blocks are layers num_hidden_layers + k - 1). `lookup` returns null for an
// absent name; a missing required parameter throws naming it.
template <typename T>
BlockParams<T> bind_block_params(const ModelConfig& config, int64_t layer,
                                 const std::function<Param<T>*(const std::string&)>& lookup);

// FLOPs of one forward of the main model (GEMMs and attention as executed).
double model_forward_flops(const ModelConfig& config, SeqShape shape);

}  // namespace moelab
