#include <gtest/gtest.h>

#include "model/config.hpp"
#include "model/weights.hpp"

using namespace moelab;

// Reference: ../shared/reference/deepseek-v3.md section 1.3 (derived from the
// config and matching the paper's 671B; MTP module 11.61B unique).
TEST(ParamCount, DeepSeekV3MatchesThePaper) {
  ParamCounts pc = count_params(model_preset("deepseek-v3"));
  EXPECT_NEAR(pc.total_params / 1e9, 671.03, 0.05);
  EXPECT_NEAR(pc.activated_params / 1e9, 37.55, 0.05);
  EXPECT_NEAR(pc.activated_no_embedding / 1e9, 36.63, 0.05);
  EXPECT_NEAR(pc.mtp_unique_params / 1e9, 11.61, 0.05);
  // MLA KV cache: (512 + 64) x 61 layers elements per token = 70,272 bytes in BF16.
  EXPECT_EQ(pc.kv_cache_elems_per_token, 35136);
}

TEST(ParamCount, DeepSeekV3Components) {
  ParamCounts pc = count_params(model_preset("deepseek-v3"));
  auto total = [&](Component c) {
    for (auto [comp, n] : pc.total)
      if (comp == c) return n;
    return int64_t(-1);
  };
  EXPECT_EQ(total(Component::embedding), 129280LL * 7168);
  EXPECT_EQ(total(Component::head), 129280LL * 7168);
  // MLA per layer (q_a, q_a_norm, q_b, kv_a, kv_a_norm, kv_b, o) = 187,107,328.
  EXPECT_EQ(total(Component::attention), 61LL * 187107328);
  EXPECT_EQ(total(Component::dense_ffn), 3LL * 3 * 7168 * 18432);
  EXPECT_EQ(total(Component::routed_experts), 58LL * 256 * 3 * 7168 * 2048);
  EXPECT_EQ(total(Component::shared_experts), 58LL * 3 * 7168 * 2048);
  EXPECT_EQ(total(Component::gate), 58LL * (256 * 7168 + 256));
}

TEST(ParamCount, FormulaOnATinyModel) {
  // Closed form for v3-tiny, written out by hand from the HF layout.
  ModelConfig c = model_preset("v3-tiny");
  const int64_t H = 32, V = 260, nh = 2, ql = 16, kvl = 8, nope = 8, rope = 4, vd = 8, I = 64, mI = 16, E = 8;
  const int64_t attn = H * ql + ql + ql * nh * (nope + rope) + H * (kvl + rope) + kvl + kvl * nh * (nope + vd) +
                       nh * vd * H;
  const int64_t dense = 3 * H * I, expert = 3 * H * mI, gate = E * H + E;
  const int64_t layer_norms = 2 * H;
  const int64_t total = V * H * 2 + H /*final norm*/ + 2 * (attn + layer_norms) + dense + E * expert + expert + gate;
  ParamCounts pc = count_params(c);
  EXPECT_EQ(pc.total_params, total);
  const double active = total - E * expert + 2.0 * expert;
  EXPECT_DOUBLE_EQ(pc.activated_params, active);
  // MTP: enorm, hnorm, eh_proj, one MoE block, shared_head.norm.
  EXPECT_EQ(pc.mtp_unique_params, 2 * H + 2 * H * H + attn + layer_norms + E * expert + expert + gate + H);
}

TEST(ParamCount, WeightNamesFollowHuggingFace) {
  auto w = layer_weights(model_preset("deepseek-v3"), 3);
  auto has = [&](const std::string& name) {
    for (auto& s : w)
      if (s.name == name) return true;
    return false;
  };
  EXPECT_TRUE(has("model.layers.3.self_attn.q_a_proj.weight"));
  EXPECT_TRUE(has("model.layers.3.self_attn.kv_a_proj_with_mqa.weight"));
  EXPECT_TRUE(has("model.layers.3.mlp.gate.weight"));
  EXPECT_TRUE(has("model.layers.3.mlp.gate.e_score_correction_bias"));
  EXPECT_TRUE(has("model.layers.3.mlp.experts.255.down_proj.weight"));
  EXPECT_TRUE(has("model.layers.3.mlp.shared_experts.up_proj.weight"));
  EXPECT_FALSE(has("model.layers.3.mlp.gate_proj.weight"));
  auto dense = layer_weights(model_preset("deepseek-v3"), 0);
  EXPECT_EQ(dense.back().name, "model.layers.0.mlp.down_proj.weight");
}
