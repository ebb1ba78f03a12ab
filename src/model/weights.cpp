#include "model/weights.hpp"

#include <map>

namespace moelab {

const char* component_name(Component c) {
  switch (c) {
    case Component::embedding: return "embedding";
    case Component::attention: return "attention";
    case Component::norm: return "norms";
    case Component::dense_ffn: return "dense_ffn";
    case Component::routed_experts: return "routed_experts";
    case Component::shared_experts: return "shared_experts";
    case Component::gate: return "gate";
    case Component::head: return "head";
    case Component::mtp: return "mtp";
  }
  return "?";
}

std::vector<Component> all_components() {
  return {Component::embedding, Component::attention,      Component::norm,
          Component::dense_ffn, Component::routed_experts, Component::shared_experts,
          Component::gate,      Component::head,           Component::mtp};
}

namespace {

void add_mlp(std::vector<WeightSpec>& out, const std::string& prefix, int64_t hidden, int64_t inter,
             Component component, int64_t layer, int64_t expert_idx) {
  out.push_back({prefix + "gate_proj.weight", {inter, hidden}, component, layer, expert_idx, true});
  out.push_back({prefix + "up_proj.weight", {inter, hidden}, component, layer, expert_idx, true});
  out.push_back({prefix + "down_proj.weight", {hidden, inter}, component, layer, expert_idx, true});
}

}  // namespace

std::vector<WeightSpec> layer_weights(const ModelConfig& c, int64_t layer) {
  std::vector<WeightSpec> w;
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  const int64_t H = c.hidden_size, nh = c.num_attention_heads;
  w.push_back({p + "input_layernorm.weight", {H}, Component::norm, layer});
  // MLA (section 2.1.1 of the paper; HF modeling_deepseek names)
  if (c.q_lora_rank) {
    w.push_back({p + "self_attn.q_a_proj.weight", {*c.q_lora_rank, H}, Component::attention, layer, -1, true});
    w.push_back({p + "self_attn.q_a_layernorm.weight", {*c.q_lora_rank}, Component::attention, layer});
    w.push_back({p + "self_attn.q_b_proj.weight", {nh * c.qk_head_dim(), *c.q_lora_rank}, Component::attention,
                 layer, -1, true});
  } else {
    w.push_back({p + "self_attn.q_proj.weight", {nh * c.qk_head_dim(), H}, Component::attention, layer, -1, true});
  }
  w.push_back({p + "self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, H},
               Component::attention, layer, -1, true});
  w.push_back({p + "self_attn.kv_a_layernorm.weight", {c.kv_lora_rank}, Component::attention, layer});
  w.push_back({p + "self_attn.kv_b_proj.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank},
               Component::attention, layer, -1, true});
  w.push_back({p + "self_attn.o_proj.weight", {H, nh * c.v_head_dim}, Component::attention, layer, -1, true});
  w.push_back({p + "post_attention_layernorm.weight", {H}, Component::norm, layer});
  if (!c.is_moe_layer(layer)) {
    add_mlp(w, p + "mlp.", H, c.intermediate_size, Component::dense_ffn, layer, -1);
    return w;
  }
  w.push_back({p + "mlp.gate.weight", {c.n_routed_experts, H}, Component::gate, layer});
  if (c.topk_method == "noaux_tc")
    w.push_back({p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, Component::gate, layer});
  for (int64_t e = 0; e < c.n_routed_experts; ++e)
    add_mlp(w, p + "mlp.experts." + std::to_string(e) + ".", H, c.moe_intermediate_size, Component::routed_experts,
            layer, e);
  if (c.n_shared_experts > 0)
    add_mlp(w, p + "mlp.shared_experts.", H, c.n_shared_experts * c.moe_intermediate_size,
            Component::shared_experts, layer, -1);
  return w;
}

std::vector<WeightSpec> model_weights(const ModelConfig& c, bool include_mtp) {
  std::vector<WeightSpec> w;
  const int64_t H = c.hidden_size;
  w.push_back({"model.embed_tokens.weight", {c.vocab_size, H}, Component::embedding});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    auto lw = layer_weights(c, i);
    w.insert(w.end(), lw.begin(), lw.end());
  }
  w.push_back({"model.norm.weight", {H}, Component::norm});
  w.push_back({"lm_head.weight", {c.vocab_size, H}, Component::head});
  if (!include_mtp) return w;
  // MTP module k is stored as layer num_hidden_layers + k (README_WEIGHTS.md of
  // DeepSeek-V3): enorm, hnorm, eh_proj, one decoder block, shared_head.norm.
  for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
    const int64_t layer = c.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    w.push_back({p + "enorm.weight", {H}, Component::mtp, layer});
    w.push_back({p + "hnorm.weight", {H}, Component::mtp, layer});
    w.push_back({p + "eh_proj.weight", {H, 2 * H}, Component::mtp, layer, -1, false});
    for (auto spec : layer_weights(c, layer)) {
      spec.component = Component::mtp;
      spec.expert_idx = -1;
      w.push_back(spec);
    }
    w.push_back({p + "shared_head.norm.weight", {H}, Component::mtp, layer});
  }
  return w;
}

ParamCounts count_params(const ModelConfig& c) {
  ParamCounts pc;
  std::map<Component, int64_t> total;
  std::map<Component, double> activated;
  for (Component comp : all_components()) total[comp] = 0, activated[comp] = 0;
  const double routed_fraction =
      c.n_routed_experts > 0 ? static_cast<double>(c.num_experts_per_tok) / c.n_routed_experts : 0.0;
  for (const WeightSpec& w : model_weights(c, true)) {
    const int64_t n = shape_numel(w.shape);
    total[w.component] += n;
    if (w.component == Component::mtp) continue;  // counted apart from the main model
    activated[w.component] += w.component == Component::routed_experts ? n * routed_fraction : n;
    // FP8 release: quantized linear weights take 1 byte plus one FP32 scale per
    // 128x128 block; the rest (embedding, head, gate, norms) stay BF16.
    if (w.fp8_quantized) {
      const int64_t blocks = ((w.shape[0] + 127) / 128) * ((w.shape[1] + 127) / 128);
      pc.fp8_quantized_params += n;
      pc.fp8_scale_count += blocks;
      pc.bytes_fp8 += n + 4.0 * blocks;
    } else {
      pc.bytes_fp8 += 2.0 * n;
    }
  }
  for (Component comp : all_components()) {
    pc.total.push_back({comp, total[comp]});
    pc.activated.push_back({comp, activated[comp]});
    if (comp == Component::mtp) continue;
    pc.total_params += total[comp];
    pc.activated_params += activated[comp];
  }
  pc.mtp_unique_params = total[Component::mtp];
  pc.activated_no_embedding = pc.activated_params - activated[Component::embedding];
  pc.bytes_bf16 = 2.0 * pc.total_params;
  pc.kv_cache_elems_per_token = (c.kv_lora_rank + c.qk_rope_head_dim) * c.num_hidden_layers;
  return pc;
}

}  // namespace moelab
