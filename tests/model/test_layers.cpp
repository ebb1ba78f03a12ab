// Every layer's backward against central finite differences, in double on
// v3-tiny shapes (YaRN on, q compression on and off, sigmoid group-limited
// routing with bias, shared experts, MTP), plus closed-form checks of
// YaRN and the router.
#include <gtest/gtest.h>

#include <cmath>

#include "model/embedding.hpp"
#include "model/loss.hpp"
#include "model/model.hpp"
#include "model/rmsnorm.hpp"
#include "model/weights.hpp"
#include "tests/support/expect_close.hpp"
#include "tests/support/grad_check.hpp"

using namespace moelab;
using namespace moelab::test;
using std::vector;

namespace {

ModelConfig tiny() { return model_preset("v3-tiny"); }

// Randomised so that every mechanism is exercised: larger weights than the
// training init (gradients well above rounding), a non-zero routing bias.
ModelParams<double> tiny_params(const ModelConfig& c, bool with_mtp, uint64_t seed = 7) {
  ModelParams<double> p(c, with_mtp);
  p.init(seed, 0.3);
  Rng rng(seed + 100);
  for (auto& prm : p.all()) {
    if (!prm.trainable) {
      for (auto& v : prm.value.data) v = 0.1 * rng.normal();
    } else if (prm.name.ends_with("norm.weight")) {
      for (auto& v : prm.value.data) v = 1.0 + 0.2 * rng.normal();
    }
  }
  return p;
}

Tensor<double> random_tensor(Shape shape, uint64_t seed, double scale = 1.0) {
  return Tensor<double>(shape, random_vector(shape_numel(shape), seed, scale));
}

// Checks every listed parameter's grad (already accumulated by backward with
// dy = R) against finite differences of `loss`.
void check_params(const vector<Param<double>*>& params, const std::function<double()>& loss,
                  GradCheckOptions options = {}) {
  for (Param<double>* p : params) {
    if (!p->trainable) {
      for (double g : p->grad.data) ASSERT_EQ(g, 0.0) << p->name << " must get no gradient";
      continue;
    }
    EXPECT_TRUE(grad_check(p->name, p->value.data, p->grad.data, loss, options));
  }
}

vector<Param<double>*> mla_param_list(const MlaParams<double>& a) {
  vector<Param<double>*> out;
  for (Param<double>* p : {a.q_a_proj, a.q_a_layernorm, a.q_b_proj, a.q_proj, a.kv_a_proj_with_mqa, a.kv_a_layernorm,
                           a.kv_b_proj, a.o_proj})
    if (p) out.push_back(p);
  return out;
}

}  // namespace

TEST(Rope, DeepSeekV3SoftmaxScaleAndYarnFrequencies) {
  ModelConfig c = model_preset("deepseek-v3");
  const RopeSetup r = rope_setup(c);
  // 192^-0.5 * (0.1 ln 40 + 1)^2 (reference/deepseek-v3.md §2.2)
  EXPECT_NEAR(r.softmax_scale, 0.1352338, 1e-7);
  EXPECT_DOUBLE_EQ(r.cos_sin_scale, 1.0);
  ASSERT_EQ(r.inv_freq.size(), 32u);
  // HF: freq_extra below the ramp (i <= 10), freq_inter = extra / 40 above (i >= 23)
  EXPECT_DOUBLE_EQ(r.inv_freq[0], 1.0);
  EXPECT_DOUBLE_EQ(r.inv_freq[10], std::pow(10000.0, -20.0 / 64));
  EXPECT_DOUBLE_EQ(r.inv_freq[23], std::pow(10000.0, -46.0 / 64) / 40);
  // mscale != mscale_all_dim (V2-Lite style): cos/sin scale is their ratio, softmax by mscale_all_dim^2
  c.rope_scaling.mscale = 0.707;
  c.rope_scaling.mscale_all_dim = 1.0;
  const RopeSetup r2 = rope_setup(c);
  EXPECT_NEAR(r2.cos_sin_scale, (0.1 * 0.707 * std::log(40.0) + 1) / (0.1 * std::log(40.0) + 1), 1e-15);
  // without YaRN: plain RoPE, plain softmax scale
  c.rope_scaling.type = "none";
  const RopeSetup r3 = rope_setup(c);
  EXPECT_DOUBLE_EQ(r3.softmax_scale, 1 / std::sqrt(192.0));
  EXPECT_DOUBLE_EQ(r3.inv_freq[31], std::pow(10000.0, -62.0 / 64));
}

TEST(Linear, BackwardFiniteDifferences) {
  Param<double> w("w", {3, 4});
  w.value = random_tensor({3, 4}, 1);
  auto x = random_tensor({5, 4}, 2), r = random_tensor({5, 3}, 3);
  auto loss = [&] {
    Tensor<double> y;
    linear_forward(y, x, w, GemmPrecision::fp32);
    return dot(y.data, r.data);
  };
  Tensor<double> dx;
  linear_backward(&dx, w, r, x, GemmPrecision::fp32);
  EXPECT_TRUE(grad_check("linear dx", x.data, dx.data, loss));
  EXPECT_TRUE(grad_check("linear dW", w.value.data, w.grad.data, loss));
}

TEST(Loss, CrossEntropyValueAndGradient) {
  auto logits = random_tensor({4, 6}, 4);
  const vector<int32_t> targets = {2, kIgnoreTarget, 5, 0};
  auto loss = [&] {
    Tensor<double> l = logits;
    return cross_entropy_forward(l, targets.data(), 4);
  };
  // closed form for the first row
  double z = 0;
  for (int v = 0; v < 6; ++v) z += std::exp(logits[v]);
  Tensor<double> probs = logits;
  int64_t counted = 0;
  const double value = cross_entropy_forward(probs, targets.data(), 4, &counted);
  EXPECT_EQ(counted, 3);
  double expect = 0;
  for (int t : {0, 2, 3}) {
    double zt = 0;
    for (int v = 0; v < 6; ++v) zt += std::exp(logits[t * 6 + v]);
    expect += std::log(zt) - logits[t * 6 + targets[t]];
  }
  EXPECT_NEAR(value, expect / 3, 1e-14);
  cross_entropy_backward(probs, targets.data(), 4, 1.0);
  EXPECT_TRUE(grad_check("dlogits", logits.data, probs.data, loss));
  for (int v = 0; v < 6; ++v) EXPECT_EQ(probs[6 + v], 0.0);  // ignored row
}

TEST(Norm, RmsnormAndEmbeddingBackward) {
  Param<double> w("w", {6});
  w.value = random_tensor({6}, 5);
  auto x = random_tensor({3, 6}, 6), r = random_tensor({3, 6}, 7);
  auto loss = [&] {
    Tensor<double> y, inv;
    rmsnorm_forward(y, inv, x, w, 1e-6);
    return dot(y.data, r.data);
  };
  Tensor<double> y, inv, dx;
  rmsnorm_forward(y, inv, x, w, 1e-6);
  rmsnorm_backward(dx, w, r, x, inv);
  EXPECT_TRUE(grad_check("rmsnorm dx", x.data, dx.data, loss));
  EXPECT_TRUE(grad_check("rmsnorm dw", w.value.data, w.grad.data, loss));

  Param<double> table("embed", {5, 6});
  table.value = random_tensor({5, 6}, 8);
  const vector<int32_t> ids = {3, 1, 3};
  auto eloss = [&] {
    Tensor<double> e;
    embedding_forward(e, table, ids.data(), 3);
    return dot(e.data, r.data);
  };
  embedding_backward(table, r, ids.data(), 3);
  EXPECT_TRUE(grad_check("embedding", table.value.data, table.grad.data, eloss));
  EXPECT_THROW(embedding_forward(y, table, vector<int32_t>{5}.data(), 1), Error);
}

namespace {

void check_mla(const ModelConfig& c) {
  auto params = tiny_params(c, false);
  const BlockParams<double>& block = params.layers[0];
  const SeqShape shape{2, 5};
  const auto rope = make_mla_rope<double>(c, shape.seq_len);
  const ModelContext<double> ctx;
  auto x = random_tensor({shape.tokens(), c.hidden_size}, 11), r = random_tensor({shape.tokens(), c.hidden_size}, 12);
  auto loss = [&] {
    MlaSaved<double> s;
    Tensor<double> y;
    mla_forward(y, s, block.attn, x, c, shape, rope, ctx);
    return dot(y.data, r.data);
  };
  MlaSaved<double> s;
  Tensor<double> y, dx;
  mla_forward(y, s, block.attn, x, c, shape, rope, ctx);
  mla_backward(dx, s, block.attn, r, c, shape, rope, ctx);
  EXPECT_TRUE(grad_check("mla dx", x.data, dx.data, loss));
  check_params(mla_param_list(block.attn), loss);
}

}  // namespace

TEST(Mla, BackwardWithYarnAndQCompression) {
  ModelConfig c = tiny();
  ASSERT_EQ(c.rope_scaling.type, "yarn");
  c.rope_scaling.mscale = 0.8;  // cos/sin scaled by mscale ratio, softmax scale by mscale_all_dim^2
  c.rope_scaling.mscale_all_dim = 1.0;
  check_mla(c);
}

TEST(Mla, BackwardWithoutQCompression) {
  ModelConfig c = tiny();
  c.q_lora_rank = std::nullopt;
  check_mla(c);
}

TEST(Mla, PositionsAreCausalPerSequence) {
  // Changing the last token of sequence 0 must not change any output of sequence 0's
  // earlier tokens, nor anything of sequence 1.
  const ModelConfig c = tiny();
  auto params = tiny_params(c, false);
  const SeqShape shape{2, 4};
  const auto rope = make_mla_rope<double>(c, 4);
  auto x = random_tensor({8, c.hidden_size}, 13);
  MlaSaved<double> s;
  Tensor<double> y0, y1;
  mla_forward(y0, s, params.layers[0].attn, x, c, shape, rope, {});
  for (int64_t i = 0; i < c.hidden_size; ++i) x[3 * c.hidden_size + i] += 1.0;
  mla_forward(y1, s, params.layers[0].attn, x, c, shape, rope, {});
  for (int64_t t : {0, 1, 2, 4, 5, 6, 7})
    for (int64_t i = 0; i < c.hidden_size; ++i) ASSERT_EQ(y0[t * c.hidden_size + i], y1[t * c.hidden_size + i]);
}

TEST(Mla, AbsorbedDecodingWithLatentCacheEqualsTrainingForm) {
  for (bool q_lora : {true, false}) {
    ModelConfig c = tiny();
    if (!q_lora) c.q_lora_rank = std::nullopt;
    auto params = tiny_params(c, false);
    const MlaParams<double>& attn = params.layers[0].attn;
    const int64_t S = 6;
    const auto rope = make_mla_rope<double>(c, S);
    auto x = random_tensor({S, c.hidden_size}, 14);
    MlaSaved<double> s;
    Tensor<double> y_train;
    mla_forward(y_train, s, attn, x, c, {1, S}, rope, {});
    // decode in chunks of 3, 1, 2 tokens through the compressed cache
    MlaKvCache<double> cache;
    mla_cache_init(cache, c, S);
    vector<double> y_decode;
    int64_t done = 0;
    for (int64_t n : {3, 1, 2}) {
      Tensor<double> xc({n, c.hidden_size}), yc;
      std::copy_n(x.ptr() + done * c.hidden_size, n * c.hidden_size, xc.ptr());
      mla_decode(yc, cache, attn, xc, c, rope, GemmPrecision::fp32);
      y_decode.insert(y_decode.end(), yc.data.begin(), yc.data.end());
      done += n;
    }
    EXPECT_EQ(cache.length, S);
    EXPECT_EQ(cache.latent.dim(1) + cache.k_pe.dim(1), c.kv_lora_rank + c.qk_rope_head_dim);
    EXPECT_TRUE(expect_close(q_lora ? "absorbed (q_lora)" : "absorbed (q_proj)", y_decode, y_train.data,
                             tol_for<double>()));
  }
}

TEST(Router, GatingWeightsGradientAndBiasOnlyInSelection) {
  const ModelConfig c = tiny();
  auto params = tiny_params(c, false);
  const MoeParams<double>& moe = params.layers[1].moe;
  ASSERT_NE(moe.gate.bias, nullptr);
  const int64_t T = 6, E = c.n_routed_experts, K = c.num_experts_per_tok;
  auto x = random_tensor({T, c.hidden_size}, 21), rw = random_tensor({T, K}, 22), rs = random_tensor({T, E}, 23);
  RouterSaved<double> s;
  router_forward(s, moe.gate, x, c);
  // weights: unbiased sigmoid scores of the chosen experts, normalised, times routed_scaling_factor
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += s.scores[t * E + s.topk_idx[t * K + k]];
    for (int64_t k = 0; k < K; ++k)
      EXPECT_NEAR(s.topk_weight[t * K + k], s.scores[t * E + s.topk_idx[t * K + k]] / sum * c.routed_scaling_factor,
                  1e-14);
  }
  int64_t load = 0;
  for (auto n : s.expert_load) load += n;
  EXPECT_EQ(load, T * K);
  // loss = rw . topk_weight + rs . scores (the extra d_scores path)
  auto loss = [&] {
    RouterSaved<double> s2;
    router_forward(s2, moe.gate, x, c);
    for (int64_t i = 0; i < T * K; ++i) EXPECT_EQ(s2.topk_idx[i], s.topk_idx[i]) << "selection flipped";
    return dot(s2.topk_weight.data, rw.data) + dot(s2.scores.data, rs.data);
  };
  Tensor<double> dx({T, c.hidden_size});
  router_backward(dx, s, moe.gate, x, rw, &rs, c);
  EXPECT_TRUE(grad_check("router dx", x.data, dx.data, loss));
  check_params({moe.gate.weight, moe.gate.bias}, loss);
}

TEST(Router, SoftmaxGreedyWithoutNormalisation) {
  ModelConfig c = tiny();
  c.scoring_func = "softmax";
  c.topk_method = "greedy";
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.0;
  auto params = tiny_params(c, false);
  const MoeParams<double>& moe = params.layers[1].moe;
  EXPECT_EQ(moe.gate.bias, nullptr);  // greedy: no correction bias
  const int64_t T = 5, E = c.n_routed_experts, K = c.num_experts_per_tok;
  auto x = random_tensor({T, c.hidden_size}, 24), rw = random_tensor({T, K}, 25);
  RouterSaved<double> s;
  router_forward(s, moe.gate, x, c);
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0, top = 0;
    for (int64_t e = 0; e < E; ++e) sum += s.scores[t * E + e], top = std::max(top, s.scores[t * E + e]);
    EXPECT_NEAR(sum, 1.0, 1e-14);
    EXPECT_EQ(s.topk_weight[t * K], top);
  }
  auto loss = [&] {
    RouterSaved<double> s2;
    router_forward(s2, moe.gate, x, c);
    return dot(s2.topk_weight.data, rw.data);
  };
  Tensor<double> dx({T, c.hidden_size});
  router_backward<double>(dx, s, moe.gate, x, rw, nullptr, c);
  EXPECT_TRUE(grad_check("softmax router dx", x.data, dx.data, loss));
  check_params({moe.gate.weight}, loss);
}

TEST(Moe, BackwardWithSharedExpertsAndScoreGradient) {
  const ModelConfig c = tiny();
  ASSERT_GT(c.n_shared_experts, 0);
  auto params = tiny_params(c, false);
  const MoeParams<double>& moe = params.layers[1].moe;
  const int64_t T = 7, E = c.n_routed_experts;
  const ModelContext<double> ctx;
  auto x = random_tensor({T, c.hidden_size}, 31), r = random_tensor({T, c.hidden_size}, 32),
       rs = random_tensor({T, E}, 33);
  auto loss = [&] {
    MoeSaved<double> s;
    Tensor<double> y;
    moe_forward(y, s, moe, x, c, 1, ctx);
    return dot(y.data, r.data) + dot(s.router.scores.data, rs.data);
  };
  MoeSaved<double> s;
  Tensor<double> y, dx;
  moe_forward(y, s, moe, x, c, 1, ctx);
  // the combine: y = sum_k w_k expert_k(x) + shared(x), checked token by token
  for (int64_t t = 0; t < T; ++t) {
    Tensor<double> xt({1, c.hidden_size}), yt, acc({1, c.hidden_size});
    std::copy_n(x.ptr() + t * c.hidden_size, c.hidden_size, xt.ptr());
    MlpSaved<double> ms;
    for (int64_t k = 0; k < c.num_experts_per_tok; ++k) {
      mlp_forward(yt, ms, moe.experts[s.router.topk_idx[t * c.num_experts_per_tok + k]], xt, GemmPrecision::fp32);
      for (int64_t i = 0; i < c.hidden_size; ++i) acc[i] += s.router.topk_weight[t * c.num_experts_per_tok + k] * yt[i];
    }
    mlp_forward(yt, ms, moe.shared, xt, GemmPrecision::fp32);
    for (int64_t i = 0; i < c.hidden_size; ++i) acc[i] += yt[i];
    EXPECT_TRUE(expect_close("moe token " + std::to_string(t), y.ptr() + t * c.hidden_size, acc.ptr(),
                             c.hidden_size, tol_for<double>()));
  }
  moe_backward(dx, s, moe, r, &rs, c, ctx);
  EXPECT_TRUE(grad_check("moe dx", x.data, dx.data, loss));
  vector<Param<double>*> ps = {moe.gate.weight, moe.gate.bias, moe.shared.gate_proj, moe.shared.up_proj,
                               moe.shared.down_proj};
  for (const auto& e : moe.experts) ps.insert(ps.end(), {e.gate_proj, e.up_proj, e.down_proj});
  check_params(ps, loss, {.max_coords = 8});
}

TEST(Block, DenseAndMoeBackward) {
  const ModelConfig c = tiny();
  auto params = tiny_params(c, false);
  const SeqShape shape{2, 4};
  const auto rope = make_mla_rope<double>(c, shape.seq_len);
  const ModelContext<double> ctx;
  for (int64_t layer = 0; layer < 2; ++layer) {
    const BlockParams<double>& b = params.layers[layer];
    EXPECT_EQ(b.is_moe, layer == 1);
    auto x = random_tensor({shape.tokens(), c.hidden_size}, 40 + layer),
         r = random_tensor({shape.tokens(), c.hidden_size}, 50 + layer);
    auto loss = [&] {
      BlockSaved<double> s;
      Tensor<double> y;
      block_forward(y, s, b, x, c, shape, rope, ctx);
      return dot(y.data, r.data);
    };
    BlockSaved<double> s;
    Tensor<double> y, dx;
    block_forward(y, s, b, x, c, shape, rope, ctx);
    block_backward(dx, s, b, r, c, shape, rope, ctx);
    EXPECT_TRUE(grad_check("block " + std::to_string(layer) + " dx", x.data, dx.data, loss));
    vector<Param<double>*> ps = {b.input_layernorm, b.post_attention_layernorm};
    if (!b.is_moe) ps.insert(ps.end(), {b.mlp.gate_proj, b.mlp.up_proj, b.mlp.down_proj});
    for (auto* p : mla_param_list(b.attn)) ps.push_back(p);
    check_params(ps, loss, {.max_coords = 8});
  }
}

namespace {

struct TinyBatch {
  int64_t batch = 2, seq_len = 5;
  vector<int32_t> ids, targets;
  explicit TinyBatch(const ModelConfig& c) {
    Rng rng(99);
    for (int64_t i = 0; i < batch * seq_len; ++i) ids.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < seq_len; ++i)
        targets.push_back(i + 1 < seq_len ? ids[b * seq_len + i + 1] : kIgnoreTarget);
  }
};

}  // namespace

TEST(Model, FullModelWithMtpBackward) {
  const ModelConfig c = tiny();
  ASSERT_EQ(c.num_nextn_predict_layers, 1);
  auto params = tiny_params(c, true);
  const TinyBatch data(c);
  const double lambda = 0.3;
  const ModelContext<double> ctx;
  auto loss = [&] {
    ModelSaved<double> s;
    return model_forward(s, params, c, data.ids, data.targets, data.batch, data.seq_len, lambda, ctx).total;
  };
  ModelSaved<double> s;
  const ModelLosses l = model_forward(s, params, c, data.ids, data.targets, data.batch, data.seq_len, lambda, ctx);
  ASSERT_EQ(l.mtp_losses.size(), 1u);
  EXPECT_NEAR(l.total, l.loss + lambda * l.mtp_losses[0], 1e-14);
  EXPECT_GT(l.loss, 0);
  EXPECT_EQ(s.layers[1].moe.expert_load().size(), static_cast<size_t>(c.n_routed_experts));
  model_backward(params, s, c, ctx);
  vector<Param<double>*> ps;
  for (auto& p : params.all()) ps.push_back(&p);
  check_params(ps, loss, {.max_coords = 6});
}

TEST(Model, ParamsNamesCopyAndDeterministicInit) {
  const ModelConfig c = tiny();
  ModelParams<float> a(c, true), b(c, true);
  a.init(3, 0.02);
  b.init(3, 0.02);
  EXPECT_EQ(a.all().size(), model_weights(c, true).size());
  EXPECT_EQ(a.at("model.layers.1.mlp.experts.3.up_proj.weight").value.data,
            b.at("model.layers.1.mlp.experts.3.up_proj.weight").value.data);
  EXPECT_EQ(a.at("model.layers.0.input_layernorm.weight").value[0], 1.0f);
  EXPECT_FALSE(a.at("model.layers.1.mlp.gate.e_score_correction_bias").trainable);
  EXPECT_THROW(a.at("model.layers.9.mlp.gate.weight"), Error);
  // a copy owns its storage and its views point into it
  ModelParams<float> copy = a;
  EXPECT_EQ(copy.layers[1].moe.experts[2].gate_proj, &copy.at("model.layers.1.mlp.experts.2.gate_proj.weight"));
  EXPECT_EQ(copy.mtp[0].block.attn.o_proj, &copy.at("model.layers.2.self_attn.o_proj.weight"));
}
