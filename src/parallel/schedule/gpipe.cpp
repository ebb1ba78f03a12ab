// GPipe (Huang et al. 2019): every rank runs all forwards, then all
// backwards. Bubble (PP-1)(F+B) like 1F1B, but activations of all C
// micro-batches stay alive until their backward: the baseline 1F1B improves on.
#include "parallel/schedule/generators.hpp"


#include "core/error.hpp"

namespace moelab::schedule {

Schedule make_gpipe(int num_ranks, int num_microbatches) {
  Schedule s = linear_schedule("gpipe", num_ranks, num_microbatches);
  for (int r = 0; r < num_ranks; ++r) {
    // nF: all forwards.
    for (int mb = 0; mb < num_microbatches; ++mb) s.ops[r].push_back(Op::f(mb, r));
    // nB: all backwards, in the order the last stage produces them.
    for (int mb = 0; mb < num_microbatches; ++mb) s.ops[r].push_back(Op::b(mb, r));
  }
  return s;
}

}  // namespace moelab::schedule
