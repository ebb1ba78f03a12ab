// AdamW against its closed form, gradient clipping, and the LR and MTP λ
// schedule shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "train/optimizer.hpp"

using namespace moelab::train;

TEST(AdamW, FirstStepsMatchClosedForm) {
  // With a constant gradient g the bias-corrected moments are m̂ = g and v̂ = g²
  // at every step, so each step is p ← p(1 − lr·wd) − lr·g/(|g| + eps).
  std::vector<float> w = {1.0f, -2.0f, 0.5f}, g = {0.3f, -0.02f, 4.0f};
  std::vector<float> bias = {0.25f}, gb = {-1.5f};
  AdamWConfig cfg;
  cfg.eps = 1e-8;
  cfg.weight_decay = 0.1;
  AdamW opt(cfg, {{"w", w.data(), g.data(), 3, true}, {"b", bias.data(), gb.data(), 1, false}});
  const double lr = 0.01;
  std::vector<double> expect_w = {1.0, -2.0, 0.5};
  double expect_b = 0.25;
  for (int step = 1; step <= 3; ++step) {
    opt.step(lr);
    for (int i = 0; i < 3; ++i) {
      expect_w[i] = expect_w[i] * (1 - lr * 0.1) - lr * g[i] / (std::abs(g[i]) + 1e-8);
      EXPECT_NEAR(w[i], expect_w[i], 2e-6) << "step " << step << " element " << i;
    }
    expect_b -= lr * gb[0] / (std::abs(gb[0]) + 1e-8);  // no weight decay on this slot
    EXPECT_NEAR(bias[0], expect_b, 2e-6) << "step " << step;
  }
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(AdamW, SecondMomentFromTwoGradients) {
  // g1 = 1, g2 = 3, no decay: m2 = 0.9·0.1·1 + 0.1·3, v2 = 0.95·0.05·1 + 0.05·9,
  // p2 = p1 − lr·(m2/(1−0.81))/(sqrt(v2/(1−0.9025)) + eps).
  std::vector<float> w = {0.0f}, g = {1.0f};
  AdamWConfig cfg;
  cfg.weight_decay = 0;
  AdamW opt(cfg, {{"w", w.data(), g.data(), 1, true}});
  opt.step(0.1);
  const double p1 = -0.1;
  EXPECT_NEAR(w[0], p1, 1e-7);
  g[0] = 3.0f;
  opt.step(0.1);
  const double m2 = 0.9 * 0.1 + 0.1 * 3, v2 = 0.95 * 0.05 + 0.05 * 9;
  const double p2 = p1 - 0.1 * (m2 / (1 - 0.81)) / (std::sqrt(v2 / (1 - 0.9025)) + 1e-8);
  EXPECT_NEAR(w[0], p2, 1e-6);
  EXPECT_NEAR(opt.moment1(0)[0], m2, 1e-6);  // FP32 moments
  EXPECT_NEAR(opt.moment2(0)[0], v2, 1e-6);
}

TEST(AdamW, Bf16MomentsStayCloseAndRestoreExactly) {
  std::vector<float> w32 = {1.0f, 2.0f}, w16 = {1.0f, 2.0f}, g = {0.123f, -0.456f};
  AdamWConfig c32, c16;
  c16.bf16_moments = true;
  AdamW a(c32, {{"w", w32.data(), g.data(), 2, true}}), b(c16, {{"w", w16.data(), g.data(), 2, true}});
  for (int i = 0; i < 5; ++i) a.step(1e-2), b.step(1e-2);
  // BF16 keeps 8 significant bits: each of the 5 updates (~lr) may differ by ~2^-8 relative.
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(w16[i], w32[i], 5 * 1e-2 * 0.01);
  // Moments are BF16 values: a restored optimizer continues identically.
  std::vector<float> w16b = w16;
  AdamW c(c16, {{"w", w16b.data(), g.data(), 2, true}});
  c.set_state(b.step_count(), {b.moment1(0)}, {b.moment2(0)});
  b.step(1e-2);
  c.step(1e-2);
  EXPECT_EQ(w16, w16b);
}

TEST(GradClip, ScalesToMaxNorm) {
  std::vector<float> w = {0, 0}, g = {3, 4};
  std::vector<ParamSlot> slots = {{"w", w.data(), g.data(), 2, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(slots, 1.0), 5.0);
  EXPECT_FLOAT_EQ(g[0], 0.6f);
  EXPECT_FLOAT_EQ(g[1], 0.8f);
  EXPECT_NEAR(clip_grad_norm(slots, 10.0), 1.0, 1e-7);  // under the limit: unchanged
  EXPECT_FLOAT_EQ(g[0], 0.6f);
}

TEST(LrSchedule, WarmupConstantCosine) {
  LrSchedule s{1.0, 0.1, 10, 50, 40};
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);   // (0 + 1) / 10
  EXPECT_DOUBLE_EQ(s.lr(4), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(9), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(10), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(49), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(50), 1.0);  // cosine starts at the peak
  EXPECT_NEAR(s.lr(70), 0.55, 1e-12);  // half-way: (peak + final) / 2
  EXPECT_NEAR(s.lr(90), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(s.lr(1000), 0.1);
  for (int64_t t = 51; t < 90; ++t) EXPECT_LT(s.lr(t), s.lr(t - 1));  // strictly decreasing in the decay
  LrSchedule flat{2.0, 0.0, 0, 0, 0};
  EXPECT_DOUBLE_EQ(flat.lr(0), 2.0);
  EXPECT_DOUBLE_EQ(flat.lr(12345), 2.0);
}

TEST(MtpLambda, SwitchesAtTheConfiguredStep) {
  MtpLambdaSchedule s{0.3, 0.1, 100};
  EXPECT_DOUBLE_EQ(s.lambda(0), 0.3);
  EXPECT_DOUBLE_EQ(s.lambda(99), 0.3);
  EXPECT_DOUBLE_EQ(s.lambda(100), 0.1);
  s.switch_step = -1;
  EXPECT_DOUBLE_EQ(s.lambda(1000000), 0.3);
}
