// Load balancing: the bias sign rule on a hand-made load (and its freeze),
// MaxVio, and the balance losses against a closed form and finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "train/balance.hpp"

using namespace moelab;
using namespace moelab::train;

namespace {
float* const kNoGrad = nullptr;  // loss only
}  // namespace

TEST(ExpertBias, SignRuleOnHandMadeLoad) {
  // mean load 20: expert 0 underloaded (+γ), 1 overloaded (−γ), 2 and 3 exactly at the mean (unchanged).
  std::vector<float> bias = {0.5f, 0.5f, -0.25f, 0.0f};
  update_expert_bias(bias.data(), {10, 30, 20, 20}, 0.001);
  EXPECT_FLOAT_EQ(bias[0], 0.501f);
  EXPECT_FLOAT_EQ(bias[1], 0.499f);
  EXPECT_EQ(bias[2], -0.25f);
  EXPECT_EQ(bias[3], 0.0f);
  // The step size is γ whatever the size of the imbalance.
  std::vector<float> b2 = {0, 0};
  update_expert_bias(b2.data(), {0, 1000}, 0.01);
  EXPECT_FLOAT_EQ(b2[0], 0.01f);
  EXPECT_FLOAT_EQ(b2[1], -0.01f);
}

TEST(ExpertBias, FrozenFromTheConfiguredStep) {
  BalanceConfig c;
  c.expert_bias = true;
  c.bias_update_rate = 0.001;
  c.bias_freeze_step = 100;
  EXPECT_TRUE(c.bias_updates_at(0));
  EXPECT_TRUE(c.bias_updates_at(99));
  EXPECT_FALSE(c.bias_updates_at(100));
  EXPECT_FALSE(c.bias_updates_at(5000));
  c.bias_freeze_step = -1;
  EXPECT_TRUE(c.bias_updates_at(5000));
  c.expert_bias = false;
  EXPECT_FALSE(c.bias_updates_at(0));
}

TEST(ExpertBias, MaxViolation) {
  EXPECT_DOUBLE_EQ(max_violation({10, 30, 20, 20}), 0.5);  // (30 - 20) / 20
  EXPECT_DOUBLE_EQ(max_violation({5, 5, 5}), 0.0);
  EXPECT_DOUBLE_EQ(max_violation({0, 0, 12}), 2.0);
}

TEST(ExpertBias, CountTokens) {
  const std::vector<int32_t> idx = {0, 2, 2, 3, 0, 1};  // [T=3, K=2]
  EXPECT_EQ(count_expert_tokens(idx.data(), 3, 2, 4), (std::vector<double>{2, 1, 2, 1}));
}

namespace {

struct Routing {
  int64_t num_seqs, seq_len, E, K;
  std::vector<float> scores;    // [T, E] sigmoid affinities
  std::vector<int64_t> topk;    // [T, K]
};

Routing random_routing(int64_t num_seqs, int64_t seq_len, int64_t E, int64_t K, uint64_t seed) {
  Routing r{num_seqs, seq_len, E, K, {}, {}};
  Rng rng(seed);
  const int64_t T = num_seqs * seq_len;
  r.scores.resize(T * E);
  for (auto& s : r.scores) s = static_cast<float>(1.0 / (1.0 + std::exp(-rng.normal())));
  for (int64_t t = 0; t < T; ++t) {
    // top-K of the scores of token t.
    std::vector<int64_t> order(E);
    for (int64_t i = 0; i < E; ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int64_t a, int64_t b) { return r.scores[t * E + a] > r.scores[t * E + b]; });
    r.topk.insert(r.topk.end(), order.begin(), order.begin() + K);
  }
  return r;
}

}  // namespace

TEST(BalanceLoss, PerfectBalanceGivesAlpha) {
  // E = 4, K = 2, every expert selected equally often, equal scores: f_i = 1, P_i = 1/4, L = α.
  const int64_t E = 4, K = 2, S = 4;
  std::vector<float> scores(S * E, 0.3f);
  std::vector<int32_t> topk = {0, 1, 2, 3, 0, 1, 2, 3};
  for (auto kind : {AuxLossKind::batch, AuxLossKind::sequence})
    EXPECT_NEAR(balance_loss(kind, 0.01, scores.data(), topk.data(), 1, S, E, K, kNoGrad), 0.01, 1e-12);
  // All tokens on experts 0 and 1 with all the normalised score there: f = (2, 2, 0, 0), P = (.5, .5, 0, 0), L = 2α.
  std::vector<float> skew(S * E, 0.0f);
  for (int64_t t = 0; t < S; ++t) skew[t * E] = skew[t * E + 1] = 0.5f;
  std::vector<int32_t> idx = {0, 1, 0, 1, 0, 1, 0, 1};
  EXPECT_NEAR(balance_loss(AuxLossKind::batch, 1.0, skew.data(), idx.data(), 1, S, E, K, kNoGrad), 2.0, 1e-12);
}

TEST(BalanceLoss, SequenceWiseDiffersFromBatchWise) {
  // Sequence 0 all on experts {0,1}, sequence 1 all on {2,3}: the batch is balanced, each sequence is not.
  const int64_t E = 4, K = 2, S = 2;
  std::vector<float> scores = {.5f, .5f, 0, 0, .5f, .5f, 0, 0, 0, 0, .5f, .5f, 0, 0, .5f, .5f};
  std::vector<int32_t> topk = {0, 1, 0, 1, 2, 3, 2, 3};
  EXPECT_NEAR(balance_loss(AuxLossKind::batch, 1.0, scores.data(), topk.data(), 2, S, E, K, kNoGrad), 1.0, 1e-12);
  EXPECT_NEAR(balance_loss(AuxLossKind::sequence, 1.0, scores.data(), topk.data(), 2, S, E, K, kNoGrad), 2.0, 1e-12);
  EXPECT_EQ(balance_loss(AuxLossKind::none, 1.0, scores.data(), topk.data(), 2, S, E, K, kNoGrad), 0.0);
}

TEST(BalanceLoss, GradientMatchesFiniteDifferences) {
  for (auto kind : {AuxLossKind::batch, AuxLossKind::sequence}) {
    Routing r = random_routing(3, 5, 8, 3, 42);
    const int64_t T = r.num_seqs * r.seq_len;
    const double alpha = 0.7;
    std::vector<float> grad(T * r.E, 0.0f);
    balance_loss(kind, alpha, r.scores.data(), r.topk.data(), r.num_seqs, r.seq_len, r.E, r.K, grad.data());
    double max_err = 0, max_grad = 0;
    for (int64_t i = 0; i < T * r.E; ++i) {
      // f is held fixed (the selection does not move), so the loss is smooth in the scores.
      std::vector<float> plus = r.scores, minus = r.scores;
      plus[i] += 1e-2f;
      minus[i] -= 1e-2f;
      const double lp = balance_loss(kind, alpha, plus.data(), r.topk.data(), r.num_seqs, r.seq_len, r.E, r.K, kNoGrad);
      const double lm = balance_loss(kind, alpha, minus.data(), r.topk.data(), r.num_seqs, r.seq_len, r.E, r.K, kNoGrad);
      const double fd = (lp - lm) / (static_cast<double>(plus[i]) - minus[i]);
      max_err = std::max(max_err, std::abs(fd - grad[i]));
      max_grad = std::max(max_grad, std::abs(fd));
    }
    EXPECT_GT(max_grad, 1e-4) << aux_loss_kind_name(kind);
    EXPECT_LT(max_err, 2e-3 * max_grad) << aux_loss_kind_name(kind) << ": max |fd - analytic| " << max_err;
  }
}

TEST(BalanceLoss, GradientAccumulates) {
  Routing r = random_routing(2, 4, 4, 2, 7);
  std::vector<float> once(8 * 4, 0.0f), twice(8 * 4, 0.0f);
  balance_loss(AuxLossKind::sequence, 0.1, r.scores.data(), r.topk.data(), 2, 4, 4, 2, once.data());
  balance_loss(AuxLossKind::sequence, 0.1, r.scores.data(), r.topk.data(), 2, 4, 4, 2, twice.data());
  balance_loss(AuxLossKind::sequence, 0.1, r.scores.data(), r.topk.data(), 2, 4, 4, 2, twice.data());
  for (size_t i = 0; i < once.size(); ++i) EXPECT_FLOAT_EQ(twice[i], 2 * once[i]);
}

TEST(BalanceLoss, ParseMegatronNames) {
  EXPECT_EQ(parse_aux_loss_kind("aux_loss"), AuxLossKind::batch);
  EXPECT_EQ(parse_aux_loss_kind("seq_aux_loss"), AuxLossKind::sequence);
  EXPECT_EQ(parse_aux_loss_kind("none"), AuxLossKind::none);
  EXPECT_THROW(parse_aux_loss_kind("sinkhorn"), Error);
}
