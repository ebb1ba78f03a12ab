// ZB-H1 (Qi et al., "Zero Bubble Pipeline Parallelism", ICLR 2024), called
// ZB1P in DeepSeek-V3's Table 2. The 1F1B order with each backward split into
// B_input (on the critical path: the previous stage waits for it) and W
// (weight gradient, off the critical path). Rank r runs W of micro-batch j
// after B_input of micro-batch j + r, so the last ranks hold back r weight
// gradients and spend them in the cool-down, where 1F1B would wait for the
// backward chain to come back. With B_input = W, rank r's last B_input is
// followed by r+1 W's, which is exactly the time the chain needs to reach
// rank 0 and finish there: every rank then idles (PP-1)(F+B-2W), B being the
// full backward (B_input + W). Activations live from F until W: at most
// PP-r-1 warm-up + 1 + r = PP per rank (Table 2: PP, as 1F1B's rank 0).
#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#include "parallel/schedule/generators.hpp"

namespace moelab::schedule {

Schedule make_zb1p(int num_ranks, int num_microbatches) {
  std::vector<int> stage_rank(num_ranks), stage_chunk(num_ranks, 0);
  std::iota(stage_rank.begin(), stage_rank.end(), 0);
  Schedule s = empty_schedule("zb1p", num_ranks, num_microbatches, stage_rank, stage_chunk);
  for (int r = 0; r < num_ranks; ++r) {
    auto& ops = s.ops[r];
    const int warmup = std::min(num_ranks - r - 1, num_microbatches);
    const int w_lag = r;  // W of micro-batch j follows B_input of j + r
    int next_f = 0, next_b = 0, next_w = 0;
    auto backward = [&] {
      ops.push_back(Op::b_input(next_b++, r));
      if (next_b - 1 - next_w >= w_lag) ops.push_back(Op::w(next_w++, r));
    };
    // nF0: warm-up.
    for (int i = 0; i < warmup; ++i) ops.push_back(Op::f(next_f++, r));
    // nF0B0W0: steady state (W lagging by r).
    while (next_f < num_microbatches) {
      ops.push_back(Op::f(next_f++, r));
      backward();
    }
    // nB0W0: cool-down.
    while (next_b < num_microbatches) backward();
    // nW: the weight gradients held back.
    while (next_w < num_microbatches) ops.push_back(Op::w(next_w++, r));
  }
  return s;
}

}  // namespace moelab::schedule
