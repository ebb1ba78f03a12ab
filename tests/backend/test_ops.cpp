// The CPU backend ops against naive loops (forward) and finite differences
// (backward), in double; routing and permutation exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "backend/cpu/attention.hpp"
#include "backend/cpu/grouped_gemm.hpp"
#include "backend/cpu/permute.hpp"
#include "backend/cpu/rmsnorm.hpp"
#include "backend/cpu/rope.hpp"
#include "backend/cpu/swiglu.hpp"
#include "backend/cpu/topk.hpp"
#include "kernels/shared/rmsnorm.hpp"
#include "kernels/shared/rope.hpp"
#include "tests/support/expect_close.hpp"
#include "tests/support/grad_check.hpp"

using namespace moelab;
using namespace moelab::test;
using std::vector;

TEST(Rmsnorm, ForwardMatchesFormulaAndSharedRow) {
  const int64_t rows = 3, dim = 8;
  auto x = random_vector(rows * dim, 1), w = random_vector(dim, 2);
  vector<double> y(rows * dim), inv(rows), ref(rows * dim);
  cpu::rmsnorm_forward(y.data(), inv.data(), x.data(), w.data(), rows, dim, 1e-6);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += x[r * dim + i] * x[r * dim + i];
    for (int64_t i = 0; i < dim; ++i) ref[r * dim + i] = x[r * dim + i] / std::sqrt(ss / dim + 1e-6) * w[i];
  }
  EXPECT_TRUE(expect_close("rmsnorm y", y, ref, tol_for<double>()));
  // float path = kernels/shared rmsnorm_row bit for bit
  vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end()), yf(rows * dim), ys(rows * dim);
  cpu::rmsnorm_forward<float>(yf.data(), nullptr, xf.data(), wf.data(), rows, dim, 1e-6);
  for (int64_t r = 0; r < rows; ++r) shared::rmsnorm_row(ys.data() + r * dim, xf.data() + r * dim, wf.data(), dim, 1e-6f);
  EXPECT_TRUE(expect_equal("float rmsnorm = shared row", yf, ys));
}

TEST(Rmsnorm, BackwardFiniteDifferences) {
  const int64_t rows = 3, dim = 8;
  auto x = random_vector(rows * dim, 1), w = random_vector(dim, 2), r = random_vector(rows * dim, 3);
  auto loss = [&] {
    vector<double> y(rows * dim), inv(rows);
    cpu::rmsnorm_forward(y.data(), inv.data(), x.data(), w.data(), rows, dim, 1e-6);
    return dot(y, r);
  };
  vector<double> y(rows * dim), inv(rows), dx(rows * dim), dw(dim, 0.0);
  cpu::rmsnorm_forward(y.data(), inv.data(), x.data(), w.data(), rows, dim, 1e-6);
  cpu::rmsnorm_backward(dx.data(), dw.data(), r.data(), x.data(), w.data(), inv.data(), rows, dim);
  EXPECT_TRUE(grad_check("rmsnorm dx", x, dx, loss));
  EXPECT_TRUE(grad_check("rmsnorm dw", w, dw, loss));
}

TEST(Rope, YarnRangeOfDeepSeekV3) {
  // reference/deepseek-v3.md §2.2: dim 64, base 1e4, 4096 original positions, beta 32/1 -> low 10, high 23
  EXPECT_EQ(shared::yarn_low(32, 64, 10000, 4096), 10);
  EXPECT_EQ(shared::yarn_high(1, 64, 10000, 4096), 23);
  EXPECT_NEAR(shared::yarn_mscale(40, 1.0), 1.3688879, 1e-7);
  // pairs below low keep the original frequency; above high it is divided by the factor
  EXPECT_DOUBLE_EQ(shared::rope_inv_freq(3, 64, 10000, 40, 10, 23), std::pow(10000.0, -6.0 / 64));
  EXPECT_DOUBLE_EQ(shared::rope_inv_freq(30, 64, 10000, 40, 10, 23), std::pow(10000.0, -60.0 / 64) / 40);
  const double ramp = (16 - 10) / 13.0, f = std::pow(10000.0, -32.0 / 64);
  EXPECT_NEAR(shared::rope_inv_freq(16, 64, 10000, 40, 10, 23), f / 40 * ramp + f * (1 - ramp), 1e-18);
}

TEST(Rope, RotatesAdjacentPairsAndInverseUndoes) {
  const int64_t tokens = 3, heads = 2, dim = 4, stride = 6;  // rope part at offset 2 of each 6-wide head... of 12-wide token
  vector<double> inv_freq = {0.5, 0.25};
  auto table = cpu::make_rope_table<double>(inv_freq, 8, 1.5);
  auto x = random_vector(tokens * heads * stride, 4);
  auto y = x;
  vector<int32_t> pos = {0, 3, 7};
  cpu::rope_apply(y.data() + 2, tokens, heads * stride, heads, stride, pos.data(), table, false);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < dim / 2; ++i) {
        const int64_t o = t * heads * stride + h * stride + 2 + 2 * i;
        const double th = pos[t] * inv_freq[i];
        EXPECT_NEAR(y[o], 1.5 * (x[o] * std::cos(th) - x[o + 1] * std::sin(th)), 1e-14);
        EXPECT_NEAR(y[o + 1], 1.5 * (x[o] * std::sin(th) + x[o + 1] * std::cos(th)), 1e-14);
        EXPECT_EQ(y[t * heads * stride + h * stride], x[t * heads * stride + h * stride]);  // outside: untouched
      }
  // the transpose of m R is m R^-1: applying it gives m^2 x
  cpu::rope_apply(y.data() + 2, tokens, heads * stride, heads, stride, pos.data(), table, true);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < dim; ++i) {
        const int64_t o = t * heads * stride + h * stride + 2 + i;
        EXPECT_NEAR(y[o], 2.25 * x[o], 1e-13);
      }
}

namespace {
void naive_attention(vector<double>& o, const vector<double>& q, const vector<double>& k, const vector<double>& v,
                     const cpu::AttentionShape& s, double scale) {
  const int64_t S = s.seq_len, H = s.heads;
  o.assign(s.batch * S * H * s.dv, 0.0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        vector<double> sc(i + 1);
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double d = 0;
          for (int64_t c = 0; c < s.dqk; ++c)
            d += q[((b * S + i) * H + h) * s.dqk + c] * k[((b * S + j) * H + h) * s.dqk + c];
          sc[j] = d * scale;
          m = std::max(m, sc[j]);
        }
        for (auto& x : sc) sum += (x = std::exp(x - m));
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t c = 0; c < s.dv; ++c)
            o[((b * S + i) * H + h) * s.dv + c] += sc[j] / sum * v[((b * S + j) * H + h) * s.dv + c];
      }
}
}  // namespace

TEST(Attention, CausalForwardAndBackward) {
  const cpu::AttentionShape s{2, 5, 2, 3, 4};
  const int64_t T = s.batch * s.seq_len;
  const double scale = 0.7;
  auto q = random_vector(T * s.heads * s.dqk, 5), k = random_vector(T * s.heads * s.dqk, 6),
       v = random_vector(T * s.heads * s.dv, 7), r = random_vector(T * s.heads * s.dv, 8);
  vector<double> o(T * s.heads * s.dv), probs(s.batch * s.heads * s.seq_len * s.seq_len), ref;
  cpu::attention_forward(o.data(), probs.data(), q.data(), k.data(), v.data(), s, scale);
  naive_attention(ref, q, k, v, s, scale);
  EXPECT_TRUE(expect_close("attention o", o, ref, tol_for<double>()));
  vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), r.data(), q.data(), k.data(), v.data(), o.data(),
                          probs.data(), s, scale);
  auto loss = [&] {
    vector<double> out;
    naive_attention(out, q, k, v, s, scale);
    return dot(out, r);
  };
  EXPECT_TRUE(grad_check("attention dq", q, dq, loss));
  EXPECT_TRUE(grad_check("attention dk", k, dk, loss));
  EXPECT_TRUE(grad_check("attention dv", v, dv, loss));
}

TEST(Swiglu, ForwardAndBackward) {
  const int64_t rows = 3, n = 4, ld = 8;  // g and u interleaved in one [rows, 2n] buffer
  auto gu = random_vector(rows * ld, 9), r = random_vector(rows * n, 10);
  vector<double> h(rows * n), dgu(rows * ld);
  cpu::swiglu_forward(h.data(), gu.data(), gu.data() + n, rows, n, ld);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double g = gu[i * ld + j], u = gu[i * ld + n + j];
      EXPECT_NEAR(h[i * n + j], g / (1 + std::exp(-g)) * u, 1e-15);
    }
  cpu::swiglu_backward(dgu.data(), dgu.data() + n, r.data(), gu.data(), gu.data() + n, rows, n, ld);
  auto loss = [&] {
    vector<double> y(rows * n);
    cpu::swiglu_forward(y.data(), gu.data(), gu.data() + n, rows, n, ld);
    return dot(y, r);
  };
  EXPECT_TRUE(grad_check("swiglu d[g|u]", gu, dgu, loss));
}

TEST(Route, GroupLimitedTopkWithBias) {
  // 8 experts in 4 groups of 2; keep 2 groups, choose 2 experts.
  const vector<double> scores = {0.9, 0.1, 0.5, 0.45, 0.2, 0.3, 0.6, 0.55};
  const vector<double> bias = {-0.8, 0, 0, 0, 0.5, 0.5, 0, 0};
  // biased: {0.1,0.1 | 0.5,0.45 | 0.7,0.8 | 0.6,0.55} -> group scores 0.2, 0.95, 1.5, 1.15 -> groups 2, 3
  shared::RouteParams p{8, 4, 2, 2, shared::kRouteNoauxTc, true, 2.5};
  int idx[2];
  double w[2], choice[8], gs[4];
  shared::route_token(idx, w, choice, gs, scores.data(), bias.data(), p);
  EXPECT_EQ(idx[0], 5);  // biased 0.8
  EXPECT_EQ(idx[1], 4);  // biased 0.7
  // weights are the UNBIASED scores, normalised, times 2.5
  EXPECT_NEAR(w[0], 0.3 / 0.5 * 2.5, 1e-15);
  EXPECT_NEAR(w[1], 0.2 / 0.5 * 2.5, 1e-15);
  // greedy ignores groups and bias
  p.method = shared::kRouteGreedy;
  p.norm_topk_prob = false;
  p.routed_scaling_factor = 1;
  shared::route_token(idx, w, choice, gs, scores.data(), bias.data(), p);
  EXPECT_EQ(idx[0], 0);
  EXPECT_EQ(idx[1], 6);
  EXPECT_EQ(w[0], 0.9);
  // batch op = per-token shared function; counts
  vector<double> batch_scores(3 * 8);
  for (int t = 0; t < 3; ++t)
    for (int e = 0; e < 8; ++e) batch_scores[t * 8 + e] = scores[(e + t) % 8];
  p = {8, 4, 2, 2, shared::kRouteNoauxTc, true, 2.5};
  vector<int32_t> topk(6);
  vector<double> tw(6);
  cpu::topk_route(topk.data(), tw.data(), batch_scores.data(), bias.data(), 3, p);
  for (int t = 0; t < 3; ++t) {
    shared::route_token(idx, w, choice, gs, batch_scores.data() + t * 8, bias.data(), p);
    EXPECT_EQ(topk[2 * t], idx[0]);
    EXPECT_EQ(topk[2 * t + 1], idx[1]);
  }
  auto counts = cpu::expert_counts(topk.data(), 3, 2, 8);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), 6);
}

TEST(Permute, IdentityPayloadRoundTrip) {
  // Row payload encodes (token, column); permuted rows must be grouped by expert, stable by token.
  const int64_t T = 5, K = 2, E = 3, n = 3;
  const vector<int32_t> topk = {2, 0, 1, 2, 0, 1, 2, 1, 0, 2};
  cpu::PermuteIndex index;
  cpu::make_permute_index(index, topk.data(), T, K, E);
  EXPECT_EQ(index.expert_offsets, (vector<int64_t>{0, 3, 6, 10}));
  vector<double> x(T * n), xp(T * K * n);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < n; ++c) x[t * n + c] = 100 * t + c;
  cpu::permute_rows(xp.data(), x.data(), index, n);
  const vector<int32_t> expected_tokens = {0, 2, 4, 1, 2, 3, 0, 1, 3, 4};
  for (int64_t row = 0; row < T * K; ++row) {
    EXPECT_EQ(index.token_of[row], expected_tokens[row]);
    for (int64_t c = 0; c < n; ++c) EXPECT_EQ(xp[row * n + c], 100 * expected_tokens[row] + c);
  }
  // unweighted unpermute of the permuted payload: K copies back
  vector<double> y(T * n);
  cpu::unpermute_rows<double>(y.data(), xp.data(), nullptr, index, n);
  for (int64_t i = 0; i < T * n; ++i) EXPECT_EQ(y[i], K * x[i]);
  // weighted combine and its backward
  auto yp = random_vector(T * K * n, 11), w = random_vector(T * K, 12), r = random_vector(T * n, 13);
  vector<double> dyp(T * K * n), dw(T * K);
  cpu::unpermute_backward(dyp.data(), dw.data(), r.data(), yp.data(), w.data(), index, n);
  auto loss = [&] {
    vector<double> out(T * n);
    cpu::unpermute_rows(out.data(), yp.data(), w.data(), index, n);
    return dot(out, r);
  };
  EXPECT_TRUE(grad_check("combine dyp", yp, dyp, loss));
  EXPECT_TRUE(grad_check("combine dw", w, dw, loss));
}

TEST(GroupedGemm, MatchesPerExpertLoops) {
  const int64_t E = 3, n = 4, k = 5;
  const vector<int64_t> offsets = {0, 2, 2, 6};  // expert 1 empty
  const int64_t rows = offsets.back();
  auto a = random_vector(rows * k, 14), g = random_vector(rows * n, 15);
  vector<vector<double>> w(E);
  vector<const double*> wp(E);
  for (int64_t e = 0; e < E; ++e) w[e] = random_vector(n * k, 20 + e), wp[e] = w[e].data();
  vector<double> c(rows * n), ref(rows * n, 0.0);
  cpu::grouped_gemm<double>(true, offsets.data(), E, n, k, a.data(), k, wp.data(), 0.0, c.data(), n);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < k; ++i) ref[r * n + j] += a[r * k + i] * w[e][j * k + i];
  EXPECT_TRUE(expect_close("grouped gemm", c, ref, tol_for<double>()));
  vector<vector<double>> d(E, vector<double>(n * k, 1.0));
  vector<double*> dp(E);
  for (int64_t e = 0; e < E; ++e) dp[e] = d[e].data();
  cpu::grouped_gemm_wgrad<double>(offsets.data(), E, n, k, g.data(), n, a.data(), k, dp.data());
  for (int64_t e = 0; e < E; ++e) {
    vector<double> dref(n * k, 1.0);
    for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < k; ++i) dref[j * k + i] += g[r * n + j] * a[r * k + i];
    EXPECT_TRUE(expect_close("grouped wgrad e" + std::to_string(e), d[e], dref, tol_for<double>()));
  }
}
