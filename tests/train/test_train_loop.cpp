// The training loop on v3-tiny and the committed corpus sample: the loss goes
// down, two runs with one seed are bit-identical, a stopped-and-resumed run
// equals an uninterrupted one, and the full model's gradient with MTP and the
// balance losses agrees with finite differences (in double).
#include <gtest/gtest.h>

#include <filesystem>

#include "support/grad_check.hpp"
#include "support/tiny_train_config.hpp"
#include "train/checkpoint.hpp"
#include "train/loop.hpp"

using namespace moelab;
using namespace moelab::train;

namespace {

TrainConfig tiny_config() {
  TrainConfig c = tiny_train_config();
  c.steps = 40;
  c.lr = {3e-3, 3e-4, 5, 20, 20};
  c.eval_batches = 2;
  return c;
}

std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("moelab_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

}  // namespace

TEST(TrainLoop, V3TinyReducesTheLossOnTheSample) {
  TrainConfig c = tiny_config();
  const TrainSummary s = run_training(c, nullptr);
  ASSERT_EQ(s.steps_done, 40);
  ASSERT_EQ(s.losses.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += s.losses[i] / 5, last += s.losses[35 + i] / 5;
  // Byte-level: ln(260) = 5.56 at initialisation; 40 small steps reach ~4.
  EXPECT_GT(first, 5.0);
  EXPECT_LT(last, first - 0.8) << "first 5 steps " << first << ", last 5 " << last;
  EXPECT_LT(s.final_eval_loss, 4.6);
}

TEST(TrainLoop, SameSeedBitIdentical) {
  TrainConfig c = tiny_config();
  c.steps = 8;
  const TrainSummary a = run_training(c, nullptr), b = run_training(c, nullptr);
  EXPECT_EQ(a.losses, b.losses);  // exact, not near
  EXPECT_EQ(a.final_maxvio_batch, b.final_maxvio_batch);
  c.seed = 6;
  EXPECT_NE(run_training(c, nullptr).losses, a.losses);
}

TEST(TrainLoop, ResumeEqualsUninterrupted) {
  // The stop falls after the LR warm-up, inside the constant phase, before the
  // MTP λ switch; bias updates, the balance loss and BF16 moments all carry state.
  for (bool bf16_moments : {false, true}) {
    TrainConfig c = tiny_config();
    c.steps = 14;
    c.lr = {3e-3, 3e-4, 3, 8, 6};
    c.mtp_lambda.switch_step = 10;
    c.adamw.bf16_moments = bf16_moments;
    const TrainSummary whole = run_training(c, nullptr);

    const std::string dir = temp_dir(bf16_moments ? "resume16" : "resume32");
    TrainConfig first = c;
    first.checkpoint_dir = dir;
    first.stop_after = 6;
    const TrainSummary a = run_training(first, nullptr);
    EXPECT_TRUE(a.stopped_early);
    ASSERT_EQ(a.losses.size(), 6u);
    TrainConfig second = c;
    second.resume = dir;
    const TrainSummary b = run_training(second, nullptr);
    ASSERT_EQ(b.losses.size(), 8u);
    std::vector<double> joined = a.losses;
    joined.insert(joined.end(), b.losses.begin(), b.losses.end());
    EXPECT_EQ(joined, whole.losses) << "bf16_moments " << bf16_moments;
    EXPECT_EQ(b.final_maxvio_batch, whole.final_maxvio_batch);
    EXPECT_EQ(b.final_eval_loss, whole.final_eval_loss);
    std::filesystem::remove_all(dir);
  }
}

TEST(TrainLoop, CheckpointOfAnotherModelIsOneClearError) {
  TrainConfig c = tiny_config();
  c.steps = 1;
  c.checkpoint_dir = temp_dir("otherckpt");
  run_training(c, nullptr);
  TrainConfig other = c;
  other.mtp_depth = 0;
  other.num_groups = 0;
  other.model = "v3-small";
  other.resume = c.checkpoint_dir;
  other.checkpoint_dir.clear();
  try {
    run_training(other, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(c.checkpoint_dir), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(c.checkpoint_dir);
}

TEST(TrainLoop, FullModelGradientWithMtpAndBalanceLosses) {
  // total(θ) = L_main + λ·L_MTP + Σ_layers α·Σ f_i P_i, in double, on v3-tiny
  // (one MoE layer plus the MTP module's MoE layer). The balance losses enter
  // backward only through d_scores; α is large so that their share of the
  // gate gradient is far above the check's tolerance.
  ModelConfig c = model_preset("v3-tiny");
  c.num_nextn_predict_layers = 1;
  ModelParams<double> params(c, true);
  params.init(11, 0.2);
  const int64_t batch = 2, seq_len = 6;
  std::vector<int32_t> ids, targets;
  Rng rng(3);
  for (int64_t i = 0; i < batch * seq_len; ++i) ids.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < seq_len; ++i) targets.push_back(i + 1 < seq_len ? ids[b * seq_len + i + 1] : -1);
  const ModelContext<double> ctx;
  for (AuxLossKind kind : {AuxLossKind::sequence, AuxLossKind::batch}) {
    BalanceConfig balance;
    balance.aux_loss = kind;
    balance.aux_loss_coeff = 0.5;
    auto total = [&] {
      ModelSaved<double> s;
      const double l = model_forward(s, params, c, ids, targets, batch, seq_len, 0.3, ctx).total;
      auto layers = moe_layers(params, s);
      return l + add_balance_losses(layers, balance, c.n_routed_experts, c.num_experts_per_tok);
    };
    params.zero_grad();
    ModelSaved<double> s;
    model_forward(s, params, c, ids, targets, batch, seq_len, 0.3, ctx);
    auto layers = moe_layers(params, s);
    ASSERT_EQ(layers.size(), 2u);  // layer 1 and the MTP block (layer 2)
    const double aux = add_balance_losses(layers, balance, c.n_routed_experts, c.num_experts_per_tok);
    EXPECT_GT(aux, 0.0);
    model_backward(params, s, c, ctx);
    for (const char* name : {"model.layers.1.mlp.gate.weight", "model.layers.2.mlp.gate.weight",
                             "model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "model.embed_tokens.weight"}) {
      Param<double>& p = params.at(name);
      EXPECT_TRUE(test::grad_check(std::string(name) + " (" + aux_loss_kind_name(kind) + ")", p.value.ptr(),
                                   p.grad.ptr(), p.value.numel(), total, {.max_coords = 12}));
    }
  }
}
