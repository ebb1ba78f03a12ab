// 1F1B (PipeDream-Flush, Narayanan et al. 2021; Megatron-LM's default):
// rank r runs min(PP-r-1, C) warm-up forwards (nF0), then pairs of one
// forward and one backward (nF0B0), then the remaining backwards (nB0). At
// most PP-r micro-batches are in flight on rank r, so rank 0 holds PP
// (Table 2: activation PP, parameters 1x, bubble (PP-1)(F+B)).
#include <algorithm>

#include "core/error.hpp"
#include "parallel/schedule/generators.hpp"

namespace moelab::schedule {

Schedule make_1f1b(int num_ranks, int num_microbatches) {
  Schedule s = linear_schedule("1f1b", num_ranks, num_microbatches);
  for (int r = 0; r < num_ranks; ++r) {
    auto& ops = s.ops[r];
    const int warmup = std::min(num_ranks - r - 1, num_microbatches);
    int next_f = 0, next_b = 0;
    // nF0: warm-up.
    for (int i = 0; i < warmup; ++i) ops.push_back(Op::f(next_f++, r));
    // nF0B0: steady state.
    while (next_f < num_microbatches) {
      ops.push_back(Op::f(next_f++, r));
      ops.push_back(Op::b(next_b++, r));
    }
    // nB0: cool-down.
    while (next_b < num_microbatches) ops.push_back(Op::b(next_b++, r));
  }
  return s;
}

}  // namespace moelab::schedule
