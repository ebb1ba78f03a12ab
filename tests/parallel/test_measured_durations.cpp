// Op durations extracted from a timeline (measured_durations.hpp) and the
// simulator's per-(rank, stage, op kind) table (StageDurations in
// simulate.hpp). Closed-form invariant: a timeline simulated with per-stage
// durations (every (stage, kind) and F&B pair its own value, the same on
// every rank, or different on every rank) and a p2p latency, passed through
// stage_durations and simulated again, is reproduced event for event, and so
// are the p2p latency and the gap between a rank's ops. The
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

StageDurations uneven_table(const Schedule& s, double p2p_s, double gap_s, bool by_rank) {
  Durations global;  // durations never used: every (rank, stage, kind) and pair is set
  global.p2p_s = p2p_s;
  global.gap_s = gap_s;
  StageDurations d(global, s.num_ranks, s.num_stages);
  for (int r = 0; r < s.num_ranks; ++r)
    for (int st = 0; st < s.num_stages; ++st) {
      const int salt = by_rank ? 3 * r : 0;
      for (int k = 0; k < kNumOpKinds; ++k) d.set(r, st, static_cast<OpKind>(k), sixteenths(st + salt, k, 1));
      for (int b = 0; b < s.num_stages; ++b) d.set_fb_pair(r, st, b, 1.0 + sixteenths(st + salt, b, 2));
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

// Simulates `c` with uneven durations, extracts them from the timeline,
// simulates again and compares event for event.
void check_round_trip(const Case& c, bool by_rank, double p2p_s, double gap_s) {
  const Schedule s = make_schedule(c.kind, c.ranks, c.microbatches);
  const std::string what = c.kind + " " + std::to_string(c.ranks) + " ranks, " +
                           std::to_string(c.microbatches) + " micro-batches, p2p " + std::to_string(p2p_s) +
                           ", gap " + std::to_string(gap_s) + (by_rank ? ", per rank" : ", per stage");
  const StageDurations truth = uneven_table(s, p2p_s, gap_s, by_rank);
  const SimResult timeline = simulate(s, truth);

  const StageDurations got = stage_durations(s, timeline);
  const Overheads overheads = measured_overheads(timeline);
  EXPECT_GT(overheads.num_p2p_samples, 0) << what;
  EXPECT_GT(overheads.num_gap_samples, 0) << what;
  EXPECT_EQ(overheads.p2p_s, p2p_s) << what;
  EXPECT_EQ(overheads.gap_s, gap_s) << what;
  EXPECT_EQ(got.global.p2p_s, p2p_s) << what;
  EXPECT_EQ(got.global.gap_s, gap_s) << what;
  // Every op of the schedule finds its own entry again.
  for (int r = 0; r < s.num_ranks; ++r)
    for (const Op& op : s.ops[r]) ASSERT_EQ(got.of(r, op), truth.of(r, op)) << what << ": " << op_text(op);
  expect_same_events(simulate(s, got), timeline, what);

  // One mean per op kind cannot: the stages differ.
  Durations mean = mean_durations(timeline);
  mean.p2p_s = p2p_s;
  mean.gap_s = gap_s;
  const SimResult approx = simulate(s, mean);
  bool all_equal = true;
  for (size_t i = 0; i < approx.events.size(); ++i)
    all_equal = all_equal && approx.events[i].start_s == timeline.events[i].start_s &&
                approx.events[i].end_s == timeline.events[i].end_s;
  EXPECT_FALSE(all_equal) << what;
}

}  // namespace

TEST(StageDurations, ExtractedFromASimulatedTimelineReproduceItExactly) {
  for (const Case& c : cases())
    for (bool by_rank : {false, true})
      for (double p2p_s : {0.0, 0.125, 0.5})
        for (double gap_s : {0.0, 0.0625, 0.25}) check_round_trip(c, by_rank, p2p_s, gap_s);
}

// A table with no stage entries is the global Durations, and so is a
// per-stage table that repeats them: the Table 2 figures are unchanged.
TEST(StageDurations, UniformTableEqualsGlobalDurations) {
  const Durations d{1.0, 2.0, 1.0, 3.0, 0.25};
  for (const Case& c : cases()) {
    const Schedule s = make_schedule(c.kind, c.ranks, c.microbatches);
    const SimResult want = simulate(s, d);
    expect_same_events(simulate(s, StageDurations(d)), want, c.kind + " global only");
    expect_same_events(simulate(s, StageDurations(d, s.num_ranks, s.num_stages)), want, c.kind + " all unset");
    expect_same_events(
        simulate(s, StageDurations::per_stage(std::vector<Durations>(s.num_stages, d), s.num_ranks, d.p2p_s)), want,
        c.kind + " per stage");
  }
}

// The F&B lookup order: the rank's (forward, backward) pair, else the rank's
// forward stage's F&B entry, else global.fb_s; unset kinds fall back to global.
TEST(StageDurations, LookupOrder) {
  StageDurations d(Durations{1, 2, 1, 3, 0}, 2, 3);
  d.set(1, 1, OpKind::FB, 5.0);
  d.set_fb_pair(1, 1, 2, 7.0);
  d.set(1, 2, OpKind::F, 0.5);
  EXPECT_EQ(d.of(1, Op::fb(0, 1, 1, 2)), 7.0);
  EXPECT_EQ(d.of(0, Op::fb(0, 1, 1, 2)), 3.0);  // another rank
  EXPECT_EQ(d.of(1, Op::fb(0, 1, 1, 0)), 5.0);
  EXPECT_EQ(d.of(1, Op::fb(0, 2, 1, 1)), 3.0);
  EXPECT_EQ(d.of(1, Op::f(0, 2)), 0.5);
  EXPECT_EQ(d.of(0, Op::f(0, 2)), 1.0);
  EXPECT_EQ(d.of(1, Op::f(0, 0)), 1.0);
  EXPECT_EQ(d.of(1, Op::b_input(0, 2)), 1.0);  // global B - W
}

TEST(StageDurations, ValidateRejectsBadTables) {
  const Schedule s = make_schedule("1f1b", 4, 8);
  EXPECT_THROW(simulate(s, StageDurations(Durations{}, 4, 3)), Error);  // 3 stages for a 4-stage schedule
  EXPECT_THROW(simulate(s, StageDurations(Durations{}, 2, 4)), Error);  // 2 ranks for 4
  StageDurations negative(Durations{}, 4, 4);
  negative.op_s[6][static_cast<int>(OpKind::B)] = -0.5;
  EXPECT_THROW(simulate(s, negative), Error);
  StageDurations bad_global(Durations{1, 1, 2, 2, 0});  // W > B
  EXPECT_THROW(simulate(s, bad_global), Error);
  EXPECT_THROW(StageDurations(Durations{}, 2, 2).set(0, 2, OpKind::F, 1.0), Error);
  EXPECT_THROW(StageDurations(Durations{}, 0, 2), Error);
}

// The estimates on a hand-made timeline: the gap from ops with local inputs
// only, the latency from inputs that arrived after the rank was free, the
// gap again from remote inputs that were there in time.
TEST(StageDurations, OverheadsFromAMeasuredLikeTimeline) {
  // 1F1B on 2 ranks, 2 micro-batches; times in ms.
  SimResult t;
  auto add = [&](int rank, OpKind kind, int mb, int stage, double start_ms, double end_ms) {
    Event e;
    e.rank = rank;
    e.kind = kind;
    e.microbatch = mb;
    e.stage = stage;
    e.start_s = start_ms / 1e3;
    e.end_s = end_ms / 1e3;
    t.events.push_back(e);
  };
  add(0, OpKind::F, 0, 0, 0.0, 1.0);
  add(0, OpKind::F, 1, 0, 1.5, 2.5);   // local only: gap 0.5
  add(1, OpKind::F, 0, 1, 1.25, 2.0);  // first op, input at 1.0: p2p 0.25
  add(1, OpKind::B, 0, 1, 2.25, 3.0);  // local only: gap 0.25
  add(1, OpKind::F, 1, 1, 3.5, 4.0);   // input at 2.5, there before 3.0: gap 0.5
  add(1, OpKind::B, 1, 1, 4.25, 5.0);  // local only: gap 0.25
  add(0, OpKind::B, 0, 0, 3.75, 4.5);  // input at 3.0, rank free at 2.5 (+ gap): p2p 0.75
  add(0, OpKind::B, 1, 0, 5.5, 6.0);   // input at 5.0, rank free at 4.5: p2p 0.5
  const Overheads o = measured_overheads(t);
  EXPECT_EQ(o.num_p2p_samples, 3);
  EXPECT_NEAR(o.p2p_s, 0.5e-3, 1e-12);  // (0.25 + 0.75 + 0.5) / 3
  EXPECT_EQ(o.num_gap_samples, 4);
  EXPECT_NEAR(o.gap_s, 0.375e-3, 1e-12);  // (0.5 + 0.25 + 0.25 + 0.5) / 4
  // The table keeps them; without samples the fallback's values stay.
  const Schedule s = make_schedule("1f1b", 2, 2);
  const StageDurations d = stage_durations(s, t);
  EXPECT_EQ(d.global.p2p_s, o.p2p_s);
  EXPECT_EQ(d.global.gap_s, o.gap_s);
  EXPECT_NEAR(d.at(0, 0, OpKind::B), (0.75e-3 + 0.5e-3) / 2, 1e-15);
  Durations fallback;
  fallback.p2p_s = 7;
  fallback.gap_s = 9;
  SimResult one_op;
  one_op.events.push_back(t.events[0]);
  const StageDurations lone = stage_durations(s, one_op, fallback);
  EXPECT_EQ(lone.global.p2p_s, 7);
  EXPECT_EQ(lone.global.gap_s, 9);
}
