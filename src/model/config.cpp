#include "model/config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"

namespace moelab {

using nlohmann::json;

int64_t ModelConfig::num_moe_layers() const {
  int64_t n = 0;
  for (int64_t i = 0; i < num_hidden_layers; ++i) n += is_moe_layer(i) ? 1 : 0;
  return n;
}

void ModelConfig::validate() const {
  auto positive = [&](const char* key, int64_t v) {
    MOE_CHECK(v > 0) << name << ": key '" << key << "' must be a positive integer, got " << v;
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("kv_lora_rank", kv_lora_rank);
  positive("qk_nope_head_dim", qk_nope_head_dim);
  positive("qk_rope_head_dim", qk_rope_head_dim);
  positive("v_head_dim", v_head_dim);
  positive("moe_layer_freq", moe_layer_freq);
  MOE_CHECK(qk_rope_head_dim % 2 == 0)
      << name << ": key 'qk_rope_head_dim' must be even (RoPE rotates pairs), got " << qk_rope_head_dim;
  if (q_lora_rank) positive("q_lora_rank", *q_lora_rank);
  MOE_CHECK(first_k_dense_replace >= 0 && first_k_dense_replace <= num_hidden_layers)
      << name << ": key 'first_k_dense_replace' must be in [0, num_hidden_layers=" << num_hidden_layers
      << "], got " << first_k_dense_replace;
  if (num_dense_layers() > 0) positive("intermediate_size", intermediate_size);
  MOE_CHECK(n_routed_experts >= 0) << name << ": key 'n_routed_experts' must be >= 0, got " << n_routed_experts;
  if (n_routed_experts > 0) {
    positive("moe_intermediate_size", moe_intermediate_size);
    positive("num_experts_per_tok", num_experts_per_tok);
    positive("n_group", n_group);
    positive("topk_group", topk_group);
    MOE_CHECK(n_shared_experts >= 0) << name << ": key 'n_shared_experts' must be >= 0, got " << n_shared_experts;
    MOE_CHECK(num_experts_per_tok <= n_routed_experts)
        << name << ": key 'num_experts_per_tok' (" << num_experts_per_tok << ") exceeds n_routed_experts ("
        << n_routed_experts << ")";
    MOE_CHECK(n_routed_experts % n_group == 0)
        << name << ": key 'n_group' (" << n_group << ") must divide n_routed_experts (" << n_routed_experts << ")";
    MOE_CHECK(topk_group <= n_group)
        << name << ": key 'topk_group' (" << topk_group << ") exceeds n_group (" << n_group << ")";
    MOE_CHECK(num_experts_per_tok <= topk_group * (n_routed_experts / n_group))
        << name << ": key 'num_experts_per_tok' (" << num_experts_per_tok << ") exceeds the experts in topk_group ("
        << topk_group << ") groups";
    MOE_CHECK(scoring_func == "sigmoid" || scoring_func == "softmax")
        << name << ": key 'scoring_func' must be \"sigmoid\" or \"softmax\", got \"" << scoring_func << "\"";
    MOE_CHECK(topk_method == "noaux_tc" || topk_method == "greedy" || topk_method == "group_limited_greedy")
        << name << ": key 'topk_method' must be noaux_tc, greedy or group_limited_greedy, got \"" << topk_method
        << "\"";
    MOE_CHECK(topk_method != "noaux_tc" || n_routed_experts / n_group >= 2)
        << name << ": topk_method noaux_tc scores a group by its top-2 experts; groups of "
        << n_routed_experts / n_group << " expert are too small";
    MOE_CHECK(routed_scaling_factor > 0)
        << name << ": key 'routed_scaling_factor' must be positive, got " << routed_scaling_factor;
  }
  MOE_CHECK(rms_norm_eps > 0) << name << ": key 'rms_norm_eps' must be positive, got " << rms_norm_eps;
  MOE_CHECK(rope_theta > 0) << name << ": key 'rope_theta' must be positive, got " << rope_theta;
  MOE_CHECK(num_nextn_predict_layers >= 0)
      << name << ": key 'num_nextn_predict_layers' must be >= 0, got " << num_nextn_predict_layers;
  if (rope_scaling.type == "yarn") {
    MOE_CHECK(rope_scaling.factor >= 1.0)
        << name << ": key 'rope_scaling.factor' must be >= 1, got " << rope_scaling.factor;
    MOE_CHECK(rope_scaling.original_max_position_embeddings > 0)
        << name << ": key 'rope_scaling.original_max_position_embeddings' must be positive";
    MOE_CHECK(rope_scaling.beta_fast > rope_scaling.beta_slow)
        << name << ": key 'rope_scaling.beta_fast' must exceed beta_slow";
  } else {
    MOE_CHECK(rope_scaling.type == "none")
        << name << ": key 'rope_scaling.type' must be \"yarn\" (or the key absent), got \"" << rope_scaling.type
        << "\"";
  }
  if (quantization_config.present) {
    MOE_CHECK(quantization_config.weight_block_size.size() == 2 && quantization_config.weight_block_size[0] > 0 &&
              quantization_config.weight_block_size[1] > 0)
        << name << ": key 'quantization_config.weight_block_size' must be two positive integers";
  }
}

// ---- presets ---------------------------------------------------------------

namespace {

ModelConfig deepseek_v3() {
  ModelConfig c;
  c.name = "deepseek-v3";
  c.vocab_size = 129280;
  c.hidden_size = 7168;
  c.intermediate_size = 18432;
  c.moe_intermediate_size = 2048;
  c.num_hidden_layers = 61;
  c.first_k_dense_replace = 3;
  c.num_attention_heads = 128;
  c.q_lora_rank = 1536;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.n_routed_experts = 256;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 8;
  c.n_group = 8;
  c.topk_group = 4;
  c.routed_scaling_factor = 2.5;
  c.scoring_func = "sigmoid";
  c.topk_method = "noaux_tc";
  c.norm_topk_prob = true;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000;
  c.max_position_embeddings = 163840;
  c.rope_scaling = {"yarn", 40.0, 4096, 32.0, 1.0, 1.0, 1.0};
  c.num_nextn_predict_layers = 1;
  c.quantization_config = {true, "fp8", "e4m3", "dynamic", {128, 128}};
  return c;
}

// DeepSeek-V2-Lite shape (16B): no q compression, softmax gate, greedy top-6,
// inference/configs/config_16B.json of the DeepSeek-V3 repository.
ModelConfig deepseek_v2_lite() {
  ModelConfig c;
  c.name = "deepseek-v2-lite";
  c.vocab_size = 102400;
  c.hidden_size = 2048;
  c.intermediate_size = 10944;
  c.moe_intermediate_size = 1408;
  c.num_hidden_layers = 27;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 16;
  c.q_lora_rank = std::nullopt;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.n_routed_experts = 64;
  c.n_shared_experts = 2;
  c.num_experts_per_tok = 6;
  c.n_group = 1;
  c.topk_group = 1;
  c.routed_scaling_factor = 1.0;
  c.scoring_func = "softmax";
  c.topk_method = "greedy";
  c.norm_topk_prob = false;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000;
  c.max_position_embeddings = 163840;
  c.rope_scaling = {"yarn", 40.0, 4096, 32.0, 1.0, 0.707, 0.707};
  c.num_nextn_predict_layers = 0;
  return c;
}

// Sized for experiments on a 2-core machine: ~2.5M activated parameters, every
// DeepSeek-V3 mechanism present (q compression, YaRN, group-limited sigmoid
// routing with bias, shared expert, a dense first layer, one MTP module).
ModelConfig v3_small() {
  ModelConfig c = deepseek_v3();
  c.name = "v3-small";
  c.vocab_size = 260;  // bytes + 4 specials
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.moe_intermediate_size = 128;
  c.num_hidden_layers = 4;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 4;
  c.q_lora_rank = 128;
  c.kv_lora_rank = 64;
  c.qk_nope_head_dim = 32;
  c.qk_rope_head_dim = 16;
  c.v_head_dim = 32;
  c.n_routed_experts = 16;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 4;
  c.n_group = 4;
  c.topk_group = 2;
  c.max_position_embeddings = 1024;
  c.rope_scaling = {"yarn", 4.0, 256, 32.0, 1.0, 1.0, 1.0};
  c.quantization_config = {};
  return c;
}

// The smallest shape that still exercises every mechanism; for unit tests.
ModelConfig v3_tiny() {
  ModelConfig c = v3_small();
  c.name = "v3-tiny";
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.moe_intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 2;
  c.q_lora_rank = 16;
  c.kv_lora_rank = 8;
  c.qk_nope_head_dim = 8;
  c.qk_rope_head_dim = 4;
  c.v_head_dim = 8;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.n_group = 4;
  c.topk_group = 2;
  c.max_position_embeddings = 256;
  c.rope_scaling = {"yarn", 4.0, 32, 32.0, 1.0, 1.0, 1.0};
  return c;
}

}  // namespace

std::vector<std::string> model_preset_names() { return {"deepseek-v3", "deepseek-v2-lite", "v3-small", "v3-tiny"}; }

bool is_model_preset(const std::string& name) {
  for (const auto& n : model_preset_names())
    if (n == name) return true;
  return false;
}

ModelConfig model_preset(const std::string& name) {
  if (name == "deepseek-v3") return deepseek_v3();
  if (name == "deepseek-v2-lite") return deepseek_v2_lite();
  if (name == "v3-small") return v3_small();
  if (name == "v3-tiny") return v3_tiny();
  std::string known;
  for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
  MOE_FAIL() << "unknown model preset '" << name << "' (known: " << known << "; or a path to a config.json)";
}

// ---- config.json -----------------------------------------------------------

namespace {

// Reads typed keys and names the key and file in every error.
struct JsonReader {
  const json& obj;
  std::string source;
  std::string prefix;  // "rope_scaling." for nested objects

  [[noreturn]] void fail(const std::string& key, const std::string& expected, const json& got) const {
    MOE_FAIL() << source << ": key '" << prefix << key << "': expected " << expected << ", got " << got.dump();
  }
  bool has(const std::string& key) const { return obj.contains(key) && !obj.at(key).is_null(); }

  int64_t integer(const std::string& key) const {
    MOE_CHECK(obj.contains(key)) << source << ": missing key '" << prefix << key << "'";
    return integer_value(key);
  }
  int64_t integer_or(const std::string& key, int64_t fallback) const {
    return has(key) ? integer_value(key) : fallback;
  }
  int64_t integer_value(const std::string& key) const {
    const json& v = obj.at(key);
    if (!v.is_number_integer()) fail(key, "an integer", v);
    return v.get<int64_t>();
  }
  double number_or(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = obj.at(key);
    if (!v.is_number()) fail(key, "a number", v);
    return v.get<double>();
  }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = obj.at(key);
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }
  bool boolean_or(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = obj.at(key);
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }
};

}  // namespace

ModelConfig model_config_from_json_text(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    MOE_FAIL() << source << ": not valid JSON (" << e.what() << ")";
  }
  MOE_CHECK(doc.is_object()) << source << ": expected a JSON object at top level";
  JsonReader r{doc, source, ""};

  ModelConfig c;
  c.name = source;
  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.kv_lora_rank = r.integer("kv_lora_rank");
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  c.v_head_dim = r.integer("v_head_dim");
  c.intermediate_size = r.integer_or("intermediate_size", 0);
  c.first_k_dense_replace = r.integer_or("first_k_dense_replace", 0);
  c.moe_layer_freq = r.integer_or("moe_layer_freq", 1);
  if (r.has("q_lora_rank")) c.q_lora_rank = r.integer_value("q_lora_rank");
  c.n_routed_experts = r.integer_or("n_routed_experts", 0);
  if (c.n_routed_experts > 0) {
    c.moe_intermediate_size = r.integer("moe_intermediate_size");
    c.num_experts_per_tok = r.integer("num_experts_per_tok");
  }
  c.n_shared_experts = r.integer_or("n_shared_experts", 0);
  c.n_group = r.integer_or("n_group", 1);
  c.topk_group = r.integer_or("topk_group", 1);
  c.routed_scaling_factor = r.number_or("routed_scaling_factor", 1.0);
  c.scoring_func = r.string_or("scoring_func", "softmax");
  c.topk_method = r.string_or("topk_method", "greedy");
  c.norm_topk_prob = r.boolean_or("norm_topk_prob", false);
  c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.rope_theta = r.number_or("rope_theta", 10000.0);
  c.max_position_embeddings = r.integer_or("max_position_embeddings", 4096);
  c.num_nextn_predict_layers = r.integer_or("num_nextn_predict_layers", 0);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
  const std::string hidden_act = r.string_or("hidden_act", "silu");
  MOE_CHECK(hidden_act == "silu") << source << ": key 'hidden_act': expected \"silu\" (SwiGLU), got \"" << hidden_act
                                  << "\"";

  if (r.has("rope_scaling")) {
    const json& rs = doc.at("rope_scaling");
    if (!rs.is_object()) r.fail("rope_scaling", "an object", rs);
    JsonReader s{rs, source, "rope_scaling."};
    // HF writes "type"; newer transformers also "rope_type".
    c.rope_scaling.type = s.string_or("type", s.string_or("rope_type", "none"));
    if (c.rope_scaling.type == "default") c.rope_scaling.type = "none";
    c.rope_scaling.factor = s.number_or("factor", 1.0);
    c.rope_scaling.original_max_position_embeddings = s.integer_or("original_max_position_embeddings", 4096);
    c.rope_scaling.beta_fast = s.number_or("beta_fast", 32.0);
    c.rope_scaling.beta_slow = s.number_or("beta_slow", 1.0);
    c.rope_scaling.mscale = s.number_or("mscale", 1.0);
    c.rope_scaling.mscale_all_dim = s.number_or("mscale_all_dim", 0.0);
  }
  if (r.has("quantization_config")) {
    const json& q = doc.at("quantization_config");
    if (!q.is_object()) r.fail("quantization_config", "an object", q);
    JsonReader s{q, source, "quantization_config."};
    c.quantization_config.present = true;
    c.quantization_config.quant_method = s.string_or("quant_method", "fp8");
    c.quantization_config.fmt = s.string_or("fmt", "e4m3");
    c.quantization_config.activation_scheme = s.string_or("activation_scheme", "dynamic");
    if (s.has("weight_block_size")) {
      const json& b = q.at("weight_block_size");
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer())
        s.fail("weight_block_size", "two integers", b);
      c.quantization_config.weight_block_size = {b[0].get<int64_t>(), b[1].get<int64_t>()};
    } else {
      c.quantization_config.weight_block_size = {128, 128};
    }
  }
  c.validate();
  return c;
}

ModelConfig model_config_from_json_file(const std::string& path) {
  std::ifstream in(path);
  MOE_CHECK(in.good()) << path << ": cannot open model config file";
  std::stringstream buffer;
  buffer << in.rdbuf();
  return model_config_from_json_text(buffer.str(), path);
}

ModelConfig load_model_config(const std::string& preset_or_path) {
  if (is_model_preset(preset_or_path)) {
    ModelConfig c = model_preset(preset_or_path);
    c.validate();
    return c;
  }
  const bool looks_like_path = preset_or_path.find('/') != std::string::npos ||
                               preset_or_path.find(".json") != std::string::npos;
  if (!looks_like_path) model_preset(preset_or_path);  // throws "unknown model preset"
  return model_config_from_json_file(preset_or_path);
}

std::string model_config_to_json(const ModelConfig& c) {
  json j;
  j["architectures"] = {"DeepseekV3ForCausalLM"};
  j["model_type"] = "deepseek_v3";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["moe_intermediate_size"] = c.moe_intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["moe_layer_freq"] = c.moe_layer_freq;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_attention_heads;
  j["q_lora_rank"] = c.q_lora_rank ? json(*c.q_lora_rank) : json(nullptr);
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["v_head_dim"] = c.v_head_dim;
  j["n_routed_experts"] = c.n_routed_experts;
  j["n_shared_experts"] = c.n_shared_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["n_group"] = c.n_group;
  j["topk_group"] = c.topk_group;
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["scoring_func"] = c.scoring_func;
  j["topk_method"] = c.topk_method;
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (c.rope_scaling.type == "yarn") {
    json rs = {{"type", "yarn"},
               {"factor", c.rope_scaling.factor},
               {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings},
               {"beta_fast", c.rope_scaling.beta_fast},
               {"beta_slow", c.rope_scaling.beta_slow},
               {"mscale", c.rope_scaling.mscale}};
    if (c.rope_scaling.mscale_all_dim != 0.0) rs["mscale_all_dim"] = c.rope_scaling.mscale_all_dim;
    j["rope_scaling"] = rs;
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (c.quantization_config.present) {
    j["quantization_config"] = {{"quant_method", c.quantization_config.quant_method},
                                {"fmt", c.quantization_config.fmt},
                                {"activation_scheme", c.quantization_config.activation_scheme},
                                {"weight_block_size", c.quantization_config.weight_block_size}};
  }
  return j.dump(2);
}

}  // namespace moelab
