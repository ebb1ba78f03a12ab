#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "model/config.hpp"

using namespace moelab;

namespace {

std::string fixture(const std::string& name) { return std::string(MOELAB_TEST_FIXTURES) + "/" + name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Expects the parse of `text` to fail with a message containing `needle`.
void expect_error(const std::string& text, const std::string& needle) {
  try {
    model_config_from_json_text(text, "cfg.json");
    ADD_FAILURE() << "no error for: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << "names the file: " << e.what();
  }
}

std::string v3_with(const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(read_text(fixture("deepseek-v3-config.json")));
  edit(j);
  return j.dump();
}

}  // namespace

TEST(ModelConfig, ReadsRealDeepSeekV3ConfigJson) {
  ModelConfig c = model_config_from_json_file(fixture("deepseek-v3-config.json"));
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  ASSERT_TRUE(c.q_lora_rank.has_value());
  EXPECT_EQ(*c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.scoring_func, "sigmoid");
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_EQ(c.rope_scaling.type, "yarn");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 40.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale_all_dim, 1.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_TRUE(c.quantization_config.present);
  EXPECT_EQ(c.quantization_config.weight_block_size, (std::vector<int64_t>{128, 128}));
  EXPECT_EQ(c.num_moe_layers(), 58);
}

TEST(ModelConfig, PresetDeepSeekV3EqualsTheRealConfigJson) {
  ModelConfig file = model_config_from_json_file(fixture("deepseek-v3-config.json"));
  ModelConfig preset = model_preset("deepseek-v3");
  EXPECT_EQ(model_config_to_json(file), model_config_to_json(preset));
}

TEST(ModelConfig, JsonRoundTripOfEveryPreset) {
  for (const auto& name : model_preset_names()) {
    ModelConfig c = model_preset(name);
    c.validate();
    ModelConfig back = model_config_from_json_text(model_config_to_json(c), name);
    EXPECT_EQ(model_config_to_json(back), model_config_to_json(c)) << name;
  }
}

TEST(ModelConfig, NullQLoraRankMeansNoQCompression) {
  ModelConfig c = model_config_from_json_text(v3_with([](auto& j) { j["q_lora_rank"] = nullptr; }), "cfg.json");
  EXPECT_FALSE(c.q_lora_rank.has_value());
}

TEST(ModelConfig, MissingKeyIsNamed) {
  expect_error(v3_with([](auto& j) { j.erase("hidden_size"); }), "missing key 'hidden_size'");
  expect_error(v3_with([](auto& j) { j.erase("kv_lora_rank"); }), "missing key 'kv_lora_rank'");
}

TEST(ModelConfig, MalformedValueIsNamed) {
  expect_error(v3_with([](auto& j) { j["hidden_size"] = "big"; }), "key 'hidden_size': expected an integer");
  expect_error(v3_with([](auto& j) { j["hidden_size"] = -5; }), "key 'hidden_size' must be a positive integer");
  expect_error(v3_with([](auto& j) { j["n_group"] = 7; }), "key 'n_group' (7) must divide n_routed_experts");
  expect_error(v3_with([](auto& j) { j["topk_group"] = 9; }), "key 'topk_group' (9) exceeds n_group");
  expect_error(v3_with([](auto& j) { j["scoring_func"] = "relu"; }), "key 'scoring_func'");
  expect_error(v3_with([](auto& j) { j["rope_scaling"]["factor"] = "x"; }), "key 'rope_scaling.factor'");
  expect_error(v3_with([](auto& j) { j["norm_topk_prob"] = 1; }), "key 'norm_topk_prob': expected true or false");
  expect_error("{ not json", "not valid JSON");
  expect_error("[1, 2]", "expected a JSON object");
}

TEST(ModelConfig, UnknownPresetAndMissingFile) {
  EXPECT_THROW(load_model_config("v3-huge"), Error);
  try {
    load_model_config("/nonexistent/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/config.json: cannot open"), std::string::npos);
  }
}
