// The DeepSeek-V3 model configuration: the keys of a Hugging Face config.json
// (model_type deepseek_v3 / deepseek_v2) or a built-in preset.
//
// Names follow the HF keys exactly so a real checkpoint's config.json is used
// as it is. Reference: ../shared/reference/deepseek-v3.md section 1.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace moelab {

struct RopeScaling {
  std::string type = "none";  // "yarn" or "none"
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;  // 0: key absent
};

struct QuantizationConfig {
  bool present = false;
  std::string quant_method;          // "fp8"
  std::string fmt;                   // "e4m3"
  std::string activation_scheme;     // "dynamic"
  std::vector<int64_t> weight_block_size;  // [128, 128]
};

struct ModelConfig {
  std::string name = "custom";  // preset name or the config.json path

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;      // dense FFN inner dim
  int64_t moe_intermediate_size = 0;  // per expert inner dim
  int64_t num_hidden_layers = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t num_attention_heads = 0;
  std::optional<int64_t> q_lora_rank;  // null: q_proj without compression
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  double routed_scaling_factor = 1.0;
  std::string scoring_func = "sigmoid";  // sigmoid | softmax
  std::string topk_method = "noaux_tc";  // noaux_tc | greedy | group_limited_greedy
  bool norm_topk_prob = true;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 4096;
  RopeScaling rope_scaling;
  int64_t num_nextn_predict_layers = 0;
  bool tie_word_embeddings = false;
  QuantizationConfig quantization_config;

  // ---- derived ----
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  int64_t num_moe_layers() const;
  int64_t num_dense_layers() const { return num_hidden_layers - num_moe_layers(); }

  // Throws moelab::Error naming the offending key when a value is out of range
  // or inconsistent (e.g. n_routed_experts not divisible by n_group).
  void validate() const;
};

// Built-in presets: deepseek-v3 (the real 671B), deepseek-v2-lite (16B),
// v3-small (experiments on 2 cores), v3-tiny (tests).
std::vector<std::string> model_preset_names();
bool is_model_preset(const std::string& name);
ModelConfig model_preset(const std::string& name);

// Parses a Hugging Face config.json text; `source` names the file in errors.
ModelConfig model_config_from_json_text(const std::string& text, const std::string& source);
ModelConfig model_config_from_json_file(const std::string& path);

// A preset name or a path to config.json.
ModelConfig load_model_config(const std::string& preset_or_path);

// The config as a Hugging Face config.json document (round-trips through the parser).
std::string model_config_to_json(const ModelConfig& config);

}  // namespace moelab
