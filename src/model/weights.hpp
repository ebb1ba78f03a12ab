// The list of a DeepSeek-V3 model's weights under their Hugging Face names,
// with shapes: the one place that knows the checkpoint layout. Parameter
// counts (moelab info), checkpoints and the layers all read it.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "model/config.hpp"

namespace moelab {

enum class Component { embedding, attention, norm, dense_ffn, routed_experts, shared_experts, gate, head, mtp };
const char* component_name(Component c);
std::vector<Component> all_components();

struct WeightSpec {
  std::string name;  // "model.layers.3.mlp.experts.17.up_proj.weight"
  Shape shape;
  Component component;
  int64_t layer = -1;       // -1 for embedding, final norm and head
  int64_t expert_idx = -1;  // routed expert index, -1 otherwise
  bool fp8_quantized = false;  // stored as F8_E4M3 with weight_scale_inv in the FP8 release
};

// Main model weights in checkpoint order; with include_mtp the
// num_nextn_predict_layers MTP modules follow as layers num_hidden_layers+k
// (their shared embedding and head are not repeated).
std::vector<WeightSpec> model_weights(const ModelConfig& config, bool include_mtp = true);

// Weights of one decoder layer (index i; MoE if config.is_moe_layer(i)).
std::vector<WeightSpec> layer_weights(const ModelConfig& config, int64_t layer);

struct ParamCounts {
  // per component: total and activated per token
  std::vector<std::pair<Component, int64_t>> total;
  std::vector<std::pair<Component, double>> activated;
  int64_t total_params = 0;            // main model, MTP excluded
  double activated_params = 0;         // main model, embedding and head included
  double activated_no_embedding = 0;   // main model, embedding excluded (head included)
  int64_t mtp_unique_params = 0;       // MTP modules, shared embedding/head excluded
  int64_t fp8_quantized_params = 0;    // main model weights stored in FP8
  int64_t fp8_scale_count = 0;         // 128x128 block scales of those weights
  double bytes_bf16 = 0;               // main model, all BF16
  double bytes_fp8 = 0;                // FP8 weights + FP32 block scales + the rest BF16
  int64_t kv_cache_elems_per_token = 0;  // MLA cache: (kv_lora_rank + rope dim) x layers
};

ParamCounts count_params(const ModelConfig& config);

}  // namespace moelab
