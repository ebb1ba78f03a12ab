// Expert-parallel dispatch/combine under mpirun (-np 4 and -np 8), checked
// exactly (STYLE.md habit 4): every payload row carries (source rank, token
// index, its experts) and is compared bit for bit with the row the receiver
// rebuilds on its own; dispatch-then-combine returns the input exactly with
// weights for which the sum is exact; backward returns dx and d_topk_weight
// exactly; two-hop inter-node bytes equal distinct (token, remote node)
// pairs times the record size; node-limited routing keeps max nodes <= M.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "core/bf16.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "parallel/dispatch_combine.hpp"
#include "parallel/routing.hpp"
#include "parallel/topology.hpp"

namespace moelab::parallel {
namespace {

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

int64_t sum_all(int64_t v, MPI_Comm comm = MPI_COMM_WORLD) {
  int64_t s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, comm);
  return s;
}

constexpr int64_t kExperts = 16;
constexpr int kTopK = 3;
constexpr int64_t kHidden = 160;  // one full and one partial 1x128 tile

// The routing of token t of EP rank s: K distinct experts, drawn from (s, t)
// alone so every rank can rebuild any rank's rows.
std::vector<int32_t> token_experts(int s, int64_t t, int64_t num_experts) {
  Rng rng(1000003ULL * s + t + 17);
  std::vector<int32_t> ids;
  while (static_cast<int>(ids.size()) < kTopK) {
    const int32_t e = static_cast<int32_t>(rng.below(num_experts));
    if (std::find(ids.begin(), ids.end(), e) == ids.end()) ids.push_back(e);
  }
  return ids;
}

// Row of token t of rank s: (s, t, experts...) then values with 8
// significant bits (BF16-exact, so sums of power-of-two multiples are exact
// in FP32), never zero.
std::vector<float> token_row(int s, int64_t t, const std::vector<int32_t>& ids) {
  std::vector<float> row(kHidden);
  row[0] = static_cast<float>(s);
  row[1] = static_cast<float>(t);
  for (int k = 0; k < kTopK; ++k) row[2 + k] = static_cast<float>(ids[k]);
  Rng rng(77ULL * s + 13ULL * t + 5);
  for (int64_t h = 2 + kTopK; h < kHidden; ++h) {
    const int m = 128 + static_cast<int>(rng.below(128));  // 8-bit significand
    const int ex = static_cast<int>(rng.below(8)) - 4;
    row[h] = (rng.below(2) ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(m), ex - 7);
  }
  return row;
}

// Power-of-two weights summing to 1 (exact sums), or one-hot (exact in BF16).
std::vector<float> token_weights(bool one_hot) {
  return one_hot ? std::vector<float>{1.0f, 0.0f, 0.0f} : std::vector<float>{0.5f, 0.25f, 0.25f};
}

struct Inputs {
  int64_t tokens;
  std::vector<float> x, w;
  std::vector<int32_t> idx;
};

Inputs make_inputs(int ep_rank, int64_t tokens, bool one_hot) {
  Inputs in{tokens, {}, {}, {}};
  for (int64_t t = 0; t < tokens; ++t) {
    auto ids = token_experts(ep_rank, t, kExperts);
    auto row = token_row(ep_rank, t, ids);
    auto w = token_weights(one_hot);
    in.x.insert(in.x.end(), row.begin(), row.end());
    in.idx.insert(in.idx.end(), ids.begin(), ids.end());
    in.w.insert(in.w.end(), w.begin(), w.end());
  }
  return in;
}

int64_t tokens_of(int rank) { return 20 + 7 * rank; }  // uneven on purpose

struct Case {
  DispatchMode mode;
  WireFormat dispatch_format, combine_format;
  int ep, gpus_per_node;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  const int n = world_size();
  for (DispatchMode mode : {DispatchMode::direct, DispatchMode::two_hop})
    for (WireFormat f : {WireFormat::fp32, WireFormat::bf16, WireFormat::fp8})
      for (int gpn : {1, 2, n})
        for (int ep : {n, n / 2})
          if (ep >= 1 && kExperts % ep == 0 && (ep % gpn == 0 || gpn % ep == 0))
            out.push_back({mode, f, f == WireFormat::fp8 ? WireFormat::bf16 : f, ep, gpn});
  return out;
}

std::string label(const Case& c) {
  return dispatch_mode_name(c.mode) + "/" + wire_format_name(c.dispatch_format) + "/ep" + std::to_string(c.ep) +
         "/gpn" + std::to_string(c.gpus_per_node);
}

TEST(Topology, LayoutAndPlacement) {
  const int n = world_size();
  Topology t = Topology::create(MPI_COMM_WORLD, n, 2, 4 * n);
  EXPECT_EQ(t.num_nodes(), n / 2);
  EXPECT_EQ(t.ranks_per_node(), 2);
  EXPECT_EQ(t.experts_per_rank, 4);
  EXPECT_EQ(t.node_of(3), 1);
  EXPECT_EQ(t.local_index(3), 1);
  EXPECT_EQ(t.rank_at(1, 1), 3);
  EXPECT_EQ(t.rank_of_expert(4 * n - 1), n - 1);
  EXPECT_EQ(t.node_of_expert(8), 1);
  Topology h = Topology::create(MPI_COMM_WORLD, n / 2, 8, 16);  // DP 2, one node
  EXPECT_EQ(h.dp, 2);
  EXPECT_EQ(h.num_nodes(), 1);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  EXPECT_EQ(h.ep_rank, rank % (n / 2));
  EXPECT_EQ(h.dp_rank, rank / (n / 2));
  int ep_size = 0;
  MPI_Comm_size(h.ep_comm(), &ep_size);
  EXPECT_EQ(ep_size, n / 2);
}

TEST(Topology, BadLayoutsSayWhy) {
  const int n = world_size();
  try {
    Topology::create(MPI_COMM_WORLD, 3, 1, 12);
    ADD_FAILURE() << "EP 3 on " << n << " ranks accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a multiple of parallel.ep"), std::string::npos) << e.what();
  }
  try {
    Topology::create(MPI_COMM_WORLD, n, 1, n * 2 + 1);
    ADD_FAILURE() << "indivisible experts accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not divisible by EP degree"), std::string::npos) << e.what();
  }
}

TEST(Topology, ConfigHashMismatchStopsEveryRank) {
  EXPECT_NO_THROW(check_same_config(MPI_COMM_WORLD, "ep=4\nseed=1"));
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string mine = rank == 2 ? "ep=4\nseed=2" : "ep=4\nseed=1";
  try {
    check_same_config(MPI_COMM_WORLD, mine);
    ADD_FAILURE() << "mismatch not detected on rank " << rank;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("configuration mismatch: rank 2"), std::string::npos) << e.what();
  }
}

// Every received row is exactly the row its source built: (rank, token,
// experts) in the payload, the header, and every value bit for bit (after
// the wire format's own rounding for fp8).
TEST(DispatchCombine, PayloadRowsExact) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(label(c));
    Topology topo = Topology::create(MPI_COMM_WORLD, c.ep, c.gpus_per_node, kExperts);
    Dispatcher d(topo, {c.mode, c.dispatch_format, c.combine_format});
    Inputs in = make_inputs(topo.ep_rank, tokens_of(topo.ep_rank), false);
    const Received& r = d.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);

    // What this rank must get: each (source, token) with an expert here, once.
    std::set<std::pair<int, int64_t>> expected;
    for (int s = 0; s < topo.ep; ++s)
      for (int64_t t = 0; t < tokens_of(s); ++t)
        for (int32_t e : token_experts(s, t, kExperts))
          if (topo.is_local_expert(e)) expected.insert({s, t});
    std::set<std::pair<int, int64_t>> got;
    int mismatches = 0;
    for (int64_t i = 0; i < r.rows; ++i) {
      const int s = r.src_rank[i];
      const int64_t t = r.src_token[i];
      EXPECT_TRUE(got.insert({s, t}).second) << "row (" << s << ", " << t << ") received twice";
      auto ids = token_experts(s, t, kExperts);
      std::vector<float> want = token_row(s, t, ids);
      if (c.dispatch_format == WireFormat::fp8) wire_round_trip(WireFormat::fp8, want.data(), kHidden);
      for (int k = 0; k < kTopK; ++k) {
        EXPECT_EQ(r.topk_idx[i * kTopK + k], ids[k]);
        EXPECT_EQ(r.topk_weight[i * kTopK + k], token_weights(false)[k]);
      }
      if (c.dispatch_format != WireFormat::fp8) {
        EXPECT_EQ(r.x[i * kHidden + 0], float(s));
        EXPECT_EQ(r.x[i * kHidden + 1], float(t));
        for (int k = 0; k < kTopK; ++k) EXPECT_EQ(r.x[i * kHidden + 2 + k], float(ids[k]));
      }
      mismatches += std::memcmp(&r.x[i * kHidden], want.data(), 4 * kHidden) != 0;
    }
    EXPECT_EQ(mismatches, 0) << "rows differing from their source's bits";
    EXPECT_EQ(got, expected);
    EXPECT_EQ(d.stats().rows_received, r.rows);
  }
}

// y = sum over destination ranks of sum over local slots of w_k * x: with
// identity experts and exact weights, combine(dispatch(x)) == x bit for bit.
// Backward: dx == dy and d_topk_weight[t,k] == <dy_t, x_t> bit for bit.
TEST(DispatchCombine, RoundTripAndBackwardExact) {
  for (const Case& c : cases()) {
    if (c.dispatch_format == WireFormat::fp8) continue;  // lossy by design; covered above
    SCOPED_TRACE(label(c));
    const bool one_hot = c.combine_format == WireFormat::bf16;  // bf16 partials: one non-zero term per token
    Topology topo = Topology::create(MPI_COMM_WORLD, c.ep, c.gpus_per_node, kExperts);
    Dispatcher d(topo, {c.mode, c.dispatch_format, c.combine_format});
    Inputs in = make_inputs(topo.ep_rank, tokens_of(topo.ep_rank), one_hot);
    const Received& r = d.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
    std::vector<float> partial(r.rows * kHidden, 0.0f);
    for (const Assignment& a : local_assignments(r, topo)) {
      const float w = r.topk_weight[a.row * kTopK + a.slot];
      for (int64_t h = 0; h < kHidden; ++h) partial[a.row * kHidden + h] += w * r.x[a.row * kHidden + h];
    }
    std::vector<float> y(in.tokens * kHidden);
    d.combine(partial.data(), y.data());
    EXPECT_EQ(std::memcmp(y.data(), in.x.data(), 4 * y.size()), 0) << "combine(dispatch(x)) != x";

    // Backward with dy = x reversed in sign: dx_partial = sum_local w dy,
    // dweight = <dy, y_expert> = <dy, x>.
    std::vector<float> dy(in.x.size());
    for (size_t i = 0; i < dy.size(); ++i) dy[i] = in.x[i] == 0.0f ? 0.0f : -in.x[i];  // no -0: sums give +0
    std::vector<float> dy_rows(r.rows * kHidden), dx_partial(r.rows * kHidden, 0.0f), dw_rows(r.rows * kTopK, 0.0f);
    d.dispatch_grad(dy.data(), dy_rows.data());
    for (const Assignment& a : local_assignments(r, topo)) {
      const float w = r.topk_weight[a.row * kTopK + a.slot];
      float dot = 0.0f;
      for (int64_t h = 0; h < kHidden; ++h) {
        dx_partial[a.row * kHidden + h] += w * dy_rows[a.row * kHidden + h];
        dot += dy_rows[a.row * kHidden + h] * r.x[a.row * kHidden + h];
      }
      dw_rows[a.row * kTopK + a.slot] = dot;
    }
    std::vector<float> dx(in.tokens * kHidden), dtw(in.tokens * kTopK);
    d.combine_grad(dx_partial.data(), dw_rows.data(), dx.data(), dtw.data());
    EXPECT_EQ(std::memcmp(dx.data(), dy.data(), 4 * dx.size()), 0) << "dx != dy";
    int bad = 0;
    for (int64_t t = 0; t < in.tokens; ++t) {
      float dot = 0.0f;
      for (int64_t h = 0; h < kHidden; ++h) dot += dy[t * kHidden + h] * in.x[t * kHidden + h];
      for (int k = 0; k < kTopK; ++k) bad += dtw[t * kTopK + k] != dot;
    }
    EXPECT_EQ(bad, 0) << "d_topk_weight differs from <dy, x>";
  }
}

// Inter-node bytes: two_hop sends one record per (token, remote node) in
// dispatch and one per (token, remote node) back in combine; direct one per
// (token, remote rank). Summed over all ranks, sent == received.
TEST(DispatchCombine, InterNodeBytesCountDistinctTokenNodePairs) {
  const int n = world_size();
  for (DispatchMode mode : {DispatchMode::two_hop, DispatchMode::direct})
    for (WireFormat f : {WireFormat::fp8, WireFormat::bf16})
      for (int gpn : {1, 2}) {
        SCOPED_TRACE(dispatch_mode_name(mode) + "/" + wire_format_name(f) + "/gpn" + std::to_string(gpn));
        Topology topo = Topology::create(MPI_COMM_WORLD, n, gpn, kExperts);
        Dispatcher d(topo, {mode, f, WireFormat::bf16});
        Inputs in = make_inputs(topo.ep_rank, tokens_of(topo.ep_rank), false);
        const Received& r = d.dispatch(in.x.data(), in.idx.data(), in.w.data(), in.tokens, kHidden, kTopK);
        std::vector<float> partial(r.rows * kHidden, 0.0f), y(in.tokens * kHidden);
        d.combine(partial.data(), y.data());
        int64_t remote = 0;
        for (int64_t t = 0; t < in.tokens; ++t) {
          std::set<int> targets;
          for (int k = 0; k < kTopK; ++k) {
            const int e = in.idx[t * kTopK + k];
            if (mode == DispatchMode::two_hop && topo.node_of_expert(e) != topo.my_node())
              targets.insert(topo.node_of_expert(e));
            if (mode == DispatchMode::direct && topo.node_of_expert(e) != topo.my_node())
              targets.insert(topo.rank_of_expert(e));
          }
          remote += static_cast<int64_t>(targets.size());
        }
        const TrafficStats& s = d.stats();
        EXPECT_EQ(s.dispatch.bytes_sent_inter, remote * d.dispatch_record_bytes());
        EXPECT_EQ(s.dispatch.tokens_sent_inter, remote);
        EXPECT_EQ(s.combine.bytes_recv_inter, remote * d.combine_record_bytes());
        EXPECT_EQ(sum_all(s.dispatch.bytes_sent_inter), sum_all(s.dispatch.bytes_recv_inter));
        EXPECT_EQ(sum_all(s.dispatch.bytes_sent_intra), sum_all(s.dispatch.bytes_recv_intra));
        EXPECT_EQ(d.dispatch_record_bytes(), 8 + 8 * kTopK + wire_row_bytes(f, kHidden));
      }
}

// Node-limited routing over the EP group's nodes: in every step (here:
// several seeds and skews), max nodes per token <= M, measured by the
// dispatcher's own accounting.
TEST(DispatchCombine, NodeLimitHoldsInDispatch) {
  const int n = world_size();
  Topology topo = Topology::create(MPI_COMM_WORLD, n, 1, kExperts);  // n nodes of 1 rank
  for (int M : {1, 2, n})
    for (RoutingKind kind : {RoutingKind::uniform, RoutingKind::zipf, RoutingKind::hot_rank}) {
      if (M < n && topo.experts_per_node() * M < kTopK) continue;  // M nodes cannot hold K experts
      SCOPED_TRACE("M=" + std::to_string(M) + " " + routing_kind_name(kind));
      RoutingSourceOptions ro;
      ro.kind = kind;
      RoutingSource source(ro, kExperts, kTopK, topo.experts_per_rank);
      Dispatcher d(topo, {DispatchMode::two_hop, WireFormat::bf16, WireFormat::bf16});
      const int64_t T = 64;
      std::vector<float> scores(T * kExperts), x(T * kHidden, 1.0f), w(T * kTopK);
      std::vector<int32_t> idx(T * kTopK);
      for (int step = 0; step < 3; ++step) {
        source.scores(step, topo.ep_rank * T, T, scores.data());
        route_node_limited(scores.data(), nullptr, T, kExperts, kTopK, topo.num_nodes(), M, true, 1.0f, idx.data(),
                           w.data());
        d.dispatch(x.data(), idx.data(), w.data(), T, kHidden, kTopK);
        EXPECT_LE(d.stats().nodes_per_token_max, std::min(M, n));
      }
    }
}

}  // namespace
}  // namespace moelab::parallel
