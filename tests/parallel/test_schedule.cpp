// Pipeline schedules: closed forms of DeepSeek-V3 Table 2 (bubble, activation
// and parameter columns) reproduced exactly by the simulator with F = W = 1,
// B = 2, F&B = 3; generator shapes against DualPipe's step counts; the
// validator rejecting corrupted schedules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "parallel/schedule/generators.hpp"
#include "parallel/schedule/simulate.hpp"
#include "parallel/schedule/validate.hpp"

using namespace moelab;
using namespace moelab::schedule;

namespace {

struct Case {
  std::string kind;
  int ranks;
  int microbatches;
};

int stages_of(const std::string& kind, int ranks) { return kind == "dualpipev" ? 2 * ranks : ranks; }

std::vector<Case> table2_cases() {
  std::vector<Case> cases;
  for (const char* kind : {"1f1b", "zb1p", "dualpipe"})
    for (int pp : {4, 8, 16})
      for (int c : {2 * pp, 2 * pp + 2, 3 * pp, 4 * pp + 6}) cases.push_back({kind, pp, c});
  // DualPipeV: PP stages on PP/2 ranks.
  for (int pp : {4, 8, 16})
    for (int c : {pp, pp + 2, 2 * pp, 3 * pp + 1}) cases.push_back({"dualpipev", pp / 2, c});
  return cases;
}

}  // namespace

// Table 2 with F = W = 1, B = 2, F&B = 3 (F&B = F + B, B = 2W): every rank's
// idle time equals the bubble formula exactly, whatever the micro-batch count.
TEST(ScheduleTable2, IdleEqualsClosedFormOnEveryRank) {
  const Durations d{1, 2, 1, 3, 0};
  for (const Case& c : table2_cases()) {
    SCOPED_TRACE(c.kind + " ranks " + std::to_string(c.ranks) + " micro-batches " + std::to_string(c.microbatches));
    const Schedule s = make_schedule(c.kind, c.ranks, c.microbatches);
    const SimResult r = simulate(s, d);
    const int pp = stages_of(c.kind, c.ranks);
    const double bubble = table2_bubble_s(c.kind, pp, d);
    for (int rank = 0; rank < c.ranks; ++rank) EXPECT_EQ(r.ranks[rank].idle_s, bubble) << "rank " << rank;
  }
}

TEST(ScheduleTable2, ActivationAndParameterColumns) {
  const Durations d{1, 2, 1, 3, 0};
  for (const Case& c : table2_cases()) {
    SCOPED_TRACE(c.kind + " ranks " + std::to_string(c.ranks) + " micro-batches " + std::to_string(c.microbatches));
    const SimResult r = simulate(make_schedule(c.kind, c.ranks, c.microbatches), d);
    const int pp = stages_of(c.kind, c.ranks);
    EXPECT_EQ(r.max_peak_activations(), table2_activations(c.kind, pp));
    for (const auto& rank : r.ranks) EXPECT_EQ(rank.param_copies, table2_param_copies(c.kind));
  }
}

// Where F&B < F+B (real overlap), the formula is an upper bound on every
// rank's idle time in this model (reference §6.5: PP 8, C 20, F 1, B 2, W 0.5,
// F&B 2.2 gives idle 5.5 .. 7.1 against 8.1).
TEST(ScheduleTable2, OverlapBelowFormula) {
  const Durations d{1, 2, 0.5, 2.2, 0};
  const SimResult r = simulate(make_dualpipe(8, 20), d);
  EXPECT_NEAR(r.min_idle_s(), 5.5, 1e-9);
  EXPECT_NEAR(r.max_idle_s(), 7.1, 1e-9);
  EXPECT_NEAR(table2_bubble_s("dualpipe", 8, d), 8.1, 1e-12);
  for (const char* kind : {"dualpipe", "dualpipev"})
    for (int pp : {4, 8, 16})
      for (double fb : {2.0, 2.5, 2.9}) {
        const Durations e{1, 2, 1, fb, 0};
        const int ranks = std::string(kind) == "dualpipev" ? pp / 2 : pp;
        const SimResult s = simulate(make_schedule(kind, ranks, 2 * pp + 4), e);
        EXPECT_LE(s.max_idle_s(), table2_bubble_s(kind, pp, e) + 1e-9) << kind << " PP " << pp << " F&B " << fb;
      }
}

// With real overlap, F&B = F+B-δ (0 <= δ <= F, i.e. max(F,B) <= F&B <= F+B)
// and F = W = 1, B = 2: the per-rank idle time has a closed form too. The
// middle ranks idle exactly the Table 2 formula; a rank at half-rank h
// (DualPipe: min(r, PP-1-r); DualPipeV: r, with PP/2 = N ranks) runs
// PP/2-2-h fewer overlapped pairs than them on the same makespan, so it idles
//   formula - max(0, PP/2-2-h)·δ.
// The formula is the bubble of the slowest ranks, not of every rank.
TEST(ScheduleTable2, OverlapPerRankClosedForm) {
  for (const char* kind : {"dualpipe", "dualpipev"})
    for (int pp : {4, 8, 16})
      for (int c : {2 * pp, 3 * pp + 2})
        for (double delta : {0.0, 0.25, 0.6, 1.0}) {
          const Durations d{1, 2, 1, 3 - delta, 0};
          const bool v = std::string(kind) == "dualpipev";
          const int ranks = v ? pp / 2 : pp;
          const SimResult r = simulate(make_schedule(kind, ranks, c), d);
          const double formula = table2_bubble_s(kind, pp, d);
          for (int rank = 0; rank < ranks; ++rank) {
            const int h = v ? rank : std::min(rank, pp - 1 - rank);
            EXPECT_NEAR(r.ranks[rank].idle_s, formula - std::max(0, pp / 2 - 2 - h) * delta, 1e-9)
                << kind << " PP " << pp << " C " << c << " delta " << delta << " rank " << rank;
          }
        }
}

// With B != 2W (here F = 1, B = 2, W = 0.25..0.75) the formula is an upper
// bound on every rank's idle time, without or with overlap.
TEST(ScheduleTable2, FormulaBoundsIdleWhenBIsNotTwoW) {
  for (const char* kind : {"dualpipe", "dualpipev"})
    for (int pp : {8, 16})
      for (double w : {0.25, 0.5, 0.75})
        for (double fb : {2.0, 2.6, 3.0}) {
          const Durations d{1, 2, w, fb, 0};
          const int ranks = std::string(kind) == "dualpipev" ? pp / 2 : pp;
          const SimResult r = simulate(make_schedule(kind, ranks, 3 * pp), d);
          EXPECT_LE(r.max_idle_s(), table2_bubble_s(kind, pp, d) + 1e-9)
              << kind << " PP " << pp << " W " << w << " F&B " << fb;
        }
  // ZB1P's formula stays exact for any W <= B/2.
  for (double w : {0.25, 0.5, 0.75, 1.0}) {
    const Durations d{1, 2, w, 3, 0};
    const SimResult r = simulate(make_zb1p(8, 24), d);
    for (const auto& rank : r.ranks) EXPECT_NEAR(rank.idle_s, table2_bubble_s("zb1p", 8, d), 1e-9) << "W " << w;
  }
}

// GPipe with latency: makespan (C+PP-1)(F+B) + 2(PP-1)·p2p (one forward and
// one backward chain through the pipeline).
TEST(ScheduleSimulate, GPipeWithLatency) {
  const Durations d{1, 2, 1, 3, 0.25};
  for (int pp : {2, 4, 8})
    for (int c : {1, 5, 16}) {
      const SimResult r = simulate(make_gpipe(pp, c), d);
      EXPECT_DOUBLE_EQ(r.makespan_s, (c + pp - 1) * 3.0 + 2 * (pp - 1) * 0.25) << "PP " << pp << " C " << c;
      EXPECT_EQ(r.max_peak_activations(), c);
    }
}

// Events: one per op, non-overlapping on a rank, in program order; busy time
// is the sum of op durations.
TEST(ScheduleSimulate, EventsAreConsistent) {
  const Durations d{1.5, 2.5, 1, 3.2, 0.1};
  const Schedule s = make_dualpipe(4, 12);
  const SimResult r = simulate(s, d);
  ASSERT_EQ(static_cast<int64_t>(r.events.size()), s.total_ops());
  size_t k = 0;
  for (int rank = 0; rank < s.num_ranks; ++rank) {
    double t = 0, busy = 0;
    for (const Op& op : s.ops[rank]) {
      const Event& e = r.events[k++];
      EXPECT_EQ(e.rank, rank);
      EXPECT_EQ(e.kind, op.kind);
      EXPECT_EQ(e.microbatch, op.microbatch);
      EXPECT_EQ(e.direction, s.direction(op.microbatch));
      EXPECT_EQ(e.chunk, e.direction);  // DualPipe: chunk = direction
      EXPECT_GE(e.start_s, t);
      EXPECT_NEAR(e.end_s - e.start_s, d.of(op.kind), 1e-12);  // end = start + duration, rounded
      t = e.end_s;
      busy += e.end_s - e.start_s;
    }
    EXPECT_NEAR(r.ranks[rank].busy_s, busy, 1e-9);
  }
}

// DualPipe's per-rank totals (reference §6.3): rank 0 of PP 8, C 20 runs
// 11 F, 11 backwards (4 B + 7 B_input), 7 W and 9 F&B; every rank runs C
// forwards and C backwards in all.
TEST(ScheduleDualPipe, StepCounts) {
  const Schedule s = make_dualpipe(8, 20);
  const SimResult r = simulate(s, Durations{});
  const auto& r0 = r.ranks[0].num_ops_of;
  EXPECT_EQ(r0[int(OpKind::F)], 11);
  EXPECT_EQ(r0[int(OpKind::B)] + r0[int(OpKind::BInput)], 11);
  EXPECT_EQ(r0[int(OpKind::BInput)], 7);
  EXPECT_EQ(r0[int(OpKind::W)], 7);
  EXPECT_EQ(r0[int(OpKind::FB)], 9);
  for (const auto& rank : r.ranks) {
    const auto& n = rank.num_ops_of;
    EXPECT_EQ(n[int(OpKind::F)] + n[int(OpKind::FB)], 20);
    EXPECT_EQ(n[int(OpKind::B)] + n[int(OpKind::BInput)] + n[int(OpKind::FB)], 20);
  }
  // The first steps of rank 0: nF0 (6 forwards of direction 0), then nF0F1.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s.ops[0][i], Op::f(i, 0));
  EXPECT_EQ(s.ops[0][6], Op::f(6, 0));
  EXPECT_EQ(s.ops[0][7], Op::f(10, 7));  // direction 1's first micro-batch, last stage
}

TEST(ScheduleConstraints, ClearErrors) {
  auto message = [](auto&& make) -> std::string {
    try {
      make();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message([] { make_dualpipe(6 + 1, 20); }).find("PP (7) must be even"), std::string::npos);
  EXPECT_NE(message([] { make_dualpipe(8, 21); }).find("micro-batches (21) must be even"), std::string::npos);
  EXPECT_NE(message([] { make_dualpipe(8, 14); }).find("must be >= 2·PP (16)"), std::string::npos);
  EXPECT_NE(message([] { make_dualpipev(4, 7); }).find("must be >= 2·ranks (8)"), std::string::npos);
  EXPECT_NE(message([] { make_schedule("chimera", 4, 8); }).find("unknown schedule kind 'chimera'"),
            std::string::npos);
  EXPECT_NE(message([] { make_interleaved_1f1b(4, 6, 2); }).find("multiple of PP"), std::string::npos);
}

// Every generator's output passes the validator, for many shapes.
TEST(ScheduleValidate, GeneratedSchedulesAreValid) {
  for (const std::string& kind : schedule_kinds())
    for (int ranks : {1, 2, 3, 4, 6, 8})
      for (int c : {1, 2, 3, 4, 8, 12, 16, 17, 24}) {
        Schedule s;
        try {
          s = make_schedule(kind, ranks, c);
        } catch (const Error&) {
          continue;  // a constraint of that schedule
        }
        const auto problems = find_problems(s);
        EXPECT_TRUE(problems.empty()) << kind << " ranks " << ranks << " C " << c << ": " << problems[0];
      }
}

namespace {

std::string first_problem(const Schedule& s) {
  const auto problems = find_problems(s);
  return problems.empty() ? "" : problems[0];
}

}  // namespace

TEST(ScheduleValidate, RejectsDroppedOps) {
  Schedule s = make_dualpipe(4, 8);
  // Drop the first W of rank 0.
  auto& ops = s.ops[0];
  auto w = std::find_if(ops.begin(), ops.end(), [](const Op& op) { return op.kind == OpKind::W; });
  ASSERT_NE(w, ops.end());
  const Op dropped = *w;
  ops.erase(w);
  EXPECT_NE(first_problem(s).find("micro-batch " + std::to_string(dropped.microbatch) + " stage " +
                                  std::to_string(dropped.stage) + " (rank 0): B_input without its W"),
            std::string::npos)
      << first_problem(s);
  EXPECT_THROW(simulate(s, Durations{}), Error);

  // Drop an overlapped F&B: its forward and its backward go missing.
  Schedule t = make_dualpipe(4, 8);
  auto fb = std::find_if(t.ops[2].begin(), t.ops[2].end(), [](const Op& op) { return op.kind == OpKind::FB; });
  ASSERT_NE(fb, t.ops[2].end());
  t.ops[2].erase(fb);
  EXPECT_NE(first_problem(t).find("no forward"), std::string::npos) << first_problem(t);

  // An op duplicated.
  Schedule u = make_1f1b(4, 8);
  u.ops[1].push_back(u.ops[1][0]);
  EXPECT_NE(first_problem(u).find("forward twice"), std::string::npos) << first_problem(u);

  // An op on the wrong rank.
  Schedule v = make_1f1b(4, 8);
  v.ops[1][0] = Op::f(0, 2);
  EXPECT_NE(first_problem(v).find("lives on rank 2"), std::string::npos) << first_problem(v);
}

TEST(ScheduleValidate, RejectsSwappedDependencies) {
  // On one rank: the B_input of a (micro-batch, stage) moved before its F.
  Schedule s = make_zb1p(4, 8);
  auto& ops = s.ops[3];
  ASSERT_EQ(ops[0], Op::f(0, 3));
  ASSERT_EQ(ops[1], Op::b_input(0, 3));
  std::swap(ops[0], ops[1]);
  EXPECT_NE(first_problem(s).find("swapped dependency: rank 3 op 0 (B_input 0.3) runs before rank 3 op 1 (F 0.3)"),
            std::string::npos)
      << first_problem(s);

  // Across ranks: 1F1B on 2 ranks with rank 0 running B0 before F1 and rank 1
  // running F1 before B0: each waits for the other.
  Schedule t = make_1f1b(2, 2);
  ASSERT_EQ(t.ops[0], (std::vector<Op>{Op::f(0, 0), Op::f(1, 0), Op::b(0, 0), Op::b(1, 0)}));
  ASSERT_EQ(t.ops[1], (std::vector<Op>{Op::f(0, 1), Op::b(0, 1), Op::f(1, 1), Op::b(1, 1)}));
  std::swap(t.ops[0][1], t.ops[0][2]);
  std::swap(t.ops[1][1], t.ops[1][2]);
  EXPECT_EQ(first_problem(t),
            "schedule 1f1b: deadlock: every rank waits; rank 0 op 1 (B 0.0) waits for rank 1 op 2 (B 0.1); "
            "rank 1 op 1 (F 1.1) waits for rank 0 op 2 (F 1.0);");
  EXPECT_THROW(validate(t), Error);
}

// With synchronous sends placed naively after each op, 1F1B deadlocks (rank 0
// sends forward 1 while rank 1 sends backward 0); GPipe does not (all sends
// of a phase go the same way). Every schedule is deadlock-free with the
// buffered sends the executor uses (GeneratedSchedulesAreValid).
TEST(ScheduleValidate, SynchronousSendsDeadlockFor1F1B) {
  EXPECT_EQ(synchronous_send_deadlock(make_1f1b(2, 4)),
            "schedule 1f1b: deadlock with synchronous sends: rank 0 at op 1 (F 1.0) sends to rank 1; "
            "rank 1 at op 1 (B 0.1) sends to rank 0");
  EXPECT_EQ(synchronous_send_deadlock(make_gpipe(4, 8)), "");
  EXPECT_EQ(synchronous_send_deadlock(make_1f1b(4, 1)), "");  // one micro-batch: nothing to cross
  EXPECT_NE(synchronous_send_deadlock(make_dualpipe(4, 8)), "");
}

// Interleaved 1F1B (Narayanan et al. 2021): with v chunks per rank and F, B
// the times of one chunk, every rank idles (PP-1)(F+B): the 1F1B bubble of a
// full stage (v·F, v·B) divided by v. Peak activations on rank 0: Megatron's
// warm-up (PP-1)·2 + (v-1)·PP + 1 chunk-activations.
TEST(ScheduleInterleaved, BubbleIsOneFOneBOverV) {
  const Durations d{1, 2, 1, 3, 0};
  for (int v : {2, 3, 4})
    for (int pp : {2, 4, 8})
      for (int c : {pp, 2 * pp, 3 * pp}) {
        const SimResult r = simulate(make_interleaved_1f1b(pp, c, v), d);
        for (const auto& rank : r.ranks) EXPECT_EQ(rank.idle_s, (pp - 1) * 3.0) << "v " << v << " PP " << pp;
        EXPECT_EQ(r.ranks[0].param_copies, v);
        EXPECT_EQ(r.ranks[0].peak_activations, c == pp ? int64_t(c) * v : (pp - 1) * 2 + (v - 1) * pp + 1)
            << "v " << v << " PP " << pp << " C " << c;
      }
}
