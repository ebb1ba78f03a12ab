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
#include "core/error.hpp"
#include "parallel/schedule/generators.hpp"

namespace moelab::schedule {

Schedule make_zb1p(int num_ranks, int num_microbatches) {
  // The 1F1B order (nF0 warm-up, nF0B0 steady state, nB0 cool-down) with
  // each B split: B_input in its place, W of micro-batch j right after
  // B_input of micro-batch j + r, the last r W's at the end (nW).
  Schedule s = make_1f1b(num_ranks, num_microbatches);
  s.kind = "zb1p";
  for (int r = 0; r < num_ranks; ++r) {
    const int w_lag = r;
    std::vector<Op> ops;
    int next_w = 0;
    for (const Op& op : s.ops[r]) {
      if (op.kind != OpKind::B) {
        ops.push_back(op);
        continue;
      }
      ops.push_back(Op::b_input(op.microbatch, op.stage));
      if (op.microbatch - next_w >= w_lag) ops.push_back(Op::w(next_w++, r));
    }
    while (next_w < num_microbatches) ops.push_back(Op::w(next_w++, r));
    s.ops[r] = std::move(ops);
  }
  return s;
}

}  // namespace moelab::schedule
