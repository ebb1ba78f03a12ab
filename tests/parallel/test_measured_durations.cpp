// Op durations extracted from a timeline (measured_durations.hpp) and the
// simulator's per-(stage, op kind) table (StageDurations in simulate.hpp).
// Closed-form invariant: a timeline simulated with per-stage durations (every
// (stage, kind) and F&B pair its own value) and a p2p latency, passed through
// stage_durations and simulated again, is reproduced event for event. The
// durations are multiples of 1/16 s, so every sum and mean is exact and the
// comparison is bit for bit.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/measured_durations.hpp"
#include "parallel/schedule/simulate.hpp"

using namespace moelab;
using namespace moelab::schedule;

namespace {

struct Case {
  std::string kind;
  int ranks;
  int microbatches;
};

std::vector<Case> cases() {
  return {{"gpipe", 4, 6},   {"1f1b", 4, 8},      {"1f1b", 3, 7},      {"zb1p", 4, 8},     {"zb1p", 2, 5},
          {"dualpipe", 4, 8}, {"dualpipe", 4, 14}, {"dualpipe", 6, 12}, {"dualpipev", 4, 8}, {"dualpipev", 3, 9}};
}

// Stage-dependent durations in 1/16 s steps, unequal across stages and kinds
// and not tied together (B_input is not B - W, F&B is not F + B).
double sixteenths(int a, int b, int c) { return ((a * 7 + b * 3 + c * 5) % 13 + 3) / 16.0; }

StageDurations uneven_table(int num_stages, double p2p_s) {
  Durations global;  // never used: every (stage, kind) and pair is set
  global.p2p_s = p2p_s;
  StageDurations d(global, num_stages);
  for (int st = 0; st < num_stages; ++st) {
    for (int k = 0; k < kNumOpKinds; ++k) d.set(st, static_cast<OpKind>(k), sixteenths(st, k, 1));
    for (int b = 0; b < num_stages; ++b) d.set_fb_pair(st, b, 1.0 + sixteenths(st, b, 2));
  }
  return d;
}

void expect_same_events(const SimResult& got, const SimResult& want, const std::string& what) {
  ASSERT_EQ(got.events.size(), want.events.size()) << what;
  for (size_t i = 0; i < got.events.size(); ++i) {
    const Event &g = got.events[i], &w = want.events[i];
    ASSERT_EQ(g.rank, w.rank) << what << " event " << i;
    ASSERT_EQ(g.kind, w.kind) << what << " event " << i;
    ASSERT_EQ(g.microbatch, w.microbatch) << what << " event " << i;
    ASSERT_EQ(g.stage, w.stage) << what << " event " << i;
    ASSERT_EQ(g.start_s, w.start_s) << what << " event " << i << " (rank " << g.rank << " " << op_name(g.kind) << " "
                                    << g.microbatch << "." << g.stage << ")";
    ASSERT_EQ(g.end_s, w.end_s) << what << " event " << i;
  }
  EXPECT_EQ(got.makespan_s, want.makespan_s) << what;
}

}  // namespace

TEST(StageDurations, ExtractedFromASimulatedTimelineReproduceItExactly) {
  for (const Case& c : cases())
    for (double p2p_s : {0.0, 0.125, 0.5}) {
      const Schedule s = make_schedule(c.kind, c.ranks, c.microbatches);
      const std::string what = c.kind + " " + std::to_string(c.ranks) + " ranks, " + std::to_string(c.microbatches) +
                               " micro-batches, p2p " + std::to_string(p2p_s);
      const StageDurations truth = uneven_table(s.num_stages, p2p_s);
      const SimResult timeline = simulate(s, truth);

      const StageDurations got = stage_durations(timeline, s.num_stages);
      const P2pLatency p2p = p2p_latency(timeline);
      EXPECT_GT(p2p.num_samples, 0) << what;
      EXPECT_EQ(p2p.latency_s, p2p_s) << what;
      EXPECT_EQ(got.global.p2p_s, p2p_s) << what;
      // Every op of the schedule finds its own entry again.
      for (const auto& rank_ops : s.ops)
        for (const Op& op : rank_ops) ASSERT_EQ(got.of(op), truth.of(op)) << what << ": " << op_text(op);
      expect_same_events(simulate(s, got), timeline, what);

      // One mean per op kind cannot: the stages differ.
      const Durations mean = mean_durations(timeline);
      EXPECT_NE(simulate(s, mean).makespan_s, timeline.makespan_s) << what;
    }
}

// A table with no stage entries is the global Durations, and so is a
// per-stage table that repeats them: the Table 2 figures are unchanged.
TEST(StageDurations, UniformTableEqualsGlobalDurations) {
  const Durations d{1.0, 2.0, 1.0, 3.0, 0.25};
  for (const Case& c : cases()) {
    const Schedule s = make_schedule(c.kind, c.ranks, c.microbatches);
    const SimResult want = simulate(s, d);
    expect_same_events(simulate(s, StageDurations(d)), want, c.kind + " global only");
    expect_same_events(simulate(s, StageDurations(d, s.num_stages)), want, c.kind + " all unset");
    expect_same_events(simulate(s, StageDurations::per_stage(std::vector<Durations>(s.num_stages, d), d.p2p_s)), want,
                       c.kind + " per stage");
  }
}

// The F&B lookup order: the (forward, backward) pair, else the forward
// stage's F&B entry, else global.fb_s; unset kinds fall back to global.
TEST(StageDurations, LookupOrder) {
  StageDurations d(Durations{1, 2, 1, 3, 0}, 3);
  d.set(1, OpKind::FB, 5.0);
  d.set_fb_pair(1, 2, 7.0);
  d.set(2, OpKind::F, 0.5);
  EXPECT_EQ(d.of(Op::fb(0, 1, 1, 2)), 7.0);
  EXPECT_EQ(d.of(Op::fb(0, 1, 1, 0)), 5.0);
  EXPECT_EQ(d.of(Op::fb(0, 2, 1, 1)), 3.0);
  EXPECT_EQ(d.of(Op::f(0, 2)), 0.5);
  EXPECT_EQ(d.of(Op::f(0, 0)), 1.0);
  EXPECT_EQ(d.of(Op::b_input(0, 2)), 1.0);  // global B - W
}

TEST(StageDurations, ValidateRejectsBadTables) {
  const Schedule s = make_schedule("1f1b", 4, 8);
  EXPECT_THROW(simulate(s, StageDurations(Durations{}, 3)), Error);  // 3 stages for a 4-stage schedule
  StageDurations negative(Durations{}, 4);
  negative.stage_s[2][static_cast<int>(OpKind::B)] = -0.5;
  EXPECT_THROW(simulate(s, negative), Error);
  StageDurations bad_global(Durations{1, 1, 2, 2, 0});  // W > B
  EXPECT_THROW(simulate(s, bad_global), Error);
  EXPECT_THROW(StageDurations(Durations{}, 2).set(2, OpKind::F, 1.0), Error);
}

// The latency estimate ignores inputs that arrived while the rank was busy,
// and takes the median of the waits (one descheduled receiver does not move it).
TEST(StageDurations, P2pLatencyFromReceiveWaits) {
  // 1F1B on 2 ranks, 1 micro-batch: F 0.0 (rank 0) -> F 0.1 (rank 1) -> B 0.1 -> B 0.0.
  SimResult t;
  auto add = [&](int rank, OpKind kind, int stage, double start, double end) {
    Event e;
    e.rank = rank;
    e.kind = kind;
    e.microbatch = 0;
    e.stage = stage;
    e.start_s = start;
    e.end_s = end;
    t.events.push_back(e);
  };
  add(0, OpKind::F, 0, 0.0, 1.0);
  add(1, OpKind::F, 1, 1.25, 2.0);  // waited 0.25 after rank 0's F
  add(1, OpKind::B, 1, 2.0, 3.0);   // local input: no sample
  add(0, OpKind::B, 0, 3.5, 4.0);   // waited 0.5
  P2pLatency p = p2p_latency(t);
  EXPECT_EQ(p.num_samples, 2);
  EXPECT_EQ(p.latency_s, 0.375);
  // Rank 0 busy until after the gradient arrived: no sample from that op.
  t.events.insert(t.events.begin() + 1, Event{});
  t.events[1].rank = 0;
  t.events[1].kind = OpKind::W;  // a stand-in op keeping rank 0 busy until 3.25
  t.events[1].microbatch = 5;
  t.events[1].stage = 0;
  t.events[1].start_s = 1.0;
  t.events[1].end_s = 3.25;
  p = p2p_latency(t);
  EXPECT_EQ(p.num_samples, 1);
  EXPECT_EQ(p.latency_s, 0.25);
}
