#include "model/model.hpp"

#include <map>

#include "core/rng.hpp"
#include "model/embedding.hpp"
#include "model/head.hpp"
#include "model/loss.hpp"
#include "model/rmsnorm.hpp"
#include "model/weights.hpp"

namespace moelab {

// ---- parameters --------------------------------------------------------------

template <typename T>
ModelParams<T>::ModelParams(const ModelConfig& c, bool mtp) : config(c), with_mtp(mtp) {
  config.validate();
  for (const WeightSpec& w : model_weights(config, with_mtp)) {
    const bool is_bias = w.name.ends_with("e_score_correction_bias");
    params_.emplace_back(w.name, w.shape, !is_bias);
  }
  bind();
}

template <typename T>
ModelParams<T>::ModelParams(const ModelParams& other)
    : config(other.config), with_mtp(other.with_mtp), params_(other.params_) {
  bind();
}

template <typename T>
ModelParams<T>& ModelParams<T>::operator=(const ModelParams& other) {
  if (this != &other) {
    config = other.config;
    with_mtp = other.with_mtp;
    params_ = other.params_;
    bind();
  }
  return *this;
}

template <typename T>
Param<T>* ModelParams<T>::find(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

template <typename T>
const Param<T>* ModelParams<T>::find(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

template <typename T>
Param<T>& ModelParams<T>::at(const std::string& name) {
  Param<T>* p = find(name);
  MOE_CHECK(p != nullptr) << "model " << config.name << " has no parameter '" << name << "'";
  return *p;
}

template <typename T>
BlockParams<T> bind_block_params(const ModelConfig& c, int64_t layer,
                                 const std::function<Param<T>*(const std::string&)>& lookup) {
  const std::string prefix = "model.layers." + std::to_string(layer) + ".";
  auto req = [&](const std::string& suffix) {
    Param<T>* p = lookup(prefix + suffix);
    MOE_CHECK(p != nullptr) << "missing parameter '" << prefix << suffix << "'";
    return p;
  };
  auto mlp = [&](const std::string& base) {
    return MlpParams<T>{req(base + "gate_proj.weight"), req(base + "up_proj.weight"), req(base + "down_proj.weight")};
  };
  BlockParams<T> b;
  b.layer = layer;
  // MTP blocks (layer >= num_hidden_layers) follow the MoE/dense rule of their index, as weights.cpp does.
  b.is_moe = c.is_moe_layer(layer);
  b.input_layernorm = req("input_layernorm.weight");
  b.post_attention_layernorm = req("post_attention_layernorm.weight");
  auto& a = b.attn;
  if (c.q_lora_rank) {
    a.q_a_proj = req("self_attn.q_a_proj.weight");
    a.q_a_layernorm = req("self_attn.q_a_layernorm.weight");
    a.q_b_proj = req("self_attn.q_b_proj.weight");
  } else {
    a.q_proj = req("self_attn.q_proj.weight");
  }
  a.kv_a_proj_with_mqa = req("self_attn.kv_a_proj_with_mqa.weight");
  a.kv_a_layernorm = req("self_attn.kv_a_layernorm.weight");
  a.kv_b_proj = req("self_attn.kv_b_proj.weight");
  a.o_proj = req("self_attn.o_proj.weight");
  if (!b.is_moe) {
    b.mlp = mlp("mlp.");
    return b;
  }
  b.moe.gate.weight = req("mlp.gate.weight");
  b.moe.gate.bias = lookup(prefix + "mlp.gate.e_score_correction_bias");
  for (int64_t e = 0; e < c.n_routed_experts; ++e) b.moe.experts.push_back(mlp("mlp.experts." + std::to_string(e) + "."));
  b.moe.has_shared = c.n_shared_experts > 0;
  if (b.moe.has_shared) b.moe.shared = mlp("mlp.shared_experts.");
  return b;
}

template <typename T>
void ModelParams<T>::bind() {
  std::map<std::string, Param<T>*> by_name;
  for (auto& p : params_) by_name[p.name] = &p;
  std::function<Param<T>*(const std::string&)> lookup = [&](const std::string& n) -> Param<T>* {
    auto it = by_name.find(n);
    return it == by_name.end() ? nullptr : it->second;
  };
  embed_tokens = lookup("model.embed_tokens.weight");
  norm = lookup("model.norm.weight");
  lm_head = lookup("lm_head.weight");
  layers.clear();
  mtp.clear();
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layers.push_back(bind_block_params<T>(config, i, lookup));
  if (!with_mtp) return;
  for (int64_t k = 0; k < config.num_nextn_predict_layers; ++k) {
    const int64_t layer = config.num_hidden_layers + k;
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    MtpParams<T> m;
    m.enorm = lookup(prefix + "enorm.weight");
    m.hnorm = lookup(prefix + "hnorm.weight");
    m.eh_proj = lookup(prefix + "eh_proj.weight");
    m.shared_head_norm = lookup(prefix + "shared_head.norm.weight");
    m.block = bind_block_params<T>(config, layer, lookup);
    mtp.push_back(std::move(m));
  }
}

namespace {

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
  return h;
}

bool is_norm_weight(const std::string& name) {
  return name.ends_with("norm.weight");  // *_layernorm, model.norm, enorm, hnorm, shared_head.norm
}

}  // namespace

template <typename T>
void ModelParams<T>::init(uint64_t seed, double std) {
  for (auto& p : params_) {
    p.grad.zero();
    if (!p.trainable) {
      p.value.zero();
    } else if (is_norm_weight(p.name)) {
      std::fill(p.value.data.begin(), p.value.data.end(), T(1));
    } else {
      Rng rng(seed * 0x9e3779b97f4a7c15ULL ^ name_hash(p.name));
      for (auto& v : p.value.data) v = static_cast<T>(std * rng.normal());
    }
  }
}

template <typename T>
void ModelParams<T>::zero_grad() {
  for (auto& p : params_) p.grad.zero();
}

template <typename T>
int64_t ModelParams<T>::numel() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.value.numel();
  return n;
}

// ---- forward / backward ------------------------------------------------------

template <typename T>
ModelLosses model_forward(ModelSaved<T>& s, const ModelParams<T>& params, const ModelConfig& c,
                          const std::vector<int32_t>& token_ids, const std::vector<int32_t>& targets, int64_t batch,
                          int64_t seq_len, double mtp_lambda, const ModelContext<T>& ctx) {
  const int64_t tokens = batch * seq_len;
  MOE_CHECK(static_cast<int64_t>(token_ids.size()) == tokens && static_cast<int64_t>(targets.size()) == tokens)
      << "model_forward: " << token_ids.size() << " token ids and " << targets.size() << " targets for " << batch
      << " x " << seq_len << " tokens";
  s.shape = {batch, seq_len};
  s.mtp_lambda = mtp_lambda;
  s.token_ids = token_ids;
  s.targets = targets;
  if (s.rope.table.max_positions < seq_len) s.rope = make_mla_rope<T>(c, seq_len);
  s.layers.resize(c.num_hidden_layers);

  Tensor<T> x, y;
  embedding_forward(x, *params.embed_tokens, token_ids.data(), tokens);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    block_forward(y, s.layers[l], params.layers[l], x, c, s.shape, s.rope, ctx);
    std::swap(x, y);
  }
  s.h = std::move(x);
  return model_head_forward(s, params, c, s.rope, ctx);
}

template <typename T>
ModelLosses model_head_forward(ModelSaved<T>& s, const ModelParams<T>& params, const ModelConfig& c,
                               const MlaRope<T>& rope, const ModelContext<T>& ctx) {
  const int64_t tokens = s.shape.tokens();
  MOE_CHECK(s.h.numel() == tokens * c.hidden_size && static_cast<int64_t>(s.token_ids.size()) == tokens &&
            static_cast<int64_t>(s.targets.size()) == tokens)
      << "model_head_forward: h of " << s.h.numel() << " values, " << s.token_ids.size() << " ids and "
      << s.targets.size() << " targets for " << s.shape.batch << " x " << s.shape.seq_len << " tokens";
  rmsnorm_forward(s.fn, s.fn_inv, s.h, *params.norm, c.rms_norm_eps);
  head_forward(s.probs, s.fn, *params.lm_head, ctx.precision);
  ModelLosses losses;
  losses.loss = cross_entropy_forward(s.probs, s.targets.data(), tokens);

  const int64_t depth = static_cast<int64_t>(params.mtp.size());
  s.mtp.resize(depth);
  const Tensor<T>* h_prev = &s.h;
  int64_t prev_len = s.shape.seq_len;
  for (int64_t k = 1; k <= depth; ++k) {
    const double l = mtp_forward(s.mtp[k - 1], params.mtp[k - 1], *params.embed_tokens, *params.lm_head, *h_prev,
                                 prev_len, s.token_ids, s.targets, s.shape.batch, s.shape.seq_len, k, c, rope, ctx);
    losses.mtp_losses.push_back(l);
    losses.mtp_loss += s.mtp_lambda / depth * l;
    h_prev = &s.mtp[k - 1].out;
    prev_len = s.shape.seq_len - k;
  }
  losses.total = losses.loss + losses.mtp_loss;
  return losses;
}

template <typename T>
void model_backward(ModelParams<T>& params, ModelSaved<T>& s, const ModelConfig& c, const ModelContext<T>& ctx) {
  const int64_t tokens = s.shape.tokens();
  MOE_CHECK(static_cast<int64_t>(s.layers.size()) == c.num_hidden_layers) << "model_backward before model_forward";
  Tensor<T> dh, dx;
  model_head_backward(dh, params, s, c, s.rope, 1.0, ctx);
  for (int64_t l = c.num_hidden_layers - 1; l >= 0; --l) {
    block_backward(dx, s.layers[l], params.layers[l], dh, c, s.shape, s.rope, ctx);
    std::swap(dx, dh);
  }
  embedding_backward(*params.embed_tokens, dh, s.token_ids.data(), tokens);
}

template <typename T>
void model_head_backward(Tensor<T>& dh, ModelParams<T>& params, ModelSaved<T>& s, const ModelConfig& c,
                         const MlaRope<T>& rope, double loss_scale, const ModelContext<T>& ctx) {
  const int64_t tokens = s.shape.tokens(), H = c.hidden_size;
  MOE_CHECK(s.probs.numel() == tokens * c.vocab_size) << "model_head_backward before model_head_forward";
  // MTP modules, last first: each passes d h^{k-1} to the one before, the first to the main output.
  dh = Tensor<T>({tokens, H});
  const int64_t depth = static_cast<int64_t>(s.mtp.size());
  Tensor<T> d_next;
  for (int64_t k = depth; k >= 1; --k) {
    const int64_t prev_len = s.shape.seq_len - (k - 1);
    Tensor<T> d_prev({s.shape.batch * prev_len, H});
    mtp_backward(d_prev, s.mtp[k - 1], params.mtp[k - 1], *params.embed_tokens, *params.lm_head,
                 k < depth ? &d_next : nullptr, loss_scale * s.mtp_lambda / depth, c, rope, ctx);
    d_next = std::move(d_prev);
  }
  if (depth > 0) dh = std::move(d_next);

  cross_entropy_backward(s.probs, s.targets.data(), tokens, loss_scale);
  Tensor<T> dfn, dx;
  head_backward(dfn, *params.lm_head, s.probs, s.fn, ctx.precision);
  rmsnorm_backward(dx, *params.norm, dfn, s.h, s.fn_inv);
  for (int64_t i = 0; i < dx.numel(); ++i) dh[i] += dx[i];
}

double model_forward_flops(const ModelConfig& c, SeqShape shape) {
  const double tokens = static_cast<double>(shape.tokens());
  const double H = static_cast<double>(c.hidden_size);
  double flops = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    flops += mla_flops(c, shape);
    if (c.is_moe_layer(l))
      flops += 2.0 * tokens * H * c.n_routed_experts +
               2.0 * tokens * 3 * H * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts);
    else
      flops += 2.0 * tokens * 3 * H * c.intermediate_size;
  }
  flops += 2.0 * tokens * H * c.vocab_size;
  return flops;
}

template class ModelParams<float>;
template class ModelParams<double>;
template BlockParams<float> bind_block_params<float>(const ModelConfig&, int64_t,
                                                     const std::function<Param<float>*(const std::string&)>&);
template BlockParams<double> bind_block_params<double>(const ModelConfig&, int64_t,
                                                       const std::function<Param<double>*(const std::string&)>&);
#define MOELAB_MODEL_INSTANTIATE(T)                                                                                \
  template ModelLosses model_forward<T>(ModelSaved<T>&, const ModelParams<T>&, const ModelConfig&,                \
                                        const std::vector<int32_t>&, const std::vector<int32_t>&, int64_t, int64_t, \
                                        double, const ModelContext<T>&);                                          \
  template void model_backward<T>(ModelParams<T>&, ModelSaved<T>&, const ModelConfig&, const ModelContext<T>&);     \
  template ModelLosses model_head_forward<T>(ModelSaved<T>&, const ModelParams<T>&, const ModelConfig&,           \
                                             const MlaRope<T>&, const ModelContext<T>&);                          \
  template void model_head_backward<T>(Tensor<T>&, ModelParams<T>&, ModelSaved<T>&, const ModelConfig&,            \
                                       const MlaRope<T>&, double, const ModelContext<T>&);
MOELAB_MODEL_INSTANTIATE(float)
MOELAB_MODEL_INSTANTIATE(double)

}  // namespace moelab
