// The model's float path against its double path, the BF16 GEMM mode and the
// RoutedExperts substitution point (an expert-parallel-like split computes
// the same layer). FP8 is tested with the numerics (test_linear_precision).
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.hpp"
#include "model/loss.hpp"
#include "model/model.hpp"
#include "tests/support/expect_close.hpp"

using namespace moelab;
using namespace moelab::test;
using std::vector;

namespace {

struct Batch {
  int64_t batch = 2, seq_len = 6;
  vector<int32_t> ids, targets;
  explicit Batch(const ModelConfig& c) {
    Rng rng(17);
    for (int64_t i = 0; i < batch * seq_len; ++i) ids.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < seq_len; ++i)
        targets.push_back(i + 1 < seq_len ? ids[b * seq_len + i + 1] : kIgnoreTarget);
  }
};

template <typename T>
ModelParams<T> params_for(const ModelConfig& c) {
  ModelParams<T> p(c, true);
  p.init(5, 0.2);
  int i = 0;
  for (auto& prm : p.all())
    if (!prm.trainable)
      for (auto& v : prm.value.data) v = static_cast<T>(0.05 * ((i++ % 7) - 3));
  return p;
}

// Splits the routed experts over `parts` groups, each computed on its own
// rows as an expert-parallel rank would (grouped_mlp over the rows routed to
// its experts), then combines.
class SplitExperts : public RoutedExperts<float> {
 public:
  SplitExperts(const vector<MlpParams<float>>& experts, int parts) : experts_(experts), parts_(parts) {}
  void forward(Tensor<float>& y, const Tensor<float>& x, const Tensor<int32_t>& idx,
               const Tensor<float>& weight) override {
    const int64_t E = static_cast<int64_t>(experts_.size()), H = x.dim(-1), T = x.numel() / H, K = idx.numel() / T;
    y = Tensor<float>({T, H});
    const int64_t per = E / parts_;
    for (int part = 0; part < parts_; ++part) {
      vector<MlpParams<float>> local(experts_.begin() + part * per, experts_.begin() + (part + 1) * per);
      // rows for this part's experts, grouped by local expert
      vector<int64_t> offsets(per + 1, 0);
      vector<std::pair<int64_t, int64_t>> slots;  // (token, k), in local-expert order
      for (int64_t e = 0; e < per; ++e) {
        for (int64_t t = 0; t < T; ++t)
          for (int64_t k = 0; k < K; ++k)
            if (idx[t * K + k] == part * per + e) slots.push_back({t, k});
        offsets[e + 1] = static_cast<int64_t>(slots.size());
      }
      GroupedMlpSaved<float> s;
      s.xp = Tensor<float>({offsets[per], H});
      for (size_t r = 0; r < slots.size(); ++r)
        std::copy_n(x.ptr() + slots[r].first * H, H, s.xp.ptr() + r * H);
      Tensor<float> yp;
      grouped_mlp_forward(yp, s, local, offsets, GemmPrecision::fp32);
      for (size_t r = 0; r < slots.size(); ++r)
        for (int64_t i = 0; i < H; ++i)
          y[slots[r].first * H + i] += weight[slots[r].first * K + slots[r].second] * yp[r * H + i];
    }
    ++forward_calls;
  }
  void backward(Tensor<float>&, Tensor<float>&, const Tensor<float>&) override { FAIL() << "not used"; }
  static inline int forward_calls = 0;

 private:
  vector<MlpParams<float>> experts_;
  int parts_;
};

}  // namespace

TEST(ModelPaths, FloatMatchesDouble) {
  const ModelConfig c = model_preset("v3-tiny");
  auto pd = params_for<double>(c);
  auto pf = params_for<float>(c);
  const Batch data(c);
  ModelSaved<double> sd;
  ModelSaved<float> sf;
  const auto ld = model_forward(sd, pd, c, data.ids, data.targets, data.batch, data.seq_len, 0.3, {});
  const auto lf = model_forward(sf, pf, c, data.ids, data.targets, data.batch, data.seq_len, 0.3, {});
  EXPECT_NEAR(lf.total, ld.total, 1e-5 * std::fabs(ld.total));
  EXPECT_NEAR(lf.mtp_losses[0], ld.mtp_losses[0], 1e-5 * std::fabs(ld.mtp_losses[0]));
  for (size_t l = 0; l < sd.layers.size(); ++l) {
    if (!c.is_moe_layer(l)) continue;
    EXPECT_TRUE(expect_equal("topk_idx layer " + std::to_string(l), sf.layers[l].moe.router.topk_idx.data,
                             sd.layers[l].moe.router.topk_idx.data));
  }
  model_backward(pd, sd, c, {});
  model_backward(pf, sf, c, {});
  for (size_t i = 0; i < pd.all().size(); ++i) {
    const auto& gd = pd.all()[i].grad.data;
    const auto& gf = pf.all()[i].grad.data;
    double scale = 0;
    for (double g : gd) scale = std::max(scale, std::fabs(g));
    // FP32 rounding relative to the tensor's largest gradient
    EXPECT_TRUE(expect_close(pd.all()[i].name, gf.data(), gd.data(), static_cast<int64_t>(gd.size()),
                             {1e-4 * scale + 1e-9, 1e-3}));
  }
}

TEST(ModelPaths, Bf16GemmsStayCloseToFp32) {
  const ModelConfig c = model_preset("v3-tiny");
  auto p = params_for<float>(c);
  const Batch data(c);
  ModelSaved<float> s32, s16;
  ModelContext<float> bf16;
  bf16.precision = GemmPrecision::bf16;
  const auto l32 = model_forward(s32, p, c, data.ids, data.targets, data.batch, data.seq_len, 0.3, {});
  const auto l16 = model_forward(s16, p, c, data.ids, data.targets, data.batch, data.seq_len, 0.3, bf16);
  EXPECT_NE(l32.total, l16.total);                    // the mode does change the arithmetic
  EXPECT_NEAR(l16.total, l32.total, 2e-2 * l32.total);  // by BF16 input rounding only
}

TEST(ModelPaths, RoutedExpertsCanBeSubstituted) {
  const ModelConfig c = model_preset("v3-tiny");
  auto p = params_for<float>(c);
  const Batch data(c);
  ModelSaved<float> local, split;
  ModelContext<float> ctx;
  vector<int64_t> layers_seen;
  ctx.make_experts = [&](int64_t layer, const vector<MlpParams<float>>& experts, GemmPrecision) {
    layers_seen.push_back(layer);
    return std::make_unique<SplitExperts>(experts, 2);
  };
  const auto a = model_forward(local, p, c, data.ids, data.targets, data.batch, data.seq_len, 0.3, {});
  const auto b = model_forward(split, p, c, data.ids, data.targets, data.batch, data.seq_len, 0.3, ctx);
  EXPECT_EQ(layers_seen, (vector<int64_t>{1, 2}));  // the MoE layer and the MTP block
  EXPECT_EQ(SplitExperts::forward_calls, 2);
  EXPECT_NEAR(a.total, b.total, 1e-5 * a.total);  // reassociation only
  EXPECT_TRUE(expect_close("h", split.h.data, local.h.data, tol_for<float>()));
}
