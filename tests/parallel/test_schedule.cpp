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
