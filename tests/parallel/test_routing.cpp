// Node-limited routing against a brute-force reference, the model/cluster
// consistency check, routing sources' skew, and the wire formats against the
// numerics quantizer (single process).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/bf16.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "numerics/quantize.hpp"
#include "parallel/routing.hpp"
#include "parallel/wire.hpp"

namespace moelab::parallel {
namespace {

// Reference: enumerate every set of M groups, keep the one with the largest
// sum of top-(K/M) scores per group (ties: lexicographically smallest, as a
// stable sort of groups gives), then top-K inside.
std::vector<int32_t> reference_route(const std::vector<float>& s, int E, int K, int G, int M) {
  const int per = E / G, gk = std::max(1, K / M);
  std::vector<float> gs(G);
  for (int g = 0; g < G; ++g) {
    std::vector<float> v(s.begin() + g * per, s.begin() + (g + 1) * per);
    std::sort(v.rbegin(), v.rend());
    float sum = 0.0f;
    for (int i = 0; i < gk; ++i) sum += v[i];
    gs[g] = sum;
  }
  std::vector<int> groups(G);
  std::iota(groups.begin(), groups.end(), 0);
  std::stable_sort(groups.begin(), groups.end(), [&](int a, int b) { return gs[a] > gs[b]; });
  std::vector<int> experts;
  for (int i = 0; i < std::min(M, G); ++i)
    for (int e = groups[i] * per; e < (groups[i] + 1) * per; ++e) experts.push_back(e);
  std::stable_sort(experts.begin(), experts.end(), [&](int a, int b) { return s[a] > s[b]; });
  std::sort(experts.begin(), experts.begin() + K, [&](int a, int b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  return std::vector<int32_t>(experts.begin(), experts.begin() + K);
}

TEST(NodeLimitedRouting, MatchesBruteForceAndNeverExceedsM) {
  const int E = 32, K = 8, T = 200;
  Rng rng(3);
  for (int G : {1, 2, 4, 8})
    for (int M : {1, 2, 4, 8}) {
      if (M * (E / G) < K && M < G) continue;
      std::vector<float> scores(T * E);
      for (float& v : scores) v = static_cast<float>(rng.uniform());
      std::vector<int32_t> idx(T * K);
      std::vector<float> w(T * K);
      route_node_limited(scores.data(), nullptr, T, E, K, G, M, true, 2.5f, idx.data(), w.data());
      EXPECT_LE(max_groups_per_token(idx.data(), T, K, E, G), std::min(M, G)) << "G=" << G << " M=" << M;
      for (int t = 0; t < T; ++t) {
        std::vector<float> s(scores.begin() + t * E, scores.begin() + (t + 1) * E);
        auto ref = reference_route(s, E, K, G, M);
        ASSERT_EQ(std::vector<int32_t>(idx.begin() + t * K, idx.begin() + (t + 1) * K), ref)
            << "token " << t << " G=" << G << " M=" << M;
        float sum = 0.0f;
        for (int k = 0; k < K; ++k) sum += w[t * K + k];
        EXPECT_NEAR(sum, 2.5f, 1e-5f);
      }
    }
}

TEST(NodeLimitedRouting, BiasSelectsButDoesNotWeigh) {
  const int E = 8, K = 2;
  std::vector<float> s = {0.9f, 0.8f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  std::vector<float> bias(E, 0.0f);
  bias[2] = 1.0f;  // pushes expert 2 into the top-2
  std::vector<int32_t> idx(K);
  std::vector<float> w(K);
  route_node_limited(s.data(), bias.data(), 1, E, K, 1, 1, true, 1.0f, idx.data(), w.data());
  EXPECT_EQ(idx[0], 2);
  EXPECT_EQ(idx[1], 0);
  EXPECT_FLOAT_EQ(w[0], 0.1f / 1.0f);
  EXPECT_FLOAT_EQ(w[1], 0.9f / 1.0f);
}

TEST(NodeLimitedRouting, ModelGroupsMustBeTheNodes) {
  EXPECT_NO_THROW(check_node_limit_matches_model(8, 4, 8, 4));  // DeepSeek-V3 on EP64 over 8 nodes
  EXPECT_NO_THROW(check_node_limit_matches_model(1, 1, 4, 2));  // no groups in the model
  try {
    check_node_limit_matches_model(4, 2, 2, 1);
    ADD_FAILURE() << "mismatch accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("n_group = 4, topk_group = 2"), std::string::npos) << m;
    EXPECT_NE(m.find("nodes per EP group (2"), std::string::npos) << m;
  }
}

TEST(RoutingSource, SkewShowsInTheLoad) {
  const int E = 16, K = 2, T = 4000;
  auto load_of = [&](RoutingSourceOptions o, int64_t step) {
    RoutingSource src(o, E, K, 4);
    std::vector<float> s(T * E), w(T * K);
    std::vector<int32_t> idx(T * K);
    src.scores(step, 0, T, s.data());
    route_node_limited(s.data(), nullptr, T, E, K, 1, 1, true, 1.0f, idx.data(), w.data());
    std::vector<int64_t> load(E, 0);
    for (int32_t e : idx) ++load[e];
    return load;
  };
  RoutingSourceOptions o;
  auto uni = load_of(o, 0);
  const double mean = double(T) * K / E;
  for (int e = 0; e < E; ++e) EXPECT_NEAR(uni[e], mean, 0.25 * mean) << e;
  o.kind = RoutingKind::hot_expert;
  o.hot_expert = 5;
  auto hot = load_of(o, 0);
  // Weight 8 against 15 of weight 1, K = 2 without replacement: P(chosen) = 8/23 + sum_j (1/23)(8/22) = 0.58.
  EXPECT_NEAR(hot[5], 0.58 * T, 0.05 * T);
  o.kind = RoutingKind::rotating;
  auto rot1 = load_of(o, 1);  // hot expert moves to rank 1's first expert (4)
  EXPECT_EQ(std::max_element(rot1.begin(), rot1.end()) - rot1.begin(), 4);
  o.kind = RoutingKind::hot_rank;
  o.hot_rank = 2;
  auto hr = load_of(o, 0);
  EXPECT_GT(hr[8] + hr[9] + hr[10] + hr[11], 0.6 * T * K);
  // Same tokens, same scores, whatever the split over ranks.
  RoutingSource src(RoutingSourceOptions{}, E, K, 4);
  std::vector<float> a(10 * E), b(4 * E);
  src.scores(3, 0, 10, a.data());
  src.scores(3, 6, 4, b.data());
  EXPECT_EQ(std::memcmp(a.data() + 6 * E, b.data(), 4 * b.size()), 0);
}

TEST(Wire, Fp8MatchesTheNumericsQuantizerAndSizesAreRight) {
  const int64_t H = 300;
  Rng rng(9);
  std::vector<float> x(H);
  for (float& v : x) v = static_cast<float>(rng.normal() * 3.0);
  std::vector<uint8_t> buf(wire_row_bytes(WireFormat::fp8, H));
  EXPECT_EQ(buf.size(), size_t(H + 4 * 3));
  wire_encode(WireFormat::fp8, x.data(), H, buf.data());
  std::vector<float> got(H);
  wire_decode(WireFormat::fp8, buf.data(), H, got.data());
  numerics::QuantizedTensor q = numerics::quantize(x.data(), 1, H, {});
  std::vector<float> ref = numerics::dequantize(q);
  EXPECT_EQ(std::memcmp(got.data(), ref.data(), 4 * H), 0);
  EXPECT_EQ(std::memcmp(buf.data(), q.codes.data(), H), 0);
  EXPECT_EQ(wire_row_bytes(WireFormat::bf16, H), 2 * H);
  EXPECT_EQ(wire_row_bytes(WireFormat::fp32, H), 4 * H);
  std::vector<float> b = x;
  wire_round_trip(WireFormat::bf16, b.data(), H);
  for (int64_t i = 0; i < H; ++i) EXPECT_EQ(b[i], round_to_bf16(x[i]));
  EXPECT_THROW(parse_wire_format("fp16"), Error);
}

}  // namespace
}  // namespace moelab::parallel
